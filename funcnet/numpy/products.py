"""Products and contractions: dot, matmul, vdot, inner, outer, tensordot, einsum,
trace, diagonal, diag.

>>> import funcnet.numpy as fnp
>>> fnp.matmul(fnp.ones((2, 3)), fnp.ones((3,)))
array([3., 3.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.numpy.conversion import as_array
from funcnet.numpy.math import multiply
from funcnet.ops import shape as sh
from funcnet.ops.contraction import dot_general
from funcnet.ops.rules import broadcast_shapes, normalize_axis


def matmul(a, b):
    """Matrix product with NumPy's ``@`` rules (1-d promotion, batch broadcasting).

    >>> import funcnet.numpy as fnp
    >>> (fnp.ones((4, 2, 3)) @ fnp.ones((3, 5))).shape
    (4, 2, 5)
    """
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must not be scalars (shapes {a.shape} and {b.shape}); "
                         "use * for scalar multiplication")
    if a.ndim == 2 and b.ndim == 2 or b.ndim == 1 or a.ndim == 1:
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{a.shape[-1]} (last axis of the first) != "
                             f"{b.shape[-2 if b.ndim > 1 else 0]}")
    if b.ndim == 1:
        return dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())))
    if a.ndim == 1:
        out = dot_general(a, b, (((0,), (b.ndim - 2,)), ((), ())))
        return out if b.ndim == 2 else _move_last_to(out, b.ndim - 2)
    if a.ndim == 2 and b.ndim == 2:
        return dot_general(a, b, (((1,), (0,)), ((), ())))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned on the "
                         "contracted axis")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = sh.broadcast_to(a, batch + a.shape[-2:])
    b = sh.broadcast_to(b, batch + b.shape[-2:])
    nb = len(batch)
    return dot_general(a, b, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))


def _move_last_to(x, pos):
    perm = list(range(x.ndim - 1))
    perm.insert(pos, x.ndim - 1)
    return sh.transpose(x, tuple(perm))


def dot(a, b):
    """NumPy's ``dot``: scalars multiply, 2-d is matmul, N-d sums over a's last and
    b's second-to-last axis.

    >>> import funcnet.numpy as fnp
    >>> fnp.dot(fnp.array([1, 2]), fnp.array([3, 4]))
    array(11)
    >>> fnp.dot(fnp.array([[1, 2], [3, 4]]), fnp.array([[1], [1]]))
    array([[3],
           [7]])
    """
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim == 1:
        return matmul(a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned")
    return dot_general(a, b, (((a.ndim - 1,), (b.ndim - 2,)), ((), ())))


def vdot(a, b):
    """Dot product of ``a`` and ``b`` flattened to 1-d (same size).

    >>> import funcnet.numpy as fnp
    >>> fnp.vdot(fnp.array([[1, 2], [3, 4]]), fnp.ones((2, 2), dtype=int))
    array(10)
    """
    a, b = as_array(a), as_array(b)
    if a.dtype.kind == "c":  # like NumPy: the first argument is conjugated
        from funcnet.numpy.fft import conj

        a = conj(a)
    return dot_general(sh.reshape(a, (a.size,)), sh.reshape(b, (b.size,)),
                       (((0,), (0,)), ((), ())))


def inner(a, b):
    """Sum product over the last axes (a scalar operand multiplies).

    >>> import funcnet.numpy as fnp
    >>> fnp.inner(fnp.array([[1, 2], [3, 4]]), fnp.array([1, 1]))
    array([3, 7])
    """
    a, b = as_array(a), as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())))


def outer(a, b):
    """Outer product of the flattened arrays.

    >>> import funcnet.numpy as fnp
    >>> fnp.outer(fnp.array([1, 2]), fnp.array([1, 10, 100]))
    array([[  1,  10, 100],
           [  2,  20, 200]])
    """
    a, b = as_array(a), as_array(b)
    a = sh.reshape(a, (a.size, 1))
    b = sh.reshape(b, (1, b.size))
    return multiply(a, b)


def tensordot(a, b, axes=2):
    """Sum products over the given axes (an int N: a's last N and b's first N; or a pair
    of axis lists).

    >>> import funcnet.numpy as fnp
    >>> fnp.tensordot(fnp.ones((2, 3)), fnp.ones((3, 4)), axes=1).shape
    (2, 4)
    >>> fnp.tensordot(fnp.ones((3, 2)), fnp.ones((3, 4)), axes=([0], [0])).shape
    (2, 4)
    """
    a, b = as_array(a), as_array(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ax_a = tuple(range(a.ndim - n, a.ndim))
        ax_b = tuple(range(n))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, int) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, int) else tuple(ax_b)
    ax_a = tuple(normalize_axis(x, a.ndim) for x in ax_a)
    ax_b = tuple(normalize_axis(x, b.ndim) for x in ax_b)
    return dot_general(a, b, ((ax_a, ax_b), ((), ())))


def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The diagonal over ``axis1`` and ``axis2`` (``offset`` above it if positive), moved to
    the last axis.

    >>> import funcnet.numpy as fnp
    >>> x = fnp.array([[1, 2, 3], [4, 5, 6]])
    >>> fnp.diagonal(x), fnp.diagonal(x, offset=1)
    (array([1, 5]), array([2, 6]))
    """
    from funcnet.numpy.indexing import gather_index
    from funcnet.numpy.manipulation import moveaxis

    a = as_array(a)
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    n, m = a.shape[-2], a.shape[-1]
    rows = np.arange(max(0, -offset), min(n, m - offset))
    return gather_index(a, (Ellipsis, rows, rows + offset))


def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """Sum along a diagonal (the arguments as in ``diagonal``).

    >>> import funcnet.numpy as fnp
    >>> fnp.trace(fnp.array([[1, 2], [3, 4]]))
    array(5)
    """
    from funcnet.numpy.reductions import sum

    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


def diag(v, k: int = 0):
    """Extract a diagonal of a 2-d array, or build a 2-d array from a 1-d diagonal.

    >>> import funcnet.numpy as fnp
    >>> fnp.diag(fnp.array([1, 2]))
    array([[1, 0],
           [0, 2]])
    """
    from funcnet.numpy.creation import zeros
    from funcnet.numpy.indexing import at

    v = as_array(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag expects a 1-d or 2-d array, got shape {v.shape}")
    n = v.shape[0] + abs(k)
    i = np.arange(v.shape[0])
    rows, cols = (i, i + k) if k >= 0 else (i - k, i)
    return at(zeros((n, n), v.dtype))[rows, cols].set(v)


def einsum(subscripts: str, *operands):
    """Einstein summation, built from ``dot_general``, transposes and sums.

    >>> import funcnet.numpy as fnp
    >>> fnp.einsum("ij,jk->ik", fnp.ones((2, 3)), fnp.ones((3, 4))).shape
    (2, 4)
    """
    from funcnet.numpy.einsum import einsum as _einsum

    return _einsum(subscripts, *operands)
