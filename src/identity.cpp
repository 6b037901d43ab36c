#include "identity.hpp"

#include "text.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <vector>

namespace loto {

namespace {

constexpr std::size_t k_max_passwd_size = std::size_t{4} << 20; // then NSS alone

} // namespace

std::optional<std::string> name_in_passwd(std::string_view text, unsigned uid) {
  const std::string wanted = std::to_string(uid);
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    // name:password:uid:...
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    const auto third = second == std::string_view::npos ? second : line.find(':', second + 1);
    if (third == std::string_view::npos || first == 0 || line[0] == '+' || line[0] == '-') {
      continue;
    }
    if (line.substr(second + 1, third - second - 1) == wanted) {
      return std::string(line.substr(0, first));
    }
  }
  return std::nullopt;
}

// A user's name, for the audit records and --list. /etc/passwd is read directly first:
// glibc's NSS lookup (nscd probes, nsswitch.conf, stdio) cost 5% of a call's CPU time,
// measured. A user only a directory service knows (LDAP, sssd) comes from NSS.
std::string user_name(unsigned uid) {
  std::optional<std::string> passwd_text;
  if (const int fd = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC); fd >= 0) {
    passwd_text = read_to_end(fd, 4096, k_max_passwd_size);
    ::close(fd);
  }
  if (passwd_text && passwd_text->size() <= k_max_passwd_size) {
    if (auto name = name_in_passwd(*passwd_text, uid)) {
      return *name;
    }
  }
  std::array<char, 1024> buffer{};
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string running_user_name() {
  return user_name(::getuid());
}

std::string command_line_of(int pid) {
  const int fd =
      ::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return {};
  }
  const auto text = read_to_end(fd, 256, std::size_t{1} << 20);
  ::close(fd);
  if (!text) {
    return {};
  }
  std::vector<std::string> words;
  std::size_t start = 0;
  while (start < text->size()) {
    const auto end = std::min(text->find('\0', start), text->size());
    words.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return join_command(words);
}

} // namespace loto
