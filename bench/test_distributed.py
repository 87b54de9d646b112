"""reach and connlist on dask workers: the scaling curve and the cost of a task.

A generated cluster (PODS pods, default 2,000; ``VRSIM_BENCH_PODS``) in 10 namespaces with a
team policy each, on 4 nodes, default vRouter settings: measured on one process (workers 0)
and on a LocalCluster of 1, 2 and 4 worker processes. The cluster start is outside the time;
the broadcast of the tables and each worker's first fabric are inside it. The per-task cost
is (1 worker − one process) / tasks: what distributing adds to each block.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from conftest import QUICK, record

from controlplane.config import ClusterConfig
from vrouter.bench import team_objects
from vrouter.lab.connlist import connlist
from vrouter.lab.fabric import conversations_per_run
from vrouter.lab.parallel import dask_client
from vrouter.lab.reach import reachability
from vrouter.lab.sim import Simulation

pytest.importorskip("distributed")

PODS = int(os.environ.get("VRSIM_BENCH_PODS", 300 if QUICK else 2000))
SECONDS: dict[tuple[str, int], float] = {}


def team_cluster(pods: int) -> Simulation:
    config = ClusterConfig.model_validate({"nodes": [{"name": f"w{i}", "ip": f"172.27.10.{10 + i}"} for i in range(4)]})
    sim = Simulation.from_objects(team_objects(pods, port=80), config=config)
    sim.nodes  # compiled before any timing
    return sim


@pytest.fixture(scope="module")
def cluster(compiled: float) -> Simulation:
    return team_cluster(PODS)


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
@pytest.mark.parametrize("what", ["reach", "connlist"])
def test_scaling(benchmark: Any, cluster: Simulation, what: str, workers: int) -> None:
    with dask_client(workers or None) as client:
        def measure() -> None:
            if what == "reach":
                reachability(cluster, client=client)
            else:
                connlist(cluster, client=client)

        benchmark.pedantic(measure, rounds=1, warmup_rounds=0)
    seconds = record(benchmark, f"{what}, {PODS:,} pods, {workers or 'no'} workers{' (one process)' if not workers else ''}", None, "s", higher=False)
    SECONDS[(what, workers)] = seconds
    if workers == 1 and (what, 0) in SECONDS:
        rows = min(conversations_per_run(cluster.scenario.cluster.vrouter) // (PODS - 1), -(-PODS // 4))  # as reachability cuts it
        tasks = 4 if what == "connlist" else -(-PODS // rows)
        overhead = (seconds - SECONDS[(what, 0)]) / tasks
        benchmark.extra_info["per_task_overhead_s"] = round(overhead, 4)
        print(f"\n{what}: per-task overhead ≈ {overhead * 1000:.0f} ms over {tasks} tasks (1 worker against one process)")
