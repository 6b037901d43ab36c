// The configuration files: YAML text -> Config, plain data with the origin of every value.
#pragma once

#include "duration.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto {

// What loto does with processes the job's main process leaves behind when it exits
// (`leftovers:` and --leftovers), and its names there, in this order.
enum class LeftoverMode { leave, wait, kill };
std::vector<std::string> leftover_mode_names();
const char* leftover_mode_name(LeftoverMode mode);
std::optional<LeftoverMode> parse_leftover_mode(std::string_view name);

// Most holders a resource may allow at once (slots: N): one lock file each.
inline constexpr int k_max_slots = 128;

// A value and where it was set, e.g. "/etc/loto.yaml:12".
template <typename T> struct Sourced {
  T value{};
  std::string origin;
};

// Settings that `defaults:` and each resource may set; unset ones are nullopt.
struct PolicySettings {
  std::optional<Sourced<bool>> wait;
  std::optional<Sourced<Duration>> timeout;
  std::optional<Sourced<int>> conflict_exit_code;
  std::optional<Sourced<bool>> inherit_lock;
  // Limits on the job once it runs.
  std::optional<Sourced<Duration>> max_runtime;  // then SIGTERM to every process of the job
  std::optional<Sourced<Duration>> kill_after;   // SIGTERM to SIGKILL
  std::optional<Sourced<Duration>> warn_after;   // one `overdue` record, the job runs on
  std::optional<Sourced<std::string>> leftovers; // leave, wait or kill
  std::optional<Sourced<std::string>> queue;     // fifo or none: how waiters are ordered
};

struct ResourceConfig {
  std::optional<Sourced<std::string>> path;    // absolute; default <lock_dir>/loto.NAME
  std::optional<Sourced<std::string>> backend; // "flock" (default) or "etcd"
  std::string backend_position;                // FILE:LINE:COL of the backend value
  // How many may hold it at once; 0 stands for `auto`, the number of online CPUs.
  std::optional<Sourced<int>> slots;
  std::string slots_position; // FILE:LINE:COL of the slots value
  PolicySettings policy;
  std::string description;
  std::string origin; // where the resource was defined
};

struct LoggingSettings {
  std::optional<Sourced<bool>> syslog;
  std::optional<Sourced<std::string>> facility; // a name from syslog_facilities() (log.hpp)
  std::optional<Sourced<std::string>> ident;
  std::optional<Sourced<std::string>> level; // a name from log_levels() (log.hpp)
};

// The `etcd:` section: the cluster that resources with `backend: etcd` lock through.
struct EtcdSettings {
  std::optional<Sourced<std::vector<std::string>>> endpoints; // http:// or https:// URLs
  std::optional<Sourced<Duration>> ttl;                       // the lease's time to live
  std::optional<Sourced<std::string>> prefix;                 // lock name = prefix + resource
  // TLS for https endpoints, and etcd's own authentication. Files are absolute paths.
  std::optional<Sourced<std::string>> ca_file;       // the cluster's CA; default: the system's
  std::optional<Sourced<std::string>> cert_file;     // client certificate, with key_file
  std::optional<Sourced<std::string>> key_file;      // its private key (a secret)
  std::optional<Sourced<std::string>> user;          // etcd user, with password_file
  std::optional<Sourced<std::string>> password_file; // first line: the password (a secret)
  // FILE:LINE:COL of each of those five values, by key ("key_file"), for messages.
  std::map<std::string, std::string> positions;
};

struct Config {
  std::optional<Sourced<std::string>> lock_dir;
  std::optional<Sourced<std::string>> metrics_dir; // node_exporter's textfile directory
  EtcdSettings etcd;
  PolicySettings defaults;
  LoggingSettings logging;
  std::map<std::string, ResourceConfig> resources;
  std::vector<std::string> files; // the files read, in order
};

// Where the configuration comes from: the system file, or one the user named.
struct ConfigSource {
  std::string path;
  bool must_exist = false; // --config or LOTO_CONFIG: a missing file is an error
};

// Parses one file's text; `file_name` prefixes every message as "FILE:LINE:COL: ...".
// Throws Error(config) on any syntax, type or value problem.
Config parse_config(std::string_view text, const std::string& file_name);

// Adds `later` (a drop-in) to `base`: later settings override earlier ones, and a resource
// defined in both is an error naming both places.
void merge_config(Config& base, Config later);

// Reads the file and its drop-ins (FILE without ".yaml", plus ".d/*.yaml", in name
// order), checking that each is a trusted regular file. A missing system file gives an
// empty Config, so the built-in defaults serve. Throws Error(config).
Config load_config(const ConfigSource& source);

// The text of a config file, after the trust checks: a regular file of at most 1 MiB,
// owned by root or by the running user, not writable by group or others.
std::string read_trusted_file(const std::string& path);

// The etcd settings that go together, checked once every file is merged: cert_file with
// key_file, user with password_file, and TLS files only with https:// endpoints. Throws
// Error(config) at the position of the setting that is wrong.
void check_etcd_settings(const EtcdSettings& etcd);

// A file loto's etcd helper will read: it must pass the config files' trust checks (a
// regular file owned by root or the running user, not writable by group or others, in
// directories only they can write) and, if `secret`, must not be readable by group or
// others either. `key` names the setting ("etcd.key_file"), `position` is where it was
// set (FILE:LINE:COL). Throws Error(config) naming the rule that failed.
void check_etcd_file(const std::string& path,
                     const std::string& key,
                     const std::string& position,
                     bool secret);

} // namespace loto
