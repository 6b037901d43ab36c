#!/usr/bin/env bats
# loto --list --json: one JSON document with every resource, its policy, and every holder
# and waiter of its lock (pid, user, command, since), read back with python3's json module.
#
# Real holders and waiters: flock(1) -s holders, a loto holder, waiters started one after
# another, each one's turn synchronised on the waiters /proc/locks shows (wait_for_waiters)
# and on files the holders touch, never on fixed sleeps. Times are checked as intervals:
# a process's "since" lies between stamps taken before it was started and after it was
# seen running.

# Scripts for loto and flock to run are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load etcd_helpers

setup() {
  common_setup
  ME="$(id -un)"
  export ME
}

teardown() { common_teardown; }

# jcheck CODE [ARGS...]: runs python CODE on the document in $output, with `doc` (the
# parsed document), `res` (resource name -> object), `args` (ARGS) and `iso_ms` (an ISO
# 8601 time -> ms since the epoch); an assert that fails fails the test, with the document.
jcheck() {
  local code="$1"
  shift
  "$PY" -c '
import datetime, json, sys
text = sys.stdin.read()
doc = json.loads(text)
res = {r["name"]: r for r in doc["resources"]}
args = sys.argv[1:]
def iso_ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
try:
'"$(sed 's/^/    /' <<<"$code")"'
except AssertionError:
    print(text, file=sys.stderr)
    raise
' "$@" <<<"$output"
}

# start_holder NAME CMD...: spawns CMD, which must touch $T/NAME.ready once it holds the
# lock; returns when it has. Sets $SPAWNED.
start_holder() {
  local name="$1"
  shift
  spawn -n "$name" "$@"
  wait_for_file "$T/$name.ready"
}

# How far a "since" may lie outside [before, after]: process start times count in clock
# ticks (10 ms), and the stamps are taken by other processes.
SLACK_MS=100

@test "--json without --list is a usage error: 64, one line, nothing on stdout" {
  for args in "--json" "--json -L cpu true" "-L cpu --json -- true" "--check-config --json" "--show-config --json"; do
    # shellcheck disable=SC2086  # $args is several words
    run --separate-stderr lotoc $args
    [ "$status" -eq 64 ]
    [ -z "$output" ]
    [ "$stderr" = "loto: error: option --json is only valid with --list (see 'loto --help')" ]
  done
  run --separate-stderr lotoc --list --json=yes
  [ "$status" -eq 64 ]
  [ "$stderr" = "loto: error: option --json takes no value (see 'loto --help')" ]
  # --help still wins
  run --separate-stderr lotoc --json --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"--json"*"with --list: print one JSON document"* ]]
}

@test "every resource, with its policy and description, free, in --list's order; no lock file made" {
  f="$(write_config "lock_dir: $T
logging: {syslog: false}
resources:
  db:
    path: $T/db.lock
    timeout: 3
    description: 'the \"orders\" database \\ ünïcödé'
  q:
    wait: true
  half:
    timeout: 250ms
  web: {}
")"
  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  local json="$output"
  run --separate-stderr "$LOTO" --config "$f" --list
  local names
  names="$(tail -n +2 <<<"$output" | awk '{print $1}' | tr '\n' ' ')"
  output="$json"
  jcheck '
assert list(doc) == ["resources"], list(doc)
names, lock_dir, config = args[0].split(), args[1], args[2]
assert [r["name"] for r in doc["resources"]] == names, names
assert names == ["cpu", "db", "half", "net", "q", "web"], names
for r in doc["resources"]:
    assert r["backend"] == "flock", r
    assert r["state"] == "free" and r["holders"] == [] and r["waiters"] == [] and r["waiting"] == 0, r
    assert "error" not in r, r
    assert r["lock"] == lock_dir + ("/db.lock" if r["name"] == "db" else "/loto." + r["name"]), r
db, cpu, q, half, web = res["db"], res["cpu"], res["q"], res["half"], res["web"]
assert (db["policy"], db["wait"], db["timeout_seconds"]) == ("wait up to 3s", True, 3), db
assert db["description"] == "the \"orders\" database \\ \u00fcn\u00efc\u00f6d\u00e9", db
assert db["origin"].startswith(config + ":"), db
assert (half["policy"], half["wait"], half["timeout_seconds"]) == ("wait up to 250ms", True, 0.25), half
assert (q["policy"], q["wait"], q["timeout_seconds"]) == ("wait", True, None), q
assert (web["policy"], web["wait"], web["timeout_seconds"]) == ("no wait", False, 0), web
assert (cpu["origin"], cpu["description"]) == ("built-in", "processor-heavy batch jobs, one at a time"), cpu
assert web["description"] == "", web
' "$names" "$T" "$f"
  [ ! -e "$T/db.lock" ]
  [ ! -e "$T/loto.cpu" ]
  [ ! -e "$T/loto.web" ]
}

@test "shared holders (flock -s) and their waiters in arrival order, with user, command and since" {
  lock="$T/db.lock"
  : >"$lock"
  chmod 0644 "$lock"
  make_traversable "$T" # for the waiter that runs as nobody
  # queue: none: every waiter blocks on the lock file itself, in the kernel's order,
  # which is what this test reads back (the fifo queue's order is tested in queue.bats)
  f="$(write_config "lock_dir: $T
logging: {syslog: false}
resources:
  db: {path: $lock, queue: none}
")"
  local before after s1 s2 w1 w2 w3 stamps=()
  before="$(now_ms)"
  start_holder s1 flock -s "$lock" sh -c 'touch "$1"; exec sleep 60' sh "$T/s1.ready"
  s1=$SPAWNED
  start_holder s2 flock -s "$lock" sh -c 'touch "$1"; exec sleep 60' sh "$T/s2.ready"
  s2=$SPAWNED
  after="$(now_ms)"
  stamps+=("$before" "$after")
  # three waiters, one after another: loto, flock(1) as nobody, loto with odd arguments
  before="$(now_ms)"
  spawn -n w1 "$LOTO" --config "$f" -w -L db -- touch "$T/w1.ran"
  w1=$SPAWNED
  wait_for_waiters "$lock" 1
  stamps+=("$before" "$(now_ms)")
  before="$(now_ms)"
  spawn -n w2 setpriv --reuid=nobody --regid=nogroup --clear-groups -- flock -x "$lock" true
  w2=$SPAWNED
  wait_for_waiters "$lock" 2
  stamps+=("$before" "$(now_ms)")
  before="$(now_ms)"
  spawn -n w3 "$LOTO" --config "$f" -w -L db -- true "$(printf 'a\tb"c\\d\377')" 'x y'
  w3=$SPAWNED
  wait_for_waiters "$lock" 3
  stamps+=("$before" "$(now_ms)")

  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  jcheck '
s1, s2, w1, w2, w3, me, loto, lock, slack = args[:9]
st = [int(x) for x in args[9:]]
db = res["db"]
assert db["state"] == "held", db
holders = db["holders"]
assert sorted(h["pid"] for h in holders) == sorted([int(s1), int(s2)]), holders
for h in holders:
    assert h["mode"] == "shared" and h["user"] == me, h
    assert h["command"].startswith("flock -s " + lock + " sh -c "), h
    assert st[0] - int(slack) <= iso_ms(h["since"]) <= st[1] + int(slack), (h, st[:2])
waiters = db["waiters"]
assert [w["pid"] for w in waiters] == [int(w1), int(w2), int(w3)], waiters
assert [w["user"] for w in waiters] == [me, "nobody", me], waiters
assert all(w["mode"] == "exclusive" for w in waiters), waiters
assert waiters[0]["command"].startswith(loto + " --config "), waiters
assert waiters[1]["command"] == "flock -x " + lock + " true", waiters
assert waiters[2]["command"].endswith(" true " + "\x27a\\tb\"c\\\\d\\xff\x27 \x27x y\x27"), waiters
for i, w in enumerate(waiters):
    assert st[2 + 2 * i] - int(slack) <= iso_ms(w["since"]) <= st[3 + 2 * i] + int(slack), (w, st)
assert db["waiting"] == 3, db
assert res["cpu"]["state"] == "free", res["cpu"]
' "$s1" "$s2" "$w1" "$w2" "$w3" "$ME" "$LOTO" "$lock" "$SLACK_MS" "${stamps[@]}"

  # the plain --list names both holders and counts the waiters
  run --separate-stderr "$LOTO" --config "$f" --list
  [ "$status" -eq 0 ]
  row="$(grep -E '^db ' <<<"$output")"
  echo "$row" >&2
  [[ "$row" =~ \ held\ \(shared\)\ by\ pid\ [0-9]+:\ flock\ -s\ .*\;\ pid\ [0-9]+:\ flock\ -s\ .*,\ 3\ waiting$ ]]
  [[ "$row" == *"pid $s1: "* && "$row" == *"pid $s2: "* ]]

  # the holders let go: the waiters run in turn, and the lock is free again
  release_lock "$s1"
  release_lock "$s2"
  for w in "$w1" "$w2" "$w3"; do
    wait_exit "$w" 10
    [ "$STATUS" -eq 0 ]
  done
  [ -e "$T/w1.ran" ]
  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  jcheck 'assert res["db"]["state"] == "free" and res["db"]["holders"] == [] and res["db"]["waiters"] == [], res["db"]'
}

@test "a loto holder and a flock(1) waiter; a holder whose process is gone keeps its pid, null facts" {
  f="$(write_config "lock_dir: $T
logging: {syslog: false}
resources:
  job: {}
  left: {}
")"
  local before after holder waiter gone
  before="$(now_ms)"
  start_holder h "$LOTO" --config "$f" -L job -- sh -c 'touch "$1"; '"$(await "$T/h.go")" sh "$T/h.ready"
  holder=$SPAWNED
  after="$(now_ms)"
  spawn -n w flock -x "$T/loto.job" true
  waiter=$SPAWNED
  wait_for_waiters "$T/loto.job" 1
  # flock(1) takes "left", starts a background sleep that inherits the lock, and exits
  start_holder g flock -x "$T/loto.left" sh -c 'sleep 60 & touch "$1"' sh "$T/g.ready"
  gone=$SPAWNED
  wait_exit "$gone" 5 # reaped: no zombie left in /proc

  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  jcheck '
holder, waiter, gone, me, loto, before, after, slack = args
job, left = res["job"], res["left"]
assert job["state"] == "held" and len(job["holders"]) == 1, job
h = job["holders"][0]
assert (h["pid"], h["user"], h["mode"]) == (int(holder), me, "exclusive"), h
assert h["command"].startswith(loto + " --config ") and " -L job -- sh -c " in h["command"], h
assert int(before) - int(slack) <= iso_ms(h["since"]) <= int(after) + int(slack), h
assert [(w["pid"], w["command"]) for w in job["waiters"]] == [(int(waiter), "flock -x " + job["lock"] + " true")], job
assert job["waiting"] == 1, job
assert left["state"] == "held", left
g = left["holders"][0]
assert g == {"pid": int(gone), "user": None, "command": None, "since": None, "mode": "exclusive"}, g
' "$holder" "$waiter" "$gone" "$ME" "$LOTO" "$before" "$after" "$SLACK_MS"

  run --separate-stderr "$LOTO" --config "$f" --list
  [ "$status" -eq 0 ]
  grep -qE "^left .* held by pid $gone \(exited; a process it started holds the lock\)$" <<<"$output"
  grep -qE "^job .* held by pid $holder: .*, 1 waiting$" <<<"$output"
  touch "$T/h.go"
  wait_exit "$holder" 10
  [ "$STATUS" -eq 0 ]
  wait_exit "$waiter" 10
  [ "$STATUS" -eq 0 ]
}

@test "an etcd resource whose endpoint is unreachable: state unknown with the error; the others as usual" {
  local port
  port="$(free_port)"
  f="$(write_etcd_config --endpoints "http://127.0.0.1:$port" fleet)"
  hold_lock "$T/loto.cpu"
  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  jcheck '
port, holder = args
fleet = res["fleet"]
assert (fleet["backend"], fleet["lock"], fleet["state"]) == ("etcd", "loto/fleet", "unknown"), fleet
assert fleet["error"].startswith("cannot reach etcd at http://127.0.0.1:" + port + ": "), fleet
assert (fleet["holders"], fleet["waiters"], fleet["waiting"]) == (None, None, None), fleet
assert res["cpu"]["state"] == "held" and res["cpu"]["holders"][0]["pid"] == int(holder), res["cpu"]
assert res["net"]["state"] == "free", res["net"]
' "$port" "$HOLDER"
}

@test "ten resources, some held: one valid document, quickly" {
  local text="lock_dir: $T"$'\n'"logging: {syslog: false}"$'\n'"resources:"$'\n' i
  for i in 1 2 3 4 5 6 7 8; do
    text+="  r$i: {timeout: ${i}s, description: resource $i}"$'\n'
  done
  f="$(write_config "$text")"
  hold_lock "$T/loto.r1" h1
  hold_lock "$T/loto.r5" h5
  local start elapsed
  start="$(now_us)"
  run --separate-stderr "$LOTO" --config "$f" --list --json
  elapsed=$(($(now_us) - start))
  echo "--list --json with 10 resources: $((elapsed / 1000)).$(((elapsed % 1000) / 100)) ms" >&2
  [ "$status" -eq 0 ]
  jcheck '
assert len(doc["resources"]) == 10, doc
held = sorted(r["name"] for r in doc["resources"] if r["state"] == "held")
assert held == ["r1", "r5"], held
assert res["r3"]["timeout_seconds"] == 3 and res["r3"]["description"] == "resource 3", res["r3"]
'
  ((elapsed < 2000000))
}

@test "fifo: loto waiters in the queue's order (not the kernel's), since they queued, then a flock(1) waiter" {
  lock="$T/line.lock"
  f="$(write_config "lock_dir: $T
logging: {syslog: false}
resources:
  line: {path: $lock, queue: fifo}
")"
  start_holder h flock -x "$lock" sh -c 'touch "$1"; exec sleep 60' sh "$T/h.ready"
  local holder=$SPAWNED before w1 w2 w3 f1 stamps=()
  # w1 (loto), w2 (loto -s), f1 (flock(1), outside the queue), w3 (loto), one after another
  before="$(now_ms)"
  spawn -n w1 "$LOTO" --config "$f" -w -L line -- true
  w1=$SPAWNED
  wait_for_waiters "$lock" 1
  stamps+=("$before" "$(now_ms)")
  before="$(now_ms)"
  spawn -n w2 "$LOTO" --config "$f" -w -s -L line -- true
  w2=$SPAWNED
  wait_for_tickets "$lock" 2
  wait_until 5 blocked "$w2"
  stamps+=("$before" "$(now_ms)")
  spawn -n f1 flock -x "$lock" true
  f1=$SPAWNED
  wait_for_waiters "$lock" 2
  before="$(now_ms)"
  spawn -n w3 "$LOTO" --config "$f" -w -L line -- true
  w3=$SPAWNED
  wait_for_tickets "$lock" 3
  wait_until 5 blocked "$w3"
  stamps+=("$before" "$(now_ms)")
  # w1 makes its flock() call again: in the kernel's list it is now behind f1
  kill -STOP "$w1"
  wait_until 5 proc_stopped "$w1"
  kill -CONT "$w1"
  wait_until 5 blocked "$w1"

  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  jcheck '
w1, w2, w3, f1, holder, slack = (int(a) for a in args[:6])
st = [int(x) for x in args[6:12]]
line = res["line"]
assert [h["pid"] for h in line["holders"]] == [holder], line
waiters = line["waiters"]
assert [w["pid"] for w in waiters] == [w1, w2, w3, f1], waiters
# in the queue: the mode is the one asked for only once at the lock; since = the ticket
for i, w in enumerate(waiters[:3]):
    assert w["mode"] is None, w
    assert st[2 * i] - slack <= iso_ms(w["since"]) <= st[2 * i + 1] + slack, (w, st)
assert waiters[1]["command"].endswith(" -w -s -L line -- true"), waiters
assert waiters[3]["mode"] == "exclusive" and waiters[3]["command"] == "flock -x " + args[12] + " true", waiters
assert line["waiting"] == 4, line
' "$w1" "$w2" "$w3" "$f1" "$holder" "$SLACK_MS" "${stamps[@]}" "$lock"
  release_lock "$holder"
  for w in "$w1" "$w2" "$w3" "$f1"; do
    wait_exit "$w" 10
    [ "$STATUS" -eq 0 ]
  done
}

@test "fifo: a waiter's since is when it joined this lock's queue, not when its process started" {
  f="$(write_config "lock_dir: $T
logging: {syslog: false}
resources:
  first: {path: $T/first.lock}
  line: {path: $T/line.lock, queue: fifo}
")"
  start_holder a flock -x "$T/first.lock" sh -c 'touch "$1"; exec sleep 60' sh "$T/a.ready"
  local first_holder=$SPAWNED
  start_holder b flock -x "$T/line.lock" sh -c 'touch "$1"; exec sleep 60' sh "$T/b.ready"
  local started queued w
  started="$(now_ms)"
  # locks are taken in -L order: it waits for "first", and only then queues for "line"
  spawn -n w "$LOTO" --config "$f" -w -L first -L line -- true
  w=$SPAWNED
  wait_for_waiters "$T/first.lock" 1
  # let half a second pass (far more than the slack), then let it move on to "line"
  wait_until 5 past_ms $((started + 500))
  queued="$(now_ms)"
  release_lock "$first_holder"
  wait_for_tickets "$T/line.lock" 1
  run --separate-stderr "$LOTO" --config "$f" --list --json
  [ "$status" -eq 0 ]
  jcheck '
w, queued, slack = (int(a) for a in args)
waiters = res["line"]["waiters"]
assert [x["pid"] for x in waiters] == [w], waiters
assert iso_ms(waiters[0]["since"]) >= queued - slack, (waiters, queued)
' "$w" "$queued" "$SLACK_MS"
}
