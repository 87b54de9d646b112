"""The layers flow one way (design.md): who may import whom, read from the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module below ``package`` (a path like ``controlplane/controller``) and the modules it
    imports, at any depth of the file (function-level imports included)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("controlplane", ("vrouter",)),
        ("controlplane/controller", ("controlplane.kube_manager", "controlplane.cluster")),
        ("controlplane/tf", ("controlplane.kube_manager", "controlplane.cluster", "controlplane.controller")),
        ("vrouter/dataplane", ("controlplane", "vrouter.agent", "vrouter.lab.sim", "vrouter.lab.fabric", "vrouter.cli")),
    ],
)
def test_layer_imports_nothing_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    found = imports_of(package)
    assert found, f"no modules found below {package}"
    offending = {
        module: sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))
        for module, names in found.items()
    }
    assert not {m: n for m, n in offending.items() if n}, f"{package} must not import {forbidden}"


def test_the_lab_imports_one_way() -> None:
    """Within vrouter/lab, following imports never comes back to where it started (a check's
    data goes down: runner → checks → conversation → traffic → fabric), and the lab imports
    nothing above it (views, cli)."""
    graph: dict[str, set[str]] = {}
    for module, names in imports_of("vrouter/lab").items():
        name = "vrouter.lab." + Path(module).stem
        graph[name] = {n for n in names if n.startswith("vrouter.lab.") and n.count(".") == 2 and n != name}
        above = sorted(n for n in names if n.startswith(("vrouter.views", "vrouter.cli")))
        assert not above, f"{module} imports {above}"
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        if seen.get(node) == 2:
            return
        assert seen.get(node) != 1, "an import cycle in the lab: " + " → ".join([*path, node])
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        seen[node] = 2

    for start in sorted(graph):
        visit(start, [])
    assert "vrouter.lab.sim" in graph["vrouter.lab.runner"] and "vrouter.lab.checks" in graph["vrouter.lab.runner"]


def test_no_dataplane_function_is_longer_than_100_lines() -> None:
    long = []
    for path in sorted((ROOT / "vrouter" / "dataplane").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 100:
                long.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
