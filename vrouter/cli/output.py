"""Printing for the ``vrsim`` commands: tables, JSON/YAML, and user errors (exit 2).

Tables are printed the kubectl way (plain aligned columns, upper-case headers) through rich,
never wrapped and never cut: a listing piped to ``grep`` must keep one object per line, and a
narrow terminal wraps long lines rather than losing a pod's address. Framed tables (``vrsim
run``) wrap their text columns at spaces, never inside a word.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from controlplane.errors import InputError

EXIT_INPUT = 2
EXIT_INTERNAL = 70


def terminal_columns() -> int | None:
    """The terminal's width (``COLUMNS`` wins, as for every tool); None when piped."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None


def stdout_console(width: int | None = None) -> Console:
    """A console on the current stdout (made per call so test runners can capture it).

    Lines are never broken by rich (``soft_wrap``): the terminal wraps them, a pipe gets them
    whole, as kubectl's.
    """
    return Console(file=sys.stdout, width=width or terminal_columns() or 10_000, highlight=False, soft_wrap=True)


def _render(table: Table, width: int) -> str:
    console = stdout_console(width)
    with console.capture() as captured:
        console.print(table, soft_wrap=False)
    return captured.get()


def _column_widths(table: Table, probe: Console) -> tuple[list[int], list[int]]:
    """(natural, minimum) width of every column: a no-wrap column needs its widest cell,
    a wrapping one at least its longest word."""
    natural, minimum = [], []
    for column in table.columns:
        cells = [column.header, *column.cells]
        sizes = [Measurement.get(probe, probe.options, probe.render_str(c) if isinstance(c, str) else c) for c in cells]
        natural.append(max(m.maximum for m in sizes))
        minimum.append(natural[-1] if column.no_wrap else max(m.minimum for m in sizes))
    return natural, minimum


def render_table(table: Table) -> str:
    """A table as text: at its natural width when piped or when it fits; on a narrower
    terminal the wrapping columns (free text) give up width, down to their longest word —
    names and addresses are never cut, and a line runs past the terminal if it must (as
    kubectl's do). rich's own shrinking would cut words, so widths are set here."""
    probe = Console(width=100_000, file=io.StringIO())
    natural, minimum = _column_widths(table, probe)
    overhead = Measurement.get(probe, probe.options, table).maximum - sum(natural)
    room = (terminal_columns() or 100_000) - overhead
    widths = list(natural)
    if sum(natural) > room:
        spare = max(room - sum(minimum), 0)
        give = [n - m for n, m in zip(natural, minimum, strict=True)]
        total = sum(give) or 1
        widths = [m + (g * spare) // total for m, g in zip(minimum, give, strict=True)]
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    return _render(table, sum(widths) + overhead)


def print_table(table: Table) -> None:
    """Print a table whole, with no trailing blanks on its lines (they upset diff and grep).
    A title goes on its own line above (rich would cut a title longer than the table)."""
    if table.title:
        stdout_console().print(Text(str(table.title), style="bold"))
        table.title = None
    sys.stdout.write("\n".join(line.rstrip() for line in render_table(table).splitlines()) + "\n")


def literal(value: object) -> Text:
    """A cell or line as it is: user text (names, paths) is never read as rich markup, where
    ``[/x]`` would crash and ``[red]`` would vanish. A :class:`Text` keeps its own style."""
    return value if isinstance(value, Text) else Text(str(value))


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", show_lines=False, padding=(0, 3, 0, 0))
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*[literal(c) for c in row])
    return table


def boxed_table(title: str | None, columns: Sequence[str], wrapping: Sequence[str] = ()) -> Table:
    """The framed table of ``vrsim run`` results: only the ``wrapping`` columns (free text)
    wrap at spaces; names and addresses are never broken."""
    table = Table(title=literal(title) if title is not None else None, box=box.SIMPLE_HEAVY, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="ellipsis", no_wrap=column not in wrapping)  # see render_table
    return table


def write_output(path: Path, text: str, option: str = "--file") -> None:
    """A command's output into the file the user named (``--file``); a file that cannot be
    written is their mistake to fix (exit 2, naming it)."""
    try:
        path.write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", path=option) from None


def check_output_directory(directory: Path | None, option: str) -> None:
    """Refuse an output folder that cannot be one before the run, not after it."""
    if directory is not None and directory.exists() and not directory.is_dir():
        raise InputError(f"{option} {directory}: exists and is not a directory", path=option)


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


#: errors writing the output that are the machine's, not vrsim's: one line, exit 1
OUTPUT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


def _output_failed(exc: OSError) -> NoReturn:
    sys.stderr.write(f"error: cannot write the output: {exc.strerror or exc}\n")
    sink = os.open(os.devnull, os.O_WRONLY)  # what is still buffered goes nowhere at exit, quietly
    os.dup2(sink, sys.stdout.fileno())
    raise SystemExit(1)


def run_guarded(app: typer.Typer) -> None:
    """Run the app; an unexpected failure is reported in one line (VRSIM_DEBUG=1 shows it all)."""
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # a full disk shows here, where it can be reported, not at exit
    except SystemExit:
        raise
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRORS:
            _internal(exc)
        _output_failed(exc)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except InputError as exc:  # raised outside a command's own guard
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(EXIT_INPUT) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        _internal(exc)


def _internal(exc: BaseException) -> NoReturn:
    if os.environ.get("VRSIM_DEBUG"):
        traceback.print_exception(exc)
    else:
        sys.stderr.write(
            f"vrsim: internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in vrsim, not in your input; rerun with VRSIM_DEBUG=1 to see where\n"
        )
    raise SystemExit(EXIT_INTERNAL) from None
