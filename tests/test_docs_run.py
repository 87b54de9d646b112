"""Every ``$ vrsim …`` in README.md and docs/*.md runs here, and prints what the page shows.

A page may leave lines out: a line that is only ``…`` stands for any number of lines, and a
line ending in `` …`` for any line that starts with what comes before it. Nothing else is
normalised: a fresh process on an installed vrsim (the ``auto`` engine, nothing forwarded
yet) must print the page's text exactly.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.dataplane import engine

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands() -> list[tuple[str, str, list[str]]]:
    """(page, command, the lines the page shows for it) for every ``$ vrsim`` in a console block."""
    out = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.S):
            command, lines = None, []
            for line in block.rstrip("\n").splitlines():
                if line.startswith("$ "):
                    if command:
                        out.append((page.name, command, lines))
                    command, lines = line[2:], []
                else:
                    lines.append(line.rstrip())
            if command:
                out.append((page.name, command, lines))
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Does ``actual`` read as ``expected``, with its ``…`` elisions?"""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "…":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    if head.endswith(" …"):
        same = actual[0].startswith(head[:-2])
    else:
        same = actual[0] == head
    return same and matches(rest, actual[1:])


COMMANDS = shown_commands()


def test_the_pages_show_commands() -> None:
    assert len(COMMANDS) >= 8 and all(c.startswith("vrsim ") for _, c, _ in COMMANDS)


@pytest.mark.parametrize(("page", "command", "expected"), COMMANDS, ids=[f"{p}: {c[:60]}" for p, c, _ in COMMANDS])
def test_a_shown_command_prints_what_the_page_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str, command: str, expected: list[str]) -> None:
    monkeypatch.setenv("VRSIM_ENGINE", "auto")
    monkeypatch.delenv("COLUMNS", raising=False)
    for name, value in (("_interpreted_packets", 0), ("_tiered_up", False), ("_why_interpreted", "")):
        monkeypatch.setattr(engine, name, value)
    for entry in ROOT.iterdir():  # the project's files, but what a command writes lands in tmp_path
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code in (0, 1), result.output
    actual = [line.rstrip() for line in result.stdout.rstrip("\n").splitlines()]
    while expected and not expected[-1]:
        expected = expected[:-1]
    assert matches(expected, actual), "\n".join(["page:", *expected, "", "printed:", *actual])
