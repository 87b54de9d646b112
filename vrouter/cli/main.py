"""The ``vrsim`` command.

Every command takes a scenario file (``-f``) or a plain manifest file or directory, which is
then a scenario with the default cluster and no checks. Exit codes: 0 success, 1 a check
failed, 2 invalid input (one message naming the file and the field).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.text import Text

from controlplane.errors import InputError
from vrouter.cli import captures, help_format  # noqa: F401  (help_format: flags show no <bool> in --help)
from vrouter.cli.captures import PcapOption
from vrouter.cli.diff import diff
from vrouter.cli.draw import draw
from vrouter.cli.options import (
    AllowOutsideOption,
    JsonFlag,
    LenientOption,
    OutputOption,
    Pick,
    PickOption,
    PortOption,
    QuietOption,
    SchedulerOption,
    ScenarioOption,
    SeedOption,
    SemanticsOption,
    SourceArgument,
    WorkersOption,
    forwarding,
    reading,
    reading_of,
    wants_json,
)
from vrouter.cli.compile_status import engine_note
from vrouter.cli.output import (
    boxed_table,
    check_output_directory,
    write_output,
    literal,
    fail,
    plain_table,
    print_json,
    print_table,
    run_guarded,
    stdout_console,
    user_errors,
)

# Each command imports what it needs when it runs: `vrsim --help` and `vrsim get` must not
# pay for numba, networkx and the kernels (design.md: a command that forwards nothing never
# imports numba).
if TYPE_CHECKING:
    from vrouter.agent import CompiledNode
    from vrouter.lab.checks import CheckResult
    from vrouter.lab.runner import ScenarioResult

app = typer.Typer(
    name="vrsim",
    help="Simulate Tungsten Fabric (Contrail) serving Kubernetes: what TF builds from your manifests, "
    "and what its vRouters do with traffic.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


class GetOutput(str, Enum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vrsim {version('vrsim')}")
        raise typer.Exit()


class EngineChoice(str, Enum):
    auto = "auto"
    compiled = "compiled"
    interpreted = "interpreted"


ENGINE_HELP = (
    "Which engine forwards packets: the compiled kernels, or the same kernels interpreted (no compile, "
    "a few thousand packets a second). auto: the first packets of a run are interpreted (quicker than "
    "loading the compiled kernels, and on a fresh install the kernels compile in the background "
    "meanwhile); larger runs go on compiled. Also VRSIM_ENGINE."
)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    engine: Annotated[EngineChoice | None, typer.Option("--engine", help=ENGINE_HELP, show_default=False)] = None,
) -> None:
    """Simulate Tungsten Fabric (Contrail) serving Kubernetes, without a cluster."""
    if engine is not None:
        os.environ["VRSIM_ENGINE"] = engine.value
    chosen = os.environ.get("VRSIM_ENGINE", "").strip().lower()
    if chosen and chosen not in EngineChoice.__members__:
        fail(InputError(f"VRSIM_ENGINE={chosen!r}: use {', '.join(EngineChoice.__members__)}"))


@app.command()
def get(
    kind: Annotated[
        str,
        typer.Argument(
            help="KIND[,KIND...] or KIND/NAME: pods, services, endpoints, ingresses, networkpolicies, events, namespaces, "
            "nodes, deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs, any kind you applied "
            "(serviceaccounts, configmaps...), or a TF kind: projects, vns, ipams, policies, sgs, vms, vmis, iips, fips, "
            "fip-pools, lbs, listeners, pools, members, vrouters, tags, vrfs, and in the tf reading aps, firewall-policies, "
            "firewall-rules, address-groups.",
            show_default=False,
            metavar="KIND",
        ),
    ],
    file: ScenarioOption,
    names: Annotated[list[str] | None, typer.Argument(help="Only these objects (or more KIND/NAME).", show_default=False, metavar="NAME")] = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace", help="Only this namespace (TF objects: this namespace's project).")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces", help="Every namespace.")] = False,
    selector: Annotated[
        str | None, typer.Option("-l", "--selector", help="Label selector: k=v, k==v, k!=v, 'k in (a,b)', 'k notin (a,b)', k, !k; comma = and.")
    ] = None,
    show_labels: Annotated[bool, typer.Option("--show-labels", help="A LABELS column.")] = False,
    output: Annotated[GetOutput, typer.Option("-o", "--output", help="table, wide, json, yaml or name.")] = GetOutput.table,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    lenient: LenientOption = False,
) -> None:
    """List objects after the scenario's apply/delete steps, like kubectl get."""
    from vrouter.cli.get import notes, requests, select, show
    from vrouter.cli.progress import use_progress
    from vrouter.lab.sim import Simulation

    reading_of(semantics)
    use_progress(quiet)
    as_json = output in (GetOutput.json, GetOutput.yaml)
    with user_errors(as_json):
        wanted = requests(kind, names or [])
        with reading(lenient):
            sim = Simulation.from_path(file, seed, allow_outside).build()
        listings = [select(sim.cluster, request, namespace, all_namespaces, selector) for request in wanted]
    for listing in listings:
        for note in notes(listing):
            typer.echo(f"note: {note}", err=True)
    show(listings, output.value, show_labels, all_namespaces, namespace)


class VRouterTool(str, Enum):
    vif = "vif"
    rt = "rt"
    nh = "nh"
    mpls = "mpls"
    flow = "flow"
    dropstats = "dropstats"


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
    node: Annotated[str, typer.Argument(help="The compute node (or fabric-gateway).", metavar="NODE")],
    tool: Annotated[
        VRouterTool,
        typer.Argument(help="vif (--list), rt (--dump), nh (--list/--get), mpls (--dump), flow (-l), dropstats.", metavar="TOOL"),
    ],
    file: ScenarioOption,
    value: Annotated[
        str | None, typer.Argument(help="As the tools take it: rt --dump VRF, nh --get ID, vif --get ID.", show_default=False, metavar="VALUE")
    ] = None,
    vrf: Annotated[str | None, typer.Option("--vrf", help="rt: the VRF, by number or VN name.")] = None,
    nh_id: Annotated[int | None, typer.Option("--id", help="nh: one nexthop (nh --get).")] = None,
    listing: Annotated[bool, typer.Option("--list", "-l", help="vif, nh, flow: list them all (the default).")] = False,
    dump: Annotated[bool, typer.Option("--dump", help="rt --dump VRF, mpls --dump (the tools' spelling).")] = False,
    get_one: Annotated[bool, typer.Option("--get", help="nh --get ID, vif --get ID: one of them.")] = False,
    family: Annotated[str, typer.Option("--family", help="rt: the address family; only inet (IPv4) is simulated.")] = "inet",
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of the tools' text (also -o json).")] = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
) -> None:
    """What a node's vRouter holds, in the vRouter tools' layout (vif, rt, nh, mpls), and —
    after the scenario's checks have run — its flows and drop counters (flow, dropstats).

    The tools' own forms work: vif --list, vif --get 3, rt --dump 1, nh --list, nh --get 13,
    flow -l, mpls --dump, dropstats.
    """
    from vrouter.lab.runner import run_scenario
    from vrouter.lab.sim import Simulation
    from vrouter.views import vrouter_tools as views

    as_json = wants_json(as_json, output)
    reading_of(semantics)
    forwarding(quiet)
    with user_errors(as_json):
        if family != "inet":
            raise InputError(f"--family {family}: only inet (IPv4) is simulated", path="--family")
        if value is not None:
            if tool == VRouterTool.rt:
                vrf = vrf or value
            elif tool in (VRouterTool.nh, VRouterTool.vif) and value.isdigit():
                nh_id = int(value)
            else:
                raise InputError(f"{tool.value} takes no {value!r} (rt --dump VRF, nh --get ID, vif --get ID)", path="VALUE")
        if tool == VRouterTool.vif and nh_id is not None and not get_one:
            raise InputError("vif: give one interface as --get ID", path="--id")
        sim = Simulation.from_path(file, seed, allow_outside)
        if tool in (VRouterTool.flow, VRouterTool.dropstats, VRouterTool.vif):
            run_scenario(sim)
        else:
            sim.build()
        compiled = sim.node(node)
        runtime = sim.fabric.runtimes[compiled.index]
        if tool == VRouterTool.vif:
            shown = compiled.vifs
            if nh_id is not None:
                if nh_id not in compiled.vifs:
                    raise InputError(f"vif0/{nh_id} does not exist on {node} (interfaces: {', '.join(str(i) for i in sorted(compiled.vifs))})", path="VALUE")
                shown = {nh_id: compiled.vifs[nh_id]}
            text = views.vif_list(compiled, views.vif_counters(runtime.counters, compiled), list(shown))
            data: object = [views.vif_json(v) for v in shown.values()]
        elif tool == VRouterTool.flow:
            text = views.flow_list(compiled, runtime.flows, sim.agents.book)
            data = views.flow_rows(compiled, runtime.flows, sim.agents.book)
        elif tool == VRouterTool.dropstats:
            text = views.dropstats(runtime.counters)
            data = sim.fabric.drop_counters()[compiled.name]
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


# --- run -------------------------------------------------------------------------------


def _observed_text(check: CheckResult, why: bool = True) -> str:
    o = check.observed
    if o.get("unrealised"):
        text = f"nothing sent: {o['unrealised']}"
    else:
        text = f"{o['received']}/{o['sent']} answered"
    if o.get("refusedFlows"):
        text += f", {o['refusedFlows']} refused"
    if o.get("backends"):
        text += " · " + ", ".join(f"{k.split('/')[-1]}:{v}" for k, v in o["backends"].items())
    if o.get("via"):
        text += f" · via {o['via']}"
    if o.get("imbalance") is not None:
        text += f" · imbalance {o['imbalance']:.3f}"
    if o.get("kept") is not None:
        text += f" · kept {o['kept']}, moved {o['moved']}, strayed {o['strayed']}"
    if o.get("note"):
        text += f" · {o['note']}"
    if why and check.why:
        text += f" — {check.why}"
    return text


def print_scenario(result: ScenarioResult) -> None:
    table = boxed_table(f"{result.name}  ({result.file})", ["#", "check", "from", "to", "expected", "observed", "verdict", "drop reason"], wrapping=("expected", "observed"))
    for check in result.checks:
        verdict = Text("PASS", style="green") if check.passed else Text("FAIL", style="bold red")
        drop = check.observed.get("dropReason") or ""
        if drop and check.observed.get("dropNode"):
            drop += f" @ {check.observed['dropNode']}"
        table.add_row(*map(literal, (check.step, check.kind, check.source, check.target, check.expected, _observed_text(check), verdict, drop)))
    print_table(table)
    console = stdout_console()
    counters = result.counters()
    passed = sum(c.passed for c in result.checks)
    drops = ", ".join(f"{k} {v}" for k, v in counters["dropsByReason"].items()) or "none"
    console.print(
        f"{'[green]passed[/green]' if result.passed else '[bold red]FAILED[/bold red]'}: {passed}/{len(result.checks)} checks · "
        f"packets injected {counters['injected']}, delivered {counters['delivered']}, dropped {counters['dropped']} "
        f"(drops: {drops}) · flow setups {counters['flowSetups']}"
        + (f" · {note}" if (note := engine_note(result.engine)) else "")
    )
    console.print()


@app.command()
def run(
    scenarios: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario files, directories of them (run in name order), or manifest files/directories.", show_default=False, metavar="SCENARIO"),
    ] = None,
    files: Annotated[list[Path] | None, typer.Option("-f", "--file", help="A scenario (or manifests) to run, as the other commands take it; repeatable.", show_default=False, metavar="PATH")] = None,
    as_json: JsonFlag = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) on warnings too: ignored kinds, a scenario with no checks. For CI guards.")
    ] = False,
    pcap: PcapOption = None,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Draw each connect check's flows per backend (the ECMP spread) as a PNG in DIR (needs the plot extra: matplotlib).", metavar="DIR", show_default=False),
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Run scenarios: apply their manifests, run their checks through the dataplane, judge them.

    Exit code 0 when every check passes, 1 when a check fails (or, with --strict, on a
    warning), 2 for invalid input.
    """
    as_json = wants_json(as_json, output)
    from vrouter.lab.parallel import dask_client, run_scenarios
    from vrouter.lab.runner import run_scenario
    from vrouter.lab.scenario import scenario_files
    from vrouter.lab.sim import Simulation

    reading_of(semantics)
    forwarding(quiet)
    results = []
    with user_errors(as_json):
        given = [*(scenarios or []), *(files or [])]
        if not given:
            raise InputError("nothing to run: give scenario files or folders (vrsim run SCENARIO… or -f SCENARIO)", path="SCENARIO")
        paths = [found for path in given for found in ((path.is_dir() and scenario_files(path)) or [path])]
        check_output_directory(pcap, "--pcap")
        check_output_directory(plots, "--plots")
        if plots is not None:
            from vrouter.views.plots import require_matplotlib

            require_matplotlib("--plots")
        if pcap is not None and (workers or scheduler):
            raise InputError("--pcap records on this machine: run without --workers/--scheduler to capture", path="--pcap")
        with dask_client(workers, scheduler) as client:
            if client is not None:  # one task per scenario file
                results = run_scenarios(client, paths, seed, allow_outside)
            for path in paths if client is None else ():
                sim = Simulation.from_path(path, seed, allow_outside)
                captures.record(sim, pcap)
                results.append(run_scenario(sim))
                if pcap is not None:  # one folder per scenario when there are several
                    captures.write(sim, pcap if len(paths) == 1 else pcap / Path(path).stem, quiet)
    warned = False
    for result in results:
        for note in result.notes:  # kinds vrsim does not simulate (Istio's, a CRD …), namespaces it made
            typer.echo(f"note: {note}", err=True)
            warned |= " ignored (" in note  # a kind nothing simulates; created namespaces are no warning
        if not result.checks:  # passing with nothing checked would hide the wrong file
            typer.echo(f"note: {result.file}: no checks ran (the scenario only applies objects)", err=True)
            warned = True
    if plots is not None:
        _plot_spreads(results, plots, quiet)
    passed = all(r.passed for r in results)
    if strict and warned and passed:
        typer.echo("error: --strict: the run has warnings (see the notes above)", err=True)
    if as_json:
        print_json({"scenarios": [r.to_json() for r in results], "passed": passed})
    else:
        for result in results:
            print_scenario(result)
        if len(results) > 1:
            stdout_console().print(f"{sum(r.passed for r in results)}/{len(results)} scenarios passed")
    raise typer.Exit(0 if passed and not (strict and warned) else 1)


def _plot_spreads(results: list[ScenarioResult], directory: Path, quiet: bool) -> None:
    """One chart per connect check that reached backends: ``<scenario>-step<N>.png``."""
    from vrouter.views.plots import ecmp_spread

    directory.mkdir(parents=True, exist_ok=True)
    drawn = 0
    for result in results:
        for check in result.checks:
            if check.kind == "connect" and check.observed.get("backends"):
                path = directory / f"{Path(result.file).stem}-step{check.step}.png"
                ecmp_spread(check, path)
                drawn += 1
                if not quiet:
                    typer.echo(f"plot: {path}", err=True)
    if not drawn and not quiet:
        typer.echo("plot: no connect check reached a backend; nothing drawn", err=True)


def _one_off(file: Path, seed: int, allow_outside: bool, as_json: bool, kind: str, spec: dict, quiet: bool = False, pcap: Path | None = None) -> None:
    from vrouter.lab.checks import run_check
    from vrouter.lab.scenario import parse_check
    from vrouter.lab.runner import engine_text
    from vrouter.lab.sim import Simulation

    forwarding(quiet)
    with user_errors(as_json):
        check_output_directory(pcap, "--pcap")
        sim = Simulation.from_path(file, seed, allow_outside).build()
        step = parse_check(kind, spec)
        captures.record(sim, pcap)
        try:
            result = run_check(sim, step)
        except InputError as exc:  # about an argument: `<command line>: ping.to: no pod default/x`
            raise (exc.under(kind).located(file="<command line>") if exc.file is None else exc) from None
    engine = engine_text(result.engines)
    if as_json:
        print_json(result.to_json() | {"counters": result.counters, "engine": engine})
    else:
        o = result.observed
        if o["reachable"]:
            state = "[green]reachable[/green]"
        else:
            state = "[bold yellow]refused[/bold yellow]" if o.get("refused") else "[bold red]unreachable[/bold red]"
        line = f"{kind} {escape(result.source)} → {escape(result.target)}: {state}, {escape(_observed_text(result, why=False))}"
        if o.get("refused"):
            line += f"; {escape(o['refusedBy'])}"
        if not o["reachable"] and o.get("dropReason") and not o.get("unrealised"):
            line += escape(f"; dropped ({o['dropReason']})" + (f" on {o['dropNode']}" if o.get("dropNode") else ""))
        if note := engine_note(engine):
            line += f" · {note}"
        stdout_console().print(line)
    captures.write(sim, pcap, quiet)
    raise typer.Exit(0 if result.observed["reachable"] else 1)


@app.command()
def ping(
    source: SourceArgument,
    target: Annotated[str, typer.Argument(help="ns/pod, deployment/ns/name, service/ns/name, node/NAME, external, an address, ...", metavar="TARGET")],
    file: ScenarioOption,
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=100_000, help="Echo requests.")] = 3,
    as_json: JsonFlag = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    pick: PickOption = Pick.first,
    pcap: PcapOption = None,
) -> None:
    """Ping once, ad hoc, after the scenario's apply/delete steps. Exit 0 reachable, 1 not."""
    as_json = wants_json(as_json, output)
    reading_of(semantics)
    _one_off(file, seed, allow_outside, as_json, "ping", {"from": source, "to": target, "count": count, "pick": pick.value}, quiet, pcap)


@app.command()
def connect(
    source: SourceArgument,
    target: Annotated[str, typer.Argument(help="service/ns/name, ns/pod, deployment/ns/name, node/NAME:NODEPORT, ADDRESS:PORT, ...", metavar="TARGET")],
    file: ScenarioOption,
    port: PortOption = None,
    proto: Annotated[str, typer.Option("--proto", help="tcp, udp or sctp.")] = "tcp",
    flows: Annotated[int, typer.Option("--flows", min=1, max=64_512, help="Connections, each from its own source port (at most 64,512: ports 1024-65535).")] = 1,
    as_json: JsonFlag = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    pick: PickOption = Pick.first,
    pcap: PcapOption = None,
) -> None:
    """TCP handshakes (or UDP exchanges), ad hoc; shows which backends answered.

    Exit 0 when every flow completed, 1 when not (dropped or refused by a closed port).
    """
    as_json = wants_json(as_json, output)
    spec = {"from": source, "to": target, "protocol": proto.upper(), "flows": flows, "pick": pick.value}
    if port is not None:
        spec["port"] = port
    reading_of(semantics)
    _one_off(file, seed, allow_outside, as_json, "connect", spec, quiet, pcap)


@app.command()
def http(
    source: Annotated[str, typer.Argument(help="ns/pod, node/NAME, external or fabric:IP.", metavar="SOURCE")],
    target: Annotated[str, typer.Argument(help="ingress/ns/name, service/ns/name or ADDRESS:PORT.", metavar="TARGET")],
    file: ScenarioOption,
    host: Annotated[str | None, typer.Option("--host", help="The Host header.")] = None,
    path: Annotated[str, typer.Option("--path", help="The request path.")] = "/",
    requests: Annotated[int, typer.Option("--requests", min=1, max=64_512, help="Requests, each on its own connection (at most 64,512: one per source port).")] = 1,
    as_json: JsonFlag = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    pcap: PcapOption = None,
) -> None:
    """An HTTP request through an Ingress (Host/path pick the service), ad hoc."""
    as_json = wants_json(as_json, output)
    spec = {"from": source, "to": target, "path": path, "requests": requests}
    if host is not None:
        spec["host"] = host
    reading_of(semantics)
    _one_off(file, seed, allow_outside, as_json, "http", spec, quiet, pcap)


# --- reach -----------------------------------------------------------------------------


class ReachOutput(str, Enum):
    table = "table"
    json = "json"


@app.command()
def reach(
    file: ScenarioOption,
    port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535, help="Probe this port (default: ping).")] = None,
    proto: Annotated[str, typer.Option("--proto", help="icmp, tcp, udp or sctp (default: icmp, or tcp with --port).")] = "",
    namespace: Annotated[str | None, typer.Option("-n", "--namespace", help="Only the pods of this namespace.")] = None,
    output: Annotated[ReachOutput, typer.Option("-o", "--output", help="table or json (--json is the same as -o json).")] = ReachOutput.table,
    as_json: JsonFlag = False,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    lenient: LenientOption = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the matrix as a heat map into FILE (.png, .svg or .pdf; needs the plot extra: matplotlib).", metavar="FILE", show_default=False),
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Pod × pod reachability measured by sending packets ('.' reachable, 'X' not)."""
    from vrouter.lab.parallel import dask_client
    from vrouter.lab.reach import reachability
    from vrouter.lab.sim import Simulation

    reading_of(semantics)
    forwarding(quiet)
    as_json = as_json or output == ReachOutput.json
    with user_errors(as_json):
        if plot is not None:
            from vrouter.views.plots import require_matplotlib, suffix_checked

            require_matplotlib()
            suffix_checked(plot, "--plot")
        with reading(lenient):
            sim = Simulation.from_path(file, seed, allow_outside).build()
        chosen = (proto or ("tcp" if port else "icmp")).lower()
        if chosen not in ("icmp", "tcp", "udp", "sctp"):
            raise InputError(f"--proto {proto!r}: use icmp, tcp, udp or sctp")
        pods = None
        if namespace is not None:
            pods = sorted(
                f"{namespace}/{p['metadata']['name']}"
                for p in sim.cluster.store.list("Pod", namespace)
                if (p.get("status") or {}).get("podIP") and not (p.get("spec") or {}).get("hostNetwork")
            )
        with dask_client(workers, scheduler) as client:
            result = reachability(sim, chosen, port, pods, client)
        if plot is not None:
            from vrouter.views.plots import reach_heatmap

            try:
                reach_heatmap(result, plot)
            except OSError as exc:
                raise InputError(f"--plot {plot}: {exc.strerror or exc}", path="--plot") from None
            if not quiet:
                typer.echo(f"plot: {plot}", err=True)
    engine = "+".join(sim.fabric.engines) or "none"
    if as_json:
        print_json(result.to_json() | {"engine": engine})
        return
    if note := engine_note(engine):
        typer.echo(f"note: {note}", err=True)
    header, rows = result.rows()
    console = stdout_console()
    console.print(f"reachability: {result.protocol}{'/' + str(result.port) if result.port else ''} (rows: from, columns: to)")
    print_table(plain_table(header, rows))
    if len(result.pods) > 20:
        console.print(escape("\n".join(f"{i}: {name}" for i, name in enumerate(result.pods))), highlight=False)
    console.print(f"{int(result.matrix.sum()) - len(result.pods)}/{len(result.pods) * (len(result.pods) - 1)} pairs reachable")


# --- trace -----------------------------------------------------------------------------


@app.command()
def trace(
    source: SourceArgument,
    target: Annotated[str, typer.Argument(help="ns/pod, service/ns/name, node/NAME, external, ADDRESS[:PORT], ...", metavar="TARGET")],
    file: ScenarioOption,
    port: PortOption = None,
    proto: Annotated[str, typer.Option("--proto", help="icmp, tcp, udp or sctp (default: icmp, or tcp with a port).")] = "",
    as_json: JsonFlag = False,
    output: OutputOption = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    pcap: PcapOption = None,
) -> None:
    """The path of one packet and its reply, stage by stage, on every node it crosses."""
    as_json = wants_json(as_json, output)
    from vrouter.views.trace import trace_conversation
    from vrouter.lab.runner import engine_text
    from vrouter.lab.sim import Simulation

    reading_of(semantics)
    forwarding(quiet)
    with user_errors(as_json):
        check_output_directory(pcap, "--pcap")
        sim = Simulation.from_path(file, seed, allow_outside).build()
        chosen = (proto or ("tcp" if port or ":" in target.removeprefix("fabric:") or target.startswith("service/") else "icmp")).lower()
        if chosen not in ("icmp", "tcp", "udp", "sctp"):
            raise InputError(f"--proto {proto!r}: use icmp, tcp, udp or sctp")
        captures.record(sim, pcap)
        phases = trace_conversation(sim, source, target, chosen, port)
    engine = engine_text(phase["engine"] for phase in phases)
    if as_json:
        print_json({"from": source, "to": target, "protocol": chosen, "phases": phases, "engine": engine})
        captures.write(sim, pcap, quiet)
        return
    console = stdout_console()
    for phase in phases:
        console.print(f"[bold]{escape(phase['name'])}[/bold]  {escape(phase['header'])}")
        current = None
        for line in phase["events"]:
            if line["node"] != current:
                current = line["node"]
                console.print(f"  [cyan]{escape(current)}[/cyan]")
            console.print(escape(f"    {line['stage']:<15} {line['text']}"), highlight=False)
        console.print(escape(f"  → {phase['outcome']}"))
        console.print()
    if note := engine_note(engine):
        console.print(note, highlight=False)
    captures.write(sim, pcap, quiet)


# --- connlist ---------------------------------------------------------------------------


class ConnlistOutput(str, Enum):
    txt = "txt"
    json = "json"
    csv = "csv"
    md = "md"
    dot = "dot"


@app.command()
def connlist(
    file: Annotated[
        Path | None,
        typer.Option("-f", "--dirpath", help="A scenario file, or a manifest file or directory (netpol-analyzer's --dirpath).", show_default=False),
    ] = None,
    output: Annotated[ConnlistOutput, typer.Option("-o", "--output", help="txt, json, csv, md or dot (netpol-analyzer's formats).")] = ConnlistOutput.txt,
    out_file: Annotated[
        Path | None, typer.Option("--file", help="Write the output to this file (netpol-analyzer's --file); -f stays the input.", show_default=False)
    ] = None,
    intent: Annotated[
        bool, typer.Option("--intent", help="What Kubernetes says is allowed (NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Ingress exposure), evaluated, not measured: netpol-analyzer's reading.")
    ] = False,
    focus: Annotated[
        list[str] | None,
        typer.Option("--focusworkload", help="Only connections of these workloads (name or ns/name; comma-separated or repeated).", show_default=False, metavar="WORKLOAD"),
    ] = None,
    ipblock_selects_pods: Annotated[
        bool, typer.Option("--ipblock-selects-pods", help="An ipBlock matches pod addresses too, as in TF (address groups) and the upstream e2e suite. The default.")
    ] = False,
    ipblock_not_pods: Annotated[
        bool, typer.Option("--no-ipblock-selects-pods", help="An ipBlock never matches a pod, as netpol-analyzer reads it.")
    ] = False,
    host_network_as_pods: Annotated[
        bool, typer.Option("--host-network-as-pods", help="A hostNetwork pod is an ordinary pod that policies select (netpol-analyzer).")
    ] = False,
    host_network_as_nodes: Annotated[
        bool, typer.Option("--host-network-as-nodes", help="A hostNetwork pod is its node's host stack, which no NetworkPolicy restricts (TF). The default.")
    ] = False,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    lenient: LenientOption = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Allowed connections between workloads and outside ranges, in netpol-analyzer's form.

    Measured by sending packets through the dataplane: one line per pair, in netpol-analyzer's
    formats.

    Each protocol's ports are cut at every boundary the policies name, and the outside address space at every ipBlock bound; one conversation (TCP handshake, or UDP/SCTP request and answer) per piece between every ordered pair. An outside range lying wholly inside cluster addresses cannot be probed and is left out (a note on stderr says so).

    The two readings of ipBlock differ only between pods: with --ipblock-selects-pods (TF, the default) an ipBlock that covers pod addresses admits those pods too (and its except list leaves them out); with --no-ipblock-selects-pods (netpol-analyzer) only pod and namespace selectors ever match a pod. Lines with outside ranges are the same in both.
    """
    from vrouter.lab.connlist import connlist as measure_connlist
    from vrouter.lab.connlist import load
    from vrouter.lab.parallel import dask_client

    reading_of(semantics)
    forwarding(quiet)
    as_json = output == ConnlistOutput.json
    with user_errors(as_json):
        if file is None:
            raise InputError("connlist needs its input: -f (or --dirpath) a scenario, manifest file or directory", path="--dirpath")
        for yes, no, names in ((ipblock_selects_pods, ipblock_not_pods, "--ipblock-selects-pods and --no-ipblock-selects-pods"), (host_network_as_pods, host_network_as_nodes, "--host-network-as-pods and --host-network-as-nodes")):
            if yes and no:
                raise InputError(f"{names} contradict each other: give one", path=names.split()[0])
        with reading(lenient):
            sim = load(file, seed, allow_outside, not ipblock_not_pods, host_network_as_pods or intent)
        with dask_client(None if intent else workers, None if intent else scheduler) as client:  # the intent view sends nothing
            result = measure_connlist(sim, intent=intent, client=client)
        if focus:
            result = result.focused([name for item in focus for name in item.split(",") if name])
        text = result.render(output.value)
        if out_file is not None:
            write_output(out_file, text)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if note := engine_note("+".join(sim.fabric.engines) or "none"):
        typer.echo(f"note: {note}", err=True)
    if out_file is None:
        typer.echo(text, nl=False)


class View(str, Enum):
    intent = "intent"
    article = "article"
    tf = "tf"


class DivergeOutput(str, Enum):
    txt = "txt"
    json = "json"
    csv = "csv"
    md = "md"


@app.command()
def diverge(
    file: Annotated[Path, typer.Option("-f", "--dirpath", help="A scenario file, or a manifest file or directory.", show_default=False)],
    first: Annotated[View, typer.Option("--from", help="The view to hold against the other: a measured one (tf, article) or intent.")] = View.tf,
    second: Annotated[View, typer.Option("--to", help="The other view.")] = View.intent,
    output: Annotated[DivergeOutput, typer.Option("-o", "--output", help="txt, json, csv or md.")] = DivergeOutput.txt,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    lenient: LenientOption = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Where two views of the cluster disagree, and which behaviour explains each difference.

    Views: intent (what Kubernetes says: NetworkPolicy, AdminNetworkPolicy, Ingress), article (TF
    as the article describes it, measured) and tf (TF as tf-controller's code does it, measured).
    Each difference names its cause, found by removing each candidate alone and measuring again
    (spec/tf-semantics.md). Exit 0 when the views agree, 1 when they differ, 2 for bad input — a CI
    guard for a repository of manifests.
    """
    from vrouter.lab.diverge import diverge as compare
    from vrouter.lab.parallel import dask_client

    forwarding(quiet)
    as_json = output == DivergeOutput.json
    with user_errors(as_json):
        if first == second:
            raise InputError(f"--from and --to are both {first.value}: nothing to compare", path="--to")
        with reading(lenient), dask_client(workers, scheduler) as client:
            report = compare(file, first.value, second.value, seed, allow_outside, client)
    typer.echo(report.render(output.value), nl=False)
    if not report.divergences and output == DivergeOutput.txt:
        typer.echo(f"note: {first.value} and {second.value} agree on every connection", err=True)
    raise typer.Exit(1 if report.divergences else 0)


# --- warmup ----------------------------------------------------------------------------


@app.command()
def warmup(
    force: Annotated[bool, typer.Option("--force", help="Throw the compiled kernels away and compile them again.")] = False,
    as_json: JsonFlag = False,
    output: OutputOption = None,
) -> None:
    """Compile the forwarding kernels now, once per install.

    For images, CI or a lab's machines: later commands start compiled at once. Says how
    long it took.

    The kernels are kept in VRSIM_CACHE_DIR (else NUMBA_CACHE_DIR, else ~/.cache/vrsim), under a
    directory named after a hash of the kernel sources: a change to the dataplane compiles afresh.
    """
    as_json = wants_json(as_json, output)
    import time

    from vrouter.dataplane import background_compile
    from vrouter.dataplane.kernel_cache import forget_kernels, kernel_directory, kernels_ready
    from vrouter.warmup import ready_stamp

    forwarding(quiet=False)
    if force:
        forget_kernels()
    already = kernels_ready()
    start = time.perf_counter()
    background_compile.wait()
    seconds = time.perf_counter() - start
    stamp = ready_stamp()
    if as_json:
        print_json({"cacheDirectory": str(kernel_directory()), "alreadyCompiled": already, "seconds": round(seconds, 1), **stamp})
    elif already:
        typer.echo(f"the forwarding kernels are compiled already ({stamp.get('compileSeconds', 'unknown')} s on {stamp.get('compiledAt', 'an unknown date')}) in {kernel_directory()}")
    else:
        typer.echo(f"compiled the forwarding kernels in {seconds:.1f} s into {kernel_directory()}")


# --- bench -----------------------------------------------------------------------------


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Every figure on smaller sizes (under a minute).")] = False,
    flows: Annotated[int | None, typer.Option("--flows", min=100, max=20_000_000, help="Established flows (fast path).")] = None,
    packets: Annotated[int | None, typer.Option("--packets", min=1000, max=50_000_000, help="Packets per timed batch.")] = None,
    backends: Annotated[int | None, typer.Option("--backends", min=1, max=1000, help="Service backends (ECMP members).")] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", min=1, max=64, help="Compute nodes.")] = None,
    vrfs: Annotated[int | None, typer.Option("--vrfs", min=1, max=100_000, help="VRFs the LPM routes are spread over.")] = None,
    routes: Annotated[int | None, typer.Option("--routes", min=1, max=20_000_000, help="Routes in the LPM figure.")] = None,
    rules: Annotated[int | None, typer.Option("--rules", min=1, max=100_000, help="NetworkPolicy rules in force for flow setups.")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, max=64, help="Also measure this many nodes in parallel threads.")] = 1,
    seed: SeedOption = 0,
    as_json: JsonFlag = False,
    output: OutputOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a chart of packets/s against active flows (PNG).")] = None,
    startup: Annotated[
        bool, typer.Option("--startup", help="Instead: how soon vrsim answers (--help, get, first and warm run, trace, compile), each in a fresh process with an empty cache (about a minute).")
    ] = False,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="With --startup: the scenario to run and trace (default: the article's namespace-isolation).", show_default=False)
    ] = None,
) -> None:
    """Benchmark the forwarding core (packets/s, flow setups/s, LPM, ECMP balance).

    The same input also goes through the plain-Python reference and is held against the
    machine's memory ceiling. With --startup, the waits a new user meets instead.
    """
    as_json = wants_json(as_json, output)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if startup:
        _startup_bench(scenario, as_json)
        return
    from vrouter.bench import Bench, BenchSettings, plot_curve, settings_dict
    from vrouter.views.plots import require_matplotlib

    if plot is not None:
        with user_errors(as_json):
            require_matplotlib()
    changes = {k: v for k, v in dict(flows=flows, packets=packets, backends=backends, nodes=nodes, vrfs=vrfs, routes=routes, rules=rules).items() if v is not None}
    settings = BenchSettings.quick(**changes) if quick else BenchSettings(**changes)
    settings.threads = threads
    settings.seed = seed
    if settings.nodes < 1 or settings.hot_flows > settings.flows:
        settings.hot_flows = min(settings.hot_flows, settings.flows)
    console = stdout_console() if not as_json else None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True, disable=as_json, console=console) as progress:
        task = progress.add_task("starting", total=None)
        result = Bench(settings, step=lambda name: progress.update(task, description=name)).run(plot=plot is not None)
    if plot is not None:
        plot_curve(result.curve, str(plot))
    if as_json:
        print_json({**result.numbers, "settings": settings_dict(settings), "curve": result.curve})
        return
    print_figures("vrsim bench (one core unless stated)", result.figures)
    n = result.numbers
    console = stdout_console()
    console.print(
        f"fast path: {n['fast_path_ns_per_packet']} ns/packet · {n['fast_path_to_memory_ceiling']:.2f} of the memory ceiling · "
        f"{n['speedup_vs_reference']:.0f}× the plain-Python reference · kernels compiled in {n['compile_seconds']} s"
    )
    if plot is not None:
        console.print(f"chart written to {plot}")


def print_figures(title: str, figures: list) -> None:
    """A benchmark's figures as one table: value, unit, target and whether it was met."""
    table = boxed_table(title, ["figure", "value", "unit", "target", "met", "note"], wrapping=("figure", "note"))
    for f in figures:
        met = "" if f.met is None else (Text("yes", style="green") if f.met else Text("no", style="bold red"))
        value = f"{f.value:,.3f}" if f.value < 10 else f"{f.value:,.1f}"
        table.add_row(*map(literal, (f.name, value, f.unit, f.target, met, f.note)))
    print_table(table)


def _startup_bench(scenario: Path | None, as_json: bool) -> None:
    """``vrsim bench --startup``: see :mod:`vrouter.startup_bench`."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from vrouter.startup_bench import StartupBench, default_scenario, trace_endpoints

    scenario = scenario or default_scenario()
    if not scenario.is_file():
        fail(InputError(f"{scenario}: no such scenario file (--scenario names one; the default is the article's, in the root of a clone of vrsim)"))
    try:
        trace_endpoints(scenario)
    except (ValueError, OSError) as exc:
        fail(InputError(str(exc)))
    console = stdout_console() if not as_json else None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True, disable=as_json, console=console) as progress:
        task = progress.add_task("starting", total=None)
        result = StartupBench(scenario.resolve(), step=lambda name: progress.update(task, description=name)).run()
    if as_json:
        print_json({**result.numbers, "scenario": str(scenario)})
        return
    print_figures(f"vrsim bench --startup: {scenario.stem}, {os.cpu_count()} cores", result.figures)


app.command()(draw)
app.command()(diff)


def main() -> None:
    """Console-script entry point."""
    run_guarded(app)


if __name__ == "__main__":
    main()
