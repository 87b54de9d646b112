"""Endpoints named by workload: the pods behind ``deployment/ns/name`` and friends.

Pods of a Deployment have generated names that change with ``--seed``; a check that names
``default/frontend-75647bf54d-54jmv`` breaks under another seed. So a check may name:

- ``pod/ns/name`` — the pod (kubectl's ``pod/`` prefix);
- ``deployment/ns/name``, ``statefulset/…``, ``daemonset/…``, ``replicaset/…``, ``job/…``,
  ``cronjob/…``, ``replicationcontroller/…`` — every pod the workload controls (through its
  ReplicaSets or Jobs), by name;
- ``ns/name`` — the pod of that name, or else the workload of that name.

A name that matches nothing is an input error listing the closest pods and workloads.
"""

from __future__ import annotations

import difflib

from controlplane.errors import InputError
from controlplane.k8s.store import ObjectStore
from controlplane.k8s.workloads import WORKLOAD_KINDS, owner_chain, pods_of
from vrouter.lab.traffic import Unrealised, split_port

#: which kind a bare ``ns/name`` means when several workloads share the name: the top ones first
_PREFERENCE = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicationController", "ReplicaSet")
_OTHER_FORMS = ("service/", "ingress/", "node/", "fabric:")


def closest(store: ObjectStore, wanted: str) -> str:
    """``; closest: deployment/default/frontend, default/frontend-7d…`` — pods and workloads of
    the same namespace whose name is close to (or starts with) the wanted one; empty if none."""
    namespace, _, name = wanted.rpartition("/")
    spelled: dict[str, list[str]] = {}  # name → how each object of that name is written
    for kind in _PREFERENCE:
        for obj in store.list(kind, namespace):
            spelled.setdefault(obj["metadata"]["name"], []).append(f"{kind.lower()}/{namespace}/{obj['metadata']['name']}")
    for pod in store.list("Pod", namespace):
        spelled.setdefault(pod["metadata"]["name"], []).append(f"{namespace}/{pod['metadata']['name']}")
    hits = difflib.get_close_matches(name, list(spelled), n=3, cutoff=0.75)
    hits += sorted(n for n in spelled if n.startswith(name + "-"))[:3]  # generated names
    shown = list(dict.fromkeys(form for hit in hits for form in spelled[hit]))[:5]
    return f"; closest: {', '.join(shown)}" if shown else ""


def _exported_deployment(store: ObjectStore, namespace: str, name: str) -> list[dict]:
    """Pods of Deployment ``name`` whose ReplicaSet was not applied (pods exported from a
    live cluster): their owner is ReplicaSet ``<name>-<pod-template-hash>``."""
    found = []
    for pod in store.list("Pod", namespace):
        digest = ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-hash")
        if digest and ("ReplicaSet", f"{name}-{digest}") in owner_chain(store, pod):
            found.append(pod)
    return sorted(found, key=lambda p: p["metadata"]["name"])


def _workload(store: ObjectStore, kind: str, namespace: str, name: str, spelled: str) -> list[str]:
    pods = pods_of(store, kind, namespace, name)
    if not pods and kind == "Deployment":
        pods = _exported_deployment(store, namespace, name)
    if pods:
        return [f"{namespace}/{p['metadata']['name']}" for p in pods]
    if store.get(kind, namespace, name) is None:
        raise InputError(f"no {kind.lower()} {namespace}/{name}{closest(store, f'{namespace}/{name}')}")
    raise Unrealised(f"{spelled} has no pods (see vrsim get pods)", "NoPods")


def pods_named(store: ObjectStore, text: str) -> list[str] | None:
    """The pods (``ns/pod``, any ``:port`` kept) that ``text`` names; None: not a pod form."""
    name, port = split_port(text)
    suffix = f":{port}" if port is not None else ""
    if name.startswith(_OTHER_FORMS):
        return None
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "pod":
        return [f"{parts[1]}/{parts[2]}{suffix}"]
    if len(parts) == 3 and parts[0] in WORKLOAD_KINDS:
        return [p + suffix for p in _workload(store, WORKLOAD_KINDS[parts[0]], parts[1], parts[2], name)]
    if len(parts) == 3:
        known = ", ".join(["pod", *WORKLOAD_KINDS])
        raise InputError(f"unknown endpoint {text!r}: {parts[0]!r} is not a kind an endpoint can name ({known}, service, ingress)")
    if len(parts) != 2:
        return None
    namespace, pod = parts
    if store.get("Pod", namespace, pod) is not None:
        return [name + suffix]
    for kind in _PREFERENCE:
        # the workload object, or pods that name it as their owner (exported without it)
        if store.get(kind, namespace, pod) is not None or pods_of(store, kind, namespace, pod) or (kind == "Deployment" and _exported_deployment(store, namespace, pod)):
            return [p + suffix for p in _workload(store, kind, namespace, pod, f"{kind.lower()}/{namespace}/{pod}")]
    if store.get("Namespace", "", namespace) is None and not store.list("Pod", namespace):
        raise InputError(f"no namespace {namespace!r} (so no pod {name})")
    raise InputError(f"no pod or workload {name}{closest(store, name)}")
