"""Who answers a connection: the sockets behind each endpoint the fabric delivers to.

The vRouter only delivers a packet to an interface or a host stack; whether a connection
opens there is the endpoint's business, and a check that ignored it could not fail:

- a pod listens on the ports its containers declare (``containerPort``, each with its
  protocol); a pod that declares none listens on every port (a busybox running
  ``nc -l`` declares nothing);
- a node's host stack listens on the NodePorts kube-proxy holds open, on the ports its
  hostNetwork pods declare, and on its ``listen:`` setting in the scenario's ``cluster.nodes``;
- an Ingress's HAProxy instance listens on its listeners' ports;
- outside peers (the internet client, ``fabric:`` peers) answer everything: vrsim does not
  model them.

ICMP echo is always answered. A closed TCP port answers the SYN with a RST, a closed UDP
port with ICMP port unreachable, a closed SCTP port with an ABORT — each travels back
through the fabric like any reply (docs/dataplane.md, "Refusals").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controlplane.inet import protocol_name, protocol_number
from controlplane.k8s.kube_proxy import node_port_rules
from controlplane.tf import model as tf
from vrouter.dataplane.packets import HOST
from vrouter.dataplane.tables import VIF_HOST
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import node_name


@dataclass(frozen=True)
class Listening:
    """What one endpoint accepts: every port, or these (protocol number, port) pairs."""

    who: str  # "pod default/web", "the host stack of worker01", …
    every: bool
    ports: frozenset[tuple[int, int]] = frozenset()

    def accepts(self, proto: np.ndarray, port: np.ndarray) -> np.ndarray:
        """Per packet: is (proto, destination port) open here?"""
        if self.every:
            return np.ones(proto.shape, bool)
        keys = proto.astype(np.int64) * 65536 + port.astype(np.int64)
        return np.isin(keys, np.array([p * 65536 + n for p, n in self.ports], np.int64))

    def describe(self) -> str:
        """``pod default/web listens on 8080/TCP`` (or ``on no port``)."""
        if self.every:
            return f"{self.who} listens on every port"
        if not self.ports:
            return f"{self.who} listens on no port"
        listed = ", ".join(f"{port}/{protocol_name(proto).upper()}" for proto, port in sorted(self.ports, key=lambda p: (p[1], p[0])))
        return f"{self.who} listens on {listed}"


def describe_all(refusing: list[Listening]) -> str:
    """Who refused, grouped by what they listen on: ``pods a/x, a/y listen on 8080/TCP``."""
    groups: dict[str, list[str]] = {}
    for listening in refusing:
        ports = listening.describe().removeprefix(listening.who + " listens ")
        groups.setdefault(ports, []).append(listening.who)
    parts = []
    for ports, who in sorted(groups.items()):
        if len(who) == 1:
            parts.append(f"{who[0]} listens {ports}")
        else:
            pods = [w.removeprefix("pod ") for w in who]
            plural = "pods " if all(w.startswith("pod ") for w in who) else ""
            parts.append(f"{plural}{', '.join(sorted(pods))} listen {ports}")
    return "; ".join(parts)


def declared_ports(pod: dict) -> set[tuple[int, int]] | None:
    """(protocol, port) of every container port a pod declares; None when it declares none."""
    ports: set[tuple[int, int]] = set()
    declared = False
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            declared = True
            if port.get("containerPort") is not None:
                ports.add((protocol_number(str(port.get("protocol") or "TCP")), int(port["containerPort"])))
    return ports if declared else None


def pod_listening(pod: dict) -> Listening:
    """A pod's sockets: its declared container ports, or every port when it declares none."""
    meta = pod["metadata"]
    ports = declared_ports(pod)
    return Listening(f"pod {meta.get('namespace')}/{meta['name']}", ports is None, frozenset(ports or ()))


def host_listening(sim: Simulation, node: str) -> Listening:
    """A node's host stack: NodePorts, its hostNetwork pods' declared ports, its ``listen:``."""
    ports = {(protocol_number(r.protocol), r.node_port) for r in node_port_rules(sim.cluster.store)}
    for pod in sim.cluster.store.list("Pod"):
        spec = pod.get("spec") or {}
        if spec.get("hostNetwork") and spec.get("nodeName") == node:
            ports |= declared_ports(pod) or set()
    config = sim.cluster.config.node(node)
    if config is not None:
        ports |= set(config.listen_ports())
    return Listening(f"the host stack of {node}", False, frozenset(ports))


def haproxy_listening(sim: Simulation, vmi: tuple[str, ...]) -> Listening | None:
    """An Ingress's HAProxy instance: its listeners' ports (TCP); None if ``vmi`` is none."""
    for lb in sim.cluster.db.list(tf.Loadbalancer):
        if lb.loadbalancer_provider == "opencontrail" and tuple(vmi) in [tuple(v) for v in lb.virtual_machine_interface_refs]:
            listeners = [l for l in sim.cluster.db.list(tf.LoadbalancerListener) if lb.fq_name in l.loadbalancer_refs]
            ports = frozenset((protocol_number("TCP"), int(l.protocol_port)) for l in listeners)
            return Listening(f"the HAProxy of ingress {lb.annotations.get('namespace')}/{lb.annotations.get('name')}", False, ports)
    return None


def endpoint_listening(sim: Simulation, node_index: int, vif: int) -> Listening | None:
    """The sockets behind (node, vif); None: not modelled (outside peers), answers everything."""
    compiled = sim.nodes.get(node_name(sim, node_index) or "")
    if compiled is None:
        return None
    if vif == VIF_HOST:
        if sim.cluster.config.node(compiled.name) is None:
            return None  # the fabric gateway: the outside world
        return host_listening(sim, compiled.name)
    interface = compiled.vifs.get(vif)
    if interface is None:
        return None
    if interface.pod:
        namespace, _, name = interface.pod.partition("/")
        pod = sim.cluster.store.get("Pod", namespace, name)
        return pod_listening(pod) if pod is not None else None
    if interface.vmi is not None:
        return haproxy_listening(sim, interface.vmi)
    return None


def refusals(sim: Simulation, rows: np.ndarray, proto: int) -> tuple[np.ndarray, list[Listening]]:
    """For delivered first packets: which ones meet a closed port, and who refused them.

    ICMP echo is never refused. Each distinct endpoint is looked up once (a batch of
    thousands of flows usually reaches a handful of pods).
    """
    closed = np.zeros(rows.shape[0], bool)
    who: list[Listening] = []
    if proto == protocol_number("ICMP") or rows.shape[0] == 0:
        return closed, who
    vif = np.where(rows["outcome"] == HOST, VIF_HOST, rows["out_vif"]).astype(np.int64)
    keys = rows["node"].astype(np.int64) * 65536 + vif
    for key in np.unique(keys).tolist():
        listening = endpoint_listening(sim, key // 65536, key % 65536)
        if listening is None:
            continue
        here = keys == key
        shut = here & ~listening.accepts(rows["proto"], rows["out_dport"])
        if shut.any():
            closed |= shut
            who.append(listening)
    return closed, who
