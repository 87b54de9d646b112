"""Scenario files (spec/scenario-and-cli.md §1): parse, check, and resolve their manifests.

A scenario is a ``kubectl`` session with expectations: ``apply``/``delete`` steps that build
the cluster and ``ping``/``connect``/``http`` checks with an ``expect``. Every mistake is an
:class:`~controlplane.errors.InputError` naming the file, the line and the field.

``apply:`` paths are relative to the scenario's folder and may not leave it (a scenario
someone hands you should not read your home directory) unless ``allow_outside`` is set.
A path that is a plain manifest directory or file, instead of a scenario, is a scenario
too: the default cluster, everything applied, no checks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from controlplane.config import ClusterConfig
from controlplane.errors import InputError, format_path
from controlplane.k8s.manifests import (
    Manifest,
    Source,
    expand_object,
    load_paths,
    manifest_files,
    parse_manifest_text,
    parse_yaml_documents,
    read_text,
    STDIN,
    STDIN_NAME,
)
from vrouter.dataplane.packets import DROP_REASONS, current_reason, same_reason

SCENARIO_API_VERSION = "vrsim/v1"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CHECK_KINDS = ("ping", "connect", "http")
READINGS = ("article", "tf")  # cluster.semantics
STEP_KINDS = ("apply", "delete", "wait", *CHECK_KINDS)
MAX_WAIT_SECONDS = 10**9
MAX_COUNT = 100_000
#: distinct connections one source address can open to one port: its source ports (1024-65535);
#: more would reuse five-tuples, and the report would count flows that were never distinct
MAX_FLOWS = 65536 - 1024


#: a check's ``dropReason`` when nothing reached the dataplane: the load balancer's answers
#: (checks.py), a target without an address or pods (traffic.py, workload_names.py), and a
#: pod's or Service's ``TFRealized`` condition reasons (the kube-manager's) — docs/scenarios.md
NOT_SENT_REASONS = (
    "NoIngressRule", "NoBackendService", "NoExternalIP", "NoAddress", "NoPods", "NoInterface", "Pending",
    "NotScheduled", "NetworkNotFound", "InvalidNetworkAnnotation", "AddressPoolExhausted", "IpamNotFound",
    "NoFloatingIpPool", "ExternalIpNotAvailable", "VipNotAvailable", "BackendServiceNotFound", "NamedServicePort", "Immutable",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExpectSpec(_Strict):
    """What a check must observe; the short forms are ``reachable`` and ``unreachable``."""

    reachable: bool = True
    #: a closed port answered (TCP RST, ICMP port unreachable, SCTP ABORT): delivered, not dropped
    refused: bool = False
    backends: Literal["all"] | list[str] | None = None
    maxImbalance: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    dropReason: str | None = None
    via: str | None = None
    sameBackendsAs: str | None = None  # the name of an earlier check of the same flows
    _note: str | None = PrivateAttr(default=None)  # an old dropReason name, said once when it runs

    @property
    def note(self) -> str | None:
        return self._note


class PingSpec(_Strict):
    from_: str = Field(alias="from")
    to: str
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 3
    #: a workload source: its first pod by name, or every pod
    pick: Literal["first", "all"] = "first"


class ConnectSpec(_Strict):
    from_: str = Field(alias="from")
    to: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    protocol: Literal["TCP", "UDP", "SCTP", "tcp", "udp", "sctp"] = "TCP"
    flows: Annotated[int, Field(ge=1, le=MAX_FLOWS)] = 1
    pick: Literal["first", "all"] = "first"


class HttpSpec(_Strict):
    from_: str = Field(alias="from")
    to: str
    host: str | None = None
    path: str = "/"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    requests: Annotated[int, Field(ge=1, le=MAX_FLOWS)] = 1


class DeleteSpec(_Strict):
    kind: str
    name: str
    namespace: str | None = None


class WaitSpec(_Strict):
    seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)]


@dataclass
class ApplyStep:
    manifests: list[Manifest]
    namespace: str | None
    line: int | None


@dataclass
class DeleteStep:
    kind: str
    namespace: str | None
    name: str
    line: int | None
    path: str | None = None  # where the step is in its scenario (``steps[3].delete``)


@dataclass
class WaitStep:
    """Simulated time passes (flows idle longer than the ageing time are removed)."""

    seconds: float
    line: int | None


@dataclass
class CheckStep:
    kind: str  # ping | connect | http
    spec: PingSpec | ConnectSpec | HttpSpec
    expect: ExpectSpec
    expected_text: str
    line: int | None
    number: int = 0  # the step's position in the scenario, from 1
    name: str | None = None  # lets a later check compare its flows with this one's
    #: ``expect: {article: …, tf: …}``: the expectation in each reading (empty: one for both)
    expect_by_reading: dict[str, ExpectSpec] = field(default_factory=dict)
    text_by_reading: dict[str, str] = field(default_factory=dict)

    def in_reading(self, semantics: str) -> "CheckStep":
        """This check with the expectation of ``semantics`` (itself when it has only one)."""
        if semantics not in self.expect_by_reading:
            return self
        return CheckStep(self.kind, self.spec, self.expect_by_reading[semantics], f"{self.text_by_reading[semantics]} ({semantics})", self.line, self.number, self.name)

    @property
    def path(self) -> str | None:
        """Where the check is in its scenario (``steps[5].ping``); None for one given on the command line."""
        return f"steps[{self.number - 1}].{self.kind}" if self.number else None

    @property
    def source(self) -> str:
        return self.spec.from_

    @property
    def target(self) -> str:
        return self.spec.to


Step = ApplyStep | DeleteStep | WaitStep | CheckStep


@dataclass
class Scenario:
    name: str
    file: str
    description: str = ""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    steps: list[Step] = field(default_factory=list)
    #: a scenario file applies as kubectl does (a missing namespace is an error); plain
    #: manifests — a repository — are read as an analyzer reads them (the namespace is made)
    strict_namespaces: bool = True

    @property
    def checks(self) -> list[CheckStep]:
        return [s for s in self.steps if isinstance(s, CheckStep)]


def _error(source: Source, loc: tuple[str | int, ...], message: str) -> InputError:
    return InputError(message, file=source.file, path=format_path(loc) or None, line=source.line_of(loc))


def _validated(model: type[BaseModel], data: Any, source: Source, loc: tuple[str | int, ...]) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        # A misspelt key (``form:``) also leaves the key it stands for missing; name the typo.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = (*loc, *[p for p in first["loc"] if not (isinstance(p, str) and "[" in p)])
        if first["type"] == "extra_forbidden":
            message = f"unknown key {first['loc'][-1]!r}"
        elif first["type"] == "missing":
            message = "required key is missing"
        elif first["type"] == "value_error" and "error" in first.get("ctx", {}):
            message = str(first["ctx"]["error"])  # our validators' own words, value included
        else:
            message = first["msg"]
            if "input" in first and not isinstance(first["input"], dict | list):
                message += f", got {first['input']!r}"
        raise _error(source, where, message) from None


def _expect(value: Any, source: Source, loc: tuple[str | int, ...]) -> tuple[ExpectSpec, str]:
    if value is None:
        raise _error(source, loc, "a check needs expect: reachable, unreachable, refused, or a mapping")
    if isinstance(value, str):
        if value == "reachable":
            return ExpectSpec(reachable=True), "reachable"
        if value == "unreachable":
            return ExpectSpec(reachable=False), "unreachable"
        if value == "refused":
            return ExpectSpec(reachable=False, refused=True), "refused"
        raise _error(source, loc, f"expect must be reachable, unreachable, refused or a mapping, got {value!r}")
    if isinstance(value, bool):
        return ExpectSpec(reachable=value), "reachable" if value else "unreachable"
    spec = _validated(ExpectSpec, value, source, loc)
    if spec.dropReason is not None:
        spec.dropReason, spec._note = current_reason(spec.dropReason)
        if not any(same_reason(spec.dropReason, known) for known in (*DROP_REASONS[1:], *NOT_SENT_REASONS)):
            names = ", ".join(sorted(set(DROP_REASONS[1:]))) + "; or, when nothing was sent, " + ", ".join(NOT_SENT_REASONS)
            raise _error(source, (*loc, "dropReason"), f"unknown drop reason {spec.dropReason!r}; the vRouter's are: {names}")
    if spec.refused and spec.reachable:
        if "reachable" in value:
            raise _error(source, (*loc, "refused"), "a refused connection is not reachable: drop 'reachable: true' or 'refused'")
        spec.reachable = False
    return spec, expect_text(spec)


def expect_text(spec: ExpectSpec) -> str:
    """A short human form of an expectation, for tables."""
    parts = ["refused" if spec.refused else "reachable" if spec.reachable else "unreachable"]
    if spec.backends is not None:
        parts.append(f"backends={spec.backends if spec.backends == 'all' else ','.join(spec.backends)}")
    if spec.maxImbalance is not None:
        parts.append(f"imbalance≤{spec.maxImbalance:g}")
    if spec.dropReason:
        parts.append(f"drop={spec.dropReason}")
    if spec.via:
        parts.append(f"via={spec.via}")
    if spec.sameBackendsAs:
        parts.append(f"same-backends-as={spec.sameBackendsAs}")
    return " ".join(parts)


def _resolve_inside(base: Path, raw: str, source: Source, loc: tuple[str | int, ...], allow_outside: bool) -> Path:
    if not raw or "\x00" in raw:
        raise _error(source, loc, f"{raw!r} is not a path")
    try:
        path = (base / raw).resolve()
        if not allow_outside:
            try:
                path.relative_to(base.resolve())
            except ValueError:
                raise _error(source, loc, f"{raw!r} leaves the scenario's folder (use --allow-outside to permit it)") from None
        exists = path.exists()
    except OSError as exc:  # a name too long for the file system, a loop of links…
        raise _error(source, loc, f"{raw!r} cannot be read: {exc.strerror}") from None
    if not exists:
        raise _error(source, loc, f"{raw!r} does not exist (looked for {str(path)!r})")
    return path


def _load_some(path: Path, raw: str, source: Source, loc: tuple[str | int, ...]) -> list[Manifest]:
    """The objects at an ``apply:`` path; none at all is a mistake (``kubectl apply`` refuses it too)."""
    manifests = load_paths([path])
    if not manifests:
        what = "no .yaml, .yml or .json file" if path.is_dir() and not manifest_files(path) else "no objects"
        raise _error(source, loc, f"{raw!r} holds {what}, so the step applies nothing")
    return manifests


def _apply_step(raw: dict[str, Any], source: Source, loc: tuple[str | int, ...], base: Path, allow_outside: bool) -> ApplyStep:
    extra = set(raw) - {"apply", "namespace"}
    if extra:
        raise _error(source, (*loc, sorted(extra)[0]), f"unknown key {sorted(extra)[0]!r} in an apply step")
    namespace = raw.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise _error(source, (*loc, "namespace"), "namespace must be a string")
    if namespace is not None and (len(namespace) > 63 or not _DNS1123_LABEL.match(namespace)):
        # it becomes the objects' namespace after validation, so it is checked here, as kubectl -n is
        raise _error(source, (*loc, "namespace"), f"invalid namespace {namespace!r}: must be a DNS-1123 label")
    target = raw["apply"]
    if isinstance(target, str):
        path = _resolve_inside(base, target, source, (*loc, "apply"), allow_outside)
        return ApplyStep(_load_some(path, target, source, (*loc, "apply")), namespace, source.line_of(loc))
    if isinstance(target, list):
        items = target
        if not items:
            raise _error(source, (*loc, "apply"), "an empty list applies nothing")
        manifests = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                path = _resolve_inside(base, item, source, (*loc, "apply", i), allow_outside)
                manifests.extend(_load_some(path, item, source, (*loc, "apply", i)))
            else:
                manifests.extend(expand_object(item, source.within(*loc, "apply", i)))
        return ApplyStep(manifests, namespace, source.line_of(loc))
    if isinstance(target, dict):
        return ApplyStep(expand_object(target, source.within(*loc, "apply")), namespace, source.line_of(loc))
    raise _error(source, (*loc, "apply"), "apply takes a path, an object, or a list of them")


def _check_step(kind: str, raw: dict[str, Any], source: Source, loc: tuple[str | int, ...]) -> CheckStep:
    extra = set(raw) - {kind, "expect", "name"}
    if extra:
        raise _error(source, (*loc, sorted(extra)[0]), f"unknown key {sorted(extra)[0]!r} in a {kind} step")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not _DNS1123_LABEL.match(name)):
        raise _error(source, (*loc, "name"), f"a check's name is a lowercase word like before-delete, got {name!r}")
    model = {"ping": PingSpec, "connect": ConnectSpec, "http": HttpSpec}[kind]
    if not isinstance(raw[kind], dict):
        raise _error(source, (*loc, kind), f"{kind} takes a mapping with from and to")
    spec = _validated(model, raw[kind], source, (*loc, kind))
    value = raw.get("expect")
    by_reading: dict[str, tuple[ExpectSpec, str]] = {}
    if isinstance(value, dict) and value and set(value) <= set(READINGS):
        # one expectation per reading: `expect: {article: reachable, tf: unreachable}`
        missing = [r for r in READINGS if r not in value]
        if missing:
            raise _error(source, (*loc, "expect"), f"an expectation per reading names both: {', '.join(READINGS)} (missing {', '.join(missing)})")
        by_reading = {r: _expect(value[r], source, (*loc, "expect", r)) for r in READINGS}
        expect, text = by_reading["article"]
    else:
        expect, text = _expect(value, source, (*loc, "expect"))
    number = int(loc[-1]) + 1 if loc and isinstance(loc[-1], int) else 0
    return CheckStep(kind, spec, expect, text, source.line_of(loc), number, name, {r: e for r, (e, _) in by_reading.items()}, {r: t for r, (_, t) in by_reading.items()})


def _check_names(step: CheckStep, named: dict[str, CheckStep], source: Source, loc: tuple[str | int, ...]) -> None:
    """Names are unique; ``sameBackendsAs`` names an earlier check of the same kind of flows."""
    ref = step.expect.sameBackendsAs
    if ref is not None:
        earlier = named.get(ref)
        if earlier is None:
            known = ", ".join(sorted(named)) or "none yet"
            raise _error(source, (*loc, "expect", "sameBackendsAs"), f"no earlier check is named {ref!r} (named so far: {known})")
        if earlier.kind != step.kind or earlier.kind == "http":
            raise _error(source, (*loc, "expect", "sameBackendsAs"), f"sameBackendsAs compares two ping or connect checks; {ref!r} is a {earlier.kind} check")
    if step.name is not None:
        if step.name in named:
            raise _error(source, (*loc, "name"), f"two checks are named {step.name!r}")
        named[step.name] = step


def parse_check(kind: str, spec: dict[str, Any]) -> CheckStep:
    """A check given on the command line (no expectation: it reports what it observes)."""
    source = Source("<command line>")
    if kind not in CHECK_KINDS:
        raise InputError(f"unknown check kind {kind!r}")
    return _check_step(kind, {kind: spec, "expect": "reachable"}, source, ())


def parse_scenario_data(data: Any, source: Source, allow_outside: bool = False) -> Scenario:
    """A scenario document (already parsed YAML) → :class:`Scenario`."""
    if not isinstance(data, dict):
        raise _error(source, (), "a scenario is a mapping with apiVersion, kind, metadata and steps")
    allowed = {"apiVersion", "kind", "metadata", "cluster", "steps"}
    for key in data:
        if key not in allowed:
            raise _error(source, (key,), f"unknown key {key!r} (a scenario has {', '.join(sorted(allowed))})")
    if data.get("apiVersion") != SCENARIO_API_VERSION:
        raise _error(source, ("apiVersion",), f"apiVersion must be {SCENARIO_API_VERSION}")
    if data.get("kind") != "Scenario":
        raise _error(source, ("kind",), "kind must be Scenario")
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict):
        raise _error(source, ("metadata",), "metadata must be a mapping")
    for key in meta:
        if key not in ("name", "description"):
            raise _error(source, ("metadata", key), f"unknown key {key!r} (metadata has name and description)")
    name = meta.get("name") or Path(source.file).stem
    cluster = _validated(ClusterConfig, data.get("cluster") or {}, source, ("cluster",))
    steps_raw = data.get("steps") or []
    if not isinstance(steps_raw, list):
        raise _error(source, ("steps",), "steps must be a list")
    base = Path(source.file).parent
    steps: list[Step] = []
    named: dict[str, CheckStep] = {}
    for i, raw in enumerate(steps_raw):
        loc: tuple[str | int, ...] = ("steps", i)
        if not isinstance(raw, dict):
            raise _error(source, loc, f"a step is a mapping with one of {', '.join(STEP_KINDS)}")
        actions = [k for k in raw if k in STEP_KINDS]
        if len(actions) != 1:
            unknown = [k for k in raw if k not in STEP_KINDS and k not in ("expect", "namespace")]
            if unknown:
                raise _error(
                    source, (*loc, unknown[0]), f"unknown step kind {unknown[0]!r} (expected one of {', '.join(STEP_KINDS)})"
                )
            raise _error(source, loc, f"a step needs exactly one of {', '.join(STEP_KINDS)}, found {len(actions)}")
        action = actions[0]
        if action == "apply":
            steps.append(_apply_step(raw, source, loc, base, allow_outside))
        elif action == "delete":
            extra = set(raw) - {"delete"}
            if extra:
                raise _error(source, (*loc, sorted(extra)[0]), f"unknown key {sorted(extra)[0]!r} in a delete step")
            spec = _validated(DeleteSpec, raw["delete"], source, (*loc, "delete"))
            steps.append(DeleteStep(spec.kind, spec.namespace, spec.name, source.line_of(loc), format_path((*loc, "delete"))))
        elif action == "wait":
            extra = set(raw) - {"wait"}
            if extra:
                raise _error(source, (*loc, sorted(extra)[0]), f"unknown key {sorted(extra)[0]!r} in a wait step")
            value = raw["wait"]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = {"seconds": value}  # `wait: 200` is `wait: {seconds: 200}`
            wait = _validated(WaitSpec, value, source, (*loc, "wait"))
            steps.append(WaitStep(wait.seconds, source.line_of(loc)))
        else:
            step = _check_step(action, raw, source, loc)
            _check_names(step, named, source, loc)
            steps.append(step)
    return Scenario(name=str(name), file=source.file, description=str(meta.get("description") or ""), cluster=cluster, steps=steps)


def is_scenario_document(data: Any) -> bool:
    """Is this parsed document a scenario (rather than a Kubernetes object)?

    Decided on the parsed data, not the text: ``kind: "Scenario"`` or a trailing comment must
    not turn a scenario into an ignored object and its checks into a silent pass. A document
    with the scenario apiVersion but a misspelt kind is a scenario too, so the typo is reported.
    """
    return isinstance(data, dict) and (data.get("kind") == "Scenario" or data.get("apiVersion") == SCENARIO_API_VERSION)


def nodes_for(manifests: list[Manifest]) -> ClusterConfig:
    """The default cluster, plus every node a pod of these manifests is pinned to.

    Choice: exported pod lists name their real nodes (``minikube``…). With a scenario the
    cluster is the scenario's, and a pod on an unknown node stays Pending; with plain
    manifests the cluster grows those nodes, so the manifests can be analysed as they are.
    """
    config = ClusterConfig()
    names = [n.name for n in config.nodes]
    for manifest in manifests:
        # not validated yet (that is the apply's job): any part may be of the wrong type
        spec = manifest.obj.get("spec")
        template = spec.get("template") if isinstance(spec, dict) else None
        for candidate in (spec, template.get("spec") if isinstance(template, dict) else None):
            node = candidate.get("nodeName") if isinstance(candidate, dict) else None
            if isinstance(node, str) and node and node not in names and _DNS1123_SUBDOMAIN.match(node):
                names.append(node)
    if len(names) == len(config.nodes):
        return config
    base = int(ipaddress.IPv4Address(config.nodes[-1].ip))
    nodes = [n.model_dump() for n in config.nodes]
    for k, name in enumerate(names[len(config.nodes) :], start=1):
        nodes.append({"name": name, "ip": str(ipaddress.IPv4Address(base + k))})
    return ClusterConfig.model_validate({"nodes": nodes})


def scenario_files(directory: Path) -> list[Path]:
    """The scenario files directly in a directory (``kind: Scenario``), in name order; empty
    when it holds none — then it is a directory of manifests (``vrsim run scenarios/article/``
    runs every scenario in it, ``vrsim run manifests/`` applies them)."""
    found = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml", ".json")):
        try:
            text = read_text(path)
            if path.suffix == ".json":
                documents = [m.obj for m in parse_manifest_text(text, str(path))]
            else:
                documents = [data for data, _ in parse_yaml_documents(text, str(path)) if data is not None]
        except InputError:
            continue  # not readable as a scenario: load_scenario of the directory reports it
        if any(is_scenario_document(d) for d in documents):
            found.append(path)
    return found


def load_scenario(path: str | Path, allow_outside: bool = False) -> Scenario:
    """A scenario file, or a plain manifest file/directory as a check-less scenario."""
    path = Path(path)
    if path.is_dir():
        manifests = load_paths([path])
        if not manifests:
            what = "no objects in its files" if manifest_files(path) else "no .yaml, .yml or .json file"
            raise InputError(f"nothing to apply: the directory holds {what}", file=str(path))
        return Scenario(name=path.name, file=str(path), cluster=nodes_for(manifests), steps=[ApplyStep(manifests, None, None)], strict_namespaces=False)
    text = read_text(path)
    file = STDIN_NAME if str(path) == STDIN else str(path)
    if file.endswith(".json"):
        manifests = parse_manifest_text(text, file)
        if len(manifests) == 1 and is_scenario_document(manifests[0].obj):
            return parse_scenario_data(manifests[0].obj, Source(file, 1), allow_outside)
        return _manifests_scenario(path, manifests)
    documents = [(data, node) for data, node in parse_yaml_documents(text, file) if data is not None]
    if any(is_scenario_document(data) for data, _ in documents):
        if len(documents) != 1:
            raise InputError("a scenario file holds exactly one YAML document", file=file)
        data, node = documents[0]
        return parse_scenario_data(data, Source(file, node.start_mark.line + 1, node), allow_outside)
    manifests = [m for data, node in documents for m in expand_object(data, Source(file, node.start_mark.line + 1, node))]
    return _manifests_scenario(path, manifests)


def _manifests_scenario(path: Path, manifests: list[Manifest]) -> Scenario:
    """A plain manifest file as a scenario; an empty one is refused, as by ``kubectl apply``
    (a run of nothing would pass and hide that the wrong file was given)."""
    if not manifests:
        raise InputError("nothing to apply: the file holds no objects", file=str(path))
    return Scenario(name=path.stem, file=str(path), cluster=nodes_for(manifests), steps=[ApplyStep(manifests, None, None)], strict_namespaces=False)
