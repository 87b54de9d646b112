"""Which virtual networks import each other's routes: the VN connectivity graph.

Route leaking follows TF's rule (spec/k8s-to-tf.md §9): VN A imports VN B's routes only when
a **pass** rule connects them **and** the policy is attached to both sides — or A is attached
to a policy whose pass rule names B and B to one whose pass rule names A. ``local`` in a rule
("every VN this policy is attached to") stands for each VN the policy is attached to. A rule
whose other side is ``any`` lets traffic through the ACL but leaks no route. Leaking is not
transitive: the graph's edges are used one hop at a time, never as paths.

>>> import networkx as nx
>>> from controlplane.tf.model import PolicyRule
>>> a, b, c = ("d", "p", "a"), ("d", "p", "b"), ("d", "p", "c")
>>> both = {("d", "p", "ab"): [PolicyRule("pass", src=a, dst=b)]}
>>> g = vn_graph([a, b, c], {a: [("d", "p", "ab")], b: [("d", "p", "ab")], c: []}, both)
>>> sorted(g.edges())
[(('d', 'p', 'a'), ('d', 'p', 'b'))]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from controlplane.tf.model import FqName, PolicyRule

Side = FqName | str


def side_matches(side: Side, vn: FqName, attached: frozenset[FqName]) -> bool:
    """Does a rule's ``src``/``dst`` name ``vn``? (``any`` does not leak, so it is not a match here)"""
    if side == "local":
        return vn in attached
    return side == vn


def rule_connects(rule: PolicyRule, here: FqName, there: FqName, attached: frozenset[FqName]) -> bool:
    """Does this pass rule, read from ``here``, let routes of ``there`` in?"""
    if rule.action != "pass":
        return False
    forward = side_matches(rule.src, here, attached) and side_matches(rule.dst, there, attached)
    backward = rule.direction == "<>" and side_matches(rule.src, there, attached) and side_matches(rule.dst, here, attached)
    return forward or backward


def vn_graph(
    vns: Iterable[FqName],
    attachments: Mapping[FqName, Sequence[FqName]],
    policies: Mapping[FqName, Sequence[PolicyRule]],
) -> nx.Graph:
    """The undirected graph of VNs that import each other's routes.

    ``attachments`` maps a VN to the policies attached to it; ``policies`` a policy to its rules.
    Each edge carries the policies that made it (``via``) for views and traces.
    """
    graph = nx.Graph()
    vn_list = list(vns)
    graph.add_nodes_from(vn_list)
    attached_to: dict[FqName, set[FqName]] = {}
    for vn, names in attachments.items():
        for name in names:
            attached_to.setdefault(name, set()).add(vn)
    frozen = {name: frozenset(v) for name, v in attached_to.items()}

    def candidates(vn: FqName) -> dict[FqName, set[FqName]]:
        """VNs whose routes ``vn``'s own policies let in, with the policies that do it."""
        out: dict[FqName, set[FqName]] = {}
        for name in attachments.get(vn, ()):
            attached = frozen.get(name, frozenset())
            for rule in policies.get(name, ()):
                if rule.action != "pass":
                    continue
                for side in (rule.src, rule.dst):
                    targets = attached if side == "local" else ({side} if isinstance(side, tuple) else set())
                    for other in targets:
                        if other != vn and rule_connects(rule, vn, other, attached):
                            out.setdefault(other, set()).add(name)
        return out

    wanted = {vn: candidates(vn) for vn in vn_list}
    for vn, others in wanted.items():
        for other, via in others.items():
            if other in wanted and vn in wanted[other]:
                graph.add_edge(vn, other, via=sorted(via | wanted[other][vn]))
    return graph


def connected(graph: nx.Graph, a: FqName, b: FqName) -> bool:
    """True when ``a`` and ``b`` are the same VN or import each other's routes (one hop)."""
    return a == b or graph.has_edge(a, b)
