"""Tests of the multi-VRF LPM table against a plain-Python longest-match scan."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrouter.dataplane import lpm
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.lpm import (
    LpmTable,
    build_lpm,
    lpm_lookup,
    lpm_lookup_batch,
    lpm_nbytes,
)

Route = tuple[int, int, int]  # (prefix, length, value)
INT32_MAX = 2**31 - 1
ALL_ONES = 0xFFFF_FFFF


# --------------------------------------------------------------------------
# Reference and helpers
# --------------------------------------------------------------------------


def netmask(length: int) -> int:
    return (ALL_ONES << (32 - length)) & ALL_ONES


def reference_lookup(routes: list[Route], addr: int) -> int:
    """Longest match by linear scan; among equal (prefix, length) the last one wins."""
    best_length, best_value = -1, -1
    for prefix, length, value in routes:
        mask = netmask(length)
        if addr & mask == prefix & mask and length >= best_length:
            best_length, best_value = length, value
    return best_value


def as_arrays(routes: list[Route]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([r[0] for r in routes], dtype=np.uint32),
        np.array([r[1] for r in routes], dtype=np.uint8),
        np.array([r[2] for r in routes], dtype=np.int32),
    )


@kernel(cache=True)
def lookup_each(table: LpmTable, vrfs: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """lpm_lookup called from another cache=True kernel, as the dataplane does."""
    out = np.empty(addrs.shape[0], dtype=np.int32)
    for i in range(addrs.shape[0]):
        out[i] = lpm_lookup(table, vrfs[i], addrs[i])
    return out


def lookup_batch(table: LpmTable, vrfs: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    out = np.full(addrs.shape[0], -12345, dtype=np.int32)
    lpm_lookup_batch(table, vrfs, addrs, out)
    return out


def assert_matches_reference(
    table: LpmTable, vrf_routes: list[list[Route]], queries: list[tuple[int, int]]
) -> None:
    """Both compiled lookups agree with the reference on every (vrf, addr) query."""
    vrfs = np.array([vrf for vrf, _ in queries], dtype=np.int64)
    addrs = np.array([addr for _, addr in queries], dtype=np.uint32)
    expected = np.array(
        [reference_lookup(vrf_routes[vrf], addr) if 0 <= vrf < len(vrf_routes) else -1 for vrf, addr in queries],
        dtype=np.int32,
    )
    np.testing.assert_array_equal(lookup_each(table, vrfs, addrs), expected)
    np.testing.assert_array_equal(lookup_batch(table, vrfs, addrs), expected)


def boundary_addresses(routes: list[Route]) -> list[int]:
    """First and last address of each prefix, and the addresses just outside."""
    addrs = [0, ALL_ONES]
    for prefix, length, _ in routes:
        start = prefix & netmask(length)
        end = start | (~netmask(length) & ALL_ONES)
        addrs += [start, end, (end + 1) & ALL_ONES, (start - 1) & ALL_ONES]
    return addrs


# --------------------------------------------------------------------------
# Property test
# --------------------------------------------------------------------------

EDGE_ADDRESSES = [0, 1, 0x7FFF_FFFF, 0x8000_0000, ALL_ONES - 1, ALL_ONES]
lengths = st.one_of(st.sampled_from([0, 1, 8, 16, 23, 24, 25, 31, 32]), st.integers(0, 32))
# few distinct values, so that neighbouring ranges often share one (merging),
# plus INT32_MAX, which cannot be stored directly in the first level
values = st.one_of(st.integers(0, 3), st.integers(0, INT32_MAX), st.just(INT32_MAX))


@st.composite
def route_sets(draw: st.DrawFn) -> list[list[Route]]:
    """Route sets of a few VRFs; prefixes often nest in or overlap earlier ones."""
    vrf_routes: list[list[Route]] = []
    for _ in range(draw(st.integers(1, 4))):
        routes: list[Route] = []
        for _ in range(draw(st.integers(0, 14))):
            length = draw(lengths)
            if routes and draw(st.booleans()):
                # derive from an earlier prefix: same, nested, enclosing or a neighbour
                base, base_length, _ = draw(st.sampled_from(routes))
                length = draw(st.sampled_from([base_length, length]))
                prefix = base ^ (draw(st.sampled_from([0, 1, 0x100, 0x10000])) << (32 - max(length, 1)))
                prefix = (prefix ^ draw(st.integers(0, 255))) & ALL_ONES  # host bits, ignored
            else:  # host bits included on purpose; extremes of the address space
                prefix = draw(st.one_of(st.integers(0, ALL_ONES), st.sampled_from(EDGE_ADDRESSES)))
            routes.append((prefix, length, draw(values)))
        vrf_routes.append(routes)
    return vrf_routes


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vrf_routes=route_sets(),
    max_chunk_bits=st.sampled_from([0, 3, lpm.DEFAULT_MAX_CHUNK_BITS]),
    interpret=st.booleans(),
    data=st.data(),
)
def test_lookup_matches_reference(vrf_routes: list[list[Route]], max_chunk_bits: int, interpret: bool, data: st.DataObject) -> None:
    table = build_lpm([as_arrays(routes) for routes in vrf_routes], max_chunk_bits=max_chunk_bits, interpret=interpret)
    n_vrfs = len(vrf_routes)
    queries = []
    for vrf, routes in enumerate(vrf_routes):
        queries += [(vrf, addr) for addr in boundary_addresses(routes)]
        queries += [(vrf, addr) for addr in data.draw(st.lists(st.integers(0, ALL_ONES), max_size=20))]
        # the addresses of every VRF, looked up in another VRF
        queries += [((vrf + 1) % n_vrfs, addr) for addr in boundary_addresses(routes)]
    queries += [(vrf, 0x0A2F_FFFC) for vrf in (-1, n_vrfs, n_vrfs + 7, -(2**40))]
    assert_matches_reference(table, vrf_routes, queries)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vrf_routes=route_sets(), max_chunk_bits=st.sampled_from([0, 3, lpm.DEFAULT_MAX_CHUNK_BITS]))
def test_interpreted_builder_builds_the_compiled_builders_table(vrf_routes: list[list[Route]], max_chunk_bits: int) -> None:
    """Small tables are built on the interpreter (no compiled builder to load): array for array
    the same table."""
    routes = [as_arrays(r) for r in vrf_routes]
    compiled = build_lpm(routes, max_chunk_bits=max_chunk_bits, interpret=False)
    interpreted = build_lpm(routes, max_chunk_bits=max_chunk_bits, interpret=True)
    for name, array in compiled._asdict().items():
        other = getattr(interpreted, name)
        assert array.dtype == other.dtype and np.array_equal(array, other), name


def test_builder_interprets_small_tables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    monkeypatch.setattr(lpm, "interpreted", lambda kernel: used.append(kernel.py_func.__name__) or kernel)
    build_lpm([as_arrays([(0x0A000000, 8, 1)] * lpm.SMALL_TABLE)])
    assert "_prefixes_to_ranges" in used
    used.clear()
    build_lpm([as_arrays([(0x0A000000, 8, 1)] * (lpm.SMALL_TABLE + 1))])
    assert used == []


# --------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------


def test_default_route_only() -> None:
    table = build_lpm([as_arrays([(0, 0, 5)])])
    addrs = np.array([0, 1, 0x0A2F_FFFC, 0x7FFF_FFFF, 0x8000_0000, ALL_ONES], dtype=np.uint32)
    vrfs = np.zeros(addrs.shape[0], dtype=np.int64)
    np.testing.assert_array_equal(lookup_each(table, vrfs, addrs), 5)
    np.testing.assert_array_equal(lookup_batch(table, vrfs, addrs), 5)


def test_default_route_with_host_bits_is_still_default() -> None:
    table = build_lpm([as_arrays([(0xDEAD_BEEF, 0, 5)])])
    assert lookup_each(table, np.zeros(2, np.int64), np.array([0, ALL_ONES], np.uint32)).tolist() == [5, 5]


def test_all_ones_host_route() -> None:
    routes = [(ALL_ONES, 32, 9)]
    table = build_lpm([as_arrays(routes)])
    assert_matches_reference(table, [routes], [(0, ALL_ONES), (0, ALL_ONES - 1), (0, 0)])
    assert int(lpm_lookup(table, 0, np.uint32(ALL_ONES))) == 9
    assert int(lpm_lookup(table, 0, np.uint32(ALL_ONES - 1))) == -1


def test_host_route_just_below_the_top_of_the_address_space() -> None:
    routes = [(ALL_ONES - 1, 32, 4), (0xFF00_0000, 8, 6)]
    table = build_lpm([as_arrays(routes)])
    addrs = np.array([ALL_ONES - 1, ALL_ONES, ALL_ONES - 2], np.uint32)
    assert lookup_each(table, np.zeros(3, np.int64), addrs).tolist() == [4, 6, 6]
    assert_matches_reference(table, [routes], [(0, a) for a in boundary_addresses(routes)])


def test_adjacent_prefixes() -> None:
    # 10.0.0.0/24, 10.0.1.0/24, 10.0.2.0/23 back to back; 10.0.4.0/24 absent
    routes = [(0x0A00_0000, 24, 1), (0x0A00_0100, 24, 2), (0x0A00_0200, 23, 3)]
    table = build_lpm([as_arrays(routes)])
    addrs = [0x09FF_FFFF, 0x0A00_0000, 0x0A00_00FF, 0x0A00_0100, 0x0A00_01FF, 0x0A00_0200, 0x0A00_03FF, 0x0A00_0400]
    assert [reference_lookup(routes, a) for a in addrs] == [-1, 1, 1, 2, 2, 3, 3, -1]
    assert_matches_reference(table, [routes], [(0, a) for a in addrs])


def test_adjacent_prefixes_with_equal_values_merge() -> None:
    routes = [(0x0A00_0000, 24, 1), (0x0A00_0100, 24, 1), (0x0A00_0000, 8, 2)]
    table = build_lpm([as_arrays(routes)])
    addrs = [0x09FF_FFFF, 0x0A00_0000, 0x0A00_01FF, 0x0A00_0200, 0x0AFF_FFFF, 0x0B00_0000]
    assert_matches_reference(table, [routes], [(0, a) for a in addrs])


def test_vrf_without_routes_and_unknown_vrfs() -> None:
    routes = [[(0, 0, 1)], [], [(0x0A00_0000, 8, 3)]]
    table = build_lpm([as_arrays(r) for r in routes])
    assert int(lpm_lookup(table, 1, np.uint32(0x0A00_0001))) == -1
    assert int(lpm_lookup(table, 3, np.uint32(0x0A00_0001))) == -1
    assert int(lpm_lookup(table, -1, np.uint32(0x0A00_0001))) == -1
    queries = [(vrf, addr) for vrf in range(-2, 5) for addr in (0, 0x0A00_0001, ALL_ONES)]
    assert_matches_reference(table, routes, queries)


def test_no_vrfs_at_all() -> None:
    table = build_lpm([])
    assert lookup_batch(table, np.array([0, 1], np.int64), np.array([0, 1], np.uint32)).tolist() == [-1, -1]


def test_duplicates_last_occurrence_wins_even_with_different_host_bits() -> None:
    routes = [(0x0A00_0000, 16, 1), (0x0A00_FFFF, 16, 2), (0x0A00_1234, 16, 3), (0x0A00_0000, 17, 4)]
    table = build_lpm([as_arrays(routes)])
    assert int(lpm_lookup(table, 0, np.uint32(0x0A00_8000))) == 3
    assert int(lpm_lookup(table, 0, np.uint32(0x0A00_7FFF))) == 4


def test_long_slices_use_binary_search_path() -> None:
    # 64 host routes packed in one /24: one chunk holds many ranges
    routes = [(0x0A00_0000 + 3 * i, 32, i) for i in range(64)] + [(0x0A00_0000, 24, 100), (0, 0, 200)]
    addrs = boundary_addresses(routes) + list(range(0x0A00_0000, 0x0A00_0100))
    for max_chunk_bits in (0, 4, 22):
        table = build_lpm([as_arrays(routes)], max_chunk_bits=max_chunk_bits)
        assert_matches_reference(table, [routes], [(0, a) for a in addrs])


def test_batch_accepts_int32_vrfs() -> None:
    table = build_lpm([as_arrays([(0x0A00_0000, 8, 1)]), as_arrays([(0, 0, 2)])])
    out = np.empty(3, dtype=np.int32)
    lpm_lookup_batch(table, np.array([0, 1, 2], np.int32), np.array([0x0A01_0203] * 3, np.uint32), out)
    assert out.tolist() == [1, 2, -1]


def test_batch_rejects_mismatched_lengths() -> None:
    table = build_lpm([as_arrays([(0, 0, 1)])])
    with pytest.raises(ValueError):
        lpm_lookup_batch(table, np.zeros(2, np.int64), np.zeros(3, np.uint32), np.empty(3, np.int32))


@pytest.mark.parametrize(
    "routes",
    [
        (np.array([0], np.uint32), np.array([33]), np.array([1], np.int32)),
        (np.array([0], np.uint32), np.array([-1]), np.array([1], np.int32)),
        (np.array([0], np.uint32), np.array([8]), np.array([-1], np.int32)),
        (np.array([2**32], np.int64), np.array([8]), np.array([1], np.int32)),
        (np.array([0, 1], np.uint32), np.array([8]), np.array([1], np.int32)),
    ],
)
def test_invalid_routes_are_rejected(routes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError):
        build_lpm([routes])


def test_docstring_examples() -> None:
    assert doctest.testmod(lpm).failed == 0


# --------------------------------------------------------------------------
# Scale: many VRFs stay compact
# --------------------------------------------------------------------------


def test_ten_thousand_vrfs_are_compact_and_correct() -> None:
    rng = np.random.default_rng(2024)
    n_vrfs, routes_per_vrf = 10_000, 100
    vrf_arrays = [
        (
            rng.integers(0, 2**32, routes_per_vrf, dtype=np.uint64).astype(np.uint32),
            rng.integers(8, 33, routes_per_vrf).astype(np.uint8),
            rng.integers(0, 1 << 20, routes_per_vrf).astype(np.int32),
        )
        for _ in range(n_vrfs)
    ]
    table = build_lpm(vrf_arrays)
    assert lpm_nbytes(table) < 2 * 2**30

    checked_vrfs = [0, 1, 4321, n_vrfs - 1]
    vrf_routes: list[list[Route]] = [[] for _ in range(n_vrfs)]
    queries = []
    for vrf in checked_vrfs:
        prefixes, lens, vals = vrf_arrays[vrf]
        vrf_routes[vrf] = list(zip(prefixes.tolist(), lens.tolist(), vals.tolist()))
        random_addrs = rng.integers(0, 2**32, 500, dtype=np.uint64).tolist()
        queries += [(vrf, addr) for addr in random_addrs + boundary_addresses(vrf_routes[vrf])]
    assert len(queries) > 2000
    assert_matches_reference(table, vrf_routes, queries)
