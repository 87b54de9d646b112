"""``vrsim diverge``: where two views of one cluster answer differently, and why.

The views (spec/tf-semantics.md): **intent** — what Kubernetes says (``connlist --intent``,
netpol-analyzer's reading); **article** — what TF builds as the article describes it,
measured; **tf** — what tf-controller's code builds, measured. Each view's connectivity is
computed over the same pieces (ports and outside ranges cut alike), then compared piece by
piece: every (source, destination, protocol, port range) allowed in one and denied in the
other is a divergence.

Why, found by experiment rather than guessed: a divergence is explained by each cause whose
removal alone makes the measured view answer as the other one does —

- a behaviour *n* of the tf reading (:data:`controlplane.tf_reading.TF_BEHAVIOURS`), removed
  by measuring the tf reading with every behaviour but *n*;
- admin policies (18: TF has no code for them), removed by evaluating the intent view
  without them;
- TF's address groups, which let an ipBlock match pod addresses, and its host-network pods,
  which are their node's host stack — removed by measuring in the analyzer's reading of each.

Outside ranges the dataplane cannot probe (inside cluster addresses) are not compared.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.tf_reading import TF_BEHAVIOURS
from controlplane.controller.netpol import subtract
from vrouter.lab.connlist import PROTOCOLS, ConnList, Range, connection_text, connlist, merge_ranges, without_host_network
from vrouter.lab.scenario import load_scenario
from vrouter.lab.sim import Simulation
from vrouter.tabular import Tabular

VIEWS = ("intent", "article", "tf")
ADMIN_POLICIES = (18, "AdminNetworkPolicy/BaselineAdminNetworkPolicy are not realised by TF (no code for them)")
ADDRESS_GROUPS = (None, "TF's address groups let an ipBlock match pod addresses (Kubernetes leaves it open; netpol-analyzer says no)")
HOST_NETWORK = (None, "in TF a hostNetwork pod is its node's host stack, which no NetworkPolicy restricts")
ISOLATION = (None, "opencontrail.org/isolation: TF isolates the namespace's network, a notion Kubernetes does not have")

Allowed = dict[tuple[str, str], dict[str, list[Range]]]


@dataclass(frozen=True)
class Divergence:
    src: str
    dst: str
    ports: tuple[tuple[str, tuple[Range, ...]], ...]  # (protocol, ranges) that diverge alike
    allowed_in: str  # the view that allows it
    denied_in: str
    causes: tuple[tuple[int | None, str], ...]

    @property
    def conn(self) -> str:
        return connection_text({protocol: list(ranges) for protocol, ranges in self.ports})

    def why(self) -> str:
        if not self.causes:
            return "no single cause found"
        return "; ".join(f"{n}: {text}" if n is not None else text for n, text in self.causes)

    def line(self) -> str:
        return f"{self.src} => {self.dst} : {self.conn} : allowed in {self.allowed_in}, denied in {self.denied_in} — {self.why()}"

    def record(self) -> dict[str, object]:
        return {
            "src": self.src,
            "dst": self.dst,
            "conn": self.conn,
            "allowedIn": self.allowed_in,
            "deniedIn": self.denied_in,
            "behaviours": [{"number": n, "reason": text} for n, text in self.causes],
        }


@dataclass
class Diverge(Tabular):
    views: tuple[str, str]
    divergences: list[Divergence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns = ["src", "dst", "conn", "allowedIn", "deniedIn", "behaviours"]

    def records(self) -> list[dict[str, object]]:
        return [d.record() for d in self.divergences]

    def render(self, fmt: str = "txt") -> str:
        rows = self.records()
        if fmt == "txt":
            return "".join(d.line() + "\n" for d in self.divergences)
        if fmt == "json":
            return json.dumps(rows, indent=2) + "\n"
        why = [d.why() for d in self.divergences]
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["src", "dst", "conn", "allowed_in", "denied_in", "why"])
            writer.writerows([r["src"], r["dst"], r["conn"], r["allowedIn"], r["deniedIn"], w] for r, w in zip(rows, why, strict=True))
            return out.getvalue()
        if fmt == "md":
            head = ["| src | dst | conn | allowed in | denied in | why |", "|-----|-----|------|-----------|-----------|-----|"]
            body = [f"| {r['src']} | {r['dst']} | {r['conn']} | {r['allowedIn']} | {r['deniedIn']} | {w} |" for r, w in zip(rows, why, strict=True)]
            return "\n".join(head + body) + "\n"
        raise ValueError(f"unknown format {fmt!r}; use txt, json, csv or md")


# --- the views ----------------------------------------------------------------------------


def measure_view(
    path: str | Path,
    view: str,
    seed: int = 0,
    allow_outside: bool = False,
    behaviours: Sequence[int] | None = None,
    analyzer_ipblocks: bool = False,
    analyzer_host_network: bool = False,
    with_admin: bool = True,
    with_isolation: bool = True,
    client: Any = None,
) -> ConnList:
    """One view's connectivity, cut as the intent view cuts (so pieces compare one to one);
    a measured view on the workers of a dask ``client`` when one is given."""
    if view == "intent":
        sim = _simulation(path, seed, allow_outside, {"semantics": "article"}, ipblock_selects_pods=False)
        without_host_network(sim.scenario)  # the analyzer's reading: host-network pods are pods
        sim.build()
        if not with_admin:
            sim.cluster.ignored = {k: v for k, v in sim.cluster.ignored.items() if k[0] not in ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy")}
        return connlist(sim, intent=True)
    reading: dict[str, object] = {"semantics": view}
    if behaviours is not None:
        reading["tfBehaviours"] = list(behaviours)
    sim = _simulation(path, seed, allow_outside, reading, ipblock_selects_pods=not analyzer_ipblocks)
    if analyzer_host_network:
        without_host_network(sim.scenario)
    if not with_isolation:
        _without_isolation(sim)
    return connlist(sim.build(), admin_cuts=True, client=client)


def _simulation(path: str | Path, seed: int, allow_outside: bool, reading: dict[str, object], ipblock_selects_pods: bool) -> Simulation:
    """A scenario realised in the given reading (``cluster.semantics``, ``tfBehaviours``),
    whatever the scenario or the command line says."""
    scenario = load_scenario(path, allow_outside)
    scenario.cluster = scenario.cluster.model_copy(update=reading)
    return Simulation(scenario, seed, ipblock_selects_pods)


def _without_isolation(sim: Simulation) -> None:
    """The scenario's Namespaces without TF's isolation annotations (before it is applied)."""
    for step in sim.scenario.steps:
        for manifest in getattr(step, "manifests", ()):
            if manifest.kind == "Namespace":
                notes = (manifest.obj.get("metadata") or {}).get("annotations") or {}
                for key in [k for k in notes if k.startswith("opencontrail.org/isolation")]:
                    del notes[key]


def allowed_sets(result: ConnList) -> Allowed:
    out: Allowed = {}
    for c in result.connections:
        if c.src.startswith("{") or c.dst.startswith("{"):
            continue  # exposure lines: compared as such by connlist, not by piece here
        out[(c.src, c.dst)] = {p: list(r) for p, r in (c.allowed or {}).items()} if c.allowed else {p: [(1, 65535)] for p in PROTOCOLS}
    return out


def _difference(a: Sequence[Range], b: Sequence[Range]) -> list[Range]:
    """Ranges in ``a`` and not in ``b``."""
    out = merge_ranges(a)
    for hole in merge_ranges(b):
        out = subtract(out, hole)
    return out


def differences(first: Allowed, second: Allowed, names: tuple[str, str], comparable: set[str]) -> list[tuple[str, str, str, list[Range], str, str]]:
    """(src, dst, protocol, ranges, allowed in, denied in) for every piece the two disagree on."""
    out = []
    for key in sorted(set(first) | set(second)):
        if not (key[0] in comparable and key[1] in comparable):
            continue
        a, b = first.get(key, {}), second.get(key, {})
        for protocol in PROTOCOLS:
            only_a = _difference(a.get(protocol, []), b.get(protocol, []))
            only_b = _difference(b.get(protocol, []), a.get(protocol, []))
            if only_a:
                out.append((key[0], key[1], protocol, only_a, names[0], names[1]))
            if only_b:
                out.append((key[0], key[1], protocol, only_b, names[1], names[0]))
    return out


def _allows(sets: Allowed, src: str, dst: str, protocol: str, port: int) -> bool:
    return any(lo <= port <= hi for lo, hi in sets.get((src, dst), {}).get(protocol, []))


def diverge(path: str | Path, first: str = "tf", second: str = "intent", seed: int = 0, allow_outside: bool = False, client: Any = None) -> Diverge:
    """Every piece where views ``first`` and ``second`` disagree, with its causes (every
    measured view's blocks on the workers of a dask ``client`` when one is given)."""
    results = {view: measure_view(path, view, seed, allow_outside, client=client) for view in {first, second}}
    sets = {view: allowed_sets(r) for view, r in results.items()}
    labels = [{e.label for e in r.endpoints} - set(r.unmeasured) for r in results.values()]
    comparable = set.intersection(*labels)
    found = differences(sets[first], sets[second], (first, second), comparable)
    report = Diverge((first, second))
    if not found:
        return report
    # the experiments: each cause removed alone
    experiments: list[tuple[tuple[int | None, str], str, Allowed]] = []
    measured = [v for v in (first, second) if v != "intent"]
    for view in measured:
        if view == "tf":
            for number, text in TF_BEHAVIOURS.items():
                others = [b for b in TF_BEHAVIOURS if b != number]
                experiments.append(((number, text), view, allowed_sets(measure_view(path, "tf", seed, allow_outside, behaviours=others, client=client))))
        experiments.append((ADDRESS_GROUPS, view, allowed_sets(measure_view(path, view, seed, allow_outside, analyzer_ipblocks=True, client=client))))
        experiments.append((HOST_NETWORK, view, allowed_sets(measure_view(path, view, seed, allow_outside, analyzer_host_network=True, client=client))))
        experiments.append((ISOLATION, view, allowed_sets(measure_view(path, view, seed, allow_outside, with_isolation=False, client=client))))
    if "intent" in (first, second):  # without admin policies this changes nothing, so explains nothing
        experiments.append((ADMIN_POLICIES, "intent", allowed_sets(measure_view(path, "intent", seed, allow_outside, with_admin=False, client=client))))
    grouped: dict[tuple[str, str, str, str, tuple], list[tuple[str, tuple[Range, ...]]]] = {}
    for src, dst, protocol, ranges, allowed_in, denied_in in found:
        port = ranges[0][0]  # the pieces are uniform: one port answers for the range
        causes = []
        for cause, view, changed in experiments:
            other = second if view == first else first
            if _allows(changed, src, dst, protocol, port) == _allows(sets[other], src, dst, protocol, port):
                causes.append(cause)
        grouped.setdefault((src, dst, allowed_in, denied_in, tuple(causes)), []).append((protocol, tuple(ranges)))
    for (src, dst, allowed_in, denied_in, causes), ports in grouped.items():
        report.divergences.append(Divergence(src, dst, tuple(ports), allowed_in, denied_in, causes))
    return report

