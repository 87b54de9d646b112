"""The forwarding kernels run by the Python interpreter: the interpreted engine.

Why it exists: compiling the kernels takes a while on a cold cache, and a small run — an
article scenario's pings, one trace — moves a few hundred packets, which the interpreter
handles in well under a second. This is **not** a second implementation: each ``@njit``
function's own Python source runs here, so the interpreted engine forwards, drops, counts and
traces exactly as the compiled one (``tests/dataplane/test_engines.py`` holds the two equal,
trace events included).

Two things numba gives the source that plain Python does not, and how they are supplied:

- **Record syntax.** In a kernel, ``pkts[i].outcome`` reads a field of a structured row. Each
  structured array is wrapped in :class:`Records`, whose rows (:class:`Row`) read and write
  fields as attributes, in place — the flow table, counters and packets are the very arrays
  the compiled engine uses, so the two engines can take turns on one simulation.
- **Integer arithmetic.** numba computes on small integers in 64 bits; numpy scalars would
  keep 8 or 16 bits (``proto << 16`` would be 0). A row field therefore reads as a Python int,
  and a write that does not fit the field wraps as the compiled store does. Where a kernel
  wants 32-bit wrapping (the hashes), it says so (``np.uint32(a * b)``): numba would widen a
  product of two ``uint32`` where numpy wraps it, so a kernel must not rely on either.

Kernels calling kernels: each function runs in a copy of its module's namespace in which
every other kernel is its interpreted twin, and the ``prefetch`` intrinsic (a cache hint) does
nothing. Nothing here needs numba, and a run that stays interpreted never imports it
(:mod:`vrouter.dataplane.kernel`).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np

from vrouter.dataplane.kernel import Kernel, declared_kernel, python_stand_in


class Row:
    """One record of a structured array: fields as attributes, read as Python ints."""

    __slots__ = ("_columns", "_index")

    def __init__(self, columns: dict[str, np.ndarray], index: int) -> None:
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_index", int(index))

    def __getattr__(self, name: str) -> Any:
        return self._columns[name].item(self._index)

    def __setattr__(self, name: str, value: Any) -> None:
        column = self._columns[name]
        try:
            column[self._index] = value
        except OverflowError:  # a Python int out of the field's range: wrap, as the compiled store does
            column[self._index] = np.array(int(value) & ((1 << (8 * column.dtype.itemsize)) - 1), np.uint64).astype(column.dtype)


class Records:
    """A structured array seen through :class:`Row` s (the same memory, no copy)."""

    __slots__ = ("array", "columns", "shape")

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.columns = {name: array[name] for name in array.dtype.names}

    def __getitem__(self, index: int) -> Row:
        if index < 0:  # numba wraps negative indices like numpy
            index += self.shape[0]
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"index {index} is out of bounds for {self.shape[0]} records")
        return Row(self.columns, index)

    def __len__(self) -> int:
        return self.shape[0]


def wrap(value: Any) -> Any:
    """``value`` as the interpreted kernels read it: structured arrays as :class:`Records`,
    tuples of tables (``KernelTables``, ``FlowState`` …) with their arrays wrapped."""
    if isinstance(value, np.ndarray) and value.dtype.names is not None:
        return Records(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(wrap(v) for v in value))
    return value


_twins: dict[int, types.FunctionType] = {}
_namespaces: dict[str, dict[str, Any]] = {}


def _namespace(module_globals: dict[str, Any]) -> dict[str, Any]:
    """A copy of a kernel module's globals in which kernels are their twins."""
    name = module_globals["__name__"]
    namespace = _namespaces.get(name)
    if namespace is None:
        namespace = dict(module_globals)
        _namespaces[name] = namespace  # before filling it: modules may refer to each other
        for key, value in module_globals.items():
            declared = declared_kernel(value)
            if declared is not None:
                namespace[key] = twin(declared)
            elif (stand_in := python_stand_in(value)) is not None:
                namespace[key] = stand_in
    return namespace


def twin(kernel: Kernel | Any) -> types.FunctionType:
    """The interpreted twin of a kernel (or of its numba dispatcher), made once, then reused."""
    declared = declared_kernel(kernel)
    if declared is None:
        raise TypeError(f"{kernel!r} is not a vrsim kernel (@kernel)")
    found = _twins.get(id(declared))
    if found is not None:
        return found
    source = declared.py_func
    # the namespace may already hold twins made through it (modules refer to each other);
    # any of them sees the same dictionary, filled before anything runs
    function = types.FunctionType(source.__code__, _namespace(source.__globals__), source.__name__, source.__defaults__, source.__closure__)
    _twins[id(declared)] = function
    return function


def interpreted(kernel: Kernel | Any) -> Callable[..., Any]:
    """``kernel`` as a plain function of the same arguments, run by the interpreter."""
    function = twin(kernel)

    def call(*args: Any) -> Any:
        with np.errstate(over="ignore"):  # fixed-width hash arithmetic wraps, as compiled
            return function(*(wrap(a) for a in args))

    call.__name__ = f"interpreted_{kernel.py_func.__name__}"
    call.__doc__ = kernel.py_func.__doc__
    return call
