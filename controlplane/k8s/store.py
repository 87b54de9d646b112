"""An in-memory Kubernetes API: objects by kind, namespace and name, with watch events.

Applying an object that exists is an update (``kubectl apply`` semantics); applying it
unchanged is a no-op and emits nothing. Handlers (the workload controllers, the scheduler,
the endpoints controller, kube-manager) see every event in order. An event raised while
another is being handled is queued, like an informer's work queue, so handlers never run
re-entrantly and the order of effects is deterministic.

Kubernetes ``Event`` records (what ``kubectl get events`` shows) are kept apart in
:attr:`ObjectStore.events`; they explain why an object could not be realised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from controlplane.tf.model import stable_uuid

Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED or DELETED, with the object after (or, for DELETED, before) it."""

    type: str
    kind: str
    obj: Obj
    old: Obj | None = None

    @property
    def namespace(self) -> str:
        return self.obj.get("metadata", {}).get("namespace") or ""

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]


@dataclass
class EventRecord:
    """One line of ``kubectl get events``."""

    namespace: str
    kind: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": self.namespace},
            "involvedObject": {"kind": self.kind, "name": self.name, "namespace": self.namespace},
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
        }


Handler = Callable[[WatchEvent], None]


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars) — several times faster than
    ``copy.deepcopy``, which the store does for every write."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def meta(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})


def obj_key(obj: Obj) -> tuple[str, str, str]:
    m = obj.get("metadata") or {}
    return obj["kind"], m.get("namespace") or "", m["name"]


class ObjectStore:
    """Objects by (kind, namespace, name), insertion-ordered, with ordered watch events."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, dict[str, Obj]]] = {}  # kind → namespace → name → object
        self._handlers: list[Handler] = []
        self._queue: deque[WatchEvent] = deque()
        self._idle: dict[Hashable, Callable[[], None]] = {}  # work for when the queue is empty
        self._dispatching = False
        self._created = 0
        self._resource_version = 0
        self.events: list[EventRecord] = []
        self._event_index: dict[tuple[str, str, str, str, str], EventRecord] = {}

    # --- reading ---------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(kind, {}).get(namespace or "", {}).get(name)

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        by_namespace = self._objects.get(kind, {})
        if namespace is None:
            return [o for table in by_namespace.values() for o in table.values()]
        return list(by_namespace.get(namespace, {}).values())

    @property
    def version(self) -> int:
        """Grows with every change (objects or status), so caches know when to refresh."""
        return self._resource_version

    def __iter__(self) -> Iterator[Obj]:
        for by_namespace in self._objects.values():
            for table in by_namespace.values():
                yield from table.values()

    # --- writing ---------------------------------------------------------------------
    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def put(self, obj: Obj) -> WatchEvent | None:
        """Create or update; returns the event, or None when nothing changed."""
        kind, namespace, name = obj_key(obj)
        table = self._objects.setdefault(kind, {}).setdefault(namespace, {})
        old = table.get(name)
        new = json_copy(obj)
        m = meta(new)
        if old is not None:
            old_meta = old["metadata"]
            for keep in ("uid", "creationTimestamp", "generateName"):
                if keep in old_meta:
                    m.setdefault(keep, old_meta[keep])
            if "status" not in new and "status" in old:
                new["status"] = json_copy(old["status"])
            if _same(old, new):
                return None
        else:
            self._created += 1
            m.setdefault("uid", stable_uuid("k8s", kind, namespace, name, str(self._created)))
        self._resource_version += 1
        m["resourceVersion"] = str(self._resource_version)
        table[name] = new
        event = WatchEvent("MODIFIED" if old is not None else "ADDED", kind, new, old)
        self._emit(event)
        return event

    def update_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge fields into an object's status (what a controller writes back)."""
        current = self.get(kind, namespace, name)
        if current is None:
            return
        merged = dict(current)  # put() copies it whole
        merged["status"] = {**(current.get("status") or {}), **json_copy(status)}
        for key, value in status.items():
            if value is None:
                merged["status"].pop(key, None)
        self.put(merged)

    def delete(self, kind: str, namespace: str, name: str) -> WatchEvent | None:
        table = self._objects.get(kind, {}).get(namespace or "", {})
        old = table.pop(name, None)
        if old is None:
            return None
        self._resource_version += 1
        event = WatchEvent("DELETED", kind, old, old)
        self._emit(event)
        return event

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Add a Kubernetes Event about ``obj`` (repeats are counted, not duplicated)."""
        kind, namespace, name = obj_key(obj)
        key = (kind, namespace, name, reason, message)
        seen = self._event_index.get(key)
        if seen is not None:
            seen.count += 1
            return
        event = EventRecord(namespace, kind, name, type_, reason, message)
        self._event_index[key] = event
        self.events.append(event)

    # --- dispatch --------------------------------------------------------------------
    def when_idle(self, key: Hashable, task: Callable[[], None]) -> None:
        """Run ``task`` once every event queued so far is handled; the same ``key`` twice is
        one run. A controller's work queue: a Deployment's thousand pod events make one
        Endpoints update, not a thousand (each rebuilding the list: quadratic)."""
        self._idle[key] = task
        if not self._dispatching:
            self._drain()

    def _emit(self, event: WatchEvent) -> None:
        self._queue.append(event)
        if self._dispatching:
            return
        self._drain()

    def _drain(self) -> None:
        self._dispatching = True
        try:
            while self._queue or self._idle:
                if self._queue:
                    current = self._queue.popleft()
                    for handler in self._handlers:
                        handler(current)
                else:
                    task = self._idle.pop(next(iter(self._idle)))
                    task()
        finally:
            self._dispatching = False
            self._queue.clear()
            self._idle.clear()


def _same(a: Obj, b: Obj) -> bool:
    strip = ("resourceVersion",)
    am = {k: v for k, v in a.get("metadata", {}).items() if k not in strip}
    bm = {k: v for k, v in b.get("metadata", {}).items() if k not in strip}
    return am == bm and {k: v for k, v in a.items() if k != "metadata"} == {k: v for k, v in b.items() if k != "metadata"}
