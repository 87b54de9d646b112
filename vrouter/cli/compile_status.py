"""What a command shows while the forwarding kernels compile, and which engine answered.

A compile happens once per install and takes a while: on a terminal, a status line on stderr
says what is going on and for how long, and a line after it says how long it took. Piped or
redirected output gets neither (stdout stays the command's answer alone).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

COMPILED = "compiled"


@contextmanager
def compile_status(text: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while the block runs (terminals only)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    start = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn(text), TimeElapsedColumn(), console=console, transient=True):
        yield
    console.print(f"{text}: done in {time.perf_counter() - start:.0f} s", highlight=False)


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
