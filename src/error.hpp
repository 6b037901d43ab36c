// The one error type loto throws, and the exit codes it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace loto {

// Exit codes for loto's own outcomes (sysexits.h values where one fits).
// The command's own status passes through unchanged.
namespace exit_code {
inline constexpr int usage = 64;         // EX_USAGE: bad option or value, unknown resource
inline constexpr int unavailable = 69;   // EX_UNAVAILABLE: etcd unreachable, or the lock lost
inline constexpr int os_error = 71;      // EX_OSERR: fork, timer, ... failed
inline constexpr int cannot_create = 73; // EX_CANTCREAT: cannot create or open the lock file
inline constexpr int busy = 75;          // EX_TEMPFAIL: lock not acquired (default)
inline constexpr int unsafe = 77;        // EX_NOPERM: lock file refused as unsafe
inline constexpr int config = 78;        // EX_CONFIG: configuration file invalid or untrusted
inline constexpr int overrun = 124;      // the job ran past its maximum runtime (as timeout(1))
inline constexpr int not_executable = 126;
inline constexpr int not_found = 127;
inline constexpr int signal_base = 128; // 128 + N: killed by or interrupted by signal N
} // namespace exit_code

// Anything the user must fix. Caught once in main, printed as "loto: error: <message>".
class Error : public std::runtime_error {
public:
  Error(int exit_code, const std::string& message)
      : std::runtime_error(message), m_exit_code(exit_code) {}

  int exit_code() const {
    return m_exit_code;
  }

private:
  int m_exit_code;
};

} // namespace loto
