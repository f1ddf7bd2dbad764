"""Small pytree arithmetic and safe numerics shared by the optimizers.

Everything here is written with ``funcnet.numpy`` so that it runs eagerly and
under ``jit``, ``vmap`` and ``grad`` alike.  The helpers are private: users
compose them through the public transforms.

>>> import numpy as np
>>> from funcnet.optim import _numerics as nx
>>> nx.safe_increment(np.asarray(2**31 - 1, np.int32))
array(2147483647, dtype=int32)
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp

_is_none = lambda x: x is None  # noqa: E731


def is_concrete(x) -> bool:
    """True for eager values (backend arrays, NumPy arrays, Python scalars), False for tracers."""
    if isinstance(x, (np.ndarray, np.generic, int, float, bool, complex)):
        return True
    array_type = getattr(fn.get_backend(), "array_type", None)
    return array_type is not None and isinstance(x, array_type)


def dtype_of(x) -> np.dtype:
    """The dtype of an array, tracer or Python scalar (a scalar's NumPy 2 default)."""
    if hasattr(x, "dtype"):
        return np.dtype(x.dtype)
    return fnp.asarray(x).dtype


def zeros_count():
    """A fresh step counter: an int32 zero, as optax keeps it."""
    return fnp.zeros((), dtype=fnp.int32)


def safe_increment(count):
    """``count + 1``, saturating at the dtype's maximum instead of wrapping around.

    >>> import numpy as np
    >>> safe_increment(np.asarray(1, np.int32))
    array(2, dtype=int32)
    """
    dt = dtype_of(count)
    if dt.kind in "iu":
        top = int(np.iinfo(dt).max)
    elif dt.kind == "f":
        top = float(np.finfo(dt).max)
    else:
        raise ValueError(f"cannot increment a counter of dtype {dt}; use an integer or float")
    return fnp.where(count < top, count + 1, top).astype(dt)


def abs_sq(x):
    """``|x|**2`` elementwise (real input: ``x * x``)."""
    if dtype_of(x).kind == "c":
        return fnp.real(fnp.conj(x) * x)
    return x * x


def cast(x, dtype):
    """``x`` as ``dtype`` (no copy when it already has it); ``dtype=None`` leaves it."""
    if dtype is None or x is None:
        return x
    dtype = np.dtype(dtype)
    if dtype_of(x) == dtype and not isinstance(x, (int, float, complex, bool)):
        return x
    return fnp.asarray(x, dtype=dtype)


def tree_cast(tree, dtype):
    """Every leaf of ``tree`` as ``dtype`` (``None`` keeps the tree as it is)."""
    if dtype is None:
        return tree
    return fn.tree.map(lambda x: cast(x, dtype), tree)


def tree_cast_like(tree, like):
    """Every leaf of ``tree`` cast to the dtype of the matching leaf of ``like``."""
    return fn.tree.map(lambda x, y: None if x is None else cast(x, dtype_of(y)), tree, like,
                       is_leaf=_is_none)


def tree_zeros_like(tree, dtype=None):
    """Zeros shaped like each leaf (dtype ``dtype``, or the leaf's own)."""
    return fn.tree.map(lambda x: fnp.zeros(np.shape(x), dtype=dtype or dtype_of(x)), tree)


def tree_full_like(tree, value, dtype=None):
    """``value`` broadcast to each leaf's shape (dtype ``dtype``, or the leaf's own)."""
    return fn.tree.map(lambda x: fnp.full(np.shape(x), value, dtype=dtype or dtype_of(x)), tree)


def tree_vdot(a, b):
    """``sum(conj(a) * b)`` over every leaf of two trees of the same structure."""
    def one(x, y):
        if dtype_of(x).kind == "c":
            x = fnp.conj(x)
        return fnp.sum(x * y)

    return fn.tree.reduce(operator.add, fn.tree.map(one, a, b), 0)


def tree_sum_squares(tree):
    """``sum |x|**2`` over every element of every leaf (0 for an empty tree)."""
    return fn.tree.reduce(operator.add, [fnp.sum(abs_sq(x)) for x in fn.tree.leaves(tree)], 0)


def tree_add_scale(a, s, b):
    """``a + s * b`` leafwise (``None`` leaves of ``a`` stay ``None``)."""
    return fn.tree.map(lambda x, y: None if x is None else x + s * y, a, b, is_leaf=_is_none)


def tree_where(cond, a, b):
    """``where(cond, a, b)`` leafwise, keeping the dtypes of ``b``."""
    return fn.tree.map(lambda x, y: fnp.where(cond, x, y).astype(dtype_of(y)), a, b)


def tree_all_finite(tree):
    """A boolean scalar: every element of every float leaf is finite."""
    checks = [fnp.all(fnp.isfinite(x)) for x in fn.tree.leaves(tree)
              if dtype_of(x).kind in "fc"]
    if not checks:
        return fnp.asarray(True)
    out = checks[0]
    for c in checks[1:]:
        out = fnp.logical_and(out, c)
    return out


def tree_count_nonfinite(tree):
    """The number of NaN or infinite elements in the float leaves of ``tree`` (int32)."""
    total = fnp.zeros((), dtype=fnp.int32)
    for x in fn.tree.leaves(tree):
        if dtype_of(x).kind in "fc":
            bad = fnp.logical_not(fnp.isfinite(x))
            total = total + fnp.sum(bad.astype(fnp.int32)).astype(fnp.int32)
    return total


def float_dtype(tree, default=None) -> np.dtype:
    """The widest floating dtype among the leaves of ``tree`` (or the default float)."""
    best = None
    for x in fn.tree.leaves(tree):
        dt = dtype_of(x)
        if dt.kind == "c":
            dt = np.dtype(np.finfo(dt).dtype)
        if dt.kind != "f":
            continue
        best = dt if best is None or dt.itemsize > best.itemsize else best
    if best is None:
        best = np.dtype(default) if default is not None else fn.config.float_dtype
    return best


def safe_norm(x, min_norm):
    """``max(||x||, min_norm)`` whose gradient is 0 (not NaN) where ``||x|| <= min_norm``.

    The norm is the 2-norm of all elements.  The double ``where`` keeps a
    zero input away from ``sqrt``'s infinite derivative.
    """
    norm = fnp.sqrt(fnp.sum(abs_sq(x)))
    small = norm <= min_norm
    safe_x = fnp.where(small, fnp.ones_like(x), x)
    safe = fnp.sqrt(fnp.sum(abs_sq(safe_x)))
    return fnp.where(small, fnp.asarray(min_norm, dtype=dtype_of(safe)), safe)


def ravel_tree(tree) -> tuple[Any, Any]:
    """``(vector, unravel)``: all leaves of ``tree`` as one 1-D vector, and the inverse.

    The vector has the leaves' common promoted dtype; ``unravel`` restores
    each leaf's shape and dtype.
    """
    leaves, treedef = fn.tree.flatten(tree)
    shapes = [np.shape(x) for x in leaves]
    dtypes = [dtype_of(x) for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    if not leaves:
        return fnp.zeros((0,), dtype=fn.config.float_dtype), lambda v: treedef.unflatten([])
    vec = fnp.concatenate([fnp.reshape(fnp.asarray(x), (-1,)) for x in leaves])

    def unravel(v):
        out, start = [], 0
        for shape, dt, n in zip(shapes, dtypes, sizes):
            out.append(fnp.reshape(v[start:start + n], shape).astype(dt))
            start += n
        return treedef.unflatten(out)

    return vec, unravel
