"""Every vrsim command through typer's runner: output, JSON schema and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "scenarios" / "article"
ISOLATION = str(ARTICLE / "namespace-isolation.yaml")
CLUSTERIP = str(ARTICLE / "clusterip-service.yaml")
runner = CliRunner()


def invoke(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_run_json_follows_the_contract() -> None:
    result = invoke("run", ISOLATION, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert set(doc) == {"scenarios", "passed"} and doc["passed"] is True
    (scenario,) = doc["scenarios"]
    assert {"name", "file", "passed", "checks", "counters"} <= set(scenario)
    assert scenario["name"] == "namespace-isolation"
    first = scenario["checks"][0]
    assert set(first) == {"step", "kind", "from", "to", "expected", "observed", "passed"}
    assert first["step"] == 6 and first["kind"] == "ping"
    assert first["from"] == "ns-isolated/busybox" and first["to"] == "ns-non-isolated/busybox"
    observed = first["observed"]
    assert set(observed) >= {"reachable", "sent", "received", "dropReason", "dropNode", "backends"}
    assert observed == {**observed, "reachable": False, "sent": 3, "received": 0, "dropReason": "NoDstRt", "dropNode": "worker01", "backends": {}}
    counters = scenario["counters"]
    assert counters["injected"] == counters["delivered"] + counters["dropped"]
    assert sum(counters["dropsByReason"].values()) == counters["dropped"]
    assert counters["flowSetups"] > 0


def test_run_every_article_scenario_passes() -> None:
    files = sorted(str(p) for p in ARTICLE.glob("*.yaml"))
    assert len(files) >= 10
    result = invoke("run", *files, "--json")
    doc = json.loads(result.stdout)
    failed = [(s["name"], c) for s in doc["scenarios"] for c in s["checks"] if not c["passed"]]
    assert not failed and result.exit_code == 0
    for scenario in doc["scenarios"]:
        blocked = [c for c in scenario["checks"] if not c["observed"]["reachable"]]
        assert blocked, f"{scenario['name']} shows nothing blocked"
        # every blocked check says why: a drop reason, or the closed port that refused it
        assert all(c["observed"]["dropReason"] or c["observed"]["refusedBy"] for c in blocked), scenario["name"]


def test_run_table_and_failing_check_exit_1(tmp_path: Path) -> None:
    result = invoke("run", ISOLATION)
    assert result.exit_code == 0
    assert "PASS" in result.stdout and "NoDstRt @ worker01" in result.stdout and "4/4 checks" in result.stdout
    bad = tmp_path / "wrong.yaml"
    bad.write_text(Path(ISOLATION).read_text().replace("expect: reachable\n  - ping: {from: ns-non", "expect: unreachable\n  - ping: {from: ns-non"))
    for f in (ARTICLE / "namespace-isolation").iterdir():
        (tmp_path / "namespace-isolation").mkdir(exist_ok=True)
        (tmp_path / "namespace-isolation" / f.name).write_text(f.read_text())
    failed = invoke("run", str(bad))
    assert failed.exit_code == 1 and "FAIL" in failed.stdout


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ("  - pingg: {from: default/busybox, to: ns-isolated/busybox}\n    expect: reachable\n", "unknown step kind 'pingg'"),
        ("  - ping: {from: default/nobody, to: ns-isolated/busybox}\n    expect: reachable\n", "no pod or workload default/nobody"),
        ("  - connect: {from: default/busybox, to: ns-isolated/busybox, port: 70000}\n    expect: reachable\n", "port"),
        ("  - ping: {from: default/busybox, to: service/default/none}\n    expect: reachable\n", "no service default/none"),
        ("  - ping: {from: default/busybox, to: ns-isolated/busybox, cont: 3}\n    expect: reachable\n", "unknown key 'cont'"),
    ],
)
def test_bad_checks_exit_2_with_the_line(tmp_path: Path, step: str, words: str) -> None:
    (tmp_path / "namespace-isolation").mkdir()
    for f in (ARTICLE / "namespace-isolation").iterdir():
        (tmp_path / "namespace-isolation" / f.name).write_text(f.read_text())
    text = Path(ISOLATION).read_text() + step
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    line = len(text.splitlines()) - step.count("\n") + 1
    result = invoke("run", str(scenario))
    assert result.exit_code == 2
    assert words in result.stderr
    assert f"s.yaml:{line}" in result.stderr or f"s.yaml:{line + 1}" in result.stderr
    as_json = invoke("run", str(scenario), "--json")
    assert as_json.exit_code == 2
    error = json.loads(as_json.stdout)
    assert set(error) >= {"error", "file", "path"} and error["file"].endswith("s.yaml")


def test_run_is_deterministic_for_a_seed() -> None:
    first = invoke("run", CLUSTERIP, "--json", "--seed", "7").stdout
    second = invoke("run", CLUSTERIP, "--json", "--seed", "7").stdout
    assert first == second
    other = invoke("run", CLUSTERIP, "--json", "--seed", "8").stdout
    assert json.loads(other)["passed"] is True


def test_trace_of_a_clusterip_connection() -> None:
    result = invoke("trace", "default/busybox", "service/default/nginx-deployment-clusterip-service", "--port", "80", "-f", CLUSTERIP, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    packet, reply = doc["phases"][0], doc["phases"][1]
    assert [e["stage"] for e in packet["events"]][:3] == ["ingress", "flow", "route"]
    assert any(e["stage"] == "ecmp" for e in packet["events"])
    assert any(e["stage"] == "nat" and "DNAT" in e["text"] for e in packet["events"])
    assert "delivered" in packet["outcome"] and "nginx-deployment-clusterip-service" in packet["outcome"]
    reverse = [e for e in reply["events"] if e["stage"] == "nat" and "reverse flow" in e["text"]]
    assert reverse and "→ 10." in reverse[0]["text"]
    assert reply["outcome"].startswith("delivered") and "busybox" in reply["outcome"]
    text = invoke("trace", "default/busybox", "service/default/nginx-deployment-clusterip-service", "-f", CLUSTERIP)
    assert "ECMP nexthop" in text.stdout and "floating-IP DNAT" in text.stdout


def test_trace_across_nodes_shows_ecmp_tunnel_and_dnat_on_the_member(tmp_path: Path) -> None:
    scenario = tmp_path / "three.yaml"
    scenario.write_text(
        """
apiVersion: vrsim/v1
kind: Scenario
metadata: {name: three}
cluster:
  nodes: [{name: a, ip: 10.0.0.1}, {name: b, ip: 10.0.0.2}, {name: c, ip: 10.0.0.3}]
steps:
  - apply:
      - {apiVersion: v1, kind: Pod, metadata: {name: web-1, labels: {app: web}}, spec: {nodeName: a, containers: [{name: c, image: i}]}}
      - {apiVersion: v1, kind: Pod, metadata: {name: web-2, labels: {app: web}}, spec: {nodeName: b, containers: [{name: c, image: i}]}}
      - {apiVersion: v1, kind: Pod, metadata: {name: client}, spec: {nodeName: c, containers: [{name: c, image: i}]}}
      - {apiVersion: v1, kind: Service, metadata: {name: web}, spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}}
"""
    )
    doc = json.loads(invoke("trace", "default/client", "service/default/web", "-f", str(scenario), "--json").stdout)
    packet, reply = doc["phases"][:2]
    on_c = [e for e in packet["events"] if e["node"] == "c"]
    assert any(e["stage"] == "ecmp" for e in on_c) and any(e["stage"] == "tunnel" for e in on_c)
    assert not any("DNAT" in e["text"] for e in on_c)
    member = [e for e in packet["events"] if e["node"] in ("a", "b")]
    assert any("DNAT" in e["text"] and ":80 →" in e["text"] and ":8080" in e["text"] for e in member)
    back = [e for e in reply["events"] if e["node"] in ("a", "b") and e["stage"] == "nat"]
    assert any("→ 10.96." in e["text"] or "→ 10.1" in e["text"] for e in back)
    assert reply["outcome"].startswith("delivered on c")


def test_trace_of_an_isolated_ping_ends_in_no_route_on_the_first_node() -> None:
    doc = json.loads(invoke("trace", "ns-isolated/busybox", "default/busybox", "-f", ISOLATION, "--json").stdout)
    (packet,) = doc["phases"]
    nodes = {e["node"] for e in packet["events"]}
    assert nodes == {"worker01"}
    assert packet["events"][-1]["stage"] == "drop" and "NoDstRt" in packet["events"][-1]["text"]
    assert packet["outcome"] == "dropped on worker01: NoDstRt"


def test_reach_prints_the_isolation_table() -> None:
    result = invoke("reach", "-f", ISOLATION)
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith(("default/", "ns-"))}
    assert rows["default/busybox"] == [".", "X", "."]
    assert rows["ns-isolated/busybox"] == ["X", ".", "X"]
    assert rows["ns-non-isolated/busybox"] == [".", "X", "."]
    doc = json.loads(invoke("reach", "-f", ISOLATION, "-o", "json").stdout)
    assert doc["pods"] == ["default/busybox", "ns-isolated/busybox", "ns-non-isolated/busybox"]
    assert doc["matrix"] == [[True, False, True], [False, True, False], [True, False, True]]
    tcp = json.loads(invoke("reach", "-f", CLUSTERIP, "--port", "80", "-o", "json").stdout)
    assert tcp["protocol"] == "tcp" and tcp["port"] == 80


def test_vrouter_views() -> None:
    vif = invoke("vrouter", "worker01", "vif", "-f", ISOLATION)
    assert vif.exit_code == 0 and "vif0/0" in vif.stdout and "Pod:default/busybox" in vif.stdout
    index = invoke("vrouter", "worker01", "rt", "-f", CLUSTERIP)
    assert "k8s-default-service-network" in index.stdout
    rt = invoke("vrouter", "worker01", "rt", "--vrf", "k8s-default-pod-network", "-f", CLUSTERIP)
    assert rt.exit_code == 0 and "10.32.0.0/12" in rt.stdout and "E " in rt.stdout
    routes = json.loads(invoke("vrouter", "worker01", "rt", "--vrf", "k8s-default-pod-network", "-f", CLUSTERIP, "--json").stdout)
    ecmp = [r for r in routes if r["type"] == "COMPOSITE"]
    assert ecmp and len(ecmp[0]["members"]) == 2
    nh = invoke("vrouter", "worker01", "nh", "--id", str(ecmp[0]["nexthop"]), "-f", CLUSTERIP)
    assert "Composite" in nh.stdout and "Sub NH(label)" in nh.stdout
    mpls = invoke("vrouter", "worker02", "mpls", "-f", CLUSTERIP)
    assert "MPLS Input Label Map" in mpls.stdout and "via floating IP" in mpls.stdout
    flows = invoke("vrouter", "worker01", "flow", "-f", ISOLATION)
    assert flows.exit_code == 0 and "D(NoDstRt)" in flows.stdout and "<=>" in flows.stdout
    drops = json.loads(invoke("vrouter", "worker01", "dropstats", "-f", ISOLATION, "--json").stdout)
    assert drops == {"Flow Action Drop": 6}  # dropstats counts the agent's drop decisions together
    assert "Flow Action Drop" in invoke("vrouter", "worker01", "dropstats", "-f", ISOLATION).stdout
    flows = invoke("vrouter", "worker01", "flow", "-f", ISOLATION).stdout
    assert flows.count("Action:D(NoDstRt)") == 2  # flow -l names the agent's reason
    missing = invoke("vrouter", "worker09", "vif", "-f", ISOLATION)
    assert missing.exit_code == 2 and "no node 'worker09'" in missing.stderr


def test_one_off_checks() -> None:
    ok = invoke("ping", "default/busybox", "ns-non-isolated/busybox", "-f", ISOLATION)
    assert ok.exit_code == 0 and "reachable" in ok.stdout
    blocked = invoke("ping", "default/busybox", "ns-isolated/busybox", "-f", ISOLATION, "--json")
    assert blocked.exit_code == 1 and json.loads(blocked.stdout)["observed"]["dropReason"] == "NoDstRt"
    spread = json.loads(invoke("connect", "default/busybox", "service/default/nginx-deployment-clusterip-service", "-f", CLUSTERIP, "--flows", "200", "--json").stdout)
    assert sum(spread["observed"]["backends"].values()) == 200 and len(spread["observed"]["backends"]) == 2
    web = json.loads(invoke("http", "external", "ingress/default/frontdoor", "--host", "www.example.com", "--path", "/shop", "-f", str(ARTICLE / "ingress.yaml"), "--json").stdout)
    assert web["observed"]["via"] == "service/default/shop" and web["observed"]["reachable"]
    bad = invoke("connect", "default/busybox", "ns-isolated/busybox", "-f", ISOLATION)
    assert bad.exit_code == 2 and "port" in bad.stderr


def test_get_events_and_help() -> None:
    events = invoke("get", "events", "-A", "-f", ISOLATION)
    assert events.exit_code == 0 and "Scheduled" in events.stdout
    assert invoke("--help").exit_code == 0
    for command in ("run", "get", "trace", "reach", "vrouter", "ping", "connect", "http"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout


def test_engine_option_chooses_the_engine_and_the_output_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRSIM_ENGINE", "compiled")  # restored afterwards: --engine sets it for the process
    compiled = invoke("run", ISOLATION, "--json")
    assert json.loads(compiled.stdout)["scenarios"][0]["engine"] == "compiled"
    result = invoke("--engine", "interpreted", "run", ISOLATION, "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["scenarios"][0]["engine"] == "interpreted"
    assert doc["scenarios"][0]["checks"] == json.loads(compiled.stdout)["scenarios"][0]["checks"]
    human = invoke("--engine", "interpreted", "run", ISOLATION)
    assert "engine interpreted (as asked)" in human.stdout
    assert "engine" not in invoke("--engine", "compiled", "run", ISOLATION).stdout.splitlines()[-1]
    traced = json.loads(invoke("--engine", "interpreted", "trace", "-f", ISOLATION, "default/busybox", "ns-non-isolated/busybox", "--json").stdout)
    assert traced["engine"] == "interpreted"


@pytest.mark.parametrize("args", [("--engine", "turbo", "get", "pods", "-f", ISOLATION)])
def test_unknown_engine_is_exit_2(args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and "turbo" in result.stdout + result.stderr
    monkeypatch.setenv("VRSIM_ENGINE", "turbo")
    result = invoke("get", "pods", "-f", ISOLATION)
    assert result.exit_code == 2 and "VRSIM_ENGINE='turbo'" in result.stdout + result.stderr


def test_engine_note_says_which_engine_answered_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from vrouter.cli.compile_status import engine_note
    from vrouter.dataplane import engine

    monkeypatch.setattr(engine, "_why_interpreted", engine.SMALL_RUN_REASON)
    assert engine_note("compiled") == "" and engine_note("none") == ""
    assert engine_note("interpreted") == "engine interpreted (a small run)"
    monkeypatch.setattr(engine, "_why_interpreted", engine.TIERED_UP_REASON)
    assert engine_note("interpreted+compiled") == "engine interpreted+compiled (the first packets interpreted)"
    monkeypatch.setattr(engine, "_why_interpreted", "as asked")
    assert engine_note("interpreted") == "engine interpreted (as asked)"


def test_run_a_directory_runs_its_scenarios_in_name_order(tmp_path: Path) -> None:
    result = invoke("run", str(ARTICLE), "--json")
    doc = json.loads(result.stdout)
    expected = sorted(p.stem for p in ARTICLE.glob("*.yaml"))
    assert result.exit_code == 0 and [s["name"] for s in doc["scenarios"]] == expected
    # a directory without scenario files is a set of manifests, applied as one (as before)
    manifests = tmp_path / "app"
    manifests.mkdir()
    (manifests / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: busybox}]}\n")
    applied = invoke("run", str(manifests), "--json")
    doc = json.loads(applied.stdout)
    assert [s["name"] for s in doc["scenarios"]] == ["app"] and doc["scenarios"][0]["checks"] == []
    assert "no checks ran" in applied.stderr


def test_run_says_what_it_ignored(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec: {}\n"
    )
    result = invoke("run", str(tmp_path), "--json")
    (scenario,) = json.loads(result.stdout)["scenarios"]
    assert scenario["notes"] == [f"{tmp_path / 'gateway.yaml'}:1: Gateway gw ignored (not a kind the network simulation uses)"]
    assert "Gateway gw ignored" in result.stderr and "no checks ran" in result.stderr


INGRESS = str(ARTICLE / "ingress.yaml")
NODEPORT = str(ARTICLE / "nodeport-service.yaml")


@pytest.mark.parametrize(
    "args",
    [
        ["run", *sorted(str(p) for p in ARTICLE.glob("*.yaml"))],
        ["http", "external", "ingress/default/frontdoor", "--host", "nowhere.example.org", "-f", INGRESS],
        ["http", "default/busybox", "ingress/default/frontdoor", "--host", "nowhere.example.org", "-f", INGRESS],
        ["connect", "external", "172.27.10.75:30081", "-f", NODEPORT],
        ["connect", "external", "service/default/nginx-deployment-nodeport-service:external", "-f", NODEPORT],
        ["trace", "external", "172.27.10.75:30081", "-f", NODEPORT],
        ["trace", "external", "service/default/nginx-deployment-nodeport-service", "--port", "80", "-f", NODEPORT],
    ],
    ids=["run-article", "http-no-rule-outside", "http-no-rule-inside", "nodeport-closed", "no-external-ip", "trace-refused", "trace-dropped"],
)
def test_every_non_delivery_says_where_and_why_without_placeholders(args: list[str]) -> None:
    result = invoke(*args)
    text = result.stdout + result.stderr
    assert result.exit_code in (0, 1), text
    assert "?" not in text, text
    if args[0] in ("http", "connect") and result.exit_code == 1:
        assert any(w in text for w in ("dropped (", "refused", "nothing sent")), text
        assert " on worker0" in text or "listens on" in text or "nothing sent" in text, text
