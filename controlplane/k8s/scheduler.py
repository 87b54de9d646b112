"""A deterministic scheduler: every pod without ``spec.nodeName`` is bound to a node.

``spec.nodeName`` is honoured as given; ``nodeSelector`` filters the nodes; among the nodes
left, the one with the fewest pods wins, ties going to the first in the scenario's node list.
A pod no node admits (or naming a node that does not exist) stays Pending with a
``FailedScheduling`` event, as in Kubernetes.
"""

from __future__ import annotations

from collections import Counter

from controlplane.config import ClusterConfig
from controlplane.k8s.store import ObjectStore, WatchEvent
from controlplane.k8s.workloads import node_admits


class Scheduler:
    def __init__(self, store: ObjectStore, config: ClusterConfig) -> None:
        self.store = store
        self.config = config
        self._node_of: dict[tuple[str, str], str] = {}
        self._load: Counter[str] = Counter()
        store.subscribe(self.on_event)

    def _track(self, key: tuple[str, str], node_name: str | None) -> None:
        previous = self._node_of.pop(key, None)
        if previous is not None:
            self._load[previous] -= 1
        if node_name:
            self._node_of[key] = node_name
            self._load[node_name] += 1

    def on_event(self, event: WatchEvent) -> None:
        if event.kind != "Pod":
            return
        key = (event.namespace, event.name)
        pod = self.store.get("Pod", event.namespace, event.name)
        if event.type == "DELETED" or pod is None:
            self._track(key, None)
            return
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        self._track(key, node_name)
        if node_name:
            node = self.config.node(node_name)
            if node is None:
                self.store.record(pod, "Warning", "FailedScheduling", f"node {node_name!r} does not exist in this cluster")
                return
            if (pod.get("status") or {}).get("hostIP") != node.ip:
                self.store.update_status("Pod", event.namespace, event.name, {"hostIP": node.ip})
            return
        candidates = [n for n in self.config.nodes if node_admits(n, spec)]
        if not candidates:
            self.store.record(
                pod,
                "Warning",
                "FailedScheduling",
                f"0/{len(self.config.nodes)} nodes are available: node(s) didn't match Pod's node selector",
            )
            return
        chosen = min(candidates, key=lambda n: self._load[n.name])  # min keeps the first of equals
        self._track(key, chosen.name)
        bound = dict(pod)
        bound["spec"] = {**spec, "nodeName": chosen.name}
        bound["status"] = {**(pod.get("status") or {}), "hostIP": chosen.ip}
        self.store.put(bound)
        self.store.record(pod, "Normal", "Scheduled", f"Successfully assigned {event.namespace}/{event.name} to {chosen.name}")
