#!/usr/bin/env bats
# Slots across hosts: `slots: N` on an etcd resource (the semaphore recipe on the mutex's
# keys), against a real single-member etcd that setup_file starts on loopback on ports
# picked at run time (etcd_helpers.bash); teardown_file stops it by pid.
#
# Every test uses a lock name of its own (t<test number>). The queue keys are
# loto/t<N>/<lease hex>; the slot keys loto/t<N>/slot/<i> go with the same leases.
# Synchronisation is on files, pids, the keys in etcd and what --list shows, never on
# fixed sleeps; the jobs' own `sleep 0.05` is their work, not a wait for something.

# Scripts for loto to run are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load etcd_helpers
load syslog_helpers

setup_file() { start_etcd; }
teardown_file() { stop_etcd; }

setup() {
  etcd_setup
  CFG="$(write_etcd_config -n etcd.yaml --ttl 2s "$R: slots: 3")"
  HOST="$(hostname)"
  export CFG
}

teardown() { common_teardown; }

# --- helpers of this file -----------------------------------------------------------------

# The queue keys (places in line) under $PFX, oldest first, and the slot keys.
queue_keys() { etcd_keys "$PFX" | grep -v "^${PFX}slot/" || true; }
slot_keys() { etcd_keys "$PFX" | grep "^${PFX}slot/" || true; }
_queue_has() { [[ "$(queue_keys | sed '/^$/d' | wc -l)" == "$1" ]]; }
wait_queue() { wait_until "${2:-5}" _queue_has "$1"; }

# hold I: a loto holding a slot of $R whose command writes its environment to $T/hI.env,
# then waits for $T/hI.go. Returns once the command runs; $HOLDER_I is loto's pid.
hold() {
  spawn -n "h$1" lotoc -L "$R" bash -c 'env >"$0.env"; touch "$0.ready"; '"$(await "$T/h$1.go")" "$T/h$1"
  printf -v "HOLDER_$1" '%s' "$SPAWNED"
  wait_ready "$T/h$1.ready" "h$1"
}

# release I: lets holder I's command end; its loto must exit 0.
release() {
  local v="HOLDER_$1"
  touch "$T/h$1.go"
  wait_exit "${!v}" 10
  [ "$STATUS" -eq 0 ]
}

envvar() { sed -n "s/^$2=//p" "$1"; }

# list_row: the --list row of $R.
list_row() { lotoc --list | grep -E "^$R "; }
_list_has() { [[ "$(list_row)" == *"$1"* ]]; }

report() { echo "# $*" >&3; }

has_field() {
  [[ " $1 " == *" $2 "* ]] || {
    echo "missing '$2' in: $1" >&2
    return 1
  }
}

between() {
  if (($1 < $2 || $1 > $3)); then
    echo "$4 = $1, expected within [$2, $3]" >&2
    return 1
  fi
}

# --- configuration ------------------------------------------------------------------------

@test "config: slots: auto on an etcd resource -> 78 at the value; slots: 3 is shown by --show-config and --list" {
  local f line col
  f="$(write_etcd_config "$R: slots: auto")"
  run --separate-stderr "$LOTO" --config "$f" -L "$R" true
  echo "$stderr" >&2
  [ "$status" -eq 78 ]
  line="$(grep -n "^  $R:" "$f" | cut -d: -f1)"
  col="$(awk -v n="$line" 'NR == n { print index($0, "auto") }' "$f")"
  [[ "$stderr" == "loto: error: $f:$line:$col: resource '$R' uses backend etcd, where slots: auto has no meaning"* ]]
  [[ "$stderr" != *$'\n'* ]]

  run --separate-stderr lotoc --show-config -L "$R" true
  [ "$status" -eq 0 ]
  grep -qE "^\(.*etcd\.yaml:[0-9]+\) slots $R = 3$" <<<"$output"
  run --separate-stderr lotoc --list
  [ "$status" -eq 0 ]
  grep -qE "^$R +etcd:loto/$R +no wait, 3 slots +free$" <<<"$output"
}

@test "slots: 1 is the mutex as before: no slot key, no LOTO_SLOT" {
  CFG="$(write_etcd_config -n one.yaml --ttl 2s "$R: slots: 1")"
  hold 1
  [ -n "$(envvar "$T/h1.env" LOTO_FENCING_TOKEN)" ]
  not grep -q '^LOTO_SLOT=' "$T/h1.env"
  [ "$(etcd_keys "$PFX")" = "loto/$R/$(envvar "$T/h1.env" LOTO_ETCD_LEASE)" ]
  release 1
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

# --- holding ------------------------------------------------------------------------------

@test "3 holders: LOTO_SLOT 0, 1, 2, a token each, slot keys under their leases; the 4th is busy (75), -t 0.5 gives up in time; --list shows all 3 and the waiters" {
  local i
  for i in 1 2 3; do hold "$i"; done
  local slots="" tokens="" lease
  for i in 1 2 3; do
    slots+="$(envvar "$T/h$i.env" LOTO_SLOT) "
    tokens+="$(envvar "$T/h$i.env" LOTO_FENCING_TOKEN) "
    lease="$(envvar "$T/h$i.env" LOTO_ETCD_LEASE)"
    # the queue key and the slot key are both under the job's lease
    etcd_dump "$PFX" | grep -qP "^loto/$R/$lease\t[0-9]+\t$lease\t"
    etcd_dump "$PFX" | grep -qP "^loto/$R/slot/$(envvar "$T/h$i.env" LOTO_SLOT)\t[0-9]+\t$lease\tloto/$R/$lease$"
  done
  echo "slots: $slots tokens: $tokens" >&2
  [ "$(tr ' ' '\n' <<<"$slots" | sed '/^$/d' | sort | tr '\n' ' ')" = "0 1 2 " ]
  [ "$(tr ' ' '\n' <<<"$tokens" | sed '/^$/d' | sort -u | wc -l)" -eq 3 ]
  [ "$(queue_keys | wc -l)" -eq 3 ]
  [ "$(slot_keys | wc -l)" -eq 3 ]

  local t0 elapsed
  t0=$(now_ms)
  run --separate-stderr lotoc -L "$R" touch "$T/ran"
  elapsed=$(($(now_ms) - t0))
  echo "busy: $status in ${elapsed}ms: $stderr" >&2
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  [[ "$stderr" != *$'\n'* ]]
  [[ "$stderr" == "loto: resource '$R' (etcd lock 'loto/$R') is busy, held by slot "* ]]
  for i in 1 2 3; do
    local v="HOLDER_$i"
    [[ "$stderr" == *"pid ${!v} on $HOST"* ]]
  done
  ((elapsed < 1000))
  [ "$(queue_keys | wc -l)" -eq 3 ] # the loser left no key

  t0=$(now_ms)
  run --separate-stderr lotoc -t 0.5 -L "$R" touch "$T/ran"
  elapsed=$(($(now_ms) - t0))
  [ "$status" -eq 75 ]
  between "$elapsed" 500 1000 "-t 0.5 took (ms)"
  [ "$(queue_keys | wc -l)" -eq 3 ]

  spawn -n w1 lotoc -w -L "$R" true
  local w1=$SPAWNED
  wait_queue 4
  spawn -n w2 lotoc -w -L "$R" true
  local w2=$SPAWNED
  wait_queue 5
  local row
  row="$(list_row)"
  echo "$row" >&2
  for i in 1 2 3; do
    local v="HOLDER_$i"
    [[ "$row" =~ slot\ [0-2]:\ pid\ ${!v}\ on\ $HOST ]]
  done
  [[ "$row" == *", 2 waiting" ]]
  [ ! -e "$T/ran" ]
  for i in 1 2 3; do release "$i"; done
  wait_exit "$w1" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$w2" 5
  [ "$STATUS" -eq 0 ]
  wait_until 5 _queue_has 0
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "FIFO: 6 waiters started one after another get each freed slot in arrival order, and the slot that was freed" {
  local i
  for i in 1 2 3; do hold "$i"; done
  local pids=()
  for i in 1 2 3 4 5 6; do
    spawn -n "w$i" lotoc -w -L "$R" bash -c 'echo "$0 $LOTO_SLOT" >>"$T/order"; '"$(await "$T/w$i.go")" "$i"
    pids+=("$SPAWNED")
    # the next one starts only once --list counts this one among the waiters
    wait_until 10 _list_has ", $i waiting"
  done
  [ ! -e "$T/order" ]
  # each step frees one slot (a holder or a waiter that got in) and expects the next
  # waiter in, on that very slot
  local step=0 freed expect_slot
  for freed in h1 h2 w1 h3 w2 w3; do
    step=$((step + 1))
    if [[ $freed == h* ]]; then
      expect_slot="$(envvar "$T/$freed.env" LOTO_SLOT)"
      release "${freed#h}"
    else
      expect_slot="$(awk -v w="${freed#w}" '$1 == w { print $2 }' "$T/order")"
      touch "$T/w${freed#w}.go"
    fi
    wait_for_lines "$T/order" "$step" 10
    echo "step $step ($freed freed slot $expect_slot): $(tr '\n' '|' <"$T/order")" >&2
    [ "$(wc -l <"$T/order")" -eq "$step" ]
    [ "$(sed -n "${step}p" "$T/order")" = "$step $expect_slot" ]
  done
  for i in 4 5 6; do touch "$T/w$i.go"; done
  for i in "${pids[@]}"; do
    wait_exit "$i" 10
    [ "$STATUS" -eq 0 ]
  done
  [ "$(cut -d' ' -f1 "$T/order" | tr '\n' ' ')" = "1 2 3 4 5 6 " ]
  wait_until 5 _queue_has 0
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "3 simulated hosts x 20 jobs on 3 slots: never more than 3 at once, all 60 run, LOTO_SLOT unique among overlapping jobs" {
  # A host is its own config file and 3 loops of loto -w runs (20 jobs per host, 9
  # loops contending for 3 slots). Each job stamps its start and end (wall clock, one
  # host) and its LOTO_SLOT.
  local h w pids=()
  for h in 1 2 3; do
    local cfg
    cfg="$(write_etcd_config -n "host$h.yaml" --ttl 2s "$R: slots: 3")"
    for w in 1 2 3; do
      local n=7
      ((w == 3)) && n=6
      spawn -n "host$h.$w" bash -c '
        for ((j = 1; j <= $2; j++)); do
          "$LOTO" --config "$1" -w -L "$R" bash -c '\''a=$EPOCHREALTIME; sleep 0.05; b=$EPOCHREALTIME; echo "${a/[.,]/} ${b/[.,]/} $LOTO_SLOT $0" >>"$T/jobs"'\'' "$3.$j" || echo "$3.$j $?" >>"$T/failed"
        done' _ "$cfg" "$n" "host$h.$w"
      pids+=("$SPAWNED")
    done
  done
  local t0
  t0=$(now_ms)
  for w in "${pids[@]}"; do
    wait_exit "$w" 60
    [ "$STATUS" -eq 0 ]
  done
  local took=$(($(now_ms) - t0))
  [ ! -e "$T/failed" ]
  run "$PY" - "$T/jobs" <<'PY'
import sys
jobs = [line.split() for line in open(sys.argv[1])]
print("jobs:", len(jobs))
assert len(jobs) == 60, len(jobs)
assert len({j[3] for j in jobs}) == 60, "a job ran twice"
events = []
for a, b, slot, name in jobs:
    a, b, slot = int(a), int(b), int(slot)
    assert 0 <= slot < 3, slot
    assert a < b
    events += [(a, 1, slot, name), (b, -1, slot, name)]
events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
running, peak = {}, 0
for t, d, slot, name in events:
    if d == 1:
        assert slot not in running, "slot %d held by %s and %s at once" % (slot, running.get(slot), name)
        running[slot] = name
        peak = max(peak, len(running))
        assert len(running) <= 3, "more than 3 at once: %s" % running
    else:
        del running[slot]
print("peak:", peak)
assert peak == 3, peak
gaps = []
for s in range(3):
    mine = sorted((int(a), int(b)) for a, b, slot, _ in jobs if int(slot) == s)
    gaps += [(mine[i + 1][0] - mine[i][1]) / 1000 for i in range(len(mine) - 1)]
gaps.sort()
print("handoff ms (job end -> next job start on the same slot): p50 %.1f p90 %.1f max %.1f"
      % (gaps[len(gaps) // 2], gaps[len(gaps) * 9 // 10], gaps[-1]))
PY
  echo "$output" >&2
  [ "$status" -eq 0 ]
  report "60 jobs in ${took} ms; $(grep '^handoff' <<<"$output")"
  wait_until 5 _queue_has 0
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

# --- losing a slot ------------------------------------------------------------------------

@test "a lost lease among slots stops only that job (69); a deleted slot key too; the waiter gets the freed slot" {
  local i
  for i in 1 2 3; do hold "$i"; done
  spawn -n w lotoc -w -L "$R" bash -c 'echo "$LOTO_SLOT" >"$T/w.slot"'
  local w=$SPAWNED
  wait_queue 4
  local lease2 slot2
  lease2="$(envvar "$T/h2.env" LOTO_ETCD_LEASE)"
  slot2="$(envvar "$T/h2.env" LOTO_SLOT)"
  ectl lease revoke "$lease2" >&2
  wait_exit "$HOLDER_2" 5
  echo "h2: $STATUS $(cat "$T/h2.err")" >&2
  [ "$STATUS" -eq 69 ]
  [[ "$(cat "$T/h2.err")" == "loto: error: lost resource '$R'"* ]]
  [ "$(wc -l <"$T/h2.err")" -eq 1 ]
  wait_exit "$w" 5
  [ "$STATUS" -eq 0 ]
  [ "$(cat "$T/w.slot")" = "$slot2" ]
  # the other two hold on, undisturbed
  not proc_gone "$HOLDER_1"
  not proc_gone "$HOLDER_3"
  # a slot key deleted by hand is noticed like a deleted lock key
  ectl del "${PFX}slot/$(envvar "$T/h3.env" LOTO_SLOT)" >&2
  wait_exit "$HOLDER_3" 5
  echo "h3: $STATUS $(cat "$T/h3.err")" >&2
  [ "$STATUS" -eq 69 ]
  [[ "$(cat "$T/h3.err")" == *"slot key ${PFX}slot/"*" was deleted"* ]]
  not proc_gone "$HOLDER_1"
  release 1
  wait_until 5 _queue_has 0
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "a queue key deleted by hand lets a waiter in while all slot keys are taken: it waits for the slot key to go with that holder's lease" {
  local i
  for i in 1 2 3; do hold "$i"; done
  spawn -n w lotoc -w -L "$R" bash -c 'echo "$LOTO_SLOT" >"$T/w.slot"; '"$(await "$T/w.go")"
  local w=$SPAWNED
  wait_queue 4
  local lease1 slot1
  lease1="$(envvar "$T/h1.env" LOTO_ETCD_LEASE)"
  slot1="$(envvar "$T/h1.env" LOTO_SLOT)"
  # fewer than 3 queue keys are ahead of the waiter now, but slot/$slot1 stays until h1's
  # loto notices (its next renewal) and revokes its lease
  ectl del "$PFX$lease1" >&2
  wait_exit "$HOLDER_1" 5
  [ "$STATUS" -eq 69 ]
  wait_for_file "$T/w.slot" 5
  [ "$(cat "$T/w.slot")" = "$slot1" ]
  # three holders, three distinct slots
  [ "$(slot_keys | wc -l)" -eq 3 ]
  not proc_gone "$HOLDER_2"
  not proc_gone "$HOLDER_3"
  touch "$T/w.go"
  wait_exit "$w" 5
  [ "$STATUS" -eq 0 ]
  release 2
  release 3
  wait_until 5 _queue_has 0
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

# --- records ------------------------------------------------------------------------------

@test "syslog: acquired and finished carry slot=, token= and lease=" {
  syslog_setup
  local f
  f="$(write_etcd_config --syslog --ttl 2s "$R: slots: 3")"
  run in_syslog "$LOTO" --config "$f" -L "$R" sh -c 'echo "$LOTO_SLOT $LOTO_FENCING_TOKEN $LOTO_ETCD_LEASE" >"$T/env"; exit 3'
  [ "$status" -eq 3 ]
  synced
  loto_lines >&2
  local slot token lease acquired finished
  read -r slot token lease <"$T/env"
  [ "$slot" = 0 ]
  acquired="$(event_lines acquired)"
  finished="$(event_lines finished)"
  has_field "$acquired" "slot=$slot"
  has_field "$acquired" "token=$token"
  has_field "$acquired" "lease=$lease"
  has_field "$finished" "slot=$slot"
  has_field "$finished" "status=3"
}
