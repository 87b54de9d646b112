"""Whole runs: a scenario (control plane + compile + checks) and a reachability matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import SIZES, record

from vrouter.bench import Bench, BenchSettings
from vrouter.lab.reach import reachability
from vrouter.lab.runner import run_scenario
from vrouter.lab.sim import Simulation

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["namespace-isolation", "clusterip-service", "network-policy"])
def test_article_scenario_in_process(benchmark: Any, compiled: float, name: str) -> None:
    path = ROOT / "scenarios" / "article" / f"{name}.yaml"

    def run() -> None:
        assert run_scenario(Simulation.from_path(path)).passed

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    record(benchmark, f"scenario {name}, in process (parse + control plane + compile + checks)", None, "s", higher=False)


def test_reachability_matrix(benchmark: Any, compiled: float) -> None:
    """SIZES.reach_pods pods in 10 namespaces with a team policy each, on 4 nodes: every
    ordered pair measured by a TCP handshake, compiled tables warm."""
    pods = SIZES.reach_pods
    sim_holder: dict[str, Any] = {}

    def build() -> tuple[tuple[()], dict[str, Any]]:
        bench = Bench(BenchSettings())
        sim_holder["sim"] = bench.reach_cluster(pods)
        return (), {}

    def run() -> None:
        reachability(sim_holder["sim"], "tcp", 80)

    benchmark.pedantic(run, setup=build, rounds=3)
    record(benchmark, f"reachability matrix, {pods:,} pods ({pods * pods:,} pairs), warm", None, "s", 10, higher=False)


def test_control_plane_and_compile_at_scale(benchmark: Any, compiled: float) -> None:
    pods = 10_000 if not SIZES.reach_pods < 1000 else 1_000
    bench = Bench(BenchSettings())
    benchmark.pedantic(lambda: bench.scale(pods), rounds=1)
    record(benchmark, f"control plane + compile, {pods:,} pods, {pods // 10:,} services, {pods // 20:,} namespaces", None, "s", 30, higher=False)
