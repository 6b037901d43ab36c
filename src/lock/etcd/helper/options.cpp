#include "lock/etcd/helper/options.hpp"

#include "lock/etcd/helper/codec.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <set>

namespace loto::etcd_helper {

namespace {

// The parts of an option word: "--ttl-ms=5" is {"--ttl-ms", "5"}.
struct OptionWord {
  std::string_view name;
  std::optional<std::string_view> inline_value;
};

OptionWord split_option(std::string_view word) {
  const auto equals = word.find('=');
  if (equals == std::string_view::npos) {
    return {word, std::nullopt};
  }
  return {word.substr(0, equals), word.substr(equals + 1)};
}

std::vector<std::string> parse_endpoints(std::string_view list) {
  std::vector<std::string> urls;
  while (true) {
    const auto comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (item.empty()) {
      throw UsageError("--endpoints: empty endpoint in the list");
    }
    urls.push_back(endpoint_url(item));
    if (comma == std::string_view::npos) {
      return urls;
    }
    list.remove_prefix(comma + 1);
  }
}

std::int64_t parse_ttl_ms(std::string_view text) {
  const auto value = parse_int64(text);
  if (!value || *value < k_min_ttl_ms || *value > k_max_ttl_ms) {
    throw UsageError("--ttl-ms: expected milliseconds from " + std::to_string(k_min_ttl_ms) +
                     " to " + std::to_string(k_max_ttl_ms) + ", got '" + std::string(text) + "'");
  }
  return *value;
}

int parse_slots(std::string_view text) {
  const auto value = parse_int64(text);
  if (!value || *value < 1 || *value > k_max_slots) {
    throw UsageError("--slots: expected a number from 1 to " + std::to_string(k_max_slots) +
                     ", got '" + std::string(text) + "'");
  }
  return static_cast<int>(*value);
}

std::int64_t parse_pid(std::string_view text) {
  const auto value = parse_int64(text);
  if (!value || *value <= 0) {
    throw UsageError("--pid: expected a process ID, got '" + std::string(text) + "'");
  }
  return *value;
}

void set_mode(Options& options, std::optional<Mode>& mode, Mode chosen) {
  if (mode) {
    throw UsageError("give exactly one of --try, --wait and --inspect");
  }
  mode = chosen;
  options.mode = chosen;
}

void set_credential(Credentials& credentials, std::string_view name, std::string_view value) {
  if (value.empty()) {
    throw UsageError(std::string(name) + " needs a non-empty value");
  }
  if (name == "--ca-file") {
    credentials.ca_file = value;
  } else if (name == "--cert-file") {
    credentials.cert_file = value;
  } else if (name == "--key-file") {
    credentials.key_file = value;
  } else if (name == "--etcd-user") {
    credentials.user = value;
  } else if (name == "--password-file") {
    credentials.password_file = value;
  }
}

// Stores the value of option `name`, one of those takes_value() knows.
void set_value(Options& options, std::string_view name, std::string_view value) {
  if (name == "--endpoints") {
    options.endpoints = parse_endpoints(value);
  } else if (name == "--ttl-ms") {
    options.ttl_ms = parse_ttl_ms(value);
  } else if (name == "--name") {
    options.name = value;
  } else if (name == "--slots") {
    options.slots = parse_slots(value);
  } else if (name == "--host") {
    options.holder.host = value;
  } else if (name == "--pid") {
    options.holder.pid = parse_pid(value);
  } else if (name == "--user") {
    options.holder.user = value;
  } else if (name == "--command") {
    options.holder.command = value;
  } else {
    set_credential(options.credentials, name, value);
  }
}

bool takes_value(std::string_view name) {
  static constexpr std::array<std::string_view, 13> k_names = {"--endpoints",
                                                               "--ttl-ms",
                                                               "--name",
                                                               "--slots",
                                                               "--host",
                                                               "--pid",
                                                               "--user",
                                                               "--command",
                                                               "--ca-file",
                                                               "--cert-file",
                                                               "--key-file",
                                                               "--etcd-user",
                                                               "--password-file"};
  return std::find(k_names.begin(), k_names.end(), name) != k_names.end();
}

std::optional<Mode> mode_flag(std::string_view name) {
  if (name == "--try") {
    return Mode::try_once;
  }
  if (name == "--wait") {
    return Mode::wait;
  }
  if (name == "--inspect") {
    return Mode::inspect;
  }
  return std::nullopt;
}

void check_complete(const Options& options, const std::optional<Mode>& mode) {
  if (!mode) {
    throw UsageError("give one of --try, --wait and --inspect");
  }
  if (options.endpoints.empty()) {
    throw UsageError("--endpoints is required");
  }
  if (options.name.empty()) {
    throw UsageError("--name is required (the lock name, e.g. loto/nightly)");
  }
  if (options.ttl_ms == 0 && *mode != Mode::inspect) {
    throw UsageError("--ttl-ms is required with --try and --wait");
  }
  const Credentials& credentials = options.credentials;
  if (credentials.cert_file.empty() != credentials.key_file.empty()) {
    throw UsageError("--cert-file and --key-file go together");
  }
  if (credentials.user.empty() != credentials.password_file.empty()) {
    throw UsageError("--etcd-user and --password-file go together");
  }
}

} // namespace

std::string endpoint_url(std::string_view endpoint) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  if (url.find("://") == std::string::npos) {
    url.insert(0, "http://");
  }
  return url;
}

Options parse_options(const std::vector<std::string_view>& args) {
  Options options;
  std::optional<Mode> mode;
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const OptionWord word = split_option(args[i]);
    if (!word.name.starts_with("--")) {
      throw UsageError("unexpected argument '" + std::string(args[i]) + "'");
    }
    if (!seen.insert(word.name).second) {
      throw UsageError(std::string(word.name) + " given twice");
    }
    if (const auto chosen = mode_flag(word.name)) {
      if (word.inline_value) {
        throw UsageError(std::string(word.name) + " takes no value");
      }
      set_mode(options, mode, *chosen);
      continue;
    }
    if (!takes_value(word.name)) {
      throw UsageError("unknown option '" + std::string(word.name) + "'");
    }
    std::string_view value;
    if (word.inline_value) {
      value = *word.inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError(std::string(word.name) + " needs a value");
    }
    set_value(options, word.name, value);
  }
  check_complete(options, mode);
  return options;
}

} // namespace loto::etcd_helper
