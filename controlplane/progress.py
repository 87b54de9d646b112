"""Progress of long work, told to whoever shows it (the CLI draws it on a terminal).

Any layer may wrap a long piece of work in :func:`task` and call the returned ``advance``;
nothing is shown unless a display was installed (:func:`showing`), so library users and tests
see nothing and pay nothing. It lives here, in the lowest layer, so both the control plane
and the vRouter side can report.

>>> with task("counting", total=3) as advance:
...     for _ in range(3):
...         advance()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Advance = Callable[..., None]
#: a display: (description, total or None) → a context manager yielding ``advance(n=1)``
Display = Callable[[str, "int | None"], AbstractContextManager[Advance]]

_display: Display | None = None


def _nothing(n: int = 1) -> None:
    """``advance`` when nothing is shown."""


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[Advance]:
    """A long piece of work: ``advance()`` as it goes (``total`` steps, or unknown)."""
    if _display is None:
        yield _nothing
        return
    with _display(description, total) as advance:
        yield advance


@contextmanager
def showing(display: Display | None) -> Iterator[None]:
    """Show progress with ``display`` while the block runs."""
    global _display
    before, _display = _display, display
    try:
        yield
    finally:
        _display = before


def active() -> bool:
    """Is progress being shown?"""
    return _display is not None


def install(display: Display | None) -> None:
    """Show progress with ``display`` from now on (a command-line process, start to end)."""
    global _display
    _display = display
