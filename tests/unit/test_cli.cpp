// Unit tests for cli.hpp: split_argv() (argv pre-processing) and parse_cli().
#include "cli.hpp"
#include "error.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using loto::Action;
using loto::CliOptions;
using loto::parse_cli;
using loto::split_argv;
using Args = std::vector<std::string>;
using namespace std::chrono_literals;

namespace {

// The message of the usage error parse_cli() throws for `args`; fails the test if it
// does not throw one, or throws one with another exit code.
std::string usage_error(const Args& args) {
  try {
    (void)parse_cli(args);
  } catch (const loto::Error& e) {
    CHECK(e.exit_code() == loto::exit_code::usage);
    CHECK(e.exit_code() == 64);
    return e.what();
  }
  FAIL("parse_cli accepted an invalid command line");
  return {};
}

std::string split_error(const Args& args) {
  try {
    (void)split_argv(args);
  } catch (const loto::Error& e) {
    CHECK(e.exit_code() == 64);
    return e.what();
  }
  FAIL("split_argv accepted an invalid command line");
  return {};
}

Args with(Args head, const Args& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

} // namespace

TEST_CASE("split_argv normalises every -L form to --lock=VALUE", "[cli]") {
  const std::vector<Args> forms{
      {"-L", "x"},
      {"-L=x"},
      {"-Lx"},
      {"--lock", "x"},
      {"--lock=x"},
  };
  for (const auto& form : forms) {
    INFO("form: " << form.front());
    const auto split = split_argv(with(form, {"ls", "-la"}));
    CHECK(split.options == Args{"--lock=x"});
    CHECK(split.command == Args{"ls", "-la"});
    const CliOptions cli = parse_cli(with(form, {"ls", "-la"}));
    CHECK(cli.locks == Args{"x"});
    CHECK(cli.command == Args{"ls", "-la"});
    CHECK(cli.action == Action::run);
  }
}

TEST_CASE("split_argv keeps everything after the first = of a lock value", "[cli]") {
  CHECK(split_argv({"-L=a=b", "ls"}).options == Args{"--lock=a=b"});
  CHECK(split_argv({"-L==x", "ls"}).options == Args{"--lock==x"});
  CHECK(split_argv({"--lock==x", "ls"}).options == Args{"--lock==x"});
  CHECK(split_argv({"-L", "=x", "ls"}).options == Args{"--lock==x"});
  CHECK(split_argv({"-L", "/tmp/a b", "ls"}).options == Args{"--lock=/tmp/a b"});
  CHECK(parse_cli({"-L==x", "ls"}).locks == Args{"=x"});
  CHECK(parse_cli({"-L", "/tmp/a=b c", "ls"}).locks == Args{"/tmp/a=b c"});
  // A value may itself start with '-': it is taken, not read as an option.
  CHECK(split_argv({"-L", "-w", "ls"}).options == Args{"--lock=-w"});
  CHECK(parse_cli({"-L", "-w", "ls"}).locks == Args{"-w"});
  CHECK_FALSE(parse_cli({"-L", "-w", "ls"}).wait);
}

TEST_CASE("split_argv expands clusters of short options", "[cli]") {
  CHECK(split_argv({"-wL=x", "ls"}).options == Args{"-w", "--lock=x"});
  CHECK(split_argv({"-wLx", "ls"}).options == Args{"-w", "--lock=x"});
  CHECK(split_argv({"-wL", "x", "ls"}).options == Args{"-w", "--lock=x"});
  CHECK(split_argv({"-woL=x", "ls"}).options == Args{"-w", "-o", "--lock=x"});
  CHECK(split_argv({"-qw", "-L", "x", "ls"}).options == Args{"-q", "-w", "--lock=x"});
  // A value option ends the cluster: the rest is its value.
  CHECK(split_argv({"-Lwq", "ls"}).options == Args{"--lock=wq"});
  CHECK(split_argv({"-wt5", "-L", "x", "ls"}).options == Args{"-w", "--timeout=5", "--lock=x"});

  const CliOptions cli = parse_cli({"-woL=x", "ls"});
  CHECK(cli.wait);
  CHECK(cli.close_lock);
  CHECK(cli.locks == Args{"x"});
  CHECK(cli.command == Args{"ls"});
}

TEST_CASE("several -L are kept in the order given", "[cli]") {
  const CliOptions cli = parse_cli(
      {"-L", "net", "--lock=/tmp/b", "-Lcpu", "--lock", "/tmp/a", "-L=net", "make", "-j4"});
  CHECK(cli.locks == Args{"net", "/tmp/b", "cpu", "/tmp/a", "net"});
  CHECK(cli.command == Args{"make", "-j4"});
}

TEST_CASE("every -t form gives the same timeout", "[cli]") {
  const std::vector<Args> forms{
      {"-t=5"},
      {"-t", "5"},
      {"-t5"},
      {"--timeout=5"},
      {"--timeout", "5"},
      {"-t", "5s"},
      {"-wt5"},
  };
  for (const auto& form : forms) {
    INFO("form: " << form.front());
    const CliOptions cli = parse_cli(with(form, {"-L", "x", "ls"}));
    REQUIRE(cli.timeout.has_value());
    CHECK(*cli.timeout == 5s);
    CHECK(cli.locks == Args{"x"});
    CHECK(cli.command == Args{"ls"});
  }
  CHECK(split_argv({"-t=5", "ls"}).options == Args{"--timeout=5"});
  CHECK(split_argv({"-t", "5", "ls"}).options == Args{"--timeout=5"});
  CHECK(split_argv({"-t5", "ls"}).options == Args{"--timeout=5"});
}

TEST_CASE("the timeout option takes fractions and units", "[cli]") {
  CHECK(parse_cli({"-t", "0.5", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(500ms));
  CHECK(parse_cli({"-t=0.5", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(500ms));
  CHECK(parse_cli({"-t", "250ms", "-L", "x", "ls"}).timeout ==
        std::optional<loto::Duration>(250ms));
  CHECK(parse_cli({"-t250ms", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(250ms));
  CHECK(parse_cli({"-t", "15m", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(15min));
  CHECK(parse_cli({"-t", "6h", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(6h));
  CHECK(parse_cli({"-t", "0", "-L", "x", "ls"}).timeout == std::optional<loto::Duration>(0s));
  // No -t: no timeout; -t alone does not set the -w flag (the plan derives waiting from it).
  CHECK_FALSE(parse_cli({"-L", "x", "ls"}).timeout.has_value());
  CHECK_FALSE(parse_cli({"-t", "5", "-L", "x", "ls"}).wait);
  // The last -t wins.
  CHECK(parse_cli({"-t", "1", "-t", "2", "-L", "x", "ls"}).timeout ==
        std::optional<loto::Duration>(2s));
}

TEST_CASE("invalid -t values are usage errors", "[cli]") {
  for (const std::string value : {"-1",
                                  "abc",
                                  "",
                                  "inf",
                                  "nan",
                                  "1e3",
                                  "99999999999999999999",
                                  "8761h",
                                  "0x10",
                                  "5x",
                                  " 1",
                                  "1."}) {
    INFO("value: " << value);
    const std::string message = usage_error({"-t", value, "-L", "x", "ls"});
    CHECK_THAT(message, Catch::Contains("invalid timeout"));
    (void)usage_error({"-t=" + value, "-L", "x", "ls"});
    (void)usage_error({"--timeout=" + value, "-L", "x", "ls"});
  }
  CHECK(usage_error({"-t", "abc", "-L", "x", "ls"}) ==
        "invalid timeout 'abc' (use seconds such as 5 or 0.5, or 250ms, 90s, 15m, 6h) (see 'loto "
        "--help')");
}

TEST_CASE("option parsing stops at the first word that is not an option", "[cli]") {
  const auto split = split_argv({"-L", "x", "ls", "-la"});
  CHECK(split.options == Args{"--lock=x"});
  CHECK(split.command == Args{"ls", "-la"});

  const CliOptions cli = parse_cli({"-L", "x", "-w", "ls", "-v", "-L", "y", "--", "-q"});
  CHECK(cli.locks == Args{"x"});
  CHECK(cli.wait);
  CHECK(cli.verbosity == 0);
  CHECK_FALSE(cli.quiet);
  CHECK(cli.command == Args{"ls", "-v", "-L", "y", "--", "-q"});

  // A lone "-" is a word, not an option.
  CHECK(parse_cli({"-L", "x", "-", "a"}).command == Args{"-", "a"});
}

TEST_CASE("option parsing stops at -- and keeps the rest untouched", "[cli]") {
  const auto split = split_argv({"-L", "x", "--", "ls", "--", "-L", "y"});
  CHECK(split.options == Args{"--lock=x"});
  CHECK(split.command == Args{"ls", "--", "-L", "y"});

  const CliOptions cli = parse_cli({"-L", "x", "--", "ls", "--", "-L", "y"});
  CHECK(cli.locks == Args{"x"});
  CHECK(cli.command == Args{"ls", "--", "-L", "y"});

  // The command is passed on exactly: empty words, spaces, quotes, option-like words.
  const Args command{"sh", "-c", "echo 'a b' \"$1\"", "", " ", "--lock=z", "-t", "\n"};
  CHECK(parse_cli(with({"-L", "x", "--"}, command)).command == command);
  CHECK(parse_cli(with({"-L", "x", "--", "--"}, {"a"})).command == Args{"--", "a"});
}

TEST_CASE("an option without its value is a usage error", "[cli]") {
  CHECK(usage_error({"-L", "--", "ls"}) ==
        "option -L needs a value (NAME|PATH) (see 'loto --help')");
  CHECK(split_error({"-L", "--", "ls"}) ==
        "option -L needs a value (NAME|PATH) (see 'loto --help')");
  CHECK_THAT(usage_error({"--lock", "--", "ls"}), Catch::Contains("needs a value"));
  CHECK_THAT(usage_error({"-L"}), Catch::Contains("needs a value"));
  CHECK_THAT(usage_error({"--lock"}), Catch::Contains("needs a value"));
  CHECK(parse_cli({"-L", "x", "ls", "-t"}).command == Args{"ls", "-t"}); // -t is the command's
  CHECK(usage_error({"-L", "x", "-t"}) == "option -t needs a value (DURATION) (see 'loto --help')");
  CHECK_THAT(usage_error({"-L", "x", "-E"}), Catch::Contains("option -E needs a value"));
  CHECK_THAT(usage_error({"-L", "x", "--config"}), Catch::Contains("needs a value"));
}

TEST_CASE("unknown options are usage errors with a suggestion for long ones", "[cli]") {
  CHECK(usage_error({"-x", "-L", "x", "ls"}) == "unknown option '-x' (see 'loto --help')");
  CHECK(usage_error({"-wz", "-L", "x", "ls"}) == "unknown option '-z' (see 'loto --help')");
  CHECK(usage_error({"--lokc", "x", "ls"}) ==
        "unknown option '--lokc', did you mean '--lock'? (see 'loto --help')");
  CHECK(usage_error({"--lokc=x", "ls"}) ==
        "unknown option '--lokc', did you mean '--lock'? (see 'loto --help')");
  CHECK(usage_error({"--verbos", "-L", "x", "ls"}) ==
        "unknown option '--verbos', did you mean '--verbose'? (see 'loto --help')");
  CHECK(usage_error({"--timout=5", "-L", "x", "ls"}) ==
        "unknown option '--timout', did you mean '--timeout'? (see 'loto --help')");
  CHECK(usage_error({"--frobnicate", "-L", "x", "ls"}) ==
        "unknown option '--frobnicate' (see 'loto --help')");
  // Control characters in an unknown option are escaped in the message.
  CHECK(usage_error({"--a\nb", "-L", "x", "ls"}) == "unknown option '--a\\nb' (see 'loto --help')");
  // Flags take no value.
  CHECK(usage_error({"--wait=yes", "-L", "x", "ls"}) ==
        "option --wait takes no value (see 'loto --help')");
  CHECK_THAT(usage_error({"--help=1"}), Catch::Contains("takes no value"));
}

TEST_CASE("the conflict exit code option accepts 0 to 255 only", "[cli]") {
  CHECK(parse_cli({"-E", "0", "-L", "x", "ls"}).conflict_exit_code == std::optional<int>(0));
  CHECK(parse_cli({"-E", "255", "-L", "x", "ls"}).conflict_exit_code == std::optional<int>(255));
  CHECK(parse_cli({"-E=3", "-L", "x", "ls"}).conflict_exit_code == std::optional<int>(3));
  CHECK(parse_cli({"-E3", "-L", "x", "ls"}).conflict_exit_code == std::optional<int>(3));
  CHECK(parse_cli({"--conflict-exit-code", "42", "-L", "x", "ls"}).conflict_exit_code ==
        std::optional<int>(42));
  CHECK(parse_cli({"--conflict-exit-code=7", "-L", "x", "ls"}).conflict_exit_code ==
        std::optional<int>(7));
  CHECK_FALSE(parse_cli({"-L", "x", "ls"}).conflict_exit_code.has_value());
  for (const std::string value :
       {"256", "-1", "abc", "", "1000", "2.5", " 1", "1 ", "+1", "0x1", "99999999999"}) {
    INFO("value: " << value);
    const std::string message = usage_error({"-E", value, "-L", "x", "ls"});
    CHECK_THAT(message, Catch::Contains("invalid conflict exit code"));
    CHECK_THAT(message, Catch::Contains("(expected 0 to 255)"));
  }
  CHECK(usage_error({"-E", "256", "-L", "x", "ls"}) ==
        "invalid conflict exit code '256' (expected 0 to 255) (see 'loto --help')");
}

TEST_CASE("quiet and verbose are exclusive", "[cli]") {
  CHECK(usage_error({"-q", "-v", "-L", "x", "ls"}) ==
        "options -q and -v cannot be combined (see 'loto --help')");
  (void)usage_error({"-qv", "-L", "x", "ls"});
  (void)usage_error({"--quiet", "--verbose", "-L", "x", "ls"});
  (void)usage_error({"-vq", "--help"});
  const CliOptions quiet = parse_cli({"-q", "-L", "x", "ls"});
  CHECK(quiet.quiet);
  CHECK(quiet.verbosity == 0);
}

TEST_CASE("the verbose option counts verbosity", "[cli]") {
  CHECK(parse_cli({"-L", "x", "ls"}).verbosity == 0);
  CHECK(parse_cli({"-v", "-L", "x", "ls"}).verbosity == 1);
  CHECK(parse_cli({"-vv", "-L", "x", "ls"}).verbosity == 2);
  CHECK(parse_cli({"-v", "-v", "-L", "x", "ls"}).verbosity == 2);
  CHECK(parse_cli({"--verbose", "-v", "-L", "x", "ls"}).verbosity == 2);
  CHECK(parse_cli({"-vvvL", "x", "ls"}).verbosity == 3);
  CHECK_FALSE(parse_cli({"-vv", "-L", "x", "ls"}).quiet);
}

TEST_CASE("a run needs a lock and a command", "[cli]") {
  CHECK(usage_error({"-L", "x"}) ==
        "no command given: loto -L NAME|PATH [--] COMMAND [ARGS...] (see 'loto --help')");
  CHECK_THAT(usage_error({"-L", "x", "--"}), Catch::Contains("no command given"));
  CHECK(usage_error({"ls"}) ==
        "no lock given: use -L NAME or -L /path/to/file (see 'loto --help')");
  CHECK_THAT(usage_error({"-w", "--", "ls"}), Catch::Contains("no lock given"));
  CHECK_THAT(usage_error({}), Catch::Contains("no lock given"));
}

TEST_CASE("informational actions need neither lock nor command", "[cli]") {
  CHECK(parse_cli({"--help"}).action == Action::help);
  CHECK(parse_cli({"-h"}).action == Action::help);
  CHECK(parse_cli({"--version"}).action == Action::version);
  CHECK(parse_cli({"-V"}).action == Action::version);
  CHECK(parse_cli({"--list"}).action == Action::list);
  CHECK(parse_cli({"--show-config"}).action == Action::show_config);
  CHECK(parse_cli({"--check-config"}).action == Action::check_config);
  // Help wins over everything, and the other options are still read.
  CHECK(parse_cli({"--list", "--help"}).action == Action::help);
  CHECK(parse_cli({"--check-config", "--version"}).action == Action::version);
  const CliOptions show =
      parse_cli({"--show-config", "-L", "db", "-t", "5", "--config", "/etc/x.yaml"});
  CHECK(show.action == Action::show_config);
  CHECK(show.locks == Args{"db"});
  CHECK(show.timeout == std::optional<loto::Duration>(5s));
  CHECK(show.config_path == std::optional<std::string>("/etc/x.yaml"));
  // A bad value is still an error with an action.
  (void)usage_error({"--list", "-t", "abc"});
}

TEST_CASE("flags and --config are read", "[cli]") {
  const CliOptions plain = parse_cli({"-L", "x", "ls"});
  CHECK_FALSE(plain.wait);
  CHECK_FALSE(plain.close_lock);
  CHECK_FALSE(plain.quiet);
  CHECK_FALSE(plain.config_path.has_value());

  const CliOptions all = parse_cli(
      {"--wait", "--close", "--quiet", "--config", "/etc/loto-test.yaml", "-L", "x", "ls"});
  CHECK(all.wait);
  CHECK(all.close_lock);
  CHECK(all.quiet);
  CHECK(all.config_path == std::optional<std::string>("/etc/loto-test.yaml"));
  CHECK(parse_cli({"-w", "-o", "-L", "x", "ls"}).wait);
  CHECK(parse_cli({"-w", "-o", "-L", "x", "ls"}).close_lock);
  CHECK(parse_cli({"--config=rel.yaml", "-L", "x", "ls"}).config_path ==
        std::optional<std::string>("rel.yaml"));
  CHECK(usage_error({"--config=", "-L", "x", "ls"}) ==
        "option --config needs a file path (see 'loto --help')");
}

// The header promises a one-line message for anything malformed; cxxopts' regex matcher
// used to throw its own multi-line message for a value with a newline.
TEST_CASE("a lock value with a newline is passed on or rejected on one line", "[cli]") {
  const std::vector<Args> cases{Args{"-L", "a\nb", "ls"},
                                Args{"--lock=/tmp/a\nb", "ls"},
                                Args{"--config", "/tmp/c\r.yaml", "-L", "x", "ls"}};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Args& args = cases[i];
    INFO("case " << i);
    try {
      (void)parse_cli(args);
    } catch (const loto::Error& e) {
      CHECK(e.exit_code() == 64);
      CHECK(std::string(e.what()).find_first_of("\r\n") == std::string::npos);
      CHECK_THAT(std::string(e.what()), !Catch::Contains("incorrect syntax"));
      continue;
    }
    // Accepted: the value arrives as typed.
    const CliOptions cli = parse_cli(args);
    if (i < 2) {
      CHECK(cli.locks == Args{args[0] == "-L" ? args[1] : args[0].substr(7)});
    } else {
      CHECK(cli.config_path == std::optional<std::string>(args[1]));
    }
  }
}

TEST_CASE("help_text lists the options and the exit status", "[cli]") {
  const std::string help = loto::help_text();
  // the usage line names the command too, as loto(1)'s synopsis does
  CHECK(help.find("  loto [OPTIONS] -L NAME|PATH [-L ...] [--] COMMAND [ARGS...]\n") !=
        std::string::npos);
  for (const char* word : {"--lock",
                           "--wait",
                           "--timeout",
                           "--conflict-exit-code",
                           "--close",
                           "--quiet",
                           "--verbose",
                           "--config",
                           "--check-config",
                           "--show-config",
                           "--list",
                           "--help",
                           "--version",
                           "Exit status"}) {
    INFO("word: " << word);
    CHECK_THAT(help, Catch::Contains(word));
  }
}

TEST_CASE("the options -s, --max-runtime, --kill-after and --leftovers are read", "[cli][limits]") {
  const auto options = parse_cli(
      {"-sL", "db", "--max-runtime=2h", "--kill-after", "30s", "--leftovers=wait", "--", "x"});
  CHECK(options.shared);
  CHECK(options.max_runtime == std::optional<loto::Duration>(std::chrono::hours(2)));
  CHECK(options.kill_after == std::optional<loto::Duration>(std::chrono::seconds(30)));
  CHECK(options.leftovers == std::optional<std::string>("wait"));
  CHECK(parse_cli({"--kill-after=0", "-L", "db", "x"}).kill_after ==
        std::optional<loto::Duration>(loto::Duration::zero()));
  const auto plain = parse_cli({"-L", "db", "x"});
  CHECK_FALSE(plain.shared);
  CHECK_FALSE(plain.max_runtime.has_value());
  CHECK_FALSE(plain.leftovers.has_value());
}

TEST_CASE("invalid runtime limits and leftover modes are usage errors", "[cli][limits]") {
  CHECK(usage_error({"--max-runtime=0", "-L", "db", "x"}) ==
        "invalid --max-runtime '0' (use a duration above zero: 90s, 15m, 6h, or seconds) (see "
        "'loto --help')");
  CHECK(usage_error({"--kill-after=-1", "-L", "db", "x"}) ==
        "invalid --kill-after '-1' (use a duration above zero: 90s, 15m, 6h, or seconds) (see "
        "'loto --help')");
  CHECK(usage_error({"--leftovers=keep", "-L", "db", "x"}) ==
        "invalid --leftovers 'keep' (one of: leave, wait, kill) (see 'loto --help')");
}
