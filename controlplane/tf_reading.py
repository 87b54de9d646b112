"""The tf reading: what tf-controller's code (pinned in ../shared/reference) does where it
departs from Kubernetes' meaning (spec/tf-semantics.md, behaviours numbered as there).

The article reading (the default) realises every object with Kubernetes' meaning. In the tf
reading the control plane follows kube-manager instead. The departures that can be stated as
what a NetworkPolicy *means to TF* — the policy as kube-manager's parsers read it — live
here, so the same controller and dataplane enforce them:

2. ``ports_parser``: ``endPort`` is ignored (the rule covers ``port`` only); a named port is
   passed through unresolved, so it matches no numeric port (a rule whose every port is
   named matches nothing); no ``ports``: any protocol, any port.
3. ``_get_tags``: a ``matchExpressions`` term keeps only its last value; ``NotIn`` is read as
   ``In``; ``Exists``/``DoesNotExist`` are dropped (in pod selectors).
5. ``egress_parser``: the rules of several ``egress`` entries share names, so a later entry
   overwrites an earlier one — only the last entry stays.

The others live where kube-manager does them: 4 and 10 in the controller's policy index
(an ``except`` is a DENY ahead of the allows; HAProxy ahead of every NetworkPolicy), 7, 8, 9
and 11 with the Ingress (class annotation, exact HAProxy matching, numbered backend ports,
the status), 12-14 with the Services (external IPs, pool fall-through, one port map per
floating IP), 15 and 16 with the namespaces and annotations. 6 (policy types defaulted by the
API server) is the same in both readings. 1 — the firewall-policy objects (application
policy set, firewall policies and rules, address groups) instead of security groups — is
built by controlplane.kube_manager.firewall. Each behaviour can be switched off on its own (``ClusterConfig.tfBehaviours``),
which ``vrsim diverge`` uses to say which one explains a difference.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.controller.netpol import policy_directions

#: every behaviour of the tf reading vrsim realises (spec/tf-semantics.md numbering)
TF_BEHAVIOURS: dict[int, str] = {
    1: "NetworkPolicies become firewall policies in the cluster's application policy set, matched in sequence order (vnc_security_policy)",
    2: "NetworkPolicy ports: endPort is ignored and a named port is not resolved (kube-manager ports_parser)",
    4: "ipBlock except becomes a DENY rule ahead of the allows: it overrides allows of other rules and policies (vnc_security_policy)",
    3: "NetworkPolicy selectors: matchExpressions keep their last value, NotIn reads as In, Exists/DoesNotExist are dropped (_get_tags)",
    5: "NetworkPolicy egress: several egress entries overwrite each other, the last one stays (egress_parser)",
    7: "Ingress class: only the kubernetes.io/ingress.class annotation is read, not ingressClassName (vnc_ingress)",
    8: "HAProxy matches the Ingress path exactly and the host literally (haproxy_config)",
    9: "an Ingress backend's service port must be a number: a named port is not realised (vnc_ingress)",
    10: "the <cluster>-Ingress firewall policy lets an Ingress's HAProxy reach the backends ahead of any NetworkPolicy (vnc_security_policy)",
    11: "an Ingress's status lists its floating IP and its VIP (vnc_ingress)",
    12: "external IPs: loadBalancerIP replaces externalIPs; a NodePort service gets no floating IP for them (vnc_service)",
    13: "a floating-IP pool an annotation names that does not exist falls through to the next pool (vnc_service)",
    14: "one port map per floating IP: the first member's resolved target port wins (vnc_service)",
    16: "opencontrail.org annotations are read as kube-manager does: a Python literal dict with a domain; an isolation value other than true is off (kube_config_db)",
    15: "opencontrail.org/isolation.service is not read: an isolated namespace's services stay isolated (vnc_namespace)",
}
TF_BEHAVIOURS = dict(sorted(TF_BEHAVIOURS.items()))


def applies(config: Any, behaviour: int) -> bool:
    """Does the cluster's reading apply ``behaviour`` (tf reading, and not switched off)?"""
    if getattr(config, "semantics", "article") != "tf":
        return False
    chosen = getattr(config, "tfBehaviours", None)
    return chosen is None or behaviour in chosen


def _ports(ports: list[dict[str, Any]] | None, with_2: bool) -> list[dict[str, Any]] | None:
    if not with_2 or not ports:
        return ports
    kept = []
    for port in ports:
        number = port.get("port")
        if isinstance(number, str):
            continue  # unresolved: matches no numeric port
        kept.append({k: v for k, v in port.items() if k != "endPort"})
    return kept if kept else None


def _selector(selector: dict[str, Any] | None, with_3: bool) -> dict[str, Any] | None:
    if not with_3 or not selector or not selector.get("matchExpressions"):
        return selector
    labels = dict(selector.get("matchLabels") or {})
    for term in selector["matchExpressions"]:
        if term.get("operator") in ("In", "NotIn") and term.get("values"):
            labels[term["key"]] = term["values"][-1]
    return {"matchLabels": labels} if labels else {}


def tf_network_policy(policy: dict[str, Any], config: Any) -> dict[str, Any]:
    """The NetworkPolicy as kube-manager's parsers read it in the tf reading (behaviours 2, 3, 5)."""
    with_2, with_3, with_5 = (applies(config, b) for b in (2, 3, 5))
    if not (with_2 or with_3 or with_5):
        return policy
    out = copy.deepcopy(policy)
    spec = out.setdefault("spec", {})
    # the API server fills policyTypes before kube-manager reads it (behaviour 6): keep them,
    # so that an egress list emptied here still restricts egress
    ingress, egress = policy_directions(policy)
    spec["policyTypes"] = [t for t, on in (("Ingress", ingress), ("Egress", egress)) if on]
    spec["podSelector"] = _selector(spec.get("podSelector"), with_3) or {}
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        rules = spec.get(direction)
        if not rules:
            continue
        if direction == "egress" and with_5 and len(rules) > 1:
            rules = rules[-1:]
        kept = []
        for rule in rules:
            ports = rule.get("ports")
            new_ports = _ports(ports, with_2)
            if ports and new_ports is None:
                continue  # every port named: the rule matches nothing
            new_rule = dict(rule)
            if new_ports is not None:
                new_rule["ports"] = new_ports
            peers = []
            for peer in rule.get(peers_key) or ():
                peer = dict(peer)
                if "podSelector" in peer:
                    peer["podSelector"] = _selector(peer["podSelector"], with_3) or {}
                peers.append(peer)
            if rule.get(peers_key) is not None:
                new_rule[peers_key] = peers
            kept.append(new_rule)
        spec[direction] = kept
    return out
