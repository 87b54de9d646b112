"""The fabric's self-checks can fail: every run holds the rows against the nodes' own counters.

A check that counts delivered, dropped and reasons from the same rows can never disagree with
itself; these tests break the kernels' accounting on purpose (the interpreted engine runs the
kernels' source, so one stage can be swapped for a faulty one) and see the run refuse.
"""

from __future__ import annotations

import numpy as np
import pytest
from k8s_objects import pod
from test_reference_differential import assert_same

from vrouter.lab import fabric as fabric_module
from vrouter.dataplane import engine, interpreted
from vrouter.dataplane import conntrack, flow_setup, ingress, nat, output, pipeline
from vrouter.dataplane.packets import DROP_REASONS, DROP_TTL, DROPPED
from vrouter.dataplane.tables import PROTO_ICMP
from vrouter.lab.fabric import ConservationError, CounterSnapshot
from vrouter.reference import dataplane as reference_module
from vrouter.reference.dataplane import ReferenceFabric
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import first_packets, resolve_source, resolve_target

DATAPLANE_STAGES = (output, conntrack, ingress, nat, flow_setup, pipeline)


def two_nodes() -> Simulation:
    """a on worker01, b on worker02: a ping crosses the fabric (two kernel passes)."""
    return Simulation.from_objects([pod("a", nodeName="worker01"), pod("b", nodeName="worker02")])


def pings(sim: Simulation, count: int = 3) -> np.ndarray:
    return first_packets(resolve_source(sim, "default/a"), resolve_target(sim, "default/b"), PROTO_ICMP, count)


def test_a_drop_the_kernel_does_not_count_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = two_nodes()

    def uncounted_drop(cnt, p, reason, trace, tcount, i, node):  # drops, but counts nothing
        p.outcome = DROPPED
        p.drop_reason = reason

    batch = pings(sim)
    batch["ttl"] = 1  # every ping drops TTL_EXCEEDED on its first node
    assert sim.fabric.run(batch.copy(), engine=engine.INTERPRETED).dropped == 3  # honest: fine
    for module in DATAPLANE_STAGES:  # the interpreted stages' globals: every caller of drop
        namespace = interpreted._namespace(vars(module))
        if "drop" in namespace:
            monkeypatch.setitem(namespace, "drop", uncounted_drop)
    with pytest.raises(ConservationError, match="TTL Exceeded drops grew by 0, but 3 rows"):
        sim.fabric.run(batch.copy(), engine=engine.INTERPRETED)


def test_counters_that_grew_wrongly_are_named() -> None:
    sim = two_nodes()
    fabric = sim.fabric
    before = CounterSnapshot.take(fabric.runtimes)
    result = fabric.run(pings(sim))
    before.reconcile(fabric.runtimes, result.packets, result.sent, result.flow_setups, fabric.names)  # as the run did
    fabric.runtimes[1].counters.drops[DROP_TTL] += 1  # a drop nobody made
    with pytest.raises(ConservationError, match="worker02: TTL Exceeded drops grew by 1, but 0 rows"):
        before.reconcile(fabric.runtimes, result.packets, result.sent, result.flow_setups, fabric.names)
    fabric.runtimes[1].counters.drops[DROP_TTL] -= 1
    fabric.runtimes[0].counters.vifs[3, 0] += 1  # an rx nobody made
    with pytest.raises(ConservationError, match="rx counters grew by"):
        before.reconcile(fabric.runtimes, result.packets, result.sent, result.flow_setups, fabric.names)
    fabric.runtimes[0].counters.vifs[3, 0] -= 1
    with pytest.raises(ConservationError, match="flow-setup counters"):
        before.reconcile(fabric.runtimes, result.packets, result.sent, result.flow_setups + 1, fabric.names)


def test_the_hop_limit_drop_is_counted_on_the_sending_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """A packet past the hop limit is dropped TTL_EXCEEDED on the node that sent it, in its
    drop statistics, as the reference does (docs/dataplane.md §0). With a limit of one kernel,
    a ping between nodes meets it at the first hand-over."""
    monkeypatch.setattr(fabric_module, "MAX_HOPS", 1)
    monkeypatch.setattr(reference_module, "MAX_HOPS", 1)
    sim = two_nodes()
    reference = ReferenceFabric(sim.nodes, sim.scenario.cluster.vrouter)
    batch = pings(sim)
    for name in ("compiled", "interpreted"):
        result = sim.fabric.run(batch.copy(), engine=engine._ENGINES[name])  # reconciled inside
        assert [DROP_REASONS[r] for r in result.packets["drop_reason"]] == ["TTL Exceeded"] * 3
        assert (result.packets["node"] == sim.fabric.node_index("worker01")).all()
    assert_same(batch, result.packets, reference.run(batch.copy()), "hop limit")
    assert sim.fabric.drop_counters()["worker01"] == {"TTL Exceeded": 6}
    assert reference.drop_counters()["worker01"] == {"TTL Exceeded": 3}
