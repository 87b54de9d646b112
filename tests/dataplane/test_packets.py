"""Packet batches: the byte-level copy the fabric makes of every batch it runs."""

from __future__ import annotations

import numpy as np

from vrouter.dataplane.packets import PACKET, copy_batch, new_batch


def _sample(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    batch = new_batch(n)
    batch["sip"] = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    batch["dport"] = rng.integers(0, 2**16, n).astype(np.uint16)
    batch["tag"] = np.arange(n, dtype=np.int32)
    return batch


def test_copy_equals_the_original_field_by_field_and_is_independent() -> None:
    batch = _sample(1000)
    copy = copy_batch(batch)
    assert copy.dtype == PACKET and copy.shape == batch.shape
    for name in PACKET.names:
        assert np.array_equal(copy[name], batch[name]), name
    copy["sip"] = 0
    copy["outcome"] = 4
    assert batch["sip"].any() and not batch["outcome"].any()


def test_a_strided_view_is_copied_too() -> None:
    batch = _sample(1000)
    every_other = batch[::2]
    copy = copy_batch(every_other)
    assert copy.flags.c_contiguous
    assert np.array_equal(copy["tag"], np.arange(0, 1000, 2))
