#include "report.hpp"

#include "error.hpp"
#include "text.hpp"

#include <algorithm>
#include <iomanip>
#include <string_view>

namespace loto {

void print_check(const Plan& plan, std::ostream& out) {
  out << "configuration OK: "
      << (plan.config_files.empty() ? "no config file, built-in defaults" : plan.config_files)
      << " (" << plan.resources.size() << " resources)\n";
}

int print_online_check(const Plan& plan, std::ostream& out) {
  // Which failure the exit status reports when several resources fail.
  const auto rank = [](int code) {
    switch (code) {
    case exit_code::config:
      return 4;
    case exit_code::unsafe:
      return 3;
    case exit_code::unavailable:
      return 2;
    default:
      return code == 0 ? 0 : 1;
    }
  };
  int status = 0;
  int checked = 0;
  for (const auto& resource : plan.resources) {
    if (resource.target.kind != LockKind::etcd) {
      continue;
    }
    ++checked;
    const EtcdCheck check = check_etcd_online(plan.etcd, resource.target);
    out << "etcd resource " << loto::quoted(resource.name) << " (lock "
        << loto::quoted(resource.target.etcd_name) << "): "
        << (check.exit_code == 0 ? "OK, "
                                 : "FAILED (exit " + std::to_string(check.exit_code) + "): ")
        << check.message << "\n";
    if (rank(check.exit_code) > rank(status)) {
      status = check.exit_code;
    }
  }
  if (checked == 0) {
    out << "no etcd resources to check online\n";
  }
  return status;
}

void print_settings(const Plan& plan, std::ostream& out) {
  for (const auto& setting : plan.settings) {
    out << "(" << setting.origin << ") " << setting.key << " = " << escape(setting.value) << "\n";
  }
}

void print_resources(const Plan& plan, const LockBackend& backend, std::ostream& out) {
  std::size_t name_width = 4;
  std::size_t path_width = 4;
  std::size_t policy_width = 6;
  std::size_t description_width = 11;
  for (const auto& resource : plan.resources) {
    name_width = std::max(name_width, resource.name.size());
    path_width = std::max(path_width, escape(resource.target.path).size());
    policy_width = std::max(policy_width, resource.policy.size());
    description_width = std::max(description_width, escape(resource.description).size());
  }
  // The state goes last: it is the one column of unbounded width.
  const auto row = [&](const std::string& name,
                       const std::string& path,
                       const std::string& policy,
                       const std::string& description,
                       const std::string& state) {
    out << std::left << std::setw(static_cast<int>(name_width)) << name << "  "
        << std::setw(static_cast<int>(path_width)) << path << "  "
        << std::setw(static_cast<int>(policy_width)) << policy << "  "
        << std::setw(static_cast<int>(description_width)) << description << "  " << state << "\n";
  };
  row("NAME", "LOCK", "POLICY", "DESCRIPTION", "STATE");
  for (const auto& resource : plan.resources) {
    std::string state;
    try {
      state = describe_state(backend.inspect(resource.target));
    } catch (const Error& error) {
      state = std::string("unknown: ") + error.what();
    }
    row(resource.name,
        escape(resource.target.path),
        resource.policy,
        escape(resource.description),
        state);
  }
}

namespace {

// A string as JSON, or null when it is empty (not known).
std::string json_or_null(std::string_view text) {
  return text.empty() ? "null" : json_string(text);
}

// {"pid": 42, "user": "root", "command": "sleep 10", "since": "...", "mode": "shared"},
// with "host" and "description" where the backend gives them (fleet locks).
std::string json_party(const LockParty& party) {
  std::string text = "{\"pid\": ";
  text += party.pid > 0 ? std::to_string(party.pid) : "null";
  if (!party.host.empty()) {
    text += ", \"host\": " + json_string(party.host);
  }
  text += ", \"user\": " + json_or_null(party.user);
  text += ", \"command\": " + json_or_null(party.command);
  text += ", \"since\": " + json_or_null(party.since);
  text += ", \"mode\": " + json_or_null(party.mode);
  if (party.slot >= 0) {
    text += ", \"slot\": " + std::to_string(party.slot);
  }
  if (!party.description.empty()) {
    text += ", \"description\": " + json_string(party.description);
  }
  return text + "}";
}

std::string json_parties(const std::vector<LockParty>& parties) {
  std::string text = "[";
  for (std::size_t i = 0; i < parties.size(); ++i) {
    text += (i == 0 ? "" : ", ") + json_party(parties[i]);
  }
  return text + "]";
}

// "state", "holders", "waiters", "waiting" (and "error") of one resource.
std::string json_state(const ResourceView& resource, const LockBackend& backend) {
  LockState state;
  try {
    state = backend.inspect(resource.target);
  } catch (const Error& error) {
    return R"("state": "unknown", "error": )" + json_string(error.what()) +
           R"(, "holders": null, "waiters": null, "waiting": null)";
  }
  const std::size_t waiting =
      state.waiters_listed ? state.waiters.size() : static_cast<std::size_t>(state.waiting);
  return std::string("\"state\": ") + (state.holders.empty() ? "\"free\"" : "\"held\"") +
         ", \"holders\": " + json_parties(state.holders) +
         ", \"waiters\": " + (state.waiters_listed ? json_parties(state.waiters) : "null") +
         ", \"waiting\": " + std::to_string(waiting);
}

} // namespace

std::string json_seconds(Duration duration) {
  const auto nanoseconds = duration.count();
  std::string text = std::to_string(nanoseconds / 1'000'000'000);
  std::string fraction = std::to_string(nanoseconds % 1'000'000'000);
  if (fraction != "0") {
    fraction.insert(0, 9 - fraction.size(), '0');
    fraction.erase(fraction.find_last_not_of('0') + 1);
    text += "." + fraction;
  }
  return text;
}

void print_resources_json(const Plan& plan, const LockBackend& backend, std::ostream& out) {
  out << "{\"resources\": [";
  const char* separator = "\n";
  for (const auto& resource : plan.resources) {
    const bool etcd = resource.target.kind == LockKind::etcd;
    const bool waits = resource.wait_limit != Duration::zero();
    out << separator << "  {\"name\": " << json_string(resource.name)
        << ", \"backend\": " << (etcd ? "\"etcd\"" : "\"flock\"")
        << ", \"lock\": " << json_string(etcd ? resource.target.etcd_name : resource.target.path)
        << ", \"policy\": " << json_string(resource.policy)
        << ", \"wait\": " << (waits ? "true" : "false") << ", \"timeout_seconds\": "
        << (resource.wait_limit ? json_seconds(*resource.wait_limit) : "null")
        << ", \"description\": " << json_string(resource.description)
        << ", \"origin\": " << json_string(resource.origin) << ", " << json_state(resource, backend)
        << "}";
    separator = ",\n";
  }
  out << "\n]}\n";
}

} // namespace loto
