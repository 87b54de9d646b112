"""``vrsim draw``: pictures of what TF builds (``--what fabric``) and of who may talk to whom
(``--what policy``), as DOT, SVG or PNG (vrouter.views.drawing)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from controlplane.errors import InputError
from vrouter.cli.output import user_errors
from vrouter.cli.options import AllowOutsideOption, LenientOption, QuietOption, ScenarioOption, SeedOption, SemanticsOption, forwarding, reading, reading_of


class What(str, Enum):
    fabric = "fabric"
    policy = "policy"


def draw(
    file: ScenarioOption,
    what: Annotated[
        What,
        typer.Option("--what", help="fabric: projects, VNs and the policies that join them, pods by node, Services' VIPs, floating IPs, Ingress HAProxy. policy: the allowed connections between workloads (connlist's graph)."),
    ] = What.fabric,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write FILE.svg, FILE.png or FILE.dot (SVG and PNG need Graphviz's dot program). Without it: DOT text on stdout.", show_default=False, metavar="FILE"),
    ] = None,
    intent: Annotated[bool, typer.Option("--intent", help="--what policy: what Kubernetes allows (evaluated), not what the dataplane delivers.")] = False,
    seed: SeedOption = 0,
    allow_outside: AllowOutsideOption = False,
    quiet: QuietOption = False,
    semantics: SemanticsOption = None,
    lenient: LenientOption = False,
) -> None:
    """Draw the cluster as TF builds it, or its allowed connections, with Graphviz.

    Examples: vrsim draw -f scenario.yaml -o fabric.svg; vrsim draw -f manifests/ --what policy -o policy.png;
    vrsim draw -f scenario.yaml | dot -Tpdf > fabric.pdf
    """
    from vrouter.lab.connlist import connlist, load
    from vrouter.views.drawing import fabric_graph, policy_graph, render

    reading_of(semantics)
    if what == What.policy:
        forwarding(quiet)
    with user_errors():
        if intent and what != What.policy:
            raise InputError("--intent draws the policy picture: add --what policy", path="--intent")
        with reading(lenient):
            sim = load(file, seed, allow_outside)
        graph = fabric_graph(sim) if what == What.fabric else policy_graph(connlist(sim, intent=intent).dot())
        try:
            text = render(graph, out)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}", path="-o") from None
    if text is not None:
        typer.echo(text, nl=False)
    elif not quiet:
        typer.echo(f"wrote {out}", err=True)
