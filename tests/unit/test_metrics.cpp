// Unit tests for metrics.hpp: the text of loto.prom, updated run by run.
#include "metrics.hpp"

#include <catch2/catch.hpp>

#include <string>

using loto::RunRecord;
using loto::updated_metrics;

namespace {

// The sample lines of `text` for `metric`, in file order.
std::vector<std::string> samples(const std::string& text, const std::string& metric) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.rfind(metric + "{", 0) == 0) {
      lines.push_back(line);
    }
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

RunRecord ran(const std::string& resource, int status) {
  RunRecord run;
  run.resources = {resource};
  run.outcome = "ran";
  run.exit_status = status;
  run.waited_seconds = 1.5;
  run.started_at = 1796000000.25;
  run.held_seconds = 0.2;
  if (status == 0) {
    run.succeeded_at = 1796000000.5;
  }
  return run;
}

} // namespace

TEST_CASE("a first run writes every family once, with HELP and TYPE", "[metrics]") {
  const std::string text = updated_metrics("", ran("backup", 0));
  CHECK(text.find("# HELP loto_runs_total ") == 0);
  CHECK(text.find("# TYPE loto_runs_total counter\n") != std::string::npos);
  for (const char* gauge : {"loto_last_run_start_timestamp_seconds",
                            "loto_last_run_duration_seconds",
                            "loto_last_wait_seconds",
                            "loto_last_exit_status",
                            "loto_last_success_timestamp_seconds"}) {
    INFO(gauge);
    CHECK(text.find(std::string("# TYPE ") + gauge + " gauge\n") != std::string::npos);
  }
  CHECK(samples(text, "loto_runs_total") ==
        std::vector<std::string>{"loto_runs_total{resource=\"backup\",outcome=\"ran\"} 1"});
  CHECK(samples(text, "loto_last_wait_seconds") ==
        std::vector<std::string>{"loto_last_wait_seconds{resource=\"backup\"} 1.500"});
  CHECK(samples(text, "loto_last_run_start_timestamp_seconds") ==
        std::vector<std::string>{
            "loto_last_run_start_timestamp_seconds{resource=\"backup\"} 1796000000.250"});
  CHECK(samples(text, "loto_last_success_timestamp_seconds").size() == 1);
}

TEST_CASE("runs add up per resource and outcome, and the last run sets the gauges", "[metrics]") {
  std::string text = updated_metrics("", ran("backup", 0));
  text = updated_metrics(text, ran("backup", 3));
  RunRecord busy;
  busy.resources = {"backup", "/var/lock/x.lock"};
  busy.outcome = "busy";
  busy.exit_status = 75;
  text = updated_metrics(text, busy);
  CHECK(
      samples(text, "loto_runs_total") ==
      std::vector<std::string>{"loto_runs_total{resource=\"/var/lock/x.lock\",outcome=\"busy\"} 1",
                               "loto_runs_total{resource=\"backup\",outcome=\"busy\"} 1",
                               "loto_runs_total{resource=\"backup\",outcome=\"ran\"} 2"});
  CHECK(samples(text, "loto_last_exit_status") ==
        std::vector<std::string>{"loto_last_exit_status{resource=\"/var/lock/x.lock\"} 75",
                                 "loto_last_exit_status{resource=\"backup\"} 75"});
  // A busy run has no command: the last success and run times stay those of the run before.
  CHECK(samples(text, "loto_last_success_timestamp_seconds") ==
        std::vector<std::string>{
            "loto_last_success_timestamp_seconds{resource=\"backup\"} 1796000000.500"});
  CHECK(samples(text, "loto_last_run_duration_seconds") ==
        std::vector<std::string>{"loto_last_run_duration_seconds{resource=\"backup\"} 0.200"});
}

TEST_CASE("label values are escaped and read back, and foreign lines are dropped", "[metrics]") {
  const std::string odd = "/srv/a \"b\" \\c.lock";
  std::string text = updated_metrics("# a comment\nsomething_else 3\nnot a sample\n", ran(odd, 0));
  CHECK(text.find("something_else") == std::string::npos);
  CHECK(samples(text, "loto_runs_total") ==
        std::vector<std::string>{
            "loto_runs_total{resource=\"/srv/a \\\"b\\\" \\\\c.lock\",outcome=\"ran\"} 1"});
  text = updated_metrics(text, ran(odd, 0));
  CHECK(samples(text, "loto_runs_total") ==
        std::vector<std::string>{
            "loto_runs_total{resource=\"/srv/a \\\"b\\\" \\\\c.lock\",outcome=\"ran\"} 2"});
}
