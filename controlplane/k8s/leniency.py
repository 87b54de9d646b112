"""``--lenient``: reading a repository's manifests the way an analyzer must, not as ``apply``.

Real repositories hold objects the API server would default or fix, or that do not change
connectivity: a multi-port Service without port names, a NetworkPolicy named with ``_``,
ownerReferences without ``apiVersion``/``uid``, ``podSelector:`` left empty (null), a stray
JSON file that is no manifest. ``vrsim apply``/``run`` refuse them (exit 2, file:line); the
analysis commands with ``--lenient`` read them anyway and say so. Everything else stays an
error.

Validation code asks :func:`forgive` with the error it would raise; outside a
:func:`lenient` block the answer is always no.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from controlplane.errors import InputError

_warnings: ContextVar[list[str] | None] = ContextVar("lenient_warnings", default=None)


@contextmanager
def lenient(warnings: list[str]) -> Iterator[list[str]]:
    """Read leniently while the block runs; the forgiven problems go to ``warnings``."""
    token = _warnings.set(warnings)
    try:
        yield warnings
    finally:
        _warnings.reset(token)


def forgive(error: InputError, how: str = "read anyway") -> bool:
    """True (and the problem recorded as a warning) when reading leniently; else False, and
    the caller raises ``error``."""
    warnings = _warnings.get()
    if warnings is None:
        return False
    warnings.append(f"{error} (--lenient: {how})")
    return True
