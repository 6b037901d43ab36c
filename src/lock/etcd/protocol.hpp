// What loto and its etcd helper (loto-etcd) say to each other.
//
// loto itself never links an HTTP or JSON library: a run that uses an etcd resource starts
// the helper, which holds one lease and one lock key for loto and reports over a socket on
// descriptor 3. Every message is one line, its fields separated by a tab; the helper turns
// tabs and line breaks inside a field into spaces (fields are for display only, except the
// numbers). This header is shared by both programs and includes nothing of either.
//
// loto -> helper
//   release            give the lock up: revoke the lease (which deletes the key, whether
//                      queued or holding), answer "released", exit 0.
//   end of file        loto is gone. Queued: revoke and exit. Holding: exit WITHOUT
//                      revoking, so the lock stays taken until the lease expires (TTL) and
//                      a job that loto's death left running is not joined by another host.
//
// helper -> loto
//   granted  LEASE_HEX  TTL_MS  SENT_NS     the lease exists: SENT_NS is the CLOCK_MONOTONIC
//                                           time (ns) at which the grant was sent; TTL_MS
//                                           is min(asked, granted) in ms
//   waiting  HOLDER                         queued behind HOLDER (only with --wait)
//   queued   AHEAD                          AHEAD keys are ahead of ours (the holder's
//                                           included): sent when it changes while waiting.
//                                           With --slots N: our place in line, the keys
//                                           ahead minus N-1 (1: the next to be let in)
//   busy     HOLDER                         held by HOLDER (only with --try); the helper has
//                                           revoked its lease and exits
//   acquired TOKEN  KEY  [SLOT]             ours: KEY exists under our lease; TOKEN is its
//                                           create revision (the fencing token); SLOT,
//                                           only with --slots N > 1: the slot (0..N-1)
//                                           whose key KEY's lease also holds
//   renewed  SENT_NS                        a keepalive sent at SENT_NS found the lease alive
//                                           (and, once acquired, KEY still ours)
//   lost     REASON                         the lease or the key is gone; the helper exits
//   failed   CODE  MESSAGE                  nothing taken; CODE is loto's exit code
//                                           (69 unreachable or TLS failure, 77 refused:
//                                           permission, authentication, our client
//                                           certificate; 70 bad answer; 78 unusable
//                                           TLS or password file)
//   released                                answer to "release"
//   holders  COUNT  HOLDER  URL  HELD       answer of `loto-etcd --inspect`: COUNT keys
//                                           in the queue under the lock name (holders
//                                           first), HELD of them hold (at most 1, or N with
//                                           --slots N; a reader that finds no HELD takes
//                                           min(COUNT, 1)); HOLDER empty when COUNT is 0;
//                                           URL: the endpoint that answered
// With --slots N > 1, HOLDER in waiting, busy and holders describes every holder:
// "slot 0: HOLDER; slot 2: HOLDER; ..." ("slot ?" for a holder that has not claimed
// its slot key yet).
//   entry    HOST PID USER SINCE COMMAND HOLDER SLOT
//                                           after "holders", one per key in queue order
//                                           (holders first): its record's fields ("" where
//                                           it has none; SINCE is when the key was
//                                           written), its HOLDER line, and with --slots
//                                           the slot it holds ("" if none)
//
// HOLDER is one line for people, e.g. "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z:
// backup.sh --full", or "a client that left no holder record (etcdctl lock?)".
//
// Command line of the helper:
//   loto-etcd --endpoints URL[,URL...] --ttl-ms N --name LOCKNAME
//             (--try | --wait | --inspect) [--slots N]   (N > 1: a semaphore; the
//                                                         slot keys are NAME/slot/<i>)
//             [--host H --pid P --user U --command C]   (the holder record)
//             [--ca-file F] [--cert-file F --key-file F]   (https endpoints)
//             [--etcd-user U --password-file F]             (etcd authentication)
// Secrets are passed as the paths of files that loto has trust-checked, never as words
// on the command line, which every user can read in ps.
#pragma once

#include <string_view>

namespace loto::etcd_protocol {

inline constexpr int k_socket_fd = 3;
inline constexpr char k_separator = '\t';

inline constexpr std::string_view k_release = "release";

inline constexpr std::string_view k_granted = "granted";
inline constexpr std::string_view k_waiting = "waiting";
inline constexpr std::string_view k_queued = "queued";
inline constexpr std::string_view k_busy = "busy";
inline constexpr std::string_view k_acquired = "acquired";
inline constexpr std::string_view k_renewed = "renewed";
inline constexpr std::string_view k_lost = "lost";
inline constexpr std::string_view k_failed = "failed";
inline constexpr std::string_view k_released = "released";
inline constexpr std::string_view k_holders = "holders";
inline constexpr std::string_view k_entry = "entry";

// Exit codes the helper reports in "failed" (sysexits.h).
inline constexpr int k_unavailable = 69; // EX_UNAVAILABLE: no endpoint answered
inline constexpr int k_software = 70;    // EX_SOFTWARE: etcd answered something unexpected
inline constexpr int k_refused = 77;     // EX_NOPERM: etcd refused (permission, auth)
inline constexpr int k_config = 78;      // EX_CONFIG: a TLS or password file is unusable

} // namespace loto::etcd_protocol
