"""The servers of a benchmark run and the content they serve.

The origin is the reference registry (docker-registry), seeded over its push API. Each client of the
origin (the curl of "origin direct" and each proxy candidate) reaches it through an origin process of
its own, all on one storage directory, so the origin requests each one causes are counted exactly in
that process's access log; the throttled origin is one nginx with limit_rate in front of them.
The candidates, each with an empty cache of its own: dist-proxy, nginx-cache and registry-mirror,
one instance in front of the fast origin and one in front of the throttled one, and nginx-static.
"""

import hashlib
import os
import re
import urllib.request

from measurement import MiB
from processes import BenchError, Server, free_ports, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = "bench/data"
TAG = "v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = "Accept: " + OCI_MANIFEST
THROTTLE = "65m"  # nginx limit_rate per connection: about 67 MiB/s in effect

MIRROR = "registry-mirror"
DIST = "dist-proxy"
NGX_CACHE = "nginx-cache"
NGX_STATIC = "nginx-static"
DIRECT = "origin direct"
ORIGINS = ["direct", "dist", "ngxcache", "mirror"]  # one origin process per client of the origin
ORIGIN_OF = {DIRECT: "direct", DIST: "dist", NGX_CACHE: "ngxcache", MIRROR: "mirror"}


class Candidates:
    """Starts the origins and the candidates on free loopback ports, all state under tmp, and
    answers where each one is. Servers are stopped by processes.stop_all."""

    def __init__(self, tmp, jar, jfr=None):
        self.tmp = tmp
        self.jar = jar
        self.jfr = jfr
        self.blob_seq = 0

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
                                              jfr=self.jfr if variant == "fast" else None)
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
log:
  access: false   # as nginx's access_log off and the reference registry's accesslog disabled
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

    # ---- where each one is ---------------------------------------------------------------

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

