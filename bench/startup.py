#!/usr/bin/env python3
"""How long a restart takes on a large cache: the time until the mirror answers /v2/ and until
its index of cached blobs is complete, for a cache of N blobs (100,000 by default) and T tracked
tags (none by default).

    bench/startup.py [--blobs N] [--tags T] [--moves M] [--xmx SIZE] [--cold] [--jar JAR]

With each start it also reads the heap in use once the index and the tags are loaded, after a
full GC (jcmd, from the JDK), and the same for an empty cache: the difference over N + T is the
heap an indexed blob or a tracked tag costs (run with --blobs 0 --tags T for tags alone), for
sizing -Xmx. --xmx replaces the heap size of conf/jvm.options, for caches whose index needs more.

Each tag record is what a pull leaves: a tag of one of 1,000 repositories, its manifest's
descriptor and times, and --moves moves in its history (1 by default).

The blobs are small files under valid digest paths (their content is not hashed at start-up, so
their size does not matter). --cold drops the page cache before each start (root only), which is
what a node reboot looks like; otherwise the directory entries are in memory, as after a crash
and restart of the process alone. Every run starts the jar with conf/jvm.options, listening on
127.0.0.1 only; its one upstream is a closed port on loopback, so a tag it revalidates fails
at once and nothing leaves the machine.
"""

import argparse
import json
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


def make_tags(root, tags, moves=1):
    rng = random.Random(2)
    for i in range(tags):
        d = os.path.join(root, "tags", "bench", "team/app%d" % (i % 1000), "_tags")
        os.makedirs(d, exist_ok=True)
        digests = ["sha256:%064x" % rng.getrandbits(256) for _ in range(moves + 1)]
        record = {
            "digest": digests[-1], "mediaType": "application/vnd.oci.image.index.v1+json", "size": 1609,
            "accept": "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json",
            "firstSeen": "2026-11-01T10:00:00Z", "lastChecked": "2026-12-01T10:00:00Z",
            "lastChanged": "2026-11-20T10:00:00Z", "lastPulled": "2026-12-01T09:00:00Z", "pinned": None,
            "history": [{"at": "2026-11-20T10:00:00Z", "from": digests[m], "to": digests[m + 1], "seen": "refresh"}
                        for m in range(moves)],
        }
        with open(os.path.join(d, "v%d.%d" % (i // 1000, i % 7)), "w") as f:
            json.dump(record, f)


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


def one_start(jar, cache, work, cold, xmx, tags):
    if cold:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    port = free_port()
    config = os.path.join(work, "mirror.yaml")
    with open(config, "w") as f:
        f.write("listen: 127.0.0.1:%d\ncache:\n  dir: %s\nupstreams:\n  bench:\n    url: http://127.0.0.1:1\n"
                "    default: true\n    allowPrivateHosts: [127.0.0.1]\ntags:\n  maxTracked: %d\n"
                % (port, cache, max(tags, 100_000)))
    with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
        jvm = f.read().split()
    if xmx:
        jvm = [o for o in jvm if not o.startswith("-Xmx")] + ["-Xmx" + xmx]
    log_path = os.path.join(work, "mirror.log")
    log = open(log_path, "w")
    started = time.monotonic()
    proc = subprocess.Popen(["java"] + jvm + ["-jar", jar, "--config", config],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        serving = indexed = None
        index_ms = None
        deadline = started + 600
        while (serving is None or indexed is None) and time.monotonic() < deadline:
            if serving is None and answers(port):
                serving = time.monotonic() - started
            with open(log_path) as f:
                text = f.read()
            m = re.search(r"event=cache\.indexed blobs=(\d+) bytes=\d+ ms=(\d+)", text)
            t = re.search(r"event=tags\.loaded tags=(\d+)", text)
            if indexed is None and m and t:
                indexed = time.monotonic() - started
                index_ms = int(m.group(2))
                count = int(m.group(1))
                tracked = int(t.group(1))
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        if serving is None or indexed is None:
            raise SystemExit("the mirror did not start in time; see " + log_path)
        return serving, indexed, index_ms, count, tracked, heap_used_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        log.close()


# The caches bench/run starts on, for its report: (what, blobs, tags, moves per tag, -Xmx).
SCALE = [("100,000 blobs", 100_000, 0, 0, None),
         ("1,000,000 blobs", 1_000_000, 0, 0, "512m"),
         ("20,000 tags of 10 moves (the defaults' most)", 0, 20_000, 10, None)]
QUICK_SCALE = [("10,000 blobs", 10_000, 0, 0, None), ("2,000 tags of 10 moves", 0, 2_000, 10, None)]


def scale(jar, work, caches, progress=lambda _: None):
    """One start on each cache of `caches` (SCALE's form), and one on an empty cache for the
    baseline heap: a row of figures each, for bench/run's report."""
    empty = os.path.join(work, "scale-empty")
    os.makedirs(empty, exist_ok=True)
    rows = []
    for what, blobs, tags, moves, xmx in caches:
        progress(f"scale: making a cache of {what}")
        cache = os.path.join(work, "scale-cache")
        make_cache(cache, blobs)
        make_tags(cache, tags, moves)
        progress(f"scale: starting on {what}")
        baseline = one_start(jar, empty, work, False, xmx, 0)[5]
        serving, indexed, index_ms, count, tracked, heap = one_start(jar, cache, work, False, xmx, tags)
        shutil.rmtree(cache)
        with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
            shipped = next((o[4:] for o in f.read().split() if o.startswith("-Xmx")), "the JVM's default")
        rows.append({"what": what, "xmx": xmx or shipped, "serving": serving, "indexed": indexed, "entries": count + tracked,
                     "heap_mib": heap / 1024, "empty_mib": baseline / 1024,
                     "per_entry": (heap - baseline) * 1024 / max(count + tracked, 1)})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blobs", type=int, default=100_000)
    p.add_argument("--tags", type=int, default=0)
    p.add_argument("--moves", type=int, default=1, help="moves in each tag's history")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--xmx", help="heap size instead of conf/jvm.options' (e.g. 512m)")
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
        make_tags(cache, args.tags, args.moves)
        print("made a cache of %d blobs and %d tags in %.1f s" % (args.blobs, args.tags, time.monotonic() - t),
              file=sys.stderr)
        empty = os.path.join(work, "empty")
        os.makedirs(empty)
        baseline = min(one_start(args.jar, empty, work, False, args.xmx, 0)[5] for _ in range(args.runs))
        print("| run | answers /v2/ after | index and tags complete after | index read (ms, its own log) "
              "| blobs indexed | tags loaded | heap in use | heap per blob or tag |")
        print("|---|---|---|---|---|---|---|---|")
        for run in range(1, args.runs + 1):
            serving, indexed, index_ms, count, tracked, heap = one_start(
                args.jar, cache, work, args.cold, args.xmx, args.tags)
            print("| %d%s | %.2f s | %.2f s | %d | %d | %d | %.1f MiB (%.1f MiB empty) | %d bytes |" % (
                run, " (cold)" if args.cold else "", serving, indexed, index_ms, count, tracked, heap / 1024,
                baseline / 1024, (heap - baseline) * 1024 / max(count + tracked, 1)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
