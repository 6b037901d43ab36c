// A loopback HTTP/1.1 server for the helper's unit tests (Transfer, Multi, Renewal): it runs
// on a thread of its own and answers each request with what the test scripted for it.
#pragma once

#include "lock/etcd/helper/http.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace loto::etcd_helper::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// What FakeServer does with one request.
struct Canned {
  std::vector<std::string> parts; // written in turn, `pause` apart
  std::chrono::milliseconds pause{0};
  bool close = false; // then close the connection
  bool hang = false;  // then answer nothing more, until the client closes the connection
};

// A loopback HTTP/1.1 server on a thread of its own: each request (headers and a
// Content-Length body) gets what `respond` returns for it. One connection at a time, or
// each on a thread of its own (`Connections::at_once`, for a client that keeps one per kind
// of request, as the helper's Session does).
class FakeServer {
public:
  using Respond = std::function<Canned(std::size_t index)>;
  // The request's index and its whole text (head and body).
  using RespondTo = std::function<Canned(std::size_t index, const std::string& request)>;
  enum class Connections { one_at_a_time, at_once };

  explicit FakeServer(Respond respond)
      : FakeServer([respond = std::move(respond)](std::size_t index,
                                                  const std::string&) { return respond(index); },
                   Connections::one_at_a_time) {}

  FakeServer(RespondTo respond, Connections connections)
      : m_respond(std::move(respond)), m_at_once(connections == Connections::at_once),
        m_listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(m_listener, reinterpret_cast<sockaddr*>(&address), length) == 0);
    REQUIRE(::listen(m_listener, 8) == 0);
    REQUIRE(::getsockname(m_listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    m_stop = true;
    m_thread.join();
    for (std::thread& talker : m_talkers) {
      talker.join();
    }
    ::close(m_listener);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(m_port);
  }
  int connections() const {
    return m_connections;
  }
  // Connections the client closed while the server still had them open.
  int closed_by_client() const {
    return m_closed_by_client;
  }
  std::vector<std::string> requests() const {
    const std::lock_guard<std::mutex> lock(m_mutex);
    return m_requests;
  }

private:
  // Whether `fd` became readable within 10 ms; false once told to stop.
  bool readable(int fd) const {
    pollfd entry{fd, POLLIN, 0};
    return !m_stop && ::poll(&entry, 1, 10) > 0;
  }

  void serve() {
    while (!m_stop) {
      if (!readable(m_listener)) {
        continue;
      }
      const int connection = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
      ++m_connections;
      if (m_at_once) {
        m_talkers.emplace_back([this, connection] {
          talk(connection);
          ::close(connection);
        });
        continue;
      }
      talk(connection);
      ::close(connection);
    }
  }

  // The next request on `connection`, or nullopt at its end.
  std::optional<std::string> read_request(int connection, std::string& pending) const {
    while (true) {
      const auto head_end = pending.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const auto field = pending.find("Content-Length: ");
        const std::size_t body = field < head_end ? std::stoul(pending.substr(field + 16)) : 0;
        if (pending.size() >= head_end + 4 + body) {
          std::string request = pending.substr(0, head_end + 4 + body);
          pending.erase(0, request.size());
          return request;
        }
      }
      if (m_stop) {
        return std::nullopt;
      }
      if (!readable(connection)) {
        continue;
      }
      std::array<char, 4096> buffer{};
      const ssize_t count = ::read(connection, buffer.data(), buffer.size());
      if (count <= 0) {
        return std::nullopt;
      }
      pending.append(buffer.data(), static_cast<std::size_t>(count));
    }
  }

  void talk(int connection) {
    std::string pending;
    while (const auto request = read_request(connection, pending)) {
      std::size_t index = 0;
      {
        const std::lock_guard<std::mutex> lock(m_mutex);
        index = m_requests.size();
        m_requests.push_back(*request);
      }
      const Canned canned = m_respond(index, *request);
      for (const std::string& part : canned.parts) {
        if (part != canned.parts.front()) {
          std::this_thread::sleep_for(canned.pause);
        }
        static_cast<void>(::send(connection, part.data(), part.size(), MSG_NOSIGNAL));
      }
      if (canned.close) {
        return;
      }
      if (canned.hang) {
        std::array<char, 256> buffer{};
        while (!m_stop) {
          if (readable(connection) && ::read(connection, buffer.data(), buffer.size()) <= 0) {
            ++m_closed_by_client;
            return;
          }
        }
        return;
      }
    }
    if (!m_stop) {
      ++m_closed_by_client;
    }
  }

  RespondTo m_respond;
  bool m_at_once = false;
  int m_listener = -1;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_connections{0};
  std::atomic<int> m_closed_by_client{0};
  mutable std::mutex m_mutex;
  std::vector<std::string> m_requests;
  std::thread m_thread;
  std::vector<std::thread> m_talkers; // with Connections::at_once: one per connection
};

// One whole JSON answer: "404", "Not Found", the body, and any headers of its own.
inline std::string answer_with(int status,
                               std::string_view reason,
                               std::string_view body,
                               std::string_view extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: application/json\r\n" + std::string(extra_headers) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

inline std::string ok_answer(std::string_view body, std::string_view extra_headers = "") {
  return answer_with(200, "OK", body, extra_headers);
}

// etcd's JSON gateway, as the helper's tests need it: a member that cannot serve, a token
// etcd no longer takes, and a token it gives.
inline const std::string k_unavailable_answer =
    answer_with(503,
                "Service Unavailable",
                R"({"error":"transport is closing","message":"transport is closing","code":14})");
inline const std::string k_token_expired_answer = answer_with(
    401,
    "Unauthorized",
    R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})");
inline std::string token_answer(std::string_view token) {
  return ok_answer(R"({"header":{"revision":"1"},"token":")" + std::string(token) + R"("})");
}

// Runs `multi` until `transfer` finished, or `limit` passed; returns whether it finished.
inline bool pump(Multi& multi, const Transfer& transfer, std::chrono::milliseconds limit = 3s) {
  const auto until = Clock::now() + limit;
  while (transfer.running() && Clock::now() < until) {
    multi.wait(-1, 20);
    static_cast<void>(multi.finished());
  }
  return !transfer.running();
}

inline long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// A loopback port nobody listens on.
inline std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The URL of a loopback endpoint nobody listens on.
inline std::string silent_endpoint() {
  return "http://127.0.0.1:" + std::to_string(closed_port());
}

inline constexpr Timeouts k_test_timeouts{1000, 2000};

// A password file for etcd.user, removed at the end of the test.
class PasswordFile {
public:
  PasswordFile() {
    std::string pattern = "/tmp/loto-etcd-test.XXXXXX";
    const int fd = ::mkstemp(pattern.data());
    REQUIRE(fd >= 0);
    ::close(fd);
    m_path = pattern;
    std::ofstream(m_path) << "secret\n";
  }
  ~PasswordFile() {
    ::unlink(m_path.c_str());
  }
  PasswordFile(const PasswordFile&) = delete;
  PasswordFile& operator=(const PasswordFile&) = delete;
  const std::string& path() const {
    return m_path;
  }

private:
  std::string m_path;
};

} // namespace loto::etcd_helper::testing
