"""Writing pcapng files (the format Wireshark and tcpdump read), built with numpy.

One file holds one interface (Ethernet, nanosecond timestamps, its name and a description
such as the pod behind it) and its packets in time order; a packet may carry a comment
(the reason it was dropped), which is why the format is pcapng rather than classic pcap.
Packets arrive in groups of equal length and comment (see :mod:`vrouter.views.frames`):
each group becomes a 2-D array of Enhanced Packet Blocks, and the groups are interleaved by
time with one scatter into the file's buffer — no Python per packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LINKTYPE_ETHERNET = 1
_CHUNK = 1 << 16  # rows scattered at once: bounds the index arrays' memory


@dataclass
class PacketGroup:
    """Frames of one length (rows of ``frames``), their times and order, one comment or none."""

    time_ns: np.ndarray  # int64 (n,)
    order: np.ndarray  # int64 (n,), ties in time broken by it
    frames: np.ndarray  # uint8 (n, length)
    comment: str | None = None


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return np.array([code, len(value)], "<u2").tobytes() + _padded(value)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return np.array([kind, length], "<u4").tobytes() + body + np.array([length], "<u4").tobytes()


def section_header(application: str) -> bytes:
    body = np.array([0x1A2B3C4D], "<u4").tobytes() + np.array([1, 0], "<u2").tobytes() + np.array([-1], "<i8").tobytes()
    body += _option(4, application.encode()) + _option(0, b"")
    return _block(0x0A0D0D0A, body)


def interface_description(name: str, description: str) -> bytes:
    body = np.array([LINKTYPE_ETHERNET, 0], "<u2").tobytes() + np.array([0], "<u4").tobytes()
    body += _option(2, name.encode()) + _option(3, description.encode()) + _option(9, bytes([9])) + _option(0, b"")
    return _block(1, body)


def packet_blocks(group: PacketGroup) -> np.ndarray:
    """Enhanced Packet Blocks for a group, one row each."""
    n, length = group.frames.shape
    options = (_option(1, group.comment.encode()) + _option(0, b"")) if group.comment else b""
    size = 32 + length + (-length % 4) + len(options)
    blocks = np.zeros((n, size), np.uint8)
    words = np.zeros((n, 7), "<u4")
    time = group.time_ns.astype(np.uint64)
    words[:] = [6, size, 0, 0, 0, length, length]
    words[:, 3] = (time >> np.uint64(32)).astype(np.uint32)
    words[:, 4] = (time & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    blocks[:, :28] = words.view(np.uint8)
    blocks[:, 28 : 28 + length] = group.frames
    if options:
        blocks[:, size - 4 - len(options) : size - 4] = np.frombuffer(options, np.uint8)
    blocks[:, size - 4 :] = np.frombuffer(np.array([size], "<u4").tobytes(), np.uint8)
    return blocks


def write_pcapng(path: Path, interface: str, description: str, groups: list[PacketGroup], application: str = "vrsim") -> int:
    """Write one interface's packets, every group interleaved in time order. Returns packets."""
    groups = [g for g in groups if len(g.time_ns)]
    blocks = [packet_blocks(g) for g in groups]
    time = np.concatenate([g.time_ns for g in groups]) if groups else np.zeros(0, np.int64)
    order = np.concatenate([g.order for g in groups]) if groups else np.zeros(0, np.int64)
    ranked = np.lexsort((order, time))  # position in the file → row of the concatenation
    with open(path, "wb") as out:
        out.write(section_header(application) + interface_description(interface, description))
        out.write(_interleaved(blocks, ranked).tobytes())
    return len(time)


def _interleaved(blocks: list[np.ndarray], ranked: np.ndarray) -> np.ndarray:
    """The blocks' rows laid end to end in ``ranked`` order."""
    if len({b.shape[1] for b in blocks}) <= 1:  # one block size (the usual case): a row gather
        return np.concatenate(blocks)[ranked].ravel() if blocks else np.zeros(0, np.uint8)
    size = np.concatenate([np.full(len(b), b.shape[1], np.int64) for b in blocks])
    offset = np.empty_like(size)
    offset[ranked] = np.concatenate([[0], np.cumsum(size[ranked])[:-1]])
    body = np.empty(int(size.sum()), np.uint8)
    first = 0
    for block in blocks:
        at = offset[first : first + len(block)]
        for start in range(0, len(block), _CHUNK):
            part = block[start : start + _CHUNK]
            body[at[start : start + _CHUNK, None] + np.arange(part.shape[1])] = part
        first += len(block)
    return body
