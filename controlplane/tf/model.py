"""The Tungsten Fabric configuration objects contrail-kube-manager creates.

Each object has, like the real API, a type name (``virtual-network``), an ``fq_name`` (the
path from its domain or root: ``default-domain:k8s-default:k8s-default-pod-network``), a
``uuid``, a parent, references to other objects (``*_refs``, by fq_name) and its properties.
:class:`ConfigDB` is the API server's database: it refuses duplicates and deleting an object
that something still references, which is how a leak or an out-of-order delete in
kube-manager shows up in the tests instead of in a user's results.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from controlplane.tf.ipam import AddressPool

FqName = tuple[str, ...]
_UUID_NAMESPACE = uuidlib.UUID("6f1c3b1e-5d0a-4d8e-9a59-7e6a1f0c2b11")


def stable_uuid(*parts: str) -> str:
    """A uuid that depends only on its inputs, so runs are reproducible."""
    return str(uuidlib.uuid5(_UUID_NAMESPACE, "\x1f".join(parts)))


def fq_str(fq_name: FqName) -> str:
    return ":".join(fq_name)


@dataclass(eq=False, kw_only=True)
class TFObject:
    """Common part of every TF object."""

    TYPE: ClassVar[str] = ""
    PARENT_TYPE: ClassVar[str | None] = None
    #: attributes holding references (lists of fq_names) → the referenced type
    REFS: ClassVar[dict[str, str]] = {}

    fq_name: FqName
    uuid: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.uuid:
            self.uuid = stable_uuid(self.TYPE, *self.fq_name)

    @property
    def name(self) -> str:
        return self.fq_name[-1]

    def references(self) -> Iterator[tuple[str, FqName]]:
        """Every (type, fq_name) this object refers to, parent included."""
        if self.PARENT_TYPE and len(self.fq_name) > 1:
            yield self.PARENT_TYPE, self.fq_name[:-1]
        for attr, ref_type in self.REFS.items():
            for item in getattr(self, attr):
                yield ref_type, item

    def properties(self) -> dict[str, Any]:
        """The object's own properties, as JSON-ready values (unset ones left out, as the API does)."""
        skip = {"fq_name", "uuid", "annotations", *self.REFS}
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in skip or f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if value is None or isinstance(value, AddressPool):
                continue
            out[f.name] = _jsonable(value)
        return out

    def to_json(self) -> dict[str, Any]:
        """The shape of the TF API's GET: fq_name, uuid, parent, properties, refs."""
        out: dict[str, Any] = {"type": self.TYPE, "fq_name": list(self.fq_name), "uuid": self.uuid}
        if self.PARENT_TYPE:
            out["parent_type"] = self.PARENT_TYPE
        out.update(self.properties())
        for attr in self.REFS:
            out[attr] = [{"to": list(ref)} for ref in getattr(self, attr)]
        if self.annotations:
            out["annotations"] = {"key_value_pair": [{"key": k, "value": v} for k, v in sorted(self.annotations.items())]}
        return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k if not isinstance(k, tuple) else fq_str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_jsonable(v) for v in value)
    return value


# --- the objects -------------------------------------------------------------------------


@dataclass(eq=False, kw_only=True)
class Domain(TFObject):
    TYPE: ClassVar[str] = "domain"


@dataclass(eq=False, kw_only=True)
class Project(TFObject):
    TYPE: ClassVar[str] = "project"
    PARENT_TYPE: ClassVar[str | None] = "domain"


@dataclass(eq=False, kw_only=True)
class NetworkIpam(TFObject):
    """An IPAM with one flat subnet: one pool shared by every VN that uses it."""

    TYPE: ClassVar[str] = "network-ipam"
    PARENT_TYPE: ClassVar[str | None] = "project"
    subnet: str
    ipam_subnet_method: str = "flat-subnet"
    pool: AddressPool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pool is None:
            self.pool = AddressPool(self.subnet)


@dataclass(frozen=True)
class PolicyRule:
    """One rule of a VN-level network policy.

    ``src``/``dst`` are a VN fq_name, ``"any"``, or ``"local"`` — "every VN this policy is
    attached to", as kube-manager's default policies say.
    """

    action: str  # "pass" | "deny"
    protocol: str = "any"  # any | tcp | udp | icmp | sctp
    src: FqName | str = "any"
    dst: FqName | str = "any"
    src_ports: tuple[int, int] = (0, 65535)
    dst_ports: tuple[int, int] = (0, 65535)
    direction: str = "<>"  # "<>" both ways, ">" src → dst only

    def to_json(self) -> dict[str, Any]:
        def side(v: FqName | str) -> str:
            return v if isinstance(v, str) else fq_str(v)

        return {
            "action": self.action,
            "protocol": self.protocol,
            "direction": self.direction,
            "src_addresses": [{"virtual_network": side(self.src)}],
            "dst_addresses": [{"virtual_network": side(self.dst)}],
            "src_ports": [{"start_port": self.src_ports[0], "end_port": self.src_ports[1]}],
            "dst_ports": [{"start_port": self.dst_ports[0], "end_port": self.dst_ports[1]}],
        }


@dataclass(eq=False, kw_only=True)
class NetworkPolicy(TFObject):
    """A VN-level policy: rules, attached to VNs through the VNs' ``network_policy_refs``."""

    TYPE: ClassVar[str] = "network-policy"
    PARENT_TYPE: ClassVar[str | None] = "project"
    rules: list[PolicyRule] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class VirtualNetwork(TFObject):
    TYPE: ClassVar[str] = "virtual-network"
    PARENT_TYPE: ClassVar[str | None] = "project"
    REFS: ClassVar[dict[str, str]] = {"network_ipam_refs": "network-ipam", "network_policy_refs": "network-policy"}
    network_ipam_refs: list[FqName] = field(default_factory=list)
    network_policy_refs: list[FqName] = field(default_factory=list)
    #: a VN with its own subnet (declared by a scenario) rather than an IPAM's flat pool
    subnet: str | None = None
    own_pool: AddressPool | None = None
    virtual_network_network_id: int = 0
    vxlan_network_identifier: int = 0
    ip_fabric: bool = False

    @property
    def routing_instance(self) -> FqName:
        return (*self.fq_name, self.fq_name[-1])


@dataclass(eq=False, kw_only=True)
class RoutingInstance(TFObject):
    """The VN's VRF: ``<vn fq_name>:<vn name>``."""

    TYPE: ClassVar[str] = "routing-instance"
    PARENT_TYPE: ClassVar[str | None] = "virtual-network"


@dataclass(frozen=True)
class SGRule:
    """One security-group rule: direction, protocol, the remote side and ports."""

    direction: str  # "ingress" | "egress"
    protocol: str = "any"
    remote: str = "0.0.0.0/0"  # a CIDR, or a description of the peer set
    ports: tuple[int, int] = (0, 65535)
    ethertype: str = "IPv4"

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "ethertype": self.ethertype,
            "protocol": self.protocol,
            "remote": self.remote,
            "port_range": [self.ports[0], self.ports[1]],
        }


@dataclass(eq=False, kw_only=True)
class SecurityGroup(TFObject):
    """A security group. For one made from a NetworkPolicy, ``network_policy`` names it
    (``namespace/name``) and the rules summarise it; flow setup evaluates the policy itself."""

    TYPE: ClassVar[str] = "security-group"
    PARENT_TYPE: ClassVar[str | None] = "project"
    rules: list[SGRule] = field(default_factory=list)
    network_policy: str | None = None


@dataclass(eq=False, kw_only=True)
class PolicyManagement(TFObject):
    """``default-policy-management``: the parent of the firewall objects."""

    TYPE: ClassVar[str] = "policy-management"


@dataclass(frozen=True)
class FirewallRuleSpec:
    """What a firewall rule says: action, the two endpoints (tags or an address group), the
    service (protocol, ports) and the direction (``>``: endpoint 1 to endpoint 2)."""

    action: str  # "pass" | "deny"
    endpoint_1: str
    endpoint_2: str
    protocol: str = "any"
    ports: tuple[int, int] = (0, 65535)
    direction: str = ">"
    port_name: str | None = None  # a named port kube-manager passes through unresolved (matches no port)

    def to_json(self) -> dict[str, Any]:
        return {
            "action_list": {"simple_action": self.action},
            "endpoint_1": self.endpoint_1,
            "endpoint_2": self.endpoint_2,
            "service": {"protocol": self.protocol, "dst_ports": {"start_port": self.ports[0], "end_port": self.ports[1]}},
            "direction": self.direction,
        }


@dataclass(eq=False, kw_only=True)
class FirewallRule(TFObject):
    """A firewall rule of the tf reading (kube-manager vnc_security_policy)."""

    TYPE: ClassVar[str] = "firewall-rule"
    PARENT_TYPE: ClassVar[str | None] = "policy-management"
    rule: FirewallRuleSpec


@dataclass(eq=False, kw_only=True)
class FirewallPolicy(TFObject):
    """A firewall policy: its rules in sequence order (``firewall_rule_refs``)."""

    TYPE: ClassVar[str] = "firewall-policy"
    PARENT_TYPE: ClassVar[str | None] = "policy-management"
    REFS: ClassVar[dict[str, str]] = {"firewall_rule_refs": "firewall-rule"}
    firewall_rule_refs: list[FqName] = field(default_factory=list)
    network_policy: str | None = None  # ``namespace/name`` of the NetworkPolicy it realises


@dataclass(eq=False, kw_only=True)
class ApplicationPolicySet(TFObject):
    """The cluster's application policy set: its firewall policies in sequence order."""

    TYPE: ClassVar[str] = "application-policy-set"
    PARENT_TYPE: ClassVar[str | None] = "policy-management"
    REFS: ClassVar[dict[str, str]] = {"firewall_policy_refs": "firewall-policy"}
    firewall_policy_refs: list[FqName] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class AddressGroup(TFObject):
    """Addresses a firewall rule names (an ipBlock's CIDR, or its except list)."""

    TYPE: ClassVar[str] = "address-group"
    PARENT_TYPE: ClassVar[str | None] = "policy-management"
    prefixes: list[str] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class Tag(TFObject):
    """A label as a TF tag: ``app=nginx``, ``namespace=default``."""

    TYPE: ClassVar[str] = "tag"
    tag_type_name: str
    tag_value: str


@dataclass(eq=False, kw_only=True)
class VirtualRouter(TFObject):
    """A compute node's vRouter: ``default-global-system-config:<node>``."""

    TYPE: ClassVar[str] = "virtual-router"
    virtual_router_ip_address: str


@dataclass(eq=False, kw_only=True)
class VirtualMachine(TFObject):
    """A pod as TF sees it: ``<C>__<ns>__<pod>``, uuid = the pod's uid, bound to a vRouter."""

    TYPE: ClassVar[str] = "virtual-machine"
    REFS: ClassVar[dict[str, str]] = {"virtual_router_refs": "virtual-router"}
    virtual_router_refs: list[FqName] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class VirtualMachineInterface(TFObject):
    """A port: pod interface, load-balancer VIP port, or an HAProxy instance's port."""

    TYPE: ClassVar[str] = "virtual-machine-interface"
    PARENT_TYPE: ClassVar[str | None] = "project"
    REFS: ClassVar[dict[str, str]] = {
        "virtual_network_refs": "virtual-network",
        "virtual_machine_refs": "virtual-machine",
        "security_group_refs": "security-group",
        "tag_refs": "tag",
    }
    virtual_network_refs: list[FqName] = field(default_factory=list)
    virtual_machine_refs: list[FqName] = field(default_factory=list)
    security_group_refs: list[FqName] = field(default_factory=list)
    tag_refs: list[FqName] = field(default_factory=list)
    mac_address: str = ""
    #: the node whose vRouter holds this port (None for a VIP port with no location)
    node: str | None = None
    device_owner: str = "K8S:POD"


@dataclass(eq=False, kw_only=True)
class InstanceIp(TFObject):
    TYPE: ClassVar[str] = "instance-ip"
    REFS: ClassVar[dict[str, str]] = {
        "virtual_network_refs": "virtual-network",
        "virtual_machine_interface_refs": "virtual-machine-interface",
    }
    instance_ip_address: str
    virtual_network_refs: list[FqName] = field(default_factory=list)
    virtual_machine_interface_refs: list[FqName] = field(default_factory=list)
    instance_ip_family: str = "v4"
    #: an address shared by several VMIs: "active-active" (ECMP) or "active-standby" (first wins)
    instance_ip_mode: str = "active-active"


@dataclass(eq=False, kw_only=True)
class FloatingIpPool(TFObject):
    """A pool of floating IPs drawn from its VN's subnet."""

    TYPE: ClassVar[str] = "floating-ip-pool"
    PARENT_TYPE: ClassVar[str | None] = "virtual-network"
    public: bool = False


@dataclass(frozen=True)
class PortMapping:
    """``protocol port → target port`` as a floating IP's port map holds it."""

    protocol: str
    src_port: int
    dst_port: int

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "src_port": self.src_port, "dst_port": self.dst_port}


@dataclass(eq=False, kw_only=True)
class FloatingIp(TFObject):
    """A floating IP attached to one or more VMIs.

    A service VIP is one floating IP attached to every member's VMI (the ECMP of the article).
    Choice: the port map is kept per VMI (``port_mappings_by_vmi``) because a named target
    port may resolve to a different number on each pod; ``port_mappings`` is the common map
    when all members agree, which is the usual case and what the real API shows.
    """

    TYPE: ClassVar[str] = "floating-ip"
    PARENT_TYPE: ClassVar[str | None] = "floating-ip-pool"
    REFS: ClassVar[dict[str, str]] = {"virtual_machine_interface_refs": "virtual-machine-interface", "project_refs": "project"}
    floating_ip_address: str
    virtual_machine_interface_refs: list[FqName] = field(default_factory=list)
    project_refs: list[FqName] = field(default_factory=list)
    port_mappings_by_vmi: dict[FqName, tuple[PortMapping, ...]] = field(default_factory=dict)
    floating_ip_port_mappings_enable: bool = False
    #: what it fronts: "cluster-ip", "external-ip", "ingress"
    role: str = ""

    @property
    def port_mappings(self) -> tuple[PortMapping, ...]:
        maps = {m for m in self.port_mappings_by_vmi.values()}
        return next(iter(maps)) if len(maps) == 1 else ()

    def properties(self) -> dict[str, Any]:
        out = super().properties()
        out.pop("port_mappings_by_vmi", None)
        out["floating_ip_port_mappings"] = {"port_mappings": [m.to_json() for m in self.port_mappings]}
        if len({m for m in self.port_mappings_by_vmi.values()}) > 1:
            out["port_mappings_by_vmi"] = {
                fq_str(k): [m.to_json() for m in v] for k, v in sorted(self.port_mappings_by_vmi.items())
            }
        return out


@dataclass(eq=False, kw_only=True)
class Loadbalancer(TFObject):
    """A load balancer: ``native`` (ECMP, for Services) or ``opencontrail`` (HAProxy, Ingress)."""

    TYPE: ClassVar[str] = "loadbalancer"
    PARENT_TYPE: ClassVar[str | None] = "project"
    REFS: ClassVar[dict[str, str]] = {"virtual_machine_interface_refs": "virtual-machine-interface"}
    loadbalancer_provider: str
    vip_address: str
    virtual_machine_interface_refs: list[FqName] = field(default_factory=list)
    external_ip: str | None = None
    status: str = "ACTIVE"


@dataclass(eq=False, kw_only=True)
class LoadbalancerListener(TFObject):
    TYPE: ClassVar[str] = "loadbalancer-listener"
    PARENT_TYPE: ClassVar[str | None] = "project"
    REFS: ClassVar[dict[str, str]] = {"loadbalancer_refs": "loadbalancer"}
    protocol: str
    protocol_port: int
    loadbalancer_refs: list[FqName] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class LoadbalancerPool(TFObject):
    """A pool; for an Ingress it carries the host and path rule that chooses it."""

    TYPE: ClassVar[str] = "loadbalancer-pool"
    PARENT_TYPE: ClassVar[str | None] = "project"
    REFS: ClassVar[dict[str, str]] = {"loadbalancer_listener_refs": "loadbalancer-listener"}
    protocol: str
    loadbalancer_method: str = "ROUND_ROBIN"
    loadbalancer_listener_refs: list[FqName] = field(default_factory=list)
    target_port: int | str | None = None
    host: str | None = None
    path: str | None = None
    path_type: str | None = None


@dataclass(eq=False, kw_only=True)
class LoadbalancerMember(TFObject):
    TYPE: ClassVar[str] = "loadbalancer-member"
    PARENT_TYPE: ClassVar[str | None] = "loadbalancer-pool"
    address: str
    protocol_port: int
    #: the pod (``ns/name``) or service (``service/ns/name``) behind the member
    target: str = ""


T = TypeVar("T", bound=TFObject)


class ReferenceError_(Exception):
    """A create/delete that would break the database's references (a kube-manager bug)."""


class ConfigDB:
    """The configuration database: objects by type and fq_name, with reference integrity."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[FqName, TFObject]] = {}
        self._back_refs: dict[tuple[str, FqName], set[tuple[str, FqName]]] = {}

    def create(self, obj: T) -> T:
        table = self._objects.setdefault(obj.TYPE, {})
        if obj.fq_name in table:
            raise ReferenceError_(f"{obj.TYPE} {fq_str(obj.fq_name)} already exists")
        for ref_type, ref in obj.references():
            if ref not in self._objects.get(ref_type, {}):
                raise ReferenceError_(f"{obj.TYPE} {fq_str(obj.fq_name)} refers to missing {ref_type} {fq_str(ref)}")
        table[obj.fq_name] = obj
        self._link(obj)
        return obj

    def update(self, obj: TFObject, **changes: Any) -> None:
        """Change attributes (references included) with the integrity rules applied."""
        self._unlink(obj)
        old = {k: getattr(obj, k) for k in changes}
        for key, value in changes.items():
            setattr(obj, key, value)
        for ref_type, ref in obj.references():
            if ref not in self._objects.get(ref_type, {}):
                for key, value in old.items():
                    setattr(obj, key, value)
                self._link(obj)
                raise ReferenceError_(f"{obj.TYPE} {fq_str(obj.fq_name)} refers to missing {ref_type} {fq_str(ref)}")
        self._link(obj)

    def delete(self, obj: TFObject) -> None:
        key = (obj.TYPE, obj.fq_name)
        users = self._back_refs.get(key)
        if users:
            user_type, user_fq = sorted(users)[0]
            raise ReferenceError_(
                f"cannot delete {obj.TYPE} {fq_str(obj.fq_name)}: still referred to by {user_type} {fq_str(user_fq)}"
            )
        self._unlink(obj)
        del self._objects[obj.TYPE][obj.fq_name]
        self._back_refs.pop(key, None)

    def get(self, cls: type[T], fq_name: FqName) -> T | None:
        found = self._objects.get(cls.TYPE, {}).get(tuple(fq_name))
        return found  # type: ignore[return-value]

    def list(self, cls: type[T]) -> list[T]:
        return list(self._objects.get(cls.TYPE, {}).values())  # type: ignore[arg-type]

    def referrers(self, obj: TFObject, of_type: type[T] | None = None) -> list[T]:
        """Objects that refer to ``obj`` (children included), optionally of one type."""
        out = []
        for ref_type, fq in sorted(self._back_refs.get((obj.TYPE, obj.fq_name), ())):
            if of_type is None or ref_type == of_type.TYPE:
                out.append(self._objects[ref_type][fq])
        return out  # type: ignore[return-value]

    def counts(self) -> dict[str, int]:
        return {t: len(v) for t, v in sorted(self._objects.items()) if v}

    def all_objects(self) -> Iterator[TFObject]:
        for table in self._objects.values():
            yield from table.values()

    def _link(self, obj: TFObject) -> None:
        me = (obj.TYPE, obj.fq_name)
        for ref in obj.references():
            self._back_refs.setdefault(ref, set()).add(me)

    def _unlink(self, obj: TFObject) -> None:
        me = (obj.TYPE, obj.fq_name)
        for ref in obj.references():
            users = self._back_refs.get(ref)
            if users is not None:
                users.discard(me)
                if not users:
                    del self._back_refs[ref]


def address_pool(db: ConfigDB, vn: VirtualNetwork) -> AddressPool:
    """The address pool a VN allocates from: its own subnet's, or its IPAM's shared one.

    (It lives with the model rather than in :mod:`controlplane.tf.ipam`, which the model
    imports: kube_manager allocates from it and the controller routes its subnet.)"""
    if vn.own_pool is not None:
        return vn.own_pool
    ipam = db.get(NetworkIpam, vn.network_ipam_refs[0])
    assert ipam is not None and ipam.pool is not None
    return ipam.pool
