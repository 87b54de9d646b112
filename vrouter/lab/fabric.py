"""The fabric: every node's vRouter, and the wires between them.

:meth:`Fabric.run` runs each node's kernel over the batch (each takes the packets that are
at its node, in place), then moves every packet a kernel sent to the fabric to the node it
was sent to (decapsulated: the label or VNI rides along), until each packet is delivered or
dropped. Python loops over rounds and nodes, never over packets. Held packets (a flow waiting for the agent) are run
again on the next round, when the agent has budget again.

Conservation is checked on every run, against two independent sources: the rows
(injected = delivered + dropped, the per-reason drop counts sum to the drops,
:class:`RunResult`) and each node's own counters, which the kernels keep apart from the rows
(:class:`CounterSnapshot`): a node's drop statistics grow by exactly the rows dropped there,
reason by reason; its vifs' rx counters by the packets that entered it; its flow-setup
counter by the setups the run reports (less those that found the table full). A drop the kernel forgot to count, or counted twice,
fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controlplane.config import VRouterSettings
from vrouter.agent import CompiledNode
from vrouter.dataplane.engine import Engine, engine_for
from vrouter.dataplane.packed import KernelTables, pack
from vrouter.dataplane.packets import DELIVERED, DROP_FLOW_TABLE_FULL, DROP_REASONS, DROP_TTL, DROPPED, FABRIC, HOST, copy_batch, dropstats_counts
from vrouter.dataplane.conntrack import age_flows
from vrouter.dataplane.state import FC_SETUPS, RX_PACKETS, Counters, FlowState, grown, new_counters, new_flow_state
from vrouter.dataplane.trace import new_trace
from vrouter.lab.capture import NS_PER_ROUND, CaptureLog

MAX_HOPS = 8
#: conversations measured together, as a share of a node's flow table (each may hold 2 entries
#: per node): what reach and connlist send between two emptyings of the tables
FLOW_TABLE_SHARE = 0.2


def conversations_per_run(settings: VRouterSettings) -> int:
    """How many conversations fit the flow tables at once (see :data:`FLOW_TABLE_SHARE`)."""
    return max(64, int(settings.flowEntries * FLOW_TABLE_SHARE))


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
    engine: str = "compiled"  # which engine forwarded it (vrouter.dataplane.engine)

    def check_conservation(self) -> None:
        if self.injected != self.delivered + self.dropped:
            raise ConservationError(f"injected {self.injected} != delivered {self.delivered} + dropped {self.dropped}")
        if sum(self.drops_by_reason.values()) != self.dropped:
            raise ConservationError(f"drop reasons sum to {sum(self.drops_by_reason.values())}, not {self.dropped}")


@dataclass
class CounterSnapshot:
    """The counters of every node before a run, to hold the run's rows against afterwards."""

    drops: np.ndarray  # int64[nodes, reasons]
    rx: np.ndarray  # int64[nodes]: packets received on the node's vifs
    setups: int

    @classmethod
    def take(cls, runtimes: list[NodeRuntime]) -> CounterSnapshot:
        return cls(
            drops=np.array([r.counters.drops for r in runtimes], np.int64).reshape(len(runtimes), len(DROP_REASONS)),
            rx=np.array([int(r.counters.vifs[:, RX_PACKETS].sum()) for r in runtimes], np.int64),
            setups=sum(int(r.counters.flows[FC_SETUPS]) for r in runtimes),
        )

    def reconcile(self, runtimes: list[NodeRuntime], rows: np.ndarray, sent: np.ndarray, setups: int, names: list[str]) -> None:
        """Raise :class:`ConservationError` unless the counters grew as the rows say."""
        after = CounterSnapshot.take(runtimes)
        n_nodes = len(runtimes)
        dropped = np.flatnonzero(rows["outcome"] == DROPPED)
        reasons = rows["drop_reason"][dropped].astype(np.int64)
        expected = np.zeros_like(self.drops)
        if dropped.size:
            at = np.clip(rows["node"][dropped].astype(np.int64), 0, max(n_nodes - 1, 0))
            expected = np.bincount(at * self.drops.shape[1] + reasons, minlength=self.drops.size).reshape(self.drops.shape)
        grown_by = after.drops - self.drops
        if not np.array_equal(grown_by, expected):
            node, reason = (int(v[0]) for v in np.nonzero(grown_by != expected))
            raise ConservationError(
                f"{names[node]}: {DROP_REASONS[reason]} drops grew by {grown_by[node, reason]}, "
                f"but {expected[node, reason]} rows were dropped there for it"
            )
        # every kernel pass is a hop and an rx, but for a first hop on a vif outside the node's counters
        entered = int(rows["hops"].sum(dtype=np.int64))
        in_vif = sent["in_vif"]
        vif_rows = np.array([r.counters.vifs.shape[0] for r in runtimes] or [0], np.int64)
        if len(sent) and (in_vif.min() < 0 or in_vif.max() >= vif_rows.min()):
            first = np.clip(sent["node"].astype(np.int64), 0, max(n_nodes - 1, 0))
            uncounted = (in_vif < 0) | (in_vif >= vif_rows[first])
            entered -= int(np.count_nonzero(uncounted & (rows["hops"] > 0)))
        received = int((after.rx - self.rx).sum())
        if received != entered:
            raise ConservationError(f"vif rx counters grew by {received}, but packets entered nodes {entered} times")
        # a setup (an agent decision) installs a flow, or finds the table full and drops
        installed = after.setups - self.setups
        full = int(np.count_nonzero(reasons == DROP_FLOW_TABLE_FULL))
        if not installed <= setups <= installed + full:
            raise ConservationError(f"flow-setup counters grew by {installed} ({full} table-full drops), but the run reports {setups} setups")


class Fabric:
    def __init__(self, nodes: dict[str, CompiledNode], settings: VRouterSettings | None = None) -> None:
        self.settings = settings or VRouterSettings()
        self.now = 0
        self.runtimes: list[NodeRuntime] = []
        self.names: list[str] = []
        self.engines: dict[str, int] = {}  # engine name → batches it ran, in order of first use
        self.capture: CaptureLog | None = None  # every hop of every packet, when a capture is on
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

    def run(self, packets: np.ndarray, trace_capacity: int = 0, max_setups: int | None = None, engine: Engine | None = None) -> RunResult:
        """Run a batch to completion across the fabric (rows must have node, in_vif/in_label set).

        ``engine``: the compiled kernels or the interpreted ones; by default the one
        :func:`~vrouter.dataplane.engine.engine_for` chooses for the batch."""
        engine = engine or engine_for(len(packets))
        self.engines[engine.name] = self.engines.get(engine.name, 0) + 1
        batch = copy_batch(packets)
        injected = len(batch)
        trace, tcount = new_trace(trace_capacity)
        budget = max_setups if max_setups is not None else 1 << 62
        hold = self.settings.holdQueue
        setups = 0
        at_node = np.zeros(len(self.runtimes), np.int64)
        hop_drops = np.zeros(len(self.runtimes), np.int64)
        before = CounterSnapshot.take(self.runtimes)
        capture = self.capture
        if capture is not None:
            capture.start(len(batch))
        in_flight = engine.hand_over(batch, MAX_HOPS, at_node, hop_drops)  # counts where the packets are
        for _ in range(MAX_HOPS * 4):
            if not in_flight:
                break
            for index, runtime in enumerate(self.runtimes):
                if at_node[index]:
                    self.now += NS_PER_ROUND
                    rows = capture.at_node(batch, index) if capture is not None else None
                    setups += int(engine.process_batch(runtime.kernel, runtime.flows, runtime.counters, batch, self.now, budget, hold, trace, tcount, True))
                    if capture is not None:
                        capture.passed(batch, rows, index, self.now)
            was_fabric = np.flatnonzero(batch["outcome"] == FABRIC) if capture is not None else None
            in_flight = engine.hand_over(batch, MAX_HOPS, at_node, hop_drops)
            if capture is not None:
                capture.hop_limit(batch, was_fabric, self.now)
            for index in np.flatnonzero(hop_drops):  # dropped at the hop limit: the sender's statistics
                self.runtimes[index].counters.drops[DROP_TTL] += hop_drops[index]
        if in_flight:  # pragma: no cover - a forwarding loop the hop limit did not end
            raise ConservationError(f"{in_flight} packets neither delivered nor dropped")
        outcome = batch["outcome"]
        delivered = int(np.count_nonzero((outcome == DELIVERED) | (outcome == HOST)))
        dropped_rows = outcome == DROPPED
        by_reason = np.bincount(batch["drop_reason"][dropped_rows], minlength=len(DROP_REASONS))
        reasons = {DROP_REASONS[r]: int(c) for r, c in enumerate(by_reason) if c}
        result = RunResult(batch, injected, delivered, int(dropped_rows.sum()), reasons, setups, trace[: int(tcount[0])], packets, engine.name)
        result.check_conservation()
        before.reconcile(self.runtimes, batch, packets, setups, self.names)
        return result

    def drop_counters(self) -> dict[str, dict[str, int]]:
        """Every node's non-zero drop counters by the vRouter's ``dropstats`` names."""
        return {name: dropstats_counts(r.counters.drops) for name, r in zip(self.names, self.runtimes, strict=True)}
