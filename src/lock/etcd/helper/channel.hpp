// The helper's end of the socket loto gave it on descriptor 3 (or stdout, for a
// --inspect run from a shell): one-line messages out, "release" or end of file in.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace loto::etcd_helper {

class Channel {
public:
  explicit Channel(int fd) : m_fd(fd) {}

  int fd() const {
    return m_fd;
  }

  // Sends one message: `fields` joined by tabs, each made one line, then '\n'; waits for
  // room if the socket is full. Returns false if loto is gone (the write failed; SIGPIPE
  // is ignored).
  bool send(std::initializer_list<std::string_view> fields) const;

  enum class Heard {
    nothing, // a partial line, an unknown line, or an interrupted read
    release, // loto said "release"
    end,     // end of file or a read error: loto is gone
  };
  // Reads what loto sent, once poll() has found the descriptor ready (it may be
  // non-blocking: nothing to read is Heard::nothing).
  Heard receive();

private:
  int m_fd;
  std::string m_pending; // bytes of a line not complete yet
};

// Whether descriptor `fd` is open.
bool is_open(int fd);

} // namespace loto::etcd_helper
