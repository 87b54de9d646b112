"""Measuring on dask.distributed workers: ``--workers N`` (a LocalCluster of N processes on
this machine) or ``--scheduler ADDRESS`` (a cluster that already runs).

The work is embarrassingly parallel: a reachability matrix or a connlist is measured in
blocks of source pods that do not depend on one another (each block starts from empty flow
tables and leaves them empty), and a batch of scenarios is one task per file. What a worker
needs to forward travels once per worker, not per task: every node's compiled tables and the
vRouter settings (:class:`FabricImage`), and the command's own constants (the endpoints), are
broadcast with ``Client.scatter``; each worker builds its fabric from them once and keeps
it for every task of the command. Results come back per block and are merged in block
order, so the output is the single-process one whatever the number of workers. A worker
lost mid-run is replaced by its nanny and its task run again by the scheduler (a block is
a pure function of its inputs).

Engines: a worker forwards on the compiled kernels (each compiles them once, or loads them
from numba's cache), unless the command asked for the interpreter (``--engine
interpreted``). With the default ``auto`` engine a small single-process run may answer on
the interpreter instead, so the ``engine`` field can differ; every result is the same.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.config import VRouterSettings
from controlplane.errors import InputError
from controlplane.progress import task

if TYPE_CHECKING:
    from distributed import Client

    from vrouter.agent import CompiledNode
    from vrouter.lab.fabric import Fabric
    from vrouter.lab.runner import ScenarioResult

DASK_MISSING = '--workers and --scheduler run on dask.distributed, which is not installed: pip install "vrsim[dask]"'


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client | None]:
    """A client of a LocalCluster of ``workers`` processes, or of the scheduler at
    ``scheduler``; None (the single-process path) when neither is given."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise InputError("--workers starts a cluster here and --scheduler uses one that runs: give one", path="--workers")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(DASK_MISSING, path="--workers" if workers is not None else "--scheduler") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="5s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"--scheduler {scheduler}: no dask scheduler answers there ({exc})", path="--scheduler") from None
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL)
    with cluster, Client(cluster) as client:
        yield client


def worker_count(client: Client) -> int:
    """The workers the scheduler knows now (at least 1, to size blocks by)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def worker_engine() -> str:
    """The engine a worker forwards on: the interpreter if this command asked for it, else
    the compiled kernels (see the module's docstring)."""
    from vrouter.dataplane.engine import mode

    return "interpreted" if mode() == "interpreted" else "compiled"


def _gathered(client: Client, futures: list[Any], description: str) -> list[Any]:
    """The futures' results in their order, the progress display told as each one ends."""
    from distributed import as_completed

    with task(f"{description} on {worker_count(client)} workers", total=len(futures)) as advance:
        for _ in as_completed(futures):
            advance()
    return client.gather(futures)


@dataclass
class FabricImage:
    """What a worker needs to forward like this process: every node's compiled tables."""

    nodes: dict[str, CompiledNode]
    settings: VRouterSettings
    engine: str  # "compiled" or "interpreted"
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, nodes: dict[str, CompiledNode], settings: VRouterSettings) -> FabricImage:
        return cls(nodes, settings, worker_engine())


_FABRICS: dict[str, Fabric] = {}  # on a worker: the fabric of each image it was sent


def worker_fabric(image: FabricImage) -> Fabric:
    """This worker's fabric for ``image``, built on its first task."""
    fabric = _FABRICS.get(image.token)
    if fabric is None:
        from vrouter.lab.fabric import Fabric

        _FABRICS.clear()  # one command's image at a time
        fabric = _FABRICS[image.token] = Fabric(image.nodes, image.settings)
    return fabric


Block = Callable[["Fabric", Any, Any], Any]


def _run_block(function: Block, image: FabricImage, shared: Any, block: Any) -> tuple[Any, str]:
    """One task: ``function(fabric, shared, block)`` on the worker's fabric, flows emptied after."""
    from vrouter.dataplane.engine import forced

    fabric = worker_fabric(image)
    with forced(image.engine):
        result = function(fabric, shared, block)
    fabric.advance(image.settings.agingSeconds + 1)  # the next block starts from empty tables
    return result, image.engine


def map_blocks(client: Client, function: Block, image: FabricImage, shared: Any, blocks: Sequence[Any], description: str) -> tuple[list[Any], list[str]]:
    """``function`` over every block on the workers: (results in block order, engines used)."""
    image_future = client.scatter(image, broadcast=True, hash=False)
    shared_future = client.scatter(shared, broadcast=True, hash=False)
    futures = [client.submit(_run_block, function, image_future, shared_future, block, pure=False) for block in blocks]
    done = _gathered(client, futures, f"{description}: {len(futures)} tasks")
    return [result for result, _ in done], list(dict.fromkeys(engine for _, engine in done))


def _run_scenario_file(path: Path, seed: int, allow_outside: bool, semantics: str | None, engine: str) -> ScenarioResult:
    from vrouter.dataplane.engine import forced
    from vrouter.lab.runner import run_scenario
    from vrouter.lab.sim import Simulation

    Simulation.semantics_override = semantics
    with forced(engine):
        return run_scenario(Simulation.from_path(path, seed, allow_outside))


def run_scenarios(client: Client, paths: Sequence[Path], seed: int, allow_outside: bool) -> list[ScenarioResult]:
    """One task per scenario file; results in the order of ``paths``."""
    from vrouter.lab.sim import Simulation

    futures = [client.submit(_run_scenario_file, Path(path), seed, allow_outside, Simulation.semantics_override, worker_engine(), pure=False) for path in paths]
    return _gathered(client, futures, f"{len(futures)} scenarios")
