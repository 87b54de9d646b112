"""kube-proxy's NodePort rules (spec §6): TF does nothing for NodePort, iptables does.

On every node, ``nodeIP:nodePort`` is DNATed to a ready backend; with
``externalTrafficPolicy: Cluster`` (the default) the source is also SNATed to the node's
address and any backend may be chosen; with ``Local`` the client address is kept and only
the node's own backends are used (none → the packet is dropped, as iptables does).
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.k8s.endpoints import service_backends, service_port_name
from controlplane.k8s.store import ObjectStore


@dataclass(frozen=True)
class NodePortBackend:
    ip: str
    port: int
    node: str | None
    pod: str | None


@dataclass(frozen=True)
class NodePortRule:
    protocol: str
    node_port: int
    service: str  # namespace/name
    service_port: int
    backends: tuple[NodePortBackend, ...]
    local_only: bool

    def backends_on(self, node: str) -> tuple[NodePortBackend, ...]:
        """The backends a node may use: all, or only its own for ``Local``."""
        if not self.local_only:
            return self.backends
        return tuple(b for b in self.backends if b.node == node)


def node_port_rules(store: ObjectStore) -> list[NodePortRule]:
    """Every NodePort (of NodePort and LoadBalancer services), with its ready backends."""
    rules = []
    for service in store.list("Service"):
        spec = service.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            continue
        backends = service_backends(store, service)
        local = spec.get("externalTrafficPolicy") == "Local"
        name = f"{service['metadata'].get('namespace')}/{service['metadata']['name']}"
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                continue
            protocol = port.get("protocol") or "TCP"
            chosen = []
            for backend in backends:
                number = backend.port(service_port_name(port), protocol)
                if number is not None:
                    chosen.append(NodePortBackend(backend.ip, number, backend.node, backend.pod))
            rules.append(NodePortRule(protocol, int(port["nodePort"]), name, int(port["port"]), tuple(chosen), local))
    return sorted(rules, key=lambda r: (r.protocol, r.node_port))
