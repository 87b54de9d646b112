"""Longest-prefix match alone: an Internet-shaped table, random destinations, batched."""

from __future__ import annotations

from typing import Any

import numpy as np
from conftest import SIZES, record

from vrouter.bench import random_routes
from vrouter.dataplane.lpm import build_lpm, lpm_lookup_batch


def test_lpm_random_destinations(benchmark: Any, compiled: float) -> None:
    rng = np.random.default_rng(2)
    table = build_lpm(random_routes(SIZES.routes, 1, rng))
    vrfs = np.zeros(SIZES.lookups, np.int64)
    addresses = rng.integers(0, 2**32, SIZES.lookups, dtype=np.uint64).astype(np.uint32)
    out = np.empty(SIZES.lookups, np.int32)
    lpm_lookup_batch(table, vrfs[:10], addresses[:10], out[:10])  # compiled before timing
    benchmark.pedantic(lpm_lookup_batch, args=(table, vrfs, addresses, out), rounds=7, warmup_rounds=1)
    record(benchmark, f"LPM, {SIZES.routes:,} routes, random destinations", SIZES.lookups, "M lookups/s", 100, scale=1e6)
