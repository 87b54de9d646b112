"""Progress bars on stderr for long work (applying big manifest sets, compiling the kernels,
scenario steps, reach and connlist matrices), on a terminal only, and not with ``-q``.

One rich Progress is shared by nested tasks (a scenario's steps, inside them a matrix): the
bar appears when the first task starts and is cleared when the last ends, so stdout — the
command's answer — is printed on a clean screen.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from controlplane import progress as hook

_live: dict[str, Any] = {"progress": None, "depth": 0}


@contextmanager
def _terminal_task(description: str, total: int | None) -> Iterator[hook.Advance]:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if _live["progress"] is None:
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        _live["progress"] = Progress(*columns, console=Console(stderr=True), transient=True, refresh_per_second=8)
        _live["progress"].start()
    bar = _live["progress"]
    _live["depth"] += 1
    task_id = bar.add_task(escape(description), total=total)  # a scenario's name is user text, not markup

    def advance(n: int = 1) -> None:
        bar.update(task_id, advance=n)

    try:
        yield advance
    finally:
        bar.remove_task(task_id)
        _live["depth"] -= 1
        if _live["depth"] == 0:
            bar.stop()
            _live["progress"] = None


def use_progress(quiet: bool) -> None:
    """Show progress for this command: on a terminal (stderr), unless ``quiet``."""
    hook.install(None if quiet or not sys.stderr.isatty() else _terminal_task)
