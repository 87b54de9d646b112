"""The vRouter forwarding pipeline of one node, over a whole batch of packets (spec/vrouter.md §2–4).

Stages, in the order a packet meets them (each says what it uses and sets, and writes its
own trace event):

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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vrouter.dataplane.ecmp import ecmp_choose, ecmp_hash, ecmp_member
from vrouter.dataplane.flow_table import flow_delete, flow_find, flow_find_or_insert, flow_hash, pack_key
from vrouter.dataplane.lpm import lpm_lookup
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
    FLAG_REVERSE,
    FLAG_SNAT,
    FLAG_SPAT,
    FLAG_VRF_TRANSLATE,
    TCP_ESTABLISHED,
    TCP_SEEN_SYN,
    TCP_SEEN_SYNACK,
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
    NH_VRF_TRANSLATE,
    NO_PROGRAM,
    PROTO_ICMP,
    VIF_FABRIC,
    VIF_HOST,
    VIF_VM,
    NodeTables,
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


@njit(cache=True)
def _drop(cnt: Counters, p, reason: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Sets: outcome DROPPED and drop_reason; counts it per reason and on the ingress vif."""
    p.outcome = DROPPED
    p.drop_reason = reason
    cnt.drops[reason] += 1
    if p.in_vif >= 0 and p.in_vif < cnt.vif_drops.shape[0]:
        cnt.vif_drops[p.in_vif] += 1
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_DROP, reason, 0, 0, 0)


@njit(cache=True)
def _route(t: NodeTables, vrf: int, addr) -> tuple[int, int]:
    """(route id, nexthop) of the longest prefix of ``vrf`` holding ``addr``; (-1, -1) if none."""
    if vrf < 0:
        return -1, -1
    rid = lpm_lookup(t.lpm, vrf, np.uint32(addr))
    if rid < 0:
        return -1, -1
    return rid, t.route_nh[rid]


@njit(cache=True)
def _port_map(t: NodeTables, nh: int, proto: int, port: int) -> int:
    """The target port a floating IP's port map gives ``proto``/``port`` (-1: not mapped;
    the port itself when the floating IP has no map)."""
    n = t.nh_pm_len[nh]
    if n == 0:
        return port
    first = t.nh_pm_start[nh]
    for k in range(first, first + n):
        if t.pm_proto[k] == proto and t.pm_port[k] == port:
            return t.pm_target[k]
    return -1


@njit(cache=True)
def _output(t: NodeTables, cnt: Counters, p, nh: int, flow_hash_value: np.uint32, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Uses the final (non-composite) nexthop. Sets outcome, out_vif/out_node/out_label."""
    kind = t.nh_type[nh]
    if kind == NH_ENCAP:
        vif = t.nh_vif[nh]
        if vif == VIF_HOST:
            p.outcome = HOST
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_HOST, 0, 0, 0, 0)
        else:
            p.outcome = DELIVERED
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_DELIVER, vif, 0, 0, 0)
        p.out_vif = vif
        if vif < cnt.vif_tx_packets.shape[0]:
            cnt.vif_tx_packets[vif] += 1
            cnt.vif_tx_bytes[vif] += p.length
    elif kind == NH_RECEIVE:
        p.outcome = HOST
        p.out_vif = VIF_HOST
        cnt.vif_tx_packets[VIF_HOST] += 1
        cnt.vif_tx_bytes[VIF_HOST] += p.length
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_HOST, 0, 0, 0, 0)
    elif kind == NH_TUNNEL:
        p.outcome = FABRIC
        p.out_node = t.nh_node[nh]
        p.out_label = t.nh_label[nh]
        p.outer_sport = np.uint16(49152 + (flow_hash_value & np.uint32(0x3FFF)))
        cnt.vif_tx_packets[VIF_FABRIC] += 1
        cnt.vif_tx_bytes[VIF_FABRIC] += p.length
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_TUNNEL, p.out_node, p.out_label, p.outer_sport, t.encapsulation[0])
    elif kind == NH_UNDERLAY:
        p.outcome = FABRIC
        p.out_node = t.nh_node[nh]
        p.out_label = -1
        cnt.vif_tx_packets[VIF_FABRIC] += 1
        cnt.vif_tx_bytes[VIF_FABRIC] += p.length
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_UNDERLAY, p.out_node, 0, 0, 0)
    elif kind == NH_DISCARD and (t.nh_flags[nh] & NH_FLAG_NO_ROUTE):
        _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
    else:
        _drop(cnt, p, DROP_DISCARD, trace, tcount, i, node)


@njit(cache=True)
def forward(t: NodeTables, fs: FlowState, cnt: Counters, p, flow: int, vrf: int, label_nh: int, routed: bool, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """Route the (rewritten) packet and hand it to its nexthop.

    Uses: out_dip, the flow's ECMP slot (kept, or chosen and stored when unset or a hole),
    ``vrf`` (the flow's destination VRF). A packet that arrived on a label for a local
    interface and was not rewritten goes straight to that interface. Sets: out_ttl (routed
    hops only), ecmp_slot, and the outcome through the nexthop.
    """
    nh = -1
    if label_nh >= 0 and p.out_dip == p.dip:
        nh = label_nh
    else:
        rid, nh = _route(t, vrf, p.out_dip)
        if rid < 0:
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_NO_ROUTE, vrf, p.out_dip, 0, 0)
            _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
            return
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ROUTE, vrf, rid, nh, 0)
    h = np.uint32(0)
    if t.nh_type[nh] == NH_COMPOSITE:
        h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, t.ecmp_fields[0])
        slot = np.int64(-1)
        if flow >= 0:
            slot = np.int64(fs.ecmp[flow])
        member = ecmp_member(t, nh, slot)
        if member < 0:
            slot, member = ecmp_choose(t, nh, h)
            if flow >= 0:
                fs.ecmp[flow] = slot
        if member < 0:
            _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
            return
        p.ecmp_slot = slot
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ECMP, nh, slot, member, t.nh_member_len[nh])
        nh = member
    if routed:
        if p.out_ttl <= 1:
            _drop(cnt, p, DROP_TTL, trace, tcount, i, node)
            return
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_TTL, p.out_ttl, p.out_ttl - 1, 0, 0)
        p.out_ttl -= 1
    fh = flow_hash(np.uint32(p.sip), np.uint32(p.dip), np.uint32((np.uint32(p.sport) << 16) | np.uint32(p.dport)), np.uint32(p.proto))
    _output(t, cnt, p, nh, fh ^ h, trace, tcount, i, node)


@njit(cache=True)
def _remove_pair(fs: FlowState, cnt: Counters, flow: int) -> None:
    """Delete a flow and its reverse flow (TCP close, or the agent's eviction)."""
    reverse = np.int64(fs.rflow[flow])
    _remove_one(fs, cnt, np.int64(flow))
    if reverse >= 0:
        _remove_one(fs, cnt, reverse)


@njit(cache=True)
def _remove_one(fs: FlowState, cnt: Counters, f: int) -> None:
    if fs.action[f] != ACTION_FREE:
        flow_delete(fs.keys, f)
        fs.action[f] = ACTION_FREE
        fs.rflow[f] = -1
        fs.ecmp[f] = -1
        fs.tcp[f] = 0
        fs.held[f] = 0
        fs.flags[f] = 0
        cnt.flows[FC_DELETED] += 1


@njit(cache=True)
def _tcp_track(fs: FlowState, cnt: Counters, flow: int, flags: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """TCP state per flow; after FIN in both directions, or a RST, both flows go."""
    reverse = fs.rflow[flow]
    if flags & TCP_SYN:
        if flags & TCP_ACK:
            fs.tcp[flow] |= TCP_SEEN_SYNACK
        else:
            fs.tcp[flow] |= TCP_SEEN_SYN
    elif flags & TCP_ACK and reverse >= 0 and (fs.tcp[reverse] & TCP_SEEN_SYNACK):
        fs.tcp[flow] |= TCP_ESTABLISHED
        fs.tcp[reverse] |= TCP_ESTABLISHED
    if flags & TCP_RST:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_CLOSE, 0, flow, 0, 0)
        _remove_pair(fs, cnt, flow)
        cnt.flows[FC_CLOSED] += 1
        return
    if flags & TCP_FIN:
        fs.tcp[flow] |= STATE_FIN
        if reverse >= 0 and (fs.tcp[reverse] & STATE_FIN):
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_CLOSE, 1, flow, 0, 0)
            _remove_pair(fs, cnt, flow)
            cnt.flows[FC_CLOSED] += 1


@njit(cache=True)
def _write_flow(fs: FlowState, f: int, action: int, flags: int, dvrf: int, key_nh: int, nat_sip, nat_dip, nat_sport, nat_dport, ecmp: int, drop: int, route: int, now: int, gen: int) -> None:
    fs.gen[f] = gen
    fs.action[f] = action
    fs.flags[f] = flags
    fs.dvrf[f] = dvrf
    fs.key_nh[f] = key_nh
    fs.nat_sip[f] = nat_sip
    fs.nat_dip[f] = nat_dip
    fs.nat_sport[f] = nat_sport
    fs.nat_dport[f] = nat_dport
    fs.ecmp[f] = ecmp
    fs.drop[f] = drop
    fs.route[f] = route
    fs.tcp[f] = 0
    fs.held[f] = 0
    fs.packets[f] = 0
    fs.bytes[f] = 0
    fs.last[f] = now
    fs.ref_acl[f] = -1
    fs.ref_egress[f] = -1
    fs.ref_ingress[f] = -1
    fs.ref_nat[f] = -1


@njit(cache=True)
def flow_setup(t: NodeTables, fs: FlowState, cnt: Counters, p, forward_index: int, vrf: int, key_nh: int, src_vif: int, label_nh: int, now: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int, keep_slot: int) -> int:
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
    new_sip = sip
    new_dip = dip
    new_sport = sport
    new_dport = dport
    dvrf = vrf
    slot = -1
    route_id = -1
    reason = 0
    dest_nh = -1
    dst_vn = -1
    ref_acl = -1
    ref_egress = -1
    ref_ingress = -1
    ref_nat = -1
    peer_ip = np.uint32(dip)  # who the sender's egress rules see (after ECMP / DNAT)
    peer_port = dport
    snat = False
    # 1. where does it go?
    if label_nh >= 0:
        dest_nh = label_nh
        dst_vn = t.nh_dst_vn[label_nh]
    else:
        route_id, nh = _route(t, vrf, dip)
        if route_id < 0:
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_NO_ROUTE, vrf, dip, 0, 0)
            reason = DROP_NO_ROUTE
        else:
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_ROUTE, vrf, route_id, nh, 0)
            dst_vn = t.nh_dst_vn[nh]
            kind = t.nh_type[nh]
            if kind == NH_DISCARD:
                reason = DROP_NO_ROUTE if (t.nh_flags[nh] & NH_FLAG_NO_ROUTE) else DROP_DISCARD
            elif kind == NH_COMPOSITE:
                kept = ecmp_member(t, nh, keep_slot)
                if kept >= 0:
                    slot, dest_nh = np.int64(keep_slot), kept
                else:
                    h = ecmp_hash(sip, dip, proto, sport, dport, t.ecmp_fields[0])
                    slot, dest_nh = ecmp_choose(t, nh, h)
                if dest_nh < 0:
                    reason = DROP_NO_ROUTE
                elif trace.shape[0]:
                    emit(trace, tcount, i, node, T_ECMP, nh, slot, dest_nh, t.nh_member_len[nh])
            else:
                dest_nh = nh
    # 2. NAT on this node: a floating IP of a local interface, or a NodePort of this host
    if reason == 0:
        kind = t.nh_type[dest_nh]
        if kind == NH_ENCAP and (t.nh_flags[dest_nh] & NH_FLAG_FIP) and t.nh_fip[dest_nh] == dip:
            target = dport if proto == PROTO_ICMP else _port_map(t, dest_nh, proto, dport)
            if target < 0:
                reason = DROP_NO_PORT_MAP
            else:
                new_dip = t.nh_dst_ip[dest_nh]
                new_dport = target
                dvrf = t.vif_vrf[t.nh_vif[dest_nh]]
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_DNAT, dip, new_dip, dport, new_dport)
        elif kind == NH_RECEIVE and label_nh < 0 and dip == t.node_ip[node]:
            for r in range(t.np_proto.shape[0]):
                if t.np_proto[r] == proto and t.np_port[r] == dport:
                    ref_nat = t.np_ref[r]
                    n = t.np_b_len[r]
                    if n == 0:
                        reason = DROP_NO_BACKEND
                        break
                    h = ecmp_hash(sip, dip, proto, sport, dport, 31)
                    b = t.np_b_start[r] + np.int64(h % np.uint32(n))
                    new_dip = t.npb_ip[b]
                    new_dport = t.npb_port[b]
                    if t.np_snat[r]:
                        new_sip = t.node_ip[node]
                        snat = True
                    dvrf = t.vif_vrf[VIF_HOST]
                    if trace.shape[0]:
                        emit(trace, tcount, i, node, T_KUBE_PROXY, ref_nat, new_dip, new_dport, new_sip if snat else 0)
                    rid2, nh2 = _route(t, dvrf, new_dip)
                    if rid2 < 0 or t.nh_type[nh2] == NH_DISCARD:
                        reason = DROP_NO_ROUTE
                    else:
                        if trace.shape[0]:
                            emit(trace, tcount, i, node, T_ROUTE, dvrf, rid2, nh2, 0)
                        dest_nh = nh2
                        dst_vn = t.nh_dst_vn[nh2]
                    break
    if reason == 0:
        peer_ip = np.uint32(new_dip)
        peer_port = new_dport
        if new_dip == dip and t.nh_dst_ip[dest_nh] != 0 and slot >= 0:
            # an ECMP member on another node: its own address and port, as Kubernetes' policies see them
            peer_ip = t.nh_dst_ip[dest_nh]
            peer_port = dport if proto == PROTO_ICMP else _port_map(t, dest_nh, proto, dport)
            if peer_port < 0:
                reason = DROP_NO_PORT_MAP
    dest_local_vif = -1
    if reason == 0 and t.nh_type[dest_nh] == NH_ENCAP:
        v = t.nh_vif[dest_nh]
        if v >= 0 and t.vif_type[v] == VIF_VM:
            dest_local_vif = v
    # 3. policy: the source VN's ACL, the destination VN's (local destination), SGs
    src_vn = -1
    if src_vif >= 0:
        src_vn = t.vif_vrf[src_vif]
    else:
        rs, ns = _route(t, vrf, sip)
        if rs >= 0:
            src_vn = t.nh_dst_vn[ns]
    if reason == 0 and src_vif >= 0:
        ok, ref_acl = acl_decide(t, src_vn, src_vn, dst_vn, proto, sport, dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ACL, src_vn, ref_acl, 1 if ok else 0, ACL_SOURCE_VN)
        if not ok:
            reason = DROP_POLICY
    if reason == 0 and dest_local_vif >= 0 and dst_vn != src_vn:
        ok, ref = acl_decide(t, dst_vn, src_vn, dst_vn, proto, sport, dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ACL, dst_vn, ref, 1 if ok else 0, ACL_DEST_VN)
        if ref >= 0:
            ref_acl = ref
        if not ok:
            reason = DROP_OUT_POLICY
    if reason == 0 and src_vif >= 0 and t.vif_type[src_vif] == VIF_VM:
        program = t.vif_out_prog[src_vif]
        ok, ref_egress = program_decide(t, program, peer_ip, proto, peer_port)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_SG, SG_SENDER_EGRESS, ref_egress, 1 if ok else 0, program)
        if not ok:
            reason = DROP_OUT_SG
    if reason == 0 and dest_local_vif >= 0:
        program = t.vif_in_prog[dest_local_vif]
        ok, ref_ingress = program_decide(t, program, np.uint32(new_sip), proto, new_dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_SG, SG_RECEIVER_INGRESS, ref_ingress, 1 if ok else 0, program)
        if not ok:
            reason = DROP_SG
    # 4. install the forward flow (and the reverse one when allowed)
    rewritten = new_sip != sip or new_dip != dip or new_sport != sport or new_dport != dport
    action = ACTION_DROP if reason else (ACTION_NAT if rewritten else ACTION_FORWARD)
    flags = 0
    if new_sip != sip:
        flags |= FLAG_SNAT
    if new_dip != dip:
        flags |= FLAG_DNAT
    if new_sport != sport:
        flags |= FLAG_SPAT
    if new_dport != dport:
        flags |= FLAG_DPAT
    if dvrf != vrf:
        flags |= FLAG_VRF_TRANSLATE
    f = forward_index
    if f >= 0 and fs.rflow[f] >= 0:
        _remove_one(fs, cnt, np.int64(fs.rflow[f]))  # decided again: the old reverse flow goes
        fs.rflow[f] = -1
    if f < 0:
        w0, w1, w2, w3 = pack_key(key_nh, sip, dip, proto, sport, dport)
        f, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
        if f < 0:
            cnt.flows[FC_FULL] += 1
            _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
            return -1
        cnt.flows[FC_CREATED] += 1
    cnt.flows[FC_SETUPS] += 1
    _write_flow(fs, f, action, flags, dvrf, key_nh, new_sip, new_dip, new_sport, new_dport, slot, reason, route_id, now, t.generation[0])
    fs.ref_acl[f] = ref_acl
    fs.ref_egress[f] = ref_egress
    fs.ref_ingress[f] = ref_ingress
    fs.ref_nat[f] = ref_nat
    fs.rflow[f] = -1
    if action == ACTION_DROP:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOWS, f, -1, action, 0)
        return f
    # where replies to this flow will enter this node, i.e. the reverse flow's key nexthop
    if dest_local_vif >= 0:
        rkey = t.vif_nh[dest_local_vif]
    elif t.nh_type[dest_nh] == NH_RECEIVE:
        rkey = t.vif_nh[VIF_HOST]
    elif snat:
        rkey = t.vif_nh[VIF_FABRIC]
    elif src_vif >= 0 and t.vif_type[src_vif] == VIF_VM:
        rkey = key_nh
    else:
        rkey = t.vif_nh[VIF_FABRIC]
    r_sport = new_dport
    r_dport = new_sport
    if proto == PROTO_ICMP:
        r_sport = new_sport
        r_dport = new_dport
    w0, w1, w2, w3 = pack_key(rkey, new_dip, new_sip, proto, r_sport, r_dport)
    r, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
    if r < 0:
        flow_delete(fs.keys, f)
        fs.action[f] = ACTION_FREE
        cnt.flows[FC_DELETED] += 1
        cnt.flows[FC_FULL] += 1
        _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
        return -1
    if created:
        cnt.flows[FC_CREATED] += 1
    elif fs.rflow[r] >= 0 and fs.rflow[r] != f:
        # a stale pair used this key: it loses its partner
        fs.rflow[fs.rflow[r]] = -1
    rflags = FLAG_REVERSE
    out_sport = dport
    out_dport = sport
    if proto == PROTO_ICMP:
        out_sport = sport
        out_dport = dport
    if new_dip != dip:
        rflags |= FLAG_SNAT
    if new_sip != sip:
        rflags |= FLAG_DNAT
    if new_dport != dport:
        rflags |= FLAG_SPAT
    if new_sport != sport:
        rflags |= FLAG_DPAT
    if dvrf != vrf:
        rflags |= FLAG_VRF_TRANSLATE
    _write_flow(fs, r, action, rflags, vrf, rkey, dip, sip, out_sport, out_dport, -1, 0, -1, now, t.generation[0])
    fs.ref_acl[r] = ref_acl
    fs.ref_egress[r] = ref_egress
    fs.ref_ingress[r] = ref_ingress
    fs.ref_nat[r] = ref_nat
    fs.rflow[f] = r
    fs.rflow[r] = f
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_FLOWS, f, r, action, 0)
    return f


@njit(cache=True)
def _stateless(t: NodeTables, cnt: Counters, p, vrf: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """A packet on an interface without the policy flag (the SDN gateway): routed, no flow."""
    rid, nh = _route(t, vrf, p.out_dip)
    if rid < 0:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NO_ROUTE, vrf, p.out_dip, 0, 0)
        _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
        return
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ROUTE, vrf, rid, nh, 0)
    h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, t.ecmp_fields[0])
    if t.nh_type[nh] == NH_COMPOSITE:
        slot, member = ecmp_choose(t, nh, h)
        if member < 0:
            _drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
            return
        p.ecmp_slot = slot
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_ECMP, nh, slot, member, t.nh_member_len[nh])
        nh = member
    if p.out_ttl <= 1:
        _drop(cnt, p, DROP_TTL, trace, tcount, i, node)
        return
    p.out_ttl -= 1
    _output(t, cnt, p, nh, h, trace, tcount, i, node)


@njit(cache=True)
def _vxlan_local_member(t: NodeTables, nh: int, h: np.uint32) -> int:
    """On arrival by VNI at a floating IP: one of this node's members (by hash), or -1."""
    start = t.nh_member_start[nh]
    n = t.nh_member_len[nh]
    local = 0
    for s in range(n):
        m = t.members[start + s]
        if m >= 0 and t.nh_type[m] == NH_ENCAP:
            local += 1
    if local == 0:
        return -1
    pick = np.int64(h % np.uint32(local))
    for s in range(n):
        m = t.members[start + s]
        if m >= 0 and t.nh_type[m] == NH_ENCAP:
            if pick == 0:
                return m
            pick -= 1
    return -1  # pragma: no cover


@njit(cache=True)
def process_batch(
    t: NodeTables,
    fs: FlowState,
    cnt: Counters,
    pkts: np.ndarray,
    now: int,
    max_setups: int,
    hold_queue: int,
    trace: np.ndarray,
    tcount: np.ndarray,
) -> int:
    """Run every pending (or held) packet of ``pkts`` through this node. Returns the number
    of flow setups done, which ``max_setups`` bounds (beyond it new flows wait in HOLD)."""
    node = np.int64(t.node_index[0])
    setups = 0
    n_vif = t.vif_type.shape[0]
    for i in range(pkts.shape[0]):
        p = pkts[i]
        if p.outcome != PENDING and p.outcome != HELD:
            continue
        first_seen = p.outcome == PENDING
        if first_seen:
            p.out_sip = p.sip
            p.out_dip = p.dip
            p.out_sport = p.sport
            p.out_dport = p.dport
            p.out_ttl = p.ttl
            p.hops += 1
        p.outcome = PENDING
        p.ecmp_slot = -1
        p.flow = -1
        # --- 1. ingress -----------------------------------------------------------
        vif = np.int64(p.in_vif)
        if vif < 0 or vif >= n_vif or t.vif_type[vif] < 0:
            _drop(cnt, p, DROP_INVALID_VIF, trace, tcount, i, node)
            continue
        if first_seen:
            cnt.vif_rx_packets[vif] += 1
            cnt.vif_rx_bytes[vif] += p.length
        label_nh = -1
        src_vif = -1
        policy = False
        key_nh = -1
        vrf = -1
        if p.in_label >= 0:
            if t.encapsulation[0] == ENCAP_VXLAN:
                if p.in_label >= t.vni_vrf.shape[0] or t.vni_vrf[p.in_label] < 0:
                    _drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
                    continue
                vrf = t.vni_vrf[p.in_label]
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_ENTER_VNI, p.in_label, vrf, 0, 0)
                rid, nh = _route(t, vrf, p.dip)
                if rid >= 0 and t.nh_type[nh] == NH_COMPOSITE:
                    nh = _vxlan_local_member(t, nh, ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, t.ecmp_fields[0]))
                if rid >= 0 and nh >= 0 and t.nh_type[nh] == NH_ENCAP and (t.nh_flags[nh] & NH_FLAG_POLICY):
                    label_nh = nh
                    vrf = t.nh_vrf[nh]
                    key_nh = nh
                    policy = True
            else:
                if p.in_label >= t.mpls_nh.shape[0] or t.mpls_nh[p.in_label] < 0:
                    _drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
                    continue
                nh = t.mpls_nh[p.in_label]
                vrf = t.nh_vrf[nh]
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_ENTER_LABEL, p.in_label, nh, vrf, 0)
                if t.nh_type[nh] == NH_ENCAP:
                    if t.nh_flags[nh] & NH_FLAG_POLICY:
                        label_nh = nh
                        key_nh = nh
                        policy = True
                    else:
                        if trace.shape[0]:
                            emit(trace, tcount, i, node, T_LABEL_DELIVER, 0, 0, 0, 0)
                        _output(t, cnt, p, nh, np.uint32(0), trace, tcount, i, node)
                        continue
        else:
            vrf = t.vif_vrf[vif]
            key_nh = t.vif_nh[vif]
            src_vif = vif
            policy = t.vif_policy[vif] != 0
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_ENTER_VIF, vif, vrf, key_nh, 0)
        if not policy:
            _stateless(t, cnt, p, vrf, trace, tcount, i, node)
            continue
        # --- 2. flow lookup ---------------------------------------------------------
        w0, w1, w2, w3 = pack_key(key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
        f = np.int64(flow_find(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3)))
        if f >= 0 and fs.action[f] == ACTION_HOLD:
            if setups < max_setups:
                setups += 1
                f = flow_setup(t, fs, cnt, p, f, vrf, key_nh, src_vif, label_nh, now, trace, tcount, i, node, -1)
            else:
                if fs.held[f] < hold_queue:
                    fs.held[f] += 1
                    p.outcome = HELD
                    p.flow = f
                    if trace.shape[0]:
                        emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
                else:
                    _drop(cnt, p, DROP_FLOW_QUEUE_LIMIT, trace, tcount, i, node)
                continue
        elif f >= 0:
            cnt.flows[FC_HITS] += 1
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_FLOW_HIT, f, fs.action[f], fs.rflow[f], 0)
            if fs.gen[f] != t.generation[0]:
                if fs.flags[f] & FLAG_REVERSE:
                    fs.gen[f] = t.generation[0]  # replies of an allowed flow stay allowed
                else:
                    # the configuration changed since this flow was decided: decide again
                    if trace.shape[0]:
                        emit(trace, tcount, i, node, T_REEVALUATE, f, fs.gen[f], t.generation[0], 0)
                    setups += 1
                    f = flow_setup(t, fs, cnt, p, f, vrf, key_nh, src_vif, label_nh, now, trace, tcount, i, node, fs.ecmp[f])
        else:
            cnt.flows[FC_MISSES] += 1
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_FLOW_MISS, key_nh, 0, 0, 0)
            if setups >= max_setups:
                w0, w1, w2, w3 = pack_key(key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
                f, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
                if f < 0:
                    cnt.flows[FC_FULL] += 1
                    _drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
                    continue
                cnt.flows[FC_CREATED] += 1
                _write_flow(fs, f, ACTION_HOLD, 0, vrf, key_nh, 0, 0, 0, 0, -1, 0, -1, now, t.generation[0])
                fs.rflow[f] = -1
                fs.held[f] = 1
                p.outcome = HELD
                p.flow = f
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
                continue
            setups += 1
            f = flow_setup(t, fs, cnt, p, -1, vrf, key_nh, src_vif, label_nh, now, trace, tcount, i, node, -1)
        if f < 0:
            continue
        # --- 4. the flow's action ---------------------------------------------------
        p.flow = f
        fs.packets[f] += 1
        fs.bytes[f] += p.length
        fs.last[f] = now
        action = fs.action[f]
        if action == ACTION_DROP:
            _drop(cnt, p, fs.drop[f], trace, tcount, i, node)
            continue
        if action == ACTION_NAT:
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_NAT, p.out_sip, fs.nat_sip[f], p.out_dip, fs.nat_dip[f])
                emit(trace, tcount, i, node, T_NAT_PORTS, p.out_sport, fs.nat_sport[f], p.out_dport, fs.nat_dport[f])
            p.out_sip = fs.nat_sip[f]
            p.out_dip = fs.nat_dip[f]
            p.out_sport = fs.nat_sport[f]
            p.out_dport = fs.nat_dport[f]
        routed = label_nh < 0
        # --- 5. forward -----------------------------------------------------------
        forward(t, fs, cnt, p, f, fs.dvrf[f], label_nh, routed, trace, tcount, i, node)
        if p.proto == 6 and fs.action[f] != ACTION_FREE:
            _tcp_track(fs, cnt, f, p.tcp_flags, trace, tcount, i, node)
    return setups


@njit(cache=True)
def age_flows(fs: FlowState, cnt: Counters, now: int, idle: int) -> int:
    """Remove every flow pair idle for longer than ``idle`` (simulated ns); returns pairs removed."""
    removed = 0
    n = fs.action.shape[0]
    for f in range(n):
        action = fs.action[f]
        if action == ACTION_FREE or now - fs.last[f] <= idle:
            continue
        r = fs.rflow[f]
        if r >= 0 and now - fs.last[r] <= idle:
            continue
        _remove_pair(fs, cnt, f)
        removed += 1
    cnt.flows[FC_AGED] += removed
    return removed
