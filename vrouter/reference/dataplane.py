"""A plain-Python reference of the forwarding plane, written from ``docs/dataplane.md`` alone.

Why it exists: the numba kernel (``vrouter.dataplane.pipeline`` driven by ``vrouter.lab.fabric``)
is fast and therefore intricate; this module is a second, independent reading of the same
written rules, slow and obvious, so that a test feeding both the same tables and packets
finds any place where one of them strays from the page. Section numbers (§n) below are those
of ``docs/dataplane.md``.

It reads only the data contracts: the tables (``NodeTables``), the packet rows (``PACKET``),
and the documented hashes (MurmurHash3 x86_32 for the flow table, the ECMP hash). Nothing is
imported from the kernel's own modules apart from constants.

Organisation:

- hashes: :func:`murmur3_words`, :func:`flow_hash`, :func:`ecmp_hash`;
- :class:`FlowTable`: the flow entries of one node, with the real table's placement (4-slot
  buckets, a shared overflow area with its free stack), so capacity and indices match;
- :class:`ReferenceNode`: one vRouter: ingress (§1), flow lookup (§2), flow setup (§3), the
  flow's action (§4), stateless forwarding (§5), forwarding (§6), output (§7), ageing (§9);
- :class:`ReferenceFabric`: the driver (§0) over all nodes, and ``advance`` for ageing.

Where the page leaves something open, the reading taken here (each confirmed against the
kernel's observable behaviour, none taken from its code):

- §0: a row moved to its next hop starts with ``out_vif``, ``out_node``, ``out_label`` = -1; a
  node with no rows in a round does not run, so time only passes for nodes that do.
- §2/§3: ``keep_slot`` keeps a re-decided flow's ECMP member while that slot holds one; a
  re-decision counts against the call's setup budget (it is just never refused).
- §3.6: writing a decision (new, HOLD, re-decided or taken-over entry) starts its TCP state
  afresh; a taken-over entry's old partner becomes a lone entry; the reverse entry carries
  VRF_TRANSLATE when its VRF differs from the forward destination VRF.
- §4: a DROP flow is not TCP-tracked (a RST does not remove it).
- §5/§6: "the ECMP hash of the 5-tuple" is of the packet as it arrived, never of the rewritten
  header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from controlplane.config import VRouterSettings
from vrouter.dataplane.packets import (
    dropstats_counts,
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
    N_DROP_REASONS,
    PACKET,
    PENDING,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from vrouter.dataplane.state import (
    ACTION_DROP,
    ACTION_FORWARD,
    ACTION_HOLD,
    ACTION_NAT,
    FLAG_DNAT,
    FLAG_DPAT,
    FLAG_REVERSE,
    FLAG_SNAT,
    FLAG_SPAT,
    FLAG_VRF_TRANSLATE,
    TCP_ESTABLISHED,
    TCP_SEEN_SYN,
    TCP_SEEN_SYNACK,
)
from vrouter.dataplane.state import TCP_FIN as TCP_STATE_FIN
from vrouter.dataplane.tables import (
    ACTION_PASS,
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
    NO_PROGRAM,
    PROTO_ICMP,
    PROTO_TCP,
    SIDE_ANY,
    SIDE_SET,
    SIDE_VN,
    VIF_FABRIC,
    VIF_HOST,
    VIF_VM,
)

U32 = 0xFFFFFFFF
MAX_HOPS = 8  # §0: a row that passed this many kernels is dropped instead of moving on
ROUND_NS = 1000  # §0: simulated time passing before each node's run (nodes without rows do not run)
ECMP_SEED = 0x9747B28C
ALL_ECMP_FIELDS = 31  # sip | dip | proto | sport | dport (kube-proxy's backend choice)
_FIELDS = PACKET.names


# ------------------------------------------------------------------------------ hashes (§8)


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & U32


def murmur3_words(words: tuple[int, ...], seed: int = 0) -> int:
    """MurmurHash3_x86_32 of whole little-endian 32-bit words (no tail: both users hash 16 bytes)."""
    h = seed & U32
    for w in words:
        k = (w & U32) * 0xCC9E2D51 & U32
        k = _rotl32(k, 15) * 0x1B873593 & U32
        h = (_rotl32(h ^ k, 13) * 5 + 0xE6546B64) & U32
    h ^= 4 * len(words)
    h ^= h >> 16
    h = h * 0x85EBCA6B & U32
    h ^= h >> 13
    h = h * 0xC2B2AE35 & U32
    h ^= h >> 16
    return h


FlowKey = tuple[int, int, int, int, int, int]  # (key_nh, sip, dip, proto, sport, dport)


def pack_key(key: FlowKey) -> tuple[int, int, int, int]:
    """The four key words: sip, dip, sport<<16|dport, key_nh<<8|proto (fields masked to width)."""
    key_nh, sip, dip, proto, sport, dport = key
    return (sip & U32, dip & U32, ((sport & 0xFFFF) << 16) | (dport & 0xFFFF), ((key_nh & 0xFFFFFF) << 8) | (proto & 0xFF))


def flow_hash(key: FlowKey) -> int:
    """Flow-table hash: MurmurHash3 x86_32, seed 0, of the packed key's 16 bytes."""
    return murmur3_words(pack_key(key), 0)


def ecmp_hash(sip: int, dip: int, proto: int, sport: int, dport: int, fields: int) -> int:
    """ECMP hash: words sip, dip, proto<<16, sport<<16|dport, each zero when not selected."""
    words = (
        sip & U32 if fields & 1 else 0,
        dip & U32 if fields & 2 else 0,
        (proto & 0xFF) << 16 if fields & 4 else 0,
        ((sport & 0xFFFF) << 16 if fields & 8 else 0) | (dport & 0xFFFF if fields & 16 else 0),
    )
    return murmur3_words(words, ECMP_SEED)


# --------------------------------------------------------------------------- flow table


@dataclass
class FlowEntry:
    """One flow: what the agent decided, and what the packets did since."""

    key: FlowKey
    action: int = ACTION_HOLD
    flags: int = 0
    rflow: int = -1
    ecmp: int = -1
    dvrf: int = -1
    drop: int = 0
    nat: tuple[int, int, int, int] = (0, 0, 0, 0)  # sip, dip, sport, dport
    tcp: int = 0
    held: int = 0
    packets: int = 0
    bytes: int = 0
    last: int = 0
    gen: int = 0  # the tables' generation it was decided in


class FlowTable:
    """Flow entries by index, placed as the real table places them, so capacity matches.

    A key goes to the first free of the 4 slots of bucket ``hash & (n_buckets - 1)``
    (index ``bucket * 4 + slot``), else to the top of the overflow free stack (initially
    ``n_main, n_main + 1, ...``; a freed overflow entry is reused next), else the table is
    full. An entry never moves.
    """

    def __init__(self, n_entries: int, overflow_fraction: float) -> None:
        n_buckets = 1
        while n_buckets < -(-n_entries // 4):
            n_buckets *= 2
        self.n_buckets = n_buckets
        self.n_main = 4 * n_buckets
        self.n_overflow = math.ceil(overflow_fraction * self.n_main)
        self.entries: dict[int, FlowEntry] = {}
        self.index: dict[FlowKey, int] = {}
        # a stack: the end of the list is the top
        self.free_overflow = list(range(self.n_main + self.n_overflow - 1, self.n_main - 1, -1))

    def find(self, key: FlowKey) -> int:
        return self.index.get(key, -1)

    def insert(self, key: FlowKey, now: int) -> int:
        """Index of a new HOLD entry for ``key`` (which must be absent), or -1 when full."""
        first = (flow_hash(key) & (self.n_buckets - 1)) * 4
        where = next((i for i in range(first, first + 4) if i not in self.entries), -1)
        if where < 0 and self.free_overflow:
            where = self.free_overflow.pop()
        if where >= 0:
            self.entries[where] = FlowEntry(key, last=now)
            self.index[key] = where
        return where

    def remove(self, i: int) -> None:
        """Free entry ``i``; a free index is a no-op."""
        entry = self.entries.pop(i, None)
        if entry is None:
            return
        del self.index[entry.key]
        if i >= self.n_main:
            self.free_overflow.append(i)


# ------------------------------------------------------------------------------ one node


def _plain(tables: Any) -> SimpleNamespace:
    """The node's tables as Python lists of ints (fast to index, no numpy integer wrap)."""
    out = {}
    for name, value in tables._asdict().items():
        if isinstance(value, np.ndarray):
            out[name] = value.tolist()
    return SimpleNamespace(**out)


class ReferenceNode:
    """One vRouter: its tables, its flow table and its counters."""

    def __init__(self, index: int, tables: Any, settings: VRouterSettings) -> None:
        self.index = index
        self.hold_queue = settings.holdQueue
        self.flows = FlowTable(settings.flowEntries, settings.overflowFraction)
        self.drops = [0] * N_DROP_REASONS
        self.setups_total = 0
        self.now = 0
        self.budget = 0
        self.load(tables)

    def load(self, tables: Any) -> None:
        """Take (new) tables; flows and counters stay, as ids are stable across compilations."""
        self.t = _plain(tables)
        self.here = int(self.t.node_index[0])
        self.vxlan = int(self.t.encapsulation[0]) == ENCAP_VXLAN
        self.fields = int(self.t.ecmp_fields[0])
        self.generation = int(self.t.generation[0])
        # routes per VRF for the linear longest-prefix scan: (prefix, mask, plen, route id)
        self.routes: dict[int, list[tuple[int, int, int, int]]] = {}
        t = self.t
        for rid, (prefix, plen, vrf) in enumerate(zip(t.route_prefix, t.route_plen, t.route_vrf, strict=True)):
            mask = (U32 << (32 - plen)) & U32 if plen else 0
            self.routes.setdefault(vrf, []).append((prefix & mask, mask, plen, rid))

    # --- small table readers ------------------------------------------------------------
    def route(self, vrf: int, addr: int) -> int:
        """Nexthop of the longest prefix of ``vrf`` holding ``addr`` (the later route on a tie), or -1."""
        best_len, best_rid = -1, -1
        for prefix, mask, plen, rid in self.routes.get(vrf, ()):
            if addr & mask == prefix and plen >= best_len:
                best_len, best_rid = plen, rid
        return self.t.route_nh[best_rid] if best_rid >= 0 else -1

    def member(self, nh: int, slot: int) -> int:
        t = self.t
        if 0 <= slot < t.nh_member_len[nh]:
            return t.members[t.nh_member_start[nh] + slot]
        return -1

    def ecmp_choose(self, nh: int, h: int) -> tuple[int, int]:
        """(slot, member): slot ``h mod n``; a hole → the ``(h mod active)``-th active slot."""
        n = self.t.nh_member_len[nh]
        if n <= 0:
            return -1, -1
        slot = h % n
        m = self.member(nh, slot)
        if m >= 0:
            return slot, m
        active = [s for s in range(n) if self.member(nh, s) >= 0]
        if not active:
            return -1, -1
        slot = active[h % len(active)]
        return slot, self.member(nh, slot)

    def port_map(self, nh: int, proto: int, port: int) -> int:
        """The target of (proto, port) in the nexthop's port map; the port itself when it has no
        map; -1 when the map lacks the entry."""
        t = self.t
        start, n = t.nh_pm_start[nh], t.nh_pm_len[nh]
        if n == 0:
            return port
        for i in range(start, start + n):
            if t.pm_proto[i] == proto and t.pm_port[i] == port:
                return t.pm_target[i]
        return -1

    def vif_type(self, vif: int) -> int:
        return self.t.vif_type[vif] if 0 <= vif < len(self.t.vif_type) else -1

    def _side_has(self, kind: int, value: int, vn: int) -> bool:
        if kind == SIDE_ANY:
            return True
        if kind == SIDE_VN:
            return value == vn
        if kind == SIDE_SET:
            bits = self.t.vnset_bits
            return 0 <= value < len(bits) and 0 <= vn < len(bits[value]) and bits[value][vn] == 1
        return False

    def acl_passes(self, acl_vn: int, src_vn: int, dst_vn: int, proto: int, sport: int, dport: int) -> bool:
        """The first matching entry of ``acl_vn``'s ACL decides; no match passes."""
        t = self.t
        if not 0 <= acl_vn < len(t.acl_start):
            return True
        first = t.acl_start[acl_vn]
        for i in range(first, first + t.acl_len[acl_vn]):
            if not (self._side_has(t.acl_src_kind[i], t.acl_src[i], src_vn) and self._side_has(t.acl_dst_kind[i], t.acl_dst[i], dst_vn)):
                continue
            if t.acl_proto[i] not in (0, proto):
                continue
            if proto != PROTO_ICMP and not (
                t.acl_sport_lo[i] <= sport <= t.acl_sport_hi[i] and t.acl_dport_lo[i] <= dport <= t.acl_dport_hi[i]
            ):
                continue
            return t.acl_action[i] == ACTION_PASS
        return True

    def program_allows(self, program: int, peer: int, proto: int, port: int) -> bool:
        """The interval holding ``peer``; allowed by an entry of protocol 0, or of the packet's
        protocol with the port in range. NO_PROGRAM allows."""
        if program == NO_PROGRAM:
            return True
        t = self.t
        first, n = t.prog_iv_start[program], t.prog_iv_len[program]
        holding = -1
        for iv in range(first, first + n):  # starts are sorted: the last start <= peer holds it
            if t.iv_lo[iv] <= peer:
                holding = iv
        if holding < 0:
            return False
        start = t.iv_e_start[holding]
        for e in range(start, start + t.iv_e_len[holding]):
            if t.pe_proto[e] == 0 or (t.pe_proto[e] == proto and t.pe_lo[e] <= port <= t.pe_hi[e]):
                return True
        return False

    # --- outcomes -----------------------------------------------------------------------------
    def drop(self, p: dict, reason: int) -> None:
        p["outcome"] = DROPPED
        p["drop_reason"] = reason
        self.drops[reason] += 1

    def output(self, p: dict, nh: int) -> None:
        """§7: hand the packet to a final (non-composite) nexthop."""
        t = self.t
        kind = t.nh_type[nh]
        if kind == NH_ENCAP:
            p["out_vif"] = t.nh_vif[nh]
            p["outcome"] = HOST if t.nh_vif[nh] == VIF_HOST else DELIVERED
        elif kind == NH_RECEIVE:
            p["outcome"] = HOST
            p["out_vif"] = VIF_HOST
        elif kind == NH_TUNNEL:
            p["outcome"] = FABRIC
            p["out_node"] = t.nh_node[nh]
            p["out_label"] = t.nh_label[nh]
        elif kind == NH_UNDERLAY:
            p["outcome"] = FABRIC
            p["out_node"] = t.nh_node[nh]
            p["out_label"] = -1
        elif kind == NH_DISCARD:
            self.drop(p, DROP_NO_ROUTE if t.nh_flags[nh] & NH_FLAG_NO_ROUTE else DROP_DISCARD)
        else:  # not a final nexthop (never routed to by the agent)
            self.drop(p, DROP_DISCARD)

    def _packet_hash(self, p: dict) -> int:
        """The ECMP hash of the packet's 5-tuple as it arrived (the flow key's), never of the
        rewritten header: a reply rewritten toward a ClusterIP hashes what it was sent with."""
        return ecmp_hash(p["sip"], p["dip"], p["proto"], p["sport"], p["dport"], self.fields)

    def stateless(self, p: dict, vrf: int) -> None:
        """§5: no policy: route, ECMP by hash, TTL, output."""
        nh = self.route(vrf, p["out_dip"])
        if nh < 0:
            return self.drop(p, DROP_NO_ROUTE)
        if self.t.nh_type[nh] == NH_COMPOSITE:
            slot, member = self.ecmp_choose(nh, self._packet_hash(p))
            if member < 0:
                return self.drop(p, DROP_NO_ROUTE)
            p["ecmp_slot"] = slot
            nh = member
        if p["out_ttl"] <= 1:
            return self.drop(p, DROP_TTL)
        p["out_ttl"] -= 1
        self.output(p, nh)

    def forward(self, p: dict, entry: FlowEntry, vrf: int, label_nh: int, routed: bool) -> None:
        """§6: route the (maybe rewritten) packet in the flow's VRF, keep the flow's ECMP slot."""
        t = self.t
        if label_nh >= 0 and p["out_dip"] == p["dip"]:
            nh = label_nh
        else:
            nh = self.route(vrf, p["out_dip"])
            if nh < 0:
                return self.drop(p, DROP_NO_ROUTE)
        if t.nh_type[nh] == NH_COMPOSITE:
            slot = entry.ecmp
            member = self.member(nh, slot)
            if member < 0:
                slot, member = self.ecmp_choose(nh, self._packet_hash(p))
                entry.ecmp = slot
            if member < 0:
                return self.drop(p, DROP_NO_ROUTE)
            p["ecmp_slot"] = slot
            nh = member
        if routed:
            if p["out_ttl"] <= 1:
                return self.drop(p, DROP_TTL)
            p["out_ttl"] -= 1
        self.output(p, nh)

    # --- one packet (§1, §2) -------------------------------------------------------------
    def packet(self, p: dict) -> None:
        t = self.t
        if p["outcome"] == PENDING:
            for f in ("sip", "dip", "sport", "dport", "ttl"):
                p["out_" + f] = p[f]
            p["hops"] += 1
        p["ecmp_slot"] = -1
        p["flow"] = -1
        vif = p["in_vif"]
        if self.vif_type(vif) == -1:
            return self.drop(p, DROP_INVALID_VIF)
        label_nh, src_vif = -1, -1
        label = p["in_label"]
        if label >= 0:
            if self.vxlan:
                if not (label < len(t.vni_vrf) and t.vni_vrf[label] >= 0):
                    return self.drop(p, DROP_INVALID_LABEL)
                vrf = t.vni_vrf[label]
                nh = self.route(vrf, p["dip"])
                if nh >= 0 and t.nh_type[nh] == NH_COMPOSITE:
                    nh = self.vxlan_local_member(nh, ecmp_hash(p["sip"], p["dip"], p["proto"], p["sport"], p["dport"], self.fields))
                if not (nh >= 0 and t.nh_type[nh] == NH_ENCAP and t.nh_flags[nh] & NH_FLAG_POLICY):
                    return self.stateless(p, vrf)
                label_nh = key_nh = nh
                vrf = t.nh_vrf[nh]
            else:
                if not (label < len(t.mpls_nh) and t.mpls_nh[label] >= 0):
                    return self.drop(p, DROP_INVALID_LABEL)
                nh = t.mpls_nh[label]
                vrf = t.nh_vrf[nh]
                if t.nh_type[nh] != NH_ENCAP:
                    return self.stateless(p, vrf)
                if not t.nh_flags[nh] & NH_FLAG_POLICY:
                    return self.output(p, nh)  # straight to the interface: no flow, no TTL change
                label_nh = key_nh = nh
        else:
            vrf = t.vif_vrf[vif]
            key_nh = t.vif_nh[vif]
            src_vif = vif
            if not t.vif_policy[vif]:
                return self.stateless(p, vrf)

        key = (key_nh, p["sip"], p["dip"], p["proto"], p["sport"], p["dport"])
        index = self.flows.find(key)
        entry = self.flows.entries.get(index)
        if entry is not None and entry.action == ACTION_HOLD:
            if self.budget <= 0:
                if entry.held < self.hold_queue:
                    entry.held += 1
                    p["outcome"] = HELD
                    return None
                return self.drop(p, DROP_FLOW_QUEUE_LIMIT)
            index = self.setup(p, key, index, vrf, src_vif, label_nh)
        elif entry is not None and entry.gen != self.generation:
            # decided under older tables: replies of an allowed flow stay allowed; a forward
            # flow is decided again (whatever the budget), keeping its ECMP member if it lives
            if entry.flags & FLAG_REVERSE:
                entry.gen = self.generation
            else:
                index = self.setup(p, key, index, vrf, src_vif, label_nh, keep_slot=entry.ecmp, again=True)
        elif index < 0:
            if self.budget <= 0:
                index = self.flows.insert(key, self.now)
                if index < 0:
                    return self.drop(p, DROP_FLOW_TABLE_FULL)
                self.flows.entries[index].held = 1
                p["outcome"] = HELD
                return None
            index = self.setup(p, key, -1, vrf, src_vif, label_nh)
        if index >= 0:
            self.act(p, index, label_nh)
        return None

    def vxlan_local_member(self, nh: int, h: int) -> int:
        """Arriving by VNI at a composite: the ``h mod count``-th of its local (ENCAP) members."""
        t = self.t
        local = [m for s in range(t.nh_member_len[nh]) if (m := self.member(nh, s)) >= 0 and t.nh_type[m] == NH_ENCAP]
        return local[h % len(local)] if local else -1

    # --- flow setup (§3) -------------------------------------------------------------
    def setup(
        self, p: dict, key: FlowKey, forward: int, vrf: int, src_vif: int, label_nh: int, keep_slot: int = -1, again: bool = False
    ) -> int:
        """The agent's decision; installs the flow (and its reverse). Returns the forward index,
        or -1 when the packet was dropped for a full table. ``again``: ``forward`` is an existing
        flow decided anew after a configuration change, its ECMP slot ``keep_slot``."""
        t = self.t
        self.budget -= 1
        self.setups_total += 1
        key_nh = key[0]
        sip, dip, proto, sport, dport = p["sip"], p["dip"], p["proto"], p["sport"], p["dport"]
        new_sip, new_dip, new_sport, new_dport = sip, dip, sport, dport
        dvrf, slot, reason = vrf, -1, 0
        dest, dst_vn = -1, -1
        dnat = kube_snat = False

        # 1. destination
        if label_nh >= 0:
            dest = label_nh
            dst_vn = t.nh_dst_vn[dest]
        else:
            nh = self.route(vrf, dip)
            if nh < 0:
                reason = DROP_NO_ROUTE
            else:
                dst_vn = t.nh_dst_vn[nh]
                if t.nh_type[nh] == NH_DISCARD:
                    reason = DROP_NO_ROUTE if t.nh_flags[nh] & NH_FLAG_NO_ROUTE else DROP_DISCARD
                elif t.nh_type[nh] == NH_COMPOSITE:
                    kept = self.member(nh, keep_slot)
                    if kept >= 0:  # a flow decided again keeps its member while it lives
                        slot, dest = keep_slot, kept
                    else:
                        slot, dest = self.ecmp_choose(nh, ecmp_hash(sip, dip, proto, sport, dport, self.fields))
                    if dest < 0:
                        reason = DROP_NO_ROUTE
                else:
                    dest = nh

        # 2. NAT: a floating IP on a local interface, or a kube-proxy NodePort on this node
        if not reason:
            kind = t.nh_type[dest]
            if kind == NH_ENCAP and t.nh_flags[dest] & NH_FLAG_FIP and t.nh_fip[dest] == dip:
                target = dport if proto == PROTO_ICMP else self.port_map(dest, proto, dport)
                if target < 0:
                    reason = DROP_NO_PORT_MAP
                else:
                    new_dip, new_dport = t.nh_dst_ip[dest], target
                    dvrf = t.vif_vrf[t.nh_vif[dest]]
                    dnat = True
            elif kind == NH_RECEIVE and label_nh < 0 and dip == t.node_ip[self.here]:
                rule = next((r for r in range(len(t.np_proto)) if t.np_proto[r] == proto and t.np_port[r] == dport), -1)
                if rule >= 0:
                    n = t.np_b_len[rule]
                    if n == 0:
                        reason = DROP_NO_BACKEND
                    else:
                        b = t.np_b_start[rule] + ecmp_hash(sip, dip, proto, sport, dport, ALL_ECMP_FIELDS) % n
                        new_dip, new_dport = t.npb_ip[b], t.npb_port[b]
                        if t.np_snat[rule]:
                            new_sip = t.node_ip[self.here]
                            kube_snat = True
                        dnat = True
                        dvrf = t.vif_vrf[VIF_HOST]
                        nh = self.route(dvrf, new_dip)
                        if nh < 0 or t.nh_type[nh] == NH_DISCARD:
                            reason = DROP_NO_ROUTE
                        else:
                            dest = nh
                            dst_vn = t.nh_dst_vn[nh]

        # 3. who the sender's egress rules see: the chosen member's own address and port
        peer, peer_port = new_dip, new_dport
        if not reason and not dnat and slot >= 0 and t.nh_dst_ip[dest] != 0:
            peer = t.nh_dst_ip[dest]
            peer_port = dport if proto == PROTO_ICMP else self.port_map(dest, proto, dport)
            if peer_port < 0:
                reason = DROP_NO_PORT_MAP

        # 4. a local destination: ENCAP to a VM interface
        local = dest >= 0 and t.nh_type[dest] == NH_ENCAP and self.vif_type(t.nh_vif[dest]) == VIF_VM

        # 5. policy, the first denial decides
        if not reason:
            from_vm = src_vif >= 0 and self.vif_type(src_vif) == VIF_VM
            if src_vif >= 0:
                src_vn = t.vif_vrf[src_vif]
            else:
                nh = self.route(vrf, sip)
                src_vn = t.nh_dst_vn[nh] if nh >= 0 else -1
            if src_vif >= 0 and not self.acl_passes(src_vn, src_vn, dst_vn, proto, sport, dport):
                reason = DROP_POLICY
            elif local and dst_vn != src_vn and not self.acl_passes(dst_vn, src_vn, dst_vn, proto, sport, dport):
                reason = DROP_OUT_POLICY
            elif from_vm and not self.program_allows(t.vif_out_prog[src_vif], peer, proto, peer_port):
                reason = DROP_SG  # the sender's egress rules, as the agent names it
            elif local and not self.program_allows(t.vif_in_prog[t.nh_vif[dest]], new_sip, proto, new_dport):
                reason = DROP_OUT_SG  # a local receiver's ingress rules

        # 6. install the forward flow, then (when allowed) its reverse
        new = (new_sip, new_dip, new_sport, new_dport)
        flags = (
            (FLAG_SNAT if new_sip != sip else 0)
            | (FLAG_DNAT if new_dip != dip else 0)
            | (FLAG_SPAT if new_sport != sport else 0)
            | (FLAG_DPAT if new_dport != dport else 0)
        )
        action = ACTION_DROP if reason else ACTION_NAT if new != (sip, dip, sport, dport) else ACTION_FORWARD
        if again:  # the old reverse goes first
            old = self.flows.entries[forward]
            if old.rflow >= 0:
                self.flows.remove(old.rflow)
        if forward < 0:
            forward = self.flows.insert(key, self.now)
            if forward < 0:
                self.drop(p, DROP_FLOW_TABLE_FULL)
                return -1
        self._write(forward, action, flags | (FLAG_VRF_TRANSLATE if dvrf != vrf else 0), dvrf, new, slot, reason)
        self.flows.entries[forward].rflow = -1
        if reason:
            return forward

        if local:
            reverse_nh = t.vif_nh[t.nh_vif[dest]]
        elif t.nh_type[dest] == NH_RECEIVE:
            reverse_nh = t.vif_nh[VIF_HOST]
        elif kube_snat:
            reverse_nh = t.vif_nh[VIF_FABRIC]
        elif src_vif >= 0 and self.vif_type(src_vif) == VIF_VM:
            reverse_nh = key_nh
        else:
            reverse_nh = t.vif_nh[VIF_FABRIC]
        if proto == PROTO_ICMP:  # the echo id stays the source port both ways
            reverse_key = (reverse_nh, new_dip, new_sip, proto, new_sport, new_dport)
            reverse_nat = (dip, sip, sport, dport)
        else:
            reverse_key = (reverse_nh, new_dip, new_sip, proto, new_dport, new_sport)
            reverse_nat = (dip, sip, dport, sport)
        reverse = self.flows.find(reverse_key)
        if reverse < 0:
            reverse = self.flows.insert(reverse_key, self.now)
            if reverse < 0:
                self.flows.remove(forward)
                self.drop(p, DROP_FLOW_TABLE_FULL)
                return -1
        else:  # taken over: its old partner is left alone (a lone entry), not pointing at it
            old = self.flows.entries.get(self.flows.entries[reverse].rflow)
            if old is not None and old.rflow == reverse:
                old.rflow = -1
        inverse = (
            (FLAG_DNAT if flags & FLAG_SNAT else 0)
            | (FLAG_SNAT if flags & FLAG_DNAT else 0)
            | (FLAG_DPAT if flags & FLAG_SPAT else 0)
            | (FLAG_SPAT if flags & FLAG_DPAT else 0)
        )
        self._write(reverse, action, FLAG_REVERSE | inverse | (FLAG_VRF_TRANSLATE if dvrf != vrf else 0), vrf, reverse_nat, -1, 0)
        self.flows.entries[forward].rflow = reverse
        self.flows.entries[reverse].rflow = forward
        return forward

    def _write(self, index: int, action: int, flags: int, dvrf: int, nat: tuple, ecmp: int, reason: int) -> None:
        """Write a decision into an entry (new, HOLD, decided again, or taken over as a reverse):
        the fields §3.6 names, and a fresh TCP state — the old one belonged to another decision
        (§3.6 is silent; the kernel does the same)."""
        e = self.flows.entries[index]
        e.action, e.flags, e.dvrf, e.nat, e.ecmp, e.drop = action, flags, dvrf, tuple(nat), ecmp, reason
        e.gen = self.generation
        e.tcp = 0

    # --- the flow's action (§4) -----------------------------------------------------------
    def act(self, p: dict, index: int, label_nh: int) -> None:
        entry = self.flows.entries[index]
        p["flow"] = index
        entry.packets += 1
        entry.bytes += p["length"]
        entry.last = self.now
        if entry.action == ACTION_DROP:
            return self.drop(p, entry.drop)
        if entry.action == ACTION_NAT:
            p["out_sip"], p["out_dip"], p["out_sport"], p["out_dport"] = entry.nat
        self.forward(p, entry, entry.dvrf, label_nh, routed=label_nh < 0)
        if p["proto"] == PROTO_TCP:
            self.tcp_track(index, p["tcp_flags"])
        return None

    def tcp_track(self, index: int, flags: int) -> None:
        """SYN, SYN-ACK, the ACK that establishes; RST closes the pair, so do FINs both ways."""
        entry = self.flows.entries.get(index)
        if entry is None:
            return
        reverse = self.flows.entries.get(entry.rflow) if entry.rflow >= 0 else None
        syn, ack = flags & TCP_SYN, flags & TCP_ACK
        if syn and not ack:
            entry.tcp |= TCP_SEEN_SYN
        elif syn and ack:
            entry.tcp |= TCP_SEEN_SYNACK
        elif ack and reverse is not None and reverse.tcp & TCP_SEEN_SYNACK:
            entry.tcp |= TCP_ESTABLISHED
            reverse.tcp |= TCP_ESTABLISHED
        if flags & TCP_RST:
            self.remove_pair(index)
        elif flags & TCP_FIN:
            entry.tcp |= TCP_STATE_FIN
            if reverse is not None and reverse.tcp & TCP_STATE_FIN:
                self.remove_pair(index)

    def remove_pair(self, index: int) -> None:
        entry = self.flows.entries.get(index)
        if entry is None:
            return
        self.flows.remove(index)
        if entry.rflow >= 0:
            self.flows.remove(entry.rflow)

    # --- a kernel call and ageing -----------------------------------------------------------
    def run(self, rows: list[dict], now: int, max_setups: int | None) -> int:
        """One kernel call over this node's pending and held rows (in row order)."""
        self.now = now
        self.budget = math.inf if max_setups is None else max_setups
        before = self.setups_total
        for p in rows:
            self.packet(p)
        return self.setups_total - before

    def age(self, now: int, idle: int) -> int:
        """§9: remove every pair whose two entries were both last used more than ``idle`` ns ago."""
        removed = 0
        entries = self.flows.entries
        for i in sorted(entries):
            entry = entries.get(i)
            if entry is None or now - entry.last <= idle:
                continue
            partner = entries.get(entry.rflow) if entry.rflow >= 0 else None
            if partner is not None and now - partner.last <= idle:
                continue
            self.remove_pair(i)
            removed += 1
        return removed


# -------------------------------------------------------------------------------- driver


class ReferenceFabric:
    """All nodes' vRouters and the rounds between them (§0), in plain Python."""

    def __init__(self, nodes: Mapping[str, Any], settings: VRouterSettings | None = None) -> None:
        self.settings = settings or VRouterSettings()
        ordered = sorted(nodes.values(), key=lambda n: n.index)
        self.names = [n.name for n in ordered]
        self.nodes = [ReferenceNode(n.index, n.tables, self.settings) for n in ordered]
        self.now = 0
        self.flow_setups = 0

    def update(self, nodes: Mapping[str, Any]) -> None:
        """New tables after a configuration change (same nodes); flows and counters stay."""
        for node in nodes.values():
            self.nodes[node.index].load(node.tables)

    def run(self, batch: np.ndarray, max_setups: int | None = None, max_rounds: int = 100_000) -> np.ndarray:
        """Run a batch to completion across the fabric; returns the final rows (dtype PACKET)."""
        rows = [dict(zip(_FIELDS, r, strict=True)) for r in np.asarray(batch, dtype=PACKET).tolist()]
        for _ in range(max_rounds):
            if not any(r["outcome"] in (PENDING, HELD) for r in rows):
                break
            for node in self.nodes:
                mine = [r for r in rows if r["node"] == node.index and r["outcome"] in (PENDING, HELD)]
                if mine:  # a node with nothing to do does not run, and time does not pass for it
                    self.now += ROUND_NS
                    self.flow_setups += node.run(mine, self.now, max_setups)
            for r in rows:
                if r["outcome"] != FABRIC:
                    continue
                if r["hops"] >= MAX_HOPS:
                    r["outcome"], r["drop_reason"] = DROPPED, DROP_TTL
                    self.nodes[r["node"]].drops[DROP_TTL] += 1
                    continue
                r["node"], r["in_vif"], r["in_label"] = r["out_node"], VIF_FABRIC, r["out_label"]
                for f in ("sip", "dip", "sport", "dport", "ttl"):
                    r[f] = r["out_" + f]
                # the next hop's outputs start unset (observed in the kernel's driver; §0 is
                # silent): a row dropped there shows no stale interface, node or label
                r["out_vif"], r["out_node"], r["out_label"] = -1, -1, -1
                r["outcome"] = PENDING
        else:
            raise RuntimeError(f"packets still pending after {max_rounds} rounds")
        return np.array([tuple(r[f] for f in _FIELDS) for r in rows], dtype=PACKET)

    def advance(self, seconds: float) -> int:
        """Let simulated time pass, then age out idle flows (§9). Returns pairs (or lone entries) removed."""
        self.now += int(seconds * 1e9)
        idle = int(self.settings.agingSeconds * 1e9)
        return sum(node.age(self.now, idle) for node in self.nodes)

    def drop_counters(self) -> dict[str, dict[str, int]]:
        """Every node's non-zero drop counters by the vRouter's ``dropstats`` names, like the kernel's."""
        return {name: dropstats_counts(node.drops) for name, node in zip(self.names, self.nodes, strict=True)}
