"""``funcnet.distributed``: data-parallel training across processes and machines.

funcnet scales out on MPI (through ``mpi4py``) and, for CuPy arrays, NCCL:
start the same script once per process with a launcher and average the
gradients inside the step.

- :func:`init`, :func:`rank`, :func:`size`, :func:`is_main`,
  :func:`barrier`, :func:`abort` -- the job (joined automatically);
- :func:`allreduce` -- a pytree reduced across processes, one collective
  per dtype, inside ``jit``/``grad``/``vmap`` too;
- :func:`broadcast` -- root's pytree on every process (initial parameters);
  :func:`broadcast_object` -- a small Python object (a configuration);
- :func:`shard` -- this process's share of every epoch's permutation.

Without a launcher there is one process and every call is a cheap no-op,
so the same script runs unchanged.  ``funcnet train --distributed`` and
``funcnet.training.fit`` use all of this; see ``docs/distributed.md``.

>>> import numpy as np
>>> from funcnet import distributed
>>> grads = {"w": np.ones(3, np.float32)}
>>> distributed.allreduce(grads)["w"].tolist() if distributed.size() == 1 else [1.0] * 3
[1.0, 1.0, 1.0]
"""

from funcnet.distributed.collectives import (allreduce, allreduce_p, broadcast,
                                             broadcast_object)
from funcnet.distributed.runtime import (LAUNCHER_VARIABLES, DistributedError, World, abort,
                                         barrier, init, is_main, joined, launched, rank, size,
                                         world)
from funcnet.distributed.sharding import shard

__all__ = ["init", "world", "rank", "size", "is_main", "barrier", "abort", "joined", "launched",
           "allreduce", "broadcast", "broadcast_object", "shard", "World", "DistributedError",
           "allreduce_p", "LAUNCHER_VARIABLES"]
