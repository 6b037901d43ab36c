#!/usr/bin/env bats
# etcd-backed locks against a real 3-member etcd cluster on loopback (ports picked at run
# time, see etcd_helpers.bash): a leader killed under a running job, a member down at
# start, and a network partition of one client (its only endpoint is a proxy that the test
# freezes with SIGSTOP).
#
# Every test leaves the cluster whole for the next one (teardown restarts any member a
# test stopped) and uses a lock name of its own (t<test number>).

# Scripts for loto to run are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load etcd_helpers
load syslog_helpers

setup_file() { start_etcd_cluster 3; }
teardown_file() { stop_etcd; }

setup() { etcd_setup; }

teardown() {
  common_teardown
  local i
  for ((i = 1; i <= ETCD_N; i++)); do
    etcd_member_start "$i" || true
  done
}

report() { echo "# $*" >&3; }
# sleep_until_ms T: sleeps until now_ms reaches T (sets how long a scenario lasts).
sleep_until_ms() {
  local d=$(($1 - $(now_ms)))
  ((d <= 0)) || sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
}
between() {
  if (($1 < $2 || $1 > $3)); then
    echo "$4 = $1, expected within [$2, $3]" >&2
    return 1
  fi
}

@test "3 members: loto with all endpoints runs, tokens increase, a waiter follows the holder" {
  CFG="$(write_etcd_config --ttl 2s "$R")"
  run --separate-stderr lotoc -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN"'
  [ "$status" -eq 0 ]
  t1="$output"
  spawn -n h lotoc -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN" >"$T/h.token"; touch "$T/h.ready"; '"$(await "$T/h.go")"
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  spawn -n w lotoc -w -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN" >"$T/w.token"'
  local w=$SPAWNED
  etcd_wait_keys "$PFX" 2
  touch "$T/h.go"
  wait_exit "$h" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$w" 5
  [ "$STATUS" -eq 0 ]
  (($(cat "$T/h.token") > t1))
  (($(cat "$T/w.token") > $(cat "$T/h.token")))
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "the leader killed while a job holds (TTL 3 s, leader's endpoint first): the job finishes normally, 0" {
  local leader i eps
  leader="$(etcd_wait_leader 5)"
  eps="$(etcd_url "$leader")"
  for ((i = 1; i <= ETCD_N; i++)); do
    ((i == leader)) || eps+=" $(etcd_url "$i")"
  done
  CFG="$(write_etcd_config --ttl 3s --endpoints "$eps" "$R")"
  spawn -n h lotoc -L "$R" sh -c 'echo "$LOTO_ETCD_LEASE" >"$T/h.lease"; touch "$T/h.ready"; '"$(await "$T/h.go")"'; touch "$T/h.done"'
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  local key lease
  key="$(etcd_keys "$PFX")"
  lease="$(cat "$T/h.lease")"
  [ "$key" = "loto/$R/$lease" ]

  local tk
  tk=$(now_ms)
  etcd_member_stop "$leader" KILL
  local new
  new="$(etcd_wait_leader 5)"
  report "leader m$leader killed; m$new leader after $(($(now_ms) - tk)) ms"
  [ "$new" != "$leader" ]
  # The scenario: the job outlives the lease's TTL (3 s) after the kill by a margin, so
  # only renewals through the surviving members can keep it.
  sleep_until_ms $((tk + 4500))
  not proc_gone "$h"
  [ "$(etcd_keys "$PFX")" = "$key" ]
  etcd_lease_alive "$lease"
  touch "$T/h.go"
  wait_exit "$h" 5
  echo "loto stderr: $(cat "$T/h.err")" >&2
  [ "$STATUS" -eq 0 ]
  [ -e "$T/h.done" ]
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
  etcd_member_start "$leader"
}

@test "one member down at start (the first endpoint): loto still runs, and -w hands over" {
  etcd_member_stop 1 TERM
  etcd_wait_leader 5 2 3 >/dev/null
  CFG="$(write_etcd_config --ttl 2s "$R")"
  local t0
  t0=$(now_ms)
  run --separate-stderr lotoc -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN"'
  local took=$(($(now_ms) - t0))
  echo "status=$status took=${took}ms stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^[0-9]+$ ]]
  ((took < 2000))

  spawn -n h lotoc -L "$R" sh -c 'touch "$T/h.ready"; '"$(await "$T/h.go")"
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  spawn -n w lotoc -w -L "$R" touch "$T/w.ran"
  local w=$SPAWNED
  wait_until 5 _etcd_has_n_keys "$PFX" 2
  [ ! -e "$T/w.ran" ]
  touch "$T/h.go"
  wait_exit "$h" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$w" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/w.ran" ]
  etcd_member_start 1
}

# The job of host A: python3 that appends CLOCK_MONOTONIC ns to $T/a.stamps every 50 ms
# until killed; on SIGTERM it notes the time in $T/a.term and goes on (so only SIGKILL
# stops it, and the last stamp tells when that came, within 50 ms).
A_JOB_PY='
import os, signal, sys, time
T = sys.argv[1]
def stamp(name):
    with open(os.path.join(T, name), "a") as f:
        f.write("%d\n" % time.monotonic_ns())
signal.signal(signal.SIGTERM, lambda *a: stamp("a.term"))
stamp("a.stamps")
open(os.path.join(T, "a.ready"), "w").close()
while True:
    time.sleep(0.05)
    stamp("a.stamps")
'

@test "partition of one client: A (through a frozen proxy) loses the lock and its job dies before B's job starts" {
  local ttl_ms=2000
  start_proxy "$ETCD_URL1"
  local proxy=$PROXY_PID
  fa="$(write_etcd_config --syslog --ttl 2s --endpoints "$PROXY_URL" "$R")"
  fb="$(write_etcd_config --ttl 2s "$R")"

  # host A, audited through a private rsyslogd when there is one
  SLDIR="$T/syslog"
  MSG="$SLDIR/messages"
  local wrap=()
  if command -v rsyslogd >/dev/null && command -v unshare >/dev/null; then
    wrap=(env LOTO_SYSLOG_DIR="$SLDIR" "$WITH_SYSLOG")
  fi
  spawn -n a "${wrap[@]}" "$LOTO" --config "$fa" -L "$R" "$PY" -c "$A_JOB_PY" "$T"
  local a=$SPAWNED
  wait_ready "$T/a.ready" a
  local akey
  akey="$(etcd_keys "$PFX")"
  [ -n "$akey" ]

  # partition A: freeze the proxy, noting the monotonic time it happened
  local tf
  tf="$("$PY" -c 'import os, signal, sys, time; os.kill(int(sys.argv[1]), signal.SIGSTOP); print(time.monotonic_ns())' "$proxy")"
  # host B (direct endpoints) waits for the lock
  spawn -n b "$LOTO" --config "$fb" -w -L "$R" "$PY" -c "$MONO_STAMP_PY" "$T/b.first"
  local b=$SPAWNED
  wait_exit "$a" 10
  local astatus=$STATUS
  wait_exit "$b" 10
  local bstatus=$STATUS
  echo "A: status $astatus, stderr: $(cat "$T/a.err")" >&2
  echo "B: status $bstatus, stderr: $(cat "$T/b.err")" >&2
  [ "$astatus" -eq 69 ]
  [ "$bstatus" -eq 0 ]

  local a_last b_first a_term
  a_last="$(tail -n 1 "$T/a.stamps")"
  b_first="$(cat "$T/b.first")"
  a_term="$(head -n 1 "$T/a.term" 2>/dev/null || echo 0)"
  local term_ms=$(((a_term - tf) / 1000000)) kill_ms=$(((a_last - tf) / 1000000)) b_ms=$(((b_first - tf) / 1000000))
  report "partition (TTL $ttl_ms ms): freeze -> A's SIGTERM $term_ms ms, -> A's job dead (last stamp) $kill_ms ms, -> B's job start $b_ms ms; gap A dead -> B start $(((b_first - a_last) / 1000000)) ms"
  # the point of it all: A's job was dead before B's started
  ((a_last < b_first))
  # A: SIGTERM by 0.6*T, SIGKILL by 0.8*T after the last renewal (which is before the freeze)
  [ "$a_term" -gt 0 ]
  between "$term_ms" 0 $((ttl_ms * 6 / 10 + 100)) "freeze -> SIGTERM (ms)"
  between "$kill_ms" 0 $((ttl_ms * 8 / 10 + 100)) "freeze -> job dead (ms)"
  # B only once A's lease had expired on the server (at least 0.75*T after the freeze)
  ((b_ms >= ttl_ms * 7 / 10))

  # A's one error line, and its audit record
  local aerr
  aerr="$(grep -v '^with-syslog' "$T/a.err")"
  echo "A's error line: $aerr" >&2
  [[ -n "$aerr" && "$aerr" != *$'\n'* && "$aerr" == "loto: error: "* ]]
  ((${#wrap[@]})) || skip "no rsyslogd/unshare: the event=lost record was not checked"
  synced
  loto_lines >&2
  grep -qE "loto\[[0-9]+\]: event=lost .*resource=$R( |$)" "$MSG"
}
