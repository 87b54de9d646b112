"""``vrsim diff``: what changes between two versions of a cluster.

Connectivity is each version's measured (or, with ``intent``, evaluated) connlist; a pair of
endpoints whose allowed connections differ is one line — ``added`` (nothing before),
``removed`` (nothing after) or ``changed`` — in netpol-analyzer's ``diff`` columns
(diff-type, source, destination, dir1, dir2, workloads-diff-info), the info saying when the
line exists because a workload itself appeared or went. TF objects (``objects``) are compared
by type and fq_name: added, removed, or changed with the properties and references that
differ (uuids aside).

A version is a scenario or manifest folder built whole, or a scenario built up to a step
(``--at N``: its first N steps, checks skipped — step numbers as ``vrsim run`` prints them).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controlplane.errors import InputError
from controlplane.tf.model import ConfigDB, fq_str
from vrouter.lab.connlist import ConnList, load, without_host_network
from vrouter.lab.scenario import CheckStep
from vrouter.lab.sim import Simulation

FORMATS = ("txt", "json", "csv", "md")
NO_CONNECTIONS = "No Connections"
COLUMNS = ("diff-type", "source", "destination", "dir1", "dir2", "workloads-diff-info")


@dataclass
class ConnectionChange:
    kind: str  # added | removed | changed
    source: str
    destination: str
    before: str
    after: str
    info: str = ""

    def row(self) -> list[str]:
        return [self.kind, self.source, self.destination, self.before, self.after, self.info]


@dataclass
class ObjectChange:
    kind: str  # added | removed | changed
    type: str
    name: str
    fields: list[str] = field(default_factory=list)  # what changed


@dataclass
class Diff:
    first: str
    second: str
    connections: list[ConnectionChange]
    objects: list[ObjectChange] | None = None  # None: not compared

    @property
    def differs(self) -> bool:
        return bool(self.connections or self.objects)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            out: dict[str, Any] = {"dir1": self.first, "dir2": self.second, "connectivity": [dict(zip(COLUMNS, c.row(), strict=True)) for c in self.connections]}
            if self.objects is not None:
                out["objects"] = [asdict(o) for o in self.objects]
            return json.dumps(out, indent=2) + "\n"
        if fmt == "csv":
            stream = io.StringIO()
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(c.row() for c in self.connections)
            if self.objects is not None:
                writer.writerow([])
                writer.writerow(["object-diff-type", "type", "name", "changed"])
                writer.writerows([o.kind, o.type, o.name, ", ".join(o.fields)] for o in self.objects)
            return stream.getvalue()
        if fmt == "md":
            lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("-" * (len(c) + 2) for c in COLUMNS) + "|"]
            lines += ["| " + " | ".join(c.row()) + " |" for c in self.connections]
            if self.objects is not None:
                lines += ["", "| object-diff-type | type | name | changed |", "|------------------|------|------|---------|"]
                lines += [f"| {o.kind} | {o.type} | {o.name} | {', '.join(o.fields)} |" for o in self.objects]
            return "\n".join(lines) + "\n"
        if fmt == "txt":
            lines = ["Connectivity diff:"] + [
                f"diff-type: {c.kind}, source: {c.source}, destination: {c.destination}, dir1:  {c.before}, dir2: {c.after}"
                + (f", workloads-diff-info: {c.info}" if c.info else "")
                for c in self.connections
            ]
            if not self.connections:
                lines.append("no connectivity changes")
            if self.objects is not None:
                lines += ["", "TF objects diff:"] + [
                    f"object-diff-type: {o.kind}, type: {o.type}, name: {o.name}" + (f", changed: {', '.join(o.fields)}" if o.fields else "") for o in self.objects
                ]
                if not self.objects:
                    lines.append("no TF object changes")
            return "\n".join(lines) + "\n"
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def connectivity_diff(before: ConnList, after: ConnList) -> list[ConnectionChange]:
    """Every (source, destination) whose allowed connections differ, in netpol-analyzer's order
    (by source, then destination)."""
    old = {(c.src, c.dst): c.conn for c in before.connections}
    new = {(c.src, c.dst): c.conn for c in after.connections}
    old_ends = {e.label for e in before.endpoints}
    new_ends = {e.label for e in after.endpoints}
    changes = []
    for pair in sorted(old.keys() | new.keys()):
        was, now = old.get(pair), new.get(pair)
        if was == now:
            continue
        kind = "added" if was is None else "removed" if now is None else "changed"
        info = [f"workload {end} added" for end in pair if end not in old_ends and not end.endswith("[External]")]
        info += [f"workload {end} removed" for end in pair if end not in new_ends and not end.endswith("[External]")]
        changes.append(ConnectionChange(kind, *pair, was or NO_CONNECTIONS, now or NO_CONNECTIONS, ", ".join(info)))
    return changes


def _object_view(obj: Any) -> dict[str, Any]:
    view = obj.to_json()
    view.pop("uuid", None)
    return view


def object_diff(before: ConfigDB, after: ConfigDB) -> list[ObjectChange]:
    """TF objects added, removed, or changed (with the top-level keys that changed)."""
    old = {(o.TYPE, fq_str(o.fq_name)): _object_view(o) for o in before.all_objects()}
    new = {(o.TYPE, fq_str(o.fq_name)): _object_view(o) for o in after.all_objects()}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            changes.append(ObjectChange("added", *key))
        elif key not in new:
            changes.append(ObjectChange("removed", *key))
        elif old[key] != new[key]:
            a, b = old[key], new[key]
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            props = sorted(k for k in (a.get("properties") or {}).keys() | (b.get("properties") or {}).keys() if (a.get("properties") or {}).get(k) != (b.get("properties") or {}).get(k))
            changes.append(ObjectChange("changed", *key, [k for k in keys if k != "properties"] + props))
    return changes


def built_until(sim: Simulation, steps: int) -> Simulation:
    """``sim`` with its first ``steps`` steps run (checks skipped)."""
    total = len(sim.scenario.steps)
    if not 0 <= steps <= total:
        raise InputError(f"--at {steps}: the scenario has steps 1 to {total} (0: before the first)", path="--at")
    for step in sim.scenario.steps[:steps]:
        if not isinstance(step, CheckStep):
            sim.run_step(step)
    return sim


def load_version(path: Path, at: int | None, seed: int = 0, allow_outside: bool = False, intent: bool = False) -> Simulation:
    """One version: the whole scenario (or manifests), or a scenario up to step ``at``; read
    as connlist reads it (with ``intent``, host-network pods are ordinary pods)."""
    if at is None:
        return load(path, seed, allow_outside, True, intent)
    sim = Simulation.from_path(path, seed, allow_outside)
    if intent:
        without_host_network(sim.scenario)
    return built_until(sim, at)


def version_name(path: Path, at: int | None) -> str:
    return f"{path}" + (f" at step {at}" if at is not None else "")
