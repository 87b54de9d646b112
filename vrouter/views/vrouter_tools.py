"""The vRouter command-line tools' views of one node: ``vif --list``, ``rt --dump``,
``nh --list``, ``mpls --dump``, ``flow -l`` and ``dropstats`` (spec/vrouter.md §5).

They are rendered from the compiled tables and the agent's names for their rows, in the
real tools' layout, so an operator reading them recognises what ``vif``/``rt``/``nh`` print.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from controlplane.inet import ip_text
from vrouter.agent.agent import CompiledNode
from vrouter.dataplane.tables import (
    ENCAP_NAMES,
    NH_COMPOSITE,
    NH_ENCAP,
    NH_FLAG_FIP,
    NH_FLAG_NO_ROUTE,
    NH_FLAG_POLICY,
    NH_TUNNEL,
    NH_TYPE_NAMES,
    NH_UNDERLAY,
    NH_VRF_TRANSLATE,
    VIF_TYPE_NAMES,
)

if TYPE_CHECKING:
    from vrouter.agent.rules import RuleBook
    from vrouter.dataplane.state import Counters, FlowState


@dataclass
class VifCounters:
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: int = 0


def vif_counters(counters: "Counters", node: CompiledNode) -> dict[int, VifCounters]:
    return {i: VifCounters(*(int(v) for v in counters.vifs[i])) for i in node.vifs if i < counters.vifs.shape[0]}


def vif_list(node: CompiledNode, counters: dict[int, VifCounters] | None = None, indices: list[int] | None = None) -> str:
    """``vif --list`` (or ``vif --get N``: only ``indices``)."""
    counters = counters or {}
    lines = [
        "Vrouter Interface Table",
        "",
        "Flags: P=Policy, L3=Layer 3 enabled",
        "",
    ]
    for index in sorted(node.vifs if indices is None else indices):
        vif = node.vifs[index]
        c = counters.get(index, VifCounters())
        kind = VIF_TYPE_NAMES[vif.type].capitalize()
        flags = ("P" if vif.policy else "") + "L3"
        mac = vif.mac or "00:00:00:00:00:00"
        lines.append(f"vif0/{index:<6}OS: {vif.name} Type:{kind} HWaddr:{mac} IPaddr:{ip_text(vif.ip)}")
        pod = f" Pod:{vif.pod}" if vif.pod else ""
        lines.append(f"{'':12}Vrf:{vif.vrf} Flags:{flags} Nexthop:{vif.nh}{pod}")
        lines.append(f"{'':12}RX packets:{c.rx_packets}  bytes:{c.rx_bytes} errors:0")
        lines.append(f"{'':12}TX packets:{c.tx_packets}  bytes:{c.tx_bytes} errors:0")
        lines.append(f"{'':12}Drops:{c.drops}")
        lines.append("")
    return "\n".join(lines)


def vif_json(vif: object) -> dict[str, object]:
    v = vif  # a vrouter.agent.agent.Vif
    return {
        "index": v.index,  # type: ignore[attr-defined]
        "name": v.name,  # type: ignore[attr-defined]
        "type": VIF_TYPE_NAMES[v.type],  # type: ignore[attr-defined]
        "vrf": v.vrf,  # type: ignore[attr-defined]
        "ip": ip_text(v.ip),  # type: ignore[attr-defined]
        "mac": v.mac,  # type: ignore[attr-defined]
        "nexthop": v.nh,  # type: ignore[attr-defined]
        "policy": bool(v.policy),  # type: ignore[attr-defined]
        "pod": v.pod,  # type: ignore[attr-defined]
    }


def vrf_index(node: CompiledNode) -> str:
    """What ``rt`` shows without ``--vrf``: the node's VRFs, to pick one."""
    counts: dict[int, int] = {}
    for row in node.routes:
        counts[row.vrf] = counts.get(row.vrf, 0) + 1
    lines = [f"VRFs on {node.name} (rt --vrf N shows one):", "", f"{'Vrf':>5}  {'Routes':>6}  Name"]
    for vrf, name in sorted(node.vrf_names.items()):
        lines.append(f"{vrf:>5}  {counts.get(vrf, 0):>6}  {name}")
    return "\n".join(lines)


def nh_json(node: CompiledNode, nh_id: int) -> dict[str, object]:
    nh = node.nexthops[nh_id]
    return {
        "id": nh.id,
        "type": NH_TYPE_NAMES[nh.type],
        "vrf": nh.vrf,
        "policy": bool(nh.flags & NH_FLAG_POLICY),
        "oif": nh.vif if nh.type == NH_ENCAP else None,
        "node": nh.node if nh.node >= 0 else None,
        "label": nh.label if nh.type == NH_TUNNEL else None,
        "members": list(nh.members) if nh.type == NH_COMPOSITE else None,
        "floating_ip": ip_text(nh.fip) if nh.flags & NH_FLAG_FIP else None,
        "port_map": [{"protocol": _proto(p), "port": port, "target": t} for p, port, t in nh.port_map],
        "via": nh.what,
    }


def label_of_nh(node: CompiledNode, nh_id: int) -> str:
    nh = node.nexthops[nh_id]
    return str(nh.label) if nh.type == NH_TUNNEL else "-"


def rt_dump(node: CompiledNode, vrf: int) -> str:
    """``rt --dump <vrf>``: destination, prefix length, flags, label, nexthop."""
    name = node.vrf_names.get(vrf)
    if name is None:
        known = ", ".join(f"{i} ({n})" for i, n in sorted(node.vrf_names.items()))
        raise KeyError(f"VRF {vrf} does not exist on {node.name}; VRFs: {known}")
    lines = [
        f"Vrouter inet4 routing table 0/{vrf}/unicast  ({name})",
        "Flags: L=Label Valid, E=ECMP, D=Discard (no host route), R=Receive",
        "",
        f"{'Destination':<22}{'PPL':>5}  {'Flags':<7}{'Label':>7}  {'Nexthop':>8}  Via",
    ]
    rows = sorted(
        (r for r in node.routes if r.vrf == vrf),
        key=lambda r: (int(ipaddress.IPv4Network(r.prefix).network_address), ipaddress.IPv4Network(r.prefix).prefixlen),
    )
    for row in rows:
        nh = node.nexthops[row.nh]
        flags = ""
        if nh.type == NH_TUNNEL:
            flags += "L"
        if nh.type == NH_COMPOSITE:
            flags += "E"
        if nh.flags & NH_FLAG_NO_ROUTE:
            flags += "D"
        if nh.type == 1:
            flags += "R"
        net = ipaddress.IPv4Network(row.prefix)
        lines.append(f"{row.prefix:<22}{net.prefixlen:>5}  {flags or '-':<7}{label_of_nh(node, row.nh):>7}  {row.nh:>8}  {nh.what}")
    return "\n".join(lines)


def _nh_flags(flags: int, nh_type: int, encap: str) -> str:
    words = ["Valid"]
    if flags & NH_FLAG_POLICY:
        words.append("Policy")
    if nh_type == NH_COMPOSITE:
        words.append("Ecmp")
    if nh_type == NH_TUNNEL:
        words.append(encap)
    if flags & NH_FLAG_FIP:
        words.append("Floating IP")
    if flags & NH_FLAG_NO_ROUTE:
        words.append("No route")
    return ", ".join(words)


def nh_get(node: CompiledNode, nh_id: int) -> str:
    """``nh --get <id>``."""
    nh = node.nexthops[nh_id]
    t = node.tables
    encap = ENCAP_NAMES[int(t.encapsulation[0])]
    lines = [
        f"Id:{nh.id:<10}Type:{NH_TYPE_NAMES[nh.type].capitalize():<14}Fmly: AF_INET  Vrf:{nh.vrf}",
        f"{'':14}Flags:{_nh_flags(nh.flags, nh.type, encap)}",
    ]
    if nh.type == NH_ENCAP:
        vif = node.vifs.get(nh.vif)
        lines.append(f"{'':14}Oif:{nh.vif} ({vif.name if vif else 'no such interface'})  {nh.what}")
        if nh.flags & NH_FLAG_FIP:
            maps = ", ".join(f"{_proto(p)}/{port}→{target}" for p, port, target in nh.port_map) or "none"
            lines.append(f"{'':14}Floating IP:{ip_text(nh.fip)}  Port map: {maps}")
    elif nh.type == NH_TUNNEL:
        src = ip_text(t.node_ip[node.index])
        dst = ip_text(t.node_ip[nh.node])
        key = "Vni" if encap == "VXLAN" else "Label"
        lines.append(f"{'':14}Oif:0 Sip:{src} Dip:{dst} {key}:{nh.label}  {nh.what}")
    elif nh.type == NH_COMPOSITE:
        subs = []
        for member in nh.members:
            if member < 0:
                subs.append("hole")
            else:
                sub = node.nexthops[member]
                subs.append(f"{member}({sub.label if sub.type == NH_TUNNEL else '-'})")
        lines.append(f"{'':14}Valid Hash Key Parameters: Proto,SrcIP,SrcPort,DstIp,DstPort")
        lines.append(f"{'':14}Sub NH(label): {' '.join(subs)}")
        for slot, member in enumerate(nh.members):
            what = node.nexthops[member].what if member >= 0 else "(hole: the member went away)"
            lines.append(f"{'':16}slot {slot}: {what}")
    elif nh.type == NH_UNDERLAY:
        lines.append(f"{'':14}Oif:0 Dip:{ip_text(t.node_ip[nh.node])}  {nh.what}")
    elif nh.type == NH_VRF_TRANSLATE:
        lines.append(f"{'':14}Translate to Vrf:{nh.vrf}")
    else:
        lines.append(f"{'':14}{nh.what}")
    return "\n".join(lines)


def _proto(number: int) -> str:
    return {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}.get(int(number), str(number))


def nh_list(node: CompiledNode, ids: Iterable[int] | None = None) -> str:
    """``nh --list``."""
    return "\n".join(nh_get(node, i) for i in sorted(ids if ids is not None else node.nexthops)) + "\n"


def mpls_dump(node: CompiledNode) -> str:
    """``mpls --dump``; with VXLAN, the VNI table too."""
    lines = ["MPLS Input Label Map", "", "   Label    NextHop    Destination", "-" * 40]
    for label in sorted(node.labels):
        nh = node.labels[label]
        lines.append(f"{label:>8}  {nh:>9}    {node.nexthops[nh].what}")
    if int(node.tables.encapsulation[0]) == ENCAP_NAMES.index("VXLAN"):
        lines += ["", "VXLAN Table", "", "     VNI    Vrf", "-" * 20]
        for vni in sorted(node.vnis):
            lines.append(f"{vni:>8}  {node.vnis[vni]:>5}")
    return "\n".join(lines)


def routes_json(node: CompiledNode, vrf: int | None = None) -> list[dict[str, object]]:
    out = []
    for row in node.routes:
        if vrf is not None and row.vrf != vrf:
            continue
        nh = node.nexthops[row.nh]
        out.append(
            {
                "vrf": row.vrf,
                "prefix": row.prefix,
                "nexthop": row.nh,
                "type": NH_TYPE_NAMES[nh.type],
                "label": nh.label if nh.type == NH_TUNNEL else None,
                "members": list(nh.members) if nh.type == NH_COMPOSITE else None,
                "via": nh.what,
            }
        )
    return out


def flow_list(node: CompiledNode, flows: "FlowState", book: "RuleBook", limit: int = 1000) -> str:
    """``flow -l``: index ⇄ reverse index, source:port, destination:port, protocol, VRF
    (→ destination VRF), action, ECMP index, key and RPF nexthops, packets/bytes."""
    rows = flow_rows(node, flows, book, limit)
    lines = [
        f"Flow table (size {flows.keys.keys.shape[0]}, entries {int(flows.keys.n_used[0])})",
        "",
        "Action: F=Forward, D=Drop(reason), N=NAT(S=SNAT, D=DNAT, Ps=SPAT, Pd=DPAT), H=Hold",
        " Other: K(nh)=Key nexthop, E=ECMP index",
        "",
        f"{'Index':>17}  {'Source:Port / Destination:Port':<44}Proto(V)",
        "-" * 78,
    ]
    for r in rows:
        pair = f"{r['index']}<=>{r['reverse'] if r['reverse'] >= 0 else '-'}"
        lines.append(f"{pair:>17}  {r['source']:<44}{r['proto']} ({r['vrf']}->{r['dest_vrf']})")
        lines.append(f"{'':>17}  {r['destination']}")
        lines.append(f"{'':>17}  (K(nh):{r['key_nh']}, Action:{r['action']}, E:{r['ecmp']}, Stats:{r['packets']}/{r['bytes']}{', ' + r['rule'] if r['rule'] else ''})")
    if not rows:
        lines.append("(no flows)")
    return "\n".join(lines)


def flow_rows(node: CompiledNode, flows: "FlowState", book: "RuleBook", limit: int = 1000) -> list[dict[str, object]]:
    from vrouter.dataplane.packets import DROP_REASONS
    from vrouter.dataplane.state import (
        ACTION_FREE,
        ACTION_NAMES,
        FLAG_DNAT,
        FLAG_DPAT,
        FLAG_REVERSE,
        FLAG_SNAT,
        FLAG_SPAT,
    )

    entries = flows.entries
    live = np.flatnonzero(entries["action"] != ACTION_FREE)[:limit]
    keys = flows.keys.keys
    out = []
    for f in live:
        e = entries[f]
        w0, w1, w2, w3 = (int(x) for x in keys[f])
        action = ACTION_NAMES[int(e["action"])]
        flags = int(e["flags"])
        if action == "N":
            bits = [n for bit, n in ((FLAG_SNAT, "S"), (FLAG_DNAT, "D"), (FLAG_SPAT, "Ps"), (FLAG_DPAT, "Pd")) if flags & bit]
            action = f"N({','.join(bits)})"
        elif action == "D":
            action = f"D({DROP_REASONS[int(e['drop'])]})"
        key_nh = w3 >> 8
        key_vrf = node.nexthops[key_nh].vrf if key_nh in node.nexthops else -1
        # a reverse flow's rules are its forward partner's (stored once per pair)
        decided_by = int(e["rflow"]) if flags & FLAG_REVERSE and int(e["rflow"]) >= 0 else int(f)
        refs = [book.text(int(r)) for r in flows.refs[decided_by] if int(r) >= 0]
        out.append(
            {
                "index": int(f),
                "reverse": int(e["rflow"]),
                "source": f"{ip_text(w0)}:{w2 >> 16}",
                "destination": f"{ip_text(w1)}:{w2 & 0xFFFF}",
                "proto": w3 & 0xFF,
                "vrf": key_vrf,
                "dest_vrf": int(e["dvrf"]),
                "action": action,
                "ecmp": int(e["ecmp"]),
                "key_nh": key_nh,
                "packets": int(e["packets"]),
                "bytes": int(e["bytes"]),
                "rule": "; ".join(refs),
            }
        )
    return out


def dropstats(counters: "Counters") -> str:
    """``dropstats``: every non-zero drop counter by reason name, then the flow counters."""
    from vrouter.dataplane.state import FLOW_COUNTER_NAMES

    from vrouter.dataplane.packets import dropstats_counts

    lines = [f"{name:<30}{value:>10}" for name, value in dropstats_counts(counters.drops).items()]
    if not lines:
        lines.append("(no drops)")
    lines.append("")
    lines.append("Flow table:")
    for name, value in zip(FLOW_COUNTER_NAMES, counters.flows, strict=True):
        lines.append(f"  {name:<28}{int(value):>10}")
    return "\n".join(lines)
