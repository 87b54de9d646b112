"""What a packet capture on every node would have seen, recorded while the fabric runs.

A :class:`CaptureLog` attached to a :class:`~vrouter.lab.fabric.Fabric` is shown each node's
rows after that node's kernel pass, and keeps one *hop event* per place a packet was seen:
received on an interface or from the fabric, sent to an interface, to the host stack or onto
the fabric, or dropped (with the reason). Each event holds the header as it was on the wire
at that point — the received header before the node's rewrite, the sent one after it — so a
capture on a pod's interface shows the NAT'd addresses the pod sees. Recording is numpy over
the rows a pass touched; the bytes are made only when the files are written
(:mod:`vrouter.views.captures`).

The fabric capture of a receiving node needs who sent the packet and the outer UDP source
port it chose; the log keeps both per row of the batch in flight (``came_from``,
``came_sport``), since the row itself only knows where it is now.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.packets import DROPPED, FABRIC, HELD, HOST, PENDING
from vrouter.dataplane.tables import VIF_FABRIC, VIF_HOST

# where an event was seen
RX_VIF = 0  # received on a pod's (or the host's) interface
TX_VIF = 1  # sent out of an interface to the pod (or vhost0 to the host stack)
RX_FABRIC = 2  # received on the fabric interface, encapsulated (or plain underlay)
TX_FABRIC = 3  # sent onto the fabric toward ``peer``
DROP = 4  # dropped by the node's vRouter, ``drop_reason`` says why

HOP_EVENT = np.dtype(
    [
        ("time", np.int64),  # simulated nanoseconds
        ("seq", np.int64),  # order of recording, for events at the same time
        ("node", np.int16),
        ("where", np.uint8),
        ("vif", np.int16),  # the interface for RX_VIF/TX_VIF
        ("peer", np.int16),  # the other node of a fabric event, -1 when unknown
        ("label", np.int32),  # MPLS label or VNI; -1: not encapsulated (underlay)
        ("outer_sport", np.uint16),
        ("sip", np.uint32),
        ("dip", np.uint32),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("proto", np.uint8),
        ("tcp_flags", np.uint8),
        ("ttl", np.uint8),
        ("icmp_type", np.uint8),
        ("length", np.uint16),
        ("drop_reason", np.uint8),
        ("tag", np.int32),
    ]
)

NS_PER_ROUND = 1_000  # the fabric's simulated time per node pass (vrouter.lab.fabric)
_HEADER = ("sip", "dip", "sport", "dport", "ttl")
_KEPT = ("proto", "tcp_flags", "icmp_type", "length", "tag")


class CaptureLog:
    """Hop events of every batch the fabric ran while it was attached."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._seq = 0
        self._came_from = np.zeros(0, np.int16)
        self._came_sport = np.zeros(0, np.uint16)

    def start(self, n: int) -> None:
        """A new batch of ``n`` rows is about to run."""
        self._came_from = np.full(n, -1, np.int16)
        self._came_sport = np.zeros(n, np.uint16)

    def at_node(self, batch: np.ndarray, node: int) -> np.ndarray:
        """The rows a node's pass is about to take (call before the pass)."""
        outcome = batch["outcome"]
        return np.flatnonzero((batch["node"] == node) & ((outcome == PENDING) | (outcome == HELD)))

    def passed(self, batch: np.ndarray, rows: np.ndarray, node: int, now: int) -> None:
        """Record what a node's pass did to ``rows`` (those it held stay for the next pass)."""
        rows = rows[batch["outcome"][rows] != HELD]
        if not rows.size:
            return
        done = batch[rows]
        from_fabric = done["in_vif"] == VIF_FABRIC
        received = self._events(done, now, node)
        received["where"] = np.where(from_fabric, RX_FABRIC, RX_VIF)
        received["vif"] = done["in_vif"]
        received["peer"] = np.where(from_fabric, self._came_from[rows], -1)
        received["label"] = np.where(from_fabric, done["in_label"], -1)
        received["outer_sport"] = self._came_sport[rows]
        for name in _HEADER:
            received[name] = done[name]
        outcome = done["outcome"]
        sent = self._events(done, now, node)
        sent["where"] = np.select([outcome == FABRIC, outcome == DROPPED], [TX_FABRIC, DROP], TX_VIF)
        dropped = outcome == DROPPED
        sent["vif"] = np.select([outcome == HOST, dropped], [VIF_HOST, done["in_vif"]], done["out_vif"])  # a drop: where it came in
        sent["peer"] = np.where(outcome == FABRIC, done["out_node"], -1)
        sent["label"] = np.where(outcome == FABRIC, done["out_label"], -1)
        sent["outer_sport"] = done["outer_sport"]
        sent["drop_reason"] = done["drop_reason"]
        for name in _HEADER:  # a drop shows the packet as it arrived
            sent[name] = np.where(dropped, done[name], done["out_" + name])
        seen = np.stack([np.ones(len(done), bool), outcome != PENDING], axis=1)
        self._add(np.stack([received, sent], axis=1)[seen])  # each row's rx, then its tx
        onward = rows[outcome == FABRIC]
        self._came_from[onward] = node
        self._came_sport[onward] = batch["outer_sport"][onward]

    def hop_limit(self, batch: np.ndarray, was_fabric: np.ndarray, now: int) -> None:
        """Rows sent onto the fabric that the hop limit dropped instead (at their sender)."""
        rows = was_fabric[batch["outcome"][was_fabric] == DROPPED]
        if rows.size:
            done = batch[rows]
            events = self._events(done, now, -1)
            events["node"] = self._came_from[rows]
            events["where"] = DROP
            events["drop_reason"] = done["drop_reason"]
            for name in _HEADER:
                events[name] = done["out_" + name]
            self._add(events)

    def _events(self, rows: np.ndarray, now: int, node: int) -> np.ndarray:
        """Events for ``rows`` of a pass at ``now``: a pass handles its packets at once, so
        they are spread over the round's nanoseconds in batch order, to read as a sequence."""
        events = np.zeros(len(rows), HOP_EVENT)
        events["time"] = now + (np.arange(len(rows)) * NS_PER_ROUND) // max(len(rows), 1)
        events["node"] = node
        events["peer"] = -1
        events["label"] = -1
        for name in _KEPT:
            events[name] = rows[name]
        return events

    def _add(self, events: np.ndarray) -> None:
        events["seq"] = self._seq + np.arange(len(events))
        self._seq += len(events)
        self._parts.append(events)

    def events(self) -> np.ndarray:
        """Every event recorded so far, in the order they happened."""
        if not self._parts:
            return np.zeros(0, HOP_EVENT)
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0]

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)
