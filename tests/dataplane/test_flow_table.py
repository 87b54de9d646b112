"""Tests of the flow table key store against plain-Python models.

The hash is checked against an independent plain-Python MurmurHash3_x86_32
(itself checked against published vectors), and the table against a model
that knows the documented placement rules exactly.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from numba import types

from vrouter.dataplane.flow_table import (
    FLOW_INVALID_KEY,
    FLOW_TABLE_FULL,
    flow_delete,
    flow_find,
    flow_find_batch,
    flow_find_or_insert,
    flow_hash,
    flow_insert,
    flow_key_at,
    new_flow_table,
    pack_key,
    unpack_key,
)
from vrouter.dataplane.kernel import kernel

MAX_NH = 2**24 - 1
U32 = 0xFFFFFFFF


# ---------------------------------------------------------------- plain-Python reference


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & U32


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """Straight transcription of MurmurHash3_x86_32 (Austin Appleby, SMHasher)."""
    h = seed & U32
    n_blocks = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: n_blocks * 4]):
        k = _rotl32((k * 0xCC9E2D51) & U32, 15) * 0x1B873593 & U32
        h = (_rotl32(h ^ k, 13) * 5 + 0xE6546B64) & U32
    tail = data[n_blocks * 4 :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = _rotl32((k * 0xCC9E2D51) & U32, 15) * 0x1B873593 & U32
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & U32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & U32
    h ^= h >> 16
    return h


def py_pack(key: tuple[int, ...]) -> tuple[int, int, int, int]:
    key_nh, sip, dip, proto, sport, dport = key
    return sip, dip, (sport << 16) | dport, (key_nh << 8) | proto


def py_hash(words: tuple[int, int, int, int]) -> int:
    return murmur3_x86_32(struct.pack("<4I", *words))


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0x00000000),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"Hello, world!", 1234, 0xFAF6CDB3),
        (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    ],
)
def test_reference_murmur3_matches_published_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_x86_32(data, seed) == expected


words_st = st.tuples(*[st.integers(0, U32)] * 4)


@settings(max_examples=300, deadline=None)
@given(words_st)
def test_flow_hash_is_murmur3_of_the_16_key_bytes(words: tuple[int, int, int, int]) -> None:
    got = flow_hash(*(np.uint32(w) for w in words))
    assert int(got) == py_hash(words)
    # numba boxes scalars as Python ints; check the compiled type instead.
    assert all(sig.return_type == types.uint32 for sig in flow_hash.nopython_signatures)
    assert int(flow_hash(*words)) == py_hash(words)  # Python ints give the same hash


# ---------------------------------------------------------------- packing

key_st = st.tuples(
    st.integers(1, MAX_NH),
    st.integers(0, U32),
    st.integers(0, U32),
    st.integers(0, 255),
    st.integers(0, 65535),
    st.integers(0, 65535),
)
EXTREME_KEYS = [
    (MAX_NH, U32, U32, 255, 65535, 65535),
    (1, 0, 0, 0, 0, 0),
    (MAX_NH, 0x0A000001, 0xC0A80001, 17, 65535, 0),
    (0x800000, 0x80000000, 0x7FFFFFFF, 6, 0, 65535),
]


def _check_pack_round_trip(key: tuple[int, ...]) -> None:
    packed = pack_key(*key)
    assert all(sig.return_type == types.UniTuple(types.uint32, 4) for sig in pack_key.nopython_signatures)
    assert tuple(int(w) for w in packed) == py_pack(key)
    assert tuple(int(v) for v in unpack_key(*packed)) == key


@pytest.mark.parametrize("key", EXTREME_KEYS)
def test_pack_unpack_round_trip_extremes(key: tuple[int, ...]) -> None:
    _check_pack_round_trip(key)


@settings(max_examples=200, deadline=None)
@given(key_st)
def test_pack_unpack_round_trip(key: tuple[int, ...]) -> None:
    _check_pack_round_trip(key)


def test_flow_key_at_returns_inserted_key_and_zeros_when_free() -> None:
    t = new_flow_table(64)
    for key in EXTREME_KEYS:
        w = pack_key(*key)
        index = flow_insert(t, *w, flow_hash(*w))
        assert index >= 0
        assert tuple(int(v) for v in flow_key_at(t, index)) == key
        flow_delete(t, index)
        assert tuple(int(v) for v in flow_key_at(t, index)) == (0, 0, 0, 0, 0, 0)
    assert t.n_used[0] == 0


# ---------------------------------------------------------------- sizing and layout


@pytest.mark.parametrize("n_entries", [1, 4, 5, 16, 100, 4096, 512 * 1024])
def test_sizing_and_64_byte_alignment(n_entries: int) -> None:
    t = new_flow_table(n_entries)
    n_buckets = t.bucket_overflow_head.shape[0]
    n_main = 4 * n_buckets
    assert n_buckets & (n_buckets - 1) == 0
    assert n_main >= n_entries and n_main < 2 * n_entries + 4
    assert t.overflow_next.shape[0] == math.ceil(0.2 * n_main - 1e-9)
    assert t.keys.shape == (n_main + t.overflow_next.shape[0], 4)
    assert t.keys.dtype == np.uint32 and t.keys.flags.c_contiguous
    assert t.keys.ctypes.data % 64 == 0
    assert not t.keys.any()
    assert t.n_used[0] == 0 and t.n_overflow_used[0] == 0


def test_default_size() -> None:
    t = new_flow_table()
    assert t.bucket_overflow_head.shape[0] == 128 * 1024
    assert t.overflow_next.shape[0] == math.ceil(0.2 * 512 * 1024)
    assert t.keys.ctypes.data % 64 == 0


def test_alignment_holds_for_many_allocations() -> None:
    # numpy's allocator often returns 16- or 32-byte aligned blocks; try many.
    assert all(new_flow_table(16 * k).keys.ctypes.data % 64 == 0 for k in range(1, 40))


def test_invalid_sizes_rejected() -> None:
    with pytest.raises(ValueError):
        new_flow_table(0)
    with pytest.raises(ValueError):
        new_flow_table(16, overflow_fraction=-0.1)


def test_no_overflow_area() -> None:
    t = new_flow_table(4, overflow_fraction=0.0)
    assert t.overflow_next.shape[0] == 0 and t.overflow_free_head[0] == -1
    indices = [flow_insert(t, *w, flow_hash(*w)) for w in (pack_key(1, i, 0, 6, 0, 0) for i in range(5))]
    assert indices == [0, 1, 2, 3, FLOW_TABLE_FULL]


# ---------------------------------------------------------------- reserved key_nh == 0


def test_key_nh_zero_is_rejected_and_never_matches_free_entries() -> None:
    t = new_flow_table(16)
    for proto in (0, 6):
        w = pack_key(0, 0, 0, proto, 0, 0)
        h = flow_hash(*w)
        assert flow_insert(t, *w, h) == FLOW_INVALID_KEY
        assert flow_find_or_insert(t, *w, h) == (FLOW_INVALID_KEY, False)
        assert flow_find(t, *w, h) == -1  # an all-zero free slot must not "match"
    assert t.n_used[0] == 0 and not t.keys.any()


# ------------------------------------------------------------- callable from other kernels


@kernel(cache=True)
def _kernel_insert(t, key):
    w0, w1, w2, w3 = pack_key(key[0], key[1], key[2], key[3], key[4], key[5])
    return flow_find_or_insert(t, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))


@kernel(cache=True)
def _kernel_find(t, key):
    w0, w1, w2, w3 = pack_key(key[0], key[1], key[2], key[3], key[4], key[5])
    return flow_find(t, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))


@kernel(cache=True)
def _kernel_delete(t, index):
    flow_delete(t, index)


@kernel(cache=True)
def _kernel_round_trip(t, keys_u32):
    """Insert, look up, read back and delete a batch entirely inside numba."""
    n = keys_u32.shape[0]
    found = np.empty(n, dtype=np.int32)
    flow_find_batch(t, keys_u32, found)
    all_absent = (found == -1).all()
    inserted = np.empty(n, dtype=np.int32)
    for i in range(n):
        w0, w1, w2, w3 = keys_u32[i, 0], keys_u32[i, 1], keys_u32[i, 2], keys_u32[i, 3]
        inserted[i] = flow_insert(t, w0, w1, w2, w3, flow_hash(w0, w1, w2, w3))
    flow_find_batch(t, keys_u32, found)
    same = (found == inserted).all()
    readback_ok = True
    for i in range(n):
        key_nh, sip, dip, proto, sport, dport = flow_key_at(t, inserted[i])
        w = pack_key(key_nh, sip, dip, proto, sport, dport)
        readback_ok &= (w[0] == keys_u32[i, 0]) & (w[3] == keys_u32[i, 3])
    used_after_insert = t.n_used[0]
    for i in range(n):
        flow_delete(t, inserted[i])
    return all_absent, same, readback_ok, used_after_insert, t.n_used[0], t.n_overflow_used[0]


def test_operations_callable_from_other_kernels() -> None:
    t = new_flow_table(64)
    words = np.array([py_pack((7, i, 2 * i, 6, 1000 + i, 80)) for i in range(40)], dtype=np.uint32)
    all_absent, same, readback_ok, used_after_insert, used_end, overflow_end = _kernel_round_trip(t, words)
    assert all_absent and same and readback_ok
    assert used_after_insert == 40 and used_end == 0 and overflow_end == 0
    assert not t.keys.any()


# ---------------------------------------------------------------- batch lookup


@pytest.mark.parametrize("batch_size", [0, 1, 5, 31, 32, 33, 1000])
def test_flow_find_batch_equals_per_key_find(batch_size: int) -> None:
    rng = np.random.default_rng(batch_size)
    t = new_flow_table(256)
    n_keys = 300  # more than the main area: exercises chains and FULL
    words = np.empty((n_keys, 4), dtype=np.uint32)
    words[:, :3] = rng.integers(0, 2**32, (n_keys, 3), dtype=np.uint64)
    words[:, 3] = (rng.integers(1, 2**24, n_keys, dtype=np.uint64) << 8) | 17
    for w in words:
        flow_insert(t, *w, flow_hash(*w))
    assert t.n_overflow_used[0] > 0
    # Queries: present keys, absent keys, near misses differing in one word, reserved key_nh 0.
    near_miss = words[rng.integers(0, n_keys, 64)].copy()
    near_miss[np.arange(64), rng.integers(0, 4, 64)] ^= np.uint32(1 << 9)
    absent = near_miss.copy()
    absent[:, 3] = 6
    pool = np.concatenate([words, near_miss, absent])
    queries = pool[rng.integers(0, len(pool), batch_size)]
    out = np.full(batch_size, 12345, dtype=np.int32)
    flow_find_batch(t, queries, out)
    expected = [flow_find(t, *q, flow_hash(*q)) for q in queries]
    assert out.tolist() == expected
    assert all(flow_find(t, *q, flow_hash(*q)) == -1 for q in absent)


# ---------------------------------------------------------------- filling, FULL and reuse


def test_fill_until_full_then_reuse_deleted_overflow_entry() -> None:
    t = new_flow_table(16)  # 4 buckets x 4 + 4 overflow
    n_main, n_total = 16, 20
    placed: dict[tuple[int, ...], int] = {}
    rejected: list[tuple[int, ...]] = []
    for i in range(2000):
        key = (1 + i % 3, i, 0xC0A80001, 6, i % 65536, 443)
        w = pack_key(*key)
        index = flow_insert(t, *w, flow_hash(*w))
        if index >= 0:
            placed[key] = index
        else:
            assert index == FLOW_TABLE_FULL
            rejected.append(key)
    assert t.n_used[0] == n_total and t.n_overflow_used[0] == n_total - n_main
    assert sorted(placed.values()) == list(range(n_total))
    assert t.overflow_free_head[0] == -1
    # Free one overflow entry: the next key whose bucket is full takes exactly that entry.
    victim = n_total - 2
    flow_delete(t, victim)
    flow_delete(t, victim)  # deleting a free entry is a no-op
    assert t.n_used[0] == n_total - 1 and t.n_overflow_used[0] == n_total - n_main - 1
    w = pack_key(*rejected[0])
    assert flow_insert(t, *w, flow_hash(*w)) == victim
    assert flow_insert(t, *w, flow_hash(*w)) == victim  # re-insert returns the existing index
    assert t.n_used[0] == n_total


# ---------------------------------------------------------------- stateful model test

N_ENTRIES = 16
# 2 * 3 * 2 * 2 * 2 = 48 keys for 20 entries: duplicates, collisions and FULL are common.
SMALL_KEY_SPACE = [
    (nh, sip, dip, proto, sport, 80)
    for nh in (1, MAX_NH)
    for sip in (0, 1, U32)
    for dip in (0, 0x0A000001)
    for proto in (6, 17)
    for sport in (0, 65535)
]


class FlowTableMachine(RuleBasedStateMachine):
    """Holds the numba table against a dict model with the documented placement rules."""

    def __init__(self) -> None:
        super().__init__()
        self.t = new_flow_table(N_ENTRIES)
        self.n_buckets = self.t.bucket_overflow_head.shape[0]
        self.n_main = 4 * self.n_buckets
        self.n_total = self.t.keys.shape[0]
        self.index_of: dict[tuple[int, ...], int] = {}
        self.key_of: dict[int, tuple[int, ...]] = {}
        self.free_overflow = list(range(self.n_main, self.n_total))  # stack, top first
        self.chain: dict[int, list[int]] = {b: [] for b in range(self.n_buckets)}  # head first
        self.ever_freed: set[int] = set()

    def bucket_of(self, key: tuple[int, ...]) -> int:
        return py_hash(py_pack(key)) & (self.n_buckets - 1)

    def expected_insert(self, key: tuple[int, ...]) -> tuple[int, bool]:
        """Model of placement; updates the model and returns (index, created)."""
        if key in self.index_of:
            return self.index_of[key], False
        b = self.bucket_of(key)
        free_slots = [i for i in range(4 * b, 4 * b + 4) if i not in self.key_of]
        if free_slots:
            index = free_slots[0]
        elif self.free_overflow:
            index = self.free_overflow.pop(0)
            self.chain[b].insert(0, index)
            event("placed in overflow")
            if index in self.ever_freed:
                event("freed overflow entry reused")
        else:
            event("FULL")
            return FLOW_TABLE_FULL, False
        self.index_of[key] = index
        self.key_of[index] = key
        return index, True

    def n_overflow_used_model(self) -> int:
        return sum(1 for i in self.key_of if i >= self.n_main)

    def model_delete(self, index: int) -> None:
        key = self.key_of.pop(index)
        del self.index_of[key]
        if index >= self.n_main:
            self.chain[self.bucket_of(key)].remove(index)
            self.free_overflow.insert(0, index)
            self.ever_freed.add(index)
            event("overflow entry freed")

    @rule(key=st.sampled_from(SMALL_KEY_SPACE))
    def insert_from_kernel(self, key: tuple[int, ...]) -> None:
        index, created = _kernel_insert(self.t, key)
        assert (int(index), bool(created)) == self.expected_insert(key)

    @rule(keys=st.lists(st.sampled_from(SMALL_KEY_SPACE), min_size=1, max_size=8))
    def insert_several_from_kernel(self, keys: list[tuple[int, ...]]) -> None:
        for key in keys:  # fills the small table quickly so FULL and overflow reuse are common
            self.insert_from_kernel(key)

    @rule(key=st.sampled_from(SMALL_KEY_SPACE))
    def insert_from_python(self, key: tuple[int, ...]) -> None:
        w = pack_key(*key)
        index = flow_insert(self.t, *w, flow_hash(*w))
        assert int(index) == self.expected_insert(key)[0]

    @rule(key=st.sampled_from(SMALL_KEY_SPACE))
    def find(self, key: tuple[int, ...]) -> None:
        assert int(_kernel_find(self.t, key)) == self.index_of.get(key, -1)

    @rule(data=st.data())
    def delete_live(self, data: st.DataObject) -> None:
        if not self.key_of:
            return
        index = data.draw(st.sampled_from(sorted(self.key_of)))
        _kernel_delete(self.t, index)
        self.model_delete(index)

    @rule(data=st.data())
    def delete_overflow_entry(self, data: st.DataObject) -> None:
        live_overflow = sorted(i for i in self.key_of if i >= self.n_main)
        if not live_overflow:
            return
        index = data.draw(st.sampled_from(live_overflow))
        flow_delete(self.t, index)
        self.model_delete(index)

    @rule(index=st.integers(-3, N_ENTRIES + 8))
    def delete_any_index(self, index: int) -> None:
        flow_delete(self.t, index)  # free or out-of-range: must be a no-op
        if index in self.key_of:
            self.model_delete(index)

    @invariant()
    def counters_match_model(self) -> None:
        assert self.t.n_used[0] == len(self.index_of) == len(self.key_of)
        assert self.t.n_overflow_used[0] == self.n_overflow_used_model()
        assert len(set(self.index_of.values())) == len(self.index_of)

    @invariant()
    def keys_array_matches_model(self) -> None:
        expected = np.zeros_like(self.t.keys)
        for index, key in self.key_of.items():
            expected[index] = py_pack(key)
        np.testing.assert_array_equal(self.t.keys, expected)

    @invariant()
    def chains_and_free_stack_match_model(self) -> None:
        def walk(start: int) -> list[int]:
            out = []
            i = int(start)
            while i >= 0:
                out.append(i)
                assert len(out) <= self.n_total, "cycle"
                i = int(self.t.overflow_next[i - self.n_main])
            return out

        for b in range(self.n_buckets):
            assert walk(self.t.bucket_overflow_head[b]) == self.chain[b]
        assert walk(self.t.overflow_free_head[0]) == self.free_overflow


FlowTableMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_flow_table_against_model = FlowTableMachine.TestCase
