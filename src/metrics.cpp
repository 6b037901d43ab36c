#include "metrics.hpp"

#include "text.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

namespace loto {

namespace {

// The file's gauges, in the order they are written.
enum Gauge { start, duration, wait, exit_status, success, gauge_count };

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

constexpr Family k_runs{"loto_runs_total", "counter", "Runs of loto by resource and outcome."};
constexpr std::array<Family, gauge_count> k_gauges{{
    {"loto_last_run_start_timestamp_seconds",
     "gauge",
     "When the last command run under the resource started (Unix time)."},
    {"loto_last_run_duration_seconds",
     "gauge",
     "How long the last command run under the resource held its locks."},
    {"loto_last_wait_seconds", "gauge", "How long the last run waited for its locks."},
    {"loto_last_exit_status", "gauge", "loto's exit status of the last run."},
    {"loto_last_success_timestamp_seconds",
     "gauge",
     "When a command run under the resource last exited 0 (Unix time)."},
}};

struct ResourceMetrics {
  std::map<std::string, double> runs; // by outcome
  std::array<std::optional<double>, gauge_count> gauges;
};

using Metrics = std::map<std::string, ResourceMetrics>;

// A label value as the exposition format writes it: backslash, double quote and line
// feed escaped.
std::string label_value(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Reads the labels of one sample ("{a="x",b="y"}" without the braces) into name/value pairs.
std::map<std::string, std::string> read_labels(std::string_view text) {
  std::map<std::string, std::string> labels;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto equals = text.find("=\"", at);
    if (equals == std::string_view::npos) {
      break;
    }
    const std::string name(text.substr(at, equals - at));
    std::string value;
    std::size_t i = equals + 2;
    for (; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        ++i;
        value += text[i] == 'n' ? '\n' : text[i];
      } else {
        value += text[i];
      }
    }
    labels[name] = value;
    at = i + 2; // past the closing quote and the comma
  }
  return labels;
}

// What loto wrote before: its own samples; anything else is dropped.
Metrics parse(std::string_view text) {
  Metrics metrics;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const auto open = line.find('{');
    const auto close = line.rfind('}');
    if (line.empty() || line[0] == '#' || open == std::string_view::npos ||
        close == std::string_view::npos || close < open) {
      continue;
    }
    const std::string_view name = line.substr(0, open);
    const auto labels = read_labels(line.substr(open + 1, close - open - 1));
    const std::string value_text(line.substr(close + 1));
    char* parse_end = nullptr;
    const double value = std::strtod(value_text.c_str(), &parse_end);
    const auto resource = labels.find("resource");
    if (resource == labels.end() || parse_end == value_text.c_str() || !std::isfinite(value)) {
      continue;
    }
    ResourceMetrics& entry = metrics[resource->second];
    if (name == k_runs.name) {
      if (const auto outcome = labels.find("outcome"); outcome != labels.end()) {
        entry.runs[outcome->second] = value;
      }
      continue;
    }
    for (std::size_t g = 0; g < k_gauges.size(); ++g) {
      if (name == k_gauges[g].name) {
        entry.gauges[g] = value;
      }
    }
  }
  return metrics;
}

std::string number(double value) {
  std::array<char, 64> buffer{};
  const bool whole = value == std::floor(value) && std::fabs(value) < 1e15;
  (void)std::snprintf(buffer.data(), buffer.size(), whole ? "%.0f" : "%.3f", value);
  return buffer.data();
}

std::string format(const Metrics& metrics) {
  std::string out;
  const auto header = [&out](const Family& family) {
    out += std::string("# HELP ") + family.name + " " + family.help + "\n";
    out += std::string("# TYPE ") + family.name + " " + family.type + "\n";
  };
  header(k_runs);
  for (const auto& [resource, entry] : metrics) {
    for (const auto& [outcome, count] : entry.runs) {
      out += std::string(k_runs.name) + "{resource=\"" + label_value(resource) + "\",outcome=\"" +
             label_value(outcome) + "\"} " + number(count) + "\n";
    }
  }
  for (std::size_t g = 0; g < k_gauges.size(); ++g) {
    header(k_gauges[g]);
    for (const auto& [resource, entry] : metrics) {
      if (entry.gauges[g]) {
        out += std::string(k_gauges[g].name) + "{resource=\"" + label_value(resource) + "\"} " +
               number(*entry.gauges[g]) + "\n";
      }
    }
  }
  return out;
}

// Closes a descriptor when the scope ends.
struct Descriptor {
  int fd;
  explicit Descriptor(int descriptor) : fd(descriptor) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

std::string failure(const std::string& what, const std::string& path) {
  return what + " " + quoted(path) + ": " + std::strerror(errno);
}

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

} // namespace

std::string updated_metrics(std::string_view previous, const RunRecord& run) {
  Metrics metrics = parse(previous);
  for (const auto& resource : run.resources) {
    ResourceMetrics& entry = metrics[resource];
    entry.runs[run.outcome] += 1;
    entry.gauges[wait] = run.waited_seconds;
    entry.gauges[exit_status] = run.exit_status;
    if (run.started_at) {
      entry.gauges[start] = run.started_at;
    }
    if (run.held_seconds) {
      entry.gauges[duration] = run.held_seconds;
    }
    if (run.succeeded_at) {
      entry.gauges[success] = run.succeeded_at;
    }
  }
  return format(metrics);
}

std::optional<std::string> record_run(const std::string& dir, const RunRecord& run) {
  const std::string lock_path = dir + "/.loto.prom.lock";
  const std::string path = dir + "/loto.prom";
  const std::string temp_path = dir + "/.loto.prom." + std::to_string(::getpid()) + ".tmp";
  // The lock serialises the read-modify-write of all loto runs; rename() makes each
  // new file appear whole to node_exporter, which reads without the lock.
  const Descriptor lock(
      ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644));
  if (lock.fd < 0) {
    return failure("cannot open the metrics lock", lock_path);
  }
  while (::flock(lock.fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      return failure("cannot lock", lock_path);
    }
  }
  std::string previous;
  if (const Descriptor old(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
      old.fd >= 0) {
    struct stat st {};
    if (::fstat(old.fd, &st) == 0 && S_ISREG(st.st_mode)) {
      previous = read_to_end(old.fd, static_cast<std::size_t>(st.st_size), 16U << 20).value_or("");
    }
  } else if (errno != ENOENT) {
    return failure("cannot read", path);
  }
  const std::string text = updated_metrics(previous, run);
  {
    const Descriptor temp(::open(
        temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644));
    if (temp.fd < 0) {
      return failure("cannot create", temp_path);
    }
    // Mode 0644 whatever the umask: node_exporter runs as its own user.
    if (::fchmod(temp.fd, 0644) != 0 || !write_all(temp.fd, text)) {
      const std::string message = failure("cannot write", temp_path);
      ::unlink(temp_path.c_str());
      return message;
    }
  }
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    const std::string message = failure("cannot replace", path);
    ::unlink(temp_path.c_str());
    return message;
  }
  return std::nullopt;
}

} // namespace loto
