"""netpol-analyzer's golden outputs, reproduced by the intent view and measured through the dataplane.

Every case under tests/data/netpol-analyzer/cases/ is loaded in the analyzer's readings (an
ipBlock never matches a pod; a host-network pod is an ordinary pod) and its connectivity list
must equal the expected file line for line (as sets: the order is checked separately):

- the intent view (``connlist --intent``) on every case;
- the dataplane view on every case without AdminNetworkPolicy/BaselineAdminNetworkPolicy
  (TF realises neither) — but for an Ingress TF does not realise (class nginx: another
  controller's), whose exposure line cannot be measured and is said in a note instead.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app
from vrouter.lab.connlist import ConnList, connlist, load

CASES = Path(__file__).resolve().parents[1] / "data" / "netpol-analyzer" / "cases"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())


def expected(case: str) -> set[str]:
    return {line for line in (CASES / case / "expected_connlist.txt").read_text().splitlines() if line.strip()}


@cache
def measured(case: str) -> ConnList:
    sim = load(CASES / case / "input", ipblock_selects_pods=False, host_network_as_pods=True)
    return connlist(sim)


@cache
def intended(case: str) -> ConnList:
    return connlist(load(CASES / case / "input", ipblock_selects_pods=False, host_network_as_pods=True), intent=True)


def has_admin_policies(case: str) -> bool:
    return any("AdminNetworkPolicy" in f.read_text() for f in (CASES / case / "input").iterdir())


@pytest.mark.parametrize("case", CASE_NAMES)
def test_the_intent_view_matches_the_analyzer(case: str) -> None:
    result = intended(case)
    got, want = set(result.lines()), expected(case)
    assert not (want - got) and not (got - want), f"missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"
    assert result.lines() == sorted(result.lines())
    assert result.packets == 0  # evaluated, not measured


def test_every_case_is_here() -> None:
    assert len(CASE_NAMES) >= 12 and sum(map(has_admin_policies, CASE_NAMES)) == 4
    assert (CASES.parent / "LICENSE").read_text().startswith(" " * 33 + "Apache License")


@pytest.mark.parametrize("case", [c for c in CASE_NAMES if not has_admin_policies(c)])
def test_the_dataplane_view_matches_the_analyzer(case: str) -> None:
    result = measured(case)
    got = set(result.lines())
    want = expected(case)
    unrealised = [n for n in result.notes if "is not realised by TF (no HAProxy load balancer" in n]
    if unrealised:  # an Ingress of another controller: no exposure line to measure
        want = {line for line in want if not line.startswith("{ingress-controller}")}
    assert not (want - got) and not (got - want), f"missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"
    assert result.lines() == sorted(result.lines()), "lines are sorted by source, then destination"
    assert not result.unmeasured
    assert result.packets >= len(result.probes)


def test_through_the_cli() -> None:
    case = CASES / "netpol-analysis-example-minimal" / "input"
    result = CliRunner().invoke(app, ["connlist", "-f", str(case), "--no-ipblock-selects-pods", "--host-network-as-pods"])
    assert result.exit_code == 0, result.output
    assert set(result.stdout.splitlines()) == expected("netpol-analysis-example-minimal")


def test_ipblocks_through_the_cli() -> None:
    """The case with an ipBlock and host-network pods, through the command line."""
    case = CASES / "ipblockstest" / "input"
    result = CliRunner().invoke(app, ["connlist", "-f", str(case), "--no-ipblock-selects-pods", "--host-network-as-pods", "-o", "txt"])
    assert result.exit_code == 0, result.output
    assert set(result.stdout.splitlines()) == expected("ipblockstest")


def test_host_network_pods_are_their_nodes_in_tf() -> None:
    """In TF's reading a host-network pod is its node's host stack: no policy restricts it, so
    the analyzer's UDP-53-only lines for the selected host-network DaemonSets open up."""
    sim = load(CASES / "ipblockstest" / "input", ipblock_selects_pods=False)
    lines = set(connlist(sim).lines())
    assert "0.0.0.0-9.255.255.255[External] => kube-system/calico-node-tier[DaemonSet] : UDP 53" in expected("ipblockstest")
    assert "0.0.0.0-9.255.255.255[External] => kube-system/calico-node-tier[DaemonSet] : All Connections" in lines
    # pods with interfaces keep the analyzer's answer
    assert "0.0.0.0-9.255.255.255[External] => kube-system/vpn-858f6d9777[ReplicaSet] : UDP 53" in lines


@pytest.mark.parametrize("case", [c for c in CASE_NAMES if has_admin_policies(c)])
def test_the_dataplane_views_say_admin_policies_are_not_realised(case: str) -> None:
    result = measured(case)
    admin = [n for n in result.notes if "is not realised by Tungsten Fabric" in n]
    assert admin and all("counts in the intent view only" in n for n in admin)
    assert set(result.lines()) != expected(case)  # TF forwards as if they were not there
