"""``@kernel``: numba is imported only when a kernel is compiled.

What a command does not need it does not load: ``--help``, ``get`` and a run the interpreted
engine answers never import numba (about 0.15 s of every start); the first compiled use
imports it and binds every kernel, and kernels calling kernels compile as with ``@njit``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vrouter.dataplane.ecmp import ecmp_hash
from vrouter.dataplane.interpreted import interpreted
from vrouter.dataplane.kernel import Kernel, declared_kernel, kernel

ROOT = Path(__file__).resolve().parents[2]
ISOLATION = str(ROOT / "scenarios" / "article" / "namespace-isolation.yaml")

PROBE = """
import json, sys
from vrouter.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"exit": code, "numba": "numba" in sys.modules}), file=sys.stderr)
"""


def _probe(*args: str, engine: str = "auto") -> dict:
    env = dict(os.environ, VRSIM_ENGINE=engine)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "engine", "numba"),
    [
        (("--help",), "auto", False),
        (("get", "pods", "-A", "-f", ISOLATION), "auto", False),
        (("get", "pods", "-A", "-f", ISOLATION, "-o", "json"), "auto", False),
        (("run", ISOLATION), "interpreted", False),
        (("trace", "-f", ISOLATION, "default/busybox", "ns-isolated/busybox"), "interpreted", False),
        (("run", ISOLATION), "compiled", True),
    ],
)
def test_numba_is_imported_only_by_what_compiles(args: tuple[str, ...], engine: str, numba: bool) -> None:
    assert _probe(*args, engine=engine) == {"exit": 0, "numba": numba}


@kernel(cache=True)
def _twice_the_hash(a: np.uint32, b: np.uint32) -> np.uint32:
    """A kernel calling a dataplane kernel, as a test's or a benchmark's would. (Like the
    dataplane's, it says where 32-bit arithmetic wraps: numba would widen the product.)"""
    return np.uint32(np.uint32(2) * ecmp_hash(a, b, 6, 1000, 80, 31))


def test_a_kernel_calling_kernels_compiles_and_agrees_with_its_interpreted_twin() -> None:
    args = (np.uint32(0x0A2FFFFC), np.uint32(0x0A2FFFFB))
    compiled = _twice_the_hash(*args)
    assert compiled == interpreted(_twice_the_hash)(*args)
    declared = declared_kernel(_twice_the_hash)  # once compiled, the module's name holds numba's dispatcher
    assert isinstance(declared, Kernel) and declared.dispatcher is _twice_the_hash and "compiled" in repr(declared)
    assert declared.signatures  # the dispatcher's attributes, through the kernel
