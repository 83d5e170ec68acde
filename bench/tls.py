#!/usr/bin/env python3
"""Warm pulls over TLS: registry-mirror's TLS listener against nginx with the same certificate,
side by side, both serving the same cached 256 MiB blob.

    bench/tls.py [--runs 10] [--size 256] [--jar target/registry-mirror.jar]

Over TLS neither can hand the file to the kernel with sendfile: the bytes are read and encrypted
in user space (the mirror reads the file on a worker, nginx in its worker process). Candidates
alternate, in an order that rotates; reported are the median wall time and throughput, the
mirror's throughput relative to nginx's per run, and each one's CPU seconds per pull. The
certificate is a fresh self-signed RSA 2048 one (openssl); curl is told to trust it. It runs as
root on Debian with docker-registry, nginx, openssl and curl installed (bench/run installs them).
"""

import argparse
import os
import shutil
import ssl
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from candidates import REPO, Candidates  # noqa: E402
from measurement import MiB, Pull, settle  # noqa: E402
from processes import BenchError, Server, cpu_ticks, free_ports, log, run, stop_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CURL_W = "%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n"


def pull(url, cert):
    p = run(["curl", "-s", "--cacert", cert, "-o", "/dev/null", "-w", CURL_W, url], timeout=120)
    return Pull(p.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--size", type=int, default=256, help="MiB")
    p.add_argument("--jar", default=os.path.join(ROOT, "target", "registry-mirror.jar"))
    args = p.parse_args()
    # The servers' readiness checks go to a self-signed certificate on loopback.
    ssl._create_default_https_context = ssl._create_unverified_context  # noqa: SLF001

    tmp = tempfile.mkdtemp(prefix="tls-")
    try:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert])
        c = Candidates(tmp, os.path.join(tmp, "registry-mirror.jar"))
        shutil.copy(args.jar, c.jar)
        origin_port, mirror_port, nginx_port = free_ports(3)
        c.origin_port = {"mirror": origin_port}
        c.storage = os.path.join(tmp, "origin-storage")
        c.origins = {"direct": c.start_registry("origin", origin_port, c.storage)}
        c.seed_content()

        with open(os.path.join(ROOT, "conf", "jvm.options")) as f:
            jvm = f.read().split()
        workdir = os.path.join(tmp, "mirror")
        os.makedirs(workdir)
        config = os.path.join(workdir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:{mirror_port}\ncache:\n  dir: {workdir}/cache\n"
                    f"tls:\n  cert: {cert}\n  key: {key}\n"
                    f"upstreams:\n  origin:\n    url: {c.origin_url('mirror')}\n    default: true\n"
                    f"log:\n  access: false\n")
        mirror = Server("registry-mirror", ["java", *jvm, "-jar", c.jar, "--config", config], workdir,
                        f"https://127.0.0.1:{mirror_port}/readyz").start()

        def tls_conf(workdir, port, **kw):
            return c.static_conf(workdir, port, **kw).replace(
                f"listen 127.0.0.1:{port};",
                f"listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};")
        ngx_workdir = os.path.join(tmp, "nginx-tls")
        os.makedirs(os.path.join(ngx_workdir, "tags"))
        conf = os.path.join(ngx_workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(tls_conf(ngx_workdir, nginx_port))
        nginx = Server("nginx-tls", ["nginx", "-p", ngx_workdir, "-e", f"{ngx_workdir}/error.log", "-c", conf,
                                     "-g", "daemon off;"], ngx_workdir, f"https://127.0.0.1:{nginx_port}/v2/").start()

        digest = c.new_blob(args.size * MiB, "tls")
        urls = {"registry-mirror": f"https://127.0.0.1:{mirror_port}/v2/{REPO}/blobs/{digest}",
                "nginx": f"https://127.0.0.1:{nginx_port}/v2/{REPO}/blobs/{digest}"}
        servers = {"registry-mirror": mirror, "nginx": nginx}
        log("filling the mirror and warming both up")
        for _ in range(6):
            for url in urls.values():
                r = pull(url, cert)
                if r.code != 200 or r.size != args.size * MiB:
                    raise SystemExit(f"{url} answered {r.code} with {r.size} bytes")
        walls = {n: [] for n in urls}
        cpu = {n: [] for n in urls}
        names = list(urls)
        for i in range(args.runs):
            for n in names[i % 2:] + names[:i % 2]:
                settle([mirror, nginx])
                pids = servers[n].pids()
                before = cpu_ticks(pids)
                r = pull(urls[n], cert)
                settle([mirror, nginx])
                if r.code != 200 or r.size != args.size * MiB:
                    raise SystemExit(f"{n} answered {r.code} with {r.size} bytes")
                walls[n].append(r.wall)
                cpu[n].append((cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK"))
        print(f"\nWarm {args.size} MiB over TLS, {args.runs} alternating runs (medians, [min–max]):\n")
        print("| candidate | wall s | MiB/s | CPU s per pull |")
        print("|---|---|---|---|")
        for n in names:
            print(f"| {n} | {statistics.median(walls[n]):.3f} [{min(walls[n]):.3f}–{max(walls[n]):.3f}] | "
                  f"{args.size / statistics.median(walls[n]):,.0f} | {statistics.median(cpu[n]):.2f} |")
        ratios = [b / a for a, b in zip(walls["registry-mirror"], walls["nginx"])]
        print(f"\nregistry-mirror's throughput ÷ nginx's, per run: {statistics.median(ratios):.2f}× "
              f"[{min(ratios):.2f}–{max(ratios):.2f}]")
    except BenchError as e:
        raise SystemExit(f"bench/tls.py: {e}")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
