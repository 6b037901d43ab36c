// Who runs loto, for the audit records and a fleet lock's holder record.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace loto {

// The name /etc/passwd's `text` gives `uid` (its first entry for it), if any. NIS
// compatibility lines ("+", "-") are skipped.
std::optional<std::string> name_in_passwd(std::string_view text, unsigned uid);

// The name of `uid`, or the uid in decimal when it has none.
std::string user_name(unsigned uid);

// The running user's name, or the uid in decimal when it has none.
std::string running_user_name();

// The command line of process `pid` as join_command() writes it, from /proc/PID/cmdline;
// empty when the process is gone or out of reach (or a kernel thread).
std::string command_line_of(int pid);

} // namespace loto
