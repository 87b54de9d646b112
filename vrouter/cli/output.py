"""Printing for the ``vrsim`` commands: tables, JSON/YAML, and user errors (exit 2).

Tables are printed the kubectl way (plain aligned columns, upper-case headers) through rich,
never wrapped: a listing piped to ``grep`` must keep one object per line.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
import yaml
from rich import box
from rich.console import Console
from rich.table import Table

from controlplane.errors import InputError

EXIT_INPUT = 2
EXIT_INTERNAL = 70


def stdout_console() -> Console:
    """A console on the current stdout (made per call so test runners can capture it)."""
    width = None if sys.stdout.isatty() else 250
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False)


def print_table(table: Table) -> None:
    """Print a table with no trailing blanks on its lines (they upset diff and grep)."""
    console = stdout_console()
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", show_lines=False, padding=(0, 3, 0, 0))
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*[str(c) for c in row])
    return table


def boxed_table(title: str | None, columns: Sequence[str]) -> Table:
    """The framed table of ``vrsim run`` results."""
    table = Table(title=title, box=box.SIMPLE_HEAVY, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def print_yaml(data: Any) -> None:
    sys.stdout.write(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))


def fail(exc: InputError, as_json: bool = False) -> NoReturn:
    """Report a user mistake and exit 2: one line (or one JSON object), never a traceback."""
    if as_json:
        print_json(exc.to_json())
    else:
        sys.stderr.write(f"error: {exc}\n")
    raise typer.Exit(EXIT_INPUT)


@contextmanager
def user_errors(as_json: bool = False) -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        fail(exc, as_json)


def run_guarded(app: typer.Typer) -> None:
    """Run the app; an unexpected failure is reported in one line (VRSIM_DEBUG=1 shows it all)."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except InputError as exc:  # raised outside a command's own guard
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(EXIT_INPUT) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("VRSIM_DEBUG"):
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"vrsim: internal error: {type(exc).__name__}: {exc}\n"
                "this is a bug in vrsim, not in your input; rerun with VRSIM_DEBUG=1 to see where\n"
            )
        raise SystemExit(EXIT_INTERNAL) from None
