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

# The modules beside this one hold one role each: processes, candidates, measurement, scenarios,
# report (bench/README.md, "The code").

import argparse
import atexit
import datetime
import os
import shutil
import signal
import sys
import tempfile

import startup
from candidates import ROOT, Candidates
from measurement import Measurements, wait_quiet
from processes import BenchError, log, stop_all
from report import Report, machine
from scenarios import Plan, Scenarios


class Bench:
    """One run: the plan, the servers, the samples, and the order of the scenarios."""

    def __init__(self, args):
        self.args = args
        self.plan = Plan(args)
        self.tmp = tempfile.mkdtemp(prefix="registry-mirror-bench-")
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.meas = Measurements(args.noise_limit, self.plan.redo_budget)
        self.cand = Candidates(self.tmp, os.path.join(self.tmp, "registry-mirror.jar"), args.jfr)
        self.scenarios = Scenarios(self.plan, self.cand, self.meas)

    def main(self):
        args, cpu, s = self.args, self.meas.cpu, self.scenarios
        if args.wait_quiet:
            wait_quiet(cpu, args.wait_quiet)
        machine_info = machine()
        log(f"state in {self.tmp}")
        # A copy: a build that replaces the jar during the run must not pull classes from under the JVM.
        shutil.copyfile(os.path.join(ROOT, "target", "registry-mirror.jar"), self.cand.jar)
        cpu.start("run")
        self.cand.setup()
        s.warm_up()
        for name, step in (("cold", lambda: s.cold(slow=False)), ("cold-slow", lambda: s.cold(slow=True)),
                           ("warm", s.warm), ("herd", s.herd), ("rates", s.rates)):
            if name == "warm":
                # The throttled instances have done their part.
                for server in self.cand.slow.values():
                    server.record_peak("cold-slow")
                    server.stop()
            cpu.start(name)
            step()
            cpu.stop(name)
        cpu.stop("run")
        stop_all()
        # The mirror alone, with nothing else running: how it starts on a large cache.
        scale_rows = startup.scale(self.cand.jar, self.tmp, startup.QUICK_SCALE if self.plan.quick else startup.SCALE,
                                   log)
        text = Report(self.plan, self.cand, self.meas, machine_info, self.started_at, scale_rows).text()
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text + "\n")
            log(f"wrote {args.output}")


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
