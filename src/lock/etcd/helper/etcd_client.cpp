#include "lock/etcd/helper/etcd_client.hpp"

namespace loto::etcd_helper {

EtcdClient::EtcdClient(std::vector<std::string> endpoints) : m_endpoints(std::move(endpoints)) {}

void EtcdClient::start(Transfer& transfer,
                       std::string_view path,
                       std::string body,
                       Timeouts timeouts,
                       LineHandler on_line) {
  transfer.prepare(current() + std::string(path), std::move(body), timeouts, std::move(on_line));
  m_multi.start(transfer);
}

Reply EtcdClient::reply(const Transfer& transfer) {
  if (transfer.result() != CURLE_OK) {
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
  for (const std::string& url : m_endpoints) {
    urls += (urls.empty() ? "" : ", ") + url;
  }
  return "cannot reach etcd at " + urls + ": " + m_last_reason;
}

} // namespace loto::etcd_helper
