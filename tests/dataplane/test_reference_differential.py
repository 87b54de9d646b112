"""The numba dataplane held against the plain-Python reference, on random clusters and traffic.

``vrouter.reference.dataplane`` implements docs/dataplane.md independently of the kernel
(``vrouter.dataplane.pipeline`` driven by ``vrouter.lab.fabric``). Both start from empty flow
tables, get the same tables and the same sequence of batches (conversations between random
endpoints, their replies, raw random rows, small flow-setup budgets, ageing), and must agree
on every packet's fate field by field. Any disagreement is a bug on one side: decide which
from docs/dataplane.md.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from controlplane import inet
from controlplane.config import GATEWAY_NODE, ClusterConfig
from controlplane.errors import InputError
from vrouter.lab import traffic
from vrouter.dataplane.ecmp import ecmp_hash as kernel_ecmp_hash
from vrouter.dataplane.flow_table import flow_hash as kernel_flow_hash
from vrouter.dataplane.flow_table import new_flow_table, pack_key, table_n_main, table_n_overflow
from vrouter.dataplane.packets import (
    DELIVERED,
    DROP_FLOW_TABLE_FULL,
    DROP_REASONS,
    DROPPED,
    HOST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    OUTCOME_NAMES,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    new_batch,
)
from vrouter.dataplane.tables import PROTO_ICMP, PROTO_SCTP, PROTO_TCP, PROTO_UDP
from vrouter.reference.dataplane import FlowTable, ReferenceFabric, ecmp_hash, flow_hash
from vrouter.lab.sim import Simulation

COMPARED = (
    "outcome",
    "drop_reason",
    "node",
    "out_vif",
    "out_node",
    "out_label",
    "out_sip",
    "out_dip",
    "out_sport",
    "out_dport",
    "out_ttl",
    "ecmp_slot",
    "hops",
    "flow",  # not required by the docs' contract, but the reference places flows as the table does
)
PROTOS = (PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_SCTP)
K8S_PROTOCOLS = ("TCP", "UDP", "SCTP")
APPS = ("a", "b", "c")
NODE_IPS = ("172.27.10.74", "172.27.10.75", "172.27.10.76")
PORTS = (53, 80, 443, 5432, 8080, 9090)
U32 = 0xFFFFFFFF
MAX_EXAMPLES = int(os.environ.get("VRSIM_DIFFERENTIAL_EXAMPLES", "200"))  # raise it for a soak run
STATS = {"clusters": 0, "batches": 0, "packets": 0}  # what the differential test compared (printed at the end of the run)


# ------------------------------------------------------------------- hashes and table sizes


@settings(max_examples=300, deadline=None)
@given(
    key_nh=st.integers(1, 2**24 - 1),
    sip=st.integers(0, U32),
    dip=st.integers(0, U32),
    proto=st.integers(0, 255),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    fields=st.integers(0, 31),
)
def test_reference_hashes_match_the_kernels(key_nh: int, sip: int, dip: int, proto: int, sport: int, dport: int, fields: int) -> None:
    key = (key_nh, sip, dip, proto, sport, dport)
    assert flow_hash(key) == int(kernel_flow_hash(*pack_key(*key)))
    assert ecmp_hash(sip, dip, proto, sport, dport, fields) == int(
        kernel_ecmp_hash(np.uint32(sip), np.uint32(dip), proto, sport, dport, fields)
    )


@pytest.mark.parametrize(("entries", "fraction"), [(16, 0.2), (17, 0.0), (64, 0.2), (100, 0.3), (1000, 1.0), (512 * 1024, 0.2)])
def test_reference_flow_table_has_the_kernels_capacity(entries: int, fraction: float) -> None:
    kernel = new_flow_table(entries, fraction)
    ref = FlowTable(entries, fraction)
    assert (ref.n_main, ref.n_overflow) == (table_n_main(kernel), table_n_overflow(kernel))


# ------------------------------------------------------------------------- random clusters


def _pod(name: str, ns: str, app: str, tier: str | None, ports: list[tuple[int, str | None, str]], node: str | None) -> dict:
    labels = {"app": app} | ({"tier": tier} if tier else {})
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if ports:
        container["ports"] = [
            {"containerPort": port, "protocol": proto} | ({"name": name} if name else {}) for port, name, proto in ports
        ]
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}


@st.composite
def container_ports(draw: st.DrawFn) -> list[tuple[int, str | None, str]]:
    chosen = draw(st.lists(st.sampled_from(PORTS), max_size=2, unique=True))
    return [(p, draw(st.sampled_from([None, f"p{p}", "web"])) if i == 0 else None, draw(st.sampled_from(K8S_PROTOCOLS))) for i, p in enumerate(chosen)]


@st.composite
def selectors(draw: st.DrawFn) -> dict:
    return draw(st.sampled_from([{}, {"matchLabels": {"app": "a"}}, {"matchLabels": {"app": "b"}}, {"matchLabels": {"tier": "x"}}, {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "c"]}]}]))


@st.composite
def policy_peers(draw: st.DrawFn, namespaces: list[str]) -> dict:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ipblock"]))
    if kind == "ipblock":
        cidr = draw(st.sampled_from(["10.32.0.0/12", "10.47.255.0/24", "0.0.0.0/0", "172.27.10.0/24", "10.96.0.0/12", "198.51.100.0/24"]))
        block: dict[str, Any] = {"cidr": cidr}
        if cidr == "10.32.0.0/12" and draw(st.booleans()):
            block["except"] = ["10.47.255.248/30"]
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        ns = draw(st.sampled_from(namespaces))
        peer["namespaceSelector"] = draw(st.sampled_from([{}, {"matchLabels": {"kubernetes.io/metadata.name": ns}}]))
    return peer


@st.composite
def policy_ports(draw: st.DrawFn) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        port: dict[str, Any] = {"protocol": draw(st.sampled_from(K8S_PROTOCOLS))}
        choice = draw(st.sampled_from(["number", "range", "name", "none"]))
        if choice == "number":
            port["port"] = draw(st.sampled_from(PORTS))
        elif choice == "range":
            port["port"] = draw(st.sampled_from(PORTS))
            port["endPort"] = port["port"] + draw(st.sampled_from([0, 1, 10, 1000]))
        elif choice == "name":
            port["port"] = draw(st.sampled_from(["web", "p80", "p8080"]))
        out.append(port)
    return out


@st.composite
def network_policies(draw: st.DrawFn, ns: str, name: str, namespaces: list[str]) -> dict:
    types = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    spec: dict[str, Any] = {"podSelector": draw(selectors()), "policyTypes": types}
    for direction, side in (("Ingress", "from"), ("Egress", "to")):
        if direction in types:
            rules = []
            for _ in range(draw(st.integers(0, 2))):
                rule: dict[str, Any] = {}
                peers = draw(st.lists(policy_peers(namespaces), max_size=2))
                if peers:
                    rule[side] = peers
                ports = draw(policy_ports())
                if ports:
                    rule["ports"] = ports
                rules.append(rule)
            spec[direction.lower()] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


@st.composite
def services(draw: st.DrawFn, ns: str, name: str, public: bool, apps: list[str]) -> dict:
    svc_type = draw(st.sampled_from(["ClusterIP", "NodePort"] + (["LoadBalancer"] if public else [])))
    ports = []
    for i in range(draw(st.integers(1, 2))):
        port = {"name": f"s{i}", "port": draw(st.sampled_from([80, 443, 53, 8080])) + i, "protocol": draw(st.sampled_from(K8S_PROTOCOLS))}
        port["targetPort"] = draw(st.sampled_from([80, 8080, 9090, 5432, "web", "p80", "p8080"]))
        ports.append(port)
    spec: dict[str, Any] = {"type": svc_type, "selector": {"app": draw(st.sampled_from(apps or list(APPS)))}, "ports": ports}
    if svc_type != "ClusterIP":
        spec["externalTrafficPolicy"] = draw(st.sampled_from(["Cluster", "Local"]))
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


@st.composite
def tf_policies(draw: st.DrawFn, isolated: list[str]) -> dict:
    """A ``vrsim.tf/v1`` NetworkPolicy joining isolated namespaces' VNs (to each other or to the
    default pod network), with pass and deny rules: the only source of VN-ACL denials."""
    vns = [f"k8s-{ns}:k8s-{ns}-pod-network" for ns in isolated] + ["k8s-default:k8s-default-pod-network"]
    vns += draw(st.lists(st.sampled_from([f"k8s-{ns}:k8s-{ns}-service-network" for ns in isolated]), max_size=1))
    attach = draw(st.lists(st.sampled_from(vns), min_size=2, max_size=len(vns), unique=True))
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {
            "action": draw(st.sampled_from(["pass", "deny"])),
            "protocol": draw(st.sampled_from(["any", "tcp", "udp", "icmp", "sctp"])),
            "direction": draw(st.sampled_from(["<>", ">"])),
            "src": draw(st.sampled_from([*attach, "any"])),
            "dst": draw(st.sampled_from([*attach, "any"])),
        }
        ports = draw(st.sampled_from([None, 80, "8000-9000", "1-1024"]))
        if ports is not None:
            rule["ports"] = ports
        if draw(st.integers(0, 3)) == 0:
            rule["srcPorts"] = "32768-65535"
        rules.append(rule)
    if draw(st.booleans()):
        rules.append({"action": "pass", "protocol": "any", "direction": "<>", "src": attach[0], "dst": attach[1]})
    return {"apiVersion": "vrsim.tf/v1", "kind": "NetworkPolicy", "metadata": {"name": "join", "project": "k8s-default"}, "spec": {"rules": rules, "attachTo": attach}}


@st.composite
def clusters(draw: st.DrawFn) -> tuple[dict, list[dict]]:
    """(cluster config, objects): 2-3 nodes, a few namespaces, pods, services and policies."""
    n_nodes = draw(st.integers(2, 3))
    nodes = [{"name": f"worker{i + 1:02d}", "ip": NODE_IPS[i]} for i in range(n_nodes)]
    config: dict[str, Any] = {"nodes": nodes, "encapsulation": draw(st.sampled_from(["MPLSoUDP", "MPLSoGRE", "VXLAN"]))}
    vrouter: dict[str, Any] = {
        "flowEntries": draw(st.sampled_from([16, 32, 64, 256, 4096])),
        "overflowFraction": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "holdQueue": draw(st.integers(0, 3)),
    }
    fields = draw(st.lists(st.sampled_from(["sip", "dip", "proto", "sport", "dport"]), max_size=5, unique=True))
    if fields:
        vrouter["ecmpHashFields"] = fields
    config["vrouter"] = vrouter
    public = draw(st.booleans())
    if public:
        config["publicFipPool"] = {"name": "public-pool", "network": "public", "subnet": "203.0.113.0/24"}

    objects: list[dict] = []
    namespaces = ["default"]
    isolated: list[str] = []
    for i in range(draw(st.integers(0, 2))):
        name = f"ns{i}"
        mode = draw(st.sampled_from(["plain", "isolated", "isolated-open"]))
        notes = {}
        if mode != "plain":
            notes["opencontrail.org/isolation"] = "true"
            isolated.append(name)
            if mode == "isolated-open":
                notes["opencontrail.org/isolation.service"] = "false"
        meta: dict[str, Any] = {"name": name} | ({"annotations": notes} if notes else {})
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        namespaces.append(name)
    if isolated and draw(st.booleans()):
        objects.append(draw(tf_policies(isolated)))
    node_names = [n["name"] for n in nodes]
    for i in range(draw(st.integers(1, 5))):
        ns = draw(st.sampled_from(namespaces + isolated))  # isolated ones twice as likely: joins need them
        pin = draw(st.one_of(st.none(), st.sampled_from(node_names)))
        tier = draw(st.sampled_from([None, "x", "y"]))
        objects.append(_pod(f"p{i}", ns, draw(st.sampled_from(APPS)), tier, draw(container_ports()), pin))
    if draw(st.booleans()):
        ns = draw(st.sampled_from(namespaces))
        template = _pod("unused", ns, draw(st.sampled_from(APPS)), None, draw(container_ports()), None)
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "deploy", "namespace": ns},
                "spec": {
                    "replicas": draw(st.integers(1, 3)),
                    "selector": {"matchLabels": template["metadata"]["labels"]},
                    "template": {"metadata": {"labels": template["metadata"]["labels"]}, "spec": template["spec"]},
                },
            }
        )
    for i in range(draw(st.integers(0, 2))):
        # mostly in a namespace whose pods carry the selected label, so that it has members
        ns = draw(st.sampled_from(namespaces))
        apps = [o["metadata"]["labels"]["app"] for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == ns]
        apps += [o["spec"]["selector"]["matchLabels"]["app"] for o in objects if o["kind"] == "Deployment" and o["metadata"]["namespace"] == ns] * 3
        objects.append(draw(services(ns, f"svc{i}", public, apps)))
    for i in range(draw(st.integers(0, 2))):
        objects.append(draw(network_policies(draw(st.sampled_from(namespaces)), f"np{i}", namespaces)))
    return config, objects


# --------------------------------------------------------------------------------- traffic


class World:
    """What the traffic generator may name in one built cluster (rebuilt after each change)."""

    def __init__(self, sim: Simulation) -> None:
        store = sim.cluster.store
        self.sim = sim
        self.pods = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in store.list("Pod") if (p.get("status") or {}).get("podIP")]
        self.nodes = [n for n in sim.nodes if n != GATEWAY_NODE]
        self.services: list[tuple[str, int]] = []
        self.external_services: list[tuple[str, int]] = []
        self.node_ports: list[int] = []
        addresses = {inet.ip_int(traffic.EXTERNAL_CLIENT), inet.ip_int("10.47.255.254"), inet.ip_int("10.47.255.253")}
        ports = set(PORTS) | {30000, 32767}
        for svc in store.list("Service"):
            spec = svc.get("spec") or {}
            name = f"service/{svc['metadata']['namespace']}/{svc['metadata']['name']}"
            for p in spec.get("ports") or []:
                ports.add(int(p["port"]))
                if p.get("nodePort"):
                    ports.add(int(p["nodePort"]))
                    self.node_ports.append(int(p["nodePort"]))
                if isinstance(p.get("targetPort"), int):
                    ports.add(p["targetPort"])
                if spec.get("clusterIP") not in (None, "None"):
                    self.services.append((name, int(p["port"])))
                if (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or spec.get("externalIPs"):
                    self.external_services.append((name + ":external", int(p["port"])))
            for ip in [spec.get("clusterIP"), *(spec.get("externalIPs") or [])]:
                if ip and ip != "None":
                    addresses.add(inet.ip_int(ip))
        for p in store.list("Pod"):
            ip = (p.get("status") or {}).get("podIP")
            if ip:
                addresses.add(inet.ip_int(ip))
        for node in sim.nodes.values():
            addresses.update(int(a) for a in node.tables.node_ip)
        self.addresses = sorted(addresses)
        self.ports = sorted(ports)
        self.raw: dict[str, Any] | None = None  # raw_rows' strategies, made on first use

    def endpoints(self, kind: str) -> tuple[list[str], list[tuple[str, int | None]]]:
        """(sources, targets) of one kind of conversation."""
        nodes = [f"node/{n}" for n in self.nodes]
        outside = ["external", "fabric:192.0.2.7", "fabric:10.47.255.200"]
        node_ports = [(n, port) for n in nodes for port in self.node_ports]
        if kind == "east-west":  # pods (and nodes) to pods and ClusterIPs
            return self.pods or nodes, [(p, None) for p in self.pods] + self.services + [(n, None) for n in nodes]
        if kind == "north-south":  # the outside to node ports and load balancers
            return outside + nodes, node_ports + self.external_services + [(n, None) for n in nodes]
        if kind == "out":  # pods and nodes to the outside and to addresses nobody holds
            strangers = [("external", None), ("fabric:192.0.2.9", None), ("10.47.255.1", None), ("10.100.0.1", None), ("8.8.8.8", None)]
            return [*self.pods, *nodes], strangers + self.external_services
        sources = [*self.pods, *nodes, *outside]
        targets = [(p, None) for p in self.pods] + [(n, None) for n in nodes] + self.services + self.external_services + node_ports
        return sources, targets + [("external", None), ("8.8.8.8", None)]


def _inside(cidr: str) -> st.SearchStrategy[int]:
    net = ipaddress.IPv4Network(cidr)
    return st.integers(int(net.network_address), int(net.broadcast_address))


TCP_FLAG_SETS = (TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_FIN, TCP_RST | TCP_ACK, 0)


@st.composite
def raw_rows(draw: st.DrawFn, world: World, n: int) -> np.ndarray:
    """Rows aimed anywhere: random node, vif (some invalid), label (some invalid), header."""
    if world.raw is None:  # strategies built once per world: drawing is the test's main cost
        addresses = st.one_of(
            st.sampled_from(world.addresses),
            _inside("10.47.255.240/28"),
            _inside("10.32.0.0/12"),
            _inside("10.96.0.0/12"),
            _inside("203.0.113.248/29"),
            st.integers(0, U32),
        )
        labels = {}
        for node in world.sim.nodes.values():
            t = node.tables
            known = [label for label, v in enumerate(t.mpls_nh.tolist()) if v >= 0] + [vni for vni, v in enumerate(t.vni_vrf.tolist()) if v >= 0]
            labels[node.index] = st.one_of(st.sampled_from(known), st.integers(0, 40)) if known else st.integers(0, 40)
        world.raw = {
            "node": st.sampled_from(list(world.sim.nodes.values())),
            "address": addresses,
            "port": st.one_of(st.sampled_from(world.ports), st.integers(0, 65535)),
            "labels": labels,
        }
    raw = world.raw
    batch = new_batch(n)
    for i in range(n):
        node = draw(raw["node"])
        row = batch[i]
        row["node"] = node.index
        row["in_vif"] = draw(st.integers(-1, max(node.vifs) + 2))
        if draw(st.integers(0, 3)) == 0:
            row["in_label"] = draw(raw["labels"][node.index])
            row["in_vif"] = draw(st.sampled_from((0, 0, 0, int(row["in_vif"]))))
        row["sip"] = draw(raw["address"])
        row["dip"] = draw(raw["address"])
        proto = draw(st.sampled_from(PROTOS + (47,)))
        row["proto"] = proto
        if proto == PROTO_ICMP:
            row["sport"] = draw(st.integers(0, 65535))
            row["dport"] = draw(st.one_of(st.just(0), raw["port"]))
            row["icmp_type"] = draw(st.sampled_from((ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY)))
        else:
            row["sport"] = draw(raw["port"])
            row["dport"] = draw(raw["port"])
        if proto == PROTO_TCP:
            row["tcp_flags"] = draw(st.sampled_from(TCP_FLAG_SETS))
        row["ttl"] = draw(st.sampled_from((64, 64, 0, 1, 2, 3)))
        row["tag"] = 10_000 + i
    return batch


@st.composite
def conversations(draw: st.DrawFn, world: World) -> np.ndarray | None:
    """First packets of a few flows between two named endpoints (None if they cannot talk)."""
    kind = draw(st.sampled_from(["east-west", "east-west", "north-south", "out", "any", "spoofed"]))
    sources, targets = world.endpoints("east-west" if kind == "spoofed" else kind)
    if not sources or not targets:
        return None
    source = draw(st.sampled_from(sources))
    target, port = draw(st.sampled_from(targets))
    proto = draw(st.sampled_from(PROTOS))
    if port is None and proto != PROTO_ICMP:
        port = draw(st.sampled_from(world.ports))
    try:
        dst = traffic.resolve_target(world.sim, target, port)
        src = traffic.resolve_source(world.sim, source, dst)
    except InputError:
        return None
    first_port = draw(st.integers(1024, 65500))
    first = traffic.first_packets(src, dst, proto, draw(st.integers(1, 4)), first_port)
    if kind == "spoofed":  # from someone else's address (a ClusterIP, a node...): replies meet its route
        first["sip"] = draw(st.sampled_from(world.addresses))
    return first


# What a conversation may send next, by how many steps it already took: the answerer's packets
# are built from where the first packets arrived, the sender's by sending its rows again.
TCP_SCRIPT = (
    ("answer", "answer", "fin", "reply-rst"),
    ("ack", "fin", "reply-fin", "rst"),
    ("fin", "reply-fin", "again", "answer"),
)
OTHER_SCRIPT = (("answer", "again"),)
FLAGS = {
    "again": TCP_SYN,
    "answer": TCP_SYN | TCP_ACK,
    "ack": TCP_ACK,
    "fin": TCP_FIN | TCP_ACK,
    "rst": TCP_RST,
    "reply-fin": TCP_FIN | TCP_ACK,
    "reply-rst": TCP_RST | TCP_ACK,
}


class Conversation:
    """Flows started together: the rows as first sent, and where each one ended."""

    def __init__(self, first: np.ndarray) -> None:
        self.sent = first
        self.final: np.ndarray | None = None
        self.steps = 0
        self.last = ""

    def options(self) -> tuple[str, ...]:
        if self.last in ("fin", "reply-fin"):  # mostly the other side's FIN next: the pair closes
            other = "reply-fin" if self.last == "fin" else "fin"
            return (other, other, "again", "rst")
        script = TCP_SCRIPT if (self.sent["proto"] == PROTO_TCP).any() else OTHER_SCRIPT
        return script[min(self.steps, len(script) - 1)]

    def next_packets(self, kind: str) -> np.ndarray:
        """The sender's rows again (with the step's TCP flags), or the answers to those that
        arrived; raw rows of mixed protocols are followed up the same way."""
        self.steps += 1
        self.last = kind
        if kind in ("again", "ack", "fin", "rst"):
            out = new_batch(len(self.sent))
            for f in ("node", "in_vif", "in_label", "sip", "dip", "sport", "dport", "proto", "icmp_type", "tag"):
                out[f] = self.sent[f]
            out["tcp_flags"] = np.where(self.sent["proto"] == PROTO_TCP, FLAGS[kind], 0)
            return out
        assert self.final is not None
        arrived = self.final[traffic.arrived(self.final)]
        parts = [new_batch(0)]
        for proto in np.unique(arrived["proto"]):
            rows = arrived[arrived["proto"] == proto]
            parts.append(traffic.answers(rows, int(proto), FLAGS[kind] if proto == PROTO_TCP else 0))
        return np.concatenate(parts)


@st.composite
def changes(draw: st.DrawFn, sim: Simulation) -> str | None:
    """Change the configuration between batches: an ECMP member goes (a hole) or comes, a
    deployment scales. Returns what was done (None: nothing)."""
    store = sim.cluster.store
    pods = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in store.list("Pod")]
    kind = draw(st.sampled_from(["delete-pod", "delete-pod", "add-pod", "scale"]))
    if kind == "delete-pod" and pods:
        selected = {(s["metadata"]["namespace"], (s["spec"].get("selector") or {}).get("app")) for s in store.list("Service")}
        members = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in store.list("Pod") if (p["metadata"]["namespace"], p["metadata"].get("labels", {}).get("app")) in selected]
        ns, name = draw(st.sampled_from(members + pods))  # members first: composites keep a hole
        sim.cluster.delete("pod", ns, name)
        return f"deleted pod {ns}/{name}"
    if kind == "add-pod":
        ns = draw(st.sampled_from(sorted({ns for ns, _ in pods} | {"default"})))
        name = f"late{len(pods)}"
        sim.cluster.apply_objects([_pod(name, ns, draw(st.sampled_from(APPS)), None, draw(container_ports()), None)])
        return f"added pod {ns}/{name}"
    deploys = store.list("Deployment")
    if kind == "scale" and deploys:
        deploy = dict(deploys[0])
        deploy["spec"] = dict(deploy["spec"]) | {"replicas": draw(st.integers(0, 3))}
        sim.cluster.apply_objects([{k: v for k, v in deploy.items() if k != "status"}])
        return f"scaled deployment to {deploy['spec']['replicas']}"
    return None


def _describe(row: np.void) -> str:
    return (
        f"node {row['node']} {OUTCOME_NAMES[row['outcome']]} {DROP_REASONS[row['drop_reason']]} vif {row['out_vif']} "
        f"→node {row['out_node']} label {row['out_label']} {inet.ip_text(row['out_sip'])}:{row['out_sport']} → "
        f"{inet.ip_text(row['out_dip'])}:{row['out_dport']} ttl {row['out_ttl']} slot {row['ecmp_slot']} hops {row['hops']} flow {row['flow']}"
    )


def assert_same(batch: np.ndarray, kernel: np.ndarray, ref: np.ndarray, step: str) -> None:
    """Every row alike on every COMPARED field."""
    assert len(kernel) == len(ref) == len(batch)
    for i in range(len(batch)):
        diff = [f for f in COMPARED if kernel[i][f] != ref[i][f]]
        if not diff:
            continue
        sent = batch[i]
        raise AssertionError(
            f"{step}: row {i} disagrees on {diff}\n"
            f"  sent:      node {sent['node']} vif {sent['in_vif']} label {sent['in_label']} proto {sent['proto']} "
            f"{inet.ip_text(sent['sip'])}:{sent['sport']} → {inet.ip_text(sent['dip'])}:{sent['dport']} "
            f"flags {sent['tcp_flags']:#x} ttl {sent['ttl']}\n"
            f"  kernel:    {_describe(kernel[i])}\n  reference: {_describe(ref[i])}"
        )


def assert_conserved(rows: np.ndarray, injected: int) -> None:
    outcomes = rows["outcome"]
    arrived = int(np.count_nonzero((outcomes == DELIVERED) | (outcomes == HOST)))
    dropped = int(np.count_nonzero(outcomes == DROPPED))
    assert arrived + dropped == injected == len(rows)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(cluster=clusters(), data=st.data())
def test_kernel_and_reference_agree(cluster: tuple[dict, list[dict]], data: st.DataObject) -> None:
    config_dict, objects = cluster
    config = ClusterConfig.model_validate(config_dict)
    try:
        sim = Simulation.from_objects(objects, config)
        nodes = sim.nodes
    except InputError as exc:  # a generated manifest the validator refuses: not this test's subject
        event(f"rejected: {exc}")
        assume(False)
    ref = ReferenceFabric(nodes, config.vrouter)
    world = World(sim)
    talks: list[Conversation] = []
    STATS["clusters"] += 1

    for step in range(data.draw(st.integers(2, 7), label="batches")):
        parts: list[np.ndarray] = []
        owners: list[Conversation | None] = []
        for talk in talks:
            if talk.final is not None and data.draw(st.integers(0, 4), label="go on") > 0:
                parts.append(talk.next_packets(data.draw(st.sampled_from(talk.options()), label="next")))
                owners.append(None)
        for _ in range(data.draw(st.integers(0, 3), label="new conversations")):
            first = data.draw(conversations(world), label="conversation")
            if first is not None:
                talks.append(Conversation(first))
                parts.append(first)
                owners.append(talks[-1])
        n_raw = data.draw(st.integers(0, 12), label="raw rows")
        if n_raw:
            talks.append(Conversation(data.draw(raw_rows(world, n_raw), label="raw")))
            parts.append(talks[-1].sent)
            owners.append(talks[-1])
        if not parts:
            continue
        sizes = [len(p) for p in parts]
        batch = np.concatenate(parts)
        order = np.arange(len(batch))
        if data.draw(st.booleans(), label="shuffle"):
            order = np.array(data.draw(st.permutations(range(len(batch))), label="order"), dtype=np.int64)
        batch = batch[order]
        max_setups = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="max_setups")

        traced = data.draw(st.booleans(), label="traced")  # tracing must not change a packet's fate
        result = sim.fabric.run(batch.copy(), trace_capacity=20_000 if traced else 0, max_setups=max_setups)
        setups_before = ref.flow_setups
        r_rows = ref.run(batch.copy(), max_setups=max_setups)
        k_rows = result.packets
        assert_conserved(k_rows, len(batch))
        assert_conserved(r_rows, len(batch))
        assert_same(batch, k_rows, r_rows, f"batch {step} (max_setups={max_setups})")
        assert result.flow_setups == ref.flow_setups - setups_before, f"flow setups in batch {step}"
        assert sim.fabric.drop_counters() == ref.drop_counters(), f"dropstats after batch {step}"
        STATS["packets"] += len(batch)
        STATS["batches"] += 1
        for o in np.unique(k_rows["outcome"]):
            event(f"outcome {OUTCOME_NAMES[o]}")
        for r in np.unique(k_rows["drop_reason"][k_rows["outcome"] == DROPPED]):
            event(f"drop {DROP_REASONS[r]}")

        unshuffled = np.empty_like(k_rows)
        unshuffled[order] = k_rows
        offsets = np.cumsum([0, *sizes])
        for talk, lo, hi in zip(owners, offsets[:-1], offsets[1:], strict=True):
            if talk is not None:
                talk.final = unshuffled[lo:hi]

        if data.draw(st.integers(0, 3), label="change?") == 0:
            done = data.draw(changes(sim), label="change")
            if done:
                event(done.split(" ")[0] + " " + done.split(" ")[1])
                ref.update(sim.nodes)  # the kernel's fabric follows on its own (sim.fabric)
                world = World(sim)
        seconds = data.draw(st.sampled_from([0, 0, 0, 100, 200]), label="advance")
        if seconds:  # ageing (§9): the same flows go on both sides
            assert sim.fabric.advance(seconds) == ref.advance(seconds), f"ageing after batch {step}"


# --------------------------------------------------------------- disagreements found before


def test_reply_toward_a_vanished_sender_takes_the_ttl_step_before_the_discard() -> None:
    """§6 then §7: route, TTL step, then the DISCARD drops NoRoute. A reverse flow outlives a
    configuration change (it only takes the new generation), so b's replies to a deleted a meet
    the subnet's discard. (An earlier kernel dropped such hits before the TTL step.)"""
    pods = [_pod(name, "default", "a", None, [], "worker01") for name in ("a", "b")]
    sim = Simulation.from_objects(pods)
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    first = traffic.first_packets(traffic.resolve_source(sim, "default/a"), traffic.resolve_target(sim, "default/b", 80), PROTO_UDP, 2)
    arrived = sim.fabric.run(first.copy()).packets
    assert_same(first, arrived, ref.run(first.copy()), "a → b")
    assert traffic.arrived(arrived).all()
    sim.cluster.delete("pod", "default", "a")
    ref.update(sim.nodes)
    replies = traffic.answers(arrived, PROTO_UDP, 0)
    replies["ttl"] = [64, 1]
    rows = sim.fabric.run(replies.copy()).packets
    assert_same(replies, rows, ref.run(replies.copy()), "b → a, a gone")
    assert (rows["flow"] >= 0).all()
    assert [(DROP_REASONS[r], int(t)) for r, t in zip(rows["drop_reason"], rows["out_ttl"], strict=True)] == [("NoDstRt", 63), ("TTL Exceeded", 1)]


def test_queue_limit_drop_names_no_flow() -> None:
    """§1 sets flow ← -1 on entry and only §4 (a flow's action) sets it again, so a packet that
    the hold queue refuses names no flow, whether its HOLD entry is from this call or an earlier one."""
    config = ClusterConfig.model_validate({"vrouter": {"flowEntries": 16, "overflowFraction": 0.0, "holdQueue": 0}})
    sim = Simulation.from_objects([_pod(n, "default", "a", None, [], "worker01") for n in ("p0", "p1")], config)
    src = traffic.resolve_source(sim, "default/p0")
    batch = np.concatenate(
        [traffic.first_packets(src, traffic.resolve_target(sim, "default/p1"), PROTO_ICMP, 1)]  # takes the one setup
        + [traffic.first_packets(src, traffic.resolve_target(sim, "default/p1"), PROTO_ICMP, 1, first_port=7)] * 2  # held, then refused now
        + [traffic.first_packets(src, traffic.resolve_target(sim, "default/p1"), PROTO_ICMP, 1, first_port=9)]  # held, refused next round
    )
    ref_rows = ReferenceFabric(sim.nodes, config.vrouter).run(batch.copy(), max_setups=1)
    rows = sim.fabric.run(batch.copy(), max_setups=1).packets
    assert [DROP_REASONS[r] for r in rows["drop_reason"]] == ["", "", "Flow Queue Limit Exceeded", "Flow Queue Limit Exceeded"]
    assert list(ref_rows["flow"][2:]) == [-1, -1]
    assert list(rows["flow"][2:]) == [-1, -1]


def test_table_full_drop_names_no_flow() -> None:
    """§3.6: the reverse key does not fit, the forward entry (here the HOLD entry) goes and the
    packet drops FLOW_TABLE_FULL before §4, so it names no flow."""
    config = ClusterConfig.model_validate({"vrouter": {"flowEntries": 16, "overflowFraction": 0.0}})
    sim = Simulation.from_objects([_pod(n, "default", "a", None, [], "worker01") for n in ("a", "b")], config)
    batch = traffic.first_packets(traffic.resolve_source(sim, "default/a"), traffic.resolve_target(sim, "default/b", 80), PROTO_UDP, 24)
    ref_rows = ReferenceFabric(sim.nodes, config.vrouter).run(batch.copy(), max_setups=1)
    rows = sim.fabric.run(batch.copy(), max_setups=1).packets
    full = rows["drop_reason"] == DROP_FLOW_TABLE_FULL
    assert full.any() and (full == (ref_rows["drop_reason"] == DROP_FLOW_TABLE_FULL)).all()
    assert (ref_rows["flow"][full] == -1).all()
    assert (rows["flow"][full] == -1).all(), rows["flow"][full].tolist()


def test_reply_rewritten_toward_a_clusterip_hashes_the_arriving_header() -> None:
    """§6 on a hit without an ECMP slot (a reverse flow): the member comes from the ECMP hash of
    the packet's 5-tuple as it arrived, not of its rewritten header. Here a pod pings a ClusterIP
    from the ClusterIP's own address, so the echo replies are NATed back toward the ClusterIP and
    meet its composite. (The reference first hashed the rewritten header; found by the property.)"""
    pods = [_pod(f"p{i}", "default", "a", None, [], node) for i, node in enumerate(("worker01", "worker02", "worker01"))]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 80}]}}
    sim = Simulation.from_objects([*pods, svc])
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    cip = traffic.resolve_target(sim, "service/default/s", 80)
    first = traffic.first_packets(traffic.resolve_source(sim, "default/p0"), cip, PROTO_ICMP, 40, first_port=2000)
    first["sip"] = cip.ip
    arrived = sim.fabric.run(first.copy()).packets
    assert_same(first, arrived, ref.run(first.copy()), "echo requests")
    replies = traffic.answers(arrived[traffic.arrived(arrived)], PROTO_ICMP, 0)
    rows = sim.fabric.run(replies.copy()).packets
    assert_same(replies, rows, ref.run(replies.copy()), "echo replies")
    assert len({(int(r["node"]), int(r["out_vif"])) for r in rows}) == 3  # every member was chosen by some reply


def _lockstep(sim: Simulation, ref: ReferenceFabric, batch: np.ndarray, what: str) -> np.ndarray:
    """Run one batch on both sides; rows and the number of flow setups must agree."""
    before = ref.flow_setups
    result = sim.fabric.run(batch.copy())
    assert_same(batch, result.packets, ref.run(batch.copy()), what)
    assert result.flow_setups == ref.flow_setups - before, what
    return result.packets


def test_a_reverse_entry_taken_over_starts_afresh() -> None:
    """§3.6 "an existing entry with that key is taken over": p's flow to its gateway address
    (FIN already seen) becomes the reverse entry of a flow entering from the fabric. It starts
    with no TCP state (the new flow's FIN does not close it), and its old partner is left a lone
    entry, which ageing removes alone. (The reference first kept both; found by the property.)"""
    sim = Simulation.from_objects([_pod("p", "default", "a", None, [], "worker01")])
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    p = traffic.resolve_source(sim, "default/p")
    to_gateway = traffic.first_packets(p, traffic.resolve_target(sim, "10.47.255.254", 53), PROTO_TCP, 1, first_port=53)
    _lockstep(sim, ref, to_gateway, "p → gateway SYN")
    to_gateway["tcp_flags"] = TCP_FIN | TCP_ACK
    _lockstep(sim, ref, to_gateway, "p → gateway FIN")
    from_fabric = new_batch(1)
    from_fabric["node"], from_fabric["in_vif"], from_fabric["proto"], from_fabric["tcp_flags"] = p.node, 0, PROTO_TCP, TCP_FIN | TCP_ACK
    from_fabric["sip"], from_fabric["dip"], from_fabric["sport"], from_fabric["dport"] = inet.ip_int("10.47.255.254"), p.ip, 53, 53
    _lockstep(sim, ref, from_fabric, "gateway address → p from the fabric: takes p's flow over as its reverse")
    setups = ref.flow_setups
    _lockstep(sim, ref, from_fabric, "again: a hit, its own FIN did not close the pair")
    assert ref.flow_setups == setups
    assert sim.fabric.advance(100) == ref.advance(100) == 0
    _lockstep(sim, ref, from_fabric, "the new flow is used again")
    assert sim.fabric.advance(100) == ref.advance(100) == 1  # the lone old partner, on its own
    to_gateway["tcp_flags"] = TCP_ACK  # p's old flow lives on as the new flow's reverse entry: a hit
    assert _lockstep(sim, ref, to_gateway, "p → gateway again")["flow"][0] >= 0


def test_a_flow_decided_again_starts_its_tcp_state_afresh() -> None:
    """§2: after a configuration change a forward flow is decided again into the same entry; its
    old FIN does not count, so the answerer's FIN alone does not close the pair."""
    sim = Simulation.from_objects([_pod(n, "default", "a", None, [], "worker01") for n in ("a", "b")])
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    forward = traffic.first_packets(traffic.resolve_source(sim, "default/a"), traffic.resolve_target(sim, "default/b", 80), PROTO_TCP, 1)
    arrived = _lockstep(sim, ref, forward, "SYN")
    forward["tcp_flags"] = TCP_FIN | TCP_ACK
    _lockstep(sim, ref, forward, "a's FIN")
    sim.cluster.apply_objects([_pod("c", "default", "a", None, [], "worker01")])
    ref.update(sim.nodes)
    forward["tcp_flags"] = TCP_ACK
    _lockstep(sim, ref, forward, "ACK, decided again")
    _lockstep(sim, ref, traffic.answers(arrived, PROTO_TCP, TCP_FIN | TCP_ACK), "b's FIN")
    rows = _lockstep(sim, ref, forward, "ACK: the pair is still there")
    assert rows["flow"][0] == arrived["flow"][0]


def test_a_reverse_flow_routes_with_the_current_tables() -> None:
    """§2: a REVERSE entry just takes the new generation; §6: every hit looks out_dip up in the
    flow's VRF. The node's echo replies to a deleted pod meet the subnet's discard (NO_ROUTE):
    NoRoute every time. (A kernel with a per-flow nexthop cache said NoRoute once, then DISCARD.)"""
    sim = Simulation.from_objects([_pod("p", "default", "a", None, [], "worker01")])
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    ping = traffic.first_packets(traffic.resolve_source(sim, "default/p"), traffic.resolve_target(sim, "node/worker01"), PROTO_ICMP, 1)
    reply = traffic.answers(_lockstep(sim, ref, ping, "p pings its node"), PROTO_ICMP, 0)
    _lockstep(sim, ref, reply, "the node answers")
    sim.cluster.delete("pod", "default", "p")
    ref.update(sim.nodes)
    for attempt in range(3):
        rows = _lockstep(sim, ref, reply, f"the node answers again after p went ({attempt})")
        assert DROP_REASONS[rows["drop_reason"][0]] == "NoDstRt"


def test_a_label_hit_goes_to_the_label_nexthop() -> None:
    """§6: "With a label nexthop and out_dip == dip: the nexthop is the label nexthop". A pod's
    label nexthop is also its interface's key nexthop, so packets with p0's label and packets from
    p0's interface (here all from p1's address to itself) share one flow; each must follow its own
    path: the label ones to p0, the interface ones routed to p1 on worker02. (A kernel with a
    per-flow nexthop cache sent the label ones after the interface ones.)"""
    sim = Simulation.from_objects([_pod("p0", "default", "a", None, [], "worker01"), _pod("p1", "default", "a", None, [], "worker02")])
    ref = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    w1 = sim.nodes["worker01"]
    p0 = traffic.resolve_source(sim, "default/p0")
    p1_ip = traffic.resolve_target(sim, "default/p1").ip
    label = next(lb for lb, nh in w1.labels.items() if nh == w1.vifs[p0.vif].nh)

    def packet(by_label: bool) -> np.ndarray:
        b = new_batch(1)
        b["node"], b["proto"], b["icmp_type"], b["sip"], b["dip"] = w1.index, PROTO_ICMP, ICMP_ECHO_REQUEST, p1_ip, p1_ip
        b["in_vif"], b["in_label"] = (0, label) if by_label else (p0.vif, -1)
        return b

    assert _lockstep(sim, ref, packet(True), "label")["node"][0] == w1.index
    assert _lockstep(sim, ref, packet(False), "interface")["node"][0] != w1.index
    assert _lockstep(sim, ref, packet(True), "label again")["node"][0] == w1.index
