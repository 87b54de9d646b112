"""The intent view and the admin policies through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vrouter.cli.main import app

CASES = Path(__file__).resolve().parents[1] / "data" / "netpol-analyzer" / "cases"
DEMO = str(CASES / "anp_banp_blog_demo" / "input")
PASS = str(CASES / "anp_test_3_pass_traffic" / "input")
runner = CliRunner()


def test_connlist_intent_in_every_format() -> None:
    want = set((CASES / "anp_test_3_pass_traffic" / "expected_connlist.txt").read_text().split("\n")) - {""}
    txt = runner.invoke(app, ["connlist", "--intent", "-f", PASS])
    assert txt.exit_code == 0 and set(txt.stdout.splitlines()) == want
    rows = json.loads(runner.invoke(app, ["connlist", "--intent", "-f", PASS, "-o", "json"]).stdout)
    assert {f"{r['src']} => {r['dst']} : {r['conn']}" for r in rows} == want
    csv = runner.invoke(app, ["connlist", "--intent", "-f", PASS, "-o", "csv"]).stdout.splitlines()
    assert csv[0] == "src,dst,conn" and len(csv) == len(want) + 1
    dot = runner.invoke(app, ["connlist", "--intent", "-f", PASS, "-o", "dot"]).stdout
    assert dot.count(" -> ") == len(want)


def test_the_dataplane_views_name_each_admin_policy_they_ignore() -> None:
    result = runner.invoke(app, ["connlist", "-f", DEMO])
    notes = [l for l in result.stderr.splitlines() if "not realised by Tungsten Fabric" in l]
    assert len(notes) == 3  # two AdminNetworkPolicies and the baseline
    run = json.loads(runner.invoke(app, ["run", DEMO, "--json"]).stdout)
    assert sum("not realised by Tungsten Fabric" in n for n in run["scenarios"][0]["notes"]) == 3


def test_get_lists_admin_policies_with_their_priority_and_a_note() -> None:
    result = runner.invoke(app, ["get", "anp", "-f", DEMO])
    assert result.stdout.split() == ["NAME", "PRIORITY", "allow-monitoring", "9", "pass-monitoring", "7"]
    assert result.stderr.count("not realised by Tungsten Fabric") == 2
    banp = runner.invoke(app, ["get", "banp", "-o", "name", "-f", DEMO])
    assert banp.stdout.split() == ["baselineadminnetworkpolicy/default"]
