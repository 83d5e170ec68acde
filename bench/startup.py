#!/usr/bin/env python3
"""How long a restart takes on a large cache: the time until the mirror answers /v2/ and until
its index of cached blobs is complete, for a cache of N blobs (100,000 by default).

    bench/startup.py [--blobs N] [--cold] [--jar target/registry-mirror.jar]

With each start it also reads the heap in use once the index is complete, after a full GC
(jcmd, from the JDK), and the same for an empty cache: the difference over N is the heap an
indexed blob costs, for sizing -Xmx.

The blobs are small files under valid digest paths (their content is not hashed at start-up, so
their size does not matter). --cold drops the page cache before each start (root only), which is
what a node reboot looks like; otherwise the directory entries are in memory, as after a crash
and restart of the process alone. Every run starts the jar with conf/jvm.options, listening on
127.0.0.1 only; the upstream it names is never contacted.
"""

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_cache(root, blobs):
    rng = random.Random(1)
    for _ in range(blobs):
        hexdigest = "%064x" % rng.getrandbits(256)
        d = os.path.join(root, "blobs", "sha256", hexdigest[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hexdigest), "wb") as f:
            f.write(b"x" * rng.randint(1, 4096))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def heap_used_kib(pid):
    """The heap in use after a full collection, from jcmd."""
    subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True)
    out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"used (\d+)K", out).group(1))


def one_start(jar, cache, work, cold):
    if cold:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    port = free_port()
    config = os.path.join(work, "mirror.yaml")
    with open(config, "w") as f:
        f.write("listen: 127.0.0.1:%d\ncache:\n  dir: %s\n" % (port, cache))
    with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
        jvm = f.read().split()
    log_path = os.path.join(work, "mirror.log")
    log = open(log_path, "w")
    started = time.monotonic()
    proc = subprocess.Popen(["java"] + jvm + ["-jar", jar, "--config", config],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        serving = indexed = None
        index_ms = None
        deadline = started + 120
        while (serving is None or indexed is None) and time.monotonic() < deadline:
            if serving is None and answers(port):
                serving = time.monotonic() - started
            with open(log_path) as f:
                m = re.search(r"event=cache\.indexed blobs=(\d+) bytes=\d+ ms=(\d+)", f.read())
            if indexed is None and m:
                indexed = time.monotonic() - started
                index_ms = int(m.group(2))
                count = int(m.group(1))
            time.sleep(0.02)
        if serving is None or indexed is None:
            raise SystemExit("the mirror did not start in time; see " + log_path)
        return serving, indexed, index_ms, count, heap_used_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blobs", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cold", action="store_true", help="drop the page cache before each start (root)")
    p.add_argument("--jar", default=os.path.join(ROOT, "target", "registry-mirror.jar"))
    args = p.parse_args()
    if not os.path.exists(args.jar):
        raise SystemExit(args.jar + " is missing: build it with mvn package first")
    work = tempfile.mkdtemp(prefix="mirror-startup-")
    try:
        cache = os.path.join(work, "cache")
        t = time.monotonic()
        make_cache(cache, args.blobs)
        print("made a cache of %d blobs in %.1f s" % (args.blobs, time.monotonic() - t), file=sys.stderr)
        empty = os.path.join(work, "empty")
        os.makedirs(empty)
        baseline = min(one_start(args.jar, empty, work, False)[4] for _ in range(args.runs))
        print("| run | answers /v2/ after | index complete after | index read (ms, its own log) | blobs indexed "
              "| heap in use | heap per blob |")
        print("|---|---|---|---|---|---|---|")
        for run in range(1, args.runs + 1):
            serving, indexed, index_ms, count, heap = one_start(args.jar, cache, work, args.cold)
            print("| %d%s | %.2f s | %.2f s | %d | %d | %.1f MiB (%.1f MiB empty) | %d bytes |" % (
                run, " (cold)" if args.cold else "", serving, indexed, index_ms, count, heap / 1024,
                baseline / 1024, (heap - baseline) * 1024 / max(count, 1)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
