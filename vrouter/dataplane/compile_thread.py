"""A kernel's first call runs in a new thread, where numba compiles it at full speed.

CPython 3.11 keeps Python frames in chunks of memory and frees a chunk as soon as it empties.
numba's compiler recurses up and down all the time; when that happens across a chunk's edge,
every crossing maps and unmaps memory. Where the edge falls depends on how deep the caller
already is: under pytest, compiling the forwarding kernel took 260 s instead of 80, most of it
in the operating system's mmap/munmap. A new thread starts with an empty frame stack, as a
short script does. Once compiled (or loaded from numba's cache) a kernel is called directly.
"""

from __future__ import annotations

import threading
from typing import Any


def call_in_fresh_stack(kernel: Any, *args: Any) -> Any:
    """``kernel(*args)``; the first time, from a new thread (the caller waits for it)."""
    if kernel.signatures:
        return kernel(*args)
    outcome: dict[str, Any] = {}

    def first_call() -> None:
        try:
            outcome["result"] = kernel(*args)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=first_call, name="numba-first-call")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
