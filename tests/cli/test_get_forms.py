"""`vrsim get` in the hands of a kubectl user: the forms kubectl accepts give kubectl's answers."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

MANIFESTS = """
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web, tier: fe, env: prod}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web, tier: be}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db, canary: "yes"}}
spec: {containers: [{name: c, image: postgres}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: server, image: api:1}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("get") / "app.yaml"
    path.write_text(textwrap.dedent(MANIFESTS))
    return str(path)


def get(manifest: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["get", *args, "-f", manifest])
    return result.exit_code, result.stdout, result.stderr


def names(manifest: str, *args: str) -> list[str]:
    code, out, err = get(manifest, *args, "-o", "name")
    assert code == 0, err
    return out.split()


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["pod/web-a", "pod/web-b"]),
        ("app==web", ["pod/web-a", "pod/web-b"]),
        ("app!=web", ["pod/api-", "pod/api-", "pod/db"]),  # api pods are generated: prefix match below
        ("tier in (fe, be)", ["pod/web-a", "pod/web-b"]),
        ("app notin (web,api)", ["pod/db"]),
        ("canary", ["pod/db"]),
        ("!tier,app!=api", ["pod/db"]),
        ("app=web,env=prod", ["pod/web-a"]),
    ],
)
def test_every_selector_operator(manifest: str, selector: str, expected: list[str]) -> None:
    got = names(manifest, "pods", "-l", selector)
    assert len(got) == len(expected) and all(g.startswith(e) for g, e in zip(sorted(got), sorted(expected), strict=True)), got


def test_a_bad_selector_is_an_input_error(manifest: str) -> None:
    code, _, err = get(manifest, "pods", "-l", "app in web")
    assert code == 2 and "--selector" in err and "app in web" in err


def test_kind_and_names_and_kind_slash_name(manifest: str) -> None:
    assert names(manifest, "pods", "web-b", "db") == ["pod/db", "pod/web-b"]
    assert names(manifest, "pod/web-a", "svc/web") == ["pod/web-a", "service/web"]
    code, _, err = get(manifest, "pod", "nobody")
    assert code == 2 and 'pod "nobody" not found in namespace default' in err


def test_comma_separated_kinds_print_kind_slash_name(manifest: str) -> None:
    code, out, _ = get(manifest, "pods,svc")
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 2 and blocks[0].splitlines()[0].split()[0] == "NAME"
    assert "pod/web-a" in blocks[0] and "service/web" in blocks[1]


def test_show_labels(manifest: str) -> None:
    _, out, _ = get(manifest, "pods", "web-a", "--show-labels")
    header, row = out.splitlines()
    assert header.split()[-1] == "LABELS" and row.split()[-1] == "app=web,env=prod,tier=fe"


def test_o_name_uses_kubectls_singular_resource(manifest: str) -> None:
    assert names(manifest, "deployments") == ["deployment.apps/api"]
    assert names(manifest, "po", "db") == ["pod/db"]
    assert names(manifest, "serviceaccounts") == ["serviceaccount/robot"]


def test_nodes_are_cluster_scoped(manifest: str) -> None:
    code, out, err = get(manifest, "nodes")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "STATUS", "ROLES"]
    assert [l.split()[0] for l in out.splitlines()[1:]] == ["worker01", "worker02"]
    _, out, _ = get(manifest, "nodes", "-A", "-o", "wide")
    assert "NAMESPACE" not in out and "172.27.10.74" in out


def test_deployments_have_kubectls_columns(manifest: str) -> None:
    _, out, _ = get(manifest, "deploy")
    assert out.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "api", "2/2", "2", "2"]


def test_kinds_apply_accepts_but_ignores_are_listable(manifest: str) -> None:
    _, out, _ = get(manifest, "sa")
    assert out.split() == ["NAME", "robot"]
    code, out, err = get(manifest, "secrets")
    assert code == 0 and out == "" and "No resources found in default namespace." in err
    code, _, err = get(manifest, "gizmos")
    assert code == 2 and "unknown kind 'gizmos'" in err


def test_json_of_several_kinds_is_one_list(manifest: str) -> None:
    _, out, _ = get(manifest, "pods,svc", "-o", "json")
    doc = json.loads(out)
    assert doc["kind"] == "List" and {i["kind"] for i in doc["items"]} == {"Pod", "Service"}
