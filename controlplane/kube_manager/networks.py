"""Projects, virtual networks and VN-level policies: the cluster defaults and namespaces.

At start (spec §2): the domain, the fabric project with the ``ip-fabric`` VN, the cluster's
infrastructure project with its three IPAMs, the default pod and service VNs, and the three
default policies; one virtual router per node.

Per namespace (spec §4): a project (multi-tenant) and a default security group. An isolated
namespace also gets its own pod and service VNs and ``<C>-<ns>-pod-service-np``. Every service VN has the floating-IP
pool ``svc-fip-pool-<vn>`` from which its ClusterIP floating IPs come (the article's
"Inter-FIP", allocated from the service VN's pool).

Choice: ``isolation.service: "false"`` is realised with one more policy,
``<C>-<ns>-service-np`` ("every VN this policy is attached to" ↔ the namespace's service VN),
attached to that service VN and to the pod VN of every other namespace (the default pod VN
and every isolated namespace's), which gives exactly the reachability of spec §4 and §10.
VNs a scenario declares itself (custom networks) are not attached automatically: as in TF,
their author connects them with policies.

Policy attachments are recomputed as a whole (:meth:`NetworkHandler.sync_policy_refs`)
whenever a namespace or a declared policy changes: attachments depend on every namespace,
so a level-based recomputation cannot drift the way incremental edits can.
"""

from __future__ import annotations

from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context
from controlplane.tf.model import (
    Domain,
    FloatingIpPool,
    FqName,
    NetworkIpam,
    NetworkPolicy,
    PolicyRule,
    Project,
    SecurityGroup,
    SGRule,
    VirtualNetwork,
    VirtualRouter,
)

ALLOW_ALL_RULES = [SGRule("ingress"), SGRule("egress")]


def pass_rule(src: FqName | str, dst: FqName | str) -> PolicyRule:
    return PolicyRule(action="pass", protocol="any", src=src, dst=dst, direction="<>")


class NetworkHandler:
    """Cluster defaults and the Namespace → project/VN/policy mapping."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        #: policies attached to VNs by declared TF NetworkPolicies: VN → [policy]
        self.declared_attachments: dict[FqName, list[FqName]] = {}

    # --- defaults --------------------------------------------------------------------
    def create_defaults(self) -> None:
        ctx, names, cfg = self.ctx, self.ctx.names, self.ctx.config
        ctx.ensure(Domain(fq_name=(names.domain,)))
        if names.fabric_project[0] != names.domain:
            ctx.ensure(Domain(fq_name=(names.fabric_project[0],)))
        ctx.ensure(Project(fq_name=names.fabric_project))
        ctx.ensure(Project(fq_name=names.infra_project, annotations={"cluster": names.cluster}))
        for role, subnet in (("pod", cfg.podSubnet), ("service", cfg.serviceSubnet), ("ip-fabric", cfg.ipFabricSubnet)):
            ctx.ensure(NetworkIpam(fq_name=names.ipam(role), subnet=subnet))
        ctx.ensure(NetworkPolicy(fq_name=names.ip_fabric_policy, rules=[pass_rule("local", names.ip_fabric_vn)]))
        ctx.ensure(NetworkPolicy(fq_name=names.default_service_policy, rules=[pass_rule("local", names.default_service_vn)]))
        ctx.ensure(
            NetworkPolicy(
                fq_name=names.pod_service_policy("default"),
                rules=[pass_rule(names.default_pod_vn, names.default_service_vn)],
            )
        )
        ctx.create_vn(
            VirtualNetwork(fq_name=names.ip_fabric_vn, network_ipam_refs=[names.ipam("ip-fabric")], ip_fabric=True)
        )
        ctx.create_vn(VirtualNetwork(fq_name=names.default_pod_vn, network_ipam_refs=[names.ipam("pod")]))
        ctx.create_vn(VirtualNetwork(fq_name=names.default_service_vn, network_ipam_refs=[names.ipam("service")]))
        ctx.ensure(FloatingIpPool(fq_name=names.service_fip_pool(names.default_service_vn)))
        for node in cfg.nodes:
            ctx.ensure(VirtualRouter(fq_name=names.virtual_router(node.name), virtual_router_ip_address=node.ip))
        self.sync_policy_refs()

    # --- namespaces ------------------------------------------------------------------
    def ensure_namespace(self, namespace: Obj) -> None:
        """Create what the namespace needs now (removal of what it no longer needs is
        :meth:`prune_namespace`, run after its pods and services have moved)."""
        ctx, names = self.ctx, self.ctx.names
        name = namespace["metadata"]["name"]
        mode = ctx.namespace_mode(name)
        project = names.project(name)
        ctx.ensure(Project(fq_name=project, annotations={"cluster": names.cluster, "namespace": name}))
        ctx.ensure(SecurityGroup(fq_name=names.default_sg(name), rules=list(ALLOW_ALL_RULES)))
        if mode.isolated:
            pod_vn, service_vn = names.ns_pod_vn(name), names.ns_service_vn(name)
            ctx.ensure(NetworkPolicy(fq_name=names.pod_service_policy(name), rules=[pass_rule(pod_vn, service_vn)]))
            for fq, ipam in ((pod_vn, "pod"), (service_vn, "service")):
                if ctx.db.get(VirtualNetwork, fq) is None:
                    ctx.create_vn(VirtualNetwork(fq_name=fq, network_ipam_refs=[names.ipam(ipam)]))
            ctx.ensure(FloatingIpPool(fq_name=names.service_fip_pool(service_vn)))
        if mode.services_open:
            ctx.ensure(
                NetworkPolicy(fq_name=names.shared_service_policy(name), rules=[pass_rule("local", names.ns_service_vn(name))])
            )

    def prune_namespace(self, name: str) -> None:
        """Remove what a namespace's current mode no longer needs."""
        if name == "default":  # its VNs and policy are the cluster defaults
            return
        mode = self.ctx.namespace_mode(name)
        if not mode.services_open:
            self._drop_policy(self.ctx.names.shared_service_policy(name))
        if not mode.isolated:
            self._remove_isolation(name)

    def _drop_policy(self, fq: FqName) -> None:
        policy = self.ctx.db.get(NetworkPolicy, fq)
        if policy is None:
            return
        for vn in self.ctx.db.referrers(policy, VirtualNetwork):
            self.ctx.db.update(vn, network_policy_refs=[p for p in vn.network_policy_refs if p != fq])
        self.ctx.db.delete(policy)

    def _remove_isolation(self, name: str) -> None:
        """Drop an isolated namespace's VNs (its pods and services must already be gone)."""
        names = self.ctx.names
        for fq in (names.ns_pod_vn(name), names.ns_service_vn(name)):
            vn = self.ctx.db.get(VirtualNetwork, fq)
            if vn is not None:
                self.ctx.db.update(vn, network_policy_refs=[])
                self.ctx.delete_vn(vn)
        self._drop_policy(names.pod_service_policy(name))
        self._drop_policy(names.shared_service_policy(name))

    def remove_namespace(self, name: str) -> None:
        ctx, names = self.ctx, self.ctx.names
        if name == "default":
            return
        self._remove_isolation(name)
        ctx.delete_if_exists(SecurityGroup, names.default_sg(name))
        project = ctx.db.get(Project, names.project(name))
        if project is not None and project.fq_name not in (names.infra_project, names.fabric_project):
            if not ctx.db.referrers(project):
                ctx.db.delete(project)

    # --- attachments -----------------------------------------------------------------
    def managed_policy_refs(self) -> dict[FqName, list[FqName]]:
        """kube-manager's own attachments for every VN it manages."""
        ctx, names = self.ctx, self.ctx.names
        open_services = []
        isolated = []
        for ns in ctx.store.list("Namespace"):
            mode = ctx.namespace_mode(ns["metadata"]["name"])
            if mode.isolated:
                isolated.append(mode.name)
                if mode.services_open:
                    open_services.append(mode.name)
        refs: dict[FqName, list[FqName]] = {
            names.ip_fabric_vn: [names.ip_fabric_policy],
            names.default_pod_vn: [names.ip_fabric_policy, names.pod_service_policy("default")],
            names.default_service_vn: [
                names.ip_fabric_policy,
                names.default_service_policy,
                names.pod_service_policy("default"),
            ],
        }
        for ns in isolated:
            refs[names.ns_pod_vn(ns)] = [names.pod_service_policy(ns), names.ip_fabric_policy, names.default_service_policy]
            refs[names.ns_service_vn(ns)] = [names.pod_service_policy(ns), names.ip_fabric_policy]
        for ns in open_services:
            policy = names.shared_service_policy(ns)
            refs[names.ns_service_vn(ns)].append(policy)
            for other in [names.default_pod_vn, *(names.ns_pod_vn(o) for o in isolated if o != ns)]:
                refs[other].append(policy)
        return refs

    def sync_policy_refs(self) -> None:
        """Bring every VN's ``network_policy_refs`` to managed + declared attachments."""
        managed = self.managed_policy_refs()
        for vn in self.ctx.db.list(VirtualNetwork):
            wanted = [p for p in self.declared_attachments.get(vn.fq_name, []) if self.ctx.db.get(NetworkPolicy, p)]
            for policy in managed.get(vn.fq_name, []):
                if policy not in wanted and self.ctx.db.get(NetworkPolicy, policy) is not None:
                    wanted.append(policy)
            if wanted != vn.network_policy_refs:
                self.ctx.db.update(vn, network_policy_refs=wanted)
