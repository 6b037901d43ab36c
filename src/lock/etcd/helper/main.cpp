// loto-etcd: loto's helper for locks held in etcd. loto starts it with a socket on
// descriptor 3 and the command line of lock/etcd/protocol.hpp; the helper holds one lease
// and one lock key for loto and reports on that socket, so that loto itself never links
// an HTTP or JSON library.
//
// Exit status: 0 when the lock was released, found busy, or loto went away; the CODE of a
// "failed" message (69, 70, 77); 1 after "lost"; 64 for a bad command line.
#include "lock/etcd/helper/channel.hpp"
#include "lock/etcd/helper/options.hpp"
#include "lock/etcd/helper/session.hpp"
#include "lock/etcd/protocol.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace loto::etcd_helper;
namespace proto = loto::etcd_protocol;

constexpr int k_usage_exit = 64; // EX_USAGE

// loto handles these and tells the helper what to do; a write to a closed socket is an
// error return (loto is gone), not a death.
void ignore_signals() {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  for (const int signal : std::array{SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE}) {
    sigaction(signal, &ignore, nullptr);
  }
}

int usage_error(const std::string& message) {
  static_cast<void>(std::fprintf(stderr,
                                 "loto-etcd: %s\n%.*s",
                                 message.c_str(),
                                 static_cast<int>(k_usage.size()),
                                 k_usage.data()));
  return k_usage_exit;
}

int run(Options options, bool socket_open) {
  Channel channel(socket_open ? proto::k_socket_fd : STDOUT_FILENO);
  try {
    Session session(std::move(options), channel);
    return session.run();
  } catch (const CredentialError& error) {
    channel.send({proto::k_failed, std::to_string(proto::k_config), error.what()});
    return proto::k_config;
  } catch (const TlsSetupError& error) {
    // The files loto checked cannot be used: a configuration error, as for loto.
    channel.send({proto::k_failed, std::to_string(proto::k_config), error.what()});
    return proto::k_config;
  } catch (const std::exception& error) {
    channel.send({proto::k_failed,
                  std::to_string(proto::k_software),
                  std::string("internal error: ") + error.what()});
    return proto::k_software;
  }
}

} // namespace

int main(int argc, char** argv) {
  ignore_signals();
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    static_cast<void>(std::fwrite(k_usage.data(), 1, k_usage.size(), stdout));
    return 0;
  }
  Options options;
  try {
    options = parse_options(args);
  } catch (const UsageError& error) {
    return usage_error(error.what());
  }
  const bool socket_open = is_open(proto::k_socket_fd);
  if (!socket_open && options.mode != Mode::inspect) {
    return usage_error("descriptor 3 is not open: --try and --wait report to loto on it");
  }
  return run(std::move(options), socket_open);
}
