"""The intent view: what Kubernetes says is allowed, evaluated directly from the objects.

Three tiers decide each direction of a connection (the sender's egress, the receiver's
ingress), in the order of KEP-2091 and the network-policy-api reference:

1. **AdminNetworkPolicy** (``policy.networking.k8s.io/v1alpha1``): the policies whose
   ``subject`` selects the pod, by ``priority`` (lower first; ties by name), their rules in
   order; the first rule whose peer and port match decides — ``Allow`` and ``Deny`` end the
   evaluation, ``Pass`` skips the rest of this tier.
2. **NetworkPolicy**: when one selects the pod in this direction, the connection passes iff
   one of their rules allows it (:mod:`vrouter.reference.netpol`).
3. **BaselineAdminNetworkPolicy** (the singleton ``default``): if its subject selects the
   pod, its first matching rule decides; otherwise, or when no rule matches, allowed.

A connection needs both directions. Peers: ``namespaces`` (a namespace selector), ``pods``
(``namespaceSelector`` and ``podSelector``), for egress ``networks`` (CIDRs, matching outside
addresses) and ``nodes`` (node selector; a workload is never a node here, so it matches none).
Ports: ``portNumber``, ``portRange`` (inclusive), ``namedPort`` (the destination pod's
container port of that name); no ``ports``: every port of every protocol.

Choices where the API leaves room, as netpol-analyzer (the oracle) reads them: an ipBlock or
a ``networks`` CIDR never matches a pod's address; a pod's labels are its own (a workload is
evaluated through its first pod by name).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from vrouter.reference.netpol import NetworkPolicies, Pod, selector_matches

Obj = Mapping[str, Any]
ADMIN_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy")
ALLOW, DENY, PASS = "Allow", "Deny", "Pass"


def _port_matches(ports: Any, destination: Pod | str, protocol: str, port: int) -> bool:
    """An admin policy rule's ``ports`` against (protocol, destination port)."""
    if not ports:
        return True
    for entry in ports:
        number = entry.get("portNumber")
        if number and (number.get("protocol") or "TCP") == protocol and int(number.get("port", -1)) == port:
            return True
        span = entry.get("portRange")
        if span and (span.get("protocol") or "TCP") == protocol and int(span.get("start", 0)) <= port <= int(span.get("end", -1)):
            return True
        name = entry.get("namedPort")
        if name and isinstance(destination, Pod) and destination.named_ports.get((name, protocol)) == port:
            return True
    return False


def _in_networks(networks: Iterable[str], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(str(n), strict=False) for n in networks)


class Intent:
    """A cluster's pods, namespaces, NetworkPolicies and admin policies; ``allowed`` asks."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        objects = list(objects)
        self.policies = NetworkPolicies(objects, ipblock_selects_pods=False)
        admin = [o for o in objects if o.get("kind") == "AdminNetworkPolicy"]
        self.admin = sorted(admin, key=lambda o: (int((o.get("spec") or {}).get("priority", 0)), o["metadata"]["name"]))
        self.baseline = next((o for o in objects if o.get("kind") == "BaselineAdminNetworkPolicy" and o["metadata"]["name"] == "default"), None)

    # --- selection ----------------------------------------------------------------------
    def _namespace_labels(self, pod: Pod) -> Mapping[str, str]:
        return self.policies.labels_of_namespace(pod.namespace)

    def _pods_selector_matches(self, pods: Obj, pod: Pod) -> bool:
        return selector_matches(pods.get("namespaceSelector") or {}, self._namespace_labels(pod)) and selector_matches(pods.get("podSelector") or {}, pod.labels)

    def subject_selects(self, policy: Obj, pod: Pod) -> bool:
        subject = (policy.get("spec") or {}).get("subject") or {}
        if "namespaces" in subject:
            return selector_matches(subject["namespaces"] or {}, self._namespace_labels(pod))
        if "pods" in subject:
            return self._pods_selector_matches(subject["pods"] or {}, pod)
        return False

    def peer_matches(self, peers: Any, peer: Pod | str) -> bool:
        for entry in peers or ():
            if isinstance(peer, Pod):
                if "namespaces" in entry and selector_matches(entry["namespaces"] or {}, self._namespace_labels(peer)):
                    return True
                if "pods" in entry and self._pods_selector_matches(entry["pods"] or {}, peer):
                    return True
            elif entry.get("networks") and _in_networks(entry["networks"], peer):
                return True
        return False

    # --- the tiers ----------------------------------------------------------------------
    def _first_match(self, policy: Obj, pod: Pod, peer: Pod | str, protocol: str, port: int, egress: bool) -> str | None:
        rules_key, peers_key = ("egress", "to") if egress else ("ingress", "from")
        destination = peer if egress else pod
        for rule in (policy.get("spec") or {}).get(rules_key) or ():
            if self.peer_matches(rule.get(peers_key), peer) and _port_matches(rule.get("ports"), destination, protocol, port):
                return str(rule.get("action"))
        return None

    def admin_verdict(self, pod: Pod, peer: Pod | str, protocol: str, port: int, egress: bool) -> str | None:
        """The AdminNetworkPolicy tier: Allow, Deny, Pass, or None (no rule matched)."""
        for policy in self.admin:
            if self.subject_selects(policy, pod):
                action = self._first_match(policy, pod, peer, protocol, port, egress)
                if action is not None:
                    return action
        return None

    def baseline_verdict(self, pod: Pod, peer: Pod | str, protocol: str, port: int, egress: bool) -> str | None:
        if self.baseline is None or not self.subject_selects(self.baseline, pod):
            return None
        return self._first_match(self.baseline, pod, peer, protocol, port, egress)

    def direction(self, pod: Pod | str, peer: Pod | str, protocol: str, port: int, egress: bool) -> bool:
        """Does ``pod``'s side (egress toward ``peer``, or ingress from it) allow it?"""
        if not isinstance(pod, Pod):
            return True  # an outside host has no policies
        action = self.admin_verdict(pod, peer, protocol, port, egress)
        if action in (ALLOW, DENY):
            return action == ALLOW
        verdict = self.policies.isolated_verdict(pod, peer, protocol, port, egress)
        if verdict is not None:
            return verdict
        return self.baseline_verdict(pod, peer, protocol, port, egress) != DENY

    def allowed(self, src: Pod | str, dst: Pod | str, protocol: str, port: int) -> bool:
        """May ``src`` open a ``protocol`` connection to ``dst`` on ``port``?"""
        return self.direction(src, dst, protocol, port, egress=True) and self.direction(dst, src, protocol, port, egress=False)


def admin_port_cuts(objects: Iterable[Obj], named: Iterable[tuple[str, int, str]]) -> dict[str, set[int]]:
    """Per protocol, the port boundaries the admin policies' rules mention (for connlist's pieces)."""
    named = list(named)
    cuts: dict[str, set[int]] = {"TCP": set(), "UDP": set(), "SCTP": set()}
    for policy in objects:
        if policy.get("kind") not in ADMIN_KINDS:
            continue
        for direction in ("ingress", "egress"):
            for rule in (policy.get("spec") or {}).get(direction) or ():
                for entry in rule.get("ports") or ():
                    if number := entry.get("portNumber"):
                        cuts.setdefault(number.get("protocol") or "TCP", set()).update((int(number["port"]), int(number["port"]) + 1))
                    if span := entry.get("portRange"):
                        cuts.setdefault(span.get("protocol") or "TCP", set()).update((int(span["start"]), int(span["end"]) + 1))
                    if name := entry.get("namedPort"):
                        for port_name, number_, protocol in named:
                            if port_name == name:
                                cuts.setdefault(protocol, set()).update((number_, number_ + 1))
    return cuts


def admin_networks(objects: Iterable[Obj]) -> list[dict[str, Any]]:
    """The egress ``networks`` CIDRs of the admin policies, as ipBlocks (they cut the outside space)."""
    blocks = []
    for policy in objects:
        if policy.get("kind") in ADMIN_KINDS:
            for rule in (policy.get("spec") or {}).get("egress") or ():
                for peer in rule.get("to") or ():
                    blocks.extend({"cidr": str(cidr)} for cidr in peer.get("networks") or ())
    return blocks


#: the peer an Ingress controller is, for the receiving pod's ingress rules: a pod of its own
#: namespace, with no labels (netpol-analyzer's ``{ingress-controller}``)
INGRESS_CONTROLLER = Pod("ingress-controller", "ingress-controller", {}, None)


def exposure(objects: Iterable[Obj]) -> list[tuple[str, str, int]]:
    """(pod ``ns/name``, protocol, port) that an Ingress (or an OpenShift Route) sends traffic
    to: each backend Service's port resolved to its target port on every pod it selects."""
    objects = list(objects)
    pods = [o for o in objects if o.get("kind") == "Pod"]
    services = {(o["metadata"].get("namespace") or "default", o["metadata"]["name"]): o for o in objects if o.get("kind") == "Service"}
    wanted: list[tuple[str, str, Any]] = []  # (namespace, service, port number or name)
    for obj in objects:
        namespace = obj["metadata"].get("namespace") or "default"
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Ingress":
            backends = [spec.get("defaultBackend")] + [p.get("backend") for r in spec.get("rules") or () for p in (r.get("http") or {}).get("paths") or ()]
            for backend in filter(None, backends):
                service = backend.get("service") or {}
                port = service.get("port") or {}
                if service.get("name"):
                    wanted.append((namespace, service["name"], port.get("number") if port.get("number") is not None else port.get("name")))
        elif obj.get("kind") == "Route" and str(obj.get("apiVersion", "")).startswith("route.openshift.io/"):
            target = (spec.get("port") or {}).get("targetPort")
            if (spec.get("to") or {}).get("name"):
                wanted.append((namespace, spec["to"]["name"], target))
    out = set()
    for namespace, name, port in wanted:
        service = services.get((namespace, name))
        if service is None:
            continue
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        for entry in spec.get("ports") or ():
            if port is not None and port not in (entry.get("port"), entry.get("name"), entry.get("targetPort")):
                continue
            protocol = entry.get("protocol") or "TCP"
            for pod in pods:
                meta = pod["metadata"]
                if (meta.get("namespace") or "default") != namespace or not selector or any((meta.get("labels") or {}).get(k) != v for k, v in selector.items()):
                    continue
                target = entry.get("targetPort", entry.get("port"))
                number = target if isinstance(target, int) else Pod.from_object(pod).named_ports.get((target, protocol))
                if number is not None:
                    out.add((f"{namespace}/{meta['name']}", protocol, int(number)))
    return sorted(out)
