"""vrsim from Python: the commands as functions, for notebooks, tests and scripts.

Everything here is a thin layer over :mod:`vrouter.lab` (the CLI is another). A simulation
is built once and queried many times; results display as tables in Jupyter
(``_repr_html_``) and give plain rows with ``records()`` (``pandas.DataFrame(r.records())``).
See docs/api.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from vrouter.lab.checks import CheckResult, run_check
from vrouter.lab.connlist import ConnList
from vrouter.lab.connlist import connlist as measure_connlist
from vrouter.lab.connlist import load as load_for_connlist
from vrouter.lab.reach import Reachability, reachability
from vrouter.lab.runner import ScenarioResult, run_scenario
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation
from vrouter.views.listings import Listing, listing_for
from vrouter.views.trace import trace_conversation

__all__ = ["load", "from_yaml", "run", "ping", "connect", "http", "trace", "reach", "connlist", "get", "InputError"]


def load(path: str | Path, seed: int = 0, allow_outside: bool = False) -> Simulation:
    """A scenario (or a manifest file or folder) with its apply/delete steps done."""
    return Simulation.from_path(path, seed, allow_outside).build()


def from_yaml(text: str, cluster: dict[str, Any] | None = None, seed: int = 0) -> Simulation:
    """Manifests given as YAML text (several documents), on a cluster configured like a
    scenario's ``cluster:`` section."""
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    return Simulation.from_objects(objects, ClusterConfig.model_validate(cluster or {}), seed)


def run(path: str | Path, seed: int = 0, allow_outside: bool = False) -> ScenarioResult:
    """Run a scenario's steps and checks, as ``vrsim run``."""
    return run_scenario(Simulation.from_path(path, seed, allow_outside))


def _check(sim: Simulation, kind: str, spec: dict[str, Any]) -> CheckResult:
    return run_check(sim, parse_check(kind, {k: v for k, v in spec.items() if v is not None}))


def ping(sim: Simulation, source: str, target: str, count: int = 3, pick: str = "first") -> CheckResult:
    """ICMP echo requests and their replies (``vrsim ping``)."""
    return _check(sim, "ping", {"from": source, "to": target, "count": count, "pick": pick})


def connect(sim: Simulation, source: str, target: str, port: int | None = None, protocol: str = "TCP", flows: int = 1, pick: str = "first") -> CheckResult:
    """TCP handshakes or UDP/SCTP exchanges, one per flow (``vrsim connect``)."""
    return _check(sim, "connect", {"from": source, "to": target, "port": port, "protocol": protocol.upper(), "flows": flows, "pick": pick})


def http(sim: Simulation, source: str, target: str, host: str | None = None, path: str = "/", requests: int = 1) -> CheckResult:
    """HTTP requests, through an Ingress's HAProxy when the target is one (``vrsim http``)."""
    return _check(sim, "http", {"from": source, "to": target, "host": host, "path": path, "requests": requests})


def trace(sim: Simulation, source: str, target: str, port: int | None = None, protocol: str = "icmp") -> list[dict[str, Any]]:
    """One packet and its answer, stage by stage (``vrsim trace``): one dict per phase with
    ``name``, ``header``, ``events`` (node, stage, text) and ``outcome``."""
    return trace_conversation(sim, source, target, protocol.lower(), port)


def reach(sim: Simulation, protocol: str = "icmp", port: int | None = None) -> Reachability:
    """The pod × pod reachability matrix, measured (``vrsim reach``)."""
    return reachability(sim, protocol, port)


def connlist(path: str | Path, ipblock_selects_pods: bool = True, host_network_as_pods: bool = False) -> ConnList:
    """Allowed connections, in netpol-analyzer's form (``vrsim connlist``)."""
    return measure_connlist(load_for_connlist(Path(path), 0, False, ipblock_selects_pods, host_network_as_pods))


def get(sim: Simulation, kind: str, namespace: str | None = "default") -> Listing:
    """A ``vrsim get`` listing: ``namespace=None`` for every namespace (``-A``)."""
    return listing_for(sim.cluster, kind, namespace)
