// loto: run a command while holding an exclusive lock.
//
// The whole flow, in order: argv -> CliOptions, config files -> Config, both merged by
// make_plan() into one immutable Plan; then the executor takes the locks, runs the
// command and returns its status. Errors are one Error type, caught once here.
#include "build_info.hpp"
#include "cli.hpp"
#include "config.hpp"
#include "error.hpp"
#include "executor.hpp"
#include "lock/lock.hpp"
#include "log.hpp"
#include "plan.hpp"
#include "process.hpp"
#include "report.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

extern char** environ;

namespace {

// Whether this run will start the etcd helper (or, for --check-config, could).
bool talks_to_etcd(const loto::Plan& plan) {
  using loto::Action;
  using loto::LockKind;
  if (plan.etcd.endpoints.empty()) {
    return false;
  }
  const auto is_etcd = [](const loto::LockTarget& target) { return target.kind == LockKind::etcd; };
  switch (plan.action) {
  case Action::check_config:
    return true;
  case Action::list:
    return std::any_of(plan.resources.begin(), plan.resources.end(), [&](const auto& resource) {
      return is_etcd(resource.target);
    });
  case Action::run:
    return std::any_of(plan.locks.begin(), plan.locks.end(), is_etcd);
  default:
    return false;
  }
}

// The files the etcd helper will read pass the trust checks before it starts: the key and
// the password file are secrets, so no one else may read them either.
void check_etcd_files(const loto::EtcdPlan& etcd) {
  const std::array<std::tuple<const char*, const std::string*, bool>, 4> files{{
      {"ca_file", &etcd.ca_file, false},
      {"cert_file", &etcd.cert_file, false},
      {"key_file", &etcd.key_file, true},
      {"password_file", &etcd.password_file, true},
  }};
  for (const auto& [key, path, secret] : files) {
    if (!path->empty()) {
      const auto where = etcd.positions.find(key);
      loto::check_etcd_file(*path,
                            std::string("etcd.") + key,
                            where == etcd.positions.end() ? "etcd" : where->second,
                            secret);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  using namespace loto;
  ensure_standard_fds();
  const SignalBaseline signals = capture_signal_baseline();
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    environment.emplace_back(*entry);
  }

  // The plan's logger; an error found before the plan exists gets a plain one.
  std::unique_ptr<Log> log;
  const auto report = [&log](const std::string& message) {
    if (!log) {
      log = std::make_unique<Log>();
    }
    log->error(message);
  };
  try {
    const CliOptions cli = parse_cli(args);
    if (cli.action == Action::help) {
      std::cout << help_text();
      return 0;
    }
    if (cli.action == Action::version) {
      std::cout << "loto " << k_version << "\n";
      return 0;
    }
    const Config config = load_config(choose_config_source(cli, environment));
    const Plan plan = make_plan(cli, config, environment);
    log = std::make_unique<Log>(plan.log, plan.command);
    if (talks_to_etcd(plan)) {
      check_etcd_files(plan.etcd);
    }

    const auto backend = make_lock_backend(plan);
    switch (plan.action) {
    case Action::check_config:
      print_check(plan, std::cout);
      return plan.online ? print_online_check(plan, std::cout) : 0;
    case Action::show_config:
      print_settings(plan, std::cout);
      return 0;
    case Action::list:
      print_resources(plan, *backend, std::cout);
      return 0;
    case Action::list_json:
      print_resources_json(plan, *backend, std::cout);
      return 0;
    default:
      return execute(plan, *backend, *log, signals);
    }
  } catch (const Error& error) {
    report(error.what());
    return error.exit_code();
  } catch (const std::exception& error) {
    report(std::string("internal error: ") + error.what());
    return exit_code::os_error;
  }
}
