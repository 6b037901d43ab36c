# Helpers for metrics.bats: loto's <metrics_dir>/loto.prom, read back with a strict parser
# of the Prometheus text format (python3), promtool and a real prometheus-node-exporter.
# Load after helpers.bash:   load helpers; load metrics_helpers
#
#   $MD                        the metrics directory of the test ($T/metrics, created)
#   $PROM                      $MD/loto.prom
#   metrics_config [EXTRA]     a config: lock_dir $T, syslog off, metrics_dir $MD, resources
#                              backup, a, b, db (+ EXTRA lines); prints its path
#   prom_check FILE            strict check of a loto.prom (see _PROM_PY "check"): not
#                              empty, ends in a newline, every line parses, each family has
#                              one HELP and one TYPE before its samples and appears once,
#                              types as specified, no duplicate series, series sorted by
#                              labels, values are numbers
#   promtool_clean FILE        `promtool check metrics < FILE` exits 0 and prints nothing
#   pv FILE METRIC [k=v ...]   prints the value of the one series METRIC{k="v",...} (label
#                              order in the file does not matter), or "absent"
#   pv_is FILE METRIC LABELS... EXPECTED     pv equals EXPECTED (as numbers; "absent" too)
#   in_range V LO HI           LO <= V <= HI as floats (fails with a message)
#   prom_files_only DIR        DIR holds nothing but loto.prom and .loto.prom.lock
#   spawn -n NAME "${PROM_WATCH[@]}" FILE STOP OUT
#                              the torn-file reader: reads FILE every ~2 ms until STOP
#                              exists (OUT/ready appears once it runs); each new content is
#                              checked like prom_check, counters must never go down; each is
#                              saved as OUT/snap.N, violations as OUT/bad.N (exit 1), and a
#                              summary goes to OUT/summary
#   now_s / fadd A B           wall clock in s (float); A + B as a float
#   free_port                  a loopback TCP port nobody listens on right now
#   start_node_exporter DIR    a prometheus-node-exporter (textfile collector only, on DIR)
#                              on a free loopback port, spawned (teardown kills its group);
#                              sets $NE_PID and $NE_URL once /metrics answers
#   stop_node_exporter         TERM by pid, then KILL; waits for it

# shellcheck disable=SC2034  # used by metrics.bats
MD_FAMILIES="loto_runs_total loto_last_run_start_timestamp_seconds loto_last_run_duration_seconds loto_last_wait_seconds loto_last_exit_status loto_last_success_timestamp_seconds"

metrics_config() {
  write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: false\nmetrics_dir: %s\nresources:\n  backup: {}\n  a: {}\n  b: {}\n  db: {}\n%s' "$T" "$MD" "${1:-}")"
}

# The parser. Commands:
#   check FILE               exit 0, or print the problems and exit 1
#   get FILE METRIC k=v...   print the value of that series or "absent"
#   watch FILE STOP OUTDIR   the torn-file reader (see prom_watch)
# shellcheck disable=SC2016
_PROM_PY='
import os, re, sys, time, math

TYPES = {
    "loto_runs_total": "counter",
    "loto_last_run_start_timestamp_seconds": "gauge",
    "loto_last_run_duration_seconds": "gauge",
    "loto_last_wait_seconds": "gauge",
    "loto_last_exit_status": "gauge",
    "loto_last_success_timestamp_seconds": "gauge",
}
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LVAL = r"\"(?:[^\"\\\n]|\\[\\\"n])*\""
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*=" + LVAL
SAMPLE = re.compile(r"^(" + NAME + r")(?:\{((?:" + LABEL + r")(?:," + LABEL + r")*)?,?\})? (\S+)$")
LABEL_RE = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=(" + LVAL + r")")
HELP = re.compile(r"^# HELP (" + NAME + r") (.+)$")
TYPE = re.compile(r"^# TYPE (" + NAME + r") (counter|gauge|histogram|summary|untyped)$")

def unq(v):
    return v[1:-1].replace("\\n", "\n").replace("\\\"", "\"").replace("\\\\", "\\")

def parse(text):
    """-> (problems, {(name, frozenset(labels.items())): value}, [order])"""
    probs, series = [], {}
    if text == "":
        return ["the file is empty"], series
    if not text.endswith("\n"):
        probs.append("the file does not end with a newline (torn?)")
    fam_help, fam_type, fam_seen_samples = {}, {}, []
    current = None
    last_key = {}
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        if line == "":
            continue
        m = HELP.match(line)
        if m:
            f = m.group(1)
            if f in fam_help:
                probs.append("line %d: a second HELP for %s" % (n, f))
            if f in fam_seen_samples:
                probs.append("line %d: HELP for %s after its samples" % (n, f))
            fam_help[f] = m.group(2)
            continue
        m = TYPE.match(line)
        if m:
            f = m.group(1)
            if f in fam_type:
                probs.append("line %d: a second TYPE for %s" % (n, f))
            if f in fam_seen_samples:
                probs.append("line %d: TYPE for %s after its samples" % (n, f))
            fam_type[f] = m.group(2)
            continue
        if line.startswith("#"):
            if line.startswith("# HELP") or line.startswith("# TYPE"):
                probs.append("line %d: malformed: %r" % (n, line))
            continue
        m = SAMPLE.match(line)
        if not m:
            probs.append("line %d: not a sample: %r" % (n, line))
            continue
        name, lbl, val = m.group(1), m.group(2) or "", m.group(3)
        pairs = [(k, unq(v)) for k, v in LABEL_RE.findall(lbl)]
        if len(set(k for k, _ in pairs)) != len(pairs):
            probs.append("line %d: a label twice: %r" % (n, line))
        try:
            fv = float(val)
        except ValueError:
            probs.append("line %d: value %r is not a number" % (n, val))
            continue
        if math.isnan(fv):
            probs.append("line %d: NaN" % n)
        if name != current:
            if name in fam_seen_samples:
                probs.append("line %d: family %s appears twice (not contiguous)" % (n, name))
            else:
                fam_seen_samples.append(name)
            current = name
        if name not in fam_help:
            probs.append("line %d: %s has no HELP before its samples" % (n, name))
        if name not in fam_type:
            probs.append("line %d: %s has no TYPE before its samples" % (n, name))
        key = (name, frozenset(pairs))
        if key in series:
            probs.append("line %d: duplicate series %r" % (n, line))
        series[key] = fv
        sk = [v for _, v in pairs]
        if name in last_key and sk < last_key[name]:
            probs.append("line %d: series not sorted by labels: %r after %r" % (n, sk, last_key[name]))
        last_key[name] = sk
        if name in TYPES and "resource" not in dict(pairs):
            probs.append("line %d: no resource label: %r" % (n, line))
        if name == "loto_runs_total" and "outcome" not in dict(pairs):
            probs.append("line %d: no outcome label: %r" % (n, line))
        if name == "loto_runs_total" and dict(pairs).get("outcome") not in \
                ("ran", "busy", "timeout", "interrupted", "error", "lost", None):
            probs.append("line %d: unknown outcome: %r" % (n, line))
    for f in set(fam_seen_samples) | set(fam_type) | set(fam_help):
        if f not in TYPES:
            probs.append("unexpected family %s" % f)
        elif f in fam_type and fam_type[f] != TYPES[f]:
            probs.append("%s has TYPE %s, not %s" % (f, fam_type[f], TYPES[f]))
        elif (f in fam_type) != (f in fam_help):
            probs.append("%s has a HELP or a TYPE line but not both" % f)
    if "loto_runs_total" not in fam_seen_samples:
        probs.append("no loto_runs_total samples")
    return probs, series

def get(series, name, want):
    want = dict(w.split("=", 1) for w in want)
    hits = [v for (n, ls), v in series.items() if n == name and dict(ls) == want]
    if len(hits) > 1:
        return "duplicate"
    return repr(hits[0]) if hits else "absent"

cmd = sys.argv[1]
if cmd == "check":
    text = open(sys.argv[2], encoding="utf-8").read()
    probs, _ = parse(text)
    for p in probs:
        print(p)
    sys.exit(1 if probs else 0)
elif cmd == "get":
    text = open(sys.argv[2], encoding="utf-8").read()
    probs, series = parse(text)
    print(get(series, sys.argv[3], sys.argv[4:]))
elif cmd == "watch":
    path, stop, out = sys.argv[2:5]
    open(os.path.join(out, "ready"), "w").close()
    last, reads, snaps, bad = None, 0, 0, 0
    counters = {}
    final = False
    while True:
        if os.path.exists(stop):
            final = True
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = None
        reads += 1
        if data is not None and data != last:
            last = data
            snaps += 1
            open(os.path.join(out, "snap.%d" % snaps), "wb").write(data)
            try:
                probs, series = parse(data.decode("utf-8"))
            except UnicodeDecodeError as e:
                probs, series = ["not UTF-8: %s" % e], {}
            for (n, ls), v in series.items():
                if n == "loto_runs_total":
                    if v < counters.get(ls, 0):
                        probs.append("counter %r went down: %r -> %r" % (dict(ls), counters[ls], v))
                    counters[ls] = v
            if probs:
                bad += 1
                open(os.path.join(out, "bad.%d" % snaps), "w").write("\n".join(probs) + "\n")
        if final:
            break
        time.sleep(0.002)
    open(os.path.join(out, "summary"), "w").write("reads=%d snapshots=%d bad=%d\n" % (reads, snaps, bad))
    sys.exit(1 if bad else 0)
'

prom_check() {
  local out
  if ! out="$("$PY" -c "$_PROM_PY" check "$1" 2>&1)"; then
    echo "prom_check $1:" >&2
    printf '%s\n' "$out" >&2
    echo "--- $1:" >&2
    cat "$1" >&2
    return 1
  fi
}

promtool_clean() {
  local out rc=0
  out="$(promtool check metrics <"$1" 2>&1)" || rc=$?
  if ((rc != 0)) || [[ -n "$out" ]]; then
    echo "promtool check metrics < $1: rc=$rc: $out" >&2
    echo "--- $1:" >&2
    cat "$1" >&2
    return 1
  fi
}

pv() { "$PY" -c "$_PROM_PY" get "$@"; }

# shellcheck disable=SC2034  # used by metrics.bats
PROM_WATCH=("$PY" -c "$_PROM_PY" watch)

pv_is() {
  local file="$1" expected="${*: -1}" got
  got="$(pv "${@:1:$#-1}")"
  if [[ "$expected" == absent || "$got" == absent || "$got" == duplicate ]]; then
    [[ "$got" == "$expected" ]] && return 0
  elif awk -v a="$got" -v b="$expected" 'BEGIN { exit !(a + 0 == b + 0) }'; then
    return 0
  fi
  echo "pv ${*:2:$#-2}: expected $expected, got $got, in $file:" >&2
  cat "$file" >&2
  return 1
}

in_range() {
  awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "absent" && v != "duplicate" && v + 0 >= lo + 0 && v + 0 <= hi + 0) }' || {
    echo "in_range: $1 is not within [$2, $3]" >&2
    return 1
  }
}

# The wall clock now, in seconds with microseconds (for intervals around a run).
now_s() { local t=$EPOCHREALTIME; echo "${t/,/.}"; }
# fadd A B: A + B as a float with microseconds (B may be negative).
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a + b }'; }

prom_files_only() {
  local extra
  extra="$(cd "$1" && find . -mindepth 1 ! -name loto.prom ! -name .loto.prom.lock -printf '%P\n')"
  [[ -z "$extra" ]] || {
    echo "left in $1: $extra" >&2
    ls -la "$1" >&2
    return 1
  }
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_ne_up() {
  proc_gone "$NE_PID" && return 0 # gone: stop waiting, the caller looks
  curl -sf -o /dev/null "$NE_URL/metrics"
}

start_node_exporter() {
  local dir="$1" port try
  command -v prometheus-node-exporter >/dev/null || {
    echo "prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)" >&2
    return 1
  }
  for try in 1 2 3; do
    port="$(free_port)"
    NE_URL="http://127.0.0.1:$port"
    spawn -n "node_exporter.$try" prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
      --collector.disable-defaults --collector.textfile --collector.textfile.directory="$dir"
    NE_PID=$SPAWNED
    wait_until 10 _ne_up || return 1
    if ! proc_gone "$NE_PID"; then
      return 0
    fi
    # lost the port to someone else between free_port and the bind: try another
    wait "$NE_PID" 2>/dev/null || true
    cat "$T/node_exporter.$try.err" >&2
  done
  return 1
}

stop_node_exporter() {
  [[ -n "${NE_PID:-}" ]] || return 0
  kill -TERM "$NE_PID" 2>/dev/null || true
  wait_until 5 proc_gone "$NE_PID" || kill -KILL "$NE_PID" 2>/dev/null || true
  wait "$NE_PID" 2>/dev/null || true
  NE_PID=
}
