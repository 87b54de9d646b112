"""Allowed connectivity between workloads, measured through the dataplane (``vrsim connlist``).

The answer has netpol-analyzer's shape — one line per (source, destination) with the set of
allowed connections, ``ns/name[Kind] => ns/name[Kind] : TCP 8080`` — but it is not computed
from the policies: it is *measured*, by sending packets through every node's vRouter.

How the space is cut (so that one packet can stand for a whole piece):

- **Ports.** For each protocol (TCP, UDP, SCTP) the range 1-65535 is cut at every boundary a
  policy mentions: a rule's port, ``endPort + 1``, and every pod's container port a named
  port of a rule resolves to. Inside one piece every policy decides alike, so the piece's
  first port is its representative.
- **Outside addresses.** 0.0.0.0-255.255.255.255 is cut at the bounds of every ipBlock
  (``cidr`` minus its ``except`` list): the blocks of ingress rules cut the *sources*, those
  of egress rules the *destinations*, as netpol-analyzer does. Adjacent pieces are never
  merged (netpol-analyzer lists each piece on its own lines). A piece is probed from an
  address inside it that is no cluster address (pod, service and ip-fabric subnets, VN
  subnets, public pools, node and gateway addresses): the lowest such one. A piece that lies
  wholly inside cluster addresses cannot be probed from outside (any address in it belongs
  to the cluster, and the fabric routes it there): it is left out of the result and named in
  :attr:`ConnList.unmeasured` and the notes. netpol-analyzer would list it; here only the
  pods inside it are measured, as workloads.

What one probe is (the conversation semantics of :mod:`vrouter.lab.conversation`): a TCP
handshake (SYN, SYN-ACK, ACK) or a UDP/SCTP request and its response, counted only when the
answer came back where the sender listens (and, for TCP, the last ACK arrived).

- workload → workload: from one representative pod of each (the first by name) to the
  other's (a workload never to itself);
- outside → workload: a ``fabric:<ip>`` peer whose packets enter through the fabric
  interface of the destination pod's node, un-encapsulated; answers leave toward the gateway;
- workload → outside: to the address, out through the gateway; the answer comes back in
  through the fabric interface of the pod's node the way a gateway that holds the pod's
  route sends it: encapsulated with the label (or VNI) of the pod's interface, as
  ``vrsim connect POD fabric:IP`` does (:func:`vrouter.lab.traffic.fabric_label`).

A host-network pod has no interface: it is its node's host stack, at the node's address,
and no NetworkPolicy restricts it (TF's reading). Two host-network workloads on one node
cannot be told apart (their traffic never reaches the vRouter) and are not measured; a
probe to a port that is a NodePort is taken by kube-proxy's NAT. netpol-analyzer treats
host-network pods as ordinary pods: :func:`load` with ``host_network_as_pods`` gives them
their own interfaces before the cluster is built.

Every probe of a phase travels in one batch (:meth:`Fabric.run`); the batch is built with
numpy, never packet by packet. All probes share one source port, chosen so that it is no
probed destination port: then no probe's reverse flow can be another probe's forward flow.
Very large runs are cut into chunks that fit the flow tables, with the flows aged between
chunks.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from controlplane.config import GATEWAY_NODE
from controlplane.errors import InputError
from controlplane.inet import KUBERNETES_PROTOCOLS, TCP, ip_text, protocol_number
from controlplane.k8s.workloads import workload_of
from controlplane.progress import task
from controlplane.tf.model import NetworkIpam, VirtualNetwork
from vrouter.dataplane.packets import DELIVERED, HOST, TCP_ACK, TCP_SYN, new_batch
from vrouter.dataplane.tables import VIF_CLIENT, VIF_FABRIC, VIF_HOST
from vrouter.lab.exposure import measured_exposure
from vrouter.lab.fabric import Fabric, conversations_per_run
from vrouter.lab.traffic import fabric_label, resolve_source
from vrouter.lab.sim import Simulation
from vrouter.intent import ADMIN_KINDS, INGRESS_CONTROLLER, Intent, admin_networks, admin_port_cuts, exposure
from vrouter.reference.netpol import Pod
from vrouter.tabular import Tabular

PROTOCOLS: dict[str, int] = {name: protocol_number(name) for name in KUBERNETES_PROTOCOLS}  # as netpol-analyzer names them
PROTOCOL_NAMES: dict[int, str] = {number: name for name, number in PROTOCOLS.items()}
MIN_PORT, MAX_PORT = 1, 65535
ALL_ADDRESSES = (0, 0xFFFFFFFF)
ALL_CONNECTIONS = "All Connections"
FORMATS = ("txt", "json", "csv", "md", "dot")

Range = tuple[int, int]  # inclusive


# --- the pieces ---------------------------------------------------------------------------


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint, and touching ranges joined.

    >>> merge_ranges([(5, 7), (1, 2), (3, 3), (9, 9)])
    [(1, 3), (5, 7), (9, 9)]
    """
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def pieces_between(cuts: Iterable[int], lo: int, hi: int) -> list[Range]:
    """``lo..hi`` cut before every value of ``cuts``.

    >>> pieces_between([53, 54], 1, 65535)
    [(1, 52), (53, 53), (54, 65535)]
    """
    points = sorted({c for c in cuts if lo < c <= hi} | {lo, hi + 1})
    return [(a, b - 1) for a, b in zip(points, points[1:])]


def ipblock_ranges(block: Mapping[str, Any]) -> list[Range]:
    """An ipBlock's IPv4 addresses (``cidr`` minus ``except``) as disjoint ranges."""
    net = ipaddress.ip_network(str(block.get("cidr")), strict=False)
    if net.version != 4:
        return []
    ranges = [(int(net.network_address), int(net.broadcast_address))]
    for text in block.get("except") or ():
        hole = ipaddress.ip_network(str(text), strict=False)
        if hole.version != 4:
            continue
        cut_lo, cut_hi = int(hole.network_address), int(hole.broadcast_address)
        kept = []
        for lo, hi in ranges:
            if cut_hi < lo or cut_lo > hi:
                kept.append((lo, hi))
                continue
            if lo < cut_lo:
                kept.append((lo, cut_lo - 1))
            if hi > cut_hi:
                kept.append((cut_hi + 1, hi))
        ranges = kept
    return ranges


def _rules(policy: Mapping[str, Any], direction: str) -> list[Mapping[str, Any]]:
    return list((policy.get("spec") or {}).get(direction) or [])


def address_pieces(policies: Sequence[Mapping[str, Any]], direction: str, blocks: Sequence[Mapping[str, Any]] = ()) -> list[Range]:
    """The outside address space cut at every ipBlock of ``direction`` (ingress: sources),
    and at the extra ``blocks`` (the admin policies' egress networks, in the intent view)."""
    peers_key = "from" if direction == "ingress" else "to"
    cuts: set[int] = set()
    for block in blocks:
        for lo, hi in ipblock_ranges(block):
            cuts.update((lo, hi + 1))
    for policy in policies:
        for rule in _rules(policy, direction):
            for peer in rule.get(peers_key) or ():
                if peer.get("ipBlock"):
                    for lo, hi in ipblock_ranges(peer["ipBlock"]):
                        cuts.update((lo, hi + 1))
    return pieces_between(cuts, *ALL_ADDRESSES)


def container_ports(pod: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """(name, number, protocol) of every named container port of a pod."""
    out = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") and port.get("containerPort") is not None:
                out.append((str(port["name"]), int(port["containerPort"]), port.get("protocol") or "TCP"))
    return out


def port_pieces(policies: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], extra: Mapping[str, Iterable[int]] | None = None) -> dict[str, list[Range]]:
    """Each protocol's ports 1-65535 cut at every boundary the policies mention (and at the
    ``extra`` cuts: the admin policies' ports, in the intent view).

    Named ports cut at the number they resolve to on every pod that names it so.
    """
    cuts: dict[str, set[int]] = {name: set((extra or {}).get(name, ())) for name in PROTOCOLS}
    named = [port for pod in pods for port in container_ports(pod)]
    for policy in policies:
        for direction in ("ingress", "egress"):
            for rule in _rules(policy, direction):
                for port in rule.get("ports") or ():
                    protocol = port.get("protocol") or "TCP"
                    number = port.get("port")
                    if protocol not in cuts or number is None:
                        continue
                    if isinstance(number, int):
                        end = port.get("endPort") or number
                        cuts[protocol].update((number, end + 1))
                    else:
                        cuts[protocol].update(n + d for name, n, p in named if name == number and p == protocol for d in (0, 1))
    return {name: pieces_between(values, MIN_PORT, MAX_PORT) for name, values in cuts.items()}


def cluster_ranges(sim: Simulation) -> list[Range]:
    """Every address the cluster itself uses: an outside probe must come from none of them."""
    config = sim.scenario.cluster
    nets = [config.podSubnet, config.serviceSubnet, config.ipFabricSubnet]
    nets += [ipam.subnet for ipam in sim.cluster.db.list(NetworkIpam)]
    nets += [vn.subnet for vn in sim.cluster.db.list(VirtualNetwork) if vn.subnet]
    pool = config.publicFipPool
    if pool is not None and not isinstance(pool, str):
        nets.append(pool.subnet)
    hosts = [node.ip for node in config.nodes] + [config.gateway_ip]
    ranges = []
    for text in nets + hosts:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            ranges.append((int(net.network_address), int(net.broadcast_address)))
    return merge_ranges(ranges)


def probe_address(piece: Range, taken: Sequence[Range]) -> int | None:
    """The lowest address of ``piece`` outside every ``taken`` range (sorted, disjoint)."""
    candidate = piece[0]
    for lo, hi in taken:
        if lo <= candidate <= hi:
            candidate = hi + 1
    return candidate if candidate <= piece[1] else None


# --- the endpoints ------------------------------------------------------------------------


def range_label(piece: Range) -> str:
    """netpol-analyzer's name of an outside range: ``a.b.c.d-e.f.g.h[External]``."""
    return f"{ip_text(piece[0])}-{ip_text(piece[1])}[External]"


@dataclass(frozen=True)
class Endpoint:
    """One end of the probes: a workload (through one pod) or an outside address range."""

    label: str  # ns/name[Kind] or a.b.c.d-e.f.g.h[External]
    node: int  # where it listens: the pod's node, or the gateway for outside ranges
    vif: int  # its interface; VIF_HOST for a host-network pod (its node's host stack)
    ip: int  # the pod's address, or the range's probe address
    #: the MPLS label (or VNI) that reaches the pod's interface from the fabric; -1: none
    fabric_label: int = -1
    external: Range | None = None
    pod: str | None = None  # the representative pod, ns/name
    pods: tuple[str, ...] = ()

    @property
    def host(self) -> bool:
        return self.external is None and self.vif == VIF_HOST


def workloads(sim: Simulation, notes: list[str]) -> list[Endpoint]:
    """One endpoint per workload, through its first pod by name.

    A host-network pod has no interface of its own: it is its node's host stack, reached at
    the node's address, and no NetworkPolicy applies to it in TF.
    """
    store = sim.cluster.store
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for pod in store.list("Pod"):
        meta = pod["metadata"]
        if not (pod.get("status") or {}).get("podIP"):
            notes.append(f"pod {meta.get('namespace')}/{meta['name']} has no address, left out")
            continue
        name, kind = workload_of(store, pod)
        groups.setdefault((meta.get("namespace") or "default", name, kind), []).append(pod)
    by_index = {node.index: node for node in sim.nodes.values()}
    out = []
    for (namespace, name, kind), pods in sorted(groups.items()):
        pods.sort(key=lambda p: p["metadata"]["name"])
        label = f"{namespace}/{name}[{kind}]"
        chosen = f"{namespace}/{pods[0]['metadata']['name']}"
        if len({tuple(sorted((p["metadata"].get("labels") or {}).items())) for p in pods}) > 1:
            notes.append(f"the pods of {label} carry different labels; measured through {chosen}")
        try:
            source = resolve_source(sim, chosen)
        except InputError as exc:
            notes.append(f"{label} left out: {exc}")
            continue
        tag = -1 if source.vif == VIF_HOST else fabric_label(by_index[source.node], source.vif)
        out.append(Endpoint(label, source.node, source.vif, source.ip, tag, pod=chosen, pods=tuple(f"{namespace}/{p['metadata']['name']}" for p in pods)))
    return out


def outside(pieces: Sequence[Range], taken: Sequence[Range], gateway: tuple[int, int], unmeasured: list[str]) -> list[Endpoint]:
    out = []
    for piece in pieces:
        address = probe_address(piece, taken)
        if address is None:
            unmeasured.append(range_label(piece))
            continue
        out.append(Endpoint(range_label(piece), gateway[0], gateway[1], address, external=piece))
    return out


# --- connection sets ----------------------------------------------------------------------


def connection_text(allowed: Mapping[str, Sequence[Range]]) -> str:
    """A connection set the way netpol-analyzer prints it.

    >>> connection_text({"TCP": [(1, 79), (81, 65535)], "UDP": [(53, 53)]})
    'TCP 1-79,81-65535,UDP 53'
    >>> connection_text({name: [(1, 65535)] for name in PROTOCOLS})
    'All Connections'
    """
    merged = {name: merge_ranges(ranges) for name, ranges in allowed.items() if ranges}
    if all(merged.get(name) == [(MIN_PORT, MAX_PORT)] for name in PROTOCOLS):
        return ALL_CONNECTIONS
    parts = [f"{name} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges) for name, ranges in merged.items()]
    return ",".join(sorted(parts))


@dataclass(frozen=True)
class Connection:
    src: str
    dst: str
    conn: str
    allowed: Mapping[str, tuple[Range, ...]] = field(default_factory=dict, compare=False)

    def line(self) -> str:
        return f"{self.src} => {self.dst} : {self.conn}"


@dataclass
class ConnList(Tabular):
    """The measured connectivity, the probes behind it, and what could not be measured."""

    connections: list[Connection]
    endpoints: list[Endpoint]
    port_pieces: dict[str, list[Range]]
    #: one row per probe: src, dst (endpoint indexes), protocol number, port, and the verdict
    probes: np.ndarray
    packets: int
    seconds: float
    unmeasured: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    columns = ["src", "dst", "conn"]

    def lines(self) -> list[str]:
        return [c.line() for c in self.connections]

    def records(self) -> list[dict[str, Any]]:
        """One row per allowed connection: src, dst, conn (netpol-analyzer's columns)."""
        return [{"src": c.src, "dst": c.dst, "conn": c.conn} for c in self.connections]

    def focused(self, workloads: Sequence[str]) -> "ConnList":
        """Only the connections of these workloads (``name`` or ``ns/name``), as
        netpol-analyzer's ``--focusworkload``."""
        wanted = set(workloads)

        def hit(label: str) -> bool:
            name = label.split("[", 1)[0]
            return name in wanted or name.rpartition("/")[2] in wanted

        kept = [c for c in self.connections if hit(c.src) or hit(c.dst)]
        return ConnList(kept, self.endpoints, self.port_pieces, self.probes, self.packets, self.seconds, self.unmeasured, self.notes)

    def render(self, fmt: str = "txt") -> str:
        """The list in one of netpol-analyzer's formats: txt, json, csv or md."""
        rows = [{"src": c.src, "dst": c.dst, "conn": c.conn} for c in self.connections]
        if fmt == "txt":
            return "".join(line + "\n" for line in self.lines())
        if fmt == "json":
            return json.dumps(rows, indent=2) + "\n"
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["src", "dst", "conn"])
            writer.writerows([r["src"], r["dst"], r["conn"]] for r in rows)
            return out.getvalue()
        if fmt == "md":
            head = ["| src | dst | conn |", "|-----|-----|------|"]
            return "\n".join(head + [f"| {r['src']} | {r['dst']} | {r['conn']} |" for r in rows]) + "\n"
        if fmt == "dot":
            return self.dot()
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")

    def dot(self) -> str:
        """Graphviz DOT: workloads (blue) and outside ranges (red), one edge per allowed
        connection labelled with its ports — netpol-analyzer's ``-o dot`` drawing."""
        names = sorted({c.src for c in self.connections} | {c.dst for c in self.connections})
        lines = ["digraph {"]
        for name in names:
            color = "red2" if name.endswith("[External]") else "blue"
            lines.append(f'\t{json.dumps(name)} [label={json.dumps(name)} color="{color}" fontcolor="{color}"]')
        for c in self.connections:
            lines.append(f'\t{json.dumps(c.src)} -> {json.dumps(c.dst)} [label={json.dumps(c.conn)} color="gold2" fontcolor="darkgreen"]')
        return "\n".join([*lines, "}"]) + "\n"


# --- the probes ---------------------------------------------------------------------------

PROBE = np.dtype([("src", np.int32), ("dst", np.int32), ("proto", np.uint8), ("port", np.int32), ("allowed", np.bool_)])


def plan_probes(workloads: int, sources: int, targets: int, pieces: Mapping[str, Sequence[Range]]) -> np.ndarray:
    """Every (source, destination, protocol, port piece) to measure.

    Endpoints are numbered workloads first, then outside sources, then outside targets:
    every ordered pair of workloads but a workload with itself, every outside source to
    every workload, every workload to every outside target.
    """
    w = np.arange(workloads, dtype=np.int32)
    src = np.repeat(w, workloads)
    dst = np.tile(w, workloads)
    keep = src != dst
    outside_src = np.arange(workloads, workloads + sources, dtype=np.int32)
    outside_dst = np.arange(workloads + sources, workloads + sources + targets, dtype=np.int32)
    src = np.concatenate([src[keep], np.repeat(outside_src, workloads), np.repeat(w, targets)])
    dst = np.concatenate([dst[keep], np.tile(w, sources), np.tile(outside_dst, workloads)])
    return _cross(src, dst, pieces)


def _cross(src: np.ndarray, dst: np.ndarray, pieces: Mapping[str, Sequence[Range]]) -> np.ndarray:
    """Every pair with every (protocol, representative port)."""
    protos = np.array([PROTOCOLS[name] for name, ranges in pieces.items() for _ in ranges], np.uint8)
    ports = np.array([lo for ranges in pieces.values() for lo, _ in ranges], np.int32)
    probes = np.zeros(len(src) * len(ports), PROBE)
    probes["src"] = np.repeat(src, len(ports))
    probes["dst"] = np.repeat(dst, len(ports))
    probes["proto"] = np.tile(protos, len(src))
    probes["port"] = np.tile(ports, len(src))
    return probes


def source_port(pieces: Mapping[str, Sequence[Range]]) -> int:
    """A source port that is no probed destination port (so no reverse flow meets a probe)."""
    probed = {lo for ranges in pieces.values() for lo, _ in ranges}
    return next(p for p in (*range(49152, 65536), *range(1024, 49152)) if p not in probed)


def _arrived_on(rows: np.ndarray) -> np.ndarray:
    """The interface each row arrived on (VIF_HOST for the host stack)."""
    return np.where(rows["outcome"] == HOST, VIF_HOST, rows["out_vif"])


def _at(rows: np.ndarray, node: np.ndarray, vif: np.ndarray) -> np.ndarray:
    """Rows delivered to the interface (node, vif) given per row."""
    arrived = (rows["outcome"] == DELIVERED) | (rows["outcome"] == HOST)
    return arrived & (rows["node"] == node) & (_arrived_on(rows) == vif)


def _replies(rows: np.ndarray, flags: int) -> np.ndarray:
    """The answers to ``rows``, sent from where each one arrived (protocols mixed)."""
    batch = new_batch(len(rows))
    batch["node"] = rows["node"]
    batch["in_vif"] = _arrived_on(rows)
    batch["sip"] = rows["out_dip"]
    batch["dip"] = rows["out_sip"]
    batch["sport"] = rows["out_dport"]
    batch["dport"] = rows["out_sport"]
    batch["proto"] = rows["proto"]
    batch["tcp_flags"] = np.where(rows["proto"] == TCP, flags, 0)
    batch["tag"] = rows["tag"]
    return batch


def measure(fabric: Fabric, endpoints: Sequence[Endpoint], probes: np.ndarray, sport: int) -> int:
    """Run the conversations of ``probes`` through the fabric, set their ``allowed``, and
    return the number of packets sent. Three batches: first packets, answers, TCP's ACKs."""
    if len(probes) == 0:
        return 0
    node = np.array([e.node for e in endpoints], np.int16)
    vif = np.array([e.vif for e in endpoints], np.int16)
    ip = np.array([e.ip for e in endpoints], np.uint32)
    label = np.array([e.fabric_label for e in endpoints], np.int32)
    outside_ep = np.array([e.external is not None for e in endpoints])
    src, dst = probes["src"], probes["dst"]
    from_outside, to_outside = outside_ep[src], outside_ep[dst]
    # an outside source enters at the fabric interface of the destination pod's node
    entry_node = np.where(from_outside, node[dst], node[src]).astype(np.int16)
    tcp = probes["proto"] == TCP

    first = new_batch(len(probes))
    first["node"] = entry_node
    first["in_vif"] = np.where(from_outside, VIF_FABRIC, vif[src])
    first["sip"] = ip[src]
    first["dip"] = ip[dst]
    first["sport"] = sport
    first["dport"] = probes["port"]
    first["proto"] = probes["proto"]
    first["tcp_flags"] = np.where(tcp, TCP_SYN, 0)
    first["tag"] = np.arange(len(probes))
    rows = fabric.run(first).packets
    packets = len(rows)
    tags = rows["tag"]
    reached = rows[_at(rows, node[dst[tags]], vif[dst[tags]])]

    answers = _replies(reached, TCP_SYN | TCP_ACK)
    # An outside peer answers through the fabric interface of the pod's node, the way a
    # gateway holding the pod's route sends it: with the label of the pod's interface.
    tags = answers["tag"]
    back_in = to_outside[tags]
    answers["node"] = np.where(back_in, node[src[tags]], answers["node"])
    answers["in_vif"] = np.where(back_in, VIF_FABRIC, answers["in_vif"])
    answers["in_label"] = np.where(back_in, label[src[tags]], answers["in_label"])
    rows = fabric.run(answers).packets
    packets += len(rows)
    tags = rows["tag"]
    back = rows[_at(rows, node[src[tags]], vif[src[tags]])]
    allowed = np.zeros(len(probes), bool)
    allowed[back["tag"][~tcp[back["tag"]]]] = True

    handshakes = back[tcp[back["tag"]]]
    if len(handshakes):
        acks = _replies(handshakes, TCP_ACK)
        tags = acks["tag"]
        again = from_outside[tags]  # the outside peer sends again through the fabric
        acks["node"] = np.where(again, entry_node[tags], acks["node"])
        acks["in_vif"] = np.where(again, VIF_FABRIC, acks["in_vif"])
        rows = fabric.run(acks).packets
        packets += len(rows)
        tags = rows["tag"]
        allowed[tags[_at(rows, node[dst[tags]], vif[dst[tags]])]] = True
    probes["allowed"] = allowed
    return packets


@dataclass
class ProbePlan:
    """What every block of probes shares on a worker: the endpoints and how to send."""

    endpoints: list[Endpoint]
    sport: int
    chunk: int  # probes sent between two emptyings of the flow tables
    aging: float


def measure_probes(fabric: Fabric, plan: ProbePlan, probes: np.ndarray) -> tuple[np.ndarray, int]:
    """A block of probes measured in chunks, as the single-process loop does: (allowed, packets)."""
    packets = 0
    for part in _chunks(len(probes), plan.chunk):
        chunk = probes[part]
        packets += measure(fabric, plan.endpoints, chunk, plan.sport)
        probes[part] = chunk
        if part.stop < len(probes):
            fabric.advance(plan.aging + 1)
    return probes["allowed"].copy(), packets


def source_blocks(probes: np.ndarray, endpoints: int, client: Any) -> list[np.ndarray]:
    """The probes' indexes in blocks of source endpoints, about four blocks per worker."""
    from vrouter.lab.parallel import worker_count

    workers = worker_count(client)
    edges = np.linspace(0, endpoints, num=min(endpoints, 4 * workers) + 1).astype(np.int64)
    which = np.searchsorted(edges, probes["src"], side="right") - 1
    return [block for block in (np.flatnonzero(which == b) for b in range(len(edges) - 1)) if len(block)]


def _chunks(count: int, size: int) -> Iterable[slice]:
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))


def without_host_network(scenario: Any) -> None:
    """netpol-analyzer's reading of host-network pods: ordinary pods, with their own address
    and interface, which NetworkPolicies select. (In TF a host-network pod is its node's host
    stack, and no NetworkPolicy applies to it.) Changes the scenario's manifests before it is
    applied: pods, and the pod templates of workloads."""
    for step in scenario.steps:
        for manifest in getattr(step, "manifests", ()):
            spec = manifest.obj.get("spec")
            if not isinstance(spec, dict):
                continue
            template = spec.get("template") or ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
            for pod_spec in (spec, template.get("spec") if isinstance(template, dict) else None):
                if isinstance(pod_spec, dict):
                    pod_spec.pop("hostNetwork", None)


def load(path: str | Path, seed: int = 0, allow_outside: bool = False, ipblock_selects_pods: bool = True, host_network_as_pods: bool = False) -> Simulation:
    """A scenario or manifest directory, built, in the chosen readings of the policies."""
    sim = Simulation.from_path(path, seed, allow_outside, ipblock_selects_pods)
    if host_network_as_pods:
        without_host_network(sim.scenario)
    return sim.build()


def admin_policies(sim: Simulation) -> list[dict[str, Any]]:
    """The AdminNetworkPolicies and BaselineAdminNetworkPolicy applied (TF realises neither)."""
    return [obj for (kind, _, _), obj in sorted(sim.cluster.ignored.items()) if kind in ADMIN_KINDS]


def connlist(sim: Simulation, intent: bool = False, admin_cuts: bool = False, client: Any = None) -> ConnList:
    """Measure the allowed connectivity of a built simulation (see the module's docstring);
    with ``intent``, evaluate Kubernetes' meaning instead (:mod:`vrouter.intent`), with the
    admin policies and the Ingress exposure lines. With a dask ``client``, blocks of source
    endpoints are measured on its workers (:mod:`vrouter.lab.parallel`)."""
    started = time.perf_counter()
    store = sim.cluster.store
    policies = store.list("NetworkPolicy")
    pods = store.list("Pod")
    admin = admin_policies(sim)
    notes: list[str] = []
    unmeasured: list[str] = []
    named = [port for pod in pods for port in container_ports(pod)]
    cut_for_admin = intent or admin_cuts  # admin_cuts: cut as the intent view does, to compare with it
    pieces = port_pieces(policies, pods, admin_port_cuts(admin, named) if cut_for_admin else None)
    gateway_node = sim.nodes[GATEWAY_NODE]
    client_vif = next(i for i, v in gateway_node.vifs.items() if v.type == VIF_CLIENT)
    gateway = (gateway_node.index, client_vif)
    taken = [] if intent else cluster_ranges(sim)  # the intent view probes no packet

    pod_ends = workloads(sim, notes)
    sources = outside(address_pieces(policies, "ingress"), taken, gateway, unmeasured)
    targets = outside(address_pieces(policies, "egress", admin_networks(admin) if cut_for_admin else ()), taken, gateway, unmeasured)
    endpoints = [*pod_ends, *sources, *targets]
    probes = plan_probes(len(pod_ends), len(sources), len(targets), pieces)
    routes = [o for (kind, _, _), o in sorted(sim.cluster.ignored.items()) if kind == "Route"]
    if intent:
        objects = [*store.list("Namespace"), *pods, *policies, *admin]
        evaluate(Intent(objects), store, endpoints, probes)
        connections = summarize(endpoints, probes, pieces) + exposure_lines(pod_ends, intended_exposure(store, objects, routes))
        return ConnList(connections, endpoints, pieces, probes, 0, time.perf_counter() - started, [], notes)
    for policy in admin:
        notes.append(f"{policy['kind']} {policy['metadata']['name']} is not realised by Tungsten Fabric (no TF code reads it): it counts in the intent view only (connlist --intent)")
    # two host-network workloads on one node share its host stack: their traffic never
    # reaches the vRouter, so there is nothing to measure between them
    host = np.array([e.host for e in endpoints], bool)
    node = np.array([e.node for e in endpoints])
    local = host[probes["src"]] & host[probes["dst"]] & (node[probes["src"]] == node[probes["dst"]])
    if local.any():
        pairs = sorted({(endpoints[a].label, endpoints[b].label) for a, b in zip(probes["src"][local].tolist(), probes["dst"][local].tolist(), strict=True)})
        notes.append(f"{len(pairs)} pairs of host-network workloads share a node (traffic between them never reaches the vRouter), not measured")
        probes = probes[~local]

    sport = source_port(pieces)
    settings = sim.scenario.cluster.vrouter
    size = conversations_per_run(settings)
    plan = ProbePlan(endpoints, sport, size, settings.agingSeconds)
    if client is not None:
        from vrouter.lab.parallel import FabricImage, map_blocks

        blocks = source_blocks(probes, len(endpoints), client)
        results, engines = map_blocks(client, measure_probes, FabricImage.of(sim.nodes, settings), plan, [probes[b] for b in blocks], f"connlist: {len(probes):,} probes")
        for block, (allowed, _) in zip(blocks, results, strict=True):
            probes["allowed"][block] = allowed
        packets = sum(sent for _, sent in results)
        sim.fabric.engines.update(dict.fromkeys(engines, 1))
    else:
        packets = 0
        parts = list(_chunks(len(probes), size))
        with task(f"connlist: {len(probes):,} probes", total=len(parts)) as advance:
            for part in parts:
                chunk = probes[part]
                packets += measure(sim.fabric, endpoints, chunk, sport)
                probes[part] = chunk
                if part.stop < len(probes):
                    sim.fabric.advance(settings.agingSeconds + 1)  # forget this chunk's flows
                advance()
    connections = summarize(endpoints, probes, pieces) + exposure_lines(pod_ends, measured_exposure(sim, routes, notes))
    if unmeasured:
        notes.append("outside ranges inside cluster addresses, so not probed: " + ", ".join(unmeasured))
    return ConnList(connections, endpoints, pieces, probes, packets, time.perf_counter() - started, unmeasured, notes)


def evaluate(intent: Intent, store: Any, endpoints: Sequence[Endpoint], probes: np.ndarray) -> None:
    """The intent view's verdict for every probe (no packet is sent)."""
    ends: list[Pod | str] = []
    for end in endpoints:
        if end.external is not None:
            ends.append(ip_text(end.ip))
        else:
            namespace, _, name = (end.pod or "").partition("/")
            ends.append(Pod.from_object(store.get("Pod", namespace, name)))
    rows = list(zip(probes["src"].tolist(), probes["dst"].tolist(), probes["proto"].tolist(), probes["port"].tolist(), strict=True))
    verdicts = np.zeros(len(rows), bool)
    step = 4096  # the progress display is told per block of probes, not per probe
    with task(f"connlist --intent: {len(rows):,} probes", total=len(rows)) as advance:
        for start in range(0, len(rows), step):
            for i, (src, dst, proto, port) in enumerate(rows[start : start + step], start):
                verdicts[i] = intent.allowed(ends[src], ends[dst], PROTOCOL_NAMES[proto], port)
            advance(min(step, len(rows) - start))
    probes["allowed"] = verdicts


def intended_exposure(store: Any, objects: Sequence[Mapping[str, Any]], routes: Sequence[Mapping[str, Any]] = ()) -> list[tuple[str, str, int]]:
    """What Ingresses (and Routes) expose, where the pod's ingress side admits the controller
    (:data:`vrouter.intent.INGRESS_CONTROLLER`)."""
    intent = Intent(objects)
    out = []
    for pod_name, protocol, port in exposure([*objects, *store.list("Ingress"), *store.list("Service"), *routes]):
        namespace, _, name = pod_name.partition("/")
        if intent.direction(Pod.from_object(store.get("Pod", namespace, name)), INGRESS_CONTROLLER, protocol, port, egress=False):
            out.append((pod_name, protocol, port))
    return out


def exposure_lines(workloads_: Sequence[Endpoint], exposed: Sequence[tuple[str, str, int]]) -> list[Connection]:
    """``{ingress-controller} => workload : ports``, one line per workload exposed."""
    label_of = {pod: end.label for end in workloads_ for pod in end.pods}
    sets: dict[str, dict[str, list[Range]]] = {}
    for pod_name, protocol, port in exposed:
        if pod_name in label_of:
            sets.setdefault(label_of[pod_name], {}).setdefault(protocol, []).append((port, port))
    return [Connection("{ingress-controller}", label, connection_text({p: merge_ranges(r) for p, r in s.items()})) for label, s in sorted(sets.items())]


def summarize(endpoints: Sequence[Endpoint], probes: np.ndarray, pieces: Mapping[str, Sequence[Range]]) -> list[Connection]:
    """The allowed probes merged into one connection set per (source, destination), sorted."""
    piece_of = {(PROTOCOLS[name], lo): (lo, hi) for name, ranges in pieces.items() for lo, hi in ranges}
    allowed = probes[probes["allowed"]]
    grouped: dict[tuple[int, int], dict[str, list[Range]]] = {}
    for src, dst, proto, port in zip(allowed["src"].tolist(), allowed["dst"].tolist(), allowed["proto"].tolist(), allowed["port"].tolist(), strict=True):
        grouped.setdefault((src, dst), {}).setdefault(PROTOCOL_NAMES[proto], []).append(piece_of[(proto, port)])
    out = []
    for (src, dst), sets in grouped.items():
        merged = {name: tuple(merge_ranges(sets[name])) for name in PROTOCOLS if name in sets}
        out.append(Connection(endpoints[src].label, endpoints[dst].label, connection_text(merged), merged))
    return sorted(out, key=lambda c: (c.src, c.dst))
