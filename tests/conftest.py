"""Fixtures shared by the whole suite (the builders live in k8s_objects.py)."""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable

import pytest

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """Compile the kernels once, in one process, before any test forwards a packet, and run
    every test on them: small runs would otherwise start on the interpreter (the ``auto``
    engine's tiering), and the suite is the compiled kernel's test. The engine tests choose
    engines themselves; ``VRSIM_ENGINE=interpreted pytest`` runs the suite interpreted."""
    from vrouter.dataplane.background_compile import wait

    os.environ.setdefault("VRSIM_ENGINE", "compiled")  # CLI subprocesses inherit it
    wait()


@pytest.fixture
def without_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``without_module("matplotlib")``: from now on in the test, importing it (or any of its
    submodules) fails as if it were not installed."""
    real_import = builtins.__import__

    def hide(prefix: str) -> None:
        def importer(name: str, *args: object, **kwargs: object) -> object:
            if name == prefix or name.startswith(prefix + "."):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", importer)

    return hide


@pytest.fixture
def cluster() -> Cluster:
    """A fresh cluster with the default configuration (two workers)."""
    return Cluster(ClusterConfig())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how much the kernel-versus-reference differential test compared in this run."""
    module = sys.modules.get("tests.dataplane.test_reference_differential") or sys.modules.get("test_reference_differential")
    stats = getattr(module, "STATS", None)
    if stats and stats["packets"]:
        terminalreporter.write_line(
            f"differential: kernel and reference agreed on {stats['packets']:,} packets "
            f"in {stats['batches']:,} batches over {stats['clusters']:,} generated clusters"
        )
