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

import re
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


_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERMS = (
    (re.compile(rf"^!\s*({_KEY})$"), lambda m: {"key": m[1], "operator": "DoesNotExist"}),
    (re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$"), lambda m: _set_term(m)),
    (re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$"), lambda m: {"key": m[1], "operator": "NotIn" if m[2] == "!=" else "In", "values": [m[3]]}),
    (re.compile(rf"^({_KEY})$"), lambda m: {"key": m[1], "operator": "Exists"}),
)


def _set_term(m: re.Match[str]) -> dict[str, Any]:
    values = [v.strip() for v in m[3].split(",")]
    if not all(re.fullmatch(_VALUE, v) for v in values):
        raise ValueError(f"invalid value in {m[0]!r}")
    return {"key": m[1], "operator": "In" if m[2] == "in" else "NotIn", "values": values}


def parse_selector(text: str) -> dict[str, Any]:
    """A ``kubectl -l`` selector as a LabelSelector: ``=``/``==``, ``!=``, ``in``, ``notin``,
    ``key`` and ``!key``, comma-separated (all must hold). A ValueError names a bad term.

    >>> parse_selector("app=web,tier in (fe, be),!canary")["matchExpressions"][1]
    {'key': 'tier', 'operator': 'In', 'values': ['fe', 'be']}
    >>> matches(parse_selector("env!=prod,team"), {"team": "a"})  # != matches a missing key
    True
    >>> parse_selector("app=")["matchExpressions"]  # an empty value is a value
    [{'key': 'app', 'operator': 'In', 'values': ['']}]
    """
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:i].strip())
            start = i + 1
    expressions = []
    for term in terms:
        for pattern, build in _TERMS:
            if match := pattern.match(term):
                expressions.append(build(match))
                break
        else:
            raise ValueError(f"cannot read {term!r} (key=value, key!=value, key in (a,b), key notin (a,b), key or !key)")
    return {"matchExpressions": expressions}
