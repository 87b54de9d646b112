"""HAProxy's layer-7 choice, over the load-balancer objects kube-manager makes for an Ingress.

TF realises an Ingress as a load balancer whose HAProxy instance routes each HTTP request to
a pool by its host and path (spec/k8s-to-tf.md); the rules are the Ingress's, kept on the
pools (``host``, ``path``, ``path_type``).
"""

from __future__ import annotations

from controlplane.tf import model as tf


def host_matches(rule: str | None, host: str | None, literal: bool = False) -> bool:
    """Exact host, or ``*.example.com`` matching exactly one more label; no rule host = any.
    ``literal`` (the tf reading, behaviour 8: ``hdr(host) -i``): no wildcard, case aside."""
    if rule is None:
        return True
    if host is None:
        return False
    if literal:
        return rule.lower() == host.lower()
    if rule.startswith("*."):
        suffix = rule[1:]
        return host.endswith(suffix) and host.count(".") == rule.count(".")
    return rule == host


def path_matches(rule: str | None, kind: str | None, path: str, exact: bool = False) -> bool:
    """Exact, or Prefix by path segments; ImplementationSpecific is exact, as TF's HAProxy does it.
    ``exact`` (the tf reading, behaviour 8: ``acl … path <p>``): every path type is exact."""
    if rule is None:
        return True
    if kind == "Prefix" and not exact:
        if rule == "/":
            return True
        base = rule.rstrip("/")
        return path == base or path.startswith(base + "/")
    return path == rule


def choose_pool(db: tf.ConfigDB, lb: tf.Loadbalancer, host: str | None, path: str, literal: bool = False) -> tf.LoadbalancerPool | None:
    """HAProxy's choice: the first (host, path) rule that matches, longest path first, then the
    default. ``literal``: the tf reading's exact paths and literal hosts (behaviour 8)."""
    listeners = [l for l in db.list(tf.LoadbalancerListener) if l.loadbalancer_refs == [lb.fq_name] and l.protocol_port == 80]
    pools = [p for p in db.list(tf.LoadbalancerPool) if listeners and p.loadbalancer_listener_refs == [listeners[0].fq_name]]
    rules = [p for p in pools if p.host is not None or p.path is not None]
    rules.sort(key=lambda p: (-(len(p.path or "")), p.fq_name))
    for pool in rules:
        if host_matches(pool.host, host, literal) and path_matches(pool.path, pool.path_type, path, literal):
            return pool
    defaults = [p for p in pools if p.host is None and p.path is None]
    return defaults[0] if defaults else None


def ingress_loadbalancer(db: tf.ConfigDB, namespace: str, name: str) -> tf.Loadbalancer | None:
    """The HAProxy load balancer kube-manager made for Ingress ``namespace/name``; None when TF
    did not realise it (another controller's class, or not yet)."""
    return next(
        (lb for lb in db.list(tf.Loadbalancer) if lb.loadbalancer_provider == "opencontrail" and lb.annotations.get("namespace") == namespace and lb.annotations.get("name") == name),
        None,
    )
