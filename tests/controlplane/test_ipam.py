"""The IPAM allocator (spec §3): top-down, gateway and DNS reserved, highest freed reused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.tf.ipam import AddressPool, AllocationError


def test_pod_subnet_starts_below_gateway_and_dns() -> None:
    pool = AddressPool("10.32.0.0/12")
    assert str(pool.gateway) == "10.47.255.254"
    assert str(pool.dns) == "10.47.255.253"
    assert [str(pool.allocate(n)) for n in "abc"] == ["10.47.255.252", "10.47.255.251", "10.47.255.250"]


def test_freed_address_is_reused_highest_first() -> None:
    pool = AddressPool("10.32.0.0/12")
    a, b, c, d = (pool.allocate(n) for n in "abcd")
    pool.release(b)
    pool.release(d)
    pool.release(c)
    assert pool.allocate("e") == b  # .251 is the highest free
    assert pool.allocate("f") == c
    assert pool.allocate("g") == d
    assert str(pool.allocate("h")) == "10.47.255.248"


def test_slash29_holds_exactly_four() -> None:
    pool = AddressPool("192.168.0.0/29")
    got = [str(pool.allocate(str(i))) for i in range(4)]
    assert got == ["192.168.0.4", "192.168.0.3", "192.168.0.2", "192.168.0.1"]
    with pytest.raises(AllocationError, match="exhausted"):
        pool.allocate("fifth")
    pool.release("192.168.0.3")
    assert str(pool.allocate("fifth")) == "192.168.0.3"


def test_reserve_rules() -> None:
    pool = AddressPool("10.96.0.0/12")
    pool.reserve("10.100.0.5", "svc-a")
    with pytest.raises(AllocationError, match="already in use"):
        pool.reserve("10.100.0.5", "svc-b")
    with pytest.raises(AllocationError, match="not a usable address"):
        pool.reserve("10.200.0.1", "svc-c")
    with pytest.raises(AllocationError):
        pool.reserve("10.111.255.255", "broadcast")
    pool.reserve("10.100.0.5", "svc-a")  # the holder may ask again
    pool.release("10.100.0.5")
    pool.reserve("10.100.0.5", "svc-b")


def test_gateway_cannot_be_released() -> None:
    pool = AddressPool("10.0.0.0/24")
    pool.release("10.0.0.254")
    assert pool.owner_of("10.0.0.254") == "gateway"
    assert str(pool.allocate("x")) == "10.0.0.252"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80))
def test_never_hands_out_twice_and_stays_in_range(ops: list[tuple[bool, int]]) -> None:
    """Random allocate/release sequences: no address twice, never gateway/DNS/network/broadcast."""
    pool = AddressPool("10.1.0.0/26")
    net = ipaddress.IPv4Network("10.1.0.0/26")
    held: list[ipaddress.IPv4Address] = []
    for allocate, pick in ops:
        if allocate:
            try:
                ip = pool.allocate(f"o{len(held)}")
            except AllocationError:
                assert len(held) == net.num_addresses - 4
                continue
            assert ip not in held
            assert ip in net and ip not in (net.network_address, net.broadcast_address, pool.gateway, pool.dns)
            free = [a for a in net.hosts() if a not in held and a not in (pool.gateway, pool.dns)]
            assert ip == max(free)  # always the highest free address
            held.append(ip)
        elif held:
            ip = held.pop(pick % len(held))
            pool.release(ip)
            assert pool.owner_of(ip) is None
    assert pool.in_use == len(held)
