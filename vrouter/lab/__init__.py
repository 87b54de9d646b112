"""The lab: what a user's scenario asks, run through the simulated cluster.

Read it top to bottom, the way a check's data flows (each module imports only those below it):

- :mod:`~vrouter.lab.scenario` — the scenario file: cluster settings, steps, checks;
- :mod:`~vrouter.lab.sim` — one scenario's cluster: control plane, agents, fabric, made lazily;
- :mod:`~vrouter.lab.checks` — one check (ping, connect, http, reach …) and its verdict;
- :mod:`~vrouter.lab.reach` and :mod:`~vrouter.lab.connlist` — matrices of checks;
- :mod:`~vrouter.lab.conversation` — the packets of one exchange (first packets, replies, ACK);
- :mod:`~vrouter.lab.traffic` — endpoints by name, and the packet rows they send;
- :mod:`~vrouter.lab.fabric` — every node's vRouter and the wires between them;
- :mod:`~vrouter.lab.invariants` — what must hold after every check (no isolation leak).
"""
