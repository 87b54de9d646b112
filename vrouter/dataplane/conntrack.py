"""Flow entries over time: writing a decided flow, TCP connection tracking (a closed pair goes),
removing a flow or a pair, and ageing idle flows out (docs/dataplane.md §8–9).
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.flow_table import (
    flow_delete,
)
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packets import (
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from vrouter.dataplane.state import (
    ACTION_FREE,
    FC_AGED,
    FC_CLOSED,
    FC_DELETED,
    TCP_ESTABLISHED,
    TCP_SEEN_SYN,
    TCP_SEEN_SYNACK,
    Counters,
    FlowState,
)
from vrouter.dataplane.state import TCP_FIN as STATE_FIN
from vrouter.dataplane.trace import (
    T_CLOSE,
    emit,
)


@kernel(cache=True, inline="always", _nrt=False)
def remove_flow(fs: FlowState, cnt: Counters, f: int) -> None:
    e = fs.entries[f]
    if e.action != ACTION_FREE:
        flow_delete(fs.keys, f)
        e.action = ACTION_FREE
        e.rflow = -1
        e.ecmp = -1
        e.tcp = 0
        e.held = 0
        e.flags = 0
        cnt.flows[FC_DELETED] += 1


@kernel(cache=True, inline="always", _nrt=False)
def remove_pair(fs: FlowState, cnt: Counters, flow: int) -> None:
    """Delete a flow and its reverse flow (TCP close, ageing)."""
    reverse = np.int64(fs.entries[flow].rflow)
    remove_flow(fs, cnt, np.int64(flow))
    if reverse >= 0:
        remove_flow(fs, cnt, reverse)


@kernel(cache=True, inline="always", _nrt=False)
def tcp_track(fs: FlowState, cnt: Counters, flow: int, flags: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """TCP state per flow; after FIN in both directions, or a RST, both flows go."""
    e = fs.entries[flow]
    reverse = np.int64(e.rflow)
    if flags & TCP_SYN:
        if flags & TCP_ACK:
            e.tcp |= TCP_SEEN_SYNACK
        else:
            e.tcp |= TCP_SEEN_SYN
    elif flags & TCP_ACK and reverse >= 0 and (fs.entries[reverse].tcp & TCP_SEEN_SYNACK):
        e.tcp |= TCP_ESTABLISHED
        fs.entries[reverse].tcp |= TCP_ESTABLISHED
    if flags & TCP_RST:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_CLOSE, 0, flow, 0, 0)
        remove_pair(fs, cnt, flow)
        cnt.flows[FC_CLOSED] += 1
        return
    if flags & TCP_FIN:
        e.tcp |= STATE_FIN
        if reverse >= 0 and (fs.entries[reverse].tcp & STATE_FIN):
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_CLOSE, 1, flow, 0, 0)
            remove_pair(fs, cnt, flow)
            cnt.flows[FC_CLOSED] += 1


@kernel(cache=True, inline="always", _nrt=False)
def write_flow(fs: FlowState, f: int, action: int, flags: int, dvrf: int, key_nh: int, nat_sip, nat_dip, nat_sport, nat_dport, ecmp: int, drop: int, route: int, now: int, gen: int) -> None:
    e = fs.entries[f]
    e.gen = gen
    e.action = action
    e.flags = flags
    e.dvrf = dvrf
    e.key_nh = key_nh
    e.nat_sip = nat_sip
    e.nat_dip = nat_dip
    e.nat_sport = nat_sport
    e.nat_dport = nat_dport
    e.ecmp = ecmp
    e.drop = drop
    e.route = route
    e.out_nh = -1
    e.tcp = 0
    e.held = 0
    e.packets = 0
    e.bytes = 0
    e.last = now


@kernel(cache=True, _nrt=False)
def age_flows(fs: FlowState, cnt: Counters, now: int, idle: int) -> int:
    """Remove every flow pair idle for longer than ``idle`` (simulated ns); returns pairs removed."""
    removed = 0
    n = fs.entries.shape[0]
    for f in range(n):
        e = fs.entries[f]
        if e.action == ACTION_FREE or now - e.last <= idle:
            continue
        r = np.int64(e.rflow)
        if r >= 0 and now - fs.entries[r].last <= idle:
            continue
        remove_pair(fs, cnt, f)
        removed += 1
    cnt.flows[FC_AGED] += removed
    return removed
