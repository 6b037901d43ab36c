// The command line: argv -> CliOptions, holding only what the user typed.
#pragma once

#include "duration.hpp"

#include <optional>
#include <string>
#include <vector>

namespace loto {

// list_json: --list --json.
enum class Action { run, check_config, show_config, list, help, version, list_json };

struct CliOptions {
  Action action = Action::run;
  std::vector<std::string> locks; // every -L value, in the order given
  bool wait = false;              // -w
  std::optional<Duration> timeout;
  std::optional<int> conflict_exit_code;
  bool close_lock = false; // -o: the command does not inherit the lock
  bool shared = false;     // -s: a shared (read) lock instead of an exclusive one
  std::optional<Duration> max_runtime;
  std::optional<Duration> kill_after;
  std::optional<std::string> leftovers; // leave, wait or kill
  bool quiet = false;
  int verbosity = 0;
  std::optional<std::string> config_path;
  bool online = false; // --online: --check-config also asks each etcd resource's cluster
  std::vector<std::string> command; // untouched, exactly as given
};

// argv with loto's options rewritten into a form cxxopts parses unambiguously
// ("--lock=VALUE"), and the command that follows them.
struct SplitArgv {
  std::vector<std::string> options;
  std::vector<std::string> command;
};

// Splits at "--" or at the first word that is not an option, and normalises the option
// forms -L=x, -Lx, -L x, --lock x and clusters like -wqL=x. `args` excludes argv[0].
// Throws Error(usage) for unknown options and missing values.
SplitArgv split_argv(const std::vector<std::string>& args);

// Throws Error(usage) with a one-line message for anything malformed.
CliOptions parse_cli(const std::vector<std::string>& args);

std::string help_text();

} // namespace loto
