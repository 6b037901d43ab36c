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

#include <iostream>
#include <memory>
#include <string>
#include <vector>

extern char** environ;

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

    const auto backend = make_lock_backend(plan);
    switch (plan.action) {
    case Action::check_config:
      print_check(plan, std::cout);
      return 0;
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
