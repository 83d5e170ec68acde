#!/usr/bin/env python3
"""A rollout of one image to many nodes through N replicas, simulated: thousands of clients (not
JVMs) pulling through a model of the cluster that makes the mirror's decisions, with the CPU
costs measured by bench/cluster.py. It checks the single-flight claim (one upstream GET per
layer, for the whole cluster, however many clients and replicas) and computes what
docs/scaling.md reports: upstream egress, each replica's traffic and CPU, the time until the
last node has the image, and what each replica's cache holds.

    bench/cluster_sim.py [--replicas 1,3,10] [--nodes 1000] [--figures FILE] [...]

The model, per replica: a NIC (--nic-gbit each way) and --cores of CPU; per node: a NIC
(--node-gbit), containerd's 3 layers at once, a start spread evenly over --arrival seconds, and
one replica chosen at random (a Service with client-IP affinity). Upstream gives each
connection --upstream-mibs. Capacities are shared fairly among the transfers that use them
(a fluid model, in steps of --dt seconds), and a reader of a fill never passes the fill. The
mirror's rules: a cached layer is sent from the file; a fill under way is joined; the owner
(rendezvous hashing, as cluster/Rendezvous.java) fills from upstream; another replica fills
from the owner, shared by its clients, and (without --keep-copies) deletes that copy when its
last reader is done and --linger seconds have passed since its fill (the mirror's 60), so a
later client of that replica has it fetched from the owner again.

CPU per GiB (--figures, the JSON of bench/cluster.py; otherwise the defaults, its figures on
the 2-core machine of bench/RESULTS.md): filling (receiving, hashing, writing), sending a cached
file or a complete copy (sendfile), and sending from a fill under way (chunks read and
written). A replica that would need more CPU than its --cores slows everything it does alike.
"""

import argparse
import json
import os
import random
import sys

GIB = 1024 ** 3
MIB = 1024 ** 2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import rendezvous  # noqa: E402


class Fill:
    """A layer being written at a replica, from upstream or from the owner."""

    def __init__(self, replica, layer, keep):
        self.replica = replica
        self.layer = layer
        self.keep = keep
        self.have = 0.0
        self.readers = 0
        self.done = False


class Flow:
    """Bytes of one layer going from a replica (file or fill) to a node or to another replica's fill."""

    def __init__(self, source_replica, layer, source_fill, size, node=None, into=None, upstream=False):
        self.src = source_replica      # the replica whose egress carries it; None for upstream
        self.layer = layer
        self.fill = source_fill        # None: a complete file
        self.size = size
        self.node = node               # a node's download, or
        self.into = into               # the fill this flow feeds
        self.upstream = upstream
        self.got = 0.0
        self.rate = 0.0
        # A complete copy is sent as a cached file is; a fill under way, as it arrives.
        self.from_file = source_fill is None or source_fill.done


def simulate(args, replicas_n, costs):
    rng = random.Random(args.seed)
    layer_size = args.image_gib * GIB / args.layers
    names = ["10.0.0.%d:5000" % (i + 1) for i in range(replicas_n)]
    layers = ["sha256:%064x" % rng.getrandbits(256) for _ in range(args.layers)]
    owner = {l: names.index(rendezvous(names, l)) for l in layers}
    nic = args.nic_gbit * 1e9 / 8
    node_nic = args.node_gbit * 1e9 / 8
    up_rate = args.upstream_mibs * MIB

    cached = [set() for _ in range(replicas_n)]
    fills = [dict() for _ in range(replicas_n)]      # layer -> the Fill new requests join
    copies = [set() for _ in range(replicas_n)]      # fills not kept, still on disk
    flows = []
    upstream_gets = {l: 0 for l in layers}
    peer_fetches = [0] * replicas_n
    egress_clients = [0.0] * replicas_n
    egress_peers = [0.0] * replicas_n
    ingress = [0.0] * replicas_n
    cpu = [0.0] * replicas_n
    cache_peak = [0.0] * replicas_n

    nodes = [{"start": args.arrival * n / args.nodes, "replica": rng.randrange(replicas_n),
              "next": 0, "active": 0, "done_at": None} for n in range(args.nodes)]

    def open_fill(r, layer):
        """The fill of `layer` at replica r: joined, or started from upstream (the owner) or the owner."""
        fill = fills[r].get(layer)
        if fill is not None:
            return fill
        o = owner[layer]
        fill = Fill(r, layer, keep=(o == r or args.keep_copies))
        fills[r][layer] = fill
        if not fill.keep:
            copies[r].add(fill)
        if o == r:
            upstream_gets[layer] += 1
            flows.append(Flow(None, layer, None, layer_size, into=fill, upstream=True))
        else:
            peer_fetches[r] += 1
            src = None if layer in cached[o] else open_fill(o, layer)
            if src is not None:
                src.readers += 1
            flows.append(Flow(o, layer, src, layer_size, into=fill))
        return fill

    def send_cost(f):
        """Sending a file or a complete copy is sendfile; from a fill under way, chunks read and written."""
        return costs["sendFile"] if f.from_file else costs["sendFill"]

    def request(n, layer):
        r = nodes[n]["replica"]
        fill = None if layer in cached[r] else open_fill(r, layer)
        if fill is not None:
            fill.readers += 1
        flows.append(Flow(r, layer, fill, layer_size, node=n))
        nodes[n]["active"] += 1

    def release(fill):
        fill.readers -= 1
        if fill.done and fill.readers == 0:
            copies[fill.replica].discard(fill)

    def finish(f):
        if f.fill is not None:
            release(f.fill)
        if f.node is not None:
            nodes[f.node]["active"] -= 1
            return
        fill = f.into
        fill.done = True
        r = fill.replica
        if fill.keep:
            # Verified and installed: new requests read the file.
            del fills[r][fill.layer]
            cached[r].add(fill.layer)
        else:
            # A copy not kept stays joinable for a while, held, then goes with its last reader.
            fill.readers += 1
            lingering.append((t + args.linger, fill))

    lingering = []
    t = 0.0
    finished = 0
    started = 0
    while finished < args.nodes:
        while lingering and lingering[0][0] <= t:
            _, fill = lingering.pop(0)
            if fills[fill.replica].get(fill.layer) is fill:
                del fills[fill.replica][fill.layer]
            release(fill)
        while started < args.nodes and nodes[started]["start"] <= t:
            started += 1
        for n in range(started):
            node = nodes[n]
            while node["active"] < args.concurrent and node["next"] < args.layers:
                request(n, layers[node["next"]])
                node["next"] += 1

        # Demands: what each flow could take this step, by its source's progress and its node's NIC.
        per_node = {}
        for f in flows:
            if f.node is not None:
                per_node[f.node] = per_node.get(f.node, 0) + 1
        egress_load = [[] for _ in range(replicas_n)]
        ingress_load = [[] for _ in range(replicas_n)]
        for f in flows:
            avail = f.size if f.fill is None else f.fill.have
            cap = max(0.0, avail - f.got) / args.dt
            if f.upstream:
                cap = min(cap, up_rate)
            if f.node is not None:
                cap = min(cap, node_nic / per_node[f.node])
            f.rate = cap
            if f.src is not None:
                egress_load[f.src].append(f)
            if f.into is not None:
                ingress_load[f.into.replica].append(f)
        for r in range(replicas_n):
            share(egress_load[r], nic)
            share(ingress_load[r], nic)
        # CPU: a replica that would need more than its cores slows all it does alike.
        for r in range(replicas_n):
            need = (sum(f.rate * send_cost(f) for f in egress_load[r])
                    + sum(f.rate for f in ingress_load[r]) * costs["fill"]) / GIB
            if need > args.cores:
                for f in egress_load[r] + ingress_load[r]:
                    f.rate *= args.cores / need

        still = []
        for f in flows:
            moved = min(f.rate * args.dt, f.size - f.got)
            f.got += moved
            if f.src is not None:
                cpu[f.src] += moved * send_cost(f) / GIB
                if f.node is not None:
                    egress_clients[f.src] += moved
                else:
                    egress_peers[f.src] += moved
            if f.into is not None:
                f.into.have += moved
                ingress[f.into.replica] += moved
                cpu[f.into.replica] += moved * costs["fill"] / GIB
        for f in flows:
            if f.got >= f.size - 1:
                finish(f)
            else:
                still.append(f)
        flows[:] = still
        for r in range(replicas_n):
            on_disk = len(cached[r]) * layer_size + sum(c.have for c in copies[r]) \
                + sum(f.have for f in fills[r].values() if f.keep)
            cache_peak[r] = max(cache_peak[r], on_disk)
        t += args.dt
        for n in range(started):
            node = nodes[n]
            if node["done_at"] is None and node["next"] == args.layers and node["active"] == 0:
                node["done_at"] = t
                finished += 1
        if t > args.limit:
            raise SystemExit(f"{replicas_n} replicas: not done after {args.limit} s")

    return {
        "replicas": replicas_n, "time": t, "upstreamGets": upstream_gets, "peerFetches": peer_fetches,
        "egressClients": egress_clients, "egressPeers": egress_peers, "ingress": ingress, "cpu": cpu,
        "cachePeak": cache_peak, "cacheEnd": [len(c) * layer_size for c in cached],
        "upstreamBytes": sum(upstream_gets.values()) * layer_size,
    }


def share(load, capacity):
    """Max-min fair shares of `capacity` among flows whose rate is their demand."""
    if not load:
        return
    demand = sum(f.rate for f in load)
    if demand <= capacity:
        return
    remaining = capacity
    pending = sorted(load, key=lambda f: f.rate)
    while pending:
        fair = remaining / len(pending)
        if pending[0].rate <= fair:
            f = pending.pop(0)
            remaining -= f.rate
        else:
            for f in pending:
                f.rate = fair
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="1,3,10", help="comma-separated replica counts")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--image-gib", type=float, default=1.0)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--arrival", type=float, default=60.0, help="seconds over which the nodes start")
    parser.add_argument("--concurrent", type=int, default=3, help="layers a node pulls at once")
    parser.add_argument("--nic-gbit", type=float, default=10.0, help="each replica's NIC, each way")
    parser.add_argument("--node-gbit", type=float, default=10.0, help="each node's NIC")
    parser.add_argument("--upstream-mibs", type=float, default=100.0, help="per connection to upstream")
    parser.add_argument("--cores", type=float, default=2.0, help="CPU cores per replica")
    parser.add_argument("--figures", help="bench/cluster.py's JSON, for the CPU costs")
    parser.add_argument("--fill-cpu", type=float, default=4.4, help="CPU s per GiB filled (without --figures)")
    parser.add_argument("--send-file-cpu", type=float, default=0.42,
                        help="CPU s per GiB sent from a cached file or a complete copy (without --figures)")
    parser.add_argument("--send-fill-cpu", type=float, default=1.05,
                        help="CPU s per GiB sent from a fill under way (without --figures)")
    parser.add_argument("--keep-copies", action="store_true")
    parser.add_argument("--linger", type=float, default=60.0,
                        help="seconds a copy not kept stays joinable after its fill (the mirror's: 60)")
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--limit", type=float, default=36000.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    costs = {"fill": args.fill_cpu, "sendFile": args.send_file_cpu, "sendFill": args.send_fill_cpu}
    if args.figures:
        with open(args.figures) as f:
            figures = json.load(f)["figures"]
        # A warm pull at the owner is sendfile. A cold pull at the owner is a fill and one send
        # from it; with four clients, a fill and four: the difference is three sends from a fill.
        one = figures["cold, at the owner"]["ownerCpuPerGiB"]
        four = 4 * figures["cold, at the owner, 4 clients"]["ownerCpuPerGiB"]
        costs["sendFile"] = figures["warm, at the owner"]["ownerCpuPerGiB"]
        costs["sendFill"] = max(0.0, (four - one) / 3)
        costs["fill"] = max(0.0, one - costs["sendFill"])

    print(f"{args.nodes} nodes pull one image of {args.image_gib:g} GiB in {args.layers} layers, starting over "
          f"{args.arrival:g} s, {args.concurrent} layers at once; replicas with a {args.nic_gbit:g} Gbit/s NIC and "
          f"{args.cores:g} cores; upstream {args.upstream_mibs:g} MiB/s per connection; CPU per GiB: fill "
          f"{costs['fill']:.2f} s, send from a file {costs['sendFile']:.2f} s, from a fill {costs['sendFill']:.2f} s; keepCopies {'on' if args.keep_copies else 'off'}")
    print()
    print("| replicas | upstream GETs per layer | upstream GiB | time to the last node, s | per replica: "
          "GiB to nodes | GiB to replicas | GiB in | CPU s | CPU % of the rollout | cache GiB (end, peak) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    failed = False
    for n in [int(x) for x in args.replicas.split(",")]:
        r = simulate(args, n, costs)
        results.append(r)
        gets = sorted(set(r["upstreamGets"].values()))
        failed |= gets != [1]

        def spread(values, scale=GIB, digits=1):
            lo, hi = min(values) / scale, max(values) / scale
            return f"{lo:.{digits}f}" if abs(hi - lo) < 10 ** -digits else f"{lo:.{digits}f}–{hi:.{digits}f}"

        busy = [c / r["time"] / args.cores * 100 for c in r["cpu"]]
        print(f"| {n} | {', '.join(map(str, gets))} | {r['upstreamBytes'] / GIB:.1f} | {r['time']:.0f} | "
              f"{spread(r['egressClients'])} | {spread(r['egressPeers'])} | {spread(r['ingress'])} | "
              f"{spread(r['cpu'], 1, 0)} | {spread(busy, 1, 0)} | "
              f"{spread(r['cacheEnd'])}, {spread(r['cachePeak'])} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"costs": costs, "results": results}, f, indent=2)
    if failed:
        raise SystemExit("a layer was fetched from upstream more than once")


if __name__ == "__main__":
    main()
