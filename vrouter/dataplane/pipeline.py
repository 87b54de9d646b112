"""The vRouter forwarding pipeline of one node, over a whole batch of packets (spec/vrouter.md §2–4).

Stages, in the order a packet meets them (each says what it uses and sets, and writes its
own trace event); the exact rules are in ``docs/dataplane.md``:

1. ``ingress``   — uses in_vif/in_label; sets the VRF, the flow-key nexthop, and for an
   encapsulated packet the nexthop its label (or VNI) names.
2. flow lookup   — uses the key (key nexthop, addresses, protocol, ports); hit or miss.
3. ``flow_setup`` (miss: the agent's slow path, run in the same batch) — route lookup, ECMP
   choice, floating-IP DNAT or kube-proxy NodePort NAT, VN-policy ACLs of the source and
   (for a local destination) destination VN, the sender's egress and the receiver's
   ingress NetworkPolicy; installs the forward **and** the reverse flow.
4. hit           — the flow's action: DROP (its reason), HOLD, FORWARD or NAT; NAT rewrites
   the header with the reverse flow's key (copied into the entry when the pair is made).
   A forward flow decided under an older configuration (table generation) is decided again
   first, keeping its ECMP slot while that slot's member lives — the agent's re-evaluation
   of flows after a route or policy change.
5. ``forward``   — route lookup in the flow's destination VRF, the flow's ECMP slot, TTL,
   and output: a local interface, the host, a tunnel to another node (MPLSoUDP, MPLSoGRE or
   VXLAN), the underlay, or a drop.

Every packet ends delivered, sent to the fabric, held, or dropped with a counted reason.

For speed, :func:`process_batch` goes over the batch three times, the way VPP's graph
nodes work on vectors: (1) ingress and the flow key's hash for every packet, prefetching
its bucket; (2) the bucket lookups, prefetching the flow entries; (3) each packet's
processing. A packet whose flow is established, current and allowed takes the fast path
(``_takes_fast_path``, ``_fast_path``); any other (a miss, a HOLD, a drop flow, a TCP
SYN/FIN/RST, a flow from an older configuration, or tracing) takes :func:`general_packet`,
the stages above one by one. Both give the same result. ``flow_setup`` is written as its
numbered steps (``_destination``, ``_local_nat``, ``_policies``, ``_install_reverse``;
``_nat_flags`` serves the forward and the reverse flow); those helpers, like the passes'
(``_enter``), are inlined into their one caller, so the split costs nothing at run time.

``process_batch`` releases the GIL: nodes have separate tables and flow state, so the
fabric (or a benchmark) may run several nodes' batches in parallel threads.

All kernels are compiled without numba's reference counting (``_nrt=False``): they never
allocate, and counting references on the tables' arrays at every call costs more than the
forwarding itself.

What is inlined, and why: numba passes a call's arrays as their unpacked fields, so a call
that takes the node's tables, the flow state and the counters copies about two kilobytes
of arguments; ``general_packet`` is therefore inlined into ``process_batch`` (from its one
call site). But compile time grows faster than the code it compiles: with ``flow_setup``
inlined too, ``process_batch`` took 104 s and 3.1 GB to compile; with ``flow_setup``,
``forward`` (the slow path's routing) and ``_stateless`` (the gateway's) as ordinary calls,
38 s and 0.6 GB, and the same packets and flow setups per second (one call per flow setup,
none on the fast path; the measurements are in docs/performance.md). ``emit`` and ``_drop``
are ordinary calls too: they sit on cold paths (tracing, drops) at dozens of sites.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_choose, ecmp_hash, ecmp_member
from vrouter.dataplane.flow_table import (
    flow_delete,
    flow_find,
    flow_find_or_insert,
    flow_hash,
    pack_key,
)
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.lpm import lpm_lookup
from vrouter.dataplane.packed import (
    S_ECMP_FIELDS,
    S_ENCAP,
    S_GENERATION,
    S_NODE,
    KernelTables,
)
from vrouter.dataplane.packets import (
    DELIVERED,
    DROP_DISCARD,
    DROP_FLOW_QUEUE_LIMIT,
    DROP_FLOW_TABLE_FULL,
    DROP_INVALID_LABEL,
    DROP_INVALID_VIF,
    DROP_NO_BACKEND,
    DROP_NO_PORT_MAP,
    DROP_NO_ROUTE,
    DROP_OUT_POLICY,
    DROP_OUT_SG,
    DROP_POLICY,
    DROP_SG,
    DROP_TTL,
    DROPPED,
    FABRIC,
    HELD,
    HOST,
    PENDING,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from vrouter.dataplane.policy import acl_decide, program_decide
from vrouter.dataplane.prefetch import prefetch
from vrouter.dataplane.state import (
    ACTION_DROP,
    ACTION_FORWARD,
    ACTION_FREE,
    ACTION_HOLD,
    ACTION_NAT,
    FC_AGED,
    FC_CLOSED,
    FC_CREATED,
    FC_DELETED,
    FC_FULL,
    FC_HITS,
    FC_MISSES,
    FC_SETUPS,
    FLAG_DNAT,
    FLAG_DPAT,
    FLAG_OUT_ECMP,
    FLAG_REVERSE,
    FLAG_SNAT,
    FLAG_SPAT,
    FLAG_VRF_TRANSLATE,
    REF_ACL,
    REF_EGRESS,
    REF_INGRESS,
    REF_NAT,
    RX_BYTES,
    RX_PACKETS,
    TCP_ESTABLISHED,
    TCP_SEEN_SYN,
    TCP_SEEN_SYNACK,
    TX_BYTES,
    TX_PACKETS,
    VIF_DROPS,
    Counters,
    FlowState,
)
from vrouter.dataplane.state import TCP_FIN as STATE_FIN
from vrouter.dataplane.tables import (
    ENCAP_VXLAN,
    NH_COMPOSITE,
    NH_DISCARD,
    NH_ENCAP,
    NH_FLAG_FIP,
    NH_FLAG_NO_ROUTE,
    NH_FLAG_POLICY,
    NH_RECEIVE,
    NH_TUNNEL,
    NH_UNDERLAY,
    PROTO_ICMP,
    PROTO_TCP,
    VIF_FABRIC,
    VIF_HOST,
    VIF_VM,
)
from vrouter.dataplane.trace import (
    T_ACL,
    T_CLOSE,
    T_DELIVER,
    T_DNAT,
    T_DROP,
    T_ECMP,
    T_ENTER_LABEL,
    T_ENTER_VIF,
    T_ENTER_VNI,
    T_FLOW_HIT,
    T_FLOW_MISS,
    T_FLOWS,
    T_HOLD,
    T_HOST,
    T_KUBE_PROXY,
    T_LABEL_DELIVER,
    T_NAT,
    T_NAT_PORTS,
    T_NO_ROUTE,
    T_REEVALUATE,
    T_ROUTE,
    T_SG,
    T_TTL,
    T_TUNNEL,
    T_UNDERLAY,
    emit,
)

# ACL kinds in T_ACL events
ACL_SOURCE_VN = 0
ACL_DEST_VN = 1
# SG directions in T_SG events
SG_SENDER_EGRESS = 0
SG_RECEIVER_INGRESS = 1
# what ingress leaves for the rest of the pipeline
DONE = 0
STATELESS = 1
FLOW_PATH = 2
CHUNK = 128  # packets per vector: its buckets and entries, prefetched, are still in cache when used
OUTER_PORT_BASE = 49152


@kernel(cache=True, _nrt=False)
def _drop(cnt: Counters, p, reason: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Sets: outcome DROPPED and drop_reason; counts it per reason and on the ingress vif."""
    p.outcome = DROPPED
    p.drop_reason = reason
    cnt.drops[reason] += 1
    if p.in_vif >= 0 and p.in_vif < cnt.vifs.shape[0]:
        cnt.vifs[p.in_vif, VIF_DROPS] += 1
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_DROP, reason, 0, 0, 0)


@kernel(cache=True, inline="always", _nrt=False)
def _route(kt: KernelTables, vrf: int, addr) -> tuple[int, int]:
    """(route id, nexthop) of the longest prefix of ``vrf`` holding ``addr``; (-1, -1) if none."""
    if vrf < 0:
        return -1, -1
    rid = np.int64(lpm_lookup(kt.lpm, vrf, np.uint32(addr)))
    if rid < 0:
        return -1, -1
    return rid, np.int64(kt.route_nh[rid])


@kernel(cache=True, inline="always", _nrt=False)
def _port_map(kt: KernelTables, nh: int, proto: int, port: int) -> int:
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
def _output(kt: KernelTables, cnt: Counters, p, nh: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
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
        _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
    else:
        _drop(cnt, p, DROP_DISCARD, trace, tcount, i, node)


@kernel(cache=True, inline="always", _nrt=False)
def _route_or_drop(kt: KernelTables, cnt: Counters, p, vrf: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> int:
    """The nexthop of the route to ``out_dip`` in ``vrf``; without a route the packet drops
    NoRoute and the answer is -1. Traced either way."""
    rid, nh = _route(kt, vrf, p.out_dip)
    if rid < 0:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NO_ROUTE, vrf, p.out_dip, 0, 0)
        _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
        return -1
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ROUTE, vrf, rid, nh, 0)
    return np.int64(nh)


@kernel(cache=True, inline="always", _nrt=False)
def _ecmp_member_or_drop(kt: KernelTables, cnt: Counters, p, composite: int, slot: int, member: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> int:
    """The chosen member of an ECMP composite (its slot recorded on the packet, traced); a
    composite without members drops the packet NoRoute and the answer is -1."""
    if member < 0:
        _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
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
        nh = _route_or_drop(kt, cnt, p, vrf, trace, tcount, i, node)
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
        nh = _ecmp_member_or_drop(kt, cnt, p, nh, slot, member, trace, tcount, i, node)
        if nh < 0:
            return
    if routed:
        if p.out_ttl <= 1:
            _drop(cnt, p, DROP_TTL, trace, tcount, i, node)
            return
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_TTL, p.out_ttl, p.out_ttl - 1, 0, 0)
        p.out_ttl -= 1
    _output(kt, cnt, p, nh, trace, tcount, i, node)


@kernel(cache=True, inline="always", _nrt=False)
def _remove_one(fs: FlowState, cnt: Counters, f: int) -> None:
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
def _remove_pair(fs: FlowState, cnt: Counters, flow: int) -> None:
    """Delete a flow and its reverse flow (TCP close, ageing)."""
    reverse = np.int64(fs.entries[flow].rflow)
    _remove_one(fs, cnt, np.int64(flow))
    if reverse >= 0:
        _remove_one(fs, cnt, reverse)


@kernel(cache=True, inline="always", _nrt=False)
def _tcp_track(fs: FlowState, cnt: Counters, flow: int, flags: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
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
        _remove_pair(fs, cnt, flow)
        cnt.flows[FC_CLOSED] += 1
        return
    if flags & TCP_FIN:
        e.tcp |= STATE_FIN
        if reverse >= 0 and (fs.entries[reverse].tcp & STATE_FIN):
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_CLOSE, 1, flow, 0, 0)
            _remove_pair(fs, cnt, flow)
            cnt.flows[FC_CLOSED] += 1


@kernel(cache=True, inline="always", _nrt=False)
def _write_flow(fs: FlowState, f: int, action: int, flags: int, dvrf: int, key_nh: int, nat_sip, nat_dip, nat_sport, nat_dport, ecmp: int, drop: int, route: int, now: int, gen: int) -> None:
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


@kernel(cache=True, inline="always", _nrt=False)
def _destination(kt: KernelTables, p, vrf: int, label_nh: int, keep_slot: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int):
    """Flow setup, 1: where the packet goes — the label's nexthop, or the route's (for an ECMP
    composite, the member of ``keep_slot`` while it holds one, else the hash's).
    Returns (drop reason or 0, route id, destination nexthop, destination VN, ECMP slot)."""
    reason = 0
    route_id = np.int64(-1)
    dest_nh = np.int64(-1)
    dst_vn = np.int64(-1)
    slot = np.int64(-1)
    if label_nh >= 0:
        return reason, route_id, np.int64(label_nh), np.int64(kt.nhs[label_nh].dst_vn), slot
    route_id, nh = _route(kt, vrf, p.dip)
    if route_id < 0:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NO_ROUTE, vrf, p.dip, 0, 0)
        return DROP_NO_ROUTE, route_id, dest_nh, dst_vn, slot
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ROUTE, vrf, route_id, nh, 0)
    dst_vn = np.int64(kt.nhs[nh].dst_vn)
    kind = kt.nhs[nh].type
    if kind == NH_DISCARD:
        reason = DROP_NO_ROUTE if (kt.nhs[nh].flags & NH_FLAG_NO_ROUTE) else DROP_DISCARD
    elif kind == NH_COMPOSITE:
        kept = ecmp_member(kt, nh, keep_slot)
        if kept >= 0:
            slot, dest_nh = np.int64(keep_slot), np.int64(kept)
        else:
            h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])
            slot, dest_nh = ecmp_choose(kt, nh, h)
        if dest_nh < 0:
            reason = DROP_NO_ROUTE
        elif trace.shape[0]:
            emit(trace, tcount, i, node, T_ECMP, nh, slot, dest_nh, kt.nhs[nh].member_len)
    else:
        dest_nh = nh
    return reason, route_id, dest_nh, dst_vn, slot


@kernel(cache=True, inline="always", _nrt=False)
def _local_nat(kt: KernelTables, p, vrf: int, dest_nh: int, dst_vn: int, label_nh: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int):
    """Flow setup, 2: NAT on this node — a floating IP of a local interface (DNAT and DPAT to
    the pod), or a NodePort of this host (kube-proxy's DNAT, and SNAT when the Service asks).
    Returns (drop reason or 0, destination nexthop, destination VN, new source address, new
    destination address, new destination port, destination VRF, NAT rule ref, SNATed?)."""
    reason = 0
    dip = p.dip
    dport = p.dport
    proto = p.proto
    new_sip = p.sip
    new_dip = dip
    new_dport = np.int64(dport)
    dvrf = vrf
    ref_nat = np.int64(-1)
    snat = False
    kind = kt.nhs[dest_nh].type
    if kind == NH_ENCAP and (kt.nhs[dest_nh].flags & NH_FLAG_FIP) and kt.nhs[dest_nh].fip == dip:
        target = np.int64(dport) if proto == PROTO_ICMP else np.int64(_port_map(kt, dest_nh, proto, dport))
        if target < 0:
            reason = DROP_NO_PORT_MAP
        else:
            new_dip = kt.nhs[dest_nh].dst_ip
            new_dport = target
            dvrf = kt.vifs[kt.nhs[dest_nh].vif].vrf
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_DNAT, dip, new_dip, dport, new_dport)
    elif kind == NH_RECEIVE and label_nh < 0 and dip == kt.node_ip[node]:
        for r in range(kt.node_ports.shape[0]):
            rule = kt.node_ports[r]
            if rule.proto == proto and rule.port == dport:
                ref_nat = np.int64(rule.ref)
                n = rule.b_len
                if n == 0:
                    reason = DROP_NO_BACKEND
                    break
                h = ecmp_hash(p.sip, dip, proto, p.sport, dport, 31)
                b = rule.b_start + np.int64(h % np.uint32(n))
                new_dip = kt.node_port_backends[b].ip
                new_dport = np.int64(kt.node_port_backends[b].port)
                if rule.snat:
                    new_sip = kt.node_ip[node]
                    snat = True
                dvrf = kt.vifs[VIF_HOST].vrf
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_KUBE_PROXY, ref_nat, new_dip, new_dport, new_sip if snat else 0)
                rid2, nh2 = _route(kt, dvrf, new_dip)
                if rid2 < 0 or kt.nhs[nh2].type == NH_DISCARD:
                    reason = DROP_NO_ROUTE
                else:
                    if trace.shape[0]:
                        emit(trace, tcount, i, node, T_ROUTE, dvrf, rid2, nh2, 0)
                    dest_nh = nh2
                    dst_vn = np.int64(kt.nhs[nh2].dst_vn)
                break
    return reason, dest_nh, dst_vn, new_sip, new_dip, new_dport, dvrf, ref_nat, snat


@kernel(cache=True, inline="always", _nrt=False)
def _policies(
    kt: KernelTables, p, vrf: int, src_vif: int, dst_vn: int, dest_local_vif: int, peer_ip, peer_port: int, new_sip, new_dport: int,
    trace: np.ndarray, tcount: np.ndarray, i: int, node: int,
):
    """Flow setup, 3: the source VN's ACL, the destination VN's (local destination), the
    sender's egress and the local receiver's ingress programs; the first denial decides.
    Returns (drop reason or 0, ACL ref, egress ref, ingress ref)."""
    reason = 0
    proto = p.proto
    sport = p.sport
    dport = p.dport
    ref_acl = np.int64(-1)
    ref_egress = np.int64(-1)
    ref_ingress = np.int64(-1)
    src_vn = np.int64(-1)
    if src_vif >= 0:
        src_vn = np.int64(kt.vifs[src_vif].vrf)
    else:
        rs, ns = _route(kt, vrf, p.sip)
        if rs >= 0:
            src_vn = np.int64(kt.nhs[ns].dst_vn)
    if src_vif >= 0:
        ok, ref_acl = acl_decide(kt, src_vn, src_vn, dst_vn, proto, sport, dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ACL, src_vn, ref_acl, 1 if ok else 0, ACL_SOURCE_VN)
        if not ok:
            return DROP_POLICY, ref_acl, ref_egress, ref_ingress
    if dest_local_vif >= 0 and dst_vn != src_vn:
        ok, ref = acl_decide(kt, dst_vn, src_vn, dst_vn, proto, sport, dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ACL, dst_vn, ref, 1 if ok else 0, ACL_DEST_VN)
        if ref >= 0:
            ref_acl = ref
        if not ok:
            return DROP_OUT_POLICY, ref_acl, ref_egress, ref_ingress
    if src_vif >= 0 and kt.vifs[src_vif].type == VIF_VM:
        program = kt.vifs[src_vif].out_prog
        ok, ref_egress = program_decide(kt, program, peer_ip, proto, peer_port)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_SG, SG_SENDER_EGRESS, ref_egress, 1 if ok else 0, program)
        if not ok:
            return DROP_OUT_SG, ref_acl, ref_egress, ref_ingress
    if dest_local_vif >= 0:
        program = kt.vifs[dest_local_vif].in_prog
        ok, ref_ingress = program_decide(kt, program, np.uint32(new_sip), proto, new_dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_SG, SG_RECEIVER_INGRESS, ref_ingress, 1 if ok else 0, program)
        if not ok:
            reason = DROP_SG
    return reason, ref_acl, ref_egress, ref_ingress


@kernel(cache=True, inline="always", _nrt=False)
def _nat_flags(source_changed: bool, destination_changed: bool, sport_changed: bool, dport_changed: bool, vrf_changed: bool) -> int:
    """A flow's NAT flags from what its rewrite changes. The reverse flow rewrites the other
    way round: its source changes where the forward flow's destination did, and so on."""
    flags = 0
    if source_changed:
        flags |= FLAG_SNAT
    if destination_changed:
        flags |= FLAG_DNAT
    if sport_changed:
        flags |= FLAG_SPAT
    if dport_changed:
        flags |= FLAG_DPAT
    if vrf_changed:
        flags |= FLAG_VRF_TRANSLATE
    return flags


@kernel(cache=True, inline="always", _nrt=False)
def _reverse_key_nh(kt: KernelTables, dest_nh: int, dest_local_vif: int, src_vif: int, key_nh: int, snat: bool) -> int:
    """Where replies to a flow will enter this node: the reverse flow's key nexthop."""
    if dest_local_vif >= 0:
        return np.int64(kt.vifs[dest_local_vif].nh)
    if kt.nhs[dest_nh].type == NH_RECEIVE:
        return np.int64(kt.vifs[VIF_HOST].nh)
    if snat:
        return np.int64(kt.vifs[VIF_FABRIC].nh)
    if src_vif >= 0 and kt.vifs[src_vif].type == VIF_VM:
        return np.int64(key_nh)
    return np.int64(kt.vifs[VIF_FABRIC].nh)


@kernel(cache=True, inline="always", _nrt=False)
def _install_reverse(
    kt: KernelTables, fs: FlowState, cnt: Counters, p, f: int, action: int, vrf: int, dvrf: int, key_nh: int, src_vif: int,
    dest_nh: int, dest_local_vif: int, snat: bool, new_sip, new_dip, new_sport: int, new_dport: int, now: int, generation: int,
    trace: np.ndarray, tcount: np.ndarray, i: int, node: int,
) -> int:
    """Flow setup, 4b: the reverse flow of an allowed flow ``f``, keyed where the replies will
    enter and carrying the inverse NAT. Returns ``f``, or -1 when the table is full (then
    ``f`` goes too and the packet drops FLOW_TABLE_FULL)."""
    sip = p.sip
    dip = p.dip
    proto = p.proto
    sport = p.sport
    dport = p.dport
    rkey = _reverse_key_nh(kt, dest_nh, dest_local_vif, src_vif, key_nh, snat)
    r_sport = new_dport
    r_dport = new_sport
    if proto == PROTO_ICMP:
        r_sport = new_sport
        r_dport = new_dport
    w0, w1, w2, w3 = pack_key(rkey, new_dip, new_sip, proto, r_sport, r_dport)
    found, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
    r = np.int64(found)
    if r < 0:
        flow_delete(fs.keys, f)
        fs.entries[f].action = ACTION_FREE
        cnt.flows[FC_DELETED] += 1
        cnt.flows[FC_FULL] += 1
        _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
        return -1
    if created:
        cnt.flows[FC_CREATED] += 1
    elif fs.entries[r].rflow >= 0 and fs.entries[r].rflow != f:
        # a stale pair used this key: it loses its partner
        fs.entries[fs.entries[r].rflow].rflow = -1
    out_sport = np.int64(dport)
    out_dport = np.int64(sport)
    if proto == PROTO_ICMP:
        out_sport = np.int64(sport)
        out_dport = np.int64(dport)
    rflags = FLAG_REVERSE | _nat_flags(new_dip != dip, new_sip != sip, new_dport != dport, new_sport != sport, dvrf != vrf)
    # the pair's rules live on the forward flow only: one refs row touched per setup, not two
    _write_flow(fs, r, action, rflags, vrf, rkey, dip, sip, out_sport, out_dport, -1, 0, -1, now, generation)
    fs.entries[f].rflow = r
    fs.entries[r].rflow = f
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_FLOWS, f, r, action, 0)
    return f


@kernel(cache=True, _nrt=False)
def flow_setup(kt: KernelTables, fs: FlowState, cnt: Counters, p, forward_index: int, vrf: int, key_nh: int, src_vif: int, label_nh: int, now: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int, keep_slot: int) -> int:
    """The agent's decision for a new flow, and the installation of both flows.

    Uses: the original header, the VRF and key nexthop from ingress, the source interface
    (or the label nexthop of an encapsulated packet). Decides: destination (route, ECMP
    member), NAT (floating-IP DNAT+DPAT for a local member, kube-proxy DNAT(+SNAT) for a
    NodePort on this node), VN-policy ACLs, NetworkPolicy egress (sender) and ingress
    (receiver, when local) — the first denial gives the drop reason. Installs the forward
    flow (DROP with its reason when denied) and, when allowed, the reverse flow carrying
    the inverse NAT. Returns the forward flow index, or -1 when the table is full.
    ``keep_slot`` (re-evaluating a flow after a configuration change): the ECMP slot the
    flow had, kept while it still holds a member, so surviving members keep their flows.
    """
    sip = p.sip
    dip = p.dip
    proto = p.proto
    sport = p.sport
    dport = p.dport
    generation = kt.scalars[S_GENERATION]
    # 1. where does it go?
    reason, route_id, dest_nh, dst_vn, slot = _destination(kt, p, vrf, label_nh, keep_slot, trace, tcount, i, node)
    # 2. NAT on this node: a floating IP of a local interface, or a NodePort of this host
    new_sip = sip
    new_dip = dip
    new_sport = np.int64(sport)
    new_dport = np.int64(dport)
    dvrf = vrf
    ref_nat = np.int64(-1)
    snat = False
    if reason == 0:
        reason, dest_nh, dst_vn, new_sip, new_dip, new_dport, dvrf, ref_nat, snat = _local_nat(kt, p, vrf, dest_nh, dst_vn, label_nh, trace, tcount, i, node)
    peer_ip = np.uint32(dip)  # who the sender's egress rules see (after ECMP / DNAT)
    peer_port = np.int64(dport)
    if reason == 0:
        peer_ip = np.uint32(new_dip)
        peer_port = new_dport
        if new_dip == dip and kt.nhs[dest_nh].dst_ip != 0 and slot >= 0:
            # an ECMP member on another node: its own address and port, as Kubernetes' policies see them
            peer_ip = kt.nhs[dest_nh].dst_ip
            peer_port = np.int64(dport) if proto == PROTO_ICMP else np.int64(_port_map(kt, dest_nh, proto, dport))
            if peer_port < 0:
                reason = DROP_NO_PORT_MAP
    dest_local_vif = np.int64(-1)
    if reason == 0 and kt.nhs[dest_nh].type == NH_ENCAP:
        v = np.int64(kt.nhs[dest_nh].vif)
        if v >= 0 and kt.vifs[v].type == VIF_VM:
            dest_local_vif = v
    # 3. policy: the source VN's ACL, the destination VN's (local destination), SGs
    ref_acl = np.int64(-1)
    ref_egress = np.int64(-1)
    ref_ingress = np.int64(-1)
    if reason == 0:
        reason, ref_acl, ref_egress, ref_ingress = _policies(
            kt, p, vrf, src_vif, dst_vn, dest_local_vif, peer_ip, peer_port, new_sip, new_dport, trace, tcount, i, node
        )
    # 4. install the forward flow (and the reverse one when allowed)
    rewritten = new_sip != sip or new_dip != dip or new_sport != sport or new_dport != dport
    action = ACTION_DROP if reason else (ACTION_NAT if rewritten else ACTION_FORWARD)
    flags = _nat_flags(new_sip != sip, new_dip != dip, new_sport != sport, new_dport != dport, dvrf != vrf)
    f = np.int64(forward_index)
    if f >= 0 and fs.entries[f].rflow >= 0:
        _remove_one(fs, cnt, np.int64(fs.entries[f].rflow))  # decided again: the old reverse flow goes
        fs.entries[f].rflow = -1
    if f < 0:
        w0, w1, w2, w3 = pack_key(key_nh, sip, dip, proto, sport, dport)
        found, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
        f = np.int64(found)
        if f < 0:
            cnt.flows[FC_FULL] += 1
            _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
            return -1
        cnt.flows[FC_CREATED] += 1
    cnt.flows[FC_SETUPS] += 1
    _write_flow(fs, f, action, flags, dvrf, key_nh, new_sip, new_dip, new_sport, new_dport, slot, reason, route_id, now, generation)
    fs.refs[f, REF_ACL] = ref_acl
    fs.refs[f, REF_EGRESS] = ref_egress
    fs.refs[f, REF_INGRESS] = ref_ingress
    fs.refs[f, REF_NAT] = ref_nat
    fs.entries[f].rflow = -1
    if action == ACTION_DROP:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOWS, f, -1, action, 0)
        return f
    return _install_reverse(
        kt, fs, cnt, p, f, action, vrf, dvrf, key_nh, src_vif, dest_nh, dest_local_vif, snat,
        new_sip, new_dip, new_sport, new_dport, now, generation, trace, tcount, i, node,
    )


@kernel(cache=True, _nrt=False)
def _stateless(kt: KernelTables, cnt: Counters, p, vrf: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """A packet on an interface without the policy flag (the SDN gateway): routed, no flow."""
    nh = _route_or_drop(kt, cnt, p, vrf, trace, tcount, i, node)
    if nh < 0:
        return
    h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])
    p.hash = h
    if kt.nhs[nh].type == NH_COMPOSITE:
        slot, member = ecmp_choose(kt, nh, h)
        nh = _ecmp_member_or_drop(kt, cnt, p, nh, slot, member, trace, tcount, i, node)
        if nh < 0:
            return
    if p.out_ttl <= 1:
        _drop(cnt, p, DROP_TTL, trace, tcount, i, node)
        return
    p.out_ttl -= 1
    _output(kt, cnt, p, nh, trace, tcount, i, node)


@kernel(cache=True, inline="always", _nrt=False)
def _vxlan_local_member(kt: KernelTables, nh: int, h: np.uint32) -> int:
    """On arrival by VNI at a floating IP: one of this node's members (by hash), or -1."""
    start = kt.nhs[nh].member_start
    n = kt.nhs[nh].member_len
    local = 0
    for s in range(n):
        m = kt.members[start + s]
        if m >= 0 and kt.nhs[m].type == NH_ENCAP:
            local += 1
    if local == 0:
        return -1
    pick = np.int64(h % np.uint32(local))
    for s in range(n):
        m = kt.members[start + s]
        if m >= 0 and kt.nhs[m].type == NH_ENCAP:
            if pick == 0:
                return m
            pick -= 1
    return -1  # pragma: no cover


@kernel(cache=True, inline="always", _nrt=False)
def ingress(kt: KernelTables, cnt: Counters, p, i: int, node: int, trace: np.ndarray, tcount: np.ndarray) -> int:
    """Uses in_vif / in_label. Sets p.vrf, p.key_nh, p.label_nh. Returns DONE (dropped or
    delivered here), STATELESS (route without a flow) or FLOW_PATH."""
    p.key_nh = -1
    p.label_nh = -1
    vif = np.int64(p.in_vif)
    if vif < 0 or vif >= kt.vifs.shape[0] or kt.vifs[vif].type < 0:
        _drop(cnt, p, DROP_INVALID_VIF, trace, tcount, i, node)
        return DONE
    if p.in_label >= 0:
        if kt.scalars[S_ENCAP] == ENCAP_VXLAN:
            if p.in_label >= kt.vni_vrf.shape[0] or kt.vni_vrf[p.in_label] < 0:
                _drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
                return DONE
            vrf = np.int64(kt.vni_vrf[p.in_label])
            p.vrf = vrf
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_ENTER_VNI, p.in_label, vrf, 0, 0)
            rid, nh = _route(kt, vrf, p.dip)
            if rid >= 0 and kt.nhs[nh].type == NH_COMPOSITE:
                nh = np.int64(_vxlan_local_member(kt, nh, ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])))
            if rid >= 0 and nh >= 0 and kt.nhs[nh].type == NH_ENCAP and (kt.nhs[nh].flags & NH_FLAG_POLICY):
                p.label_nh = nh
                p.vrf = kt.nhs[nh].vrf
                p.key_nh = nh
                return FLOW_PATH
            return STATELESS
        if p.in_label >= kt.mpls_nh.shape[0] or kt.mpls_nh[p.in_label] < 0:
            _drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
            return DONE
        nh = np.int64(kt.mpls_nh[p.in_label])
        p.vrf = kt.nhs[nh].vrf
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ENTER_LABEL, p.in_label, nh, p.vrf, 0)
        if kt.nhs[nh].type == NH_ENCAP:
            if kt.nhs[nh].flags & NH_FLAG_POLICY:
                p.label_nh = nh
                p.key_nh = nh
                return FLOW_PATH
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_LABEL_DELIVER, 0, 0, 0, 0)
            _output(kt, cnt, p, nh, trace, tcount, i, node)
            return DONE
        return STATELESS
    p.vrf = kt.vifs[vif].vrf
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ENTER_VIF, vif, p.vrf, kt.vifs[vif].nh, 0)
    if kt.vifs[vif].policy == 0:
        return STATELESS
    p.key_nh = kt.vifs[vif].nh
    return FLOW_PATH


@kernel(cache=True, inline="always", _nrt=False)
def general_packet(kt: KernelTables, fs: FlowState, cnt: Counters, p, i: int, now: int, setups: int, max_setups: int, hold_queue: int, trace: np.ndarray, tcount: np.ndarray) -> int:
    """One packet on the flow path, stage by stage (any case the fast path does not take).
    Returns the flow setups it did (0 or 1)."""
    node = np.int64(kt.scalars[S_NODE])
    vrf = np.int64(p.vrf)
    key_nh = np.int64(p.key_nh)
    label_nh = np.int64(p.label_nh)
    src_vif = np.int64(p.in_vif) if p.in_label < 0 else np.int64(-1)
    generation = kt.scalars[S_GENERATION]
    done = 0
    p.flow = -1  # set again only where a flow takes the packet (§4, HOLD)
    w0, w1, w2, w3 = pack_key(key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
    h = flow_hash(w0, w1, w2, w3)
    p.hash = h
    f = np.int64(flow_find(fs.keys, w0, w1, w2, w3, h))
    # the agent's decision is taken at one place below (one call site: the call is costly)
    decide = False
    keep_slot = np.int64(-1)
    if f >= 0 and fs.entries[f].action == ACTION_HOLD:
        if setups < max_setups:
            decide = True
        else:
            if fs.entries[f].held < hold_queue:
                fs.entries[f].held += 1
                p.outcome = HELD
                p.flow = f
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
            else:
                _drop(cnt, p, DROP_FLOW_QUEUE_LIMIT, trace, tcount, i, node)
            return 0
    elif f >= 0:
        cnt.flows[FC_HITS] += 1
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOW_HIT, f, fs.entries[f].action, fs.entries[f].rflow, 0)
        if fs.entries[f].gen != generation:
            if fs.entries[f].flags & FLAG_REVERSE:
                fs.entries[f].gen = generation  # replies of an allowed flow stay allowed
                fs.entries[f].out_nh = -1  # …but are routed with the current tables
            else:
                # the configuration changed since this flow was decided: decide again
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_REEVALUATE, f, fs.entries[f].gen, generation, 0)
                decide = True
                keep_slot = np.int64(fs.entries[f].ecmp)
    else:
        cnt.flows[FC_MISSES] += 1
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOW_MISS, key_nh, 0, 0, 0)
        if setups >= max_setups:
            found, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, h)
            f = np.int64(found)
            if f < 0:
                cnt.flows[FC_FULL] += 1
                _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
                return 0
            cnt.flows[FC_CREATED] += 1
            _write_flow(fs, f, ACTION_HOLD, 0, vrf, key_nh, 0, 0, 0, 0, -1, 0, -1, now, generation)
            for k in range(4):
                fs.refs[f, k] = -1
            fs.entries[f].rflow = -1
            fs.entries[f].held = 1
            p.outcome = HELD
            p.flow = f
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
            return 0
        decide = True
    if decide:
        done = 1
        f = flow_setup(kt, fs, cnt, p, f, vrf, key_nh, src_vif, label_nh, now, trace, tcount, i, node, keep_slot)
    if f < 0:
        return done
    # --- the flow's action ------------------------------------------------------------
    e = fs.entries[f]
    p.flow = f
    e.packets += 1
    e.bytes += p.length
    e.last = now
    action = e.action
    if action == ACTION_DROP:
        _drop(cnt, p, e.drop, trace, tcount, i, node)
        return done
    if action == ACTION_NAT:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NAT, p.out_sip, e.nat_sip, p.out_dip, e.nat_dip)
            emit(trace, tcount, i, node, T_NAT_PORTS, p.out_sport, e.nat_sport, p.out_dport, e.nat_dport)
        p.out_sip = e.nat_sip
        p.out_dip = e.nat_dip
        p.out_sport = e.nat_sport
        p.out_dport = e.nat_dport
    forward(kt, fs, cnt, p, f, e.dvrf, label_nh, label_nh < 0, trace, tcount, i, node)
    if p.proto == PROTO_TCP and fs.entries[f].action != ACTION_FREE:
        _tcp_track(fs, cnt, f, p.tcp_flags, trace, tcount, i, node)
    return done


@kernel(cache=True, inline="always", _nrt=False)
def _enter(kt: KernelTables, cnt: Counters, p, i: int, node: int, trace: np.ndarray, tcount: np.ndarray, keys: np.ndarray, n_buckets: int) -> None:
    """Pass 1 for one packet of this node: entry (§1), ingress, and the flow key's hash, whose
    bucket is prefetched for pass 2. ``key_nh`` is left -1 when no flow lookup follows."""
    if p.outcome == PENDING:
        p.out_sip = p.sip
        p.out_dip = p.dip
        p.out_sport = p.sport
        p.out_dport = p.dport
        p.out_ttl = p.ttl
        p.hops += 1
        if 0 <= p.in_vif < cnt.vifs.shape[0]:
            cnt.vifs[p.in_vif, RX_PACKETS] += 1
            cnt.vifs[p.in_vif, RX_BYTES] += p.length
    p.outcome = PENDING
    p.ecmp_slot = -1
    p.flow = -1
    state = ingress(kt, cnt, p, i, node, trace, tcount)
    if state == STATELESS:
        _stateless(kt, cnt, p, p.vrf, trace, tcount, i, node)
        p.key_nh = -1
    elif state == FLOW_PATH:
        w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
        h = flow_hash(w0, w1, w2, w3)
        p.hash = h
        prefetch(keys, np.int64(h & np.uint32(n_buckets - 1)) * 16)


@kernel(cache=True, inline="always", _nrt=False)
def _takes_fast_path(p, f: int, entries: np.ndarray, keys: np.ndarray, changed: bool, generation: int) -> bool:
    """May the packet take the fast path: its flow (found in pass 2, and still that flow if
    the general path ran since) is current, allowed, and the packet changes no TCP state."""
    e = entries[f]
    fast = True
    if changed:
        # the entry may have changed since pass 2 (an earlier packet of this chunk)
        w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
        fast = keys[f, 0] == w0 and keys[f, 1] == w1 and keys[f, 2] == w2 and keys[f, 3] == w3
    fast = fast and e.gen == generation and (e.action == ACTION_FORWARD or e.action == ACTION_NAT)
    if fast and p.proto == PROTO_TCP:
        flags = p.tcp_flags
        if flags & (TCP_SYN | TCP_FIN | TCP_RST):
            fast = False
        elif (flags & TCP_ACK) and not (e.tcp & TCP_ESTABLISHED):
            # the handshake's last ACK changes the state: only then the general path
            r = np.int64(e.rflow)
            fast = not (r >= 0 and (entries[r].tcp & TCP_SEEN_SYNACK))
    return fast


@kernel(cache=True, inline="always", _nrt=False)
def _fast_path(kt: KernelTables, fs: FlowState, cnt: Counters, p, f: int, now: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """An established, current, allowed flow: count, NAT from the entry, the cached output
    nexthop (resolved once per flow), TTL, output."""
    e = fs.entries[f]
    cnt.flows[FC_HITS] += 1
    e.packets += 1
    e.bytes += p.length
    e.last = now
    if e.action == ACTION_NAT:
        p.out_sip = e.nat_sip
        p.out_dip = e.nat_dip
        p.out_sport = e.nat_sport
        p.out_dport = e.nat_dport
    label_nh = np.int64(p.label_nh)
    if label_nh >= 0 and p.out_dip == p.dip:
        nh = label_nh  # §6: straight to the label's nexthop, no route
    elif e.out_nh >= 0:  # routed before: the cached result of the lines below
        nh = np.int64(e.out_nh)
        if e.flags & FLAG_OUT_ECMP:
            p.ecmp_slot = e.ecmp
    else:  # the flow's first routed fast-path packet: resolve the nexthop once
        rid, nh = _route(kt, e.dvrf, p.out_dip)
        if rid < 0:
            _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
            return
        if kt.nhs[nh].type == NH_COMPOSITE:
            member = ecmp_member(kt, nh, e.ecmp)
            if member < 0:  # the member went away under this flow: the general path re-chooses
                forward(kt, fs, cnt, p, f, e.dvrf, label_nh, label_nh < 0, trace, tcount, i, node)
                return
            p.ecmp_slot = e.ecmp
            nh = member
            e.flags |= FLAG_OUT_ECMP
        e.out_nh = nh
    if label_nh < 0:
        if p.out_ttl <= 1:
            _drop(cnt, p, DROP_TTL, trace, tcount, i, node)
            return
        p.out_ttl -= 1
    _output(kt, cnt, p, nh, trace, tcount, i, node)


@kernel(cache=True, _nrt=False, nogil=True)
def process_batch(
    kt: KernelTables,
    fs: FlowState,
    cnt: Counters,
    pkts: np.ndarray,
    now: int,
    max_setups: int,
    hold_queue: int,
    trace: np.ndarray,
    tcount: np.ndarray,
    only_here: bool,
) -> int:
    """Run every pending (or held) packet of ``pkts`` through this node. Returns the number
    of flow setups done, which ``max_setups`` bounds (beyond it new flows wait in HOLD).

    ``only_here``: the batch is the whole fabric's; packets whose ``node`` is another node's
    are left alone (the fabric runs every node over one batch, in place, no gathering)."""
    node = np.int64(kt.scalars[S_NODE])
    generation = kt.scalars[S_GENERATION]
    tracing = trace.shape[0] > 0
    n = pkts.shape[0]
    keys = fs.keys.keys
    entries = fs.entries
    n_buckets = fs.keys.bucket_overflow_head.shape[0]
    setups = 0
    for start in range(0, n, CHUNK):
        end = min(n, start + CHUNK)
        # --- pass 1: ingress, and the flow key's hash --------------------------------------------
        for i in range(start, end):
            p = pkts[i]
            if (p.outcome != PENDING and p.outcome != HELD) or (only_here and p.node != node):
                p.key_nh = -1
                continue
            _enter(kt, cnt, p, i, node, trace, tcount, keys, n_buckets)
        # --- pass 2: the bucket lookups --------------------------------------------------------
        for i in range(start, end):
            p = pkts[i]
            if p.key_nh < 0:
                continue
            w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
            f = flow_find(fs.keys, w0, w1, w2, w3, p.hash)
            p.flow = f
            if f >= 0:
                prefetch(entries, np.int64(f))
        # --- pass 3: each packet: the fast path, or the general path --------------------------
        changed = False  # did the general path run in this chunk (entries may have moved)?
        for i in range(start, end):
            p = pkts[i]
            if p.key_nh < 0:
                continue
            f = np.int64(p.flow)
            if not tracing and f >= 0 and _takes_fast_path(p, f, entries, keys, changed, generation):
                _fast_path(kt, fs, cnt, p, f, now, trace, tcount, i, node)
            else:
                setups += general_packet(kt, fs, cnt, p, i, now, setups, max_setups, hold_queue, trace, tcount)
                changed = True
    return setups


@kernel(cache=True, _nrt=False)
def hand_over(pkts: np.ndarray, max_hops: int, at_node: np.ndarray, hop_drops: np.ndarray) -> int:
    """Move every packet a node sent to the fabric to the node it was sent to: the outer
    header's label rides along, the rewritten fields become the packet's. A packet that
    already passed ``max_hops`` kernels is dropped TTL_EXCEEDED on the node that sent it
    instead, and ``hop_drops[n]`` counts those of node ``n`` (for its drop statistics).
    Returns how many packets are still in flight (pending or held) afterwards;
    ``at_node[n]`` says how many of them are at node ``n``."""
    in_flight = 0
    at_node[:] = 0
    hop_drops[:] = 0
    for i in range(pkts.shape[0]):
        p = pkts[i]
        if p.outcome == FABRIC:
            if p.hops >= max_hops:
                p.outcome = DROPPED
                p.drop_reason = DROP_TTL
                if 0 <= p.node < hop_drops.shape[0]:
                    hop_drops[p.node] += 1
                continue
            p.node = p.out_node
            p.in_vif = 0
            p.in_label = p.out_label
            p.sip = p.out_sip
            p.dip = p.out_dip
            p.sport = p.out_sport
            p.dport = p.out_dport
            p.ttl = p.out_ttl
            p.outcome = PENDING
            p.out_vif = -1
            p.out_node = -1
            p.out_label = -1
        if p.outcome == PENDING or p.outcome == HELD:
            in_flight += 1
            if 0 <= p.node < at_node.shape[0]:
                at_node[p.node] += 1
    return in_flight


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
        _remove_pair(fs, cnt, f)
        removed += 1
    cnt.flows[FC_AGED] += removed
    return removed
