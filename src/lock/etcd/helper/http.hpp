// HTTP/1.1 POSTs to etcd's gateway on Boost.Asio and Boost.Beast (header-only, so the
// helper loads nothing but libc): one Transfer per kind of request, each keeping its own
// connection open between requests, and a Multi that runs them all on one thread and one
// io_context, and waits on one extra descriptor too (loto's socket). Asio and Beast stay
// inside http.cpp: nothing else includes them.
#pragma once

#include "lock/etcd/helper/codec.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

struct Timeouts {
  long connect_ms = 0; // 0: no limit of its own
  long total_ms = 0;   // 0: no limit (streams)
};

// Called with each complete line of a streamed answer, without its '\n'. It must not start
// or stop the transfer it serves (it runs inside that transfer's read).
using LineHandler = std::function<void(std::string_view)>;

// Where requests go: one endpoint URL taken apart, or why it cannot be used.
struct Endpoint {
  std::string url;       // as given, for messages: "http://10.0.0.1:2379"
  EndpointUrl parts;     // scheme, host, port
  std::string authority; // HOST:PORT for the Host header
  std::string unusable;  // not empty: why no request can go there (every request fails)
};
Endpoint make_endpoint(std::string url);

// The bytes of a POST of the JSON `body` to `path` on `authority` (HOST:PORT), with etcd's
// auth token in an Authorization header if `token` is not empty.
std::string post_request(std::string_view authority,
                         std::string_view path,
                         std::string_view body,
                         std::string_view token = {});

// How a transfer ended.
enum class TransferResult {
  ok,          // an HTTP answer came back, whatever its status
  unreachable, // the name did not resolve, or no connection could be made
  timed_out,   // no connection within connect_ms, or no whole answer within total_ms
  broken,      // the connection failed or closed before the whole answer, or it was not HTTP
  unusable,    // the endpoint cannot be used (Endpoint::unusable)
  refused,     // the server refused who we are: our TLS client certificate, or none
  aborted,     // Multi::stop()
};

class Multi;

// The files of etcd.ca_file, etcd.cert_file and etcd.key_file; empty: not set. Without a
// CA file the system's trusted CAs verify the server; the certificate and key go together.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// A file of TlsFiles cannot be used (missing, not PEM, a key that does not match).
struct TlsSetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What a TLS failure amounts to: one line, and whether the server refused who we are
// (loto's 77) rather than being unusable (69, like an unreachable one). A refusal's line
// follows the server's URL: "refused our client certificate (...)".
struct TlsFailure {
  std::string message;
  bool refused = false;
};

// The server's certificate failed verification with OpenSSL's X509_V_ERR_* `result`:
// unknown CA, host name mismatch, expired, ... (`host` as the endpoint names it).
std::string server_certificate_problem(long result, std::string_view host);

// The server sent TLS alert `alert` (RFC 8446's numbers) during the handshake or in place of
// the first answer; `client_certificate`: whether we presented one.
TlsFailure server_alert_problem(int alert, bool client_certificate);

// One HTTP POST at a time, on a connection kept open from one request to the next
// (HTTP/1.1 keep-alive; a new one when the server closed it or the endpoint changed).
class Transfer {
public:
  explicit Transfer(Multi& multi);
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Sets up a POST of the JSON `body` to `path` on `endpoint`. With `on_line`, the answer
  // is handed over line by line as it arrives (for streams) instead of being collected.
  void prepare(const Endpoint& endpoint,
               std::string_view path,
               std::string_view body,
               Timeouts timeouts,
               LineHandler on_line = {},
               std::string_view token = {});

  // From Multi::start() until Multi::finished() returned it, or Multi::stop().
  bool running() const;
  const std::string& url() const;
  // After it finished: ok if an HTTP answer came back (whatever its status).
  TransferResult result() const;
  long http_status() const;
  const std::string& answer() const;
  // Why no answer came back, one line ("Connection refused").
  std::string transport_error() const;

private:
  friend class Multi;
  struct Core; // the connection and the request in flight (http.cpp)
  void finish();

  std::shared_ptr<Core> m_core; // shared with the handlers of the operations in flight
};

// Runs transfers side by side.
class Multi {
public:
  Multi();
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  // The TLS settings of https endpoints (by default: the system's CAs, no client
  // certificate). Throws TlsSetupError.
  void use_tls(const TlsFiles& files);

  // Starts `transfer`, which must have been prepared and must not be running.
  void start(Transfer& transfer);
  // Abandons `transfer` if it is running (its connection is closed).
  void stop(Transfer& transfer);

  // Waits until a transfer has finished or received lines, `fd` (if not -1) is readable or
  // hung up, or `timeout_ms` passed; then lets the transfers progress. Returns whether
  // `fd` is ready. `fd` is watched, never closed.
  bool wait(int fd, int timeout_ms);

  // The transfers that finished since the last call (no longer running).
  std::vector<Transfer*> finished();

private:
  friend class Transfer;
  struct Impl; // the io_context (http.cpp)
  std::unique_ptr<Impl> m_impl;
};

} // namespace loto::etcd_helper
