#include "report.hpp"

#include "error.hpp"
#include "text.hpp"

#include <algorithm>
#include <iomanip>

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
      const auto holder = backend.find_holder(resource.target);
      state = holder ? "held by " + describe_holder(*holder) : "free";
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

} // namespace loto
