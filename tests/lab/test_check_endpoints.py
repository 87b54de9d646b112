"""Checks that mean what the user means: workloads by name, negative checks, backends everywhere."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from k8s_objects import objects
from typer.testing import CliRunner

from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from vrouter.cli.main import app
from vrouter.lab.checks import run_check
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend}
spec:
  replicas: 3
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec: {containers: [{name: server, image: frontend, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: frontend}
spec:
  type: LoadBalancer
  externalIPs: [203.0.113.7]
  selector: {app: frontend}
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: loadgen}
spec:
  replicas: 2
  serviceName: loadgen
  selector: {matchLabels: {app: loadgen}}
  template:
    metadata: {labels: {app: loadgen}}
    spec: {containers: [{name: main, image: loadgen}]}
"""


PUBLIC = ClusterConfig.model_validate({"publicFipPool": {"name": "public-pool", "network": "public", "subnet": "203.0.113.0/24"}})


def sim(seed: int = 0) -> Simulation:
    return Simulation.from_objects(objects(APP), PUBLIC, seed=seed)


def check(s: Simulation, kind: str, **spec: object) -> dict:
    return run_check(s, parse_check(kind, spec)).observed


def frontend_pods(s: Simulation) -> list[str]:
    return sorted(f"default/{p['metadata']['name']}" for p in s.cluster.store.list("Pod", "default") if p["metadata"]["name"].startswith("frontend-"))


@pytest.mark.parametrize("target", ["deployment/default/frontend", "default/frontend"])
def test_a_workload_target_means_every_pod_under_any_seed(target: str) -> None:
    verdicts = set()
    names = set()
    for seed in (0, 3, 11):
        s = sim(seed)
        pods = frontend_pods(s)
        names.add(tuple(pods))
        seen = check(s, "connect", **{"from": "statefulset/default/loadgen", "to": target, "port": 8080, "flows": 2})
        assert sorted(seen["backends"]) == pods and seen["sent"] == 6
        verdicts.add((seen["reachable"], seen["received"]))
        closed = check(s, "connect", **{"from": "statefulset/default/loadgen", "to": target, "port": 9000})
        verdicts.add((closed["reachable"], closed["refused"]))
    assert len(names) == 3  # the generated names differ from seed to seed ...
    assert verdicts == {(True, 6), (False, True)}  # ... the verdicts do not


def test_a_workload_source_is_its_first_pod_or_every_pod() -> None:
    s = sim()
    one = check(s, "ping", **{"from": "statefulset/default/loadgen", "to": "service/default/frontend"})
    assert "sources" not in one
    every = check(s, "ping", **{"from": "default/loadgen", "to": "default/loadgen-0", "pick": "all"})
    assert every["sources"] == {"default/loadgen-0": "reachable", "default/loadgen-1": "reachable"}
    assert every["sent"] == 6


def test_pod_prefix_names_the_pod() -> None:
    assert check(sim(), "ping", **{"from": "pod/default/loadgen-1", "to": "pod/default/loadgen-0"})["reachable"]


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("default/frontnd", "no pod or workload default/frontnd; closest: deployment/default/frontend"),
        ("deployment/default/loadgen", "no deployment default/loadgen; closest: statefulset/default/loadgen"),
        ("nowhere/frontend", "no namespace 'nowhere'"),
        ("daemon/default/x", "'daemon' is not a kind an endpoint can name"),
    ],
)
def test_unknown_names_say_what_is_close(endpoint: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        check(sim(), "ping", **{"from": "default/loadgen-0", "to": endpoint})
    assert words in str(caught.value)
    assert "?" not in str(caught.value)


def test_a_port_the_service_does_not_expose_is_observed_dropped() -> None:
    seen = check(sim(), "connect", **{"from": "default/loadgen-0", "to": "service/default/frontend", "port": 81})
    assert (seen["reachable"], seen["refused"], seen["dropReason"]) == (False, False, "NoFipPortMap")
    assert seen["dropNode"] in ("worker01", "worker02")
    assert seen["note"] == "service default/frontend does not expose port 81 (it exposes 80/TCP)"


@pytest.mark.parametrize("target", ["node/worker01:30080", "172.27.10.75:30080", "service/default/frontend:external", "203.0.113.7:80"])
def test_backends_are_reported_for_nodeport_and_external_checks(target: str) -> None:
    s = sim()
    step = parse_check("connect", {"from": "external", "to": target, "flows": 60})
    step.expect.backends = "all"
    step.expect.maxImbalance = 1.0
    result = run_check(s, step)
    assert sorted(result.observed["backends"]) == frontend_pods(s)
    assert sum(result.observed["backends"].values()) == 60
    assert result.passed, result.why


SCENARIO = """
apiVersion: vrsim/v1
kind: Scenario
metadata: {name: strict}
steps:
  - apply: app.yaml
"""

ISTIO = """
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw}
spec: {selector: {istio: ingressgateway}}
"""


def test_strict_turns_warnings_into_exit_1(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(textwrap.dedent(ISTIO))
    (tmp_path / "s.yaml").write_text(textwrap.dedent(SCENARIO))
    runner = CliRunner()
    plain = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["passed"] is True
    assert "Gateway gw ignored" in plain.stderr and "no checks ran" in plain.stderr
    strict = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--json", "--strict"])
    assert strict.exit_code == 1
    assert "--strict" in strict.stderr


def test_an_external_ip_tf_did_not_realise_says_why() -> None:
    bare = Simulation.from_objects(objects(APP))  # no floating-IP pool
    seen = check(bare, "connect", **{"from": "external", "to": "service/default/frontend:external"})
    assert (seen["reachable"], seen["sent"], seen["dropReason"]) == (False, 0, "NoExternalIP")
    assert "no floating-IP pool" in seen["unrealised"]


def test_pods_exported_without_their_replicasets_are_named_by_deployment() -> None:
    boutique = Path(__file__).resolve().parents[1] / "data" / "netpol-analyzer" / "cases" / "onlineboutique" / "input"
    s = Simulation.from_path(boutique).build()
    for target in ("default/cartservice", "deployment/default/cartservice"):
        seen = check(s, "connect", **{"from": "default/frontend", "to": target, "port": 7070})
        assert seen["reachable"] and [p.split("-")[0] for p in seen["backends"]] == ["default/cartservice"]


def test_every_not_realised_reason_is_accepted_in_expect() -> None:
    """The reasons a check can report without sending (conditions the kube-manager sets,
    Unrealised targets, HAProxy's answers) are all known to ``expect.dropReason``."""
    import re

    from vrouter.lab.scenario import NOT_SENT_REASONS

    root = Path(__file__).resolve().parents[2]
    code = "".join(p.read_text() for folder in ("controlplane", "vrouter") for p in (root / folder).rglob("*.py"))
    raised = set(re.findall(r'(?:_not_realised|set_condition)\([^)]*?"([A-Z][A-Za-z]+)"', code))
    raised |= set(re.findall(r'Unrealised\(.*?"([A-Z][A-Za-z]+)"\)', code))
    raised |= set(re.findall(r'dropReason="([A-Z][A-Za-z]+)"', code))
    raised -= {"Realized"}  # the condition when all is well
    assert raised and raised <= set(NOT_SENT_REASONS), raised - set(NOT_SENT_REASONS)


def test_the_most_flows_a_check_allows_are_all_distinct() -> None:
    """``flows`` is capped at the source ports one address has: every flow it counts is its own
    five-tuple, none a reused port (and none below 1024)."""
    from vrouter.lab.scenario import MAX_FLOWS
    from vrouter.lab.traffic import SOURCE_PORTS, Source, Target, first_packets

    batch = first_packets(Source("s", 0, 3, 1), Target("t", 2, 80, "address"), 6, MAX_FLOWS)
    assert MAX_FLOWS == SOURCE_PORTS and len(set(batch["sport"].tolist())) == MAX_FLOWS
    assert batch["sport"].min() >= 1024
