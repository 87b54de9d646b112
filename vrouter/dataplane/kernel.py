"""``@kernel``: numba's ``@njit``, imported and applied only when a kernel is first compiled.

A run that the interpreted engine answers (a small run, a cold cache: see
:mod:`vrouter.dataplane.engine`) runs the kernels' Python source and needs nothing from numba;
importing numba alone costs about 0.15 s of a command's start. So the dataplane modules mark
their kernels with :func:`kernel`, which records the function and its ``njit`` options and
returns a :class:`Kernel`. The first compiled use — calling a kernel from Python, or asking
for a dispatcher attribute such as ``signatures`` — calls :func:`compile_kernels`: it imports
numba, points its cache at this source's kernel directory
(:mod:`vrouter.dataplane.kernel_cache`), makes every recorded kernel's dispatcher and rebinds
the kernel modules' globals to them, so that numba types kernels calling kernels (and the
``prefetch`` intrinsic) exactly as if they had been decorated with ``@njit`` directly.

A kernel outside the dataplane that calls dataplane kernels (a test's, a benchmark's) is
declared with ``@kernel`` too, so that its module is rebound with the others.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

_kernels: list[Kernel] = []
_by_function: dict[int, Kernel] = {}  # id(py_func) → its Kernel, to recognise bound dispatchers
_lazy_globals: dict[str, LazyGlobal] = {}  # name → an object numba needs, made on first compile
_lock = threading.RLock()


class Kernel:
    """A function to be compiled by ``numba.njit(**options)`` on first compiled use."""

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = py_func
        self.options = options
        self._dispatcher: Any = None
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__doc__ = py_func.__doc__
        self.__module__ = py_func.__module__
        self.__wrapped__ = py_func

    @property
    def dispatcher(self) -> Any:
        """The numba dispatcher (numba is imported and every kernel bound on first use)."""
        if self._dispatcher is None:
            compile_kernels()
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        return self.dispatcher(*args)

    def __getattr__(self, name: str) -> Any:  # signatures, nopython_signatures, stats …
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        state = "compiled" if self._dispatcher is not None else "not loaded"
        return f"<kernel {self.__module__}.{self.__qualname__} ({state})>"


class LazyGlobal:
    """A numba object a kernel refers to by name (an intrinsic): made when kernels compile;
    ``python`` stands in for it in the interpreted engine."""

    def __init__(self, make: Callable[[], Any], python: Callable[..., Any]) -> None:
        self.make = make
        self.python = python
        self.made: Any = None

    def __call__(self, *args: Any) -> Any:  # called from plain Python: what the interpreter does
        return self.python(*args)


def kernel(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``@kernel`` or ``@kernel(cache=True, inline="always", …)``: like ``numba.njit``."""

    def declare(py_func: Callable[..., Any]) -> Kernel:
        declared = Kernel(py_func, options)
        with _lock:
            _kernels.append(declared)
            _by_function[id(py_func)] = declared
        return declared

    return declare(function) if function is not None else declare


def lazy_global(name: str, make: Callable[[], Any], python: Callable[..., Any]) -> LazyGlobal:
    """Declare a module global that only exists for numba (see :class:`LazyGlobal`)."""
    made = LazyGlobal(make, python)
    _lazy_globals[name] = made
    return made


def compile_kernels() -> None:
    """Import numba and bind every declared kernel to its dispatcher (idempotent; kernels
    declared later, in modules imported later, are bound on their first use)."""
    with _lock:
        pending = [k for k in _kernels if k._dispatcher is None]
        if not pending:
            return
        import numba
        import numba.core.config

        from vrouter.dataplane.kernel_cache import kernel_directory

        numba.core.config.CACHE_DIR = str(kernel_directory())
        for lazy in _lazy_globals.values():
            if lazy.made is None:
                lazy.made = lazy.make()
        for declared in pending:
            declared._dispatcher = numba.njit(**declared.options)(declared.py_func)
        for module_name in {k.__module__ for k in _kernels}:
            module = sys.modules.get(module_name)
            if module is not None:
                _bind(vars(module))


def _bind(namespace: dict[str, Any]) -> None:
    """Replace the kernels and lazy globals a module holds by their numba objects."""
    for name, value in list(namespace.items()):
        if isinstance(value, Kernel) and value._dispatcher is not None:
            namespace[name] = value._dispatcher
        elif isinstance(value, LazyGlobal) and value.made is not None:
            namespace[name] = value.made


def declared_kernel(value: Any) -> Kernel | None:
    """The :class:`Kernel` behind a value (itself, or its dispatcher once bound), if any."""
    if isinstance(value, Kernel):
        return value
    py_func = getattr(value, "py_func", None)
    return _by_function.get(id(py_func)) if py_func is not None else None


def python_stand_in(value: Any) -> Callable[..., Any] | None:
    """What the interpreter calls for a lazy global (or the numba object made from it)."""
    for lazy in _lazy_globals.values():
        if value is lazy or (lazy.made is not None and value is lazy.made):
            return lazy.python
    return None
