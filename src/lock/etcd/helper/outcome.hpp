// How a helper run ends early. Each is thrown from wherever it is found out (a reply, the
// renewal, descriptor 3) and caught in Session::run, which tells loto and cleans up.
// Also the clock of the SENT_NS stamps.
#pragma once

#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>

namespace loto::etcd_helper {

// Nothing is (or stays) taken: "failed CODE MESSAGE"; CODE is loto's exit code.
struct Failure : std::runtime_error {
  Failure(int exit_code, const std::string& message)
      : std::runtime_error(message), code(exit_code) {}
  int code;
};

// The lease or the key is gone: "lost REASON". `revoke` when the lease may still exist
// (our key was deleted, or etcd went out of reach) and must not outlive us.
struct Lost : std::runtime_error {
  Lost(const std::string& reason, bool revoke_lease)
      : std::runtime_error(reason), revoke(revoke_lease) {}
  bool revoke;
};

// loto said "release".
struct ReleaseAsked {};

// loto is gone: end of file on descriptor 3, or a write to it failed.
struct LotoGone {};

// CLOCK_MONOTONIC in nanoseconds: the clock of every SENT_NS that loto reads.
inline std::int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

inline constexpr std::int64_t k_ns_per_ms = 1'000'000;

} // namespace loto::etcd_helper
