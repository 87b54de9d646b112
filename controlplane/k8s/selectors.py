"""Label selectors with Kubernetes semantics.

>>> matches({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "1"})
True
>>> matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["1"]}]}, {"app": "web"})
True
>>> matches({}, {"anything": "x"})   # the empty selector selects everything
True
>>> matches(None, {"anything": "x"})  # an absent selector selects nothing
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One matchExpressions term. ``NotIn`` matches a missing key, as in Kubernetes."""
    key = expr["key"]
    op = expr["operator"]
    values = expr.get("values") or ()
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown selector operator {op!r}")


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A LabelSelector (matchLabels AND every matchExpressions term)."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(expression_matches(e, labels) for e in selector.get("matchExpressions") or ())


def matches_map(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """A plain ``{key: value}`` selector (Service, ReplicationController); empty selects nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())
