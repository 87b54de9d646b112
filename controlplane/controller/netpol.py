"""NetworkPolicies (through their security groups) → the allow-lists flow setup evaluates.

Kubernetes semantics (spec §8): a pod selected by no policy in a direction is unrestricted in
that direction; otherwise a connection is allowed when any rule of any selecting policy
allows it (union). Both the sender's egress and the receiver's ingress must allow it.

The namespace's default security group allows everything; a NetworkPolicy's group is what
narrows it. Choice: TF joins security groups by union, which would let the default group
cancel every policy, so the effective rule — and what the real system enforces for a pod
selected by a policy — is "the policies' groups replace the default group in the
directions they restrict". That is what is computed here.

For each pod and direction the result is a list of :class:`Allow` entries — an address range,
a protocol (0 = any), a port range and the rule that allows it — which the vRouter agent
compiles into interval tables. Named ports resolve on the destination pod: the pod itself
for ingress, each peer pod for egress (an address that is no pod never matches a named port).

Choice (``ipblock_selects_pods``): TF turns an ipBlock into an address group that matches by
address, pod addresses included, as the upstream e2e suite expects; the default follows it.
With ``False``, pod addresses are cut out of every ipBlock (netpol-analyzer's reading).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.inet import PROTOCOL_NUMBERS
from controlplane.k8s.selectors import matches
from controlplane.k8s.store import Obj

ANY_PROTOCOL = 0
#: the protocols an any-protocol allow stands for, when a denial takes one of them out
OTHER_PROTOCOLS = tuple(sorted({PROTOCOL_NUMBERS[name] for name in ("icmp", "tcp", "udp", "sctp")}))
ALL_ADDRESSES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class RuleRef:
    """Which policy rule allowed something: ``namespace/name``, direction, rule index."""

    policy: str
    direction: str  # "ingress" | "egress"
    index: int

    def __str__(self) -> str:
        return f"NetworkPolicy {self.policy} {self.direction} rule {self.index}"


@dataclass(frozen=True)
class Allow:
    """Addresses ``lo..hi`` (inclusive, host-order ints) may talk on ``protocol`` ports ``port_lo..port_hi``."""

    lo: int
    hi: int
    protocol: int
    port_lo: int
    port_hi: int
    ref: RuleRef


@dataclass(frozen=True)
class Direction:
    """One direction of one pod: unrestricted, or restricted to the allows."""

    isolated: bool
    allows: tuple[Allow, ...] = ()
    policies: tuple[str, ...] = ()  # the selecting policies, named in denials


OPEN = Direction(False)


@dataclass(frozen=True)
class PodInfo:
    """What policy evaluation needs about one pod."""

    namespace: str
    name: str
    ip: int
    labels: Mapping[str, str]
    named_ports: Mapping[tuple[str, str], int]  # (port name, protocol) → number


def named_ports_of(pod: Obj) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                out[(port["name"], port.get("protocol") or "TCP")] = int(port["containerPort"])
    return out


def policy_directions(policy: Obj) -> tuple[bool, bool]:
    """(restricts ingress, restricts egress), with Kubernetes' defaults for policyTypes."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return "Ingress" in types, "Egress" in types
    return True, bool(spec.get("egress"))


def cidr_ranges(block: Mapping[str, Any]) -> list[tuple[int, int]]:
    """An ipBlock's addresses minus its ``except`` list, as disjoint inclusive ranges."""
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if net.version != 4:
        return []
    ranges = [(int(net.network_address), int(net.broadcast_address))]
    for text in block.get("except") or []:
        cut = ipaddress.ip_network(text, strict=False)
        if cut.version != 4:
            continue
        ranges = subtract(ranges, (int(cut.network_address), int(cut.broadcast_address)))
    return ranges


def subtract_points(ranges: Iterable[tuple[int, int]], points: Sequence[int]) -> list[tuple[int, int]]:
    """``ranges`` without the (sorted) single addresses ``points``.

    >>> subtract_points([(0, 10)], [3, 7])
    [(0, 2), (4, 6), (8, 10)]
    """
    out = []
    for lo, hi in ranges:
        start = bisect.bisect_left(points, lo)
        for point in points[start:]:
            if point > hi:
                break
            if point > lo:
                out.append((lo, point - 1))
            lo = point + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def subtract(ranges: Iterable[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    """``ranges`` without the addresses of ``cut``.

    >>> subtract([(0, 10)], (3, 4))
    [(0, 2), (5, 10)]
    """
    out = []
    for lo, hi in ranges:
        if cut[1] < lo or cut[0] > hi:
            out.append((lo, hi))
            continue
        if lo < cut[0]:
            out.append((lo, cut[0] - 1))
        if hi > cut[1]:
            out.append((cut[1] + 1, hi))
    return out


def except_denials(policy: Obj, key: str, peers_key: str) -> list[tuple[list[tuple[int, int]], int, int, int]]:
    """The DENY rules kube-manager makes of a policy's ``except`` lists in one direction:
    (address ranges, protocol, port range) — the rule's ports, or any."""
    out = []
    for rule in (policy.get("spec") or {}).get(key) or []:
        holes = [r for peer in rule.get(peers_key) or [] if peer.get("ipBlock") for text in peer["ipBlock"].get("except") or [] for r in cidr_ranges({"cidr": text})]
        if not holes:
            continue
        ports = rule.get("ports") or [None]
        for port in ports:
            if port is None or port.get("port") is None:
                protocol = PROTOCOL_NUMBERS.get(str((port or {}).get("protocol") or "").lower(), ANY_PROTOCOL) if port else ANY_PROTOCOL
                out.append((holes, protocol, 0, 65535))
            elif isinstance(port.get("port"), int):
                out.append((holes, PROTOCOL_NUMBERS.get(str(port.get("protocol") or "TCP").lower(), 0), int(port["port"]), int(port.get("endPort") or port["port"])))
    return out


def denied_by_excepts(allows: list[Allow], denials: list[tuple[list[tuple[int, int]], int, int, int]]) -> list[Allow]:
    """The allows with the denials' addresses taken out, on the ports and protocol they share."""
    for holes, protocol, port_lo, port_hi in denials:
        kept: list[Allow] = []
        for allow in allows:
            shares_protocol = protocol == ANY_PROTOCOL or allow.protocol in (ANY_PROTOCOL, protocol)
            lo, hi = max(allow.port_lo, port_lo), min(allow.port_hi, port_hi)
            if not shares_protocol or lo > hi:
                kept.append(allow)
                continue
            # outside the denial's ports: untouched; inside: the holes cut out
            if allow.port_lo < lo:
                kept.append(Allow(allow.lo, allow.hi, allow.protocol, allow.port_lo, lo - 1, allow.ref))
            if allow.port_hi > hi:
                kept.append(Allow(allow.lo, allow.hi, allow.protocol, hi + 1, allow.port_hi, allow.ref))
            if allow.protocol == ANY_PROTOCOL and protocol != ANY_PROTOCOL:
                # the denial is one protocol's: the others keep the whole window
                kept.extend(Allow(allow.lo, allow.hi, other, lo, hi, allow.ref) for other in OTHER_PROTOCOLS if other != protocol)
            ranges = [(allow.lo, allow.hi)]
            for hole in holes:
                ranges = subtract(ranges, hole)
            narrowed = protocol if allow.protocol == ANY_PROTOCOL else allow.protocol
            kept.extend(Allow(a, b, narrowed, lo, hi, allow.ref) for a, b in ranges)
        allows = kept
    return allows


class PolicyIndex:
    """The cluster's pods, namespaces and policies, indexed for evaluating peers and selections."""

    def __init__(
        self, pods: Sequence[PodInfo], namespaces: Mapping[str, Mapping[str, str]], policies: Sequence[Obj], ipblock_selects_pods: bool = True, except_denies: bool = False
    ) -> None:
        #: the tf reading (behaviour 4): an ipBlock's ``except`` is a DENY rule ahead of every
        #: allow of the direction, so it overrides allows of other rules and policies too
        self.except_denies = except_denies
        self.pods = list(pods)
        self.namespace_labels = dict(namespaces)
        self.policies = list(policies)
        self.ipblock_selects_pods = ipblock_selects_pods
        self.by_namespace: dict[str, list[Obj]] = {}
        for policy in self.policies:
            self.by_namespace.setdefault(policy["metadata"].get("namespace") or "default", []).append(policy)
        self.pods_by_namespace: dict[str, list[PodInfo]] = {}
        for pod in self.pods:
            self.pods_by_namespace.setdefault(pod.namespace, []).append(pod)
        self.pod_ips = sorted(p.ip for p in self.pods)
        # A peer's pods, an ipBlock's ranges and a whole direction depend on the policies,
        # not on the pod being compiled: computed once, shared by every pod they apply to.
        self._peers: dict[tuple[int, str], list[PodInfo]] = {}
        self._blocks: dict[int, list[tuple[int, int]]] = {}
        self._directions: dict[tuple[Any, ...], Direction] = {}

    # --- peers ------------------------------------------------------------------------
    def peer_pods(self, peer: Mapping[str, Any], policy_namespace: str) -> list[PodInfo]:
        key = (id(peer), policy_namespace)
        found = self._peers.get(key)
        if found is not None:
            return found
        pod_selector = peer.get("podSelector")
        ns_selector = peer.get("namespaceSelector")
        if ns_selector is None:
            namespaces = [policy_namespace]
        else:
            namespaces = [ns for ns in self.pods_by_namespace if matches(ns_selector, self.namespace_labels.get(ns, {}))]
        out = []
        for namespace in namespaces:
            for pod in self.pods_by_namespace.get(namespace, ()):
                if pod_selector is None or matches(pod_selector, pod.labels):
                    out.append(pod)
        self._peers[key] = out
        return out

    def block_ranges(self, block: Mapping[str, Any]) -> list[tuple[int, int]]:
        found = self._blocks.get(id(block))
        if found is not None:
            return found
        ranges = cidr_ranges(block)
        if not self.ipblock_selects_pods:
            ranges = subtract_points(ranges, self.pod_ips)
        self._blocks[id(block)] = ranges
        return ranges

    def pods_in(self, ranges: Sequence[tuple[int, int]]) -> list[PodInfo]:
        return [p for p in self.pods if any(lo <= p.ip <= hi for lo, hi in ranges)]

    # --- one pod ----------------------------------------------------------------------
    def selecting(self, pod: PodInfo, ingress: bool) -> list[Obj]:
        out = []
        for policy in self.by_namespace.get(pod.namespace, ()):
            restricts_in, restricts_out = policy_directions(policy)
            if (restricts_in if ingress else restricts_out) and matches((policy.get("spec") or {}).get("podSelector"), pod.labels):
                out.append(policy)
        return out

    def direction(self, pod: PodInfo, ingress: bool) -> Direction:
        """The allow-list of ``pod`` for traffic coming in (``ingress``) or going out."""
        policies = self.selecting(pod, ingress)
        if not policies:
            return OPEN
        # only an ingress rule's named ports depend on the pod itself
        key = (ingress, tuple(id(p) for p in policies), tuple(sorted(pod.named_ports.items())) if ingress else ())
        found = self._directions.get(key)
        if found is None:
            found = self._directions[key] = self._direction(pod, ingress, policies)
        return found

    def _direction(self, pod: PodInfo, ingress: bool, policies: list[Obj]) -> Direction:
        allows: list[Allow] = []
        key, peers_key = ("ingress", "from") if ingress else ("egress", "to")
        for policy in policies:
            namespace = policy["metadata"].get("namespace") or "default"
            name = f"{namespace}/{policy['metadata']['name']}"
            for index, rule in enumerate((policy.get("spec") or {}).get(key) or []):
                ref = RuleRef(name, key, index)
                allows.extend(self._rule_allows(rule, peers_key, namespace, pod, ingress, ref))
        names = tuple(f"{p['metadata'].get('namespace') or 'default'}/{p['metadata']['name']}" for p in policies)
        if self.except_denies:
            allows = denied_by_excepts(allows, [d for p in policies for d in except_denials(p, key, peers_key)])
        return Direction(True, tuple(allows), names)

    def _rule_allows(self, rule: Mapping[str, Any], peers_key: str, namespace: str, pod: PodInfo, ingress: bool, ref: RuleRef) -> list[Allow]:
        peers = rule.get(peers_key)
        # (ranges, pods those ranges stand for — needed to resolve named ports on egress)
        targets: list[tuple[list[tuple[int, int]], list[PodInfo] | None]] = []
        if not peers:
            targets.append(([ALL_ADDRESSES], None))
        else:
            for peer in peers:
                if peer.get("ipBlock") is not None:
                    ranges = self.block_ranges(peer["ipBlock"])
                    targets.append((ranges, None))
                else:
                    chosen = self.peer_pods(peer, namespace)
                    targets.append(([(p.ip, p.ip) for p in chosen], chosen))
        ports = rule.get("ports")
        out: list[Allow] = []
        for ranges, chosen in targets:
            if not ports:
                out.extend(Allow(lo, hi, ANY_PROTOCOL, 0, 65535, ref) for lo, hi in ranges)
                continue
            for port in ports:
                protocol_name = port.get("protocol") or "TCP"
                protocol = PROTOCOL_NUMBERS.get(str(protocol_name).lower(), 0)
                number = port.get("port")
                if number is None:
                    out.extend(Allow(lo, hi, protocol, 0, 65535, ref) for lo, hi in ranges)
                elif isinstance(number, int):
                    end = port.get("endPort") or number
                    out.extend(Allow(lo, hi, protocol, number, end, ref) for lo, hi in ranges)
                elif ingress:
                    resolved = pod.named_ports.get((number, protocol_name))
                    if resolved is not None:
                        out.extend(Allow(lo, hi, protocol, resolved, resolved, ref) for lo, hi in ranges)
                else:
                    for peer_pod in chosen if chosen is not None else self.pods_in(ranges):
                        resolved = peer_pod.named_ports.get((number, protocol_name))
                        if resolved is not None:
                            out.append(Allow(peer_pod.ip, peer_pod.ip, protocol, resolved, resolved, ref))
        return out
