"""``vrsim diff``: connectivity and TF objects that change between two versions.

The expected lines are read off the article's network-policy scenario by hand: its policies
(policies.yaml) deny ingress to every shop pod but frontend on http (80), backend from
frontend on api (8080), db from backend on TCP 5432, and deny db all egress."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from vrouter.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "scenarios/article/network-policy.yaml"
EXT, BUSYBOX = "0.0.0.0-255.255.255.255[External]", "default/busybox[Pod]"
FRONT, BACK, DB = "shop/frontend[Pod]", "shop/backend[Pod]", "shop/db[Pod]"
ALL, NONE = "All Connections", "No Connections"

#: (source, destination) → after the policies (before them everything was open)
AFTER_POLICY = {
    (EXT, FRONT): "TCP 80", (BUSYBOX, FRONT): "TCP 80", (BACK, FRONT): "TCP 80",
    (FRONT, BACK): "TCP 8080", (EXT, BACK): NONE, (BUSYBOX, BACK): NONE,
    (BACK, DB): "TCP 5432", (FRONT, DB): NONE, (EXT, DB): NONE, (BUSYBOX, DB): NONE,
    (DB, EXT): NONE, (DB, BUSYBOX): NONE, (DB, FRONT): NONE, (DB, BACK): NONE,
}  # fmt: skip


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["diff", "-q", *args])
    return result.exit_code, result.stdout


def test_the_policy_step_removes_exactly_what_the_policies_deny() -> None:
    code, text = invoke(str(POLICY), "--at", "2", "--at", "3", "-o", "csv")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(text)))
    got = {(r["source"], r["destination"]): (r["diff-type"], r["dir1"], r["dir2"]) for r in rows}
    expected = {pair: ("removed" if after == NONE else "changed", ALL, after) for pair, after in AFTER_POLICY.items()}
    assert got == expected


def test_txt_and_md_follow_netpol_analyzers_layout() -> None:
    _, txt = invoke(str(POLICY), "--at", "2", "--at", "3")
    assert txt.startswith("Connectivity diff:\n")
    assert f"diff-type: changed, source: {FRONT}, destination: {BACK}, dir1:  {ALL}, dir2: TCP 8080\n" in txt
    _, md = invoke(str(POLICY), "--at", "2", "--at", "3", "-o", "md")
    assert md.splitlines()[0] == "| diff-type | source | destination | dir1 | dir2 | workloads-diff-info |"
    assert f"| removed | {DB} | {EXT} | {ALL} | {NONE} |  |" in md.splitlines()


def test_objects_list_a_security_group_per_policy_and_the_ports_that_took_them() -> None:
    code, text = invoke(str(POLICY), "--at", "2", "--at", "3", "-o", "json", "--objects")
    objects = json.loads(text)["objects"]
    added = {o["name"].rsplit(":", 1)[-1] for o in objects if o["kind"] == "added" and o["type"] == "security-group"}
    assert added == {f"k8s-shop-{name}" for name in ("default-deny", "frontend-from-anywhere", "backend-from-frontend", "db-from-backend", "db-no-egress")}
    changed = [o for o in objects if o["kind"] == "changed"]
    assert {o["type"] for o in changed} == {"virtual-machine-interface"} and all(o["fields"] == ["security_group_refs"] for o in changed)
    assert len(changed) == 3  # the three shop pods; busybox's port is untouched
    assert not [o for o in objects if o["kind"] == "removed"]


def test_equal_versions_exit_0(tmp_path: Path) -> None:
    code, text = invoke(str(POLICY), str(POLICY), "--objects")
    assert code == 0 and "no connectivity changes" in text and "no TF object changes" in text
    assert invoke(str(POLICY), "--at", "3", "--at", "3")[0] == 0


def test_two_folders_and_a_workload_that_appears(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(POLICY.parent / "network-policy", before)
    shutil.copytree(POLICY.parent / "network-policy", after)
    (before / "policies.yaml").unlink()
    (after / "policies.yaml").unlink()
    (after / "extra.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: shop}\nspec:\n  containers: [{name: c, image: busybox}]\n")
    code, text = invoke(str(before), str(after), "-o", "json")
    lines = json.loads(text)["connectivity"]
    assert code == 1 and lines and all(line["diff-type"] == "added" for line in lines)
    assert all("shop/extra[Pod]" in (line["source"], line["destination"]) for line in lines)
    assert all("workload shop/extra[Pod] added" in line["workloads-diff-info"] for line in lines)


def test_bad_arguments_are_input_errors() -> None:
    assert invoke(str(POLICY))[0] == 2  # one version, no --at
    assert invoke(str(POLICY), "--at", "2")[0] == 2
    result = CliRunner().invoke(app, ["diff", str(POLICY), "--at", "2", "--at", "99"])
    assert result.exit_code == 2 and "--at 99" in result.output
