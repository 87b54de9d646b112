"""ECMP member choice over a composite nexthop's slots.

The hash covers the configured fields of the flow key (all five by default, the vRouter's
"Valid Hash Key Parameters"); the slot is the hash modulo the slot count. A hole (a member
that went away) falls back to the active members, so a new flow never picks a hole, and a
flow that already has a slot keeps it while its member lives. kube-proxy's random backend
choice uses the same hash: deterministic per connection, even across connections.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import KernelTables

FIELD_SIP = 1
FIELD_DIP = 2
FIELD_PROTO = 4
FIELD_SPORT = 8
FIELD_DPORT = 16


@kernel(cache=True, inline="always", _nrt=False)
def _mix(h: np.uint32, k: np.uint32) -> np.uint32:
    k = np.uint32(k * np.uint32(0xCC9E2D51))
    k = np.uint32((k << np.uint32(15)) | (k >> np.uint32(17)))
    k = np.uint32(k * np.uint32(0x1B873593))
    h = np.uint32(h ^ k)
    h = np.uint32((h << np.uint32(13)) | (h >> np.uint32(19)))
    return np.uint32(h * np.uint32(5) + np.uint32(0xE6546B64))


@kernel(cache=True, inline="always", _nrt=False)
def ecmp_hash(sip: int, dip: int, proto: int, sport: int, dport: int, fields: int) -> np.uint32:
    """MurmurHash3-style hash of the selected fields, seeded apart from the flow-table hash.

    Words: sip, dip, (proto << 16), (sport << 16 | dport), each zero when not selected.
    Seed 0x9747B28C; finaliser as MurmurHash3's (length 16).
    """
    h = np.uint32(0x9747B28C)
    h = _mix(h, np.uint32(sip) if fields & FIELD_SIP else np.uint32(0))
    h = _mix(h, np.uint32(dip) if fields & FIELD_DIP else np.uint32(0))
    h = _mix(h, np.uint32(proto << 16) if fields & FIELD_PROTO else np.uint32(0))
    ports = np.uint32(0)
    if fields & FIELD_SPORT:
        ports |= np.uint32(sport << 16)
    if fields & FIELD_DPORT:
        ports |= np.uint32(dport)
    h = _mix(h, ports)
    h = np.uint32(h ^ np.uint32(16))
    h = np.uint32(h ^ (h >> np.uint32(16)))
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h = np.uint32(h ^ (h >> np.uint32(13)))
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return np.uint32(h ^ (h >> np.uint32(16)))


@kernel(cache=True, inline="always", _nrt=False)
def ecmp_choose(kt: KernelTables, composite: int, h: np.uint32) -> tuple[int, int]:
    """(slot, member nexthop) for hash ``h``: the hashed slot, or an active one if it is a hole.

    (-1, -1) when every slot is a hole.
    """
    start = kt.nhs[composite].member_start
    n = kt.nhs[composite].member_len
    if n == 0:
        return -1, -1
    slot = np.int64(h % np.uint32(n))
    member = kt.members[start + slot]
    if member >= 0:
        return slot, member
    active = 0
    for s in range(n):
        if kt.members[start + s] >= 0:
            active += 1
    if active == 0:
        return -1, -1
    pick = np.int64(h % np.uint32(active))
    for s in range(n):
        if kt.members[start + s] >= 0:
            if pick == 0:
                return s, kt.members[start + s]
            pick -= 1
    return -1, -1  # pragma: no cover


@kernel(cache=True, inline="always", _nrt=False)
def ecmp_member(kt: KernelTables, composite: int, slot: int) -> int:
    """The member in ``slot``, or -1 for a hole or a slot past the end."""
    if slot < 0 or slot >= kt.nhs[composite].member_len:
        return -1
    return kt.members[kt.nhs[composite].member_start + slot]
