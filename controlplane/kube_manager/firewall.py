"""NetworkPolicies as firewall policies — the tf reading's realisation (behaviour 1).

tf-controller's kube-manager (vnc_security_policy.py, vnc_network_policy.py) does not make
security groups of NetworkPolicies: it makes a firewall policy ``<cluster>-<ns>-<np>`` per
policy, with firewall rules whose endpoints are tags (pod labels, namespaces) and address
groups (ipBlocks), and lists them in the cluster's application policy set between
``<cluster>-Ingress`` (first) and the trailing ``<cluster>-denyall`` and ``<cluster>-allowall``.
Rules and policies are matched in sequence order. An ``except`` list is a DENY rule placed
before its PASS; each restricted direction ends in a ``-denyall`` rule.

These objects say what TF builds, for ``vrsim get aps|firewall-policies|firewall-rules|
address-groups``; enforcement follows the same tf reading of the policy
(controlplane.tf_reading, the controller's policy index), as the security groups of the
article reading summarise what the controller enforces.
"""

from __future__ import annotations

from typing import Any

from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context
from controlplane.tf.model import AddressGroup, ApplicationPolicySet, FirewallPolicy, FirewallRule, FirewallRuleSpec, FqName, PolicyManagement
from controlplane.tf_reading import TF_BEHAVIOURS, applies, tf_network_policy

PM: FqName = ("default-policy-management",)


def _selector_tags(selector: dict[str, Any] | None, namespace: str | None) -> str:
    labels = [f"label={k}:{v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    where = [f"namespace={namespace}"] if namespace else []
    return "tags " + ", ".join(where + labels) if where or labels else "any"


def _peer_endpoint(peer: dict[str, Any], namespace: str) -> str:
    if peer.get("namespaceSelector") is not None:
        spaces = peer["namespaceSelector"].get("matchLabels") or {}
        text = "any namespace" if not spaces else "namespaces " + ", ".join(f"{k}:{v}" for k, v in sorted(spaces.items()))
        pods = _selector_tags(peer.get("podSelector"), None)
        return text if pods == "any" else f"{text}, {pods}"
    return _selector_tags(peer.get("podSelector"), namespace)


class FirewallRealiser:
    """Keeps the application policy set, firewall policies, rules and address groups of the
    cluster's NetworkPolicies (the tf reading)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.order: list[FqName] = []  # the NetworkPolicies' firewall policies, in creation order

    def _name(self, *parts: str) -> FqName:
        return (*PM, "-".join(parts))

    def _aps(self) -> ApplicationPolicySet:
        ctx, cluster = self.ctx, self.ctx.config.name
        ctx.ensure(PolicyManagement(fq_name=PM))
        globals_ = {suffix: ctx.ensure(FirewallPolicy(fq_name=self._name(cluster, suffix))) for suffix in ("Ingress", "denyall", "allowall")}
        self._rule(globals_["Ingress"], f"{cluster}-Ingress-allow", FirewallRuleSpec("pass", "tags ingress HAProxy", "any"))
        self._rule(globals_["denyall"], f"{cluster}-denyall", FirewallRuleSpec("deny", "any", "any"))
        self._rule(globals_["allowall"], f"{cluster}-allowall", FirewallRuleSpec("pass", "any", "any"))
        return ctx.ensure(ApplicationPolicySet(fq_name=self._name(cluster)))

    def _rule(self, policy: FirewallPolicy, name: str, spec: FirewallRuleSpec) -> FqName:
        fq = (*PM, name)
        existing = self.ctx.db.get(FirewallRule, fq)
        if existing is None:
            self.ctx.db.create(FirewallRule(fq_name=fq, rule=spec))
        elif existing.rule != spec:
            self.ctx.db.update(existing, rule=spec)
        if fq not in policy.firewall_rule_refs:
            self.ctx.db.update(policy, firewall_rule_refs=[*policy.firewall_rule_refs, fq])
        return fq

    def _sequence(self) -> None:
        cluster = self.ctx.config.name
        aps = self._aps()
        wanted = [self._name(cluster, "Ingress"), *self.order, self._name(cluster, "denyall"), self._name(cluster, "allowall")]
        if aps.firewall_policy_refs != wanted:
            self.ctx.db.update(aps, firewall_policy_refs=wanted)

    def sync(self, policy: Obj) -> FqName:
        """Realise one NetworkPolicy as TF's code reads it; returns its firewall policy."""
        ctx = self.ctx
        self._aps()
        # as kube-manager's parsers read it, but a named port kept as written (the rule exists,
        # matching no port: behaviour 2), and endPort dropped (ports_parser reads port only)
        keep_names = ctx.config.model_copy(update={"tfBehaviours": [b for b in TF_BEHAVIOURS if b != 2 and applies(ctx.config, b)]})
        read = tf_network_policy(policy, keep_names)
        namespace = policy["metadata"].get("namespace") or "default"
        name = policy["metadata"]["name"]
        fq = self._name(ctx.config.name, namespace, name)
        old = ctx.db.get(FirewallPolicy, fq)
        if old is not None:
            self.remove(namespace, name)
        fw = ctx.db.create(FirewallPolicy(fq_name=fq, network_policy=f"{namespace}/{name}"))
        selected = _selector_tags((read.get("spec") or {}).get("podSelector"), namespace)
        spec = read.get("spec") or {}
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            if direction.capitalize() not in (spec.get("policyTypes") or []):
                continue
            prefix = f"{namespace}-{direction}-{name}"
            for i, rule in enumerate(spec.get(direction) or []):
                peers = rule.get(peers_key) or [{}]
                ports = rule.get("ports") or [None]
                for j, peer in enumerate(peers):
                    if peer.get("ipBlock"):
                        block = peer["ipBlock"]
                        group = ctx.ensure(AddressGroup(fq_name=(*PM, f"{prefix}-{i}-{j}"), prefixes=[block["cidr"]]))
                        other = f"address-group {group.name}"
                        if block.get("except"):
                            holes = ctx.ensure(AddressGroup(fq_name=(*PM, f"{prefix}-{i}-{j}-except"), prefixes=list(block["except"])))
                            for k, port in enumerate(ports):
                                ends = (f"address-group {holes.name}", selected) if direction == "ingress" else (selected, f"address-group {holes.name}")
                                self._rule(fw, f"{prefix}-{i}-{j}-{k}-except", FirewallRuleSpec("deny", *ends, *_service(port)))
                    else:
                        other = _peer_endpoint(peer, namespace) if peer else "any"
                    for k, port in enumerate(ports):
                        ends = (other, selected) if direction == "ingress" else (selected, other)
                        self._rule(fw, f"{prefix}-{i}-{j}-{k}", FirewallRuleSpec("pass", *ends, *_service(port)))
            ends = ("any", selected) if direction == "ingress" else (selected, "any")
            self._rule(fw, f"{prefix}-denyall", FirewallRuleSpec("deny", *ends))
        if fq not in self.order:
            self.order.append(fq)
        self._sequence()
        return fq

    def remove(self, namespace: str, name: str) -> None:
        ctx = self.ctx
        fq = self._name(ctx.config.name, namespace, name)
        fw = ctx.db.get(FirewallPolicy, fq)
        if fw is None:
            return
        rules = list(fw.firewall_rule_refs)
        if fq in self.order:
            self.order.remove(fq)
        self._sequence()
        ctx.db.delete(fw)
        for rule in rules:
            ctx.delete_if_exists(FirewallRule, rule)
        prefixes = (f"{namespace}-ingress-{name}-", f"{namespace}-egress-{name}-")
        for group in [g for g in ctx.db.list(AddressGroup) if g.name.startswith(prefixes)]:
            ctx.db.delete(group)


def _service(port: dict[str, Any] | None) -> tuple[Any, ...]:
    """A rule's port as a firewall service: (protocol, port range); none: any."""
    if not port:
        return "any", (0, 65535)
    protocol = str(port.get("protocol") or "TCP").lower()
    number = port.get("port")
    if number is None:
        return protocol, (0, 65535)
    if isinstance(number, str):
        return protocol, (0, 0), ">", number
    return protocol, (int(number), int(number))
