"""``vrsim bench --startup``'s measuring: one child process's wall, CPU and peak memory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.startup_bench import Measured, default_scenario, measure, trace_endpoints

ROOT = Path(__file__).resolve().parents[2]


def test_measure_accounts_for_the_child_alone() -> None:
    code = "import sys; block = bytearray(300 * 2**20); sum(range(3_000_000)); print('done'); sys.exit(3)"
    got = measure([sys.executable, "-c", code], dict(os.environ))
    assert isinstance(got, Measured)
    assert got.exit_code == 3 and got.stdout.strip() == "done"
    assert 300 <= got.rss_mib < 400 and 0 < got.cpu <= got.wall + 0.5
    # the child's own memory, not what it would inherit from this (large) process at fork
    small = measure([sys.executable, "-c", code.replace("300 * 2**20", "1")], dict(os.environ))
    assert small.rss_mib < 100 and small.exit_code == 3


def test_trace_endpoints_are_the_first_ping(tmp_path: Path) -> None:
    assert trace_endpoints(ROOT / "scenarios" / "article" / "namespace-isolation.yaml") == ("ns-isolated/busybox", "ns-non-isolated/busybox")
    nothing = tmp_path / "s.yaml"
    nothing.write_text("apiVersion: vrsim/v1\nkind: Scenario\nsteps: [{apply: x.yaml}]\n")
    with pytest.raises(ValueError, match="no ping or connect"):
        trace_endpoints(nothing)


def test_default_scenario_is_found_from_a_clone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_scenario().is_file()  # beside the package: the source tree


@pytest.mark.parametrize("content", [None, "apiVersion: vrsim/v1\nkind: Scenario\nsteps: []\n"])
def test_startup_bench_refuses_a_scenario_it_cannot_use(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "scenario.yaml"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(app, ["bench", "--startup", "--scenario", str(path)])
    assert result.exit_code == 2 and "scenario.yaml" in result.stdout + result.stderr


def test_an_installed_vrsim_writes_its_bench_scenario(tmp_path: Path) -> None:
    from vrouter.startup_bench import ARTICLE_SCENARIO, write_isolation_scenario

    written = write_isolation_scenario(tmp_path)
    article = Path(__file__).resolve().parents[2] / ARTICLE_SCENARIO
    runs = [json.loads(CliRunner().invoke(app, ["run", str(p), "--json"]).stdout)["scenarios"][0] for p in (written, article)]
    assert runs[0]["passed"] and runs[1]["passed"]
    shape = [[(c["from"], c["to"], c["expected"], c["observed"]["reachable"]) for c in run["checks"]] for run in runs]
    assert shape[0] == shape[1]  # the same pings with the same answers as the article's file
