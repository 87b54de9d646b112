"""``vrsim get`` the kubectl way: ``KIND[,KIND…] [NAME…]`` or ``KIND/NAME…``, ``-l`` selectors,
``--show-labels``, ``-o wide|json|yaml|name``; cluster-scoped kinds take no namespace.

Choice: a NAME that does not exist is a user mistake (exit 2, as every vrsim input error),
where kubectl answers ``NotFound`` with exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from controlplane.cluster import Cluster
from controlplane.errors import InputError
from controlplane.k8s.selectors import matches, parse_selector
from vrouter.cli.output import plain_table, print_json, print_table, print_yaml
from vrouter.views.listings import Listing, listing_for


@dataclass
class Request:
    kind: str
    names: list[str]


def requests(kinds: str, names: list[str]) -> list[Request]:
    """``pods,svc a b`` → one request per kind, each with the names; ``pod/a svc/b`` → per pair."""
    if "/" in kinds:
        out: dict[str, list[str]] = {}
        for arg in [kinds, *names]:
            kind, slash, name = arg.partition("/")
            if not slash or not kind or not name:
                raise InputError(f"{arg!r}: there is no need to give a kind when using KIND/NAME forms (write pod/a pod/b)", path="NAME")
            out.setdefault(kind, []).append(name)
        return [Request(k, v) for k, v in out.items()]
    parts = [k for k in kinds.split(",")]
    if not all(parts):
        raise InputError(f"{kinds!r}: an empty kind in the comma-separated list", path="KIND")
    if names and len(parts) > 1:
        raise InputError("names go with one kind (kubectl: get pods NAME); for several kinds write KIND/NAME", path="NAME")
    return [Request(k, list(names)) for k in parts]


def select(cluster: Cluster, request: Request, namespace: str | None, all_namespaces: bool, selector: str | None) -> Listing:
    """One kind's listing, narrowed to its names and selector."""
    scope = None if all_namespaces else (namespace or "default")
    listing = listing_for(cluster, request.kind, scope)
    if not listing.kubernetes and namespace is None:
        listing = listing_for(cluster, request.kind, None)  # TF objects: every project unless -n
    if request.names:
        names = listing.names()
        short = [n.rsplit(":", 1)[-1] for n in names]
        for wanted in request.names:
            if wanted not in names and wanted not in short:
                where = f" in namespace {scope}" if listing.kubernetes and listing.namespaced and scope else ""
                raise InputError(f'{listing.resource} "{wanted}" not found{where}', path="NAME")
        listing = listing.keep([n in request.names or s in request.names for n, s in zip(names, short, strict=True)])
    if selector is not None:
        if not listing.kubernetes:
            raise InputError(f"-l/--selector selects Kubernetes objects by label; {request.kind} are TF objects", path="--selector")
        try:
            wanted_labels = parse_selector(selector)
        except ValueError as exc:
            raise InputError(f"-l {selector!r}: {exc}", path="--selector") from None
        listing = listing.keep([matches(wanted_labels, (item.get("metadata") or {}).get("labels") or {}) for item in listing.items])
    return listing


def notes(listing: Listing) -> list[str]:
    """What a listing should say beside its table: admin policies are not realised by TF."""
    if listing.resource not in ("adminnetworkpolicy", "baselineadminnetworkpolicy"):
        return []
    return [f"{item['kind']} {item['metadata']['name']} is not realised by Tungsten Fabric (no TF code reads it): it counts in the intent view only (connlist --intent)" for item in listing.items]


def labels_text(item: dict) -> str:
    labels = (item.get("metadata") or {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def table(listing: Listing, wide: bool, show_labels: bool, with_namespace: bool, with_kind: bool) -> tuple[list[str], list[list[str]]]:
    """Columns and rows as kubectl prints them (NAMESPACE first with -A, kind/NAME for several kinds)."""
    columns = list(listing.columns)
    rows = [list(r) for r in listing.rows]
    if wide and listing.wide_columns:
        columns += listing.wide_columns
        rows = [r + w for r, w in zip(rows, listing.wide_rows, strict=True)]
    if show_labels and listing.kubernetes:
        columns.append("LABELS")
        rows = [r + [labels_text(item)] for r, item in zip(rows, listing.items, strict=True)]
    if with_kind:
        rows = [[f"{listing.resource}/{r[0]}", *r[1:]] for r in rows]
    if with_namespace:
        columns.insert(0, "NAMESPACE")
        rows = [[(item.get("metadata") or {}).get("namespace") or "", *r] for r, item in zip(rows, listing.items, strict=True)]
    return columns, rows


def show(listings: list[Listing], output: str, show_labels: bool, all_namespaces: bool, namespace: str | None) -> None:
    """Print the listings in one output format."""
    if output in ("json", "yaml"):
        if len(listings) == 1 and not listings[0].kubernetes:
            data: object = listings[0].items
        else:
            data = {"apiVersion": "v1", "kind": "List", "items": [item for l in listings for item in l.items]}
        (print_json if output == "json" else print_yaml)(data)
        return
    if output == "name":
        for listing in listings:
            for name in listing.names():
                typer.echo(f"{listing.resource}/{name}")
        return
    printed = False
    for listing in listings:
        if not listing.rows:
            continue
        if printed:
            typer.echo("")
        with_namespace = all_namespaces and listing.kubernetes and listing.namespaced
        columns, rows = table(listing, output == "wide", show_labels, with_namespace, len(listings) > 1)
        print_table(plain_table(columns, rows))
        printed = True
    if not printed:
        scoped = all(l.kubernetes and l.namespaced for l in listings) and not all_namespaces
        where = f" in {namespace or 'default'} namespace" if scoped else ""
        typer.echo(f"No resources found{where}.", err=True)
