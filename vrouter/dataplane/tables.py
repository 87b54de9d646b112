"""The forwarding tables of one node's vRouter, as the kernels read them: flat numpy arrays.

The agent (vrouter.agent) writes them; the kernels only read them. Interfaces, VRFs, routes,
nexthops, labels, ACLs, policy programs, floating-IP port maps and kube-proxy rules are
separate tables, like the real vRouter's split of interface / route / nexthop / MPLS tables;
a nexthop is data (a row), not code.

Identifiers (vif, VRF, nexthop, label) are stable across recompilations, so flows made
before a change keep pointing at the right things after it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vrouter.dataplane.lpm import LpmTable

# --- interfaces -----------------------------------------------------------------------
VIF_FABRIC = 0  # vif0/0, the physical NIC toward the underlay
VIF_HOST = 1  # vif0/1, vhost0: the node's own stack and underlay address
VIF_AGENT = 2  # vif0/2, pkt0: to the agent
VIF_VM = 3  # a pod (or HAProxy instance) interface
VIF_CLIENT = 4  # on the simulated SDN gateway: the internet behind it
VIF_TYPE_NAMES = ("fabric", "host", "agent", "virtual", "external")

# --- nexthops -------------------------------------------------------------------------
NH_DISCARD = 0
NH_RECEIVE = 1  # deliver to the host (vhost0)
NH_ENCAP = 2  # deliver to a local interface
NH_TUNNEL = 3  # encapsulate toward another node, with a label or VNI
NH_COMPOSITE = 4  # ECMP: ordered member slots
NH_UNDERLAY = 5  # send to another node's (or the gateway's) underlay address, no encapsulation
NH_VRF_TRANSLATE = 6  # look the packet up again in another VRF (VXLAN VNI, gateway label)
NH_TYPE_NAMES = ("DISCARD", "RECEIVE", "ENCAP", "TUNNEL", "COMPOSITE", "UNDERLAY", "VRF_TRANSLATE")

NH_FLAG_POLICY = 1  # packets to/through this nexthop go through the flow table
NH_FLAG_NO_ROUTE = 2  # a subnet's discard: the address has no host route
NH_FLAG_FIP = 4  # an interface reached through a floating IP: DNAT on arrival

# --- encapsulations ---------------------------------------------------------------------
ENCAP_MPLSOUDP = 0
ENCAP_MPLSOGRE = 1
ENCAP_VXLAN = 2
ENCAP_NAMES = ("MPLSoUDP", "MPLSoGRE", "VXLAN")
MPLS_UDP_PORT = 6635
VXLAN_UDP_PORT = 4789
FIRST_LABEL = 16

# --- ACLs and policy programs ---------------------------------------------------------
SIDE_ANY = 0
SIDE_VN = 1
SIDE_SET = 2
ACTION_DENY = 0
ACTION_PASS = 1
PROTO_ANY = 0
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_SCTP = 132
NO_PROGRAM = -1  # an unrestricted direction


class NodeTables(NamedTuple):
    """Everything one node's kernels read. Arrays only, so numba takes it as one argument."""

    # node and fabric
    node_index: np.ndarray  # int64[1]
    node_ip: np.ndarray  # uint32[n_nodes], the gateway last
    encapsulation: np.ndarray  # int64[1]
    ecmp_fields: np.ndarray  # int64[1], bit 0 sip, 1 dip, 2 proto, 3 sport, 4 dport
    generation: np.ndarray  # int64[1]: grows with every compilation; older flows are re-evaluated
    # interfaces
    vif_type: np.ndarray  # int8
    vif_vrf: np.ndarray  # int32
    vif_nh: np.ndarray  # int32: the key nexthop of packets entering on this vif
    vif_ip: np.ndarray  # uint32
    vif_policy: np.ndarray  # uint8
    vif_in_prog: np.ndarray  # int32: ingress policy program (NO_PROGRAM = open)
    vif_out_prog: np.ndarray  # int32: egress policy program
    # VRFs and routes
    vrf_valid: np.ndarray  # uint8
    lpm: LpmTable  # values are route ids
    route_nh: np.ndarray  # int32
    route_prefix: np.ndarray  # uint32
    route_plen: np.ndarray  # uint8
    route_vrf: np.ndarray  # int32
    # nexthops
    nh_type: np.ndarray  # int8
    nh_flags: np.ndarray  # uint8
    nh_vrf: np.ndarray  # int32: lookup VRF on arrival (ENCAP), target VRF (VRF_TRANSLATE)
    nh_vif: np.ndarray  # int32
    nh_node: np.ndarray  # int32: destination node (TUNNEL, UNDERLAY)
    nh_label: np.ndarray  # int32: MPLS label or VNI (TUNNEL)
    nh_dst_vn: np.ndarray  # int32: the destination VN (its VRF id), for ACLs
    nh_dst_ip: np.ndarray  # uint32: the endpoint's own address (policy after ECMP)
    nh_fip: np.ndarray  # uint32: the floating IP (NH_FLAG_FIP)
    nh_pm_start: np.ndarray  # int32: port map of the endpoint
    nh_pm_len: np.ndarray  # int32
    nh_in_prog: np.ndarray  # int32: the endpoint's ingress program (for egress checks of ECMP choices)
    nh_member_start: np.ndarray  # int32 (COMPOSITE)
    nh_member_len: np.ndarray  # int32
    members: np.ndarray  # int32 nexthop ids, -1 = hole
    pm_proto: np.ndarray  # uint8
    pm_port: np.ndarray  # uint16
    pm_target: np.ndarray  # uint16
    # labels
    mpls_nh: np.ndarray  # int32[label] → nexthop, -1 invalid
    vni_vrf: np.ndarray  # int32[vni] → VRF, -1 invalid
    # VN ACLs (indexed by VRF id, which is the VN's)
    acl_start: np.ndarray  # int32
    acl_len: np.ndarray  # int32
    acl_src_kind: np.ndarray  # int8
    acl_src: np.ndarray  # int32
    acl_dst_kind: np.ndarray  # int8
    acl_dst: np.ndarray  # int32
    acl_proto: np.ndarray  # uint8
    acl_sport_lo: np.ndarray  # uint16
    acl_sport_hi: np.ndarray  # uint16
    acl_dport_lo: np.ndarray  # uint16
    acl_dport_hi: np.ndarray  # uint16
    acl_action: np.ndarray  # uint8
    acl_ref: np.ndarray  # int32
    vnset_bits: np.ndarray  # uint8[n_sets, n_vrfs]
    # security-group / NetworkPolicy programs
    prog_iv_start: np.ndarray  # int32
    prog_iv_len: np.ndarray  # int32
    iv_lo: np.ndarray  # uint32: interval starts, sorted within a program
    iv_e_start: np.ndarray  # int32
    iv_e_len: np.ndarray  # int32
    pe_proto: np.ndarray  # uint8 (0 = any protocol, any port)
    pe_lo: np.ndarray  # uint16
    pe_hi: np.ndarray  # uint16
    pe_ref: np.ndarray  # int32
    prog_ref: np.ndarray  # int32: what a denial names (the isolating policies)
    # kube-proxy NodePort rules
    np_proto: np.ndarray  # uint8
    np_port: np.ndarray  # uint16
    np_snat: np.ndarray  # uint8
    np_b_start: np.ndarray  # int32
    np_b_len: np.ndarray  # int32
    np_ref: np.ndarray  # int32
    npb_ip: np.ndarray  # uint32
    npb_port: np.ndarray  # uint16


def empty(dtype: type | str, n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=dtype)
