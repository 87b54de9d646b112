"""Packet rows as wire bytes: Ethernet, IPv4, TCP/UDP/SCTP/ICMP, and the fabric's tunnels.

Only exported captures need bytes, so this is the one place that makes them. Every function
works on a group of packets of one shape (same protocol layout and length) at once: the
packets are the rows of a 2-D ``uint8`` array, each header field a column slice, and the
checksums are sums over columns — numpy over the group, never Python per packet.

What is not in the rows is made up plainly and the same way every time: a row's ``length``
is its frame on the wire (64, the minimum, for every conversation's packets), so its IP
packet is the headers alone and the frame is padded; longer rows carry zeros as payload;
an IP identification is the packet's place in its capture, TCP sequence numbers are those
of a handshake (SYN seq 0; SYN-ACK seq 0 ack 1; the final ACK seq 1 ack 1), ICMP echo
sequence numbers are the request's number within its ping. Tunnels are built as the vRouter
sends them: MPLS over UDP to port 6635 (one label, bottom of stack, the inner packet's TTL),
MPLS over GRE (protocol 0x8847), or VXLAN to port 4789 (the VNI, an inner Ethernet header
whose addresses are the vRouter's own, as it routes at layer 3).
"""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.packets import ICMP_DEST_UNREACHABLE, TCP_ACK, TCP_SYN
from vrouter.dataplane.tables import MPLS_UDP_PORT, PROTO_ICMP, PROTO_SCTP, PROTO_TCP, PROTO_UDP, VXLAN_UDP_PORT

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_MPLS = 0x8847
PROTO_GRE = 47
ETHERNET_LEN = 14
FCS_LEN = 4
MIN_FRAME = 60  # Ethernet's minimum frame without its FCS: shorter frames are padded with zeros
IPV4_LEN = 20
#: the MAC the vRouter answers with on every pod interface (TF's 00:00:5e:00:01:00)
VROUTER_MAC = bytes.fromhex("00005e000100")

# the layouts an IP packet can take in a capture (the group key with its length)
TCP, UDP, SCTP, SCTP_ABORT, ICMP, ICMP_ERROR, OTHER = range(7)
#: bytes after the IPv4 header that each layout needs at least
MIN_L4 = {TCP: 20, UDP: 8, SCTP: 28, SCTP_ABORT: 16, ICMP: 8, ICMP_ERROR: 8 + IPV4_LEN + 8, OTHER: 0}


def layout_of(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    """Each packet's layout: an ICMP error travels on its quoted flow's row (``icmp_type`` 3)."""
    error = (icmp_type == ICMP_DEST_UNREACHABLE) & (proto != PROTO_ICMP)
    return np.select(
        [(proto == PROTO_SCTP) & error, error, proto == PROTO_TCP, proto == PROTO_UDP, proto == PROTO_SCTP, proto == PROTO_ICMP],
        [SCTP_ABORT, ICMP_ERROR, TCP, UDP, SCTP, ICMP],
        OTHER,
    ).astype(np.uint8)


def ip_total_length(layout: np.ndarray, frame_length: np.ndarray) -> np.ndarray:
    """IPv4 total length from a row's ``length`` (the frame on the wire, FCS included): the
    headers alone for a minimum-size frame (64, every conversation's packets), else the
    frame less Ethernet and FCS."""
    least = np.array([MIN_L4[k] for k in range(OTHER + 1)], np.int64)[layout] + IPV4_LEN
    length = frame_length.astype(np.int64)
    return np.where(length <= MIN_FRAME + FCS_LEN, least, np.maximum(length - ETHERNET_LEN - FCS_LEN, least))


def be(values: np.ndarray | int, width: int, n: int) -> np.ndarray:
    """Big-endian bytes of ``values`` as an ``(n, width)`` block."""
    dtype = {1: ">u1", 2: ">u2", 4: ">u4"}[width]
    return np.broadcast_to(np.asarray(values).astype(np.int64).astype(dtype), (n,)).copy().view(np.uint8).reshape(n, width)


def internet_checksum(block: np.ndarray, extra: np.ndarray | int = 0) -> np.ndarray:
    """RFC 1071 checksum of each row of ``block`` (plus an already-summed pseudo header)."""
    if block.shape[1] % 2:
        block = np.hstack([block, np.zeros((block.shape[0], 1), np.uint8)])
    total = block.view(">u2").astype(np.int64).sum(axis=1) + extra
    for _ in range(3):
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.int64)


def _words(value: np.ndarray) -> np.ndarray:
    value = value.astype(np.int64)
    return (value >> 16) + (value & 0xFFFF)


def ipv4(payload: np.ndarray, src: np.ndarray, dst: np.ndarray, proto: np.ndarray | int, ttl: np.ndarray | int, ident: np.ndarray) -> np.ndarray:
    """An IPv4 header (DF, no options, checksum set) in front of each row of ``payload``."""
    n = payload.shape[0]
    header = np.hstack(
        [
            be(0x45, 1, n), be(0, 1, n), be(IPV4_LEN + payload.shape[1], 2, n), be(ident & 0xFFFF, 2, n), be(0x4000, 2, n),
            be(ttl, 1, n), be(proto, 1, n), be(0, 2, n), be(src, 4, n), be(dst, 4, n),
        ]
    )  # fmt: skip
    header[:, 10:12] = be(internet_checksum(header), 2, n)
    return np.hstack([header, payload])


def _pseudo(src: np.ndarray, dst: np.ndarray, proto: int, length: int) -> np.ndarray:
    return _words(src) + _words(dst) + proto + length


def _zeros(n: int, width: int) -> np.ndarray:
    return np.zeros((n, width), np.uint8)


def transport(layout: int, p: np.ndarray, l4_length: int, seq: np.ndarray) -> np.ndarray:
    """The bytes after the IPv4 header for packets ``p`` (fields sip, dip, sport, dport,
    proto, tcp_flags, icmp_type, ttl), ``l4_length`` bytes each, checksums set."""
    n = len(p)
    src, dst, sport, dport = p["sip"], p["dip"], p["sport"], p["dport"]
    if layout == TCP:
        flags = p["tcp_flags"].astype(np.int64)
        acked = (flags & TCP_ACK) != 0
        tcp_seq = np.where(acked & ((flags & TCP_SYN) == 0) & ((flags & 0x04) == 0), 1, 0)
        block = np.hstack(
            [be(sport, 2, n), be(dport, 2, n), be(tcp_seq, 4, n), be(acked.astype(np.int64), 4, n), be(0x50, 1, n), be(flags, 1, n),
             be(64240, 2, n), be(0, 2, n), be(0, 2, n), _zeros(n, l4_length - 20)]
        )  # fmt: skip
        block[:, 16:18] = be(internet_checksum(block, _pseudo(src, dst, PROTO_TCP, l4_length)), 2, n)
    elif layout == UDP:
        block = np.hstack([be(sport, 2, n), be(dport, 2, n), be(l4_length, 2, n), be(0, 2, n), _zeros(n, l4_length - 8)])
        checksum = internet_checksum(block, _pseudo(src, dst, PROTO_UDP, l4_length))
        block[:, 6:8] = be(np.where(checksum == 0, 0xFFFF, checksum), 2, n)
    elif layout in (SCTP, SCTP_ABORT):
        if layout == SCTP:  # one DATA chunk (B and E set) carrying the zeros
            chunk = np.hstack([be(0, 1, n), be(3, 1, n), be(l4_length - 12, 2, n), be(seq, 4, n), be(0, 2, n), be(0, 2, n), be(0, 4, n)])
        else:  # ABORT, the verification tag reflected (T bit)
            chunk = np.hstack([be(6, 1, n), be(1, 1, n), be(4, 2, n)])
        block = np.hstack([be(sport, 2, n), be(dport, 2, n), be(1, 4, n), be(0, 4, n), chunk])
        block = np.hstack([block, _zeros(n, l4_length - block.shape[1])])
        block[:, 8:12] = crc32c(block).astype("<u4").view(np.uint8).reshape(n, 4)
    elif layout == ICMP:
        block = np.hstack([be(p["icmp_type"], 1, n), be(0, 1, n), be(0, 2, n), be(sport, 2, n), be(seq, 2, n), _zeros(n, l4_length - 8)])
        block[:, 2:4] = be(internet_checksum(block), 2, n)
    elif layout == ICMP_ERROR:  # port unreachable, quoting the packet it answers (reversed row)
        quoted_l4 = np.hstack([be(dport, 2, n), be(sport, 2, n), be(np.where(p["proto"] == PROTO_UDP, 8, 0), 2, n), be(0, 2, n)])
        quoted = ipv4(quoted_l4, dst, src, p["proto"], 64, seq)
        block = np.hstack([be(3, 1, n), be(3, 1, n), be(0, 2, n), be(0, 4, n), quoted, _zeros(n, l4_length - 8 - quoted.shape[1])])
        block[:, 2:4] = be(internet_checksum(block), 2, n)
    else:
        block = _zeros(n, l4_length)
    return block


def ip_packets(p: np.ndarray, layout: int, total_length: int, ident: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Whole IPv4 packets for a group of one layout and one total length."""
    proto = np.full(len(p), PROTO_ICMP) if layout == ICMP_ERROR else p["proto"]
    return ipv4(transport(layout, p, total_length - IPV4_LEN, seq), p["sip"], p["dip"], proto, p["ttl"], ident)


def ethernet(payload: np.ndarray, dst_mac: np.ndarray, src_mac: np.ndarray, ethertype: int = ETHERTYPE_IPV4) -> np.ndarray:
    """An Ethernet II header in front of each row, padded to the minimum frame (captures
    show no FCS)."""
    n = payload.shape[0]
    pad = _zeros(n, max(0, MIN_FRAME - ETHERNET_LEN - payload.shape[1]))
    return np.hstack([np.broadcast_to(dst_mac, (n, 6)), np.broadcast_to(src_mac, (n, 6)), be(ethertype, 2, n), payload, pad])


def mpls(payload: np.ndarray, label: np.ndarray, ttl: np.ndarray) -> np.ndarray:
    """One MPLS label stack entry (bottom of stack) in front of each row."""
    n = payload.shape[0]
    entry = (label.astype(np.int64) << 12) | (1 << 8) | ttl.astype(np.int64)
    return np.hstack([be(entry, 4, n), payload])


def udp(payload: np.ndarray, src: np.ndarray, dst: np.ndarray, sport: np.ndarray, dport: int) -> np.ndarray:
    """A UDP header with its checksum (over the pseudo header of ``src``/``dst``)."""
    n = payload.shape[0]
    length = 8 + payload.shape[1]
    block = np.hstack([be(sport, 2, n), be(dport, 2, n), be(length, 2, n), be(0, 2, n), payload])
    checksum = internet_checksum(block, _pseudo(src, dst, PROTO_UDP, length))
    block[:, 6:8] = be(np.where(checksum == 0, 0xFFFF, checksum), 2, n)
    return block


def tunnelled(inner: np.ndarray, encap: str, label: np.ndarray, inner_ttl: np.ndarray, src: np.ndarray, dst: np.ndarray, outer_sport: np.ndarray, ident: np.ndarray) -> np.ndarray:
    """Inner IP packets as the fabric carries them between two nodes' addresses (an outer
    IPv4 packet; the caller adds the outer Ethernet). ``encap``: MPLSoUDP, MPLSoGRE or VXLAN."""
    n = inner.shape[0]
    if encap == "VXLAN":
        frame = ethernet(inner, np.frombuffer(VROUTER_MAC, np.uint8), np.frombuffer(VROUTER_MAC, np.uint8))
        header = np.hstack([be(0x08, 1, n), _zeros(n, 3), be(label.astype(np.int64) << 8, 4, n)])
        return ipv4(udp(np.hstack([header, frame]), src, dst, outer_sport, VXLAN_UDP_PORT), src, dst, PROTO_UDP, 64, ident)
    stacked = mpls(inner, label, inner_ttl)
    if encap == "MPLSoGRE":
        return ipv4(np.hstack([be(0, 2, n), be(ETHERTYPE_MPLS, 2, n), stacked]), src, dst, PROTO_GRE, 64, ident)
    return ipv4(udp(stacked, src, dst, outer_sport, MPLS_UDP_PORT), src, dst, PROTO_UDP, 64, ident)


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint64)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ 0x82F63B78, table >> 1)
    return table.astype(np.uint32)


_CRC32C = _crc32c_table()


def crc32c(block: np.ndarray) -> np.ndarray:
    """CRC-32C (Castagnoli) of each row, SCTP's checksum; a loop over columns, not packets."""
    crc = np.full(block.shape[0], 0xFFFFFFFF, np.uint32)
    for column in block.T:
        crc = _CRC32C[(crc ^ column) & 0xFF] ^ (crc >> np.uint32(8))
    return ~crc
