"""``--workers`` / ``--scheduler``: the same bytes as one process, whatever the workers do.

Every comparison runs the command twice through the CLI — once on one process, once on dask
workers — and compares stdout byte for byte. The generated cluster has a small flow table,
so one process measures it in several blocks and the workers in a different partition."""

from __future__ import annotations

import os
from collections.abc import Callable
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vrouter.bench import team_objects
from vrouter.cli.main import app

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "scenarios/article"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 pods in 6 namespaces, team policies, 3 nodes, a 4,096-entry flow table."""
    folder = tmp_path_factory.mktemp("generated")
    docs = team_objects(60, namespaces=6, port=80)
    (folder / "cluster.yaml").write_text(yaml.safe_dump_all(docs))
    scenario = {
        "apiVersion": "vrsim/v1",
        "kind": "Scenario",
        "metadata": {"name": "generated"},
        "cluster": {"nodes": [{"name": f"w{i}", "ip": f"172.27.10.{10 + i}"} for i in range(3)], "vrouter": {"flowEntries": 4096}},
        "steps": [{"apply": "cluster.yaml"}],
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


@pytest.fixture(scope="module")
def scheduler() -> str:
    """A LocalCluster of two worker processes for the module (``--scheduler`` its address)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def stdout(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.mark.parametrize("output", ["json", "table"])
def test_reach_on_workers_is_byte_identical(generated: Path, scheduler: str, output: str) -> None:
    for proto in (["--port", "80", "--proto", "tcp"], []):
        alone = stdout("reach", "-f", str(generated), "-o", output, *proto)
        assert "X" in alone or "false" in alone  # the policies isolate teams: a matrix with both answers
        assert stdout("reach", "-f", str(generated), "-o", output, *proto, "--scheduler", scheduler) == alone


@pytest.mark.parametrize("output", ["txt", "json"])
def test_connlist_on_workers_is_byte_identical(generated: Path, scheduler: str, output: str) -> None:
    for path in (generated, ARTICLE / "network-policy.yaml"):
        alone = stdout("connlist", "-f", str(path), "-o", output)
        assert stdout("connlist", "-f", str(path), "-o", output, "--scheduler", scheduler) == alone


def test_a_batch_of_scenarios_on_workers_is_byte_identical(scheduler: str) -> None:
    for output in ("json", "text"):
        alone = stdout("run", str(ARTICLE), "-o", output)
        assert stdout("run", str(ARTICLE), "-o", output, "--scheduler", scheduler) == alone


def test_diverge_on_workers_is_byte_identical(scheduler: str) -> None:
    path = str(ARTICLE / "network-policy.yaml")
    assert stdout("diverge", "-f", path, "-o", "json", "--scheduler", scheduler) == stdout("diverge", "-f", path, "-o", "json")


def test_workers_option_starts_its_own_local_cluster(generated: Path) -> None:
    assert stdout("reach", "-f", str(generated), "-o", "json", "--workers", "2") == stdout("reach", "-f", str(generated), "-o", "json")


class KillOnce(distributed.WorkerPlugin):
    """Kill the worker process as its first block starts (once per marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: object, start: str, finish: str, **kwargs: object) -> None:
        if finish == "executing" and "_run_block" in str(key) and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(key))
            os._exit(1)


def test_a_killed_worker_changes_nothing(generated: Path, tmp_path: Path) -> None:
    import cloudpickle

    marker = tmp_path / "killed"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import a test module
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        client.register_plugin(KillOnce(str(marker)))
        on_workers = stdout("reach", "-f", str(generated), "-o", "json", "--scheduler", cluster.scheduler_address)
    assert marker.exists()  # a worker died mid-run, and its block was run again elsewhere
    assert on_workers == stdout("reach", "-f", str(generated), "-o", "json")


def test_dask_options_are_checked(generated: Path, without_module: Callable[[str], None]) -> None:
    both = CliRunner().invoke(app, ["reach", "-f", str(generated), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert both.exit_code == 2 and "give one" in both.output
    nobody = CliRunner().invoke(app, ["connlist", "-f", str(generated), "--scheduler", "tcp://127.0.0.1:1"])
    assert nobody.exit_code == 2 and "no dask scheduler answers" in nobody.output
    pcap = CliRunner().invoke(app, ["run", str(generated), "--workers", "2", "--pcap", "x"])
    assert pcap.exit_code == 2 and "--pcap" in pcap.output
    without_module("distributed")
    missing = CliRunner().invoke(app, ["reach", "-f", str(generated), "--workers", "2"])
    assert missing.exit_code == 2 and 'pip install "vrsim[dask]"' in missing.output
