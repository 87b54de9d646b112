"""The kernel's view of a node's tables: a few arrays of records instead of many columns.

:class:`~vrouter.dataplane.tables.NodeTables` keeps one array per field, which suits the
agent, the views and the reference. The kernels want the opposite: a nexthop or an
interface in one cache line, and few arrays to pass between functions (numba passes every
array as a struct, so a call with a hundred arrays copies kilobytes). :func:`pack` makes
that layout once per compilation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vrouter.dataplane.lpm import LpmTable
from vrouter.dataplane.tables import NodeTables

VIF = np.dtype(
    [
        ("type", np.int8),
        ("policy", np.uint8),
        ("pad", np.uint16),
        ("vrf", np.int32),
        ("nh", np.int32),
        ("ip", np.uint32),
        ("in_prog", np.int32),
        ("out_prog", np.int32),
    ],
    align=True,
)

NH = np.dtype(
    [
        ("type", np.int8),
        ("flags", np.uint8),
        ("pad", np.uint16),
        ("vrf", np.int32),
        ("vif", np.int32),
        ("node", np.int32),
        ("label", np.int32),
        ("dst_vn", np.int32),
        ("dst_ip", np.uint32),
        ("fip", np.uint32),
        ("pm_start", np.int32),
        ("pm_len", np.int32),
        ("in_prog", np.int32),
        ("member_start", np.int32),
        ("member_len", np.int32),
        ("pad2", np.int32),
        ("pad3", np.int64),
    ],
    align=True,
)  # 64 bytes: one cache line

PORT_MAP = np.dtype([("proto", np.uint8), ("port", np.uint16), ("target", np.uint16)], align=True)

ACL = np.dtype(
    [
        ("src_kind", np.int8),
        ("dst_kind", np.int8),
        ("proto", np.uint8),
        ("action", np.uint8),
        ("src", np.int32),
        ("dst", np.int32),
        ("sport_lo", np.uint16),
        ("sport_hi", np.uint16),
        ("dport_lo", np.uint16),
        ("dport_hi", np.uint16),
        ("ref", np.int32),
    ],
    align=True,
)

PROGRAM_ENTRY = np.dtype([("proto", np.uint8), ("lo", np.uint16), ("hi", np.uint16), ("ref", np.int32)], align=True)

NODE_PORT = np.dtype(
    [("proto", np.uint8), ("snat", np.uint8), ("port", np.uint16), ("b_start", np.int32), ("b_len", np.int32), ("ref", np.int32)],
    align=True,
)
NODE_PORT_BACKEND = np.dtype([("ip", np.uint32), ("port", np.uint16)], align=True)

# scalars
S_NODE = 0
S_ENCAP = 1
S_ECMP_FIELDS = 2
S_GENERATION = 3


class KernelTables(NamedTuple):
    scalars: np.ndarray  # int64[4]: node index, encapsulation, ECMP fields, generation
    node_ip: np.ndarray  # uint32[n_nodes]
    vifs: np.ndarray  # VIF
    nhs: np.ndarray  # NH
    members: np.ndarray  # int32
    route_nh: np.ndarray  # int32
    route_prefix: np.ndarray  # uint32 (traces)
    route_plen: np.ndarray  # uint8 (traces)
    lpm: LpmTable
    port_maps: np.ndarray  # PORT_MAP
    mpls_nh: np.ndarray  # int32
    vni_vrf: np.ndarray  # int32
    acl_index: np.ndarray  # int32[n_vrfs, 2]: first entry, count
    acls: np.ndarray  # ACL
    vnset_bits: np.ndarray  # uint8[n_sets, n_vrfs]
    programs: np.ndarray  # int32[n_programs, 3]: first interval, count, denial ref
    iv_lo: np.ndarray  # uint32: interval starts
    iv_entries: np.ndarray  # int32[n_intervals, 2]: first entry, count
    program_entries: np.ndarray  # PROGRAM_ENTRY
    node_ports: np.ndarray  # NODE_PORT
    node_port_backends: np.ndarray  # NODE_PORT_BACKEND


def _records(dtype: np.dtype, n: int, **columns: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=dtype)
    for name, values in columns.items():
        out[name] = values
    return out


def pack(t: NodeTables) -> KernelTables:
    """The record layout of ``t`` (same ids, same values)."""
    vifs = _records(
        VIF,
        t.vif_type.shape[0],
        type=t.vif_type,
        policy=t.vif_policy,
        vrf=t.vif_vrf,
        nh=t.vif_nh,
        ip=t.vif_ip,
        in_prog=t.vif_in_prog,
        out_prog=t.vif_out_prog,
    )
    nhs = _records(
        NH,
        t.nh_type.shape[0],
        type=t.nh_type,
        flags=t.nh_flags,
        vrf=t.nh_vrf,
        vif=t.nh_vif,
        node=t.nh_node,
        label=t.nh_label,
        dst_vn=t.nh_dst_vn,
        dst_ip=t.nh_dst_ip,
        fip=t.nh_fip,
        pm_start=t.nh_pm_start,
        pm_len=t.nh_pm_len,
        in_prog=t.nh_in_prog,
        member_start=t.nh_member_start,
        member_len=t.nh_member_len,
    )
    acls = _records(
        ACL,
        t.acl_ref.shape[0],
        src_kind=t.acl_src_kind,
        dst_kind=t.acl_dst_kind,
        proto=t.acl_proto,
        action=t.acl_action,
        src=t.acl_src,
        dst=t.acl_dst,
        sport_lo=t.acl_sport_lo,
        sport_hi=t.acl_sport_hi,
        dport_lo=t.acl_dport_lo,
        dport_hi=t.acl_dport_hi,
        ref=t.acl_ref,
    )
    # an empty program table still needs one interval so that indexing stays in bounds
    iv_lo = t.iv_lo if t.iv_lo.shape[0] else np.zeros(1, np.uint32)
    iv_entries = np.stack([t.iv_e_start, t.iv_e_len], axis=1).astype(np.int32) if t.iv_lo.shape[0] else np.zeros((1, 2), np.int32)
    return KernelTables(
        scalars=np.array([t.node_index[0], t.encapsulation[0], t.ecmp_fields[0], t.generation[0]], np.int64),
        node_ip=t.node_ip,
        vifs=vifs,
        nhs=nhs,
        members=t.members if t.members.shape[0] else np.full(1, -1, np.int32),
        route_nh=t.route_nh,
        route_prefix=t.route_prefix,
        route_plen=t.route_plen,
        lpm=t.lpm,
        port_maps=_records(PORT_MAP, t.pm_proto.shape[0], proto=t.pm_proto, port=t.pm_port, target=t.pm_target),
        mpls_nh=t.mpls_nh,
        vni_vrf=t.vni_vrf,
        acl_index=np.stack([t.acl_start, t.acl_len], axis=1).astype(np.int32),
        acls=acls,
        vnset_bits=t.vnset_bits,
        programs=np.stack([t.prog_iv_start, t.prog_iv_len, t.prog_ref], axis=1).astype(np.int32)
        if t.prog_iv_start.shape[0]
        else np.zeros((0, 3), np.int32),
        iv_lo=iv_lo,
        iv_entries=iv_entries,
        program_entries=_records(PROGRAM_ENTRY, t.pe_proto.shape[0], proto=t.pe_proto, lo=t.pe_lo, hi=t.pe_hi, ref=t.pe_ref),
        node_ports=_records(
            NODE_PORT,
            t.np_proto.shape[0],
            proto=t.np_proto,
            snat=t.np_snat,
            port=t.np_port,
            b_start=t.np_b_start,
            b_len=t.np_b_len,
            ref=t.np_ref,
        ),
        node_port_backends=_records(NODE_PORT_BACKEND, t.npb_ip.shape[0], ip=t.npb_ip, port=t.npb_port),
    )
