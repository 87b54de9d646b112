"""Compile every kernel a command uses, once, into the kernel cache (``vrsim warmup``).

Run as ``python -m vrouter.warmup`` by :mod:`vrouter.dataplane.background_compile` — in the
background after a cold run, or while a command, ``vrsim warmup`` or the test suite waits.
It compiles by doing what commands do: a small cluster (a Service with two backends, a
NetworkPolicy, an isolated namespace) builds its tables, and pings, TCP connects and a trace
go through the compiled kernels, flows age. So every kernel is compiled with exactly the
argument types real runs give it, once. Then ``ready.json`` is written beside the kernels.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import yaml

from vrouter.lab.checks import run_check
from vrouter.views.trace import trace_conversation
from vrouter.dataplane import engine
from vrouter.dataplane.background_compile import compile_lock
from vrouter.dataplane.kernel_cache import READY_STAMP, kernel_directory, kernels_ready
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: isolated, annotations: {opencontrail.org/isolation: "true"}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {nodeName: worker01, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {nodeName: worker01, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: default, labels: {app: web}}
spec: {nodeName: worker02, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: loner, namespace: isolated}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-client, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 80}]}]
"""

CHECKS = (
    ("ping", {"from": "default/client", "to": "default/web-2", "count": 2}),
    ("ping", {"from": "default/client", "to": "isolated/loner", "count": 1}),
    ("connect", {"from": "default/client", "to": "service/default/web", "port": 80, "flows": 8}),
    ("connect", {"from": "external", "to": "node/worker02", "port": 80, "flows": 2}),
)


def exercise() -> None:
    """Forward the small cluster's traffic on the compiled engine (compiling what it meets)."""
    sim = Simulation.from_objects(list(yaml.safe_load_all(CLUSTER)))
    with engine.forced("compiled"):
        for kind, spec in CHECKS:
            run_check(sim, parse_check(kind, spec))
        trace_conversation(sim, "default/client", "service/default/web", "tcp", 80)
        sim.fabric.advance(sim.scenario.cluster.vrouter.agingSeconds + 1)


def compile_all() -> float:
    """Compile (or load) every kernel; returns the seconds it took.

    It runs in a new thread: numba's compiler recurses deeply, and from a caller that is
    already deep (pytest) CPython's frame-stack chunks make it several times slower
    (:mod:`vrouter.dataplane.compile_thread`).
    """
    start = time.perf_counter()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            exercise()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=work, name="vrsim-warmup")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return time.perf_counter() - start


def main() -> int:
    """Compile into the kernel directory under its lock, unless another process did."""
    directory = kernel_directory()
    with compile_lock():
        if kernels_ready():
            return 0
        seconds = compile_all()
        stamp = {"compileSeconds": round(seconds, 1), "compiledAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        partial = directory / (READY_STAMP + ".tmp")
        partial.write_text(json.dumps(stamp))
        partial.replace(directory / READY_STAMP)
    print(f"compiled the forwarding kernels in {seconds:.1f} s into {directory}", file=sys.stderr)
    return 0


def ready_stamp() -> dict[str, object]:
    """What the compile that made the kernels ready recorded (empty when not ready)."""
    path: Path = kernel_directory() / READY_STAMP
    return json.loads(path.read_text()) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
