"""What the dataplane lets through equals what the NetworkPolicies say, on random clusters.

Hypothesis draws namespaces with labels, bare pods with labels and named container ports, and
NetworkPolicies using every feature (selectors with all operators, both selectors in one
peer, empty selectors, ipBlocks with except, numbered, ranged and named ports, the three
protocols, policyTypes or their defaults, ingress and egress, several policies). ``connlist``
measures every probe through the fabric; :mod:`vrouter.reference.netpol` answers the same
question for the same representative endpoints and ports directly from the objects. The two
must agree on every probe, in both readings of ipBlock.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.config import ClusterConfig
from vrouter.lab.connlist import PROTOCOL_NAMES, ConnList, connlist, ip_text, summarize
from vrouter.reference.netpol import NetworkPolicies
from vrouter.lab.scenario import Scenario
from vrouter.lab.sim import Simulation

NAMESPACES = ("alpha", "beta", "gamma")
NAMESPACE_LABELS = {"team": ("red", "blue"), "env": ("prod", "dev")}
POD_LABELS = {"app": ("web", "db"), "tier": ("front", "back")}
PORT_NAMES = ("http", "dns")
PORT_NUMBERS = (53, 80, 8080)
#: pods get addresses from the top of the pod subnet (10.47.255.254 down), so these cut
#: between pods as well as through the outside world
CIDRS = (
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.47.255.0/24",
    "10.47.255.248/30",
    "10.47.255.252/31",
    "10.47.255.250/32",
    "10.64.0.0/12",
    "8.8.8.0/24",
    "8.8.8.128/25",
    "192.168.0.0/16",
    "192.168.1.0/24",
)


def within(cidr: str) -> list[str]:
    outer = ipaddress.ip_network(cidr)
    return [c for c in CIDRS if c != cidr and ipaddress.ip_network(c).subnet_of(outer)]


def label_sets(keys: dict[str, tuple[str, ...]]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in keys.items()})


def selectors(keys: dict[str, tuple[str, ...]]) -> st.SearchStrategy[dict[str, Any]]:
    """A LabelSelector: matchLabels, matchExpressions with every operator, or empty."""
    names = (*keys, "other")

    def term(key: str) -> st.SearchStrategy[dict[str, Any]]:
        values = keys.get(key, ("x",))
        listed = st.fixed_dictionaries({"key": st.just(key), "operator": st.sampled_from(("In", "NotIn")), "values": st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)})
        bare = st.fixed_dictionaries({"key": st.just(key), "operator": st.sampled_from(("Exists", "DoesNotExist"))})
        return listed | bare

    expressions = st.lists(st.sampled_from(names).flatmap(term), max_size=2)
    return st.fixed_dictionaries({}, optional={"matchLabels": label_sets(keys), "matchExpressions": expressions})


def ip_blocks() -> st.SearchStrategy[dict[str, Any]]:
    def block(cidr: str) -> st.SearchStrategy[dict[str, Any]]:
        inner = within(cidr)
        if not inner:
            return st.just({"cidr": cidr})
        return st.fixed_dictionaries({"cidr": st.just(cidr)}, optional={"except": st.lists(st.sampled_from(inner), min_size=1, max_size=2, unique=True)})

    return st.sampled_from(CIDRS).flatmap(block)


def peers() -> st.SearchStrategy[dict[str, Any]]:
    pods, spaces = selectors(POD_LABELS), selectors(NAMESPACE_LABELS)
    return st.one_of(
        st.fixed_dictionaries({"podSelector": pods}),
        st.fixed_dictionaries({"namespaceSelector": spaces}),
        st.fixed_dictionaries({"podSelector": pods, "namespaceSelector": spaces}),
        st.fixed_dictionaries({"ipBlock": ip_blocks()}),
    )


def ports() -> st.SearchStrategy[dict[str, Any]]:
    protocol = st.sampled_from(("TCP", "UDP", "SCTP"))
    single = st.sampled_from((*PORT_NUMBERS, 443)) | st.sampled_from((*PORT_NAMES, "metrics"))
    ranged = st.sampled_from((1, 80, 1000)).flatmap(lambda p: st.fixed_dictionaries({"port": st.just(p), "endPort": st.sampled_from((p, p + 9, 65535))}))
    return st.one_of(
        st.fixed_dictionaries({}, optional={"protocol": protocol}),
        st.fixed_dictionaries({"port": single}, optional={"protocol": protocol}),
        ranged.flatmap(lambda r: st.fixed_dictionaries({k: st.just(v) for k, v in r.items()}, optional={"protocol": protocol})),
    )


def rules(peers_key: str) -> st.SearchStrategy[dict[str, Any]]:
    some_ports = st.lists(ports(), min_size=1, max_size=2)
    return st.fixed_dictionaries({}, optional={peers_key: st.lists(peers(), max_size=2), "ports": some_ports | st.lists(ports(), max_size=0)})


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Namespaces, 2-4 bare pods on two nodes, and 1-3 NetworkPolicies."""
    spaces = draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=3, unique=True))
    objects: list[dict[str, Any]] = []
    for name in spaces:
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": draw(label_sets(NAMESPACE_LABELS))}})
    for index in range(draw(st.integers(2, 5))):
        named = draw(st.lists(st.sampled_from(PORT_NAMES), max_size=2, unique=True))
        container_ports = [
            {"name": name, "containerPort": draw(st.sampled_from(PORT_NUMBERS)), "protocol": draw(st.sampled_from(("TCP", "UDP", "SCTP")))} for name in named
        ]
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(spaces)), "labels": draw(label_sets(POD_LABELS))},
                "spec": {"nodeName": draw(st.sampled_from(("worker01", "worker02"))), "containers": [{"name": "c", "image": "busybox", "ports": container_ports}]},
            }
        )
    for index in range(draw(st.integers(1, 3))):
        # half the policies select every pod of their namespace, so that they bite
        spec: dict[str, Any] = {"podSelector": draw(st.just({}) | selectors(POD_LABELS))}
        types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
        if types is not None:
            spec["policyTypes"] = types
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            if draw(st.sampled_from((True, True, False))):
                spec[key] = draw(st.lists(rules(peers_key), min_size=draw(st.sampled_from((0, 1, 1))), max_size=2))
        namespace = draw(st.sampled_from(spaces))
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": f"np{index}", "namespace": namespace}, "spec": spec})
    return objects


def simulate(objects: list[dict[str, Any]], ipblock_selects_pods: bool) -> Simulation:
    sim = Simulation(Scenario(name="property", file="<property>", cluster=ClusterConfig()), ipblock_selects_pods=ipblock_selects_pods)
    sim.notes.extend(sim.cluster.apply_objects(objects))
    return sim


def reference_verdicts(sim: Simulation, result: ConnList, ipblock_selects_pods: bool) -> np.ndarray:
    """The reference's answer for every probe connlist sent (same endpoints, same ports)."""
    store = sim.cluster.store
    reference = NetworkPolicies([*store.list("Namespace"), *store.list("Pod"), *store.list("NetworkPolicy")], ipblock_selects_pods)
    names = [e.pod if e.external is None else ip_text(e.ip) for e in result.endpoints]
    return np.array(
        [reference.allowed(names[p["src"]], names[p["dst"]], PROTOCOL_NAMES[int(p["proto"])], int(p["port"])) for p in result.probes],
        bool,
    )


@pytest.mark.parametrize("ipblock_selects_pods", [True, False], ids=["ipblock-selects-pods", "no-ipblock-selects-pods"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(objects=clusters())
def test_measured_equals_the_policies(objects: list[dict[str, Any]], ipblock_selects_pods: bool) -> None:
    sim = simulate(objects, ipblock_selects_pods)
    result = connlist(sim)
    want = reference_verdicts(sim, result, ipblock_selects_pods)
    got = result.probes["allowed"]
    if not np.array_equal(got, want):
        wrong = np.flatnonzero(got != want)[:5]
        shown = [
            f"{result.endpoints[p['src']].label} -> {result.endpoints[p['dst']].label} {PROTOCOL_NAMES[int(p['proto'])]} {int(p['port'])}: "
            f"measured {bool(p['allowed'])}, policies say {bool(want[i])}"
            for i, p in zip(wrong, result.probes[wrong], strict=True)
        ]
        pytest.fail("\n".join(shown))
    expected = result.probes.copy()
    expected["allowed"] = want
    assert [c.line() for c in summarize(result.endpoints, expected, result.port_pieces)] == result.lines()
