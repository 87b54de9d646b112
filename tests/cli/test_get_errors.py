"""``vrsim get``: kubectl-like listings, and every user mistake as exit 2 with one clear line.

The contract (spec/scenario-and-cli.md §2-4): invalid input exits 2 with one message naming the
file (and, with ``-o json``, one JSON object ``{"error", "file", "path"}`` on stdout); never a
traceback.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

runner = CliRunner()

NAMESPACE_ISOLATION = """\
apiVersion: vrsim/v1
kind: Scenario
metadata:
  name: namespace-isolation
cluster:
  nodes:
    - {name: worker01, ip: 172.27.10.74}
    - {name: worker02, ip: 172.27.10.75}
steps:
  - apply: manifests/namespaces.yaml
  - apply: manifests/pod-busybox.yaml
    namespace: default
  - apply: manifests/pod-busybox.yaml
    namespace: ns-isolated
  - apply:
      apiVersion: v1
      kind: Pod
      metadata: {name: pinned, namespace: ns-non-isolated}
      spec:
        nodeName: worker02
        containers: [{name: c, image: busybox}]
  - ping: {from: ns-isolated/busybox, to: default/busybox, count: 1}
    expect: unreachable
"""

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata:
  name: ns-isolated
  annotations:
    opencontrail.org/isolation: "true"
---
apiVersion: v1
kind: Namespace
metadata:
  name: ns-non-isolated
"""

BUSYBOX = """\
apiVersion: v1
kind: Pod
metadata:
  name: busybox
spec:
  containers:
  - name: busybox
    image: busybox
    command: ["sleep", "3600"]
"""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def good_scenario(tmp_path: Path) -> Path:
    write(tmp_path / "manifests" / "namespaces.yaml", NAMESPACES)
    write(tmp_path / "manifests" / "pod-busybox.yaml", BUSYBOX)
    return write(tmp_path / "scenario.yaml", NAMESPACE_ISOLATION)


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    # An exception other than the exit itself would be a crash hidden by the runner.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


# --- listings -------------------------------------------------------------------------------


def test_get_pods_wide_all_namespaces(good_scenario: Path) -> None:
    result = invoke("get", "pods", "-A", "-o", "wide", "-f", str(good_scenario))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split()
    for column in ("NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"):
        assert column in header
    assert header[:2] == ["NAMESPACE", "NAME"]
    rows = {(r.split()[0], r.split()[1]): dict(zip(header, r.split())) for r in lines[1:]}
    assert set(rows) == {("default", "busybox"), ("ns-isolated", "busybox"), ("ns-non-isolated", "pinned")}
    # spec §3: the pod pool is handed out from the top, the first pod gets 10.47.255.252
    assert rows[("default", "busybox")]["IP"] == "10.47.255.252"
    for row in rows.values():
        assert ipaddress.ip_address(row["IP"]) in ipaddress.ip_network("10.32.0.0/12")
        assert row["NODE"] in ("worker01", "worker02")
        assert row["READY"] == "1/1" and row["STATUS"] == "Running"
    assert rows[("ns-non-isolated", "pinned")]["NODE"] == "worker02"
    assert len({row["IP"] for row in rows.values()}) == 3


def test_get_pods_default_namespace_only(good_scenario: Path) -> None:
    result = invoke("get", "pods", "-f", str(good_scenario))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "NAME"
    assert [line.split()[0] for line in lines[1:]] == ["busybox"]
    ns = invoke("get", "pods", "-n", "ns-isolated", "-f", str(good_scenario))
    assert [line.split()[0] for line in ns.stdout.splitlines()[1:]] == ["busybox"]


def test_get_pods_json_is_a_kubernetes_list(good_scenario: Path) -> None:
    result = invoke("get", "pods", "-A", "-o", "json", "-f", str(good_scenario))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["apiVersion"] == "v1" and data["kind"] == "List"
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in data["items"]}
    assert set(pods) == {("default", "busybox"), ("ns-isolated", "busybox"), ("ns-non-isolated", "pinned")}
    for pod in pods.values():
        assert pod["kind"] == "Pod"
        ipaddress.ip_address(pod["status"]["podIP"])
        assert pod["spec"]["nodeName"] in ("worker01", "worker02")
        node_ip = {"worker01": "172.27.10.74", "worker02": "172.27.10.75"}[pod["spec"]["nodeName"]]
        assert pod["status"]["hostIP"] == node_ip
    assert pods[("default", "busybox")]["status"]["podIP"] == "10.47.255.252"
    assert pods[("ns-non-isolated", "pinned")]["spec"]["nodeName"] == "worker02"


def test_get_vns_json_is_a_list_of_tf_objects(good_scenario: Path) -> None:
    result = invoke("get", "vns", "-o", "json", "-f", str(good_scenario))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list) and data
    fq_names = set()
    for vn in data:
        assert isinstance(vn["fq_name"], list) and all(isinstance(p, str) for p in vn["fq_name"])
        assert isinstance(vn["uuid"], str) and len(vn["uuid"]) == 36
        fq_names.add(tuple(vn["fq_name"]))
    assert ("default-domain", "k8s-default", "k8s-default-pod-network") in fq_names
    assert ("default-domain", "k8s-ns-isolated", "k8s-ns-isolated-pod-network") in fq_names
    assert ("default-domain", "default-project", "ip-fabric") in fq_names
    assert len({vn["uuid"] for vn in data}) == len(data)


def test_get_on_a_plain_manifest_directory(good_scenario: Path) -> None:
    result = invoke("get", "pods", "-A", "-f", str(good_scenario.parent / "manifests"))
    assert result.exit_code == 0, result.stderr
    assert "busybox" in result.stdout


# --- bad input: one line, exit 2 ---------------------------------------------------------------

NETPOL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
spec:
  podSelector: {}
"""


def svc(spec: str, name: str = "web") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n" + textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n"


def alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "".join(f"  {l}\n" for l in lines)


ARTICLE_LB = """\
apiVersion: v1
kind: Service
metadata:
  name: service-web-lb
  spec:
    ports:
    - port: 8888
    targetPort: 80 selector:
  app: webserver
  type: LoadBalancer
"""

#: name → (manifest text, the field path the error must name, or None)
BAD_MANIFESTS: dict[str, tuple[str | bytes, str | None]] = {
    "misspelt-field": (
        NETPOL + "  ingress:\n  - from:\n    - namespaceSelektor: {matchLabels: {a: b}}\n",
        "spec.ingress[0].from[0].namespaceSelektor",
    ),
    "quoted-port": (svc('ports: [{port: "80"}]'), "spec.ports[0].port"),
    "port-zero": (svc("ports: [{port: 0}]"), "spec.ports[0].port"),
    "port-70000": (svc("ports: [{port: 70000}]"), "spec.ports[0].port"),
    "bad-protocol": (svc("ports: [{port: 80, protocol: ICMP}]"), "spec.ports[0].protocol"),
    "bad-cidr": (NETPOL + "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/40}\n", "spec.ingress[0].from[0].ipBlock.cidr"),
    "except-outside": (
        NETPOL + "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}\n",
        "spec.ingress[0].from[0].ipBlock.except[0]",
    ),
    "bad-operator": (
        NETPOL.replace("podSelector: {}", "podSelector:\n    matchExpressions: [{key: a, operator: Like, values: [b]}]"),
        "spec.podSelector.matchExpressions[0].operator",
    ),
    "in-without-values": (
        NETPOL.replace("podSelector: {}", "podSelector:\n    matchExpressions: [{key: a, operator: In}]"),
        "spec.podSelector.matchExpressions[0].values",
    ),
    "endport-below-port": (
        NETPOL + "  egress:\n  - ports: [{port: 9000, endPort: 8000}]\n",
        "spec.egress[0].ports[0].endPort",
    ),
    "bad-name": (BUSYBOX.replace("name: busybox\nspec", "name: BusyBox\nspec"), "metadata.name"),
    "bad-network-annotation": (
        BUSYBOX.replace("  name: busybox\n", "  name: busybox\n  annotations:\n    opencontrail.org/network: blue-net\n", 1),
        "metadata.annotations.opencontrail.org/network",
    ),
    "deployment-in-v1": (
        "apiVersion: v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: x}]}\n",
        "apiVersion",
    ),
    "extensions-ingress": (
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  backend: {serviceName: web, servicePort: 80}\n",
        "apiVersion",
    ),
    "tf-unknown-field": (
        "apiVersion: vrsim.tf/v1\nkind: VirtualNetwork\nmetadata: {name: blue, project: k8s-default}\nspec: {ipam: k8s-pod-ipam, colour: blue}\n",
        "spec.colour",
    ),
    "tf-unknown-kind": (
        "apiVersion: vrsim.tf/v1\nkind: Router\nmetadata: {name: r, project: k8s-default}\nspec: {}\n",
        "kind",
    ),
    "invalid-yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n", None),
    "duplicate-key": ("apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: {name: x}\n", None),
    "non-utf8": (b"apiVersion: v1\nkind: Namespace\nmetadata: {name: caf\xe9}\n", None),
    "nul-bytes": (b"apiVersion: v1\x00\nkind: Namespace\n", None),
    "alias-bomb": (alias_bomb(), None),
    "article-lb": (ARTICLE_LB, None),
    "deep-nesting": ("a: " + "{b: " * 300 + "c" + "}" * 300 + "\n", None),
    "cluster-ip-outside": (svc("clusterIP: 10.200.0.1\nports: [{port: 80}]"), "spec.clusterIP"),
    "cluster-ip-twice": (
        svc("clusterIP: 10.96.5.5\nports: [{port: 80}]", "a") + "---\n" + svc("clusterIP: 10.96.5.5\nports: [{port: 80}]", "b"),
        "spec.clusterIP",
    ),
    "node-port-twice": (
        svc("type: NodePort\nports: [{port: 80, nodePort: 30100}]", "a")
        + "---\n"
        + svc("type: NodePort\nports: [{port: 80, nodePort: 30100}]", "b"),
        "spec.ports[0].nodePort",
    ),
    "node-port-outside": (svc("type: NodePort\nports: [{port: 80, nodePort: 29999}]"), "spec.ports[0].nodePort"),
}

#: name → (scenario body after the head, the field path)
SCENARIO_HEAD = "apiVersion: vrsim/v1\nkind: Scenario\nmetadata:\n  name: t\n"
BAD_SCENARIOS: dict[str, tuple[str, str | None]] = {
    "unknown-top-key": ("step: []\n", "step"),
    "unknown-metadata-key": ("  owner: me\nsteps: []\n", "metadata.owner"),
    "unknown-step-kind": ("steps:\n  - pingg: {from: a/b, to: c/d}\n    expect: reachable\n", "steps[0].pingg"),
    "two-actions": ("steps:\n  - ping: {from: a/b, to: c/d}\n    http: {from: a/b, to: c/d}\n    expect: reachable\n", "steps[0]"),
    "unknown-ping-key": ("steps:\n  - ping: {from: a/b, to: c/d, size: 64}\n    expect: reachable\n", "steps[0].ping.size"),
    "count-zero": ("steps:\n  - ping: {from: a/b, to: c/d, count: 0}\n    expect: reachable\n", "steps[0].ping.count"),
    "bad-expect": ("steps:\n  - ping: {from: a/b, to: c/d}\n    expect: maybe\n", "steps[0].expect"),
    "bad-node-ip": ("cluster:\n  nodes:\n    - {name: n1, ip: 300.1.1.1}\nsteps: []\n", "cluster.nodes[0].ip"),
    "apply-outside": ("steps:\n  - apply: ../elsewhere.yaml\n", "steps[0].apply"),
    "apply-missing": ("steps:\n  - apply: missing.yaml\n", "steps[0].apply"),
    "delete-unknown": ("steps:\n  - delete: {kind: Pod, name: ghost}\n", "steps[0].delete.name"),
}


def bad_manifest(tmp_path: Path, case: str) -> Path:
    text, _ = BAD_MANIFESTS[case]
    return write(tmp_path / "app" / f"{case}.yaml", text)


def bad_scenario(tmp_path: Path, case: str) -> Path:
    write(tmp_path / "elsewhere.yaml", BUSYBOX)  # exists, but outside the scenario's folder
    body, _ = BAD_SCENARIOS[case]
    return write(tmp_path / "scenarios" / f"{case}.yaml", SCENARIO_HEAD + body)


def assert_one_line_error(result, file: Path) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert str(file) in lines[0]
    assert result.stdout == ""


def assert_json_error(result, file: Path, path: str | None) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)  # exactly one JSON document
    assert isinstance(data, dict)
    assert {"error", "file", "path"} <= set(data)
    assert isinstance(data["error"], str) and data["error"]
    assert data["file"] == str(file)
    assert data["path"] == path
    assert result.stderr == ""


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_exit_2_with_one_line(tmp_path: Path, case: str) -> None:
    path = bad_manifest(tmp_path, case)
    assert_one_line_error(invoke("get", "pods", "-f", str(path)), path)


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_as_json_error(tmp_path: Path, case: str) -> None:
    path = bad_manifest(tmp_path, case)
    assert_json_error(invoke("get", "pods", "-o", "json", "-f", str(path)), path, BAD_MANIFESTS[case][1])


@pytest.mark.parametrize("case", ["misspelt-field", "quoted-port", "article-lb", "duplicate-key", "cluster-ip-outside"])
def test_bad_manifest_in_a_directory_names_the_file(tmp_path: Path, case: str) -> None:
    write(tmp_path / "app" / "00-ok.yaml", BUSYBOX)
    path = bad_manifest(tmp_path, case)
    assert_one_line_error(invoke("get", "pods", "-f", str(tmp_path / "app")), path)


@pytest.mark.parametrize("case", ["misspelt-field", "port-70000", "invalid-yaml", "node-port-outside"])
def test_bad_manifest_applied_by_a_scenario_names_the_manifest(tmp_path: Path, case: str) -> None:
    path = bad_manifest(tmp_path, case)
    scenario = write(tmp_path / "s.yaml", SCENARIO_HEAD + f"steps:\n  - apply: app/{path.name}\n")
    result = invoke("get", "pods", "-f", str(scenario))
    assert_one_line_error(result, path.resolve())
    as_json = invoke("get", "pods", "-o", "json", "-f", str(scenario))
    assert_json_error(as_json, path.resolve(), BAD_MANIFESTS[case][1])


def test_error_line_points_at_the_bad_key(tmp_path: Path) -> None:
    path = bad_manifest(tmp_path, "misspelt-field")
    result = invoke("get", "pods", "-f", str(path))
    assert result.stderr.startswith(f"error: {path}:9: spec.ingress[0].from[0].namespaceSelektor: unknown field")
    assert "did you mean 'namespaceSelector'" in result.stderr
    data = json.loads(invoke("get", "pods", "-o", "json", "-f", str(path)).stdout)
    assert data["line"] == 9


def test_article_loadbalancer_yaml_line_8(tmp_path: Path) -> None:
    path = bad_manifest(tmp_path, "article-lb")
    result = invoke("get", "services", "-f", str(path))
    assert result.stderr.startswith(f"error: {path}:8: ")
    assert json.loads(invoke("get", "services", "-o", "json", "-f", str(path)).stdout)["line"] == 8


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_is_exit_2_with_one_line(tmp_path: Path, case: str) -> None:
    path = bad_scenario(tmp_path, case)
    assert_one_line_error(invoke("get", "pods", "-f", str(path)), path)


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_as_json_error(tmp_path: Path, case: str) -> None:
    path = bad_scenario(tmp_path, case)
    assert_json_error(invoke("get", "pods", "-o", "json", "-f", str(path)), path, BAD_SCENARIOS[case][1])


def test_allow_outside_lets_the_scenario_apply_outside_files(tmp_path: Path) -> None:
    path = bad_scenario(tmp_path, "apply-outside")
    result = invoke("get", "pods", "--allow-outside", "-f", str(path))
    assert result.exit_code == 0, result.stderr
    assert "busybox" in result.stdout


def test_unknown_kind_for_get(good_scenario: Path) -> None:
    result = invoke("get", "widgets", "-f", str(good_scenario))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "widgets" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
    as_json = invoke("get", "widgets", "-o", "json", "-f", str(good_scenario))
    assert as_json.exit_code == 2
    assert "widgets" in json.loads(as_json.stdout)["error"]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = invoke("get", "pods", "-f", str(missing))
    assert_one_line_error(result, missing)
    assert_json_error(invoke("get", "pods", "-o", "json", "-f", str(missing)), missing, None)


def test_missing_file_option_is_a_usage_error() -> None:
    result = invoke("get", "pods")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unknown_option_value_is_a_usage_error(good_scenario: Path) -> None:
    result = invoke("get", "pods", "-o", "xml", "-f", str(good_scenario))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_real_entry_point_has_no_traceback(tmp_path: Path) -> None:
    """Through the console script's own guard, as a user runs it."""
    path = bad_manifest(tmp_path, "alias-bomb")
    proc = subprocess.run(
        [sys.executable, "-m", "vrouter.cli.main", "get", "pods", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {path}")
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr
