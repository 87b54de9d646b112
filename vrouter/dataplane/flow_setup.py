"""The agent's decision for a new flow (docs/dataplane.md §5), in its numbered steps:
1. where it goes (route, ECMP member), 2. NAT on this node (:mod:`~vrouter.dataplane.nat`),
3. policy (VN ACLs, the sender's egress and the receiver's ingress programs), 4. the forward
flow, and for an allowed one the reverse flow with the inverse NAT.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_choose, ecmp_hash, ecmp_member
from vrouter.dataplane.flow_table import (
    flow_delete,
    flow_find_or_insert,
    flow_hash,
    pack_key,
)
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import (
    S_ECMP_FIELDS,
    S_GENERATION,
    KernelTables,
)
from vrouter.dataplane.packets import (
    DROP_DISCARD,
    DROP_FLOW_TABLE_FULL,
    DROP_NO_PORT_MAP,
    DROP_NO_ROUTE,
    DROP_OUT_POLICY,
    DROP_OUT_SG,
    DROP_POLICY,
    DROP_SG,
)
from vrouter.dataplane.policy import acl_decide, program_decide
from vrouter.dataplane.state import (
    ACTION_DROP,
    ACTION_FORWARD,
    ACTION_FREE,
    ACTION_NAT,
    FC_CREATED,
    FC_DELETED,
    FC_FULL,
    FC_SETUPS,
    FLAG_REVERSE,
    REF_ACL,
    REF_EGRESS,
    REF_INGRESS,
    REF_NAT,
    Counters,
    FlowState,
)
from vrouter.dataplane.tables import (
    NH_COMPOSITE,
    NH_DISCARD,
    NH_ENCAP,
    NH_FLAG_NO_ROUTE,
    NH_RECEIVE,
    PROTO_ICMP,
    VIF_FABRIC,
    VIF_HOST,
    VIF_VM,
)
from vrouter.dataplane.trace import (
    T_ACL,
    T_ECMP,
    T_FLOWS,
    T_NO_ROUTE,
    T_ROUTE,
    T_SG,
    emit,
)
from vrouter.dataplane.output import drop, route, port_map
from vrouter.dataplane.conntrack import remove_flow, write_flow
from vrouter.dataplane.nat import local_nat, nat_flags

# ACL kinds in T_ACL events
ACL_SOURCE_VN = 0
ACL_DEST_VN = 1
# SG directions in T_SG events
SG_SENDER_EGRESS = 0
SG_RECEIVER_INGRESS = 1


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
    route_id, nh = route(kt, vrf, p.dip)
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
        rs, ns = route(kt, vrf, p.sip)
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
        if not ok:  # the agent's SG: the sender's egress rules
            return DROP_SG, ref_acl, ref_egress, ref_ingress
    if dest_local_vif >= 0:
        program = kt.vifs[dest_local_vif].in_prog
        ok, ref_ingress = program_decide(kt, program, np.uint32(new_sip), proto, new_dport)
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_SG, SG_RECEIVER_INGRESS, ref_ingress, 1 if ok else 0, program)
        if not ok:  # the agent's OutSG: a local receiver's ingress rules
            reason = DROP_OUT_SG
    return reason, ref_acl, ref_egress, ref_ingress


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
        drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
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
    rflags = FLAG_REVERSE | nat_flags(new_dip != dip, new_sip != sip, new_dport != dport, new_sport != sport, dvrf != vrf)
    # the pair's rules live on the forward flow only: one refs row touched per setup, not two
    write_flow(fs, r, action, rflags, vrf, rkey, dip, sip, out_sport, out_dport, -1, 0, -1, now, generation)
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
        reason, dest_nh, dst_vn, new_sip, new_dip, new_dport, dvrf, ref_nat, snat = local_nat(kt, p, vrf, dest_nh, dst_vn, label_nh, trace, tcount, i, node)
    peer_ip = np.uint32(dip)  # who the sender's egress rules see (after ECMP / DNAT)
    peer_port = np.int64(dport)
    if reason == 0:
        peer_ip = np.uint32(new_dip)
        peer_port = new_dport
        if new_dip == dip and kt.nhs[dest_nh].dst_ip != 0 and slot >= 0:
            # an ECMP member on another node: its own address and port, as Kubernetes' policies see them
            peer_ip = kt.nhs[dest_nh].dst_ip
            peer_port = np.int64(dport) if proto == PROTO_ICMP else np.int64(port_map(kt, dest_nh, proto, dport))
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
    flags = nat_flags(new_sip != sip, new_dip != dip, new_sport != sport, new_dport != dport, dvrf != vrf)
    f = np.int64(forward_index)
    if f >= 0 and fs.entries[f].rflow >= 0:
        remove_flow(fs, cnt, np.int64(fs.entries[f].rflow))  # decided again: the old reverse flow goes
        fs.entries[f].rflow = -1
    if f < 0:
        w0, w1, w2, w3 = pack_key(key_nh, sip, dip, proto, sport, dport)
        found, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
        f = np.int64(found)
        if f < 0:
            cnt.flows[FC_FULL] += 1
            drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
            return -1
        cnt.flows[FC_CREATED] += 1
    cnt.flows[FC_SETUPS] += 1
    write_flow(fs, f, action, flags, dvrf, key_nh, new_sip, new_dip, new_sport, new_dport, slot, reason, route_id, now, generation)
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
