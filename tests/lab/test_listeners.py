"""Listeners: a closed port answers with a refusal that travels back like any reply."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from k8s_objects import objects, pod
from typer.testing import CliRunner

from controlplane.config import ClusterConfig
from controlplane.inet import ip_int, protocol_number
from vrouter.cli.main import app
from vrouter.dataplane.state import ACTION_FREE, FC_CLOSED
from vrouter.dataplane.packets import DELIVERED, ICMP_DEST_UNREACHABLE, TCP_RST
from vrouter.lab.checks import run_check
from vrouter.lab.conversation import converse
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import pods_by_vif, resolve_source, resolve_target

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
"""


def web_pod(name: str, node: str, ports: list[dict]) -> dict:
    p = pod(name, "default", labels={"app": "web"}, nodeName=node)
    p["spec"]["containers"][0]["ports"] = ports
    return p


def cluster(web_ports: list[dict], **node_settings: object) -> Simulation:
    config = ClusterConfig.model_validate(
        {"nodes": [{"name": "worker01", "ip": "172.27.10.74", **node_settings}, {"name": "worker02", "ip": "172.27.10.75"}]}
    )
    return Simulation.from_objects(
        [*objects(SERVICE), web_pod("web", "worker02", web_ports), pod("client", "default", nodeName="worker01")],
        config,
    )


def check(sim: Simulation, kind: str, **spec: object) -> dict:
    return run_check(sim, parse_check(kind, spec)).observed


LISTENS_8080 = [{"containerPort": 8080}, {"containerPort": 5353, "protocol": "UDP"}]


def test_a_pod_refuses_an_undeclared_port_and_names_what_it_declares() -> None:
    sim = cluster(LISTENS_8080)
    ok = check(sim, "connect", **{"from": "default/client", "to": "default/web", "port": 8080})
    assert ok["reachable"] and not ok["refused"]
    shut = check(sim, "connect", **{"from": "default/client", "to": "default/web", "port": 5000})
    assert (shut["reachable"], shut["refused"], shut["received"], shut["dropReason"]) == (False, True, 0, None)
    assert shut["refusedBy"] == "pod default/web listens on 5353/UDP, 8080/TCP"
    # the same port over UDP is closed: only 5353 is declared for UDP
    udp = check(sim, "connect", **{"from": "default/client", "to": "default/web", "port": 8080, "protocol": "UDP"})
    assert udp["refused"] and not udp["reachable"]


def test_a_pod_that_declares_no_port_listens_on_every_port() -> None:
    sim = cluster(LISTENS_8080)
    for port in (1, 5000, 65535):
        seen = check(sim, "connect", **{"from": "default/web", "to": "default/client", "port": port})
        assert seen["reachable"] and not seen["refused"], port


def test_ping_is_always_answered() -> None:
    sim = cluster([{"containerPort": 8080}])
    assert check(sim, "ping", **{"from": "default/client", "to": "default/web"})["reachable"]


def test_a_nodeport_check_can_fail_on_a_wrong_port() -> None:
    sim = cluster(LISTENS_8080)
    right = check(sim, "connect", **{"from": "external", "to": "172.27.10.75:30080", "flows": 4})
    assert right["reachable"] and right["backends"] == {"default/web": 4}
    wrong = check(sim, "connect", **{"from": "external", "to": "172.27.10.75:30081"})
    assert wrong["refused"] and not wrong["reachable"]
    dns_node_port = sim.cluster.store.get("Service", "default", "web")["spec"]["ports"][1]["nodePort"]  # allocated
    assert wrong["refusedBy"] == f"the host stack of worker02 listens on 30080/TCP, {dns_node_port}/UDP"


def test_a_node_listens_on_its_configured_ports() -> None:
    sim = cluster(LISTENS_8080, listen=[22, "161/UDP"])
    assert check(sim, "connect", **{"from": "external", "to": "node/worker01", "port": 22})["reachable"]
    assert check(sim, "connect", **{"from": "external", "to": "node/worker01", "port": 161, "protocol": "UDP"})["reachable"]
    assert check(sim, "connect", **{"from": "external", "to": "node/worker02", "port": 22})["refused"]


def test_a_bad_listen_setting_is_an_input_error() -> None:
    with pytest.raises(ValueError, match="not a port"):
        ClusterConfig.model_validate({"nodes": [{"name": "w", "ip": "10.0.0.1", "listen": ["22/ICMP"]}]})


@pytest.mark.parametrize("proto", ["TCP", "UDP"])
def test_the_refusal_comes_back_through_the_services_nat_and_is_conserved(proto: str) -> None:
    # the Service maps 80 → 8080 (TCP) and 53 → 5353 (UDP); the pod listens on neither
    sim = cluster([{"containerPort": 9090}, {"containerPort": 9053, "protocol": "UDP"}])
    port = 80 if proto == "TCP" else 53
    target = resolve_target(sim, "service/default/web", port)
    source = resolve_source(sim, "default/client", target)
    conv = converse(sim, source, target, protocol_number(proto), 5, pods_by_vif(sim))
    assert conv.refusals == 5 and conv.answered == 0 and len(conv.phases) == 2
    first, refusal = (p.packets for p in conv.phases)
    assert (first["out_dport"] == (8080 if proto == "TCP" else 5353)).all()  # DNAT on the way in
    back = refusal[refusal["outcome"] == DELIVERED]
    assert len(back) == 5
    # the refusal arrives from the ClusterIP and the service port: the reverse flow undid the NAT
    assert (back["out_sip"] == ip_int(sim.cluster.store.get("Service", "default", "web")["spec"]["clusterIP"])).all()
    assert (back["out_sport"] == port).all()
    if proto == "TCP":
        assert (back["tcp_flags"] & TCP_RST).all()
    else:
        assert (back["icmp_type"] == ICMP_DEST_UNREACHABLE).all()
    counters = conv.counters()
    assert counters["injected"] == 10 == counters["delivered"] + counters["dropped"]


def test_a_rst_removes_the_flow_pairs_it_crossed() -> None:
    sim = cluster(LISTENS_8080)
    check(sim, "connect", **{"from": "default/client", "to": "default/web", "port": 5000, "flows": 3})
    for runtime in sim.fabric.runtimes:
        live = int((runtime.flows.entries["action"] != ACTION_FREE).sum())
        assert live == 0, (runtime.compiled.name, live)
    assert sum(int(r.counters.flows[FC_CLOSED]) for r in sim.fabric.runtimes) == 6  # 3 flows × 2 nodes


SCENARIO = """
apiVersion: vrsim/v1
kind: Scenario
metadata: {name: listeners}
steps:
  - apply: app.yaml
  - connect: {from: default/client, to: default/web, port: 5000}
    expect: refused
  - connect: {from: default/client, to: default/web, port: 8080}
    expect: {reachable: true}
  - connect: {from: default/client, to: default/web, port: 5000}
    expect: unreachable
"""


def test_expect_refused_in_a_scenario_and_unreachable_is_not_refused(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(
        "\n---\n".join(json.dumps(o) for o in [web_pod("web", "worker02", LISTENS_8080), pod("client", "default", nodeName="worker01")])
    )
    (tmp_path / "s.yaml").write_text(textwrap.dedent(SCENARIO))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "s.yaml"), "--json"])
    assert result.exit_code == 1, result.output
    checks = json.loads(result.stdout)["scenarios"][0]["checks"]
    assert [c["passed"] for c in checks] == [True, True, False]
    assert checks[0]["expected"] == "refused" and checks[0]["observed"]["refused"] is True
    assert checks[2]["observed"]["refusedBy"] == "pod default/web listens on 5353/UDP, 8080/TCP"
