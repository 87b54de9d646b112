"""Workload controllers: Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs
and ReplicationControllers expanded into pods, named the way Kubernetes names them.

- Deployment ``web`` → ReplicaSet ``web-<pod-template-hash>`` → pods ``web-<hash>-<5 chars>``.
  The hash is FNV-32a of the pod template, encoded with Kubernetes' "safe" alphabet (so it
  looks like ``7d77fb55cc``); the 5-character suffix comes from a generator seeded with the
  scenario seed and the owner, so names are the same on every run.
- StatefulSet ``db`` → ``db-0``, ``db-1``, … (scale-down removes the highest ordinals).
- DaemonSet → one pod per node its template's ``nodeSelector`` admits, bound to that node.
- Job → ``parallelism`` pods (default 1); CronJob → one Job ``<name>-<n>`` and its pods.
- A pod deleted while its owner still wants it is replaced, as the real controllers do.

Only the end state of a rollout is modelled: a changed template replaces the old ReplicaSet.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from controlplane.config import ClusterConfig, NodeConfig
from controlplane.k8s.selectors import matches_map
from controlplane.k8s.store import Obj, ObjectStore, WatchEvent

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_API_VERSIONS = {
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "ReplicationController": "v1",
}


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bits (what Kubernetes hashes pod templates with)."""
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Kubernetes' SafeEncodeString: each character mapped into a vowel-free alphabet
    (``bcdfghjklmnpqrstvwxz2456789``, by its code point modulo 27: "1" is 49 → "5", "7" is
    55 → "c", "8" is 56 → "d").

    >>> safe_encode("1317571478")
    '575c9c58cd'
    """
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def template_hash(template: dict[str, Any]) -> str:
    """The ``pod-template-hash`` of a Deployment's template."""
    return safe_encode(str(fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())))


def owner_reference(owner: Obj) -> dict[str, Any]:
    return {
        "apiVersion": _API_VERSIONS.get(owner["kind"], "v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true`` (or the only one)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return ref
    return refs[0] if len(refs) == 1 else None


#: the workload kinds an endpoint may name, as ``kind/namespace/name`` (kubectl's singular)
WORKLOAD_KINDS = {k.lower(): k for k in _API_VERSIONS}


def owner_chain(store: ObjectStore, pod: Obj) -> list[tuple[str, str]]:
    """(kind, name) of each controller above a pod, nearest first.

    An owner that is not an object in the store (an exported pod whose ReplicaSet was not
    exported) ends the chain with the reference's own kind and name.
    """
    namespace = pod["metadata"].get("namespace") or "default"
    chain: list[tuple[str, str]] = []
    current: Obj = pod
    while (ref := controller_of(current)) is not None and (str(ref.get("kind")), str(ref.get("name"))) not in chain:
        chain.append((str(ref.get("kind")), str(ref.get("name"))))
        owner = store.get(chain[-1][0], namespace, chain[-1][1])
        if owner is None:
            break
        current = owner
    return chain


def workload_of(store: ObjectStore, pod: Obj) -> tuple[str, str]:
    """(name, kind) of the workload a pod belongs to: the top of its chain of controllers
    (a bare pod is itself). A pod a Node owns (a static pod: etcd, kube-apiserver) is its
    own workload, as netpol-analyzer names it — the node is no workload."""
    chain = owner_chain(store, pod)
    if chain and chain[0][0] == "Node":
        chain = []
    kind, name = chain[-1] if chain else ("Pod", pod["metadata"]["name"])
    return name, kind


def pods_of(store: ObjectStore, kind: str, namespace: str, name: str) -> list[Obj]:
    """The pods a workload controls, directly or through its ReplicaSets or Jobs, by name."""
    pods = [p for p in store.list("Pod", namespace) if (kind, name) in owner_chain(store, p)]
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def owned_by(store: ObjectStore, kind: str, namespace: str, owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    out = []
    for obj in store.list(kind, namespace):
        ref = controller_of(obj)
        if ref is not None and ref.get("uid") == uid:
            out.append(obj)
    return out


def node_admits(node: NodeConfig, pod_spec: dict[str, Any]) -> bool:
    """Does ``nodeSelector`` admit this node? (affinity and taints are not modelled)."""
    selector = pod_spec.get("nodeSelector")
    if not selector:
        return True
    return matches_map(selector, node_labels(node))


def node_labels(node: NodeConfig) -> dict[str, str]:
    return {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", **node.labels}


class WorkloadController:
    """Keeps the pods (and ReplicaSets, Jobs) of every workload object at their desired state."""

    def __init__(self, store: ObjectStore, config: ClusterConfig, seed: int) -> None:
        self.store = store
        self.config = config
        self.seed = seed
        self._serial: dict[str, int] = {}
        self._handlers: dict[str, Callable[[Obj], None]] = {
            "Deployment": self._sync_deployment,
            "ReplicaSet": self._sync_replicas,
            "ReplicationController": self._sync_replicas,
            "StatefulSet": self._sync_statefulset,
            "DaemonSet": self._sync_daemonset,
            "Job": self._sync_job,
            "CronJob": self._sync_cronjob,
        }
        store.subscribe(self.on_event)

    # --- events --------------------------------------------------------------------
    def on_event(self, event: WatchEvent) -> None:
        if event.kind in self._handlers:
            current = self.store.get(event.kind, event.namespace, event.name)
            if event.type == "DELETED" or current is None:
                self._delete_children(event.obj)
            else:
                self._handlers[event.kind](current)
        elif event.kind == "Pod" and event.type == "DELETED":
            ref = controller_of(event.obj)
            if ref is not None and ref.get("kind") in self._handlers:
                owner = self.store.get(ref["kind"], event.namespace, ref["name"])
                if owner is not None and owner["metadata"]["uid"] == ref.get("uid"):
                    self._handlers[ref["kind"]](owner)

    def _delete_children(self, owner: Obj) -> None:
        namespace = owner["metadata"].get("namespace") or ""
        for kind in ("ReplicaSet", "Job", "Pod"):
            for child in owned_by(self.store, kind, namespace, owner):
                self.store.delete(kind, namespace, child["metadata"]["name"])

    # --- naming ----------------------------------------------------------------------
    def _suffix(self, owner: Obj) -> str:
        key = f"{owner['kind']}/{owner['metadata'].get('namespace')}/{owner['metadata']['name']}"
        serial = self._serial.get(key, 0)
        self._serial[key] = serial + 1
        rng = random.Random(f"{self.seed}/{key}/{serial}")
        return "".join(rng.choice(SAFE_ALPHABET) for _ in range(5))

    def _new_pod(self, owner: Obj, template: dict[str, Any], name: str, extra_labels: dict[str, str] | None = None) -> Obj:
        namespace = owner["metadata"].get("namespace") or "default"
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), **(extra_labels or {})}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [owner_reference(owner)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        return pod

    def _create_pods(self, owner: Obj, template: dict[str, Any], count: int, prefix: str, extra: dict[str, str]) -> None:
        namespace = owner["metadata"].get("namespace") or "default"
        for _ in range(count):
            while True:
                name = f"{prefix}-{self._suffix(owner)}"
                if self.store.get("Pod", namespace, name) is None:
                    break
            self.store.put(self._new_pod(owner, template, name, extra))

    # --- controllers -----------------------------------------------------------------
    def _sync_deployment(self, deployment: Obj) -> None:
        spec = deployment.get("spec") or {}
        namespace = deployment["metadata"].get("namespace") or "default"
        template = spec.get("template") or {}
        digest = template_hash(template)
        rs_name = f"{deployment['metadata']['name']}-{digest}"
        for rs in owned_by(self.store, "ReplicaSet", namespace, deployment):
            if rs["metadata"]["name"] != rs_name:
                self.store.delete("ReplicaSet", namespace, rs["metadata"]["name"])
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
        replica_set: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": namespace,
                "labels": {**(template.get("metadata") or {}).get("labels", {}), "pod-template-hash": digest},
                "ownerReferences": [owner_reference(deployment)],
            },
            "spec": {"replicas": spec.get("replicas", 1), "selector": selector, "template": rs_template},
        }
        self.store.put(replica_set)

    def _sync_replicas(self, owner: Obj) -> None:
        spec = owner.get("spec") or {}
        namespace = owner["metadata"].get("namespace") or "default"
        want = spec.get("replicas", 1)
        pods = owned_by(self.store, "Pod", namespace, owner)
        if len(pods) < want:
            self._create_pods(owner, spec.get("template") or {}, want - len(pods), owner["metadata"]["name"], {})
        for pod in pods[want:][::-1]:
            self.store.delete("Pod", namespace, pod["metadata"]["name"])

    def _sync_statefulset(self, sts: Obj) -> None:
        spec = sts.get("spec") or {}
        namespace = sts["metadata"].get("namespace") or "default"
        name = sts["metadata"]["name"]
        want = spec.get("replicas", 1)
        existing = {p["metadata"]["name"] for p in owned_by(self.store, "Pod", namespace, sts)}
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            if pod_name not in existing and self.store.get("Pod", namespace, pod_name) is None:
                labels = {"statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": str(ordinal)}
                pod = self._new_pod(sts, spec.get("template") or {}, pod_name, labels)
                if spec.get("serviceName"):
                    pod["spec"].setdefault("hostname", pod_name)
                    pod["spec"].setdefault("subdomain", spec["serviceName"])
                self.store.put(pod)
        for pod_name in sorted(existing, key=lambda n: int(n.rsplit("-", 1)[1]) if n.rsplit("-", 1)[1].isdigit() else 0):
            ordinal = pod_name.rsplit("-", 1)[1]
            if ordinal.isdigit() and int(ordinal) >= want:
                self.store.delete("Pod", namespace, pod_name)

    def _sync_daemonset(self, ds: Obj) -> None:
        spec = ds.get("spec") or {}
        namespace = ds["metadata"].get("namespace") or "default"
        template = spec.get("template") or {}
        by_node = {p["spec"].get("nodeName"): p for p in owned_by(self.store, "Pod", namespace, ds)}
        wanted = [n for n in self.config.nodes if node_admits(n, template.get("spec") or {})]
        for node in wanted:
            if node.name not in by_node:
                name = f"{ds['metadata']['name']}-{self._suffix(ds)}"
                pod = self._new_pod(ds, template, name, {})
                pod["spec"]["nodeName"] = node.name
                self.store.put(pod)
        wanted_names = {n.name for n in wanted}
        for node_name, pod in by_node.items():
            if node_name not in wanted_names:
                self.store.delete("Pod", namespace, pod["metadata"]["name"])

    def _sync_job(self, job: Obj) -> None:
        spec = job.get("spec") or {}
        namespace = job["metadata"].get("namespace") or "default"
        want = spec.get("parallelism", 1)
        completions = spec.get("completions")
        if completions is not None:
            want = min(want, completions)
        pods = owned_by(self.store, "Pod", namespace, job)
        if len(pods) < want:
            extra = {"job-name": job["metadata"]["name"]}
            self._create_pods(job, spec.get("template") or {}, want - len(pods), job["metadata"]["name"], extra)
        for pod in pods[want:][::-1]:
            self.store.delete("Pod", namespace, pod["metadata"]["name"])

    def _sync_cronjob(self, cronjob: Obj) -> None:
        spec = cronjob.get("spec") or {}
        namespace = cronjob["metadata"].get("namespace") or "default"
        job_template = spec.get("jobTemplate") or {}
        # Kubernetes names a scheduled Job after its time in minutes; a fixed instant keeps runs equal.
        scheduled = 29_000_000 + random.Random(f"{self.seed}/{namespace}/{cronjob['metadata']['name']}").randrange(100_000)
        name = f"{cronjob['metadata']['name']}-{scheduled}"
        for job in owned_by(self.store, "Job", namespace, cronjob):
            if job["metadata"]["name"] != name:
                self.store.delete("Job", namespace, job["metadata"]["name"])
        job: Obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict((job_template.get("metadata") or {}).get("labels") or {}),
                "ownerReferences": [owner_reference(cronjob)],
            },
            "spec": copy.deepcopy(job_template.get("spec") or {}),
        }
        self.store.put(job)
