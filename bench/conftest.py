"""Shared inputs of the benchmark suites (``pytest bench/ --benchmark-only``).

Every input is built once per session, and the kernels are compiled before anything is
timed; the compile time is reported on its own. Sizes are the issue's targets; set
``VRSIM_BENCH_QUICK=1`` for smaller ones (a smoke run in well under a minute). Each
benchmark records its figure (packets/s, lookups/s, seconds) next to pytest-benchmark's
timings, and the session ends with a table of figures against their targets.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import pytest

from vrouter.bench import FLOWS_PER_CLIENT, BenchResult, BenchSettings, data_packets, first_syns, handshake, service_cluster
from vrouter.dataplane.packets import copy_batch

QUICK = os.environ.get("VRSIM_BENCH_QUICK", "") not in ("", "0")


# the same settings as `vrsim bench`; the quick sizes here are this suite's own
SIZES = BenchSettings(flows=50_000, packets=200_000, setups=20_000, routes=100_000, lookups=1_000_000, reach_pods=200) if QUICK else BenchSettings()

FIGURES = BenchResult()  # the figures, judged against their targets as `vrsim bench` does


def record(benchmark: Any, name: str, per_second_of: int | None, unit: str, target: float | None = None, scale: float = 1.0, higher: bool = True) -> float:
    """Turn the benchmark's median time into the figure (``per_second_of`` items per run)."""
    median = benchmark.stats.stats.median
    value = (per_second_of / median if per_second_of is not None else median) / scale
    benchmark.extra_info[unit] = round(value, 3)
    FIGURES.add(name, value, unit, target, higher)
    return value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.figures:
        return
    write = terminalreporter.write_line
    write("")
    write(f"vrsim figures ({'quick sizes' if QUICK else 'target sizes'}; compile time excluded)")
    for f in FIGURES.figures:
        target = f"target {f.target}" if f.target else ""
        met = "" if f.met is None else ("yes" if f.met else "NO")
        write(f"  {f.name:<84} {f.value:>12.2f} {f.unit:<12} {target:<16} {met}")


@pytest.fixture(scope="session")
def compiled() -> float:
    """Compile every kernel on a tiny cluster first; returns the compile seconds."""
    start = time.perf_counter()
    warm = service_cluster(2, 2, [1, 0], 10)
    handshake(warm.fabric, first_syns(warm, 0, 10))
    seconds = time.perf_counter() - start
    FIGURES.add("kernel compile (or cache load), excluded from the rest", seconds, "s")
    return seconds


@pytest.fixture(scope="session")
def established(compiled: float) -> tuple[Any, np.ndarray]:
    """SIZES.flows established TCP flows from node 0's clients to a ClusterIP with
    SIZES.backends backends spread over every node (ECMP to remote and local members, DNAT)."""
    clients = math.ceil(SIZES.flows / FLOWS_PER_CLIENT)
    sim = service_cluster(SIZES.nodes, SIZES.backends, [clients] + [0] * (SIZES.nodes - 1), SIZES.flows)
    syns = first_syns(sim, 0, SIZES.flows)
    handshake(sim.fabric, syns)
    return sim, syns


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


@pytest.fixture
def fresh_copies() -> Any:
    """A pedantic-mode setup that hands each round its own copy of a batch (not timed)."""

    def make(batch: np.ndarray) -> Any:
        def setup() -> tuple[tuple[np.ndarray], dict[str, Any]]:
            return (copy_batch(batch),), {}

        return setup

    return make


__all__ = ["SIZES", "data_packets", "record"]
