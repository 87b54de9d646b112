"""Long work reports its progress; the CLI shows it on a terminal only, and not with -q."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controlplane import progress
from controlplane.config import ClusterConfig
from vrouter.cli.progress import use_progress
from vrouter.lab.connlist import connlist, load
from vrouter.lab.reach import reachability
from vrouter.lab.runner import run_scenario
from vrouter.lab.sim import Simulation

ARTICLE = Path(__file__).resolve().parents[2] / "scenarios" / "article"


class Recorder:
    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None, int]] = []

    @contextmanager
    def __call__(self, description: str, total: int | None) -> Iterator[progress.Advance]:
        done = [0]

        def advance(n: int = 1) -> None:
            done[0] += n

        yield advance
        self.tasks.append((description, total, done[0]))


def test_a_scenario_reports_applying_building_and_its_steps() -> None:
    recorder = Recorder()
    with progress.showing(recorder):
        run_scenario(Simulation.from_path(ARTICLE / "clusterip-service.yaml"))
    names = [t[0] for t in recorder.tasks]
    assert any(n.startswith("applying ") for n in names)
    assert "computing what TF builds" in names and "building the vRouters' tables" in names
    steps = next(t for t in recorder.tasks if t[0] == "clusterip-service: steps")
    assert steps[1] == steps[2] > 0  # every step advanced the bar to its end


def test_a_large_reach_reports_each_block(tmp_path: Path) -> None:
    objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}, "spec": {"containers": [{"name": "c", "image": "i"}]}} for i in range(30)]
    sim = Simulation.from_objects(objects, ClusterConfig.model_validate({"vrouter": {"flowEntries": 1024}}))  # 204 conversations a run
    recorder = Recorder()
    with progress.showing(recorder):
        result = reachability(sim)
    reach = next(t for t in recorder.tasks if t[0].startswith("reach: "))
    assert reach[1] == reach[2] == 5  # 30 sources, 7 a block (7 × 29 = 203 conversations)
    assert result.matrix.all()  # and every block measured from empty tables: nothing "Flow Table Full"


def test_reach_and_connlist_report_their_matrices() -> None:
    recorder = Recorder()
    with progress.showing(recorder):
        reachability(Simulation.from_path(ARTICLE / "namespace-isolation.yaml").build())
        connlist(load(ARTICLE / "network-policy.yaml"))
    reach = next(t for t in recorder.tasks if t[0].startswith("reach: "))
    assert reach[0] == "reach: 6 pairs" and reach[1] == reach[2] == 1  # one block of sources: it fits the flow tables
    conns = next(t for t in recorder.tasks if t[0].startswith("connlist: "))
    assert conns[1] == conns[2] >= 1


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("tty", "quiet", "shown"), [(True, False, True), (True, True, False), (False, False, False)])
def test_progress_is_shown_on_a_terminal_unless_quiet(monkeypatch: pytest.MonkeyPatch, tty: bool, quiet: bool, shown: bool) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal() if tty else io.StringIO())
    try:
        use_progress(quiet)
        assert progress.active() == shown
        with progress.task("work", total=2) as advance:  # draws (or not) and clears without error
            advance()
            advance()
    finally:
        progress.install(None)
