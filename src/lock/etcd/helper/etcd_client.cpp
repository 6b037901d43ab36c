#include "lock/etcd/helper/etcd_client.hpp"

namespace loto::etcd_helper {

EtcdClient::EtcdClient(std::vector<std::string> endpoints, const Credentials& credentials) {
  bool https = false;
  for (std::string& url : endpoints) {
    m_endpoints.push_back(make_endpoint(std::move(url)));
    https = https || m_endpoints.back().parts.https;
  }
  // Only when needed: loading the CAs costs a moment that http endpoints need not pay.
  if (https) {
    m_multi.use_tls({credentials.ca_file, credentials.cert_file, credentials.key_file});
  }
}

void EtcdClient::start(Transfer& transfer,
                       std::string_view path,
                       std::string_view body,
                       Timeouts timeouts,
                       LineHandler on_line) {
  transfer.prepare(m_endpoints[m_current], path, body, timeouts, std::move(on_line));
  m_multi.start(transfer);
}

Reply EtcdClient::reply(const Transfer& transfer) {
  if (transfer.result() == TransferResult::refused) {
    return {ReplyKind::refused, nullptr, transfer.transport_error(), k_transport_refusal};
  }
  if (transfer.result() != TransferResult::ok) {
    return {ReplyKind::unavailable, nullptr, transfer.transport_error(), 0};
  }
  return classify_reply(transfer.http_status(), transfer.answer());
}

void EtcdClient::fail_over(std::string reason) {
  m_last_reason = std::move(reason);
  m_current = (m_current + 1) % m_endpoints.size();
  ++m_failovers;
}

std::string EtcdClient::unreachable_message() const {
  std::string urls;
  for (const Endpoint& endpoint : m_endpoints) {
    urls += (urls.empty() ? "" : ", ") + endpoint.url;
  }
  return "cannot reach etcd at " + urls + ": " + m_last_reason;
}

} // namespace loto::etcd_helper
