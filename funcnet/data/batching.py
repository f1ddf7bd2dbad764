"""Mini-batches and splits driven by explicit random keys.

The order of the examples is a pure function of the key (a permutation from
:func:`funcnet.random.permutation`), so an epoch is reproducible from its
key alone: fold the epoch number into a base key to get a new order each
epoch and the same orders on every run.

>>> import numpy as np
>>> from funcnet import data, random
>>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> for xb, yb in data.batches(random.key(0), (x, y), batch_size=2):
...     print(xb.shape, yb.shape)
(2, 2) (2,)
(2, 2) (2,)
(1, 2) (1,)
"""

from __future__ import annotations

import math

import numpy as np

import funcnet as fn

__all__ = ["batches", "num_batches", "train_test_split"]


def _leading_size(leaves, caller: str) -> int:
    if not leaves:
        raise ValueError(f"{caller}: no arrays given")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if -1 in sizes:
        raise ValueError(f"{caller}: every array needs a leading (example) axis; got a scalar")
    if len(sizes) != 1:
        shapes = [tuple(np.shape(leaf)) for leaf in leaves]
        raise ValueError(f"{caller}: the arrays must have the same number of examples along "
                         f"axis 0, got shapes {shapes}")
    return sizes.pop()


def _as_leaves(arrays, caller: str):
    leaves, treedef = fn.tree.flatten(arrays)
    leaves = [leaf if isinstance(leaf, np.ndarray) else np.asarray(fn.to_numpy(leaf))
              for leaf in leaves]
    return leaves, treedef, _leading_size(leaves, caller)


def num_batches(num_examples: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``num_examples`` examples.

    >>> from funcnet import data
    >>> data.num_batches(10, 4), data.num_batches(10, 4, drop_last=True)
    (3, 2)
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return num_examples // batch_size if drop_last else math.ceil(num_examples / batch_size)


def batches(key, arrays, batch_size: int, shuffle: bool = True, drop_last: bool = False):
    """Iterate over mini-batches of ``arrays`` in an order drawn from ``key``.

    ``arrays`` is one array or any pytree of arrays (tuple, dict, ...) with the
    same number of examples along axis 0; each batch has the same structure.
    With ``shuffle=True`` the order is ``funcnet.random.permutation(key, n)``:
    the same key gives the same batches, and every example appears exactly
    once per pass.  With ``shuffle=False`` the order is ``0 ... n-1`` and
    ``key`` may be ``None``.  The last batch is smaller when ``batch_size``
    does not divide ``n``, unless ``drop_last=True`` drops it.  Batches are
    NumPy arrays (copies, safe to keep).  Arguments are checked when
    ``batches`` is called, not at the first ``next``.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x = np.arange(6)
    >>> [b.tolist() for b in data.batches(random.key(1), x, 4)]
    [[0, 4, 1, 2], [5, 3]]
    >>> [b["x"].tolist() for b in data.batches(None, {"x": x}, 4, shuffle=False, drop_last=True)]
    [[0, 1, 2, 3]]
    """
    leaves, treedef, n = _as_leaves(arrays, "batches")
    count = num_batches(n, int(batch_size), drop_last)
    if shuffle:
        if key is None:
            raise ValueError("batches: shuffle=True needs a key (or pass shuffle=False)")
        order = np.asarray(fn.to_numpy(fn.random.permutation(key, n)), dtype=np.int64)
    else:
        order = None

    def generate():
        for b in range(count):
            lo, hi = b * batch_size, min((b + 1) * batch_size, n)
            if order is None:
                chunk = [leaf[lo:hi].copy() for leaf in leaves]
            else:
                idx = order[lo:hi]
                chunk = [leaf[idx] for leaf in leaves]
            yield fn.tree.unflatten(treedef, chunk)

    return generate()


def train_test_split(key, arrays, test_size=0.2, stratify=None):
    """Split ``arrays`` (a pytree) into ``(train, test)`` at random, reproducibly from ``key``.

    ``test_size`` is a fraction in ``(0, 1)`` or a number of examples.  With
    ``stratify`` (one label per example) every class contributes the same
    fraction (rounded) to the test set.  Within each part the examples keep
    their original order.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> (x_tr, y_tr), (x_te, y_te) = data.train_test_split(random.key(0), (x, y), 0.4,
    ...                                                    stratify=y)
    >>> x_tr.shape, x_te.shape, np.bincount(y_te).tolist()
    ((6, 2), (4, 2), [2, 2])
    """
    leaves, treedef, n = _as_leaves(arrays, "train_test_split")
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"train_test_split: a fractional test_size must be in (0, 1), "
                             f"got {test_size}")
        fraction = test_size
    else:
        if not 0 <= int(test_size) <= n:
            raise ValueError(f"train_test_split: test_size={test_size} examples, but there are "
                             f"{n}")
        fraction = int(test_size) / n if n else 0.0
    is_test = np.zeros(n, dtype=bool)
    if stratify is None:
        k = round(fraction * n) if isinstance(test_size, float) else int(test_size)
        perm = np.asarray(fn.to_numpy(fn.random.permutation(key, n)))
        is_test[perm[:k]] = True
    else:
        labels = np.asarray(fn.to_numpy(stratify)).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"train_test_split: stratify has {labels.shape[0]} labels for {n} "
                             "examples")
        for i, cls in enumerate(np.unique(labels)):
            members = np.flatnonzero(labels == cls)
            perm = np.asarray(fn.to_numpy(fn.random.permutation(fn.random.fold_in(key, i),
                                                                len(members))))
            is_test[members[perm[:round(fraction * len(members))]]] = True
    train = fn.tree.unflatten(treedef, [leaf[~is_test] for leaf in leaves])
    test = fn.tree.unflatten(treedef, [leaf[is_test] for leaf in leaves])
    return train, test
