// The etcd cluster as the helper sees it: its endpoints, which one is current, and the
// Multi every request runs on. Any member serves every request loto makes, so on
// trouble (no answer, 503, "transport is closing") the next endpoint becomes current and
// stays current while it answers.
#pragma once

#include "lock/etcd/helper/etcd_api.hpp"
#include "lock/etcd/helper/http.hpp"
#include "lock/etcd/helper/options.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

// The password file cannot be read, or is empty.
struct CredentialError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "permission denied" rather than etcd's "etcdserver: permission denied".
std::string without_origin(std::string message);

class EtcdClient {
public:
  // Throws TlsSetupError when an https endpoint's TLS files cannot be used, and
  // CredentialError when the password file cannot be read.
  explicit EtcdClient(std::vector<std::string> endpoints, const Credentials& credentials = {});

  Multi& multi() {
    return m_multi;
  }

  // etcd authentication (etcd.user): whether a token must be fetched before the next
  // request, and how. A request that gets ReplyKind::token_expired drops the token.
  bool needs_token() const {
    return !m_user.empty() && m_token.empty() && !m_auth_disabled;
  }
  void drop_token() {
    m_token.clear();
  }
  const std::string& user() const {
    return m_user;
  }
  // Starts POST /v3/auth/authenticate on `transfer`; on_authenticated() reads its reply:
  // `answer` once the token is kept (or the cluster has authentication off), `refused`
  // with one line when etcd turned the user or password down, else as reply().
  void start_authenticate(Transfer& transfer, Timeouts timeouts);
  Reply on_authenticated(const Transfer& transfer);

  // Starts a POST of `body` to `path` ("/v3/kv/range") on the current endpoint.
  void start(Transfer& transfer,
             std::string_view path,
             std::string_view body,
             Timeouts timeouts,
             LineHandler on_line = {});

  // What a finished transfer came to; a transport failure counts as `unavailable`.
  static Reply reply(const Transfer& transfer);

  // The current endpoint failed for `reason`: the next one becomes current.
  void fail_over(std::string reason);

  std::size_t endpoint_count() const {
    return m_endpoints.size();
  }
  const std::string& current() const {
    return m_endpoints[m_current].url;
  }
  // Grows with every fail_over(): a watch started before the count changed may be
  // talking to a member the other requests gave up on.
  std::uint64_t failovers() const {
    return m_failovers;
  }
  // "cannot reach etcd at URL1, URL2: <the last reason>"
  std::string unreachable_message() const;

private:
  std::vector<Endpoint> m_endpoints;
  std::size_t m_current = 0;
  std::uint64_t m_failovers = 0;
  std::string m_last_reason;
  std::string m_user;
  std::string m_password;
  std::string m_token;
  bool m_auth_disabled = false; // the cluster said authentication is not enabled
  Multi m_multi;
};

} // namespace loto::etcd_helper
