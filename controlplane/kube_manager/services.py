"""Services → TF native load balancers with floating-IP ECMP (spec §6, the article's core).

For a ClusterIP service:
- a load balancer ``<svc>__<uid>`` (provider ``native``) whose VIP is the ClusterIP, held by
  a VIP port on the service VN (the namespace's service VN if isolated, else the default one);
- one listener and pool per (port, protocol), members from the service's **Endpoints**;
- the VIP as **one floating IP attached to every member pod's VMI**, from the service VN's
  pool ``svc-fip-pool-<vn>``, with the port map ``port → targetPort`` of each member. The
  vRouters turn that into an ECMP route; the member's node does the DNAT.

``type: LoadBalancer`` and ``spec.externalIPs`` add external floating IPs from the first pool
found among: the service's ``opencontrail.org/fip-pool`` annotation, its namespace's, the
cluster's ``publicFipPool``; attached to the same members with the same port maps. The
address is ``spec.loadBalancerIP``, else the first external IP, else the pool's next free
one, and is written back to ``status.loadBalancer.ingress`` and ``spec.externalIPs``.
No pool: the service keeps its ClusterIP and gets an event saying why it has no external IP.

Headless and ExternalName services get nothing; ``sessionAffinity`` is reported as ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.tf_reading import applies
from controlplane.k8s.endpoints import Backend, service_backends, service_port_name
from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context, annotations_of, parse_fip_pool_ref
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
    PortMapping,
    Project,
    VirtualMachineInterface,
    VirtualNetwork,
    fq_str,
)


def listener_protocol(protocol: str) -> str:
    """TF's native LB knows TCP and UDP; SCTP and the rest are treated as UDP (spec §6)."""
    return "TCP" if protocol == "TCP" else "UDP"


@dataclass
class ServiceRecord:
    vn: FqName
    cluster_ip: str
    lb: FqName
    vip_vmi: FqName
    vip_iip: FqName
    cluster_fip: FqName
    listeners: dict[tuple[str, int], tuple[FqName, FqName]] = field(default_factory=dict)
    external_fips: dict[str, tuple[FqName, FqName]] = field(default_factory=dict)  # address → (fip, pool VN)


class ServiceHandler:
    def __init__(self, ctx: Context, vmi_of_pod: Callable[[str], FqName | None]) -> None:
        self.ctx = ctx
        self.vmi_of_pod = vmi_of_pod
        self.records: dict[tuple[str, str], ServiceRecord] = {}

    # --- lookups -------------------------------------------------------------------
    def find_pool(self, ref: FqName) -> FloatingIpPool | None:
        return self.ctx.db.get(FloatingIpPool, ref)

    def public_pool_for(self, service: Obj) -> tuple[FloatingIpPool | None, str]:
        """The external pool by the order of spec §6, and where the choice came from."""
        ctx = self.ctx
        namespace = service["metadata"].get("namespace") or "default"
        notes = annotations_of(service)
        candidates: list[tuple[str, FqName | None]] = []
        if ANNOTATION_FIP_POOL in notes:
            try:
                candidates.append(("service annotation", parse_fip_pool_ref(notes[ANNOTATION_FIP_POOL], ctx.names.domain, applies(ctx.config, 16))))
            except (ValueError, KeyError, TypeError):
                candidates.append(("service annotation", None))
        mode = ctx.namespace_mode(namespace)
        if mode.fip_pool is not None:
            candidates.append(("namespace annotation", mode.fip_pool))
        cluster_pool = self.cluster_pool_ref()
        if cluster_pool is not None:
            candidates.append(("cluster publicFipPool", cluster_pool))
        for origin, ref in candidates:
            pool = self.find_pool(ref) if ref is not None else None
            if pool is not None:
                return pool, origin
            if applies(self.ctx.config, 13):
                continue  # the tf reading: a missing pool falls through to the next one
            what = fq_str(ref) if ref is not None else "an unreadable value"
            return None, f"the {origin} names {what}, which does not exist"
        return None, "no floating-IP pool: no fip-pool annotation on the service or its namespace and no cluster publicFipPool"

    def cluster_pool_ref(self) -> FqName | None:
        setting = self.ctx.config.publicFipPool
        if setting is None:
            return None
        if isinstance(setting, str):
            project, _, name = setting.rpartition(":")
            for pool in self.ctx.db.list(FloatingIpPool):
                if pool.fq_name[-1] == name and (not project or pool.fq_name[1] == project or ":".join(pool.fq_name[:2]) == project):
                    return pool.fq_name
            return (self.ctx.names.domain, project or "*", "*", name)  # not found: printed as a pattern
        project = setting.project or self.ctx.names.infra_project[1]
        return (self.ctx.names.domain, project, setting.network, setting.name)

    # --- sync ----------------------------------------------------------------------
    def sync(self, service: Obj) -> None:
        ctx = self.ctx
        namespace = service["metadata"].get("namespace") or "default"
        name = service["metadata"]["name"]
        key = (namespace, name)
        spec = service.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName" or not cluster_ip or cluster_ip == "None":
            self.remove(key)
            return
        vn_fq = ctx.service_vn_of_namespace(namespace)
        record = self.records.get(key)
        if record is not None and (record.vn != vn_fq or record.cluster_ip != cluster_ip):
            self.remove(key)
            record = None
        created = record is None
        if record is None:
            record = self._create_base(service, vn_fq)
            if record is None:
                return
        backends = service_backends(ctx.store, service)
        self._sync_listeners(service, record, backends)
        members = self._member_port_maps(service, backends)
        self._attach(record.cluster_fip, members)
        external_ok = self._sync_external(service, record, members)
        if created and spec.get("sessionAffinity") == "ClientIP":
            ctx.record(service, "Normal", "SessionAffinityIgnored", "TF's ECMP load balancing does not implement sessionAffinity")
        if external_ok:
            ctx.set_condition(service, True, "Realized", f"loadbalancer {fq_str(record.lb)}, {len(members)} ECMP members")

    def _create_base(self, service: Obj, vn_fq: FqName) -> ServiceRecord | None:
        ctx, names = self.ctx, self.ctx.names
        namespace = service["metadata"].get("namespace") or "default"
        name = service["metadata"]["name"]
        uid = service["metadata"]["uid"]
        cluster_ip = service["spec"]["clusterIP"]
        vn = ctx.db.get(VirtualNetwork, vn_fq)
        if vn is None:  # pragma: no cover - the namespace handler creates it first
            ctx.record(service, "Warning", "NetworkNotFound", f"service network {fq_str(vn_fq)} does not exist")
            return None
        lb_fq = names.loadbalancer(namespace, name, uid)
        try:
            ctx.pool_of(vn).reserve(cluster_ip, fq_str(lb_fq))
        except AllocationError as exc:
            ctx.record(service, "Warning", "VipNotAvailable", f"cannot hold ClusterIP {cluster_ip}: {exc}")
            ctx.set_condition(service, False, "VipNotAvailable", str(exc))
            return None
        project = names.project(namespace)
        ctx.ensure(Project(fq_name=project, annotations={"cluster": names.cluster, "namespace": namespace}))
        vip_vmi = ctx.db.create(
            VirtualMachineInterface(
                fq_name=(*project, f"{name}__{uid}-vip"),
                virtual_network_refs=[vn_fq],
                device_owner="K8S:LOADBALANCER",
                annotations={"namespace": namespace, "service": name},
            )
        )
        vip_iip = ctx.db.create(
            InstanceIp(
                fq_name=(f"{name}__{uid}-vip",),
                instance_ip_address=cluster_ip,
                virtual_network_refs=[vn_fq],
                virtual_machine_interface_refs=[vip_vmi.fq_name],
            )
        )
        lb = ctx.db.create(
            Loadbalancer(
                fq_name=lb_fq,
                loadbalancer_provider="native",
                vip_address=cluster_ip,
                virtual_machine_interface_refs=[vip_vmi.fq_name],
                annotations={"cluster": names.cluster, "namespace": namespace, "kind": "Service", "name": name},
            )
        )
        pool = ctx.ensure(FloatingIpPool(fq_name=names.service_fip_pool(vn_fq)))
        fip = ctx.db.create(
            FloatingIp(
                fq_name=(*pool.fq_name, f"{name}__{uid}-cluster-ip"),
                floating_ip_address=cluster_ip,
                project_refs=[project],
                floating_ip_port_mappings_enable=True,
                role="cluster-ip",
                annotations={"namespace": namespace, "service": name},
            )
        )
        record = ServiceRecord(vn_fq, cluster_ip, lb.fq_name, vip_vmi.fq_name, vip_iip.fq_name, fip.fq_name)
        self.records[(namespace, name)] = record
        return record

    def _sync_listeners(self, service: Obj, record: ServiceRecord, backends: list[Backend]) -> None:
        ctx = self.ctx
        lb_name = record.lb[-1]
        project = record.lb[:-1]
        wanted: dict[tuple[str, int], dict[str, object]] = {}
        for port in service["spec"].get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            wanted[(protocol, int(port["port"]))] = port
        for key in list(record.listeners):
            if key not in wanted:
                self._delete_listener(record, key)
        for (protocol, number), port in wanted.items():
            if (protocol, number) not in record.listeners:
                lproto = listener_protocol(protocol)
                listener = ctx.db.create(
                    LoadbalancerListener(
                        fq_name=(*project, f"{lb_name}-{protocol}-{number}"),
                        protocol=lproto,
                        protocol_port=number,
                        loadbalancer_refs=[record.lb],
                    )
                )
                pool = ctx.db.create(
                    LoadbalancerPool(
                        fq_name=(*project, f"{lb_name}-{protocol}-{number}-pool"),
                        protocol=lproto,
                        loadbalancer_listener_refs=[listener.fq_name],
                        target_port=port.get("targetPort"),
                    )
                )
                record.listeners[(protocol, number)] = (listener.fq_name, pool.fq_name)
            self._sync_members(record.listeners[(protocol, number)][1], service_port_name(port), protocol, backends)

    def _sync_members(self, pool_fq: FqName, port_name: str, protocol: str, backends: list[Backend]) -> None:
        db = self.ctx.db
        pool = db.get(LoadbalancerPool, pool_fq)
        assert pool is not None
        wanted: dict[FqName, tuple[str, int, str]] = {}
        for backend in backends:
            number = backend.port(port_name, protocol)
            if number is None:
                continue
            label = backend.pod.replace("/", "-") if backend.pod else backend.ip
            wanted[(*pool_fq, label)] = (backend.ip, number, backend.pod or backend.ip)
        for member in db.referrers(pool, LoadbalancerMember):
            want = wanted.get(member.fq_name)
            if want is None or (member.address, member.protocol_port, member.target) != want:
                db.delete(member)
        for fq, (ip, number, target) in wanted.items():
            if db.get(LoadbalancerMember, fq) is None:
                db.create(LoadbalancerMember(fq_name=fq, address=ip, protocol_port=number, target=target))

    def _delete_listener(self, record: ServiceRecord, key: tuple[str, int]) -> None:
        db = self.ctx.db
        listener_fq, pool_fq = record.listeners.pop(key)
        pool = db.get(LoadbalancerPool, pool_fq)
        if pool is not None:
            for member in db.referrers(pool, LoadbalancerMember):
                db.delete(member)
            db.delete(pool)
        self.ctx.delete_if_exists(LoadbalancerListener, listener_fq)

    def _member_port_maps(self, service: Obj, backends: list[Backend]) -> dict[FqName, tuple[PortMapping, ...]]:
        """Member VMI → its port map; backends that are not TF pods cannot hold the VIP."""
        members: dict[FqName, list[PortMapping]] = {}
        skipped = []
        for backend in backends:
            vmi = self.vmi_of_pod(backend.pod) if backend.pod else None
            if vmi is None:
                skipped.append(backend.pod or backend.ip)
                continue
            maps = members.setdefault(vmi, [])
            for port in service["spec"].get("ports") or []:
                protocol = port.get("protocol") or "TCP"
                number = backend.port(service_port_name(port), protocol)
                if number is not None:
                    mapping = PortMapping(protocol.lower(), int(port["port"]), number)
                    if mapping not in maps:
                        maps.append(mapping)
        if skipped:
            self.ctx.record(
                service,
                "Warning",
                "BackendWithoutInterface",
                f"endpoints without a TF interface cannot be ECMP members: {', '.join(sorted(skipped))}",
            )
        out = {vmi: tuple(sorted(maps, key=lambda m: (m.protocol, m.src_port))) for vmi, maps in sorted(members.items())}
        if applies(self.ctx.config, 14) and out:
            # the tf reading: one port map per floating IP, the first member's (vnc_service)
            first = next(iter(out.values()))
            out = {vmi: first for vmi in out}
        return out

    def _attach(self, fip_fq: FqName, members: dict[FqName, tuple[PortMapping, ...]]) -> None:
        fip = self.ctx.db.get(FloatingIp, fip_fq)
        assert fip is not None
        refs = list(members)
        if refs != fip.virtual_machine_interface_refs or members != fip.port_mappings_by_vmi:
            self.ctx.db.update(fip, virtual_machine_interface_refs=refs, port_mappings_by_vmi=dict(members))

    # --- external IPs --------------------------------------------------------------
    def _wanted_external(self, service: Obj) -> list[str | None]:
        """External addresses wanted: explicit ones, or None for 'the pool's next free one'."""
        spec = service.get("spec") or {}
        if applies(self.ctx.config, 12):
            return self._wanted_external_tf(service)
        out: list[str | None] = []
        if spec.get("type") == "LoadBalancer":
            first = spec.get("loadBalancerIP") or (spec.get("externalIPs") or [None])[0]
            record = self.records.get((service["metadata"].get("namespace") or "default", service["metadata"]["name"]))
            if first is None and record is not None and record.external_fips:
                first = next(iter(record.external_fips))
            out.append(first)
        for ip in spec.get("externalIPs") or []:
            if ip not in out:
                out.append(ip)
        return out

    def _wanted_external_tf(self, service: Obj) -> list[str | None]:
        """The tf reading (behaviour 12, vnc_service _update_service_public_ip): a LoadBalancer
        takes ``loadBalancerIP`` alone when set, else its ``externalIPs``, else one from the
        pool; a ClusterIP service its ``externalIPs``; a NodePort service none."""
        spec = service.get("spec") or {}
        kind = spec.get("type") or "ClusterIP"
        external = list(dict.fromkeys(spec.get("externalIPs") or []))
        if kind == "LoadBalancer":
            if spec.get("loadBalancerIP"):
                return [spec["loadBalancerIP"]]
            if external:
                return list(external)
            record = self.records.get((service["metadata"].get("namespace") or "default", service["metadata"]["name"]))
            return [next(iter(record.external_fips)) if record is not None and record.external_fips else None]
        return list(external) if kind == "ClusterIP" else []

    def _sync_external(self, service: Obj, record: ServiceRecord, members: dict[FqName, tuple[PortMapping, ...]]) -> bool:
        ctx = self.ctx
        wanted = self._wanted_external(service)
        if not wanted:
            for address in list(record.external_fips):
                self._delete_external(record, address)
            return True
        pool, why = self.public_pool_for(service)
        if pool is None:
            for address in list(record.external_fips):
                self._delete_external(record, address)
            ctx.record(service, "Warning", "NoFloatingIpPool", f"no external IP: {why}; the ClusterIP still works")
            ctx.set_condition(service, False, "NoFloatingIpPool", why)
            return False
        pool_vn = ctx.db.get(VirtualNetwork, pool.fq_name[:-1])
        assert pool_vn is not None
        addresses: list[str] = []
        for address in wanted:
            if address is not None and address in record.external_fips and record.external_fips[address][1] == pool_vn.fq_name:
                addresses.append(address)
                continue
            try:
                if address is None:
                    got = str(ctx.pool_of(pool_vn).allocate(f"service {fq_str(record.lb)}"))
                else:
                    got = str(ctx.pool_of(pool_vn).reserve(address, f"service {fq_str(record.lb)}"))
            except AllocationError as exc:
                ctx.record(service, "Warning", "ExternalIpNotAvailable", f"pool {fq_str(pool.fq_name)}: {exc}")
                ctx.set_condition(service, False, "ExternalIpNotAvailable", str(exc))
                continue
            namespace = service["metadata"].get("namespace") or "default"
            fip = ctx.db.create(
                FloatingIp(
                    fq_name=(*pool.fq_name, f"{record.lb[-1]}-external-{got}"),
                    floating_ip_address=got,
                    project_refs=[ctx.names.project(namespace)],
                    floating_ip_port_mappings_enable=True,
                    role="external-ip",
                    annotations={"namespace": namespace, "service": service["metadata"]["name"]},
                )
            )
            record.external_fips[got] = (fip.fq_name, pool_vn.fq_name)
            addresses.append(got)
        for address in list(record.external_fips):
            if address not in addresses:
                self._delete_external(record, address)
        for address in addresses:
            self._attach(record.external_fips[address][0], members)
        self._write_back(service, addresses)
        return len(addresses) == len(wanted)

    def _write_back(self, service: Obj, addresses: list[str]) -> None:
        spec = service.get("spec") or {}
        namespace = service["metadata"].get("namespace") or "default"
        name = service["metadata"]["name"]
        if spec.get("type") == "LoadBalancer" and addresses:
            ingress = [{"ip": addresses[0]}]
            if ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") != ingress:
                self.ctx.store.update_status("Service", namespace, name, {"loadBalancer": {"ingress": ingress}})
            current = self.ctx.store.get("Service", namespace, name)
            if current is not None and addresses[0] not in (current["spec"].get("externalIPs") or []):
                updated = dict(current)
                updated["spec"] = {**current["spec"], "externalIPs": [*(current["spec"].get("externalIPs") or []), addresses[0]]}
                self.ctx.store.put(updated)

    def _delete_external(self, record: ServiceRecord, address: str) -> None:
        fip_fq, vn_fq = record.external_fips.pop(address)
        self.ctx.release_floating_ip(fip_fq, vn_fq, address)

    # --- removal ---------------------------------------------------------------------
    def remove(self, key: tuple[str, str]) -> None:
        record = self.records.pop(key, None)
        if record is None:
            return
        ctx = self.ctx
        for address in list(record.external_fips):
            self._delete_external(record, address)
        for listener_key in list(record.listeners):
            self._delete_listener(record, listener_key)
        ctx.delete_if_exists(FloatingIp, record.cluster_fip)
        ctx.delete_if_exists(Loadbalancer, record.lb)
        ctx.delete_if_exists(InstanceIp, record.vip_iip)
        ctx.delete_if_exists(VirtualMachineInterface, record.vip_vmi)
        vn = ctx.db.get(VirtualNetwork, record.vn)
        if vn is not None:
            ctx.pool_of(vn).release(record.cluster_ip)

    def refresh_pod(self, pod_ref: str) -> None:
        """A pod's VMI appeared or went: re-sync the services whose Endpoints name it."""
        namespace = pod_ref.split("/", 1)[0]
        for service in self.ctx.store.list("Service", namespace):
            if any(b.pod == pod_ref for b in service_backends(self.ctx.store, service)):
                self.sync(service)
