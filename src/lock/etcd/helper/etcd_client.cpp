#include "lock/etcd/helper/etcd_client.hpp"

#include "lock/etcd/helper/codec.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace loto::etcd_helper {

namespace {

// The first line of the password file (loto has checked who may read and write it).
std::string read_password(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!file || !std::getline(file, line)) {
    const int error = errno;
    throw CredentialError("cannot read etcd.password_file '" + path + "': " +
                          (file.eof() ? std::string("the file is empty") : std::strerror(error)));
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    throw CredentialError("etcd.password_file '" + path + "' has an empty first line");
  }
  return line;
}

} // namespace

std::string without_origin(std::string message) {
  constexpr std::string_view k_origin = "etcdserver: ";
  if (message.starts_with(k_origin)) {
    message.erase(0, k_origin.size());
  }
  return message;
}

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
  if (!credentials.user.empty()) {
    m_user = credentials.user;
    m_password = read_password(credentials.password_file);
  }
}

void EtcdClient::start_authenticate(Transfer& transfer, Timeouts timeouts) {
  transfer.prepare(m_endpoints[m_current],
                   "/v3/auth/authenticate",
                   authenticate_request(m_user, m_password),
                   timeouts);
  m_multi.start(transfer);
}

Reply EtcdClient::on_authenticated(const Transfer& transfer) {
  Reply got = reply(transfer);
  if (got.kind == ReplyKind::answer) {
    try {
      m_token = read_token(got.answer);
    } catch (const BadAnswer& bad) {
      return {ReplyKind::unexpected, nullptr, bad.what(), 0};
    }
    return got;
  }
  if (got.message.find("authentication is not enabled") != std::string::npos) {
    m_auth_disabled = true; // nothing to prove: requests go without a token
    return {ReplyKind::answer, nullptr, {}, 0};
  }
  if (got.kind == ReplyKind::unavailable || got.code == k_transport_refusal) {
    return got;
  }
  // A wrong password is InvalidArgument to etcd, but a refusal to loto.
  if (const auto code = got.message.rfind(" (code "); code != std::string::npos) {
    got.message.resize(code);
  }
  return {ReplyKind::refused,
          nullptr,
          "etcd refused user '" + m_user + "': " + without_origin(got.message),
          got.code};
}

void EtcdClient::start(Transfer& transfer,
                       std::string_view path,
                       std::string_view body,
                       Timeouts timeouts,
                       LineHandler on_line) {
  transfer.prepare(m_endpoints[m_current], path, body, timeouts, std::move(on_line), m_token);
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
