"""Faults during traffic (scenarios/faults/): what each scenario claims, checked beyond its
own expectations — counters, flow tables and the control plane's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import InputError
from vrouter.lab.checks import compare_backends
from vrouter.dataplane.state import FC_AGED, FC_FULL
from vrouter.lab.scenario import load_scenario
from vrouter.lab.runner import run_scenario
from vrouter.lab.sim import Simulation

FAULTS = Path(__file__).resolve().parents[2] / "scenarios" / "faults"


def run(name: str) -> tuple[Simulation, list]:
    sim = Simulation.from_path(FAULTS / f"{name}.yaml")
    return sim, run_scenario(sim).checks


def test_every_fault_scenario_passes() -> None:
    files = sorted(FAULTS.glob("*.yaml"))
    assert {f.stem for f in files} >= {"backend-deleted", "node-removed", "flow-table-full", "pool-exhausted"}
    for file in files:
        result = run_scenario(Simulation.from_path(file))
        assert result.passed, [(c.step, c.why) for c in result.checks if not c.passed]


def test_backend_deleted_moves_only_its_flows() -> None:
    _, (before, after, _) = run("backend-deleted")
    gone = before.observed["backends"]["default/web-2"]
    assert gone > 0
    assert after.observed["moved"] == gone
    assert after.observed["kept"] == 900 - gone and after.observed["strayed"] == 0
    assert "default/web-2" not in after.observed["backends"]
    # the survivors' share only grew: their old flows stayed, the moved ones were added
    for pod in ("default/web-1", "default/web-3"):
        assert after.observed["backends"][pod] > before.observed["backends"][pod]
    assert after.counters["dropped"] == 0


def test_node_removed_takes_its_pods_and_vrouter() -> None:
    sim, (before, after, _) = run("node-removed")
    assert "worker03" not in sim.nodes and set(sim.fabric.names) == {"worker01", "worker02", "fabric-gateway"}
    pods = sim.cluster.store.list("Pod")
    assert len([p for p in pods if p["metadata"]["name"].startswith("web-")]) == 6
    assert {p["spec"]["nodeName"] for p in pods} <= {"worker01", "worker02"}
    lost = set(before.observed["backends"]) - set(after.observed["backends"])
    assert lost, "worker03 ran some replicas"
    assert after.observed["moved"] == sum(before.observed["backends"][p] for p in lost)
    assert after.observed["strayed"] == 0
    from controlplane.tf.model import VirtualRouter

    assert {vr.name for vr in sim.cluster.db.list(VirtualRouter)} == {"worker01", "worker02"}


def test_flow_table_full_is_counted_and_recovers_after_ageing() -> None:
    sim, (burst, late, after) = run("flow-table-full")
    client = sim.fabric.runtimes[sim.fabric.node_index("worker01")]
    full = int(client.counters.flows[FC_FULL])
    assert burst.counters["dropsByReason"]["Flow Table Full"] > 0
    assert full >= burst.counters["dropsByReason"]["Flow Table Full"] + late.counters["dropsByReason"]["Flow Table Full"]
    assert 0 < burst.observed["received"] < 2000
    assert int(client.counters.flows[FC_AGED]) >= burst.observed["received"]
    assert after.observed["received"] == 100


def test_pool_exhausted_says_why_and_recovers() -> None:
    sim, (ok, starved, recovered) = run("pool-exhausted")
    assert starved.observed["dropReason"] == "AddressPoolExhausted" and starved.observed["sent"] == 0
    events = [e for e in sim.cluster.store.events if e.name == "p5"]
    assert any(e.reason == "AddressPoolExhausted" for e in events)
    p5 = sim.cluster.store.get("Pod", "small", "p5")
    assert p5["status"]["podIP"].startswith("10.10.0.")
    assert recovered.passed and ok.passed


def test_compare_backends_finds_strayed_flows() -> None:
    before = ["a", "b", "c", None, "b"]
    now = ["a", "a", "c", "c", "c"]
    # b is gone: its two flows moved; a and c still serve and kept theirs
    assert compare_backends(before, now, {"a", "c"}) == (2, 2, 0)
    # if b still served, its flows strayed
    assert compare_backends(before, now, {"a", "b", "c"}) == (2, 0, 2)


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ("  - connect: {from: default/a, to: default/a, port: 80}\n    expect: {reachable: true, sameBackendsAs: nope}\n", "no earlier check is named 'nope'"),
        (
            "  - name: one\n    ping: {from: default/a, to: default/a}\n    expect: reachable\n"
            "  - name: one\n    ping: {from: default/a, to: default/a}\n    expect: reachable\n",
            "two checks are named 'one'",
        ),
        ("  - name: Bad Name\n    ping: {from: default/a, to: default/a}\n    expect: reachable\n", "a check's name"),
        ("  - wait: {seconds: -1}\n", "seconds"),
        ("  - wait: {second: 1}\n", "second"),
        ("  - wait: 1\n    expect: reachable\n", "unknown key 'expect' in a wait step"),
    ],
)
def test_fault_steps_refuse_mistakes(tmp_path: Path, steps: str, words: str) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("apiVersion: vrsim/v1\nkind: Scenario\nsteps:\n" + steps)
    with pytest.raises(InputError) as info:
        load_scenario(scenario)
    assert words in str(info.value) and info.value.file == str(scenario)


def test_removing_an_unknown_or_the_last_node_is_an_error(cluster) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="node 'worker09' not found"):
        cluster.delete("node", None, "worker09")
    cluster.delete("node", None, "worker02")
    with pytest.raises(InputError, match="last node"):
        cluster.delete("no", None, "worker01")
