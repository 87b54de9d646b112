"""Where compiled kernels are kept, and why that place changes when the kernels' source does.

numba's own cache notices a change to the file that defines a kernel, but not to a file whose
functions the kernel inlines: edit ``flow_table.py`` and ``process_batch`` would still load the
old machine code. So the kernels live in a directory named after a hash of every kernel source
(all of ``vrouter/dataplane`` and the benchmark's kernel) and of the numba, numpy and Python
versions. A change to any of them means a new, empty directory: everything compiles afresh.

The base directory, first that is set:

- ``VRSIM_CACHE_DIR``;
- ``NUMBA_CACHE_DIR`` (numba's own setting, honoured);
- ``$XDG_CACHE_HOME/vrsim``, else ``~/.cache/vrsim``.

The kernels go in ``<base>/kernels-<hash>/``. Several processes may compile into it at once:
numba writes each cache file to a temporary name and renames it, so a reader sees a whole file
or none; ``vrsim warmup`` and the background compile also take ``compile.lock`` there so that
only one of them compiles (:mod:`vrouter.dataplane.background_compile`).

This module is plain Python: nothing here imports numba.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DATAPLANE = Path(__file__).resolve().parent
#: Every file with ``@njit`` kernels or code they inline (the benchmark's memory-ceiling kernel too).
KERNEL_SOURCES = (DATAPLANE, DATAPLANE.parent / "bench.py")
READY_STAMP = "ready.json"  # written once every kernel a command needs is in the directory
LOCK_FILE = "compile.lock"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - a source tree run without installing
        return "unknown"


def source_hash(sources: tuple[Path, ...] = KERNEL_SOURCES) -> str:
    """A hash of the kernel sources (every ``.py`` file below a directory, or a file) and of
    the versions that shape the machine code."""
    digest = hashlib.sha256()
    for source in sources:
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (_version("numba"), _version("numpy"), sys.version, platform.machine()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def base_directory() -> Path:
    """The directory that holds every version's kernels (see the module's docstring)."""
    for variable in ("VRSIM_CACHE_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vrsim"


@cache
def kernel_directory() -> Path:
    """This source's kernel directory (``<base>/kernels-<hash>``), created if missing."""
    directory = base_directory() / f"kernels-{source_hash()}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def kernels_ready() -> bool:
    """Have the kernels been compiled into this source's directory (by a warmup, a background
    compile, or any run that compiled them all)?"""
    return (kernel_directory() / READY_STAMP).exists()


def forget_kernels() -> None:
    """Remove this source's compiled kernels (``vrsim warmup --force``): the next use compiles.

    Only numba's files and the ready stamp go; the lock and the log stay, so a compile under
    way elsewhere is not disturbed beyond having to write its files again."""
    directory = kernel_directory()
    (directory / READY_STAMP).unlink(missing_ok=True)
    for pattern in ("*.nbi", "*.nbc"):
        for path in directory.rglob(pattern):
            path.unlink(missing_ok=True)
