#!/usr/bin/env python3
"""What a blob costs each replica of a cluster, per GiB, on this machine: the figures that
docs/scaling.md and bench/cluster_sim.py compute a rollout from.

    bench/cluster.py [--size MiB] [--warm N] [--runs N] [--jar JAR] [--json FILE]

Two replicas of the jar (conf/jvm.options) form a cluster on loopback in front of an origin that
serves blobs from a file (a small HTTP server of this script's, so that the origin's CPU is not
the mirror's); curl is the client. For a fresh random blob of --size MiB (256 by default) it
measures the user + system CPU seconds of each replica, and the wall time, of:

  cold, at the owner       a client asks the blob's owner: the owner fills from upstream
  cold, at the owner,      four clients at once: one fill, sent four times as it arrives (with
    4 clients              the one-client case, what sending from a fill costs apart)
  cold, at the other       a client asks the other replica: it fills from the owner, which
                           fills from upstream (both replicas' CPU)
  warm, at the owner       the owner holds the blob: sendfile (--warm pulls, 5 by default)
  copy, at the other       the other fetched it from the owner a moment ago: its copy lingers,
                           and is sent as a cached file

Each is run --runs times (3), on fresh blobs, and the median run (by both replicas' CPU) is
reported: on a machine of 2 cores that clients, origin and both replicas share, single runs vary
by half. Every body is checked against its digest; the origin's GETs are counted (one per
blob). Prints a table and, with --json FILE, writes the figures.
"""

import argparse
import hashlib
import http.server
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from processes import Server, cpu_ticks, free_ports, stop_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
GIB = 1024 ** 3
PATHS = ("cold, at the owner", "cold, at the owner, 4 clients", "cold, at the other", "warm, at the owner",
         "copy, at the other")


def rendezvous(replicas, digest):
    """registry-mirror's owner of a digest (cluster/Rendezvous.java)."""
    mask = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & mask
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & mask
        return z ^ (z >> 31)

    def fnv(name):
        h = 0xcbf29ce484222325
        for c in name:
            h = ((h ^ ord(c)) * 0x100000001b3) & mask
        return h

    key = int(digest.split(":")[1][:16], 16)
    return max(sorted(replicas), key=lambda r: (mix(key ^ mix(fnv(r))), [-ord(c) for c in r]))


class Origin(http.server.ThreadingHTTPServer):
    """Serves each registered blob at /v2/<any name>/blobs/<digest>, counting GETs."""

    daemon_threads = True

    def __init__(self, port):
        self.blobs = {}
        self.gets = {}
        super().__init__(("127.0.0.1", port), OriginHandler)


class OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(False)

    def do_GET(self):
        self.answer(True)

    def answer(self, body):
        if self.path.rstrip("/") == "/v2":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        digest = self.path.split("/blobs/")[-1].split("?")[0]
        path = self.server.blobs.get(digest)
        if path is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if body:
            self.server.gets[digest] = self.server.gets.get(digest, 0) + 1
            with open(path, "rb") as f:
                self.wfile.flush()
                os.sendfile(self.connection.fileno(), f.fileno(), 0, size)


def make_blob(dirname, mib):
    path = os.path.join(dirname, "blob-%d" % random.getrandbits(32))
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(mib):
            chunk = random.randbytes(1024 * 1024)
            sha.update(chunk)
            f.write(chunk)
    return path, "sha256:" + sha.hexdigest()


def pull(url, digest):
    """The wall time of curl piping into sha256sum; fails unless the body hashes to the digest
    (which covers its length)."""
    started = time.monotonic()
    out = subprocess.run(["bash", "-o", "pipefail", "-c", f"curl -sf '{url}' | sha256sum"],
                         stdout=subprocess.PIPE, check=True, text=True)
    wall = time.monotonic() - started
    got = "sha256:" + out.stdout.split()[0]
    if got != digest:
        raise SystemExit(f"{url}: wrong body (hashed to {got})")
    return wall


def settle(replicas, quiet=0.3, timeout=10):
    """Waits until the replicas use no CPU for `quiet` seconds: a fill's tail work, a write-out."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks([p for r in replicas for p in r.pids()])
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_ticks([p for r in replicas for p in r.pids()])
        if now - last <= 1:
            return
        last = now


def measure(replicas, action):
    settle(replicas)
    before = [cpu_ticks(r.pids()) for r in replicas]
    wall = action()
    settle(replicas)
    after = [cpu_ticks(r.pids()) for r in replicas]
    return wall, [(a - b) / TICK for a, b in zip(after, before)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB per blob")
    parser.add_argument("--warm", type=int, default=5, help="warm pulls at each replica")
    parser.add_argument("--runs", type=int, default=3, help="runs of the four; the median is reported")
    parser.add_argument("--jar", default=os.path.join(ROOT, "target", "registry-mirror.jar"))
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="cluster-bench-")
    origin_port, *ports = free_ports(7)
    http_ports, member_ports, bus_ports = ports[0:2], ports[2:4], ports[4:6]
    origin = Origin(origin_port)
    threading.Thread(target=origin.serve_forever, daemon=True).start()

    jvm = open(os.path.join(ROOT, "conf", "jvm.options")).read().split("#")[0].split()
    members = ", ".join("127.0.0.1:%d" % p for p in member_ports)
    replicas = []
    try:
        for i in range(2):
            d = os.path.join(work, "replica-%d" % i)
            os.makedirs(d)
            with open(os.path.join(d, "mirror.yaml"), "w") as f:
                f.write(f"""listen: 127.0.0.1:{http_ports[i]}
cache:
  dir: {d}/cache
upstreams:
  local:
    url: http://127.0.0.1:{origin_port}
    default: true
cluster:
  port: {member_ports[i]}
  busPort: {bus_ports[i]}
  members: [{members}]
  advertise: 127.0.0.1:{http_ports[i]}
log:
  access: false
""")
            replicas.append(Server("replica-%d" % i, ["java", *jvm, "-jar", args.jar, "--config", "mirror.yaml"], d,
                                   f"http://127.0.0.1:{http_ports[i]}/v2/"))
        for r in replicas:
            r.start(timeout=90)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            texts = [urllib.request.urlopen(r.ready_url.replace("/v2/", "/metrics")).read().decode() for r in replicas]
            if all("mirror_cluster_replicas 2.0" in t for t in texts):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the replicas did not see each other")

        advertised = ["127.0.0.1:%d" % p for p in http_ports]
        size = args.size * 1024 * 1024

        def blob_owned_by(index):
            while True:
                path, digest = make_blob(work, args.size)
                if rendezvous(advertised, digest) == advertised[index]:
                    origin.blobs[digest] = path
                    return digest
                os.remove(path)

        def url(index, digest):
            return f"http://{advertised[index]}/v2/bench/blobs/{digest}"

        # Warm-up of both JVMs' fill and relay paths, not measured.
        for index in (0, 1):
            d = blob_owned_by(index)
            pull(url(1 - index, d), d)
            pull(url(index, d), d)

        def together(index, digest, clients):
            """`clients` pulls of one blob at once; the wall time of the slowest."""
            threads = [threading.Thread(target=pull, args=(url(index, digest), digest)) for _ in range(clients)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.monotonic() - started

        runs = {name: [] for name in PATHS}
        blobs = []
        for _ in range(args.runs):
            owner_blob = blob_owned_by(0)
            runs["cold, at the owner"].append(measure(replicas, lambda: pull(url(0, owner_blob), owner_blob)))
            herd_blob = blob_owned_by(0)
            runs["cold, at the owner, 4 clients"].append(measure(replicas, lambda: together(0, herd_blob, 4)))
            other_blob = blob_owned_by(0)
            runs["cold, at the other"].append(measure(replicas, lambda: pull(url(1, other_blob), other_blob)))
            runs["warm, at the owner"].append(measure(
                replicas, lambda: sum(pull(url(0, owner_blob), owner_blob) for _ in range(args.warm))))
            # The other fetches the blob from the owner once (not measured); its copy then lingers.
            pull(url(1, owner_blob), owner_blob)
            runs["copy, at the other"].append(measure(
                replicas, lambda: sum(pull(url(1, owner_blob), owner_blob) for _ in range(args.warm))))
            blobs += [owner_blob, herd_blob, other_blob]
        # The median run of each path, by the CPU of both replicas together.
        results = {name: sorted(r, key=lambda m: sum(m[1]))[len(r) // 2] for name, r in runs.items()}
        gets = {d: origin.gets.get(d, 0) for d in blobs}
    finally:
        stop_all()
        origin.shutdown()

    pulls = {"cold, at the owner": 1, "cold, at the owner, 4 clients": 4, "cold, at the other": 1,
             "warm, at the owner": args.warm, "copy, at the other": args.warm}
    print(f"{args.size} MiB blobs, two replicas on loopback, median of {args.runs} runs; "
          f"CPU seconds per GiB served to clients")
    print(f"{'path':<30} {'wall s/pull':>12} {'owner CPU s/GiB':>16} {'other CPU s/GiB':>16}")
    figures = {}
    for name, (wall, cpu) in results.items():
        gib = pulls[name] * size / GIB
        figures[name] = {"wallPerPull": wall / pulls[name], "ownerCpuPerGiB": cpu[0] / gib,
                         "otherCpuPerGiB": cpu[1] / gib}
        print(f"{name:<30} {wall / pulls[name]:>12.3f} {cpu[0] / gib:>16.2f} {cpu[1] / gib:>16.2f}")
    print("origin GETs per blob: " + ", ".join(str(n) for n in gets.values()))
    if any(n != 1 for n in gets.values()):
        raise SystemExit("a blob was fetched from the origin more than once")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sizeMiB": args.size, "figures": figures, "originGets": list(gets.values())}, f, indent=2)


if __name__ == "__main__":
    main()
