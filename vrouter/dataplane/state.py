"""A node's mutable forwarding state: flow entries and counters.

The flow table's keys live in :mod:`vrouter.dataplane.flow_table`; the data of each entry
(action, NAT, reverse index, ECMP slot, TCP state, counters, the rules that decided) lives
here, indexed by the same flow index. Tables are recompiled when the configuration changes;
this state survives it, as the real vRouter's flow table survives an agent update.

``out_nh`` caches, per entry, the nexthop a packet of the flow leaves through (route lookup
and ECMP member resolved once). It depends only on the flow and the tables, and an entry
decided under older tables is decided again before it is used (``gen``), so the cache never
outlives what it was computed from.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vrouter.dataplane.flow_table import FlowKeyTable, aligned_zeros, new_flow_table
from vrouter.dataplane.packets import N_DROP_REASONS

# flow actions
ACTION_FREE = 0
ACTION_HOLD = 1
ACTION_FORWARD = 2
ACTION_DROP = 3
ACTION_NAT = 4
ACTION_NAMES = ("-", "H", "F", "D", "N")

# flow flags
FLAG_SNAT = 1
FLAG_DNAT = 2
FLAG_SPAT = 4
FLAG_DPAT = 8
FLAG_VRF_TRANSLATE = 16
FLAG_REVERSE = 32
FLAG_NO_POLICY = 64
FLAG_OUT_ECMP = 128  # the cached output nexthop is an ECMP member (the packet reports its slot)

# TCP state bits
TCP_SEEN_SYN = 1
TCP_SEEN_SYNACK = 2
TCP_ESTABLISHED = 4
TCP_FIN = 8
TCP_CLOSED = 16

# flow-table counters
FC_CREATED = 0
FC_DELETED = 1
FC_SETUPS = 2
FC_HITS = 3
FC_MISSES = 4
FC_FULL = 5
FC_AGED = 6
FC_CLOSED = 7
FLOW_COUNTER_NAMES = ("created", "deleted", "setups", "hits", "misses", "table_full", "aged", "closed")


FLOW = np.dtype(
    [
        ("action", np.uint8),
        ("flags", np.uint8),
        ("tcp", np.uint8),
        ("held", np.uint8),
        ("drop", np.uint8),
        ("pad", np.uint8),
        ("ecmp", np.int16),  # ECMP slot, -1 unset
        ("rflow", np.int32),
        ("dvrf", np.int32),  # the VRF the (rewritten) packet is routed in
        ("gen", np.int32),  # the table generation the decision was made with
        ("key_nh", np.int32),
        ("nat_sip", np.uint32),  # the reverse flow's key, for NAT
        ("nat_dip", np.uint32),
        ("nat_sport", np.uint16),
        ("nat_dport", np.uint16),
        ("packets", np.uint32),
        ("bytes", np.uint64),
        ("last", np.int64),  # simulated time of the last packet (ns)
        ("route", np.int32),  # the route chosen at setup (traces)
        ("out_nh", np.int32),  # the nexthop the fast path outputs to; -1 until resolved
    ],
    align=True,
)  # 64 bytes: a flow's hot fields in one cache line

# columns of FlowState.refs: the rules that decided (indices into the agent's rule book);
# written on the forward flow of a pair only, a reverse flow reads its partner's row
REF_ACL = 0
REF_EGRESS = 1
REF_INGRESS = 2
REF_NAT = 3


class FlowState(NamedTuple):
    keys: FlowKeyTable
    entries: np.ndarray  # FLOW, indexed like the keys
    refs: np.ndarray  # int32[n, 4]


def new_flow_state(n_entries: int = 512 * 1024, overflow_fraction: float = 0.2) -> FlowState:
    keys = new_flow_table(n_entries, overflow_fraction)
    n = keys.keys.shape[0]
    entries = aligned_zeros(n, FLOW)  # one entry, one cache line
    entries["rflow"] = -1
    entries["ecmp"] = -1
    entries["dvrf"] = -1
    entries["key_nh"] = -1
    entries["route"] = -1
    entries["out_nh"] = -1
    return FlowState(keys=keys, entries=entries, refs=np.full((n, 4), -1, np.int32))


# columns of Counters.vifs
RX_PACKETS = 0
RX_BYTES = 1
TX_PACKETS = 2
TX_BYTES = 3
VIF_DROPS = 4


class Counters(NamedTuple):
    """Per-vif, per-drop-reason and flow-table counters of one node."""

    vifs: np.ndarray  # int64[max vif, 5]: rx packets, rx bytes, tx packets, tx bytes, drops
    drops: np.ndarray  # int64[N_DROP_REASONS]
    flows: np.ndarray  # int64[len(FLOW_COUNTER_NAMES)]


def new_counters(max_vifs: int = 4096) -> Counters:
    return Counters(
        vifs=np.zeros((max_vifs, 5), np.int64),
        drops=np.zeros(N_DROP_REASONS, np.int64),
        flows=np.zeros(len(FLOW_COUNTER_NAMES), np.int64),
    )


def grown(counters: Counters, max_vif: int) -> Counters:
    """The counters with room for vif indices below ``max_vif`` (kept values)."""
    size = counters.vifs.shape[0]
    if max_vif <= size:
        return counters
    vifs = np.zeros((max(max_vif, 2 * size), 5), np.int64)
    vifs[:size] = counters.vifs
    return counters._replace(vifs=vifs)
