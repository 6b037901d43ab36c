#include "plan.hpp"

#include "build_info.hpp"
#include "error.hpp"
#include "text.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <map>

namespace loto {

namespace {

constexpr const char* k_builtin = "built-in";
constexpr const char* k_command_line = "command line";
// The resources that exist without any config file (a config may redefine them).
constexpr std::array<std::pair<const char*, const char*>, 2> k_builtin_resources{{
    {"cpu", "processor-heavy batch jobs, one at a time"},
    {"net", "bandwidth-heavy transfers, one at a time"},
}};

// The effective value of one setting as the layers are applied in priority order.
template <typename T> struct Layered {
  T value;
  std::string origin = k_builtin;

  void apply(const std::optional<Sourced<T>>& setting) {
    if (setting) {
      value = setting->value;
      origin = setting->origin;
    }
  }
  void apply_command_line(const T& new_value) {
    value = new_value;
    origin = k_command_line;
  }
};

// How long to wait, decided layer by layer in priority order: `wait: false` stops waiting
// whatever lower layers said; `wait: true` waits, still bounded by a lower layer's
// timeout; a timeout sets the bound and implies waiting (0: do not wait).
struct WaitLimit {
  std::optional<Duration> value = Duration::zero(); // nullopt: as long as it takes
  std::string origin = k_builtin;

  void apply(const std::optional<bool>& wait,
             const std::optional<Duration>& timeout,
             const std::string& layer_origin) {
    if (wait) {
      if (!*wait) {
        value = Duration::zero();
      } else if (value == Duration::zero()) {
        value = std::nullopt;
      }
      origin = layer_origin;
    }
    if (timeout) {
      value = timeout;
      origin = layer_origin;
    }
  }
  void apply(const PolicySettings& policy) {
    const std::optional<bool> wait =
        policy.wait ? std::optional<bool>(policy.wait->value) : std::nullopt;
    const std::optional<Duration> timeout =
        policy.timeout ? std::optional<Duration>(policy.timeout->value) : std::nullopt;
    apply(wait,
          timeout,
          policy.timeout ? policy.timeout->origin
          : policy.wait  ? policy.wait->origin
                         : "");
  }
};

// The directory part resolved through symlinks, so that two spellings of one file sort
// and compare as one; the last component is kept as is (it must not be a symlink).
std::string canonical_lock_path(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return path;
  }
  const std::string base = path.substr(slash + 1);
  const std::string resolved_dir = resolved;
  return (resolved_dir == "/" ? "" : resolved_dir) + "/" + base;
}

// The TLS and authentication settings of the etcd section, checked as a whole.
void add_etcd_access(const EtcdSettings& settings, EtcdPlan& etcd) {
  check_etcd_settings(settings);
  const auto value = [](const std::optional<Sourced<std::string>>& setting) {
    return setting ? setting->value : std::string();
  };
  etcd.ca_file = value(settings.ca_file);
  etcd.cert_file = value(settings.cert_file);
  etcd.key_file = value(settings.key_file);
  etcd.user = value(settings.user);
  etcd.password_file = value(settings.password_file);
  etcd.positions = settings.positions;
}

// --show-config's lines for those that are set.
void append_etcd_access_settings(const EtcdSettings& settings, std::vector<SettingView>& views) {
  using Entry = std::pair<const char*, const std::optional<Sourced<std::string>>*>;
  const std::array<Entry, 5> keys{{{"etcd.ca_file", &settings.ca_file},
                                   {"etcd.cert_file", &settings.cert_file},
                                   {"etcd.key_file", &settings.key_file},
                                   {"etcd.user", &settings.user},
                                   {"etcd.password_file", &settings.password_file}}};
  for (const auto& [key, setting] : keys) {
    if (*setting) {
      views.push_back({key, (*setting)->value, (*setting)->origin});
    }
  }
}

EtcdPlan make_etcd_plan(const EtcdSettings& settings) {
  EtcdPlan etcd;
  if (settings.endpoints) {
    etcd.endpoints = settings.endpoints->value;
  }
  if (settings.ttl) {
    etcd.ttl = settings.ttl->value;
  }
  if (settings.prefix) {
    etcd.prefix = settings.prefix->value;
  }
  add_etcd_access(settings, etcd);
  return etcd;
}

// The etcd: settings for --show-config, shown only when the config has an etcd: section.
void append_etcd_settings(const EtcdSettings& settings,
                          const EtcdPlan& etcd,
                          std::vector<SettingView>& views) {
  if (!settings.endpoints && !settings.ttl && !settings.prefix) {
    return;
  }
  const auto origin = [](const auto& setting) {
    return setting ? setting->origin : std::string(k_builtin);
  };
  views.push_back({"etcd.endpoints", join(etcd.endpoints, ","), origin(settings.endpoints)});
  views.push_back({"etcd.ttl", format_duration(etcd.ttl), origin(settings.ttl)});
  views.push_back({"etcd.prefix", etcd.prefix, origin(settings.prefix)});
  append_etcd_access_settings(settings, views);
}

// Whether waiters queue in order of arrival: the resource's `queue:`, else `defaults:`.
// fifo unless set otherwise: bench/ measured its handoff no slower and its throughput no
// lower than the kernel's unordered wake-up (README, Performance).
bool queue_is_fifo(const PolicySettings* resource, const PolicySettings& defaults) {
  if (resource != nullptr && resource->queue) {
    return resource->queue->value == "fifo";
  }
  return !defaults.queue || defaults.queue->value == "fifo";
}

// `slots: auto`: one per online CPU, within the bounds a config value has.
int slot_count(const Sourced<int>& slots) {
  if (slots.value != 0) {
    return slots.value;
  }
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(std::clamp<long>(cpus, 1, k_max_slots));
}

// The lock of resource `name`: its lock file(s), or its etcd lock.
LockTarget target_of(const std::string& name,
                     const ResourceConfig& resource,
                     const std::string& lock_dir,
                     const EtcdPlan& etcd,
                     const PolicySettings& defaults) {
  if (resource.backend && resource.backend->value == "etcd") {
    if (etcd.endpoints.empty()) {
      throw Error(exit_code::config,
                  resource.backend_position + ": resource " + quoted(name) +
                      " uses backend etcd, but no etcd endpoints are set; add an etcd: "
                      "section with endpoints: [http://HOST:2379, ...]");
    }
    if (resource.slots && resource.slots->value == 0) {
      // The CPUs of whichever host came first would set the fleet's bound.
      throw Error(exit_code::config,
                  resource.slots_position + ": resource " + quoted(name) +
                      " uses backend etcd, where slots: auto has no meaning (it counts this "
                      "host's CPUs); give a number from 1 to " +
                      std::to_string(k_max_slots));
    }
    const std::string lock_name = etcd.prefix + name;
    LockTarget target{name, "etcd:" + lock_name, LockKind::etcd, lock_name};
    target.slots = resource.slots ? resource.slots->value : 1;
    return target;
  }
  LockTarget target{
      name, resource.path ? resource.path->value : lock_dir + "/loto." + name, LockKind::flock, ""};
  target.slots = resource.slots ? slot_count(*resource.slots) : 1;
  target.fifo = queue_is_fifo(&resource.policy, defaults);
  return target;
}

// The slots and queue of one local lock, for --show-config.
void append_queue_settings(const LockTarget& lock,
                           const ResourceConfig* resource,
                           const PolicySettings& defaults,
                           std::vector<SettingView>& views) {
  std::string slots_origin = k_builtin;
  if (resource != nullptr && resource->slots) {
    slots_origin = resource->slots->origin;
  }
  std::string queue_origin = k_builtin;
  if (resource != nullptr && resource->policy.queue) {
    queue_origin = resource->policy.queue->origin;
  } else if (defaults.queue) {
    queue_origin = defaults.queue->origin;
  }
  views.push_back({"slots " + lock.name, std::to_string(lock.slots), slots_origin});
  views.push_back({"queue " + lock.name, lock.fifo ? "fifo" : "none", queue_origin});
}

// The slots of one lock, and the queue of a local one, for --show-config.
void append_policy_settings(const LockTarget& lock,
                            const ResourceConfig* resource,
                            const PolicySettings& defaults,
                            std::vector<SettingView>& views) {
  if (lock.kind == LockKind::flock) {
    append_queue_settings(lock, resource, defaults, views);
    return;
  }
  const bool set = resource != nullptr && resource->slots;
  views.push_back({"slots " + lock.name,
                   std::to_string(lock.slots),
                   set ? resource->slots->origin : std::string(k_builtin)});
}

// -s: every lock shared, where a lock has a shared mode (one slot, local).
void take_shared(std::vector<LockTarget>& locks, bool shared) {
  for (auto& lock : locks) {
    lock.shared = shared;
    if (!shared) {
      continue;
    }
    if (lock.slots > 1) {
      throw Error(exit_code::usage,
                  "resource " + quoted(lock.name) + " has " + std::to_string(lock.slots) +
                      " slots, which are not taken shared (drop -s)");
    }
    if (lock.kind == LockKind::etcd) {
      throw Error(exit_code::usage,
                  "resource " + quoted(lock.name) +
                      " is an etcd lock, which has no shared mode (drop -s, or use a local "
                      "resource)");
    }
  }
}

// One global order, by canonical path (etcd locks by name, after the paths), without
// duplicates, so that two loto runs never deadlock, on one host or across a fleet.
std::vector<LockTarget> in_global_order(std::vector<LockTarget> locks) {
  std::vector<std::pair<std::string, LockTarget>> ordered;
  for (auto& lock : locks) {
    std::string key = lock.kind == LockKind::etcd ? lock.path : canonical_lock_path(lock.path);
    ordered.emplace_back(std::move(key), std::move(lock));
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.first < b.first;
  });
  std::vector<LockTarget> unique;
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (i == 0 || ordered[i].first != ordered[i - 1].first) {
      unique.push_back(std::move(ordered[i].second));
    }
  }
  return unique;
}

// The limits on the running job, layer by layer, and their --show-config lines.
JobLimits make_job_limits(const CliOptions& cli,
                          const PolicySettings& defaults,
                          const PolicySettings* resource,
                          std::vector<SettingView>& views) {
  Layered<std::optional<Duration>> max_runtime{std::nullopt};
  Layered<Duration> kill_after{JobLimits{}.kill_after};
  Layered<std::optional<Duration>> warn_after{std::nullopt};
  Layered<std::string> leftovers{"leave"};
  const auto apply = [&](const PolicySettings& policy) {
    const auto apply_optional = [](auto& layered, const auto& setting) {
      if (setting) {
        layered.value = setting->value;
        layered.origin = setting->origin;
      }
    };
    apply_optional(max_runtime, policy.max_runtime);
    kill_after.apply(policy.kill_after);
    apply_optional(warn_after, policy.warn_after);
    leftovers.apply(policy.leftovers);
  };
  apply(defaults);
  if (resource != nullptr) {
    apply(*resource);
  }
  if (cli.max_runtime) {
    max_runtime.apply_command_line(cli.max_runtime);
  }
  if (cli.kill_after) {
    kill_after.apply_command_line(*cli.kill_after);
  }
  if (cli.leftovers) {
    leftovers.apply_command_line(*cli.leftovers);
  }
  const auto shown = [](const std::optional<Duration>& value) {
    return value ? format_duration(*value) : std::string("none");
  };
  views.push_back({"max_runtime", shown(max_runtime.value), max_runtime.origin});
  views.push_back({"kill_after", format_duration(kill_after.value), kill_after.origin});
  views.push_back({"warn_after", shown(warn_after.value), warn_after.origin});
  views.push_back({"leftovers", leftovers.value, leftovers.origin});
  return {max_runtime.value,
          kill_after.value,
          warn_after.value,
          parse_leftover_mode(leftovers.value).value_or(LeftoverMode::leave)};
}

} // namespace

std::string describe_wait(const std::optional<Duration>& limit) {
  if (!limit) {
    return "wait";
  }
  return *limit == Duration::zero() ? "no wait" : "wait up to " + format_duration(*limit);
}

ConfigSource choose_config_source(const CliOptions& cli,
                                  const std::vector<std::string>& environment) {
  if (cli.config_path) {
    return {*cli.config_path, true};
  }
  for (const auto& entry : environment) {
    if (entry.starts_with("LOTO_CONFIG=") && entry.size() > 12) {
      return {entry.substr(12), true};
    }
  }
  return {k_default_config_path, false};
}

Plan make_plan(const CliOptions& cli,
               const Config& config,
               const std::vector<std::string>& environment) {
  Plan plan;
  plan.action = cli.action;
  plan.online = cli.online;
  plan.command = cli.command;
  plan.config_files = join(config.files, ", ");

  // Priority, lowest first: 1. built-in, 2. `defaults:`, 3. the resource, 4. command line.
  Layered<std::string> lock_dir{k_default_lock_dir};
  lock_dir.apply(config.lock_dir);

  // Every resource: the built-in ones, then the configured ones (which may redefine them).
  std::map<std::string, ResourceConfig> resources;
  for (const auto& [name, description] : k_builtin_resources) {
    resources[name].origin = k_builtin;
    resources[name].description = description;
  }
  for (const auto& [name, resource] : config.resources) {
    resources[name] = resource;
  }
  std::vector<std::string> resource_names;
  for (const auto& entry : resources) {
    resource_names.push_back(entry.first);
  }
  const EtcdPlan etcd = make_etcd_plan(config.etcd);
  const auto resource_target = [&](const std::string& name, const ResourceConfig& resource) {
    return target_of(name, resource, lock_dir.value, etcd, config.defaults);
  };

  // The locks, as named on the command line; resource settings come from the first one.
  const ResourceConfig* first_resource = nullptr;
  std::vector<LockTarget> locks;
  for (const auto& value : cli.locks) {
    if (value.find('/') != std::string::npos) {
      if (const auto problem = path_problem(value)) {
        throw Error(exit_code::usage,
                    "invalid lock path " + quoted(value) + ": it " + *problem +
                        " (use an absolute path, or a resource name)");
      }
      LockTarget target{value, value, LockKind::flock, ""};
      target.fifo = queue_is_fifo(nullptr, config.defaults);
      locks.push_back(target);
      continue;
    }
    if (!is_valid_resource_name(value)) {
      throw Error(
          exit_code::usage,
          "invalid resource name " + quoted(value) +
              " (a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -; paths contain '/')");
    }
    const auto it = resources.find(value);
    if (it == resources.end()) {
      throw Error(exit_code::usage,
                  "unknown resource " + quoted(value) + did_you_mean(value, resource_names) +
                      " (known: " + join(resource_names, ", ") + "; define it in " +
                      (plan.config_files.empty() ? k_default_config_path : plan.config_files) +
                      ")");
    }
    if (first_resource == nullptr) {
      first_resource = &it->second;
    }
    locks.push_back(resource_target(value, it->second));
  }

  plan.locks = in_global_order(std::move(locks));
  take_shared(plan.locks, cli.shared);

  Layered<bool> wait{false};
  Layered<std::optional<Duration>> timeout{std::nullopt};
  Layered<int> conflict_code{cli.quiet ? 0 : exit_code::busy};
  Layered<bool> inherit_lock{true};
  const auto apply_policy = [&](const PolicySettings& policy) {
    wait.apply(policy.wait);
    if (policy.timeout) {
      timeout.value = policy.timeout->value;
      timeout.origin = policy.timeout->origin;
    }
    conflict_code.apply(policy.conflict_exit_code);
    inherit_lock.apply(policy.inherit_lock);
  };
  apply_policy(config.defaults);
  if (first_resource != nullptr) {
    apply_policy(first_resource->policy);
  }
  if (cli.wait) {
    wait.apply_command_line(true);
  }
  if (cli.timeout) {
    timeout.apply_command_line(cli.timeout);
  }
  if (cli.conflict_exit_code) {
    conflict_code.apply_command_line(*cli.conflict_exit_code);
  }
  if (cli.close_lock) {
    inherit_lock.apply_command_line(false);
  }
  WaitLimit limit;
  limit.apply(config.defaults);
  if (first_resource != nullptr) {
    limit.apply(first_resource->policy);
  }
  limit.apply(cli.wait ? std::optional<bool>(true) : std::nullopt, cli.timeout, k_command_line);
  plan.wait_limit = limit.value;
  plan.conflict_exit_code = conflict_code.value;
  plan.inherit_lock = inherit_lock.value;
  plan.etcd = etcd;
  Layered<std::string> metrics_dir{""};
  metrics_dir.apply(config.metrics_dir);
  plan.metrics_dir = metrics_dir.value;

  Layered<bool> syslog{true};
  Layered<std::string> facility{"user"};
  Layered<std::string> ident{"loto"};
  Layered<std::string> level{"info"};
  syslog.apply(config.logging.syslog);
  facility.apply(config.logging.facility);
  ident.apply(config.logging.ident);
  level.apply(config.logging.level);
  // The live waiting line needs a terminal that can go back to the line's start.
  const bool dumb_terminal =
      std::find(environment.begin(), environment.end(), "TERM=dumb") != environment.end();
  plan.log = {syslog.value,
              facility.value,
              ident.value,
              level.value,
              cli.verbosity,
              cli.quiet,
              !cli.quiet && !dumb_terminal};

  const auto on_off = [](bool value) { return std::string(value ? "true" : "false"); };
  plan.settings = {
      {"lock_dir", lock_dir.value, lock_dir.origin},
      {"wait", on_off(wait.value), wait.origin},
      {"timeout", timeout.value ? format_duration(*timeout.value) : "none", timeout.origin},
      {"waiting", describe_wait(limit.value), limit.origin},
      {"conflict_exit_code", std::to_string(conflict_code.value), conflict_code.origin},
      {"inherit_lock", on_off(inherit_lock.value), inherit_lock.origin},
      {"metrics_dir", metrics_dir.value.empty() ? "none" : metrics_dir.value, metrics_dir.origin},
      {"logging.syslog", on_off(syslog.value), syslog.origin},
      {"logging.facility", facility.value, facility.origin},
      {"logging.ident", ident.value, ident.origin},
      {"logging.level", level.value, level.origin},
  };
  plan.shared = cli.shared;
  plan.settings.push_back(
      {"mode", cli.shared ? "shared" : "exclusive", cli.shared ? k_command_line : k_builtin});
  plan.limits = make_job_limits(cli,
                                config.defaults,
                                first_resource != nullptr ? &first_resource->policy : nullptr,
                                plan.settings);
  append_etcd_settings(config.etcd, etcd, plan.settings);
  for (const auto& lock : plan.locks) {
    const auto it = resources.find(lock.name);
    const bool named = lock.name.find('/') == std::string::npos;
    std::string origin = k_command_line;
    if (lock.kind == LockKind::etcd) {
      origin = it->second.backend->origin;
    } else if (named && it->second.path) {
      origin = it->second.path->origin;
    } else if (named) {
      origin = lock_dir.origin == k_builtin ? k_builtin : "lock_dir at " + lock_dir.origin;
    }
    plan.settings.push_back({"lock " + lock.name, lock.path, origin});
    append_policy_settings(lock, named ? &it->second : nullptr, config.defaults, plan.settings);
  }

  for (const auto& [name, resource] : resources) {
    WaitLimit resource_limit;
    resource_limit.apply(config.defaults);
    resource_limit.apply(resource.policy);
    LockTarget target = resource_target(name, resource);
    std::string policy = describe_wait(resource_limit.value);
    if (target.slots > 1) {
      policy += ", " + std::to_string(target.slots) + " slots";
    }
    if (!target.fifo && target.kind == LockKind::flock) {
      policy += ", unordered"; // queue: none; fifo, the default, goes without saying
    }
    plan.resources.push_back({std::move(target),
                              name,
                              policy,
                              resource.description,
                              resource.origin,
                              resource_limit.value});
  }

  // The command's environment: the caller's, with loto's own variables replaced.
  std::vector<std::string> names;
  std::vector<std::string> paths;
  for (const auto& lock : plan.locks) {
    names.push_back(lock.name);
    paths.push_back(lock.path);
  }
  plan.lock_names = join(names, ",");
  plan.lock_paths = join(paths, ",");
  for (const auto& entry : environment) {
    // The fleet lock's variables come from the executor, and only for a run that holds
    // one: a value inherited from an outer loto would name another lock.
    if (!entry.starts_with("LOTO_RESOURCE=") && !entry.starts_with("LOTO_LOCKFILE=") &&
        !entry.starts_with("LOTO_FENCING_TOKEN=") && !entry.starts_with("LOTO_ETCD_LEASE=") &&
        !entry.starts_with("LOTO_SLOT=")) {
      plan.command_environment.push_back(entry);
    }
  }
  plan.command_environment.push_back("LOTO_RESOURCE=" + plan.lock_names);
  plan.command_environment.push_back("LOTO_LOCKFILE=" + plan.lock_paths);
  return plan;
}

} // namespace loto
