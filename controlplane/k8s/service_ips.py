"""ClusterIP and NodePort allocation, as the API server does it when a Service is created.

A requested ``spec.clusterIP`` or ``nodePort`` is honoured if free and in range; otherwise
the address is pseudo-random in the service CIDR (seeded by the scenario seed and the
service's name, then the next free one), so the same scenario always gets the same
ClusterIPs. The first address of the CIDR (the ``kubernetes`` service's) and the two top
ones (the service IPAM's gateway and DNS, spec §3) are never handed out.
Errors are the API server's: the Service is rejected and nothing changes; each names the
field it is about (``spec.clusterIP``, ``spec.ports[i].nodePort``).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import InputError


@dataclass
class ServiceAllocator:
    cidr: str
    node_ports: tuple[int, int] = (30000, 32767)
    seed: int = 0
    cluster_ips: dict[int, str] = field(default_factory=dict)  # address → "ns/name"
    ports: dict[tuple[int, str], str] = field(default_factory=dict)  # (nodePort, protocol) → "ns/name"

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.cidr)
        base = int(net.network_address)
        self._first = base + 2  # .0 network, .1 the kubernetes service
        self._last = base + net.num_addresses - 4  # top: broadcast, gateway, DNS
        self.network = net

    def allocate_ip(self, owner: str, requested: str | None) -> str:
        if requested:
            ip = ipaddress.IPv4Address(requested)
            value = int(ip)
            if ip not in self.network or not (self._first <= value <= self._last):
                raise InputError(f"{requested} is not in the valid service range {self.cidr}")
            holder = self.cluster_ips.get(value)
            if holder is not None and holder != owner:
                raise InputError(f"{requested} is already allocated to service {holder}")
            self.cluster_ips[value] = owner
            return str(ip)
        span = self._last - self._first + 1
        if len(self.cluster_ips) >= span:
            raise InputError(f"the service range {self.cidr} is full")
        start = random.Random(f"{self.seed}/clusterip/{owner}").randrange(span)
        for step in range(span):
            value = self._first + (start + step) % span
            if value not in self.cluster_ips:
                self.cluster_ips[value] = owner
                return str(ipaddress.IPv4Address(value))
        raise InputError(f"the service range {self.cidr} is full")  # pragma: no cover

    def release_ip(self, address: str | None) -> None:
        if address and address != "None":
            self.cluster_ips.pop(int(ipaddress.IPv4Address(address)), None)

    def allocate_node_port(self, owner: str, protocol: str, requested: int | None) -> int:
        lo, hi = self.node_ports
        if requested is not None:
            if not lo <= requested <= hi:
                raise InputError(f"{requested} is not in the valid node port range {lo}-{hi}")
            holder = self.ports.get((requested, protocol))
            if holder is not None and holder != owner:
                raise InputError(f"{requested}/{protocol} is already allocated to service {holder}")
            self.ports[(requested, protocol)] = owner
            return requested
        span = hi - lo + 1
        start = random.Random(f"{self.seed}/nodeport/{owner}/{protocol}/{len(self.ports)}").randrange(span)
        for step in range(span):
            port = lo + (start + step) % span
            if (port, protocol) not in self.ports:
                self.ports[(port, protocol)] = owner
                return port
        raise InputError(f"no free nodePort left in {lo}-{hi}")

    def release_node_port(self, port: int | None, protocol: str) -> None:
        if port is not None:
            self.ports.pop((port, protocol), None)

    def admit(self, service: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Fill in ``spec.clusterIP``/``clusterIPs`` and node ports (in place), as on create/update.

        All or nothing: a rejected Service leaves every allocation as it was.
        """
        saved = (dict(self.cluster_ips), dict(self.ports))
        try:
            self._admit(service, old)
        except InputError:
            self.cluster_ips, self.ports = saved
            raise

    def _admit(self, service: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = service["metadata"]
        owner = f"{meta.get('namespace')}/{meta['name']}"
        spec = service.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        spec["type"] = svc_type
        if svc_type == "ExternalName":
            self.release_ip(old_spec.get("clusterIP"))
            spec.pop("clusterIP", None)
        else:
            wanted = spec.get("clusterIP") or None
            previous = old_spec.get("clusterIP")
            if previous and wanted and wanted != previous:
                raise InputError(f"field is immutable (was {previous})", path="spec.clusterIP")
            if wanted == "None":
                if previous and previous != "None":
                    raise InputError(f"field is immutable (was {previous})", path="spec.clusterIP")
                spec["clusterIP"] = "None"
            else:
                try:
                    spec["clusterIP"] = previous if previous and previous != "None" else self.allocate_ip(owner, wanted)
                except InputError as exc:
                    raise exc.located(path="spec.clusterIP") from None
            spec["clusterIPs"] = [spec["clusterIP"]]
        old_ports = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort") for p in old_spec.get("ports") or []}
        keep: set[tuple[int, str]] = set()
        for i, port in enumerate(spec.get("ports") or []):
            protocol = port.get("protocol") or "TCP"
            port.setdefault("protocol", protocol)
            port.setdefault("targetPort", port.get("port"))
            if svc_type in ("NodePort", "LoadBalancer"):
                wanted_port = port.get("nodePort") or old_ports.get((port.get("port"), protocol))
                try:
                    port["nodePort"] = self.allocate_node_port(owner, protocol, wanted_port)
                except InputError as exc:
                    raise exc.located(path=f"spec.ports[{i}].nodePort") from None
                keep.add((port["nodePort"], protocol))
            else:
                port.pop("nodePort", None)
        for (number, protocol), node_port in old_ports.items():
            if node_port is not None and (node_port, protocol) not in keep:
                self.release_node_port(node_port, protocol)

    def forget(self, service: dict[str, Any]) -> None:
        """Release everything a deleted Service held."""
        spec = service.get("spec") or {}
        self.release_ip(spec.get("clusterIP"))
        for port in spec.get("ports") or []:
            self.release_node_port(port.get("nodePort"), port.get("protocol") or "TCP")
