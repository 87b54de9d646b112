"""Compiling the kernels in a separate process, and waiting for it.

Every compile of the forwarding kernels — the background one a cold ``auto`` run starts, the
one a large batch waits for, ``vrsim warmup``, the test suite's — is the same short process,
``python -m vrouter.warmup``. Keeping it out of the command's own process keeps the
command's memory low (numba's compiler needs several hundred MB) and lets the interpreted
engine answer meanwhile. The process takes ``compile.lock`` in the kernel directory, so that
however many commands start at once, one compiles and the others wait for it; the lock is
released by the operating system if that process dies, and a waiter then starts another.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from vrouter.dataplane.kernel_cache import LOCK_FILE, kernel_directory, kernels_ready

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the vrouter package
LOG_FILE = "compile.log"
WAITING = "compiling the forwarding kernels — once per install"

_child: subprocess.Popen[bytes] | None = None
_status: Callable[[str], AbstractContextManager[object]] = lambda text: nullcontext()


class CompileFailed(RuntimeError):
    """The kernels did not compile: a bug, reported with the compile's log."""


def set_status_display(display: Callable[[str], AbstractContextManager[object]]) -> None:
    """How a wait is shown (the CLI installs a status line with the elapsed time)."""
    global _status
    _status = display


@contextmanager
def compile_lock(blocking: bool = True) -> Iterator[bool]:
    """Hold the kernel directory's compile lock; yields False if ``blocking`` is off and
    another process holds it."""
    with open(kernel_directory() / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compile_running() -> bool:
    """Is a process compiling into this kernel directory right now?"""
    with compile_lock(blocking=False) as free:
        return not free


def compile_process() -> tuple[list[str], Path, dict[str, str]]:
    """The compile's command line, working directory and environment.

    It must compile this very source tree: run from the package's root, since ``python -m``
    puts the working directory first on the path, and a user in a clone of vrsim holds another
    ``vrouter`` there (the source of an older or newer install) whose kernels hash elsewhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "vrouter.warmup"], PACKAGE_ROOT, env


def _spawn() -> None:
    global _child
    args, cwd, env = compile_process()
    with open(kernel_directory() / LOG_FILE, "ab") as log:
        _child = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # outlives this command: the next one finds the kernels
        )


def start() -> None:
    """Start compiling in the background, unless the kernels are ready, a compile is under way,
    or ``VRSIM_BACKGROUND_COMPILE=0``."""
    if _child is not None or kernels_ready() or os.environ.get("VRSIM_BACKGROUND_COMPILE") == "0":
        return
    if not compile_running():
        _spawn()


def wait() -> None:
    """Return once the kernels are compiled: wait for the compile under way, or start one."""
    if kernels_ready():
        return
    attempts = 0
    with _status(WAITING):
        while not kernels_ready():
            if _child is not None and _child.poll() is None:
                _child.wait()
            elif compile_running():
                with compile_lock():  # another command's compile: wait for it to let go
                    pass
            elif attempts < 2:  # nobody compiles (or a compile died): start one
                attempts += 1
                _spawn()
            else:
                log = kernel_directory() / LOG_FILE
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise CompileFailed(f"the forwarding kernels did not compile; see {log}\n{tail}")
