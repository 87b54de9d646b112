"""Established flows through a ClusterIP VIP with ECMP and NAT: the flow-table fast path."""

from __future__ import annotations

from typing import Any

import numpy as np
from conftest import SIZES, data_packets, record

from vrouter.dataplane.pipeline import process_batch
from vrouter.dataplane.trace import new_trace


def kernel(sim: Any) -> Any:
    runtime = sim.fabric.runtimes[0]
    trace, tcount = new_trace(0)

    def run(batch: np.ndarray) -> None:
        process_batch(runtime.kernel, runtime.flows, runtime.counters, batch, sim.fabric.now, 1 << 62, 3, trace, tcount, False)

    return run


def test_fast_path_established_flows(benchmark: Any, established: Any, rng: np.random.Generator, fresh_copies: Any) -> None:
    sim, syns = established
    batch = data_packets(syns, SIZES.packets, rng)
    benchmark.pedantic(kernel(sim), setup=fresh_copies(batch), rounds=7, warmup_rounds=1)
    record(benchmark, f"fast path, {SIZES.flows:,} flows, VIP + ECMP + NAT", SIZES.packets, "Mpps", 15, scale=1e6)


def test_fast_path_hot_flows(benchmark: Any, established: Any, rng: np.random.Generator, fresh_copies: Any) -> None:
    sim, syns = established
    batch = data_packets(syns[: SIZES.hot_flows], SIZES.packets, rng)
    benchmark.pedantic(kernel(sim), setup=fresh_copies(batch), rounds=7, warmup_rounds=1)
    record(benchmark, f"fast path, {SIZES.hot_flows:,} hot flows", SIZES.packets, "Mpps", 60, scale=1e6)
