"""``vrsim draw``: the DOT holds what the spec says TF builds, and renders when Graphviz is here.

Expected VN edges are written from spec/k8s-to-tf.md §4 (which policies each VN carries), pods
and addresses from the cluster's store — not from the drawing code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.lab.connlist import load

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "scenarios/article"
DOT = shutil.which("dot")


def parse(dot: str) -> tuple[dict[str, str], set[tuple[str, str]], dict[str, set[str]]]:
    """(node id → label, edges, cluster name → node ids declared in it) of a DOT text."""
    nodes, edges, clusters, stack = {}, set(), {}, []
    quoted = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: m.group(0).replace("\n", "\\n"), dot)  # one line per statement
    for line in quoted.splitlines():
        line = line.strip()
        if m := re.match(r'subgraph "?(cluster_[^"{]+)"? \{', line):
            stack.append(m.group(1))
            clusters[m.group(1)] = set()
        elif line == "}" and stack:
            stack.pop()
        elif m := re.match(r'"([^"]+)" -> "([^"]+)"', line):
            edges.add((m.group(1), m.group(2)))
        elif m := re.match(r'"([^"]+)" \[label="([^"]*)', line, re.S):
            nodes[m.group(1)] = m.group(2)
            if stack:
                clusters[stack[-1]].add(m.group(1))
    return nodes, edges, clusters


def draw(*args: str) -> str:
    result = CliRunner().invoke(app, ["draw", "-q", *args])
    assert result.exit_code == 0, result.output
    return result.output


def vn(project: str, name: str) -> str:
    return f"vn default-domain/{project}/{name}"


def test_isolation_draws_the_vns_and_only_the_policy_links_of_the_spec() -> None:
    text = draw("-f", str(ARTICLE / "namespace-isolation.yaml"))
    nodes, edges, clusters = parse(text)
    fabric = vn("default-project", "ip-fabric")
    default_pods, default_svc = vn("k8s-default", "k8s-default-pod-network"), vn("k8s-default", "k8s-default-service-network")
    iso_pods, iso_svc = vn("k8s-ns-isolated", "k8s-ns-isolated-pod-network"), vn("k8s-ns-isolated", "k8s-ns-isolated-service-network")
    expected = {
        frozenset(pair)
        for pair in [
            (fabric, default_pods), (fabric, default_svc), (fabric, iso_pods), (fabric, iso_svc),  # ip-fabric-np everywhere
            (default_pods, default_svc), (iso_pods, iso_svc),  # each namespace's pod-service-np
            (iso_pods, default_svc),  # the isolated pod VN carries default-service-np
        ]
    }  # fmt: skip
    vn_edges = {frozenset(e) for e in edges if e[0].startswith("vn ") and e[1].startswith("vn ")}
    assert vn_edges == expected  # no edge between the two pod networks: the isolation
    assert {iso_pods, iso_svc} <= clusters["cluster_project_default-domain/k8s-ns-isolated"]
    assert "10.32.0.0/12" in nodes[iso_pods]


def test_clusterip_draws_pods_by_node_and_the_vip_over_its_members() -> None:
    sim = load(ARTICLE / "clusterip-service.yaml")
    nodes, edges, clusters = parse(draw("-f", str(ARTICLE / "clusterip-service.yaml")))
    store = sim.cluster.store
    vip = store.get("Service", "default", "nginx-deployment-clusterip-service")["spec"]["clusterIP"]
    (lb,) = [key for key, label in nodes.items() if key.startswith("lb ")]
    assert "Service default/nginx-deployment-clusterip-service" in nodes[lb] and vip in nodes[lb]
    for pod in store.list("Pod"):
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        (key,) = [k for k, label in nodes.items() if label.startswith(name + "\\n")]
        assert pod["status"]["podIP"] in nodes[key]
        assert key in clusters[f"cluster_node_{pod['spec']['nodeName']}"]
        is_member = pod["metadata"]["name"].startswith("nginx")
        assert ((lb, key) in edges) == is_member


def test_policy_picture_is_connlists_graph() -> None:
    nodes, edges, _ = parse(draw("-f", str(ARTICLE / "network-policy.yaml"), "--what", "policy"))
    connlist = CliRunner().invoke(app, ["connlist", "-q", "-f", str(ARTICLE / "network-policy.yaml")]).output
    pairs = {tuple(part.strip() for part in line.split(" => ")[:2]) for line in connlist.splitlines() if " => " in line}
    assert {(a, b.split(" : ")[0]) for a, b in pairs} == edges
    assert ("shop/backend[Pod]", "shop/db[Pod]") in edges and ("default/busybox[Pod]", "shop/db[Pod]") not in edges


@pytest.mark.skipif(DOT is None, reason="Graphviz's dot not installed (CI installs it)")
@pytest.mark.parametrize("suffix", ["svg", "png"])
@pytest.mark.parametrize("scenario", ["namespace-isolation", "clusterip-service"])
def test_renders_svg_and_png(tmp_path: Path, suffix: str, scenario: str) -> None:
    out = tmp_path / f"fabric.{suffix}"
    draw("-f", str(ARTICLE / f"{scenario}.yaml"), "-o", str(out))
    data = out.read_bytes()
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    else:  # every node the DOT declares is drawn, with its label
        nodes, edges, _ = parse(draw("-f", str(ARTICLE / f"{scenario}.yaml")))
        text = data.decode().replace("&#45;", "-")
        assert text.count('class="node"') == len(nodes) and text.count('class="edge"') == len(edges)
        assert all(f">{label.split(chr(92))[0]}</text>" in text for label in nodes.values())


def test_without_dot_svg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = CliRunner().invoke(app, ["draw", "-q", "-f", str(ARTICLE / "clusterip-service.yaml"), "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 2 and "needs Graphviz's dot program" in result.output and "x.dot" in result.output
    assert not (tmp_path / "x.svg").exists()


def test_unknown_suffix_and_intent_without_policy_are_input_errors(tmp_path: Path) -> None:
    bad = CliRunner().invoke(app, ["draw", "-f", str(ARTICLE / "clusterip-service.yaml"), "-o", str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2 and ".svg or .png" in bad.output
    intent = CliRunner().invoke(app, ["draw", "-f", str(ARTICLE / "clusterip-service.yaml"), "--intent"])
    assert intent.exit_code == 2 and "--what policy" in intent.output


def test_the_readme_picture_is_what_draw_makes_today() -> None:
    """docs/images/clusterip-service.svg (shown in the README) holds every node and edge label
    the current code draws, and no other node: redraw it with the README's command if not."""
    nodes, edges, _ = parse(draw("-f", str(ARTICLE / "clusterip-service.yaml")))
    svg = (ROOT / "docs/images/clusterip-service.svg").read_text().replace("&#45;", "-").replace("&gt;", ">")
    for label in nodes.values():
        for line in label.split("\\n"):
            assert f">{line}</text>" in svg, f"{line!r} is drawn today but not in the README's picture"
    assert svg.count('class="node"') == len(nodes) and svg.count('class="edge"') == len(edges)
