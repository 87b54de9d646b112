"""Strict validation of manifests with the official Kubernetes client's models.

The ``kubernetes`` client (≥ 37) ships pydantic models that forbid unknown fields, so a
misspelt ``namespaceSelektor`` is an error with its field path instead of being dropped —
which for a NetworkPolicy would silently widen what it allows. Types are checked strictly
(a quoted ``port: "80"`` is an error, as the API server says too), except that timestamps
may be strings, as they are in every exported manifest.

Choice: a top-level ``status`` is not validated (the API server ignores it on create, and
exported manifests carry it). A container's ``name`` and ``image`` may be missing. The simulator runs no
container, and exported pod lists (the netpol-analyzer cases among them) often drop them;
every other required field is required.

On top of the schema, :func:`check_semantics` applies the API server's rules that matter to
networking: names, port ranges, protocols, CIDRs, selector operators.
"""

from __future__ import annotations

import difflib
import ast
import ipaddress
import json
import re
import typing
from collections.abc import Sequence
from typing import Any

import pydantic

from controlplane.k8s.api_models import api_models
from controlplane.k8s.leniency import forgive
from controlplane.inet import KUBERNETES_PROTOCOLS, not_ipv4
from controlplane.k8s.manifests import Manifest
from controlplane.tf.declared import TF_MODELS, parse_vn_ref

APPS_VERSIONS = ("apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1")

#: kind → (accepted apiVersions, model class name in kubernetes.client.models)
KUBERNETES_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "Namespace": (("v1",), "V1Namespace"),
    "Pod": (("v1",), "V1Pod"),
    "Service": (("v1",), "V1Service"),
    "Endpoints": (("v1",), "V1Endpoints"),
    "ReplicationController": (("v1",), "V1ReplicationController"),
    "Deployment": (APPS_VERSIONS, "V1Deployment"),
    "ReplicaSet": (APPS_VERSIONS, "V1ReplicaSet"),
    "DaemonSet": (APPS_VERSIONS, "V1DaemonSet"),
    "StatefulSet": (("apps/v1", "apps/v1beta1", "apps/v1beta2"), "V1StatefulSet"),
    "Job": (("batch/v1",), "V1Job"),
    "CronJob": (("batch/v1", "batch/v1beta1"), "V1CronJob"),
    "Ingress": (("networking.k8s.io/v1",), "V1Ingress"),
    "NetworkPolicy": (("networking.k8s.io/v1", "extensions/v1beta1"), "V1NetworkPolicy"),
    "EndpointSlice": (("discovery.k8s.io/v1",), "V1EndpointSlice"),
}

TF_API_VERSION = "vrsim.tf/v1"

CLUSTER_SCOPED = {"Namespace"}

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
#: pods one workload may ask for: the scale the simulator is measured at (10k pods), and a
#: bound on the work one number in a manifest can make (10**9 would never finish)
MAX_REPLICAS = 10_000
_TOLERATED_MISSING = {"name", "image"}


def model_for(kind: str) -> type[pydantic.BaseModel] | None:
    entry = KUBERNETES_KINDS.get(kind)
    return getattr(api_models(), entry[1]) if entry else None


def api_group(api_version: Any) -> str:
    """``networking.k8s.io/v1`` → ``networking.k8s.io``; the core group (``v1``) is ``""``."""
    text = str(api_version or "")
    return text.rsplit("/", 1)[0] if "/" in text else ""


def is_kubernetes_group(group: str) -> bool:
    """The API groups Kubernetes itself serves (core, apps, batch, extensions, ``*.k8s.io``…)."""
    return group in ("", "apps", "batch", "extensions", "policy", "autoscaling") or group.endswith(".k8s.io")


def is_supported(manifest: Manifest) -> bool:
    """True for the kinds the simulator acts on; the rest are ignored with a note.

    A kind is its group and name: Calico's ``projectcalico.org/v3`` NetworkPolicy is another
    API than Kubernetes' and is ignored like any CRD, while ``v1`` Deployment (a Kubernetes
    group, a wrong version) is an error. Every ``vrsim.tf`` object is ours and is validated.
    """
    group = api_group(manifest.obj.get("apiVersion"))
    if group == api_group(TF_API_VERSION):
        return True
    return manifest.kind in KUBERNETES_KINDS and is_kubernetes_group(group)


#: maps whose values are resource quantities, and quantity fields (the client types them str)
_QUANTITY_MAPS = {"limits", "requests", "overhead"}
_QUANTITY_FIELDS = {"sizeLimit"}


def _is_quantity(loc: Sequence[Any], value: Any) -> bool:
    """A number where a resource quantity goes (``cpu: 1``, ``cpu: 0.5``): the API server takes
    it, and manifests are full of it, so it must not be refused as "not a string"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (len(loc) >= 2 and loc[-2] in _QUANTITY_MAPS) or (bool(loc) and loc[-1] in _QUANTITY_FIELDS)


def _tolerated(error: Any) -> bool:
    loc = error["loc"]
    if error["type"] in ("datetime_type", "date_type", "datetime_parsing", "time_type"):
        return True
    if error["type"] == "string_type" and _is_quantity(loc, error.get("input")):
        return True
    return (
        error["type"] == "missing"
        and len(loc) >= 3
        and loc[-1] in _TOLERATED_MISSING
        and loc[-3] in ("containers", "initContainers", "ephemeralContainers")
    )


def _unwrap(annotation: Any) -> Any:
    """The model class inside Optional[...] / List[...] / Dict[str, ...], if any."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (list, dict, typing.Union) or str(origin).endswith("Annotated"):
            if not args:
                return None
            annotation = args[-1] if origin is dict else args[0]
        else:
            return annotation


def field_aliases(model: type[pydantic.BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The valid field names of the object at ``loc`` (for a did-you-mean hint)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
            return []
        found = None
        for name, info in current.model_fields.items():
            alias = info.serialization_alias or info.alias or name
            if alias == part or name == part:
                found = info.annotation
                break
        if found is None:
            return []
        current = _unwrap(found)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return [info.serialization_alias or info.alias or name for name, info in current.model_fields.items()]
    return []


def _describe(error: Any, model: type[pydantic.BaseModel]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        name = loc[-1]
        hint = ""
        close = difflib.get_close_matches(str(name), field_aliases(model, loc[:-1]), n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        return f"unknown field {name!r}{hint}"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        # our own validators' messages already name the value; keep their case ("IPv4", "VN")
        return str(error["ctx"]["error"])
    given = error.get("input")
    shown = repr(given) if not isinstance(given, (dict, list)) else type(given).__name__
    msg = error["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {shown}"


def _location(loc: Sequence[Any]) -> tuple[str | int, ...]:
    """Pydantic inserts union branch names and dict keys into ``loc``; keep the field path."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _owner_references(manifest: Manifest) -> None:
    """ownerReferences need apiVersion and uid (the API server refuses them without); exported
    manifests sometimes lack them. Leniently, they are filled in (they name the owner only)."""
    metadata = manifest.obj.get("metadata")
    refs = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    for i, ref in enumerate(refs if isinstance(refs, list) else ()):
        if not isinstance(ref, dict):
            continue  # the schema check names it
        missing = [key for key in ("apiVersion", "uid") if not ref.get(key)]
        if missing:
            error = manifest.error(f"ownerReference {ref.get('kind')}/{ref.get('name')} has no {' and no '.join(missing)}", ("metadata", "ownerReferences", i))
            if not forgive(error, "the owner is named by kind and name"):
                return  # the schema check says it in its own words
            if not ref.get("apiVersion"):
                ref["apiVersion"] = "v1"
            if not ref.get("uid"):
                ref["uid"] = f"lenient-{ref.get('kind')}-{ref.get('name')}"


def validate_schema(manifest: Manifest) -> None:
    """Check one Kubernetes object against its model; raise InputError on the first problem."""
    _owner_references(manifest)
    obj = manifest.obj
    kind = manifest.kind
    api_version = obj.get("apiVersion")
    versions, _ = KUBERNETES_KINDS[kind]
    if api_version not in versions:
        if kind == "Ingress" and api_version in ("extensions/v1beta1", "networking.k8s.io/v1beta1"):
            raise manifest.error(
                f"Ingress {api_version} was removed in Kubernetes 1.22; write it as networking.k8s.io/v1",
                ("apiVersion",),
            )
        raise manifest.error(
            f"no kind {kind!r} in version {api_version!r} (expected {' or '.join(versions)})", ("apiVersion",)
        )
    model = model_for(kind)
    assert model is not None
    if "status" in obj:
        # status is the server's to write and is ignored on create; exported manifests
        # carry it, sometimes with fields a newer schema dropped (NetworkPolicy's).
        obj = {k: v for k, v in obj.items() if k != "status"}
    try:
        model.model_validate(obj, strict=True)
    except pydantic.ValidationError as exc:
        errors = [e for e in exc.errors() if not _tolerated(e)]
        if errors:
            # A misspelt field also makes the field it stands for "missing"; the unknown
            # name is the one to show, at its own line, with the did-you-mean hint.
            first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            loc = _location(first["loc"])
            more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
            raise manifest.error(_describe(first, model) + more, loc) from None


# --- semantic rules of the API server that matter to networking ---------------------------


def _check_name(manifest: Manifest, value: Any, loc: tuple[str | int, ...], label: bool) -> None:
    pattern = _DNS1123_LABEL if label else _DNS1123_SUBDOMAIN
    limit = 63 if label else 253
    if not isinstance(value, str) or not value:
        raise manifest.error("a name is required", loc)
    if len(value) > limit or not pattern.match(value):
        kind = "DNS-1123 label" if label else "DNS-1123 subdomain"
        error = manifest.error(f"invalid name {value!r}: must be a {kind} (lower-case letters, digits and '-', at most {limit} characters)", loc)
        if not forgive(error):
            raise error


def _check_labels(manifest: Manifest, labels: Any, loc: tuple[str | int, ...]) -> None:
    if not labels:
        return
    for key, value in labels.items():
        name = key.split("/", 1)[-1]
        if not _LABEL_NAME.match(name) or len(name) > 63:
            raise manifest.error(f"invalid label key {key!r}", (*loc, key))
        if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
            raise manifest.error(f"invalid label value {value!r}", (*loc, key))


def _check_port_number(manifest: Manifest, value: Any, loc: tuple[str | int, ...], allow_name: bool) -> None:
    if isinstance(value, bool):
        raise manifest.error(f"port must be a number, got {value!r}", loc)
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise manifest.error(f"port {value} is outside 1-65535", loc)
        return
    if allow_name and isinstance(value, str):
        if len(value) > 15 or not _IANA_SVC_NAME.match(value):
            raise manifest.error(f"invalid port name {value!r}: must be an IANA service name", loc)
        return
    raise manifest.error(f"invalid port {value!r}", loc)


def _check_protocol(manifest: Manifest, value: Any, loc: tuple[str | int, ...]) -> None:
    if value is not None and value not in KUBERNETES_PROTOCOLS:
        raise manifest.error(f"unsupported protocol {value!r} (TCP, UDP or SCTP)", loc)


def check_selector(manifest: Manifest, selector: Any, loc: tuple[str | int, ...]) -> None:
    """matchLabels/matchExpressions as the API server validates them."""
    if not selector:
        return
    _check_labels(manifest, selector.get("matchLabels"), (*loc, "matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        where = (*loc, "matchExpressions", i)
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                raise manifest.error(f"operator {op} needs at least one value", (*where, "values"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise manifest.error(f"operator {op} takes no values", (*where, "values"))
        else:
            raise manifest.error(f"unknown operator {op!r} (In, NotIn, Exists or DoesNotExist)", (*where, "operator"))


def _check_cidr(manifest: Manifest, value: Any, loc: tuple[str | int, ...]) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise manifest.error(f"invalid CIDR {value!r}", loc) from None


def _check_pod_spec(manifest: Manifest, spec: Any, loc: tuple[str | int, ...]) -> None:
    if not spec:
        raise manifest.error("a pod spec is required", loc)
    for group in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(group) or []):
            names: set[str] = set()
            for j, port in enumerate(container.get("ports") or []):
                where = (*loc, group, i, "ports", j)
                _check_port_number(manifest, port.get("containerPort"), (*where, "containerPort"), allow_name=False)
                _check_protocol(manifest, port.get("protocol"), (*where, "protocol"))
                name = port.get("name")
                if name is not None:
                    _check_port_number(manifest, name, (*where, "name"), allow_name=True)
                    if name in names:
                        raise manifest.error(f"duplicate port name {name!r}", (*where, "name"))
                    names.add(name)


def _check_count(manifest: Manifest, value: Any, loc: tuple[str | int, ...]) -> None:
    """replicas, parallelism, completions: how many pods a workload makes."""
    if value is None:
        return
    if value < 0:
        raise manifest.error(f"{loc[-1]} cannot be negative", loc)
    if value > MAX_REPLICAS:
        raise manifest.error(f"{loc[-1]} {value} is more than the {MAX_REPLICAS} pods one workload may have", loc)


def _check_template(manifest: Manifest, spec: Any, loc: tuple[str | int, ...]) -> None:
    template = (spec or {}).get("template")
    if not template:
        raise manifest.error("a pod template is required", (*loc, "template"))
    _check_labels(manifest, (template.get("metadata") or {}).get("labels"), (*loc, "template", "metadata", "labels"))
    _check_pod_spec(manifest, template.get("spec"), (*loc, "template", "spec"))


def _check_service(manifest: Manifest, spec: Any) -> None:
    spec = spec or {}
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise manifest.error(f"unknown service type {svc_type!r}", ("spec", "type"))
    if svc_type == "ExternalName" and not spec.get("externalName"):
        raise manifest.error("an ExternalName service needs spec.externalName", ("spec", "externalName"))
    ports = spec.get("ports") or []
    if not ports and svc_type != "ExternalName" and spec.get("clusterIP") not in ("None",):
        raise manifest.error("a service needs at least one port", ("spec", "ports"))
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        where = ("spec", "ports", i)
        _check_port_number(manifest, port.get("port"), (*where, "port"), allow_name=False)
        _check_protocol(manifest, port.get("protocol"), (*where, "protocol"))
        if port.get("targetPort") is not None:
            _check_port_number(manifest, port.get("targetPort"), (*where, "targetPort"), allow_name=True)
        if port.get("nodePort") is not None:
            _check_port_number(manifest, port.get("nodePort"), (*where, "nodePort"), allow_name=False)
        if len(ports) > 1 and not port.get("name"):
            error = manifest.error("every port needs a name when a service has several", (*where, "name"))
            if not forgive(error):
                raise error
        key = (port.get("port"), port.get("protocol") or "TCP")
        if key in seen:
            raise manifest.error(f"duplicate port {key[0]}/{key[1]}", (*where, "port"))
        seen.add(key)
    cluster_ip = spec.get("clusterIP")
    if cluster_ip not in (None, "", "None"):
        try:
            ipaddress.IPv4Address(cluster_ip)
        except ValueError:
            raise manifest.error(f"invalid clusterIP: {not_ipv4(cluster_ip)}", ("spec", "clusterIP")) from None
    for field_name in ("externalIPs",):
        for i, ip in enumerate(spec.get(field_name) or []):
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise manifest.error(f"invalid IP address: {not_ipv4(ip)}", ("spec", field_name, i)) from None
    if spec.get("loadBalancerIP"):
        try:
            ipaddress.IPv4Address(spec["loadBalancerIP"])
        except ValueError:
            raise manifest.error(f"invalid IP address: {not_ipv4(spec['loadBalancerIP'])}", ("spec", "loadBalancerIP")) from None
    _check_labels(manifest, spec.get("selector"), ("spec", "selector"))


def _check_network_policy(manifest: Manifest, spec: Any) -> None:
    spec = spec or {}
    if spec.get("podSelector") is None:
        error = manifest.error("spec.podSelector is required (use {} for every pod)", ("spec", "podSelector"))
        if not forgive(error, "read as {}, every pod"):
            raise error
        if isinstance(manifest.obj.get("spec"), dict):
            manifest.obj["spec"]["podSelector"] = spec["podSelector"] = {}
    check_selector(manifest, spec.get("podSelector"), ("spec", "podSelector"))
    for i, ptype in enumerate(spec.get("policyTypes") or []):
        if ptype not in ("Ingress", "Egress"):
            raise manifest.error(f"unknown policy type {ptype!r} (Ingress or Egress)", ("spec", "policyTypes", i))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            base = ("spec", direction, i)
            for j, port in enumerate(rule.get("ports") or []):
                where = (*base, "ports", j)
                _check_protocol(manifest, port.get("protocol"), (*where, "protocol"))
                number = port.get("port")
                if number is not None:
                    _check_port_number(manifest, number, (*where, "port"), allow_name=True)
                end = port.get("endPort")
                if end is not None:
                    if not isinstance(number, int):
                        raise manifest.error("endPort needs a numeric port", (*where, "endPort"))
                    _check_port_number(manifest, end, (*where, "endPort"), allow_name=False)
                    if end < number:
                        raise manifest.error(f"endPort {end} is below port {number}", (*where, "endPort"))
            for j, peer in enumerate(rule.get(peers_key) or []):
                where = (*base, peers_key, j)
                block = peer.get("ipBlock")
                if block is not None:
                    if peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
                        raise manifest.error("ipBlock cannot be combined with a selector in one peer", where)
                    cidr = _check_cidr(manifest, block.get("cidr"), (*where, "ipBlock", "cidr"))
                    for k, exc in enumerate(block.get("except") or []):
                        sub = _check_cidr(manifest, exc, (*where, "ipBlock", "except", k))
                        if sub.version != cidr.version or not sub.subnet_of(cidr):  # type: ignore[arg-type]
                            raise manifest.error(f"except {exc} is not inside {cidr}", (*where, "ipBlock", "except", k))
                elif peer.get("podSelector") is None and peer.get("namespaceSelector") is None:
                    raise manifest.error("a peer needs podSelector, namespaceSelector or ipBlock", where)
                check_selector(manifest, peer.get("podSelector"), (*where, "podSelector"))
                check_selector(manifest, peer.get("namespaceSelector"), (*where, "namespaceSelector"))


def _check_ingress(manifest: Manifest, spec: Any) -> None:
    spec = spec or {}

    def backend(value: Any, loc: tuple[str | int, ...]) -> None:
        service = (value or {}).get("service")
        if not service:
            raise manifest.error("only service backends are supported", loc)
        port = service.get("port") or {}
        if port.get("number") is None and not port.get("name"):
            raise manifest.error("a backend service needs port.number or port.name", (*loc, "service", "port"))
        if port.get("number") is not None:
            _check_port_number(manifest, port["number"], (*loc, "service", "port", "number"), allow_name=False)

    if spec.get("defaultBackend"):
        backend(spec["defaultBackend"], ("spec", "defaultBackend"))
    for i, rule in enumerate(spec.get("rules") or []):
        for j, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
            where = ("spec", "rules", i, "http", "paths", j)
            if path.get("pathType") not in ("Exact", "Prefix", "ImplementationSpecific"):
                raise manifest.error("pathType must be Exact, Prefix or ImplementationSpecific", (*where, "pathType"))
            value = path.get("path", "/")
            if not str(value).startswith("/"):
                raise manifest.error(f"path {value!r} must start with '/'", (*where, "path"))
            backend(path.get("backend"), (*where, "backend"))


def check_semantics(manifest: Manifest) -> None:
    """The API server's validation rules beyond the schema, for the networking-relevant kinds."""
    obj = manifest.obj
    kind = manifest.kind
    meta = obj.get("metadata") or {}
    if not meta.get("name") and not meta.get("generateName"):
        raise manifest.error("metadata.name is required", ("metadata", "name"))
    if meta.get("name"):
        _check_name(manifest, meta["name"], ("metadata", "name"), label=kind in ("Namespace", "Service"))
    if meta.get("namespace") not in (None, ""):
        _check_name(manifest, meta["namespace"], ("metadata", "namespace"), label=True)
    _check_labels(manifest, meta.get("labels"), ("metadata", "labels"))
    spec = obj.get("spec")
    if kind == "Pod":
        _check_pod_spec(manifest, spec, ("spec",))
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController", "Job"):
        if kind != "ReplicationController" and kind != "Job":
            check_selector(manifest, (spec or {}).get("selector"), ("spec", "selector"))
        _check_template(manifest, spec, ("spec",))
        for key in ("replicas", "parallelism", "completions"):
            _check_count(manifest, (spec or {}).get(key), ("spec", key))
    elif kind == "CronJob":
        job_spec = ((spec or {}).get("jobTemplate") or {}).get("spec")
        _check_template(manifest, job_spec, ("spec", "jobTemplate", "spec"))
        for key in ("parallelism", "completions"):
            _check_count(manifest, (job_spec or {}).get(key), ("spec", "jobTemplate", "spec", key))
    elif kind == "Service":
        _check_service(manifest, spec)
    elif kind == "NetworkPolicy":
        _check_network_policy(manifest, spec)
    elif kind == "Ingress":
        _check_ingress(manifest, spec)


def validate_tf(manifest: Manifest) -> None:
    """A ``vrsim.tf/v1`` object against its schema."""
    model = TF_MODELS.get(manifest.kind)
    if model is None:
        raise manifest.error(
            f"unknown kind {manifest.kind!r} in {TF_API_VERSION} (expected {', '.join(TF_MODELS)})", ("kind",)
        )
    try:
        parsed = model.model_validate(manifest.obj)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        # as in validate_schema: a misspelt field is the problem, not the one it leaves missing
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        raise manifest.error(_describe(first, model), _location(first["loc"])) from None
    if manifest.kind == "NetworkPolicy":
        for i, rule in enumerate(parsed.spec.rules):  # type: ignore[attr-defined]
            for side in ("src", "dst"):
                value = getattr(rule, side)
                if value not in ("any", "local"):
                    try:
                        parse_vn_ref(value, "default-domain")
                    except ValueError as err:
                        raise manifest.error(str(err), ("spec", "rules", i, side)) from None
        for i, value in enumerate(parsed.spec.attachTo):  # type: ignore[attr-defined]
            try:
                parse_vn_ref(value, "default-domain")
            except ValueError as err:
                raise manifest.error(str(err), ("spec", "attachTo", i)) from None


def check_opencontrail_annotations(manifest: Manifest, tf_reading: bool = False) -> None:
    """kube-manager's annotations must hold the JSON it expects. In the tf reading (behaviour
    16) they are what kube-manager's code accepts: a Python literal dict (single quotes too),
    ``domain`` required in the network annotation, and any isolation value (not "true": off)."""
    notes = (manifest.obj.get("metadata") or {}).get("annotations") or {}
    required = {
        "opencontrail.org/network": ("project", "name"),
        "opencontrail.org/fip-pool": ("project", "network", "name"),
    }
    for key, fields_needed in required.items():
        if key not in notes:
            continue
        loc = ("metadata", "annotations", key)
        try:
            data = ast.literal_eval(str(notes[key])) if tf_reading else json.loads(notes[key])
        except (TypeError, ValueError, SyntaxError):
            shape = "a Python dict" if tf_reading else "JSON"
            raise manifest.error(f"must be {shape} like {{{', '.join(f'{f!r}: ...' for f in fields_needed)}}}", loc) from None
        if tf_reading and key == "opencontrail.org/network" and isinstance(data, dict) and not data.get("domain"):
            raise manifest.error("missing domain (kube-manager's get_vn_fq_name_from_dict_string needs it)", loc)
        if not isinstance(data, dict):
            raise manifest.error("must be a JSON object", loc)
        missing = [f for f in fields_needed if not isinstance(data.get(f), str) or not data.get(f)]
        if missing:
            raise manifest.error(f"missing {', '.join(missing)}", loc)
        unknown = set(data) - {"domain", *fields_needed}
        if unknown:
            raise manifest.error(f"unknown key {sorted(unknown)[0]!r}", loc)
    for key in ("opencontrail.org/isolation", "opencontrail.org/isolation.service"):
        if key in notes and str(notes[key]).lower() not in ("true", "false") and not tf_reading:
            raise manifest.error(f"must be \"true\" or \"false\", got {notes[key]!r}", ("metadata", "annotations", key))


def validate(manifest: Manifest, tf_reading: bool = False) -> None:
    """Schema then semantics: a supported Kubernetes kind or a ``vrsim.tf/v1`` object."""
    api_version = manifest.obj.get("apiVersion")
    if api_group(api_version) == api_group(TF_API_VERSION):
        if api_version != TF_API_VERSION:
            raise manifest.error(f"unknown version {api_version!r} (expected {TF_API_VERSION})", ("apiVersion",))
        validate_tf(manifest)
        return
    validate_schema(manifest)
    check_semantics(manifest)
    check_opencontrail_annotations(manifest, tf_reading)
