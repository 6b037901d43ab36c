// libFuzzer target: config file text -> loto::parse_config.
//
// Contract (issue 2): parsing returns a Config or throws loto::Error; it never hangs and never
// aborts. Any other exception, a sanitizer report or a broken invariant below is a crash.
// A Config that parsed is then fed to make_plan(), which may only throw loto::Error too.
#include "cli.hpp"
#include "config.hpp"
#include "error.hpp"
#include "log.hpp"
#include "plan.hpp"
#include "text.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

const std::string k_file = "fuzz.yaml";

// A broken invariant is a bug: abort so libFuzzer (or the replay driver) reports it.
void require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

// An error message is one printable line: every control character and invalid UTF-8 byte
// from the file must arrive escaped (it goes to stderr and syslog as is).
bool is_one_clean_line(std::string_view message) {
  return !loto::find_invalid_utf8(message) &&
         std::none_of(message.begin(), message.end(), [](char c) {
           const auto byte = static_cast<unsigned char>(c);
           return byte < 0x20 || byte == 0x7f;
         });
}

// "fuzz.yaml: ..." or "fuzz.yaml:LINE:COL: ...", LINE at most one past the last line.
bool has_valid_position(std::string_view message, std::string_view text) {
  if (!message.starts_with(k_file)) {
    return false;
  }
  message.remove_prefix(k_file.size());
  if (message.starts_with(": ")) {
    return true;
  }
  const auto number = [&message]() -> long {
    if (message.empty() || message.front() != ':') {
      return -1;
    }
    message.remove_prefix(1);
    long value = 0;
    std::size_t digits = 0;
    while (digits < message.size() && digits < 9 && message[digits] >= '0' &&
           message[digits] <= '9') {
      value = value * 10 + (message[digits] - '0');
      ++digits;
    }
    message.remove_prefix(digits);
    return digits == 0 ? -1 : value;
  };
  const long line = number();
  const long column = number();
  const auto lines = static_cast<long>(std::count(text.begin(), text.end(), '\n')) + 2;
  return line >= 1 && line <= lines && column >= 1 && message.starts_with(": ");
}

bool from_this_file(const std::string& origin) {
  return origin.starts_with(k_file + ":");
}

template <typename T> void check_origin(const T& setting) {
  if (setting) {
    require(from_this_file(setting->origin));
  }
}

void check_policy(const loto::PolicySettings& policy) {
  check_origin(policy.wait);
  check_origin(policy.timeout);
  check_origin(policy.inherit_lock);
  check_origin(policy.conflict_exit_code);
  if (policy.conflict_exit_code) {
    require(policy.conflict_exit_code->value >= 0 && policy.conflict_exit_code->value <= 255);
  }
  if (policy.timeout) {
    require(policy.timeout->value >= loto::Duration::zero() &&
            policy.timeout->value <= loto::k_max_duration);
  }
}

void check_config(const loto::Config& config) {
  require(config.files.size() == 1 && config.files.front() == k_file);
  if (config.lock_dir) {
    require(from_this_file(config.lock_dir->origin));
    require(!loto::path_problem(config.lock_dir->value));
  }
  check_policy(config.defaults);
  const auto& logging = config.logging;
  check_origin(logging.syslog);
  check_origin(logging.facility);
  check_origin(logging.ident);
  check_origin(logging.level);
  if (logging.facility) {
    const auto& names = loto::syslog_facilities();
    require(std::find(names.begin(), names.end(), logging.facility->value) != names.end());
  }
  if (logging.level) {
    const auto& names = loto::log_levels();
    require(std::find(names.begin(), names.end(), logging.level->value) != names.end());
  }
  for (const auto& [name, resource] : config.resources) {
    require(loto::is_valid_resource_name(name));
    require(from_this_file(resource.origin));
    check_policy(resource.policy);
    if (resource.path) {
      require(from_this_file(resource.path->origin));
      require(!loto::path_problem(resource.path->value));
    }
  }
}

void plan_with(const loto::CliOptions& cli, const loto::Config& config) {
  try {
    const loto::Plan plan = loto::make_plan(cli, config, {});
    require(plan.conflict_exit_code >= 0 && plan.conflict_exit_code <= 255);
    for (const auto& lock : plan.locks) {
      require(lock.path.starts_with('/'));
    }
  } catch (const loto::Error& e) {
    require(is_one_clean_line(e.what())); // a clean refusal
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  loto::Config config;
  try {
    config = loto::parse_config(text, k_file);
  } catch (const loto::Error& e) {
    require(e.exit_code() == loto::exit_code::config);
    require(is_one_clean_line(e.what()));
    require(has_valid_position(e.what(), text));
    return 0;
  }
  check_config(config);

  // What --show-config and --list build from it.
  loto::CliOptions cli;
  cli.action = loto::Action::show_config;
  plan_with(cli, config);

  // A run that locks each configured resource (a few of them, to bound the time).
  cli.action = loto::Action::run;
  cli.command = {"true"};
  std::size_t count = 0;
  for (const auto& entry : config.resources) {
    if (++count > 4) {
      break;
    }
    cli.locks = {entry.first};
    plan_with(cli, config);
  }
  return 0;
}
