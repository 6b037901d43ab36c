// The single immutable plan: command line + configuration merged in priority order.
#pragma once

#include "cli.hpp"
#include "config.hpp"
#include "duration.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loto {

enum class LockKind { flock, etcd };

// One lock to take.
struct LockTarget {
  std::string name; // resource name, or the path as given with -L
  // flock: the absolute path of the lock file. etcd: "etcd:" + the lock name, which is how
  // messages and records show it and how it sorts among the other locks.
  std::string path;
  LockKind kind = LockKind::flock;
  std::string etcd_name; // etcd: <prefix><resource name>, the etcdctl lock name
  bool shared = false;   // flock: LOCK_SH, with other shared holders (-s)
  // How many may hold it at once. flock: slot 0 is `path` itself, slot N is `path.N`;
  // etcd: the first N keys of the queue hold, each with a slot key (etcd/protocol.hpp).
  int slots = 1;
  bool fifo = false; // flock: waiters are served in the order they came (queue: fifo)
};

// The cluster that etcd resources lock through.
struct EtcdPlan {
  std::vector<std::string> endpoints; // empty when the config has none
  Duration ttl = std::chrono::seconds(10);
  std::string prefix = "loto/";
  // TLS and authentication; empty: not set. The helper gets the paths, never the secrets.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string user;
  std::string password_file;
  // FILE:LINE:COL where each of those was set, by key ("key_file"), for messages.
  std::map<std::string, std::string> positions;
};

// Limits on the job while it runs.
struct JobLimits {
  std::optional<Duration> max_runtime; // then SIGTERM to every process of the job, exit 124
  Duration kill_after = std::chrono::seconds(10); // SIGTERM to SIGKILL
  std::optional<Duration> warn_after;             // one `overdue` record; the job runs on
  LeftoverMode leftovers = LeftoverMode::leave;
};

struct LogPlan {
  bool syslog = true;
  std::string facility = "user";
  std::string ident = "loto";
  std::string level = "info"; // syslog threshold
  int verbosity = 0;          // -v count
  bool quiet = false;
  bool live_status = true; // a waiting line on a terminal: not with -q or TERM=dumb
};

// One effective setting and where it came from, for --show-config.
struct SettingView {
  std::string key;
  std::string value;
  std::string origin;
};

// One resource as --list shows it.
struct ResourceView {
  LockTarget target; // target.path is the LOCK column
  std::string name;
  std::string policy; // "no wait", "wait", "wait up to 5m"
  std::string description;
  std::string origin;
  std::optional<Duration> wait_limit = Duration::zero(); // as Plan::wait_limit
};

struct Plan {
  Action action = Action::run;
  bool online = false;           // --check-config --online
  std::vector<LockTarget> locks; // sorted by canonical path, without duplicates
  std::string lock_names;        // the locks' names, comma-separated
  std::string lock_paths;        // the locks' paths, comma-separated
  // How long to wait for the locks in all: nullopt waits as long as it takes; 0 never waits.
  std::optional<Duration> wait_limit = Duration::zero();
  int conflict_exit_code = 75;
  bool inherit_lock = true; // the command's processes hold the lock too
  bool shared = false;      // -s: shared with other shared holders, excluding exclusive ones
  JobLimits limits;
  EtcdPlan etcd;
  std::string metrics_dir; // where loto.prom goes; empty: no metrics
  LogPlan log;
  std::vector<std::string> command;
  std::vector<std::string> command_environment; // NAME=VALUE for the command
  std::string config_files;                     // what was read, for messages
  std::vector<SettingView> settings;
  std::vector<ResourceView> resources;
};

// A wait limit as people read it: "no wait", "wait", "wait up to 5m".
std::string describe_wait(const std::optional<Duration>& limit);

// Which config file to read: --config, else LOTO_CONFIG, else the system file.
ConfigSource choose_config_source(const CliOptions& cli,
                                  const std::vector<std::string>& environment);

// Merges built-in defaults, `defaults:`, the resource's own settings and the command line,
// in that priority order, and validates the result. `environment` is the caller's
// environment (NAME=VALUE); the command gets it plus LOTO_RESOURCE and LOTO_LOCKFILE.
// Throws Error(usage) for unknown or invalid resources.
Plan make_plan(const CliOptions& cli,
               const Config& config,
               const std::vector<std::string>& environment);

} // namespace loto
