"""The fast path is a shortcut, not a second behaviour: on the same established flows the
general path (which tracing forces, stage by stage) gives the same rows, counters and flow
entries."""

from __future__ import annotations

import numpy as np
import pytest

from vrouter.bench import data_packets, first_syns, handshake, service_cluster
from vrouter.dataplane.engine import forced
from vrouter.dataplane.packets import TCP_ACK, TCP_FIN
from vrouter.dataplane.state import FLAG_OUT_ECMP


@pytest.mark.parametrize("flags", [TCP_ACK, TCP_ACK | TCP_FIN])
def test_general_path_agrees_with_the_fast_path_on_established_flows(flags: int) -> None:
    """Client pods → ClusterIP with members on both nodes: ECMP, a tunnel and DNAT on the
    member's node. One simulation runs the data packets untraced (the fast path takes every
    established flow), its twin traced (every packet on the general path)."""
    rng = np.random.default_rng(7)
    with forced("compiled"):
        pair = [service_cluster(2, 4, [1, 0], 400) for _ in range(2)]
        syns = [first_syns(sim, 0, 400) for sim in pair]
        for sim, s in zip(pair, syns, strict=True):
            handshake(sim.fabric, s)
        batch = data_packets(syns[0], 3_000, rng)
        batch["tcp_flags"] = np.where(rng.random(len(batch)) < 0.9, TCP_ACK, flags)
        fast = pair[0].fabric.run(batch.copy())
        general = pair[1].fabric.run(batch.copy(), trace_capacity=200_000)
    assert len(general.trace) > 0 and fast.delivered == len(batch)
    took_fast_path = [bool((r.flows.entries["out_nh"] >= 0).any()) for r in (pair[0].fabric.runtimes[0], pair[1].fabric.runtimes[0])]
    assert took_fast_path == [True, False]  # only the fast path caches the output nexthop
    for name in batch.dtype.names:
        assert np.array_equal(fast.packets[name], general.packets[name]), name
    for a, b in zip(pair[0].fabric.runtimes, pair[1].fabric.runtimes, strict=True):
        assert np.array_equal(a.counters.vifs, b.counters.vifs) and np.array_equal(a.counters.drops, b.counters.drops)
        assert np.array_equal(a.counters.flows, b.counters.flows)
        for field in ("action", "rflow", "packets", "bytes", "last", "tcp", "ecmp"):
            assert np.array_equal(a.flows.entries[field], b.flows.entries[field]), field
        # the fast path's own cache (out_nh, FLAG_OUT_ECMP) is the only difference allowed
        cached = np.uint8(FLAG_OUT_ECMP)
        assert np.array_equal(a.flows.entries["flags"] & ~cached, b.flows.entries["flags"] & ~cached)
