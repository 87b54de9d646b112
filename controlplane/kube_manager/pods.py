"""Pods → virtual machine, VMI and instance IP (spec §5).

The VN is the first of: the pod's ``opencontrail.org/network`` annotation, the namespace's,
the isolated namespace's pod VN, the default pod VN. The address comes from that VN's pool
(top-down) and is written back to ``status.podIP``, as TF's CNI does; the Endpoints
controller then sees the pod as ready.

A pod that cannot be realised — its VN does not exist, its pool is exhausted, it has no
node — gets an event and a ``TFRealized=False`` condition and stays Pending with no TF
objects. It is retried when something that could unblock it happens (a pod deleted, a VN
declared, a namespace changed). ``hostNetwork`` pods get no TF objects; they answer on the
node's address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controlplane.tf_reading import applies
from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context, annotations_of, parse_network_ref
from controlplane.kube_manager.naming import ANNOTATION_NETWORK
from controlplane.tf.ipam import AllocationError
from controlplane.tf.model import (
    FloatingIp,
    FqName,
    InstanceIp,
    Tag,
    VirtualMachine,
    VirtualMachineInterface,
    VirtualNetwork,
    fq_str,
    stable_uuid,
)


@dataclass
class PodRecord:
    """What kube-manager made for one pod."""

    uid: str
    node: str
    vn: FqName
    vm: FqName
    vmi: FqName
    iip: FqName
    ip: str


def mac_from_uuid(uuid: str) -> str:
    """``02:`` and the first five bytes of the VMI's uuid, as kube-manager makes MACs."""
    digits = uuid.replace("-", "")
    return "02:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


def pod_key(pod: Obj) -> tuple[str, str]:
    return pod["metadata"].get("namespace") or "", pod["metadata"]["name"]


class PodHandler:
    def __init__(self, ctx: Context, sg_refs_for: Callable[[Obj], list[FqName]]) -> None:
        self.ctx = ctx
        self.sg_refs_for = sg_refs_for
        self.records: dict[tuple[str, str], PodRecord] = {}
        self._by_namespace: dict[str, set[str]] = {}
        self.pending: dict[tuple[str, str], str] = {}  # pod → why it is not realised

    # --- choosing ----------------------------------------------------------------------
    def vn_for(self, pod: Obj) -> FqName:
        namespace = pod["metadata"].get("namespace") or "default"
        names = self.ctx.names
        notes = annotations_of(pod)
        if ANNOTATION_NETWORK in notes:
            return parse_network_ref(notes[ANNOTATION_NETWORK], names.domain, applies(self.ctx.config, 16))
        mode = self.ctx.namespace_mode(namespace)
        if mode.network is not None:
            return mode.network
        return self.ctx.pod_vn_of_namespace(namespace)

    def tags_for(self, pod: Obj) -> list[FqName]:
        namespace = pod["metadata"].get("namespace") or "default"
        ns_obj = self.ctx.store.get("Namespace", "", namespace)
        labels: dict[str, str] = {}
        labels.update(((ns_obj or {}).get("metadata") or {}).get("labels") or {})
        labels.update(pod["metadata"].get("labels") or {})
        pairs = sorted(labels.items()) + [("namespace", namespace)]
        return [self.ctx.names.tag(k, v) for k, v in pairs]

    # --- sync ------------------------------------------------------------------------
    def sync(self, pod: Obj) -> None:
        """Bring the TF objects of ``pod`` to what its current spec asks."""
        key = pod_key(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if spec.get("hostNetwork"):
            self.remove(key)
            self.pending.pop(key, None)
            host_ip = (pod.get("status") or {}).get("hostIP")
            if node and host_ip and (pod.get("status") or {}).get("podIP") != host_ip:
                self.ctx.store.update_status("Pod", key[0], key[1], {"podIP": host_ip, "podIPs": [{"ip": host_ip}], "phase": "Running"})
            return
        if not node or self.ctx.config.node(node) is None:
            self.remove(key)
            self._not_realised(pod, "NotScheduled", "the pod has no node yet", event=False)
            return
        try:
            vn_fq = self.vn_for(pod)
        except (ValueError, KeyError, TypeError) as exc:
            self.remove(key)
            self._not_realised(pod, "InvalidNetworkAnnotation", f"cannot read {ANNOTATION_NETWORK}: {exc}")
            return
        vn = self.ctx.db.get(VirtualNetwork, vn_fq)
        if vn is None:
            self.remove(key)
            self._not_realised(pod, "NetworkNotFound", f"virtual network {fq_str(vn_fq)} does not exist")
            return
        record = self.records.get(key)
        uid = pod["metadata"]["uid"]
        if record is not None and (record.uid != uid or record.vn != vn_fq or record.node != node):
            self.remove(key)
            record = None
        if record is None:
            record = self._create(pod, vn, node)
            if record is None:
                return
        self._update_refs(pod, record)
        self.pending.pop(key, None)
        self.ctx.set_condition(pod, True, "Realized", f"VMI {fq_str(record.vmi)} on {fq_str(record.vn)}")
        status = pod.get("status") or {}
        if status.get("podIP") != record.ip or status.get("phase") != "Running":
            self.ctx.store.update_status(
                "Pod", key[0], key[1], {"podIP": record.ip, "podIPs": [{"ip": record.ip}], "phase": "Running"}
            )

    def _not_realised(self, pod: Obj, reason: str, message: str, event: bool = True) -> None:
        key = pod_key(pod)
        why = f"{reason}: {message}"
        if event and self.pending.get(key) != why:
            self.ctx.record(pod, "Warning", reason, message)
        self.pending[key] = why
        self.ctx.set_condition(pod, False, reason, message)
        status = pod.get("status") or {}
        if status.get("podIP") or status.get("phase") != "Pending":
            self.ctx.store.update_status("Pod", key[0], key[1], {"podIP": None, "podIPs": None, "phase": "Pending"})

    def _create(self, pod: Obj, vn: VirtualNetwork, node: str) -> PodRecord | None:
        ctx, names = self.ctx, self.ctx.names
        namespace, name = pod_key(pod)
        uid = pod["metadata"]["uid"]
        pool = ctx.pool_of(vn)
        vmi_uuid = stable_uuid("vmi", uid)
        vmi_fq = names.vmi(namespace, name, vmi_uuid)
        try:
            ip = str(pool.allocate(fq_str(vmi_fq)))
        except AllocationError as exc:
            self._not_realised(pod, "AddressPoolExhausted", f"no address for the pod on {fq_str(vn.fq_name)}: {exc}")
            return None
        vm = ctx.db.create(
            VirtualMachine(
                fq_name=names.vm(namespace, name),
                uuid=uid,
                virtual_router_refs=[names.virtual_router(node)],
                annotations={"cluster": names.cluster, "namespace": namespace, "kind": "Pod", "name": name},
            )
        )
        vmi = ctx.db.create(
            VirtualMachineInterface(
                fq_name=vmi_fq,
                uuid=vmi_uuid,
                virtual_network_refs=[vn.fq_name],
                virtual_machine_refs=[vm.fq_name],
                security_group_refs=self.sg_refs_for(pod),
                tag_refs=self._ensure_tags(self.tags_for(pod)),
                mac_address=mac_from_uuid(vmi_uuid),
                node=node,
                annotations={"namespace": namespace, "pod": name},
            )
        )
        iip = ctx.db.create(
            InstanceIp(
                fq_name=(f"{name}__{vmi_uuid}",),
                instance_ip_address=ip,
                virtual_network_refs=[vn.fq_name],
                virtual_machine_interface_refs=[vmi.fq_name],
            )
        )
        record = PodRecord(uid, node, vn.fq_name, vm.fq_name, vmi.fq_name, iip.fq_name, ip)
        self.records[(namespace, name)] = record
        self._by_namespace.setdefault(namespace, set()).add(name)
        return record

    def _ensure_tags(self, fqs: list[FqName]) -> list[FqName]:
        for fq in fqs:
            key, _, value = fq[0].partition("=")
            self.ctx.ensure(Tag(fq_name=fq, tag_type_name=key, tag_value=value))
        return fqs

    def _drop_unused_tags(self, fqs: list[FqName]) -> None:
        for fq in fqs:
            tag = self.ctx.db.get(Tag, fq)
            if tag is not None and not self.ctx.db.referrers(tag):
                self.ctx.db.delete(tag)

    def _update_refs(self, pod: Obj, record: PodRecord) -> None:
        vmi = self.ctx.db.get(VirtualMachineInterface, record.vmi)
        assert vmi is not None
        tags = self.tags_for(pod)
        sgs = self.sg_refs_for(pod)
        if tags != vmi.tag_refs or sgs != vmi.security_group_refs:
            old_tags = vmi.tag_refs
            self.ctx.db.update(vmi, tag_refs=self._ensure_tags(tags), security_group_refs=sgs)
            self._drop_unused_tags([t for t in old_tags if t not in tags])

    def refresh_refs(self, namespace: str) -> None:
        """Re-read tags and security groups of a namespace's pods (policies or labels changed)."""
        for name in sorted(self._by_namespace.get(namespace, ())):
            record = self.records.get((namespace, name))
            pod = self.ctx.store.get("Pod", namespace, name)
            if pod is not None and record is not None:
                self._update_refs(pod, record)

    # --- removal -----------------------------------------------------------------------
    def remove(self, key: tuple[str, str]) -> None:
        """Delete a pod's TF objects and return its address (first detaching its floating IPs)."""
        record = self.records.pop(key, None)
        if record is None:
            return
        self._by_namespace.get(key[0], set()).discard(key[1])
        db = self.ctx.db
        vmi = db.get(VirtualMachineInterface, record.vmi)
        if vmi is not None:
            for fip in db.referrers(vmi, FloatingIp):
                db.update(
                    fip,
                    virtual_machine_interface_refs=[r for r in fip.virtual_machine_interface_refs if r != vmi.fq_name],
                    port_mappings_by_vmi={k: v for k, v in fip.port_mappings_by_vmi.items() if k != vmi.fq_name},
                )
            for iip in db.referrers(vmi, InstanceIp):
                db.delete(iip)
            tags = vmi.tag_refs
            db.delete(vmi)
            self._drop_unused_tags(tags)
        vn = db.get(VirtualNetwork, record.vn)
        if vn is not None:
            self.ctx.pool_of(vn).release(record.ip)
        vm = db.get(VirtualMachine, record.vm)
        if vm is not None:
            db.delete(vm)

    def on_deleted(self, key: tuple[str, str]) -> None:
        self.remove(key)
        self.pending.pop(key, None)

    def retry_pending(self) -> None:
        """Try again every pod that could not be realised, in the order they failed."""
        for namespace, name in list(self.pending):
            pod = self.ctx.store.get("Pod", namespace, name)
            if pod is None:
                self.pending.pop((namespace, name), None)
            else:
                self.sync(pod)

