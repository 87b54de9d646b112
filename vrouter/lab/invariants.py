"""What must hold after every run, whatever the configuration: the simulator checks itself.

- **Conservation**: every injected packet is delivered or dropped with a counted reason
  (:meth:`vrouter.lab.fabric.RunResult.check_conservation`, raised inside every fabric run).
- **No isolation leak**: a packet from a pod reaches an interface only through a route its
  VRF holds — the interface's own VN or one of its floating IPs' VNs — so that VN must be
  the sender's or one the controller's connectivity graph connects to it. A public VN
  (LoadBalancer and external IPs) counts as reachable from anywhere: its addresses are
  reached through the SDN gateway, outside the VN graph. Counted per check as
  ``isolationLeaks``; any non-zero count is a simulator bug, never a user error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from controlplane.controller.connectivity import connected
from vrouter.dataplane.packets import DELIVERED
from vrouter.lab.sim import Simulation


def isolation_leaks(sim: Simulation, phases: list[Any], source_node: int, source_vif: int) -> int:
    """First packets of a conversation from a pod delivered where no route could lead them."""
    if not phases:
        return 0
    intent = sim.intent
    by_index = {node.index: node for node in sim.nodes.values()}
    sender = by_index.get(source_node)
    vif = sender.vifs.get(source_vif) if sender is not None else None
    if vif is None or vif.vmi is None or vif.vmi not in intent.interfaces:
        return 0  # only pods' packets are held to the VN graph
    src_vn = intent.interfaces[vif.vmi].vn
    public = {vn for vn, vrf in intent.vrfs.items() if vrf.public}
    rows = phases[0].packets
    delivered = rows[rows["outcome"] == DELIVERED]
    leaks = 0
    pairs, counts = np.unique(delivered["node"].astype(np.int64) * 65536 + delivered["out_vif"], return_counts=True)
    for key, count in zip(pairs.tolist(), counts.tolist(), strict=True):
        node = by_index[key // 65536]
        target = node.vifs.get(key % 65536)
        if target is None or target.vmi is None or target.vmi not in intent.interfaces:
            continue
        iface = intent.interfaces[target.vmi]
        reachable_through = {iface.vn, *(fip_vn for _, fip_vn, _ in iface.fips)}
        if not any(vn in public or connected(intent.graph, src_vn, vn) for vn in reachable_through):
            leaks += count
    return leaks
