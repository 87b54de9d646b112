"""Address allocation the way TF's IPAM does it: from the top of the pool downward.

The highest usable address of a subnet is the gateway, the next one down the DNS/service
address; both are reserved. Pods then get addresses going down (for 10.32.0.0/12:
10.47.255.252, .251, …). A freed address is reused before fresh ones, highest first. The
network and broadcast addresses are never handed out, so a /29 holds exactly four pods.

>>> pool = AddressPool("10.32.0.0/12")
>>> str(pool.gateway), str(pool.dns)
('10.47.255.254', '10.47.255.253')
>>> [str(pool.allocate("a")), str(pool.allocate("b"))]
['10.47.255.252', '10.47.255.251']
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass, field


class AllocationError(Exception):
    """A pool cannot satisfy a request (exhausted, address outside it, address taken)."""


@dataclass
class AddressPool:
    """One subnet's allocator; ``owners`` maps every address in use to who holds it."""

    cidr: str
    reserve_gateway: bool = True
    owners: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.cidr)
        self.network = net
        size = net.num_addresses
        base = int(net.network_address)
        if size >= 4:
            self._low = base + 1
            self._high = base + size - 2
        else:  # /31 and /32 pools (floating-IP pools of one address): every address usable
            self._low = base
            self._high = base + size - 1
        self.gateway: ipaddress.IPv4Address | None = None
        self.dns: ipaddress.IPv4Address | None = None
        if self.reserve_gateway and self._high - self._low >= 1:
            self.gateway = ipaddress.IPv4Address(self._high)
            self.dns = ipaddress.IPv4Address(self._high - 1)
            self.owners[self._high] = "gateway"
            self.owners[self._high - 1] = "dns"
            self._next = self._high - 2
        else:
            self._next = self._high
        self._freed: list[int] = []  # max-heap (negated) of released addresses above _next

    def __contains__(self, address: ipaddress.IPv4Address | str) -> bool:
        return ipaddress.IPv4Address(address) in self.network

    @property
    def in_use(self) -> int:
        """Addresses held by objects (gateway and DNS not counted)."""
        return sum(1 for owner in self.owners.values() if owner not in ("gateway", "dns"))

    def allocate(self, owner: str) -> ipaddress.IPv4Address:
        """The highest free address; raises AllocationError when none is left."""
        while self._freed:
            candidate = -heapq.heappop(self._freed)
            if candidate not in self.owners:
                self.owners[candidate] = owner
                return ipaddress.IPv4Address(candidate)
        while self._next >= self._low:
            candidate = self._next
            self._next -= 1
            if candidate not in self.owners:
                self.owners[candidate] = owner
                return ipaddress.IPv4Address(candidate)
        raise AllocationError(f"address pool {self.cidr} is exhausted ({self.in_use} addresses in use)")

    def reserve(self, address: ipaddress.IPv4Address | str, owner: str) -> ipaddress.IPv4Address:
        """Take one given address (a requested ClusterIP, loadBalancerIP, …)."""
        ip = ipaddress.IPv4Address(address)
        value = int(ip)
        if ip not in self.network or not (self._low <= value <= self._high):
            raise AllocationError(f"{ip} is not a usable address of {self.cidr}")
        holder = self.owners.get(value)
        if holder is not None and holder != owner:
            raise AllocationError(f"{ip} is already in use by {holder}")
        self.owners[value] = owner
        return ip

    def release(self, address: ipaddress.IPv4Address | str) -> None:
        """Return an address; releasing one not in use is a no-op."""
        value = int(ipaddress.IPv4Address(address))
        owner = self.owners.get(value)
        if owner is None or owner in ("gateway", "dns"):
            return
        del self.owners[value]
        if value > self._next:
            heapq.heappush(self._freed, -value)

    def owner_of(self, address: ipaddress.IPv4Address | str) -> str | None:
        return self.owners.get(int(ipaddress.IPv4Address(address)))
