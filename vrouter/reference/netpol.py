"""Kubernetes NetworkPolicy semantics evaluated directly, in plain Python, from the objects.

Why it exists: the simulator compiles NetworkPolicies into security groups and interval
tables (``controlplane/controller/netpol.py`` → the agent → the numba dataplane), and
``vrsim connlist`` measures what that machinery lets through. This module is a second,
independent reading of the Kubernetes API documentation, slow and obvious — one question at
a time, no compilation — so that a test can hold the measured result against it. Nothing is
imported from the simulator's policy code.

The rules, as the Kubernetes API defines them:

- A policy *selects* the pods of its own namespace that its ``podSelector`` matches (an
  empty or absent selector: all of them).
- ``policyTypes`` says which directions it restricts; absent, it restricts Ingress always,
  and Egress when it has egress rules.
- A pod selected by no policy in a direction is open in that direction. Otherwise traffic
  passes when some rule of some selecting policy allows it (policies add up).
- A connection needs both: the sender's egress and the receiver's ingress must allow it.
- A rule allows a peer when its ``from``/``to`` list is empty or absent, or one entry
  matches: an ``ipBlock`` by address (``cidr`` minus ``except``), or selectors — a
  ``namespaceSelector`` (absent: the policy's namespace only) and a ``podSelector`` (absent:
  every pod of those namespaces), both at once when both are given.
- …and allows the port when ``ports`` is empty or absent, or one entry matches: its
  protocol (default TCP) and its port — absent: every port; a number: that port up to
  ``endPort``; a name: the destination pod's container port of that name and protocol.
- Selectors: ``matchLabels`` and every ``matchExpressions`` term (In, NotIn, Exists,
  DoesNotExist; NotIn and DoesNotExist match a pod without the key).

Whether an ``ipBlock`` matches a pod's address is a choice the API leaves open
(``ipblock_selects_pods``): TF's address groups and the upstream e2e suite say it does;
netpol-analyzer says it never does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP", "SCTP")


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; an empty or absent one matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for term in selector.get("matchExpressions") or ():
        key, operator, values = term["key"], term["operator"], list(term.get("values") or ())
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def in_ipblock(block: Obj, address: str) -> bool:
    """Is ``address`` in the block's ``cidr`` and in none of its ``except`` ranges?"""
    ip = ipaddress.ip_address(address)
    if ip not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(ip in ipaddress.ip_network(hole, strict=False) for hole in block.get("except") or ())


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str | None
    #: (name, protocol) → container port number
    named_ports: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: Obj) -> "Pod":
        meta = obj["metadata"]
        named: dict[tuple[str, str], int] = {}
        for container in (obj.get("spec") or {}).get("containers") or ():
            for port in container.get("ports") or ():
                if port.get("name"):
                    named[(port["name"], port.get("protocol") or "TCP")] = int(port["containerPort"])
        return cls(meta.get("namespace") or "default", meta["name"], dict(meta.get("labels") or {}), (obj.get("status") or {}).get("podIP"), named)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


Endpoint = Pod | str  # a pod, or an outside IPv4 address


class NetworkPolicies:
    """The pods, namespaces and NetworkPolicies of a cluster, and the question ``allowed``."""

    def __init__(self, objects: Iterable[Obj], ipblock_selects_pods: bool = True) -> None:
        self.ipblock_selects_pods = ipblock_selects_pods
        self.pods: dict[str, Pod] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.policies: list[Obj] = []
        for obj in objects:
            kind = obj.get("kind")
            if kind == "Pod":
                pod = Pod.from_object(obj)
                self.pods[pod.key] = pod
            elif kind == "Namespace":
                name = obj["metadata"]["name"]
                self.namespace_labels[name] = {**(obj["metadata"].get("labels") or {}), NAMESPACE_NAME_LABEL: name}
            elif kind == "NetworkPolicy":
                self.policies.append(obj)

    def labels_of_namespace(self, namespace: str) -> Mapping[str, str]:
        return self.namespace_labels.get(namespace) or {NAMESPACE_NAME_LABEL: namespace}

    def endpoint(self, value: Endpoint | str) -> Endpoint:
        """A pod by ``ns/name`` (or as given), or an outside address."""
        if isinstance(value, Pod):
            return value
        if value in self.pods:
            return self.pods[value]
        ipaddress.IPv4Address(value)  # anything else must be an address
        return value

    # --- the question -----------------------------------------------------------------
    def allowed(self, src: Endpoint | str, dst: Endpoint | str, protocol: str, port: int) -> bool:
        """May ``src`` open a ``protocol`` connection to ``dst`` on ``port``?"""
        source, target = self.endpoint(src), self.endpoint(dst)
        if not isinstance(source, Pod) and not isinstance(target, Pod):
            raise ValueError("at least one end must be a pod: policies say nothing between two outside addresses")
        return self._direction(source, target, protocol, port, egress=True) and self._direction(target, source, protocol, port, egress=False)

    def _direction(self, pod: Endpoint, peer: Endpoint, protocol: str, port: int, egress: bool) -> bool:
        """Does ``pod``'s side (its egress toward ``peer``, or its ingress from it) allow it?"""
        verdict = self.isolated_verdict(pod, peer, protocol, port, egress)
        return True if verdict is None else verdict

    def isolated_verdict(self, pod: Endpoint, peer: Endpoint, protocol: str, port: int, egress: bool) -> bool | None:
        """The NetworkPolicies' answer for ``pod``'s side; None when none selects the pod in
        this direction (it is not isolated: another tier, or the default, decides)."""
        if not isinstance(pod, Pod):
            return None  # an outside host has no policies
        restricting = [p for p in self.policies if self._selects(p, pod) and self._restricts(p, egress)]
        if not restricting:
            return None
        destination = peer if egress else pod
        rules_key, peers_key = ("egress", "to") if egress else ("ingress", "from")
        for policy in restricting:
            namespace = policy["metadata"].get("namespace") or "default"
            for rule in (policy.get("spec") or {}).get(rules_key) or ():
                if self._peer_matches(rule.get(peers_key), peer, namespace) and self._port_matches(rule.get("ports"), destination, protocol, port):
                    return True
        return False

    @staticmethod
    def _selects(policy: Obj, pod: Pod) -> bool:
        namespace = policy["metadata"].get("namespace") or "default"
        return namespace == pod.namespace and selector_matches((policy.get("spec") or {}).get("podSelector"), pod.labels)

    @staticmethod
    def _restricts(policy: Obj, egress: bool) -> bool:
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes")
        if types:
            return ("Egress" if egress else "Ingress") in types
        return bool(spec.get("egress")) if egress else True

    def _peer_matches(self, peers: Any, peer: Endpoint, namespace: str) -> bool:
        if not peers:
            return True
        for entry in peers:
            block = entry.get("ipBlock")
            if block:
                if isinstance(peer, Pod):
                    if self.ipblock_selects_pods and peer.ip and in_ipblock(block, peer.ip):
                        return True
                elif in_ipblock(block, peer):
                    return True
                continue
            if not isinstance(peer, Pod):
                continue
            ns_selector = entry.get("namespaceSelector")
            if ns_selector is None:
                in_namespaces = peer.namespace == namespace
            else:
                in_namespaces = selector_matches(ns_selector, self.labels_of_namespace(peer.namespace))
            if in_namespaces and selector_matches(entry.get("podSelector"), peer.labels):
                return True
        return False

    @staticmethod
    def _port_matches(ports: Any, destination: Endpoint, protocol: str, port: int) -> bool:
        if not ports:
            return True
        for entry in ports:
            if (entry.get("protocol") or "TCP") != protocol:
                continue
            number = entry.get("port")
            if number is None:
                return True
            if isinstance(number, int):
                if number <= port <= (entry.get("endPort") or number):
                    return True
            elif isinstance(destination, Pod) and destination.named_ports.get((number, protocol)) == port:
                return True
        return False
