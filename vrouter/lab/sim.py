"""The Python API: load a scenario or manifests, build the cluster, run it, read results.

>>> sim = Simulation.from_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}])
>>> sorted(n["metadata"]["name"] for n in sim.cluster.store.list("Namespace"))[-1]
'team-a'

The CLI is a thin layer over this module; notebooks and tests use it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig
from controlplane.progress import task
from controlplane.errors import InputError
from vrouter.lab.scenario import ApplyStep, CheckStep, DeleteStep, Scenario, WaitStep, load_scenario

if TYPE_CHECKING:
    from controlplane.controller.intent import Controller, Intent
    from vrouter.agent import AgentSet, CompiledNode
    from vrouter.lab.capture import CaptureLog
    from vrouter.lab.fabric import Fabric


class Simulation:
    """One scenario's cluster: control plane now; forwarding plane and checks build on it.

    The controller, the agents and the fabric are made when first asked for, and their
    modules imported then: ``vrsim get pods`` needs only the cluster, and should not pay for
    networkx, numba and the kernels (the design's "a command that forwards nothing never
    imports numba")."""

    def __init__(self, scenario: Scenario, seed: int = 0, ipblock_selects_pods: bool = True) -> None:
        self.scenario = scenario
        self.seed = seed
        self.cluster = Cluster(scenario.cluster, seed)
        self.notes: list[str] = []
        self.ipblock_selects_pods = ipblock_selects_pods
        self._controller: Controller | None = None
        self._agents: AgentSet | None = None
        self._intent: Intent | None = None
        self._compiled: dict[str, CompiledNode] | None = None
        self._version = -1
        self._fabric: Fabric | None = None
        self.flows_of_check: dict[str, list[str | None]] = {}  # named check → backend per flow
        self.capture: CaptureLog | None = None  # set before traffic runs: every hop is recorded

    #: ``--semantics``: the reading every scenario loaded from now on is realised in, whatever
    #: its ``cluster.semantics`` says (None: as it says). The command line sets it per command.
    semantics_override: str | None = None

    @classmethod
    def from_path(cls, path: str | Path, seed: int = 0, allow_outside: bool = False, ipblock_selects_pods: bool = True) -> "Simulation":
        scenario = load_scenario(path, allow_outside)
        if cls.semantics_override is not None:
            scenario.cluster = scenario.cluster.model_copy(update={"semantics": cls.semantics_override})
        return cls(scenario, seed, ipblock_selects_pods)

    @classmethod
    def from_objects(cls, objects: Sequence[dict[str, Any]], config: ClusterConfig | None = None, seed: int = 0) -> "Simulation":
        sim = cls(Scenario(name="inline", file="<inline>", cluster=config or ClusterConfig(), strict_namespaces=False), seed)
        sim.notes.extend(sim.cluster.apply_objects(objects))
        return sim

    # --- control node and agents -------------------------------------------------------
    @property
    def controller(self) -> Controller:
        if self._controller is None:
            from controlplane.controller.intent import Controller  # lazily: see the class docstring

            self._controller = Controller(self.cluster.db, self.cluster.store, self.ipblock_selects_pods)
        return self._controller

    @property
    def agents(self) -> AgentSet:
        """Every node's vrouter-agent (the rule book they share: ``agents.book``)."""
        if self._agents is None:
            from vrouter.agent import AgentSet  # lazily: see the class docstring

            self._agents = AgentSet(self.scenario.cluster)
        return self._agents

    def _changed(self) -> bool:
        return self._version != self.cluster.store.version

    @property
    def intent(self) -> Intent:
        """The controller's view of the current configuration (recomputed after changes)."""
        if self._intent is None or self._changed():
            with task("computing what TF builds"):
                self._intent = self.controller.compute(self.cluster.config)
            self._compiled = None
            self._version = self.cluster.store.version
        return self._intent

    @property
    def nodes(self) -> dict[str, CompiledNode]:
        """Every node's compiled tables (the SDN gateway's included), kept in step with the cluster."""
        intent = self.intent
        if self._compiled is None:
            self._compiled = self.agents.compile(intent)
        return self._compiled

    @property
    def fabric(self) -> Fabric:
        """The running vRouters; their tables follow configuration changes, their flows stay."""
        nodes = self.nodes
        if self._fabric is None:
            from vrouter.lab.fabric import Fabric  # lazily: see the class docstring

            self._fabric = Fabric(nodes, self.scenario.cluster.vrouter)
            self._fabric.capture = self.capture
        elif self._fabric.runtimes[0].compiled is not nodes.get(self._fabric.names[0]):
            self._fabric.update(nodes)
        return self._fabric

    def node(self, name: str) -> CompiledNode:
        nodes = self.nodes
        if name not in nodes:
            raise InputError(f"no node {name!r}; nodes: {', '.join(nodes)}")
        return nodes[name]

    def run_step(self, step: ApplyStep | DeleteStep | WaitStep) -> None:
        """Apply, delete or wait, locating any error at the step's line."""
        if isinstance(step, WaitStep):
            if self._fabric is not None:  # no traffic yet: no flows to age
                self._fabric.advance(step.seconds)
            return
        try:
            if isinstance(step, ApplyStep):
                self.notes.extend(self.cluster.apply(step.manifests, step.namespace, self.scenario.strict_namespaces))
            else:
                try:
                    self.cluster.delete(step.kind, step.namespace, step.name)
                except InputError as exc:
                    if exc.file is None and step.path:
                        exc.under(step.path)  # `name` → `steps[3].delete.name`
                    raise
        except InputError as exc:
            raise exc.located(file=self.scenario.file, line=step.line) from None

    def build(self) -> "Simulation":
        """Run every apply/delete step (the state ``vrsim get`` shows), skipping checks."""
        for step in self.scenario.steps:
            if not isinstance(step, CheckStep):
                self.run_step(step)
        return self
