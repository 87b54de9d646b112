"""The vrouter-agent of one node: the controller's intent → that node's forwarding tables.

Per node, every route of every VRF is resolved into a nexthop: a local interface (ENCAP,
with the policy flag), another node through a tunnel with the label that node advertised
(or the VN's VNI with VXLAN), an ECMP composite whose slots follow the controller's stable
order, the local host (RECEIVE), another node's or the gateway's underlay address, or a
subnet's discard. Labels are this node's to give (from 16 up) to its local interfaces — one
per interface in its own VRF and one per floating IP it holds — and are exchanged through
:func:`advertise` before any node compiles, as the agents do through the control node.

The simulated SDN gateway is compiled here too: one "internet" VRF holding the node
addresses, the public floating IPs (tunnels to their members) and a default route to the
internet behind it; it has no flow table (no policy flag anywhere).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from controlplane.inet import PROTOCOL_NUMBERS, UDP, ip_int, protocol_number
from controlplane.config import GATEWAY_NODE
from controlplane.controller.intent import (
    DISCARD,
    FIP,
    GATEWAY,
    GATEWAY_VRF,
    RECEIVE,
    UNDERLAY,
    Endpoint,
    Intent,
    Route,
    parse_prefix,
)
from controlplane.tf.model import FqName, fq_str
from vrouter.agent.ids import StableIds
from vrouter.agent.programs import AclArrays, ProgramArrays
from vrouter.agent.rules import RuleBook
from vrouter.dataplane.lpm import build_lpm
from vrouter.dataplane.tables import (
    ENCAP_NAMES,
    ENCAP_VXLAN,
    FIRST_LABEL,
    NH_COMPOSITE,
    NH_DISCARD,
    NH_ENCAP,
    NH_FLAG_FIP,
    NH_FLAG_NO_ROUTE,
    NH_FLAG_POLICY,
    NH_RECEIVE,
    NH_TUNNEL,
    NH_UNDERLAY,
    NH_VRF_TRANSLATE,
    NO_PROGRAM,
    VIF_AGENT,
    VIF_CLIENT,
    VIF_FABRIC,
    VIF_HOST,
    VIF_VM,
    NodeTables,
)

INTERNET_VRF = ("<internet>",)  # the gateway's side toward the internet: where clients' packets enter
OUTBOUND_VRF = ("<outbound>",)  # the gateway's side toward the fabric: everything goes out to the internet
ECMP_FIELD_BITS = {"sip": 1, "dip": 2, "proto": 4, "sport": 8, "dport": 16}


@functools.lru_cache(maxsize=None)
@dataclass
class Nexthop:
    """One row of the nexthop table, as the agent builds it (and the views show it)."""

    id: int
    type: int
    flags: int = 0
    vrf: int = -1
    vif: int = -1
    node: int = -1
    label: int = -1
    dst_vn: int = -1
    dst_ip: int = 0
    fip: int = 0
    port_map: tuple[tuple[int, int, int], ...] = ()
    in_prog: int = NO_PROGRAM
    members: tuple[int, ...] = ()
    what: str = ""  # words for views: the interface, node or prefix behind it


@dataclass
class RouteRow:
    vrf: int
    prefix: str
    nh: int
    kind: str
    route: Route | None = None

    @property
    def network(self) -> tuple[int, int]:
        return self.route.network if self.route is not None else parse_prefix(self.prefix)


@dataclass
class Vif:
    index: int
    type: int
    name: str
    vrf: int
    ip: int
    mac: str
    nh: int
    policy: bool
    in_prog: int = NO_PROGRAM
    out_prog: int = NO_PROGRAM
    vmi: FqName | None = None
    pod: str | None = None


@dataclass
class CompiledNode:
    """The tables of one node and what the views and traces need to name their rows."""

    name: str
    index: int
    tables: NodeTables
    vifs: dict[int, Vif]
    vrf_names: dict[int, str]
    nexthops: dict[int, Nexthop]
    routes: list[RouteRow]
    labels: dict[int, int]  # label → nexthop
    vnis: dict[int, int]  # vni → vrf
    vif_of_vmi: dict[FqName, int] = field(default_factory=dict)


def advertise(intent: Intent, agents: Mapping[str, "Agent"]) -> dict[str, dict[tuple, int]]:
    """Every node's labels for its local endpoints, as the control node would relay them."""
    return {name: agent.local_labels(intent) for name, agent in agents.items()}


class Agent:
    """One node's agent: keeps stable ids and compiles intent into :class:`NodeTables`."""

    def __init__(self, name: str, book: RuleBook, ecmp_fields: list[str] | None = None) -> None:
        self.name = name
        self.book = book
        self.ecmp_bits = sum(ECMP_FIELD_BITS[f] for f in (ecmp_fields or list(ECMP_FIELD_BITS)))
        self.vif_ids = StableIds(first=3)
        self.vrf_ids = StableIds(first=0)
        self.nh_ids = StableIds(first=2)  # 0 discard, 1 receive
        self.label_ids = StableIds(first=FIRST_LABEL)
        self.generation = 0

    @property
    def is_gateway(self) -> bool:
        return self.name == GATEWAY_NODE

    # --- labels ----------------------------------------------------------------------
    def local_labels(self, intent: Intent) -> dict[tuple, int]:
        """Labels for this node's endpoints: (vmi, VN) for interfaces and floating IPs;
        on the gateway, ("vrf", VN) for each public VN's way back to the internet."""
        keys: list[tuple] = []
        if self.is_gateway:
            keys = [("vrf", vn) for vn, vrf in sorted(intent.vrfs.items()) if vrf.public]
        else:
            for iface in intent.interfaces.values():
                if iface.node != self.name:
                    continue
                keys.append((iface.vmi, iface.vn))
                keys.extend((iface.vmi, fip_vn) for _, fip_vn, _ in iface.fips)
        self.label_ids.keep(keys)
        return {key: self.label_ids.get(key) for key in sorted(keys, key=repr)}

    # --- compile -----------------------------------------------------------------------
    def compile(self, intent: Intent, labels: Mapping[str, Mapping[tuple, int]], programs: ProgramArrays | None = None) -> CompiledNode:
        """``programs``: policy programs shared by the nodes of one compilation (they do
        not depend on the node, so each is compiled once)."""
        return _Compiler(self, intent, labels, programs or ProgramArrays()).run()


class _Compiler:
    """One compilation: collects rows, then packs them into arrays."""

    def __init__(self, agent: Agent, intent: Intent, labels: Mapping[str, Mapping[tuple, int]], programs: ProgramArrays) -> None:
        self.agent = agent
        self.intent = intent
        self.labels = labels
        self.node_index = {name: i for i, (name, _) in enumerate(intent.nodes)}
        self.here = self.node_index[agent.name]
        self.vxlan = intent.encapsulation == ENCAP_NAMES[ENCAP_VXLAN]
        self.nexthops: dict[int, Nexthop] = {
            0: Nexthop(0, NH_DISCARD, what="discard"),
            1: Nexthop(1, NH_RECEIVE, what="host (vhost0)"),
        }
        self.vifs: dict[int, Vif] = {}
        self.routes: list[RouteRow] = []
        self.programs = programs
        self.acls = AclArrays()
        self.vrf_names: dict[int, str] = {}

    # --- ids -------------------------------------------------------------------------
    def vrf(self, vn: FqName) -> int:
        return self.agent.vrf_ids.get(vn)

    def nexthop(self, key: tuple, **fields: object) -> int:
        nh_id = self.agent.nh_ids.get(key)
        if nh_id not in self.nexthops:
            self.nexthops[nh_id] = Nexthop(nh_id, **fields)  # type: ignore[arg-type]
        return nh_id

    # --- interfaces --------------------------------------------------------------------
    def build_vifs(self) -> None:
        intent = self.intent
        fabric_vrf = self.vrf(OUTBOUND_VRF if self.agent.is_gateway else intent.fabric_vn)
        my_ip = ip_int(intent.nodes[self.here][1])
        policy = not self.agent.is_gateway
        for index, vtype, name in ((0, VIF_FABRIC, "eth0"), (1, VIF_HOST, "vhost0"), (2, VIF_AGENT, "pkt0")):
            # the key nexthop of packets entering here (flows from the fabric or the host)
            nh = self.nexthop(("vif-key", index), type=NH_ENCAP, vif=index, vrf=fabric_vrf, what=name)
            self.vifs[index] = Vif(index, vtype, name, fabric_vrf, my_ip if index == 1 else 0, "", nh, policy and index != VIF_AGENT)
        if self.agent.is_gateway:
            index = self.agent.vif_ids.get(("internet",))
            internet = self.vrf(INTERNET_VRF)
            nh = self.nexthop(("encap", index, internet, 0), type=NH_ENCAP, vif=index, vrf=internet, what="the internet")
            self.vifs[index] = Vif(index, VIF_CLIENT, "internet", internet, 0, "", nh, False)
            self.agent.vif_ids.keep([("internet",)])
            return
        mine = [i for i in intent.interfaces.values() if i.node == self.agent.name]
        self.agent.vif_ids.keep([i.vmi for i in mine])
        for iface in mine:
            index = self.agent.vif_ids.get(iface.vmi)
            vrf = self.vrf(iface.vn)
            in_prog = self.programs.add(iface.ingress, self.agent.book) if iface.ingress.isolated else NO_PROGRAM
            out_prog = self.programs.add(iface.egress, self.agent.book) if iface.egress.isolated else NO_PROGRAM
            nh = self.encap_nexthop(iface.vmi, iface.vn, index, in_prog)
            name = "tap" + iface.vmi[-1].split("__")[-1].replace("-", "")[:11]
            self.vifs[index] = Vif(index, VIF_VM, name, vrf, ip_int(iface.ip) if iface.ip else 0, iface.mac, nh, True, in_prog, out_prog, iface.vmi, iface.pod)

    def encap_nexthop(self, vmi: FqName, vn: FqName, vif: int, in_prog: int, fip: str | None = None, port_map: tuple = ()) -> int:
        iface = self.intent.interfaces[vmi]
        vrf = self.vrf(vn)
        flags = NH_FLAG_POLICY | (NH_FLAG_FIP if fip else 0)
        maps = tuple((PROTOCOL_NUMBERS.get(m.protocol.lower(), UDP), m.src_port, m.dst_port) for m in port_map)
        what = f"{iface.pod or fq_str(vmi)}" + (f" via floating IP {fip}" if fip else "")
        return self.nexthop(
            ("encap", vif, vrf, ip_int(fip) if fip else 0),
            type=NH_ENCAP,
            flags=flags,
            vrf=vrf,
            vif=vif,
            dst_vn=vrf,
            dst_ip=ip_int(iface.ip) if iface.ip else 0,
            fip=ip_int(fip) if fip else 0,
            port_map=maps,
            in_prog=in_prog,
            what=what,
        )

    # --- endpoints → nexthops ----------------------------------------------------------------
    def endpoint_nexthop(self, end: Endpoint) -> int:
        if end.kind == DISCARD:
            return self.nexthop(("no-route",), type=NH_DISCARD, flags=NH_FLAG_NO_ROUTE, dst_vn=self.vrf(end.vn), what="subnet, no host route")
        if end.kind == RECEIVE:
            return 1
        if end.kind in (UNDERLAY, GATEWAY):
            target = self.node_index[end.node]  # type: ignore[index]
            if target == self.here:
                return 1
            return self.nexthop(("underlay", target), type=NH_UNDERLAY, node=target, dst_vn=self.vrf(end.vn), what=f"{end.node} underlay")
        if end.kind == GATEWAY_VRF:
            gateway = self.node_index[end.node]  # type: ignore[index]
            label = self.vni(end.vn) if self.vxlan else self.labels[end.node][("vrf", end.vn)]  # type: ignore[index]
            return self.nexthop(("tunnel", gateway, label), type=NH_TUNNEL, node=gateway, label=label, dst_vn=self.vrf(end.vn), what=f"{end.node} {fq_str(end.vn)}")
        assert end.vmi is not None and end.node is not None
        iface = self.intent.interfaces[end.vmi]
        port_map = end.port_map if end.kind == FIP else ()
        if end.node == self.agent.name:
            vif = self.agent.vif_ids.get(end.vmi)
            in_prog = self.vifs[vif].in_prog
            return self.encap_nexthop(end.vmi, end.vn, vif, in_prog, end.fip if end.kind == FIP else None, port_map)
        target = self.node_index[end.node]
        label = self.vni(end.vn) if self.vxlan else self.labels[end.node][(end.vmi, end.vn)]
        maps = tuple((PROTOCOL_NUMBERS.get(m.protocol.lower(), UDP), m.src_port, m.dst_port) for m in port_map)
        what = f"{iface.pod or fq_str(end.vmi)} on {end.node}" + (f" via floating IP {end.fip}" if end.kind == FIP else "")
        key = ("tunnel", target, label) if not self.vxlan else ("tunnel", target, label, end.vmi, end.kind)
        return self.nexthop(
            key,
            type=NH_TUNNEL,
            node=target,
            label=label,
            dst_vn=self.vrf(end.vn),
            dst_ip=ip_int(end.ip) if end.ip else 0,
            port_map=maps,
            what=what,
        )

    def vni(self, vn: FqName) -> int:
        return self.intent.vrfs[vn].vn_id

    # --- routes ----------------------------------------------------------------------
    def build_routes(self) -> None:
        intent = self.intent
        if self.agent.is_gateway:
            self.build_gateway_routes()
            return
        # a route leaked into many VRFs is one object: resolve it once per node
        resolved: dict[int, int] = {}
        for vn, vrf_intent in intent.vrfs.items():
            vrf = self.vrf(vn)
            self.vrf_names[vrf] = fq_str(vn) + ":" + vn[-1]
            for prefix, route in vrf_intent.routes.items():
                nh = resolved.get(id(route))
                if nh is None:
                    nh = resolved[id(route)] = self.route_nexthop(route)
                self.routes.append(RouteRow(vrf, prefix, nh, route.kind, route))
            self.acls.add_vn(vrf, vrf_intent.acl, {v: self.vrf(v) for v in intent.vrfs}, self.agent.book)

    def route_nexthop(self, route: Route) -> int:
        """A route's nexthop on this node; an ECMP route's composite is shared by every VRF
        the route is leaked into, as the vRouter shares nexthops."""
        if not route.ecmp:
            return self.endpoint_nexthop(route.members[0])  # type: ignore[arg-type]
        members = tuple(self.endpoint_nexthop(m) if m is not None else -1 for m in route.members)
        origin = self.vrf(route.origin)
        nh = self.nexthop(("composite", route.origin, route.prefix), type=NH_COMPOSITE, vrf=origin, dst_vn=origin, what=f"ECMP {route.prefix}")
        self.nexthops[nh].members = members
        return nh

    def build_gateway_routes(self) -> None:
        """Inbound: node addresses and public floating IPs, nothing else (an internet client
        reaches no pod or ClusterIP). Outbound: public floating IPs come back in (hairpin),
        everything else leaves to the internet."""
        intent = self.intent
        vrf = self.vrf(INTERNET_VRF)
        outbound = self.vrf(OUTBOUND_VRF)
        self.vrf_names[vrf] = "inbound: from the internet"
        self.vrf_names[outbound] = "outbound: from the fabric to the internet"
        for name, ip in intent.nodes[:-1]:
            target = self.node_index[name]
            nh = self.nexthop(("underlay", target), type=NH_UNDERLAY, node=target, what=f"{name} underlay")
            self.routes.append(RouteRow(vrf, f"{ip}/32", nh, "node"))
        for vn, vrf_intent in sorted(intent.vrfs.items()):
            if not vrf_intent.public:
                continue
            for prefix, route in vrf_intent.routes.items():
                if route.kind != "floating-ip":
                    continue
                nh = self.route_nexthop(route)
                # both sides: from the internet, and hairpinned from the fabric
                self.routes.append(RouteRow(vrf, prefix, nh, route.kind, route))
                self.routes.append(RouteRow(outbound, prefix, nh, route.kind, route))
        client_vif = next(v for v in self.vifs.values() if v.type == VIF_CLIENT)
        self.routes.append(RouteRow(outbound, "0.0.0.0/0", client_vif.nh, "default"))

    # --- pack ------------------------------------------------------------------------
    def run(self) -> CompiledNode:
        self.agent.generation += 1
        self.agent.vrf_ids.keep([*self.intent.vrfs, INTERNET_VRF, OUTBOUND_VRF])
        self.build_vifs()
        self.build_routes()
        labels, vnis = self.label_tables()
        tables = self.pack(labels, vnis)
        used = {key for key, _ in self.agent.nh_ids.items() if self.agent.nh_ids.find(key) in self.nexthops}
        self.agent.nh_ids.keep(used)
        vif_of_vmi = {v.vmi: i for i, v in self.vifs.items() if v.vmi is not None}
        return CompiledNode(self.agent.name, self.here, tables, self.vifs, self.vrf_names, self.nexthops, self.routes, labels, vnis, vif_of_vmi)

    def label_tables(self) -> tuple[dict[int, int], dict[int, int]]:
        labels: dict[int, int] = {}
        mine = self.labels.get(self.agent.name, {})
        if self.agent.is_gateway:
            outbound = self.vrf(OUTBOUND_VRF)
            for (_, vn), label in mine.items():
                labels[label] = self.nexthop(("translate", outbound), type=NH_VRF_TRANSLATE, vrf=outbound, what="outbound VRF")
            vnis = {self.vni(vn): outbound for vn, vrf in self.intent.vrfs.items() if vrf.public}
            return labels, vnis
        for (vmi, vn), label in mine.items():
            iface = self.intent.interfaces[vmi]
            vif = self.agent.vif_ids.get(vmi)
            if vn == iface.vn:
                labels[label] = self.vifs[vif].nh
            else:
                fip, port_map = next((f, m) for f, fvn, m in iface.fips if fvn == vn)
                labels[label] = self.encap_nexthop(vmi, vn, vif, self.vifs[vif].in_prog, fip, port_map)
        vnis = {self.vni(vn): self.vrf(vn) for vn in self.intent.vrfs}
        return labels, vnis

    def pack(self, labels: dict[int, int], vnis: dict[int, int]) -> NodeTables:
        n_vrfs = max(self.agent.vrf_ids.limit, 1)
        n_nh = max(self.nexthops) + 1
        n_vif = max(self.vifs) + 1
        vif = {
            "vif_type": np.full(n_vif, -1, np.int8),
            "vif_vrf": np.full(n_vif, -1, np.int32),
            "vif_nh": np.zeros(n_vif, np.int32),
            "vif_ip": np.zeros(n_vif, np.uint32),
            "vif_policy": np.zeros(n_vif, np.uint8),
            "vif_in_prog": np.full(n_vif, NO_PROGRAM, np.int32),
            "vif_out_prog": np.full(n_vif, NO_PROGRAM, np.int32),
        }
        for i, v in self.vifs.items():
            vif["vif_type"][i] = v.type
            vif["vif_vrf"][i] = v.vrf
            vif["vif_nh"][i] = v.nh
            vif["vif_ip"][i] = v.ip
            vif["vif_policy"][i] = v.policy
            vif["vif_in_prog"][i] = v.in_prog
            vif["vif_out_prog"][i] = v.out_prog
        nh = {
            "nh_type": np.zeros(n_nh, np.int8),
            "nh_flags": np.zeros(n_nh, np.uint8),
            "nh_vrf": np.full(n_nh, -1, np.int32),
            "nh_vif": np.full(n_nh, -1, np.int32),
            "nh_node": np.full(n_nh, -1, np.int32),
            "nh_label": np.full(n_nh, -1, np.int32),
            "nh_dst_vn": np.full(n_nh, -1, np.int32),
            "nh_dst_ip": np.zeros(n_nh, np.uint32),
            "nh_fip": np.zeros(n_nh, np.uint32),
            "nh_pm_start": np.zeros(n_nh, np.int32),
            "nh_pm_len": np.zeros(n_nh, np.int32),
            "nh_in_prog": np.full(n_nh, NO_PROGRAM, np.int32),
            "nh_member_start": np.zeros(n_nh, np.int32),
            "nh_member_len": np.zeros(n_nh, np.int32),
        }
        members: list[int] = []
        pm: list[tuple[int, int, int]] = []
        for i, row in self.nexthops.items():
            nh["nh_type"][i] = row.type
            nh["nh_flags"][i] = row.flags
            nh["nh_vrf"][i] = row.vrf
            nh["nh_vif"][i] = row.vif
            nh["nh_node"][i] = row.node
            nh["nh_label"][i] = row.label
            nh["nh_dst_vn"][i] = row.dst_vn
            nh["nh_dst_ip"][i] = row.dst_ip
            nh["nh_fip"][i] = row.fip
            nh["nh_pm_start"][i] = len(pm)
            nh["nh_pm_len"][i] = len(row.port_map)
            pm.extend(row.port_map)
            nh["nh_in_prog"][i] = row.in_prog
            nh["nh_member_start"][i] = len(members)
            nh["nh_member_len"][i] = len(row.members)
            members.extend(row.members)
        # routes → one LPM over all VRFs, whose values are route ids
        n_routes = len(self.routes)
        route_nh = np.fromiter((r.nh for r in self.routes), np.int32, n_routes)
        route_vrf = np.fromiter((r.vrf for r in self.routes), np.int32, n_routes)
        networks = [r.network for r in self.routes]
        route_prefix = np.fromiter((n[0] for n in networks), np.uint32, n_routes)
        route_plen = np.fromiter((n[1] for n in networks), np.uint8, n_routes)
        order = np.argsort(route_vrf, kind="stable")
        bounds = np.searchsorted(route_vrf[order], np.arange(n_vrfs + 1))
        lpm = build_lpm(
            [
                (route_prefix[order[lo:hi]], route_plen[order[lo:hi]], order[lo:hi].astype(np.int32))
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        )
        vrf_valid = np.zeros(n_vrfs, np.uint8)
        for i in self.vrf_names:
            vrf_valid[i] = 1
        mpls = np.full(max(labels, default=FIRST_LABEL) + 1, -1, np.int32)
        for label, target in labels.items():
            mpls[label] = target
        vni = np.full(max(vnis, default=0) + 1, -1, np.int32)
        for number, target in vnis.items():
            vni[number] = target
        kube = self.kube_proxy_arrays()
        encap = ENCAP_NAMES.index(self.intent.encapsulation)
        return NodeTables(
            node_index=np.array([self.here], np.int64),
            node_ip=np.array([ip_int(ip) for _, ip in self.intent.nodes], np.uint32),
            encapsulation=np.array([encap], np.int64),
            ecmp_fields=np.array([self.agent.ecmp_bits], np.int64),
            generation=np.array([self.agent.generation], np.int64),
            vrf_valid=vrf_valid,
            lpm=lpm,
            route_nh=route_nh,
            route_prefix=route_prefix,
            route_plen=route_plen,
            route_vrf=route_vrf,
            members=np.array(members, np.int32),
            pm_proto=np.array([p[0] for p in pm], np.uint8),
            pm_port=np.array([p[1] for p in pm], np.uint16),
            pm_target=np.array([p[2] for p in pm], np.uint16),
            mpls_nh=mpls,
            vni_vrf=vni,
            **vif,
            **nh,
            **self.acls.arrays(n_vrfs, {v: self.vrf(v) for v in self.intent.vrfs}),
            **self.programs.arrays(),
            **kube,
        )

    def kube_proxy_arrays(self) -> dict[str, np.ndarray]:
        rows: dict[str, list[int]] = {k: [] for k in ("proto", "port", "snat", "b_start", "b_len", "ref")}
        backends: list[tuple[int, int]] = []
        if not self.agent.is_gateway:
            for rule in self.intent.node_ports:
                chosen = rule.backends_on(self.agent.name)
                rows["proto"].append(protocol_number(rule.protocol))
                rows["port"].append(rule.node_port)
                rows["snat"].append(0 if rule.local_only else 1)
                rows["b_start"].append(len(backends))
                rows["b_len"].append(len(chosen))
                policy = "Local" if rule.local_only else "Cluster"
                rows["ref"].append(self.agent.book.ref(f"kube-proxy NodePort {rule.node_port}/{rule.protocol} → service {rule.service}:{rule.service_port} (externalTrafficPolicy {policy})"))
                backends.extend((ip_int(b.ip), b.port) for b in chosen)
        return {
            "np_proto": np.array(rows["proto"], np.uint8),
            "np_port": np.array(rows["port"], np.uint16),
            "np_snat": np.array(rows["snat"], np.uint8),
            "np_b_start": np.array(rows["b_start"], np.int32),
            "np_b_len": np.array(rows["b_len"], np.int32),
            "np_ref": np.array(rows["ref"], np.int32),
            "npb_ip": np.array([b[0] for b in backends], np.uint32),
            "npb_port": np.array([b[1] for b in backends], np.uint16),
        }
