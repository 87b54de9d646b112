"""Churn without leaks: thousands of random applies and deletes, and after every step the
TF model equals one rebuilt from scratch from the Kubernetes objects as they are now.

The oracle is a second cluster that never saw the history: it is handed the current
namespaces, pods, services, endpoints, ingresses, NetworkPolicies and TF-kind objects, and
its kube-manager builds its model in one go (its endpoints controller derives the Endpoints). Allocation order differs between the two, so
the comparison reads addresses as *who holds them* (the pool's owner) and leaves VN ids
out (checked unique instead); reference lists are compared as sets, as the TF API keeps
them. Every few steps the vRouter agents are compared too — labels, nexthops, vifs and
VRFs in use — with agents compiled afresh from the rebuilt model, and a little traffic
runs. At the end everything is deleted: only the defaults remain, no address is held, and
once the flows have aged every flow table is empty.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from collections import Counter
from typing import Any

import pytest

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig
from controlplane.controller.intent import Controller
from controlplane.errors import InputError
from controlplane.tf.ipam import AddressPool
from controlplane.tf.model import ConfigDB, NetworkIpam, VirtualNetwork
from vrouter.agent import AgentSet
from vrouter.lab.checks import run_conversation
from vrouter.lab.sim import Simulation

#: the kinds kube-manager reads; workload objects (Deployments…) are left out on purpose,
#: their pods are handed over as they are (a second ReplicaSet would make more pods), and
#: so are Endpoints: they hold the pod addresses of the history, the oracle derives its own
ORACLE_KINDS = (
    "Namespace",
    "VirtualNetwork.vrsim.tf",
    "FloatingIpPool.vrsim.tf",
    "NetworkPolicy.vrsim.tf",
    "Pod",
    "Service",
    "Ingress",
    "NetworkPolicy",
)
CONFIG = {
    "nodes": [
        {"name": "worker01", "ip": "172.27.10.74"},
        {"name": "worker02", "ip": "172.27.10.75"},
        {"name": "worker03", "ip": "172.27.10.76"},
    ],
    "publicFipPool": {"name": "public", "network": "public", "subnet": "203.0.113.0/24"},
    "vrouter": {"flowEntries": 4096, "agingSeconds": 60},
}
STEPS = 600  # per seed: with the pods of deployments, about a thousand objects come and go
IDS = ("virtual_network_network_id", "vxlan_network_identifier")


# --- the oracle ------------------------------------------------------------------------


def rebuilt(cluster: Cluster) -> Cluster:
    """A cluster that never saw the history, given the objects as they are now."""
    fresh = Cluster(cluster.config, cluster.seed)
    for kind in ORACLE_KINDS:
        for obj in sorted(cluster.store.list(kind), key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"])):
            if kind == "Namespace" and fresh.store.get("Namespace", "", obj["metadata"]["name"]) is not None:
                fresh.store.put(obj)  # a system namespace: same object, maybe relabelled
                continue
            fresh.store.put(obj)
    return fresh


def pools(db: ConfigDB) -> list[AddressPool]:
    found = [ipam.pool for ipam in db.list(NetworkIpam) if ipam.pool is not None]
    found += [vn.own_pool for vn in db.list(VirtualNetwork) if vn.own_pool is not None]
    return found


def holders(db: ConfigDB) -> dict[str, str]:
    """address → who holds it, over every pool (one address may be in several pools)."""
    owners: dict[str, set[str]] = {}
    for pool in pools(db):
        for value, owner in pool.owners.items():
            owners.setdefault(str(ipaddress.IPv4Address(value)), set()).add(owner)
    return {address: "|".join(sorted(names)) for address, names in owners.items()}


_IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


def canonical(db: ConfigDB) -> dict[tuple[str, tuple[str, ...]], str]:
    """Every object's JSON with addresses read as their holders, ids out, refs as sets."""
    held = holders(db)

    def holder(match: re.Match[str]) -> str:
        found = held.get(match.group(0))
        return f"<{found}>" if found is not None else match.group(0)

    out: dict[tuple[str, tuple[str, ...]], str] = {}
    for obj in db.all_objects():
        doc = obj.to_json()
        for key in ("uuid", *IDS):
            doc.pop(key, None)
        for key in [k for k in doc if k.endswith("_refs")]:
            doc[key] = sorted(doc[key], key=repr)
        out[(obj.TYPE, obj.fq_name)] = _IPV4.sub(holder, json.dumps(doc, sort_keys=True))
    return out


def assert_same_model(cluster: Cluster, step: str) -> Cluster:
    fresh = rebuilt(cluster)
    mine, theirs = canonical(cluster.db), canonical(fresh.db)
    extra = sorted(set(mine) - set(theirs), key=repr)
    missing = sorted(set(theirs) - set(mine), key=repr)
    assert not extra, f"after {step}: leaked {extra[:5]}"
    assert not missing, f"after {step}: missing {missing[:5]}"
    differ = [k for k in mine if mine[k] != theirs[k]]
    assert not differ, f"after {step}: {differ[0]}\n mine   {mine[differ[0]]}\n theirs {theirs[differ[0]]}"
    # addresses: the same holders in each pool, nobody holds two, no two objects share one
    held_mine = Counter(o for p in pools(cluster.db) for o in p.owners.values())
    held_theirs = Counter(o for p in pools(fresh.db) for o in p.owners.values())
    assert held_mine == held_theirs, f"after {step}: address holders differ {held_mine - held_theirs} / {held_theirs - held_mine}"
    assert_no_double_allocation(cluster.db, step)
    ids = [vn.virtual_network_network_id for vn in cluster.db.list(VirtualNetwork)]
    assert len(ids) == len(set(ids)), f"after {step}: a VN id handed out twice"
    return fresh


def assert_no_double_allocation(db: ConfigDB, step: str) -> None:
    """An address in a pool's range is held by at most one instance-ip or floating-ip."""
    from controlplane.tf.model import FloatingIp, InstanceIp

    seen: dict[tuple[str, str], str] = {}
    for iip in db.list(InstanceIp):
        for vn in iip.virtual_network_refs:
            key = (":".join(vn), iip.instance_ip_address)
            assert key not in seen, f"after {step}: {key} held by {seen.get(key)} and {iip.fq_name}"
            seen[key] = str(iip.fq_name)
    fips: dict[tuple[str, ...], str] = {}
    for fip in db.list(FloatingIp):
        key = (*fip.fq_name[:-2], fip.floating_ip_address)
        assert key not in fips, f"after {step}: floating IP {fip.floating_ip_address} given twice in {fip.fq_name[:-1]}"
        fips[key] = str(fip.fq_name)


def agent_usage(agents: AgentSet) -> dict[str, tuple[int, int, int, int]]:
    """Per node: labels, nexthops, vifs and VRFs held."""
    return {
        name: tuple(sum(1 for _ in ids.items()) for ids in (a.label_ids, a.nh_ids, a.vif_ids, a.vrf_ids))  # type: ignore[misc]
        for name, a in agents.agents.items()
    }


def assert_same_agents(sim: Simulation, fresh: Cluster, step: str) -> None:
    sim.nodes  # compile the incremental agents now
    agents = AgentSet(fresh.config)
    agents.compile(Controller(fresh.db, fresh.store).compute(fresh.config))
    assert agent_usage(sim.agents) == agent_usage(agents), f"after {step}: agents hold different numbers of ids"


# --- the random walk -------------------------------------------------------------------


class Churn:
    """Random kubectl sessions: namespaces, pods, deployments scaled up and down,
    services of every type, ingresses and policies; applied and deleted."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sim = Simulation.from_objects([], ClusterConfig.model_validate(CONFIG), seed=seed)
        self.cluster = self.sim.cluster
        self.serial = 0

    # names
    def _name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def _namespaces(self) -> list[str]:
        return sorted(n["metadata"]["name"] for n in self.cluster.store.list("Namespace") if n["metadata"]["name"] not in ("kube-system", "kube-public", "kube-node-lease"))

    def _some(self, kind: str) -> tuple[str, str] | None:
        objs = [o for o in self.cluster.store.list(kind) if o["metadata"].get("namespace") not in ("kube-system",)]
        if kind == "Pod":
            objs = [o for o in objs if not o["metadata"].get("ownerReferences")]
        if not objs:
            return None
        obj = self.rng.choice(sorted(objs, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])))
        return obj["metadata"]["namespace"], obj["metadata"]["name"]

    def _labels(self) -> dict[str, str]:
        return {"app": self.rng.choice(["web", "db", "cache"]), "tier": self.rng.choice(["a", "b"])}

    # operations: each returns a description for failure messages
    def new_namespace(self) -> str:
        name = self._name("ns")
        notes: dict[str, str] = {}
        roll = self.rng.random()
        if roll < 0.35:
            notes["opencontrail.org/isolation"] = "true"
            if self.rng.random() < 0.3:
                notes["opencontrail.org/isolation.service"] = "false"
        elif roll < 0.5:
            notes["opencontrail.org/network"] = '{"domain": "default-domain", "project": "k8s-default", "name": "blue"}'
        labels = {"team": self.rng.choice(["x", "y"])}
        self.cluster.apply_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": notes, "labels": labels}}])
        return f"namespace {name} {notes}"

    def relabel_namespace(self) -> str:
        names = [n for n in self._namespaces() if n.startswith("ns-")]
        if not names:
            return self.new_namespace()
        name = self.rng.choice(names)
        current = self.cluster.store.get("Namespace", "", name)
        notes = dict(current["metadata"].get("annotations") or {})
        if "opencontrail.org/isolation" in notes:
            notes.pop("opencontrail.org/isolation")
            notes.pop("opencontrail.org/isolation.service", None)
        else:
            notes["opencontrail.org/isolation"] = "true"
        self.cluster.apply_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": notes, "labels": current["metadata"].get("labels") or {}}}])
        return f"namespace {name} now {notes}"

    def delete_namespace(self) -> str:
        names = [n for n in self._namespaces() if n.startswith("ns-")]
        if not names:
            return "nothing"
        name = self.rng.choice(names)
        self.cluster.delete("Namespace", None, name)
        return f"delete namespace {name}"

    def new_pod(self) -> str:
        ns = self.rng.choice(self._namespaces())
        name = self._name("pod")
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}]}]}
        if self.rng.random() < 0.3:
            spec["nodeName"] = self.rng.choice(["worker01", "worker02", "worker03"])
        self.cluster.apply_objects([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": self._labels()}, "spec": spec}], namespace=ns)
        return f"pod {ns}/{name}"

    def delete_pod(self) -> str:
        found = self._some("Pod")
        if found is None:
            return "nothing"
        self.cluster.delete("Pod", found[0], found[1])
        return f"delete pod {found}"

    def deployment(self) -> str:
        existing = self._some("Deployment")
        if existing is not None and self.rng.random() < 0.6:
            ns, name = existing
            obj = self.cluster.store.get("Deployment", ns, name)
            replicas = self.rng.randint(0, 8)
            body = {k: obj[k] for k in ("apiVersion", "kind", "spec")}
            body["metadata"] = {"name": name, "namespace": ns}
            body["spec"] = {**obj["spec"], "replicas": replicas}
            self.cluster.apply_objects([body])
            return f"scale deployment {ns}/{name} to {replicas}"
        ns = self.rng.choice(self._namespaces())
        name = self._name("deploy")
        labels = self._labels()
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": self.rng.randint(1, 6),
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}},
            },
        }
        self.cluster.apply_objects([body], namespace=ns)
        return f"deployment {ns}/{name}"

    def delete_deployment(self) -> str:
        found = self._some("Deployment")
        if found is None:
            return "nothing"
        self.cluster.delete("Deployment", *found)
        return f"delete deployment {found}"

    def service(self) -> str:
        ns = self.rng.choice(self._namespaces())
        name = self._name("svc")
        kind = self.rng.choice(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"])
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"type": kind, "selector": {"app": self.rng.choice(["web", "db", "cache"])}, "ports": [{"port": 80, "targetPort": 80}]},
        }
        self.cluster.apply_objects([body], namespace=ns)
        return f"service {ns}/{name} {kind}"

    def delete_service(self) -> str:
        found = self._some("Service")
        if found is None or found == ("default", "kubernetes"):
            return "nothing"
        self.cluster.delete("Service", *found)
        return f"delete service {found}"

    def ingress(self) -> str:
        services = [s for s in self.cluster.store.list("Service") if s["metadata"]["name"].startswith("svc-")]
        if not services:
            return self.service()
        svc = self.rng.choice(sorted(services, key=lambda s: s["metadata"]["name"]))
        ns = svc["metadata"]["namespace"]
        name = self._name("ing")
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"defaultBackend": {"service": {"name": svc["metadata"]["name"], "port": {"number": 80}}}},
        }
        self.cluster.apply_objects([body], namespace=ns)
        return f"ingress {ns}/{name}"

    def delete_ingress(self) -> str:
        found = self._some("Ingress")
        if found is None:
            return "nothing"
        self.cluster.delete("Ingress", *found)
        return f"delete ingress {found}"

    def policy(self) -> str:
        ns = self.rng.choice(self._namespaces())
        name = self._name("np")
        peer: dict[str, Any] = self.rng.choice(
            [
                {"podSelector": {"matchLabels": {"app": "web"}}},
                {"namespaceSelector": {"matchLabels": {"team": "x"}}},
                {"ipBlock": {"cidr": "10.32.0.0/12", "except": ["10.47.255.0/24"]}},
            ]
        )
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name},
            "spec": {
                "podSelector": self.rng.choice([{}, {"matchLabels": {"app": "db"}}]),
                "policyTypes": self.rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
                "ingress": [{"from": [peer], "ports": [{"port": 80}]}],
                "egress": [{"to": [peer]}],
            },
        }
        self.cluster.apply_objects([body], namespace=ns)
        return f"policy {ns}/{name}"

    def delete_policy(self) -> str:
        found = self._some("NetworkPolicy")
        if found is None:
            return "nothing"
        self.cluster.delete("NetworkPolicy", *found)
        return f"delete policy {found}"

    def traffic(self) -> str:
        """A few connections between random pods and to a random service (conservation is
        checked inside every fabric run)."""
        pods = [p for p in self.cluster.store.list("Pod") if (p.get("status") or {}).get("podIP")]
        if len(pods) < 2:
            return "no traffic"
        a, b = self.rng.sample(sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])), 2)
        src = f"{a['metadata']['namespace']}/{a['metadata']['name']}"
        run_conversation(self.sim, src, f"{b['metadata']['namespace']}/{b['metadata']['name']}", "tcp", 80, 3)
        services = [s for s in self.cluster.store.list("Service") if s["metadata"]["name"].startswith("svc-")]
        if services:
            s = self.rng.choice(sorted(services, key=lambda s: s["metadata"]["name"]))
            run_conversation(self.sim, src, f"service/{s['metadata']['namespace']}/{s['metadata']['name']}", "tcp", 80, 4)
        return f"traffic from {src}"

    OPS = (
        ("new_namespace", 4),
        ("relabel_namespace", 2),
        ("delete_namespace", 2),
        ("new_pod", 10),
        ("delete_pod", 6),
        ("deployment", 8),
        ("delete_deployment", 3),
        ("service", 5),
        ("delete_service", 3),
        ("ingress", 2),
        ("delete_ingress", 1),
        ("policy", 4),
        ("delete_policy", 3),
    )

    def step(self) -> str:
        names, weights = zip(*self.OPS, strict=True)
        op = self.rng.choices(names, weights)[0]
        return getattr(self, op)()


def setup_blue(churn: Churn) -> None:
    churn.cluster.apply_objects(
        [{"apiVersion": "vrsim.tf/v1", "kind": "VirtualNetwork", "metadata": {"name": "blue", "project": "k8s-default"}, "spec": {"subnet": "10.10.0.0/24"}}]
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_churn_matches_a_model_rebuilt_from_scratch(seed: int) -> None:
    churn = Churn(seed)
    setup_blue(churn)
    baseline = canonical(churn.cluster.db)
    history: list[str] = []
    changes: Counter[str] = Counter()
    churn.cluster.store.subscribe(lambda event: changes.update([event.type]))
    for i in range(STEPS):
        try:
            history.append(churn.step())
        except InputError as exc:  # e.g. a NodePort clash the walk walked into
            history.append(f"refused: {exc}")
        fresh = assert_same_model(churn.cluster, f"step {i}: {history[-1]}")
        if i % 25 == 0:
            history.append(churn.traffic())
            assert_same_agents(churn.sim, fresh, f"step {i}: {history[-1]}")
    # about a thousand objects (pods of deployments, ReplicaSets, Endpoints… included)
    # created and deleted per seed; thousands over the seeds
    assert changes["ADDED"] + changes["DELETED"] > 900 and changes["DELETED"] > 400, changes
    kinds = Counter(h.split()[0] for h in history)
    assert kinds["delete"] > 50 and kinds["scale"] > 10 and kinds["pod"] > 50

    # tear everything down: only the defaults (and the blue VN) remain, nothing held
    for name in [n for n in churn._namespaces() if n.startswith("ns-")]:
        churn.cluster.delete("Namespace", None, name)
    for kind in ("Deployment", "Ingress", "Service", "NetworkPolicy", "Pod"):
        for obj in churn.cluster.store.list(kind, "default"):
            if (kind, obj["metadata"]["name"]) != ("Service", "kubernetes") and churn.cluster.store.get(kind, "default", obj["metadata"]["name"]):
                churn.cluster.delete(kind, "default", obj["metadata"]["name"])
    assert canonical(churn.cluster.db) == baseline
    fresh = assert_same_model(churn.cluster, "teardown")
    assert_same_agents(churn.sim, fresh, "teardown")
    fabric = churn.sim.fabric
    fabric.advance(3600)
    for name, runtime in zip(fabric.names, fabric.runtimes, strict=True):
        assert int((runtime.flows.entries["action"] != 0).sum()) == 0, f"{name} keeps flows after ageing"
