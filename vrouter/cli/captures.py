"""``--pcap DIR`` on the commands that send traffic: record every hop, then write the files.

The directory is checked before anything runs (``output.check_output_directory``: a file in
its place is exit 2); a write that fails (a full disk, no permission) is one line and exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer


if TYPE_CHECKING:
    from vrouter.lab.sim import Simulation
    from vrouter.views.captures import CaptureFile

PcapOption = Annotated[
    Path | None,
    typer.Option(
        "--pcap",
        help="Write packet captures into DIR: per node, one per interface that saw traffic (as the pod sees it, after NAT), "
        "the fabric interface (MPLSoUDP/MPLSoGRE/VXLAN) and the drops (the reason in each packet's comment). "
        "pcapng: Wireshark, tshark and tcpdump read them.",
        metavar="DIR",
        show_default=False,
    ),
]


def record(sim: Simulation, directory: Path | None) -> None:
    """Have ``sim``'s fabric record every hop from now on (when captures were asked for)."""
    if directory is not None:
        from vrouter.lab.capture import CaptureLog

        sim.capture = CaptureLog()


def write(sim: Simulation, directory: Path | None, quiet: bool = False) -> list[CaptureFile]:
    """Write ``sim``'s recorded hops as capture files, and say what was written (stderr)."""
    if directory is None or sim.capture is None:
        return []
    from vrouter.views.captures import write_captures

    nodes = [r.compiled for r in sim.fabric.runtimes] if len(sim.capture) else []
    try:
        written = write_captures(directory, sim.capture.events(), nodes)
    except OSError as exc:
        sys.stderr.write(f"error: --pcap {directory}: {exc.strerror or exc}\n")
        raise typer.Exit(1) from None
    if not quiet:
        if not written:
            sys.stderr.write(f"pcap: no packets were sent, nothing written to {directory}\n")
        for capture in written:
            sys.stderr.write(f"pcap: {capture.path}  {capture.packets} packet{'s' if capture.packets != 1 else ''}  ({capture.description})\n")
    return written
