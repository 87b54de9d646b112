"""``run --plots`` and ``reach --plot``: one chart per connect check that reached backends, a
heat map of the reachability matrix, and clear errors for what cannot be drawn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
CLUSTERIP = ROOT / "scenarios/article/clusterip-service.yaml"
ISOLATION = ROOT / "scenarios/article/namespace-isolation.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


def test_run_plots_one_chart_per_connect_check_with_backends(tmp_path: Path) -> None:
    out = tmp_path / "plots"
    result = CliRunner().invoke(app, ["run", str(CLUSTERIP), "--plots", str(out), "-o", "json"])
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["scenarios"][0]["checks"]
    spread = [c["step"] for c in checks if c["kind"] == "connect" and c["observed"].get("backends")]
    assert len(spread) >= 2
    assert sorted(p.name for p in out.iterdir()) == sorted(f"clusterip-service-step{s}.png" for s in spread)
    for path in out.iterdir():
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_reach_plot_draws_the_matrix(tmp_path: Path) -> None:
    for suffix in ("png", "svg"):
        out = tmp_path / f"reach.{suffix}"
        result = CliRunner().invoke(app, ["reach", "-q", "-f", str(ISOLATION), "--plot", str(out)])
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        assert data[:8] == PNG if suffix == "png" else b"<svg" in data
    svg = (tmp_path / "reach.svg").read_text()  # matplotlib keeps each text as a comment beside its glyphs
    for pod in ("default/busybox", "ns-isolated/busybox", "ns-non-isolated/busybox"):
        assert svg.count(f"<!-- {pod} -->") == 2  # named on both axes
    assert "<!-- reachability, icmp: 2/6 pairs reachable -->" in svg  # the article: only the two non-isolated pods


def test_plot_errors_are_input_errors(tmp_path: Path, without_module: Callable[[str], None]) -> None:
    bad = CliRunner().invoke(app, ["reach", "-q", "-f", str(ISOLATION), "--plot", str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2 and ".png, .svg or .pdf" in bad.output
    without_module("matplotlib")
    missing = CliRunner().invoke(app, ["run", str(CLUSTERIP), "--plots", str(tmp_path / "p")])
    assert missing.exit_code == 2 and 'pip install "vrsim[plot]"' in missing.output
    assert not (tmp_path / "p").exists()
