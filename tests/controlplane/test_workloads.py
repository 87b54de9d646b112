"""Workload expansion, scheduling and Endpoints, Kubernetes-style (issue: control plane)."""

from __future__ import annotations

import re

from k8s_objects import objects, pod, three_nodes

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig
from controlplane.k8s.workloads import fnv32a, safe_encode
from controlplane.tf.model import LoadbalancerMember

SAFE = "[bcdfghjklmnpqrstvwxz2456789]"


def template(labels: dict[str, str], **spec: object) -> dict:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def workload(kind: str, name: str, api: str = "apps/v1", **spec: object) -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def names(c: Cluster, ns: str = "default") -> list[str]:
    return sorted(p["metadata"]["name"] for p in c.store.list("Pod", ns))


def test_fnv_and_safe_encoding_match_kubernetes() -> None:
    # FNV-1a 32 of "a" is 0xe40c292c; SafeEncodeString maps digit characters into the alphabet.
    assert fnv32a(b"a") == 0xE40C292C
    assert safe_encode("0123456789") == "456789bcdf"


def test_deployment_expands_to_replicaset_and_pods(cluster: Cluster) -> None:
    cluster.apply_objects([workload("Deployment", "web", replicas=3, selector={"matchLabels": {"app": "web"}}, template=template({"app": "web"}))])
    (rs,) = cluster.store.list("ReplicaSet")
    assert re.fullmatch(r"web-[4-9bcdf]{6,10}", rs["metadata"]["name"])
    digest = rs["metadata"]["name"].split("-", 1)[1]
    pods = cluster.store.list("Pod")
    assert len(pods) == 3
    for p in pods:
        assert re.fullmatch(rf"web-{digest}-{SAFE}{{5}}", p["metadata"]["name"])
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": digest}
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    # the same scenario gives the same names (deterministic seed)
    again = Cluster()
    again.apply_objects([workload("Deployment", "web", replicas=3, selector={"matchLabels": {"app": "web"}}, template=template({"app": "web"}))])
    assert names(again) == names(cluster)


def test_deployment_template_change_replaces_the_replicaset(cluster: Cluster) -> None:
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template({"app": "web"})}
    cluster.apply_objects([workload("Deployment", "web", **spec)])
    old = names(cluster)
    spec["template"] = template({"app": "web", "v": "2"})
    cluster.apply_objects([workload("Deployment", "web", **spec)])
    assert len(cluster.store.list("ReplicaSet")) == 1
    assert len(names(cluster)) == 2 and not set(old) & set(names(cluster))


def test_scale_up_and_down(cluster: Cluster) -> None:
    spec = {"replicas": 4, "selector": {"matchLabels": {"app": "w"}}, "template": template({"app": "w"})}
    cluster.apply_objects([workload("Deployment", "w", **spec)])
    assert len(names(cluster)) == 4
    spec["replicas"] = 1
    cluster.apply_objects([workload("Deployment", "w", **spec)])
    assert len(names(cluster)) == 1
    cluster.delete("deployment", "default", "w")
    assert names(cluster) == [] and cluster.store.list("ReplicaSet") == []


def test_statefulset_ordinals(cluster: Cluster) -> None:
    spec = {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template({"app": "db"})}
    cluster.apply_objects([workload("StatefulSet", "db", **spec)])
    assert names(cluster) == ["db-0", "db-1", "db-2"]
    spec["replicas"] = 1
    cluster.apply_objects([workload("StatefulSet", "db", **spec)])
    assert names(cluster) == ["db-0"]


def test_daemonset_one_pod_per_admitted_node() -> None:
    config = three_nodes().model_copy(
        update={"nodes": [*three_nodes().nodes[:2], three_nodes().nodes[2].model_copy(update={"labels": {"edge": "yes"}})]}
    )
    c = Cluster(config)
    c.apply_objects([workload("DaemonSet", "agent", selector={"matchLabels": {"app": "a"}}, template=template({"app": "a"}))])
    assert sorted(p["spec"]["nodeName"] for p in c.store.list("Pod")) == ["worker01", "worker02", "worker03"]
    c.apply_objects(
        [workload("DaemonSet", "edge", selector={"matchLabels": {"app": "e"}}, template=template({"app": "e"}, nodeSelector={"edge": "yes"}))]
    )
    edge = [p for p in c.store.list("Pod") if p["metadata"]["name"].startswith("edge-")]
    assert [p["spec"]["nodeName"] for p in edge] == ["worker03"]


def test_job_cronjob_and_replication_controller(cluster: Cluster) -> None:
    cluster.apply_objects(
        [
            workload("Job", "batch", api="batch/v1", parallelism=2, template=template({"j": "1"}, restartPolicy="Never")),
            workload("CronJob", "nightly", api="batch/v1", schedule="0 0 * * *", jobTemplate={"spec": {"template": template({"c": "1"}, restartPolicy="OnFailure")}}),
            {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"}, "spec": {"replicas": 2, "selector": {"rc": "1"}, "template": template({"rc": "1"})}},
        ]
    )
    pods = names(cluster)
    assert len([n for n in pods if n.startswith("batch-")]) == 2
    (job,) = [j for j in cluster.store.list("Job") if j["metadata"]["name"].startswith("nightly-")]
    assert re.fullmatch(r"nightly-\d{8}", job["metadata"]["name"])
    assert len([n for n in pods if n.startswith(job["metadata"]["name"] + "-")]) == 1
    assert len([n for n in pods if n.startswith("old-")]) == 2


def test_scheduling_honours_node_name_and_selector() -> None:
    c = Cluster(three_nodes())
    c.apply_objects(
        [
            pod("pinned", nodeName="worker03"),
            pod("picky", nodeSelector={"kubernetes.io/hostname": "worker02"}),
            pod("impossible", nodeSelector={"disk": "ssd"}),
            pod("lost", nodeName="worker99"),
        ]
    )
    assert c.store.get("Pod", "default", "pinned")["spec"]["nodeName"] == "worker03"
    assert c.store.get("Pod", "default", "picky")["spec"]["nodeName"] == "worker02"
    assert "nodeName" not in c.store.get("Pod", "default", "impossible")["spec"]
    reasons = {(e.name, e.reason) for e in c.store.events}
    assert ("impossible", "FailedScheduling") in reasons and ("lost", "FailedScheduling") in reasons
    assert c.store.get("Pod", "default", "lost")["status"].get("podIP") is None


def test_endpoints_follow_readiness_and_named_ports(cluster: Cluster) -> None:
    cluster.apply_objects(
        objects(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: s}
            spec:
              selector: {app: s}
              ports:
              - {name: a, port: 80, targetPort: http}
              - {name: b, port: 53, protocol: UDP, targetPort: 5353}
            """
        )
    )
    assert cluster.store.get("Endpoints", "default", "s")["subsets"] == []
    with_name = pod("one", labels={"app": "s"})
    with_name["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}]
    cluster.apply_objects([with_name, pod("two", labels={"app": "s"}), pod("other", labels={"app": "x"})])
    ep = cluster.store.get("Endpoints", "default", "s")
    got = {(a["targetRef"]["name"], p["name"], p["port"]) for s in ep["subsets"] for a in s["addresses"] for p in s["ports"]}
    assert got == {("one", "a", 8080), ("one", "b", 5353), ("two", "b", 5353)}
    ip = cluster.store.get("Pod", "default", "one")["status"]["podIP"]
    assert ip in {a["ip"] for s in ep["subsets"] for a in s["addresses"]}


def test_selectorless_service_uses_user_endpoints(cluster: Cluster) -> None:
    cluster.apply_objects(
        objects(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: ext-db}
            spec: {ports: [{port: 5432}]}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: ext-db}
            subsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 5432}]}]
            """
        )
    )
    assert cluster.store.get("Endpoints", "default", "ext-db")["subsets"][0]["addresses"][0]["ip"] == "192.0.2.10"
    members = [m.address for m in cluster.db.list(LoadbalancerMember)]
    assert members == ["192.0.2.10"]
    assert [e for e in cluster.store.events if e.reason == "BackendWithoutInterface"]


def test_default_config_has_two_workers() -> None:
    assert [n.name for n in ClusterConfig().nodes] == ["worker01", "worker02"]


def test_a_deployment_behind_its_service_updates_the_endpoints_once_not_per_pod() -> None:
    """The endpoints controller works like a work queue: pod events coalesce per service."""
    cluster = Cluster()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    cluster.apply_objects([service])
    updates: list[int] = []

    def count(event) -> None:  # type: ignore[no-untyped-def]
        if event.kind == "Endpoints":
            updates.append(len(((event.obj.get("subsets") or [{}])[0]).get("addresses") or []))

    cluster.store.subscribe(count)
    replicas = 200
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080}]}]}},
        },
    }
    cluster.apply_objects([deployment])
    assert updates and updates[-1] == replicas
    assert len(updates) <= 3, f"{len(updates)} Endpoints updates for one apply"
    members = cluster.db.list(LoadbalancerMember)
    assert len(members) == replicas


def test_idle_work_runs_after_the_queued_events_once_per_key() -> None:
    cluster = Cluster()
    seen: list[str] = []

    def on_event(event) -> None:  # type: ignore[no-untyped-def]
        if event.kind == "ConfigMap":
            seen.append(f"event {event.name}")
            cluster.store.when_idle("sync", lambda: seen.append("sync"))

    cluster.store.subscribe(on_event)

    def burst(event) -> None:  # type: ignore[no-untyped-def]
        if event.kind == "ConfigMap" and event.name == "a":
            cluster.store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "default"}})

    cluster.store.subscribe(burst)
    cluster.store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})
    assert seen == ["event a", "event b", "sync"]
