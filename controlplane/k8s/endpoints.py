"""The Endpoints controller: which ready pods back each Service, on which port.

A pod is ready once it has an address (kube-manager writes ``status.podIP`` after TF
allocates it) and a node. A service's ``targetPort`` may name a container port; it is
resolved on each pod separately, and a pod without that named port does not back that
service port (Kubernetes behaviour). Pods with the same resolved ports share one subset.
Services without a selector keep the Endpoints (or EndpointSlices) their user supplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from controlplane.k8s.selectors import matches_map
from controlplane.k8s.store import Obj, ObjectStore, WatchEvent


def service_port_name(port: dict[str, Any]) -> str:
    return port.get("name") or ""


def resolve_target_port(service_port: dict[str, Any], pod: Obj) -> int | None:
    """The number a service port's targetPort means on ``pod`` (None if it has no such port)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def pod_ip(pod: Obj) -> str | None:
    return (pod.get("status") or {}).get("podIP")


def pod_is_ready(pod: Obj) -> bool:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    return bool(
        pod_ip(pod)
        and (pod.get("spec") or {}).get("nodeName")
        and not meta.get("deletionTimestamp")
        and status.get("phase") not in ("Failed", "Succeeded")
    )


@dataclass(frozen=True)
class Backend:
    """One endpoint address with the port numbers it serves, by service port name."""

    ip: str
    node: str | None
    pod: str | None  # "namespace/name" for pod-backed endpoints
    ports: tuple[tuple[str, int, str], ...]  # (port name, number, protocol)

    def port(self, name: str, protocol: str) -> int | None:
        for port_name, number, proto in self.ports:
            if port_name == name and proto == protocol:
                return number
        return None


def build_endpoints(service: Obj, pods: list[Obj]) -> Obj:
    """The Endpoints object Kubernetes would publish for ``service`` given ``pods``."""
    meta = service["metadata"]
    selector = (service.get("spec") or {}).get("selector")
    ports = (service.get("spec") or {}).get("ports") or []
    groups: dict[tuple[tuple[str, int, str], ...], list[dict[str, Any]]] = {}
    for pod in pods:
        if not matches_map(selector, (pod.get("metadata") or {}).get("labels")) or not pod_is_ready(pod):
            continue
        resolved = []
        for port in ports:
            number = resolve_target_port(port, pod)
            if number is not None:
                resolved.append((service_port_name(port), number, port.get("protocol") or "TCP"))
        if not resolved:
            continue
        address = {
            "ip": pod_ip(pod),
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "namespace": pod["metadata"].get("namespace"),
                "uid": pod["metadata"].get("uid"),
            },
        }
        groups.setdefault(tuple(resolved), []).append(address)
    subsets = []
    for resolved, addresses in groups.items():
        addresses.sort(key=lambda a: tuple(int(x) for x in a["ip"].split(".")))
        subsets.append(
            {"addresses": addresses, "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in resolved]}
        )
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "labels": dict(meta.get("labels") or {})},
        "subsets": subsets,
    }


def backends_of(endpoints: Obj | None) -> list[Backend]:
    """The addresses of an Endpoints object with their ports, in a stable order."""
    out: list[Backend] = []
    if not endpoints:
        return out
    for subset in endpoints.get("subsets") or []:
        ports = tuple(
            (p.get("name") or "", int(p["port"]), p.get("protocol") or "TCP") for p in subset.get("ports") or []
        )
        for address in subset.get("addresses") or []:
            ref = address.get("targetRef") or {}
            pod = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("kind") == "Pod" else None
            out.append(Backend(address["ip"], address.get("nodeName"), pod, ports))
    return out


def backends_from_slices(slices: list[Obj]) -> list[Backend]:
    """Addresses of user-supplied EndpointSlices (for a Service without selector)."""
    out: list[Backend] = []
    for slice_ in slices:
        ports = tuple(
            (p.get("name") or "", int(p["port"]), p.get("protocol") or "TCP")
            for p in slice_.get("ports") or []
            if p.get("port") is not None
        )
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            ref = endpoint.get("targetRef") or {}
            pod = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("kind") == "Pod" else None
            for ip in endpoint.get("addresses") or []:
                out.append(Backend(ip, endpoint.get("nodeName"), pod, ports))
    return out


def service_backends(store: ObjectStore, service: Obj) -> list[Backend]:
    """Every backend of a service: its Endpoints, or EndpointSlices labelled with its name."""
    namespace = service["metadata"].get("namespace") or ""
    name = service["metadata"]["name"]
    found = backends_of(store.get("Endpoints", namespace, name))
    if found or (service.get("spec") or {}).get("selector"):
        return found
    slices = [
        s
        for s in store.list("EndpointSlice", namespace)
        if ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == name
    ]
    return backends_from_slices(slices)


class EndpointsController:
    """Recomputes the Endpoints of a namespace's services when its pods or services change."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        store.subscribe(self.on_event)

    def on_event(self, event: WatchEvent) -> None:
        if event.kind == "Pod":
            labels = [(event.obj.get("metadata") or {}).get("labels")]
            if event.old is not None:
                labels.append((event.old.get("metadata") or {}).get("labels"))
            for service in self.store.list("Service", event.namespace):
                selector = (service.get("spec") or {}).get("selector")
                if any(matches_map(selector, lab) for lab in labels):
                    name = service["metadata"]["name"]
                    self.store.when_idle(("Endpoints", event.namespace, name), partial(self.sync_named, event.namespace, name))
        elif event.kind == "Service":
            service = self.store.get("Service", event.namespace, event.name)
            if service is None:
                if event.old and (event.old.get("spec") or {}).get("selector"):
                    self.store.delete("Endpoints", event.namespace, event.name)
                return
            self.sync_service(service)

    def sync_named(self, namespace: str, name: str) -> None:
        """Sync the service as it is now (it may have gone since the pod event)."""
        service = self.store.get("Service", namespace, name)
        if service is not None:
            self.sync_service(service)

    def sync_service(self, service: Obj) -> None:
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return
        namespace = service["metadata"].get("namespace") or ""
        endpoints = build_endpoints(service, self.store.list("Pod", namespace))
        current = self.store.get("Endpoints", namespace, service["metadata"]["name"])
        if current is None or current.get("subsets") != endpoints["subsets"]:
            self.store.put(endpoints)
