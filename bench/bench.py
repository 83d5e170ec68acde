#!/usr/bin/env python3
"""Benchmark of registry-mirror against what a user would otherwise run.

Started by bench/run, which installs the tools and builds the jar first. Everything runs on
loopback, on free ports, with all state in one temporary directory that is removed at the end;
every server started here is stopped on exit, whatever the exit. Standard library only.

Candidates, each with an empty cache of its own:
  dist-proxy       the reference registry (docker-registry) in proxy mode
  nginx-cache      nginx proxy_cache (key $uri, proxy_cache_lock on), as nginx-based registry caches do
  nginx-static     nginx serving the origin's blob files with sendfile: the ceiling for a cached blob
  registry-mirror  this project, run with conf/jvm.options
and "origin direct", the origin registry itself, as the reference for cold pulls.

Each proxy candidate reaches the origin content through an origin registry process of its own
(all share one storage directory), so the origin requests it causes are counted exactly in that
process's access log. The throttled origin is one nginx with limit_rate in front of them.
"""

import argparse
import atexit
import datetime
import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
REPO = "bench/data"
TAG = "v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = "Accept: " + OCI_MANIFEST
CURL_W = "%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n"
THROTTLE = "65m"  # nginx limit_rate per connection: about 67 MiB/s in effect
MISSES_EXPLAINED = "README.md#what-profiling-found-cold-pull-from-the-fast-origin"  # where RESULTS.md links

MIRROR = "registry-mirror"
DIST = "dist-proxy"
NGX_CACHE = "nginx-cache"
NGX_STATIC = "nginx-static"
DIRECT = "origin direct"
PROXIES = [DIST, NGX_CACHE, MIRROR]  # the candidates that pull through from an origin
ORIGINS = ["direct", "dist", "ngxcache", "mirror"]  # one origin process per client of the origin
ORIGIN_OF = {DIRECT: "direct", DIST: "dist", NGX_CACHE: "ngxcache", MIRROR: "mirror"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Processes


def descendants(pid):
    """pid and every process below it (nginx master and workers, for example)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Server:
    """A server process started and owned by the benchmark, in a process group of its own."""

    def __init__(self, name, argv, workdir, ready_url, env=None):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.ready_url = ready_url
        self.env = env
        self.proc = None
        self.out_path = os.path.join(workdir, "stdout.log")
        self.err_path = os.path.join(workdir, "stderr.log")
        self.peaks = {}  # scenario -> peak RSS in KiB

    def start(self, timeout=60):
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.workdir, env=self.env, start_new_session=True)
        STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode} at start-up:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as r:
                    if r.status == 200:
                        self.record_peak("idle")
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not answer {self.ready_url} within {timeout}s:\n{self.tail()}")

    def tail(self, lines=30):
        text = ""
        for path in (self.out_path, self.err_path):
            try:
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
            except OSError:
                pass
        return text

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return descendants(self.proc.pid)

    def reset_peak(self):
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
            except OSError:
                pass

    def peak_kib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def record_peak(self, scenario):
        self.peaks[scenario] = max(self.peaks.get(scenario, 0), self.peak_kib())

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        else:
            # The leader is gone; make sure nothing of its group is left.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self in STARTED:
            STARTED.remove(self)


STARTED = []


def stop_all():
    for server in list(reversed(STARTED)):
        try:
            server.stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping {server.name}: {e}")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


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
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        procs[int(entry)] = (int(fields[1]), int(fields[6]),
                             int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14]))
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    mine, todo = set(), [os.getpid()]
    while todo:
        p = todo.pop()
        mine.add(p)
        todo.extend(children.get(p, []))
    return sum(t for pid, (_, flags, t) in procs.items() if pid not in mine and not flags & PF_KTHREAD)


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


def run(argv, timeout=None, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p


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
# Statistics and formatting


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_num(x, digits):
    if x != x:  # nan
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def fmt_range(xs, digits=3, scale=1.0):
    if not xs:
        return "–"
    xs = [x * scale for x in xs]
    m = fmt_num(med(xs), digits)
    if len(xs) == 1:
        return m
    return f"{m} [{fmt_num(min(xs), digits)}–{fmt_num(max(xs), digits)}]"


def fmt_ratio(xs):
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.2f}×"
    return f"{med(xs):.2f}× [{min(xs):.2f}–{max(xs):.2f}]"


def fmt_counts(xs):
    if not xs:
        return "–"
    lo, hi = min(xs), max(xs)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def rotate(items, k):
    k %= len(items)
    return items[k:] + items[:k]


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        if self.quick:
            self.cold_sizes = [1, 8, 32]
            self.slow_size = 32
            self.herd_size = 8
            self.herd_ns = [8, 32]
            self.cold_runs = 2
            self.slow_runs = 2
            self.warm_runs = 6
            self.herd_runs = 2
            self.rate_runs = 1
            self.rate_seconds = 2
            self.rate_warmup = 1
            self.warmup_fast = (3, 8)
            self.warmup_slow = (2, 8)
        else:
            self.cold_sizes = [1, 32, 256]
            self.slow_size = 256
            self.herd_size = 32
            self.herd_ns = [8, 32]
            self.cold_runs = 5
            self.slow_runs = 5
            self.warm_runs = 20
            self.herd_runs = 4
            self.rate_runs = 3
            self.rate_seconds = 5
            self.rate_warmup = 2
            # A JVM keeps compiling through its first two gigabytes or so of cold traffic; the
            # others do not need it, but get the same.
            self.warmup_fast = (8, 256)  # (blobs, MiB each)
            self.warmup_slow = (4, 64)
        for name in ("cold_runs", "slow_runs", "warm_runs", "herd_runs", "rate_runs", "rate_seconds"):
            value = getattr(args, name, None)
            if value:
                setattr(self, name, value)
        self.warm_size = self.cold_sizes[-1]
        self.tmp = tempfile.mkdtemp(prefix="registry-mirror-bench-")
        self.blob_seq = 0
        self.results = {}  # key -> list of samples
        self.checks = []  # (what, ok, total)
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.cpu = CpuMeter()
        self.noise_limit = args.noise_limit  # % of the machine
        self.redo_budget = 4 if self.quick else 16
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

    # ---- set-up --------------------------------------------------------------------------

    def setup(self):
        ports = iter(free_ports(20))
        self.origin_port = {o: next(ports) for o in ORIGINS}
        self.throttle_port = {o: next(ports) for o in ORIGINS}
        self.storage = os.path.join(self.tmp, "origin-storage")
        os.makedirs(self.storage)
        self.origins = {}
        for o in ORIGINS:
            self.origins[o] = self.start_registry(f"origin-{o}", self.origin_port[o], self.storage,
                                                  access_log=True)
        self.throttle = self.start_nginx("throttle", next(ports), self.throttle_conf)
        self.seed_content()

        with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
            self.jvm_options = f.read().split()
        self.fast, self.slow = {}, {}
        for variant, table, upstream in (("fast", self.fast, self.origin_url),
                                         ("slow", self.slow, self.throttle_url)):
            table[DIST] = self.start_registry(f"{DIST}-{variant}", next(ports),
                                              os.path.join(self.tmp, f"{DIST}-{variant}", "storage"),
                                              proxy=upstream("dist"))
            table[NGX_CACHE] = self.start_nginx(f"{NGX_CACHE}-{variant}", next(ports), self.cache_conf,
                                                upstream=upstream("ngxcache"))
            table[MIRROR] = self.start_mirror(f"{MIRROR}-{variant}", next(ports), upstream("mirror"),
                                              jfr=self.args.jfr if variant == "fast" else None)
        self.static = self.start_nginx(NGX_STATIC, next(ports), self.static_conf)
        self.fast[NGX_STATIC] = self.static
        self.candidate_servers = [*self.fast.values(), *self.slow.values()]

    def origin_url(self, o):
        return f"http://127.0.0.1:{self.origin_port[o]}"

    def throttle_url(self, o):
        return f"http://127.0.0.1:{self.throttle_port[o]}"

    def start_registry(self, name, port, storage, access_log=False, proxy=None):
        workdir = os.path.join(self.tmp, name)
        os.makedirs(workdir, exist_ok=True)
        os.makedirs(storage, exist_ok=True)
        conf = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            f"    disabled: {'false' if access_log else 'true'}",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {storage}",
            "  cache:",
            "    blobdescriptor: inmemory",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{port}",
        ]
        if proxy:
            conf += ["proxy:", f"  remoteurl: {proxy}"]
        path = os.path.join(workdir, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        server = Server(name, ["docker-registry", "serve", path], workdir, f"http://127.0.0.1:{port}/v2/")
        server.url = f"http://127.0.0.1:{port}"
        return server.start()

    def nginx_main(self, workdir, body):
        return f"""
worker_processes auto;
user root root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  server_tokens off;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy_temp;
  fastcgi_temp_path {workdir}/fastcgi_temp;
  uwsgi_temp_path {workdir}/uwsgi_temp;
  scgi_temp_path {workdir}/scgi_temp;
  types {{ }}
  default_type application/octet-stream;
{body}
}}
"""

    def throttle_conf(self, workdir, port, **_):
        servers = []
        for o in ORIGINS:
            servers.append(f"""
  upstream origin_{o} {{ server 127.0.0.1:{self.origin_port[o]}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{self.throttle_port[o]};
    location / {{
      proxy_pass http://origin_{o};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_read_timeout 600s;
      # limit_rate delays a response after each write by the time its bytes are worth, in whole
      # milliseconds: writes of 1 MiB buffers keep the pace steady (small ones round down to no delay).
      proxy_buffering on;
      proxy_max_temp_file_size 0;
      proxy_buffer_size 64k;
      proxy_buffers 8 1m;
      proxy_busy_buffers_size 2m;
      limit_rate {THROTTLE};
    }}
  }}""")
        servers.append(f"  server {{ listen 127.0.0.1:{port}; location = /v2/ {{ return 200 '{{}}'; }} }}")
        return self.nginx_main(workdir, "\n".join(servers))

    def cache_conf(self, workdir, port, upstream):
        return self.nginx_main(workdir, f"""
  proxy_cache_path {workdir}/cache levels=1:2 keys_zone=registry:16m max_size=100g inactive=30d use_temp_path=off;
  upstream origin {{ server {upstream.split('//')[1]}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_read_timeout 600s;
    # Content addressed by digest never changes: cache it, one upstream fetch at a time.
    location ~ "^/v2/.+/(blobs|manifests)/sha256:[0-9a-f]{{64}}$" {{
      proxy_pass http://origin;
      proxy_cache registry;
      proxy_cache_key $uri;
      proxy_cache_valid 200 30d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 600s;
      proxy_cache_lock_age 600s;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
    }}
    # Tags move: passed through.
    location /v2/ {{
      proxy_pass http://origin;
    }}
  }}""")

    def static_conf(self, workdir, port, **_):
        blobs = f"{self.storage}/docker/registry/v2/blobs/sha256"
        return self.nginx_main(workdir, f"""
  server {{
    listen 127.0.0.1:{port};
    location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}
    location ~ "^/v2/.+/blobs/sha256:(?<d1>[0-9a-f]{{2}})(?<d2>[0-9a-f]{{62}})$" {{
      alias {blobs}/$d1/$d1$d2/data;
      add_header Docker-Content-Digest sha256:$d1$d2;
    }}
    location ~ "^/v2/.+/manifests/sha256:(?<m1>[0-9a-f]{{2}})(?<m2>[0-9a-f]{{62}})$" {{
      alias {blobs}/$m1/$m1$m2/data;
      default_type {OCI_MANIFEST};
      add_header Docker-Content-Digest sha256:$m1$m2;
    }}
    location ~ "^/v2/.+/manifests/(?<tag>[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})$" {{
      alias {workdir}/tags/$tag;
      default_type {OCI_MANIFEST};
    }}
  }}""")

    def start_nginx(self, name, port, conf_fn, **kw):
        workdir = os.path.join(self.tmp, name)
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf_fn(workdir, port, **kw))
        if conf_fn == self.static_conf:
            os.makedirs(os.path.join(workdir, "tags"), exist_ok=True)
            with open(os.path.join(workdir, "tags", TAG), "wb") as f:
                f.write(self.manifest)
        server = Server(name, ["nginx", "-p", workdir, "-e", f"{workdir}/error.log", "-c", path,
                               "-g", "daemon off;"], workdir, f"http://127.0.0.1:{port}/v2/")
        server.url = f"http://127.0.0.1:{port}"
        return server.start()

    def start_mirror(self, name, port, upstream, jfr=None):
        workdir = os.path.join(self.tmp, name)
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "config.yaml")
        with open(path, "w") as f:
            f.write(f"""listen: 127.0.0.1:{port}
cache:
  dir: {workdir}/cache
upstreams:
  origin:
    url: {upstream}
    default: true
    tagTtl: 1h
""")
        argv = ["java", *self.jvm_options]
        if jfr:
            argv.append(f"-XX:StartFlightRecording=filename={os.path.abspath(jfr)},settings=profile,dumponexit=true")
        argv += ["-jar", self.jar, "--config", path]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}
        server = Server(name, argv, workdir, f"http://127.0.0.1:{port}/readyz", env=env)
        server.url = f"http://127.0.0.1:{port}"
        return server.start()

    # ---- content -------------------------------------------------------------------------

    def new_blob(self, size_bytes, label):
        """Writes a file of fresh random bytes, pushes it to the origin, deletes the file; returns its digest."""
        self.blob_seq += 1
        path = os.path.join(self.tmp, f"upload-{self.blob_seq}")
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size_bytes
            while left:
                chunk = os.urandom(min(left, 8 * MiB))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        digest = "sha256:" + h.hexdigest()
        self.push_blob(path, digest)
        os.unlink(path)
        return digest

    def push_blob(self, path, digest):
        base = self.origins["direct"].url
        req = urllib.request.Request(f"{base}/v2/{REPO}/blobs/uploads/", data=b"", method="POST")
        with urllib.request.urlopen(req) as r:
            location = r.headers["Location"]
        if location.startswith("/"):
            location = base + location
        sep = "&" if "?" in location else "?"
        run(["curl", "-sf", "-X", "PUT", "-T", path, "-H", "Content-Type: application/octet-stream",
             "-H", "Expect:", "-o", "/dev/null", f"{location}{sep}digest={digest}"])

    def seed_content(self):
        """The small blob of the request-rate tests and a manifest (about 1.2 kB) tagged v1."""
        self.small_blob = self.new_blob(1 * MiB, "small")
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        path = os.path.join(self.tmp, "config.json")
        with open(path, "wb") as f:
            f.write(config)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.push_blob(path, config_digest)
        layers = [(self.small_blob, MiB)] + [(self.new_blob(4096, "layer"), 4096) for _ in range(5)]
        layer_json = ",".join(
            f'{{"mediaType":"{OCI_LAYER}","digest":"{d}","size":{s},'
            f'"annotations":{{"org.opencontainers.image.title":"layer-{i}.tar.gz"}}}}'
            for i, (d, s) in enumerate(layers))
        manifest = (f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",'
                    f'"config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_digest}","size":{len(config)}}},'
                    f'"layers":[{layer_json}],'
                    f'"annotations":{{"org.opencontainers.image.description":"registry-mirror benchmark image"}}}}')
        self.manifest = manifest.encode()
        self.manifest_digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        req = urllib.request.Request(f"{self.origins['direct'].url}/v2/{REPO}/manifests/{TAG}",
                                     data=self.manifest, method="PUT",
                                     headers={"Content-Type": OCI_MANIFEST})
        with urllib.request.urlopen(req) as r:
            if r.status != 201:
                raise BenchError(f"manifest push answered {r.status}")

    # ---- helpers -------------------------------------------------------------------------

    def target(self, name, slow=False):
        """The base URL a client uses for a candidate ("origin direct" included)."""
        if name == DIRECT:
            return self.throttle_url("direct") if slow else self.origins["direct"].url
        return (self.slow if slow else self.fast)[name].url

    def blob_url(self, name, digest, slow=False, kind="blobs"):
        return f"{self.target(name, slow)}/v2/{REPO}/{kind}/{digest}"

    def servers_for(self, names, slow=False):
        table = self.slow if slow else self.fast
        return [table[n] for n in names if n in table]

    def all_servers(self):
        return [*self.origins.values(), self.throttle, *self.candidate_servers]

    def reset_peaks(self, servers):
        for s in servers:
            s.reset_peak()

    def record_peaks(self, servers, scenario):
        for s in servers:
            s.record_peak(scenario)

    def origin_requests(self, origin, digest=None, method=None):
        """Requests in an origin's access log (combined format), optionally only one blob's."""
        n = 0
        with open(self.origins[origin].out_path, errors="replace") as f:
            for line in f:
                m = re.search(r'"([A-Z]+) (\S+) HTTP', line)
                if not m:
                    continue
                if method and m.group(1) != method:
                    continue
                if digest and not m.group(2).split("?")[0].endswith("/" + digest):
                    continue
                n += 1
        return n

    def check_pull(self, what, p, size):
        if p.code != 200 or p.size != size:
            raise BenchError(f"{what}: HTTP {p.code}, {p.size} bytes, expected 200 and {size}")

    def verify(self, what, url, digest, size, headers=()):
        out = os.path.join(self.tmp, "verify.out")
        p = curl(url, out=out, headers=headers)
        ok = p.code == 200 and p.size == size and sha256_file(out) == digest
        os.unlink(out)
        self.checks.append((what, int(ok), 1))
        if not ok:
            raise BenchError(f"{what}: wrong content from {url} (HTTP {p.code}, {p.size} bytes)")

    # ---- scenarios -----------------------------------------------------------------------

    def warm_up(self):
        """Untimed: every candidate serves a few cold and warm blobs and a short burst of small requests,
        so that no candidate is measured while its code is still being compiled or its pools filled."""
        for slow in (False, True):
            names = [DIST, NGX_CACHE, MIRROR]
            count, size = self.warmup_slow if slow else self.warmup_fast
            for i in range(count):
                log(f"warm-up{', throttled origin' if slow else ''}: {size} MiB blob {i + 1}/{count}")
                d = self.new_blob(size * MiB, "warmup")
                for n in names:
                    url = self.blob_url(n, d, slow)
                    self.check_pull(f"warm-up {n}", curl(url), size * MiB)
                    for _ in range(2):
                        self.check_pull(f"warm-up {n}", curl(url), size * MiB)
                    curl(url, method="HEAD")
        log("warm-up: small requests")
        for n in (DIRECT, DIST, NGX_CACHE, NGX_STATIC, MIRROR):
            base = self.target(n)
            for kind, ref in (("manifests", self.manifest_digest), ("manifests", TAG)):
                self.verify(f"{n} manifest {ref[:15]}", f"{base}/v2/{REPO}/{kind}/{ref}", self.manifest_digest,
                            len(self.manifest), headers=[ACCEPT])
            self.verify(f"{n} 1 MiB blob", self.blob_url(n, self.small_blob), self.small_blob, MiB)
            head = curl(self.blob_url(n, self.small_blob), method="HEAD")
            if head.code != 200:
                raise BenchError(f"{n}: HEAD of a cached blob answered {head.code}")
            wrk(f"{base}/v2/{REPO}/manifests/{self.manifest_digest}", self.rate_warmup, [ACCEPT])
            wrk(f"{base}/v2/{REPO}/manifests/{TAG}", self.rate_warmup, [ACCEPT])
            hey(self.blob_url(n, self.small_blob), self.rate_warmup)
            wrk(self.blob_url(n, self.small_blob), self.rate_warmup)
        settle(self.all_servers(), sync=True)

    def cold(self, slow):
        label = "cold-slow" if slow else "cold"
        sizes = [self.slow_size] if slow else self.cold_sizes
        runs = self.slow_runs if slow else self.cold_runs
        names = [DIRECT, DIST, NGX_CACHE, MIRROR]
        servers = self.servers_for(names, slow)
        self.reset_peaks(servers)
        for r in range(runs):
            for size in sizes:
                def one_run(r=r, size=size):
                    pairs = []
                    digest = self.new_blob(size * MiB, label)
                    if not slow and size == self.warm_size:
                        self.warm_blob = digest
                    settle(self.all_servers(), sync=True)
                    for n in rotate(names, r):
                        log(f"{label} {size} MiB run {r + 1}/{runs}: {n} ({dirty_mib()} MiB of dirty pages)")
                        p = curl(self.blob_url(n, digest, slow))
                        self.check_pull(f"{label} {n}", p, size * MiB)
                        pairs.append(((label, size, n), p))
                        settle(self.all_servers(), sync=True)
                        pairs += self.count_origin(label, size, n, digest)
                    return pairs
                self.gated(f"{label} {size} MiB run {r + 1}", one_run)
        self.record_peaks(servers, label)

    def warm(self):
        names = [NGX_STATIC, DIST, NGX_CACHE, MIRROR]
        servers = self.servers_for(names)
        size = self.warm_size * MiB
        for n in names:
            self.verify(f"{n} warm {self.warm_size} MiB", self.blob_url(n, self.warm_blob), self.warm_blob, size)
        self.reset_peaks(servers)
        settle(self.all_servers(), sync=True)
        for r in range(self.warm_runs):
            def one_run(r=r):
                log(f"warm {self.warm_size} MiB run {r + 1}/{self.warm_runs}")
                pairs = []
                for n in rotate(names, r):
                    p = curl(self.blob_url(n, self.warm_blob))
                    self.check_pull(f"warm {n}", p, size)
                    pairs.append((("warm", n), p))
                    settle(self.all_servers())
                return pairs
            self.gated(f"warm run {r + 1}", one_run)
        self.record_peaks(servers, "warm")

    def herd_once(self, url, n, digest, size, what):
        outdir = os.path.join(self.tmp, "herd")
        os.makedirs(outdir, exist_ok=True)
        procs = []
        t0 = time.perf_counter()
        for i in range(n):
            procs.append(subprocess.Popen(
                ["curl", "-s", "--max-time", "300", "-o", os.path.join(outdir, str(i)), "-w", CURL_W, url],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t0
        pulls, ok = [], 0
        for i, out in enumerate(outs):
            path = os.path.join(outdir, str(i))
            try:
                p = Pull(out.strip().splitlines()[-1])
                pulls.append(p)
                if p.code == 200 and p.size == size and sha256_file(path) == digest:
                    ok += 1
            except (IndexError, ValueError):
                pass
            if os.path.exists(path):
                os.unlink(path)
        self.checks.append((what, ok, n))
        return {"wall": wall, "ttfb_max": max((p.ttfb for p in pulls), default=float("nan")),
                "ttfb_med": med([p.ttfb for p in pulls]), "ok": ok, "n": n}

    def herd(self):
        names = [DIRECT, DIST, NGX_CACHE, MIRROR]
        servers = self.servers_for(names + [NGX_STATIC])
        size = self.herd_size * MiB
        self.reset_peaks(servers)
        for r in range(self.herd_runs):
            for n_clients in self.herd_ns:
                def one_run(r=r, n_clients=n_clients):
                    pairs = []
                    digest = self.new_blob(size, "herd")
                    settle(self.all_servers(), sync=True)
                    for n in rotate(names + [NGX_STATIC], r):
                        log(f"herd of {n_clients} on {self.herd_size} MiB run {r + 1}/{self.herd_runs}: {n}")
                        res = self.herd_once(self.blob_url(n, digest), n_clients, digest, size,
                                             f"herd {n_clients} {n}")
                        pairs.append((("herd", n_clients, n), res))
                        settle(self.all_servers(), sync=True)
                        if n != NGX_STATIC:
                            pairs += self.count_origin("herd", n_clients, n, digest)
                    # The same herd again on the blob the mirror now holds: its warm herd.
                    res = self.herd_once(self.blob_url(MIRROR, digest), n_clients, digest, size,
                                         f"herd {n_clients} {MIRROR} warm")
                    pairs.append((("herd", n_clients, MIRROR + " (warm)"), res))
                    settle(self.all_servers(), sync=True)
                    return pairs
                self.gated(f"herd of {n_clients} run {r + 1}", one_run)
        self.record_peaks(servers, "herd")

    RATE_TESTS = [
        ("GET manifest by digest", "digest"),
        ("GET manifest by tag", "tag"),
        ("HEAD 1 MiB blob", "head"),
        ("GET 1 MiB blob", "blob"),
    ]

    def rates(self):
        names = [DIRECT, DIST, NGX_CACHE, NGX_STATIC, MIRROR]
        for title, kind in self.RATE_TESTS:
            scenario = "1 MiB GETs" if kind == "blob" else "small requests"
            for r in range(self.rate_runs):
                self.gated(f"{title} run {r + 1}", lambda r=r, title=title, kind=kind, scenario=scenario:
                           self.rate_run(r, title, kind, scenario, names))

    def rate_run(self, r, title, kind, scenario, names):
        pairs = []
        for n in rotate(names, r):
            log(f"{title} run {r + 1}/{self.rate_runs}: {n}")
            base = self.target(n)
            server = self.origins["direct"] if n == DIRECT else self.fast[n]
            origin = ORIGIN_OF.get(n)
            before = self.origin_requests(origin) if origin else 0
            settle(self.all_servers())
            server.reset_peak()
            if kind == "digest":
                res = wrk(f"{base}/v2/{REPO}/manifests/{self.manifest_digest}", self.rate_seconds, [ACCEPT])
            elif kind == "tag":
                res = wrk(f"{base}/v2/{REPO}/manifests/{TAG}", self.rate_seconds, [ACCEPT])
            elif kind == "head":
                res = hey(self.blob_url(n, self.small_blob), self.rate_seconds)
            else:
                res = wrk(self.blob_url(n, self.small_blob), self.rate_seconds)
            if n != DIRECT:
                server.record_peak(scenario)
            time.sleep(0.3)  # the origin logs a request once it has completed
            if origin and n != DIRECT:
                res["origin"] = (self.origin_requests(origin) - before) / max(res["requests"], 1)
            pairs.append((("rate", kind, n), res))
        return pairs

    def count_origin(self, scenario, param, n, digest):
        """Origin GETs and HEADs of a blob so far, from the access log of the candidate's own origin process.
        Called once the servers have settled: the origin logs a request when it has completed."""
        time.sleep(0.1)
        origin = ORIGIN_OF[n]
        return [(("origin-gets", scenario, param, n), self.origin_requests(origin, digest, "GET")),
                (("origin-heads", scenario, param, n), self.origin_requests(origin, digest, "HEAD"))]

    # ---- report --------------------------------------------------------------------------

    def machine(self):
        def first(cmd):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
                return (p.stdout + p.stderr).strip().splitlines()[0]
            except Exception:
                return "?"
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem = "?"
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
        os_name = "?"
        try:
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        os_name = line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return {
            "cpus": str(os.cpu_count()),
            "cpu": cpu,
            "memory": mem,
            "kernel": platform.release(),
            "os": os_name,
            "java": first(["java", "-version"]),
            "nginx": first(["nginx", "-v"]),
            "registry": first(["docker-registry", "--version"]),
            "curl": first(["curl", "--version"]),
            "wrk": first(["wrk", "-v"]),
            "hey": first(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
            "load": open("/proc/loadavg").read().split()[:3],
        }

    def report(self):
        R = self.results
        lines = []
        w = lines.append
        m = self.machine_info
        end = datetime.datetime.now(datetime.timezone.utc)
        w("# registry-mirror benchmark: latest run")
        w("")
        w(f"Run {self.started_at:%Y-%m-%d %H:%M} UTC, {'`bench/run --quick` (smoke run: small blobs, few runs)' if self.quick else '`bench/run`'}, "
          f"{(end - self.started_at).total_seconds() / 60:.1f} minutes.")
        w("")
        w(f"- Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, Linux {m['kernel']}; "
          f"load average at start {' '.join(m['load'])}")
        c = self.cpu
        w(f"- CPU taken by other processes while the benchmark ran: {c.share('run'):.0f}% of the machine "
          f"(cold pulls {c.share('cold'):.0f}%, throttled {c.share('cold-slow'):.0f}%, "
          f"warm {c.share('warm'):.0f}%, herds {c.share('herd'):.0f}%, request rates {c.share('rates'):.0f}%; "
          f"about 0 on a quiet machine). A run during which they took more than {self.noise_limit:.0f}% "
          f"was measured again, up to twice: "
          + (f"{len(self.redone)} runs were ({', '.join(self.redone)})." if self.redone else "none was."))
        kept = [v for k, vs in self.results.items() if k[0] == "others" for v in vs]
        if kept:
            noisy = sum(1 for v in kept if v > self.noise_limit)
            w(f"- Runs kept: {len(kept)}; {noisy} of them still with more than {self.noise_limit:.0f}% "
              f"taken by others (worst {max(kept):.0f}%)")
        w(f"- Software: {m['java']}; {m['nginx']}; docker-registry {m['registry'].split()[-1]}; "
          f"{' '.join(m['curl'].split()[:2])}; {m['wrk'].split(' [')[0]}; hey {m['hey']}")
        w(f"- registry-mirror runs with `conf/jvm.options`: `{' '.join(self.jvm_options)}`")
        w(f"- Runs: cold pulls {self.cold_runs} per size, throttled {self.slow_runs}, warm pulls {self.warm_runs}, "
          f"herds {self.herd_runs} per size of herd, request rates {self.rate_runs} × {self.rate_seconds} s "
          f"(64 connections, 2 threads)")
        w("")
        w("Figures are medians with [min–max] over the runs. Candidates were measured in turn, in an order that "
          "rotates from run to run; ratios are taken within each run between candidates measured side by side, "
          "then summarised the same way. Absolute figures drift between runs and machines: compare ratios.")
        w("")

        # ---- targets
        w("## Against the targets")
        w("")
        w("| target | measured | |")
        w("|---|---|---|")
        targets = self.targets()
        for target, measured, ok in targets:
            w(f"| {target} | {measured} | {'met' if ok else '**missed**'} |")
        w("")
        if not all(ok for _, _, ok in targets):
            w(f"Why targets are missed, and what profiling found: [README.md]({MISSES_EXPLAINED}).")
            w("")

        # ---- cold
        names = [DIRECT, DIST, NGX_CACHE, MIRROR]
        w("## a) Cold pull, fast loopback origin")
        w("")
        w("One client (curl) pulls a blob that the candidate has never seen, a fresh random one per run. "
          "Origin GETs are the GET requests for that blob in the origin's access log.")
        w("")
        for size in self.cold_sizes:
            self.cold_table(w, "cold", size, names)
        w(f"## b) Cold pull, throttled origin (nginx `limit_rate {THROTTLE}` in front of the origin, about 67 MiB/s)")
        w("")
        self.cold_table(w, "cold-slow", self.slow_size, names)

        # ---- warm
        w(f"## c) Warm pull (cache hit), {self.warm_size} MiB blob")
        w("")
        w("| candidate | wall s | GiB/s | TTFB ms | throughput ÷ nginx-static | registry-mirror's throughput ÷ this |")
        w("|---|---|---|---|---|---|")
        for n in [NGX_STATIC, DIST, NGX_CACHE, MIRROR]:
            ps = R.get(("warm", n), [])
            rel_static = self.ratio_per_run(("warm", NGX_STATIC), ("warm", n))
            rel_mirror = self.ratio_per_run(("warm", n), ("warm", MIRROR)) if n != MIRROR else []
            w(f"| {n} | {fmt_range([p.wall for p in ps])} | "
              f"{fmt_num(med([self.warm_size / 1024 / p.wall for p in ps]), 2)} | "
              f"{fmt_range([p.ttfb for p in ps], 1, 1000)} | {fmt_ratio(rel_static) if n != NGX_STATIC else '1.00×'} | "
              f"{fmt_ratio(rel_mirror) if n != MIRROR else ''} |")
        w("")

        # ---- herd
        w(f"## d) Thundering herd: N clients ask for the same cold {self.herd_size} MiB blob at once")
        w("")
        w("N curl processes start together on a blob none of the candidates holds (a fresh one per run); "
          "every client's body is checked against the digest. The floor is nginx-static serving the same "
          "blob from disk; `registry-mirror (warm)` is the same herd again once the mirror holds the blob.")
        w("")
        w("| N | candidate | wall s (all done) | wall ÷ floor | slowest TTFB ms | median TTFB ms | origin GETs | sha256 ok |")
        w("|---|---|---|---|---|---|---|---|")
        for n_clients in self.herd_ns:
            for n in [DIRECT, DIST, NGX_CACHE, MIRROR, MIRROR + " (warm)", NGX_STATIC]:
                rs = R.get(("herd", n_clients, n), [])
                if not rs:
                    continue
                floor = [x["wall"] for x in R.get(("herd", n_clients, NGX_STATIC), [])]
                ratios = [x["wall"] / f for x, f in zip(rs, floor)]
                gets = R.get(("origin-gets", "herd", n_clients, n), [])
                label = f"{NGX_STATIC} (the floor: blob already on disk)" if n == NGX_STATIC else n
                w(f"| {n_clients} | {label} | {fmt_range([x['wall'] for x in rs])} | "
                  f"{fmt_ratio(ratios) if n != NGX_STATIC else '1.00×'} | "
                  f"{fmt_range([x['ttfb_max'] for x in rs], 0, 1000)} | {fmt_range([x['ttfb_med'] for x in rs], 0, 1000)} | "
                  f"{fmt_counts(gets) if n in (DIRECT, DIST, NGX_CACHE, MIRROR) else '–'} | "
                  f"{sum(x['ok'] for x in rs)}/{sum(x['n'] for x in rs)} |")
        w("")

        # ---- rates
        rnames = [DIRECT, DIST, NGX_CACHE, NGX_STATIC, MIRROR]
        w("## e) Request rates (64 connections, 2 threads; req/s, p99 latency in ms)")
        w("")
        w("GETs with wrk, HEADs with hey (wrk hangs on HEAD responses that carry a Content-Length). "
          "Everything is cached in every candidate before the first run; the mirror's tag TTL (1 h) "
          "outlasts the run.")
        w("")
        w("| endpoint | " + " | ".join(rnames) + " |")
        w("|---|" + "---|" * len(rnames))
        for title, kind in self.RATE_TESTS:
            cells = []
            for n in rnames:
                rs = R.get(("rate", kind, n), [])
                errors = sum(x["errors"] for x in rs)
                cell = f"{fmt_range([x['rps'] for x in rs], 0)} (p99 {fmt_num(med([x['p99'] for x in rs]), 1)})"
                if errors:
                    cell += f" **{errors} errors**"
                cells.append(cell)
            w(f"| {title} | " + " | ".join(cells) + " |")
        w("")
        w("registry-mirror's rate relative to the others, per run:")
        w("")
        others = [DIST, NGX_CACHE, NGX_STATIC]
        w("| endpoint | " + " | ".join(f"÷ {n}" for n in others) + " | origin requests per request: "
          + ", ".join([DIST, NGX_CACHE, MIRROR]) + " |")
        w("|---|" + "---|" * (len(others) + 1))
        for title, kind in self.RATE_TESTS:
            cells = []
            for n in others:
                a = [x["rps"] for x in R.get(("rate", kind, MIRROR), [])]
                b = [x["rps"] for x in R.get(("rate", kind, n), [])]
                cells.append(fmt_ratio([x / y for x, y in zip(a, b)]))
            origin = []
            for n in [DIST, NGX_CACHE, MIRROR]:
                o = [x.get("origin", 0) for x in R.get(("rate", kind, n), [])]
                origin.append(fmt_num(med(o), 3) if o else "–")
            w(f"| {title} | " + " | ".join(cells) + " | " + " / ".join(origin) + " |")
        w("")

        # ---- memory
        scenarios = ["idle", "cold", "cold-slow", "warm", "herd", "small requests", "1 MiB GETs"]
        titles = {"idle": "idle after start", "cold": "cold pulls", "cold-slow": "cold, throttled origin",
                  "warm": "warm pulls", "herd": "herds", "small requests": "manifests and HEADs",
                  "1 MiB GETs": "1 MiB GETs"}
        w("## f) Peak RSS of each server, MiB")
        w("")
        w("VmHWM of the server process, reset before each scenario (nginx: master and workers added up). "
          "The throttled-origin figures come from a second instance of each proxy, pointed at the throttled origin.")
        w("")
        w("| candidate | " + " | ".join(titles[s] for s in scenarios) + " | max |")
        w("|---|" + "---|" * (len(scenarios) + 1))
        for n in [DIST, NGX_CACHE, NGX_STATIC, MIRROR]:
            cells = []
            peak = 0
            for s in scenarios:
                server = self.slow.get(n) if s == "cold-slow" else self.fast.get(n)
                if s == "idle" and n in self.slow:
                    v = max(self.fast[n].peaks.get("idle", 0), self.slow[n].peaks.get("idle", 0))
                else:
                    v = server.peaks.get(s) if server else None
                if v:
                    cells.append(f"{v / 1024:.0f}")
                    peak = max(peak, v)
                else:
                    cells.append("–")
            w(f"| {n} | " + " | ".join(cells) + f" | {peak / 1024:.0f} |")
        w("")
        bad = [(what, ok, total) for what, ok, total in self.checks if ok != total]
        w(f"Content checks: {sum(c[1] for c in self.checks)}/{sum(c[2] for c in self.checks)} "
          f"bodies matched their digest" + ("" if not bad else f"; failures: {bad}") + ".")
        w("")
        return "\n".join(lines)

    def ratio_per_run(self, num_key, den_key, attr="wall"):
        """num/den per run, e.g. other's wall / mirror's wall = mirror's throughput relative to other's."""
        a = [getattr(p, attr) for p in self.results.get(num_key, [])]
        b = [getattr(p, attr) for p in self.results.get(den_key, [])]
        return [x / y for x, y in zip(a, b)]

    def cold_table(self, w, label, size, names):
        R = self.results
        w(f"### {size} MiB" if label == "cold" else f"### {size} MiB, throttled")
        w("")
        w("| candidate | wall s | MiB/s | TTFB ms | origin GETs (HEADs) | wall ÷ origin direct | registry-mirror's throughput ÷ this |")
        w("|---|---|---|---|---|---|---|")
        for n in names:
            ps = R.get((label, size, n), [])
            gets = R.get(("origin-gets", label, size, n), [])
            heads = R.get(("origin-heads", label, size, n), [])
            direct = self.ratio_per_run((label, size, n), (label, size, DIRECT))
            mirror = self.ratio_per_run((label, size, n), (label, size, MIRROR))
            w(f"| {n} | {fmt_range([p.wall for p in ps])} | {fmt_num(med([size / p.wall for p in ps]), 0)} | "
              f"{fmt_range([p.ttfb for p in ps], 1, 1000)} | {fmt_counts(gets)} ({fmt_counts(heads)}) | "
              f"{fmt_ratio(direct) if n != DIRECT else '1.00×'} | {fmt_ratio(mirror) if n != MIRROR else ''} |")
        w("")

    def targets(self):
        R = self.results
        out = []
        big = self.cold_sizes[-1]
        warm = self.ratio_per_run(("warm", NGX_STATIC), ("warm", MIRROR))
        out.append((f"warm {self.warm_size} MiB blob throughput ≥ 0.9× nginx-static", fmt_ratio(warm), med(warm) >= 0.9))
        cold = self.ratio_per_run(("cold", big, DIST), ("cold", big, MIRROR))
        gets = R.get(("origin-gets", "cold", big, MIRROR), [])
        out.append((f"cold {big} MiB, fast origin: throughput ≥ 1.0× dist-proxy",
                    fmt_ratio(cold) + f" (mirror {fmt_num(med([big / p.wall for p in R.get(('cold', big, MIRROR), [])]), 0)} MiB/s, "
                    f"dist-proxy {fmt_num(med([big / p.wall for p in R.get(('cold', big, DIST), [])]), 0)} MiB/s)",
                    med(cold) >= 1.0))
        out.append((f"cold {big} MiB: exactly one origin GET", f"{fmt_counts(gets)} (dist-proxy "
                    f"{fmt_counts(R.get(('origin-gets', 'cold', big, DIST), []))})", bool(gets) and set(gets) == {1}))
        slow = self.ratio_per_run(("cold-slow", self.slow_size, MIRROR), ("cold-slow", self.slow_size, DIRECT))
        out.append((f"cold {self.slow_size} MiB, throttled origin: ≤ 1.02× the origin's own time", fmt_ratio(slow),
                    med(slow) <= 1.02))
        n = max(self.herd_ns)
        rs = R.get(("herd", n, MIRROR), [])
        floor = R.get(("herd", n, NGX_STATIC), [])
        hg = R.get(("origin-gets", "herd", n, MIRROR), [])
        out.append((f"herd of {n}: exactly one origin GET", fmt_counts(hg), bool(hg) and set(hg) == {1}))
        ttfb = [x["ttfb_max"] * 1000 for x in rs]
        out.append((f"herd of {n}: slowest TTFB ≤ 100 ms", fmt_range(ttfb, 0) + " ms", med(ttfb) <= 100))
        hw = [x["wall"] / f["wall"] for x, f in zip(rs, floor)]
        out.append((f"herd of {n}: wall ≤ 1.2× the floor (nginx-static, blob on disk)", fmt_ratio(hw), med(hw) <= 1.2))
        for title, kind in self.RATE_TESTS[:3]:
            a = [x["rps"] for x in R.get(("rate", kind, MIRROR), [])]
            b = [x["rps"] for x in R.get(("rate", kind, NGX_STATIC), [])]
            c = [x["rps"] for x in R.get(("rate", kind, DIST), [])]
            r = [x / y for x, y in zip(a, b)]
            out.append((f"{title}{' within its TTL' if kind == 'tag' else ''}: ≥ 0.8× nginx-static's rate",
                        f"{fmt_ratio(r)} ({fmt_num(med(a), 0)} vs {fmt_num(med(b), 0)} req/s; "
                        f"{fmt_num(med(a) / med(c), 1) if c else '–'}× dist-proxy)", med(r) >= 0.8))
        mirror = [self.fast[MIRROR], self.slow[MIRROR]]
        peaks = [v for s in mirror for k, v in s.peaks.items()]
        worst = max(peaks) / 1024 if peaks else float("nan")
        out.append(("peak RSS ≤ 300 MiB in every scenario", f"{worst:.0f} MiB at most", worst <= 300))
        return out

    # ---- main ----------------------------------------------------------------------------

    def wait_quiet(self, limit):
        """Waits, at most limit seconds, until other processes leave the machine mostly idle."""
        deadline = time.monotonic() + limit
        while True:
            self.cpu.start("wait")
            time.sleep(10)
            share = self.cpu.stop("wait")
            if share < 10:
                log(f"other processes use {share:.0f}% of the machine: starting")
                return
            if time.monotonic() >= deadline:
                log(f"other processes still use {share:.0f}% of the machine: starting anyway")
                return
            log(f"other processes use {share:.0f}% of the machine: waiting for it to quieten")

    def main(self):
        if self.args.wait_quiet:
            self.wait_quiet(self.args.wait_quiet)
        self.machine_info = self.machine()
        log(f"state in {self.tmp}")
        # A copy: a build that replaces the jar during the run must not pull classes from under the JVM.
        self.jar = os.path.join(self.tmp, "registry-mirror.jar")
        shutil.copyfile(os.path.join(ROOT, "target", "registry-mirror.jar"), self.jar)
        self.cpu.start("run")
        self.setup()
        self.warm_up()
        for name, step in (("cold", lambda: self.cold(slow=False)), ("cold-slow", lambda: self.cold(slow=True)),
                           ("warm", self.warm), ("herd", self.herd), ("rates", self.rates)):
            if name == "warm":
                # The throttled instances have done their part.
                for s in self.slow.values():
                    s.record_peak("cold-slow")
                    s.stop()
            self.cpu.start(name)
            step()
            self.cpu.stop(name)
        self.cpu.stop("run")
        stop_all()
        text = self.report()
        print(text)
        if self.args.output:
            with open(self.args.output, "w") as f:
                f.write(text + "\n")
            log(f"wrote {self.args.output}")


def main():
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: blobs of 1, 8 and 32 MiB, two runs each, 2 s load tests")
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "RESULTS.md"),
                        help="where to write the Markdown table (default bench/RESULTS.md, none with --quick)")
    parser.add_argument("--no-build", action="store_true", help="use target/registry-mirror.jar as it is")
    parser.add_argument("--jfr", metavar="FILE",
                        help="record a JFR profile (settings=profile) of registry-mirror into FILE")
    parser.add_argument("--wait-quiet", dest="wait_quiet", type=int, default=0, metavar="SECONDS",
                        help="first wait, up to SECONDS, until other processes leave the machine mostly idle")
    parser.add_argument("--noise-limit", dest="noise_limit", type=float, default=10, metavar="PERCENT",
                        help="run a measurement again (a few times at most) when other processes took more "
                             "than this share of the machine during it (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, caches)")
    parser.add_argument("--cold-runs", dest="cold_runs", type=int, help="runs per cold-pull size")
    parser.add_argument("--warm-runs", dest="warm_runs", type=int, help="warm-pull runs")
    parser.add_argument("--herd-runs", dest="herd_runs", type=int, help="runs per herd size")
    parser.add_argument("--rate-runs", dest="rate_runs", type=int, help="runs per request-rate test")
    parser.add_argument("--rate-seconds", dest="rate_seconds", type=int, help="seconds per request-rate run")
    args = parser.parse_args()
    if args.quick and args.output == parser.get_default("output"):
        args.output = ""  # a smoke run does not replace the results of a full one
    if not os.path.exists(os.path.join(ROOT, "target", "registry-mirror.jar")):
        sys.exit("bench: target/registry-mirror.jar is missing: run bench/run without --no-build")

    bench = Bench(args)

    def cleanup():
        stop_all()
        if args.keep:
            log(f"kept {bench.tmp}")
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)

    atexit.register(cleanup)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        bench.main()
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
