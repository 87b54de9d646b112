"""Packet batches: numpy structured arrays of header fields, one row per packet.

A row holds where the packet enters (node, vif or MPLS label), its header, and — once a
node's kernel has processed it — the outcome: delivered to an interface, to the host, sent
across the fabric (to a node, with a label or not), held for the agent, or dropped with a
reason; plus the rewritten header, the ECMP slot chosen and the flow it used. Bytes are
never built except for export.

For ICMP echo the source port holds the ICMP identifier and the destination port is 0, as
the vRouter keys ICMP flows. An ICMP error (port unreachable) travels as the header it
quotes, reversed — protocol and ports of the packet it is about, with ``icmp_type`` 3 — because
that is how the vRouter keys it (on the quoted packet's flow, so it takes that flow's reverse
entry and NAT); the kernels need nothing else to forward it.
"""

from __future__ import annotations

import numpy as np

PACKET = np.dtype(
    [
        ("node", np.int16),  # the node whose vRouter sees it next
        ("in_vif", np.int16),  # entering interface (0 = fabric for tunnelled packets)
        ("in_label", np.int32),  # MPLS label or VNI when it arrives encapsulated, else -1
        ("sip", np.uint32),
        ("dip", np.uint32),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("proto", np.uint8),
        ("tcp_flags", np.uint8),
        ("ttl", np.uint8),
        ("icmp_type", np.uint8),
        ("length", np.uint16),
        # --- set by the kernel ---
        ("outcome", np.uint8),
        ("drop_reason", np.uint8),
        ("out_vif", np.int16),
        ("out_node", np.int16),
        ("out_label", np.int32),
        ("out_sip", np.uint32),
        ("out_dip", np.uint32),
        ("out_sport", np.uint16),
        ("out_dport", np.uint16),
        ("out_ttl", np.uint8),
        ("hops", np.uint8),
        ("ecmp_slot", np.int16),
        ("flow", np.int32),
        ("outer_sport", np.uint16),
        ("tag", np.int32),  # the caller's own id, carried through hops untouched
        # --- the kernel's scratch, between its passes over a batch ---
        ("vrf", np.int32),
        ("key_nh", np.int32),  # -1: not (or no longer) on the flow path
        ("label_nh", np.int32),
        ("hash", np.uint32),
    ],
    align=True,
)

# outcomes
PENDING = 0
DELIVERED = 1  # to a local interface (out_vif)
HOST = 2  # to the node's own stack (vhost0)
FABRIC = 3  # out of vif0/0 toward out_node: with out_label (tunnel) or -1 (underlay)
DROPPED = 4
HELD = 5  # waiting in a flow's hold queue for the agent
OUTCOME_NAMES = ("pending", "delivered", "host", "fabric", "dropped", "held")

# drop reasons, named as the real tools print them (spec/tf-semantics.md item 17): a flow's
# drop reason as the agent's ``flow -l`` shows it (kstate/flow_kstate.cc DropCodeToStr), and a
# drop that no flow decided by the vRouter's ``dropstats`` counter. ``SG`` is the sender's
# egress rules, ``OutSG`` a local receiver's ingress rules, as the agent names them.
# Choice: a missing port map is VR_FLOW_DR_PORT_MAP_DROP, which the pinned agent's
# DropCodeToStr prints as "Unknown"; vrsim calls it ``NoFipPortMap`` (the spec's name), which
# says what happened.
DROP_NONE = 0
DROP_NO_ROUTE = 1
DROP_POLICY = 2
DROP_OUT_POLICY = 3
DROP_SG = 4
DROP_OUT_SG = 5
DROP_FLOW_TABLE_FULL = 6
DROP_FLOW_QUEUE_LIMIT = 7
DROP_TTL = 8
DROP_DISCARD = 9
DROP_INVALID_LABEL = 10
DROP_NO_PORT_MAP = 11
DROP_NO_BACKEND = 12
DROP_INVALID_VIF = 13
DROP_REASONS = (
    "",
    "NoDstRt",
    "Policy",
    "OutPolicy",
    "SG",
    "OutSG",
    "Flow Table Full",
    "Flow Queue Limit Exceeded",
    "TTL Exceeded",
    "Discards",
    "Invalid Label",
    "NoFipPortMap",
    "Invalid NH",
    "Invalid IF",
)
#: the vRouter's ``dropstats`` counter each drop is counted under (flow decisions: Flow Action Drop)
DROPSTATS_COUNTERS = (
    "",
    "Flow Action Drop",
    "Flow Action Drop",
    "Flow Action Drop",
    "Flow Action Drop",
    "Flow Action Drop",
    "Flow Table Full",
    "Flow Queue Limit Exceeded",
    "TTL Exceeded",
    "Discards",
    "Invalid Label",
    "Flow Action Drop",
    "Invalid NH",
    "Invalid IF",
)
#: the names vrsim printed before it followed the agent; ``expect`` still accepts them (with a
#: note). ``SG`` and ``OutSG`` kept their spelling but swapped meaning, so they are not here.
LEGACY_DROP_REASONS = {
    "NoRoute": "NoDstRt",
    "NoPortMap": "NoFipPortMap",
    "NoBackend": "Invalid NH",
    "FLOW_TABLE_FULL": "Flow Table Full",
    "FlowTableFull": "Flow Table Full",
    "FLOW_QUEUE_LIMIT_EXCEEDED": "Flow Queue Limit Exceeded",
    "TTL_EXCEEDED": "TTL Exceeded",
    "DISCARD": "Discards",
    "INVALID_LABEL": "Invalid Label",
    "INVALID_VIF": "Invalid IF",
}
N_DROP_REASONS = len(DROP_REASONS)

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3  # on a TCP/UDP/SCTP row: an ICMP error quoting that flow
ICMP_ECHO_REQUEST = 8


def same_reason(a: str, b: str) -> bool:
    """Drop-reason names compare without case, underscores or spaces: ``TTL Exceeded`` ==
    ``TTL_EXCEEDED``."""
    return _squeezed(a) == _squeezed(b)


def _squeezed(name: str) -> str:
    return name.replace("_", "").replace(" ", "").lower()


def current_reason(name: str) -> tuple[str, str | None]:
    """A drop reason as a scenario wrote it → (today's name, a note if it was an old name).

    >>> current_reason("NoRoute")
    ('NoDstRt', "dropReason 'NoRoute' is the old name of 'NoDstRt' (the agent's flow -l name); both are accepted")
    >>> current_reason("SG")
    ('SG', None)
    """
    for old, new in LEGACY_DROP_REASONS.items():
        if _squeezed(old) == _squeezed(name) and not any(_squeezed(r) == _squeezed(name) for r in DROP_REASONS):
            return new, f"dropReason {name!r} is the old name of {new!r} (the agent's flow -l name); both are accepted"
    return name, None


def new_batch(n: int) -> np.ndarray:
    """An empty batch: every packet pending, no label, TTL 64."""
    batch = np.zeros(n, dtype=PACKET)
    batch["in_label"] = -1
    batch["ttl"] = 64
    batch["length"] = 64
    batch["out_vif"] = -1
    batch["out_node"] = -1
    batch["out_label"] = -1
    batch["ecmp_slot"] = -1
    batch["flow"] = -1
    batch["tag"] = -1
    batch["key_nh"] = -1
    batch["label_nh"] = -1
    return batch


def copy_batch(batch: np.ndarray) -> np.ndarray:
    """A copy of a packet batch, made as raw bytes.

    numpy copies a structured array field by field: for PACKET's 31 fields that is about 40
    times slower than one memcpy, and was half of a small fabric run's time.
    """
    if batch.dtype != PACKET or batch.ndim != 1 or not batch.flags.c_contiguous:
        return batch.copy()
    out = np.empty_like(batch)
    np.copyto(out.view(np.uint8), batch.view(np.uint8))
    return out


def dropstats_counts(drops: np.ndarray) -> dict[str, int]:
    """Per-reason drop counts (indexed like DROP_REASONS) as the vRouter's ``dropstats``
    shows them: every non-zero counter by its name, the flow decisions (policy, security
    group, no route, port map) summed as Flow Action Drop."""
    out: dict[str, int] = {}
    for i, value in enumerate(drops):
        if value and DROPSTATS_COUNTERS[i]:
            out[DROPSTATS_COUNTERS[i]] = out.get(DROPSTATS_COUNTERS[i], 0) + int(value)
    return out
