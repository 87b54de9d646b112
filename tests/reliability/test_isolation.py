"""No isolation leak, on generated clusters: what the dataplane delivers between pods is
exactly what the two independent readings of the configuration allow together.

Hypothesis draws namespaces in every TF mode (open, isolated, isolated with services open,
on a custom network, on a custom network joined to the default one by a TF policy), pods
with labels, and NetworkPolicies. The reachability matrix is measured through the fabric;
the expectation for each pair is

    connected(controller's VN graph, VN of a, VN of b)  and  the NetworkPolicy reference allows it

where the NetworkPolicy reference (:mod:`vrouter.reference.netpol`) imports nothing from the
simulator. Any pair delivered without both is a leak; any pair refused with both is a
false isolation. Every run's ``isolationLeaks`` counter must be 0 as well, and the same
seed gives byte-identical JSON.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.controller.connectivity import connected
from vrouter.lab.checks import run_conversation
from vrouter.lab.reach import reachability
from vrouter.reference.netpol import NetworkPolicies
from vrouter.lab.sim import Simulation

BLUE = {"apiVersion": "vrsim.tf/v1", "kind": "VirtualNetwork", "metadata": {"name": "blue", "project": "k8s-default"}, "spec": {"subnet": "10.10.0.0/24"}}
JOIN = {
    "apiVersion": "vrsim.tf/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "blue-default", "project": "k8s-default"},
    "spec": {
        "rules": [{"action": "pass", "protocol": "any", "direction": "<>", "src": "k8s-default:blue", "dst": "k8s-default:k8s-default-pod-network"}],
        "attachTo": ["k8s-default:blue", "k8s-default:k8s-default-pod-network"],
    },
}
MODES = ("open", "isolated", "services-open", "blue")
BLUE_NETWORK = '{"domain": "default-domain", "project": "k8s-default", "name": "blue"}'


def namespace(name: str, mode: str, team: str) -> dict[str, Any]:
    notes = {
        "open": {},
        "isolated": {"opencontrail.org/isolation": "true"},
        "services-open": {"opencontrail.org/isolation": "true", "opencontrail.org/isolation.service": "false"},
        "blue": {"opencontrail.org/network": BLUE_NETWORK},
    }[mode]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": notes, "labels": {"team": team}}}


def pod(namespace: str, name: str, app: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}]}]},
    }


PEERS = st.sampled_from(
    [
        {"podSelector": {"matchLabels": {"app": "web"}}},
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"team": "red"}}},
        {"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.47.255.252/31"]}},
    ]
)


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    modes = draw(st.lists(st.sampled_from(MODES), min_size=2, max_size=4))
    if "blue" in modes:
        objects.append(BLUE)
        if draw(st.booleans()):
            objects.append(JOIN)
    names = [f"ns{i}" for i in range(len(modes))]
    for name, mode in zip(names, modes, strict=True):
        objects.append(namespace(name, mode, draw(st.sampled_from(["red", "blue"]))))
        for k in range(draw(st.integers(1, 3))):
            objects.append(pod(name, f"p{k}", draw(st.sampled_from(["web", "db"])), draw(st.sampled_from(["worker01", "worker02"]))))
    for i in range(draw(st.integers(0, 3))):
        types = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
        spec: dict[str, Any] = {"podSelector": draw(st.sampled_from([{}, {"matchLabels": {"app": "db"}}])), "policyTypes": types}
        if "Ingress" in types:
            spec["ingress"] = draw(st.lists(st.fixed_dictionaries({"from": st.lists(PEERS, max_size=2)}, optional={"ports": st.just([{"port": "http"}])}), max_size=2))
        if "Egress" in types:
            spec["egress"] = draw(st.lists(st.fixed_dictionaries({"to": st.lists(PEERS, max_size=2)}), max_size=2))
        objects.append(
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": f"np{i}", "namespace": draw(st.sampled_from(names))}, "spec": spec}
        )
    return objects


def vn_of_pod(sim: Simulation, key: str) -> Any:
    namespace, _, name = key.partition("/")
    record = sim.cluster.kube_manager.pods.records[(namespace, name)]
    return sim.intent.interfaces[record.vmi].vn


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_delivered_exactly_when_vn_graph_and_policies_allow(objects: list[dict[str, Any]]) -> None:
    sim = Simulation.from_objects(objects)
    measured = reachability(sim, "tcp", 80)
    policies = NetworkPolicies(sim.cluster.store.list("Namespace") + sim.cluster.store.list("Pod") + sim.cluster.store.list("NetworkPolicy"))
    graph = sim.intent.graph
    vns = {p: vn_of_pod(sim, p) for p in measured.pods}
    expected = np.zeros_like(measured.matrix)
    for i, a in enumerate(measured.pods):
        for j, b in enumerate(measured.pods):
            # a pod reaches itself through its own stack (loopback), whatever the policies
            expected[i, j] = i == j or (connected(graph, vns[a], vns[b]) and policies.allowed(a, b, "TCP", 80))
    leaks = [(a, b) for i, a in enumerate(measured.pods) for j, b in enumerate(measured.pods) if measured.matrix[i, j] and not expected[i, j]]
    refused = [(a, b) for i, a in enumerate(measured.pods) for j, b in enumerate(measured.pods) if expected[i, j] and not measured.matrix[i, j]]
    assert not leaks, f"delivered without the VN graph and the policies both allowing it: {leaks[:4]}"
    assert not refused, f"refused although both allow it: {refused[:4]}"
    # and each conversation's own invariant counter agrees
    a, b = measured.pods[0], measured.pods[-1]
    conv, _ = run_conversation(sim, a, b, "tcp", 80, 2)
    assert conv.leaks == 0 and conv.counters()["isolationLeaks"] == 0


def test_the_leak_counter_sees_a_route_the_graph_does_not_give() -> None:
    """Tamper with the controller's graph after the tables were compiled: a delivered
    packet between joined VNs becomes a leak in the counter's eyes."""
    objects = [BLUE, JOIN, namespace("a", "blue", "red"), pod("a", "p", "web", "worker01"), pod("default", "q", "web", "worker02")]
    sim = Simulation.from_objects(objects)
    conv, _ = run_conversation(sim, "a/p", "default/q", "tcp", 80, 3)
    assert conv.reachable and conv.leaks == 0
    sim.intent.graph.remove_edges_from(list(sim.intent.graph.edges))
    conv, _ = run_conversation(sim, "a/p", "default/q", "tcp", 80, 3)
    assert conv.leaks == 3


def test_same_seed_gives_byte_identical_json(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from vrouter.cli.main import app

    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "apiVersion: vrsim/v1\nkind: Scenario\nsteps:\n"
        "  - apply:\n"
        "      - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 3, selector: {matchLabels: {app: web}},"
        " template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}}}\n"
        "      - {apiVersion: v1, kind: Service, metadata: {name: web}, spec: {selector: {app: web}, ports: [{port: 80}]}}\n"
        "      - {apiVersion: v1, kind: Pod, metadata: {name: client}, spec: {containers: [{name: c, image: busybox}]}}\n"
        "  - connect: {from: default/client, to: service/default/web, port: 80, flows: 500}\n"
        "    expect: {reachable: true, backends: all}\n"
    )
    runner = CliRunner()
    runs = [runner.invoke(app, ["run", str(scenario), "--json", "--seed", str(seed)]).stdout for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    first, other = json.loads(runs[0]), json.loads(runs[2])
    assert first["passed"] and other["passed"]
    # a different seed names the pods differently (and spreads flows accordingly)
    assert first["scenarios"][0]["checks"][0]["observed"]["backends"] != other["scenarios"][0]["checks"][0]["observed"]["backends"]
