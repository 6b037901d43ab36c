// The single immutable plan: command line + configuration merged in priority order.
#pragma once

#include "cli.hpp"
#include "config.hpp"
#include "duration.hpp"

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
};

// The cluster that etcd resources lock through.
struct EtcdPlan {
  std::vector<std::string> endpoints; // empty when the config has none
  Duration ttl = std::chrono::seconds(10);
  std::string prefix = "loto/";
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
  std::vector<LockTarget> locks; // sorted by canonical path, without duplicates
  std::string lock_names;        // the locks' names, comma-separated
  std::string lock_paths;        // the locks' paths, comma-separated
  // How long to wait for the locks in all: nullopt waits as long as it takes; 0 never waits.
  std::optional<Duration> wait_limit = Duration::zero();
  int conflict_exit_code = 75;
  bool inherit_lock = true; // the command's processes hold the lock too
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
