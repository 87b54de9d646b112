"""Which engine forwards a batch: the compiled kernels, or the same kernels interpreted.

Compiling the forwarding kernels is the slowest thing vrsim does, and it happens once per
install (the machine code is cached, :mod:`vrouter.dataplane.kernel_cache`). Until then the
interpreter can run the very same kernel source (:mod:`vrouter.dataplane.interpreted`): a few
thousand packets a second, plenty for a scenario's pings and a trace. The engines share the
flow tables and counters, so one simulation may use both, batch by batch.

Modes (``VRSIM_ENGINE`` or ``vrsim --engine``):

- ``auto`` (the default) tiers like a JIT: a process starts on the interpreter and moves to
  the compiled kernels once it has forwarded enough packets for them to pay off.

  - Kernels in the cache: the first :data:`SMALL_RUN` packets run interpreted. Loading the
    compiled kernels costs about 0.3 s (numba's compiler state and the cached machine code),
    which is what the interpreter takes for about 1,500 packets: an article scenario's pings
    or a trace answer sooner without them. Past that, compiled.
  - A cold cache: the first :data:`INTERPRET_BUDGET` packets run interpreted while a
    background process compiles the kernels for the next command; past that budget the
    process waits for that compile (the status line says so) and goes on compiled.

- ``compiled``: always compiled; compiles here, once, when the cache is cold.
- ``interpreted``: always interpreted (slow; for tests, debugging and tiny machines).

Whatever ran is reported: every :class:`~vrouter.lab.fabric.RunResult` names its engine, and the
commands say so when it was not the compiled one.

Flow ageing (``age_flows``) walks the whole flow table, 600,000 entries a node, which the
interpreter takes a second for: it is always compiled (about a second, once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vrouter.dataplane import background_compile, pipeline
from vrouter.dataplane.compile_thread import call_in_fresh_stack
from vrouter.dataplane.interpreted import interpreted
from vrouter.dataplane.kernel_cache import kernels_ready

MODES = ("auto", "compiled", "interpreted")
INTERPRET_BUDGET = 20_000  # packets a process forwards interpreted on a cold cache before it waits for the compile
SMALL_RUN = 1_000  # packets a process forwards interpreted when the compiled kernels are ready
SMALL_RUN_REASON = "a small run"
TIERED_UP_REASON = "the first packets interpreted"


@dataclass(frozen=True)
class Engine:
    name: str  # "compiled" or "interpreted"
    process_batch: Callable[..., int]
    hand_over: Callable[..., int]


def _compiled_process_batch(*args: object) -> int:
    return int(call_in_fresh_stack(pipeline.process_batch, *args))


COMPILED = Engine("compiled", _compiled_process_batch, pipeline.hand_over)
INTERPRETED = Engine("interpreted", interpreted(pipeline.process_batch), interpreted(pipeline.hand_over))
_ENGINES = {"compiled": COMPILED, "interpreted": INTERPRETED}


class EngineError(ValueError):
    """An unknown engine name (a user error: VRSIM_ENGINE or --engine)."""


def mode() -> str:
    """The requested mode: ``VRSIM_ENGINE``, else ``auto``."""
    chosen = os.environ.get("VRSIM_ENGINE", "").strip().lower() or "auto"
    if chosen not in MODES:
        raise EngineError(f"VRSIM_ENGINE={chosen!r}: use {', '.join(MODES)}")
    return chosen


_forced: list[Engine] = []
_interpreted_packets = 0
_tiered_up = False
_why_interpreted = ""


@contextmanager
def forced(name: str) -> Iterator[None]:
    """Every batch in this block runs on the named engine, whatever the mode (warmup, tests)."""
    _forced.append(_ENGINES[name])
    try:
        yield
    finally:
        _forced.pop()


def engine_for(packets: int) -> Engine:
    """The engine for a batch of ``packets`` packets (see the module's docstring)."""
    global _interpreted_packets, _tiered_up, _why_interpreted
    if _forced:
        return _forced[-1]
    chosen = mode()
    if chosen == "interpreted":
        _why_interpreted = "as asked"
        return INTERPRETED
    if chosen == "auto" and not _tiered_up:
        ready = kernels_ready()
        if _interpreted_packets + packets <= (SMALL_RUN if ready else INTERPRET_BUDGET):
            _interpreted_packets += packets
            if ready:
                _why_interpreted = _why_interpreted or SMALL_RUN_REASON
            else:
                _why_interpreted = "the kernels are compiling in the background, once per install"
                background_compile.start()
            return INTERPRETED
    background_compile.wait()
    if chosen == "auto" and _interpreted_packets and not _tiered_up:
        _why_interpreted = TIERED_UP_REASON  # the compiled kernels took over from here on
    _tiered_up = True  # the compiled kernels are loaded now: no reason to go back
    return COMPILED


def why_interpreted() -> str:
    """Why this process ran batches on the interpreter ("" if it did not): for the output."""
    return _why_interpreted
