"""The vrouter-agents of every node: compile the controller's intent into forwarding tables."""

from __future__ import annotations

from controlplane.progress import task
from controlplane.config import GATEWAY_NODE, ClusterConfig
from controlplane.controller.intent import Intent
from vrouter.agent.agent import Agent, CompiledNode, advertise
from vrouter.agent.programs import ProgramArrays
from vrouter.agent.rules import RuleBook

__all__ = ["Agent", "AgentSet", "CompiledNode"]


class AgentSet:
    """One agent per compute node plus the SDN gateway's, sharing one rule book.

    Agents live as long as the simulation, so ids and labels survive recompilations; a
    node that leaves the cluster takes its agent with it.
    """

    def __init__(self, config: ClusterConfig) -> None:
        self.book = RuleBook()
        fields = list(config.vrouter.ecmpHashFields)
        self.fields = fields
        self.agents = {n.name: Agent(n.name, self.book, fields) for n in config.nodes}
        self.agents[GATEWAY_NODE] = Agent(GATEWAY_NODE, self.book, fields)

    def compile(self, intent: Intent) -> dict[str, CompiledNode]:
        present = [name for name, _ in intent.nodes]
        self.agents = {name: self.agents.get(name) or Agent(name, self.book, self.fields) for name in present}
        labels = advertise(intent, self.agents)
        programs = ProgramArrays()
        compiled = {}
        with task("building the vRouters' tables", total=len(self.agents)) as advance:
            for name, agent in self.agents.items():
                compiled[name] = agent.compile(intent, labels, programs)
                advance()
        return compiled
