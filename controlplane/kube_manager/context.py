"""What every kube-manager handler shares: the Kubernetes store, the TF database, the
configuration, the names, and small reads of a namespace's annotations."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from controlplane.config import ClusterConfig
from controlplane.tf_reading import applies
from controlplane.k8s.store import Obj, ObjectStore
from controlplane.kube_manager.naming import (
    ANNOTATION_FIP_POOL,
    ANNOTATION_ISOLATION,
    ANNOTATION_NETWORK,
    ANNOTATION_SERVICE_ISOLATION,
    Names,
)
from controlplane.tf.ipam import AddressPool
from controlplane.tf.model import (
    ConfigDB,
    FloatingIp,
    FloatingIpPool,
    FqName,
    RoutingInstance,
    TFObject,
    VirtualNetwork,
    address_pool,
)


def annotations_of(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def parse_network_ref(value: str, default_domain: str, literal: bool = False) -> FqName:
    """``{"domain", "project", "name"}`` (the network annotation) → a VN fq_name; ``literal``:
    read as a Python dict, as kube-manager does (the tf reading, behaviour 16)."""
    data = ast.literal_eval(value) if literal else json.loads(value)
    return (str(data.get("domain") or default_domain), str(data["project"]), str(data["name"]))


def parse_fip_pool_ref(value: str, default_domain: str, literal: bool = False) -> FqName:
    """``{"domain", "project", "network", "name"}`` (the fip-pool annotation) → a pool fq_name."""
    data = ast.literal_eval(value) if literal else json.loads(value)
    return (str(data.get("domain") or default_domain), str(data["project"]), str(data["network"]), str(data["name"]))


@dataclass(frozen=True)
class NamespaceMode:
    """How kube-manager treats a namespace, read from its annotations."""

    name: str
    isolated: bool
    services_open: bool  # isolation.service: "false" on an isolated namespace
    network: FqName | None
    fip_pool: FqName | None


class Context:
    def __init__(self, store: ObjectStore, db: ConfigDB, config: ClusterConfig) -> None:
        self.store = store
        self.db = db
        self.config = config
        self.names = Names(config)
        self._vn_ids: set[int] = set()

    def new_vn_id(self) -> int:
        """The lowest free virtual-network id (also the VXLAN VNI, as TF's automatic mode)."""
        value = 1
        while value in self._vn_ids:
            value += 1
        self._vn_ids.add(value)
        return value

    def create_vn(self, vn: VirtualNetwork) -> VirtualNetwork:
        """Create a VN with its ids and its routing instance."""
        vn.virtual_network_network_id = self.new_vn_id()
        vn.vxlan_network_identifier = vn.virtual_network_network_id
        self.db.create(vn)
        self.db.create(RoutingInstance(fq_name=vn.routing_instance))
        return vn

    def delete_vn(self, vn: VirtualNetwork) -> None:
        """Delete a VN, its routing instance and its floating-IP pools (which must be empty)."""
        for pool in self.db.referrers(vn, FloatingIpPool):
            self.db.delete(pool)
        self.delete_if_exists(RoutingInstance, vn.routing_instance)
        self.db.delete(vn)
        self._vn_ids.discard(vn.virtual_network_network_id)

    def namespace_mode(self, namespace: str) -> NamespaceMode:
        obj = self.store.get("Namespace", "", namespace)
        notes = annotations_of(obj)
        isolated = str(notes.get(ANNOTATION_ISOLATION, "")).lower() == "true"
        # the tf reading (behaviour 15): kube-manager never reads isolation.service
        services_open = isolated and str(notes.get(ANNOTATION_SERVICE_ISOLATION, "")).lower() == "false" and not applies(self.config, 15)
        network = parse_network_ref(notes[ANNOTATION_NETWORK], self.names.domain, applies(self.config, 16)) if ANNOTATION_NETWORK in notes else None
        pool = parse_fip_pool_ref(notes[ANNOTATION_FIP_POOL], self.names.domain, applies(self.config, 16)) if ANNOTATION_FIP_POOL in notes else None
        return NamespaceMode(namespace, isolated and namespace != "default", services_open and namespace != "default", network, pool)

    def pod_vn_of_namespace(self, namespace: str) -> FqName:
        """The VN a namespace's pods go on when neither pod nor namespace names one."""
        if self.namespace_mode(namespace).isolated:
            return self.names.ns_pod_vn(namespace)
        return self.names.default_pod_vn

    def service_vn_of_namespace(self, namespace: str) -> FqName:
        """The VN holding a namespace's service VIPs (a custom network does not change it)."""
        if self.namespace_mode(namespace).isolated:
            return self.names.ns_service_vn(namespace)
        return self.names.default_service_vn

    def pool_of(self, vn: VirtualNetwork) -> AddressPool:
        """The address pool a VN allocates from (:func:`~controlplane.tf.model.address_pool`)."""
        return address_pool(self.db, vn)

    def release_floating_ip(self, fip: FqName, vn: FqName, address: str) -> None:
        """Delete a floating IP and give its address back to the pool of the VN it came from."""
        self.delete_if_exists(FloatingIp, fip)
        network = self.db.get(VirtualNetwork, vn)
        if network is not None:
            self.pool_of(network).release(address)

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.store.record(obj, type_, reason, message)

    def set_condition(self, obj: Obj, ok: bool, reason: str, message: str = "") -> None:
        """Set the ``TFRealized`` condition on a Kubernetes object (only when it changes)."""
        kind = obj["kind"]
        namespace = obj["metadata"].get("namespace") or ""
        name = obj["metadata"]["name"]
        current = self.store.get(kind, namespace, name)
        if current is None:
            return
        conditions = [c for c in (current.get("status") or {}).get("conditions") or [] if c.get("type") != "TFRealized"]
        new = {"type": "TFRealized", "status": "True" if ok else "False", "reason": reason, "message": message}
        old = [c for c in (current.get("status") or {}).get("conditions") or [] if c.get("type") == "TFRealized"]
        if old == [new]:
            return
        self.store.update_status(kind, namespace, name, {"conditions": [*conditions, new]})

    def ensure(self, obj: TFObject) -> Any:
        """Create ``obj`` unless an object with its fq_name exists; return the stored one."""
        existing = self.db.get(type(obj), obj.fq_name)
        return existing if existing is not None else self.db.create(obj)

    def delete_if_exists(self, cls: type[TFObject], fq_name: FqName) -> None:
        existing = self.db.get(cls, fq_name)
        if existing is not None:
            self.db.delete(existing)
