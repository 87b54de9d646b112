"""Flow setup (the slow path): LPM + VN ACL + security groups + NetworkPolicy rules + ECMP
+ NAT, installing the forward and the reverse flow, from an empty table each round."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import SIZES, record

from vrouter.bench import FLOWS_PER_CLIENT, first_syns, service_cluster
from vrouter.dataplane.packets import copy_batch
from vrouter.dataplane.pipeline import process_batch
from vrouter.dataplane.state import new_flow_state
from vrouter.dataplane.trace import new_trace


@pytest.fixture(scope="module")
def policed(compiled: float) -> tuple[Any, np.ndarray]:
    clients = math.ceil(SIZES.setups / FLOWS_PER_CLIENT) + 1
    sim = service_cluster(SIZES.nodes, SIZES.backends, [clients] + [0] * (SIZES.nodes - 1), SIZES.setups, SIZES.rules)
    return sim, first_syns(sim, 0, SIZES.setups)


def test_flow_setups_with_network_policy_rules(benchmark: Any, policed: Any) -> None:
    sim, syns = policed
    runtime = sim.fabric.runtimes[0]
    settings = sim.scenario.cluster.vrouter
    trace, tcount = new_trace(0)

    def setup() -> tuple[tuple[Any, np.ndarray], dict[str, Any]]:
        return (new_flow_state(settings.flowEntries, settings.overflowFraction), copy_batch(syns)), {}

    def run(state: Any, batch: np.ndarray) -> None:
        done = process_batch(runtime.kernel, state, runtime.counters, batch, sim.fabric.now, 1 << 62, 3, trace, tcount, False)
        assert done == len(batch)

    benchmark.pedantic(run, setup=setup, rounds=5, warmup_rounds=1)
    record(benchmark, f"flow setups (both flows), {SIZES.rules:,} NetworkPolicy rules", SIZES.setups, "M setups/s", 2, scale=1e6)
