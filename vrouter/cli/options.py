"""Options and arguments the ``vrsim`` commands share, and what they set up before running."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

ScenarioOption = Annotated[
    Path,
    typer.Option("-f", "--file", help="A scenario file, or a manifest file or directory.", show_default=False),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for names, ClusterIPs and flows.")]
SourceArgument = Annotated[str, typer.Argument(help="ns/pod, deployment/ns/name (or another workload), node/NAME, external, fabric:IP or an address.", metavar="SOURCE")]


class Output(str, Enum):
    text = "text"
    json = "json"


JsonFlag = Annotated[bool, typer.Option("--json", help="The result as JSON (the same as -o json).")]
OutputOption = Annotated[Output | None, typer.Option("-o", "--output", help="text (the default) or json; --json is the same as -o json.", show_default=False)]


def wants_json(as_json: bool, output: Output | None) -> bool:
    """``--json`` and ``-o json`` are one choice (kubectl's -o, the older --json kept)."""
    return as_json or output == Output.json


class Pick(str, Enum):
    first = "first"
    all = "all"


PickOption = Annotated[Pick, typer.Option("--pick", help="A workload source: its first pod by name, or all of them.")]
PortOption = Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535, help="The destination port (a service: its port, the first one if omitted).", show_default=False)]
LenientOption = Annotated[
    bool,
    typer.Option(
        "--lenient",
        help="Read a repository's manifests as an analyzer: problems the API server would default, or that change no "
        "connectivity (unnamed ports of a multi-port Service, '_' in names, incomplete ownerReferences, a null "
        "podSelector, a stray non-manifest file), become warnings.",
    ),
]
class Semantics(str, Enum):
    article = "article"
    tf = "tf"


SemanticsOption = Annotated[
    Semantics | None,
    typer.Option(
        "--semantics",
        help="How TF realises the cluster: as the article describes it (the default), or as tf-controller's code does "
        "(spec/tf-semantics.md). Overrides the scenario's cluster.semantics.",
        show_default=False,
    ),
]


def reading_of(semantics: Semantics | None) -> None:
    """Every cluster this command builds is realised in this reading (None: the scenario's)."""
    from vrouter.lab.sim import Simulation

    Simulation.semantics_override = semantics.value if semantics is not None else None


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=512, help="Measure on N worker processes of this machine (a dask.distributed LocalCluster; the dask extra).", metavar="N", show_default=False),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Measure on the dask cluster whose scheduler is at ADDRESS (tcp://host:8786); its workers need vrsim and the scenario's files.", metavar="ADDRESS", show_default=False),
]
AllowOutsideOption = Annotated[
    bool, typer.Option("--allow-outside", help="Let a scenario apply files outside its own folder.")
]


@contextmanager
def reading(leniently: bool) -> Iterator[None]:
    """Read the input strictly, or leniently with the forgiven problems as warnings on stderr."""
    if not leniently:
        yield
        return
    from controlplane.k8s.leniency import lenient

    warnings: list[str] = []
    with lenient(warnings):
        yield
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def forwarding(quiet: bool) -> None:
    """For commands that forward packets: progress on a terminal (unless -q), the kernels'
    compile among it."""
    from vrouter.cli.compile_status import use_compile_status
    from vrouter.cli.progress import use_progress

    use_progress(quiet)
    use_compile_status()
