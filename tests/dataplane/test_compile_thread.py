"""A kernel's first call runs in a fresh thread (fast numba compiles); later calls run in place."""

from __future__ import annotations

import threading

import pytest

from vrouter.dataplane.compile_thread import call_in_fresh_stack


class FakeKernel:
    """Stands for a numba dispatcher: ``signatures`` fills after the first call."""

    def __init__(self, fail: bool = False) -> None:
        self.signatures: list[str] = []
        self.threads: list[str] = []
        self.fail = fail

    def __call__(self, a: int, b: int) -> int:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise ValueError("bad table")
        self.signatures.append("(int64, int64)")
        return a + b


def test_first_call_in_a_new_thread_later_ones_in_place() -> None:
    kernel = FakeKernel()
    assert call_in_fresh_stack(kernel, 2, 3) == 5
    assert call_in_fresh_stack(kernel, 4, 5) == 9
    here = threading.current_thread().name
    assert kernel.threads[0] != here and kernel.threads[1] == here


def test_an_error_in_the_first_call_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="bad table"):
        call_in_fresh_stack(FakeKernel(fail=True), 1, 1)
