"""The interpreted engine is the compiled kernel, run by Python: same rows, same trace events,
same flow setups and counters, on the differential test's generated clusters and traffic.

A cold install answers its first commands on the interpreted engine
(:mod:`vrouter.dataplane.engine`), so every difference here is an answer a new user would get
wrong. Two simulations of one generated cluster get the same batches, one per engine; the
batches are every packet's whole row, traced, and ageing in between.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_reference_differential import (
    Conversation,
    World,
    clusters,
    conversations,
    raw_rows,
)

from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from vrouter.dataplane import engine
from vrouter.dataplane.packets import new_batch
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import first_packets, resolve_source, resolve_target

EXAMPLES = int(os.environ.get("VRSIM_ENGINE_EXAMPLES", "80"))
TRACE_CAPACITY = 20_000  # more events than any generated batch makes: nothing is cut


def assert_same_rows(compiled: np.ndarray, interpreted: np.ndarray, what: str) -> None:
    """Field by field, naming the first row that differs."""
    assert compiled.dtype == interpreted.dtype and len(compiled) == len(interpreted), what
    for name in compiled.dtype.names:
        differs = np.flatnonzero(compiled[name] != interpreted[name])
        if differs.size:
            i = int(differs[0])
            raise AssertionError(f"{what}: {name} differs first in row {i}: compiled {compiled[i]}, interpreted {interpreted[i]}")


def run_both(pair: tuple[Simulation, Simulation], batch: np.ndarray, max_setups: int | None, what: str) -> np.ndarray:
    """Run one batch on each engine and hold everything it produced equal; the compiled rows."""
    sim_c, sim_i = pair
    c = sim_c.fabric.run(batch.copy(), trace_capacity=TRACE_CAPACITY, max_setups=max_setups, engine=engine.COMPILED)
    i = sim_i.fabric.run(batch.copy(), trace_capacity=TRACE_CAPACITY, max_setups=max_setups, engine=engine.INTERPRETED)
    assert (c.engine, i.engine) == ("compiled", "interpreted")
    assert len(c.trace) < TRACE_CAPACITY, "the trace buffer filled: raise TRACE_CAPACITY"
    assert_same_rows(c.packets, i.packets, f"{what}: packets")
    assert_same_rows(c.trace, i.trace, f"{what}: trace events")
    assert (c.flow_setups, c.delivered, c.dropped, c.drops_by_reason) == (i.flow_setups, i.delivered, i.dropped, i.drops_by_reason), what
    assert sim_c.fabric.drop_counters() == sim_i.fabric.drop_counters(), f"{what}: dropstats"
    return c.packets


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(cluster=clusters(), data=st.data())
def test_interpreted_engine_agrees_with_the_compiled_kernel(cluster: tuple[dict, list[dict]], data: st.DataObject) -> None:
    config_dict, objects = cluster
    config = ClusterConfig.model_validate(config_dict)
    try:
        pair = (Simulation.from_objects(objects, config), Simulation.from_objects(objects, config))
        pair[0].nodes, pair[1].nodes
    except InputError:
        assume(False)
    world = World(pair[0])
    talks: list[Conversation] = []
    for step in range(data.draw(st.integers(1, 5), label="batches")):
        parts: list[np.ndarray] = []
        owners: list[Conversation] = []
        for talk in talks:
            if talk.final is not None and data.draw(st.booleans(), label="go on"):
                parts.append(talk.next_packets(data.draw(st.sampled_from(talk.options()), label="next")))
        for _ in range(data.draw(st.integers(0, 3), label="new conversations")):
            first = data.draw(conversations(world), label="conversation")
            if first is not None:
                owners.append(Conversation(first))
                parts.append(first)
        n_raw = data.draw(st.integers(0, 8), label="raw rows")
        if n_raw:
            parts.append(data.draw(raw_rows(world, n_raw), label="raw"))
        if not parts:
            continue
        batch = np.concatenate(parts)
        max_setups = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="max_setups")
        rows = run_both(pair, batch, max_setups, f"batch {step}")
        offset = 0
        for part in parts:  # the conversations started here go on from where they arrived
            for talk in owners:
                if talk.sent is part:
                    talk.final = rows[offset : offset + len(part)]
            offset += len(part)
        talks += owners
        seconds = data.draw(st.sampled_from([0, 0, 100, 200]), label="advance")
        if seconds:
            assert pair[0].fabric.advance(seconds) == pair[1].fabric.advance(seconds)


def test_interpreted_engine_traces_a_service_like_the_compiled_kernel() -> None:
    """A fixed case that always runs: a ClusterIP's ECMP, DNAT and the replies' reverse NAT."""
    pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}", "namespace": "default", "labels": {"app": "web"}},
         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}
        for i, node in enumerate(("worker01", "worker02", "worker02"))
    ]
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "default"},
              "spec": {"nodeName": "worker01", "containers": [{"name": "c", "image": "busybox"}]}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    pair = (Simulation.from_objects([*pods, client, svc]), Simulation.from_objects([*pods, client, svc]))
    first = first_packets(resolve_source(pair[0], "default/client"), resolve_target(pair[0], "service/default/web", 80), 6, 12)
    rows = run_both(pair, first, None, "client → ClusterIP")
    assert len(np.unique(rows["out_dip"])) == 3, "the flows should spread over the three members"
    replies = Conversation(first)
    replies.final = rows
    run_both(pair, replies.next_packets("answer"), None, "replies")
    run_both(pair, new_batch(0), None, "an empty batch")


@pytest.mark.parametrize("name", ["compiled", "interpreted"])
def test_forced_engine_is_the_one_that_runs(name: str) -> None:
    sim = Simulation.from_objects([])
    with engine.forced(name):
        result = sim.fabric.run(new_batch(1))
    assert result.engine == name and sim.fabric.engines == {name: 1}


# ------------------------------------------------------------------ which engine auto picks


class Choice:
    """engine_for with a fresh process's state and a fake cache / background compile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ready: bool) -> None:
        self.started = 0
        self.waited = 0
        self.ready = ready
        monkeypatch.setattr(engine, "_interpreted_packets", 0)
        monkeypatch.setattr(engine, "_tiered_up", False)
        monkeypatch.setattr(engine, "_why_interpreted", "")
        monkeypatch.setattr(engine, "kernels_ready", lambda: self.ready)
        monkeypatch.setattr(engine.background_compile, "start", self._start)
        monkeypatch.setattr(engine.background_compile, "wait", self._wait)
        monkeypatch.setenv("VRSIM_ENGINE", "auto")

    def _start(self) -> None:
        self.started += 1

    def _wait(self) -> None:
        self.waited += 1
        self.ready = True

    def names(self, *batches: int) -> list[str]:
        return [engine.engine_for(n).name for n in batches]


def test_auto_with_ready_kernels_interprets_a_small_run_then_stays_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    choice = Choice(monkeypatch, ready=True)
    small = engine.SMALL_RUN // 4
    assert choice.names(small, small, small, small) == ["interpreted"] * 4
    assert engine.why_interpreted() == engine.SMALL_RUN_REASON
    assert choice.names(1, 1, small) == ["compiled"] * 3
    assert choice.started == 0 and engine.why_interpreted() == "the first packets interpreted"


def test_auto_with_ready_kernels_compiles_a_large_batch_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    choice = Choice(monkeypatch, ready=True)
    assert choice.names(engine.SMALL_RUN + 1, 1) == ["compiled", "compiled"]
    assert engine.why_interpreted() == ""


def test_auto_on_a_cold_cache_interprets_while_compiling_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    choice = Choice(monkeypatch, ready=False)
    half = engine.INTERPRET_BUDGET // 2
    assert choice.names(half, half) == ["interpreted", "interpreted"]
    assert choice.started >= 1 and choice.waited == 0 and "compiling in the background" in engine.why_interpreted()
    assert choice.names(1) == ["compiled"]  # past the budget: wait for the compile, then compiled
    assert choice.waited == 1 and engine.why_interpreted() == "the first packets interpreted"


@pytest.mark.parametrize(("mode", "expected"), [("compiled", "compiled"), ("interpreted", "interpreted")])
def test_an_asked_engine_is_used_for_every_batch(monkeypatch: pytest.MonkeyPatch, mode: str, expected: str) -> None:
    choice = Choice(monkeypatch, ready=False)
    monkeypatch.setenv("VRSIM_ENGINE", mode)
    assert choice.names(1, engine.INTERPRET_BUDGET * 2) == [expected] * 2
    assert choice.started == 0


def test_an_unknown_engine_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRSIM_ENGINE", "turbo")
    with pytest.raises(engine.EngineError, match="VRSIM_ENGINE='turbo'"):
        engine.mode()
