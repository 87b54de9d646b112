"""Ingresses → TF HAProxy load balancers (spec §7).

An Ingress whose class is absent or ``opencontrail`` becomes a load balancer of provider
``opencontrail``: a VIP from the namespace's pod VN, held by two HAProxy instances
(active-standby, on two nodes) through one shared instance IP; an HTTP:80 listener (and
HTTPS:443 when the Ingress has TLS); one pool per (host, path) rule whose member is the
backend **service's ClusterIP:port**, plus a default pool for ``defaultBackend``. An external
floating IP (annotation, namespace pool, cluster pool) is attached to the active instance.
The address users should call is written to ``status.loadBalancer.ingress``.

Choice: the two instances go on the two nodes that come first in an order seeded by the
Ingress's name, so different Ingresses spread over the nodes but each run is the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.tf_reading import applies
from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context
from controlplane.kube_manager.naming import ANNOTATION_FIP_POOL
from controlplane.tf.ipam import AllocationError
from controlplane.tf.model import (
    FloatingIp,
    FloatingIpPool,
    FqName,
    InstanceIp,
    Loadbalancer,
    LoadbalancerListener,
    LoadbalancerMember,
    LoadbalancerPool,
    VirtualMachine,
    VirtualMachineInterface,
    VirtualNetwork,
    fq_str,
)

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def handled_class(ingress: Obj, annotation_only: bool = False) -> bool:
    """TF handles Ingresses with no class or the ``opencontrail`` class. The tf reading
    (behaviour 7, ``annotation_only``) reads only the annotation, as vnc_ingress does."""
    annotated = ((ingress.get("metadata") or {}).get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION)
    cls = annotated if annotation_only else ((ingress.get("spec") or {}).get("ingressClassName") or annotated)
    return cls in (None, "", "opencontrail")


@dataclass(frozen=True)
class IngressRule:
    """One (host, path) → service:port rule, in the order HAProxy matches them."""

    host: str | None
    path: str | None
    path_type: str | None
    service: str
    port: int | str


def ingress_rules(ingress: Obj) -> list[IngressRule]:
    spec = ingress.get("spec") or {}
    out = []
    for rule in spec.get("rules") or []:
        for path in ((rule.get("http") or {}).get("paths")) or []:
            service = path["backend"]["service"]
            port = service["port"].get("number") or service["port"].get("name")
            out.append(IngressRule(rule.get("host"), path.get("path", "/"), path.get("pathType"), service["name"], port))
    default = spec.get("defaultBackend")
    if default:
        service = default["service"]
        port = service["port"].get("number") or service["port"].get("name")
        out.append(IngressRule(None, None, None, service["name"], port))
    return out


@dataclass
class IngressRecord:
    vn: FqName
    vip: str
    lb: FqName
    vm: FqName
    instances: list[FqName]
    iip: FqName
    listeners: list[FqName] = field(default_factory=list)
    pools: list[FqName] = field(default_factory=list)
    external: tuple[str, FqName, FqName] | None = None  # (address, fip, pool VN)


class IngressHandler:
    def __init__(self, ctx: Context, public_pool_for: Callable[[Obj], tuple[FloatingIpPool | None, str]]) -> None:
        self.ctx = ctx
        self.public_pool_for = public_pool_for
        self.records: dict[tuple[str, str], IngressRecord] = {}

    def instance_nodes(self, namespace: str, name: str) -> list[str]:
        nodes = [n.name for n in self.ctx.config.nodes]
        random.Random(f"haproxy/{namespace}/{name}").shuffle(nodes)
        return (nodes * 2)[:2]

    def place_instances(self) -> None:
        """The nodes changed: every ingress's HAProxy instances go where they belong now."""
        for (namespace, name), record in self.records.items():
            for fq, node in zip(record.instances, self.instance_nodes(namespace, name), strict=False):
                vmi = self.ctx.db.get(VirtualMachineInterface, fq)
                if vmi is not None and vmi.node != node:
                    self.ctx.db.update(vmi, node=node)

    def sync(self, ingress: Obj) -> None:
        ctx = self.ctx
        namespace = ingress["metadata"].get("namespace") or "default"
        name = ingress["metadata"]["name"]
        key = (namespace, name)
        if not handled_class(ingress, applies(self.ctx.config, 7)):
            self.remove(key)
            ctx.record(ingress, "Normal", "IngressClassIgnored", "not an opencontrail Ingress; TF leaves it to its controller")
            return
        vn_fq = ctx.pod_vn_of_namespace(namespace)
        record = self.records.get(key)
        if record is not None and record.vn != vn_fq:
            self.remove(key)
            record = None
        if record is None:
            record = self._create_base(ingress, vn_fq)
            if record is None:
                return
        self._sync_pools(ingress, record)
        self._sync_external(ingress, record)
        if applies(ctx.config, 11):  # the tf reading: the status lists the floating IP and the VIP
            wanted = [{"ip": a} for a in ((record.external[0],) if record.external else ()) + (record.vip,)]
        else:
            address = record.external[0] if record.external else record.vip
            wanted = [{"ip": address}]
        if ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") != wanted:
            ctx.store.update_status("Ingress", namespace, name, {"loadBalancer": {"ingress": wanted}})

    def _create_base(self, ingress: Obj, vn_fq: FqName) -> IngressRecord | None:
        ctx, names = self.ctx, self.ctx.names
        namespace = ingress["metadata"].get("namespace") or "default"
        name = ingress["metadata"]["name"]
        uid = ingress["metadata"]["uid"]
        vn = ctx.db.get(VirtualNetwork, vn_fq)
        assert vn is not None
        lb_fq = names.loadbalancer(namespace, name, uid)
        try:
            vip = str(ctx.pool_of(vn).allocate(fq_str(lb_fq)))
        except AllocationError as exc:
            ctx.record(ingress, "Warning", "AddressPoolExhausted", f"no VIP for the ingress: {exc}")
            ctx.set_condition(ingress, False, "AddressPoolExhausted", str(exc))
            return None
        project = names.project(namespace)
        vm = ctx.db.create(
            VirtualMachine(
                fq_name=(f"{names.cluster}__{namespace}__{name}__haproxy",),
                annotations={"namespace": namespace, "kind": "Ingress", "name": name},
            )
        )
        instances = []
        for index, node in enumerate(self.instance_nodes(namespace, name)):
            vmi = ctx.db.create(
                VirtualMachineInterface(
                    fq_name=(*project, f"{lb_fq[-1]}__haproxy-{index}"),
                    virtual_network_refs=[vn_fq],
                    virtual_machine_refs=[vm.fq_name],
                    security_group_refs=[names.default_sg(namespace)],
                    node=node,
                    device_owner="HAPROXY",
                    annotations={"namespace": namespace, "ingress": name, "role": "active" if index == 0 else "standby"},
                )
            )
            instances.append(vmi.fq_name)
        iip = ctx.db.create(
            InstanceIp(
                fq_name=(f"{lb_fq[-1]}-vip",),
                instance_ip_address=vip,
                virtual_network_refs=[vn_fq],
                virtual_machine_interface_refs=list(instances),
                instance_ip_mode="active-standby",
            )
        )
        lb = ctx.db.create(
            Loadbalancer(
                fq_name=lb_fq,
                loadbalancer_provider="opencontrail",
                vip_address=vip,
                virtual_machine_interface_refs=list(instances),
                annotations={"cluster": names.cluster, "namespace": namespace, "kind": "Ingress", "name": name},
            )
        )
        record = IngressRecord(vn_fq, vip, lb.fq_name, vm.fq_name, instances, iip.fq_name)
        self.records[(namespace, name)] = record
        return record

    def _sync_pools(self, ingress: Obj, record: IngressRecord) -> None:
        """Listeners and pools are rebuilt from the rules (they are few and cheap)."""
        ctx = self.ctx
        namespace = ingress["metadata"].get("namespace") or "default"
        self._drop_pools(record)
        lb_name = record.lb[-1]
        project = record.lb[:-1]
        ports = [("HTTP", 80)] + ([("HTTPS", 443)] if (ingress.get("spec") or {}).get("tls") else [])
        named: list[str] = []
        missing: list[str] = []
        for protocol, number in ports:
            listener = ctx.db.create(
                LoadbalancerListener(
                    fq_name=(*project, f"{lb_name}-{protocol}-{number}"),
                    protocol=protocol,
                    protocol_port=number,
                    loadbalancer_refs=[record.lb],
                )
            )
            record.listeners.append(listener.fq_name)
            for index, rule in enumerate(ingress_rules(ingress)):
                pool = ctx.db.create(
                    LoadbalancerPool(
                        fq_name=(*project, f"{lb_name}-{protocol}-{number}-pool-{index}"),
                        protocol=protocol,
                        loadbalancer_listener_refs=[listener.fq_name],
                        host=rule.host,
                        path=rule.path,
                        path_type=rule.path_type,
                        target_port=rule.port,
                    )
                )
                record.pools.append(pool.fq_name)
                if isinstance(rule.port, str) and applies(ctx.config, 9):
                    # the tf reading: vnc_ingress reads port.number only; a named port is not realised
                    named.append(f"{rule.service}:{rule.port}")
                    continue
                target = self._service_target(namespace, rule)
                if target is None:
                    missing.append(f"{rule.service}:{rule.port}")
                    continue
                ctx.db.create(
                    LoadbalancerMember(
                        fq_name=(*pool.fq_name, rule.service),
                        address=target[0],
                        protocol_port=target[1],
                        target=f"service/{namespace}/{rule.service}",
                    )
                )
        if named:
            ctx.record(ingress, "Warning", "NamedServicePort", f"backend ports by name are not realised by TF (port.number only): {', '.join(sorted(set(named)))}")
            ctx.set_condition(ingress, False, "NamedServicePort", ", ".join(sorted(set(named))))
            return
        if missing:
            ctx.record(ingress, "Warning", "BackendServiceNotFound", f"no ClusterIP for {', '.join(sorted(set(missing)))}")
            ctx.set_condition(ingress, False, "BackendServiceNotFound", ", ".join(sorted(set(missing))))
        else:
            ctx.set_condition(ingress, True, "Realized", f"loadbalancer {fq_str(record.lb)} VIP {record.vip}")

    def _service_target(self, namespace: str, rule: IngressRule) -> tuple[str, int] | None:
        service = self.ctx.store.get("Service", namespace, rule.service)
        if service is None:
            return None
        spec = service.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            return None
        for port in spec.get("ports") or []:
            if port.get("port") == rule.port or (port.get("name") and port.get("name") == rule.port):
                return cluster_ip, int(port["port"])
        return None

    def _drop_pools(self, record: IngressRecord) -> None:
        db = self.ctx.db
        for pool_fq in record.pools:
            pool = db.get(LoadbalancerPool, pool_fq)
            if pool is not None:
                for member in db.referrers(pool, LoadbalancerMember):
                    db.delete(member)
                db.delete(pool)
        for listener_fq in record.listeners:
            self.ctx.delete_if_exists(LoadbalancerListener, listener_fq)
        record.pools.clear()
        record.listeners.clear()

    def _sync_external(self, ingress: Obj, record: IngressRecord) -> None:
        ctx = self.ctx
        namespace = ingress["metadata"].get("namespace") or "default"
        notes = (ingress.get("metadata") or {}).get("annotations") or {}
        wants = ANNOTATION_FIP_POOL in notes or ctx.namespace_mode(namespace).fip_pool is not None or ctx.config.publicFipPool is not None
        if not wants:
            self._drop_external(record)
            return
        pool, why = self.public_pool_for(ingress)
        if pool is None:
            self._drop_external(record)
            ctx.record(ingress, "Warning", "NoFloatingIpPool", f"no external IP: {why}")
            return
        if record.external is not None and record.external[2] == pool.fq_name[:-1]:
            return
        self._drop_external(record)
        pool_vn = ctx.db.get(VirtualNetwork, pool.fq_name[:-1])
        assert pool_vn is not None
        try:
            address = str(ctx.pool_of(pool_vn).allocate(f"ingress {fq_str(record.lb)}"))
        except AllocationError as exc:
            ctx.record(ingress, "Warning", "ExternalIpNotAvailable", str(exc))
            return
        fip = ctx.db.create(
            FloatingIp(
                fq_name=(*pool.fq_name, f"{record.lb[-1]}-external"),
                floating_ip_address=address,
                virtual_machine_interface_refs=[record.instances[0]],
                project_refs=[ctx.names.project(namespace)],
                role="ingress",
                annotations={"namespace": namespace, "ingress": ingress["metadata"]["name"]},
            )
        )
        record.external = (address, fip.fq_name, pool_vn.fq_name)

    def _drop_external(self, record: IngressRecord) -> None:
        if record.external is None:
            return
        address, fip_fq, vn_fq = record.external
        record.external = None
        self.ctx.release_floating_ip(fip_fq, vn_fq, address)

    def remove(self, key: tuple[str, str]) -> None:
        record = self.records.pop(key, None)
        if record is None:
            return
        ctx = self.ctx
        self._drop_external(record)
        self._drop_pools(record)
        ctx.delete_if_exists(Loadbalancer, record.lb)
        ctx.delete_if_exists(InstanceIp, record.iip)
        for vmi in record.instances:
            ctx.delete_if_exists(VirtualMachineInterface, vmi)
        ctx.delete_if_exists(VirtualMachine, record.vm)
        vn = ctx.db.get(VirtualNetwork, record.vn)
        if vn is not None:
            ctx.pool_of(vn).release(record.vip)

    def sync_namespace(self, namespace: str) -> None:
        """Services of the namespace changed: members (ClusterIP:port) may have changed."""
        for ingress in self.ctx.store.list("Ingress", namespace):
            self.sync(ingress)

