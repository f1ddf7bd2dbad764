"""``shard``: each process's share of a data set, from one global order.

Every process draws the same permutation from the same key and keeps every
``size``-th example of it, starting at its rank: the shards are disjoint and
their union is the whole data set.  Because the shard is strided, the
``j``-th mini-batch of ``batch_size // size`` examples on each process are
together exactly the ``j``-th mini-batch of ``batch_size`` examples of the
one-process order -- so a data-parallel run follows the one-process run.

>>> import numpy as np
>>> from funcnet import distributed, random
>>> x = np.arange(10)
>>> [distributed.shard(x, rank=r, size=3).tolist() for r in range(3)]
[[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

import funcnet as fn
from funcnet.distributed.runtime import init

__all__ = ["shard"]


def shard(arrays: Any, key=None, *, rank: int | None = None, size: int | None = None) -> Any:
    """This process's slice of ``arrays`` (one array or a pytree of arrays with the same
    number of examples along axis 0).

    With ``key``, the examples are first put in the order
    ``funcnet.random.permutation(key, n)`` -- pass the same key on every
    process (a new one per epoch); without it, the order is ``0 ... n-1``.
    The process keeps positions ``rank, rank + size, rank + 2 size, ...`` of
    that order (``rank`` and ``size`` default to this process's).  Shard
    lengths differ by at most one; together the shards cover every example
    exactly once.  Returns NumPy arrays in the same tree structure.

    >>> import numpy as np
    >>> from funcnet import distributed, random
    >>> data = {"x": np.arange(8), "y": np.arange(8) * 10}
    >>> parts = [distributed.shard(data, random.key(0), rank=r, size=2) for r in range(2)]
    >>> sorted(np.concatenate([p["x"] for p in parts]).tolist()) == list(range(8))
    True
    >>> all((p["y"] == p["x"] * 10).all() for p in parts)
    True
    """
    if rank is None or size is None:
        w = init()
        rank = w.rank if rank is None else rank
        size = w.size if size is None else size
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"shard: need 0 <= rank < size, got rank {rank} and size {size}")
    leaves, treedef = fn.tree.flatten(arrays)
    if not leaves:
        raise ValueError("shard: no arrays to shard")
    leaves = [np.asarray(fn.to_numpy(a)) for a in leaves]
    lengths = {a.shape[0] if a.ndim else None for a in leaves}
    if len(lengths) != 1 or None in lengths:
        shapes = ", ".join(str(a.shape) for a in leaves)
        raise ValueError(f"shard: every array needs the same number of examples along axis 0; "
                         f"got shapes {shapes}")
    n = lengths.pop()
    if key is None:
        positions = np.arange(rank, n, size)
    else:
        order = np.asarray(fn.to_numpy(fn.random.permutation(key, n)), dtype=np.int64)
        positions = order[rank::size]
    return fn.tree.unflatten(treedef, [a[positions] for a in leaves])
