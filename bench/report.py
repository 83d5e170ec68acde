"""RESULTS.md: the figures of a run as Markdown tables, checked against the project's targets."""

import datetime
import os
import platform
import subprocess

from candidates import DIRECT, DIST, MIRROR, NGX_CACHE, NGX_STATIC, THROTTLE
from measurement import med
from scenarios import RATE_TESTS

MISSES_EXPLAINED = "README.md#what-profiling-found-cold-pull-from-the-fast-origin"  # where RESULTS.md links


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


def machine():
    """The machine and the versions of the tools, for the header of the report."""
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


class Report:
    """The text of RESULTS.md for one run."""

    def __init__(self, plan, candidates, measurements, machine_info, started_at, scale_rows):
        self.scale_rows = scale_rows
        self.plan = plan
        self.cand = candidates
        self.meas = measurements
        self.machine_info = machine_info
        self.started_at = started_at

    def text(self):
        R = self.meas.results
        lines = []
        w = lines.append
        m = self.machine_info
        end = datetime.datetime.now(datetime.timezone.utc)
        w("# registry-mirror benchmark: latest run")
        w("")
        w(f"Run {self.started_at:%Y-%m-%d %H:%M} UTC, {'`bench/run --quick` (smoke run: small blobs, few runs)' if self.plan.quick else '`bench/run`'}, "
          f"{(end - self.started_at).total_seconds() / 60:.1f} minutes.")
        w("")
        w(f"- Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, Linux {m['kernel']}; "
          f"load average at start {' '.join(m['load'])}")
        c = self.meas.cpu
        w(f"- CPU taken by other processes while the benchmark ran: {c.share('run'):.0f}% of the machine "
          f"(cold pulls {c.share('cold'):.0f}%, throttled {c.share('cold-slow'):.0f}%, "
          f"warm {c.share('warm'):.0f}%, herds {c.share('herd'):.0f}%, request rates {c.share('rates'):.0f}%; "
          f"about 0 on a quiet machine). A run during which they took more than {self.meas.noise_limit:.0f}% "
          f"was measured again, up to twice: "
          + (f"{len(self.meas.redone)} runs were ({', '.join(self.meas.redone)})." if self.meas.redone else "none was."))
        kept = [v for k, vs in self.meas.results.items() if k[0] == "others" for v in vs]
        if kept:
            noisy = sum(1 for v in kept if v > self.meas.noise_limit)
            w(f"- Runs kept: {len(kept)}; {noisy} of them still with more than {self.meas.noise_limit:.0f}% "
              f"taken by others (worst {max(kept):.0f}%)")
        w(f"- Software: {m['java']}; {m['nginx']}; docker-registry {m['registry'].split()[-1]}; "
          f"{' '.join(m['curl'].split()[:2])}; {m['wrk'].split(' [')[0]}; hey {m['hey']}")
        w(f"- registry-mirror runs with `conf/jvm.options`: `{' '.join(self.cand.jvm_options)}`")
        w(f"- Runs: cold pulls {self.plan.cold_runs} per size, throttled {self.plan.slow_runs}, warm pulls {self.plan.warm_runs}, "
          f"herds {self.plan.herd_runs} per size of herd, request rates {self.plan.rate_runs} × {self.plan.rate_seconds} s "
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
          "Origin GETs are the GET requests for that blob in the origin's access log. "
          "CPU per pull is the candidate's user and system time from the request until it is idle again "
          "(dist-proxy's includes the second GET it stores the blob from, after its client is served): "
          "on 2 cores shared by origin, candidate and client, CPU seconds are steadier than wall time.")
        w("")
        for size in self.plan.cold_sizes:
            self.cold_table(w, "cold", size, names)
        w(f"## b) Cold pull, throttled origin (nginx `limit_rate {THROTTLE}` in front of the origin, about 67 MiB/s)")
        w("")
        self.cold_table(w, "cold-slow", self.plan.slow_size, names)

        # ---- warm
        w(f"## c) Warm pull (cache hit), {self.plan.warm_size} MiB blob")
        w("")
        w("| candidate | wall s | GiB/s | TTFB ms | throughput ÷ nginx-static | registry-mirror's throughput ÷ this |")
        w("|---|---|---|---|---|---|")
        for n in [NGX_STATIC, DIST, NGX_CACHE, MIRROR]:
            ps = R.get(("warm", n), [])
            rel_static = self.meas.ratio_per_run(("warm", NGX_STATIC), ("warm", n))
            rel_mirror = self.meas.ratio_per_run(("warm", n), ("warm", MIRROR)) if n != MIRROR else []
            w(f"| {n} | {fmt_range([p.wall for p in ps])} | "
              f"{fmt_num(med([self.plan.warm_size / 1024 / p.wall for p in ps]), 2)} | "
              f"{fmt_range([p.ttfb for p in ps], 1, 1000)} | {fmt_ratio(rel_static) if n != NGX_STATIC else '1.00×'} | "
              f"{fmt_ratio(rel_mirror) if n != MIRROR else ''} |")
        w("")

        # ---- herd
        w(f"## d) Thundering herd: N clients ask for the same cold {self.plan.herd_size} MiB blob at once")
        w("")
        w("N curl processes start together on a blob none of the candidates holds (a fresh one per run); "
          "every client's body is checked against the digest. The floor is nginx-static serving the same "
          "blob from disk; `registry-mirror (warm)` is the same herd again once the mirror holds the blob.")
        w("")
        w("| N | candidate | wall s (all done) | wall ÷ floor | slowest TTFB ms | median TTFB ms | origin GETs | sha256 ok |")
        w("|---|---|---|---|---|---|---|---|")
        for n_clients in self.plan.herd_ns:
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
        for title, kind in RATE_TESTS:
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
        for title, kind in RATE_TESTS:
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
                server = self.cand.slow.get(n) if s == "cold-slow" else self.cand.fast.get(n)
                if s == "idle" and n in self.cand.slow:
                    v = max(self.cand.fast[n].peaks.get("idle", 0), self.cand.slow[n].peaks.get("idle", 0))
                else:
                    v = server.peaks.get(s) if server else None
                if v:
                    cells.append(f"{v / 1024:.0f}")
                    peak = max(peak, v)
                else:
                    cells.append("–")
            w(f"| {n} | " + " | ".join(cells) + f" | {peak / 1024:.0f} |")
        w("")
        w("## g) Start on a large cache, and the heap it takes")
        w("")
        w("registry-mirror alone, after the other scenarios, started with `conf/jvm.options` (or the `-Xmx` given) "
          "on a cache of small blob files and tag records (`bench/startup.py`): when it answers `/v2/`, when its "
          "index and tags are read (it serves meanwhile), and the heap in use then, after a full GC, against an "
          "empty cache. The README's \"Sizing the JVM\" is drawn from these.")
        w("")
        w("| cache on disk | -Xmx | answers /v2/ after | index and tags read after | heap in use (empty cache) "
          "| heap per blob or tag |")
        w("|---|---|---|---|---|---|")
        for r in self.scale_rows:
            w(f"| {r['what']} | {r['xmx']} | {r['serving']:.2f} s | {r['indexed']:.2f} s "
              f"| {r['heap_mib']:.1f} MiB ({r['empty_mib']:.1f} MiB) | {r['per_entry']:.0f} bytes |")
        w("")
        bad = [(what, ok, total) for what, ok, total in self.meas.checks if ok != total]
        w(f"Content checks: {sum(c[1] for c in self.meas.checks)}/{sum(c[2] for c in self.meas.checks)} "
          f"bodies matched their digest" + ("" if not bad else f"; failures: {bad}") + ".")
        w("")
        return "\n".join(lines)


    def cold_table(self, w, label, size, names):
        R = self.meas.results
        w(f"### {size} MiB" if label == "cold" else f"### {size} MiB, throttled")
        w("")
        w("| candidate | wall s | MiB/s | TTFB ms | CPU s per pull | origin GETs (HEADs) | wall ÷ origin direct | registry-mirror's throughput ÷ this |")
        w("|---|---|---|---|---|---|---|---|")
        for n in names:
            ps = R.get((label, size, n), [])
            cpu = R.get(("cpu", label, size, n), [])
            gets = R.get(("origin-gets", label, size, n), [])
            heads = R.get(("origin-heads", label, size, n), [])
            direct = self.meas.ratio_per_run((label, size, n), (label, size, DIRECT))
            mirror = self.meas.ratio_per_run((label, size, n), (label, size, MIRROR))
            w(f"| {n} | {fmt_range([p.wall for p in ps])} | {fmt_num(med([size / p.wall for p in ps]), 0)} | "
              f"{fmt_range([p.ttfb for p in ps], 1, 1000)} | {fmt_range(cpu, 2) if cpu else '–'} | "
              f"{fmt_counts(gets)} ({fmt_counts(heads)}) | "
              f"{fmt_ratio(direct) if n != DIRECT else '1.00×'} | {fmt_ratio(mirror) if n != MIRROR else ''} |")
        w("")


    def targets(self):
        R = self.meas.results
        out = []
        big = self.plan.cold_sizes[-1]
        warm = self.meas.ratio_per_run(("warm", NGX_STATIC), ("warm", MIRROR))
        out.append((f"warm {self.plan.warm_size} MiB blob throughput ≥ 0.9× nginx-static", fmt_ratio(warm), med(warm) >= 0.9))
        cold = self.meas.ratio_per_run(("cold", big, DIST), ("cold", big, MIRROR))
        gets = R.get(("origin-gets", "cold", big, MIRROR), [])
        out.append((f"cold {big} MiB, fast origin: throughput ≥ 1.0× dist-proxy",
                    fmt_ratio(cold) + f" (mirror {fmt_num(med([big / p.wall for p in R.get(('cold', big, MIRROR), [])]), 0)} MiB/s, "
                    f"dist-proxy {fmt_num(med([big / p.wall for p in R.get(('cold', big, DIST), [])]), 0)} MiB/s; "
                    f"CPU per pull {fmt_num(med(R.get(('cpu', 'cold', big, MIRROR), [])), 2)} s against "
                    f"{fmt_num(med(R.get(('cpu', 'cold', big, DIST), [])), 2)} s)",
                    med(cold) >= 1.0))
        out.append((f"cold {big} MiB: exactly one origin GET", f"{fmt_counts(gets)} (dist-proxy "
                    f"{fmt_counts(R.get(('origin-gets', 'cold', big, DIST), []))})", bool(gets) and set(gets) == {1}))
        slow = self.meas.ratio_per_run(("cold-slow", self.plan.slow_size, MIRROR), ("cold-slow", self.plan.slow_size, DIRECT))
        out.append((f"cold {self.plan.slow_size} MiB, throttled origin: ≤ 1.02× the origin's own time", fmt_ratio(slow),
                    med(slow) <= 1.02))
        n = max(self.plan.herd_ns)
        rs = R.get(("herd", n, MIRROR), [])
        floor = R.get(("herd", n, NGX_STATIC), [])
        hg = R.get(("origin-gets", "herd", n, MIRROR), [])
        out.append((f"herd of {n}: exactly one origin GET", fmt_counts(hg), bool(hg) and set(hg) == {1}))
        ttfb = [x["ttfb_max"] * 1000 for x in rs]
        out.append((f"herd of {n}: slowest TTFB ≤ 100 ms", fmt_range(ttfb, 0) + " ms", med(ttfb) <= 100))
        hw = [x["wall"] / f["wall"] for x, f in zip(rs, floor)]
        out.append((f"herd of {n}: wall ≤ 1.2× the floor (nginx-static, blob on disk)", fmt_ratio(hw), med(hw) <= 1.2))
        for title, kind in RATE_TESTS[:3]:
            a = [x["rps"] for x in R.get(("rate", kind, MIRROR), [])]
            b = [x["rps"] for x in R.get(("rate", kind, NGX_STATIC), [])]
            c = [x["rps"] for x in R.get(("rate", kind, DIST), [])]
            r = [x / y for x, y in zip(a, b)]
            out.append((f"{title}{' within its TTL' if kind == 'tag' else ''}: ≥ 0.8× nginx-static's rate",
                        f"{fmt_ratio(r)} ({fmt_num(med(a), 0)} vs {fmt_num(med(b), 0)} req/s; "
                        f"{fmt_num(med(a) / med(c), 1) if c else '–'}× dist-proxy)", med(r) >= 0.8))
        mirror = [self.cand.fast[MIRROR], self.cand.slow[MIRROR]]
        peaks = [v for s in mirror for k, v in s.peaks.items()]
        worst = max(peaks) / 1024 if peaks else float("nan")
        out.append(("peak RSS ≤ 300 MiB in every scenario", f"{worst:.0f} MiB at most", worst <= 300))
        return out

