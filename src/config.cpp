#include "config.hpp"

#include "error.hpp"
#include "log.hpp"
#include "text.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>

namespace loto {

namespace {

constexpr std::size_t k_max_config_size = std::size_t{1024} * 1024;

[[noreturn]] void config_error(const std::string& message) {
  throw Error(exit_code::config, message);
}

// "FILE:LINE:COL" for a yaml-cpp mark (0-based) as people count (1-based).
std::string position(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) {
    return file;
  }
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

struct YamlEntry;

// A node of a config file's YAML tree. `mark` is the parser's position for the node, which
// messages report: a mapping's or sequence's start, or where yaml-cpp puts a missing value
// (see Reader::fail).
struct YamlNode {
  enum class Kind { null, scalar, sequence, map };

  Kind kind = Kind::null;
  YAML::Mark mark = YAML::Mark::null_mark();
  std::string text;               // a scalar's
  std::vector<YamlEntry> entries; // a map's, in file order with duplicates kept
  std::vector<YamlNode> items;    // a sequence's

  YamlNode() = default;
  YamlNode(Kind node_kind, const YAML::Mark& node_mark, std::string scalar_text = {});

  bool is_null() const {
    return kind == Kind::null;
  }
  bool is_scalar() const {
    return kind == Kind::scalar;
  }
  bool is_map() const {
    return kind == Kind::map;
  }
};

struct YamlEntry {
  YamlNode key;
  YamlNode value;
};

// Defined once YamlEntry is complete: the constructor destroys `entries` if it throws.
YamlNode::YamlNode(Kind node_kind, const YAML::Mark& node_mark, std::string scalar_text)
    : kind(node_kind), mark(node_mark), text(std::move(scalar_text)) {}

std::string origin_of(const std::string& file, const YamlNode& node) {
  return file + ":" + std::to_string(node.mark.line + 1);
}

// Builds the tree while yaml-cpp parses, so that the text is scanned once (its scanner
// costs 500 to 1,600 instructions per byte), and refuses aliases: an alias bomb costs nothing to
// parse but exponential time to walk.
class TreeBuilder : public YAML::EventHandler {
public:
  explicit TreeBuilder(const std::string& file) : m_file(file) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    m_document_start = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    add(YamlNode(YamlNode::Kind::null, mark));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    config_error(position(m_file, mark) +
                 ": aliases (*name) are not supported; write the value out");
  }
  void OnScalar(const YAML::Mark& mark,
                const std::string& /*tag*/,
                YAML::anchor_t /*anchor*/,
                const std::string& value) override {
    add(YamlNode(YamlNode::Kind::scalar, mark, value));
  }
  void OnSequenceStart(const YAML::Mark& mark,
                       const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/,
                       YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::sequence, mark);
  }
  void OnSequenceEnd() override {
    close();
  }
  void OnMapStart(const YAML::Mark& mark,
                  const std::string& /*tag*/,
                  YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::map, mark);
  }
  void OnMapEnd() override {
    close();
  }

  // Where the latest document began: the position to report for a second document.
  const YAML::Mark& document_start() const {
    return m_document_start;
  }

  // The root of the document parsed last; a null if there was none (only comments).
  const YamlNode& root() const {
    return m_root;
  }

private:
  // A sequence or map whose end has not come yet.
  struct Collection {
    YamlNode node;
    bool awaiting_value = false; // a map's last entry has its key only
  };

  void open(YamlNode::Kind kind, const YAML::Mark& mark) {
    m_open.push_back({YamlNode(kind, mark), false});
  }

  void close() {
    YamlNode node = std::move(m_open.back().node);
    m_open.pop_back();
    add(std::move(node));
  }

  // The parser reports a map's entries as key, value, key, value, ...
  void add(YamlNode node) {
    if (m_open.empty()) {
      m_root = std::move(node);
      return;
    }
    Collection& parent = m_open.back();
    if (parent.node.kind == YamlNode::Kind::sequence) {
      parent.node.items.push_back(std::move(node));
    } else if (parent.awaiting_value) {
      parent.node.entries.back().value = std::move(node);
      parent.awaiting_value = false;
    } else {
      parent.node.entries.push_back({std::move(node), YamlNode{}});
      parent.awaiting_value = true;
    }
  }

  const std::string& m_file;
  YAML::Mark m_document_start = YAML::Mark::null_mark();
  std::vector<Collection> m_open;
  YamlNode m_root;
};

// http://HOST[:PORT] or https://HOST[:PORT], HOST a name, an IPv4 address or [IPv6]:
// the form the etcd helper connects to (no user, path, query or fragment).
bool is_endpoint_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos ||
      (url.substr(0, scheme_end) != "http" && url.substr(0, scheme_end) != "https")) {
    return false;
  }
  std::string_view rest = url.substr(scheme_end + 3);
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close == 1) {
      return false;
    }
    port = rest.substr(close + 1);
    if (!port.empty() && !port.starts_with(':')) {
      return false;
    }
    rest = rest.substr(1, close - 1);
    if (rest.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return false;
    }
  } else {
    const auto colon = rest.find(':');
    port = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
    rest = rest.substr(0, colon);
    if (rest.empty() || rest.size() > 253 ||
        rest.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
            std::string_view::npos) {
      return false;
    }
  }
  if (port.empty()) {
    return true; // etcd's client port, 2379
  }
  port.remove_prefix(1);
  return !port.empty() && port.size() <= 5 &&
         port.find_first_not_of("0123456789") == std::string_view::npos &&
         std::stoi(std::string(port)) > 0 && std::stoi(std::string(port)) <= 65535;
}

// Walks the parsed tree of one file, checking every key and value.
class Reader {
public:
  explicit Reader(const std::string& file) : m_file(file) {}

  Config read_root(const YamlNode& root) {
    Config config;
    config.files.push_back(m_file);
    if (root.is_null()) {
      return config; // only comments: nothing set
    }
    for_each_entry(
        root,
        "the top level",
        {"lock_dir", "metrics_dir", "defaults", "logging", "etcd", "resources"},
        [&](const std::string& key, const YamlNode& /*key_node*/, const YamlNode& value) {
          if (key == "lock_dir") {
            config.lock_dir = read_path(value, "lock_dir");
          } else if (key == "metrics_dir") {
            config.metrics_dir = read_path(value, "metrics_dir");
          } else if (key == "defaults") {
            config.defaults = read_policy(value, "defaults", false, nullptr);
          } else if (key == "logging") {
            config.logging = read_logging(value);
          } else if (key == "etcd") {
            config.etcd = read_etcd(value);
          } else {
            read_resources(value, config.resources);
          }
        });
    return config;
  }

private:
  // A missing value ("key:" and a line break) is placed by yaml-cpp on the next line;
  // report it at its key instead.
  [[noreturn]] void fail(const YamlNode& node, const std::string& message) const {
    const bool missing_value =
        node.is_null() && !m_key_mark.is_null() && node.mark.line != m_key_mark.line;
    config_error(position(m_file, missing_value ? m_key_mark : node.mark) + ": " + message);
  }

  // Calls `handle` for each key of a mapping, rejecting non-mappings, duplicate keys and
  // keys not in `known` (with a suggestion). An empty `known` accepts any valid name.
  void for_each_entry(
      const YamlNode& map,
      const std::string& where,
      const std::vector<std::string>& known,
      const std::function<void(const std::string&, const YamlNode&, const YamlNode&)>& handle) {
    if (map.is_null()) {
      return;
    }
    if (!map.is_map()) {
      fail(map, "expected a mapping (key: value lines) for " + where);
    }
    std::set<std::string> seen;
    for (const auto& [key, value] : map.entries) {
      if (!key.is_scalar()) {
        fail(key, "expected a plain key in " + where);
      }
      const std::string& name = key.text;
      if (!seen.insert(name).second) {
        fail(key, "duplicate key " + quoted(name) + " in " + where);
      }
      if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
        fail(key, "unknown key " + quoted(name) + " in " + where + did_you_mean(name, known));
      }
      m_key_mark = key.mark;
      handle(name, key, value);
    }
  }

  const std::string& scalar(const YamlNode& node, const std::string& key) const {
    if (!node.is_scalar()) {
      fail(node, "expected a single value for " + quoted(key));
    }
    return node.text;
  }

  Sourced<bool> read_bool(const YamlNode& node, const std::string& key) const {
    std::string text = scalar(node, key);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
      return static_cast<char>(std::tolower(c));
    });
    if (text == "true" || text == "yes" || text == "on") {
      return {true, origin_of(m_file, node)};
    }
    if (text == "false" || text == "no" || text == "off") {
      return {false, origin_of(m_file, node)};
    }
    fail(node, "expected true or false for " + quoted(key) + ", got " + quoted(node.text));
  }

  Sourced<Duration> read_duration(const YamlNode& node, const std::string& key) const {
    const std::string& text = scalar(node, key);
    const auto duration = parse_duration(text);
    if (!duration) {
      fail(node,
           "invalid duration " + quoted(text) + " for " + quoted(key) +
               " (use seconds such as 5 or 0.5, or 250ms, 90s, 15m, 6h)");
    }
    return {*duration, origin_of(m_file, node)};
  }

  Sourced<int> read_exit_code(const YamlNode& node, const std::string& key) const {
    const std::string& text = scalar(node, key);
    const auto value = parse_exit_code(text);
    if (!value) {
      fail(node,
           "invalid exit code " + quoted(text) + " for " + quoted(key) + " (expected 0 to 255)");
    }
    return {*value, origin_of(m_file, node)};
  }

  Sourced<std::string> read_path(const YamlNode& node, const std::string& key) const {
    const std::string& text = scalar(node, key);
    if (const auto problem = path_problem(text)) {
      fail(node, "invalid path " + quoted(text) + " for " + quoted(key) + ": it " + *problem);
    }
    return {text, origin_of(m_file, node)};
  }

  Sourced<std::string> read_choice(const YamlNode& node,
                                   const std::string& key,
                                   const std::vector<std::string>& choices) const {
    const std::string& text = scalar(node, key);
    if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
      fail(node,
           "invalid " + key + " " + quoted(text) + did_you_mean(text, choices) +
               " (one of: " + join(choices, ", ") + ")");
    }
    return {text, origin_of(m_file, node)};
  }

  // 1 to k_max_slots, or `auto` (0 here): the number of online CPUs when loto runs.
  Sourced<int> read_slots(const YamlNode& node, const std::string& key) const {
    const std::string& text = scalar(node, key);
    if (text == "auto") {
      return {0, origin_of(m_file, node)};
    }
    const auto value = parse_exit_code(text); // digits only, 0 to 255
    if (!value || *value < 1 || *value > k_max_slots) {
      fail(node,
           "invalid slots " + quoted(text) + " (a number from 1 to " + std::to_string(k_max_slots) +
               ", or auto for one per CPU)");
    }
    return {*value, origin_of(m_file, node)};
  }

  // A limit of zero would stop every job at once: a typo, not a policy.
  void read_job_limit(const YamlNode& value, const std::string& key, PolicySettings& policy) const {
    Sourced<Duration> limit = read_duration(value, key);
    if (limit.value == Duration::zero() && key != "kill_after") {
      fail(value, "invalid " + key + " 0 (use a duration above zero, or leave the key out)");
    }
    (key == "max_runtime"  ? policy.max_runtime
     : key == "warn_after" ? policy.warn_after
                           : policy.kill_after) = limit;
  }

  PolicySettings read_policy(const YamlNode& map,
                             const std::string& where,
                             bool is_resource,
                             ResourceConfig* resource) {
    std::vector<std::string> known{"wait",
                                   "timeout",
                                   "conflict_exit_code",
                                   "inherit_lock",
                                   "max_runtime",
                                   "kill_after",
                                   "warn_after",
                                   "leftovers",
                                   "queue"};
    // Resource-only keys are known in defaults: too, to say where they belong.
    known.insert(known.begin(), {"path", "backend", "slots", "description"});
    PolicySettings policy;
    for_each_entry(
        map,
        where,
        known,
        [&](const std::string& key, const YamlNode& key_node, const YamlNode& value) {
          if (!is_resource &&
              (key == "path" || key == "backend" || key == "slots" || key == "description")) {
            fail(key_node,
                 quoted(key) + " is set per resource, not in " + where +
                     " (move it under resources: NAME:)");
          }
          if (key == "wait") {
            policy.wait = read_bool(value, key);
          } else if (key == "timeout") {
            policy.timeout = read_duration(value, key);
          } else if (key == "conflict_exit_code") {
            policy.conflict_exit_code = read_exit_code(value, key);
          } else if (key == "inherit_lock") {
            policy.inherit_lock = read_bool(value, key);
          } else if (key == "max_runtime" || key == "kill_after" || key == "warn_after") {
            read_job_limit(value, key, policy);
          } else if (key == "leftovers") {
            policy.leftovers = read_choice(value, key, leftover_mode_names());
          } else if (key == "queue") {
            policy.queue = read_choice(value, key, {"fifo", "none"});
          } else if (key == "slots") {
            resource->slots = read_slots(value, key);
            resource->slots_position = position(m_file, value.mark);
          } else if (key == "path") {
            resource->path = read_path(value, key);
          } else if (key == "backend") {
            resource->backend = read_choice(value, key, {"flock", "etcd"});
            resource->backend_position = position(m_file, value.mark);
          } else {
            resource->description = scalar(value, key);
          }
        });
    return policy;
  }

  LoggingSettings read_logging(const YamlNode& map) {
    LoggingSettings logging;
    for_each_entry(
        map,
        "logging",
        {"syslog", "facility", "ident", "level"},
        [&](const std::string& key, const YamlNode& /*key_node*/, const YamlNode& value) {
          if (key == "syslog") {
            logging.syslog = read_bool(value, key);
          } else if (key == "facility") {
            logging.facility = read_choice(value, key, syslog_facilities());
          } else if (key == "level") {
            logging.level = read_choice(value, key, log_levels());
          } else {
            const std::string ident = scalar(value, key);
            if (!is_valid_resource_name(ident) || ident.size() > 32) {
              fail(value,
                   "invalid ident " + quoted(ident) +
                       " (1 to 32 letters, digits, '.', '_' or '-')");
            }
            logging.ident = Sourced<std::string>{ident, origin_of(m_file, value)};
          }
        });
    return logging;
  }

  EtcdSettings read_etcd(const YamlNode& map) {
    EtcdSettings etcd;
    for_each_entry(
        map,
        "etcd",
        {"endpoints", "ttl", "prefix", "ca_file", "cert_file", "key_file", "user", "password_file"},
        [&](const std::string& key, const YamlNode& /*key_node*/, const YamlNode& value) {
          if (read_etcd_access(etcd, key, value)) {
            return;
          }
          if (key == "endpoints") {
            etcd.endpoints = read_endpoints(value);
          } else if (key == "ttl") {
            etcd.ttl = read_duration(value, key);
            // etcd counts leases in whole seconds, and loto must be able to renew well
            // inside one: under a second cannot work.
            if (etcd.ttl->value < std::chrono::seconds(1) ||
                etcd.ttl->value > std::chrono::hours(1)) {
              fail(value,
                   "invalid ttl " + quoted(value.text) + " for etcd (use 1s to 1h; 10s is usual)");
            }
          } else {
            const std::string& prefix = scalar(value, key);
            if (prefix.empty() || prefix.size() > 128 ||
                std::any_of(prefix.begin(), prefix.end(), [](char c) {
                  const auto u = static_cast<unsigned char>(c);
                  return u <= 0x20 || u == 0x7F;
                })) {
              fail(value,
                   "invalid prefix " + quoted(prefix) +
                       " for etcd (1 to 128 characters, no spaces or control characters)");
            }
            etcd.prefix = Sourced<std::string>{prefix, origin_of(m_file, value)};
          }
        });
    return etcd;
  }

  // The TLS and authentication keys of the etcd section; false for the others.
  bool read_etcd_access(EtcdSettings& etcd, const std::string& key, const YamlNode& value) const {
    std::optional<Sourced<std::string>>* slot = nullptr;
    if (key == "ca_file") {
      slot = &etcd.ca_file;
    } else if (key == "cert_file") {
      slot = &etcd.cert_file;
    } else if (key == "key_file") {
      slot = &etcd.key_file;
    } else if (key == "password_file") {
      slot = &etcd.password_file;
    } else if (key == "user") {
      const std::string& user = scalar(value, key);
      if (user.empty() || user.size() > 128 || std::any_of(user.begin(), user.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u < 0x20 || u == 0x7F;
          })) {
        fail(value,
             "invalid user " + quoted(user) +
                 " for etcd (1 to 128 characters, no control characters)");
      }
      etcd.user = Sourced<std::string>{user, origin_of(m_file, value)};
    } else {
      return false;
    }
    if (slot != nullptr) {
      *slot = read_path(value, key);
    }
    etcd.positions[key] = position(m_file, value.mark);
    return true;
  }

  // One URL or a list of them.
  Sourced<std::vector<std::string>> read_endpoints(const YamlNode& node) const {
    std::vector<const YamlNode*> items;
    if (node.kind == YamlNode::Kind::sequence) {
      for (const auto& item : node.items) {
        items.push_back(&item);
      }
    } else {
      items.push_back(&node);
    }
    if (items.empty()) {
      fail(node, "expected at least one URL for 'endpoints'");
    }
    Sourced<std::vector<std::string>> endpoints{{}, origin_of(m_file, node)};
    for (const YamlNode* item : items) {
      const std::string& url = scalar(*item, "endpoints");
      if (!is_endpoint_url(url)) {
        fail(*item,
             "invalid etcd endpoint " + quoted(url) +
                 " (expected http://HOST:PORT or https://HOST:PORT, with no path)");
      }
      endpoints.value.push_back(url);
    }
    return endpoints;
  }

  void read_resources(const YamlNode& map, std::map<std::string, ResourceConfig>& resources) {
    for_each_entry(map,
                   "resources",
                   {},
                   [&](const std::string& name, const YamlNode& key, const YamlNode& value) {
                     if (!is_valid_resource_name(name)) {
                       fail(key,
                            "invalid resource name " + quoted(name) +
                                " (a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -)");
                     }
                     ResourceConfig resource;
                     resource.origin = origin_of(m_file, key);
                     resource.policy =
                         read_policy(value, "resource " + quoted(name), true, &resource);
                     resources[name] = std::move(resource);
                   });
  }

  const std::string& m_file;
  YAML::Mark m_key_mark = YAML::Mark::null_mark(); // the key being read
};

// Line and column (1-based) of byte `offset` in `text`.
std::string text_position(std::string_view text, std::size_t offset) {
  const std::string_view before = text.substr(0, offset);
  const auto line = std::count(before.begin(), before.end(), '\n') + 1;
  const auto line_start = before.rfind('\n');
  const std::size_t column =
      line_start == std::string_view::npos ? offset + 1 : offset - line_start;
  return std::to_string(line) + ":" + std::to_string(column);
}

template <typename T>
void override_with(std::optional<Sourced<T>>& base, std::optional<Sourced<T>>& later) {
  if (later) {
    base = std::move(later);
  }
}

void override_policy(PolicySettings& base, PolicySettings& later) {
  override_with(base.wait, later.wait);
  override_with(base.timeout, later.timeout);
  override_with(base.conflict_exit_code, later.conflict_exit_code);
  override_with(base.inherit_lock, later.inherit_lock);
  override_with(base.max_runtime, later.max_runtime);
  override_with(base.kill_after, later.kill_after);
  override_with(base.warn_after, later.warn_after);
  override_with(base.leftovers, later.leftovers);
  override_with(base.queue, later.queue);
}

// Like sshd's StrictModes: every directory above a config file must be owned by root or
// the running user, and not writable by group or others unless sticky (as /tmp is), or someone
// else could swap the file after loto checked it.
void check_directories_above(const std::string& path, const std::string& what = "config file") {
  std::array<char, PATH_MAX> resolved{};
  if (::realpath(path.c_str(), resolved.data()) == nullptr) {
    config_error("cannot resolve " + what + " " + quoted(path) + ": " + std::strerror(errno));
  }
  std::string dir = resolved.data();
  while (dir != "/") {
    const auto slash = dir.rfind('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      config_error("cannot inspect directory " + quoted(dir) + ": " + std::strerror(errno));
    }
    if (st.st_uid != 0 && st.st_uid != ::getuid()) {
      config_error(what + " " + quoted(path) + " is in an insecure directory " + quoted(dir) +
                   " (owned by uid " + std::to_string(st.st_uid) +
                   "); keep it where only root or you can write");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
      config_error(what + " " + quoted(path) + " is in an insecure directory " + quoted(dir) +
                   " (writable by group or others and not sticky); run: chmod go-w " + quoted(dir));
    }
  }
}

} // namespace

Config parse_config(std::string_view text, const std::string& file_name) {
  if (const auto bad = find_invalid_utf8(text)) {
    config_error(file_name + ":" + text_position(text, *bad) +
                 ": invalid UTF-8; save the file as UTF-8");
  }
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    config_error(file_name + ":" + text_position(text, nul) + ": NUL byte in the file");
  }
  if (std::all_of(text.begin(), text.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) != 0;
      })) {
    config_error(file_name + ": the file is empty; add settings, a comment, or remove the file");
  }
  try {
    std::istringstream input{std::string(text)};
    YAML::Parser parser(input);
    TreeBuilder builder(file_name);
    int documents = 0;
    while (parser.HandleNextDocument(builder)) {
      if (++documents > 1) {
        config_error(position(file_name, builder.document_start()) +
                     ": a second YAML document; keep one document per file");
      }
    }
    return Reader(file_name).read_root(builder.root());
  } catch (const YAML::DeepRecursion& e) {
    config_error(position(file_name, e.mark) + ": nested too deep");
  } catch (const YAML::Exception& e) {
    // yaml-cpp quotes the offending byte raw; keep the message one printable line.
    config_error(position(file_name, e.mark) + ": " + escape(e.msg));
  }
}

void merge_config(Config& base, Config later) {
  override_with(base.lock_dir, later.lock_dir);
  override_with(base.metrics_dir, later.metrics_dir);
  override_policy(base.defaults, later.defaults);
  override_with(base.logging.syslog, later.logging.syslog);
  override_with(base.logging.facility, later.logging.facility);
  override_with(base.logging.ident, later.logging.ident);
  override_with(base.logging.level, later.logging.level);
  override_with(base.etcd.endpoints, later.etcd.endpoints);
  override_with(base.etcd.ttl, later.etcd.ttl);
  override_with(base.etcd.prefix, later.etcd.prefix);
  override_with(base.etcd.ca_file, later.etcd.ca_file);
  override_with(base.etcd.cert_file, later.etcd.cert_file);
  override_with(base.etcd.key_file, later.etcd.key_file);
  override_with(base.etcd.user, later.etcd.user);
  override_with(base.etcd.password_file, later.etcd.password_file);
  for (auto& [key, where] : later.etcd.positions) {
    base.etcd.positions[key] = std::move(where);
  }
  for (auto& [name, resource] : later.resources) {
    if (const auto it = base.resources.find(name); it != base.resources.end()) {
      config_error(resource.origin + ": resource " + quoted(name) + " is already defined at " +
                   it->second.origin + "; define it once");
    }
    base.resources.emplace(name, std::move(resource));
  }
  base.files.insert(base.files.end(), later.files.begin(), later.files.end());
}

std::string read_trusted_file(const std::string& path) {
  const std::string name = quoted(path);
  // O_NONBLOCK: a FIFO planted at the path must not hang loto in open().
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    config_error("cannot open config file " + name + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    explicit Closer(int descriptor) : fd(descriptor) {}
    Closer(const Closer&) = delete;
    Closer& operator=(const Closer&) = delete;
    ~Closer() {
      ::close(fd);
    }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    config_error("cannot stat config file " + name + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    config_error("config file " + name + " is not a regular file" +
                 (S_ISDIR(st.st_mode) ? " (it is a directory)" : ""));
  }
  if (st.st_uid != 0 && st.st_uid != ::getuid()) {
    config_error("config file " + name + " is owned by uid " + std::to_string(st.st_uid) +
                 "; it must be owned by root or by uid " + std::to_string(::getuid()));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    config_error("config file " + name + " is writable by group or others; run: chmod go-w " +
                 name);
  }
  check_directories_above(path);
  if (static_cast<std::size_t>(st.st_size) > k_max_config_size) {
    config_error("config file " + name + " is too large (" + std::to_string(st.st_size) +
                 " bytes; the limit is 1 MiB)");
  }
  auto text = read_to_end(fd, static_cast<std::size_t>(st.st_size), k_max_config_size);
  if (!text) {
    config_error("cannot read config file " + name + ": " + std::strerror(errno));
  }
  if (text->size() > k_max_config_size) {
    config_error("config file " + name + " is too large (the limit is 1 MiB)");
  }
  return std::move(*text);
}

Config load_config(const ConfigSource& source) {
  Config config;
  struct stat st {};
  const bool exists = ::lstat(source.path.c_str(), &st) == 0 || errno != ENOENT;
  if (exists) {
    config = parse_config(read_trusted_file(source.path), source.path);
  } else if (source.must_exist) {
    config_error("config file " + quoted(source.path) + " does not exist");
  } // else: no system file, so the built-in defaults serve; drop-ins are still read.

  std::string drop_in_dir = source.path;
  if (drop_in_dir.ends_with(".yaml")) {
    drop_in_dir.resize(drop_in_dir.size() - 5);
  }
  drop_in_dir += ".d";
  DIR* dir = ::opendir(drop_in_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return config;
    }
    config_error("cannot read drop-in directory " + quoted(drop_in_dir) + ": " +
                 std::strerror(errno));
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name[0] != '.' && name.size() > 5 && name.ends_with(".yaml")) {
      names.push_back(name);
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string path = drop_in_dir + "/" + name;
    merge_config(config, parse_config(read_trusted_file(path), path));
  }
  return config;
}

namespace {
constexpr std::array<LeftoverMode, 3> k_leftover_modes{
    LeftoverMode::leave, LeftoverMode::wait, LeftoverMode::kill};
} // namespace

std::vector<std::string> leftover_mode_names() {
  std::vector<std::string> names;
  for (const LeftoverMode mode : k_leftover_modes) {
    names.emplace_back(leftover_mode_name(mode));
  }
  return names;
}

const char* leftover_mode_name(LeftoverMode mode) {
  switch (mode) {
  case LeftoverMode::wait:
    return "wait";
  case LeftoverMode::kill:
    return "kill";
  case LeftoverMode::leave:
    break;
  }
  return "leave";
}

std::optional<LeftoverMode> parse_leftover_mode(std::string_view name) {
  for (const LeftoverMode mode : k_leftover_modes) {
    if (name == leftover_mode_name(mode)) {
      return mode;
    }
  }
  return std::nullopt;
}

} // namespace loto

namespace loto {

void check_etcd_settings(const EtcdSettings& etcd) {
  const auto at = [&etcd](const std::string& key) {
    const auto found = etcd.positions.find(key);
    return found == etcd.positions.end() ? std::string("etcd") : found->second;
  };
  if (etcd.cert_file.has_value() != etcd.key_file.has_value()) {
    const std::string given = etcd.cert_file ? "cert_file" : "key_file";
    const std::string missing = etcd.cert_file ? "key_file" : "cert_file";
    config_error(at(given) + ": etcd " + given + " is set but " + missing +
                 " is not; a client certificate needs both (or neither)");
  }
  if (etcd.user.has_value() != etcd.password_file.has_value()) {
    const std::string given = etcd.user ? "user" : "password_file";
    const std::string missing = etcd.user ? "password_file" : "user";
    config_error(at(given) + ": etcd " + given + " is set but " + missing +
                 " is not; etcd authentication needs both (or neither)");
  }
  if (!etcd.endpoints) {
    return;
  }
  for (const char* key : {"ca_file", "cert_file"}) {
    if (!etcd.positions.contains(key)) {
      continue;
    }
    for (const std::string& url : etcd.endpoints->value) {
      if (!url.starts_with("https://")) {
        config_error(at(key) + ": etcd " + key + " is set, but the endpoint " + quoted(url) +
                     " is not https://; TLS settings need https endpoints");
      }
    }
  }
}

void check_etcd_file(const std::string& path,
                     const std::string& key,
                     const std::string& position,
                     bool secret) {
  const std::string what = key + " " + quoted(path);
  const auto fail = [&position](const std::string& message) {
    config_error(position + ": " + message);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    config_error(position + ": cannot open " + what + ": " + std::strerror(errno));
  }
  struct stat st {};
  const int stat_result = ::fstat(fd, &st);
  ::close(fd);
  if (stat_result != 0) {
    fail("cannot stat " + what + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    fail(what + " is not a regular file");
  }
  if (st.st_uid != 0 && st.st_uid != ::getuid()) {
    fail(what + " is owned by uid " + std::to_string(st.st_uid) +
         "; it must be owned by root or by uid " + std::to_string(::getuid()));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    fail(what + " is writable by group or others; run: chmod go-w " + quoted(path));
  }
  if (secret && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    fail(what + " is readable by group or others; run: chmod go-rw " + quoted(path));
  }
  try {
    check_directories_above(path, key);
  } catch (const Error& error) {
    fail(error.what());
  }
}

} // namespace loto
