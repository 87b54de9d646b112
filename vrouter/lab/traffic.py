"""Packets for checks and benchmarks: endpoints by name, and batches that talk between them.

Endpoint names (spec/scenario-and-cli.md §1): ``ns/pod``, ``service/ns/name`` (its
ClusterIP), ``service/ns/name:external`` (its LoadBalancer/external IP), ``ingress/ns/name``,
``node/<name>`` (the node's host stack), ``external`` (a client on the internet behind the SDN
gateway), ``fabric:<ip>`` (an outside peer whose packets enter through a node's fabric
interface, as after a gateway that keeps client addresses), or a literal address with an
optional ``:port``.

A conversation is built as whole batches: the first packets (ICMP echo, TCP SYN, UDP
request) from the source, then — from where each one was delivered — the replies (echo
reply, SYN-ACK, UDP response), then the TCP handshake's last ACK. Source ports are
distinct per flow, so ``flows: 1000`` is a thousand five-tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from controlplane.config import GATEWAY_NODE
from controlplane.errors import InputError
from controlplane.inet import ip_int
from controlplane.k8s.endpoints import service_backends
from controlplane.k8s.kube_proxy import node_port_rules
from controlplane.tf.haproxy import ingress_loadbalancer
from vrouter.dataplane.packets import (
    DELIVERED,
    HOST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    TCP_SYN,
    new_batch,
)
from vrouter.dataplane.tables import (
    ENCAP_VXLAN,
    PROTO_ICMP,
    PROTO_TCP,
    VIF_CLIENT,
    VIF_FABRIC,
    VIF_HOST,
)
from vrouter.lab.sim import Simulation

EXTERNAL_CLIENT = "198.51.100.100"
FIRST_SOURCE_PORT = 32768
#: source ports a conversation may use (1024-65535): one source address makes at most this
#: many distinct connections to one destination port (scenario ``flows``, ``requests``)
SOURCE_PORTS = 65536 - 1024


@dataclass(frozen=True)
class Source:
    """Where a conversation starts: a node's interface and an address."""

    name: str
    node: int
    vif: int
    ip: int
    pod: str | None = None
    reply_node: int = -1  # where answers come back, when not where it started (fabric peers)
    reply_vif: int = -1

    @property
    def home(self) -> tuple[int, int]:
        """(node, vif) where answers must arrive."""
        return (self.node, self.vif) if self.reply_node < 0 else (self.reply_node, self.reply_vif)


@dataclass(frozen=True)
class Target:
    """Where it is sent: an address and port, and what stands behind it (for the verdict)."""

    name: str
    ip: int
    port: int | None
    kind: str  # pod | service | external-ip | ingress | node | external | fabric | address
    pod: str | None = None
    service: str | None = None
    #: (node, vif) pairs where a first packet counts as arrived; None: anywhere
    endpoints: frozenset[tuple[int, int]] | None = None
    note: str | None = None  # what the check should know about the target (a port it does not expose)
    members: tuple[str, ...] = ()  # for a workload: its pods (``ns/pod``), each a target

    def reached(self, rows: np.ndarray) -> np.ndarray:
        """Rows of first packets that arrived where this target is (not merely somewhere)."""
        ok = arrived(rows)
        if self.endpoints is None:
            return ok
        keys = rows["node"].astype(np.int64) * 65536 + np.where(rows["outcome"] == HOST, VIF_HOST, rows["out_vif"]).astype(np.int64)
        wanted = np.array([n * 65536 + v for n, v in self.endpoints], dtype=np.int64)
        return ok & np.isin(keys, wanted)


class Unrealised(InputError):
    """The endpoint exists but TF could not realise it (no address, no interface, no
    external IP): not a user mistake — the check that needs it fails with ``reason``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _pod(sim: Simulation, namespace: str, name: str) -> dict:
    obj = sim.cluster.store.get("Pod", namespace, name)
    if obj is None:
        raise InputError(f"no pod {namespace}/{name}")
    return obj


def _pod_ip(obj: dict) -> str:
    ip = (obj.get("status") or {}).get("podIP")
    if not ip:
        meta = obj["metadata"]
        detail, reason = "", "Pending"
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "TFRealized" and cond.get("status") == "False":
                detail, reason = f": {cond.get('reason')} ({cond.get('message')})", str(cond.get("reason"))
        raise Unrealised(f"pod {meta.get('namespace')}/{meta['name']} has no address{detail}", reason)
    return ip


def _service(sim: Simulation, namespace: str, name: str) -> dict:
    obj = sim.cluster.store.get("Service", namespace, name)
    if obj is None:
        raise InputError(f"no service {namespace}/{name}")
    return obj


def last_warning(sim: Simulation, kind: str, namespace: str, name: str) -> str | None:
    """The latest Warning event about an object (why TF could not realise part of it)."""
    warnings = [e for e in sim.cluster.store.events if e.type == "Warning" and (e.kind, e.namespace, e.name) == (kind, namespace, name)]
    return warnings[-1].message.removeprefix("no external IP: ") if warnings else None


def split_port(text: str) -> tuple[str, int | None]:
    """``10.0.0.1:80`` → ("10.0.0.1", 80); a name without a port → (name, None)."""
    if text.count(":") == 1 and not text.startswith("fabric:"):
        head, _, tail = text.rpartition(":")
        if tail.isdigit():
            port = int(tail)
            if not 1 <= port <= 65535:
                raise InputError(f"port {port} in {text!r} is outside 1-65535")
            return head, port
        if tail != "external":
            raise InputError(f"{text!r}: the part after ':' must be a port number")
    return text, None


def resolve_source(sim: Simulation, text: str, toward: Target | None = None) -> Source:
    """The entry point of a conversation started by ``text``."""
    nodes = sim.nodes
    names = list(nodes)
    if text == "external":
        gateway = nodes[GATEWAY_NODE]
        vif = next(i for i, v in gateway.vifs.items() if v.type == VIF_CLIENT)
        return Source(text, gateway.index, vif, ip_int(EXTERNAL_CLIENT))
    if text.startswith("node/"):
        name = text[len("node/") :]
        if name not in nodes or name == GATEWAY_NODE:
            raise InputError(f"no node {name!r} (nodes: {', '.join(n for n in names if n != GATEWAY_NODE)})")
        node = nodes[name]
        return Source(text, node.index, VIF_HOST, int(node.tables.node_ip[node.index]))
    if text.startswith("fabric:"):
        address = text[len("fabric:") :]
        try:
            ip = ip_int(address)
        except ValueError:
            raise InputError(f"{text!r}: fabric: takes an IPv4 address") from None
        entry = names[0]
        if toward is not None and toward.pod is not None:
            namespace, _, pod_name = toward.pod.partition("/")
            entry = _pod(sim, namespace, pod_name)["spec"]["nodeName"]
        gateway = nodes[GATEWAY_NODE]
        client = next(i for i, v in gateway.vifs.items() if v.type == VIF_CLIENT)
        return Source(text, nodes[entry].index, VIF_FABRIC, ip, None, gateway.index, client)
    if text.startswith(("service/", "ingress/")):
        raise InputError(f"{text!r} cannot start a conversation: use a pod, a node, external or fabric:<ip>")
    if text.count("/") == 1:
        namespace, _, name = text.partition("/")
        obj = _pod(sim, namespace, name)
        ip = _pod_ip(obj)
        if (obj.get("spec") or {}).get("hostNetwork"):
            node = nodes[obj["spec"]["nodeName"]]
            return Source(text, node.index, VIF_HOST, ip_int(ip), text)
        return _pod_source(sim, text, obj, ip)
    try:
        address = ip_int(text)
    except ValueError:
        raise InputError(f"unknown endpoint {text!r} (ns/pod, node/NAME, external, fabric:IP or an address)") from None
    for node_name, node in nodes.items():
        if node_name != GATEWAY_NODE and int(node.tables.node_ip[node.index]) == address:
            return Source(text, node.index, VIF_HOST, address)
    for obj in sim.cluster.store.list("Pod"):
        if (obj.get("status") or {}).get("podIP") == text and not (obj.get("spec") or {}).get("hostNetwork"):
            name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            return _pod_source(sim, name, obj, text)
    raise InputError(f"{text!r} is neither a pod's nor a node's address, so nothing can send from it")


def _pod_source(sim: Simulation, name: str, obj: dict, ip: str) -> Source:
    nodes = sim.nodes
    node = nodes[obj["spec"]["nodeName"]]
    record = sim.cluster.kube_manager.pods.records.get((obj["metadata"]["namespace"], obj["metadata"]["name"]))
    if record is None or record.vmi not in node.vif_of_vmi:
        raise Unrealised(f"pod {name} has no interface on {node.name}", "NoInterface")
    return Source(name, node.index, node.vif_of_vmi[record.vmi], ip_int(ip), name)


def is_outside(name: str) -> bool:
    """Does this source sit outside the cluster (the internet, or a fabric peer)?"""
    return name == "external" or name.startswith("fabric:")


def resolve_target(sim: Simulation, text: str, port: int | None = None, from_outside: bool = True) -> Target:
    """The address (and port) that ``text`` stands for.

    An Ingress is reached at its published address (``status.loadBalancer.ingress``: the
    external floating IP when it has one) from outside the cluster, and at its VIP from
    inside — a pod's packet to the external address would leave through the gateway, and
    the answer from the public network has no route back to a pod network.
    """
    text, inline_port = split_port(text)
    port = port if port is not None else inline_port
    store = sim.cluster.store
    nodes = sim.nodes
    gateway = nodes[GATEWAY_NODE]
    internet = frozenset({(gateway.index, next(i for i, v in gateway.vifs.items() if v.type == VIF_CLIENT))})
    if text == "external":
        return Target(text, ip_int(EXTERNAL_CLIENT), port, "external", endpoints=internet)
    if text.startswith("node/"):
        name = text[len("node/") :]
        if name not in nodes or name == GATEWAY_NODE:
            raise InputError(f"no node {name!r}")
        return _node_target(sim, text, nodes[name], port)
    if text.startswith("fabric:"):
        try:
            return Target(text, ip_int(text[len("fabric:") :]), port, "fabric", endpoints=internet)
        except ValueError:
            raise InputError(f"{text!r}: fabric: takes an IPv4 address") from None
    if text.startswith("service/"):
        rest = text[len("service/") :]
        external = rest.endswith(":external")
        rest = rest.removesuffix(":external")
        namespace, _, name = rest.partition("/")
        if not name:
            raise InputError(f"{text!r}: a service is named service/NAMESPACE/NAME")
        svc = _service(sim, namespace, name)
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        note = None
        if port is None and ports:
            port = int(ports[0]["port"])
        elif port is not None and port not in [p.get("port") for p in ports]:
            # a negative check: sent anyway, the VIP has no port map for it
            exposed = ", ".join(f"{p['port']}/{p.get('protocol') or 'TCP'}" for p in ports) or "no port"
            note = f"service {namespace}/{name} does not expose port {port} (it exposes {exposed})"
        if external:
            # the address TF realised (status), not the one asked for: an externalIPs entry
            # without a floating-IP pool behind it reaches nothing
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            addresses = [i["ip"] for i in ingress if i.get("ip")]
            if not addresses:
                why = last_warning(sim, "Service", namespace, name)
                raise Unrealised(f"service {namespace}/{name} has no external IP{': ' + why if why else ''} (see vrsim get events)", "NoExternalIP")
            return Target(text, ip_int(addresses[0]), port, "external-ip", service=f"{namespace}/{name}", endpoints=backend_endpoints(sim, svc), note=note)
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            raise InputError(f"service {namespace}/{name} has no ClusterIP")
        return Target(text, ip_int(cluster_ip), port, "service", service=f"{namespace}/{name}", endpoints=backend_endpoints(sim, svc), note=note)
    if text.startswith("ingress/"):
        namespace, _, name = text[len("ingress/") :].partition("/")
        ing = store.get("Ingress", namespace, name)
        if ing is None:
            raise InputError(f"no ingress {namespace}/{name}")
        ingress = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = ingress_loadbalancer(sim.cluster.db, namespace, name)
        vip = lb.vip_address if lb is not None else None
        why = last_warning(sim, "Ingress", namespace, name)
        if not ingress and vip is None:
            raise Unrealised(f"ingress {namespace}/{name} has no address{': ' + why if why else ''} (see vrsim get events)", "NoAddress")
        external = [i["ip"] for i in ingress if i.get("ip") and i["ip"] != vip]
        if from_outside and not external:
            raise Unrealised(f"ingress {namespace}/{name} has no external IP{': ' + why if why else ''} (see vrsim get events)", "NoExternalIP")
        address = external[0] if from_outside else (vip or ingress[0]["ip"])
        return Target(text, ip_int(address), port or 80, "ingress", service=f"{namespace}/{name}")
    if text.count("/") == 1:
        namespace, _, name = text.partition("/")
        obj = _pod(sim, namespace, name)
        ip = _pod_ip(obj)
        return Target(text, ip_int(ip), port, "pod", pod=text, endpoints=frozenset({_pod_endpoint(sim, text, obj, ip)}))
    try:
        address = ip_int(text)
    except ValueError:
        raise InputError(f"unknown endpoint {text!r}") from None
    for obj in store.list("Pod"):
        if (obj.get("status") or {}).get("podIP") == text and not (obj.get("spec") or {}).get("hostNetwork"):
            name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            return Target(text, address, port, "pod", pod=name, endpoints=frozenset({_pod_endpoint(sim, name, obj, text)}))
    for node_name, node in nodes.items():
        if node_name != GATEWAY_NODE and int(node.tables.node_ip[node.index]) == address:
            return _node_target(sim, text, node, port)
    for svc in store.list("Service"):  # a Service's ClusterIP or external address, written out
        spec = svc.get("spec") or {}
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external = [i.get("ip") for i in ingress] + list(spec.get("externalIPs") or [])
        if text in (spec.get("clusterIP"), *external):
            name = f"{svc['metadata'].get('namespace')}/{svc['metadata']['name']}"
            kind = "service" if text == spec.get("clusterIP") else "external-ip"
            return Target(text, address, port, kind, service=name, endpoints=backend_endpoints(sim, svc))
    return Target(text, address, port, "address")


def _node_target(sim: Simulation, text: str, node: Any, port: int | None) -> Target:
    """A node's address: its host stack — or, on a NodePort, the Service's pods, wherever
    kube-proxy's NAT sends it (so ``backends: all`` can be checked)."""
    ip = int(node.tables.node_ip[node.index])
    for rule in node_port_rules(sim.cluster.store) if port is not None else ():
        if rule.node_port == port:
            namespace, _, name = rule.service.partition("/")
            svc = sim.cluster.store.get("Service", namespace, name)
            return Target(text, ip, port, "node", service=rule.service, endpoints=backend_endpoints(sim, svc) if svc else None)
    return Target(text, ip, port, "node", endpoints=frozenset({(node.index, VIF_HOST)}))


def _pod_endpoint(sim: Simulation, name: str, obj: dict, ip: str) -> tuple[int, int]:
    """(node, vif) of a pod: its interface, or its node's host stack for hostNetwork pods."""
    if (obj.get("spec") or {}).get("hostNetwork"):
        return sim.nodes[obj["spec"]["nodeName"]].index, VIF_HOST
    source = _pod_source(sim, name, obj, ip)
    return source.node, source.vif


def backend_endpoints(sim: Simulation, service: dict) -> frozenset[tuple[int, int]]:
    """(node, vif) of every ready backend pod of a service."""
    out = set()
    for backend in service_backends(sim.cluster.store, service):
        if backend.pod:
            namespace, _, name = backend.pod.partition("/")
            obj = sim.cluster.store.get("Pod", namespace, name)
            if obj is not None:
                try:
                    out.add(_pod_endpoint(sim, backend.pod, obj, backend.ip))
                except InputError:
                    continue
    return frozenset(out)


def first_packets(source: Source, target: Target, proto: int, n: int, first_port: int = FIRST_SOURCE_PORT, same_flow: bool = False) -> np.ndarray:
    """``n`` conversations' first packets: echo requests (id = flow), SYNs, or requests.

    ``same_flow``: every packet has the same five-tuple (a ``ping -c n``: one identifier).
    """
    batch = new_batch(n)
    batch["node"] = source.node
    batch["in_vif"] = source.vif
    batch["sip"] = source.ip
    batch["dip"] = target.ip
    batch["proto"] = proto
    batch["tag"] = np.arange(n)
    offsets = np.zeros(n, np.int64) if same_flow else np.arange(n)
    ports = 1024 + (first_port - 1024 + offsets) % SOURCE_PORTS  # distinct for n ≤ SOURCE_PORTS
    if proto == PROTO_ICMP:
        batch["sport"] = ports  # ICMP id
        batch["dport"] = 0
        batch["icmp_type"] = ICMP_ECHO_REQUEST
    else:
        batch["sport"] = ports
        batch["dport"] = target.port or 0
        if proto == PROTO_TCP:
            batch["tcp_flags"] = TCP_SYN
    return batch


def answers(delivered: np.ndarray, proto: int, tcp_flags: int) -> np.ndarray:
    """The packets that answer ``delivered`` rows, sent from where each one arrived."""
    batch = new_batch(len(delivered))
    batch["node"] = delivered["node"]
    batch["in_vif"] = np.where(delivered["outcome"] == HOST, VIF_HOST, delivered["out_vif"])
    batch["sip"] = delivered["out_dip"]
    batch["dip"] = delivered["out_sip"]
    batch["proto"] = proto
    batch["tag"] = delivered["tag"]
    if proto == PROTO_ICMP:
        batch["sport"] = delivered["out_sport"]
        batch["dport"] = delivered["out_dport"]
        batch["icmp_type"] = ICMP_ECHO_REPLY
    else:
        batch["sport"] = delivered["out_dport"]
        batch["dport"] = delivered["out_sport"]
        batch["tcp_flags"] = tcp_flags
    return batch


def arrived(rows: np.ndarray) -> np.ndarray:
    """Rows that reached an endpoint (an interface or a host stack)."""
    return (rows["outcome"] == DELIVERED) | (rows["outcome"] == HOST)


def back_at(rows: np.ndarray, source: Source) -> np.ndarray:
    """Rows delivered back where the conversation's source listens."""
    node, vif = source.home
    if vif == VIF_HOST:
        return (rows["outcome"] == HOST) & (rows["node"] == node)
    return (rows["outcome"] == DELIVERED) & (rows["node"] == node) & (rows["out_vif"] == vif)


def fabric_label(compiled: Any, vif: int) -> int:
    """The label a gateway puts on packets for this interface: its MPLS label, or its VN's VNI.

    An outside peer's answer to a pod comes back this way: the pod's request left the node
    un-encapsulated, the gateway that keeps client addresses holds the pod's route and
    tunnels the answer to the pod's interface, so it meets the flow's reverse entry (keyed
    on the pod's nexthop) like any labelled packet. -1 when the interface has none.
    """
    tables = compiled.tables
    if int(tables.encapsulation[0]) == ENCAP_VXLAN:
        vrf = int(tables.vif_vrf[vif])
        return next((vni for vni, v in compiled.vnis.items() if v == vrf), -1)
    nexthop = int(tables.vif_nh[vif])
    return next((label for label, nh in compiled.labels.items() if nh == nexthop), -1)


def node_name(sim: Simulation, index: int | None) -> str | None:
    """The name of the node with this index (None for none)."""
    if index is None:
        return None
    for name, node in sim.nodes.items():
        if node.index == index:
            return name
    return None


def pods_by_vif(sim: Simulation) -> dict[tuple[int, int], str]:
    """(node index, vif) → ``ns/pod`` for every pod interface (for backend counts)."""
    return {(n.index, i): v.pod for n in sim.nodes.values() for i, v in n.vifs.items() if v.pod}


def service_pods(sim: Simulation, service: str | None) -> list[str]:
    """The ready backend pods (``ns/name``) of a service named ``ns/name``."""
    if service is None:
        return []
    namespace, _, name = service.partition("/")
    obj = sim.cluster.store.get("Service", namespace, name)
    if obj is None:
        return []
    return sorted({b.pod for b in service_backends(sim.cluster.store, obj) if b.pod})
