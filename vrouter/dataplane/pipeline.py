"""The vRouter forwarding pipeline of one node, over a whole batch of packets (spec/vrouter.md §2–4).

This module only orchestrates; each stage is a module of its own, as the vRouter's dp-core
splits them (each stage says what it uses and sets, and writes its own trace event; the
exact rules are in ``docs/dataplane.md``):

1. :mod:`~vrouter.dataplane.ingress` — in_vif/in_label (or VNI) → the VRF, the flow key's
   nexthop, and for an encapsulated packet the nexthop its label names.
2. flow lookup (:mod:`~vrouter.dataplane.flow_table`) — hit or miss.
3. :mod:`~vrouter.dataplane.flow_setup` (a miss: the agent's slow path, run in the same batch)
   — route and ECMP member, NAT on this node (:mod:`~vrouter.dataplane.nat`), VN-policy ACLs
   and NetworkPolicy programs; installs the forward **and** the reverse flow.
4. a hit — the flow's action: DROP (its reason), HOLD, FORWARD or NAT; a forward flow decided
   under an older configuration is decided again first, keeping its ECMP slot while that
   slot's member lives; TCP state and flow ageing are :mod:`~vrouter.dataplane.conntrack`.
5. :mod:`~vrouter.dataplane.output` — route lookup in the flow's destination VRF, the ECMP
   slot, TTL, and output: a local interface, the host, a tunnel (MPLSoUDP, MPLSoGRE, VXLAN),
   the underlay, or a drop.

Every packet ends delivered, sent to the fabric, held, or dropped with a counted reason.

For speed, :func:`process_batch` goes over the batch three times, the way VPP's graph
nodes work on vectors: (1) ingress and the flow key's hash for every packet, prefetching
its bucket; (2) the bucket lookups, prefetching the flow entries; (3) each packet's
processing. A packet whose flow is established, current and allowed takes the fast path
(``_takes_fast_path``, ``_fast_path``); any other (a miss, a HOLD, a drop flow, a TCP
SYN/FIN/RST, a flow from an older configuration, or tracing) takes :func:`general_packet`,
the stages above one by one. Both give the same result (``tests/dataplane/test_fast_path.py``).

``process_batch`` releases the GIL: nodes have separate tables and flow state, so the
fabric (or a benchmark) may run several nodes' batches in parallel threads.

All kernels are compiled without numba's reference counting (``_nrt=False``): they never
allocate, and counting references on the tables' arrays at every call costs more than the
forwarding itself.

What is inlined, and why: numba passes a call's arrays as their unpacked fields, so a call
that takes the node's tables, the flow state and the counters copies about two kilobytes
of arguments; ``general_packet`` and the fast path's helpers are therefore inlined into
``process_batch``, and flow setup's steps into ``flow_setup``. But compile time grows faster
than the code it compiles: with ``flow_setup`` inlined too, ``process_batch`` took 104 s and
3.1 GB to compile; with ``flow_setup``, ``forward`` (the slow path's routing) and
``stateless`` (the gateway's) as ordinary calls, 38 s and 0.6 GB, and the same packets and
flow setups per second (one call per flow setup, none on the fast path; the measurements are
in docs/performance.md). ``emit`` and ``drop`` are ordinary calls too: they sit on cold paths
(tracing, drops) at dozens of sites.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.ecmp import ecmp_member
from vrouter.dataplane.flow_table import (
    flow_find,
    flow_find_or_insert,
    flow_hash,
    pack_key,
)
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.packed import (
    S_GENERATION,
    S_NODE,
    KernelTables,
)
from vrouter.dataplane.packets import (
    DROP_FLOW_QUEUE_LIMIT,
    DROP_FLOW_TABLE_FULL,
    DROP_NO_ROUTE,
    DROP_TTL,
    DROPPED,
    FABRIC,
    HELD,
    PENDING,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from vrouter.dataplane.prefetch import prefetch
from vrouter.dataplane.state import (
    ACTION_DROP,
    ACTION_FORWARD,
    ACTION_FREE,
    ACTION_HOLD,
    ACTION_NAT,
    FC_CREATED,
    FC_FULL,
    FC_HITS,
    FC_MISSES,
    FLAG_OUT_ECMP,
    FLAG_REVERSE,
    RX_BYTES,
    RX_PACKETS,
    TCP_ESTABLISHED,
    TCP_SEEN_SYNACK,
    Counters,
    FlowState,
)
from vrouter.dataplane.tables import (
    NH_COMPOSITE,
    PROTO_TCP,
)
from vrouter.dataplane.trace import (
    T_FLOW_HIT,
    T_FLOW_MISS,
    T_HOLD,
    T_NAT,
    T_NAT_PORTS,
    T_REEVALUATE,
    emit,
)
from vrouter.dataplane.output import drop, route, output, forward
from vrouter.dataplane.conntrack import tcp_track, write_flow
from vrouter.dataplane.ingress import stateless, ingress, STATELESS, FLOW_PATH
from vrouter.dataplane.flow_setup import flow_setup

CHUNK = 128  # packets per vector: its buckets and entries, prefetched, are still in cache when used


@kernel(cache=True, inline="always", _nrt=False)
def general_packet(kt: KernelTables, fs: FlowState, cnt: Counters, p, i: int, now: int, setups: int, max_setups: int, hold_queue: int, trace: np.ndarray, tcount: np.ndarray) -> int:
    """One packet on the flow path, stage by stage (any case the fast path does not take).
    Returns the flow setups it did (0 or 1)."""
    node = np.int64(kt.scalars[S_NODE])
    vrf = np.int64(p.vrf)
    key_nh = np.int64(p.key_nh)
    label_nh = np.int64(p.label_nh)
    src_vif = np.int64(p.in_vif) if p.in_label < 0 else np.int64(-1)
    generation = kt.scalars[S_GENERATION]
    done = 0
    p.flow = -1  # set again only where a flow takes the packet (§4, HOLD)
    w0, w1, w2, w3 = pack_key(key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
    h = flow_hash(w0, w1, w2, w3)
    p.hash = h
    f = np.int64(flow_find(fs.keys, w0, w1, w2, w3, h))
    # the agent's decision is taken at one place below (one call site: the call is costly)
    decide = False
    keep_slot = np.int64(-1)
    if f >= 0 and fs.entries[f].action == ACTION_HOLD:
        if setups < max_setups:
            decide = True
        else:
            if fs.entries[f].held < hold_queue:
                fs.entries[f].held += 1
                p.outcome = HELD
                p.flow = f
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
            else:
                drop(cnt, p, DROP_FLOW_QUEUE_LIMIT, trace, tcount, i, node)
            return 0
    elif f >= 0:
        cnt.flows[FC_HITS] += 1
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOW_HIT, f, fs.entries[f].action, fs.entries[f].rflow, 0)
        if fs.entries[f].gen != generation:
            if fs.entries[f].flags & FLAG_REVERSE:
                fs.entries[f].gen = generation  # replies of an allowed flow stay allowed
                fs.entries[f].out_nh = -1  # …but are routed with the current tables
            else:
                # the configuration changed since this flow was decided: decide again
                if trace.shape[0]:
                    emit(trace, tcount, i, node, T_REEVALUATE, f, fs.entries[f].gen, generation, 0)
                decide = True
                keep_slot = np.int64(fs.entries[f].ecmp)
    else:
        cnt.flows[FC_MISSES] += 1
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_FLOW_MISS, key_nh, 0, 0, 0)
        if setups >= max_setups:
            found, created = flow_find_or_insert(fs.keys, w0, w1, w2, w3, h)
            f = np.int64(found)
            if f < 0:
                cnt.flows[FC_FULL] += 1
                drop(cnt, p, DROP_FLOW_TABLE_FULL, trace, tcount, i, node)
                return 0
            cnt.flows[FC_CREATED] += 1
            write_flow(fs, f, ACTION_HOLD, 0, vrf, key_nh, 0, 0, 0, 0, -1, 0, -1, now, generation)
            for k in range(4):
                fs.refs[f, k] = -1
            fs.entries[f].rflow = -1
            fs.entries[f].held = 1
            p.outcome = HELD
            p.flow = f
            if trace.shape[0]:
                emit(trace, tcount, i, node, T_HOLD, f, 0, 0, 0)
            return 0
        decide = True
    if decide:
        done = 1
        f = flow_setup(kt, fs, cnt, p, f, vrf, key_nh, src_vif, label_nh, now, trace, tcount, i, node, keep_slot)
    if f < 0:
        return done
    # --- the flow's action ------------------------------------------------------------
    e = fs.entries[f]
    p.flow = f
    e.packets += 1
    e.bytes += p.length
    e.last = now
    action = e.action
    if action == ACTION_DROP:
        drop(cnt, p, e.drop, trace, tcount, i, node)
        return done
    if action == ACTION_NAT:
        if trace.shape[0]:
            emit(trace, tcount, i, node, T_NAT, p.out_sip, e.nat_sip, p.out_dip, e.nat_dip)
            emit(trace, tcount, i, node, T_NAT_PORTS, p.out_sport, e.nat_sport, p.out_dport, e.nat_dport)
        p.out_sip = e.nat_sip
        p.out_dip = e.nat_dip
        p.out_sport = e.nat_sport
        p.out_dport = e.nat_dport
    forward(kt, fs, cnt, p, f, e.dvrf, label_nh, label_nh < 0, trace, tcount, i, node)
    if p.proto == PROTO_TCP and fs.entries[f].action != ACTION_FREE:
        tcp_track(fs, cnt, f, p.tcp_flags, trace, tcount, i, node)
    return done


@kernel(cache=True, inline="always", _nrt=False)
def _enter(kt: KernelTables, cnt: Counters, p, i: int, node: int, trace: np.ndarray, tcount: np.ndarray, keys: np.ndarray, n_buckets: int) -> None:
    """Pass 1 for one packet of this node: entry (§1), ingress, and the flow key's hash, whose
    bucket is prefetched for pass 2. ``key_nh`` is left -1 when no flow lookup follows."""
    if p.outcome == PENDING:
        p.out_sip = p.sip
        p.out_dip = p.dip
        p.out_sport = p.sport
        p.out_dport = p.dport
        p.out_ttl = p.ttl
        p.hops += 1
        if 0 <= p.in_vif < cnt.vifs.shape[0]:
            cnt.vifs[p.in_vif, RX_PACKETS] += 1
            cnt.vifs[p.in_vif, RX_BYTES] += p.length
    p.outcome = PENDING
    p.ecmp_slot = -1
    p.flow = -1
    state = ingress(kt, cnt, p, i, node, trace, tcount)
    if state == STATELESS:
        stateless(kt, cnt, p, p.vrf, trace, tcount, i, node)
        p.key_nh = -1
    elif state == FLOW_PATH:
        w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
        h = flow_hash(w0, w1, w2, w3)
        p.hash = h
        prefetch(keys, np.int64(h & np.uint32(n_buckets - 1)) * 16)


@kernel(cache=True, inline="always", _nrt=False)
def _takes_fast_path(p, f: int, entries: np.ndarray, keys: np.ndarray, changed: bool, generation: int) -> bool:
    """May the packet take the fast path: its flow (found in pass 2, and still that flow if
    the general path ran since) is current, allowed, and the packet changes no TCP state."""
    e = entries[f]
    fast = True
    if changed:
        # the entry may have changed since pass 2 (an earlier packet of this chunk)
        w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
        fast = keys[f, 0] == w0 and keys[f, 1] == w1 and keys[f, 2] == w2 and keys[f, 3] == w3
    fast = fast and e.gen == generation and (e.action == ACTION_FORWARD or e.action == ACTION_NAT)
    if fast and p.proto == PROTO_TCP:
        flags = p.tcp_flags
        if flags & (TCP_SYN | TCP_FIN | TCP_RST):
            fast = False
        elif (flags & TCP_ACK) and not (e.tcp & TCP_ESTABLISHED):
            # the handshake's last ACK changes the state: only then the general path
            r = np.int64(e.rflow)
            fast = not (r >= 0 and (entries[r].tcp & TCP_SEEN_SYNACK))
    return fast


@kernel(cache=True, inline="always", _nrt=False)
def _fast_path(kt: KernelTables, fs: FlowState, cnt: Counters, p, f: int, now: int, trace: np.ndarray, tcount: np.ndarray, i: int, node: int) -> None:
    """An established, current, allowed flow: count, NAT from the entry, the cached output
    nexthop (resolved once per flow), TTL, output."""
    e = fs.entries[f]
    cnt.flows[FC_HITS] += 1
    e.packets += 1
    e.bytes += p.length
    e.last = now
    if e.action == ACTION_NAT:
        p.out_sip = e.nat_sip
        p.out_dip = e.nat_dip
        p.out_sport = e.nat_sport
        p.out_dport = e.nat_dport
    label_nh = np.int64(p.label_nh)
    if label_nh >= 0 and p.out_dip == p.dip:
        nh = label_nh  # §6: straight to the label's nexthop, no route
    elif e.out_nh >= 0:  # routed before: the cached result of the lines below
        nh = np.int64(e.out_nh)
        if e.flags & FLAG_OUT_ECMP:
            p.ecmp_slot = e.ecmp
    else:  # the flow's first routed fast-path packet: resolve the nexthop once
        rid, nh = route(kt, e.dvrf, p.out_dip)
        if rid < 0:
            drop(cnt, p, DROP_NO_ROUTE, trace, tcount, i, node)
            return
        if kt.nhs[nh].type == NH_COMPOSITE:
            member = ecmp_member(kt, nh, e.ecmp)
            if member < 0:  # the member went away under this flow: the general path re-chooses
                forward(kt, fs, cnt, p, f, e.dvrf, label_nh, label_nh < 0, trace, tcount, i, node)
                return
            p.ecmp_slot = e.ecmp
            nh = member
            e.flags |= FLAG_OUT_ECMP
        e.out_nh = nh
    if label_nh < 0:
        if p.out_ttl <= 1:
            drop(cnt, p, DROP_TTL, trace, tcount, i, node)
            return
        p.out_ttl -= 1
    output(kt, cnt, p, nh, trace, tcount, i, node)


@kernel(cache=True, _nrt=False, nogil=True)
def process_batch(
    kt: KernelTables,
    fs: FlowState,
    cnt: Counters,
    pkts: np.ndarray,
    now: int,
    max_setups: int,
    hold_queue: int,
    trace: np.ndarray,
    tcount: np.ndarray,
    only_here: bool,
) -> int:
    """Run every pending (or held) packet of ``pkts`` through this node. Returns the number
    of flow setups done, which ``max_setups`` bounds (beyond it new flows wait in HOLD).

    ``only_here``: the batch is the whole fabric's; packets whose ``node`` is another node's
    are left alone (the fabric runs every node over one batch, in place, no gathering)."""
    node = np.int64(kt.scalars[S_NODE])
    generation = kt.scalars[S_GENERATION]
    tracing = trace.shape[0] > 0
    n = pkts.shape[0]
    keys = fs.keys.keys
    entries = fs.entries
    n_buckets = fs.keys.bucket_overflow_head.shape[0]
    setups = 0
    for start in range(0, n, CHUNK):
        end = min(n, start + CHUNK)
        # --- pass 1: ingress, and the flow key's hash --------------------------------------------
        for i in range(start, end):
            p = pkts[i]
            if (p.outcome != PENDING and p.outcome != HELD) or (only_here and p.node != node):
                p.key_nh = -1
                continue
            _enter(kt, cnt, p, i, node, trace, tcount, keys, n_buckets)
        # --- pass 2: the bucket lookups --------------------------------------------------------
        for i in range(start, end):
            p = pkts[i]
            if p.key_nh < 0:
                continue
            w0, w1, w2, w3 = pack_key(p.key_nh, p.sip, p.dip, p.proto, p.sport, p.dport)
            f = flow_find(fs.keys, w0, w1, w2, w3, p.hash)
            p.flow = f
            if f >= 0:
                prefetch(entries, np.int64(f))
        # --- pass 3: each packet: the fast path, or the general path --------------------------
        changed = False  # did the general path run in this chunk (entries may have moved)?
        for i in range(start, end):
            p = pkts[i]
            if p.key_nh < 0:
                continue
            f = np.int64(p.flow)
            if not tracing and f >= 0 and _takes_fast_path(p, f, entries, keys, changed, generation):
                _fast_path(kt, fs, cnt, p, f, now, trace, tcount, i, node)
            else:
                setups += general_packet(kt, fs, cnt, p, i, now, setups, max_setups, hold_queue, trace, tcount)
                changed = True
    return setups


@kernel(cache=True, _nrt=False)
def hand_over(pkts: np.ndarray, max_hops: int, at_node: np.ndarray, hop_drops: np.ndarray) -> int:
    """Move every packet a node sent to the fabric to the node it was sent to: the outer
    header's label rides along, the rewritten fields become the packet's. A packet that
    already passed ``max_hops`` kernels is dropped TTL_EXCEEDED on the node that sent it
    instead, and ``hop_drops[n]`` counts those of node ``n`` (for its drop statistics).
    Returns how many packets are still in flight (pending or held) afterwards;
    ``at_node[n]`` says how many of them are at node ``n``."""
    in_flight = 0
    at_node[:] = 0
    hop_drops[:] = 0
    for i in range(pkts.shape[0]):
        p = pkts[i]
        if p.outcome == FABRIC:
            if p.hops >= max_hops:
                p.outcome = DROPPED
                p.drop_reason = DROP_TTL
                if 0 <= p.node < hop_drops.shape[0]:
                    hop_drops[p.node] += 1
                continue
            p.node = p.out_node
            p.in_vif = 0
            p.in_label = p.out_label
            p.sip = p.out_sip
            p.dip = p.out_dip
            p.sport = p.out_sport
            p.dport = p.out_dport
            p.ttl = p.out_ttl
            p.outcome = PENDING
            p.out_vif = -1
            p.out_node = -1
            p.out_label = -1
        if p.outcome == PENDING or p.outcome == HELD:
            in_flight += 1
            if 0 <= p.node < at_node.shape[0]:
                at_node[p.node] += 1
    return in_flight
