"""``funcnet.numpy.linalg`` (``fnp.linalg``): norms, determinants, inverses,
linear solves and the Cholesky factorisation.

Every function works on a single matrix or on a stack of them (the last two
axes), like NumPy, and is differentiable to any order.  Integer input is
computed in float64, as in NumPy; float32 stays float32.  Like NumPy, a
singular matrix makes ``solve``/``inv`` (and the derivatives of ``det`` and
``slogdet``) raise ``LinAlgError``, and ``cholesky`` raises it for a matrix
that is not positive definite.

>>> import numpy as np
>>> from funcnet.numpy import linalg
>>> a = np.array([[4.0, 2.0], [2.0, 3.0]])
>>> float(linalg.det(a))
8.0
>>> linalg.solve(a, np.array([2.0, 1.0]))
array([0.5, 0. ])
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from funcnet.numpy.conversion import as_array
from funcnet.numpy.fft import imag, real
from funcnet.numpy.math import where
from funcnet.ops import elementwise as ew
from funcnet.ops import linalg as la
from funcnet.ops import reductions as red
from funcnet.ops import shape as sh
from funcnet.ops.rules import broadcast_shapes, normalize_axis

LinAlgError = np.linalg.LinAlgError

#: The result of :func:`slogdet`: ``(sign, logabsdet)``, also readable by name.
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
SlogdetResult.__doc__ = """``slogdet``'s result: the sign and the log of the absolute determinant.

>>> import funcnet.numpy as fnp
>>> fnp.linalg.slogdet(fnp.eye(2) * 2.0).sign
array(1., dtype=float32)
"""


def _inexact(x, name: str):
    """Integers and bools become float64 (as in NumPy); float16 is not supported."""
    x = as_array(x)
    if x.dtype.kind in "biu":
        return ew.convert_element_type(x, np.float64)
    if x.dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        raise TypeError(f"{name}: arrays of dtype {x.dtype} are not supported (use float32, "
                        "float64, complex64 or complex128)")
    return x


def _square(x, name: str):
    x = _inexact(x, name)
    la.check_square(name, tuple(x.shape))
    return x


def det(a):
    """The determinant of ``a`` (``[..., n, n]``; one value per matrix).

    Its derivative is ``det(a) * trace(inv(a) @ da)``.

    >>> import numpy as np
    >>> from funcnet.numpy.linalg import det
    >>> det(np.array([[[2.0, 0.0], [0.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])).round(6)
    array([ 6., -2.])
    """
    return la.det(_square(a, "det"))


def slogdet(a):
    """``(sign, logabsdet)`` with ``det(a) == sign * exp(logabsdet)``, without overflow.

    Returns a :data:`SlogdetResult` named tuple.  ``sign`` has a zero
    derivative for real ``a``; ``logabsdet``'s is ``trace(inv(a) @ da)``.

    >>> import numpy as np
    >>> from funcnet.numpy.linalg import slogdet
    >>> sign, logabsdet = slogdet(np.array([[-2.0, 0.0], [0.0, 1.0]]))
    >>> float(sign), round(float(logabsdet), 6)
    (-1.0, 0.693147)
    """
    sign, logabsdet = la.slogdet(_square(a, "slogdet"))
    return SlogdetResult(sign, logabsdet)


def inv(a):
    """The inverse of each matrix of ``a``, computed as ``solve(a, I)``.

    >>> import numpy as np
    >>> from funcnet.numpy.linalg import inv
    >>> inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    a = _square(a, "inv")
    return la.solve(a, la.batched_identity(tuple(a.shape), a.dtype))


def solve(a, b):
    """The solution ``x`` of ``a @ x = b``, with NumPy 2's rules.

    ``a`` is ``[..., n, n]``.  A 1-d ``b`` of length ``n`` is one right-hand
    side vector (the result has shape ``[..., n]``); otherwise ``b`` is
    ``[..., n, k]`` and the leading axes of ``a`` and ``b`` broadcast.

    >>> import numpy as np
    >>> from funcnet.numpy.linalg import solve
    >>> solve(np.eye(2) * 2.0, np.ones((3, 2, 1))).shape
    (3, 2, 1)
    """
    a = _square(a, "solve")
    b = _inexact(b, "solve")
    dtype = np.result_type(a.dtype, b.dtype)
    a = ew.convert_element_type(a, dtype)
    b = ew.convert_element_type(b, dtype)
    n = a.shape[-1]
    vector = b.ndim == 1
    if vector:
        if b.shape[0] != n:
            raise ValueError(f"solve: the matrix of shape {tuple(a.shape)} and the right-hand "
                             f"side of shape {tuple(b.shape)} do not match (expected a vector "
                             f"of length {n})")
        b = sh.reshape(b, (n, 1))
    elif b.ndim < 2 or b.shape[-2] != n:
        raise ValueError(f"solve: the matrix of shape {tuple(a.shape)} and the right-hand "
                         f"side of shape {tuple(b.shape)} do not match (expected b of shape "
                         f"({n},) or [..., {n}, k])")
    try:
        batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    except ValueError:
        raise ValueError(f"solve: the leading (batch) axes of shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)} cannot be broadcast together") from None
    a = sh.broadcast_to(a, batch + (n, n))
    b = sh.broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = la.solve(a, b)
    return sh.reshape(x, batch + (n,)) if vector else x


def cholesky(a, upper: bool = False):
    """The Cholesky factor of the Hermitian positive-definite ``a``.

    Returns the lower-triangular ``L`` with ``L @ L^H == a`` (or ``L^H`` when
    ``upper``).  Only the lower triangle of ``a`` is read, and derivatives
    assume symmetric perturbations ``da`` (as in JAX): differentiate through
    ``cholesky((m + m.T) / 2)`` to make that explicit for an arbitrary ``m``.

    >>> import numpy as np
    >>> from funcnet.numpy.linalg import cholesky
    >>> cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    array([[2., 0.],
           [1., 2.]])
    """
    L = la.cholesky(_square(a, "cholesky"))
    return la.adjoint(L) if upper else L


# ---------------------------------------------------------------------------
# norm


def _abs2(x):
    """``|x|**2`` elementwise, real-valued."""
    if x.dtype.kind == "c":
        re, im = real(x), imag(x)
        return ew.add(ew.mul(re, re), ew.mul(im, im))
    return ew.mul(x, x)


def _safe_sqrt(s):
    """``sqrt(s)`` whose derivative at ``s == 0`` is 0 instead of NaN (double where)."""
    zero = ew.eq(s, 0)
    return where(zero, 0.0, ew.sqrt(where(zero, 1.0, s)))


def _two_norm(x, axes):
    return _safe_sqrt(red.reduce_sum(_abs2(x), axes))


def _vector_norm(x, ord, axis: int):  # noqa: A002 - NumPy's name
    axes = (axis,)
    if ord is None or ord == 2:
        return _two_norm(x, axes)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    mag = ew.abs(x)
    if ord == np.inf:
        return red.reduce_max(mag, axes)
    if ord == -np.inf:
        return red.reduce_min(mag, axes)
    if ord == 0:
        return red.reduce_sum(ew.convert_element_type(ew.ne(x, 0), mag.dtype), axes)
    if ord == 1:
        return red.reduce_sum(mag, axes)
    p = float(ord)
    return ew.pow(red.reduce_sum(ew.pow(mag, p), axes), 1.0 / p)


def _matrix_norm(x, ord, row: int, col: int):  # noqa: A002
    if ord is None or ord == "fro":
        return _two_norm(x, (row, col))
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(
            f"norm: the matrix norm ord={ord!r} needs singular values (an SVD), which "
            "funcnet.numpy.linalg does not provide; use ord=None/'fro', 1, -1, inf or -inf")
    mag = ew.abs(x)
    if ord in (1, -1):
        sums, over = red.reduce_sum(mag, (row,)), col - (1 if col > row else 0)
    elif ord in (np.inf, -np.inf):
        sums, over = red.reduce_sum(mag, (col,)), row - (1 if row > col else 0)
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    pick = red.reduce_max if ord in (1, np.inf) else red.reduce_min
    return pick(sums, (over,))


def norm(x, ord=None, axis=None, keepdims: bool = False):  # noqa: A002 - NumPy's name
    """A vector or matrix norm, as ``numpy.linalg.norm``.

    With ``axis=None`` and ``ord=None`` it is the 2-norm of the flattened
    array; otherwise a 1-d array (or an int ``axis``) takes a vector norm —
    ``ord`` ``None``/2, 1, ``inf``, ``-inf``, 0 or any ``p`` — and a 2-d
    array (or a pair of axes) a matrix norm — ``None``/``'fro'``, 1, -1,
    ``inf``, ``-inf`` (``2``, ``-2`` and ``'nuc'`` need an SVD and raise
    ``NotImplementedError``).  The 2-norm and the Frobenius norm have a zero
    (not NaN) gradient at zero, so ``grad(norm)`` is safe to use anywhere.

    >>> import numpy as np
    >>> import funcnet as fn
    >>> from funcnet.numpy.linalg import norm
    >>> float(norm(np.array([3.0, 4.0])))
    5.0
    >>> norm(np.array([[1.0, -2.0], [3.0, 4.0]]), ord=1, axis=(0, 1))
    array(6.)
    >>> fn.grad(norm)(np.zeros(2))
    array([0., 0.])
    """
    x = _inexact(x, "norm")
    nd = x.ndim
    if axis is None:
        if ord is None:
            out = _two_norm(sh.reshape(x, (x.size,)), (0,))
            return sh.reshape(out, (1,) * nd) if keepdims else out
        if nd == 1:
            axes = (0,)
        elif nd == 2:
            axes = (0, 1)
        else:
            raise ValueError(f"norm: an array of shape {tuple(x.shape)} needs axis= when ord "
                             "is given (a vector norm takes 1 axis, a matrix norm 2)")
    elif isinstance(axis, (int, np.integer)):
        axes = (int(axis),)
    else:
        axes = tuple(int(a) for a in axis)
    axes = tuple(normalize_axis(a, nd) for a in axes)
    if len(axes) == 1:
        out = _vector_norm(x, ord, axes[0])
    elif len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError(f"norm: duplicate axes given: {axis}")
        out = _matrix_norm(x, ord, axes[0], axes[1])
    else:
        raise ValueError(f"norm: axis must name 1 or 2 axes, got {axis}")
    if keepdims:
        out = sh.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    return out


__all__ = ["norm", "det", "slogdet", "inv", "solve", "cholesky", "LinAlgError",
           "SlogdetResult"]
