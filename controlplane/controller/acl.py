"""VN-level ACLs: the rules of the policies attached to a VN, in order, as flow setup reads them.

A rule's sides are kept as sets: ``any``, one VN, or "every VN this policy is attached to"
(``local``), so that a policy attached to a thousand VNs stays one entry. A ``<>`` rule
becomes two entries, the second with its sides and ports swapped. The first entry matching a
packet's (source VN, destination VN, protocol, ports) decides; no match passes (the VNs are
connected, or there would be no route). Ports do not apply to ICMP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controlplane.inet import ANY as ANY_PROTOCOL
from controlplane.inet import PROTOCOL_NUMBERS
from controlplane.tf.model import FqName, PolicyRule, fq_str


@dataclass(frozen=True)
class VnSet:
    """``any`` (members None), or a set of VNs."""

    members: frozenset[FqName] | None

    def __contains__(self, vn: FqName) -> bool:
        return self.members is None or vn in self.members

    def text(self) -> str:
        if self.members is None:
            return "any"
        return ",".join(sorted(v[-1] for v in self.members))


ANY = VnSet(None)


@dataclass(frozen=True)
class AclEntry:
    src: VnSet
    dst: VnSet
    protocol: int  # 0 = any
    src_ports: tuple[int, int]
    dst_ports: tuple[int, int]
    action: str  # pass | deny
    policy: FqName
    rule: int

    def matches(self, src_vn: FqName, dst_vn: FqName, protocol: int, sport: int, dport: int) -> bool:
        return (
            src_vn in self.src
            and dst_vn in self.dst
            and self.protocol in (0, protocol)
            and (protocol == 1 or (self.src_ports[0] <= sport <= self.src_ports[1] and self.dst_ports[0] <= dport <= self.dst_ports[1]))
        )

    def describe(self) -> str:
        return f"network-policy {fq_str(self.policy)} rule {self.rule}: {self.action} {self.src.text()} → {self.dst.text()}"


def side_set(side: FqName | str, attached: frozenset[FqName]) -> VnSet:
    if side == "any":
        return ANY
    if side == "local":
        return VnSet(attached)
    return VnSet(frozenset({side}))  # type: ignore[arg-type]


def vn_acl(
    vn: FqName,
    attachments: Mapping[FqName, Sequence[FqName]],
    policies: Mapping[FqName, Sequence[PolicyRule]],
    attached_to: Mapping[FqName, frozenset[FqName]],
) -> list[AclEntry]:
    """The ordered ACL of one VN."""
    out: list[AclEntry] = []
    for name in attachments.get(vn, ()):
        attached = attached_to.get(name, frozenset())
        for index, rule in enumerate(policies.get(name, ())):
            protocol = PROTOCOL_NUMBERS.get(rule.protocol, ANY_PROTOCOL)  # "any": every protocol
            src, dst = side_set(rule.src, attached), side_set(rule.dst, attached)
            out.append(AclEntry(src, dst, protocol, rule.src_ports, rule.dst_ports, rule.action, name, index))
            if rule.direction == "<>":
                out.append(AclEntry(dst, src, protocol, rule.dst_ports, rule.src_ports, rule.action, name, index))
    return out
