// A thin layer over libcurl's multi interface: one Transfer per kind of request (its easy
// handle is kept, so its settings are, and the multi handle's connection cache is shared
// by all of them), and a Multi that runs them and waits on one extra descriptor too.
// Everything runs on one thread; curl is told never to use signals.
#pragma once

#include <curl/curl.h>

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

struct Timeouts {
  long connect_ms = 0;
  long total_ms = 0; // 0: no limit (streams)
};

// Called with each complete line of a streamed answer, without its '\n'.
using LineHandler = std::function<void(std::string_view)>;

// One HTTP POST at a time on a kept easy handle.
class Transfer {
public:
  Transfer();
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Sets up a POST of the JSON `body` to `url`. With `on_line`, the answer is handed over
  // line by line as it arrives (for streams) instead of being collected.
  void prepare(std::string url, std::string body, Timeouts timeouts, LineHandler on_line = {});

  bool running() const {
    return m_running;
  }
  const std::string& url() const {
    return m_url;
  }
  // After it finished: CURLE_OK if an HTTP answer came back (whatever its status).
  CURLcode result() const {
    return m_result;
  }
  long http_status() const {
    return m_status;
  }
  const std::string& answer() const {
    return m_answer;
  }
  // Why no answer came back, one line.
  std::string transport_error() const;

private:
  friend class Multi;
  static std::size_t on_data(char* data, std::size_t size, std::size_t count, void* self);
  void deliver_lines(bool at_end);
  void finish(CURLcode result);

  CURL* m_easy = nullptr;
  curl_slist* m_headers = nullptr;
  std::string m_url;
  std::string m_body;
  std::string m_answer;
  LineHandler m_on_line;
  bool m_running = false;
  CURLcode m_result = CURLE_OK;
  long m_status = 0;
  std::array<char, CURL_ERROR_SIZE> m_error{};
};

// Runs transfers side by side.
class Multi {
public:
  Multi();
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  // Starts `transfer`, which must have been prepared and must not be running.
  void start(Transfer& transfer);
  // Abandons `transfer` if it is running (its connection is closed).
  void stop(Transfer& transfer);

  // Waits until a transfer has work to do, `fd` (if not -1) is readable or hung up, or
  // `timeout_ms` passed; then lets the transfers progress. Returns whether `fd` is ready.
  bool wait(int fd, int timeout_ms);

  // The transfers that finished since the last call (no longer running).
  std::vector<Transfer*> finished();

private:
  CURLM* m_multi = nullptr;
};

} // namespace loto::etcd_helper
