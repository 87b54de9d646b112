"""Compile VN ACLs and security-group / NetworkPolicy allow-lists into flat arrays.

An allow-list becomes a *program*: the address space cut into intervals at every boundary
its rules mention, each interval with the (protocol, port range, rule) entries that cover
it. Flow setup binary-searches the peer's address, then scans that interval's few entries,
so a thousand policy rules cost a dozen comparisons, not a thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from controlplane.controller.acl import AclEntry, VnSet
from controlplane.controller.netpol import Direction
from controlplane.tf.model import FqName
from vrouter.agent.rules import RuleBook
from vrouter.dataplane.tables import SIDE_ANY, SIDE_SET, SIDE_VN


@dataclass
class ProgramArrays:
    """The concatenated programs of one node, ready to become NodeTables fields."""

    iv_start: list[int] = field(default_factory=list)
    iv_len: list[int] = field(default_factory=list)
    ref: list[int] = field(default_factory=list)
    iv_lo: list[int] = field(default_factory=list)
    iv_e_start: list[int] = field(default_factory=list)
    iv_e_len: list[int] = field(default_factory=list)
    pe_proto: list[int] = field(default_factory=list)
    pe_lo: list[int] = field(default_factory=list)
    pe_hi: list[int] = field(default_factory=list)
    pe_ref: list[int] = field(default_factory=list)
    ids: dict[int, int] = field(default_factory=dict)
    kept: list[Direction] = field(default_factory=list)

    def add(self, direction: Direction, book: RuleBook) -> int:
        """The program id of an isolated direction (shared by every pod the controller gave
        that same Direction object: keyed by identity, since hashing thousands of allows
        for every pod costs more than compiling them)."""
        found = self.ids.get(id(direction))
        if found is not None:
            return found
        program = len(self.iv_start)
        self.ids[id(direction)] = program
        self.kept.append(direction)
        allows = direction.allows
        n = len(allows)
        lo = np.fromiter((a.lo for a in allows), np.int64, n)
        hi = np.fromiter((a.hi for a in allows), np.int64, n)
        # interval starts: 0 and every allow's first address and the one after its last
        starts = np.unique(np.concatenate([[0], lo, hi[hi < 0xFFFFFFFF] + 1]))
        first = np.searchsorted(starts, lo, side="left")
        last = np.searchsorted(starts, hi, side="right")
        counts = last - first
        # one entry per (interval, covering allow), in allow order within an interval
        allow_of_entry = np.repeat(np.arange(n), counts)
        interval_of_entry = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        order = np.lexsort((allow_of_entry, interval_of_entry))
        allow_of_entry = allow_of_entry[order]
        per_interval = np.bincount(interval_of_entry, minlength=starts.shape[0])
        base = len(self.pe_proto)
        self.iv_start.append(len(self.iv_lo))
        self.iv_len.append(int(starts.shape[0]))
        denial = "isolated by NetworkPolicy " + ", ".join(direction.policies) + " (no rule allows it)"
        self.ref.append(book.ref(denial))
        self.iv_lo.extend(starts.tolist())
        self.iv_e_start.extend((base + np.cumsum(per_interval) - per_interval).tolist())
        self.iv_e_len.extend(per_interval.tolist())
        refs: dict[object, int] = {}
        proto = [a.protocol for a in allows]
        port_lo = [a.port_lo for a in allows]
        port_hi = [a.port_hi for a in allows]
        ref_of = []
        for a in allows:
            ref = refs.get(a.ref)
            if ref is None:
                ref = refs[a.ref] = book.ref(str(a.ref))
            ref_of.append(ref)
        for i in allow_of_entry.tolist():
            self.pe_proto.append(proto[i])
            self.pe_lo.append(port_lo[i])
            self.pe_hi.append(port_hi[i])
            self.pe_ref.append(ref_of[i])
        return program

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "prog_iv_start": np.array(self.iv_start, dtype=np.int32),
            "prog_iv_len": np.array(self.iv_len, dtype=np.int32),
            "prog_ref": np.array(self.ref, dtype=np.int32),
            "iv_lo": np.array(self.iv_lo, dtype=np.uint32),
            "iv_e_start": np.array(self.iv_e_start, dtype=np.int32),
            "iv_e_len": np.array(self.iv_e_len, dtype=np.int32),
            "pe_proto": np.array(self.pe_proto, dtype=np.uint8),
            "pe_lo": np.array(self.pe_lo, dtype=np.uint16),
            "pe_hi": np.array(self.pe_hi, dtype=np.uint16),
            "pe_ref": np.array(self.pe_ref, dtype=np.int32),
        }


@dataclass
class AclArrays:
    """Every VN's ACL on one node, with the VN sets its entries name."""

    start: dict[int, int] = field(default_factory=dict)
    length: dict[int, int] = field(default_factory=dict)
    rows: dict[str, list[int]] = field(
        default_factory=lambda: {k: [] for k in ("src_kind", "src", "dst_kind", "dst", "proto", "sport_lo", "sport_hi", "dport_lo", "dport_hi", "action", "ref")}
    )
    sets: dict[frozenset[FqName], int] = field(default_factory=dict)

    def side(self, side: VnSet, vrf_of: dict[FqName, int]) -> tuple[int, int]:
        if side.members is None:
            return SIDE_ANY, 0
        members = frozenset(m for m in side.members if m in vrf_of)
        if len(side.members) == 1:
            (only,) = tuple(side.members)
            return SIDE_VN, vrf_of.get(only, -1)
        if members not in self.sets:
            self.sets[members] = len(self.sets)
        return SIDE_SET, self.sets[members]

    def add_vn(self, vrf: int, acl: Sequence[AclEntry], vrf_of: dict[FqName, int], book: RuleBook) -> None:
        self.start[vrf] = len(self.rows["ref"])
        self.length[vrf] = len(acl)
        for entry in acl:
            src_kind, src = self.side(entry.src, vrf_of)
            dst_kind, dst = self.side(entry.dst, vrf_of)
            for key, value in (
                ("src_kind", src_kind),
                ("src", src),
                ("dst_kind", dst_kind),
                ("dst", dst),
                ("proto", entry.protocol),
                ("sport_lo", entry.src_ports[0]),
                ("sport_hi", entry.src_ports[1]),
                ("dport_lo", entry.dst_ports[0]),
                ("dport_hi", entry.dst_ports[1]),
                ("action", 1 if entry.action == "pass" else 0),
                ("ref", book.ref(entry.describe())),
            ):
                self.rows[key].append(value)

    def arrays(self, n_vrfs: int, vrf_of: dict[FqName, int]) -> dict[str, np.ndarray]:
        bits = np.zeros((max(1, len(self.sets)), max(1, n_vrfs)), dtype=np.uint8)
        for members, set_id in self.sets.items():
            for vn in members:
                bits[set_id, vrf_of[vn]] = 1
        types = {
            "src_kind": np.int8,
            "src": np.int32,
            "dst_kind": np.int8,
            "dst": np.int32,
            "proto": np.uint8,
            "sport_lo": np.uint16,
            "sport_hi": np.uint16,
            "dport_lo": np.uint16,
            "dport_hi": np.uint16,
            "action": np.uint8,
            "ref": np.int32,
        }
        out = {f"acl_{k}": np.array(v, dtype=types[k]) for k, v in self.rows.items()}
        out["acl_start"] = np.zeros(n_vrfs, dtype=np.int32)
        out["acl_len"] = np.zeros(n_vrfs, dtype=np.int32)
        for vrf, first in self.start.items():
            out["acl_start"][vrf] = first
            out["acl_len"][vrf] = self.length[vrf]
        out["vnset_bits"] = bits
        return out
