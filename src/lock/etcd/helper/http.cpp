#include "lock/etcd/helper/http.hpp"

#include "lock/etcd/helper/codec.hpp"

#include <poll.h>

#include <cstring>
#include <stdexcept>

namespace loto::etcd_helper {

namespace {

// An answer this long is not etcd's: stop reading rather than grow without end.
constexpr std::size_t k_max_answer = 64UL * 1024 * 1024;

// Whether `fd` can be read without blocking, or its peer hung up. curl reports only
// POLLIN for extra descriptors, and a pipe whose writer is gone says POLLHUP alone.
bool descriptor_ready(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, 0) > 0 && (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

} // namespace

Transfer::Transfer() : m_easy(curl_easy_init()) {
  if (m_easy == nullptr) {
    throw std::runtime_error("curl_easy_init failed");
  }
  m_headers = curl_slist_append(m_headers, "Content-Type: application/json");
  // No "Expect: 100-continue" round trip before larger bodies.
  m_headers = curl_slist_append(m_headers, "Expect:");
  curl_easy_setopt(m_easy, CURLOPT_HTTPHEADER, m_headers);
  curl_easy_setopt(m_easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(m_easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(m_easy, CURLOPT_WRITEFUNCTION, &Transfer::on_data);
  curl_easy_setopt(m_easy, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(m_easy, CURLOPT_PRIVATE, this);
  curl_easy_setopt(m_easy, CURLOPT_ERRORBUFFER, m_error.data());
}

Transfer::~Transfer() {
  curl_easy_cleanup(m_easy);
  curl_slist_free_all(m_headers);
}

void Transfer::prepare(std::string url, std::string body, Timeouts timeouts, LineHandler on_line) {
  m_url = std::move(url);
  m_body = std::move(body);
  m_on_line = std::move(on_line);
  m_answer.clear();
  m_result = CURLE_OK;
  m_status = 0;
  m_error[0] = '\0';
  curl_easy_setopt(m_easy, CURLOPT_URL, m_url.c_str());
  curl_easy_setopt(m_easy, CURLOPT_POSTFIELDS, m_body.c_str());
  curl_easy_setopt(m_easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(m_body.size()));
  curl_easy_setopt(m_easy, CURLOPT_CONNECTTIMEOUT_MS, timeouts.connect_ms);
  curl_easy_setopt(m_easy, CURLOPT_TIMEOUT_MS, timeouts.total_ms);
}

std::string Transfer::transport_error() const {
  // The system's word is the shortest ("Connection refused"); curl's buffer says more
  // about timeouts ("Connection timed out after 1001 milliseconds").
  long os_errno = 0;
  curl_easy_getinfo(m_easy, CURLINFO_OS_ERRNO, &os_errno);
  if (os_errno != 0 && m_result != CURLE_OPERATION_TIMEDOUT) {
    return std::strerror(static_cast<int>(os_errno));
  }
  const std::string detail = m_error.data();
  return one_line(detail.empty() ? curl_easy_strerror(m_result) : detail);
}

std::size_t Transfer::on_data(char* data, std::size_t size, std::size_t count, void* self) {
  auto& transfer = *static_cast<Transfer*>(self);
  const std::size_t bytes = size * count;
  if (transfer.m_answer.size() + bytes > k_max_answer) {
    return 0; // curl ends the transfer with CURLE_WRITE_ERROR
  }
  transfer.m_answer.append(data, bytes);
  transfer.deliver_lines(false);
  return bytes;
}

void Transfer::deliver_lines(bool at_end) {
  if (!m_on_line) {
    return;
  }
  std::size_t start = 0;
  for (auto end = m_answer.find('\n'); end != std::string::npos; end = m_answer.find('\n', start)) {
    m_on_line(std::string_view(m_answer).substr(start, end - start));
    start = end + 1;
  }
  m_answer.erase(0, start);
  if (at_end && !m_answer.empty()) {
    m_on_line(m_answer);
    m_answer.clear();
  }
}

void Transfer::finish(CURLcode result) {
  m_running = false;
  m_result = result;
  curl_easy_getinfo(m_easy, CURLINFO_RESPONSE_CODE, &m_status);
  deliver_lines(true);
}

Multi::Multi() : m_multi(curl_multi_init()) {
  if (m_multi == nullptr) {
    throw std::runtime_error("curl_multi_init failed");
  }
}

Multi::~Multi() {
  curl_multi_cleanup(m_multi);
}

void Multi::start(Transfer& transfer) {
  if (curl_multi_add_handle(m_multi, transfer.m_easy) != CURLM_OK) {
    throw std::runtime_error("curl_multi_add_handle failed");
  }
  transfer.m_running = true;
}

void Multi::stop(Transfer& transfer) {
  if (transfer.m_running) {
    curl_multi_remove_handle(m_multi, transfer.m_easy);
    transfer.m_running = false;
    transfer.m_result = CURLE_ABORTED_BY_CALLBACK;
    transfer.m_on_line = nullptr; // it may refer to its caller's state, soon gone
  }
}

bool Multi::wait(int fd, int timeout_ms) {
  curl_waitfd extra{fd, CURL_WAIT_POLLIN, 0};
  const unsigned extra_count = fd < 0 ? 0U : 1U;
  curl_multi_poll(m_multi, &extra, extra_count, timeout_ms, nullptr);
  int still_running = 0;
  curl_multi_perform(m_multi, &still_running);
  return fd >= 0 && descriptor_ready(fd);
}

std::vector<Transfer*> Multi::finished() {
  std::vector<Transfer*> done;
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(m_multi, &queued)) {
    if (message->msg != CURLMSG_DONE) {
      continue;
    }
    Transfer* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    const CURLcode result = message->data.result; // NOLINT(*-union-access): curl's API
    curl_multi_remove_handle(m_multi, message->easy_handle);
    transfer->finish(result);
    done.push_back(transfer);
  }
  return done;
}

} // namespace loto::etcd_helper
