"""Running a scenario: its steps in order, and what its checks found.

Apply, delete and wait steps change the cluster (:meth:`Simulation.run_step`); each check
step runs through the dataplane (:func:`~vrouter.lab.checks.run_check`). Errors are located
at the step's line in the scenario file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import InputError
from controlplane.progress import task
from vrouter.tabular import Tabular
from vrouter.lab.checks import CHECK_COLUMNS, CheckResult, run_check
from vrouter.lab.scenario import CheckStep
from vrouter.lab.sim import Simulation


@dataclass
class ScenarioResult(Tabular):
    """A scenario's checks and the packet counters of all of them together."""

    name: str
    file: str
    description: str
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)  # what applying it said: ignored kinds, created namespaces

    columns = CHECK_COLUMNS

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def caption(self) -> str:
        return f"{self.name}: {'passed' if self.passed else 'FAILED'}, {sum(c.passed for c in self.checks)}/{len(self.checks)} checks"

    def records(self) -> list[dict[str, Any]]:
        """One row per check (``pandas.DataFrame(result.records())``)."""
        return [row for check in self.checks for row in check.records()]

    def counters(self) -> dict[str, Any]:
        """injected = delivered + dropped, over every packet every check sent; and
        ``isolationLeaks`` (:mod:`vrouter.lab.invariants`), which must be 0."""
        total: dict[str, Any] = {"injected": 0, "delivered": 0, "dropped": 0, "dropsByReason": {}, "flowSetups": 0, "isolationLeaks": 0}
        reasons: Counter[str] = Counter()
        for check in self.checks:
            for key in ("injected", "delivered", "dropped", "flowSetups", "isolationLeaks"):
                total[key] += check.counters.get(key, 0)
            reasons.update(check.counters.get("dropsByReason", {}))
        total["dropsByReason"] = dict(sorted(reasons.items()))
        return total

    @property
    def engine(self) -> str:
        """Which engine forwarded the checks' packets: ``compiled``, ``interpreted``, or both
        joined by ``+`` in the order they ran (``vrouter.dataplane.engine``); ``none`` when no
        packet was sent."""
        return engine_text(e for c in self.checks for e in c.engines)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "counters": self.counters(),
            "engine": self.engine,
            "notes": self.notes,
        }


def engine_text(engines: Iterable[str]) -> str:
    """``interpreted+compiled`` for the engines used, in order of first use; ``none`` if none."""
    return "+".join(dict.fromkeys(engines)) or "none"


def run_scenario(sim: Simulation) -> ScenarioResult:
    """Every step of the simulation's scenario in order; the checks' results."""
    results = []
    with task(f"{sim.scenario.name}: steps", total=len(sim.scenario.steps)) as advance:
        for step in sim.scenario.steps:
            if isinstance(step, CheckStep):
                step = step.in_reading(sim.cluster.config.semantics)
                if step.expect.note:
                    sim.notes.append(f"{sim.scenario.file}:{step.line}: {step.expect.note}" if step.line else step.expect.note)
                try:
                    results.append(run_check(sim, step))
                except InputError as exc:
                    if exc.file is None and step.path:
                        exc.under(step.path)  # `to` → `steps[5].ping.to`
                    raise exc.located(file=sim.scenario.file, line=step.line) from None
            else:
                sim.run_step(step)
            advance()
    scenario = sim.scenario
    return ScenarioResult(scenario.name, scenario.file, scenario.description, results, list(sim.notes))
