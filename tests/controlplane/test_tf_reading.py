"""The tf reading, behaviour by behaviour: its answer, and the article reading's, on a small cluster."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from k8s_objects import objects
from typer.testing import CliRunner

from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from controlplane.tf.model import AddressGroup, FirewallPolicy, FirewallRule, FloatingIp
from vrouter.cli.main import app
from vrouter.lab.checks import run_check
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation

ROOT = Path(__file__).resolve().parents[2]
PODS = """
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {role: client, tier: a}}
spec: {nodeName: worker01, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {nodeName: worker02, containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 80}, {containerPort: 8080}, {containerPort: 8085}]}]}
"""


def both(manifests: str, check: dict, extra_config: dict | None = None) -> tuple[dict, dict]:
    """(article reading's observation, tf reading's) of one check."""
    out = []
    for semantics in ("article", "tf"):
        config = ClusterConfig.model_validate({"semantics": semantics, **(extra_config or {})})
        sim = Simulation.from_objects(objects(PODS + "---\n" + textwrap.dedent(manifests)), config)
        out.append(run_check(sim, parse_check("connect" if "port" in check else "ping", check)).observed)
    return out[0], out[1]


def test_2_a_named_port_is_not_resolved() -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress: [{ports: [{port: http}]}]
    """
    article, tf = both(policy, {"from": "default/client", "to": "default/web", "port": 80})
    assert article["reachable"] and not tf["reachable"] and tf["dropReason"] == "OutSG"


def test_2_end_port_is_ignored() -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress: [{ports: [{port: 8080, endPort: 8090}]}]
    """
    article, tf = both(policy, {"from": "default/client", "to": "default/web", "port": 8085})
    assert article["reachable"] and not tf["reachable"]
    _, tf_first = both(policy, {"from": "default/client", "to": "default/web", "port": 8080})
    assert tf_first["reachable"]  # the rule still covers its port


def test_3_match_expressions_keep_their_last_value_and_notin_reads_as_in() -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
      - from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [b]}]}}]
    """
    # tier=a is "not in (b)": Kubernetes admits the client; TF reads "tier in (b)" and does not
    article, tf = both(policy, {"from": "default/client", "to": "default/web", "port": 80})
    assert article["reachable"] and not tf["reachable"]


def test_5_a_later_egress_entry_overwrites_an_earlier_one() -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: client}
    spec:
      podSelector: {matchLabels: {role: client}}
      policyTypes: [Egress]
      egress:
      - to: [{podSelector: {matchLabels: {app: web}}}]
        ports: [{port: 80}]
      - ports: [{port: 53, protocol: UDP}]
    """
    article, tf = both(policy, {"from": "default/client", "to": "default/web", "port": 80})
    assert article["reachable"] and not tf["reachable"] and tf["dropReason"] == "SG"


INGRESS = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths: [{path: /shop, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""


def test_7_only_the_class_annotation_is_read() -> None:
    results = []
    for semantics in ("article", "tf"):
        sim = Simulation.from_objects(objects(PODS + "---\n" + INGRESS), ClusterConfig.model_validate({"semantics": semantics}))
        results.append(bool(sim.cluster.store.get("Ingress", "default", "site").get("status", {}).get("loadBalancer", {}).get("ingress")))
    assert results == [False, True]  # class nginx: the article leaves it to nginx, TF's code realises it


def test_8_haproxy_matches_paths_exactly() -> None:
    config = {"semantics": "tf"}
    observed = []
    for semantics in ("article", "tf"):
        sim = Simulation.from_objects(objects(PODS + "---\n" + INGRESS.replace("ingressClassName: nginx", "ingressClassName: opencontrail")), ClusterConfig.model_validate({**config, "semantics": semantics}))
        observed.append(run_check(sim, parse_check("http", {"from": "default/client", "to": "ingress/default/site", "host": "shop.example.com", "path": "/shop/cart"})).observed)
    assert observed[0]["reachable"] and not observed[1]["reachable"] and observed[1]["dropReason"] == "NoIngressRule"


def test_15_isolation_service_is_not_read() -> None:
    namespaces = """
    apiVersion: v1
    kind: Namespace
    metadata: {name: private, annotations: {opencontrail.org/isolation: "true", opencontrail.org/isolation.service: "false"}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: api, namespace: private}
    spec: {selector: {app: api}, ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: api, namespace: private, labels: {app: api}}
    spec: {containers: [{name: c, image: nginx}]}
    """
    article, tf = both(namespaces, {"from": "default/client", "to": "service/private/api", "port": 80})
    assert article["reachable"] and not tf["reachable"]


def test_the_reading_comes_from_the_scenario_or_the_command_line(tmp_path: Path) -> None:
    source = (ROOT / "scenarios" / "article" / "network-policy.yaml").read_text()
    (tmp_path / "network-policy").symlink_to(ROOT / "scenarios" / "article" / "network-policy")
    (tmp_path / "s.yaml").write_text(source.replace("steps:", "cluster: {semantics: tf}\nsteps:", 1))
    runner = CliRunner()
    in_file = json.loads(runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--json", "--allow-outside"]).stdout)
    on_line = json.loads(runner.invoke(app, ["run", str(ROOT / "scenarios" / "article" / "network-policy.yaml"), "--json", "--semantics", "tf"]).stdout)
    article = json.loads(runner.invoke(app, ["run", str(ROOT / "scenarios" / "article" / "network-policy.yaml"), "--json"]).stdout)
    verdicts = [[c["observed"]["reachable"] for c in doc["scenarios"][0]["checks"]] for doc in (in_file, on_line, article)]
    assert verdicts[0] == verdicts[1] != verdicts[2]
    assert article["passed"] and not on_line["passed"]


@pytest.mark.parametrize("fmt", ["txt", "json", "csv", "md"])
def test_diverge_lists_the_named_port_divergence(fmt: str) -> None:
    result = CliRunner().invoke(app, ["diverge", "-f", str(ROOT / "scenarios" / "article" / "network-policy.yaml"), "-o", fmt])
    assert result.exit_code == 1
    if fmt == "json":
        rows = json.loads(result.stdout)
        assert {"src": "shop/frontend[Pod]", "dst": "shop/backend[Pod]", "conn": "TCP 8080", "allowedIn": "intent", "deniedIn": "tf"}.items() <= rows[-1].items()
        assert rows[-1]["behaviours"][0]["number"] == 2
    else:
        assert "shop/frontend[Pod]" in result.stdout and "8080" in result.stdout and "named port" in result.stdout


def test_diverge_is_silent_on_a_plain_cluster(tmp_path: Path) -> None:
    (tmp_path / "pods.yaml").write_text(textwrap.dedent(PODS))
    result = CliRunner().invoke(app, ["diverge", "-f", str(tmp_path)])
    assert result.exit_code == 0 and result.stdout == ""
    bad = CliRunner().invoke(app, ["diverge", "-f", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2


TF_SCENARIOS = sorted((ROOT / "scenarios" / "tf").glob("*.yaml"))


@pytest.mark.parametrize("semantics", ["article", "tf"])
@pytest.mark.parametrize("scenario", TF_SCENARIOS, ids=[p.stem for p in TF_SCENARIOS])
def test_each_behaviour_scenario_states_both_readings_and_passes_in_both(scenario: Path, semantics: str) -> None:
    result = CliRunner().invoke(app, ["run", str(scenario), "--json", "--semantics", semantics])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["passed"], [c for c in doc["scenarios"][0]["checks"] if not c["passed"]]
    assert any(f"({semantics})" in c["expected"] for c in doc["scenarios"][0]["checks"])  # a check that differs by reading


def test_an_expectation_per_reading_names_both(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "apiVersion: vrsim/v1\nkind: Scenario\nmetadata: {name: x}\nsteps:\n"
        "  - apply: {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: busybox}]}}\n"
        "  - ping: {from: default/a, to: default/a}\n    expect: {tf: reachable}\n"
    )
    result = CliRunner().invoke(app, ["run", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2 and "missing article" in result.stderr


def test_12_load_balancer_ip_replaces_external_ips() -> None:
    service = """
    apiVersion: v1
    kind: Service
    metadata: {name: lb}
    spec: {type: LoadBalancer, loadBalancerIP: 203.0.113.10, externalIPs: [203.0.113.11], selector: {app: web}, ports: [{port: 80}]}
    """
    pool = {"publicFipPool": {"name": "public-pool", "network": "public", "subnet": "203.0.113.0/24"}}
    addresses = []
    for semantics in ("article", "tf"):
        sim = Simulation.from_objects(objects(PODS + "---\n" + textwrap.dedent(service)), ClusterConfig.model_validate({"semantics": semantics, **pool}))
        addresses.append(sorted(f.floating_ip_address for f in sim.cluster.db.list(FloatingIp) if f.role == "external-ip"))
    assert addresses == [["203.0.113.10", "203.0.113.11"], ["203.0.113.10"]]


def test_11_an_ingress_status_lists_its_floating_ip_and_its_vip() -> None:
    path = str(ROOT / "scenarios" / "tf" / "07-08-ingress.yaml")
    runner = CliRunner()
    shown = {}
    for semantics in ("article", "tf"):
        items = json.loads(runner.invoke(app, ["get", "ingress", "shop", "-o", "json", "-f", path, "--semantics", semantics]).stdout)["items"]
        shown[semantics] = [i["ip"] for i in items[0]["status"]["loadBalancer"]["ingress"]]
    assert len(shown["article"]) == 1 and shown["article"][0].startswith("203.0.113.")
    assert len(shown["tf"]) == 2 and shown["tf"][0].startswith("203.0.113.") and shown["tf"][1].startswith("10.47.")


def test_16_annotations_are_read_as_kube_manager_reads_them() -> None:
    loose = """
    apiVersion: v1
    kind: Namespace
    metadata: {name: loose, annotations: {opencontrail.org/isolation: "yes"}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: app, namespace: loose}
    spec: {containers: [{name: c, image: busybox}]}
    """
    with pytest.raises(InputError, match='must be "true" or "false"'):
        both(loose, {"from": "default/client", "to": "loose/app"})
    tf = Simulation.from_objects(objects(PODS + "---\n" + textwrap.dedent(loose)), ClusterConfig.model_validate({"semantics": "tf"}))
    assert run_check(tf, parse_check("ping", {"from": "default/client", "to": "loose/app"})).observed["reachable"]  # not "true": off
    quoted = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {opencontrail.org/network: \"{'project': 'k8s-default', 'name': 'k8s-default-pod-network'}\"}\nspec: {containers: [{name: c, image: busybox}]}\n"
    for semantics, words in (("article", "must be JSON"), ("tf", "missing domain")):
        with pytest.raises(InputError, match=words):
            Simulation.from_objects(objects(quoted), ClusterConfig.model_validate({"semantics": semantics}))
    with_domain = quoted.replace("{'project'", "{'domain': 'default-domain', 'project'")
    sim = Simulation.from_objects(objects(with_domain), ClusterConfig.model_validate({"semantics": "tf"}))
    assert sim.cluster.store.get("Pod", "default", "p")["status"]["podIP"]


def test_6_policy_types_default_alike_in_both_readings() -> None:
    policy = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: client}
    spec:
      podSelector: {matchLabels: {role: client}}
      egress: [{ports: [{port: 53, protocol: UDP}]}]
    """
    # no policyTypes: Ingress always, Egress because there are egress rules — as the API server fills them
    article, tf = both(policy, {"from": "default/client", "to": "default/web", "port": 80})
    assert (article["reachable"], article["dropReason"]) == (tf["reachable"], tf["dropReason"]) == (False, "SG")


def test_1_network_policies_become_firewall_policies_in_sequence_and_no_security_groups() -> None:
    path = str(ROOT / "scenarios" / "article" / "network-policy.yaml")
    runner = CliRunner()

    def get(kind: str, semantics: str) -> list[list[str]]:
        out = runner.invoke(app, ["get", kind, "-f", path, "--semantics", semantics]).stdout
        return [line.split() for line in out.splitlines()[1:]]

    article_sgs = [row[0] for row in get("sgs", "article")]
    tf_sgs = [row[0] for row in get("sgs", "tf")]
    assert any("default-deny" in sg for sg in article_sgs) and all(sg.endswith("-default-sg") for sg in tf_sgs)
    assert get("fwps", "article") == []
    policies = get("fwps", "tf")
    names = [row[0].split(":")[-1] for row in policies]
    assert names[0] == "k8s-Ingress" and names[-2:] == ["k8s-denyall", "k8s-allowall"]
    assert [row[1] for row in policies] == [str(i) for i in range(1, len(policies) + 1)]  # sequence order
    assert {"k8s-shop-default-deny", "k8s-shop-db-from-backend"} <= set(names)
    rules = runner.invoke(app, ["get", "firewall-rules", "-f", path, "--semantics", "tf"]).stdout.splitlines()[1:]
    db_rules = [l for l in rules if " k8s-shop-db-from-backend " in l]
    assert "pass" in db_rules[0] and "tcp 5432" in db_rules[0] and db_rules[-1].split()[3] == "deny"  # the direction's denyall closes it
    assert any("tcp api (unresolved" in l for l in rules)  # the named port, passed through as written


def test_1_a_deleted_network_policy_takes_its_firewall_objects() -> None:
    config = ClusterConfig.model_validate({"semantics": "tf"})
    policy = objects("""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny}
    spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]}
    """)
    sim = Simulation.from_objects(objects(PODS) + policy, config)
    assert len(sim.cluster.db.list(AddressGroup)) == 2 and sim.cluster.db.get(FirewallPolicy, ("default-policy-management", "k8s-default-deny"))
    sim.cluster.delete("NetworkPolicy", "default", "deny")
    assert sim.cluster.db.list(AddressGroup) == [] and sim.cluster.db.get(FirewallPolicy, ("default-policy-management", "k8s-default-deny")) is None
    assert {r.name for r in sim.cluster.db.list(FirewallRule)} == {"k8s-Ingress-allow", "k8s-denyall", "k8s-allowall"}
