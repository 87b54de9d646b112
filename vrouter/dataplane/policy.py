"""Flow-setup decisions: VN-policy ACLs and security-group / NetworkPolicy programs.

Both return the rule reference that decided (an index into the agent's rule book) so the
flow remembers *why* it passes or drops, for ``flow -l`` and ``trace``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vrouter.dataplane.tables import ACTION_PASS, NO_PROGRAM, PROTO_ICMP, SIDE_ANY, SIDE_VN, NodeTables


@njit(cache=True, inline="always")
def _side_has(t: NodeTables, kind: int, value: int, vn: int) -> bool:
    if kind == SIDE_ANY:
        return True
    if kind == SIDE_VN:
        return value == vn
    if vn < 0 or vn >= t.vnset_bits.shape[1]:
        return False
    return t.vnset_bits[value, vn] != 0


@njit(cache=True)
def acl_decide(t: NodeTables, acl_vn: int, src_vn: int, dst_vn: int, proto: int, sport: int, dport: int) -> tuple[bool, int]:
    """(pass?, deciding entry's rule ref or -1): the first matching entry of ``acl_vn``'s ACL.

    Uses: the packet's source/destination VN, protocol and ports. No match passes.
    """
    if acl_vn < 0 or acl_vn >= t.acl_start.shape[0]:
        return True, -1
    first = t.acl_start[acl_vn]
    for i in range(first, first + t.acl_len[acl_vn]):
        if not _side_has(t, t.acl_src_kind[i], t.acl_src[i], src_vn):
            continue
        if not _side_has(t, t.acl_dst_kind[i], t.acl_dst[i], dst_vn):
            continue
        p = t.acl_proto[i]
        if p != 0 and p != proto:
            continue
        if proto != PROTO_ICMP:
            if sport < t.acl_sport_lo[i] or sport > t.acl_sport_hi[i]:
                continue
            if dport < t.acl_dport_lo[i] or dport > t.acl_dport_hi[i]:
                continue
        return t.acl_action[i] == ACTION_PASS, t.acl_ref[i]
    return True, -1


@njit(cache=True)
def program_decide(t: NodeTables, program: int, peer: np.uint32, proto: int, port: int) -> tuple[bool, int]:
    """(allowed?, rule ref): a pod's NetworkPolicy allow-list for one peer address and port.

    NO_PROGRAM (no policy selects the pod in that direction) allows, with ref -1; a denial
    returns the program's own ref, which names the isolating policies.
    """
    if program == NO_PROGRAM:
        return True, -1
    lo = t.prog_iv_start[program]
    hi = lo + t.prog_iv_len[program]  # exclusive; iv_lo[lo] == 0 so the search always lands
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if t.iv_lo[mid] <= peer:
            lo = mid
        else:
            hi = mid
    first = t.iv_e_start[lo]
    for e in range(first, first + t.iv_e_len[lo]):
        p = t.pe_proto[e]
        if p == 0:
            return True, t.pe_ref[e]
        if p == proto and t.pe_lo[e] <= port and port <= t.pe_hi[e]:
            return True, t.pe_ref[e]
    return False, t.prog_ref[program]
