"""NAT decided at flow setup on this node: a floating IP of a local interface (DNAT and DPAT to
the pod) or a NodePort of this host (kube-proxy's DNAT, SNAT when asked); and the NAT flags of a
flow, forward or reverse, from what its rewrite changes.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_hash
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import (
    KernelTables,
)
from vrouter.dataplane.packets import (
    DROP_NO_BACKEND,
    DROP_NO_PORT_MAP,
    DROP_NO_ROUTE,
)
from vrouter.dataplane.state import (
    FLAG_DNAT,
    FLAG_DPAT,
    FLAG_SNAT,
    FLAG_SPAT,
    FLAG_VRF_TRANSLATE,
)
from vrouter.dataplane.tables import (
    NH_DISCARD,
    NH_ENCAP,
    NH_FLAG_FIP,
    NH_RECEIVE,
    PROTO_ICMP,
    VIF_HOST,
)
from vrouter.dataplane.trace import (
    T_DNAT,
    T_KUBE_PROXY,
    T_ROUTE,
    emit,
)
from vrouter.dataplane.output import route, port_map


@kernel(cache=True, inline="always", _nrt=False)
def local_nat(kt: KernelTables, p, vrf: int, dest_nh: int, dst_vn: int, label_nh: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int):
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
        target = np.int64(dport) if proto == PROTO_ICMP else np.int64(port_map(kt, dest_nh, proto, dport))
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
                rid2, nh2 = route(kt, dvrf, new_dip)
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
def nat_flags(source_changed: bool, destination_changed: bool, sport_changed: bool, dport_changed: bool, vrf_changed: bool) -> int:
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
