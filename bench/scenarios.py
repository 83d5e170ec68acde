"""The scenarios, in the order they run: warm-up, cold pulls from the fast and the throttled origin,
warm pulls, thundering herds and request rates. Each runs the candidates side by side, in an order
that rotates from run to run, and adds its samples to the run's Measurements."""

import os
import time

from candidates import ACCEPT, DIRECT, DIST, MIRROR, NGX_CACHE, NGX_STATIC, ORIGIN_OF, REPO, TAG
from measurement import MiB, Pull, curl, curl_herd, dirty_mib, hey, med, settle, sha256_file, wrk
from processes import BenchError, cpu_ticks, log

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Each setting as (smoke run, full run).
SETTINGS = {
    "cold_sizes": ([1, 8, 32], [1, 32, 256]),  # MiB
    "slow_size": (32, 256),
    "herd_size": (8, 32),
    "herd_ns": ([8, 32], [8, 32]),
    "cold_runs": (2, 5),
    "slow_runs": (2, 5),
    "warm_runs": (6, 20),
    "herd_runs": (2, 4),
    "rate_runs": (1, 3),
    "rate_seconds": (2, 5),
    "rate_warmup": (1, 2),
    # (blobs, MiB each). A JVM keeps compiling through its first two gigabytes or so of cold
    # traffic; the others do not need it, but get the same.
    "warmup_fast": ((3, 8), (8, 256)),
    "warmup_slow": ((2, 8), (4, 64)),
    "redo_budget": (4, 16),  # runs measured again at most, when others took the machine
}

RATE_TESTS = [
    ("GET manifest by digest", "digest"),
    ("GET manifest by tag", "tag"),
    ("HEAD 1 MiB blob", "head"),
    ("GET 1 MiB blob", "blob"),
]


class Plan:
    """How big and how many: the full run's or the smoke run's settings, with the counts given on
    the command line instead."""

    def __init__(self, args):
        self.quick = args.quick
        for name, (quick, full) in SETTINGS.items():
            setattr(self, name, quick if self.quick else full)
        for name in ("cold_runs", "slow_runs", "warm_runs", "herd_runs", "rate_runs", "rate_seconds"):
            value = getattr(args, name, None)
            if value:
                setattr(self, name, value)
        self.warm_size = self.cold_sizes[-1]


def rotate(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def reset_peaks(servers):
    for s in servers:
        s.reset_peak()


def record_peaks(servers, scenario):
    for s in servers:
        s.record_peak(scenario)


class Scenarios:
    """Runs each scenario against the candidates and adds its samples and content checks to the
    measurements."""

    def __init__(self, plan, candidates, measurements):
        self.plan = plan
        self.cand = candidates
        self.meas = measurements

    def check_pull(self, what, p, size):
        if p.code != 200 or p.size != size:
            raise BenchError(f"{what}: HTTP {p.code}, {p.size} bytes, expected 200 and {size}")

    def verify(self, what, url, digest, size, headers=()):
        out = os.path.join(self.cand.tmp, "verify.out")
        p = curl(url, out=out, headers=headers)
        ok = p.code == 200 and p.size == size and sha256_file(out) == digest
        os.unlink(out)
        self.meas.checks.append((what, int(ok), 1))
        if not ok:
            raise BenchError(f"{what}: wrong content from {url} (HTTP {p.code}, {p.size} bytes)")

    def count_origin(self, scenario, param, n, digest):
        """Origin GETs and HEADs of a blob so far, from the access log of the candidate's own origin process.
        Called once the servers have settled: the origin logs a request when it has completed."""
        time.sleep(0.1)
        origin = ORIGIN_OF[n]
        return [(("origin-gets", scenario, param, n), self.cand.origin_requests(origin, digest, "GET")),
                (("origin-heads", scenario, param, n), self.cand.origin_requests(origin, digest, "HEAD"))]

    # ---- scenarios -----------------------------------------------------------------------

    def warm_up(self):
        """Untimed: every candidate serves a few cold and warm blobs and a short burst of small requests,
        so that no candidate is measured while its code is still being compiled or its pools filled."""
        c, plan = self.cand, self.plan
        for slow in (False, True):
            names = [DIST, NGX_CACHE, MIRROR]
            count, size = plan.warmup_slow if slow else plan.warmup_fast
            for i in range(count):
                log(f"warm-up{', throttled origin' if slow else ''}: {size} MiB blob {i + 1}/{count}")
                d = c.new_blob(size * MiB, "warmup")
                for n in names:
                    url = c.blob_url(n, d, slow)
                    self.check_pull(f"warm-up {n}", curl(url), size * MiB)
                    for _ in range(2):
                        self.check_pull(f"warm-up {n}", curl(url), size * MiB)
                    curl(url, method="HEAD")
        log("warm-up: small requests")
        for n in (DIRECT, DIST, NGX_CACHE, NGX_STATIC, MIRROR):
            base = c.target(n)
            for kind, ref in (("manifests", c.manifest_digest), ("manifests", TAG)):
                self.verify(f"{n} manifest {ref[:15]}", f"{base}/v2/{REPO}/{kind}/{ref}", c.manifest_digest,
                            len(c.manifest), headers=[ACCEPT])
            self.verify(f"{n} 1 MiB blob", c.blob_url(n, c.small_blob), c.small_blob, MiB)
            head = curl(c.blob_url(n, c.small_blob), method="HEAD")
            if head.code != 200:
                raise BenchError(f"{n}: HEAD of a cached blob answered {head.code}")
            wrk(f"{base}/v2/{REPO}/manifests/{c.manifest_digest}", plan.rate_warmup, [ACCEPT])
            wrk(f"{base}/v2/{REPO}/manifests/{TAG}", plan.rate_warmup, [ACCEPT])
            hey(c.blob_url(n, c.small_blob), plan.rate_warmup)
            wrk(c.blob_url(n, c.small_blob), plan.rate_warmup)
        settle(c.all_servers(), sync=True)

    def cold(self, slow):
        c, plan = self.cand, self.plan
        label = "cold-slow" if slow else "cold"
        sizes = [plan.slow_size] if slow else plan.cold_sizes
        runs = plan.slow_runs if slow else plan.cold_runs
        names = [DIRECT, DIST, NGX_CACHE, MIRROR]
        servers = c.servers_for(names, slow)
        reset_peaks(servers)
        for r in range(runs):
            for size in sizes:
                def one_run(r=r, size=size):
                    pairs = []
                    digest = c.new_blob(size * MiB, label)
                    if not slow and size == plan.warm_size:
                        self.warm_blob = digest
                    settle(c.all_servers(), sync=True)
                    for n in rotate(names, r):
                        log(f"{label} {size} MiB run {r + 1}/{runs}: {n} ({dirty_mib()} MiB of dirty pages)")
                        # CPU per pull: the candidate's user and system time from the request until
                        # it is idle again, so that work left for after the response (dist-proxy
                        # stores the blob from a second GET) counts too.
                        pids = [pid for s in c.servers_for([n], slow) for pid in s.pids()]
                        ticks = cpu_ticks(pids)
                        p = curl(c.blob_url(n, digest, slow))
                        self.check_pull(f"{label} {n}", p, size * MiB)
                        pairs.append(((label, size, n), p))
                        settle(c.all_servers(), sync=True)
                        if pids:
                            pairs.append((("cpu", label, size, n), (cpu_ticks(pids) - ticks) / CLK_TCK))
                        pairs += self.count_origin(label, size, n, digest)
                    return pairs
                self.meas.gated(f"{label} {size} MiB run {r + 1}", one_run)
        record_peaks(servers, label)

    def warm(self):
        c, plan = self.cand, self.plan
        names = [NGX_STATIC, DIST, NGX_CACHE, MIRROR]
        servers = c.servers_for(names)
        size = plan.warm_size * MiB
        for n in names:
            self.verify(f"{n} warm {plan.warm_size} MiB", c.blob_url(n, self.warm_blob), self.warm_blob, size)
        reset_peaks(servers)
        settle(c.all_servers(), sync=True)
        for r in range(plan.warm_runs):
            def one_run(r=r):
                log(f"warm {plan.warm_size} MiB run {r + 1}/{plan.warm_runs}")
                pairs = []
                for n in rotate(names, r):
                    p = curl(c.blob_url(n, self.warm_blob))
                    self.check_pull(f"warm {n}", p, size)
                    pairs.append((("warm", n), p))
                    settle(c.all_servers())
                return pairs
            self.meas.gated(f"warm run {r + 1}", one_run)
        record_peaks(servers, "warm")

    def herd_once(self, url, n, digest, size, what):
        outdir = os.path.join(self.cand.tmp, "herd")
        os.makedirs(outdir, exist_ok=True)
        wall, outs = curl_herd(url, n, outdir)
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
        self.meas.checks.append((what, ok, n))
        return {"wall": wall, "ttfb_max": max((p.ttfb for p in pulls), default=float("nan")),
                "ttfb_med": med([p.ttfb for p in pulls]), "ok": ok, "n": n}

    def herd(self):
        c, plan = self.cand, self.plan
        names = [DIRECT, DIST, NGX_CACHE, MIRROR]
        servers = c.servers_for(names + [NGX_STATIC])
        size = plan.herd_size * MiB
        reset_peaks(servers)
        for r in range(plan.herd_runs):
            for n_clients in plan.herd_ns:
                def one_run(r=r, n_clients=n_clients):
                    pairs = []
                    digest = c.new_blob(size, "herd")
                    settle(c.all_servers(), sync=True)
                    for n in rotate(names + [NGX_STATIC], r):
                        log(f"herd of {n_clients} on {plan.herd_size} MiB run {r + 1}/{plan.herd_runs}: {n}")
                        res = self.herd_once(c.blob_url(n, digest), n_clients, digest, size,
                                             f"herd {n_clients} {n}")
                        pairs.append((("herd", n_clients, n), res))
                        settle(c.all_servers(), sync=True)
                        if n != NGX_STATIC:
                            pairs += self.count_origin("herd", n_clients, n, digest)
                    # The same herd again on the blob the mirror now holds: its warm herd.
                    res = self.herd_once(c.blob_url(MIRROR, digest), n_clients, digest, size,
                                         f"herd {n_clients} {MIRROR} warm")
                    pairs.append((("herd", n_clients, MIRROR + " (warm)"), res))
                    settle(c.all_servers(), sync=True)
                    return pairs
                self.meas.gated(f"herd of {n_clients} run {r + 1}", one_run)
        record_peaks(servers, "herd")

    def rates(self):
        names = [DIRECT, DIST, NGX_CACHE, NGX_STATIC, MIRROR]
        for title, kind in RATE_TESTS:
            scenario = "1 MiB GETs" if kind == "blob" else "small requests"
            for r in range(self.plan.rate_runs):
                self.meas.gated(f"{title} run {r + 1}", lambda r=r, title=title, kind=kind, scenario=scenario:
                             self.rate_run(r, title, kind, scenario, names))

    def rate_run(self, r, title, kind, scenario, names):
        c, seconds = self.cand, self.plan.rate_seconds
        pairs = []
        for n in rotate(names, r):
            log(f"{title} run {r + 1}/{self.plan.rate_runs}: {n}")
            base = c.target(n)
            server = c.origins["direct"] if n == DIRECT else c.fast[n]
            origin = ORIGIN_OF.get(n)
            before = c.origin_requests(origin) if origin else 0
            settle(c.all_servers())
            server.reset_peak()
            if kind == "digest":
                res = wrk(f"{base}/v2/{REPO}/manifests/{c.manifest_digest}", seconds, [ACCEPT])
            elif kind == "tag":
                res = wrk(f"{base}/v2/{REPO}/manifests/{TAG}", seconds, [ACCEPT])
            elif kind == "head":
                res = hey(c.blob_url(n, c.small_blob), seconds)
            else:
                res = wrk(c.blob_url(n, c.small_blob), seconds)
            if n != DIRECT:
                server.record_peak(scenario)
            time.sleep(0.3)  # the origin logs a request once it has completed
            if origin and n != DIRECT:
                res["origin"] = (c.origin_requests(origin) - before) / max(res["requests"], 1)
            pairs.append((("rate", kind, n), res))
        return pairs
