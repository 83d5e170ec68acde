#!/usr/bin/env python3
"""The first pulls after a start: how much slower a freshly started mirror serves its first cold
blobs than a warmed-up one, and what JVM settings buy against it.

    bench/firstpull.py [--starts 3] [--pulls 4] [--size 32] [--jar target/registry-mirror.jar]

A replica that restarts or scales up does so exactly when a rollout begins, so its first pulls
are the ones that matter. For each variant the mirror is started --starts times with an empty
cache in front of the reference registry, and pulls --pulls fresh blobs of --size MiB one after
the other (a cold pull each: the blob is new to the mirror); then, for comparison, a warmed-up
pull after 20 more. Reported: time until the mirror answers, and wall time and time to first
byte of each pull, medians over the starts.

Variants, each with conf/jvm.options:
- default: as shipped;
- appcds: with a class-data archive (-XX:SharedArchiveFile) made by the jar's own training run
  (java -XX:ArchiveClassesAtExit=FILE -jar registry-mirror.jar train), as the image build does;
- appcds-pulls: with an archive made instead by a mirror that served three real cold pulls from
  the reference registry and was stopped, to see whether the training leaves anything out;
- c1: -XX:TieredStopAtLevel=1, the quick compiler only (less to compile, slower code after).

It runs as root on Debian with docker-registry and curl installed (bench/run installs them).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from candidates import Candidates  # noqa: E402
from measurement import MiB, curl  # noqa: E402
from processes import free_ports, log, stop_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--pulls", type=int, default=4)
    p.add_argument("--size", type=int, default=32, help="MiB per blob")
    p.add_argument("--jar", default=os.path.join(ROOT, "target", "registry-mirror.jar"))
    args = p.parse_args()

    tmp = tempfile.mkdtemp(prefix="firstpull-")
    try:
        c = Candidates(tmp, os.path.join(tmp, "registry-mirror.jar"))
        shutil.copy(args.jar, c.jar)
        with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
            base = f.read().split()
        port, origin_port = free_ports(2)
        c.origin_port = {"mirror": origin_port}
        c.storage = os.path.join(tmp, "origin-storage")
        c.origins = {"direct": c.start_registry("origin", origin_port, c.storage)}
        archive = os.path.join(tmp, "registry-mirror.jsa")
        pulls_archive = os.path.join(tmp, "registry-mirror-pulls.jsa")
        variants = [("default", base), ("appcds", base + [f"-XX:SharedArchiveFile={archive}"]),
                    ("appcds-pulls", base + [f"-XX:SharedArchiveFile={pulls_archive}"]),
                    ("c1", base + ["-XX:TieredStopAtLevel=1"])]

        def start(name, options, run):
            c.jvm_options = options
            t0 = time.monotonic()
            server = c.start_mirror(f"{name}-{run}", port, c.origin_url("mirror"))
            return server, time.monotonic() - t0

        def pull(server):
            digest = c.new_blob(args.size * MiB, "cold")
            r = curl(f"{server.url}/v2/bench/data/blobs/{digest}")
            if r.code != 200 or r.size != args.size * MiB:
                raise SystemExit(f"pull answered {r.code} with {r.size} bytes")
            return r

        log("training run for the class-data archive, as the image build does")
        subprocess.run(["java", f"-XX:ArchiveClassesAtExit={archive}", "-jar", c.jar, "train"], check=True,
                       stdout=subprocess.DEVNULL)
        log("real pulls for the other class-data archive")
        server, _ = start("training", base + [f"-XX:ArchiveClassesAtExit={pulls_archive}"], 0)
        for _ in range(3):
            pull(server)
        server.stop()  # SIGTERM: the archive is written as the JVM exits
        for made in (archive, pulls_archive):
            if not os.path.exists(made):
                raise SystemExit("no class-data archive at " + made)

        results = {}
        for run in range(args.starts):
            for name, options in variants:
                log(f"{name}, start {run + 1}/{args.starts}")
                server, ready = start(name, options, run + 1)
                pulls = [pull(server) for _ in range(args.pulls)]
                for _ in range(20):
                    pull(server)
                warm = pull(server)
                server.stop()
                results.setdefault(name, []).append((ready, pulls, warm))

        print(f"\nFirst cold pulls of {args.size} MiB after a start, medians of {args.starts} starts "
              f"(wall s, time to first byte ms in brackets):\n")
        head = "| variant | start s | " + " | ".join(f"pull {i + 1}" for i in range(args.pulls)) + \
            " | after 20 more |"
        print(head)
        print("|" + "---|" * (args.pulls + 3))
        for name, _ in variants:
            rs = results[name]
            cells = [f"{statistics.median(r[0] for r in rs):.2f}"]
            for i in range(args.pulls):
                cells.append(f"{statistics.median(r[1][i].wall for r in rs):.3f} "
                             f"({statistics.median(r[1][i].ttfb for r in rs) * 1000:.0f})")
            cells.append(f"{statistics.median(r[2].wall for r in rs):.3f} "
                         f"({statistics.median(r[2].ttfb for r in rs) * 1000:.0f})")
            print(f"| {name} | " + " | ".join(cells) + " |")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
