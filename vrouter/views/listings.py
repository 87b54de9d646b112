"""``vrsim get``: kubectl-style listings of Kubernetes objects and of the TF objects behind them.

Each kind has a function returning a :class:`Listing` — column names and rows for the table,
the wide columns, and the JSON items — so the CLI only chooses the output format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.cluster import CLUSTER_SCOPED_IGNORED, Cluster, canonical_kind
from controlplane.errors import InputError
from controlplane.k8s.workloads import controller_of, owned_by, pods_of
from controlplane.tf import model as tf
from controlplane.tf.model import TFObject, fq_str
from vrouter.tabular import Tabular


@dataclass
class Listing(Tabular):
    """A ``vrsim get`` answer: the table (and its wide columns) and the objects behind it."""

    columns: list[str]
    rows: list[list[str]]
    wide_columns: list[str] = field(default_factory=list)
    wide_rows: list[list[str]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    kubernetes: bool = True
    resource: str = ""  # what ``-o name`` prints before the slash (kubectl's: ``pod``, ``deployment.apps``)
    namespaced: bool = True

    def records(self) -> list[dict[str, Any]]:
        """One row per object, wide columns included."""
        wide = self.wide_rows or [[] for _ in self.rows]
        return [dict(zip([*self.columns, *self.wide_columns], [*row, *extra], strict=False)) for row, extra in zip(self.rows, wide, strict=True)]

    def names(self) -> list[str]:
        """Each row's object name (a TF object's full fq_name)."""
        if self.kubernetes:
            return [str((item.get("metadata") or {}).get("name", "")) for item in self.items]
        return [row[0] for row in self.rows]

    def keep(self, wanted: list[bool]) -> "Listing":
        """The listing with only the rows marked True."""
        pick = [i for i, w in enumerate(wanted) if w]
        wide = [self.wide_rows[i] for i in pick] if self.wide_rows else []
        return Listing(self.columns, [self.rows[i] for i in pick], self.wide_columns, wide, [self.items[i] for i in pick], self.kubernetes, self.resource, self.namespaced)


def _ns_sort(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _select(cluster: Cluster, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    objects = cluster.store.list(kind) if namespace is None else cluster.store.list(kind, namespace)
    return sorted(objects, key=_ns_sort)


def _ports_text(ports: list[dict[str, Any]], with_node: bool) -> str:
    out = []
    for port in ports:
        text = str(port.get("port"))
        if with_node and port.get("nodePort"):
            text += f":{port['nodePort']}"
        out.append(f"{text}/{port.get('protocol') or 'TCP'}")
    return ",".join(out) or "<none>"


def _pods(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "READY", "STATUS", "RESTARTS"], [], ["IP", "NODE", "NETWORK"], [])
    records = cluster.kube_manager.pods.records
    for pod in _select(cluster, "Pod", namespace):
        status = pod.get("status") or {}
        phase = status.get("phase") or "Pending"
        containers = len((pod.get("spec") or {}).get("containers") or [])
        ready = containers if phase == "Running" else 0
        meta = pod["metadata"]
        record = records.get((meta.get("namespace") or "", meta["name"]))
        network = fq_str(record.vn) if record else ("host" if (pod.get("spec") or {}).get("hostNetwork") else "<none>")
        out.rows.append([meta["name"], f"{ready}/{containers}", phase, "0"])
        out.wide_rows.append([status.get("podIP") or "<none>", (pod.get("spec") or {}).get("nodeName") or "<none>", network])
        out.items.append(pod)
    return out


def _services(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"], [], ["SELECTOR"], [])
    for svc in _select(cluster, "Service", namespace):
        spec = svc.get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external = [i.get("ip") for i in ingress if i.get("ip")] or list(spec.get("externalIPs") or [])
        if svc_type == "ExternalName":
            external = [spec.get("externalName", "")]
        shown = ",".join(dict.fromkeys(external)) or ("<pending>" if svc_type == "LoadBalancer" else "<none>")
        out.rows.append(
            [
                svc["metadata"]["name"],
                svc_type,
                spec.get("clusterIP") or "<none>",
                shown,
                _ports_text(spec.get("ports") or [], svc_type in ("NodePort", "LoadBalancer")),
            ]
        )
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
        out.wide_rows.append([selector])
        out.items.append(svc)
    return out


def _endpoints(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "ENDPOINTS"], [])
    for ep in _select(cluster, "Endpoints", namespace):
        addresses = []
        for subset in ep.get("subsets") or []:
            for address in subset.get("addresses") or []:
                for port in subset.get("ports") or []:
                    addresses.append(f"{address['ip']}:{port['port']}")
        out.rows.append([ep["metadata"]["name"], ",".join(addresses) or "<none>"])
        out.items.append(ep)
    return out


def _ingresses(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS"], [])
    for ing in _select(cluster, "Ingress", namespace):
        spec = ing.get("spec") or {}
        hosts = ",".join(r.get("host") or "*" for r in spec.get("rules") or []) or "*"
        address = ",".join(i.get("ip", "") for i in ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
        cls = spec.get("ingressClassName") or "<none>"
        out.rows.append([ing["metadata"]["name"], cls, hosts, address, "80, 443" if spec.get("tls") else "80"])
        out.items.append(ing)
    return out


def _network_policies(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "POD-SELECTOR"], [])
    for np_ in _select(cluster, "NetworkPolicy", namespace):
        selector = (np_.get("spec") or {}).get("podSelector") or {}
        labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
        exprs = ",".join(f"{e['key']} {e['operator']}" for e in selector.get("matchExpressions") or [])
        out.rows.append([np_["metadata"]["name"], ",".join(x for x in (labels, exprs) if x) or "<none>"])
        out.items.append(np_)
    return out


def _events(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["TYPE", "REASON", "OBJECT", "MESSAGE", "COUNT"], [])
    for event in cluster.store.events:
        if namespace is not None and event.namespace != namespace:
            continue
        out.rows.append([event.type, event.reason, f"{event.kind.lower()}/{event.name}", event.message, str(event.count)])
        out.items.append(event.to_json())
    return out


def _generic(kind: str) -> Callable[[Cluster, str | None], Listing]:
    def listing(cluster: Cluster, namespace: str | None) -> Listing:
        out = Listing(["NAME", "OWNER"], [])
        for obj in _select(cluster, kind, namespace):
            owner = controller_of(obj)
            out.rows.append([obj["metadata"]["name"], f"{owner['kind']}/{owner['name']}" if owner else "<none>"])
            out.items.append(obj)
        return out

    return listing


def _ready(pods: list[dict[str, Any]]) -> int:
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


def _template_columns(obj: dict[str, Any]) -> list[str]:
    """kubectl's wide CONTAINERS, IMAGES, SELECTOR of a workload."""
    spec = obj.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = (spec.get("selector") or {}).get("matchLabels") or spec.get("selector") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()) if isinstance(v, str)) or "<none>"
    return [",".join(str(c.get("name")) for c in containers) or "<none>", ",".join(str(c.get("image")) for c in containers) or "<none>", labels]


def _workloads(kind: str) -> Callable[[Cluster, str | None], Listing]:
    """Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
    CronJobs with kubectl's columns, counted from the pods they control."""

    def listing(cluster: Cluster, namespace: str | None) -> Listing:
        columns = {
            "Deployment": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"],
            "StatefulSet": ["NAME", "READY"],
            "DaemonSet": ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR"],
            "ReplicaSet": ["NAME", "DESIRED", "CURRENT", "READY"],
            "ReplicationController": ["NAME", "DESIRED", "CURRENT", "READY"],
            "Job": ["NAME", "STATUS", "COMPLETIONS"],
            "CronJob": ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE"],
        }[kind]
        out = Listing(columns, [], ["CONTAINERS", "IMAGES", "SELECTOR"], [])
        for obj in _select(cluster, kind, namespace):
            meta, spec = obj["metadata"], obj.get("spec") or {}
            pods = pods_of(cluster.store, kind, meta.get("namespace") or "", meta["name"])
            ready, current = _ready(pods), len(pods)
            wanted = int(spec.get("replicas", 1)) if kind not in ("DaemonSet", "Job", "CronJob") else current
            row = {
                "Deployment": [f"{ready}/{wanted}", str(current), str(ready)],
                "StatefulSet": [f"{ready}/{wanted}"],
                "DaemonSet": [str(current), str(current), str(ready), str(current), str(ready), ",".join(f"{k}={v}" for k, v in sorted((((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}).items())) or "<none>"],
                "ReplicaSet": [str(wanted), str(current), str(ready)],
                "ReplicationController": [str(wanted), str(current), str(ready)],
                "Job": ["Running" if current else "Complete", f"0/{spec.get('completions', 1)}"],
                "CronJob": [str(spec.get("schedule", "")), str(bool(spec.get("suspend", False))), str(len(owned_by(cluster.store, "Job", meta.get("namespace") or "", obj)))],
            }[kind]
            out.rows.append([meta["name"], *row])
            out.wide_rows.append(_template_columns(obj) if kind != "CronJob" else _template_columns((spec.get("jobTemplate") or {})))
            out.items.append(obj)
        return out

    return listing


def _nodes(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "STATUS", "ROLES"], [], ["INTERNAL-IP", "VROUTER"], [], namespaced=False)
    for node in sorted(cluster.store.list("Node"), key=_ns_sort):
        name = node["metadata"]["name"]
        address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"), "<none>")
        out.rows.append([name, "Ready", "<none>"])
        out.wide_rows.append([address, fq_str(("default-global-system-config", name))])
        out.items.append(node)
    return out


def _ignored(kind: str) -> Callable[[Cluster, str | None], Listing]:
    """A kind the simulation does not use (ServiceAccount, ConfigMap, a CRD): listed as applied."""

    def listing(cluster: Cluster, namespace: str | None) -> Listing:
        priority = kind == "AdminNetworkPolicy"  # kubectl's column for it
        out = Listing(["NAME", "PRIORITY"] if priority else ["NAME"], [], namespaced=kind not in CLUSTER_SCOPED_IGNORED)
        for (k, ns, _), obj in sorted(cluster.ignored.items()):
            if k == kind and (namespace is None or ns == namespace or not out.namespaced):
                row = [obj["metadata"]["name"]]
                out.rows.append([*row, str((obj.get("spec") or {}).get("priority", ""))] if priority else row)
                out.items.append(obj)
        return out

    return listing


def _namespaces(cluster: Cluster, namespace: str | None) -> Listing:
    out = Listing(["NAME", "STATUS", "ISOLATED", "PROJECT"], [])
    ctx = cluster.kube_manager.ctx
    for ns in sorted(cluster.store.list("Namespace"), key=_ns_sort):
        name = ns["metadata"]["name"]
        mode = ctx.namespace_mode(name)
        isolated = "yes" + (" (services open)" if mode.services_open else "") if mode.isolated else "no"
        out.rows.append([name, "Active", isolated, fq_str(ctx.names.project(name))])
        out.items.append(ns)
    return out


KUBERNETES_LISTINGS: dict[str, Callable[[Cluster, str | None], Listing]] = {
    "Pod": _pods,
    "Service": _services,
    "Endpoints": _endpoints,
    "Ingress": _ingresses,
    "NetworkPolicy": _network_policies,
    "Namespace": _namespaces,
    "Node": _nodes,
    **{kind: _workloads(kind) for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")},
}

#: what ``kubectl get -o name`` prints for each kind (the resource, group-qualified outside core)
RESOURCE_NAMES = {
    "Pod": "pod", "Service": "service", "Endpoints": "endpoints", "Namespace": "namespace", "Node": "node",
    "ReplicationController": "replicationcontroller", "Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps",
    "StatefulSet": "statefulset.apps", "DaemonSet": "daemonset.apps", "Job": "job.batch", "CronJob": "cronjob.batch",
    "Ingress": "ingress.networking.k8s.io", "NetworkPolicy": "networkpolicy.networking.k8s.io",
    "EndpointSlice": "endpointslice.discovery.k8s.io",
}
#: kubectl's short names of common kinds the simulation ignores
IGNORED_SHORT_NAMES = {"anp": "AdminNetworkPolicy", "banp": "BaselineAdminNetworkPolicy", "sa": "ServiceAccount", "cm": "ConfigMap", "pvc": "PersistentVolumeClaim", "pv": "PersistentVolume", "hpa": "HorizontalPodAutoscaler", "pdb": "PodDisruptionBudget", "crd": "CustomResourceDefinition", "sc": "StorageClass"}
#: Kubernetes kinds the simulation ignores but lists (empty until one is applied), as kubectl names them
IGNORED_KINDS = (
    "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolume", "StorageClass", "Role",
    "RoleBinding", "ClusterRole", "ClusterRoleBinding", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    "CustomResourceDefinition", "LimitRange", "ResourceQuota", "PriorityClass", "IngressClass", "Route",
)

# --- TF objects -------------------------------------------------------------------------


def _tf_row(obj: TFObject) -> list[str]:
    if isinstance(obj, tf.VirtualNetwork):
        subnet = obj.subnet or ",".join(fq_str(r) for r in obj.network_ipam_refs)
        return [subnet, str(obj.virtual_network_network_id), ", ".join(r[-1] for r in obj.network_policy_refs) or "-"]
    if isinstance(obj, tf.NetworkIpam):
        pool = obj.pool
        gateway = str(pool.gateway) if pool and pool.gateway else "-"
        return [obj.subnet, gateway, str(pool.in_use if pool else 0)]
    if isinstance(obj, tf.NetworkPolicy):
        return [str(len(obj.rules)), "; ".join(_rule_text(r) for r in obj.rules)]
    if isinstance(obj, tf.SecurityGroup):
        return [obj.network_policy or "-", str(len(obj.rules))]
    if isinstance(obj, tf.VirtualMachineInterface):
        vn = fq_str(obj.virtual_network_refs[0]) if obj.virtual_network_refs else "-"
        return [vn, obj.mac_address or "-", obj.node or "-", obj.device_owner]
    if isinstance(obj, tf.InstanceIp):
        vmis = ", ".join(r[-1] for r in obj.virtual_machine_interface_refs)
        return [obj.instance_ip_address, fq_str(obj.virtual_network_refs[0]) if obj.virtual_network_refs else "-", vmis]
    if isinstance(obj, tf.FloatingIp):
        maps = ",".join(f"{m.protocol}/{m.src_port}→{m.dst_port}" for m in obj.port_mappings) or (
            "per-member" if obj.port_mappings_by_vmi else "-"
        )
        return [obj.floating_ip_address, obj.role or "-", str(len(obj.virtual_machine_interface_refs)), maps]
    if isinstance(obj, tf.Loadbalancer):
        return [obj.loadbalancer_provider, obj.vip_address, obj.status]
    if isinstance(obj, tf.LoadbalancerListener):
        return [obj.protocol, str(obj.protocol_port)]
    if isinstance(obj, tf.LoadbalancerPool):
        rule = f"{obj.host or '*'}{obj.path or ''}" if (obj.host or obj.path) else "-"
        return [obj.protocol, rule]
    if isinstance(obj, tf.LoadbalancerMember):
        return [f"{obj.address}:{obj.protocol_port}", obj.target]
    if isinstance(obj, tf.VirtualMachine):
        return [", ".join(r[-1] for r in obj.virtual_router_refs) or "-"]
    if isinstance(obj, tf.VirtualRouter):
        return [obj.virtual_router_ip_address]
    if isinstance(obj, tf.ApplicationPolicySet):
        return [", ".join(r[-1] for r in obj.firewall_policy_refs) or "-"]
    if isinstance(obj, tf.AddressGroup):
        return [", ".join(obj.prefixes)]
    if isinstance(obj, tf.Tag):
        return [obj.tag_type_name, obj.tag_value]
    return []


def _rule_text(rule: tf.PolicyRule) -> str:
    def side(value: tuple[str, ...] | str) -> str:
        return value if isinstance(value, str) else value[-1]

    ports = "" if rule.dst_ports == (0, 65535) else f" port {rule.dst_ports[0]}-{rule.dst_ports[1]}"
    return f"{rule.action} {rule.protocol} {side(rule.src)} {rule.direction} {side(rule.dst)}{ports}"


TF_COLUMNS: dict[str, tuple[type[TFObject], list[str]]] = {
    "projects": (tf.Project, []),
    "domains": (tf.Domain, []),
    "vns": (tf.VirtualNetwork, ["SUBNET/IPAM", "ID", "POLICIES"]),
    "ipams": (tf.NetworkIpam, ["SUBNET", "GATEWAY", "IN-USE"]),
    "policies": (tf.NetworkPolicy, ["RULES", "SUMMARY"]),
    "sgs": (tf.SecurityGroup, ["NETWORK-POLICY", "RULES"]),
    "vms": (tf.VirtualMachine, ["VROUTER"]),
    "vmis": (tf.VirtualMachineInterface, ["NETWORK", "MAC", "NODE", "OWNER"]),
    "iips": (tf.InstanceIp, ["ADDRESS", "NETWORK", "INTERFACES"]),
    "fips": (tf.FloatingIp, ["ADDRESS", "ROLE", "INTERFACES", "PORT-MAP"]),
    "fip-pools": (tf.FloatingIpPool, []),
    "lbs": (tf.Loadbalancer, ["PROVIDER", "VIP", "STATUS"]),
    "listeners": (tf.LoadbalancerListener, ["PROTOCOL", "PORT"]),
    "pools": (tf.LoadbalancerPool, ["PROTOCOL", "RULE"]),
    "members": (tf.LoadbalancerMember, ["ADDRESS", "TARGET"]),
    "vrouters": (tf.VirtualRouter, ["IP"]),
    "tags": (tf.Tag, ["TYPE", "VALUE"]),
    "aps": (tf.ApplicationPolicySet, ["FIREWALL-POLICIES"]),
    "firewall-policies": (tf.FirewallPolicy, ["SEQUENCE", "NETWORK-POLICY", "RULES"]),
    "firewall-rules": (tf.FirewallRule, ["POLICY", "SEQUENCE", "ACTION", "FROM", "TO", "SERVICE"]),
    "address-groups": (tf.AddressGroup, ["PREFIXES"]),
    "vrfs": (tf.RoutingInstance, []),
}
TF_ALIASES = {
    "project": "projects",
    "vn": "vns",
    "virtual-networks": "vns",
    "virtualnetworks": "vns",
    "ipam": "ipams",
    "policy": "policies",
    "network-policies": "policies",
    "sg": "sgs",
    "security-groups": "sgs",
    "vm": "vms",
    "vmi": "vmis",
    "iip": "iips",
    "fip": "fips",
    "floating-ips": "fips",
    "fippools": "fip-pools",
    "lb": "lbs",
    "loadbalancers": "lbs",
    "vrouter": "vrouters",
    "tag": "tags",
    "application-policy-sets": "aps",
    "fwps": "firewall-policies",
    "firewall-policy": "firewall-policies",
    "fwrs": "firewall-rules",
    "firewall-rule": "firewall-rules",
    "ags": "address-groups",
    "address-group": "address-groups",
    "vrf": "vrfs",
    "routing-instances": "vrfs",
}


def _firewall_listing(cluster: Cluster, cls: type[TFObject], extra: list[str]) -> Listing:
    """Firewall policies and rules in sequence order: the application policy set's order, then
    each policy's (kube-manager matches them in that order)."""
    policies = [p for aps in cluster.db.list(tf.ApplicationPolicySet) for p in aps.firewall_policy_refs]
    rows, items = [], []
    for seq, fq in enumerate(policies, 1):
        policy = cluster.db.get(tf.FirewallPolicy, fq)
        if policy is None:
            continue
        if cls is tf.FirewallPolicy:
            rows.append([fq_str(fq), str(seq), policy.network_policy or "-", str(len(policy.firewall_rule_refs))])
            items.append(policy.to_json())
            continue
        for rule_seq, rule_fq in enumerate(policy.firewall_rule_refs, 1):
            rule = cluster.db.get(tf.FirewallRule, rule_fq)
            if rule is not None:
                r = rule.rule
                service = r.protocol if r.ports == (0, 65535) else f"{r.protocol} {r.ports[0]}" + (f"-{r.ports[1]}" if r.ports[1] != r.ports[0] else "")
                if r.port_name:
                    service = f"{r.protocol} {r.port_name} (unresolved: no port)"
                rows.append([fq_str(rule_fq), fq[-1], f"{seq}.{rule_seq}", r.action, r.endpoint_1, r.endpoint_2, service])
                items.append(rule.to_json())
    return Listing(["FQ-NAME", *extra], rows, items=items, kubernetes=False)


def tf_listing(cluster: Cluster, what: str, namespace: str | None) -> Listing:
    cls, extra = TF_COLUMNS[what]
    if cls in (tf.FirewallPolicy, tf.FirewallRule):
        return _firewall_listing(cluster, cls, extra)
    project = cluster.kube_manager.ctx.names.project(namespace) if namespace else None
    objects = sorted(cluster.db.list(cls), key=lambda o: o.fq_name)
    if project is not None:
        objects = [o for o in objects if o.fq_name[: len(project)] == project]
    rows = [[fq_str(o.fq_name), *_tf_row(o)] for o in objects]
    return Listing(["FQ-NAME", *extra], rows, items=[o.to_json() for o in objects], kubernetes=False)


def _ignored_kind(cluster: Cluster, what: str) -> str | None:
    """The kind an ignored object was applied as, if ``what`` names it (``sa``, ``configmaps``…)."""
    key = what.lower()
    if key in IGNORED_SHORT_NAMES:
        return IGNORED_SHORT_NAMES[key]
    for kind in sorted({k for k, _, _ in cluster.ignored} | set(IGNORED_KINDS)):
        low = kind.lower()
        if key in (low, low + "s", low + "es", low[:-1] + "ies" if low.endswith("y") else low):
            return kind
    return None


def listing_for(cluster: Cluster, what: str, namespace: str | None) -> Listing:
    """The listing of ``what`` (a Kubernetes kind or alias, or a TF object kind)."""
    key = what.lower()
    key = TF_ALIASES.get(key, key)
    if key in TF_COLUMNS:
        listing = tf_listing(cluster, key, namespace)
        listing.resource = next((alias for alias, full in TF_ALIASES.items() if full == key and "-" not in alias), key)
        return listing
    if key in ("events", "event", "ev"):
        listing = _events(cluster, namespace)
        listing.resource = "event"
        return listing
    try:
        kind = canonical_kind(what)
    except InputError:
        ignored = _ignored_kind(cluster, what)
        if ignored is None:
            known = sorted({*TF_COLUMNS, "pods", "services", "endpoints", "ingresses", "networkpolicies", "events", "namespaces", "nodes", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"})
            raise InputError(f"unknown kind {what!r}; try one of: {', '.join(known)}, or a kind you applied (serviceaccounts, configmaps, …)") from None
        listing = _ignored(ignored)(cluster, namespace)
        listing.resource = ignored.lower()
        return listing
    if kind in ("Namespace", "Node"):
        listing = KUBERNETES_LISTINGS[kind](cluster, None)
        listing.namespaced = False
    else:
        listing = KUBERNETES_LISTINGS.get(kind, _generic(kind))(cluster, namespace)
    listing.resource = RESOURCE_NAMES.get(kind, kind.lower())
    return listing
