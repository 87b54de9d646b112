"""``vrsim connlist``: the pieces it probes, the names it gives, its formats and options."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.lab.connlist import (
    ConnList,
    Connection,
    address_pieces,
    connection_text,
    connlist,
    load,
    port_pieces,
    probe_address,
)
from controlplane.k8s.workloads import workload_of
from vrouter.lab.sim import Simulation
from vrouter.reference.netpol import NetworkPolicies

CASES = Path(__file__).resolve().parents[1] / "data" / "netpol-analyzer" / "cases"
MINIMAL = CASES / "netpol-analysis-example-minimal" / "input"
runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, ["connlist", *args])
    assert "Traceback" not in result.output, result.output
    return result


# --- pieces and names ------------------------------------------------------------------


def policy(spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": namespace}, "spec": spec}


def test_ports_are_cut_at_every_boundary_the_policies_name() -> None:
    pods = [{"kind": "Pod", "metadata": {"name": "dns"}, "spec": {"containers": [{"ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]}}]
    rules = [{"ports": [{"port": 80}, {"port": 8000, "endPort": 8080}, {"port": "dns", "protocol": "UDP"}, {"protocol": "SCTP"}]}]
    pieces = port_pieces([policy({"podSelector": {}, "ingress": rules})], pods)
    assert pieces["TCP"] == [(1, 79), (80, 80), (81, 7999), (8000, 8080), (8081, 65535)]
    assert pieces["UDP"] == [(1, 5352), (5353, 5353), (5354, 65535)]
    assert pieces["SCTP"] == [(1, 65535)]


def test_outside_sources_and_destinations_are_cut_by_their_own_direction() -> None:
    spec = {
        "podSelector": {},
        "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "8.8.8.0/24"}}]}],
    }
    assert address_pieces([policy(spec)], "ingress") == [(0, 0x09FFFFFF), (0x0A000000, 0x0AFFFFFF), (0x0B000000, 0xFFFFFFFF)]
    assert address_pieces([policy(spec)], "egress") == [(0, 0x080807FF), (0x08080800, 0x080808FF), (0x08080900, 0xFFFFFFFF)]


def test_a_probe_address_avoids_cluster_addresses() -> None:
    taken = [(10, 19), (20, 29), (40, 49)]
    assert probe_address((10, 35), taken) == 30
    assert probe_address((0, 5), taken) == 0
    assert probe_address((12, 27), taken) is None  # wholly inside: cannot be probed


@pytest.mark.parametrize(
    ("allowed", "text"),
    [
        ({"TCP": [(8080, 8080), (9090, 9090)]}, "TCP 8080,9090"),
        ({"UDP": [(53, 53)], "TCP": [(1, 79), (81, 65535)]}, "TCP 1-79,81-65535,UDP 53"),
        ({"UDP": [(10053, 10053)], "TCP": [(10053, 10053)]}, "TCP 10053,UDP 10053"),
        ({"SCTP": [(1, 65535)], "TCP": [(1, 65535)]}, "SCTP 1-65535,TCP 1-65535"),
        ({"TCP": [(1, 65535)], "UDP": [(1, 65535)], "SCTP": [(1, 65535)]}, "All Connections"),
        ({"TCP": [(5, 6), (7, 9)]}, "TCP 5-9"),
    ],
)
def test_connection_sets_print_as_the_analyzer_prints_them(allowed: dict[str, list[tuple[int, int]]], text: str) -> None:
    assert connection_text(allowed) == text


def test_workloads_are_named_after_the_top_of_their_owners() -> None:
    sim = load(CASES / "new_online_boutique" / "input")
    pod = next(p for p in sim.cluster.store.list("Pod") if p["metadata"]["name"].startswith("frontend-"))
    assert workload_of(sim.cluster.store, pod) == ("frontend", "Deployment")  # via its ReplicaSet
    exported = load(CASES / "onlineboutique" / "input")
    pod = next(p for p in exported.cluster.store.list("Pod") if p["metadata"]["name"].startswith("frontend-"))
    assert workload_of(exported.cluster.store, pod) == ("frontend-99684f7f8", "ReplicaSet")  # owner not exported
    assert workload_of(exported.cluster.store, {"metadata": {"name": "solo", "namespace": "default"}}) == ("solo", "Pod")


# --- formats ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minimal() -> ConnList:
    return connlist(load(MINIMAL, ipblock_selects_pods=False))


def test_txt_is_one_line_per_pair(minimal: ConnList) -> None:
    assert minimal.render("txt").splitlines() == [
        "0.0.0.0-255.255.255.255[External] => default/frontend[Deployment] : TCP 8080",
        "default/frontend[Deployment] => 0.0.0.0-255.255.255.255[External] : UDP 53",
        "default/frontend[Deployment] => default/backend[Deployment] : TCP 9090",
    ]


def test_json_is_a_list_of_src_dst_conn(minimal: ConnList) -> None:
    doc = json.loads(minimal.render("json"))
    assert doc[1] == {"src": "default/frontend[Deployment]", "dst": "0.0.0.0-255.255.255.255[External]", "conn": "UDP 53"}
    assert [f"{d['src']} => {d['dst']} : {d['conn']}" for d in doc] == minimal.lines()
    assert minimal.render("json").startswith('[\n  {\n    "src": ')  # two-space indents, as the analyzer


def test_csv_has_a_header_and_quotes_commas() -> None:
    result = ConnList([Connection("a[Pod]", "b[Pod]", "TCP 53,UDP 53")], [], {}, None, 0, 0.0)  # type: ignore[arg-type]
    text = result.render("csv")
    assert text == 'src,dst,conn\na[Pod],b[Pod],"TCP 53,UDP 53"\n'
    assert list(csv.reader(io.StringIO(text)))[1] == ["a[Pod]", "b[Pod]", "TCP 53,UDP 53"]


def test_md_is_a_table(minimal: ConnList) -> None:
    lines = minimal.render("md").splitlines()
    assert lines[:2] == ["| src | dst | conn |", "|-----|-----|------|"]
    assert lines[-1] == "| default/frontend[Deployment] | default/backend[Deployment] | TCP 9090 |"
    assert len(lines) == 2 + len(minimal.connections)


def test_an_unknown_format_is_refused(minimal: ConnList) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        minimal.render("svg")


@pytest.mark.parametrize("fmt", ["txt", "json", "csv", "md"])
def test_the_command_prints_every_format(fmt: str, minimal: ConnList) -> None:
    result = invoke("-f", str(MINIMAL), "-o", fmt, "--no-ipblock-selects-pods")
    assert result.exit_code == 0
    assert result.stdout == minimal.render(fmt)


# --- the ipBlock option ------------------------------------------------------------------


def write(tmp_path: Path, objects: list[dict[str, Any]]) -> Path:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(objects))
    return tmp_path


def pod(name: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
def pod_cidr(tmp_path: Path) -> Path:
    """``db`` admits only the pod subnet, as an ipBlock: pods by address, not by selector."""
    only_pods = policy({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.32.0.0/12"}}], "ports": [{"port": 5432}]}]})
    return write(tmp_path, [pod("web", "worker01", {"app": "web"}), pod("db", "worker02", {"app": "db"}), only_pods])


def test_ipblock_selects_pods_by_default(pod_cidr: Path) -> None:
    result = invoke("-f", str(pod_cidr))
    assert result.exit_code == 0
    assert "default/web[Pod] => default/db[Pod] : TCP 5432" in result.stdout.splitlines()
    # the pod subnet cannot be probed from outside: it is left out, and said so
    assert "10.32.0.0-10.47.255.255[External]" in result.stderr and "not probed" in result.stderr


def test_no_ipblock_selects_pods_leaves_pods_out_of_ipblocks(pod_cidr: Path) -> None:
    result = invoke("-f", str(pod_cidr), "--no-ipblock-selects-pods")
    assert result.exit_code == 0
    assert not any(line.startswith("default/web[Pod] => default/db[Pod]") for line in result.stdout.splitlines())
    assert "default/db[Pod] => default/web[Pod] : All Connections" in result.stdout.splitlines()


def test_the_reference_agrees_on_both_readings(pod_cidr: Path) -> None:
    for selects in (True, False):
        sim = load(pod_cidr, ipblock_selects_pods=selects)
        store = sim.cluster.store
        reference = NetworkPolicies([*store.list("Pod"), *store.list("NetworkPolicy")], selects)
        assert reference.allowed("default/web", "default/db", "TCP", 5432) is selects
        assert reference.allowed("default/web", "default/db", "TCP", 5433) is False
        assert reference.allowed("10.33.0.1", "default/db", "TCP", 5432) is True
        assert reference.allowed("default/db", "8.8.8.8", "UDP", 53) is True


def test_invalid_input_exits_2(tmp_path: Path) -> None:
    assert invoke("-f", str(tmp_path / "missing.yaml")).exit_code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(policy({"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]})))
    result = invoke("-f", str(broken), "-o", "json")
    assert result.exit_code == 2
    assert "error" in json.loads(result.stdout)
    assert invoke("-f", str(MINIMAL), "-o", "svg").exit_code == 2


# --- statefulness and large runs -------------------------------------------------------


@pytest.mark.parametrize("encapsulation", ["MPLSoUDP", "VXLAN"])
def test_a_pod_isolated_on_ingress_gets_the_answers_from_outside(tmp_path: Path, encapsulation: str) -> None:
    """Answers to a pod's own allowed connections pass its ingress isolation (stateful flows)."""
    write(tmp_path, [pod("a", "worker01", {"app": "a"}), policy({"podSelector": {}, "policyTypes": ["Ingress"]})])
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"apiVersion": "vrsim/v1", "kind": "Scenario", "metadata": {"name": "s"}, "cluster": {"encapsulation": encapsulation}, "steps": [{"apply": "all.yaml"}]}))
    assert connlist(load(scenario)).lines() == ["default/a[Pod] => 0.0.0.0-255.255.255.255[External] : All Connections"]


def test_chunks_that_fit_small_flow_tables_give_the_same_answer(tmp_path: Path) -> None:
    case = CASES / "new_online_boutique"
    (tmp_path / "input").mkdir()
    for file in (case / "input").iterdir():
        (tmp_path / "input" / file.name).write_text(file.read_text())
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"apiVersion": "vrsim/v1", "kind": "Scenario", "metadata": {"name": "small"}, "cluster": {"vrouter": {"flowEntries": 4096}}, "steps": [{"apply": "input"}]}))
    result = connlist(load(scenario, ipblock_selects_pods=False))
    assert len(result.probes) > 2 * 4096 * 0.2  # three chunks
    assert set(result.lines()) == {line for line in (case / "expected_connlist.txt").read_text().splitlines() if line}


def test_pods_a_node_owns_are_each_their_own_workload() -> None:
    """Static pods (etcd-minikube, kube-apiserver-minikube) name their Node as owner; the
    analyzer lists each pod, not one ``minikube[Node]`` workload."""
    static = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system", "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "minikube", "uid": "u1", "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
        for name in ("etcd-minikube", "kube-apiserver-minikube")
    ]
    sim = Simulation.from_objects(static)
    labels = {c.src for c in connlist(sim).connections}
    assert {"kube-system/etcd-minikube[Pod]", "kube-system/kube-apiserver-minikube[Pod]"} <= labels
    assert not any("[Node]" in label for label in labels)
