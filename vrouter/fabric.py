"""The fabric: every node's vRouter, and the wires between them.

:meth:`Fabric.run` hands each node its share of a batch, runs that node's kernel on it, and
moves every packet the kernel sent to the fabric to the node it was sent to (decapsulated:
the label or VNI rides along), until each packet is delivered or dropped. Python loops over
rounds and nodes, never over packets. Held packets (a flow waiting for the agent) are run
again on the next round, when the agent has budget again.

Conservation is checked on every run: injected = delivered + dropped, and the per-reason
drop counts sum to the drops (:class:`RunResult`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from controlplane.config import VRouterSettings
from vrouter.agent import CompiledNode
from vrouter.dataplane.packed import KernelTables, pack
from vrouter.dataplane.packets import DELIVERED, DROP_REASONS, DROP_TTL, DROPPED, FABRIC, HELD, HOST, PENDING
from vrouter.dataplane.pipeline import age_flows, process_batch
from vrouter.dataplane.state import Counters, FlowState, grown, new_counters, new_flow_state
from vrouter.dataplane.trace import new_trace

MAX_HOPS = 8
NS_PER_ROUND = 1_000  # simulated time a fabric round takes


class ConservationError(AssertionError):
    """A packet was lost or counted twice: a bug, never a user error."""


@dataclass
class NodeRuntime:
    compiled: CompiledNode
    kernel: KernelTables
    flows: FlowState
    counters: Counters


@dataclass
class RunResult:
    """What happened to one injected batch (rows in injection order)."""

    packets: np.ndarray
    injected: int
    delivered: int
    dropped: int
    drops_by_reason: dict[str, int]
    flow_setups: int
    trace: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sent: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the rows as injected

    def check_conservation(self) -> None:
        if self.injected != self.delivered + self.dropped:
            raise ConservationError(f"injected {self.injected} != delivered {self.delivered} + dropped {self.dropped}")
        if sum(self.drops_by_reason.values()) != self.dropped:
            raise ConservationError(f"drop reasons sum to {sum(self.drops_by_reason.values())}, not {self.dropped}")


class Fabric:
    def __init__(self, nodes: dict[str, CompiledNode], settings: VRouterSettings | None = None) -> None:
        self.settings = settings or VRouterSettings()
        self.now = 0
        self.runtimes: list[NodeRuntime] = []
        self.names: list[str] = []
        self.update(nodes)

    def update(self, nodes: dict[str, CompiledNode]) -> None:
        """New tables after a configuration change; flows and counters stay."""
        ordered = sorted(nodes.values(), key=lambda n: n.index)
        old = {r.compiled.name: r for r in self.runtimes}
        self.runtimes = []
        for node in ordered:
            previous = old.get(node.name)
            max_vif = node.tables.vif_type.shape[0]
            kernel = previous.kernel if previous is not None and previous.compiled is node else pack(node.tables)
            if previous is None:
                state = new_flow_state(self.settings.flowEntries, self.settings.overflowFraction)
                counters = new_counters(max(4096, max_vif))
            else:
                state, counters = previous.flows, grown(previous.counters, max_vif)
            self.runtimes.append(NodeRuntime(node, kernel, state, counters))
        self.names = [n.name for n in ordered]

    def node_index(self, name: str) -> int:
        return self.names.index(name)

    def advance(self, seconds: float) -> int:
        """Let simulated time pass; flows idle longer than the ageing time go. Returns pairs aged."""
        self.now += int(seconds * 1e9)
        idle = int(self.settings.agingSeconds * 1e9)
        return sum(int(age_flows(r.flows, r.counters, self.now, idle)) for r in self.runtimes)

    def run(self, packets: np.ndarray, trace_capacity: int = 0, max_setups: int | None = None) -> RunResult:
        """Run a batch to completion across the fabric (rows must have node, in_vif/in_label set)."""
        batch = packets.copy()
        injected = len(batch)
        trace, tcount = new_trace(trace_capacity)
        budget = max_setups if max_setups is not None else 1 << 62
        hold = self.settings.holdQueue
        setups = 0
        for _ in range(MAX_HOPS * 4):
            active = (batch["outcome"] == PENDING) | (batch["outcome"] == HELD)
            if not active.any():
                break
            for index, runtime in enumerate(self.runtimes):
                mine = np.flatnonzero(active & (batch["node"] == index))
                if mine.size == 0:
                    continue
                part = batch[mine]
                self.now += NS_PER_ROUND
                if trace_capacity:
                    start = int(tcount[0])
                setups += int(process_batch(runtime.kernel, runtime.flows, runtime.counters, part, self.now, budget, hold, trace, tcount))
                if trace_capacity:
                    # the kernel numbers packets within its part; map them back to batch rows
                    trace["packet"][start : int(tcount[0])] = mine[trace["packet"][start : int(tcount[0])]]
                batch[mine] = part
            sent = np.flatnonzero(batch["outcome"] == FABRIC)
            if sent.size:
                hop = batch[sent]
                too_far = hop["hops"] >= MAX_HOPS
                hop["node"] = hop["out_node"]
                hop["in_vif"] = 0
                hop["in_label"] = hop["out_label"]
                for field_in, field_out in (("sip", "out_sip"), ("dip", "out_dip"), ("sport", "out_sport"), ("dport", "out_dport"), ("ttl", "out_ttl")):
                    hop[field_in] = hop[field_out]
                hop["outcome"] = PENDING
                hop["out_vif"] = -1
                hop["out_node"] = -1
                hop["out_label"] = -1
                if too_far.any():
                    hop["outcome"][too_far] = DROPPED
                    hop["drop_reason"][too_far] = DROP_TTL
                batch[sent] = hop
        stuck = (batch["outcome"] == PENDING) | (batch["outcome"] == HELD)
        if stuck.any():  # pragma: no cover - a forwarding loop the hop limit did not end
            raise ConservationError(f"{int(stuck.sum())} packets neither delivered nor dropped")
        delivered = int(((batch["outcome"] == DELIVERED) | (batch["outcome"] == HOST)).sum())
        dropped_rows = batch["outcome"] == DROPPED
        reasons = Counter(DROP_REASONS[r] for r in batch["drop_reason"][dropped_rows])
        result = RunResult(batch, injected, delivered, int(dropped_rows.sum()), dict(reasons), setups, trace[: int(tcount[0])], packets)
        result.check_conservation()
        return result

    def drop_counters(self) -> dict[str, dict[str, int]]:
        """Every node's non-zero drop counters by reason name (``dropstats``)."""
        return {
            name: {DROP_REASONS[i]: int(v) for i, v in enumerate(r.counters.drops) if v and DROP_REASONS[i]}
            for name, r in zip(self.names, self.runtimes, strict=True)
        }
