#include "lock/etcd/helper/channel.hpp"

#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/protocol.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace loto::etcd_helper {

namespace {

// Protocol lines are short; a longer one is not loto's.
constexpr std::size_t k_max_line = 4096;

} // namespace

bool Channel::send(std::initializer_list<std::string_view> fields) const {
  std::string line;
  for (const std::string_view field : fields) {
    if (!line.empty()) {
      line += etcd_protocol::k_separator;
    }
    line += one_line(field);
  }
  line += '\n';
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t written = write(m_fd, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written < 0 && errno == EAGAIN) { // EWOULDBLOCK is EAGAIN on Linux
      // The event loop watches the descriptor, which makes it non-blocking: wait for room
      // as a blocking write would.
      pollfd room{m_fd, POLLOUT, 0};
      static_cast<void>(poll(&room, 1, -1));
      continue;
    }
    if (written <= 0) {
      return false;
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

Channel::Heard Channel::receive() {
  std::array<char, 512> buffer{};
  const ssize_t count = read(m_fd, buffer.data(), buffer.size());
  if (count < 0 && (errno == EINTR || errno == EAGAIN)) {
    return Heard::nothing;
  }
  if (count <= 0) {
    return Heard::end;
  }
  m_pending.append(buffer.data(), static_cast<std::size_t>(count));
  Heard heard = Heard::nothing;
  for (auto end = m_pending.find('\n'); end != std::string::npos; end = m_pending.find('\n')) {
    if (std::string_view(m_pending).substr(0, end) == etcd_protocol::k_release) {
      heard = Heard::release;
    }
    m_pending.erase(0, end + 1);
  }
  if (m_pending.size() > k_max_line) {
    m_pending.clear();
  }
  return heard;
}

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

} // namespace loto::etcd_helper
