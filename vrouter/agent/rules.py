"""The fabric-wide book of rule references: what a number in a flow or a trace means.

Kernels record an int32 for the rule that decided (a VN-policy ACL entry, a NetworkPolicy rule,
a kube-proxy rule, "no policy selects this pod"); the book turns it back into words.
"""

from __future__ import annotations


class RuleBook:
    def __init__(self) -> None:
        self._texts: list[str] = []
        self._ids: dict[str, int] = {}

    def ref(self, text: str) -> int:
        found = self._ids.get(text)
        if found is None:
            found = len(self._texts)
            self._texts.append(text)
            self._ids[text] = found
        return found

    def text(self, ref: int) -> str:
        if 0 <= ref < len(self._texts):
            return self._texts[ref]
        return ""
