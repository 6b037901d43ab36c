// libFuzzer target: argv pre-processing and plan building.
//
// The input is split at NUL bytes into argv words (argv[0] excluded, as parse_cli takes it),
// like /proc/PID/cmdline. parse_cli() + make_plan() with an empty Config and an empty
// environment must return or throw loto::Error; anything else, a sanitizer report or a
// broken invariant below is a crash.
#include "cli.hpp"
#include "config.hpp"
#include "error.hpp"
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

void require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

std::vector<std::string> split_words(std::string_view bytes) {
  std::vector<std::string> words;
  if (bytes.empty()) {
    return words;
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t nul = bytes.find('\0', start);
    if (nul == std::string_view::npos) {
      words.emplace_back(bytes.substr(start));
      break;
    }
    words.emplace_back(bytes.substr(start, nul - start));
    start = nul + 1;
  }
  return words;
}

// An error message is one printable line: control characters and invalid UTF-8 from argv
// must arrive escaped.
bool is_one_clean_line(std::string_view message) {
  return !loto::find_invalid_utf8(message) &&
         std::none_of(message.begin(), message.end(), [](char c) {
           const auto byte = static_cast<unsigned char>(c);
           return byte < 0x20 || byte == 0x7f;
         });
}

// `tail` is exactly the last tail.size() words of `all`.
bool is_suffix(const std::vector<std::string>& tail, const std::vector<std::string>& all) {
  return tail.size() <= all.size() && std::equal(tail.rbegin(), tail.rend(), all.rbegin());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> args =
      split_words(std::string_view(reinterpret_cast<const char*>(data), size));

  loto::CliOptions cli;
  try {
    (void)loto::split_argv(args);
    cli = loto::parse_cli(args);
  } catch (const loto::Error& e) {
    require(e.exit_code() == loto::exit_code::usage);
    require(is_one_clean_line(e.what()));
    return 0;
  }
  // The command is passed on untouched: the words after the options, as typed.
  require(is_suffix(cli.command, args));
  if (cli.action == loto::Action::run) {
    require(!cli.locks.empty() && !cli.command.empty());
  }
  require(!(cli.quiet && cli.verbosity > 0));
  if (cli.conflict_exit_code) {
    require(*cli.conflict_exit_code >= 0 && *cli.conflict_exit_code <= 255);
  }
  if (cli.action == loto::Action::help) {
    require(!loto::help_text().empty());
  }
  // --config wins over the (empty) environment.
  const loto::ConfigSource source = loto::choose_config_source(cli, {});
  require(source.must_exist == cli.config_path.has_value());

  try {
    const loto::Plan plan = loto::make_plan(cli, loto::Config{}, {});
    require(plan.command == cli.command);
    require(plan.conflict_exit_code >= 0 && plan.conflict_exit_code <= 255);
    require(plan.locks.size() <= cli.locks.size());
    if (cli.action == loto::Action::run) {
      require(!plan.locks.empty());
    }
    for (const auto& lock : plan.locks) {
      require(lock.path.starts_with('/'));
      require(lock.path.find('\0') == std::string::npos);
    }
  } catch (const loto::Error& e) {
    require(e.exit_code() == loto::exit_code::usage);
    require(is_one_clean_line(e.what()));
  }
  return 0;
}
