"""``--pcap DIR``: the hop events of a run as capture files, one per node and interface.

Per node: ``<node>-<interface>.pcap`` for each interface that saw traffic (a pod's tap
interface, ``vhost0`` for the host stack) with the inner Ethernet frames as the pod sees
them (after NAT); ``<node>-fabric.pcap`` with what crossed the node's fabric interface,
encapsulated as the cluster is configured (outer addresses the nodes' fabric IPs); and
``<node>-drops.pcap`` with every packet the node's vRouter dropped as it arrived, the
reason in the packet's comment. Every file is pcapng (the comments need it, and the
interface's description names the pod); Wireshark, tshark and tcpdump read it whatever the
extension. Timestamps are the simulation's clock (nanoseconds from the epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controlplane.inet import ip_text
from vrouter.agent import CompiledNode
from vrouter.dataplane.packets import DROP_REASONS, DROPSTATS_COUNTERS
from vrouter.dataplane.tables import ENCAP_NAMES, VIF_HOST
from vrouter.lab.capture import DROP, RX_FABRIC, RX_VIF, TX_FABRIC, TX_VIF
from vrouter.views import frames
from vrouter.views.pcapng import PacketGroup, write_pcapng


@dataclass
class CaptureFile:
    path: Path
    interface: str
    description: str
    packets: int


def _mac(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text.replace(":", "")), np.uint8) if text else np.zeros(6, np.uint8)


def node_macs(ips: np.ndarray | int) -> np.ndarray:
    """Nodes' fabric MACs, made from their addresses (02:00 and the four bytes): readable in
    a capture. One row per address."""
    ips = np.atleast_1d(np.asarray(ips, np.int64))
    return np.hstack([np.broadcast_to(np.array([2, 0], np.uint8), (len(ips), 2)), frames.be(ips, 4, len(ips))])


def _node_ip(node: CompiledNode) -> int:
    host = node.vifs.get(VIF_HOST)
    return int(host.ip) if host is not None else 0


def _shapes(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Events grouped by layout and IP length: (layout, length, rows of each group)."""
    layout = frames.layout_of(events["proto"], events["icmp_type"])
    total = frames.ip_total_length(layout, events["length"])
    key = layout.astype(np.int64) + (total << 3)
    if len(key) and (key == key[0]).all():  # the usual case: one shape
        return layout, total, [np.arange(len(key))]
    unique, inverse = np.unique(key, return_inverse=True)
    return layout, total, [np.flatnonzero(inverse == g) for g in range(len(unique))]


def _inner(events: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, IP packets) per group of one shape."""
    layout, total, groups = _shapes(events)
    out = []
    for rows in groups:
        e = events[rows]
        seq = np.maximum(e["tag"], 0)
        out.append((rows, frames.ip_packets(e, int(layout[rows[0]]), int(total[rows[0]]), e["seq"], seq)))
    return out


def _interface_file(events: np.ndarray, node: CompiledNode, vif: int) -> list[PacketGroup]:
    interface = node.vifs.get(vif)
    own = _mac(interface.mac) if interface is not None else np.zeros(6, np.uint8)
    if not own.any():
        own = node_macs(_node_ip(node))[0]
    router = np.frombuffer(frames.VROUTER_MAC, np.uint8)
    groups = []
    for rows, packets in _inner(events):
        to_pod = events["where"][rows] == TX_VIF
        dst = np.where(to_pod[:, None], own, router)
        src = np.where(to_pod[:, None], router, own)
        groups.append(PacketGroup(events["time"][rows], events["seq"][rows], frames.ethernet(packets, dst, src)))
    return groups


def _fabric_file(events: np.ndarray, node: CompiledNode, ips: np.ndarray, encap: str) -> list[PacketGroup]:
    here = _node_ip(node)
    peer_ip = np.where(events["peer"] >= 0, ips[np.clip(events["peer"], 0, len(ips) - 1)], 0)
    sending = events["where"] == TX_FABRIC
    src = np.where(sending, here, peer_ip).astype(np.uint32)
    dst = np.where(sending, peer_ip, here).astype(np.uint32)
    groups = []
    for rows, packets in _inner(events):
        e = events[rows]
        tunnel = e["label"] >= 0
        for part, encapsulated in ((np.flatnonzero(tunnel), True), (np.flatnonzero(~tunnel), False)):
            if not part.size:
                continue
            at = rows[part]
            inner = packets[part]
            if encapsulated:
                sport = np.where(e["outer_sport"][part] > 0, e["outer_sport"][part], 49152)
                inner = frames.tunnelled(inner, encap, e["label"][part], e["ttl"][part], src[at], dst[at], sport, e["seq"][part])
            groups.append(PacketGroup(e["time"][part], e["seq"][part], frames.ethernet(inner, node_macs(dst[at]), node_macs(src[at]))))
    return groups


def _drops_file(events: np.ndarray, node: CompiledNode) -> list[PacketGroup]:
    groups = []
    for reason in np.unique(events["drop_reason"]):
        chosen = events[events["drop_reason"] == reason]
        for vif in np.unique(chosen["vif"]):
            same = chosen[chosen["vif"] == vif]
            interface = node.vifs.get(int(vif))
            where = f"vif0/{vif} ({interface.name})" if interface is not None else "the fabric"
            comment = f"dropped: {DROP_REASONS[reason]} (dropstats: {DROPSTATS_COUNTERS[reason]}), arrived on {where}"
            own = _mac(interface.mac) if interface is not None and interface.mac else np.frombuffer(frames.VROUTER_MAC, np.uint8)
            for rows, packets in _inner(same):
                framed = frames.ethernet(packets, np.frombuffer(frames.VROUTER_MAC, np.uint8), own)
                groups.append(PacketGroup(same["time"][rows], same["seq"][rows], framed, comment))
    return groups


def _describe(node: CompiledNode, vif: int) -> tuple[str, str]:
    interface = node.vifs.get(vif)
    if interface is None:
        return f"vif0-{vif}", f"vif0/{vif} on {node.name}"
    owner = f" {interface.pod}" if interface.pod else ""
    address = f" {ip_text(interface.ip)}" if interface.ip else ""
    return interface.name, f"vif0/{vif}{owner}{address} on {node.name}"


def write_captures(directory: Path, events: np.ndarray, nodes: list[CompiledNode]) -> list[CaptureFile]:
    """Write every capture file of ``events`` (hop events, :mod:`vrouter.lab.capture`) into
    ``directory``; ``nodes`` in fabric order. Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    ips = np.array([_node_ip(n) for n in nodes], np.int64)
    written = []
    for index, node in enumerate(nodes):
        here = events[events["node"] == index]
        if not len(here):
            continue
        encap = ENCAP_NAMES[int(node.tables.encapsulation[0])]
        on_vif = here[(here["where"] == RX_VIF) | (here["where"] == TX_VIF)]
        planned = []
        for vif in np.unique(on_vif["vif"]):
            name, description = _describe(node, int(vif))
            planned.append((name, description, _interface_file(on_vif[on_vif["vif"] == vif], node, int(vif))))
        fabric = here[(here["where"] == RX_FABRIC) | (here["where"] == TX_FABRIC)]
        if len(fabric):
            planned.append(("fabric", f"vif0/0 fabric interface of {node.name} ({ip_text(_node_ip(node))}, {encap})", _fabric_file(fabric, node, ips, encap)))
        dropped = here[here["where"] == DROP]
        if len(dropped):
            planned.append(("drops", f"packets {node.name}'s vRouter dropped, as they arrived", _drops_file(dropped, node)))
        for name, description, groups in planned:
            path = directory / f"{node.name}-{name}.pcap"
            count = write_pcapng(path, name, description, groups)
            written.append(CaptureFile(path, name, description, count))
    return written
