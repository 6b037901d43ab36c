// Metrics for node_exporter's textfile collector: <metrics_dir>/loto.prom, rewritten after
// every run with counts per resource and outcome and the last run's times.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto {

// One run of loto as the metrics count it.
struct RunRecord {
  std::vector<std::string> resources; // each -L, as named
  std::string outcome;                // ran, busy, timeout, interrupted, error, lost, overrun
  int exit_status = 0;                // loto's
  double waited_seconds = 0;
  std::optional<double> started_at;   // Unix time the command started
  std::optional<double> held_seconds; // how long the command held the locks
  std::optional<double> succeeded_at; // Unix time the command exited 0
};

// The text of loto.prom after `run`, given its text before (what loto wrote earlier; lines
// it does not recognise are dropped).
std::string updated_metrics(std::string_view previous, const RunRecord& run);

// Rewrites <dir>/loto.prom for `run`: read, update and replace (temp file + rename) under
// the lock <dir>/.loto.prom.lock, so concurrent runs never lose an update or leave a torn
// file. Returns what went wrong, if anything; never throws for the job's sake.
std::optional<std::string> record_run(const std::string& dir, const RunRecord& run);

} // namespace loto
