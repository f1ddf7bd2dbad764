"""How a packed buffer travels: MPI for host arrays, NCCL (or MPI via the host) for CuPy.

A transport reduces or broadcasts one contiguous buffer in place.  The
collectives of :mod:`funcnet.distributed.collectives` pack a whole pytree
into one buffer per dtype first, so a transport call is one collective.

- :class:`MPITransport` -- ``mpi4py``'s buffer interface (``Allreduce`` with
  ``MPI.IN_PLACE``, ``Bcast``): the array's memory is handed to MPI, never
  pickled.
- :class:`NCCLTransport` -- CuPy arrays through ``cupy.cuda.nccl`` on the
  current stream; the NCCL communicator is set up once, its unique id sent
  from rank 0 over MPI.
- :class:`HostStagedTransport` -- CuPy arrays without NCCL (or with
  ``FUNCNET_NCCL=0``): copied to the host, reduced with MPI, copied back.

>>> from funcnet.distributed import transports
>>> sorted(transports.OPS)
['max', 'mean', 'min', 'sum']
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["OPS", "MPITransport", "NCCLTransport", "HostStagedTransport", "transport_for",
           "is_cupy_array"]

#: The reductions: ``mean`` travels as a sum and is divided afterwards.
OPS = ("sum", "mean", "max", "min")


def is_cupy_array(x) -> bool:
    """True for a CuPy array (or the tests' CPU stand-in for one)."""
    return type(x).__module__.split(".")[0] in ("cupy", "cupy_standin")


class MPITransport:
    """Collectives on NumPy buffers with ``mpi4py``'s buffer interface (no pickling)."""

    def __init__(self, comm):
        from mpi4py import MPI

        self.comm = comm
        self.ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self.in_place = MPI.IN_PLACE

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        self.comm.Allreduce(self.in_place, buf, op=self.ops[op])

    def broadcast(self, buf: np.ndarray, root: int) -> None:
        self.comm.Bcast(buf, root=root)


class HostStagedTransport:
    """CuPy buffers through MPI: device -> host, the MPI collective, host -> device."""

    def __init__(self, comm):
        self.host = MPITransport(comm)

    def allreduce(self, buf, op: str) -> None:
        staged = _to_host(buf)
        self.host.allreduce(staged, op)
        _copy_back(buf, staged)

    def broadcast(self, buf, root: int) -> None:
        staged = _to_host(buf)
        self.host.broadcast(staged, root)
        _copy_back(buf, staged)


def _to_host(buf) -> np.ndarray:
    import cupy

    return np.ascontiguousarray(cupy.asnumpy(buf))


def _copy_back(buf, staged: np.ndarray) -> None:
    import cupy

    buf[...] = cupy.asarray(staged)


class NCCLTransport:
    """CuPy buffers through NCCL on the current CUDA stream (one process per GPU)."""

    _DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
               "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64"}
    _OPS = {"sum": "NCCL_SUM", "mean": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}

    def __init__(self, comm, rank: int, size: int):
        from cupy.cuda import nccl

        self.nccl = nccl
        uid = nccl.get_unique_id() if rank == 0 else None
        if comm is not None:
            uid = comm.bcast(uid, root=0)  # a few bytes of metadata, not array data
        self.comm = nccl.NcclCommunicator(size, uid, rank)

    def _args(self, buf):
        import cupy

        dtype = np.dtype(buf.dtype)
        if dtype.kind == "c":  # NCCL has no complex types: a complex sum is two real sums
            buf = buf.view(dtype=np.dtype(f"f{dtype.itemsize // 2}"))
            dtype = np.dtype(buf.dtype)
        name = self._DTYPES.get(dtype.name)
        if name is None:
            raise TypeError(f"NCCL cannot reduce {dtype} buffers")
        return buf, getattr(self.nccl, name), cupy.cuda.get_current_stream()

    def allreduce(self, buf, op: str) -> None:
        buf, dtype, stream = self._args(buf)
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, dtype,
                            getattr(self.nccl, self._OPS[op]), stream.ptr)
        stream.synchronize()

    def broadcast(self, buf, root: int) -> None:
        buf, dtype, stream = self._args(buf)
        self.comm.bcast(buf.data.ptr, buf.size, dtype, root, stream.ptr)
        stream.synchronize()


def _nccl_usable() -> bool:
    if os.environ.get("FUNCNET_NCCL", "") == "0":
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def transport_for(world, device: bool, cache: dict):
    """The transport for ``world``'s collectives on host (``device=False``) or CuPy buffers.

    ``cache`` keeps one transport of each kind per world (NCCL set-up is itself
    a collective, done once).
    """
    key = (id(world), device)
    if key not in cache:
        if not device:
            cache[key] = MPITransport(world.comm)
        elif _nccl_usable():
            cache[key] = NCCLTransport(world.comm, world.rank, world.size)
        else:
            cache[key] = HostStagedTransport(world.comm)
    return cache[key]
