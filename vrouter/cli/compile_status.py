"""What a command shows while the forwarding kernels compile, and which engine answered.

A compile happens once per install and takes a while: on a terminal, a line of the command's
progress display (vrouter.cli.progress) says what is going on and for how long, and a line
after it says how long it took. Piped or
redirected output gets neither (stdout stays the command's answer alone).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from controlplane import progress

COMPILED = "compiled"


@contextmanager
def compile_status(text: str) -> Iterator[None]:
    """The wait, as a task of the command's progress display (terminals only, not with -q),
    and how long it took."""
    if not progress.active():
        yield
        return
    start = time.perf_counter()
    with progress.task(text):
        yield
    sys.stderr.write(f"{text}: done in {time.perf_counter() - start:.0f} s\n")


def use_compile_status() -> None:
    """Show :func:`compile_status` whenever this command waits for the kernels to compile."""
    from vrouter.dataplane.background_compile import set_status_display

    set_status_display(compile_status)


def engine_note(engine: str) -> str:
    """The words the human output adds when the compiled kernels did not (all) answer:
    ``engine interpreted (a small run)``, ``engine interpreted+compiled (the first packets
    interpreted)``, ``engine interpreted (as asked)``…"""
    if engine in (COMPILED, "none"):
        return ""
    from vrouter.dataplane.engine import why_interpreted

    why = why_interpreted()
    return f"engine {engine} ({why})" if why else f"engine {engine}"
