#include "lock/etcd/helper/http.hpp"

// GCC's flow-sensitive warnings are given for code of these system headers once it is
// inlined into ours: -Wnull-dereference in asio's scheduler, and (in sanitizer builds)
// -Wmaybe-uninitialized in Beast's parser. Diagnostic pragmas go by location: these turn
// them off for the headers' lines only, not for ours below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#pragma GCC diagnostic pop
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace loto::etcd_helper {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// An answer this long is not etcd's: stop reading rather than grow without end.
constexpr std::size_t k_max_answer = 64UL * 1024 * 1024;

// What a connection is made of. https endpoints (TLS, a later issue) will make this
// boost::beast::ssl_stream<tcp::socket> over OpenSSL, with a handshake between the
// connect and the first write, in Core::on_connected; everything else stays as it is.
using Stream = tcp::socket;

constexpr std::string_view k_tls_missing = "https endpoints need TLS support (not built yet)";

// Whether `fd` can be read without blocking, or its peer hung up.
bool descriptor_ready(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, 0) > 0 && (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

// Whether a connection kept from an earlier request can carry another: the server has
// neither closed it nor sent anything unasked.
bool still_open(Stream& stream) {
  pollfd entry{stream.native_handle(), POLLIN | POLLRDHUP, 0};
  return poll(&entry, 1, 0) == 0;
}

// The errors of a kept connection the server closed in the meantime: the request is sent
// again on a new one (nothing of an answer came back, so the server did not act on it).
bool closed_by_server(const error_code& error) {
  return error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::connection_aborted;
}

std::string describe(const error_code& error) {
  if (error == asio::error::eof) {
    return "the server closed the connection before the whole answer";
  }
  if (error == http::error::body_limit) {
    return "the answer is longer than 64 MiB";
  }
  if (error.category() == http::make_error_code(http::error::bad_version).category()) {
    return "not an HTTP answer: " + error.message();
  }
  return error.message();
}

} // namespace

Endpoint make_endpoint(std::string url) {
  Endpoint endpoint;
  endpoint.url = std::move(url);
  try {
    endpoint.parts = parse_endpoint_url(endpoint.url);
    endpoint.authority = host_and_port(endpoint.parts);
    if (endpoint.parts.https) {
      endpoint.unusable = k_tls_missing;
    }
  } catch (const BadUrl& bad) {
    endpoint.unusable = std::string("not a usable endpoint URL: ") + bad.what();
  }
  return endpoint;
}

std::string post_request(std::string_view authority, std::string_view path, std::string_view body) {
  std::string request;
  request.reserve(128 + path.size() + authority.size() + body.size());
  request.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(authority);
  request.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  request.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  return request;
}

// ---- Multi's state.

struct Multi::Impl {
  Impl() = default;
  ~Impl() {
    if (descriptor) {
      static_cast<void>(descriptor->release()); // loto's socket: the Channel's, not ours
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Run by one thread (the hint spares asio waking others); its locks stay, for the
  // resolver's thread.
  asio::io_context context{1};
  asio::steady_timer wake{context};
  std::uint64_t wake_arms = 0;
  std::optional<asio::posix::stream_descriptor> descriptor;
  bool descriptor_armed = false;
  bool progress = false;           // something wait() must return for happened
  std::vector<Transfer*> finished; // not yet collected by Multi::finished()
  int resolving = 0;               // name look-ups in flight (on asio's resolver thread)

  void forget(const Transfer* transfer) {
    finished.erase(std::remove(finished.begin(), finished.end(), transfer), finished.end());
  }
};

// ---- One transfer: its connection and the request in flight. The handlers of the
// operations in flight share it, so it outlives a Transfer destroyed under them; each
// handler first checks that it still belongs to the current request (`generation`).
//
// Each step starts the next operation from its completion handler (connect, write, read
// some, read some, ...): clang-tidy sees a cycle of calls, but asio never calls a handler
// from the function that starts the operation, so the stack does not grow.
// NOLINTBEGIN(misc-no-recursion)

struct Transfer::Core : std::enable_shared_from_this<Core> {
  Core(Multi::Impl& impl, Transfer& transfer)
      : multi(impl), owner(&transfer), stream(impl.context), timer(impl.context) {}

  Multi::Impl& multi;
  Transfer* owner; // null once the Transfer is gone
  Stream stream;
  asio::steady_timer timer;
  std::optional<tcp::resolver> resolver; // only for names, not for addresses
  std::string connected_to;              // the authority of the open connection, or ""

  // The request.
  Endpoint endpoint;
  std::string url;
  std::string request;
  Timeouts timeouts;
  LineHandler on_line;

  // Its progress.
  std::uint64_t generation = 0;
  bool active = false; // operations of this generation are in flight
  bool reused = false; // sent on a connection kept from an earlier request
  bool connecting = false;
  std::uint64_t timer_arms = 0;
  Clock::time_point connect_deadline;
  Clock::time_point total_deadline;
  boost::beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;

  // How it ended.
  bool running = false;
  TransferResult result = TransferResult::ok;
  long status = 0;
  std::string answer;
  std::string error;

  bool current(std::uint64_t of_generation) const {
    return active && of_generation == generation;
  }

  void begin() {
    ++generation;
    active = true;
    running = true;
    result = TransferResult::ok;
    status = 0;
    answer.clear();
    error.clear();
    const Clock::time_point now = Clock::now();
    total_deadline = timeouts.total_ms > 0 ? now + std::chrono::milliseconds(timeouts.total_ms)
                                           : Clock::time_point::max();
    if (!endpoint.unusable.empty()) {
      // Completes like any other failure: from the event loop, not from here.
      asio::post(multi.context, [self = shared_from_this(), gen = generation] {
        if (self->current(gen)) {
          self->complete(TransferResult::unusable, self->endpoint.unusable);
        }
      });
      return;
    }
    if (connected_to == endpoint.authority && still_open(stream)) {
      reused = true;
      arm_timer(total_deadline);
      send();
    } else {
      reused = false;
      connect();
    }
  }

  void connect() {
    close();
    connecting = true;
    connect_deadline = timeouts.connect_ms > 0
                           ? Clock::now() + std::chrono::milliseconds(timeouts.connect_ms)
                           : Clock::time_point::max();
    arm_timer(std::min(connect_deadline, total_deadline));
    error_code not_an_address;
    const asio::ip::address address = asio::ip::make_address(endpoint.parts.host, not_an_address);
    if (!not_an_address) {
      connect_to({tcp::endpoint(address, endpoint.parts.port)});
      return;
    }
    // A name: looked up on asio's resolver thread, so that the timer still applies.
    if (!resolver) {
      resolver.emplace(multi.context);
    }
    ++multi.resolving;
    resolver->async_resolve(
        endpoint.parts.host,
        std::to_string(endpoint.parts.port),
        tcp::resolver::numeric_service,
        [self = shared_from_this(), gen = generation](const error_code& failure,
                                                      const tcp::resolver::results_type& found) {
          --self->multi.resolving;
          if (!self->current(gen)) {
            return;
          }
          if (failure) {
            self->complete(TransferResult::unreachable,
                           "cannot resolve " + self->endpoint.parts.host + ": " +
                               failure.message());
            return;
          }
          std::vector<tcp::endpoint> addresses;
          for (const auto& entry : found) {
            addresses.push_back(entry.endpoint());
          }
          self->connect_to(addresses);
        });
  }

  // Tries `addresses` in turn.
  void connect_to(const std::vector<tcp::endpoint>& addresses) {
    asio::async_connect(stream,
                        addresses,
                        [self = shared_from_this(), gen = generation](
                            const error_code& failure, const tcp::endpoint& /*connected*/) {
                          if (!self->current(gen)) {
                            return;
                          }
                          if (failure) {
                            self->complete(TransferResult::unreachable, failure.message());
                            return;
                          }
                          self->on_connected();
                        });
  }

  void on_connected() {
    connecting = false;
    connected_to = endpoint.authority;
    error_code ignored;
    stream.set_option(tcp::no_delay(true), ignored); // each request is one write
    arm_timer(total_deadline);
    send();
  }

  void send() {
    asio::async_write(stream,
                      asio::buffer(request),
                      [self = shared_from_this(), gen = generation](const error_code& failure,
                                                                    std::size_t /*bytes*/) {
                        if (!self->current(gen)) {
                          return;
                        }
                        if (failure) {
                          self->fail(failure, false);
                          return;
                        }
                        self->read_answer();
                      });
  }

  void read_answer() {
    buffer.clear();
    parser.emplace();
    if (on_line) {
      parser->body_limit(boost::none); // a stream: lines are handed over as they come
    } else {
      parser->body_limit(std::uint64_t{k_max_answer});
    }
    read_some();
  }

  void read_some() {
    http::async_read_some(stream,
                          buffer,
                          *parser,
                          [self = shared_from_this(), gen = generation](const error_code& failure,
                                                                        std::size_t /*bytes*/) {
                            if (!self->current(gen)) {
                              return;
                            }
                            if (failure) {
                              self->fail(failure, self->parser->got_some());
                              return;
                            }
                            self->on_read();
                          });
  }

  void on_read() {
    if (on_line) {
      std::string& body = parser->get().body();
      answer += body;
      body.clear();
      if (answer.size() > k_max_answer) {
        complete(TransferResult::broken, "a line of the stream is longer than 64 MiB");
        return;
      }
      if (deliver_lines(false)) {
        multi.progress = true;
      }
    }
    if (!parser->is_done()) {
      read_some();
      return;
    }
    status = static_cast<long>(parser->get().result_int());
    if (!on_line) {
      answer = std::move(parser->get().body());
    }
    // Kept for the next request, unless the server means to close it (or sent more than
    // the answer, which no request asked for).
    if (!parser->get().keep_alive() || buffer.size() != 0) {
      close();
    }
    complete(TransferResult::ok, "");
  }

  // An operation failed; `answer_begun` once some of the answer was read.
  void fail(const error_code& failure, bool answer_begun) {
    if (reused && !answer_begun && closed_by_server(failure)) {
      reused = false; // the kept connection was closed meanwhile: once more on a new one
      connect();
      return;
    }
    complete(TransferResult::broken, describe(failure));
  }

  void arm_timer(Clock::time_point deadline) {
    const std::uint64_t arm = ++timer_arms;
    if (deadline == Clock::time_point::max()) {
      timer.cancel();
      return;
    }
    timer.expires_at(deadline);
    timer.async_wait(
        [self = shared_from_this(), gen = generation, arm](const error_code& cancelled) {
          if (!cancelled && self->current(gen) && arm == self->timer_arms) {
            self->on_timeout();
          }
        });
  }

  void on_timeout() {
    if (connecting && connect_deadline <= total_deadline) {
      complete(TransferResult::timed_out,
               "no connection within " + std::to_string(timeouts.connect_ms) + " ms");
    } else {
      complete(TransferResult::timed_out,
               "no answer within " + std::to_string(timeouts.total_ms) + " ms");
    }
  }

  // The request is over: `outcome` (`why` if not ok) is what Multi::finished() reports.
  void complete(TransferResult outcome, std::string why) {
    active = false;
    result = outcome;
    error = std::move(why);
    connecting = false;
    ++timer_arms;
    timer.cancel();
    if (outcome != TransferResult::ok) {
      close();
    }
    if (owner != nullptr) {
      multi.finished.push_back(owner);
    }
    multi.progress = true;
  }

  // Abandons the request in flight, if any (its connection is closed).
  void abandon() {
    if (active) {
      ++generation;
      active = false;
      close();
    }
    running = false;
    result = TransferResult::aborted;
    error = "stopped";
    on_line = nullptr; // it may refer to its caller's state, soon gone
    ++timer_arms;
    timer.cancel();
    if (owner != nullptr) {
      multi.forget(owner);
    }
  }

  void close() {
    if (resolver) {
      resolver->cancel();
    }
    error_code ignored;
    stream.close(ignored); // cancels the operations in flight on it
    connected_to.clear();
    connecting = false;
  }

  // Hands the complete lines collected in `answer` to on_line; at the end, the rest too.
  // Returns whether it handed over any.
  bool deliver_lines(bool at_end) {
    if (!on_line) {
      return false;
    }
    bool delivered = false;
    std::size_t start = 0;
    for (auto end = answer.find('\n'); end != std::string::npos; end = answer.find('\n', start)) {
      on_line(std::string_view(answer).substr(start, end - start));
      delivered = true;
      start = end + 1;
    }
    answer.erase(0, start);
    if (at_end && !answer.empty()) {
      on_line(answer);
      answer.clear();
      delivered = true;
    }
    return delivered;
  }
};

// NOLINTEND(misc-no-recursion)

// ---- Transfer.

Transfer::Transfer(Multi& multi) : m_core(std::make_shared<Core>(*multi.m_impl, *this)) {}

Transfer::~Transfer() {
  m_core->owner = nullptr;
  m_core->multi.forget(this);
  try {
    m_core->abandon();
    m_core->close();
  } catch (...) { // NOLINT(bugprone-empty-catch): asio's cancel() does not fail on its own
  }               // sockets and timers, and a destructor could do nothing about it anyway
}

void Transfer::prepare(const Endpoint& endpoint,
                       std::string_view path,
                       std::string_view body,
                       Timeouts timeouts,
                       LineHandler on_line) {
  Core& core = *m_core;
  core.endpoint = endpoint;
  core.url = endpoint.url + std::string(path);
  core.request = post_request(endpoint.authority, path, body);
  core.timeouts = timeouts;
  core.on_line = std::move(on_line);
  core.result = TransferResult::ok;
  core.status = 0;
  core.answer.clear();
  core.error.clear();
}

bool Transfer::running() const {
  return m_core->running;
}

const std::string& Transfer::url() const {
  return m_core->url;
}

TransferResult Transfer::result() const {
  return m_core->result;
}

long Transfer::http_status() const {
  return m_core->status;
}

const std::string& Transfer::answer() const {
  return m_core->answer;
}

std::string Transfer::transport_error() const {
  return one_line(m_core->error);
}

void Transfer::finish() {
  m_core->running = false;
  m_core->deliver_lines(true);
}

// ---- Multi.

Multi::Multi() : m_impl(std::make_unique<Impl>()) {}

Multi::~Multi() {
  if (m_impl->resolving > 0) {
    // The io_context would join asio's resolver thread, which may be stuck in
    // getaddrinfo() for as long as DNS takes to give up: let the exit end it instead.
    static_cast<void>(m_impl.release());
  }
}

void Multi::start(Transfer& transfer) {
  if (&transfer.m_core->multi != m_impl.get()) {
    throw std::logic_error("a transfer started on another Multi than its own");
  }
  transfer.m_core->begin();
}

void Multi::stop(Transfer& transfer) {
  if (&transfer.m_core->multi == m_impl.get() && transfer.m_core->running) {
    transfer.m_core->abandon();
  }
}

bool Multi::wait(int fd, int timeout_ms) {
  Impl& impl = *m_impl;
  if (impl.context.stopped()) {
    impl.context.restart(); // it stops whenever it runs out of work
  }
  if (fd >= 0) {
    if (impl.descriptor && impl.descriptor->native_handle() != fd) {
      static_cast<void>(impl.descriptor->release());
      impl.descriptor.reset();
      impl.descriptor_armed = false;
    }
    if (!impl.descriptor) {
      impl.descriptor.emplace(impl.context, fd);
    }
    if (!impl.descriptor_armed) {
      impl.descriptor_armed = true;
      impl.descriptor->async_wait(asio::posix::descriptor_base::wait_read,
                                  [&impl](const error_code& cancelled) {
                                    impl.descriptor_armed = false;
                                    if (!cancelled) {
                                      impl.progress = true;
                                    }
                                  });
    }
  }
  impl.progress = timeout_ms <= 0;
  if (!impl.progress) {
    const std::uint64_t arm = ++impl.wake_arms;
    impl.wake.expires_after(std::chrono::milliseconds(timeout_ms));
    impl.wake.async_wait([&impl, arm](const error_code& cancelled) {
      if (!cancelled && arm == impl.wake_arms) {
        impl.progress = true;
      }
    });
  }
  while (!impl.progress && impl.context.run_one() > 0) {
  }
  impl.context.poll(); // whatever else is ready
  return fd >= 0 && descriptor_ready(fd);
}

std::vector<Transfer*> Multi::finished() {
  std::vector<Transfer*> done;
  done.swap(m_impl->finished);
  for (Transfer* transfer : done) {
    transfer->finish();
  }
  return done;
}

} // namespace loto::etcd_helper
