"""The Python API: load a scenario or manifests, build the cluster, run it, read results.

>>> sim = Simulation.from_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}])
>>> sorted(n["metadata"]["name"] for n in sim.cluster.store.list("Namespace"))[-1]
'team-a'

The CLI is a thin layer over this module; notebooks and tests use it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from vrouter.scenario import ApplyStep, CheckStep, DeleteStep, Scenario, load_scenario


class Simulation:
    """One scenario's cluster: control plane now; forwarding plane and checks build on it."""

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        self.scenario = scenario
        self.seed = seed
        self.cluster = Cluster(scenario.cluster, seed)
        self.notes: list[str] = []

    @classmethod
    def from_path(cls, path: str | Path, seed: int = 0, allow_outside: bool = False) -> "Simulation":
        return cls(load_scenario(path, allow_outside), seed)

    @classmethod
    def from_objects(cls, objects: Sequence[dict[str, Any]], config: ClusterConfig | None = None, seed: int = 0) -> "Simulation":
        sim = cls(Scenario(name="inline", file="<inline>", cluster=config or ClusterConfig()), seed)
        sim.notes.extend(sim.cluster.apply_objects(objects))
        return sim

    def run_step(self, step: ApplyStep | DeleteStep) -> None:
        """Apply or delete, locating any error at the step's line."""
        try:
            if isinstance(step, ApplyStep):
                self.notes.extend(self.cluster.apply(step.manifests, step.namespace))
            else:
                self.cluster.delete(step.kind, step.namespace, step.name)
        except InputError as exc:
            raise exc.located(file=self.scenario.file, line=step.line) from None

    def build(self) -> "Simulation":
        """Run every apply/delete step (the state ``vrsim get`` shows), skipping checks."""
        for step in self.scenario.steps:
            if not isinstance(step, CheckStep):
                self.run_step(step)
        return self
