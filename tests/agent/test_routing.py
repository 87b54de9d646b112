"""Routing (issue "Routing"): per-node VRF tables held against the plain-Python reference.

The spec §10 table row by row as route presence, ECMP composites for a ClusterIP, stable
slots, and a property test of the compiled tables against the intent.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from k8s_objects import isolated, namespace, objects, pod, three_nodes

from controlplane.config import GATEWAY_NODE, ClusterConfig
from vrouter.dataplane.lpm import lpm_lookup
from vrouter.dataplane.tables import NH_COMPOSITE, NH_DISCARD, NH_ENCAP, NH_FLAG_NO_ROUTE, NH_RECEIVE, NH_TUNNEL, NH_UNDERLAY
from vrouter.reference.routes import lookup
from vrouter.lab.sim import Simulation

D = "default-domain"


def vn_of_vrf(sim: Simulation, node: str) -> dict[int, tuple[str, ...]]:
    return {vrf: key for key, vrf in sim.agents.agents[node].vrf_ids.items()}


def decode(sim: Simulation, node: str, nh_id: int) -> object:
    """A compiled nexthop, described like vrouter.reference.routes describes destinations."""
    compiled = sim.node(node)
    nh = compiled.nexthops[nh_id]
    if nh.type == NH_ENCAP:
        vif = compiled.vifs[nh.vif]
        return ("local", vif.vmi, vn_of_vrf(sim, node)[nh.vrf])
    if nh.type == NH_TUNNEL:
        target = next(n for n in sim.nodes.values() if n.index == nh.node)
        if target.name == GATEWAY_NODE:
            return ("gateway-vrf", vn_of_vrf(sim, node)[nh.dst_vn])
        far = target.nexthops[target.labels[nh.label]]
        return ("remote", target.name, target.vifs[far.vif].vmi, vn_of_vrf(sim, target.name)[far.vrf])
    if nh.type == NH_RECEIVE:
        return ("receive",)
    if nh.type == NH_UNDERLAY:
        target = next(n for n in sim.nodes.values() if n.index == nh.node)
        return ("gateway",) if target.name == GATEWAY_NODE else ("underlay", target.name)
    if nh.type == NH_DISCARD and nh.flags & NH_FLAG_NO_ROUTE:
        return ("discard",)
    raise AssertionError(f"unexpected nexthop {nh}")


def compiled_lookup(sim: Simulation, node: str, vn: tuple[str, ...], address: str) -> tuple[str, bool, tuple] | None:
    compiled = sim.node(node)
    vrf = sim.agents.agents[node].vrf_ids.find(vn)
    t = compiled.tables
    rid = int(lpm_lookup(t.lpm, vrf, np.uint32(int(ipaddress.IPv4Address(address)))))
    if rid < 0:
        return None
    prefix = f"{ipaddress.IPv4Address(int(t.route_prefix[rid]))}/{int(t.route_plen[rid])}"
    nh_id = int(t.route_nh[rid])
    nh = compiled.nexthops[nh_id]
    if nh.type == NH_COMPOSITE:
        return prefix, True, tuple(None if m < 0 else decode(sim, node, m) for m in nh.members)
    return prefix, False, (decode(sim, node, nh_id),)


def agree(sim: Simulation, node: str, vn: tuple[str, ...], address: str) -> tuple | None:
    """Assert the compiled tables and the reference agree; return the answer."""
    ref = lookup(sim.intent, vn, node, address)
    got = compiled_lookup(sim, node, vn, address)
    if ref is None:
        assert got is None, (node, vn, address, got)
        return None
    assert got == (ref.prefix, ref.ecmp, ref.destinations), (node, vn, address)
    return got


def pod_ip(sim: Simulation, ns: str, name: str) -> str:
    return sim.cluster.store.get("Pod", ns, name)["status"]["podIP"]


def has_host_route(answer: tuple | None) -> bool:
    return answer is not None and answer[2][0] != ("discard",) and answer[0].endswith("/32")


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def web_pod(name: str, node: str) -> dict:
    p = pod(name, labels={"app": "web"}, nodeName=node)
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    return p


@pytest.fixture
def article() -> Simulation:
    """default, ns-non-isolated, ns-isolated with a busybox each, a service in default and in ns-isolated."""
    sim = Simulation.from_objects([namespace("ns-non-isolated"), isolated("ns-isolated")])
    for ns in ("default", "ns-non-isolated", "ns-isolated"):
        sim.cluster.apply_objects([pod("busybox")], namespace=ns)
        sim.cluster.apply_objects([web_pod("web", "worker02"), *objects(SERVICE)], namespace=ns)
    return sim


def test_spec_table_as_route_presence(article: Simulation) -> None:
    sim = article
    default_pod_vn = (D, "k8s-default", "k8s-default-pod-network")
    iso_pod_vn = (D, "k8s-ns-isolated", "k8s-ns-isolated-pod-network")
    pods = {ns: pod_ip(sim, ns, "busybox") for ns in ("default", "ns-non-isolated", "ns-isolated")}
    vips = {ns: sim.cluster.store.get("Service", ns, "web")["spec"]["clusterIP"] for ns in pods}
    for node in ("worker01", "worker02"):
        # row "pod in a non-isolated ns" (its VRF is the default pod VRF)
        assert has_host_route(agree(sim, node, default_pod_vn, pods["ns-non-isolated"]))
        assert has_host_route(agree(sim, node, default_pod_vn, pods["default"]))
        assert not has_host_route(agree(sim, node, default_pod_vn, pods["ns-isolated"]))
        assert has_host_route(agree(sim, node, default_pod_vn, vips["default"]))
        assert has_host_route(agree(sim, node, default_pod_vn, vips["ns-non-isolated"]))
        assert not has_host_route(agree(sim, node, default_pod_vn, vips["ns-isolated"]))
        # row "pod in isolated ns X"
        assert not has_host_route(agree(sim, node, iso_pod_vn, pods["default"]))
        assert not has_host_route(agree(sim, node, iso_pod_vn, pods["ns-non-isolated"]))
        assert has_host_route(agree(sim, node, iso_pod_vn, pods["ns-isolated"]))
        assert has_host_route(agree(sim, node, iso_pod_vn, vips["default"]))
        assert has_host_route(agree(sim, node, iso_pod_vn, vips["ns-isolated"]))
        # an address of the pod subnet without a host route is discarded, not sent to the gateway
        assert agree(sim, node, iso_pod_vn, pods["default"])[2] == (("discard",),)
        # row "node underlay IP": the fabric VRF reaches every pod and ClusterIP
        fabric = (D, "default-project", "ip-fabric")
        for address in [*pods.values(), *vips.values()]:
            assert has_host_route(agree(sim, node, fabric, address))


def test_isolated_y_reaches_neither_pods_nor_services_of_x() -> None:
    sim = Simulation.from_objects([isolated("x"), isolated("y")])
    sim.cluster.apply_objects([web_pod("web", "worker01"), *objects(SERVICE)], namespace="x")
    vip = sim.cluster.store.get("Service", "x", "web")["spec"]["clusterIP"]
    y_vn = (D, "k8s-y", "k8s-y-pod-network")
    assert not has_host_route(agree(sim, "worker01", y_vn, vip))
    assert not has_host_route(agree(sim, "worker01", y_vn, pod_ip(sim, "x", "web")))
    # with isolation.service "false" on x, y (and default) reach x's service but not its pods
    sim.cluster.apply_objects([isolated("x", services_open=True)])
    assert has_host_route(agree(sim, "worker01", y_vn, vip))
    assert has_host_route(agree(sim, "worker02", (D, "k8s-default", "k8s-default-pod-network"), vip))
    assert not has_host_route(agree(sim, "worker01", y_vn, pod_ip(sim, "x", "web")))


def test_clusterip_ecmp_over_two_backend_nodes_seen_from_a_third() -> None:
    sim = Simulation.from_objects(
        [web_pod("web-a", "worker01"), web_pod("web-b", "worker02"), pod("client", nodeName="worker03"), *objects(SERVICE)],
        config=three_nodes(),
    )
    vip = sim.cluster.store.get("Service", "default", "web")["spec"]["clusterIP"]
    client_vn = (D, "k8s-default", "k8s-default-pod-network")
    prefix, ecmp, members = agree(sim, "worker03", client_vn, vip)
    assert prefix == f"{vip}/32" and ecmp and len(members) == 2
    compiled = sim.node("worker03")
    vrf = sim.agents.agents["worker03"].vrf_ids.find(client_vn)
    (row,) = [r for r in compiled.routes if r.vrf == vrf and r.prefix == f"{vip}/32"]
    composite = compiled.nexthops[row.nh]
    assert composite.type == NH_COMPOSITE
    tunnels = [compiled.nexthops[m] for m in composite.members]
    assert [t.type for t in tunnels] == [NH_TUNNEL, NH_TUNNEL]
    # each tunnel's label is the one the backend's node gave that pod's floating-IP nexthop
    for tunnel in tunnels:
        far = next(n for n in sim.nodes.values() if n.index == tunnel.node)
        far_nh = far.nexthops[far.labels[tunnel.label]]
        assert far_nh.fip == int(ipaddress.IPv4Address(vip))
        assert far.vifs[far_nh.vif].pod in ("default/web-a", "default/web-b")
    # on a backend's node, one member is the local interface
    on_backend = agree(sim, "worker01", client_vn, vip)[2]
    kinds = sorted(m[0] for m in on_backend)
    assert kinds == ["local", "remote"]


def test_removed_backend_leaves_a_hole_and_a_new_one_fills_it() -> None:
    sim = Simulation.from_objects([web_pod(f"web-{i}", f"worker0{i % 2 + 1}") for i in range(3)] + objects(SERVICE))
    vip = sim.cluster.store.get("Service", "default", "web")["spec"]["clusterIP"]
    vn = (D, "k8s-default", "k8s-default-service-network")
    before = agree(sim, "worker01", vn, vip)[2]
    assert None not in before and len(before) == 3
    victim = 1
    victim_pod = [m for m in before if m is not None][victim]
    name = next(f"web-{i}" for i in range(3) if sim.cluster.kube_manager.pods.records[("default", f"web-{i}")].vmi == victim_pod[-2])
    sim.cluster.delete("pod", "default", name)
    after = agree(sim, "worker01", vn, vip)[2]
    assert len(after) == 3 and after[victim] is None
    assert after[0] == before[0] and after[2] == before[2]
    sim.cluster.apply_objects([web_pod("web-new", "worker02")])
    refilled = agree(sim, "worker01", vn, vip)[2]
    assert refilled[0] == before[0] and refilled[2] == before[2]
    assert refilled[victim] is not None and refilled[victim] != before[victim]


def test_ids_and_labels_are_stable_across_recompiles() -> None:
    sim = Simulation.from_objects([web_pod("web-a", "worker01"), pod("other", nodeName="worker01"), *objects(SERVICE)])
    first = sim.node("worker01")
    vif_before = dict(first.vif_of_vmi)
    labels_before = {v: k for k, v in first.labels.items()}
    sim.cluster.apply_objects([web_pod("web-b", "worker01")])
    second = sim.node("worker01")
    assert second is not first
    for vmi, vif in vif_before.items():
        assert second.vif_of_vmi[vmi] == vif
    for nh, label in labels_before.items():
        assert second.labels[label] == nh


def test_vxlan_uses_vnis() -> None:
    config = ClusterConfig.model_validate({"encapsulation": "VXLAN"})
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), pod("b", nodeName="worker02")], config=config)
    vn = (D, "k8s-default", "k8s-default-pod-network")
    compiled = sim.node("worker01")
    vrf = sim.agents.agents["worker01"].vrf_ids.find(vn)
    (row,) = [r for r in compiled.routes if r.vrf == vrf and r.prefix == f"{pod_ip(sim, 'default', 'b')}/32"]
    tunnel = compiled.nexthops[row.nh]
    assert tunnel.type == NH_TUNNEL and tunnel.label == sim.intent.vrfs[vn].vn_id
    far = sim.node("worker02")
    assert far.vnis[tunnel.label] == sim.agents.agents["worker02"].vrf_ids.find(vn)


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[dict], int]:
    n_ns = draw(st.integers(1, 4))
    objs: list[dict] = []
    for i in range(n_ns):
        if draw(st.booleans()):
            objs.append(isolated(f"ns{i}", services_open=draw(st.booleans())))
        else:
            objs.append(namespace(f"ns{i}"))
    for i in range(draw(st.integers(1, 8))):
        ns = f"ns{draw(st.integers(0, n_ns - 1))}"
        app = draw(st.sampled_from(["a", "b"]))
        p = pod(f"p{i}", ns, labels={"app": app}, nodeName=draw(st.sampled_from(["worker01", "worker02", "worker03"])))
        objs.append(p)
    for ns_index in range(n_ns):
        if draw(st.booleans()):
            svc = objects(SERVICE)[0]
            svc["metadata"]["namespace"] = f"ns{ns_index}"
            svc["spec"]["selector"] = {"app": draw(st.sampled_from(["a", "b"]))}
            objs.append(svc)
    return objs, draw(st.integers(0, 2**31))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=20))
def test_compiled_tables_match_the_reference(cluster: tuple[list[dict], int], randoms: list[int]) -> None:
    objs, seed = cluster
    sim = Simulation.from_objects(objs, config=three_nodes(), seed=seed)
    addresses = {str(ipaddress.IPv4Address(r)) for r in randoms}
    for vrf in sim.intent.vrfs.values():
        for prefix in vrf.routes:
            net = ipaddress.IPv4Network(prefix)
            addresses.add(str(net.network_address))
            addresses.add(str(net.broadcast_address))
            if int(net.network_address) > 0:
                addresses.add(str(net.network_address - 1))
    for node in ("worker01", "worker02", "worker03"):
        for vn in sim.intent.vrfs:
            for address in sorted(addresses):
                agree(sim, node, vn, address)
