"""Plain-Python answers to "does VRF v on node n route address a, and to what?".

Read straight from the controller's intent with a linear longest-prefix scan and no
numba, so the tests can hold each node's compiled LPM, nexthops and labels against it.
A destination is described the same way for both sides:

- ``("local", vmi, vn)``      — an interface on this node (``vn`` = the VRF context: its own
  VN, or the floating IP's VN),
- ``("remote", node, vmi, vn)`` — the same on another node (through a tunnel),
- ``("receive",)``, ``("underlay", node)``, ``("gateway",)``, ``("gateway-vrf", vn)``,
  ``("discard",)``, and ``None`` for an ECMP hole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from controlplane.controller.intent import DISCARD, FIP, GATEWAY, GATEWAY_VRF, RECEIVE, UNDERLAY, VMI, Endpoint, Intent
from controlplane.tf.model import FqName

Destination = tuple | None


@dataclass(frozen=True)
class RouteAnswer:
    prefix: str
    ecmp: bool
    destinations: tuple[Destination, ...]


def describe(end: Endpoint | None, node: str) -> Destination:
    if end is None:
        return None
    if end.kind in (VMI, FIP):
        if end.node == node:
            return ("local", end.vmi, end.vn)
        return ("remote", end.node, end.vmi, end.vn)
    if end.kind == RECEIVE:
        return ("receive",)
    if end.kind == UNDERLAY:
        return ("receive",) if end.node == node else ("underlay", end.node)
    if end.kind == GATEWAY:
        return ("gateway",)
    if end.kind == GATEWAY_VRF:
        return ("gateway-vrf", end.vn)
    if end.kind == DISCARD:
        return ("discard",)
    raise ValueError(end.kind)  # pragma: no cover


def lookup(intent: Intent, vn: FqName, node: str, address: str) -> RouteAnswer | None:
    """The longest prefix of ``vn``'s VRF holding ``address``, as ``node`` resolves it."""
    target = ipaddress.IPv4Address(address)
    best = None
    for prefix, route in intent.vrfs[vn].routes.items():
        net = ipaddress.IPv4Network(prefix)
        if target in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, route)
    if best is None:
        return None
    route = best[1]
    return RouteAnswer(best[0].with_prefixlen, route.ecmp, tuple(describe(m, node) for m in route.members))
