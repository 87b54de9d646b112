"""Where a packet leaves a node (spec/vrouter.md, docs/dataplane.md §6–7): the route lookup, the
ECMP member, the TTL step and the nexthop's output — a local interface, the host, a tunnel to
another node, the underlay — or a drop with its counted reason.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_choose, ecmp_hash, ecmp_member
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.lpm import lpm_lookup
from vrouter.dataplane.packed import (
    S_ECMP_FIELDS,
    S_ENCAP,
    KernelTables,
)
from vrouter.dataplane.packets import (
    DELIVERED,
    DROP_DISCARD,
    DROP_NO_ROUTE,
    DROP_TTL,
    DROPPED,
    FABRIC,
    HOST,
)
from vrouter.dataplane.state import (
    TX_BYTES,
    TX_PACKETS,
    VIF_DROPS,
    Counters,
    FlowState,
)
from vrouter.dataplane.tables import (
    NH_COMPOSITE,
    NH_DISCARD,
    NH_ENCAP,
    NH_FLAG_NO_ROUTE,
    NH_RECEIVE,
    NH_TUNNEL,
    NH_UNDERLAY,
    VIF_FABRIC,
    VIF_HOST,
)
from vrouter.dataplane.trace import (
    T_DELIVER,
    T_DROP,
    T_ECMP,
    T_HOST,
    T_NO_ROUTE,
    T_ROUTE,
    T_TTL,
    T_TUNNEL,
    T_UNDERLAY,
    emit,
)

OUTER_PORT_BASE = 49152  # the first outer UDP source port of an MPLSoUDP/VXLAN tunnel


@kernel(cache=True, _nrt=False)
def drop(cnt: Counters, p, reason: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Sets: outcome DROPPED and drop_reason; counts it per reason and on the ingress vif."""
    p.outcome = DROPPED
    p.drop_reason = reason
    cnt.drops[reason] += 1
    if p.in_vif >= 0 and p.in_vif < cnt.vifs.shape[0]:
        cnt.vifs[p.in_vif, VIF_DROPS] += 1
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_DROP, reason, 0, 0, 0)


@kernel(cache=True, inline="always", _nrt=False)
def route(kt: KernelTables, vrf: int, addr) -> tuple[int, int]:
    """(route id, nexthop) of the longest prefix of ``vrf`` holding ``addr``; (-1, -1) if none."""
    if vrf < 0:
        return -1, -1
    rid = np.int64(lpm_lookup(kt.lpm, vrf, np.uint32(addr)))
    if rid < 0:
        return -1, -1
    return rid, np.int64(kt.route_nh[rid])


@kernel(cache=True, inline="always", _nrt=False)
def port_map(kt: KernelTables, nh: int, proto: int, port: int) -> int:
    """The target port a floating IP's port map gives ``proto``/``port`` (-1: not mapped;
    the port itself when the floating IP has no map)."""
    n = kt.nhs[nh].pm_len
    if n == 0:
        return port
    first = kt.nhs[nh].pm_start
    for k in range(first, first + n):
        if kt.port_maps[k].proto == proto and kt.port_maps[k].port == port:
            return kt.port_maps[k].target
    return -1


@kernel(cache=True, inline="always", _nrt=False)
def _count_tx(cnt: Counters, vif: int, length: int) -> None:
    if vif < cnt.vifs.shape[0]:
        cnt.vifs[vif, TX_PACKETS] += 1
        cnt.vifs[vif, TX_BYTES] += length


@kernel(cache=True, inline="always", _nrt=False)
def output(kt: KernelTables, cnt: Counters, p, nh: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Uses the final (non-composite) nexthop and the flow-key hash (outer UDP source port).
    Sets outcome, out_vif/out_node/out_label."""
    kind = kt.nhs[nh].type
    if kind == NH_ENCAP:
        vif = kt.nhs[nh].vif
        if vif == VIF_HOST:
            p.outcome = HOST
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_HOST, 0, 0, 0, 0)
        else:
            p.outcome = DELIVERED
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_DELIVER, vif, 0, 0, 0)
        p.out_vif = vif
        _count_tx(cnt, vif, p.length)
    elif kind == NH_RECEIVE:
        p.outcome = HOST
        p.out_vif = VIF_HOST
        _count_tx(cnt, VIF_HOST, p.length)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_HOST, 0, 0, 0, 0)
    elif kind == NH_TUNNEL:
        p.outcome = FABRIC
        p.out_node = kt.nhs[nh].node
        p.out_label = kt.nhs[nh].label
        p.outer_sport = np.uint16(OUTER_PORT_BASE + (p.hash & np.uint32(0x3FFF)))
        _count_tx(cnt, VIF_FABRIC, p.length)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_TUNNEL, p.out_node, p.out_label, p.outer_sport, kt.scalars[S_ENCAP])
    elif kind == NH_UNDERLAY:
        p.outcome = FABRIC
        p.out_node = kt.nhs[nh].node
        p.out_label = -1
        _count_tx(cnt, VIF_FABRIC, p.length)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_UNDERLAY, p.out_node, 0, 0, 0)
    elif kind == NH_DISCARD and (kt.nhs[nh].flags & NH_FLAG_NO_ROUTE):
        drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
    else:
        drop(cnt, p, DROP_DISCARD, trace, tcount, i, node)


@kernel(cache=True, inline="always", _nrt=False)
def route_or_drop(kt: KernelTables, cnt: Counters, p, vrf: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> int:
    """The nexthop of the route to ``out_dip`` in ``vrf``; without a route the packet drops
    NoRoute and the answer is -1. Traced either way."""
    rid, nh = route(kt, vrf, p.out_dip)
    if rid < 0:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NO_ROUTE, vrf, p.out_dip, 0, 0)
        drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
        return -1
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ROUTE, vrf, rid, nh, 0)
    return np.int64(nh)


@kernel(cache=True, inline="always", _nrt=False)
def ecmp_member_or_drop(kt: KernelTables, cnt: Counters, p, composite: int, slot: int, member: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> int:
    """The chosen member of an ECMP composite (its slot recorded on the packet, traced); a
    composite without members drops the packet NoRoute and the answer is -1."""
    if member < 0:
        drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
        return -1
    p.ecmp_slot = slot
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ECMP, composite, slot, member, kt.nhs[composite].member_len)
    return np.int64(member)


@kernel(cache=True, _nrt=False)
def forward(kt: KernelTables, fs: FlowState, cnt: Counters, p, flow: int, vrf: int, label_nh: int, routed: bool, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Route the (rewritten) packet and hand it to its nexthop.

    Uses: out_dip, the flow's ECMP slot (kept, or chosen and stored when unset or a hole),
    ``vrf`` (the flow's destination VRF). A packet that arrived on a label for a local
    interface and was not rewritten goes straight to that interface. Sets: out_ttl (routed
    hops only), ecmp_slot, and the outcome through the nexthop.
    """
    nh = np.int64(-1)
    if label_nh >= 0 and p.out_dip == p.dip:
        nh = label_nh
    else:
        nh = route_or_drop(kt, cnt, p, vrf, trace, tcount, i, node)
        if nh < 0:
            return
    if kt.nhs[nh].type == NH_COMPOSITE:
        slot = np.int64(-1)
        if flow >= 0:
            slot = np.int64(fs.entries[flow].ecmp)
        member = ecmp_member(kt, nh, slot)
        if member < 0:
            h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])
            slot, member = ecmp_choose(kt, nh, h)
            if flow >= 0:
                fs.entries[flow].ecmp = slot
        nh = ecmp_member_or_drop(kt, cnt, p, nh, slot, member, trace, tcount, i, node)
        if nh < 0:
            return
    if routed:
        if p.out_ttl <= 1:
            drop(cnt, p, DROP_TTL, trace, tcount, i, node)
            return
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_TTL, p.out_ttl, p.out_ttl - 1, 0, 0)
        p.out_ttl -= 1
    output(kt, cnt, p, nh, trace, tcount, i, node)
