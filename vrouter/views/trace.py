"""``vrsim trace``: the stages' own trace events, in words (ofproto/trace-like).

Each event was written by the pipeline stage that acted (vrouter.dataplane.trace); this
module only turns its numbers into names — interfaces, VRFs, routes, nexthops, rules,
addresses — using the compiled node's tables and the agent's rule book.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np

from controlplane.errors import InputError
from controlplane.inet import ip_text, protocol_name, protocol_number
from vrouter.agent import CompiledNode
from vrouter.agent.rules import RuleBook
from vrouter.dataplane.packets import DROP_REASONS, ICMP_DEST_UNREACHABLE, OUTCOME_NAMES, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from vrouter.dataplane.state import ACTION_NAMES
from vrouter.dataplane.tables import ENCAP_NAMES, NO_PROGRAM
from vrouter.dataplane.trace import STAGE_TEXT, T_ACL, T_SG
from vrouter.lab.conversation import converse
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import is_outside, pods_by_vif, resolve_source, resolve_target
from vrouter.lab.listeners import describe_all
from vrouter.lab.workload_names import pods_named

STAGE_NAMES = {
    1: "ingress",
    2: "ingress",
    3: "ingress",
    4: "flow",
    5: "flow",
    6: "route",
    7: "route",
    8: "ecmp",
    9: "vn-policy",
    10: "security-group",
    11: "nat",
    12: "kube-proxy",
    13: "flow-setup",
    14: "nat",
    15: "output",
    16: "output",
    17: "tunnel",
    18: "underlay",
    19: "drop",
    20: "hold",
    21: "ttl",
    22: "nat",
    23: "output",
    24: "flow",
    25: "flow",
}


@dataclass
class TraceLine:
    node: str
    stage: str
    text: str
    values: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "stage": self.stage, "text": self.text, **self.values}


class _Names(string.Formatter):
    """Fills ``{kind_x}`` fields of a stage's sentence from the event's numbers."""

    def __init__(self, node: CompiledNode, nodes: dict[int, CompiledNode], book: RuleBook, event: np.void) -> None:
        self.node = node
        self.nodes = nodes
        self.book = book
        self.event = event

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if not isinstance(key, str):
            return super().get_value(key, args, kwargs)
        kind, _, letter = key.rpartition("_")
        value = int(self.event[letter]) if letter in "abcd" and len(letter) == 1 else 0
        if not kind:
            return value
        return self.name(kind, value)

    def name(self, kind: str, value: int) -> str:
        node = self.node
        if kind == "vif":
            vif = node.vifs.get(value)
            if vif is None:
                return f"vif0/{value}"
            return f"vif0/{value} ({vif.name}{', ' + vif.pod if vif.pod else ''})"
        if kind == "vrf":
            full = node.vrf_names.get(value)
            return f"{value} ({full.rsplit(':', 1)[-1].strip()})" if full else f"{value} (not a VRF of {node.name})"
        if kind == "nh":
            nh = node.nexthops.get(value)
            return nh.what if nh else f"nexthop {value} (not on {node.name})"
        if kind == "route":
            t = node.tables
            return f"{ip_text(t.route_prefix[value])}/{int(t.route_plen[value])}"
        if kind == "ip":
            return ip_text(value)
        if kind == "action":
            return ACTION_NAMES[value] if 0 <= value < len(ACTION_NAMES) else str(value)
        if kind == "acl":
            return "source VN" if value == 0 else "destination VN"
        if kind == "verdict":
            return "pass" if value else "DENY"
        if kind == "sg":
            return "sender's egress (security groups / NetworkPolicy)" if value == 0 else "receiver's ingress (security groups / NetworkPolicy)"
        if kind == "ref":
            return self.book.text(value) or ""
        if kind == "snat":
            return f", SNAT source to {ip_text(value)}" if value else ", client address kept"
        if kind == "node":
            return self.nodes[value].name if value in self.nodes else str(value)
        if kind == "nodeip":
            return ip_text(node.tables.node_ip[value])
        if kind == "encap":
            return ENCAP_NAMES[value]
        if kind == "labelname":
            return "VNI" if ENCAP_NAMES[value] == "VXLAN" else "label"
        if kind == "reason":
            return DROP_REASONS[value] if 0 <= value < len(DROP_REASONS) else str(value)
        if kind == "reverse":
            return f" and its reverse flow {value}" if value >= 0 else ", no reverse flow (a dropped flow has none)"
        if kind == "close":
            return "RST" if value == 0 else "FIN in both directions"
        return str(value)


def render_event(event: np.void, nodes: dict[int, CompiledNode], book: RuleBook) -> TraceLine:
    node = nodes[int(event["node"])]
    stage = int(event["stage"])
    names = _Names(node, nodes, book, event)
    text = names.format(STAGE_TEXT.get(stage, "stage {a} {b} {c} {d}"))
    if stage == T_ACL and int(event["b"]) < 0:
        text = text.replace(":  →", ": no rule matches →")
    if stage == T_SG and int(event["b"]) < 0:
        who = "sender" if int(event["a"]) == 0 else "receiver"
        unrestricted = int(event["d"]) == NO_PROGRAM
        text = f"{names.name('sg', int(event['a']))}: " + (
            f"no NetworkPolicy selects the {who} in this direction → pass" if unrestricted else text
        )
    values = {k: int(event[k]) for k in "abcd"}
    return TraceLine(node.name, STAGE_NAMES.get(stage, str(stage)), text, values)


def render(events: np.ndarray, nodes: dict[int, CompiledNode], book: RuleBook) -> list[TraceLine]:
    return [render_event(e, nodes, book) for e in events]


def outcome_text(row: np.void, nodes: dict[int, CompiledNode]) -> str:
    node = nodes[int(row["node"])]
    outcome = OUTCOME_NAMES[int(row["outcome"])]
    if outcome == "dropped":
        return f"dropped on {node.name}: {DROP_REASONS[int(row['drop_reason'])]}"
    if outcome == "delivered":
        vif = node.vifs.get(int(row["out_vif"]))
        who = vif.pod or vif.name if vif else "no such interface"
        return f"delivered on {node.name} to vif0/{int(row['out_vif'])} ({who}) as {ip_text(row['out_sip'])}:{int(row['out_sport'])} → {ip_text(row['out_dip'])}:{int(row['out_dport'])}"
    if outcome == "host":
        return f"delivered to the host stack of {node.name}"
    return f"{outcome} on {node.name}"


TCP_FLAG_NAMES = ((TCP_SYN, "SYN"), (TCP_FIN, "FIN"), (TCP_RST, "RST"), (TCP_ACK, "ACK"))


def packet_text(row: Any) -> str:
    """One packet's header as a trace shows it."""
    proto = protocol_name(int(row["proto"]))
    if proto == "icmp":
        kind = "echo request" if int(row["icmp_type"]) == 8 else "echo reply"
        return f"{ip_text(row['sip'])} → {ip_text(row['dip'])} icmp {kind} id {int(row['sport'])}"
    text = f"{ip_text(row['sip'])}:{int(row['sport'])} → {ip_text(row['dip'])}:{int(row['dport'])} {proto}"
    if int(row["icmp_type"]) == ICMP_DEST_UNREACHABLE:
        return f"{ip_text(row['sip'])} → {ip_text(row['dip'])} icmp port unreachable, about {proto} {int(row['dport'])} → {int(row['sport'])}"
    if proto == "tcp":
        flags = [name for bit, name in TCP_FLAG_NAMES if int(row["tcp_flags"]) & bit]
        text += f" [{', '.join(flags)}]" if flags else ""
    return text


def trace_conversation(sim: Simulation, source_name: str, target_name: str, proto: str, port: int | None) -> list[dict[str, Any]]:
    """One conversation with every stage event recorded, phase by phase (packet, reply, ACK)."""
    # a workload traces through its first pod (by name), as a check's source does
    store = sim.cluster.store
    target = resolve_target(sim, (pods_named(store, target_name) or [target_name])[0], port, from_outside=is_outside(source_name))
    if proto != "icmp" and target.port is None:
        raise InputError(f"{target_name}: a {proto.upper()} trace needs a port (--port)")
    source = resolve_source(sim, (pods_named(store, source_name) or [source_name])[0], target)
    conv = converse(sim, source, target, protocol_number(proto), 1, pods_by_vif(sim), first_port=54321, trace_capacity=10_000)
    nodes = {n.index: n for n in sim.nodes.values()}
    names = ["packet", "refusal" if conv.refusals else "reply", "handshake ACK"]
    phases = []
    for name, phase in zip(names, conv.phases, strict=False):
        phases.append(
            {
                "name": name,
                "header": packet_text(phase.sent[0]),
                "events": [line.to_json() for line in render(phase.trace, nodes, sim.agents.book)],
                "outcome": outcome_text(phase.packets[0], nodes),
                "engine": phase.engine,
            }
        )
    if conv.refused_by and phases:  # why the answer is a refusal: the port is closed there
        phases[0]["outcome"] += f"; port {target.port} is closed: {describe_all(conv.refused_by)}"
    return phases
