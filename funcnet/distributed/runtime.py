"""The process group: who this process is, how it talks to the others, and failing fast.

funcnet does not start processes or open sockets itself: it joins the MPI
job that a launcher (``mpirun``, ``mpiexec``, Slurm's ``srun``) started,
through ``mpi4py``.  Without a launcher there is one process and every
collective is a no-op, so a training script runs unchanged on a laptop.

Fail fast, never hang:

- an uncaught exception on any rank prints its traceback and the rank, then
  aborts the whole job (``MPI_Abort``), so the other ranks do not wait forever
  inside a collective;
- a rank killed by a signal is noticed by the launcher, which ends the job;
- a watchdog aborts the job when one collective waits longer than
  ``timeout`` seconds (default 300, ``FUNCNET_DISTRIBUTED_TIMEOUT``; ``0``
  switches it off) -- the case of a rank that hung or left early.

>>> from funcnet import distributed
>>> world = distributed.init()
>>> (world.rank, world.size, world.is_main) if world.size == 1 else (0, 1, True)
(0, 1, True)
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any

from funcnet.errors import FuncnetError

__all__ = ["World", "DistributedError", "init", "joined", "launched", "world", "rank", "size",
           "is_main", "barrier", "abort", "LAUNCHER_VARIABLES", "DEFAULT_TIMEOUT"]

#: Environment variables set by MPI launchers (Open MPI, MPICH/Hydra and Intel MPI,
#: PMIx, MVAPICH, Slurm's srun); any of them means "started by a launcher".
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE",
                      "SLURM_STEP_NUM_TASKS")

#: Seconds one collective may wait for the other processes before the job is aborted.
DEFAULT_TIMEOUT = 300.0


class DistributedError(FuncnetError, RuntimeError):
    """The processes of a job disagree (different trees, shapes or dtypes) or cannot
    communicate; the message names the ranks and the differing paths."""


class World:
    """This process's place in the job: ``rank``, ``size``, ``local_rank`` (its index
    among the processes of its machine), ``is_main`` and the MPI communicator
    (``None`` for a single process).

    >>> from funcnet import distributed
    >>> w = distributed.World()
    >>> w.rank, w.size, w.is_main, w.comm is None
    (0, 1, True, True)
    """

    def __init__(self, comm=None, timeout: float | None = None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.local_rank = 0
        self.timeout = timeout
        self._watchdog: _Watchdog | None = None
        if self.size > 1:
            from mpi4py import MPI

            self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
            if timeout:
                self._watchdog = _Watchdog(self, timeout)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextmanager
    def collective(self, what: str):
        """Run one collective under the watchdog (``what`` names it in the abort message)."""
        dog = self._watchdog
        if dog is None:
            yield
            return
        dog.enter(what)
        try:
            yield
        finally:
            dog.leave()

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` with this rank and end every process of the job."""
        print(f"funcnet.distributed: rank {self.rank} of {self.size}: {message}",
              file=sys.stderr, flush=True)
        if self.comm is not None:
            self.comm.Abort(code)
        os._exit(code)  # pragma: no cover - Abort does not return

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


class _Watchdog:
    """A daemon thread that aborts the job when one collective waits too long."""

    def __init__(self, world: World, timeout: float):
        self.world = world
        self.timeout = float(timeout)
        self.since = 0.0
        self.what: str | None = None
        threading.Thread(target=self._watch, name="funcnet-distributed-watchdog",
                         daemon=True).start()

    def enter(self, what: str) -> None:
        self.since = time.monotonic()
        self.what = what

    def leave(self) -> None:
        self.what = None

    def _watch(self) -> None:
        poll = min(1.0, self.timeout / 4)
        while True:
            time.sleep(poll)
            what = self.what
            if what is not None and time.monotonic() - self.since > self.timeout:
                self.world.abort(
                    f"{what} waited more than {self.timeout:g} s for the other processes "
                    f"(FUNCNET_DISTRIBUTED_TIMEOUT): one of them has died, hung or taken a "
                    f"different path through the program; aborting the job")


_world: World | None = None


def launched() -> bool:
    """True when an MPI launcher started this process (its environment variables are set);
    joining the job (:func:`init`) is still up to the caller.

    >>> import os
    >>> from funcnet import distributed
    >>> distributed.launched() == any(os.environ.get(v) for v in distributed.LAUNCHER_VARIABLES)
    True
    """
    return any(os.environ.get(name) for name in LAUNCHER_VARIABLES)


def joined() -> World | None:
    """The :class:`World` if this process has joined a job of several processes, else None
    (never joins one itself).

    >>> from funcnet import distributed
    >>> distributed.joined() is None or distributed.size() > 1
    True
    """
    return _world if _world is not None and _world.size > 1 else None


def _timeout_from_environment() -> float:
    text = os.environ.get("FUNCNET_DISTRIBUTED_TIMEOUT", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"FUNCNET_DISTRIBUTED_TIMEOUT must be a number of seconds, got "
                         f"{text!r}") from None


def _install_abort_on_error(w: World) -> None:
    previous = sys.excepthook

    def abort_on_error(exc_type, exc, tb) -> None:
        try:
            previous(exc_type, exc, tb)
        finally:
            summary = "".join(traceback.format_exception_only(exc_type, exc)).strip()
            w.abort(f"failed with {summary}; aborting all {w.size} processes")

    sys.excepthook = abort_on_error


def init(*, timeout: float | None = None, abort_on_error: bool = True) -> World:
    """Join the job this process was launched in (idempotent) and return its :class:`World`.

    Under an MPI launcher (``mpirun``, ``mpiexec``, ``srun``), ``mpi4py``
    connects the processes; otherwise -- or with ``FUNCNET_DISTRIBUTED=0`` --
    the world is this one process.  Every other function of
    :mod:`funcnet.distributed` calls ``init()`` itself, so calling it is only
    needed to change the defaults: ``timeout`` (seconds a collective may wait,
    default ``FUNCNET_DISTRIBUTED_TIMEOUT`` or 300; ``0`` for none) and
    ``abort_on_error`` (an uncaught exception on one rank aborts the job).
    With the CuPy backend each process uses the GPU ``local_rank % count``.

    >>> from funcnet import distributed
    >>> distributed.init().size >= 1
    True
    """
    global _world
    if _world is not None:
        return _world
    if os.environ.get("FUNCNET_DISTRIBUTED", "") == "0" or not launched():
        _world = World()
        return _world
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:  # not installed, or no MPI library
        raise DistributedError(
            f"this process was started by an MPI launcher, but mpi4py cannot be used ({e}): "
            "pip install 'funcnet[mpi]' with an MPI library such as Open MPI installed; see "
            "docs/distributed.md") from None
    w = World(MPI.COMM_WORLD, _timeout_from_environment() if timeout is None else timeout)
    if w.size > 1:
        if abort_on_error:
            _install_abort_on_error(w)
        _select_gpu(w)
    _world = w
    return w


def _select_gpu(w: World) -> None:
    import funcnet as fn

    if fn.get_backend().name != "cupy":
        return
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(w.local_rank % count).use()


def world() -> World:
    """The :class:`World` of this process (joining the job first if needed).

    >>> from funcnet import distributed
    >>> distributed.world().size >= 1
    True
    """
    return init()


def rank() -> int:
    """This process's index in the job, ``0 ... size() - 1`` (``0`` without a launcher).

    >>> from funcnet import distributed
    >>> 0 <= distributed.rank() < distributed.size()
    True
    """
    return init().rank


def size() -> int:
    """The number of processes in the job (``1`` without a launcher).

    >>> from funcnet import distributed
    >>> distributed.size() >= 1
    True
    """
    return init().size


def is_main() -> bool:
    """True on rank 0: the process that logs, writes checkpoints and reports.

    >>> from funcnet import distributed
    >>> distributed.is_main() == (distributed.rank() == 0)
    True
    """
    return init().rank == 0


def barrier() -> None:
    """Wait until every process has reached this call (a no-op for one process).

    >>> from funcnet import distributed
    >>> distributed.barrier()
    """
    w = init()
    if w.size > 1:
        with w.collective("barrier"):
            w.comm.Barrier()


def abort(message: str, code: int = 1) -> Any:
    """End the whole job now: print ``message`` with this rank to stderr and call
    ``MPI_Abort`` (for one process: exit with ``code``).

    Use it where one rank finds a problem the others cannot see; raising an
    exception does the same (see :func:`init`).

    >>> from funcnet import distributed
    >>> callable(distributed.abort)
    True
    """
    init().abort(message, code)
