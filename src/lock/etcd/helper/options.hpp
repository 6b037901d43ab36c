// The helper's command line (fixed in lock/etcd/protocol.hpp):
//   loto-etcd --endpoints URL[,URL...] --ttl-ms N --name LOCKNAME
//             (--try | --wait | --inspect) [--slots N] [--host H --pid P --user U --command C]
//             [--ca-file F] [--cert-file F --key-file F] [--etcd-user U --password-file F]
#pragma once

#include "lock/etcd/helper/holder.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

enum class Mode {
  try_once, // --try: take the lock if it is free, else report who holds it
  wait,     // --wait: queue for the lock
  inspect,  // --inspect: report the holder, take nothing
};

// How the helper proves who it is, and checks who the cluster is. Paths only: secrets
// stay in files and never appear on a command line (which ps shows to everyone).
struct Credentials {
  std::string ca_file;       // "": the system's trusted CAs verify https endpoints
  std::string cert_file;     // the TLS client certificate, with key_file; "": none
  std::string key_file;      // its private key
  std::string user;          // etcd user to authenticate as; "": none
  std::string password_file; // that user's password: the file's first line
};

struct Options {
  std::vector<std::string> endpoints; // base URLs, "http://host:port", no trailing '/'
  std::int64_t ttl_ms = 0;            // 0 only with --inspect
  std::string name;                   // the lock name, e.g. "loto/nightly"
  Mode mode = Mode::try_once;
  int slots = 1; // how many may hold the lock at once (semaphore.hpp); 1: etcd's mutex
  HolderRecord holder;
  Credentials credentials;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The lease TTL bounds: a shorter one would renew every few milliseconds, a longer one
// than a year is a typo.
inline constexpr std::int64_t k_min_ttl_ms = 100;
inline constexpr std::int64_t k_max_ttl_ms = 366LL * 24 * 3600 * 1000;
// loto's own bound on slots: N (config.hpp's k_max_slots).
inline constexpr int k_max_slots = 128;

// The options in `args` (argv without the program name); throws UsageError. Each option
// takes its value as the next word or after '=' (--ttl-ms=5000).
Options parse_options(const std::vector<std::string_view>& args);

// One endpoint as given ("10.0.0.5:2379", "https://etcd1:2379/") turned into the base URL
// the requests are built on ("http://10.0.0.5:2379", "https://etcd1:2379").
std::string endpoint_url(std::string_view endpoint);

inline constexpr std::string_view k_usage =
    "usage: loto-etcd --endpoints URL[,URL...] --ttl-ms N --name LOCKNAME\n"
    "                 (--try | --wait | --inspect) [--slots N]\n"
    "                 [--host H --pid P --user U --command C]\n"
    "                 [--ca-file F] [--cert-file F --key-file F]\n"
    "                 [--etcd-user U --password-file F]\n"
    "loto's helper for etcd locks: it talks to loto over descriptor 3 "
    "(see lock/etcd/protocol.hpp).\n";

} // namespace loto::etcd_helper
