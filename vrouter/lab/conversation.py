"""Conversations through the fabric: the packets a ping, a TCP connect or a UDP exchange
sends, in both directions, and what became of them.

A ping is echo then reply; a TCP connect is SYN, SYN-ACK, ACK; UDP and SCTP are a request
and a response. Each phase is one batch through :meth:`Fabric.run`; the answers start where
the first packets were delivered. ``flows`` conversations use distinct source ports.

Where nothing listens (vrouter.lab.listeners) the answer is a refusal instead — a RST for
TCP, ICMP port unreachable for UDP, an ABORT for SCTP — sent back the same way; a flow whose
refusal came back is ``refused``, neither answered nor dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vrouter.dataplane.packets import DROP_REASONS, DROPPED, ICMP_DEST_UNREACHABLE, TCP_ACK, TCP_RST, TCP_SYN
from vrouter.dataplane.tables import PROTO_ICMP, PROTO_TCP, VIF_FABRIC, VIF_HOST
from vrouter.lab.fabric import RunResult
from vrouter.lab.invariants import isolation_leaks
from vrouter.lab.listeners import Listening, refusals
from vrouter.lab.traffic import FIRST_SOURCE_PORT, Source, Target, answers, arrived, back_at, fabric_label, first_packets
from vrouter.lab.sim import Simulation


@dataclass
class Conversation:
    source: Source
    target: Target
    proto: int
    phases: list[RunResult] = field(default_factory=list)
    completed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per flow
    refused: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per flow: a refusal came back
    refused_by: list[Listening] = field(default_factory=list)  # the endpoints that refused
    backends: Counter = field(default_factory=Counter)  # "ns/pod" → flows it answered
    drop_reason: str | None = None
    drop_node: int | None = None
    leaks: int = 0  # first packets delivered where no route could lead them (vrouter.lab.invariants)
    flow_dest: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # node·65536 + vif, -1
    pod_of_vif: dict[tuple[int, int], str] = field(default_factory=dict)
    per_source: dict[str, str] = field(default_factory=dict)  # source pod → verdict (``pick: all``)

    def backend_per_flow(self) -> list[str | None]:
        """The pod that answered each flow (None: unanswered or not a pod), by flow number."""
        return [None if k < 0 else self.pod_of_vif.get((k // 65536, k % 65536)) for k in self.flow_dest.tolist()]

    @property
    def engines(self) -> list[str]:
        """The engines that forwarded its phases, in the order they first did."""
        return list(dict.fromkeys(p.engine for p in self.phases))

    @property
    def flows(self) -> int:
        return int(self.completed.shape[0])

    @property
    def answered(self) -> int:
        return int(self.completed.sum())

    @property
    def reachable(self) -> bool:
        return self.flows > 0 and self.answered == self.flows

    @property
    def refusals(self) -> int:
        """Flows whose first packet met a closed port and whose refusal came back."""
        return int(self.refused.sum())

    def counters(self) -> dict[str, object]:
        """injected = delivered + dropped over every packet of every phase."""
        injected = sum(p.injected for p in self.phases)
        delivered = sum(p.delivered for p in self.phases)
        dropped = sum(p.dropped for p in self.phases)
        reasons: Counter = Counter()
        for phase in self.phases:
            reasons.update(phase.drops_by_reason)
        return {
            "injected": injected,
            "delivered": delivered,
            "dropped": dropped,
            "dropsByReason": dict(sorted(reasons.items())),
            "flowSetups": sum(p.flow_setups for p in self.phases),
            "isolationLeaks": self.leaks,
        }


def _first_drop(rows: np.ndarray) -> tuple[str, int] | None:
    dropped = np.flatnonzero(rows["outcome"] == DROPPED)
    if dropped.size == 0:
        return None
    row = rows[dropped[0]]
    return DROP_REASONS[int(row["drop_reason"])], int(row["node"])


def converse(
    sim: Simulation,
    source: Source,
    target: Target,
    proto: int,
    flows: int,
    pod_of_vif: dict[tuple[int, int], str],
    same_flow: bool = False,
    first_port: int = FIRST_SOURCE_PORT,
    trace_capacity: int = 0,
) -> Conversation:
    """Run ``flows`` conversations of ``proto`` from ``source`` to ``target`` through the fabric.

    ``same_flow`` sends every first packet with one five-tuple (a ping's echo requests).
    With ``trace_capacity`` each phase records its stage events (``Conversation.phases``).
    """
    fabric = sim.fabric
    conv = Conversation(source, target, proto)
    first = fabric.run(first_packets(source, target, proto, flows, first_port, same_flow), trace_capacity)
    conv.phases.append(first)
    rows = first.packets
    ok = target.reached(rows)
    completed = np.zeros(flows, bool)
    conv.refused = np.zeros(flows, bool)
    drop = _first_drop(rows)
    if ok.any():
        reply_flags = TCP_SYN | TCP_ACK if proto == PROTO_TCP else 0
        closed, conv.refused_by = refusals(sim, rows[ok], proto)
        replies = answers(rows[ok], proto, reply_flags)
        if proto == PROTO_TCP:
            replies["tcp_flags"][closed] = TCP_RST | TCP_ACK
        elif proto != PROTO_ICMP:
            replies["icmp_type"][closed] = ICMP_DEST_UNREACHABLE
        refusing = np.zeros(flows, bool)
        refusing[rows["tag"][ok][closed]] = True
        if target.kind == "fabric":
            # an outside peer answers through a node's fabric interface (the sender's node),
            # as after a gateway that keeps client addresses, not from the internet side;
            # to a pod the gateway tunnels it with the label of the pod's interface
            replies["node"] = source.node
            replies["in_vif"] = VIF_FABRIC
            if source.vif not in (VIF_FABRIC, VIF_HOST):
                replies["in_label"] = fabric_label(node_at(sim, source.node), source.vif)
        second = fabric.run(replies, trace_capacity)
        conv.phases.append(second)
        back = back_at(second.packets, source)
        completed[second.packets["tag"][back]] = True
        conv.refused = completed & refusing
        completed &= ~refusing
        back &= completed[second.packets["tag"]]
        drop = drop or _first_drop(second.packets)
        if proto == PROTO_TCP and back.any():
            acks = answers(second.packets[back], proto, TCP_ACK)
            if source.vif == VIF_FABRIC:  # the outside peer sends again through the fabric
                acks["node"] = source.node
                acks["in_vif"] = VIF_FABRIC
            third = fabric.run(acks, trace_capacity)
            conv.phases.append(third)
            drop = drop or _first_drop(third.packets)
            finished = arrived(third.packets)
            done = np.zeros(flows, bool)
            done[third.packets["tag"][finished]] = True
            completed &= done
        reached = rows[ok]
        reached = reached[completed[reached["tag"]]]
        keys = reached["node"].astype(np.int64) * 65536 + reached["out_vif"].astype(np.int64)
        conv.flow_dest = np.full(flows, -1, np.int64)
        conv.flow_dest[reached["tag"]] = keys
        conv.pod_of_vif = pod_of_vif
        for key, count in zip(*np.unique(keys, return_counts=True), strict=True):
            pod = pod_of_vif.get((int(key) // 65536, int(key) % 65536))
            if pod is not None:
                conv.backends[pod] += int(count)
    conv.completed = completed
    conv.leaks = isolation_leaks(sim, [first], source.node, source.vif)
    if drop is not None:
        conv.drop_reason, conv.drop_node = drop
    return conv


def node_at(sim: Simulation, index: int) -> object:
    """The compiled node with fabric index ``index``."""
    return next(n for n in sim.nodes.values() if n.index == index)




def merged(convs: list[Conversation], target: Target) -> Conversation:
    """Several conversations as one (a check from or to every pod of a workload), flows in order."""
    out = Conversation(convs[0].source, target, convs[0].proto)
    out.phases = [p for c in convs for p in c.phases]
    out.completed = np.concatenate([c.completed for c in convs])
    out.refused = np.concatenate([c.refused for c in convs])
    out.flow_dest = np.concatenate([c.flow_dest if c.flow_dest.shape[0] else np.full(c.flows, -1, np.int64) for c in convs])
    out.pod_of_vif = convs[0].pod_of_vif
    for conv in convs:
        out.backends.update(conv.backends)
        out.refused_by.extend(w for w in conv.refused_by if w not in out.refused_by)
        out.leaks += conv.leaks
        if out.drop_reason is None and conv.drop_reason is not None:
            out.drop_reason, out.drop_node = conv.drop_reason, conv.drop_node
    return out
