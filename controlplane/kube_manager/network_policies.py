"""Kubernetes NetworkPolicies → TF security groups (spec §8, the article's last section).

Each NetworkPolicy ``np`` of namespace ``ns`` becomes security group ``<C>-<ns>-<np>`` in the
namespace's project, attached to the VMI of every pod its ``podSelector`` selects, next to
the namespace's allow-all default group. Its rules summarise the policy for people reading
``vrsim get sgs``; flow setup evaluates the policy itself with Kubernetes semantics
(controlplane.controller.netpol), which is what the SG's rules mean.
"""

from __future__ import annotations

from typing import Any

from controlplane.k8s.selectors import matches
from controlplane.k8s.store import Obj
from controlplane.kube_manager.context import Context
from controlplane.kube_manager.firewall import FirewallRealiser
from controlplane.tf.model import FqName, SecurityGroup, SGRule
from controlplane.tf_reading import applies


def policy_types(policy: Obj) -> tuple[bool, bool]:
    """(restricts ingress, restricts egress), with the Kubernetes defaults for policyTypes."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return "Ingress" in types, "Egress" in types
    return True, bool(spec.get("egress"))


def selects(policy: Obj, pod: Obj) -> bool:
    """Does ``policy`` apply to ``pod``? (same namespace, podSelector matches)"""
    if (policy["metadata"].get("namespace") or "") != (pod["metadata"].get("namespace") or ""):
        return False
    return matches((policy.get("spec") or {}).get("podSelector"), pod["metadata"].get("labels"))


def _selector_text(selector: dict[str, Any] | None) -> str:
    if selector is None:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr['key']} {expr['operator']} ({values})" if values else f"{expr['key']} {expr['operator']}")
    return "{" + ",".join(parts) + "}"


def peer_text(peer: dict[str, Any], namespace: str) -> str:
    """A readable description of one NetworkPolicy peer, for the SG rule's remote field."""
    block = peer.get("ipBlock")
    if block is not None:
        excepts = block.get("except") or []
        return block["cidr"] + (f" except {','.join(excepts)}" if excepts else "")
    pods = peer.get("podSelector")
    nss = peer.get("namespaceSelector")
    pod_text = f"pods{_selector_text(pods)}" if pods is not None else "all pods"
    ns_text = f"namespaces{_selector_text(nss)}" if nss is not None else f"namespace {namespace}"
    return f"{pod_text} in {ns_text}"


def summary_rules(policy: Obj) -> list[SGRule]:
    """SG rules describing a NetworkPolicy (one per peer × port; none = deny that direction)."""
    namespace = policy["metadata"].get("namespace") or ""
    spec = policy.get("spec") or {}
    ingress, egress = policy_types(policy)
    out: list[SGRule] = []
    for direction, enabled, key, peers_key in (("ingress", ingress, "ingress", "from"), ("egress", egress, "egress", "to")):
        if not enabled:
            continue
        for rule in spec.get(key) or []:
            peers = [peer_text(p, namespace) for p in rule.get(peers_key) or []] or ["0.0.0.0/0 and all pods"]
            ports = rule.get("ports") or [None]
            for peer in peers:
                for port in ports:
                    if port is None:
                        out.append(SGRule(direction, "any", peer))
                        continue
                    protocol = (port.get("protocol") or "TCP").lower()
                    number = port.get("port")
                    if number is None:
                        out.append(SGRule(direction, protocol, peer))
                    elif isinstance(number, str):
                        out.append(SGRule(direction, f"{protocol}/{number}", peer))
                    else:
                        out.append(SGRule(direction, protocol, peer, (number, port.get("endPort") or number)))
    return out


class NetworkPolicyHandler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.firewall = FirewallRealiser(ctx)

    def sync(self, policy: Obj) -> None:
        namespace = policy["metadata"].get("namespace") or "default"
        name = policy["metadata"]["name"]
        if applies(self.ctx.config, 1):  # the tf reading: firewall policies, no security group
            fq = self.firewall.sync(policy)
            self.ctx.set_condition(policy, True, "Realized", f"firewall policy {':'.join(fq)}")
            return
        fq = self.ctx.names.policy_sg(namespace, name)
        rules = summary_rules(policy)
        existing = self.ctx.db.get(SecurityGroup, fq)
        if existing is None:
            self.ctx.db.create(SecurityGroup(fq_name=fq, rules=rules, network_policy=f"{namespace}/{name}"))
        elif existing.rules != rules:
            self.ctx.db.update(existing, rules=rules)
        self.ctx.set_condition(policy, True, "Realized", f"security group {':'.join(fq)}")

    def remove(self, namespace: str, name: str) -> None:
        """Delete the policy's SG (the caller first detaches it from the pods), or its
        firewall policy in the tf reading."""
        self.ctx.delete_if_exists(SecurityGroup, self.ctx.names.policy_sg(namespace, name))
        self.firewall.remove(namespace, name)

    def sg_refs_for(self, pod: Obj) -> list[FqName]:
        """The namespace default SG, then the SG of every policy that selects the pod."""
        namespace = pod["metadata"].get("namespace") or "default"
        names = self.ctx.names
        refs = [names.default_sg(namespace)]
        for policy in self.ctx.store.list("NetworkPolicy", namespace):
            fq = names.policy_sg(namespace, policy["metadata"]["name"])
            if selects(policy, pod) and self.ctx.db.get(SecurityGroup, fq) is not None:
                refs.append(fq)
        return refs
