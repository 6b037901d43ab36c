// The etcd cluster as the helper sees it: its endpoints, which one is current, and the
// Multi every request runs on. Any member serves every request loto makes, so on
// trouble (no answer, 503, "transport is closing") the next endpoint becomes current and
// stays current while it answers.
#pragma once

#include "lock/etcd/helper/etcd_api.hpp"
#include "lock/etcd/helper/http.hpp"
#include "lock/etcd/helper/options.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

class EtcdClient {
public:
  // Throws TlsSetupError when an https endpoint's TLS files cannot be used.
  explicit EtcdClient(std::vector<std::string> endpoints, const Credentials& credentials = {});

  Multi& multi() {
    return m_multi;
  }

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
  Multi m_multi;
};

} // namespace loto::etcd_helper
