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
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#pragma GCC diagnostic pop
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace loto::etcd_helper {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// An answer this long is not etcd's: stop reading rather than grow without end.
constexpr std::size_t k_max_answer = 64UL * 1024 * 1024;

// What a connection is made of: a TCP socket, and for https endpoints a TLS stream over
// it (OpenSSL through asio), with the handshake between the connect and the first write.
using Socket = tcp::socket;
using TlsStream = ssl::stream<Socket&>;

// Whether `fd` can be read without blocking, or its peer hung up.
bool descriptor_ready(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, 0) > 0 && (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

// Whether a connection kept from an earlier request can carry another: the server has
// neither closed it nor sent anything unasked.
bool still_open(Socket& socket) {
  pollfd entry{socket.native_handle(), POLLIN | POLLRDHUP, 0};
  return poll(&entry, 1, 0) == 0;
}

// The errors of a kept connection the server closed in the meantime: the request is sent
// again on a new one (nothing of an answer came back, so the server did not act on it).
bool closed_by_server(const error_code& error) {
  return error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::connection_aborted ||
         error == ssl::error::stream_truncated;
}

std::string describe(const error_code& error) {
  if (error == asio::error::eof || error == ssl::error::stream_truncated) {
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

// A client context that verifies the server's certificate (TLS 1.2 at least).
ssl::context make_tls_context() {
  ssl::context context(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  context.set_verify_mode(ssl::verify_peer);
  return context;
}

// What OpenSSL says about the last failure, one line.
std::string openssl_reason(const error_code& error) {
  return error ? error.message() : "unknown error";
}

} // namespace

std::string server_certificate_problem(long result, std::string_view host) {
  switch (result) {
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    return "TLS: the server's certificate does not name " + std::string(host) +
           " (host name mismatch)";
  case X509_V_ERR_CERT_HAS_EXPIRED:
    return "TLS: the server's certificate has expired";
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return "TLS: the server's certificate is not valid yet (is this host's clock right?)";
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    return "TLS: the server's certificate is signed by an unknown CA (set etcd.ca_file to the "
           "cluster's CA)";
  default:
    return std::string("TLS: the server's certificate was not accepted: ") +
           X509_verify_cert_error_string(result);
  }
}

TlsFailure server_alert_problem(int alert, bool client_certificate) {
  // OpenSSL 3.0 names no TLS 1.3 alert.
  const std::string name = alert == SSL_AD_CERTIFICATE_REQUIRED
                               ? std::string("certificate required")
                               : std::string(SSL_alert_desc_string_long(alert));
  switch (alert) {
  case SSL_AD_BAD_CERTIFICATE:
  case SSL_AD_UNSUPPORTED_CERTIFICATE:
  case SSL_AD_CERTIFICATE_REVOKED:
  case SSL_AD_CERTIFICATE_EXPIRED:
  case SSL_AD_CERTIFICATE_UNKNOWN:
  case SSL_AD_UNKNOWN_CA:
  case SSL_AD_ACCESS_DENIED:
  case SSL_AD_CERTIFICATE_REQUIRED:
    if (!client_certificate) {
      return {"requires a client certificate (TLS alert: " + name +
                  "; set etcd.cert_file and etcd.key_file)",
              true};
    }
    if (alert == SSL_AD_CERTIFICATE_EXPIRED) {
      return {"refused our client certificate: it has expired (TLS alert: " + name + ")", true};
    }
    return {"refused our client certificate (TLS alert: " + name +
                "; is etcd.cert_file signed by the cluster's CA?)",
            true};
  default:
    return {"TLS handshake failed (TLS alert: " + name + ")", false};
  }
}

Endpoint make_endpoint(std::string url) {
  Endpoint endpoint;
  endpoint.url = std::move(url);
  try {
    endpoint.parts = parse_endpoint_url(endpoint.url);
    endpoint.authority = host_and_port(endpoint.parts);
  } catch (const BadUrl& bad) {
    endpoint.unusable = std::string("not a usable endpoint URL: ") + bad.what();
  }
  return endpoint;
}

std::string post_request(std::string_view authority,
                         std::string_view path,
                         std::string_view body,
                         std::string_view token) {
  std::string request;
  request.reserve(128 + path.size() + authority.size() + body.size() + token.size());
  request.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(authority);
  if (!token.empty()) {
    request.append("\r\nAuthorization: ").append(token);
  }
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
  std::optional<ssl::context> tls; // for https endpoints: Multi::use_tls(), or the default
  bool client_certificate = false; // the context presents one

  // The default: verify servers against the system's trusted CAs, present no certificate.
  ssl::context& tls_context() {
    if (!tls) {
      tls.emplace(make_tls_context());
      error_code ignored; // no default paths: every server certificate fails to verify
      tls->set_default_verify_paths(ignored);
    }
    return *tls;
  }

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
      : multi(impl), owner(&transfer), socket(impl.context), timer(impl.context) {}

  Multi::Impl& multi;
  Transfer* owner; // null once the Transfer is gone
  Socket socket;
  // Over `socket`, for an https endpoint. Shared with the handlers of its operations:
  // asio's TLS operations still use the stream when they complete after a close().
  std::shared_ptr<TlsStream> tls;
  asio::steady_timer timer;
  std::optional<tcp::resolver> resolver; // only for names, not for addresses
  std::string connected_to; // the URL (scheme, host, port) of the open connection, or ""

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
    if (connected_to == endpoint.url && still_open(socket)) {
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
    asio::async_connect(socket,
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
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored); // each request is one write
    if (endpoint.parts.https) {
      handshake(); // still under the connect time limit
      return;
    }
    on_ready();
  }

  // TLS over the new connection: the server's certificate is verified against the CA
  // (etcd.ca_file, or the system's), and it must name the endpoint's host.
  void handshake() {
    tls = std::make_shared<TlsStream>(socket, multi.tls_context());
    SSL* handle = tls->native_handle();
    X509_VERIFY_PARAM* verify = SSL_get0_param(handle);
    std::string host = endpoint.parts.host;
    error_code not_an_address;
    static_cast<void>(asio::ip::make_address(host, not_an_address));
    if (not_an_address) {
      // SNI (names only), and the name the certificate must carry.
      SSL_ctrl(handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, host.data());
      X509_VERIFY_PARAM_set_hostflags(verify, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(verify, host.c_str(), host.size());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(verify, host.c_str());
    }
    tls->async_handshake(
        ssl::stream_base::client,
        [self = shared_from_this(), gen = generation, connection = tls](const error_code& failure) {
          if (!self->current(gen)) {
            return;
          }
          if (failure) {
            self->fail_tls(failure);
            return;
          }
          self->on_ready();
        });
  }

  // A TLS failure: a certificate that did not verify, or an alert from the server.
  void fail_tls(const error_code& failure) {
    const TlsFailure problem = describe_tls(failure);
    complete(problem.refused ? TransferResult::refused : TransferResult::unreachable,
             problem.message);
  }

  TlsFailure describe_tls(const error_code& failure) const {
    if (failure.category() == asio::error::get_ssl_category()) {
      const int reason = ERR_GET_REASON(static_cast<unsigned long>(failure.value()));
      if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && tls) {
        return {server_certificate_problem(SSL_get_verify_result(tls->native_handle()),
                                           endpoint.parts.host),
                false};
      }
      if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        return server_alert_problem(reason - SSL_AD_REASON_OFFSET, multi.client_certificate);
      }
      return {"TLS handshake failed: " + failure.message(), false};
    }
    return {describe(failure), false};
  }

  // Connected (and, for https, the handshake done): the request goes out.
  void on_ready() {
    connecting = false;
    connected_to = endpoint.url;
    arm_timer(total_deadline);
    send();
  }

  // Calls `operation` with the stream requests go over: TLS or the bare socket.
  template <typename Operation> void on_stream(Operation&& operation) {
    if (tls) {
      operation(*tls);
    } else {
      operation(socket);
    }
  }

  void send() {
    on_stream([this](auto& stream) {
      asio::async_write(stream,
                        asio::buffer(request),
                        [self = shared_from_this(), gen = generation, connection = tls](
                            const error_code& failure, std::size_t /*bytes*/) {
                          if (!self->current(gen)) {
                            return;
                          }
                          if (failure) {
                            self->fail(failure, false);
                            return;
                          }
                          self->read_answer();
                        });
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
    on_stream([this](auto& stream) {
      http::async_read_some(stream,
                            buffer,
                            *parser,
                            [self = shared_from_this(), gen = generation, connection = tls](
                                const error_code& failure, std::size_t /*bytes*/) {
                              if (!self->current(gen)) {
                                return;
                              }
                              if (failure) {
                                self->fail(failure, self->parser->got_some());
                                return;
                              }
                              self->on_read();
                            });
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
    if (tls && failure.category() == asio::error::get_ssl_category()) {
      // TLS 1.3 servers judge the client's certificate after the client's handshake is
      // over: their refusal comes as an alert in place of the answer.
      fail_tls(failure);
      return;
    }
    if (tls && !reused && !answer_begun && multi.client_certificate && closed_by_server(failure) &&
        SSL_version(tls->native_handle()) == TLS1_3_VERSION) {
      // The same refusal, when the server's reset (for the request it did not read)
      // overtook its alert: a server that let the handshake finish and then dropped the
      // first request on a new connection did not accept the certificate.
      complete(TransferResult::refused,
               "refused our client certificate (TLS: it closed the connection after the "
               "handshake; is etcd.cert_file signed by the cluster's CA?)");
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
    socket.close(ignored); // cancels the operations in flight on it
    tls.reset();           // a new connection gets a new TLS session
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
                       LineHandler on_line,
                       std::string_view token) {
  Core& core = *m_core;
  core.endpoint = endpoint;
  core.url = endpoint.url + std::string(path);
  core.request = post_request(endpoint.authority, path, body, token);
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

void Multi::use_tls(const TlsFiles& files) {
  ssl::context context = make_tls_context();
  error_code error;
  if (files.ca_file.empty()) {
    context.set_default_verify_paths(error);
    if (error) {
      throw TlsSetupError("cannot load the system's trusted CAs: " + openssl_reason(error));
    }
  } else if (context.load_verify_file(files.ca_file, error); error) {
    throw TlsSetupError("cannot load etcd.ca_file '" + files.ca_file +
                        "': " + openssl_reason(error));
  }
  if (!files.cert_file.empty()) {
    if (context.use_certificate_chain_file(files.cert_file, error); error) {
      throw TlsSetupError("cannot load etcd.cert_file '" + files.cert_file +
                          "': " + openssl_reason(error));
    }
    if (context.use_private_key_file(files.key_file, ssl::context::pem, error); error) {
      throw TlsSetupError("cannot load etcd.key_file '" + files.key_file +
                          "': " + openssl_reason(error));
    }
    if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
      throw TlsSetupError("etcd.key_file '" + files.key_file +
                          "' is not the key of etcd.cert_file '" + files.cert_file + "'");
    }
  }
  m_impl->tls.emplace(std::move(context));
  m_impl->client_certificate = !files.cert_file.empty();
}

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
