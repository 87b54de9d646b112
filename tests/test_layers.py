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
