#!/usr/bin/env python3
"""Side-by-side benchmark of loto and util-linux flock(1), and of loto on etcd and etcdctl lock.

Runs every scenario for both tools in the same run, interleaved, and prints a table of
medians and loto/flock ratios. The etcd part runs loto's etcd backend against
`etcdctl lock` on a single-member etcd that the benchmark starts on loopback. See
bench/README.md for what each figure means.
"""

import argparse
import base64
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run_once(argv, env, quiet=False):
    """Wall time of one run of argv in nanoseconds (spawn to reap); `quiet`: stdout to
    /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)] if quiet else []
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter_ns() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}")
    return elapsed


class Tools:
    def __init__(self, loto, work):
        self.loto = os.path.abspath(loto)
        self.flock = shutil.which("flock")
        self.true = shutil.which("true")
        self.work = work
        self.job = os.path.join(work, "job")
        subprocess.run(["cc", "-O2", "-o", self.job, os.path.join(HERE, "job.c")], check=True)
        # loto reads its config on every call, so it runs as installed: with the shipped
        # etc/loto.yaml (through LOTO_CONFIG, in a directory loto trusts).
        config_dir = os.path.join(work, "etc")
        os.mkdir(config_dir, 0o755)
        self.config = os.path.join(config_dir, "loto.yaml")
        shutil.copyfile(os.path.join(HERE, "..", "etc", "loto.yaml"), self.config)
        os.chmod(self.config, 0o644)
        self.env = dict(os.environ, LOTO_CONFIG=self.config)
        # For comparison: the annotated example, which a config like it costs per call.
        self.example = os.path.join(config_dir, "example.yaml")
        shutil.copyfile(os.path.join(HERE, "..", "etc", "loto.example.yaml"), self.example)
        os.chmod(self.example, 0o644)
        self.example_size = os.path.getsize(self.example)

    def command(self, tool, lock, job_argv, wait):
        if tool == "loto":
            return [self.loto] + (["-w"] if wait else []) + ["-L", lock, "--"] + job_argv
        return [self.flock] + (["-x"] if wait else ["-n"]) + [lock] + job_argv


def overhead(tools, rounds):
    """Sequential calls of TOOL LOCK true, interleaved in random order each round."""
    lock = os.path.join(tools.work, "overhead.lock")
    plain = dict(os.environ)
    plain.pop("LOTO_CONFIG", None)
    cases = {
        "true": ([tools.true], plain),
        "flock": (tools.command("flock", lock, [tools.true], False), plain),
        "loto": (tools.command("loto", lock, [tools.true], False), tools.env),
    }
    cases["loto_example"] = (tools.command("loto", lock, [tools.true], False),
                             dict(plain, LOTO_CONFIG=tools.example))
    # The floor: loto with no config file at all, when this machine has none installed.
    if not os.path.exists("/etc/loto.yaml") and not os.path.exists("/etc/loto.d"):
        cases["loto_no_config"] = (tools.command("loto", lock, [tools.true], False), plain)
    samples = {name: [] for name in cases}
    for _ in range(10):  # warm caches
        for argv, env in cases.values():
            run_once(argv, env)
    for _ in range(rounds):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            samples[name].append(run_once(*cases[name]))
    return {name: statistics.median(values) / 1e6 for name, values in samples.items()}


def handoff_run(tools, tool, workers, jobs, argv_for=None, env=None):
    """WORKERS loops of JOBS runs each of a job under one lock. `argv_for(lock, job_argv)`
    builds the command (default: TOOL -w LOCK); a lock with slots stamps the slot, and
    gaps are then measured per slot: how long a freed slot stays idle while jobs wait."""
    run_dir = tempfile.mkdtemp(dir=tools.work)
    lock = os.path.join(run_dir, "handoff.lock")
    stamps = os.path.join(run_dir, "stamps")
    counter = os.path.join(run_dir, "counter")
    job_argv = [tools.job, stamps, counter]
    argv = argv_for(lock, job_argv) if argv_for else tools.command(tool, lock, job_argv, True)
    script = 'i=0; while [ "$i" -lt "$1" ]; do "${@:2}" || exit 1; i=$((i+1)); done'
    start = time.monotonic_ns()
    procs = [
        subprocess.Popen(["bash", "-c", script, "worker", str(jobs)] + argv,
                         env=env or tools.env)
        for _ in range(workers)
    ]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit(f"handoff worker failed for {tool}")
    wall = (time.monotonic_ns() - start) / 1e9
    by_slot = {}
    with open(stamps) as file:
        for line in file:
            begin, end, slot = line.split()
            by_slot.setdefault(slot, []).append((int(begin), int(end)))
    count = 0
    for slot in by_slot:
        suffix = "" if slot == "-" else "." + slot
        with open(counter + suffix) as file:
            count += int(file.read())
    overlaps = 0
    gaps = []
    for pairs in by_slot.values():
        pairs.sort()
        overlaps += sum(1 for a, b in zip(pairs, pairs[1:]) if b[0] < a[1])
        gaps += [(b[0] - a[1]) / 1e6 for a, b in zip(pairs, pairs[1:])]
    expected = workers * jobs
    total = sum(len(pairs) for pairs in by_slot.values())
    if overlaps or count != expected or total != expected:
        raise SystemExit(
            f"{tool}: {overlaps} overlaps, counter {count}, {total} jobs (expected {expected})"
        )
    return {"jobs_per_s": expected / wall, "gaps": gaps, "slots": len(by_slot)}


def handoff(tools, workers, jobs, repeats):
    results = {"flock": {"jobs_per_s": [], "gaps": []}, "loto": {"jobs_per_s": [], "gaps": []}}
    for _ in range(repeats):
        for tool in ("flock", "loto"):
            result = handoff_run(tools, tool, workers, jobs)
            results[tool]["jobs_per_s"].append(result["jobs_per_s"])
            results[tool]["gaps"].extend(result["gaps"])
    summary = {}
    for tool, result in results.items():
        gaps = result["gaps"]
        summary[tool] = {
            "jobs_per_s": statistics.median(result["jobs_per_s"]),
            "p50": percentile(gaps, 0.50),
            "p90": percentile(gaps, 0.90),
            "p99": percentile(gaps, 0.99),
            "max": max(gaps),
        }
    return summary


def blocked_waiters(lock):
    """Number of processes blocked in flock() on `lock` or on one of its queue tickets
    (`lock`.qNUMBER: a fifo waiter behind another waits on that one's ticket), according
    to /proc/locks."""
    directory, name = os.path.split(lock)
    inodes = set()
    for entry in os.listdir(directory):
        if entry == name or (entry.startswith(name + ".q") and entry[len(name) + 2:].isdigit()):
            try:
                st = os.stat(os.path.join(directory, entry))
            except FileNotFoundError:
                continue
            inodes.add(f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}")
    with open("/proc/locks") as file:
        return sum(1 for line in file if "->" in line and line.split()[-3] in inodes)


def process_cost(pid):
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as file:
        for line in file:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return ticks, rss, pss


def waiters_run(tools, tool, count, hold_seconds):
    run_dir = tempfile.mkdtemp(dir=tools.work)
    lock = os.path.join(run_dir, "waiters.lock")
    stamps = os.path.join(run_dir, "stamps")
    counter = os.path.join(run_dir, "counter")
    holder = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)
    argv = tools.command(tool, lock, [tools.job, stamps, counter], True)
    procs = [subprocess.Popen(argv, env=tools.env) for _ in range(count)]
    deadline = time.monotonic() + 60
    while blocked_waiters(lock) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{tool}: waiters did not all block")
        time.sleep(0.05)
    before = {proc.pid: process_cost(proc.pid)[0] for proc in procs}
    time.sleep(hold_seconds)
    costs = [process_cost(proc.pid) for proc in procs]
    cpu_ticks = sum(cost[0] - before[proc.pid] for cost, proc in zip(costs, procs))
    released = time.monotonic_ns()
    fcntl.flock(holder, fcntl.LOCK_UN)
    os.close(holder)
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit(f"{tool}: a waiter failed")
    with open(stamps) as file:
        last_end = max(int(line.split()[1]) for line in file)
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "cpu_ms_while_waiting": cpu_ticks * 1000 / hz,
        "rss_kib": statistics.median(cost[1] for cost in costs),
        "pss_kib": statistics.median(cost[2] for cost in costs),
        "drain_ms": (last_end - released) / 1e6,
    }


def waiters(tools, count, hold_seconds):
    return {tool: waiters_run(tools, tool, count, hold_seconds) for tool in ("flock", "loto")}


ANATOMY = [
    ("dynamic loader (before main)", r":_dl_start "),
    ("static initialisers", r"_GLOBAL__sub_I|__libc_csu_init|call_init"),
    ("parse command line", r"loto::parse_cli\("),
    ("load config files", r"loto::load_config\("),
    ("make plan", r"loto::make_plan\("),
    ("logger set-up", r"loto::Log::Log\("),
    ("take lock + run command", r"loto::execute\("),
    ("  spawn + wait (clone + execve)", r"loto::run_command\("),
    ("  audit records (syslog)", r"loto::Log::audit\("),
]


def anatomy(tools):
    """Instruction counts (callgrind) of one `loto -L LOCK true`, by phase."""
    if not shutil.which("valgrind"):
        return None
    lock = os.path.join(tools.work, "anatomy.lock")
    totals = {}
    for name, argv in (
        ("loto", tools.command("loto", lock, [tools.true], False)),
        ("flock", tools.command("flock", lock, [tools.true], False)),
    ):
        out = os.path.join(tools.work, f"callgrind.{name}")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tools.env,
        )
        report = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
            check=True, capture_output=True, text=True,
        ).stdout
        rows = []
        for line in report.splitlines():
            match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
            if match:
                rows.append((int(match.group(1).replace(",", "")), match.group(2)))
        totals[name] = {"total": next(n for n, f in rows if "PROGRAM TOTALS" in f), "rows": rows}
    phases = []
    for label, pattern in ANATOMY:
        counts = [n for n, function in totals["loto"]["rows"] if re.search(pattern, function)]
        phases.append((label, max(counts) if counts else 0))
    return {"loto_total": totals["loto"]["total"], "flock_total": totals["flock"]["total"],
            "phases": phases}


# ---- The etcd part: loto's etcd backend against `etcdctl lock`, on one etcd of our own.

# Fast elections (healthy in about 0.1 s), quiet logs: the flags loto's tests use too.
ETCD_FLAGS = ["--heartbeat-interval=10", "--election-timeout=100", "--logger=zap",
              "--log-level=warn"]
ETCD_RESOURCE = "job"           # loto's lock: etcd prefix loto/ + job
ETCDCTL_LOCK = "loto/job-ctl"   # etcdctl's lock: a different name, so the two never contend


def free_ports(count):
    """`count` distinct loopback ports nobody listens on right now (all bound at once)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Etcd:
    """A single-member etcd on loopback, on ports picked at run time, its data in `work`.
    A missing etcd or etcdctl is an error, never a skip."""

    def __init__(self, work):
        self.etcd = shutil.which("etcd")
        self.etcdctl = shutil.which("etcdctl")
        if not self.etcd or not self.etcdctl:
            raise SystemExit("bench: the etcd part needs etcd and etcdctl (apt-get install "
                             "etcd-server etcd-client), or run it with --no-etcd")
        self.work = work
        self.proc = None
        self.url = None

    def start(self):
        for _ in range(3):
            client, peer = free_ports(2)
            data = tempfile.mkdtemp(prefix="etcd.", dir=self.work)
            self.log = os.path.join(data, "etcd.log")
            self.url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            argv = [self.etcd, "--name", "bench", "--data-dir", os.path.join(data, "data"),
                    "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                    "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                    "--initial-cluster", f"bench={peer_url}"] + ETCD_FLAGS
            with open(self.log, "w") as log:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.healthy():
                    return
                time.sleep(0.01)
            self.stop()
            with open(self.log) as file:
                text = file.read()
            if "address already in use" not in text:  # a port taken since we picked it
                raise SystemExit(f"bench: etcd did not become healthy:\n{text[-2000:]}")
        raise SystemExit("bench: etcd could not bind free ports three times")

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:
                return json.load(answer).get("health") == "true"
        except (OSError, ValueError):
            return False

    def stop(self):
        """Stops etcd by its pid (TERM, then KILL); safe to call twice."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def count(self, prefix):
        """Number of keys under `prefix` (one request to the v3 JSON gateway)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                           "range_end": base64.b64encode(end.encode()).decode(),
                           "count_only": True}).encode()
        request = urllib.request.Request(self.url + "/v3/kv/range", data=body,
                                          headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(json.load(answer).get("count", 0))

    def await_count(self, prefix, want, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            have = self.count(prefix)
            if have == want:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {have} keys under {prefix!r}, expected {want}")
            time.sleep(0.002)


class EtcdTools:
    """The commands of the etcd part: loto with an etcd resource, etcdctl lock."""

    def __init__(self, tools, etcd):
        self.tools = tools
        self.etcd = etcd
        self.helper = os.path.join(os.path.dirname(tools.loto), "loto-etcd")
        if not os.access(self.helper, os.X_OK):
            raise SystemExit(f"bench: no etcd helper beside loto ({self.helper}); build it")
        self.config = os.path.join(tools.work, "etc", "etcd.yaml")
        with open(self.config, "w") as file:
            file.write(f"etcd:\n  endpoints: [{etcd.url}]\n  ttl: 10s\n  prefix: loto/\n"
                       f"logging: {{syslog: false}}\n"
                       f"resources:\n  {ETCD_RESOURCE}:\n    backend: etcd\n")
        os.chmod(self.config, 0o600)
        self.env = dict(os.environ, ETCDCTL_API="3")
        self.env.pop("LOTO_CONFIG", None)
        self.prefixes = {"loto": f"loto/{ETCD_RESOURCE}/", "etcdctl": f"{ETCDCTL_LOCK}/"}

    def command(self, tool, job_argv, wait):
        if tool == "loto":
            return ([self.tools.loto, "--config", self.config] + (["-w"] if wait else []) +
                    ["-L", ETCD_RESOURCE, "--"] + job_argv)
        # etcdctl lock always waits
        return [self.etcd.etcdctl, f"--endpoints={self.etcd.url}", "lock", ETCDCTL_LOCK,
                "--"] + job_argv


def etcd_overhead(et, rounds):
    """Whole runs of `true` under each tool, and the pieces of a loto run that can be run
    alone, interleaved in random order each round."""
    true = et.tools.true
    cases = {
        "true": ([true], False),
        "loto": (et.command("loto", [true], False), False),
        "etcdctl": (et.command("etcdctl", [true], True), False),
        # loto with a lock file: loto's own start-up, config and spawn, no helper
        "loto_flock": ([et.tools.loto, "--config", et.config, "-L",
                        os.path.join(et.tools.work, "etcd-overhead.lock"), "--", true], False),
        # the helper's process start alone: exec and its shared libraries
        "helper_start": ([et.helper, "--help"], True),
        # the helper and one request (a range) on a new connection
        "helper_request": ([et.helper, "--endpoints", et.etcd.url, "--ttl-ms", "10000",
                            "--name", "loto/bench-inspect", "--inspect"], True),
    }
    samples = {name: [] for name in cases}
    for _ in range(5):  # warm caches
        for argv, quiet in cases.values():
            run_once(argv, et.env, quiet)
    for _ in range(rounds):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            argv, quiet = cases[name]
            samples[name].append(run_once(argv, et.env, quiet))
    return {name: statistics.median(values) / 1e6 for name, values in samples.items()}


def open_fifo_writer(path, timeout=20):
    """Opens `path` (a FIFO) for writing once its reader has it open."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != 6 or time.monotonic() > deadline:  # ENXIO: no reader yet
                raise
            time.sleep(0.001)


def etcd_handoff_sample(et, tool, settle):
    """One holder and one waiter: the gap from the holder's job end to the waiter's job
    start, in ms."""
    run_dir = tempfile.mkdtemp(dir=et.tools.work)
    stamps = os.path.join(run_dir, "stamps")
    counter = os.path.join(run_dir, "counter")
    fifo = os.path.join(run_dir, "go")
    os.mkfifo(fifo)
    prefix = et.prefixes[tool]
    job = [et.tools.job, stamps, counter]
    # The holder's job waits for a line on the FIFO, then runs job.c, which stamps its end
    # just before it exits (etcdctl does not pass stdin to its command).
    holder_job = ["sh", "-c", 'read line <"$1"; shift; exec "$@"', "holder", fifo] + job
    # Each in a process group of its own, so that an error or SIGTERM can end the tool and
    # its job together (etcdctl's job outlives a killed etcdctl).
    holder = subprocess.Popen(et.command(tool, holder_job, True), env=et.env,
                              start_new_session=True)
    waiter = None
    try:
        et.etcd.await_count(prefix, 1)          # the holder has the lock
        waiter = subprocess.Popen(et.command(tool, job, True), env=et.env,
                                  start_new_session=True)
        et.etcd.await_count(prefix, 2)          # the waiter is queued behind it
        time.sleep(settle)                      # and watching for its turn
        writer = open_fifo_writer(fifo)
        os.write(writer, b"go\n")
        os.close(writer)
        codes = (holder.wait(30), waiter.wait(30))
    finally:
        for proc in (holder, waiter):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if codes != (0, 0):
        raise SystemExit(f"bench: etcd handoff ({tool}): exit statuses {codes}")
    with open(stamps) as file:
        pairs = sorted(tuple(map(int, line.split()[:2])) for line in file)
    with open(counter) as file:
        count = int(file.read())
    if len(pairs) != 2 or count != 2 or pairs[1][0] < pairs[0][1]:
        raise SystemExit(f"bench: etcd handoff ({tool}): stamps {pairs}, counter {count}")
    et.etcd.await_count(prefix, 0)              # both gave their keys up
    shutil.rmtree(run_dir)
    return (pairs[1][0] - pairs[0][1]) / 1e6


def etcd_handoff(et, samples, settle=0.03):
    gaps = {"loto": [], "etcdctl": []}
    for _ in range(samples):
        order = list(gaps)
        random.shuffle(order)
        for tool in order:
            gaps[tool].append(etcd_handoff_sample(et, tool, settle))
    return {tool: {"n": len(values), "p50": percentile(values, 0.50),
                   "p90": percentile(values, 0.90), "p99": percentile(values, 0.99),
                   "max": max(values)}
            for tool, values in gaps.items()}


# Where a loto run on etcd spends its time, from `strace -f --seccomp-bpf -ttt` of a few
# system calls (only those stop the process, so the run is slowed little): each phase
# ends at the event named.
ETCD_PHASES = [
    ("loto start-up, config, fork of the helper", "helper_fork"),
    ("helper exec and start-up (its shared libraries, its HTTP client's set-up)", "connect"),
    ("lease grant (connect + 1 request)", "granted"),
    ("lock: enqueue txn (1 request), reply to loto", "acquired"),
    ("loto starts `true`, `true` runs and exits", "job_exit"),
    ("release: loto notices, helper revokes the lease (1 request)", "released"),
    ("loto exits", "loto_exit"),
]


def etcd_trace_once(et, out):
    true = et.tools.true
    argv = ["strace", "-f", "--seccomp-bpf", "-ttt", "-o", out,
            "-e", "trace=execve,clone,connect,sendto,write,exit_group"] + \
        et.command("loto", [true], False)
    subprocess.run(argv, check=True, env=et.env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    events = {}
    loto_pid = helper_pid = job_pid = None
    with open(out) as file:
        for line in file:
            fields = line.split(None, 2)
            if len(fields) < 3:
                continue
            pid, when, call = int(fields[0]), float(fields[1]), fields[2]
            if loto_pid is None and call.startswith("execve("):
                loto_pid = pid
                events["start"] = when
            elif pid == loto_pid and call.startswith("clone(") and "CLONE_VFORK" not in call:
                events.setdefault("helper_fork", when)
            elif call.startswith("execve(") and "loto-etcd" in call:
                helper_pid = pid
            elif pid == helper_pid and call.startswith("connect("):
                events.setdefault("connect", when)
            elif pid == helper_pid and call.startswith('write(3, "granted'):
                events["granted"] = when
            elif pid == helper_pid and call.startswith('write(3, "acquired'):
                events["acquired"] = when
            elif call.startswith(f'execve("{true}"'):
                job_pid = pid
            elif pid == job_pid and call.startswith("exit_group("):
                events["job_exit"] = when
            elif pid == helper_pid and call.startswith('write(3, "released'):
                events["released"] = when
            elif pid == loto_pid and call.startswith("exit_group("):
                events["loto_exit"] = when
    missing = [key for _, key in ETCD_PHASES if key not in events]
    if missing:
        raise SystemExit(f"bench: strace of loto on etcd lacks {missing} (see {out})")
    return events


def etcd_anatomy(et, runs):
    if not shutil.which("strace"):
        return None
    phases = {key: [] for _, key in ETCD_PHASES}
    totals = []
    out = os.path.join(et.tools.work, "etcd.strace")
    for _ in range(runs):
        events = etcd_trace_once(et, out)
        previous = events["start"]
        for _, key in ETCD_PHASES:
            phases[key].append((events[key] - previous) * 1e3)
            previous = events[key]
        totals.append((events["loto_exit"] - events["start"]) * 1e3)
    result = {"runs": runs, "total": statistics.median(totals),
              "phases": [(label, statistics.median(phases[key])) for label, key in ETCD_PHASES]}
    # Instructions of the helper's start-up by part (callgrind), if valgrind is there.
    if shutil.which("valgrind"):
        out = os.path.join(et.tools.work, "callgrind.helper")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        et.helper, "--endpoints", et.etcd.url, "--ttl-ms", "10000",
                        "--name", "loto/bench-inspect", "--inspect"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], check=True,
                                capture_output=True, text=True).stdout
        rows = []
        for line in report.splitlines():
            match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
            if match:
                rows.append((int(match.group(1).replace(",", "")), match.group(2)))

        def find(pattern):
            counts = [n for n, function in rows if re.search(pattern, function)]
            return max(counts) if counts else 0

        result["helper_instructions"] = {
            "total": find(r"PROGRAM TOTALS"),
            "loader": find(r":_dl_start "),
            "main": find(r"helper/main\.cpp:main "),
        }
    libraries = subprocess.run(["ldd", et.helper], capture_output=True, text=True).stdout
    result["helper_libraries"] = sum(1 for line in libraries.splitlines()
                                     if "=>" in line)  # not the vdso, not ld.so itself
    return result


def etcd_part(tools, quick):
    etcd = Etcd(tools.work)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally: stop etcd
    try:
        etcd.start()
        et = EtcdTools(tools, etcd)
        return {"overhead": etcd_overhead(et, 30 if quick else 200),
                "handoff": etcd_handoff(et, 30 if quick else 60),
                "anatomy": etcd_anatomy(et, 5 if quick else 20),
                "url": etcd.url,
                "version": subprocess.run([etcd.etcd, "--version"], capture_output=True,
                                          text=True).stdout.splitlines()[0]}
    finally:
        etcd.stop()
        signal.signal(signal.SIGTERM, previous)


def print_etcd(e):
    def ratio(x, y):
        return f"{x / y:.2f}x" if y else "n/a"

    o, h, a = e["overhead"], e["handoff"], e["anatomy"]
    print("\n| figure (etcd, one member on loopback) | etcdctl lock | loto | loto/etcdctl |")
    print("|---|---|---|---|")
    print(f"| whole run of `true`: wall ms (bare `true`: {o['true']:.2f}) | "
          f"{o['etcdctl']:.2f} | {o['loto']:.2f} | {ratio(o['loto'], o['etcdctl'])} |")
    print(f"| above bare `true`, ms | {o['etcdctl'] - o['true']:.2f} | "
          f"{o['loto'] - o['true']:.2f} | "
          f"{ratio(o['loto'] - o['true'], o['etcdctl'] - o['true'])} |")
    hc, hl = h["etcdctl"], h["loto"]
    for key in ("p50", "p90", "p99", "max"):
        print(f"| handoff {key}, ms ({hl['n']} samples each) | {hc[key]:.2f} | {hl[key]:.2f} | "
              f"{ratio(hl[key], hc[key])} |")
    print("\nPieces of a loto run on etcd, run alone in the same rounds (median wall ms):\n")
    print("| run | ms |")
    print("|---|---|")
    print(f"| bare `true` | {o['true']:.2f} |")
    print(f"| loto with a lock file (`-L /path`): loto without the helper | "
          f"{o['loto_flock']:.2f} |")
    print(f"| `loto-etcd --help`: the helper's process start (exec + "
          f"{a['helper_libraries'] if a else '?'} shared libraries) | "
          f"{o['helper_start']:.2f} |")
    print(f"| `loto-etcd --inspect`: the same + its HTTP client's set-up + 1 request | "
          f"{o['helper_request']:.2f} |")
    print(f"| loto with an etcd resource | {o['loto']:.2f} |")
    if a:
        print(f"\nPhases of `loto -L job true` on etcd (strace --seccomp-bpf, median of "
              f"{a['runs']} runs; traced total {a['total']:.2f} ms):\n")
        print("| phase | ms |")
        print("|---|---|")
        for label, ms in a["phases"]:
            print(f"| {label} | {ms:.2f} |")
        hi = a.get("helper_instructions")
        if hi:
            print(f"\nHelper `loto-etcd --inspect` instructions (callgrind; "
                  f"{a['helper_libraries']} shared libraries): total {hi['total']:,}; "
                  f"dynamic loader {hi['loader']:,} ({100 * hi['loader'] / hi['total']:.0f}%); "
                  f"main() {hi['main']:,} ({100 * hi['main'] / hi['total']:.0f}%)")


QUEUE_CONFIG = """lock_dir: {lock_dir}
resources:
  mutex: {{queue: none}}
  fair: {{queue: fifo}}
  pair: {{slots: 2}}
"""


def queue_part(tools, quick):
    """The local lock kinds of one run against the plain mutex: the fair queue's and the
    slots' handoff under 8 workers, and the uncontended cost of a shared or slotted call."""
    lock_dir = os.path.join(tools.work, "queue")
    os.mkdir(lock_dir)
    config = os.path.join(tools.work, "etc", "queue.yaml")
    with open(config, "w") as file:
        file.write(QUEUE_CONFIG.format(lock_dir=lock_dir))
    os.chmod(config, 0o644)
    env = dict(os.environ, LOTO_CONFIG=config)

    def by_name(name, extra=()):
        def argv_for(_lock, job_argv):
            return [tools.loto, "-w", *extra, "-L", name, "--"] + job_argv
        return argv_for

    kinds = {"mutex": by_name("mutex"), "fifo": by_name("fair"), "slots2": by_name("pair")}
    jobs, repeats = (20, 1) if quick else (150, 2)
    raw = {kind: {"jobs_per_s": [], "gaps": []} for kind in kinds}
    for _ in range(repeats):
        for kind, argv_for in kinds.items():
            result = handoff_run(tools, kind, 8, jobs, argv_for, env)
            raw[kind]["jobs_per_s"].append(result["jobs_per_s"])
            raw[kind]["gaps"].extend(result["gaps"])
    handoffs = {
        kind: {
            "jobs_per_s": statistics.median(r["jobs_per_s"]),
            "p50": percentile(r["gaps"], 0.50),
            "p99": percentile(r["gaps"], 0.99),
        }
        for kind, r in raw.items()
    }

    plain = os.path.join(lock_dir, "plain.lock")
    cases = {
        "exclusive": [tools.loto, "-L", plain, "--", tools.true],
        "shared": [tools.loto, "-s", "-L", plain, "--", tools.true],
        "fifo": [tools.loto, "-L", "fair", "--", tools.true],
        "slots2": [tools.loto, "-L", "pair", "--", tools.true],
    }
    samples = {name: [] for name in cases}
    for _ in range(10):
        for argv in cases.values():
            run_once(argv, env)
    for _ in range(40 if quick else 300):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            samples[name].append(run_once(cases[name], env))
    calls = {name: statistics.median(values) / 1e6 for name, values in samples.items()}
    return {"handoff": handoffs, "calls": calls}


def print_queue(q):
    def ratio(x, y):
        return f"{x / y:.2f}x" if y else "n/a"

    h, c = q["handoff"], q["calls"]
    m = h["mutex"]
    print("\n| figure (loto, 8 workers) | mutex (queue: none) | queue: fifo | fifo/mutex "
          "| slots: 2 | slots/mutex |")
    print("|---|---|---|---|---|---|")
    print(f"| jobs/s | {m['jobs_per_s']:.0f} | {h['fifo']['jobs_per_s']:.0f} | "
          f"{ratio(h['fifo']['jobs_per_s'], m['jobs_per_s'])} | {h['slots2']['jobs_per_s']:.0f} | "
          f"{ratio(h['slots2']['jobs_per_s'], m['jobs_per_s'])} |")
    for key in ("p50", "p99"):
        print(f"| handoff {key}, ms (slots: per slot) | {m[key]:.2f} | {h['fifo'][key]:.2f} | "
              f"{ratio(h['fifo'][key], m[key])} | {h['slots2'][key]:.2f} | "
              f"{ratio(h['slots2'][key], m[key])} |")
    print("\n| uncontended call, wall ms | exclusive | -s shared | queue: fifo | slots: 2 |")
    print("|---|---|---|---|---|")
    print(f"| median | {c['exclusive']:.2f} | {c['shared']:.2f} ({ratio(c['shared'], c['exclusive'])}) "
          f"| {c['fifo']:.2f} ({ratio(c['fifo'], c['exclusive'])}) "
          f"| {c['slots2']:.2f} ({ratio(c['slots2'], c['exclusive'])}) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loto", default=os.path.join(HERE, "..", "build", "loto"))
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--etcd-only", action="store_true", help="only the etcd part")
    part.add_argument("--no-etcd", action="store_true", help="only the local (flock) part")
    args = parser.parse_args()
    quick = args.quick
    e = None
    with tempfile.TemporaryDirectory(prefix="loto-bench.") as work:
        tools = Tools(args.loto, work)
        print(f"machine: {os.cpu_count()} cores, {os.uname().release}; loto {args.loto}")
        if not args.etcd_only:
            print(f"loto's config: etc/loto.yaml as shipped ({os.path.getsize(tools.config)} "
                  "bytes), through LOTO_CONFIG")
            o = overhead(tools, 40 if quick else 300)
            h = handoff(tools, 8, 20 if quick else 200, 1 if quick else 2)
            w = waiters(tools, 30 if quick else 200, 1 if quick else 3)
            a = anatomy(tools)
            q = queue_part(tools, quick)
        if not args.no_etcd:
            e = etcd_part(tools, quick)
            print(f"etcd: {e['version']}, one member at {e['url']}, {' '.join(ETCD_FLAGS)}; "
                  "loto's lease TTL 10s")
    if not args.etcd_only:
        print_local(o, h, w, a, tools)
        print_queue(q)
    if e:
        print_etcd(e)


def print_local(o, h, w, a, tools):
    def ratio(x, y):
        return f"{x / y:.2f}x" if y else "n/a"

    print("\n| figure | flock(1) | loto | loto/flock |")
    print("|---|---|---|---|")
    print(f"| overhead: wall ms per call (bare `true`: {o['true']:.2f}) | {o['flock']:.2f} | "
          f"{o['loto']:.2f} | {ratio(o['loto'], o['flock'])} |")
    print(f"| overhead above bare `true`, ms | {o['flock'] - o['true']:.2f} | "
          f"{o['loto'] - o['true']:.2f} | {ratio(o['loto'] - o['true'], o['flock'] - o['true'])} |")
    print(f"| overhead: wall ms per call, loto with the annotated example "
          f"({tools.example_size} B) | "
          f"{o['flock']:.2f} | {o['loto_example']:.2f} | {ratio(o['loto_example'], o['flock'])} |")
    if "loto_no_config" in o:
        print(f"| overhead: wall ms per call, loto with no config file | {o['flock']:.2f} | "
              f"{o['loto_no_config']:.2f} | {ratio(o['loto_no_config'], o['flock'])} |")
    hf, hl = h["flock"], h["loto"]
    print(f"| handoff: jobs/s (8 workers) | {hf['jobs_per_s']:.0f} | {hl['jobs_per_s']:.0f} | "
          f"{ratio(hl['jobs_per_s'], hf['jobs_per_s'])} |")
    for key in ("p50", "p90", "p99", "max"):
        print(f"| handoff latency {key}, ms | {hf[key]:.2f} | {hl[key]:.2f} | "
              f"{ratio(hl[key], hf[key])} |")
    wf, wl = w["flock"], w["loto"]
    for key, label in (("cpu_ms_while_waiting", "waiters: CPU ms, all waiters, while blocked"),
                       ("rss_kib", "waiters: RSS KiB per waiting process"),
                       ("pss_kib", "waiters: PSS KiB per waiting process"),
                       ("drain_ms", "waiters: release to last job done, ms")):
        print(f"| {label} | {wf[key]:.1f} | {wl[key]:.1f} | {ratio(wl[key], wf[key])} |")
    if a:
        print(f"\nStartup anatomy (callgrind instructions, one `loto -L LOCK true`; "
              f"flock(1): {a['flock_total']:,}):\n")
        print("| phase | instructions | share |")
        print("|---|---|---|")
        print(f"| total | {a['loto_total']:,} | 100% |")
        for label, count in a["phases"]:
            print(f"| {label} | {count:,} | {100 * count / a['loto_total']:.0f}% |")


if __name__ == "__main__":
    sys.exit(main())
