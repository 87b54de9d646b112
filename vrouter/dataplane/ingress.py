"""Where a packet enters a node (docs/dataplane.md §1–2): its interface or label (or VNI) gives the
VRF and the flow key's nexthop; a packet on an interface without policy (the SDN gateway) is
routed without a flow.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_choose, ecmp_hash
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import (
    S_ECMP_FIELDS,
    S_ENCAP,
    KernelTables,
)
from vrouter.dataplane.packets import (
    DROP_INVALID_LABEL,
    DROP_INVALID_VIF,
    DROP_TTL,
)
from vrouter.dataplane.state import (
    Counters,
)
from vrouter.dataplane.tables import (
    ENCAP_VXLAN,
    NH_COMPOSITE,
    NH_ENCAP,
    NH_FLAG_POLICY,
)
from vrouter.dataplane.trace import (
    T_ENTER_LABEL,
    T_ENTER_VIF,
    T_ENTER_VNI,
    T_LABEL_DELIVER,
    emit,
)
from vrouter.dataplane.output import drop, route, output, route_or_drop, ecmp_member_or_drop

# what ingress leaves for the rest of the pipeline
DONE = 0
STATELESS = 1
FLOW_PATH = 2


@kernel(cache=True, _nrt=False)
def stateless(kt: KernelTables, cnt: Counters, p, vrf: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """A packet on an interface without the policy flag (the SDN gateway): routed, no flow."""
    nh = route_or_drop(kt, cnt, p, vrf, trace, tcount, i, node)
    if nh < 0:
        return
    h = ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])
    p.hash = h
    if kt.nhs[nh].type == NH_COMPOSITE:
        slot, member = ecmp_choose(kt, nh, h)
        nh = ecmp_member_or_drop(kt, cnt, p, nh, slot, member, trace, tcount, i, node)
        if nh < 0:
            return
    if p.out_ttl <= 1:
        drop(cnt, p, DROP_TTL, trace, tcount, i, node)
        return
    p.out_ttl -= 1
    output(kt, cnt, p, nh, trace, tcount, i, node)


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
        drop(cnt, p, DROP_INVALID_VIF, trace, tcount, i, node)
        return DONE
    if p.in_label >= 0:
        if kt.scalars[S_ENCAP] == ENCAP_VXLAN:
            if p.in_label >= kt.vni_vrf.shape[0] or kt.vni_vrf[p.in_label] < 0:
                drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
                return DONE
            vrf = np.int64(kt.vni_vrf[p.in_label])
            p.vrf = vrf
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_ENTER_VNI, p.in_label, vrf, 0, 0)
            rid, nh = route(kt, vrf, p.dip)
            if rid >= 0 and kt.nhs[nh].type == NH_COMPOSITE:
                nh = np.int64(_vxlan_local_member(kt, nh, ecmp_hash(p.sip, p.dip, p.proto, p.sport, p.dport, kt.scalars[S_ECMP_FIELDS])))
            if rid >= 0 and nh >= 0 and kt.nhs[nh].type == NH_ENCAP and (kt.nhs[nh].flags & NH_FLAG_POLICY):
                p.label_nh = nh
                p.vrf = kt.nhs[nh].vrf
                p.key_nh = nh
                return FLOW_PATH
            return STATELESS
        if p.in_label >= kt.mpls_nh.shape[0] or kt.mpls_nh[p.in_label] < 0:
            drop(cnt, p, DROP_INVALID_LABEL, trace, tcount, i, node)
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
            output(kt, cnt, p, nh, trace, tcount, i, node)
            return DONE
        return STATELESS
    p.vrf = kt.vifs[vif].vrf
    if trace.shape[0]:
        emit(trace, tcount, i, node, T_ENTER_VIF, vif, p.vrf, kt.vifs[vif].nh, 0)
    if kt.vifs[vif].policy == 0:
        return STATELESS
    p.key_nh = kt.vifs[vif].nh
    return FLOW_PATH
