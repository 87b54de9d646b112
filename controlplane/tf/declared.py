"""The TF objects a scenario may declare itself, ``apiVersion: vrsim.tf/v1``.

These are what the article's operators create by hand in TF: a virtual network for the
custom-network annotation, a VN-level network policy joining two isolated namespaces, a
floating-IP pool for LoadBalancer services. The schemas are strict like the Kubernetes ones.

>>> VirtualNetworkSpec.model_validate({"ipam": "k8s-pod-ipam"}).ipam
'k8s-pod-ipam'
>>> parse_ports("8000-8080")
(8000, 8080)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TF_KINDS = ("VirtualNetwork", "NetworkPolicy", "FloatingIpPool")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


def store_kind(kind: str) -> str:
    """The key a declared TF kind has in the object store (apart from Kubernetes kinds)."""
    return f"{kind}.vrsim.tf"


def parse_ports(value: str | int | None) -> tuple[int, int]:
    """``"80"``, ``80``, ``"8000-8080"`` or ``"any"`` → an inclusive range."""
    if value is None or value == "any":
        return (0, 65535)
    text = str(value).strip()
    match = re.fullmatch(r"(\d{1,5})(?:\s*-\s*(\d{1,5}))?", text)
    if not match:
        raise ValueError(f"ports must look like 80 or 8000-8080, got {value!r}")
    lo = int(match.group(1))
    hi = int(match.group(2) or lo)
    if not (0 <= lo <= hi <= 65535):
        raise ValueError(f"port range {lo}-{hi} is not within 0-65535 in order")
    return (lo, hi)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TFMetadata(_Strict):
    name: Annotated[str, Field(pattern=_NAME.pattern)]
    project: Annotated[str, Field(pattern=_NAME.pattern)] | None = None
    domain: Annotated[str, Field(pattern=_NAME.pattern)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"invalid IPv4 subnet {value!r}: {exc}") from None


class VirtualNetworkSpec(_Strict):
    ipam: str | None = None
    subnet: str | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return _cidr(value) if value is not None else None

    @model_validator(mode="after")
    def _one_source(self) -> "VirtualNetworkSpec":
        if (self.ipam is None) == (self.subnet is None):
            raise ValueError("give exactly one of ipam (a shared IPAM) or subnet (the VN's own)")
        return self


class PolicyRuleSpec(_Strict):
    action: Literal["pass", "deny"]
    protocol: Literal["any", "tcp", "udp", "icmp", "sctp"] = "any"
    direction: Literal["<>", ">"] = "<>"
    src: str = "any"
    dst: str = "any"
    ports: str | int | None = None
    srcPorts: str | int | None = None

    @field_validator("ports", "srcPorts")
    @classmethod
    def _ports(cls, value: str | int | None) -> str | int | None:
        parse_ports(value)
        return value


class NetworkPolicySpec(_Strict):
    rules: list[PolicyRuleSpec] = Field(default_factory=list)
    attachTo: list[str] = Field(default_factory=list)


class FloatingIpPoolSpec(_Strict):
    network: Annotated[str, Field(pattern=_NAME.pattern)]
    subnet: str | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return _cidr(value) if value is not None else None


class _Object(_Strict):
    apiVersion: Literal["vrsim.tf/v1"]
    metadata: TFMetadata
    status: dict[str, object] | None = None


class VirtualNetworkObject(_Object):
    kind: Literal["VirtualNetwork"]
    spec: VirtualNetworkSpec


class NetworkPolicyObject(_Object):
    kind: Literal["NetworkPolicy"]
    spec: NetworkPolicySpec


class FloatingIpPoolObject(_Object):
    kind: Literal["FloatingIpPool"]
    spec: FloatingIpPoolSpec


TF_MODELS: dict[str, type[_Object]] = {
    "VirtualNetwork": VirtualNetworkObject,
    "NetworkPolicy": NetworkPolicyObject,
    "FloatingIpPool": FloatingIpPoolObject,
}


def parse_vn_ref(value: str, default_domain: str, default_project: str | None = None) -> tuple[str, ...]:
    """``project:name`` or ``domain:project:name`` (or a bare ``name`` in ``default_project``)."""
    parts = value.split(":")
    if len(parts) == 3 and all(parts):
        return tuple(parts)
    if len(parts) == 2 and all(parts):
        return (default_domain, *parts)
    if len(parts) == 1 and parts[0] and default_project:
        return (default_domain, default_project, parts[0])
    raise ValueError(f"a virtual network is named project:name or domain:project:name, got {value!r}")
