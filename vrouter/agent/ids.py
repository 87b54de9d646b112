"""Stable identifiers, as the vrouter-agent keeps them across configuration changes.

A vif index, VRF id, nexthop id or MPLS label, once given to an object, stays with it while
the object exists; a freed one is handed out again (lowest first). Flows key on nexthop ids
and labels travel between nodes, so renumbering on every recompilation would break both.

>>> ids = StableIds(first=16)
>>> ids.get("a"), ids.get("b"), ids.get("a")
(16, 17, 16)
>>> ids.keep({"b"}); ids.get("c")
16
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable


class StableIds:
    def __init__(self, first: int = 0) -> None:
        self._ids: dict[Hashable, int] = {}
        self._free: list[int] = []
        self._next = first

    def get(self, key: Hashable) -> int:
        """The id of ``key``, allocating one if it has none."""
        found = self._ids.get(key)
        if found is not None:
            return found
        value = heapq.heappop(self._free) if self._free else self._next
        if value == self._next:
            self._next += 1
        self._ids[key] = value
        return value

    def find(self, key: Hashable) -> int | None:
        return self._ids.get(key)

    def keep(self, keys: Iterable[Hashable]) -> None:
        """Free the ids of every key not in ``keys``."""
        wanted = set(keys)
        for key in [k for k in self._ids if k not in wanted]:
            heapq.heappush(self._free, self._ids.pop(key))

    @property
    def limit(self) -> int:
        """One more than the highest id ever given (array sizes)."""
        return self._next

    def items(self) -> Iterable[tuple[Hashable, int]]:
        return self._ids.items()
