#include "cli.hpp"

#include "config.hpp"
#include "error.hpp"
#include "text.hpp"

#include <cxxopts.hpp>

#include <algorithm>
#include <array>
#include <string_view>

namespace loto {

namespace {

struct OptionSpec {
  char short_name; // '\0' when there is none
  std::string_view long_name;
  bool takes_value;
  std::string_view value_name;
  std::string_view help;
};

constexpr std::array<OptionSpec, 19> k_options{{
    {'L', "lock", true, "NAME|PATH", "lock a named resource or a file (repeatable)"},
    {'w', "wait", false, "", "wait for the lock instead of giving up"},
    {'t', "timeout", true, "DURATION", "wait at most DURATION (5, 0.5, 250ms, 90s, 15m, 6h)"},
    {'E', "conflict-exit-code", true, "N", "exit with N (0-255) when the lock is not taken"},
    {'s', "shared", false, "", "take the lock shared with other -s runs (readers)"},
    {'o', "close", false, "", "do not pass the lock to the command's processes"},
    {'\0', "max-runtime", true, "DURATION", "stop the job (exit 124) once it has run DURATION"},
    {'\0', "kill-after", true, "DURATION", "SIGKILL what is left DURATION after SIGTERM (10s)"},
    {'\0', "leftovers", true, "MODE", "processes the job leaves behind: leave, wait or kill"},
    {'q', "quiet", false, "", "print nothing unless something is broken"},
    {'v', "verbose", false, "", "report each step on stderr (twice for debug)"},
    {'\0', "config", true, "PATH", "read this config file instead of the system one"},
    {'\0', "check-config", false, "", "validate the configuration and exit"},
    {'\0', "online", false, "", "with --check-config: also check that etcd answers"},
    {'\0', "show-config", false, "", "print every effective setting and its origin"},
    {'\0', "list", false, "", "list resources and who holds them"},
    {'\0', "json", false, "", "with --list: print one JSON document"},
    {'h', "help", false, "", "print this help and exit"},
    {'V', "version", false, "", "print the version and exit"},
}};

const OptionSpec* find_short(char c) {
  const auto it = std::find_if(
      k_options.begin(), k_options.end(), [c](const auto& o) { return o.short_name == c; });
  return it == k_options.end() ? nullptr : &*it;
}

const OptionSpec* find_long(std::string_view name) {
  const auto it = std::find_if(
      k_options.begin(), k_options.end(), [name](const auto& o) { return o.long_name == name; });
  return it == k_options.end() ? nullptr : &*it;
}

[[noreturn]] void usage_error(const std::string& message) {
  throw Error(exit_code::usage, message + " (see 'loto --help')");
}

std::vector<std::string> long_option_names() {
  std::vector<std::string> names;
  for (const auto& option : k_options) {
    names.push_back("--" + std::string(option.long_name));
  }
  return names;
}

std::string option_display(const OptionSpec& option) {
  return option.short_name != '\0' ? std::string{'-', option.short_name}
                                   : "--" + std::string(option.long_name);
}

// The option a word from split_argv() names: "--name", "--name=value" or "-c".
const OptionSpec& option_of(std::string_view word) {
  const OptionSpec* option =
      word.starts_with("--") ? find_long(word.substr(2, word.find('=') - 2)) : find_short(word[1]);
  return *option; // split_argv() produced the word from a known option
}

// cxxopts' table of `options`: each one costs it a dozen allocations and string copies.
cxxopts::Options make_parser(const std::vector<const OptionSpec*>& options) {
  cxxopts::Options parser("loto", "Run a command while holding an exclusive lock.");
  // cxxopts prints positional_help() only for declared positionals; loto has none.
  parser.custom_help("[OPTIONS] -L NAME|PATH [-L ...] [--] COMMAND [ARGS...]");
  parser.set_width(100);
  auto adder = parser.add_options();
  for (const OptionSpec* option : options) {
    const std::string names = option->short_name != '\0' ? std::string{option->short_name} + "," +
                                                               std::string(option->long_name)
                                                         : std::string(option->long_name);
    if (option->takes_value) {
      adder(names,
            std::string(option->help),
            cxxopts::value<std::string>(),
            std::string(option->value_name));
    } else {
      adder(names, std::string(option->help));
    }
  }
  return parser;
}

// --json turns --list into Action::list_json; it means nothing to the other actions.
Action list_or_json(Action action, bool json) {
  if (!json || action == Action::help || action == Action::version) {
    return action;
  }
  if (action != Action::list) {
    usage_error("option --json is only valid with --list");
  }
  return Action::list_json;
}

} // namespace

SplitArgv split_argv(const std::vector<std::string>& args) {
  SplitArgv split;
  std::size_t i = 0;
  // The value of an option that takes one: inline (after an optional '=') or the next word.
  const auto take_value =
      [&](const OptionSpec& option, std::string_view inline_value, bool has_inline) -> std::string {
    if (has_inline) {
      return std::string(inline_value);
    }
    if (i + 1 >= args.size() || args[i + 1] == "--") {
      usage_error("option " + option_display(option) + " needs a value (" +
                  std::string(option.value_name) + ")");
    }
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") {
      ++i;
      break;
    }
    if (word.size() < 2 || word[0] != '-') {
      break; // the first word of the command
    }
    if (word.starts_with("--")) {
      const auto eq = word.find('=');
      const std::string name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const OptionSpec* option = find_long(name);
      if (option == nullptr) {
        usage_error("unknown option " + quoted(word.substr(0, eq)) +
                    did_you_mean(word.substr(0, eq), long_option_names()));
      }
      if (!option->takes_value) {
        if (eq != std::string::npos) {
          usage_error("option --" + name + " takes no value");
        }
        split.options.push_back(word);
        continue;
      }
      const std::string value =
          take_value(*option,
                     eq == std::string::npos ? "" : std::string_view(word).substr(eq + 1),
                     eq != std::string::npos);
      split.options.push_back("--" + name + "=" + value);
      continue;
    }
    // A cluster of short options such as -qw or -wL=x; a value option ends the cluster.
    for (std::size_t k = 1; k < word.size(); ++k) {
      const OptionSpec* option = find_short(word[k]);
      if (option == nullptr) {
        usage_error("unknown option " + quoted(std::string{'-', word[k]}));
      }
      if (!option->takes_value) {
        split.options.push_back(std::string{'-', word[k]});
        continue;
      }
      std::string_view rest = std::string_view(word).substr(k + 1);
      if (rest.starts_with('=')) {
        rest.remove_prefix(1);
        split.options.push_back("--" + std::string(option->long_name) + "=" +
                                take_value(*option, rest, true));
      } else {
        split.options.push_back("--" + std::string(option->long_name) + "=" +
                                take_value(*option, rest, !rest.empty()));
      }
      break;
    }
  }
  split.command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())),
                       args.end());
  return split;
}

CliOptions parse_cli(const std::vector<std::string>& args) {
  SplitArgv split = split_argv(args);

  std::vector<std::string> words{"loto"};
  words.insert(words.end(), split.options.begin(), split.options.end());
  std::vector<char*> argv;
  argv.reserve(words.size());
  for (auto& word : words) {
    argv.push_back(word.data());
  }
  // split_argv() has checked every word against k_options already, so cxxopts is given
  // only the options that appear: the whole table cost a quarter of a call's start-up.
  std::vector<const OptionSpec*> used;
  for (const auto& word : split.options) {
    const OptionSpec* option = &option_of(word);
    if (std::find(used.begin(), used.end(), option) == used.end()) {
      used.push_back(option);
    }
  }
  cxxopts::Options parser = make_parser(used);
  cxxopts::ParseResult result;
  try {
    result = parser.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const cxxopts::exceptions::exception& e) {
    usage_error(e.what()); // not reached for the forms split_argv() produces
  }

  CliOptions options;
  options.command = std::move(split.command);
  for (const auto& item : result.arguments()) {
    const std::string& key = item.key();
    const std::string& value = item.value();
    if (key == "lock") {
      options.locks.push_back(value);
    } else if (key == "timeout") {
      options.timeout = parse_duration(value);
      if (!options.timeout) {
        usage_error("invalid timeout " + quoted(value) +
                    " (use seconds such as 5 or 0.5, or 250ms, 90s, 15m, 6h)");
      }
    } else if (key == "conflict-exit-code") {
      options.conflict_exit_code = parse_exit_code(value);
      if (!options.conflict_exit_code) {
        usage_error("invalid conflict exit code " + quoted(value) + " (expected 0 to 255)");
      }
    } else if (key == "max-runtime" || key == "kill-after") {
      const auto limit = parse_duration(value);
      if (!limit || (*limit == Duration::zero() && key == "max-runtime")) {
        usage_error("invalid --" + key + " " + quoted(value) +
                    " (use a duration above zero: 90s, 15m, 6h, or seconds)");
      }
      (key == "max-runtime" ? options.max_runtime : options.kill_after) = limit;
    } else if (key == "leftovers") {
      if (!parse_leftover_mode(value)) {
        usage_error("invalid --leftovers " + quoted(value) +
                    " (one of: " + join(leftover_mode_names(), ", ") + ")");
      }
      options.leftovers = value;
    } else if (key == "config") {
      if (value.empty()) {
        usage_error("option --config needs a file path");
      }
      options.config_path = value;
    }
  }
  options.wait = result.count("wait") > 0;
  options.close_lock = result.count("close") > 0;
  options.shared = result.count("shared") > 0;
  options.quiet = result.count("quiet") > 0;
  options.verbosity = static_cast<int>(result.count("verbose"));
  options.online = result.count("online") > 0;
  if (options.online && result.count("check-config") == 0) {
    usage_error("option --online goes with --check-config");
  }
  if (options.quiet && options.verbosity > 0) {
    usage_error("options -q and -v cannot be combined");
  }

  // The first informational action wins, in this fixed order.
  const std::array<std::pair<const char*, Action>, 5> actions{{
      {"help", Action::help},
      {"version", Action::version},
      {"check-config", Action::check_config},
      {"show-config", Action::show_config},
      {"list", Action::list},
  }};
  const bool json = result.count("json") > 0;
  for (const auto& [name, action] : actions) {
    if (result.count(name) > 0) {
      options.action = list_or_json(action, json);
      return options;
    }
  }
  if (json) {
    usage_error("option --json is only valid with --list");
  }
  if (options.locks.empty()) {
    usage_error("no lock given: use -L NAME or -L /path/to/file");
  }
  if (options.command.empty()) {
    usage_error("no command given: loto -L NAME|PATH [--] COMMAND [ARGS...]");
  }
  return options;
}

std::string help_text() {
  std::vector<const OptionSpec*> all;
  for (const auto& option : k_options) {
    all.push_back(&option);
  }
  std::string text = make_parser(all).help();
  text += "\nExit status: the command's status; 128+N if it died of signal N; 75 (or -E N) if\n"
          "the lock was not taken; 64 usage, 78 config, 73 cannot open the lock file, 77 unsafe\n"
          "lock file, 71 OS failure, 69 fleet lock unreachable or lost, 124 the job ran past\n"
          "its maximum runtime, 126 command not executable, 127 command not found.\n";
  return text;
}

} // namespace loto
