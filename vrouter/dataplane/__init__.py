"""The vRouter forwarding plane: numba kernels over packet batches and per-node tables.

The kernels are declared with :func:`vrouter.dataplane.kernel.kernel`: numba is imported, and
its cache pointed at this source's kernel directory (:mod:`vrouter.dataplane.kernel_cache`),
only when a kernel is first compiled. A run the interpreted engine answers never imports it.
"""
