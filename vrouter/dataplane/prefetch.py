"""A software prefetch for numba kernels: ``llvm.prefetch`` on one array element.

Batch kernels issue it a few packets ahead of the access, so that the cache misses of
independent lookups overlap instead of queueing one after another (VPP's dual/quad loop
does the same). It is a hint only: it never faults and never changes a result.
"""

from __future__ import annotations

from typing import Any

from vrouter.dataplane.kernel import lazy_global


def _make_prefetch() -> Any:
    """The numba intrinsic (numba is imported only when kernels compile)."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, array, flat_index):
        """Start loading the cache line holding element ``flat_index`` of a C-contiguous array."""
        if not isinstance(array, types.Array) or not isinstance(flat_index, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            array_struct = context.make_array(signature.args[0])(context, builder, args[0])
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype)))
            byte_ptr = ir.IntType(8).as_pointer()
            base = builder.bitcast(array_struct.data, byte_ptr)
            address = builder.gep(base, [builder.mul(index, itemsize)])
            int32 = ir.IntType(32)
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, int32, int32, int32]), "llvm.prefetch.p0"
            )
            # read access, keep in all cache levels, data cache
            builder.call(function, [address, int32(0), int32(3), int32(1)])
            return context.get_dummy_value()

        return types.void(array, flat_index), codegen

    return prefetch


def _no_prefetch(array: Any, flat_index: Any) -> None:
    """Outside compiled code a cache hint has nothing to do."""


#: ``prefetch(array, flat_index)`` in a kernel; a no-op where the kernel runs interpreted
prefetch = lazy_global("prefetch", _make_prefetch, _no_prefetch)
