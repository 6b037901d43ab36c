#!/usr/bin/env python3
"""Stress run of loto's etcd backend: simulated hosts fighting over one etcd lock while
loto processes and etcd members are killed.

3 hosts x 200 jobs (--quick: 3 x 20) on ONE etcd resource, against a 3-member etcd cluster
on loopback that this script starts itself (ports picked at run time, fast elections).
Each host is a thread that runs loto jobs one after another, a random mix of -w, -t and
no-wait tries, with every member's endpoint (in an order of its own) and a lease TTL of 2 s.
A killer thread sends SIGTERM or SIGKILL to random running loto processes, and a member
thread kills one etcd member with SIGKILL now and then (--quick: once) and restarts it on
the same data dir and ports about 1 s later; never more than one member is down.

Each job stamps its start (with LOTO_FENCING_TOKEN) and its end on CLOCK_MONOTONIC. A job
killed with SIGKILL writes no end: its end is taken as the moment its loto was seen dead
(loto waits until every process of a job under a lease is gone, and a SIGKILLed loto's
job dies with it through PR_SET_PDEATHSIG), which is never earlier than the real end.
Afterwards it checks that:
  - no two jobs ever overlapped, and at most one job ran at any time,
  - fencing tokens strictly increase in start order,
  - every loto exit status is one of DOCUMENTED below,
  - a job with no end stamp belongs to a loto that was SIGKILLed or lost its lease,
  - no loto, job or loto-etcd process is left behind,
  - every etcd member is stopped and its data dir removed.
Prints the counts and exits 0 when all hold, 1 otherwise.

Exit statuses of loto allowed here, and why (the killer sends only SIGTERM and SIGKILL,
so 128+N is 143 alone):
  0    the job ran and exited 0.
  75   not taken: busy on a no-wait try (or -t 0), or -t expired while waiting.
  69   etcd unavailable: no endpoint answered at start, or the lease was lost while
       waiting or while the job ran (the job was stopped: SIGTERM at 0.6 TTL, SIGKILL at
       0.8 TTL after the last renewal sent). Allowed, but not seen so far: with one
       member down at a time and fast elections, no lease was ever lost.
  143  SIGTERM: forwarded to the job, which exits 143, or received while waiting (128+15).
  -9   loto itself was SIGKILLed by the killer (its job, if any, died with it).
  -15  SIGTERM reached loto before it handles signals: at start-up, or during the whole
       etcd acquisition of a no-wait try (-t 0 included), about 5 to 15 ms in which loto
       keeps SIGTERM's default action; it dies with no message and no audit record.
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DOCUMENTED = {0, 75, 69, 143, -9, -15}
MEMBERS = 3
TTL = "2s"
RESOURCE = "job"
# Fast elections (healthy in about 0.1 s), quiet logs: the flags loto's e2e tests use.
ETCD_FLAGS = ["--heartbeat-interval=10", "--election-timeout=100", "--logger=zap",
              "--log-level=warn", "--snapshot-count=100000"]
# A loto run that takes longer than this is hung: killed and counted as a failure. The
# longest honest run waits behind the other two hosts, each up to a 3 s job or a killed
# holder's lease (TTL, extended by a leader change).
HUNG_AFTER_S = 60

JOB_C = r"""
/* etcd stress job: usage JOB LOG RUN SLEEP_US. Appends "S <ns> <run> <token> <lease> <pid>"
 * at start and "E <ns> <run>" at the end (also when ended by SIGTERM); CLOCK_MONOTONIC. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static const char *run = "";

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void end_stamp(void) {
  char line[128];
  int n = snprintf(line, sizeof line, "E %lld %s\n", now_ns(), run);
  if (write(log_fd, line, (size_t)n) != n) _exit(5);
}

static void on_term(int sig) {
  (void)sig;
  end_stamp();
  _exit(143);
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  run = argv[2];
  log_fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) return 3;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigfillset(&action.sa_mask);
  action.sa_handler = on_term;
  sigaction(SIGTERM, &action, NULL);
  const char *token = getenv("LOTO_FENCING_TOKEN");
  const char *lease = getenv("LOTO_ETCD_LEASE");
  char line[256];
  int n = snprintf(line, sizeof line, "S %lld %s %s %s %d\n", now_ns(), run,
                   token && *token ? token : "-", lease && *lease ? lease : "-", (int)getpid());
  if (write(log_fd, line, (size_t)n) != n) return 5;
  long long us = atoll(argv[3]);
  struct timespec left = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&left, &left) != 0) {
  }
  end_stamp();
  return 0;
}
"""


def free_ports(count):
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


class Member:
    """One etcd member on loopback; started, killed and restarted by its pid."""

    def __init__(self, work, name, client, peer):
        self.name = name
        self.url = f"http://127.0.0.1:{client}"
        self.peer_url = f"http://127.0.0.1:{peer}"
        self.data = os.path.join(work, f"etcd-{name}")
        self.log = os.path.join(work, f"etcd-{name}.log")
        self.proc = None

    def argv(self, cluster):
        return ["etcd", "--name", self.name, "--data-dir", self.data,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", cluster, "--initial-cluster-state", "new"] + ETCD_FLAGS

    def start(self, cluster):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.argv(cluster), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:
                return json.load(answer).get("health") == "true"
        except (OSError, ValueError):
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status(self):
        """(this member's id, the leader's id) from /v3/maintenance/status, or None."""
        request = urllib.request.Request(self.url + "/v3/maintenance/status", data=b"{}",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=1) as answer:
                status = json.load(answer)
            return status["header"]["member_id"], status.get("leader")
        except (OSError, ValueError, KeyError):
            return None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    def __init__(self, work):
        self.work = work
        self.members = []

    def start(self):
        for _ in range(3):
            ports = free_ports(2 * MEMBERS)
            self.members = [Member(self.work, f"m{i + 1}", ports[2 * i], ports[2 * i + 1])
                            for i in range(MEMBERS)]
            self.spec = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            for member in self.members:
                member.start(self.spec)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(m.healthy() for m in self.members):
                    return
                if not all(m.alive() for m in self.members):
                    break
                time.sleep(0.02)
            logs = ""
            for member in self.members:
                member.kill()
                with open(member.log) as file:
                    logs += file.read()
                shutil.rmtree(member.data, ignore_errors=True)
            if "address already in use" not in logs:
                raise SystemExit("etcd stress: the cluster did not become healthy:\n"
                                 + logs[-3000:])
        raise SystemExit("etcd stress: could not bind free ports three times")

    def restart(self, member, timeout=30):
        member.start(self.spec)
        deadline = time.monotonic() + timeout
        while not member.healthy():
            if not member.alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self):
        """Stops the members one by one with SIGTERM (SIGKILL after 3 s), followers first,
        then removes their data dirs."""
        self.stop_times = []
        leader = self.leader()
        for member in sorted(self.members, key=lambda m: m is leader):
            begun = time.monotonic()
            if member.alive():
                member.proc.terminate()
                try:
                    member.proc.wait(3)
                except subprocess.TimeoutExpired:
                    member.kill(signal.SIGKILL)
            self.stop_times.append((member.name, member is leader, time.monotonic() - begun))
        for member in self.members:
            shutil.rmtree(member.data, ignore_errors=True)

    def leader(self):
        """The member that leads now, or None."""
        for member in self.members:
            status = member.status()
            if status and status[0] == status[1]:
                return member
        return None

    @property
    def urls(self):
        return [m.url for m in self.members]


def our_processes(work, urls):
    """pid -> command line of every loto, job or loto-etcd process of this run."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                args = file.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        text = " ".join(args)
        ours = work in text and not os.path.basename(args[0]).startswith("etcd")
        helper = os.path.basename(args[0]) == "loto-etcd" and any(url in text for url in urls)
        if ours or helper:
            found[int(entry)] = text.strip()
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loto", default=os.path.join(HERE, "..", "..", "build", "loto"))
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per host")
    parser.add_argument("--member-kills", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="3 x 20 jobs, one member kill")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.member_kills = 20, 1
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    loto = os.path.abspath(args.loto)
    # A missing etcd is a failure, never a skip.
    for tool in ("etcd", "etcdctl", "cc"):
        if not shutil.which(tool):
            raise SystemExit(f"etcd stress: '{tool}' is not installed "
                             "(apt-get install etcd-server etcd-client gcc)")
    if not os.access(loto, os.X_OK):
        raise SystemExit(f"etcd stress: no loto at {loto}")
    started = time.monotonic()
    failures = []

    work = tempfile.mkdtemp(prefix="loto-etcd-stress.")
    cluster = Cluster(work)
    table = threading.Lock()
    running = {}         # pid -> (run id, start monotonic ns)
    threads = []
    done = threading.Event()   # the hosts are through: stop killing
    abort = threading.Event()  # an error in this script: stop everything
    previous_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        job = os.path.join(work, "etcd_job")
        source = os.path.join(work, "etcd_job.c")
        with open(source, "w") as file:
            file.write(JOB_C)
        subprocess.run(["cc", "-O2", "-o", job, source], check=True)
        log = os.path.join(work, "jobs.log")
        errors = os.path.join(work, "stderr")
        os.mkdir(errors)
        cluster.start()
        urls = cluster.urls
        configs = []
        config_dir = os.path.join(work, "etc")
        os.mkdir(config_dir, 0o755)
        for host in range(args.hosts):
            # Each host lists every member, starting at a member of its own.
            order = urls[host % len(urls):] + urls[:host % len(urls)]
            path = os.path.join(config_dir, f"host{host}.yaml")
            with open(path, "w") as file:
                file.write(f"etcd:\n  endpoints: [{', '.join(order)}]\n  ttl: {TTL}\n"
                           f"  prefix: loto/\nlogging: {{syslog: false}}\n"
                           f"resources:\n  {RESOURCE}:\n    backend: etcd\n")
            os.chmod(path, 0o600)
            configs.append(path)

        runs = {}            # run id -> facts about the loto run
        kills = collections.Counter()
        signalled = collections.defaultdict(list)  # run id -> signals sent
        hung = []
        member_events = []

        def worker(host):
            try:
                run_jobs(host)
            except Exception as error:  # a broken worker must fail the run, not shrink it
                failures.append(f"host {host}: {error!r}")

        def run_jobs(host):
            rng = random.Random(seed * 31 + host)
            for n in range(args.jobs):
                if abort.is_set():
                    return
                run = f"h{host}-{n}"
                mode = rng.choice(["wait", "wait", "timeout", "try"])
                argv = [loto, "--config", configs[host], "-L", RESOURCE]
                if mode == "wait":
                    argv.append("-w")
                elif mode == "timeout":
                    argv += ["-t", rng.choice(["0", "100ms", "500ms", "1s", "3s"])]
                draw = rng.random()
                if draw < 0.85:
                    sleep_us = rng.randrange(0, 50_000)
                elif draw < 0.96:
                    sleep_us = rng.randrange(100_000, 500_000)
                else:  # longer than the TTL: held through renewals
                    sleep_us = rng.randrange(1_500_000, 3_000_000)
                argv += ["--", job, log, run, str(sleep_us)]
                with open(os.path.join(errors, run), "w") as err:
                    begun = time.monotonic_ns()
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=err)
                with table:
                    running[proc.pid] = (run, begun)
                # Wait without reaping, so that the killer never signals a reused pid.
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
                seen_dead = time.monotonic_ns()
                with table:
                    del running[proc.pid]
                status = proc.wait()
                runs[run] = {"mode": mode, "argv": argv, "status": status, "begun": begun,
                             "dead": seen_dead, "sleep_us": sleep_us}

        def killer():
            rng = random.Random(seed - 1)
            while not done.wait(rng.uniform(0.05, 0.5)):
                now = time.monotonic_ns()
                with table:
                    for pid, (run, begun) in running.items():
                        if now - begun > HUNG_AFTER_S * 1e9 and run not in hung:
                            hung.append(run)
                            os.kill(pid, signal.SIGKILL)
                    if not running:
                        continue
                    pid = rng.choice(list(running))
                    sig = signal.SIGKILL if rng.random() < 0.3 else signal.SIGTERM
                    os.kill(pid, sig)  # under the lock: the pid is not reaped yet
                    run = running[pid][0]
                kills[sig.name] += 1
                signalled[run].append(sig.name)

        def member_killer():
            rng = random.Random(seed + 7)
            for index in range(args.member_kills):
                # The first kill comes early, so that even a quick run has loto at work
                # around it; the next ones are spread out.
                pause = rng.uniform(1.0, 2.0) if index == 0 else rng.uniform(4.0, 10.0)
                if (done.wait(pause) and index > 0) or abort.is_set():
                    return
                # Every other kill (the first included) hits the leader: an election.
                leader = cluster.leader()
                if index % 2 == 0 and leader is not None:
                    member, role = leader, "leader"
                else:
                    member = rng.choice([m for m in cluster.members if m is not leader])
                    role = "follower"
                down = time.monotonic_ns()
                member.kill(signal.SIGKILL)
                time.sleep(1.0)
                if not cluster.restart(member):
                    failures.append(f"member {member.name} did not come back after a kill")
                    return
                member_events.append((f"{member.name} ({role})", down, time.monotonic_ns()))

        hosts = [threading.Thread(target=worker, args=(host,)) for host in range(args.hosts)]
        helpers = [threading.Thread(target=killer), threading.Thread(target=member_killer)]
        threads = hosts + helpers
        for thread in threads:
            thread.start()
        for thread in hosts:
            thread.join()
        done.set()
        for thread in helpers:
            thread.join()
        work_done = time.monotonic()

        # Helpers of SIGKILLed lotos end on their own (a queued one revokes its lease first).
        lingering = our_processes(work, urls)
        deadline = time.monotonic() + 15
        while our_processes(work, urls) and time.monotonic() < deadline:
            time.sleep(0.05)
        linger_s = time.monotonic() - work_done
        strays = our_processes(work, urls)

        # ---- The jobs' intervals.
        starts, ends = {}, {}
        if os.path.exists(log):
            with open(log) as file:
                for line in file:
                    fields = line.split()
                    if fields[0] == "S":
                        starts[fields[2]] = (int(fields[1]), fields[3], fields[4])
                    elif fields[0] == "E":
                        ends[fields[2]] = int(fields[1])
        intervals = []   # (start, end, run, token, end is a stamp)
        bad_tokens = []
        unexplained_ends = []
        for run, (start, token, lease) in starts.items():
            if not token.isdigit():
                bad_tokens.append((run, token))
                continue
            facts = runs.get(run, {})
            if run in ends:
                intervals.append((start, ends[run], run, int(token), True))
            else:
                # No end stamp: SIGKILLed (by loto after a lost lease, or by PDEATHSIG when
                # loto was SIGKILLed). loto was seen dead no earlier than its job.
                if facts.get("status") not in (-9, 69):
                    unexplained_ends.append((run, facts.get("status")))
                intervals.append((start, facts.get("dead", 1 << 62), run, int(token), False))
        intervals.sort()
        overlaps = []
        latest = None  # the interval that ends last among those started so far
        for interval in intervals:
            if latest is not None and interval[0] < latest[1]:
                overlaps.append((latest, interval))
            if latest is None or interval[1] > latest[1]:
                latest = interval
        token_order = [(a[2], a[3], b[2], b[3]) for a, b in zip(intervals, intervals[1:])
                       if b[3] <= a[3]]
        events = sorted([(i[0], 1) for i in intervals] + [(i[1], -1) for i in intervals],
                        key=lambda e: (e[0], e[1]))
        concurrent = top = 0
        for _, step in events:
            concurrent += step
            top = max(top, concurrent)
        statuses = collections.Counter(facts["status"] for facts in runs.values())
        undocumented = {s: n for s, n in statuses.items() if s not in DOCUMENTED}
        lost = unavailable = 0
        odd_messages = collections.Counter()
        for run, facts in runs.items():
            with open(os.path.join(errors, run)) as file:
                text = file.read()
            if facts["status"] == 69:
                if "lost" in text:
                    lost += 1
                else:
                    unavailable += 1
            if facts["status"] not in DOCUMENTED or (facts["status"] == 69 and "lost" not in text
                                                     and "unavailable" not in text
                                                     and "reach" not in text):
                odd_messages[text.strip()[:300]] += 1
        stamped_end = sum(1 for i in intervals if i[4])
        # Jobs that were running while a member was down.
        across = sum(1 for i in intervals
                     if any(i[0] < up and i[1] > down for _, down, up in member_events))
        tokens = [i[3] for i in intervals]
    finally:
        # Clean up even after an error or SIGTERM; a second SIGTERM must not cut it short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if any(thread.is_alive() for thread in threads):  # left by an error
                abort.set()
                done.set()
                with table:
                    for pid in running:
                        os.kill(pid, signal.SIGKILL)
                for thread in threads:
                    if thread.ident is not None:  # started
                        thread.join(30)
        finally:
            cluster.stop()
            left_members = [m.name for m in cluster.members if m.alive()]
            left_dirs = [m.data for m in cluster.members if os.path.exists(m.data)]
            if not os.environ.get("LOTO_STRESS_KEEP"):  # keep the logs to look into
                shutil.rmtree(work, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous_term)
    elapsed = time.monotonic() - started

    print(f"seed {seed}: {args.hosts} hosts x {args.jobs} jobs = {len(runs)} loto runs on "
          f"{MEMBERS} etcd members in {elapsed:.1f} s "
          f"(jobs done after {work_done - started:.1f} s)")
    print(f"exit statuses: {dict(sorted(statuses.items()))} (69: {lost} lease lost, "
          f"{unavailable} unavailable)")
    by_mode = collections.defaultdict(collections.Counter)
    for facts in runs.values():
        by_mode[facts["mode"]][facts["status"]] += 1
    print("by mode: " + "; ".join(f"{mode} {dict(sorted(c.items()))}"
                                  for mode, c in sorted(by_mode.items())))
    if lingering:
        print(f"after the last job: {len(lingering)} processes of the run still there, "
              f"gone {linger_s:.1f} s later:")
        for text in list(lingering.values())[:5]:
            print(f"  {text[:200]}")
    if runs:
        longest = max(runs.items(), key=lambda item: item[1]["dead"] - item[1]["begun"])
        print(f"longest loto run: {(longest[1]['dead'] - longest[1]['begun']) / 1e9:.2f} s "
              f"({longest[0]}, {longest[1]['mode']}, status {longest[1]['status']})")
    outages = ", ".join(f"{name} down {(up - down) / 1e9:.1f} s"
                        for name, down, up in member_events)
    print(f"signals sent to loto: {dict(kills)}; member kills+restarts: {len(member_events)} "
          f"({outages}; {across} jobs ran while a member was down)")
    print(f"jobs run: {len(intervals)} ({stamped_end} with an end stamp, "
          f"{len(intervals) - stamped_end} ended by SIGKILL); max concurrent: {top}; "
          f"tokens {min(tokens) if tokens else '-'}..{max(tokens) if tokens else '-'}")
    print(f"overlaps: {len(overlaps)}; token order broken: {len(token_order)}; "
          f"jobs without a token: {len(bad_tokens)}; SIGKILL-ended jobs of a loto that was "
          f"neither SIGKILLed nor lost its lease: {len(unexplained_ends)}; undocumented "
          f"statuses: {undocumented}; hung: {len(hung)}; stray processes: {len(strays)}; "
          f"etcd members left: {left_members}; data dirs left: {left_dirs}")
    if overlaps:
        for a, b in overlaps[:5]:
            for interval in (a, b):
                facts = runs.get(interval[2], {})
                print(f"  overlap: run {interval[2]} token {interval[3]} "
                      f"{interval[0]}..{interval[1]} (end stamped: {interval[4]}) status "
                      f"{facts.get('status')} signals {signalled.get(interval[2])}")
    for text, n in odd_messages.most_common(5):
        print(f"  {n} x: {text}")
    failures += [
        f"{len(overlaps)} overlaps" if overlaps else "",
        f"max concurrent {top}" if top > 1 else "",
        f"token order broken {token_order[:5]}" if token_order else "",
        f"jobs without a token {bad_tokens[:5]}" if bad_tokens else "",
        f"unexplained SIGKILL ends {unexplained_ends[:5]}" if unexplained_ends else "",
        f"undocumented statuses {undocumented}" if undocumented else "",
        f"hung runs {hung[:5]}" if hung else "",
        f"strays {list(strays.values())[:5]}" if strays else "",
        f"members left {left_members}" if left_members else "",
        f"data dirs left {left_dirs}" if left_dirs else "",
        "no job ran" if not intervals else "",
        f"{len(runs)} loto runs, expected {args.hosts * args.jobs}"
        if len(runs) != args.hosts * args.jobs else "",
    ]
    failures = [f for f in failures if f]
    if failures:
        print("FAILED: " + "; ".join(failures))
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
