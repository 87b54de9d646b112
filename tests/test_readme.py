"""The README shows what the code does: its tour's first command and its Python example run
here, and their output is the README's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.dataplane import engine

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def console_block(command: str) -> list[str]:
    """The lines a README console block shows for ``$ command`` (up to the block's end)."""
    match = re.search(r"```console\n\$ " + re.escape(command) + r"\n(.*?)```", README, re.S)
    assert match, f"the README shows no `$ {command}`"
    return [line.rstrip() for line in match.group(1).rstrip("\n").splitlines()]


def test_the_tours_first_run_prints_what_the_readme_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fresh process on an installed vrsim: the auto engine, nothing forwarded yet
    monkeypatch.setenv("VRSIM_ENGINE", "auto")
    for name, value in (("_interpreted_packets", 0), ("_tiered_up", False), ("_why_interpreted", "")):
        monkeypatch.setattr(engine, name, value)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["run", "scenarios/article/namespace-isolation.yaml"])
    assert result.exit_code == 0
    shown = console_block("vrsim run scenarios/article/namespace-isolation.yaml")
    assert [line.rstrip() for line in result.stdout.rstrip("\n").splitlines()] == shown


def test_the_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = README.split("From Python (notebooks, tests)")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["result"].passed
    assert capsys.readouterr().out.splitlines()[0] == "ping ns-isolated/busybox ns-non-isolated/busybox False True"
