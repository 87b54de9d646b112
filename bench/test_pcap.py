"""Writing captures (``--pcap``): the article's ClusterIP under many connections, every hop
recorded, then written as pcapng per node and interface. Figure: packets written per second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import QUICK, record

from vrouter.lab.capture import CaptureLog
from vrouter.lab.checks import run_check
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation
from vrouter.views.captures import write_captures

ROOT = Path(__file__).resolve().parents[1]
FLOWS = 30_000 if QUICK else 64_512  # the most one source opens (its source ports)
ROUNDS = 1 if QUICK else 5  # 5 × 64,512 connections × 3 packets ≈ 1 M packets, seen at ~3 places each


def test_pcap_export(benchmark: Any, compiled: float, tmp_path: Path) -> None:
    sim = Simulation.from_path(ROOT / "scenarios/article/clusterip-service.yaml").build()
    sim.capture = CaptureLog()
    spec = {"from": "default/busybox", "to": "service/default/nginx-deployment-clusterip-service", "port": 80, "flows": FLOWS}
    for _ in range(ROUNDS):
        run_check(sim, parse_check("connect", spec))
    events = sim.capture.events()
    nodes = [r.compiled for r in sim.fabric.runtimes]

    def write() -> None:
        write_captures(tmp_path, events, nodes)

    benchmark.pedantic(write, rounds=3, warmup_rounds=1)
    record(benchmark, f"pcap export: {len(events):,} frames written (pcapng, per node and interface)", len(events), "packets/s")
