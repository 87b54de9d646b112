"""The README's Python example runs, and prints what the README says (its commands: test_docs_run)."""

from __future__ import annotations

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = README.split("From Python (notebooks, tests)")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["result"].passed
    assert capsys.readouterr().out.splitlines()[0] == "ping ns-isolated/busybox ns-non-isolated/busybox False True"
