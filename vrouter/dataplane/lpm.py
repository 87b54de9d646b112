"""Multi-VRF IPv4 longest-prefix match, compiled with numba.

Why this layout
---------------
A DIR-24-8 table per VRF costs 64 MiB, which is unusable with thousands of
VRFs.  Instead we follow DXR (Zec, Rizzo & Mikuc, 2012): the prefixes of a VRF
are flattened into *disjoint address ranges* (sorted range starts, each
carrying the value of the longest prefix covering it), and a small direct
table indexed by the top ``s`` bits of the address ("chunks") points into
them.  ``s`` is chosen per VRF from its number of ranges, so memory follows
the number of routes, not the number of VRFs.  The arrays of all VRFs are
concatenated into the three flat arrays of :class:`LpmTable`, which numba
takes as one argument.

Lookup of ``addr`` in VRF ``v``::

    base, shift = vrf_chunks[v]
    entry = chunks[base + (addr >> shift)]
    if entry has DIRECT_FLAG:       # the whole chunk lies in one range
        return (entry & ~DIRECT_FLAG) - 1
    search the chunk's slice ranges[entry : entry + count] for addr

A ``ranges`` entry is one uint64, ``start << 32 | uint32(value)``: one cache
line serves both the comparison and the answer, and the key
``addr << 32 | 0xFFFFFFFF`` compares directly with whole entries.  A slice
starts with a *head*, the range covering the chunk's first address; its start
field would repeat the chunk's first address, so it holds the slice length
(``count``) instead.

Speed of random lookups in a big table is set by how many cache misses
overlap, so :func:`lpm_lookup_batch` works in blocks: it computes the chunk
positions of a block and prefetches them, then reads the chunk entries and
prefetches the slices, then answers without branching on loaded data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from vrouter.dataplane.interpreted import interpreted
from vrouter.dataplane.kernel import kernel
from vrouter.dataplane.prefetch import prefetch

__all__ = ["LpmTable", "build_lpm", "lpm_lookup", "lpm_lookup_batch", "lpm_nbytes"]

NO_MATCH = -1
"""Value returned when no prefix covers the address (or the VRF is unknown)."""

DIRECT_FLAG = np.uint32(0x8000_0000)
"""Set in a chunk entry that holds ``value + 1`` instead of a ``ranges`` index."""

DEFAULT_MAX_CHUNK_BITS = 22
"""Largest first level of one VRF: 2**22 entries, 16 MiB."""

DEFAULT_EXTRA_CHUNK_BITS = 1
"""``s = ceil(log2(n_ranges)) + extra``: about 2 chunks per range, so most
chunks lie in a single range and are answered by the first level alone."""

SCAN_WIDTH = 4
"""Slices of up to this many entries are searched branch-free in a batch;
``ranges`` ends with this many padding entries so such a scan stays in bounds."""

SMALL_TABLE = 2_048
"""Routes up to which :func:`build_lpm` runs its loops on the interpreter (the same source,
:mod:`vrouter.dataplane.interpreted`): loading the compiled builder costs about 0.3 s, more
than the interpreter takes for a cluster's few hundred routes."""

BATCH_BLOCK = 256
"""Lookups per block in :func:`lpm_lookup_batch`: enough misses in flight,
and the block's lines still in L1/L2 when they are used."""

_LOW32 = np.uint64(0xFFFF_FFFF)
_PADDING = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_MAX_PREFIX_LEN = 32
_VRF_KEY_SHIFT = 38  # sort key layout: vrf << 38 | prefix << 6 | length
_MAX_VRFS = 1 << (64 - _VRF_KEY_SHIFT)
_MAX_DIRECT_VALUE = np.iinfo(np.int32).max - 1  # value + 1 must fit in 31 bits
HOST_EMPTY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_HOST_MULTIPLIER = np.uint64(0x9E37_79B9_7F4A_7C15)


class LpmTable(NamedTuple):
    """Compiled routing tables of all VRFs (only numpy arrays, numba-friendly).

    vrf_chunks: int64 (n_vrfs + 1, 2) -- per VRF, [first chunk index, shift = 32 - s];
        the last row is an empty VRF, used for VRF ids out of range.
    chunks: uint32 -- first level of every VRF; DIRECT_FLAG | (value + 1), or
        the index in ``ranges`` of the head of the chunk's slice.
    ranges: uint64 -- ``start << 32 | uint32(value)``; a slice's head holds
        ``count << 32 | uint32(value)``; SCAN_WIDTH padding entries at the end.
    host_keys / host_values: the /32 routes again, in a hash table looked up first by
        :func:`lpm_lookup`: a /32 is always the longest match, and in a cluster most
        routes are /32s (pods, VIPs) crowded into a few first-level chunks, where the
        range search would be longest. The answer is the same either way.
    """

    vrf_chunks: np.ndarray
    chunks: np.ndarray
    ranges: np.ndarray
    host_keys: np.ndarray  # uint64: ``vrf << 32 | address`` of every /32, open addressing; HOST_EMPTY = free
    host_values: np.ndarray  # int32: their values


# --------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------


# The lookup code reads arrays straight from ``table``: binding an array to a
# local name makes numba emit atomic reference-count updates on every lookup,
# which serialise the memory accesses of consecutive lookups.  The VRF check
# in _chunk_position is a clamp, not an early return, for the same reason.


@kernel(cache=True, inline="always", _nrt=False)
def _chunk_position(table: LpmTable, vrf: int, addr: np.uint32) -> np.uint64:
    """Index in ``table.chunks`` of the first-level entry for ``addr`` in ``vrf``."""
    # unknown VRF ids (a negative one is huge as unsigned) use the last, empty row
    row = min(np.uint64(vrf), np.uint64(table.vrf_chunks.shape[0] - 1))
    chunk = (np.uint64(addr) & _LOW32) >> np.uint64(table.vrf_chunks[row, 1])
    return np.uint64(table.vrf_chunks[row, 0]) + chunk


@kernel(cache=True, inline="always", _nrt=False)
def _direct_value(entry: np.uint32) -> np.int32:
    """Value stored in a DIRECT_FLAG chunk entry."""
    return np.int32(entry & ~DIRECT_FLAG) - np.int32(1)


@kernel(cache=True, inline="always", _nrt=False)
def _search_key(addr: np.uint32) -> np.uint64:
    """Key that is >= exactly the ``ranges`` entries starting at or before ``addr``."""
    return ((np.uint64(addr) & _LOW32) << np.uint64(32)) | _LOW32


@kernel(cache=True, inline="always", _nrt=False)
def _entry_value(range_entry: np.uint64) -> np.int32:
    """Value (low 32 bits, -1 = no route) of a ``ranges`` entry."""
    return np.int32(np.uint32(range_entry & _LOW32))


@kernel(cache=True, inline="always", _nrt=False)
def _search_slice(table: LpmTable, head: np.int64, addr: np.uint32) -> np.int32:
    """Value of the last range starting at or before ``addr`` in the slice at ``head``."""
    count = np.int64(table.ranges[head] >> np.uint64(32))
    key = _search_key(addr)
    first = head
    # binary search whose body compiles to a conditional move; the head
    # itself, whose start field holds ``count``, is never compared.
    while count > 1:
        half = count >> 1
        if table.ranges[first + half] <= key:
            first += half
        count -= half
    return _entry_value(table.ranges[first])


@kernel(cache=True, inline="always", _nrt=False)
def _host_slot(key: np.uint64, mask: np.uint64) -> np.uint64:
    return ((key * _HOST_MULTIPLIER) >> np.uint64(32)) & mask


@kernel(cache=True, inline="always", _nrt=False)
def lpm_lookup(table: LpmTable, vrf: int, addr: np.uint32) -> np.int32:
    """Value of the longest prefix of VRF ``vrf`` matching ``addr``, else -1.

    ``addr`` is a host-order IPv4 address (10.47.255.252 == 0x0A2FFFFC).
    Callable from other kernels that receive the table; it is
    inlined into them, so no call overhead remains. A /32 is found in the
    host table first; anything else by the range search.
    """
    mask = np.uint64(table.host_keys.shape[0] - 1)
    key = (np.uint64(vrf) << np.uint64(32)) | (np.uint64(addr) & _LOW32)
    slot = _host_slot(key, mask)
    while True:
        held = table.host_keys[slot]
        if held == key:
            return table.host_values[slot]
        if held == HOST_EMPTY:
            break
        slot = (slot + np.uint64(1)) & mask
    entry = table.chunks[_chunk_position(table, vrf, addr)]
    if entry & DIRECT_FLAG:
        return _direct_value(entry)
    return _search_slice(table, np.int64(entry), addr)


@kernel(cache=True)
def lpm_lookup_batch(table: LpmTable, vrfs: np.ndarray, addrs: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = lpm_lookup(table, vrfs[i], addrs[i])`` for the whole batch, only faster.

    Each block goes through stages whose loads do not wait on one another:
    a lookup that waited on a cache miss (or a branch on a missed value)
    would hold back the loads of the following lookups.
    """
    n = addrs.shape[0]
    if vrfs.shape[0] != n or out.shape[0] != n:
        raise ValueError("vrfs, addrs and out must have the same length")
    positions = np.empty(BATCH_BLOCK, dtype=np.uint64)
    entries = np.empty(BATCH_BLOCK, dtype=np.uint32)
    long_slices = np.empty(BATCH_BLOCK, dtype=np.int64)
    for block_start in range(0, n, BATCH_BLOCK):
        block_len = min(BATCH_BLOCK, n - block_start)

        # 1. first-level positions: computed from L1 data only; start fetching
        for j in range(block_len):
            position = _chunk_position(table, vrfs[block_start + j], addrs[block_start + j])
            positions[j] = position
            prefetch(table.chunks, position)

        # 2. first-level entries (arriving now); start fetching the slices
        for j in range(block_len):
            entry = table.chunks[positions[j]]
            entries[j] = entry
            head = np.uint64(0) if entry & DIRECT_FLAG else np.uint64(entry)
            prefetch(table.ranges, head)
            prefetch(table.ranges, head + np.uint64(SCAN_WIDTH - 1))

        # 3. answers, branch-free: direct entries and slices of up to
        #    SCAN_WIDTH entries (direct ones scan the harmless slice at 0);
        #    longer slices are queued
        n_long = 0
        for j in range(block_len):
            entry = entries[j]
            is_direct = (entry & DIRECT_FLAG) != 0
            head = np.uint64(0) if is_direct else np.uint64(entry)
            key = _search_key(addrs[block_start + j])
            found = table.ranges[head]
            count = found >> np.uint64(32)
            for k in range(1, SCAN_WIDTH):
                candidate = table.ranges[head + np.uint64(k)]
                found = candidate if (np.uint64(k) < count) & (candidate <= key) else found
            out[block_start + j] = _direct_value(entry) if is_direct else _entry_value(found)
            long_slices[n_long] = j
            n_long += (count > np.uint64(SCAN_WIDTH)) & (not is_direct)

        # 4. the few longer slices: binary search
        for p in range(n_long):
            j = long_slices[p]
            out[block_start + j] = _search_slice(table, np.int64(entries[j]), addrs[block_start + j])


def lpm_nbytes(table: LpmTable) -> int:
    """Bytes held by the table's arrays."""
    return int(sum(array.nbytes for array in table))


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------


def build_lpm(
    vrf_routes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    max_chunk_bits: int = DEFAULT_MAX_CHUNK_BITS,
    extra_chunk_bits: int = DEFAULT_EXTRA_CHUNK_BITS,
    interpret: bool | None = None,
) -> LpmTable:
    """Compile the routing tables of VRFs ``0 .. len(vrf_routes) - 1``.

    ``vrf_routes[v] = (prefixes, lengths, values)`` for VRF ``v``: host-order
    uint32 prefixes, prefix lengths 0..32 and int32 values >= 0 (nexthop ids).
    Entries may be empty arrays.  Bits of a prefix beyond its length are
    ignored.  If the same (prefix, length) appears more than once in a VRF, the
    LAST occurrence wins, as if the routes were installed in order.

    ``max_chunk_bits`` caps the first level of one VRF (2**bits entries of 4
    bytes); ``extra_chunk_bits`` trades memory for fewer second-level reads.
    ``interpret`` runs the builder's loops on the interpreter (True) or compiled (False);
    by default, interpreted up to :data:`SMALL_TABLE` routes. The table is the same.

    Examples
    --------
    >>> import numpy as np
    >>> table = build_lpm([
    ...     (np.array([0x0A000000, 0x0A2F0000], np.uint32),   # 10.0.0.0/8, 10.47.0.0/16
    ...      np.array([8, 16]), np.array([1, 2], np.int32)),
    ...     (np.array([0], np.uint32), np.array([0]), np.array([7], np.int32)),  # VRF 1: 0/0
    ... ])
    >>> int(lpm_lookup(table, 0, np.uint32(0x0A2FFFFC)))     # 10.47.255.252
    2
    >>> int(lpm_lookup(table, 0, np.uint32(0x0A300000)))     # 10.48.0.0
    1
    >>> int(lpm_lookup(table, 0, np.uint32(0x0B000000)))     # 11.0.0.0: no route
    -1
    >>> int(lpm_lookup(table, 1, np.uint32(0x0B000000)))     # VRF 1: default route
    7
    >>> int(lpm_lookup(table, 2, np.uint32(0x0B000000)))     # VRF 2 does not exist
    -1
    """
    if not 0 <= max_chunk_bits <= 28:
        raise ValueError(f"max_chunk_bits must be in [0, 28], got {max_chunk_bits}")
    n_vrfs = len(vrf_routes)
    if n_vrfs >= _MAX_VRFS:
        raise ValueError(f"at most {_MAX_VRFS - 1} VRFs are supported, got {n_vrfs}")

    prefixes, lengths, values, vrf_ids = _concatenate_routes(vrf_routes)
    if interpret is None:
        interpret = prefixes.shape[0] <= SMALL_TABLE
    run = interpreted if interpret else (lambda function: function)
    masks = _prefix_masks(lengths)
    prefixes &= masks

    # Sort by (vrf, prefix, length): within a VRF this lists every prefix
    # before the prefixes it contains (a pre-order walk of the prefix tree).
    # The sort is stable, so the last of equal routes stays last: keep it.
    sort_keys = (
        (vrf_ids.astype(np.uint64) << np.uint64(_VRF_KEY_SHIFT))
        | (prefixes.astype(np.uint64) << np.uint64(6))
        | lengths.astype(np.uint64)
    )
    order = np.argsort(sort_keys, kind="stable")
    sorted_keys = sort_keys[order]
    is_last_duplicate = np.ones(sorted_keys.shape[0], dtype=np.bool_)
    is_last_duplicate[:-1] = sorted_keys[:-1] != sorted_keys[1:]
    order = order[is_last_duplicate]

    # one extra, empty VRF at the end answers every unknown VRF id
    route_offsets = np.zeros(n_vrfs + 2, dtype=np.int64)
    np.cumsum(np.bincount(vrf_ids[order], minlength=n_vrfs + 1), out=route_offsets[1:])

    range_offsets, range_starts, range_values = run(_prefixes_to_ranges)(
        route_offsets,
        prefixes[order],
        ~masks[order],  # host mask: the prefix covers [prefix, prefix | host_mask]
        values[order],
    )
    chunk_bits = _choose_chunk_bits(np.diff(range_offsets), max_chunk_bits, extra_chunk_bits)
    vrf_chunks, chunks, ranges = run(_ranges_to_chunks)(range_offsets, range_starts, range_values, chunk_bits)
    hosts = lengths[order] == _MAX_PREFIX_LEN
    host_keys, host_values = _host_table(
        (vrf_ids[order][hosts].astype(np.uint64) << np.uint64(32)) | prefixes[order][hosts].astype(np.uint64),
        values[order][hosts],
        run(_fill_hosts),
    )
    return LpmTable(vrf_chunks=vrf_chunks, chunks=chunks, ranges=ranges, host_keys=host_keys, host_values=host_values)


def _host_table(keys: np.ndarray, values: np.ndarray, fill_hosts: Callable[..., None]) -> tuple[np.ndarray, np.ndarray]:
    """Open-addressing table of the /32 routes, at most half full (keys are unique)."""
    size = 2
    while size < 2 * keys.shape[0]:
        size *= 2
    table_keys = np.full(size, HOST_EMPTY, dtype=np.uint64)
    table_values = np.full(size, -1, dtype=np.int32)
    fill_hosts(keys, values.astype(np.int32), table_keys, table_values)
    return table_keys, table_values


@kernel(cache=True)
def _fill_hosts(keys: np.ndarray, values: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> None:
    mask = np.uint64(table_keys.shape[0] - 1)
    for i in range(keys.shape[0]):
        slot = _host_slot(keys[i], mask)
        while table_keys[slot] != HOST_EMPTY:
            slot = (slot + np.uint64(1)) & mask
        table_keys[slot] = keys[i]
        table_values[slot] = values[i]


def _concatenate_routes(
    vrf_routes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate and flatten per-VRF routes into (prefixes, lengths, values, vrf ids)."""
    prefix_parts, length_parts, value_parts, counts = [], [], [], []
    for vrf, (prefixes, lengths, values) in enumerate(vrf_routes):
        prefixes, lengths, values = (np.asarray(part).reshape(-1) for part in (prefixes, lengths, values))
        if not prefixes.shape == lengths.shape == values.shape:
            raise ValueError(f"VRF {vrf}: prefixes, lengths and values differ in length")
        prefix_parts.append(prefixes)
        length_parts.append(lengths)
        value_parts.append(values)
        counts.append(prefixes.shape[0])

    n_routes = sum(counts)
    if n_routes == 0:
        no_routes = np.zeros(0, dtype=np.int64)
        return no_routes.astype(np.uint32), no_routes.astype(np.uint8), no_routes.astype(np.int32), no_routes

    prefixes = np.concatenate(prefix_parts)
    lengths = np.concatenate(length_parts)
    values = np.concatenate(value_parts)
    if prefixes.dtype != np.uint32 and (prefixes.min() < 0 or prefixes.max() > 0xFFFF_FFFF):
        raise ValueError("prefixes must be in [0, 2**32 - 1]")
    if lengths.min() < 0 or lengths.max() > _MAX_PREFIX_LEN:
        raise ValueError("prefix lengths must be in [0, 32]")
    if values.min() < 0 or values.max() > np.iinfo(np.int32).max:
        raise ValueError("values must be in [0, 2**31 - 1]")
    vrf_ids = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return prefixes.astype(np.uint32), lengths.astype(np.uint8), values.astype(np.int32), vrf_ids


def _prefix_masks(lengths: np.ndarray) -> np.ndarray:
    """Network masks (uint32) for prefix lengths 0..32."""
    host_bits = np.uint64(_MAX_PREFIX_LEN) - lengths.astype(np.uint64)
    return ((_LOW32 << host_bits) & _LOW32).astype(np.uint32)


def _choose_chunk_bits(n_ranges: np.ndarray, max_chunk_bits: int, extra_chunk_bits: int) -> np.ndarray:
    """First-level size ``s`` per VRF: ~2**extra chunks per range, 0 for a single range."""
    bits = np.ceil(np.log2(np.maximum(n_ranges, 1))).astype(np.int64) + extra_chunk_bits
    bits[n_ranges <= 1] = 0
    return np.clip(bits, 0, max_chunk_bits)


@kernel(cache=True)
def _prefixes_to_ranges(
    route_offsets: np.ndarray, prefixes: np.ndarray, host_masks: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten each VRF's prefixes into disjoint ranges covering 0 .. 2**32 - 1.

    Prefixes must be sorted by (vrf, prefix, length) without duplicates, so a
    prefix comes before those it contains, and a stack holds the prefixes
    enclosing the current position.  Returns per-VRF offsets into the range
    arrays, range starts (uint32) and range values (int32, -1 = no route).
    Adjacent ranges with equal values are merged.
    """
    n_vrfs = route_offsets.shape[0] - 1
    # every prefix opens at most one range and closes at most one, plus the
    # initial "no route" range of each VRF
    capacity = 2 * prefixes.shape[0] + n_vrfs
    starts = np.empty(capacity, dtype=np.int64)
    range_values = np.empty(capacity, dtype=np.int32)
    range_offsets = np.zeros(n_vrfs + 1, dtype=np.int64)
    stack_ends = np.empty(_MAX_PREFIX_LEN + 2, dtype=np.int64)  # exclusive ends
    stack_values = np.empty(_MAX_PREFIX_LEN + 2, dtype=np.int32)
    address_space_end = np.int64(1) << 32

    n = 0
    for vrf in range(n_vrfs):
        vrf_first = n
        stack_ends[0] = address_space_end  # bottom: "no route" everywhere
        stack_values[0] = NO_MATCH
        depth = 1
        starts[n] = 0
        range_values[n] = NO_MATCH
        n += 1
        route_end = route_offsets[vrf + 1]
        for i in range(route_offsets[vrf], route_end + 1):
            if i < route_end:
                start = np.int64(prefixes[i])
            else:  # past the last prefix: close everything still open
                start = address_space_end
            # leave the enclosing prefixes that end at or before this one starts
            while depth > 1 and stack_ends[depth - 1] <= start:
                closed_at = stack_ends[depth - 1]
                depth -= 1
                if closed_at < address_space_end:
                    n = _append_range(starts, range_values, vrf_first, n, closed_at, stack_values[depth - 1])
            if i < route_end:
                n = _append_range(starts, range_values, vrf_first, n, start, values[i])
                stack_ends[depth] = start + np.int64(host_masks[i]) + 1
                stack_values[depth] = values[i]
                depth += 1
        range_offsets[vrf + 1] = n
    return range_offsets, starts[:n].astype(np.uint32), range_values[:n].copy()


@kernel(cache=True, inline="always")
def _append_range(starts: np.ndarray, values: np.ndarray, vrf_first: int, n: int, start: int, value: int) -> int:
    """Append range (start, value) to a VRF's sorted list; return the new length.

    A range starting where the previous one starts replaces it (the later
    boundary is the more specific one); a range with the previous range's
    value extends that range instead.
    """
    if n > vrf_first and starts[n - 1] == start:
        n -= 1
    if n > vrf_first and values[n - 1] == value:
        return n
    starts[n] = start
    values[n] = value
    return n + 1


@kernel(cache=True)
def _ranges_to_chunks(
    range_offsets: np.ndarray, range_starts: np.ndarray, range_values: np.ndarray, chunk_bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the first level (chunks) and the per-chunk slices of every VRF.

    Two passes over the same walk: the first counts the slice entries, the
    second fills the exactly sized arrays.
    """
    n_vrfs = range_offsets.shape[0] - 1
    vrf_chunks = np.empty((n_vrfs, 2), dtype=np.int64)
    total_chunks = 0
    for vrf in range(n_vrfs):
        vrf_chunks[vrf, 0] = total_chunks
        vrf_chunks[vrf, 1] = 32 - chunk_bits[vrf]
        total_chunks += np.int64(1) << chunk_bits[vrf]
    chunks = np.empty(total_chunks, dtype=np.uint32)
    n_entries = _fill_chunks(range_offsets, range_starts, range_values, vrf_chunks, chunks, None)
    if n_entries >= np.int64(DIRECT_FLAG):
        raise ValueError("LPM table too large: 2**31 or more range entries")
    ranges = np.full(n_entries + SCAN_WIDTH, _PADDING, dtype=np.uint64)
    _fill_chunks(range_offsets, range_starts, range_values, vrf_chunks, chunks, ranges)
    return vrf_chunks, chunks, ranges


@kernel(cache=True)
def _fill_chunks(
    range_offsets: np.ndarray,
    range_starts: np.ndarray,
    range_values: np.ndarray,
    vrf_chunks: np.ndarray,
    chunks: np.ndarray,
    ranges: np.ndarray | None,
) -> int:
    """Fill ``chunks``, and ``ranges`` unless None; return the number of slice entries.

    A chunk lying inside one range stores that range's value directly; any
    other chunk gets its own slice: a head for the range covering the chunk's
    first address, then the ranges starting inside the chunk.
    """
    n_entries = 0
    for vrf in range(vrf_chunks.shape[0]):
        end_range = range_offsets[vrf + 1]
        chunk_base = vrf_chunks[vrf, 0]
        shift = vrf_chunks[vrf, 1]
        chunk_size = np.int64(1) << shift
        covering = range_offsets[vrf]  # last range starting at or before the chunk
        for chunk in range((np.int64(1) << 32) >> shift):
            chunk_start = chunk * chunk_size
            while covering + 1 < end_range and np.int64(range_starts[covering + 1]) <= chunk_start:
                covering += 1
            inner_end = covering + 1  # first range starting at or after the chunk's end
            while inner_end < end_range and np.int64(range_starts[inner_end]) < chunk_start + chunk_size:
                inner_end += 1
            value = range_values[covering]
            if inner_end == covering + 1 and value <= _MAX_DIRECT_VALUE:
                chunks[chunk_base + chunk] = DIRECT_FLAG | np.uint32(value + 1)
                continue
            count = inner_end - covering
            chunks[chunk_base + chunk] = np.uint32(n_entries)
            if ranges is not None:
                ranges[n_entries] = (np.uint64(count) << np.uint64(32)) | (np.uint64(value) & _LOW32)
                for j in range(covering + 1, inner_end):
                    ranges[n_entries + j - covering] = (np.uint64(range_starts[j]) << np.uint64(32)) | (
                        np.uint64(range_values[j]) & _LOW32
                    )
            n_entries += count
    return n_entries
