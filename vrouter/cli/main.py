"""The ``vrsim`` command.

Every command takes a scenario file (``-f``) or a plain manifest file or directory, which is
then a scenario with the default cluster and no checks. Exit codes: 0 success, 1 a check
failed, 2 invalid input (one message naming the file and the field).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from controlplane.errors import InputError
from vrouter.agent import CompiledNode
from vrouter.cli.output import plain_table, print_json, print_table, print_yaml, run_guarded, user_errors
from vrouter.sim import Simulation
from vrouter.views import vrouter_tools as views
from vrouter.views.listings import listing_for

app = typer.Typer(
    name="vrsim",
    help="Simulate Tungsten Fabric (Contrail) serving Kubernetes: what TF builds from your manifests, "
    "and what its vRouters do with traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class GetOutput(str, Enum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


ScenarioOption = Annotated[
    Path,
    typer.Option("-f", "--file", help="A scenario file, or a manifest file or directory.", show_default=False),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for names, ClusterIPs and flows.")]
AllowOutsideOption = Annotated[
    bool, typer.Option("--allow-outside", help="Let a scenario apply files outside its own folder.")
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vrsim {version('vrsim')}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Simulate Tungsten Fabric (Contrail) serving Kubernetes, without a cluster."""


@app.command()
def get(
    kind: Annotated[
        str,
        typer.Argument(
            help="pods, services, endpoints, ingresses, networkpolicies, events, namespaces, ... or a TF kind: "
            "projects, vns, ipams, policies, sgs, vms, vmis, iips, fips, fip-pools, lbs, listeners, pools, members, "
            "vrouters, tags, vrfs."
        ),
    ],
    file: ScenarioOption,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace", help="Only this namespace.")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces", help="Every namespace.")] = False,
    output: Annotated[GetOutput, typer.Option("-o", "--output", help="table, wide, json, yaml or name.")] = GetOutput.table,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """List objects after the scenario's apply/delete steps, like kubectl get."""
    as_json = output in (GetOutput.json, GetOutput.yaml)
    with user_errors(as_json):
        sim = Simulation.from_path(file, seed, allow_outside).build()
        scope = None if all_namespaces else (namespace or "default")
        listing = listing_for(sim.cluster, kind, scope)
        if not listing.kubernetes and namespace is None:
            listing = listing_for(sim.cluster, kind, None)
    if output == GetOutput.json:
        print_json({"apiVersion": "v1", "kind": "List", "items": listing.items} if listing.kubernetes else listing.items)
        return
    if output == GetOutput.yaml:
        print_yaml({"apiVersion": "v1", "kind": "List", "items": listing.items} if listing.kubernetes else listing.items)
        return
    if output == GetOutput.name:
        for row in listing.rows:
            typer.echo(f"{kind.lower()}/{row[0]}")
        return
    columns = list(listing.columns)
    rows = [list(r) for r in listing.rows]
    if output == GetOutput.wide and listing.wide_columns:
        columns += listing.wide_columns
        rows = [r + w for r, w in zip(rows, listing.wide_rows, strict=True)]
    if listing.kubernetes and scope is None and listing.items and kind.lower() not in ("namespaces", "namespace", "ns"):
        columns.insert(0, "NAMESPACE")
        for row, item in zip(rows, listing.items, strict=True):
            row.insert(0, (item.get("metadata") or {}).get("namespace") or "")
    if not rows:
        where = f" in {namespace or 'default'} namespace" if listing.kubernetes and scope else ""
        typer.echo(f"No resources found{where}.", err=True)
        return
    print_table(plain_table(columns, rows))


class VRouterTool(str, Enum):
    vif = "vif"
    rt = "rt"
    nh = "nh"
    mpls = "mpls"


def resolve_vrf(node: CompiledNode, vrf: str) -> int:
    """A VRF by number or by (part of) its VN's name."""
    if vrf.isdigit():
        return int(vrf)
    found = [i for i, name in node.vrf_names.items() if vrf in name]
    if len(found) == 1:
        return found[0]
    choices = ", ".join(f"{i} ({n})" for i, n in sorted(node.vrf_names.items()))
    what = "matches several VRFs" if found else "matches no VRF"
    raise InputError(f"--vrf {vrf!r} {what} on {node.name}; VRFs: {choices}")


@app.command()
def vrouter(
    node: Annotated[str, typer.Argument(help="The compute node (or fabric-gateway).")],
    tool: Annotated[VRouterTool, typer.Argument(help="vif (--list), rt (--dump), nh (--list/--get), mpls (--dump).")],
    file: ScenarioOption,
    vrf: Annotated[str | None, typer.Option("--vrf", help="rt: the VRF, by number or VN name.")] = None,
    nh_id: Annotated[int | None, typer.Option("--id", help="nh: one nexthop (nh --get).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of the tools' text.")] = False,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """What a node's vRouter holds, in the vRouter tools' layout (vif, rt, nh, mpls)."""
    with user_errors(as_json):
        sim = Simulation.from_path(file, seed, allow_outside).build()
        compiled = sim.node(node)
        if tool == VRouterTool.vif:
            text = views.vif_list(compiled)
            data: object = [views.vif_json(v) for v in compiled.vifs.values()]
        elif tool == VRouterTool.rt:
            if vrf is None:
                text = views.vrf_index(compiled)
                data = [{"vrf": i, "name": n} for i, n in sorted(compiled.vrf_names.items())]
            else:
                number = resolve_vrf(compiled, vrf)
                if number not in compiled.vrf_names:
                    raise InputError(f"VRF {number} does not exist on {node}; see vrsim vrouter {node} rt -f {file}")
                text = views.rt_dump(compiled, number)
                data = views.routes_json(compiled, number)
        elif tool == VRouterTool.nh:
            if nh_id is not None and nh_id not in compiled.nexthops:
                raise InputError(f"nexthop {nh_id} does not exist on {node}")
            ids = [nh_id] if nh_id is not None else None
            text = views.nh_list(compiled, ids)
            data = [views.nh_json(compiled, i) for i in (ids or sorted(compiled.nexthops))]
        else:
            text = views.mpls_dump(compiled)
            data = {"labels": {str(k): v for k, v in sorted(compiled.labels.items())}, "vnis": {str(k): v for k, v in sorted(compiled.vnis.items())}}
    if as_json:
        print_json(data)
    else:
        typer.echo(text.rstrip("\n"))


def main() -> None:
    """Console-script entry point."""
    run_guarded(app)


if __name__ == "__main__":
    main()
