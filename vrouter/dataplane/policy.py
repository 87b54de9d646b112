"""Flow-setup decisions: VN-policy ACLs and security-group / NetworkPolicy programs.

Both return the rule reference that decided (an index into the agent's rule book) so the
flow remembers *why* it passes or drops, for ``flow -l`` and ``trace``.

Kernels here and in :mod:`vrouter.dataplane.pipeline` are compiled without numba's reference
counting (``_nrt=False``): they never allocate, and with it every array handed to a function
costs two atomic operations per call — for the tables' twenty arrays, more than the work.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import KernelTables
from vrouter.dataplane.tables import (
    ACTION_PASS,
    NO_PROGRAM,
    PROTO_ICMP,
    SIDE_ANY,
    SIDE_VN,
)


@kernel(cache=True, inline="always", _nrt=False)
def _side_has(bits: np.ndarray, kind: int, value: int, vn: int) -> bool:
    if kind == SIDE_ANY:
        return True
    if kind == SIDE_VN:
        return value == vn
    if vn < 0 or vn >= bits.shape[1]:
        return False
    return bits[value, vn] != 0


@kernel(cache=True, inline="always", _nrt=False)
def acl_decide(kt: KernelTables, acl_vn: int, src_vn: int, dst_vn: int, proto: int, sport: int, dport: int) -> tuple[bool, int]:
    """(pass?, deciding entry's rule ref or -1): the first matching entry of ``acl_vn``'s ACL.

    Uses: the packet's source/destination VN, protocol and ports. No match passes.
    """
    if acl_vn < 0 or acl_vn >= kt.acl_index.shape[0]:
        return True, -1
    first = kt.acl_index[acl_vn, 0]
    for i in range(first, first + kt.acl_index[acl_vn, 1]):
        e = kt.acls[i]
        if not _side_has(kt.vnset_bits, e.src_kind, e.src, src_vn):
            continue
        if not _side_has(kt.vnset_bits, e.dst_kind, e.dst, dst_vn):
            continue
        if e.proto != 0 and e.proto != proto:
            continue
        if proto != PROTO_ICMP:
            if sport < e.sport_lo or sport > e.sport_hi:
                continue
            if dport < e.dport_lo or dport > e.dport_hi:
                continue
        return e.action == ACTION_PASS, e.ref
    return True, -1


@kernel(cache=True, inline="always", _nrt=False)
def program_decide(kt: KernelTables, program: int, peer: np.uint32, proto: int, port: int) -> tuple[bool, int]:
    """(allowed?, rule ref): a pod's NetworkPolicy allow-list for one peer address and port.

    NO_PROGRAM (no policy selects the pod in that direction) allows, with ref -1; a denial
    returns the program's own ref, which names the isolating policies.
    """
    if program == NO_PROGRAM:
        return True, -1
    lo = np.int64(kt.programs[program, 0])
    hi = lo + kt.programs[program, 1]  # exclusive; iv_lo[lo] == 0 so the search always lands
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if kt.iv_lo[mid] <= peer:
            lo = mid
        else:
            hi = mid
    first = kt.iv_entries[lo, 0]
    for k in range(first, first + kt.iv_entries[lo, 1]):
        e = kt.program_entries[k]
        if e.proto == 0:
            return True, e.ref
        if e.proto == proto and e.lo <= port and port <= e.hi:
            return True, e.ref
    return False, kt.programs[program, 2]
