#!/usr/bin/env python3
"""Side-by-side benchmark of loto and util-linux flock(1).

Runs every scenario for both tools in the same run, interleaved, and prints a table of
medians and loto/flock ratios. See bench/README.md for what each figure means.
"""

import argparse
import fcntl
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run_once(argv, env):
    """Wall time of one run of argv in nanoseconds (spawn to reap)."""
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
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


def handoff_run(tools, tool, workers, jobs):
    run_dir = tempfile.mkdtemp(dir=tools.work)
    lock = os.path.join(run_dir, "handoff.lock")
    stamps = os.path.join(run_dir, "stamps")
    counter = os.path.join(run_dir, "counter")
    argv = tools.command(tool, lock, [tools.job, stamps, counter], True)
    script = 'i=0; while [ "$i" -lt "$1" ]; do "${@:2}" || exit 1; i=$((i+1)); done'
    start = time.monotonic_ns()
    procs = [
        subprocess.Popen(["bash", "-c", script, "worker", str(jobs)] + argv, env=tools.env)
        for _ in range(workers)
    ]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit(f"handoff worker failed for {tool}")
    wall = (time.monotonic_ns() - start) / 1e9
    with open(stamps) as file:
        pairs = sorted(tuple(map(int, line.split())) for line in file)
    with open(counter) as file:
        count = int(file.read())
    overlaps = sum(1 for a, b in zip(pairs, pairs[1:]) if b[0] < a[1])
    gaps = [(b[0] - a[1]) / 1e6 for a, b in zip(pairs, pairs[1:])]
    expected = workers * jobs
    if overlaps or count != expected or len(pairs) != expected:
        raise SystemExit(
            f"{tool}: {overlaps} overlaps, counter {count}, {len(pairs)} jobs (expected {expected})"
        )
    return {"jobs_per_s": expected / wall, "gaps": gaps}


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
    """Number of processes blocked in flock() on `lock` according to /proc/locks."""
    st = os.stat(lock)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as file:
        return sum(1 for line in file if "->" in line and inode in line)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loto", default=os.path.join(HERE, "..", "build", "loto"))
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="loto-bench.") as work:
        tools = Tools(args.loto, work)
        print(f"machine: {os.cpu_count()} cores, {os.uname().release}; loto {args.loto}")
        print(f"loto's config: etc/loto.yaml as shipped ({os.path.getsize(tools.config)} bytes), "
              "through LOTO_CONFIG")
        o = overhead(tools, 40 if quick else 300)
        h = handoff(tools, 8, 20 if quick else 200, 1 if quick else 2)
        w = waiters(tools, 30 if quick else 200, 1 if quick else 3)
        a = anatomy(tools)

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
