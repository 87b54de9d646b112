"""The checks of a scenario — ping, connect, http — run through the dataplane and judged.

- ``ping``: ``count`` echo requests with one ICMP identifier, and their replies.
- ``connect``: ``flows`` TCP handshakes (SYN, SYN-ACK, ACK) or UDP/SCTP request/response
  exchanges, each from its own source port; for a service, which backend answered each.
- ``http``: through an Ingress, the way TF's HAProxy does it: the client's connection ends
  at the active HAProxy instance; HAProxy picks the pool by Host and path; the instance
  opens a new connection to that pool's member, the backend service's ClusterIP:port,
  which ECMP spreads over the pods. Both legs must succeed.

A check passes when what was observed matches ``expect``: reachability — ``unreachable``
means no answer at all, a closed port's RST or ICMP port unreachable is ``refused``, its own
verdict (the network delivered the packet; a policy test that meets a refusal proved
nothing) —, the backends hit
(``all`` or a list), the largest relative deviation of a backend's share from an even share
(``maxImbalance``), the drop reason, and for ``http`` the service the request went ``via``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import InputError
from controlplane.inet import ip_int, protocol_number
from controlplane.tf import model as tf
from controlplane.tf.haproxy import choose_pool, ingress_loadbalancer
from controlplane.tf_reading import applies
from vrouter.dataplane.packets import same_reason
from vrouter.tabular import Tabular
from vrouter.lab.conversation import Conversation, converse, merged
from vrouter.lab.scenario import CheckStep, ConnectSpec, ExpectSpec, HttpSpec, PingSpec
from vrouter.lab.sim import Simulation
from vrouter.lab.exposure import haproxy_source
from vrouter.lab.listeners import describe_all
from vrouter.lab.workload_names import pods_named
from vrouter.lab.traffic import Target, Unrealised, backend_endpoints, is_outside, node_name, pods_by_vif, resolve_source, resolve_target, service_pods


CHECK_COLUMNS = ["step", "kind", "from", "to", "expected", "reachable", "refused", "sent", "received", "dropReason", "dropNode", "backends", "passed"]


@dataclass
class CheckResult(Tabular):
    step: int
    kind: str
    source: str
    target: str
    expected: str
    observed: dict[str, Any]
    passed: bool
    why: str = ""
    counters: dict[str, Any] = field(default_factory=dict)
    engines: list[str] = field(default_factory=list)  # which engines forwarded its packets

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "from": self.source,
            "to": self.target,
            "expected": self.expected,
            "observed": self.observed,
            "passed": self.passed,
        }

    columns = CHECK_COLUMNS

    def records(self) -> list[dict[str, Any]]:
        """One flat row: the check, what it observed, the verdict (for pandas, notebooks)."""
        row = {"step": self.step, "kind": self.kind, "from": self.source, "to": self.target, "expected": self.expected, "passed": self.passed}
        return [row | {k: self.observed.get(k) for k in CHECK_COLUMNS if k not in row}]


def imbalance(backends: Counter, expected: list[str]) -> float:
    """The largest relative deviation of a backend's share from an even share."""
    if not expected:
        return 0.0
    total = sum(backends.get(b, 0) for b in expected)
    if total == 0:
        return 1.0
    even = total / len(expected)
    return max(abs(backends.get(b, 0) - even) / even for b in expected)


def observe(sim: Simulation, conv: Conversation, sent: int) -> dict[str, Any]:
    """The contract's ``observed`` object; backends are counted for every target but a pod."""
    serviced = conv.target.kind != "pod"
    observed = {
        "reachable": conv.reachable,
        "refused": conv.refusals > 0,
        "sent": conv.flows or sent,  # every flow of every (source, target) pair
        "received": conv.answered,
        "dropReason": None if conv.reachable else conv.drop_reason,
        "dropNode": None if conv.reachable else node_name(sim, conv.drop_node),
        "backends": dict(sorted(conv.backends.items())) if serviced else {},
    }
    if conv.per_source:
        observed["sources"] = dict(sorted(conv.per_source.items()))
    if conv.target.note:
        observed["note"] = conv.target.note
    if conv.refusals:
        observed["refusedFlows"] = conv.refusals
        observed["refusedBy"] = describe_all(conv.refused_by)
    return observed


def _got(observed: dict[str, Any]) -> str:
    """What a check observed, in words: ``refused: pod a/b listens on 80/TCP``, ``dropped: SG``."""
    if observed.get("refused"):
        return f"refused: {observed.get('refusedBy')}"
    if observed.get("dropReason"):
        where = f" on {observed['dropNode']}" if observed.get("dropNode") else ""
        return f"dropped: {observed['dropReason']}{where}"
    if observed["reachable"]:
        return "it answered"
    return "no answer came back"


def judge(expect: ExpectSpec, observed: dict[str, Any], expected_backends: list[str]) -> tuple[bool, str]:
    """Does the observation meet the expectation? (and why not)"""
    refused = bool(observed.get("refused")) and not observed["reachable"]
    if observed["reachable"] != expect.reachable or refused != expect.refused:
        want = "refused" if expect.refused else "reachable" if expect.reachable else "unreachable"
        return False, f"expected {want}, {_got(observed)} ({observed['received']}/{observed['sent']} answered)"
    if expect.dropReason is not None and not same_reason(str(observed.get("dropReason") or ""), expect.dropReason):
        return False, f"expected drop reason {expect.dropReason}, got {observed.get('dropReason')}"
    backends = Counter(observed.get("backends") or {})
    if expect.backends is not None:
        wanted = expected_backends if expect.backends == "all" else list(expect.backends)
        missing = [b for b in wanted if backends.get(b, 0) == 0]
        if missing:
            return False, f"backends never hit: {', '.join(missing)}"
    if expect.maxImbalance is not None:
        got = imbalance(backends, expected_backends or sorted(backends))
        observed["imbalance"] = round(got, 4)
        if got > expect.maxImbalance:
            return False, f"imbalance {got:.3f} > {expect.maxImbalance}"
    if expect.via is not None and observed.get("via") != expect.via:
        return False, f"expected via {expect.via}, went via {observed.get('via')}"
    return True, ""


# --- ping and connect -----------------------------------------------------------------


@contextmanager
def about(field: str) -> Iterator[None]:
    """Errors raised inside are about the check's ``field`` (``from``, ``to``): say so in their path."""
    try:
        yield
    except InputError as exc:
        raise exc.located(path=field) from None


def run_conversation(
    sim: Simulation, source_name: str, target_name: str, proto: str, port: int | None, flows: int, same_flow: bool = False, pick: str = "first"
) -> tuple[Conversation, Target]:
    """The check's conversations: one per (source pod, target pod) when they name workloads.

    A workload target means every pod of it; a workload source means its first pod by name,
    or every pod with ``pick: all`` (observed ``sources`` then says how each fared).
    """
    with about("to"):
        targets = pods_named(sim.cluster.store, target_name) or [target_name]
    with about("from"):
        sources = pods_named(sim.cluster.store, source_name) or [source_name]
    if pick != "all":
        sources = sources[:1]
    convs: list[Conversation] = []
    resolved: list[Target] = []
    pod_of_vif = pods_by_vif(sim)
    for target_text in targets:
        with about("to"):
            target = resolve_target(sim, target_text, port, from_outside=is_outside(source_name))
            if proto != "icmp" and target.port is None:
                raise InputError(f"{target_name}: a {proto.upper()} check needs a port", path="port")
        resolved.append(target)
        for source_text in sources:
            with about("from"):
                source = resolve_source(sim, source_text, target)
            convs.append(converse(sim, source, target, protocol_number(proto), flows, pod_of_vif, same_flow=same_flow))
    if targets == [target_name]:  # one target as named (a pod, a service, an address)
        target = resolved[0]
    else:  # a workload: every pod of it
        target = Target(target_name, resolved[0].ip, resolved[0].port, "workload", members=tuple(t.pod for t in resolved if t.pod))
    if len(convs) == 1 and target is resolved[0]:
        return convs[0], target
    conv = merged(convs, target)
    if len(sources) > 1:
        for source_text, one in zip(sources * len(targets), convs, strict=True):
            verdict = "reachable" if one.reachable else "refused" if one.refusals else "unreachable"
            if conv.per_source.get(source_text, "reachable") == "reachable":
                conv.per_source[source_text] = verdict
    return conv, target


def run_ping(sim: Simulation, spec: PingSpec) -> tuple[dict[str, Any], Conversation, Target]:
    conv, target = run_conversation(sim, spec.from_, spec.to, "icmp", None, spec.count, same_flow=True, pick=spec.pick)
    return observe(sim, conv, spec.count), conv, target


def run_connect(sim: Simulation, spec: ConnectSpec) -> tuple[dict[str, Any], Conversation, Target]:
    conv, target = run_conversation(sim, spec.from_, spec.to, spec.protocol.lower(), spec.port, spec.flows, pick=spec.pick)
    return observe(sim, conv, spec.flows), conv, target


# --- http through an ingress ----------------------------------------------------------


def run_http(sim: Simulation, spec: HttpSpec) -> tuple[dict[str, Any], Conversation | None, Target]:
    with about("to"):
        target = resolve_target(sim, spec.to, spec.port or 80, from_outside=is_outside(spec.from_))
    if target.kind != "ingress":
        # plain HTTP to a service or address: one TCP connection per request
        conv, target = run_conversation(sim, spec.from_, spec.to, "tcp", spec.port or target.port or 80, spec.requests)
        observed = observe(sim, conv, spec.requests)
        observed["via"] = f"service/{target.service}" if target.service else None
        return observed, conv, target
    namespace, _, name = target.service.partition("/")  # type: ignore[union-attr]
    ing = sim.cluster.store.get("Ingress", namespace, name)
    lb = ingress_loadbalancer(sim.cluster.db, namespace, name)
    if ing is None or lb is None:
        raise InputError(f"ingress {namespace}/{name} is not handled by TF (see vrsim get events)", path="to")
    with about("from"):
        source = resolve_source(sim, (pods_named(sim.cluster.store, spec.from_) or [spec.from_])[0], target)
    front = converse(sim, source, target, protocol_number("tcp"), spec.requests, pods_by_vif(sim))
    observed = observe(sim, front, spec.requests)
    observed["via"] = None
    if not front.reachable:
        return observed, front, target
    haproxy = haproxy_source(sim, lb)
    haproxy_node = node_name(sim, haproxy.node)
    # HAProxy itself answers a request it has no backend for (404/503): the drop is its own
    pool = choose_pool(sim.cluster.db, lb, spec.host, spec.path, literal=applies(sim.cluster.config, 8))
    if pool is None:
        observed.update(reachable=False, received=0, dropReason="NoIngressRule", dropNode=haproxy_node)
        return observed, front, target
    members = [m for m in sim.cluster.db.list(tf.LoadbalancerMember) if m.fq_name[:-1] == pool.fq_name]
    if not members:
        observed.update(reachable=False, received=0, dropReason="NoBackendService", dropNode=haproxy_node)
        return observed, front, target
    member = members[0]
    service = member.target.removeprefix("service/")
    svc_ns, _, svc_name = service.partition("/")
    svc = sim.cluster.store.get("Service", svc_ns, svc_name)
    endpoints = backend_endpoints(sim, svc) if svc is not None else frozenset()
    backend_target = Target(member.target, ip_int(member.address), member.protocol_port, "service", service=service, endpoints=endpoints)
    back = converse(sim, haproxy, backend_target, protocol_number("tcp"), spec.requests, pods_by_vif(sim), first_port=40000)
    observed = observe(sim, back, spec.requests) | {"via": member.target}
    merged = Conversation(
        front.source, front.target, front.proto, phases=front.phases + back.phases, completed=back.completed, refused=back.refused,
        refused_by=back.refused_by, backends=back.backends, drop_reason=back.drop_reason, drop_node=back.drop_node, leaks=front.leaks + back.leaks,
    )
    return observed, merged, backend_target


def unrealised_result(step: CheckStep, exc: Unrealised) -> CheckResult:
    """A check whose endpoint TF could not realise: nothing was sent, and it says why."""
    observed: dict[str, Any] = {
        "reachable": False,
        "sent": 0,
        "received": 0,
        "refused": False,
        "dropReason": exc.reason,
        "dropNode": None,
        "backends": {},
        "unrealised": str(exc),
    }
    passed, why = judge(step.expect, observed, [])
    if not passed:
        why = f"{why}; {exc}"
    counters = {"injected": 0, "delivered": 0, "dropped": 0, "dropsByReason": {}, "flowSetups": 0, "isolationLeaks": 0}
    return CheckResult(step.number, step.kind, step.source, step.target, step.expected_text, observed, passed, why, counters)


def _known_backends(sim: Simulation, step: CheckStep) -> None:
    """``expect.backends`` names pods (namespace/name) that exist: a typo is the user's
    mistake (exit 2), not a check that failed."""
    if not isinstance(step.expect.backends, list):
        return
    for i, name in enumerate(step.expect.backends):
        namespace, _, pod = name.partition("/")
        if not pod or sim.cluster.store.get("Pod", namespace, pod) is None:
            where = (step.path.rsplit(".", 1)[0] + ".") if step.path else ""
            raise InputError(f"no pod {name!r}: expect.backends names pods as namespace/name", file=sim.scenario.file, line=step.line, path=f"{where}expect.backends[{i}]")


def compare_backends(before: list[str | None], now: list[str | None], serving: set[str]) -> tuple[int, int, int]:
    """Flow by flow, against an earlier check of the same flows: (kept, moved, strayed).

    A flow whose backend still serves must stay on it (kept; else strayed); a flow whose
    backend is gone moves to one that serves (moved). Flows unanswered either time are not
    counted — reachability is judged on its own.
    """
    kept = moved = strayed = 0
    for old, new in zip(before, now, strict=False):
        if old is None or new is None:
            continue
        if old in serving:
            kept += old == new
            strayed += old != new
        else:
            moved += 1
    return kept, moved, strayed


def run_check(sim: Simulation, step: CheckStep) -> CheckResult:
    """Run one check and judge it; an endpoint that does not exist is an InputError."""
    try:
        if isinstance(step.spec, PingSpec):
            observed, conv, target = run_ping(sim, step.spec)
        elif isinstance(step.spec, ConnectSpec):
            observed, conv, target = run_connect(sim, step.spec)
        else:
            observed, conv, target = run_http(sim, step.spec)
    except Unrealised as exc:
        return unrealised_result(step, exc)
    expected_backends = service_pods(sim, target.service) if target.service else list(target.members)
    _known_backends(sim, step)
    passed, why = judge(step.expect, observed, expected_backends)
    if conv is not None and (step.name or step.expect.sameBackendsAs):
        now = conv.backend_per_flow()
        if step.expect.sameBackendsAs:
            before = sim.flows_of_check[step.expect.sameBackendsAs]
            serving = set(expected_backends) if expected_backends else {b for b in now if b}
            kept, moved, strayed = compare_backends(before, now, serving)
            observed.update(kept=kept, moved=moved, strayed=strayed)
            if passed and strayed:
                passed, why = False, f"{strayed} flows left a backend that still serves (kept {kept}, moved {moved})"
        if step.name:
            sim.flows_of_check[step.name] = now
    counters = conv.counters() if conv is not None else {}
    engines = conv.engines if conv is not None else []
    return CheckResult(step.number, step.kind, step.source, step.target, step.expected_text, observed, passed, why, counters, engines)
