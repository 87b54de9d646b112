"""At 60 columns nothing is cut: kubectl lets long lines run, it never truncates a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

ARTICLE = Path(__file__).resolve().parents[2] / "scenarios" / "article"
CLUSTERIP = str(ARTICLE / "clusterip-service.yaml")
runner = CliRunner()


def at(columns: int | None, *args: str) -> str:
    env = {"COLUMNS": str(columns)} if columns else {}
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def pods() -> list[dict]:
    return json.loads(at(None, "get", "pods", "-A", "-o", "json", "-f", CLUSTERIP))["items"]


@pytest.mark.parametrize("columns", [60, 80])
def test_get_wide_shows_every_name_and_address_whole(columns: int) -> None:
    text = at(columns, "get", "pods", "-A", "-o", "wide", "-f", CLUSTERIP)
    assert text.splitlines()[0].split()[:5] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS"]
    for item in pods():
        line = next(l for l in text.splitlines() if l.split()[:2] == [item["metadata"]["namespace"], item["metadata"]["name"]])
        assert item["status"]["podIP"] in line.split() and item["spec"]["nodeName"] in line.split()
    assert "…" not in text


def test_reach_shows_every_pod_name_whole() -> None:
    text = at(60, "reach", "-f", CLUSTERIP)
    words = set(text.split())
    for item in pods():
        assert f"{item['metadata']['namespace']}/{item['metadata']['name']}" in words


def test_run_table_wraps_text_but_never_cuts_a_name() -> None:
    text = at(60, "run", CLUSTERIP)
    doc = json.loads(at(None, "run", CLUSTERIP, "--json"))
    words = set(text.split())
    for check in doc["scenarios"][0]["checks"]:
        assert check["from"] in words and check["to"] in words
        for backend in check["observed"]["backends"]:
            assert any(w.startswith(backend.split("/")[1] + ":") for w in words), backend
    assert "…" not in text


def test_piped_tables_are_not_padded() -> None:
    lines = at(None, "run", CLUSTERIP).splitlines()
    rows = [line for line in lines if line.split()[1:2] == ["connect"]]
    assert rows and all(line == line.rstrip() for line in lines)
    # nothing is wider than the widest row (the frame's rule at most one column more)
    assert max(len(line) for line in lines if "passed:" not in line) <= max(len(r) for r in rows) + 1
