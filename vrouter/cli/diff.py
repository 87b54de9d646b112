"""``vrsim diff``: the connectivity (and, with --objects, the TF objects) that differ between two
versions of a cluster — two scenarios, two manifest folders, or one scenario at two steps."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from controlplane.errors import InputError
from vrouter.cli.compile_status import engine_note
from vrouter.cli.output import user_errors, write_output
from vrouter.cli.options import AllowOutsideOption, LenientOption, QuietOption, SeedOption, SemanticsOption, forwarding, reading, reading_of


class DiffOutput(str, Enum):
    txt = "txt"
    json = "json"
    csv = "csv"
    md = "md"


def diff(
    versions: Annotated[
        list[Path],
        typer.Argument(help="Two scenarios or manifest folders (A B), or one scenario with --at twice.", metavar="A [B]", show_default=False),
    ],
    at: Annotated[
        list[int] | None,
        typer.Option("--at", help="Compare a scenario after its first N steps (as vrsim run numbers them); give it twice: --at 2 --at 3. With A and B: A at the first, B at the second.", metavar="N", show_default=False),
    ] = None,
    output: Annotated[DiffOutput, typer.Option("-o", "--output", help="txt, json, csv or md (netpol-analyzer's diff formats).")] = DiffOutput.txt,
    objects: Annotated[bool, typer.Option("--objects", help="Also list the TF objects added, removed or changed.")] = False,
    intent: Annotated[bool, typer.Option("--intent", help="Compare what Kubernetes allows (evaluated), not what the dataplane delivers.")] = False,
    out_file: Annotated[Path | None, typer.Option("--file", help="Write the output to this file.", show_default=False)] = None,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    lenient: LenientOption = False,
) -> None:
    """What changes between two versions: connections that appear, disappear or change.

    Exit 0 when the versions allow the same connections (and, with --objects, build the same
    TF objects), 1 when they differ, 2 for invalid input.

    Examples: vrsim diff before/ after/; vrsim diff scenario.yaml --at 2 --at 3 -o md;
    vrsim diff old.yaml new.yaml --objects
    """
    from vrouter.lab.connlist import connlist
    from vrouter.lab.whatif import Diff, connectivity_diff, load_version, object_diff, version_name

    reading_of(semantics)
    forwarding(quiet)
    with user_errors(output == DiffOutput.json):
        steps = list(at or [])
        if len(versions) > 2:
            raise InputError(f"diff compares two versions; {len(versions)} were given", path="A [B]")
        if steps and len(steps) != 2:
            raise InputError("--at: give it twice (--at 2 --at 3), the two steps to compare", path="--at")
        if len(versions) == 1 and not steps:
            raise InputError("diff needs two versions: A B, or one scenario with --at N --at M", path="A [B]")
        paths = versions if len(versions) == 2 else versions * 2
        chosen = steps or [None, None]
        sims, lists = [], []
        with reading(lenient):
            for path, step in zip(paths, chosen, strict=True):
                sims.append(load_version(path, step, seed, allow_outside, intent))
        for sim in sims:
            lists.append(connlist(sim, intent=intent))
        result = Diff(
            version_name(paths[0], chosen[0]),
            version_name(paths[1], chosen[1]),
            connectivity_diff(*lists),
            object_diff(sims[0].cluster.db, sims[1].cluster.db) if objects else None,
        )
        text = result.render(output.value)
        if out_file is not None:
            write_output(out_file, text)
    for note in dict.fromkeys(note for listing in lists for note in listing.notes):
        typer.echo(f"note: {note}", err=True)
    if note := engine_note("+".join(dict.fromkeys(e for sim in sims for e in sim.fabric.engines)) or "none"):
        typer.echo(f"note: {note}", err=True)
    if out_file is None:
        typer.echo(text, nl=False)
    raise typer.Exit(1 if result.differs else 0)
