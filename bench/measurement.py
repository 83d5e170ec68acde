"""What the benchmark measures with and how: the clients (curl, wrk, hey), the wait for idle servers,
the meter of CPU other processes take, and the samples a run collects."""

import hashlib
import os
import re
import statistics
import subprocess
import time

from processes import BenchError, cpu_ticks, descendants, log, proc_stats, run

MiB = 1 << 20
CURL_W = "%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------------
# Clients


class Pull:
    def __init__(self, line):
        code, size, ttfb, total = line.split()
        self.code, self.size = int(code), int(size)
        self.ttfb, self.wall = float(ttfb), float(total)


def curl(url, out="/dev/null", method=None, headers=(), timeout=600):
    argv = ["curl", "-s", "-o", out, "-w", CURL_W, "--max-time", str(timeout)]
    if method == "HEAD":
        argv.append("-I")
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    p = run(argv, check=False, timeout=timeout + 10)
    if p.returncode != 0:
        raise BenchError(f"curl {url}: exit {p.returncode} {p.stderr.strip()}")
    return Pull(p.stdout.strip().splitlines()[-1])


def curl_herd(url, n, outdir):
    """n curl processes started at once on url, each body into its own file in outdir: the wall time
    until all are done, and each one's -w line."""
    procs = []
    t0 = time.perf_counter()
    for i in range(n):
        procs.append(subprocess.Popen(
            ["curl", "-s", "--max-time", "300", "-o", os.path.join(outdir, str(i)), "-w", CURL_W, url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    outs = [p.communicate()[0] for p in procs]
    return time.perf_counter() - t0, outs


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4 * MiB)
            if not chunk:
                break
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def parse_duration_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds, headers=()):
    argv = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    out = run(argv, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = parse_duration_ms(*m.groups()) if m else float("nan")
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99": p99, "errors": errors, "requests": total}


def hey(url, seconds, method="HEAD", headers=()):
    argv = ["hey", "-z", f"{seconds}s", "-c", "64", "-m", method, "-t", "10"]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    out = run(argv, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%+ in ([\d.]+) secs", out)
    p99 = float(m.group(1)) * 1000 if m else float("nan")
    ok, errors = 0, 0
    for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out):
        if code.startswith("2"):
            ok += int(n)
        else:
            errors += int(n)
    m = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", out)
    if m:
        errors += sum(int(x) for x in re.findall(r"\[(\d+)\]", m.group(1)))
    return {"rps": rps, "p99": p99, "errors": errors, "requests": ok + errors}


# --------------------------------------------------------------------------------------------
# A quiet machine


def settle(servers, sync=False, quiet_ticks=2, window=0.2, limit=10.0):
    """Waits until the servers are idle (background fills, GC, logging done) before the next measurement.
    With sync, then flushes what they wrote to disk and waits again: dirty pages left by one candidate
    (dist-proxy stores a blob in the background after its client is done) would otherwise throttle the
    writes of the next one."""
    wait_idle(servers, quiet_ticks, window, limit)
    if sync:
        os.sync()
        wait_idle(servers, quiet_ticks, window, limit)


def wait_idle(servers, quiet_ticks, window, limit):
    pids = [p for s in servers for p in s.pids()]
    deadline = time.monotonic() + limit
    before = cpu_ticks(pids)
    while time.monotonic() < deadline:
        time.sleep(window)
        after = cpu_ticks(pids)
        if after - before <= quiet_ticks:
            return
        before = after


def dirty_mib():
    """Page cache waiting to be written back: past a threshold, the kernel slows down every writer."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) // 1024
    return -1


PF_KTHREAD = 0x00200000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def others_ticks():
    """CPU used so far by user-space processes that are not this benchmark's (nor its children):
    their own time plus that of children they have reaped, so short-lived ones count too. Kernel
    threads are left out: on this benchmark they mostly write back its own files."""
    stats = proc_stats()
    mine = set(descendants(os.getpid(), stats))
    return sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime, stime, cutime, cstime
               for pid, f in stats.items() if pid not in mine and not int(f[6]) & PF_KTHREAD)


class CpuMeter:
    """How much of the machine other processes used while something ran: they skew every figure."""

    def __init__(self):
        self.spans = {}
        self.open = {}

    def start(self, name):
        self.open[name] = (time.monotonic(), others_ticks())

    def stop(self, name):
        """Ends a span and returns the share of the machine (%) that other processes used during it."""
        t0, others0 = self.open.pop(name)
        others = others_ticks() - others0
        capacity = (time.monotonic() - t0) * os.cpu_count() * CLK_TCK
        prev = self.spans.get(name, (0.0, 0.0))
        self.spans[name] = (prev[0] + others, prev[1] + capacity)
        return 100.0 * others / capacity if capacity else 0.0

    def share(self, name):
        others, capacity = self.spans.get(name, (0, 0))
        return 100.0 * others / capacity if capacity else float("nan")


def wait_quiet(cpu, limit):
    """Waits, at most limit seconds, until other processes leave the machine mostly idle."""
    deadline = time.monotonic() + limit
    while True:
        cpu.start("wait")
        time.sleep(10)
        share = cpu.stop("wait")
        if share < 10:
            log(f"other processes use {share:.0f}% of the machine: starting")
            return
        if time.monotonic() >= deadline:
            log(f"other processes still use {share:.0f}% of the machine: starting anyway")
            return
        log(f"other processes use {share:.0f}% of the machine: waiting for it to quieten")


# --------------------------------------------------------------------------------------------
# Samples


class Measurements:
    """The samples of a run, keyed by scenario, parameter and candidate, and the content checks."""

    def __init__(self, noise_limit, redo_budget):
        self.results = {}  # key -> list of samples
        self.checks = []  # (what, ok, total)
        self.cpu = CpuMeter()
        self.noise_limit = noise_limit  # % of the machine
        self.redo_budget = redo_budget
        self.redone = []

    def add(self, key, value):
        self.results.setdefault(key, []).append(value)

    def gated(self, what, fn):
        """Runs one side-by-side run of a scenario, fn returning its samples as (key, value) pairs,
        and runs it again (a bounded number of times) if other processes took more than a small
        share of the machine meanwhile: their load comes and goes between candidates."""
        for attempt in range(3):
            self.cpu.start("gate")
            pairs = fn()
            share = self.cpu.stop("gate")
            if share <= self.noise_limit or attempt == 2 or self.redo_budget <= 0:
                break
            self.redo_budget -= 1
            self.redone.append(what)
            log(f"{what}: other processes took {share:.0f}% of the machine meanwhile: measuring it again")
        for key, value in pairs:
            self.add(key, value)
        self.add(("others", what.split(" run ")[0]), share)

    def ratio_per_run(self, num_key, den_key, attr="wall"):
        """num/den per run, e.g. other's wall / mirror's wall = mirror's throughput relative to other's."""
        a = [getattr(p, attr) for p in self.results.get(num_key, [])]
        b = [getattr(p, attr) for p in self.results.get(den_key, [])]
        return [x / y for x, y in zip(a, b)]
