"""The forwarding core end to end (issue "The vRouter forwarding core").

Pings and connections through the numba kernels across the fabric: the spec §10 table,
where the ClusterIP DNAT happens, ECMP spread and stickiness, member removal, and each drop
reason produced and counted.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from k8s_objects import isolated, namespace, objects, pod, three_nodes

from controlplane.config import ClusterConfig
from controlplane.inet import ip_int, protocol_number
from vrouter.lab.conversation import Conversation, converse
from vrouter.dataplane.packets import DELIVERED, DROP_REASONS, DROPPED, FABRIC, TCP_ACK, TCP_SYN, new_batch
from vrouter.dataplane.trace import T_DNAT, T_ECMP
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import answers, first_packets, resolve_source, resolve_target

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def web_pod(name: str, node: str, ns: str | None = None) -> dict:
    p = pod(name, ns, labels={"app": "web"}, nodeName=node)
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    return p


def pods_by_vif(sim: Simulation) -> dict[tuple[int, int], str]:
    return {(n.index, i): v.pod for n in sim.nodes.values() for i, v in n.vifs.items() if v.pod}


def talk(sim: Simulation, src: str, dst: str, proto: str = "icmp", port: int | None = None, flows: int = 3) -> Conversation:
    target = resolve_target(sim, dst, port)
    source = resolve_source(sim, src, target)
    return converse(sim, source, target, protocol_number(proto), flows, pods_by_vif(sim))


@pytest.fixture
def article() -> Simulation:
    sim = Simulation.from_objects([namespace("ns-non-isolated"), isolated("ns-isolated")])
    for ns in ("default", "ns-non-isolated", "ns-isolated"):
        sim.cluster.apply_objects([pod("busybox")], namespace=ns)
        sim.cluster.apply_objects([web_pod("web", "worker02"), *objects(SERVICE)], namespace=ns)
    return sim


def test_spec_table_in_both_directions(article: Simulation) -> None:
    sim = article
    pods = ["default/busybox", "ns-non-isolated/busybox", "ns-isolated/busybox"]
    isolated_pod = {"ns-isolated/busybox"}
    for a in pods:
        for b in pods:
            if a == b:
                continue
            expected = (a in isolated_pod) == (b in isolated_pod)
            conv = talk(sim, a, b)
            assert conv.reachable == expected, (a, b)
            if not expected:
                assert conv.drop_reason == "NoDstRt"
                assert conv.drop_node == sim.nodes[sim.cluster.store.get("Pod", *a.split("/"))["spec"]["nodeName"]].index
    services = {ns: f"service/{ns}/web" for ns in ("default", "ns-non-isolated", "ns-isolated")}
    table = {
        ("default/busybox", "default"): True,
        ("default/busybox", "ns-non-isolated"): True,
        ("default/busybox", "ns-isolated"): False,
        ("ns-isolated/busybox", "default"): True,
        ("ns-isolated/busybox", "ns-non-isolated"): True,
        ("ns-isolated/busybox", "ns-isolated"): True,
    }
    for (client, ns), expected in table.items():
        conv = talk(sim, client, services[ns], "tcp", 80, flows=20)
        assert conv.reachable == expected, (client, ns)
    for node in ("worker01", "worker02"):
        for target in [*pods, *services.values()]:
            proto, port = ("tcp", 80) if target.startswith("service/") else ("icmp", None)
            assert talk(sim, f"node/{node}", target, proto, port).reachable, (node, target)


def test_clusterip_dnat_happens_only_on_the_members_node() -> None:
    sim = Simulation.from_objects(
        [web_pod("web-a", "worker01"), web_pod("web-b", "worker02"), pod("client", nodeName="worker03"), *objects(SERVICE)],
        config=three_nodes(),
    )
    vip = ip_int(sim.cluster.store.get("Service", "default", "web")["spec"]["clusterIP"])
    target = resolve_target(sim, "service/default/web")
    source = resolve_source(sim, "default/client", target)
    result = sim.fabric.run(first_packets(source, target, 6, 200), trace_capacity=100_000)
    client_node = sim.nodes["worker03"].index
    events = result.trace
    assert (events["stage"][events["node"] == client_node] == T_ECMP).any()
    assert not (events["stage"][events["node"] == client_node] == T_DNAT).any()
    dnat_nodes = set(events["node"][events["stage"] == T_DNAT].tolist())
    assert dnat_nodes == {sim.nodes["worker01"].index, sim.nodes["worker02"].index}
    rows = result.packets
    assert (rows["outcome"] == DELIVERED).all()
    assert set(rows["out_dport"].tolist()) == {8080}
    # the client's node forwarded unchanged: what crossed the fabric still had the VIP
    again = sim.fabric.run(first_packets(source, target, 6, 1, first_port=60000), trace_capacity=1000)
    hops = again.trace
    tunnel_events = hops[(hops["node"] == client_node)]
    assert tunnel_events.size and again.packets["dip"][0] == vip  # the row's input header at its last hop
    # the reply comes back from the VIP
    replies = sim.fabric.run(answers(rows, 6, TCP_SYN | TCP_ACK))
    back = replies.packets
    assert (back["outcome"] == DELIVERED).all()
    assert set(back["out_sip"].tolist()) == {vip}
    assert set(back["out_sport"].tolist()) == {80}


def test_ten_thousand_flows_spread_evenly_and_stick() -> None:
    backends = [web_pod(f"web-{i}", f"worker0{i % 3 + 1}") for i in range(4)]
    sim = Simulation.from_objects([*backends, pod("client", nodeName="worker01"), *objects(SERVICE)], config=three_nodes())
    conv = talk(sim, "default/client", "service/default/web", "tcp", 80, flows=10_000)
    assert conv.reachable
    shares = conv.backends
    assert len(shares) == 4
    for name, count in shares.items():
        assert abs(count - 2500) <= 250, (name, count)
    # every later packet of a flow goes to the member its first packet went to
    target = resolve_target(sim, "service/default/web")
    source = resolve_source(sim, "default/client", target)
    first = sim.fabric.run(first_packets(source, target, 6, 10_000)).packets
    data = first_packets(source, target, 6, 10_000)
    data["tcp_flags"] = TCP_ACK
    later = sim.fabric.run(data).packets
    assert (later["outcome"] == DELIVERED).all()
    assert np.array_equal(first["node"], later["node"]) and np.array_equal(first["out_vif"], later["out_vif"])


def test_removing_a_member_keeps_the_others_flows() -> None:
    backends = [web_pod(f"web-{i}", f"worker0{i % 2 + 1}") for i in range(3)]
    sim = Simulation.from_objects([*backends, pod("client", nodeName="worker01"), *objects(SERVICE)])
    target = resolve_target(sim, "service/default/web")
    source = resolve_source(sim, "default/client", target)
    before = sim.fabric.run(first_packets(source, target, 6, 3000)).packets
    by_vif = pods_by_vif(sim)
    owner_before = np.array([by_vif[(int(n), int(v))] for n, v in zip(before["node"], before["out_vif"], strict=True)])
    sim.cluster.delete("pod", "default", "web-1")
    data = first_packets(source, target, 6, 3000)
    data["tcp_flags"] = TCP_ACK
    after = sim.fabric.run(data).packets
    assert (after["outcome"] == DELIVERED).all()
    by_vif = pods_by_vif(sim)
    owner_after = np.array([by_vif[(int(n), int(v))] for n, v in zip(after["node"], after["out_vif"], strict=True)])
    survivors = owner_before != "default/web-1"
    assert survivors.sum() > 1000
    assert (owner_after[survivors] == owner_before[survivors]).all()
    moved = ~survivors
    assert set(owner_after[moved].tolist()) <= {"default/web-0", "default/web-2"}


def test_flow_table_full_is_counted_and_conserved() -> None:
    config = ClusterConfig.model_validate({"vrouter": {"flowEntries": 16, "overflowFraction": 0.25}})
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), pod("b", nodeName="worker02")], config=config)
    conv = talk(sim, "default/a", "default/b", "udp", 53, flows=200)
    counters = conv.counters()
    assert counters["dropsByReason"].get("Flow Table Full", 0) > 0
    assert counters["injected"] == counters["delivered"] + counters["dropped"]
    node = sim.fabric.runtimes[sim.nodes["worker01"].index]
    assert node.counters.drops[DROP_REASONS.index("Flow Table Full")] > 0
    # ageing frees the table: new flows fit again
    assert sim.fabric.advance(200) > 0
    assert talk(sim, "default/a", "default/b", "udp", 53, flows=1).reachable


def test_policy_drop_from_a_tf_deny_rule() -> None:
    sim = Simulation.from_objects(
        [
            pod("a", nodeName="worker01"),
            pod("b", nodeName="worker02"),
            *objects(
                """
                apiVersion: vrsim.tf/v1
                kind: NetworkPolicy
                metadata: {name: no-ssh, project: k8s-default}
                spec:
                  rules:
                  - {action: deny, protocol: tcp, src: any, dst: any, ports: "22"}
                  attachTo: [k8s-default:k8s-default-pod-network]
                """
            ),
        ]
    )
    assert talk(sim, "default/a", "default/b", "tcp", 80).reachable
    conv = talk(sim, "default/a", "default/b", "tcp", 22)
    assert not conv.reachable and conv.drop_reason == "Policy"


def test_network_policy_denies_at_the_right_end() -> None:
    sim = Simulation.from_objects(
        [
            pod("db", labels={"app": "db"}, nodeName="worker02"),
            pod("web", labels={"app": "web"}, nodeName="worker01"),
            pod("other", labels={"app": "other"}, nodeName="worker01"),
            *objects(
                """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: db}
                spec:
                  podSelector: {matchLabels: {app: db}}
                  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
                ---
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: other-out}
                spec:
                  podSelector: {matchLabels: {app: other}}
                  policyTypes: [Egress]
                """
            ),
        ]
    )
    assert talk(sim, "default/web", "default/db", "tcp", 5432).reachable
    denied = talk(sim, "default/web", "default/db", "tcp", 5433)
    assert not denied.reachable and denied.drop_reason == "OutSG"  # the agent's name: a local receiver's rules
    assert denied.drop_node == sim.nodes["worker02"].index  # the receiver's node decides ingress
    out = talk(sim, "default/other", "default/db", "tcp", 5432)
    assert not out.reachable and out.drop_reason == "SG"  # the sender's egress rules
    assert out.drop_node == sim.nodes["worker01"].index
    # stateful: the db's replies to web pass although db allows no egress rule for them
    assert talk(sim, "default/web", "default/db", "tcp", 5432).reachable


def test_ttl_drop() -> None:
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), pod("b", nodeName="worker02")])
    target = resolve_target(sim, "default/b")
    source = resolve_source(sim, "default/a", target)
    batch = first_packets(source, target, 1, 4)
    batch["ttl"] = [1, 2, 3, 64]
    rows = sim.fabric.run(batch).packets
    assert rows["outcome"][0] == DROPPED and DROP_REASONS[rows["drop_reason"][0]] == "TTL Exceeded"
    assert (rows["outcome"][1:] == DELIVERED).all()
    assert rows["out_ttl"][1] == 1  # one routed hop


def test_counters_sum_and_invalid_inputs_are_drops_not_crashes() -> None:
    sim = Simulation.from_objects([pod("a", nodeName="worker01")])
    batch = new_batch(3)
    batch["node"] = sim.nodes["worker01"].index
    batch["in_vif"] = [999, 0, 0]
    batch["in_label"] = [-1, 99_999, 16]
    batch["proto"] = 1
    batch["dip"] = ip_int("10.47.255.252")
    result = sim.fabric.run(batch)
    reasons = Counter(DROP_REASONS[r] for r in result.packets["drop_reason"][result.packets["outcome"] == DROPPED])
    assert reasons["Invalid IF"] == 1 and reasons["Invalid Label"] == 1
    assert result.injected == result.delivered + result.dropped
    assert sum(result.drops_by_reason.values()) == result.dropped


def test_fabric_keeps_packets_moving_hop_by_hop() -> None:
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), pod("b", nodeName="worker02")])
    target = resolve_target(sim, "default/b")
    source = resolve_source(sim, "default/a", target)
    rows = sim.fabric.run(first_packets(source, target, 1, 1)).packets
    assert rows["hops"][0] == 2 and rows["outcome"][0] == DELIVERED
    assert rows["node"][0] == sim.nodes["worker02"].index
    assert FABRIC not in rows["outcome"]


@pytest.mark.parametrize("encapsulation", ["MPLSoUDP", "VXLAN"])
def test_outside_peer_answers_a_pod_isolated_on_ingress(encapsulation: str) -> None:
    """Stateful replies: a pod whose ingress is denied still gets the answers to its own
    connections to an outside peer; a connection the peer starts is denied."""
    deny_ingress = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
    config = ClusterConfig.model_validate({"encapsulation": encapsulation})
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), *objects(deny_ingress)], config)
    for proto in ("tcp", "udp"):
        out = talk(sim, "default/a", "fabric:8.8.8.8", proto, 80, flows=2)
        assert out.reachable, (proto, out.drop_reason)
    inbound = talk(sim, "fabric:8.8.8.8", "default/a", "tcp", 80, flows=1)
    assert not inbound.reachable and inbound.drop_reason == "OutSG"
