"""The control node's view: from the TF configuration, what every VRF must hold.

For each VN's VRF (spec/k8s-to-tf.md §9–10, vrouter.md §1):
- its own routes: every instance IP's /32 (toward its interface), the subnet's gateway and
  DNS (answered by the vRouter), the subnet itself toward discard, every floating IP of its pools as one ECMP route over the
  interfaces it is attached to; the ip-fabric VRF holds each node's address and a default
  route to the SDN gateway; a public VN (a declared floating-IP pool's) a default route
  toward the gateway;
- the own routes of every VN it is connected to (one hop in the connectivity graph), so a
  VN connected to ip-fabric gets the node addresses and the default route too.

Routes are node-independent here ("this address is interface X on node n"); the vRouter agent
of each node turns them into nexthops. ECMP slots are kept across recomputations by
:class:`EcmpSlots`: a member that goes leaves a hole, a new one fills the first hole, so
the flows of surviving members keep their member.

Choice: the subnet route (a VN's subnet, or its IPAM's, toward discard) is what makes an
address of the cluster that a VRF has no host route for end in a no-route drop on the
sender's node, instead of following the default route to the SDN gateway; subnet routes
leak like the others, so a pod VRF connected to the default service VN discards unknown
ClusterIPs too. The ip-fabric VN has none: the fabric is the real world.

Choice: a floating-IP route is a composite even with one member, so that a second member
takes a new slot without moving the first one's flows.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

import networkx as nx

from controlplane.config import GATEWAY_NODE, ClusterConfig
from controlplane.controller.acl import AclEntry, vn_acl
from controlplane.controller.connectivity import vn_graph
from controlplane.controller.netpol import ANY_PROTOCOL, OPEN, Allow, Direction, PodInfo, PolicyIndex, RuleRef, named_ports_of
from controlplane.inet import ip_int
from controlplane.k8s.kube_proxy import NodePortRule, node_port_rules
from controlplane.k8s.store import ObjectStore
from controlplane.tf import model as tf
from controlplane.tf.model import FqName, PortMapping
from controlplane.tf_reading import applies, tf_network_policy

# endpoint kinds
VMI = "vmi"  # a port, in its own VN's VRF
FIP = "fip"  # a port, reached through a floating IP of another VN's VRF (DNAT on arrival)
RECEIVE = "receive"  # the vRouter/host of the node doing the lookup
UNDERLAY = "underlay"  # a node's host address, across the fabric without encapsulation
GATEWAY = "gateway"  # the SDN gateway, across the fabric without encapsulation
GATEWAY_VRF = "gateway-vrf"  # the SDN gateway's VRF of a public VN, through a tunnel
DISCARD = "discard"  # a subnet's catch-all: an address of the subnet with no host route


@dataclass(frozen=True)
class Endpoint:
    """Where a route leads: an interface on a node, the local host, another node, the gateway."""

    kind: str
    vn: FqName  # the destination VN (what ACLs compare)
    node: str | None = None
    vmi: FqName | None = None
    ip: str | None = None  # the interface's own address (for policy after an ECMP choice)
    fip: str | None = None  # the floating IP, for FIP endpoints
    port_map: tuple[PortMapping, ...] = ()

    @property
    def slot_key(self) -> tuple[str, ...]:
        """What identifies a member across recomputations."""
        return (self.kind, self.node or "", *(self.vmi or ()))


@dataclass(frozen=True)
class Route:
    prefix: str
    members: tuple[Endpoint | None, ...]  # unicast: one; ECMP: slots, None = hole
    origin: FqName  # the VN whose route this is
    kind: str  # interface | floating-ip | gateway | dns | subnet | node | default

    @property
    def ecmp(self) -> bool:
        return self.kind == "floating-ip"

    @property
    def network(self) -> tuple[int, int]:
        """(address as an int, prefix length)."""
        return parse_prefix(self.prefix)

    @property
    def active(self) -> list[Endpoint]:
        return [m for m in self.members if m is not None]


@functools.lru_cache(maxsize=None)
def parse_prefix(prefix: str) -> tuple[int, int]:
    """``"10.0.0.0/8"`` → (167772160, 8), parsed once per distinct prefix."""
    net = ipaddress.IPv4Network(prefix)
    return int(net.network_address), net.prefixlen


@dataclass
class VrfIntent:
    vn: FqName
    vn_id: int
    routes: dict[str, Route] = field(default_factory=dict)
    acl: list[AclEntry] = field(default_factory=list)
    public: bool = False


@dataclass(frozen=True)
class Interface:
    """A port on a node with what flow setup needs about it."""

    vmi: FqName
    node: str
    vn: FqName
    ip: str | None
    mac: str
    owner: str
    pod: str | None
    fips: tuple[tuple[str, FqName, tuple[PortMapping, ...]], ...]  # (address, FIP's VN, port map)
    ingress: Direction = OPEN
    egress: Direction = OPEN
    standby: bool = False


@dataclass
class Intent:
    """Everything the vRouter agents compile, for every node."""

    nodes: list[tuple[str, str]]  # (name, underlay IP), workers first, the gateway last
    gateway: tuple[str, str]
    vrfs: dict[FqName, VrfIntent]
    interfaces: dict[FqName, Interface]
    graph: nx.Graph
    node_ports: list[NodePortRule]
    fabric_vn: FqName
    encapsulation: str

    def vrf_of(self, vn: FqName) -> VrfIntent:
        return self.vrfs[vn]


class EcmpSlots:
    """Position-stable ECMP member slots per (VRF, prefix)."""

    def __init__(self) -> None:
        self._slots: dict[tuple[FqName, str], list[tuple[str, ...] | None]] = {}

    def arrange(self, key: tuple[FqName, str], members: list[Endpoint]) -> tuple[Endpoint | None, ...]:
        by_key = {m.slot_key: m for m in members}
        slots = self._slots.setdefault(key, [])
        for i, held in enumerate(slots):
            if held is not None and held not in by_key:
                slots[i] = None
        present = {s for s in slots if s is not None}
        for member_key in sorted(by_key):
            if member_key in present:
                continue
            try:
                slots[slots.index(None)] = member_key
            except ValueError:
                slots.append(member_key)
        while slots and slots[-1] is None:
            slots.pop()
        if not by_key:
            del self._slots[key]
            return ()
        return tuple(by_key[s] if s is not None else None for s in slots)


def _host(prefix: str) -> str:
    return f"{prefix}/32"


def ingress_past_policies(direction: Direction, haproxies: list[int]) -> Direction:
    """A pod's ingress with the HAProxy addresses allowed first (the tf reading, behaviour 10)."""
    if not direction.isolated or not haproxies:
        return direction
    ref = RuleRef("<cluster>-Ingress", "ingress", 0)
    first = tuple(Allow(ip, ip, ANY_PROTOCOL, 0, 65535, ref) for ip in haproxies)
    return Direction(True, first + direction.allows, direction.policies)


class Controller:
    """Computes the :class:`Intent` of a cluster, keeping ECMP slots between runs.

    It reads the TF model (``db``, which kube-manager keeps: a pod's VMI carries the pod's
    namespace and name in its annotations, as TF's kube-manager writes them), the Kubernetes
    objects it needs for NetworkPolicies and node ports (``store``), and the cluster's
    configuration of the moment (nodes come and go), given to each computation — never
    kube-manager's own bookkeeping."""

    def __init__(self, db: tf.ConfigDB, store: ObjectStore, ipblock_selects_pods: bool = True) -> None:
        self.config = ClusterConfig()  # the one compute() is given
        self.db = db
        self.store = store
        self.ipblock_selects_pods = ipblock_selects_pods
        self.slots = EcmpSlots()

    def compute(self, config: ClusterConfig) -> Intent:
        self.config = config
        db = self.db
        vns = sorted(db.list(tf.VirtualNetwork), key=lambda v: v.virtual_network_network_id)
        fabric = [v.fq_name for v in vns if v.ip_fabric]  # the ip-fabric VN kube-manager makes at start
        assert len(fabric) == 1, f"one ip-fabric VN expected, found {fabric}"
        fabric_vn = fabric[0]
        attachments = {v.fq_name: list(v.network_policy_refs) for v in vns}
        policies = {p.fq_name: list(p.rules) for p in db.list(tf.NetworkPolicy)}
        attached_to: dict[FqName, set[FqName]] = {}
        for vn, refs in attachments.items():
            for ref in refs:
                attached_to.setdefault(ref, set()).add(vn)
        frozen_attached = {k: frozenset(v) for k, v in attached_to.items()}
        graph = vn_graph([v.fq_name for v in vns], attachments, policies)
        interfaces = self._interfaces()
        public = {p.fq_name[:-1] for p in db.list(tf.FloatingIpPool) if p.public}
        own: dict[FqName, list[Route]] = {v.fq_name: self._own_routes(v, interfaces, v.fq_name in public, config) for v in vns}
        vrfs: dict[FqName, VrfIntent] = {}
        for vn in vns:
            vrf = VrfIntent(vn.fq_name, vn.virtual_network_network_id, public=vn.fq_name in public)
            vrf.acl = vn_acl(vn.fq_name, attachments, policies, frozen_attached)
            for route in own[vn.fq_name]:
                vrf.routes.setdefault(route.prefix, route)
            for other in sorted(graph.neighbors(vn.fq_name)):
                for route in own[other]:
                    if route.kind in ("gateway", "dns"):
                        continue
                    vrf.routes.setdefault(route.prefix, route)
            vrfs[vn.fq_name] = vrf
        nodes = [(n.name, n.ip) for n in config.nodes]
        gateway = (GATEWAY_NODE, config.gateway_ip)
        return Intent(
            nodes=[*nodes, gateway],
            gateway=gateway,
            vrfs=vrfs,
            interfaces=interfaces,
            graph=graph,
            node_ports=node_port_rules(self.store),
            fabric_vn=fabric_vn,
            encapsulation=config.encapsulation,
        )

    # --- interfaces ------------------------------------------------------------------
    def _interfaces(self) -> dict[FqName, Interface]:
        db = self.db
        store = self.store
        addresses: dict[FqName, str] = {}
        standby: set[FqName] = set()
        for iip in db.list(tf.InstanceIp):
            for i, vmi in enumerate(iip.virtual_machine_interface_refs):
                addresses.setdefault(vmi, iip.instance_ip_address)
                if iip.instance_ip_mode == "active-standby" and i > 0:
                    standby.add(vmi)
        fips: dict[FqName, list[tuple[str, FqName, tuple[PortMapping, ...]]]] = {}
        for fip in db.list(tf.FloatingIp):
            fip_vn = fip.fq_name[:3]
            for vmi in fip.virtual_machine_interface_refs:
                fips.setdefault(vmi, []).append((fip.floating_ip_address, fip_vn, fip.port_mappings_by_vmi.get(vmi, ())))
        pods: list[PodInfo] = []
        pod_of: dict[FqName, PodInfo] = {}
        for vmi in db.list(tf.VirtualMachineInterface):
            namespace, name = vmi.annotations.get("namespace"), vmi.annotations.get("pod")
            obj = store.get("Pod", namespace, name) if namespace and name else None
            if obj is None or vmi.fq_name not in addresses:
                continue
            info = PodInfo(namespace, name, ip_int(addresses[vmi.fq_name]), dict(obj["metadata"].get("labels") or {}), named_ports_of(obj))
            pods.append(info)
            pod_of[vmi.fq_name] = info
        namespaces = {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in store.list("Namespace")}
        policies = [tf_network_policy(p, self.config) for p in store.list("NetworkPolicy")]  # the tf reading's parsers
        index = PolicyIndex(pods, namespaces, policies, self.ipblock_selects_pods, except_denies=applies(self.config, 4))
        # the tf reading (behaviour 10): kube-manager's <cluster>-Ingress firewall policy, ahead of
        # every NetworkPolicy, lets the Ingresses' HAProxy reach any pod
        haproxies = [ip_int(lb.vip_address) for lb in db.list(tf.Loadbalancer) if lb.loadbalancer_provider == "opencontrail"] if applies(self.config, 10) else []
        out: dict[FqName, Interface] = {}
        for vmi in sorted(db.list(tf.VirtualMachineInterface), key=lambda v: v.fq_name):
            if vmi.node is None or not vmi.virtual_network_refs:
                continue
            info = pod_of.get(vmi.fq_name)
            out[vmi.fq_name] = Interface(
                vmi=vmi.fq_name,
                node=vmi.node,
                vn=vmi.virtual_network_refs[0],
                ip=addresses.get(vmi.fq_name),
                mac=vmi.mac_address,
                owner=vmi.device_owner,
                pod=f"{info.namespace}/{info.name}" if info else None,
                fips=tuple(sorted(fips.get(vmi.fq_name, []))),
                ingress=ingress_past_policies(index.direction(info, True), haproxies) if info else OPEN,
                egress=index.direction(info, False) if info else OPEN,
                standby=vmi.fq_name in standby,
            )
        return out

    # --- routes ----------------------------------------------------------------------
    def _own_routes(self, vn: tf.VirtualNetwork, interfaces: dict[FqName, Interface], public: bool, config: ClusterConfig) -> list[Route]:
        db = self.db
        routes: list[Route] = []
        for iip in db.referrers(vn, tf.InstanceIp):
            members = [interfaces[v] for v in iip.virtual_machine_interface_refs if v in interfaces]
            if not members:
                continue
            active = [m for m in members if not m.standby][:1] if iip.instance_ip_mode == "active-standby" else members
            ends = [Endpoint(VMI, vn.fq_name, m.node, m.vmi, m.ip) for m in active]
            routes.append(Route(_host(iip.instance_ip_address), tuple(ends), vn.fq_name, "interface"))
        pool = tf.address_pool(db, vn) if (vn.own_pool or vn.network_ipam_refs) else None
        if pool is not None and not vn.ip_fabric:
            routes.append(Route(str(pool.network), (Endpoint(DISCARD, vn.fq_name),), vn.fq_name, "subnet"))
            if pool.gateway is not None:
                receive = Endpoint(RECEIVE, vn.fq_name)
                routes.append(Route(_host(str(pool.gateway)), (receive,), vn.fq_name, "gateway"))
                routes.append(Route(_host(str(pool.dns)), (receive,), vn.fq_name, "dns"))
        for fip_pool in db.referrers(vn, tf.FloatingIpPool):
            for fip in db.referrers(fip_pool, tf.FloatingIp):
                members = [
                    Endpoint(FIP, vn.fq_name, interfaces[v].node, v, interfaces[v].ip, fip.floating_ip_address, fip.port_mappings_by_vmi.get(v, ()))
                    for v in fip.virtual_machine_interface_refs
                    if v in interfaces
                ]
                prefix = _host(fip.floating_ip_address)
                slots = self.slots.arrange((vn.fq_name, prefix), members)
                if slots:
                    routes.append(Route(prefix, slots, vn.fq_name, "floating-ip"))
        if vn.ip_fabric:
            for node in config.nodes:
                routes.append(Route(_host(node.ip), (Endpoint(UNDERLAY, vn.fq_name, node.name),), vn.fq_name, "node"))
            routes.append(Route("0.0.0.0/0", (Endpoint(GATEWAY, vn.fq_name, GATEWAY_NODE),), vn.fq_name, "default"))
        if public:
            routes.append(Route("0.0.0.0/0", (Endpoint(GATEWAY_VRF, vn.fq_name, GATEWAY_NODE),), vn.fq_name, "default"))
        return sorted(routes, key=lambda r: (ipaddress.ip_network(r.prefix).prefixlen, r.prefix))
