"""Reachability matrices: every pod to every pod, measured by sending packets.

All pairs travel in one batch per phase (first packets, answers, and for TCP the last
ACK), so a thousand pods — a million pairs — cost a few kernel runs, not a million.
A pair is reachable when its first packet arrived at the destination pod's interface and
the answer came back to the source's. The table is the Kubernetes network-policy e2e
suite's truth table: rows are sources, columns destinations, ``.`` reachable, ``X`` not.
A pod reaches itself without a packet reaching the vRouter (its own address is local to its
network stack), so the diagonal is always reachable, as the e2e suite's ``AllowLoopback``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from controlplane.inet import protocol_number
from controlplane.errors import InputError
from controlplane.progress import task
from vrouter.dataplane.packets import DELIVERED, HOST, TCP_ACK, TCP_SYN, new_batch
from vrouter.dataplane.tables import PROTO_ICMP, PROTO_TCP
from vrouter.lab.traffic import FIRST_SOURCE_PORT, answers, resolve_source
from vrouter.lab.sim import Simulation
from vrouter.tabular import Tabular

from vrouter.lab.fabric import conversations_per_run

if TYPE_CHECKING:
    from vrouter.lab.fabric import Fabric


@dataclass
class Reachability(Tabular):
    pods: list[str]
    protocol: str
    port: int | None
    matrix: np.ndarray  # bool [from, to]

    def rows(self) -> tuple[list[str], list[list[str]]]:
        """The e2e truth table: a header of destinations, one row per source.

        With more than 20 pods the columns are numbered (their names are listed below).
        """
        short = len(self.pods) <= 20
        header = ["from \\ to", *(self.pods if short else [str(i) for i in range(len(self.pods))])]
        rows = []
        for i, name in enumerate(self.pods):
            label = name if short else f"{i} {name}"
            rows.append([label, *("." if self.matrix[i, j] else "X" for j in range(len(self.pods)))])
        return header, rows

    columns = ["from", "to", "reachable"]

    @property
    def caption(self) -> str:
        return f"{self.protocol}{'/' + str(self.port) if self.port else ''}: {int(self.matrix.sum()) - len(self.pods)}/{len(self.pods) * (len(self.pods) - 1)} pairs reachable"

    def records(self) -> list[dict[str, Any]]:
        """One row per ordered pair of different pods."""
        return [{"from": a, "to": b, "reachable": bool(self.matrix[i, j])} for i, a in enumerate(self.pods) for j, b in enumerate(self.pods) if i != j]

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "port": self.port,
            "pods": self.pods,
            "matrix": [[bool(v) for v in row] for row in self.matrix],
            "reachable": int(self.matrix.sum()),
            "pairs": int(self.matrix.size),
        }


@dataclass
class ReachPlan:
    """What every block of a matrix shares: the pods' places and the probe's protocol."""

    node: np.ndarray  # int16 per pod
    vif: np.ndarray  # int16 per pod
    ip: np.ndarray  # uint32 per pod
    proto: int
    port: int | None


def reachability(sim: Simulation, protocol: str = "icmp", port: int | None = None, pods: list[str] | None = None, client: Any = None) -> Reachability:
    """Measure every ordered pair of pods (with TF interfaces) through the fabric.

    Sources are measured in blocks, each small enough for the flow tables (a share of
    ``flowEntries``) and each from empty tables, so a matrix of any size is exact; with a
    dask ``client`` the blocks run on its workers (:mod:`vrouter.lab.parallel`)."""
    proto = protocol_number(protocol)
    if proto != PROTO_ICMP and port is None:
        raise InputError(f"a {protocol.upper()} reachability matrix needs --port")
    if pods is None:
        pods = sorted(
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in sim.cluster.store.list("Pod")
            if (p.get("status") or {}).get("podIP") and not (p.get("spec") or {}).get("hostNetwork")
        )
    sources = [resolve_source(sim, name) for name in pods]
    n = len(sources)
    plan = ReachPlan(
        np.array([s.node for s in sources], np.int16), np.array([s.vif for s in sources], np.int16), np.array([s.ip for s in sources], np.uint32), proto, port
    )
    settings = sim.scenario.cluster.vrouter
    rows = max(1, conversations_per_run(settings) // max(n - 1, 1))  # sources per block
    if client is not None:  # enough tasks to keep every worker busy
        from vrouter.lab.parallel import worker_count

        rows = min(rows, max(1, -(-n // (4 * worker_count(client)))))
    blocks = [(start, min(n, start + rows)) for start in range(0, n, rows)]
    matrix = np.eye(n, dtype=bool)
    if client is not None:
        from vrouter.lab.parallel import FabricImage, map_blocks

        results, engines = map_blocks(client, measure_block, FabricImage.of(sim.nodes, settings), plan, blocks, f"reach: {n * (n - 1):,} pairs")
        sim.fabric.engines.update(dict.fromkeys(engines, 1))
    else:
        fabric = sim.fabric
        results = []
        with task(f"reach: {n * (n - 1):,} pairs", total=len(blocks)) as advance:
            for number, block in enumerate(blocks):
                results.append(measure_block(fabric, plan, block))
                if number + 1 < len(blocks):
                    fabric.advance(settings.agingSeconds + 1)  # the next block starts from empty tables
                advance()
    for (start, stop), reached in zip(blocks, results, strict=True):
        matrix[start:stop] |= reached
    return Reachability(pods, protocol.lower(), port, matrix)


def measure_block(fabric: Fabric, plan: ReachPlan, block: tuple[int, int]) -> np.ndarray:
    """The rows ``block`` (sources start..stop) of the matrix: one conversation per pair."""
    start, stop = block
    n = len(plan.ip)
    node, vif, ip, proto, port = plan.node, plan.vif, plan.ip, plan.proto, plan.port
    src = np.repeat(np.arange(start, stop), n)
    dst = np.tile(np.arange(n), stop - start)
    pairs = src != dst
    src, dst = src[pairs], dst[pairs]
    batch = new_batch(len(src))
    batch["node"] = node[src]
    batch["in_vif"] = vif[src]
    batch["sip"] = ip[src]
    batch["dip"] = ip[dst]
    batch["proto"] = proto
    batch["tag"] = np.arange(len(src))
    batch["sport"] = FIRST_SOURCE_PORT + (dst % 16384)  # distinct per destination: distinct flows
    if proto == PROTO_ICMP:
        batch["dport"] = 0
        batch["icmp_type"] = 8
    else:
        batch["dport"] = port
        if proto == PROTO_TCP:
            batch["tcp_flags"] = TCP_SYN
    reached = np.zeros(len(src), bool)
    first = fabric.run(batch).packets
    arrived = (first["outcome"] == DELIVERED) & (first["node"] == node[dst]) & (first["out_vif"] == vif[dst])
    if arrived.any():
        second = fabric.run(answers(first[arrived], proto, TCP_SYN | TCP_ACK if proto == PROTO_TCP else 0)).packets
        tags = second["tag"]
        home = (second["outcome"] == DELIVERED) & (second["node"] == node[src[tags]]) & (second["out_vif"] == vif[src[tags]])
        if proto == PROTO_TCP and home.any():
            third = fabric.run(answers(second[home], proto, TCP_ACK)).packets
            done = np.zeros(len(src), bool)
            done[third["tag"][(third["outcome"] == DELIVERED) | (third["outcome"] == HOST)]] = True
            reached[tags[home]] = done[tags[home]]
        else:
            reached[tags[home]] = True
    out = np.zeros((stop - start, n), bool)
    out[src - start, dst] = reached
    return out
