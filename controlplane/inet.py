"""IPv4 addresses and IP protocols: numbers for the tables, names for people.

One vocabulary for every layer above the kernels (which keep their own constants and see
numbers only): the controller's rules, the agent's tables, the traffic the lab builds and the
views all write an address or a protocol the same way.

>>> ip_int("10.47.255.252"), ip_text(170917884)
(170917884, '10.47.255.252')
>>> protocol_number("TCP"), protocol_number("sctp"), protocol_name(17)
(6, 132, 'udp')
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

ANY = 0  # a rule's "any protocol"
ICMP = 1
TCP = 6
UDP = 17
SCTP = 132

#: lower-case protocol names as vrsim's scenarios, rules and commands write them
PROTOCOL_NUMBERS: dict[str, int] = {"icmp": ICMP, "tcp": TCP, "udp": UDP, "sctp": SCTP}
PROTOCOL_NAMES: dict[int, str] = {number: name for name, number in PROTOCOL_NUMBERS.items()}
#: the protocols a Kubernetes port or NetworkPolicy names (upper case, as the API spells them)
KUBERNETES_PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP")


def protocol_number(name: str) -> int:
    """``tcp``, ``TCP`` … → 6; a KeyError names anything else."""
    return PROTOCOL_NUMBERS[name.lower()]


def protocol_name(number: int) -> str:
    """6 → ``tcp``; a protocol without a name is its number (``47``)."""
    return PROTOCOL_NAMES.get(int(number), str(int(number)))


@lru_cache(maxsize=65_536)
def ip_int(text: str) -> int:
    """A dotted IPv4 address as an int (cached: the same addresses recur on every node); a
    ValueError for anything else (leading zeros included, as Kubernetes refuses them)."""
    return int(ipaddress.IPv4Address(text))


def ip_text(value: int) -> str:
    """An int (or a numpy integer, any width) as a dotted IPv4 address."""
    return socket.inet_ntoa((int(value) & 0xFFFFFFFF).to_bytes(4, "big"))


def not_ipv4(value: object, what: str = "IPv4 address") -> str:
    """Why ``value`` is no IPv4 address (or network), naming IPv6 when it is one: vrsim
    simulates IPv4 clusters, and "invalid" would be wrong about a good IPv6 address.

    >>> not_ipv4("fd00::1")
    "'fd00::1' is an IPv6 address: vrsim simulates IPv4 clusters only"
    >>> not_ipv4("10.0.0.300")
    "'10.0.0.300' is not an IPv4 address"
    """
    text = str(value)
    for parse, kind in ((ipaddress.IPv6Address, "an IPv6 address"), (ipaddress.IPv6Network, "an IPv6 network")):
        try:
            parse(text)
        except ValueError:
            continue
        return f"{text!r} is {kind}: vrsim simulates IPv4 clusters only"
    return f"{text!r} is not an {what}"
