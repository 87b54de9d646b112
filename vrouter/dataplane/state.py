"""A node's mutable forwarding state: flow entries and counters.

The flow table's keys live in :mod:`vrouter.dataplane.flow_table`; the data of each entry
(action, NAT, reverse index, ECMP slot, TCP state, counters, the rules that decided) lives
here, indexed by the same flow index. Tables are recompiled when the configuration changes;
this state survives it, as the real vRouter's flow table survives an agent update.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vrouter.dataplane.flow_table import FlowKeyTable, new_flow_table
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


class FlowState(NamedTuple):
    keys: FlowKeyTable
    action: np.ndarray  # uint8
    flags: np.ndarray  # uint8
    rflow: np.ndarray  # int32
    ecmp: np.ndarray  # int16: ECMP slot, -1 unset
    dvrf: np.ndarray  # int32: VRF the (rewritten) packet is routed in
    drop: np.ndarray  # uint8: drop reason of a DROP flow
    nat_sip: np.ndarray  # uint32
    nat_dip: np.ndarray  # uint32
    nat_sport: np.ndarray  # uint16
    nat_dport: np.ndarray  # uint16
    tcp: np.ndarray  # uint8
    held: np.ndarray  # uint8: packets in the hold queue
    packets: np.ndarray  # uint64
    bytes: np.ndarray  # uint64
    last: np.ndarray  # int64: simulated time of the last packet (ns)
    gen: np.ndarray  # int64: the table generation the decision was made with
    key_nh: np.ndarray  # int32
    src_nh: np.ndarray  # int32: the RPF nexthop (the route to the source)
    route: np.ndarray  # int32: the route chosen at setup (trace)
    ref_acl: np.ndarray  # int32: the VN-policy entry that decided
    ref_egress: np.ndarray  # int32: the sender's rule that allowed (or the denial)
    ref_ingress: np.ndarray  # int32: the receiver's rule that allowed (or the denial)
    ref_nat: np.ndarray  # int32: the kube-proxy rule used


def new_flow_state(n_entries: int = 512 * 1024, overflow_fraction: float = 0.2) -> FlowState:
    keys = new_flow_table(n_entries, overflow_fraction)
    n = keys.keys.shape[0]

    def zeros(dtype: type, fill: int = 0) -> np.ndarray:
        return np.full(n, fill, dtype=dtype)

    return FlowState(
        keys=keys,
        action=zeros(np.uint8),
        flags=zeros(np.uint8),
        rflow=zeros(np.int32, -1),
        ecmp=zeros(np.int16, -1),
        dvrf=zeros(np.int32, -1),
        drop=zeros(np.uint8),
        nat_sip=zeros(np.uint32),
        nat_dip=zeros(np.uint32),
        nat_sport=zeros(np.uint16),
        nat_dport=zeros(np.uint16),
        tcp=zeros(np.uint8),
        held=zeros(np.uint8),
        packets=zeros(np.uint64),
        bytes=zeros(np.uint64),
        last=zeros(np.int64),
        gen=zeros(np.int64),
        key_nh=zeros(np.int32, -1),
        src_nh=zeros(np.int32, -1),
        route=zeros(np.int32, -1),
        ref_acl=zeros(np.int32, -1),
        ref_egress=zeros(np.int32, -1),
        ref_ingress=zeros(np.int32, -1),
        ref_nat=zeros(np.int32, -1),
    )


class Counters(NamedTuple):
    """Per-vif, per-drop-reason and flow-table counters of one node."""

    vif_rx_packets: np.ndarray  # int64[max vif]
    vif_rx_bytes: np.ndarray
    vif_tx_packets: np.ndarray
    vif_tx_bytes: np.ndarray
    vif_drops: np.ndarray
    drops: np.ndarray  # int64[N_DROP_REASONS]
    flows: np.ndarray  # int64[len(FLOW_COUNTER_NAMES)]


def new_counters(max_vifs: int = 4096) -> Counters:
    return Counters(
        vif_rx_packets=np.zeros(max_vifs, np.int64),
        vif_rx_bytes=np.zeros(max_vifs, np.int64),
        vif_tx_packets=np.zeros(max_vifs, np.int64),
        vif_tx_bytes=np.zeros(max_vifs, np.int64),
        vif_drops=np.zeros(max_vifs, np.int64),
        drops=np.zeros(N_DROP_REASONS, np.int64),
        flows=np.zeros(len(FLOW_COUNTER_NAMES), np.int64),
    )


def grown(counters: Counters, max_vif: int) -> Counters:
    """The counters with room for vif indices below ``max_vif`` (kept values)."""
    size = counters.vif_rx_packets.shape[0]
    if max_vif <= size:
        return counters
    new_size = max(max_vif, 2 * size)

    def grow(a: np.ndarray) -> np.ndarray:
        out = np.zeros(new_size, a.dtype)
        out[: a.shape[0]] = a
        return out

    return counters._replace(
        vif_rx_packets=grow(counters.vif_rx_packets),
        vif_rx_bytes=grow(counters.vif_rx_bytes),
        vif_tx_packets=grow(counters.vif_tx_packets),
        vif_tx_bytes=grow(counters.vif_tx_bytes),
        vif_drops=grow(counters.vif_drops),
    )
