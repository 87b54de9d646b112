"""The scenario's ``cluster:`` section: what kube-manager and the vRouters are configured with.

Every key has the default of spec/k8s-to-tf.md §1. The model is strict (an unknown key is an
error) because a misspelt setting silently falling back to its default would make a scenario
test something other than what its author meant.

Choice: the default nodes are the article's two workers (``worker01`` 172.27.10.74 and
``worker02`` 172.27.10.75). Node addresses need not lie inside ``ipFabricSubnet``: the
ip-fabric VN carries a /32 route for each node whatever its address, as a real fabric does.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controlplane.inet import KUBERNETES_PROTOCOLS, not_ipv4, protocol_number


GATEWAY_NODE = "fabric-gateway"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _network(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        if "IPv6" in not_ipv4(value):
            raise ValueError(not_ipv4(value)) from None
        raise ValueError(f"not an IPv4 CIDR with its host bits clear: {value!r} ({exc})") from None
    return str(net)


def _host_port(item: int | str) -> tuple[int, int]:
    """``22`` or ``"22"`` → (TCP, 22); ``"53/UDP"`` → (UDP, 53)."""
    text = str(item)
    number, _, proto = text.partition("/")
    proto = (proto or "TCP").upper()
    if not number.isdigit() or not 1 <= int(number) <= 65535 or proto not in KUBERNETES_PROTOCOLS:
        raise ValueError(f"not a port (PORT or PORT/TCP|UDP|SCTP): {item!r}")
    return protocol_number(proto), int(number)


class NodeConfig(_Strict):
    """One compute node: one vRouter."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    ip: str
    labels: dict[str, str] = Field(default_factory=dict)
    #: ports the node's host stack listens on besides NodePorts: ``22`` (TCP) or ``"53/UDP"``
    listen: list[int | str] = Field(default_factory=list)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: list[int | str]) -> list[int | str]:
        for item in value:
            _host_port(item)
        return value

    def listen_ports(self) -> list[tuple[int, int]]:
        """``listen`` as (protocol number, port) pairs."""
        return [_host_port(item) for item in self.listen]

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(not_ipv4(value)) from None


class ProjectRef(_Strict):
    """``{domain, project}`` as in kube-manager's ``cluster_project`` setting."""

    domain: str = "default-domain"
    project: str


class InlineFipPool(_Strict):
    """A public floating-IP pool defined in place: its VN is created if missing."""

    name: str
    network: str
    subnet: str
    project: str | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        return _network(value)


class VRouterSettings(_Strict):
    """Forwarding-plane knobs; the numbers are the real vRouter's defaults."""

    flowEntries: Annotated[int, Field(ge=16, le=1 << 26)] = 512 * 1024
    overflowFraction: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.2
    holdQueue: Annotated[int, Field(ge=0, le=1024)] = 3
    #: finite, and at most a year of simulated time (``.inf`` or ``.nan`` is a mistake, not forever)
    agingSeconds: Annotated[float, Field(gt=0, le=365 * 24 * 3600, allow_inf_nan=False)] = 180.0
    maxVrfs: Annotated[int, Field(ge=1, le=1 << 20)] = 4096
    ecmpHashFields: list[Literal["sip", "dip", "proto", "sport", "dport"]] = Field(
        default_factory=lambda: ["sip", "dip", "proto", "sport", "dport"]
    )


def _default_nodes() -> list[NodeConfig]:
    return [NodeConfig(name="worker01", ip="172.27.10.74"), NodeConfig(name="worker02", ip="172.27.10.75")]


class ClusterConfig(_Strict):
    """Settings of contrail-kube-manager and the compute nodes (spec §1)."""

    name: Annotated[str, Field(min_length=1, max_length=63)] = "k8s"
    domain: str = "default-domain"
    podSubnet: str = "10.32.0.0/12"
    serviceSubnet: str = "10.96.0.0/12"
    ipFabricSubnet: str = "10.64.0.0/12"
    clusterProject: ProjectRef | None = None
    publicFipPool: str | InlineFipPool | None = None
    nodes: Annotated[list[NodeConfig], Field(min_length=1)] = Field(default_factory=_default_nodes)
    encapsulation: Literal["MPLSoUDP", "MPLSoGRE", "VXLAN"] = "MPLSoUDP"
    #: the SDN gateway's underlay address (default: .1 of the first node's /24)
    fabricGateway: str | None = None
    nodePortRange: tuple[int, int] = (30000, 32767)
    vrouter: VRouterSettings = Field(default_factory=VRouterSettings)
    #: how TF realises the cluster: as the article describes it, or as tf-controller's code
    #: does (spec/tf-semantics.md; controlplane.tf_reading)
    semantics: Literal["article", "tf"] = "article"
    #: the tf reading's behaviours to apply (their numbers); all when absent — for comparing
    tfBehaviours: list[int] | None = None

    @field_validator("podSubnet", "serviceSubnet", "ipFabricSubnet")
    @classmethod
    def _subnets(cls, value: str) -> str:
        return _network(value)

    @field_validator("fabricGateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(not_ipv4(value)) from None

    @property
    def gateway_ip(self) -> str:
        """The fabric gateway's address: configured, or the first host of the first node's /24."""
        if self.fabricGateway:
            return self.fabricGateway
        net = ipaddress.IPv4Network(f"{self.nodes[0].ip}/24", strict=False)
        taken = {n.ip for n in self.nodes}
        for host in net.hosts():
            if str(host) not in taken:
                return str(host)
        return str(net.network_address)  # pragma: no cover - a /24 full of nodes

    @model_validator(mode="after")
    def _unique_nodes(self) -> "ClusterConfig":
        names = [n.name for n in self.nodes]
        if GATEWAY_NODE in names:
            raise ValueError(f"{GATEWAY_NODE!r} is the name of the simulated SDN gateway; choose another node name")
        ips = [n.ip for n in self.nodes]
        for label, values in (("name", names), ("ip", ips)):
            seen: set[str] = set()
            for v in values:
                if v in seen:
                    raise ValueError(f"two nodes have the same {label} {v!r}")
                seen.add(v)
        lo, hi = self.nodePortRange
        if not (1 <= lo <= hi <= 65535):
            raise ValueError(f"nodePortRange {lo}-{hi} is not a valid port range")
        self._check_address_plan()
        return self

    def _check_address_plan(self) -> None:
        """Two things must never share an address: the cluster's subnets are disjoint, and no
        node or gateway address lies in a subnet TF hands out (a ClusterIP equal to a pod's
        address, or a pod given a node's, would deliver to the wrong place). Custom VNs may
        overlap these (TF keeps them apart by VRF); this plan is the cluster's own."""
        for label, value in (("name", self.name), ("domain", self.domain)):
            if ":" in value:
                raise ValueError(f"{label} {value!r} contains ':', which TF uses to join fq_names (domain:project:name)")
        subnets = [("podSubnet", self.podSubnet), ("serviceSubnet", self.serviceSubnet), ("ipFabricSubnet", self.ipFabricSubnet)]
        if isinstance(self.publicFipPool, InlineFipPool):
            subnets.append(("publicFipPool.subnet", self.publicFipPool.subnet))
        nets = [(label, ipaddress.IPv4Network(value)) for label, value in subnets]
        for i, (a, net_a) in enumerate(nets):
            for b, net_b in nets[i + 1 :]:
                if net_a.overlaps(net_b):
                    raise ValueError(f"{a} {net_a} and {b} {net_b} overlap: an address would belong to both")
        hosts = [(f"nodes[{i}].ip ({node.name})", node.ip) for i, node in enumerate(self.nodes)]
        if self.fabricGateway:
            hosts.append(("fabricGateway", self.fabricGateway))
        for label, address in hosts:
            for net_label, net in nets:
                if ipaddress.IPv4Address(address) in net:
                    raise ValueError(f"{label} {address} lies in {net_label} {net}: TF would hand that address to a pod, a Service or a floating IP too")
        if self.fabricGateway in {node.ip for node in self.nodes}:
            raise ValueError(f"fabricGateway {self.fabricGateway} is a node's address (nodes[].ip): the gateway needs its own")

    def node(self, name: str) -> NodeConfig | None:
        """The node called ``name``, or None."""
        for node in self.nodes:
            if node.name == name:
                return node
        return None
