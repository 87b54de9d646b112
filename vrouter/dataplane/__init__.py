"""The vRouter forwarding plane: numba kernels over packet batches and per-node tables.

Importing this package points numba's cache at this source's kernel directory
(:mod:`vrouter.dataplane.kernel_cache`) before any kernel is defined, so every ``cache=True``
kernel — ours and the tests' — is kept where a change to the dataplane invalidates it.
"""

from __future__ import annotations

import numba.core.config as _numba_config

from vrouter.dataplane.kernel_cache import kernel_directory

_numba_config.CACHE_DIR = str(kernel_directory())
