"""Throughput benchmarks of the forwarding core, and the figures ``vrsim bench`` reports.

Every figure is measured here, on inputs built here, after the kernels are compiled (the
compile time is reported on its own):

- fast path: established TCP flows from client pods to a ClusterIP whose backends sit on
  every node, the client node included — so the batch mixes ECMP to remote members (a
  tunnel) and ECMP + DNAT to local ones; one node's kernel is timed, in packets per second;
- hot path: the same over a small set of flows that stays in cache;
- flow setups: new connections on the same path with NetworkPolicies of ``rules`` rules in
  force on both the clients (egress) and the backends (ingress): each setup does the route
  lookup, the VN ACL, both policy programs, the ECMP choice, the NAT, and installs the
  forward and the reverse flow;
- LPM: random routes in one VRF, random destinations, batched lookups;
- the plain-Python reference dataplane on the same input, and the machine's ceiling for
  independent random reads from an array as large as the flow table, as ratios;
- ECMP balance over the backends, reachability matrix, control plane + compile at scale,
  and a whole ``vrsim run``.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from controlplane.config import ClusterConfig
from vrouter.chi_square import chi_square
from vrouter.views.plots import pyplot
from vrouter.dataplane.engine import forced
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.lpm import build_lpm, lpm_lookup_batch, lpm_nbytes
from vrouter.dataplane.packets import DELIVERED, HOST, TCP_ACK, TCP_SYN, copy_batch
from vrouter.dataplane.pipeline import process_batch
from vrouter.dataplane.state import new_flow_state
from vrouter.dataplane.trace import new_trace
from vrouter.figures import BenchResult
from vrouter.lab.reach import reachability
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import answers, first_packets, resolve_source, resolve_target
from vrouter.reference.dataplane import ReferenceFabric
from vrouter.startup_bench import default_scenario, vrsim_command

FLOWS_PER_CLIENT = 60_000
SERVICE_PORT = 80
TARGET_PORT = 8080


def team_objects(pods: int, namespaces: int = 10, port: int | None = None) -> list[dict[str, Any]]:
    """A generated cluster: ``pods`` pods spread over ``namespaces`` namespaces in three teams,
    each namespace admitting ingress from its team only (on ``port``, or every port).

    >>> [o["kind"] for o in team_objects(2, namespaces=1)]
    ['Namespace', 'NetworkPolicy', 'Pod', 'Pod']
    """
    objects: list[dict[str, Any]] = []
    rule: dict[str, Any] = {"from": [{"namespaceSelector": {"matchLabels": {"team": ""}}}]}
    if port is not None:
        rule["ports"] = [{"port": port}]
    for ns in range(namespaces):
        team = f"t{ns % 3}"
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{ns}", "labels": {"team": team}}})
        ingress = {**rule, "from": [{"namespaceSelector": {"matchLabels": {"team": team}}}]}
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "team", "namespace": f"ns{ns}"}, "spec": {"podSelector": {}, "ingress": [ingress]}})
    for i in range(pods):
        objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": f"ns{i % namespaces}", "labels": {"app": f"a{i % 50}"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    return objects


@dataclass
class BenchSettings:
    flows: int = 1_000_000
    packets: int = 2_000_000
    hot_flows: int = 10_000
    backends: int = 4
    nodes: int = 2
    vrfs: int = 1
    routes: int = 1_000_000
    lookups: int = 10_000_000
    rules: int = 1_000
    setups: int = 200_000
    reference_flows: int = 20_000
    reach_pods: int = 1_000
    scale_pods: int = 10_000
    seed: int = 0
    threads: int = 1
    repeats: int = 5

    @classmethod
    def quick(cls, **changes: Any) -> "BenchSettings":
        """Every figure on smaller sizes: the whole run in well under a minute."""
        small = cls(
            flows=100_000,
            packets=400_000,
            hot_flows=10_000,
            routes=100_000,
            lookups=2_000_000,
            rules=200,
            setups=50_000,
            reference_flows=2_000,
            reach_pods=200,
            scale_pods=1_000,
            repeats=3,
        )
        for key, value in changes.items():
            setattr(small, key, value)
        return small


def median_time(run: Callable[[], None], repeats: int) -> float:
    """Median wall time of ``run`` over ``repeats`` calls (after one warm-up)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the service path -------------------------------------------------------------------


def service_cluster(nodes: int, backends: int, clients_per_node: list[int], flows: int, rules: int = 0) -> Simulation:
    """Backends spread over every node, client pods on the given nodes, a ClusterIP service,
    and optionally NetworkPolicies with ``rules`` rules on both clients and backends."""
    entries = 1 << max(10, math.ceil(math.log2(max(1, flows) * 2.6)))
    config = ClusterConfig.model_validate(
        {
            "nodes": [{"name": f"worker{i + 1:02d}", "ip": f"172.27.10.{74 + i}"} for i in range(nodes)],
            "vrouter": {"flowEntries": entries},
        }
    )
    objects: list[dict[str, Any]] = []
    for b in range(backends):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"web-{b}", "labels": {"app": "web"}},
                "spec": {"nodeName": f"worker{b % nodes + 1:02d}", "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": TARGET_PORT, "name": "http"}]}]},
            }
        )
    for node, count in enumerate(clients_per_node):
        for c in range(count):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"client-{node}-{c}", "labels": {"role": "client"}},
                    "spec": {"nodeName": f"worker{node + 1:02d}", "containers": [{"name": "c", "image": "busybox"}]},
                }
            )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": SERVICE_PORT, "targetPort": "http"}]},
        }
    )
    if rules:
        objects.extend(policies(rules))
    return Simulation.from_objects(objects, config=config)


def policies(rules: int) -> list[dict[str, Any]]:
    """An egress policy on the clients and an ingress policy on the backends, ``rules`` rules
    each (distinct /32 peers and ports), plus the one rule that lets clients reach the web."""
    egress = [{"to": [{"ipBlock": {"cidr": f"10.200.{i // 250}.{i % 250 + 1}/32"}}], "ports": [{"port": 5000 + i % 1000}]} for i in range(rules - 1)]
    egress.append({"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": TARGET_PORT}]})
    ingress = [{"from": [{"ipBlock": {"cidr": f"10.201.{i // 250}.{i % 250 + 1}/32"}}], "ports": [{"port": 6000 + i % 1000}]} for i in range(rules - 1)]
    ingress.append({"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": "http"}]})
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "clients-egress"},
            "spec": {"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"], "egress": egress},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "web-ingress"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": ingress},
        },
    ]


def first_syns(sim: Simulation, node: int, count: int, first_port: int = 1024) -> np.ndarray:
    """``count`` SYNs to the service from the client pods of ``node`` (distinct five-tuples)."""
    target = resolve_target(sim, "service/default/web")
    batches = []
    clients = sorted(p["metadata"]["name"] for p in sim.cluster.store.list("Pod", "default") if p["metadata"]["name"].startswith(f"client-{node}-"))
    left = count
    for name in clients:
        if left <= 0:
            break
        take = min(left, FLOWS_PER_CLIENT)
        source = resolve_source(sim, f"default/{name}", target)
        batches.append(first_packets(source, target, 6, take, first_port))
        left -= take
    if left > 0:
        raise ValueError(f"not enough client pods on node {node} for {count} flows")
    return np.concatenate(batches)


def handshake(fabric: Any, syns: np.ndarray) -> np.ndarray:
    """SYN, SYN-ACK, ACK through the fabric (or the reference): the flows end established."""
    first = fabric.run(syns).packets
    arrived = (first["outcome"] == DELIVERED) | (first["outcome"] == HOST)
    second = fabric.run(answers(first[arrived], 6, TCP_SYN | TCP_ACK)).packets
    fabric.run(answers(second, 6, TCP_ACK))
    return first


def data_packets(syns: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` ACKs of the established flows of ``syns``, in random order."""
    picks = rng.integers(0, len(syns), count)
    data = syns[picks]  # fancy indexing already copies
    data["tcp_flags"] = TCP_ACK
    return data


def kernel_seconds(sim: Simulation, node: int, batch: np.ndarray, repeats: int) -> float:
    """Median time of one node's kernel on ``batch`` (copied fresh each time, not timed)."""
    runtime = sim.fabric.runtimes[node]
    trace, tcount = new_trace(0)
    copies = [copy_batch(batch) for _ in range(repeats + 1)]
    it = iter(copies)

    def run() -> None:
        part = next(it)
        process_batch(runtime.kernel, runtime.flows, runtime.counters, part, sim.fabric.now, 1 << 62, 3, trace, tcount, False)

    return median_time(run, repeats)


@kernel(cache=True, nogil=True)
def _gather(table: np.ndarray, indices: np.ndarray) -> np.uint64:
    total = np.uint64(0)
    for i in range(indices.shape[0]):
        total += table[indices[i]]
    return total


def memory_ceiling(nbytes: int, lookups: int, repeats: int, rng: np.random.Generator) -> float:
    """Independent random 8-byte reads per second from an array of ``nbytes``."""
    table = np.ones(max(1, nbytes // 8), np.uint64)
    indices = rng.integers(0, table.shape[0], lookups)
    seconds = median_time(lambda: _gather(table, indices), repeats)
    return lookups / seconds


def _normalised(weights: list[float]) -> np.ndarray:
    array = np.array(weights, dtype=np.float64)
    return array / array.sum()


def random_routes(count: int, vrfs: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A routing table shaped like the Internet's: mostly /24, then /16–/23, a few others."""
    lengths = rng.choice(
        np.array([24, 22, 23, 20, 21, 16, 19, 18, 17, 8, 12, 14, 28, 30, 32], np.uint8),
        size=count,
        p=_normalised([0.56, 0.08, 0.08, 0.06, 0.05, 0.04, 0.04, 0.03, 0.02, 0.005, 0.005, 0.01, 0.01, 0.01, 0.02]),
    )
    prefixes = rng.integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32)
    values = np.arange(count, dtype=np.int32)
    owner = rng.integers(0, vrfs, count)
    return [(prefixes[owner == v], lengths[owner == v], values[owner == v]) for v in range(vrfs)]


# --- the run ---------------------------------------------------------------------------


class Bench:
    """Runs the figures one by one; ``step`` reports progress to a caller (a progress bar)."""

    def __init__(self, settings: BenchSettings, step: Callable[[str], None] | None = None) -> None:
        self.s = settings
        self.step = step or (lambda _: None)
        self.rng = np.random.default_rng(settings.seed)
        self.result = BenchResult()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.step(name)
        yield

    def run(self, plot: bool = False) -> BenchResult:
        """Every figure, on the compiled kernels (the tiered engine would interpret small runs)."""
        with forced("compiled"):
            return self._run(plot)

    def _run(self, plot: bool) -> BenchResult:
        s = self.s
        r = self.result
        r.numbers["threads"] = s.threads
        with self.phase("compiling the kernels"):
            start = time.perf_counter()
            warm = service_cluster(2, 2, [1, 0], 10)
            handshake(warm.fabric, first_syns(warm, 0, 10))
            r.numbers["compile_seconds"] = round(time.perf_counter() - start, 2)
        with self.phase(f"establishing {s.flows:,} flows"):
            clients = math.ceil(s.flows / FLOWS_PER_CLIENT)
            sim = service_cluster(s.nodes, s.backends, [clients] + [0] * (s.nodes - 1), s.flows)
            syns = first_syns(sim, 0, s.flows)
            first = handshake(sim.fabric, syns)
        with self.phase("fast path"):
            batch = data_packets(syns, s.packets, self.rng)
            seconds = kernel_seconds(sim, 0, batch, s.repeats)
            fast = s.packets / seconds / 1e6
            r.add(f"fast path, {s.flows:,} established flows, ECMP + NAT", fast, "Mpps", 15, key="fast_path_mpps")
            r.numbers["fast_path_ns_per_packet"] = round(1e9 * seconds / s.packets, 1)
        with self.phase("hot path"):
            hot = data_packets(syns[: s.hot_flows], s.packets, self.rng)
            hot_mpps = s.packets / kernel_seconds(sim, 0, hot, s.repeats) / 1e6
            r.add(f"fast path, {s.hot_flows:,} hot flows", hot_mpps, "Mpps", 60, key="hot_path_mpps")
        with self.phase("ECMP balance"):
            pods = {(n.index, i): v.pod for n in sim.nodes.values() for i, v in n.vifs.items() if v.pod and v.pod.startswith("default/web-")}
            keys = first["node"].astype(np.int64) * 65536 + first["out_vif"].astype(np.int64)
            counts = [int((keys == node * 65536 + vif).sum()) for (node, vif) in sorted(pods)]
            mean = sum(counts) / len(counts)
            deviation = max(abs(c - mean) / mean for c in counts)
            statistic, p_value = chi_square(counts)
            r.add("ECMP max deviation from an even share", deviation, "", note=f"χ² {statistic:.1f}, p = {p_value:.3f}", key="ecmp_max_deviation")
            r.numbers["ecmp_chi_square_p"] = p_value
            r.numbers["ecmp_backend_flows"] = counts
        with self.phase("memory ceiling"):
            flows = sim.fabric.runtimes[0].flows
            nbytes = int(flows.keys.keys.nbytes + flows.entries.nbytes)
            ceiling = memory_ceiling(nbytes, min(s.lookups, 10_000_000), s.repeats, self.rng) / 1e6
            r.add(f"random 8-byte reads from {nbytes / 2**20:.0f} MiB (the flow table's size)", ceiling, "M/s", key="memory_ceiling_mlookups_per_s")
            r.numbers["fast_path_to_memory_ceiling"] = round(fast / ceiling, 3)
        if s.threads > 1:
            with self.phase(f"{s.threads} threads"):
                r.numbers["fast_path_mpps_threads"] = self.threaded(s.threads)
                r.add(f"fast path, {s.threads} threads (one node each)", r.numbers["fast_path_mpps_threads"], "Mpps")
        with self.phase("flow setups"):
            setup_sim = service_cluster(s.nodes, s.backends, [math.ceil(s.setups / FLOWS_PER_CLIENT) + 1] + [0] * (s.nodes - 1), s.setups, s.rules)
            new = first_syns(setup_sim, 0, s.setups)
            setups = s.setups / kernel_seconds_fresh(setup_sim, 0, new, s.repeats)
            r.add(f"flow setups (both flows) with {s.rules:,} NetworkPolicy rules", setups, "/s", 2e6, key="flow_setups_per_s")
        with self.phase("plain-Python reference"):
            ref_pps, same_pps = self.reference(sim, syns)
            r.add("plain-Python reference, same input", ref_pps, "pps", key="reference_pps")
            r.add("speed-up over the reference", same_pps / ref_pps, "×", 300, key="speedup_vs_reference")
        with self.phase(f"LPM, {s.routes:,} routes"):
            table = build_lpm(random_routes(s.routes, s.vrfs, self.rng))
            vrfs = self.rng.integers(0, s.vrfs, s.lookups).astype(np.int64)
            addresses = self.rng.integers(0, 2**32, s.lookups, dtype=np.uint64).astype(np.uint32)
            out = np.empty(s.lookups, np.int32)
            lpm_seconds = median_time(lambda: lpm_lookup_batch(table, vrfs, addresses, out), s.repeats)
            r.add(f"LPM, {s.routes:,} routes, random destinations", s.lookups / lpm_seconds / 1e6, "M lookups/s", 100, key="lpm_mlookups_per_s")
            r.numbers["lpm_mib"] = round(lpm_nbytes(table) / 2**20, 1)
        with self.phase(f"reachability, {s.reach_pods} pods"):
            r.add(f"reachability matrix, {s.reach_pods:,} pods", self.reach(s.reach_pods), "s", 10, higher=False, key="reach_seconds")
        with self.phase(f"control plane + compile, {s.scale_pods:,} pods"):
            r.add(f"control plane + compile, {s.scale_pods:,} pods", self.scale(s.scale_pods), "s", 30, higher=False, key="control_plane_seconds")
        with self.phase("vrsim run, namespace isolation"):
            r.add("vrsim run namespace-isolation (warm)", self.scenario_wall(), "s", 0.8, higher=False, key="run_seconds")
        if plot:
            with self.phase("packets/s against active flows"):
                r.curve = self.curve()
        return r

    def threaded(self, threads: int) -> float:
        """Aggregate fast-path Mpps with one node per thread (nodes run in parallel)."""
        s = self.s
        per = max(1, s.flows // threads)
        clients = math.ceil(per / FLOWS_PER_CLIENT)
        sim = service_cluster(max(s.nodes, threads), s.backends, [clients] * threads, s.flows)
        batches = []
        for node in range(threads):
            syns = first_syns(sim, node, per)
            handshake(sim.fabric, syns)
            batches.append(data_packets(syns, s.packets // threads, self.rng))
        trace, tcount = new_trace(0)
        # fresh copies made outside the timed region, as in kernel_seconds
        rounds = iter([[copy_batch(b) for b in batches] for _ in range(s.repeats + 1)])

        def one(node: int, batch: np.ndarray) -> None:
            rt = sim.fabric.runtimes[node]
            process_batch(rt.kernel, rt.flows, rt.counters, batch, sim.fabric.now, 1 << 62, 3, trace, tcount, False)

        with ThreadPoolExecutor(threads) as pool:

            def run() -> None:
                list(pool.map(one, range(threads), next(rounds)))

            seconds = median_time(run, s.repeats)
        return sum(len(b) for b in batches) / seconds / 1e6

    def reference(self, sim: Simulation, syns: np.ndarray) -> tuple[float, float]:
        """(reference pps, kernel pps) on the same established flows and the same packets."""
        k = min(self.s.reference_flows, len(syns))
        reference = _Rows(ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter))
        handshake(reference, syns[:k])
        batch = data_packets(syns[:k], k, self.rng)
        # both sides timed alike: a median over runs of the same packets (the reference is
        # slow, so fewer of them; one run alone varied by a third from run to run)
        ref_seconds = median_time(lambda: reference.run(batch), min(3, self.s.repeats))
        kernel = median_time(lambda: sim.fabric.run(batch), self.s.repeats)
        return k / ref_seconds, k / kernel

    def reach(self, pods: int) -> float:
        """Seconds for the whole matrix of ``pods`` pods, tables compiled and kernels warm."""
        sim = self.reach_cluster(pods)
        start = time.perf_counter()
        reachability(sim)
        return time.perf_counter() - start

    @staticmethod
    def reach_cluster(pods: int) -> Simulation:
        """``pods`` pods in 10 namespaces with a team policy each, on 4 nodes, compiled."""
        config = ClusterConfig.model_validate({"nodes": [{"name": f"w{i}", "ip": f"172.27.10.{10 + i}"} for i in range(4)], "vrouter": {"flowEntries": 1 << 22}})
        sim = Simulation.from_objects(team_objects(pods), config=config)
        sim.nodes  # compile outside the timing: the figure is the matrix
        reachability(sim, pods=sorted(f"ns{i % 10}/p{i}" for i in range(min(pods, 20))))  # warm
        return sim

    def scale(self, pods: int) -> float:
        namespaces = max(1, pods // 20)
        services = max(1, pods // 10)
        objects: list[dict[str, Any]] = []
        rng = self.rng
        for i in range(namespaces):
            meta: dict[str, Any] = {"name": f"ns{i}", "labels": {"team": f"t{i % 10}"}}
            if i % 5 == 0:
                meta["annotations"] = {"opencontrail.org/isolation": "true"}
            objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
            apps = max(1, services // namespaces)
            for a in range(apps):
                objects.append(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": f"app{a}", "namespace": f"ns{i}"},
                        "spec": {
                            "replicas": max(1, pods // namespaces // apps),
                            "selector": {"matchLabels": {"app": f"app{a}"}},
                            "template": {
                                "metadata": {"labels": {"app": f"app{a}", "tier": "web" if rng.random() < 0.5 else "db"}},
                                "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080, "name": "http"}]}]},
                            },
                        },
                    }
                )
                objects.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"app{a}", "namespace": f"ns{i}"},
                        "spec": {"selector": {"app": f"app{a}"}, "ports": [{"port": 80, "targetPort": "http"}]},
                    }
                )
                objects.append(
                    {
                        "apiVersion": "networking.k8s.io/v1",
                        "kind": "NetworkPolicy",
                        "metadata": {"name": f"np{a}", "namespace": f"ns{i}"},
                        "spec": {
                            "podSelector": {"matchLabels": {"app": f"app{a}"}},
                            "ingress": [
                                {
                                    "from": [{"namespaceSelector": {"matchLabels": {"team": f"t{int(rng.integers(10))}"}}}, {"podSelector": {"matchLabels": {"tier": "web"}}}],
                                    "ports": [{"port": "http"}, {"port": 9090}],
                                }
                            ],
                        },
                    }
                )
        config = ClusterConfig.model_validate({"nodes": [{"name": f"w{i}", "ip": f"172.27.10.{10 + i}"} for i in range(10)]})
        start = time.perf_counter()
        sim = Simulation.from_objects(objects, config=config)
        sim.nodes
        return time.perf_counter() - start

    def scenario_wall(self) -> float:
        """A whole ``vrsim run`` of the article's namespace-isolation scenario, as a user runs it."""
        scenario = default_scenario()
        command = [*vrsim_command(), "run", str(scenario)]
        subprocess.run(command, capture_output=True, check=False)  # warm the cache
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def curve(self) -> list[tuple[int, float]]:
        """Fast-path Mpps against the number of active flows."""
        out = []
        flows = 1_000
        while flows <= self.s.flows:
            clients = math.ceil(flows / FLOWS_PER_CLIENT)
            sim = service_cluster(self.s.nodes, self.s.backends, [clients] + [0] * (self.s.nodes - 1), flows)
            syns = first_syns(sim, 0, flows)
            handshake(sim.fabric, syns)
            batch = data_packets(syns, min(self.s.packets, 1_000_000), self.rng)
            out.append((flows, len(batch) / kernel_seconds(sim, 0, batch, self.s.repeats) / 1e6))
            flows *= 10
        return out


class _Rows:
    """The reference fabric's ``run`` returns rows; the handshake wants ``.packets``."""

    def __init__(self, fabric: Any) -> None:
        self.fabric = fabric

    def run(self, batch: np.ndarray) -> Any:
        return SimpleNamespace(packets=self.fabric.run(batch))


def kernel_seconds_fresh(sim: Simulation, node: int, syns: np.ndarray, repeats: int) -> float:
    """Median time of one node's kernel setting up every flow of ``syns`` from an empty table."""
    runtime = sim.fabric.runtimes[node]
    settings = sim.scenario.cluster.vrouter
    trace, tcount = new_trace(0)
    states = [new_flow_state(settings.flowEntries, settings.overflowFraction) for _ in range(repeats + 1)]
    copies = [copy_batch(syns) for _ in range(repeats + 1)]
    pairs = iter(zip(states, copies, strict=True))

    def run() -> None:
        state, batch = next(pairs)
        done = process_batch(runtime.kernel, state, runtime.counters, batch, sim.fabric.now, 1 << 62, 3, trace, tcount, False)
        assert done == len(batch), "every packet must be a new flow"

    return median_time(run, repeats)


def plot_curve(curve: list[tuple[int, float]], path: str) -> None:
    """A PNG of packets/s against active flows (needs the ``plot`` extra: matplotlib)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.semilogx([c[0] for c in curve], [c[1] for c in curve], marker="o")
    axes.set_xlabel("active flows")
    axes.set_ylabel("fast path, Mpps (one core)")
    axes.set_title("vrsim: ECMP + NAT fast path against the flow table's size")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def settings_dict(settings: BenchSettings) -> dict[str, Any]:
    return asdict(settings)
