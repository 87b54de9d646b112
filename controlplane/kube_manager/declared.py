"""The TF objects a scenario declares (``vrsim.tf/v1``): VNs, VN-level policies, FIP pools.

Choices:
- A declared object's project is ``metadata.project`` (default: the cluster's infrastructure
  project, ``<C>-default``); it is created if missing, as an operator would first.
- A policy's ``attachTo`` lists the VNs it is attached to; a VN that does not exist yet gets
  the attachment when it appears.
- A FloatingIpPool creates its VN (with ``spec.subnet`` as the VN's own subnet) when missing;
  pools declared this way are public: reachable from ``external``.
- Deleting a VN that ports still use is refused with an error (the TF API's 409), see
  :meth:`DeclaredHandler.check_delete`.
"""

from __future__ import annotations

from controlplane.errors import InputError
from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context
from controlplane.kube_manager.networks import NetworkHandler
from controlplane.tf.declared import parse_ports, parse_vn_ref
from controlplane.tf.ipam import AddressPool
from controlplane.tf.model import (
    FloatingIp,
    FloatingIpPool,
    FqName,
    InstanceIp,
    NetworkIpam,
    NetworkPolicy,
    PolicyRule,
    Project,
    VirtualMachineInterface,
    VirtualNetwork,
    fq_str,
)


class DeclaredHandler:
    def __init__(self, ctx: Context, networks: NetworkHandler) -> None:
        self.ctx = ctx
        self.networks = networks
        self.vns: dict[tuple[str, str], FqName] = {}
        self.policies: dict[tuple[str, str], FqName] = {}
        self.pools: dict[tuple[str, str], FqName] = {}
        self.pool_vns: dict[FqName, int] = {}  # VNs created for pools → how many pools use them

    def project_of(self, obj: Obj) -> FqName:
        meta = obj["metadata"]
        domain = meta.get("domain") or self.ctx.names.domain
        project = meta.get("project") or self.ctx.names.infra_project[1]
        fq = (domain, project)
        self.ctx.ensure(Project(fq_name=fq))
        return fq

    def key_of(self, obj: Obj) -> tuple[str, str]:
        return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]

    # --- virtual networks --------------------------------------------------------------
    def sync_vn(self, obj: Obj) -> None:
        ctx = self.ctx
        project = self.project_of(obj)
        fq = (*project, obj["metadata"]["name"])
        spec = obj["spec"]
        existing = ctx.db.get(VirtualNetwork, fq)
        if spec.get("ipam"):
            ipam_fq = parse_vn_ref(spec["ipam"], ctx.names.domain, project[1])
            if ctx.db.get(NetworkIpam, ipam_fq) is None:
                ipam_fq = (*ctx.names.infra_project, spec["ipam"]) if ":" not in spec["ipam"] else ipam_fq
            if ctx.db.get(NetworkIpam, ipam_fq) is None:
                ctx.record(obj, "Warning", "IpamNotFound", f"network IPAM {fq_str(ipam_fq)} does not exist")
                ctx.set_condition(obj, False, "IpamNotFound", fq_str(ipam_fq))
                return
            wanted = {"network_ipam_refs": [ipam_fq], "subnet": None}
        else:
            wanted = {"network_ipam_refs": [], "subnet": spec["subnet"]}
        if existing is not None:
            same = existing.network_ipam_refs == wanted["network_ipam_refs"] and existing.subnet == wanted["subnet"]
            if not same:
                ctx.record(obj, "Warning", "Immutable", "a virtual network's IPAM or subnet cannot change; delete it first")
                ctx.set_condition(obj, False, "Immutable", "ipam/subnet changed")
                return
        else:
            vn = VirtualNetwork(fq_name=fq, network_ipam_refs=wanted["network_ipam_refs"], subnet=wanted["subnet"])
            if wanted["subnet"]:
                vn.own_pool = AddressPool(wanted["subnet"])
            ctx.create_vn(vn)
        self.vns[self.key_of(obj)] = fq
        self.networks.sync_policy_refs()
        ctx.set_condition(obj, True, "Realized", fq_str(fq))

    def users_of_vn(self, fq: FqName) -> list[str]:
        vn = self.ctx.db.get(VirtualNetwork, fq)
        if vn is None:
            return []
        users = [fq_str(v.fq_name) for v in self.ctx.db.referrers(vn, VirtualMachineInterface)]
        for pool in self.ctx.db.referrers(vn, FloatingIpPool):
            users += [fq_str(f.fq_name) for f in self.ctx.db.referrers(pool, FloatingIp)]
        return users

    def remove_vn(self, key: tuple[str, str]) -> None:
        fq = self.vns.pop(key, None)
        vn = self.ctx.db.get(VirtualNetwork, fq) if fq else None
        if vn is None or fq in self.pool_vns:
            return
        self.ctx.db.update(vn, network_policy_refs=[])
        self.ctx.delete_vn(vn)

    # --- policies ------------------------------------------------------------------
    def sync_policy(self, obj: Obj) -> None:
        ctx = self.ctx
        project = self.project_of(obj)
        fq = (*project, obj["metadata"]["name"])
        rules = []
        for rule in obj["spec"].get("rules") or []:

            def side(value: str) -> FqName | str:
                return value if value in ("any", "local") else parse_vn_ref(value, ctx.names.domain, project[1])

            rules.append(
                PolicyRule(
                    action=rule["action"],
                    protocol=rule.get("protocol", "any"),
                    src=side(rule.get("src", "any")),
                    dst=side(rule.get("dst", "any")),
                    src_ports=parse_ports(rule.get("srcPorts")),
                    dst_ports=parse_ports(rule.get("ports")),
                    direction=rule.get("direction", "<>"),
                )
            )
        existing = ctx.db.get(NetworkPolicy, fq)
        if existing is None:
            ctx.db.create(NetworkPolicy(fq_name=fq, rules=rules))
        elif existing.rules != rules:
            ctx.db.update(existing, rules=rules)
        attach = [parse_vn_ref(v, ctx.names.domain, project[1]) for v in obj["spec"].get("attachTo") or []]
        for vn_fq, policies in list(self.networks.declared_attachments.items()):
            if fq in policies and vn_fq not in attach:
                policies.remove(fq)
        for vn_fq in attach:
            policies = self.networks.declared_attachments.setdefault(vn_fq, [])
            if fq not in policies:
                policies.append(fq)
        self.policies[self.key_of(obj)] = fq
        self.networks.sync_policy_refs()
        missing = [fq_str(v) for v in attach if ctx.db.get(VirtualNetwork, v) is None]
        if missing:
            ctx.record(obj, "Normal", "WaitingForNetwork", f"attached when they exist: {', '.join(missing)}")
        ctx.set_condition(obj, True, "Realized", fq_str(fq))

    def remove_policy(self, key: tuple[str, str]) -> None:
        fq = self.policies.pop(key, None)
        if fq is None:
            return
        for policies in self.networks.declared_attachments.values():
            if fq in policies:
                policies.remove(fq)
        self.networks.sync_policy_refs()
        self.ctx.delete_if_exists(NetworkPolicy, fq)

    # --- floating-IP pools ---------------------------------------------------------
    def sync_pool(self, obj: Obj) -> None:
        ctx = self.ctx
        project = self.project_of(obj)
        spec = obj["spec"]
        vn_fq = (*project, spec["network"])
        vn = ctx.db.get(VirtualNetwork, vn_fq)
        if vn is None:
            if not spec.get("subnet"):
                ctx.record(obj, "Warning", "NetworkNotFound", f"{fq_str(vn_fq)} does not exist and no subnet was given")
                ctx.set_condition(obj, False, "NetworkNotFound", fq_str(vn_fq))
                return
            vn = VirtualNetwork(fq_name=vn_fq, subnet=spec["subnet"], own_pool=AddressPool(spec["subnet"]))
            ctx.create_vn(vn)
            self.pool_vns[vn_fq] = 0
        elif spec.get("subnet") and vn.subnet not in (None, spec["subnet"]):
            ctx.record(obj, "Warning", "SubnetMismatch", f"{fq_str(vn_fq)} has subnet {vn.subnet}, not {spec['subnet']}")
        fq = (*vn_fq, obj["metadata"]["name"])
        if ctx.db.get(FloatingIpPool, fq) is None:
            ctx.db.create(FloatingIpPool(fq_name=fq, public=True))
            if vn_fq in self.pool_vns:
                self.pool_vns[vn_fq] += 1
        self.pools[self.key_of(obj)] = fq
        ctx.set_condition(obj, True, "Realized", fq_str(fq))

    def remove_pool(self, key: tuple[str, str]) -> None:
        fq = self.pools.pop(key, None)
        if fq is None:
            return
        pool = self.ctx.db.get(FloatingIpPool, fq)
        if pool is not None:
            self.ctx.db.delete(pool)
        vn_fq = fq[:-1]
        if vn_fq in self.pool_vns:
            self.pool_vns[vn_fq] -= 1
            if self.pool_vns[vn_fq] <= 0 and vn_fq not in self.vns.values():
                del self.pool_vns[vn_fq]
                vn = self.ctx.db.get(VirtualNetwork, vn_fq)
                if vn is not None and not self.ctx.db.referrers(vn, InstanceIp):
                    self.ctx.db.update(vn, network_policy_refs=[])
                    self.ctx.delete_vn(vn)

    # --- deletes the TF API would refuse ---------------------------------------------
    def check_delete(self, kind: str, obj: Obj) -> None:
        """Raise InputError when deleting ``obj`` would strand ports or floating IPs."""
        key = self.key_of(obj)
        if kind == "VirtualNetwork":
            fq = self.vns.get(key)
            users = self.users_of_vn(fq) if fq else []
        elif kind == "FloatingIpPool":
            fq = self.pools.get(key)
            pool = self.ctx.db.get(FloatingIpPool, fq) if fq else None
            users = [fq_str(f.fq_name) for f in self.ctx.db.referrers(pool, FloatingIp)] if pool else []
        else:
            return
        if users:
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            raise InputError(f"cannot delete {kind} {fq_str(fq)}: still used by {shown}")  # type: ignore[arg-type]
