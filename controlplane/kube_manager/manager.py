"""contrail-kube-manager: watches the Kubernetes store and keeps the TF database in step.

Handlers are level-based: on any event they read the object's *current* state from the
store and bring the TF objects to it, so a burst of events (scheduling, then the address
write-back, then Endpoints) converges to one result whatever the order.
"""

from __future__ import annotations

from controlplane.config import ClusterConfig, InlineFipPool
from controlplane.k8s.store import ObjectStore, WatchEvent
from controlplane.kube_manager.context import Context, NamespaceMode
from controlplane.kube_manager.declared import DeclaredHandler
from controlplane.kube_manager.ingresses import IngressHandler
from controlplane.kube_manager.network_policies import NetworkPolicyHandler
from controlplane.kube_manager.networks import NetworkHandler
from controlplane.kube_manager.pods import PodHandler
from controlplane.kube_manager.services import ServiceHandler
from controlplane.tf.declared import store_kind
from controlplane.tf.model import ConfigDB, FqName, VirtualRouter


class KubeManager:
    def __init__(self, store: ObjectStore, db: ConfigDB, config: ClusterConfig) -> None:
        self.ctx = Context(store, db, config)
        self.networks = NetworkHandler(self.ctx)
        self.policies = NetworkPolicyHandler(self.ctx)
        self.pods = PodHandler(self.ctx, self.policies.sg_refs_for)
        self.services = ServiceHandler(self.ctx, self.vmi_of_pod)
        self.ingresses = IngressHandler(self.ctx, self.services.public_pool_for)
        self.declared = DeclaredHandler(self.ctx, self.networks)
        self._modes: dict[str, NamespaceMode] = {}
        self.networks.create_defaults()
        if isinstance(config.publicFipPool, InlineFipPool):
            pool = config.publicFipPool
            self.declared.sync_pool(
                {
                    "kind": "FloatingIpPool",
                    "metadata": {"name": pool.name, "project": pool.project, "namespace": ""},
                    "spec": {"network": pool.network, "subnet": pool.subnet},
                }
            )
        store.subscribe(self.on_event)

    def vmi_of_pod(self, ref: str) -> FqName | None:
        namespace, _, name = ref.partition("/")
        record = self.pods.records.get((namespace, name))
        return record.vmi if record is not None else None

    def remove_node(self, name: str) -> None:
        """A compute node left the cluster: its virtual-router goes and the HAProxy
        instances of ingresses move to the nodes that remain (pods are evicted by the
        cluster, and their events bring the rest in step)."""
        self.ctx.delete_if_exists(VirtualRouter, self.ctx.names.virtual_router(name))
        self.ingresses.place_instances()

    # --- dispatch --------------------------------------------------------------------
    def on_event(self, event: WatchEvent) -> None:
        handler = {
            "Namespace": self._on_namespace,
            "Pod": self._on_pod,
            "Service": self._on_service,
            "Endpoints": self._on_endpoints,
            "EndpointSlice": self._on_endpoints,
            "Ingress": self._on_ingress,
            "NetworkPolicy": self._on_network_policy,
            store_kind("VirtualNetwork"): self._on_declared,
            store_kind("NetworkPolicy"): self._on_declared,
            store_kind("FloatingIpPool"): self._on_declared,
        }.get(event.kind)
        if handler is not None:
            handler(event)

    def _current(self, event: WatchEvent) -> dict | None:
        if event.type == "DELETED":
            return None
        return self.ctx.store.get(event.kind, event.namespace, event.name)

    def _on_namespace(self, event: WatchEvent) -> None:
        name = event.name
        current = self._current(event)
        if current is None:
            self._modes.pop(name, None)
            self.networks.remove_namespace(name)
            self.networks.sync_policy_refs()
            return
        self.networks.ensure_namespace(current)
        mode = self.ctx.namespace_mode(name)
        previous = self._modes.get(name)
        self._modes[name] = mode
        self.networks.sync_policy_refs()
        if previous is not None and previous != mode:
            self._resync_namespace(name)
        self.networks.prune_namespace(name)
        self.networks.sync_policy_refs()
        self.pods.refresh_refs(name)
        self.pods.retry_pending()

    def _resync_namespace(self, namespace: str) -> None:
        """A namespace changed its mode: move its pods, services and ingresses."""
        store = self.ctx.store
        for pod in store.list("Pod", namespace):
            self.pods.sync(pod)
        for service in store.list("Service", namespace):
            self.services.sync(service)
        for ingress in store.list("Ingress", namespace):
            self.ingresses.sync(ingress)

    def _on_pod(self, event: WatchEvent) -> None:
        current = self._current(event)
        if current is None:
            self.pods.on_deleted((event.namespace, event.name))
            self.pods.retry_pending()
            return
        had = (event.namespace, event.name) in self.pods.records
        self.pods.sync(current)
        if had != ((event.namespace, event.name) in self.pods.records):
            self.services.refresh_pod(f"{event.namespace}/{event.name}")

    def _on_service(self, event: WatchEvent) -> None:
        current = self._current(event)
        if current is None:
            self.services.remove((event.namespace, event.name))
            self.pods.retry_pending()
        else:
            self.services.sync(current)
        self.ingresses.sync_namespace(event.namespace)

    def _on_endpoints(self, event: WatchEvent) -> None:
        name = event.name
        if event.kind == "EndpointSlice":
            name = ((event.obj.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name", "")
        service = self.ctx.store.get("Service", event.namespace, name)
        if service is not None:
            self.services.sync(service)

    def _on_ingress(self, event: WatchEvent) -> None:
        current = self._current(event)
        if current is None:
            self.ingresses.remove((event.namespace, event.name))
            self.pods.retry_pending()
        else:
            self.ingresses.sync(current)

    def _on_network_policy(self, event: WatchEvent) -> None:
        current = self._current(event)
        if current is None:
            self.pods.refresh_refs(event.namespace)
            self.policies.remove(event.namespace, event.name)
        else:
            self.policies.sync(current)
            self.pods.refresh_refs(event.namespace)

    def _on_declared(self, event: WatchEvent) -> None:
        kind = event.kind.split(".", 1)[0]
        key = (event.namespace, event.name)
        current = self._current(event)
        sync = {"VirtualNetwork": self.declared.sync_vn, "NetworkPolicy": self.declared.sync_policy, "FloatingIpPool": self.declared.sync_pool}
        remove = {
            "VirtualNetwork": self.declared.remove_vn,
            "NetworkPolicy": self.declared.remove_policy,
            "FloatingIpPool": self.declared.remove_pool,
        }
        if current is None:
            remove[kind](key)
        else:
            sync[kind](current)
        if kind != "NetworkPolicy":
            self.pods.retry_pending()
            for service in self.ctx.store.list("Service"):
                spec = service.get("spec") or {}
                if spec.get("type") == "LoadBalancer" or spec.get("externalIPs"):
                    self.services.sync(service)
            for ingress in self.ctx.store.list("Ingress"):
                self.ingresses.sync(ingress)
