"""``vrsim draw``: the fabric as TF builds it, and who may talk to whom, as Graphviz graphs.

The fabric picture (``--what fabric``) has one box per project with its virtual networks
(name, subnet, VN id) and floating-IP pools; an edge between two VNs whose policies leak
their routes into each other (the controller's VN connectivity graph, labelled with the
policies that do it); one box per compute node with the pods (and other ports) it hosts,
each tied to its VN; a node per load balancer — a Service's VIP with an ECMP edge to every
member, an Ingress's HAProxy with an edge per host/path rule to what it forwards to — and a
node per external floating IP on the ports it is attached to. The policy picture
(``--what policy``) is connlist's: workloads and outside ranges, an edge per allowed
connection labelled with its ports.

The graph is built with the ``graphviz`` package (DOT text always); SVG and PNG need
Graphviz's ``dot`` program, which :func:`render` runs when it is installed.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from controlplane.errors import InputError
from controlplane.tf import model as tf

if TYPE_CHECKING:
    from controlplane.controller.intent import Interface
    from vrouter.lab.sim import Simulation

FORMATS = ("dot", "svg", "png")
_FONT = {"fontname": "Helvetica", "fontsize": "10"}
_PUBLIC = "#c0392b"
_SERVICE = "#1f6fb2"
_POLICY = "#2e8b57"
PODS_PER_ROW = 4


def _key(kind: str, fq_name: tuple[str, ...] | str) -> str:
    """A node's id: no ``:`` (DOT reads ``a:b`` in an edge as node ``a``, port ``b``)."""
    return f"{kind} " + ("/".join(fq_name) if isinstance(fq_name, tuple) else fq_name)


def _vn_id(vn: tuple[str, ...]) -> str:
    return _key("vn", vn)


def _subnet(db: tf.ConfigDB, vn: tf.VirtualNetwork) -> str:
    if vn.subnet:
        return vn.subnet
    ipams = [db.get(tf.NetworkIpam, ref) for ref in vn.network_ipam_refs]
    return ", ".join(ipam.subnet for ipam in ipams if ipam is not None) or "-"


def _port_id(vmi: tuple[str, ...]) -> str:
    return _key("port", vmi)


def _lb_title(lb: tf.Loadbalancer) -> str:
    """``Service default/nginx`` from the load balancer's ``<name>__<uid>`` in ``k8s-<ns>``."""
    kind = "Ingress" if lb.loadbalancer_provider == "opencontrail" else "Service"
    namespace = lb.fq_name[1].removeprefix("k8s-") if len(lb.fq_name) > 2 else ""
    return f"{kind} {namespace}/{lb.name.split('__')[0]}"


def fabric_graph(sim: Simulation) -> graphviz.Digraph:
    """The fabric of a built simulation (see the module's docstring)."""
    db, intent = sim.cluster.db, sim.intent
    graph = graphviz.Digraph(
        "fabric",
        graph_attr={"rankdir": "TB", "compound": "true", "nodesep": "0.3", "ranksep": "0.9", "label": f"{sim.scenario.name}: the fabric as TF builds it", "labelloc": "t", **_FONT, "fontsize": "14"},
        node_attr=_FONT,
        edge_attr={**_FONT, "fontsize": "9"},
    )
    vns = sorted(db.list(tf.VirtualNetwork), key=lambda v: v.fq_name)
    pools = defaultdict(list)
    for pool in db.list(tf.FloatingIpPool):
        pools[pool.fq_name[:-1]].append(pool)
    by_project = defaultdict(list)
    for vn in vns:
        by_project[vn.fq_name[:2]].append(vn)
    for project, members in sorted(by_project.items()):
        with graph.subgraph(name="cluster_project_" + "/".join(project)) as box:
            box.attr(label=f"project {project[-1]}", style="rounded,filled", fillcolor="#f4f6f8", color="#9aa5b1")
            for vn in members:
                public = any(p.public for p in pools[vn.fq_name])
                box.node(_vn_id(vn.fq_name), f"VN {vn.name}\n{_subnet(db, vn)}\nid {vn.virtual_network_network_id}", shape="box", style="filled", fillcolor="#fdecea" if public else "#e8f1fb")
                for pool in sorted(pools[vn.fq_name], key=lambda p: p.fq_name):
                    box.node(_key("pool", pool.fq_name), f"FIP pool {pool.name}" + (" (public)" if pool.public else ""), shape="folder")
                    box.edge(_key("pool", pool.fq_name), _vn_id(vn.fq_name), arrowhead="none", style="dotted")
    for a, b, data in sorted(intent.graph.edges(data=True)):
        via = ", ".join(sorted({v[-1] if isinstance(v, tuple) else str(v) for v in data.get("via", ())}))
        graph.edge(_vn_id(a), _vn_id(b), label=via, dir="both", color=_POLICY, fontcolor=_POLICY, penwidth="1.6")
    _ports(graph, sim)
    _loadbalancers(graph, sim)
    _floating_ips(graph, sim)
    return graph


def _ports(graph: graphviz.Digraph, sim: Simulation) -> None:
    """A box per compute node with its ports, each tied to its VN."""
    by_node = defaultdict(list)
    for interface in sim.intent.interfaces.values():
        by_node[interface.node].append(interface)
    addresses = dict(sim.intent.nodes)
    for node, ports in sorted(by_node.items()):
        with graph.subgraph(name="cluster_node_" + node) as box:
            box.attr(label=f"node {node} ({addresses.get(node, '?')})", style="rounded", color="#555555")
            ordered = sorted(ports, key=lambda p: (p.pod is None, p.pod or "", p.vmi))
            for at, port in enumerate(ordered):
                box.node(_port_id(port.vmi), f"{_port_title(port)}\n{port.ip or '-'}", shape="ellipse" if port.pod else "hexagon")
                if at >= PODS_PER_ROW:  # rows of a few pods, not one row as wide as the node's pods
                    box.edge(_port_id(ordered[at - PODS_PER_ROW].vmi), _port_id(port.vmi), style="invis")
        for port in ports:
            graph.edge(_port_id(port.vmi), _vn_id(port.vn), arrowhead="none", color="#9aa5b1")


def _port_title(port: Interface) -> str:
    """A pod's ``ns/name``; an HAProxy instance as ``HAProxy ns/ingress haproxy-0``."""
    if port.pod:
        return port.pod
    name = port.vmi[-1]
    if "__" in name and len(port.vmi) > 2:
        namespace = port.vmi[1].removeprefix("k8s-")
        return f"{port.owner.title() if port.owner.isupper() else port.owner} {namespace}/{name.split('__')[0]} {name.rsplit('__', 1)[-1]}"
    return f"{port.owner} {name}"


def _loadbalancers(graph: graphviz.Digraph, sim: Simulation) -> None:
    """Services' VIPs (ECMP to their members) and Ingresses' HAProxy (rules to their backends)."""
    db, interfaces = sim.cluster.db, sim.intent.interfaces
    by_vip = defaultdict(list)  # a floating IP → the ports it is attached to
    for interface in interfaces.values():
        for address, _, _ in interface.fips:
            by_vip[address].append(interface)
    lbs = sorted(db.list(tf.Loadbalancer), key=lambda lb: lb.fq_name)
    lb_of_service = {}
    with graph.subgraph(name="cluster_loadbalancers") as box:  # kept together, clear of the nodes' boxes
        box.attr(label="load balancers", style="rounded,dashed", color=_SERVICE, fontcolor=_SERVICE)
        for lb in lbs:
            title = _lb_title(lb)
            lb_of_service[title.removeprefix("Service ")] = lb
            haproxy = lb.loadbalancer_provider == "opencontrail"
            external = f"\nexternal {lb.external_ip}" if lb.external_ip else ""
            spread = "" if haproxy else f"\nECMP over {len(by_vip.get(lb.vip_address, []))} members"
            box.node(_key("lb", lb.fq_name), f"{title}\n{'HAProxy' if haproxy else 'VIP'} {lb.vip_address}{external}{spread}", shape="component" if haproxy else "box", style="rounded", color=_SERVICE, fontcolor=_SERVICE)
    for lb in lbs:
        haproxy = lb.loadbalancer_provider == "opencontrail"
        vip_ports = [db.get(tf.VirtualMachineInterface, ref) for ref in lb.virtual_machine_interface_refs]
        for vmi in vip_ports:
            if vmi is not None and vmi.virtual_network_refs:
                graph.edge(_key("lb", lb.fq_name), _vn_id(vmi.virtual_network_refs[0]), arrowhead="none", style="dotted", color=_SERVICE)
        if not haproxy:
            for member in sorted(by_vip.get(lb.vip_address, []), key=lambda p: p.vmi):
                graph.edge(_key("lb", lb.fq_name), _port_id(member.vmi), style="dashed", color=_SERVICE)
    for lb in lbs:
        if lb.loadbalancer_provider != "opencontrail":
            continue
        for pool, member in _haproxy_members(db, lb):
            rule = f"{pool.host or '*'}{pool.path or ''}"
            target = member.target
            if target.startswith("service/") and target.removeprefix("service/") in lb_of_service:
                head = _key("lb", lb_of_service[target.removeprefix("service/")].fq_name)
            else:
                port = next((p for p in interfaces.values() if p.pod == target), None)
                if port is None:
                    continue
                head = _port_id(port.vmi)
            graph.edge(_key("lb", lb.fq_name), head, label=f"{rule} → :{member.protocol_port}", color=_SERVICE, fontcolor=_SERVICE)


def _haproxy_members(db: tf.ConfigDB, lb: tf.Loadbalancer) -> list[tuple[tf.LoadbalancerPool, tf.LoadbalancerMember]]:
    listeners = [obj for obj in db.referrers(lb, tf.LoadbalancerListener)]
    pools = [pool for listener in listeners for pool in db.referrers(listener, tf.LoadbalancerPool)]
    return [(pool, member) for pool in pools for member in db.referrers(pool, tf.LoadbalancerMember)]


def _floating_ips(graph: graphviz.Digraph, sim: Simulation) -> None:
    """External floating IPs (not a Service's own VIP, drawn as its load balancer) on their ports."""
    db = sim.cluster.db
    for fip in sorted(db.list(tf.FloatingIp), key=lambda f: f.fq_name):
        if fip.role == "cluster-ip":
            continue
        node = _key("fip", fip.floating_ip_address)
        graph.node(node, f"FIP {fip.floating_ip_address}\n{fip.role or 'floating IP'}", shape="note", color=_PUBLIC, fontcolor=_PUBLIC)
        graph.edge(_key("pool", fip.fq_name[:-1]), node, arrowhead="none", style="dotted", color=_PUBLIC)
        for vmi in fip.virtual_machine_interface_refs:
            if vmi in sim.intent.interfaces:
                graph.edge(node, _port_id(vmi), label="NAT", color=_PUBLIC, fontcolor=_PUBLIC)


def policy_graph(dot_text: str) -> graphviz.Source:
    """connlist's DOT (netpol-analyzer's drawing) as a graph to render."""
    return graphviz.Source(dot_text)


def render(graph: graphviz.Digraph | graphviz.Source, path: Path | None) -> str | None:
    """Write ``graph`` to ``path`` in the format its suffix names (.dot, .svg, .png); without a
    path return the DOT text. SVG and PNG need Graphviz's ``dot`` program."""
    if path is None:
        return graph.source
    fmt = path.suffix.lower().lstrip(".") or "dot"
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise InputError(f"-o {path}: write .dot, .svg or .png (the suffix chooses the format)", path="-o")
    if fmt == "dot":
        path.write_text(graph.source)
        return None
    if shutil.which("dot") is None:
        raise InputError(f"-o {path}: drawing {fmt.upper()} needs Graphviz's dot program (apt install graphviz, brew install graphviz); -o {path.with_suffix('.dot')} writes the DOT text without it", path="-o")
    path.write_bytes(graph.pipe(format=fmt))
    return None
