"""The trace buffer the pipeline stages write into when a packet is being traced.

Each stage of :mod:`vrouter.dataplane.pipeline` that acts on a packet appends one event —
its stage code and up to four numbers — and owns the sentence that explains it
(``STAGE_TEXT``). ``vrsim trace`` is those sentences with the numbers turned into names; it
never re-derives what the kernel did. Outside tracing the buffer has no rows and nothing is
written.
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.kernel import kernel

TRACE_EVENT = np.dtype(
    [("packet", np.int32), ("node", np.int16), ("stage", np.uint8), ("a", np.int64), ("b", np.int64), ("c", np.int64), ("d", np.int64)]
)

T_ENTER_VIF = 1
T_ENTER_LABEL = 2
T_ENTER_VNI = 3
T_FLOW_HIT = 4
T_FLOW_MISS = 5
T_ROUTE = 6
T_NO_ROUTE = 7
T_ECMP = 8
T_ACL = 9
T_SG = 10
T_DNAT = 11
T_KUBE_PROXY = 12
T_FLOWS = 13
T_NAT = 14
T_DELIVER = 15
T_HOST = 16
T_TUNNEL = 17
T_UNDERLAY = 18
T_DROP = 19
T_HOLD = 20
T_TTL = 21
T_NAT_PORTS = 22
T_LABEL_DELIVER = 23
T_CLOSE = 24
T_REEVALUATE = 25

#: What each stage's event says; ``{a}``… are filled in with names by the trace renderer.
STAGE_TEXT = {
    T_ENTER_VIF: "enters on {vif_a}, VRF {vrf_b}; flow key nexthop {c}",
    T_ENTER_LABEL: "arrives from the fabric with label {a} → nexthop {b} ({nh_b}), VRF {vrf_c}",
    T_ENTER_VNI: "arrives from the fabric with VNI {a} → VRF {vrf_b}",
    T_FLOW_HIT: "flow hit: flow {a} ({action_b}), reverse flow {c}",
    T_FLOW_MISS: "flow miss: the packet goes to the agent (slow path) for flow setup",
    T_ROUTE: "route lookup in VRF {vrf_a}: {route_b} → nexthop {c} ({nh_c})",
    T_NO_ROUTE: "route lookup in VRF {vrf_a}: no route to {ip_b}",
    T_ECMP: "ECMP nexthop {a}: slot {b} of {d} → nexthop {c} ({nh_c})",
    T_ACL: "VN policy ({acl_d}) of {vrf_a}: {ref_b} → {verdict_c}",
    T_SG: "{sg_a}: {ref_b} → {verdict_c}",
    T_DNAT: "floating-IP DNAT on the member's node: {ip_a}:{c} → {ip_b}:{d}",
    T_KUBE_PROXY: "{ref_a}: DNAT to {ip_b}:{c}{snat_d}",
    T_FLOWS: "installed flow {a} (action {action_c}){reverse_b}",
    T_NAT: "NAT from the reverse flow's key: source {ip_a} → {ip_b}, destination {ip_c} → {ip_d}",
    T_NAT_PORTS: "ports: source {a} → {b}, destination {c} → {d}",
    T_DELIVER: "delivered to {vif_a}",
    T_HOST: "delivered to the host stack (vhost0)",
    T_TUNNEL: "encapsulated {encap_d} toward {node_a} ({nodeip_a}), {labelname_d} {b}, outer UDP source port {c}",
    T_UNDERLAY: "sent on the underlay to {node_a} ({nodeip_a}), not encapsulated",
    T_DROP: "dropped: {reason_a}",
    T_HOLD: "held in flow {a}'s hold queue until the agent decides",
    T_TTL: "TTL {a} → {b}",
    T_LABEL_DELIVER: "label nexthop has no policy flag: delivered without a flow",
    T_CLOSE: "TCP {close_a}: flow {b} and its reverse flow removed",
    T_REEVALUATE: "flow {a} was decided with configuration {b}; the configuration is now {c}: decided again",
}


def new_trace(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """A trace buffer of ``capacity`` events and its fill count (0 rows = no tracing)."""
    return np.zeros(capacity, TRACE_EVENT), np.zeros(1, np.int64)


@kernel(cache=True, _nrt=False)
def emit(trace: np.ndarray, count: np.ndarray, packet: int, node: int, stage: int, a: int, b: int, c: int, d: int) -> None:
    """Append one event when tracing (a buffer with rows), silently stop when it is full."""
    n = count[0]
    if n >= trace.shape[0]:
        return
    row = trace[n]
    row.packet = packet
    row.node = node
    row.stage = stage
    row.a = a
    row.b = b
    row.c = c
    row.d = d
    count[0] = n + 1
