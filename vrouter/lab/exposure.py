"""What an Ingress exposes, measured: its HAProxy instance opening a connection to each
backend pod on the port the backend Service sends it to (netpol-analyzer's
``{ingress-controller} => workload : port`` lines, in the dataplane views).

The ports come from the objects (:func:`vrouter.intent.exposure`: backend Service port →
target port on every pod it selects); whether the connection opens is measured — a TCP
handshake from the active HAProxy's interface through the vRouters, the pod's ingress rules
and its listeners. An Ingress TF does not realise (no HAProxy load balancer) exposes nothing,
with a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.inet import ip_int, protocol_number
from controlplane.tf import model as tf
from controlplane.tf.haproxy import ingress_loadbalancer
from vrouter.intent import exposure
from vrouter.lab.conversation import converse
from vrouter.lab.sim import Simulation
from vrouter.lab.traffic import Source, pods_by_vif, resolve_target


def haproxy_source(sim: Simulation, lb: tf.Loadbalancer) -> Source:
    """The active HAProxy instance of an Ingress's load balancer, as a conversation's source."""
    active = sim.cluster.db.get(tf.VirtualMachineInterface, lb.virtual_machine_interface_refs[0])
    node = sim.nodes[active.node]
    return Source(f"haproxy/{lb.annotations.get('namespace')}/{lb.annotations.get('name')}", node.index, node.vif_of_vmi[active.fq_name], ip_int(lb.vip_address))


def measured_exposure(sim: Simulation, routes: Sequence[Mapping[str, Any]], notes: list[str]) -> list[tuple[str, str, int]]:
    """(pod ``ns/name``, protocol, port) that an Ingress's HAProxy reaches (a handshake completes)."""
    store = sim.cluster.store
    objects = [*store.list("Pod"), *store.list("Service")]
    reached = set()
    pod_of_vif = pods_by_vif(sim)
    for ingress in store.list("Ingress"):
        namespace, name = ingress["metadata"].get("namespace") or "default", ingress["metadata"]["name"]
        lb = ingress_loadbalancer(sim.cluster.db, namespace, name)
        if lb is None or not lb.virtual_machine_interface_refs:
            notes.append(f"ingress {namespace}/{name} is not realised by TF (no HAProxy load balancer, see vrsim get events): its exposure is not measured")
            continue
        haproxy = haproxy_source(sim, lb)
        for pod, protocol, port in exposure([*objects, ingress]):
            target = resolve_target(sim, pod, port)
            if converse(sim, haproxy, target, protocol_number(protocol), 1, pod_of_vif).reachable:
                reached.add((pod, protocol, port))
    for route in routes:
        notes.append(f"route {route['metadata'].get('namespace')}/{route['metadata']['name']} (OpenShift) is not realised by TF: its exposure counts in the intent view only")
    return sorted(reached)
