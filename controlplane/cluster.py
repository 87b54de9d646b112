"""A whole simulated cluster's control plane: the Kubernetes side and the TF side, wired.

>>> cluster = Cluster()
>>> cluster.apply_objects([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busybox"},
...                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}])
[]
>>> cluster.store.get("Pod", "default", "busybox")["status"]["podIP"]
'10.47.255.252'

``apply`` is ``kubectl apply``: every object is validated before anything changes, so a bad
file changes nothing; then each object is admitted (ClusterIPs and NodePorts allocated) and
stored, and the controllers and kube-manager react. ``delete`` is ``kubectl delete``.

``delete Node NAME`` takes a compute node out of the cluster, as when a node is drained
and deleted: its pods go (the pod garbage collector deletes pods bound to a node that no
longer exists), their owners recreate them on the nodes that remain, and the node's vRouter
leaves the fabric. The last node may not be removed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from controlplane.progress import task
from controlplane.tf_reading import applies
from controlplane.config import ClusterConfig, NodeConfig
from controlplane.errors import InputError, parse_path
from controlplane.k8s.endpoints import EndpointsController
from controlplane.k8s.leniency import forgive
from controlplane.k8s.manifests import Manifest, Source, expand_object, load_paths
from controlplane.k8s.scheduler import Scheduler
from controlplane.k8s.service_ips import ServiceAllocator
from controlplane.k8s.store import Obj, ObjectStore
from controlplane.k8s.validation import CLUSTER_SCOPED, TF_API_VERSION, is_supported, validate
from controlplane.k8s.workloads import WorkloadController
from controlplane.kube_manager import KubeManager
from controlplane.tf.declared import TF_KINDS, store_kind
from controlplane.tf.model import ConfigDB

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
#: cluster-scoped kinds among those the simulation ignores (they take no namespace)
CLUSTER_SCOPED_IGNORED = {
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass",
    "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "APIService", "RuntimeClass", "CSIDriver", "PodSecurityPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy",
}

#: what `kubectl delete`/`get` accept for each kind (singular, plural, short names)
KIND_ALIASES: dict[str, str] = {}
for _kind, _aliases in {
    "Namespace": ("namespace", "namespaces", "ns"),
    "Pod": ("pod", "pods", "po"),
    "Service": ("service", "services", "svc"),
    "Endpoints": ("endpoints", "ep"),
    "EndpointSlice": ("endpointslice", "endpointslices"),
    "Deployment": ("deployment", "deployments", "deploy"),
    "ReplicaSet": ("replicaset", "replicasets", "rs"),
    "StatefulSet": ("statefulset", "statefulsets", "sts"),
    "DaemonSet": ("daemonset", "daemonsets", "ds"),
    "Job": ("job", "jobs"),
    "CronJob": ("cronjob", "cronjobs", "cj"),
    "ReplicationController": ("replicationcontroller", "replicationcontrollers", "rc"),
    "Ingress": ("ingress", "ingresses", "ing"),
    "NetworkPolicy": ("networkpolicy", "networkpolicies", "netpol"),
    "Node": ("node", "nodes", "no"),
}.items():
    for _alias in (_kind.lower(), *_aliases):
        KIND_ALIASES[_alias] = _kind


def canonical_kind(kind: str) -> str:
    """``svc`` → ``Service``; TF kinds (``VirtualNetwork.vrsim.tf``) pass through."""
    if kind in KIND_ALIASES.values() or kind.endswith(".vrsim.tf"):
        return kind
    if kind in TF_KINDS:
        return store_kind(kind)
    found = KIND_ALIASES.get(kind.lower())
    if found is None:
        raise InputError(f"unknown kind {kind!r}")
    return found


def _namespace_needed(obj: Obj) -> str | None:
    """The namespace an object lives in and needs to exist (None: a Namespace itself, a
    cluster-scoped object, or vrsim's own TF objects)."""
    namespace = obj["metadata"].get("namespace")
    if obj["kind"] == "Namespace" or not namespace or obj["kind"].endswith(".vrsim.tf"):
        return None
    return namespace


class Cluster:
    def __init__(self, config: ClusterConfig | None = None, seed: int = 0) -> None:
        self.config = config or ClusterConfig()
        self.seed = seed
        self.store = ObjectStore()
        self.db = ConfigDB()
        self.allocator = ServiceAllocator(self.config.serviceSubnet, self.config.nodePortRange, seed)
        self.workloads = WorkloadController(self.store, self.config, seed)
        self.scheduler = Scheduler(self.store, self.config)
        self.endpoints = EndpointsController(self.store)
        self.kube_manager = KubeManager(self.store, self.db, self.config)
        self.notes: list[str] = []
        #: objects of kinds nothing simulates (ServiceAccount, ConfigMap, CRDs): listed, never acted on
        self.ignored: dict[tuple[str, str, str], Obj] = {}
        for name in SYSTEM_NAMESPACES:
            self.store.put(namespace_object(name))
        for node in self.config.nodes:
            self.store.put(node_object(node))

    # --- apply -------------------------------------------------------------------------
    def apply_paths(self, paths: Iterable[str], namespace: str | None = None) -> list[str]:
        """``kubectl apply -f PATH… [-n NS]``; returns the notes (ignored kinds, created namespaces)."""
        return self.apply(load_paths(paths), namespace)

    def apply_objects(self, objects: Sequence[Obj], namespace: str | None = None, file: str = "<inline>") -> list[str]:
        manifests: list[Manifest] = []
        for i, obj in enumerate(objects):
            manifests.extend(expand_object(copy.deepcopy(obj), Source(file, prefix=(i,))))
        return self.apply(manifests, namespace)

    def apply(self, manifests: Sequence[Manifest], namespace: str | None = None, strict_namespaces: bool = True) -> list[str]:
        """``kubectl apply``: every object validated, then stored; returns the notes. With
        ``strict_namespaces`` an object in a namespace that does not exist (and does not come in
        the same apply) is an error, as kubectl's NotFound; without, it is made, with a note."""
        notes: list[str] = []
        ready: list[tuple[Manifest, Obj]] = []
        seen: dict[tuple[str, str, str], Manifest] = {}
        for manifest in manifests:
            if not is_supported(manifest):
                meta = manifest.obj.get("metadata")
                name = meta.get("name", "(unnamed)") if isinstance(meta, dict) else "(unnamed)"
                if manifest.kind in ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy"):
                    why = "not realised by Tungsten Fabric, which has no code for it; it counts in the intent view: vrsim connlist --intent"
                else:
                    why = "not a kind the network simulation uses"
                notes.append(f"{_where(manifest)}: {manifest.kind} {name} ignored ({why})")
                if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                    # kept as written, for `vrsim get serviceaccounts` and the like
                    kept = copy.deepcopy(manifest.obj)
                    if manifest.kind not in CLUSTER_SCOPED_IGNORED:
                        kept["metadata"]["namespace"] = meta.get("namespace") or namespace or "default"
                    self.ignored[(manifest.kind, kept["metadata"].get("namespace") or "", meta["name"])] = kept
                continue
            validate(manifest, applies(self.config, 16))
            obj = self._prepare(manifest, namespace, seen)
            key = (obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
            first = seen.get(key)
            if first is not None:
                # kubectl would apply both and keep the last silently; one of them is a mistake
                shown = f"{key[1]}/{key[2]}" if key[1] else key[2]
                first_at = _where(first, ("metadata", "name"))
                raise manifest.error(f"{manifest.kind} {shown} appears twice in one apply; first at {first_at}", ("metadata", "name"))
            seen[key] = manifest
            ready.append((manifest, obj))
        if strict_namespaces:
            self._namespaces_exist(ready)
        self._trial_admission(ready)
        with task(f"applying {len(ready)} object{'' if len(ready) == 1 else 's'}", total=len(ready)) as advance:
            for manifest, obj in ready:
                notes.extend(self._ensure_namespace(obj))
                self._put(manifest, obj)
                advance()
        self.notes.extend(notes)
        return notes

    def _prepare(self, manifest: Manifest, namespace: str | None, batch: dict[tuple[str, str, str], Manifest]) -> Obj:
        obj = without_nulls(manifest.obj)
        # status is the server's to write and is ignored on create (it is not validated either):
        # an exported object's status must not stand in for what the simulated cluster decides
        obj.pop("status", None)
        meta = obj.setdefault("metadata", {})
        if obj.get("apiVersion") == TF_API_VERSION:
            obj["kind"] = store_kind(manifest.kind)
            meta["namespace"] = meta.get("project") or self.kube_manager.ctx.names.infra_project[1]
            return obj
        if manifest.kind in CLUSTER_SCOPED:
            meta.pop("namespace", None)
            return obj
        given = meta.get("namespace") or None
        if namespace and given and given != namespace:
            raise manifest.error(
                f"the object's namespace {given!r} does not match the namespace {namespace!r} it is applied to",
                ("metadata", "namespace"),
            )
        meta["namespace"] = given or namespace or "default"
        if not meta.get("name") and meta.get("generateName"):
            # free in the store and in this apply, so two generateName objects never collide
            serial = len(self.store.list(manifest.kind)) + 1
            while True:
                name = f"{meta['generateName']}{serial:05d}"
                if self.store.get(manifest.kind, meta["namespace"], name) is None and (manifest.kind, meta["namespace"], name) not in batch:
                    break
                serial += 1
            meta["name"] = name
        return obj

    def _trial_admission(self, ready: list[tuple[Manifest, Obj]]) -> None:
        """Admit every Service on a copy of the allocator first: all or nothing."""
        trial = copy.deepcopy(self.allocator)
        for manifest, obj in ready:
            if obj["kind"] == "Service":
                old = self.store.get("Service", obj["metadata"]["namespace"], obj["metadata"]["name"])
                try:
                    trial.admit(copy.deepcopy(obj), old)
                except InputError as exc:
                    loc = parse_path(exc.path) if exc.path else ("spec",)
                    raise exc.located(file=manifest.source.file, line=manifest.source.line_of(loc)) from None

    def _namespaces_exist(self, ready: Sequence[tuple[Manifest, Obj]]) -> None:
        """Every namespaced object's namespace exists, or comes in the same apply — kubectl
        answers NotFound otherwise. Leniently (--lenient) the namespace is made, with a note."""
        coming = {obj["metadata"]["name"] for _, obj in ready if obj["kind"] == "Namespace"}
        for manifest, obj in ready:
            namespace = _namespace_needed(obj)
            if namespace is None or namespace in coming:
                continue
            if self.store.get("Namespace", "", namespace) is None:
                error = manifest.error(f"namespace {namespace!r} not found: apply a Namespace of that name first (kubectl answers NotFound)", ("metadata", "namespace"))
                if not forgive(error, "the namespace is created"):
                    raise error
                coming.add(namespace)

    def _ensure_namespace(self, obj: Obj) -> list[str]:
        namespace = _namespace_needed(obj)
        if namespace is None:
            return []
        if self.store.get("Namespace", "", namespace) is not None:
            return []
        self.store.put(namespace_object(namespace))
        return [f"namespace {namespace} did not exist; created it (kubectl would refuse)"]

    def _put(self, manifest: Manifest, obj: Obj) -> None:
        if obj["kind"] == "Namespace":
            labels = obj["metadata"]["labels"] = obj["metadata"].get("labels") or {}  # `labels:` may be null
            labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])
        if obj["kind"] == "Service":
            old = self.store.get("Service", obj["metadata"]["namespace"], obj["metadata"]["name"])
            self.allocator.admit(obj, old)
            if old is not None:
                kept = (old.get("spec") or {}).get("externalIPs") or []
                lb_ips = [i.get("ip") for i in ((old.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
                extra = [ip for ip in kept if ip in lb_ips and ip not in (obj["spec"].get("externalIPs") or [])]
                if extra and obj["spec"].get("type") == "LoadBalancer":
                    obj["spec"]["externalIPs"] = [*(obj["spec"].get("externalIPs") or []), *extra]
        self.store.put(obj)

    # --- delete ------------------------------------------------------------------------
    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """``kubectl delete KIND NAME [-n NS]``; an unknown object is an error, as in kubectl.

        Errors name the argument at fault (``kind`` or ``name``), so a scenario's delete step
        can point at its field.
        """
        try:
            kind = canonical_kind(kind)
        except InputError as exc:
            raise exc.located(path="kind") from None
        try:
            self._delete(kind, namespace, name)
        except InputError as exc:
            raise exc.located(path="name") from None

    def _delete(self, kind: str, namespace: str | None, name: str) -> None:
        if kind == "Namespace":
            self._delete_namespace(name)
            return
        if kind == "Node":
            self._delete_node(name)
            return
        if kind.endswith(".vrsim.tf"):
            ns = namespace or self.kube_manager.ctx.names.infra_project[1]
        else:
            ns = namespace or "default"
        obj = self.store.get(kind, ns, name)
        if obj is None:
            where = f" in namespace {ns!r}" if not kind.endswith(".vrsim.tf") else f" in project {ns!r}"
            raise InputError(f"{kind} {name!r} not found{where}")
        if kind.endswith(".vrsim.tf"):
            self.kube_manager.declared.check_delete(kind.split(".", 1)[0], obj)
        self._delete_object(kind, ns, name)

    def _delete_object(self, kind: str, namespace: str, name: str) -> None:
        obj = self.store.get(kind, namespace, name)
        if obj is None:
            return
        if kind == "Service":
            self.allocator.forget(obj)
        self.store.delete(kind, namespace, name)

    def _delete_node(self, name: str) -> None:
        nodes = [n for n in self.config.nodes if n.name != name]
        if len(nodes) == len(self.config.nodes):
            raise InputError(f"node {name!r} not found; nodes: {', '.join(n.name for n in self.config.nodes)}")
        if not nodes:
            raise InputError(f"node {name!r} is the cluster's last node and may not be removed")
        self.config = self.config.model_copy(update={"nodes": nodes})
        for holder in (self.scheduler, self.workloads, self.kube_manager.ctx):
            holder.config = self.config
        self.store.delete("Node", "", name)
        for pod in self.store.list("Pod"):
            if (pod.get("spec") or {}).get("nodeName") == name:
                self._delete_object("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.kube_manager.remove_node(name)

    def _delete_namespace(self, name: str) -> None:
        if name in ("default", "kube-system", "kube-public"):
            raise InputError(f"namespace {name!r} may not be deleted (Kubernetes forbids it)")
        if self.store.get("Namespace", "", name) is None:
            raise InputError(f"namespace {name!r} not found")
        # Kubernetes empties a namespace before it goes: owners first, so nothing is recreated.
        order = (
            "CronJob",
            "Job",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Ingress",
            "Service",
            "Endpoints",
            "EndpointSlice",
            "NetworkPolicy",
            "Pod",
        )
        for kind in order:
            for obj in self.store.list(kind, name):
                self._delete_object(kind, name, obj["metadata"]["name"])
        self.store.delete("Namespace", "", name)


def without_nulls(value: Any) -> Any:
    """A copy without ``field: null``, which the API server stores as an absent field (so
    ``replicas: null`` is 1 replica) — no controller then meets a None where it expects a value."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _where(manifest: Manifest, loc: Sequence[str | int] = ()) -> str:
    """``file:line`` of a manifest or a field in it (the file alone when the line is not known)."""
    line = manifest.source.line_of(loc)
    return f"{manifest.source.file}:{line}" if line else manifest.source.file


def node_object(node: NodeConfig) -> Obj:
    """The ``Node`` object of a configured node (what ``kubectl get node -o json`` shows)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name, **node.labels}},
        "status": {"addresses": [{"type": "InternalIP", "address": node.ip}, {"type": "Hostname", "address": node.name}]},
    }


def namespace_object(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
    }

