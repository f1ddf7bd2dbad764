"""Linear-algebra primitives: ``cholesky``, ``triangular_solve``, ``solve``,
``det`` and ``slogdet``, each batched over leading axes, with their rules.

Matrix operands are ``[..., n, n]`` and right-hand sides ``[..., n, k]`` with
the same leading (batch) shape; ``funcnet.numpy.linalg`` does NumPy's
broadcasting and vector promotion before binding them.  Every JVP rule is
written with primitives, so derivatives of any order work; ``solve`` and
``triangular_solve`` are linear in the right-hand side and have transpose
rules there.

>>> import numpy as np
>>> from funcnet.ops.linalg import solve
>>> solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([[2.0], [2.0]]))
array([[1. ],
       [0.5]])
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.primitive import Primitive
from funcnet.ops import elementwise as ew
from funcnet.ops.contraction import dot_general
from funcnet.ops.fft import complex_, conj, imag, real, real_dtype
from funcnet.ops.reductions import reduce_sum
from funcnet.ops.rules import is_undefined
from funcnet.ops.shape import broadcast_in_dim, transpose
from funcnet.transforms.ad import Zero, add_tangents

_LINALG_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64,
                                              np.complex128))

# ---------------------------------------------------------------------------
# Helpers written with primitives (usable on tracers)


def matrix_transpose(x):
    """Swap the last two axes.

    >>> matrix_transpose(np.zeros((4, 2, 3))).shape
    (4, 3, 2)
    """
    nd = len(np.shape(x))
    return transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def adjoint(x):
    """The conjugate transpose over the last two axes (the transpose for real dtypes).

    >>> adjoint(np.array([[1j, 2j], [0.0, 1.0]])).imag
    array([[-1., -0.],
           [-2., -0.]])
    """
    xt = matrix_transpose(x)
    return conj(xt) if np.dtype(x.dtype).kind == "c" else xt


def batched_matmul(a, b):
    """``a @ b`` for operands with the same leading batch shape.

    >>> batched_matmul(np.ones((5, 2, 3)), np.ones((5, 3, 4))).shape
    (5, 2, 4)
    """
    nd = len(np.shape(a))
    nb = nd - 2
    return dot_general(a, b, (((nd - 1,), (nd - 2,)), (tuple(range(nb)), tuple(range(nb)))))


def batched_identity(shape: tuple, dtype):
    """Identity matrices broadcast to ``shape`` (``[..., n, n]``).

    >>> batched_identity((3, 2, 2), np.float32).sum()
    np.float32(6.0)
    """
    n = shape[-1]
    nd = len(shape)
    return broadcast_in_dim(np.eye(n, dtype=dtype), tuple(shape), (nd - 2, nd - 1))


def _trace_of_product(a_inv_t, t):
    """``trace(A^-1 @ T)`` as ``sum(A^-T * T)`` over the last two axes."""
    nd = len(np.shape(t))
    return reduce_sum(ew.mul(t, a_inv_t), (nd - 2, nd - 1))


def _is_mapped(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def batch_leading(prim: Primitive):
    """Batching rule for a primitive that is already batched over leading axes.

    The batch axis moves to the front (an unbatched operand is broadcast), the
    primitive runs once, and the result is batched along axis 0.

    >>> out, out_dim = batch_leading(det_p)([np.stack([np.eye(2), 2 * np.eye(2)])], [0])
    >>> out, out_dim
    (array([1., 4.]), 0)
    """

    def rule(args, dims, **params):
        size = next(np.shape(a)[d] for a, d in zip(args, dims) if _is_mapped(d))
        moved = []
        for a, d in zip(args, dims):
            shape = tuple(np.shape(a))
            if _is_mapped(d):
                if d != 0:
                    a = transpose(a, (d,) + tuple(i for i in range(len(shape)) if i != d))
            else:
                a = broadcast_in_dim(a, (size,) + shape, tuple(range(1, len(shape) + 1)))
            moved.append(a)
        out = prim.bind(*moved, **params)
        return out, ([0] * len(out) if prim.multiple_results else 0)

    return rule


# ---------------------------------------------------------------------------
# Shape and dtype checks


def _check_dtype(name: str, *avals: ShapedArray) -> np.dtype:
    for a in avals:
        if a.dtype not in _LINALG_DTYPES:
            raise TypeError(f"{name}: arrays of dtype {a.dtype.name} are not supported "
                            "(use float32, float64, complex64 or complex128)")
    dts = {a.dtype for a in avals}
    if len(dts) > 1:
        raise TypeError(f"{name}: operands must have one dtype, got "
                        + ", ".join(a.str_short() for a in avals))
    return avals[0].dtype


def check_square(name: str, shape: tuple) -> None:
    """Raise a ValueError unless ``shape`` is a stack of square matrices.

    >>> check_square("det", (2, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: det: expected a square matrix ... got an array of shape (2, 3)
    """
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{name}: expected a square matrix (or a stack of them) in the last "
                         f"two axes, got an array of shape {tuple(shape)}")


def _check_system(name: str, a: ShapedArray, b: ShapedArray) -> None:
    check_square(name, a.shape)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
        raise ValueError(f"{name}: the matrix of shape {a.shape} and the right-hand side of "
                         f"shape {b.shape} do not match (expected [..., n, n] and "
                         "[..., n, k] with equal leading dimensions)")


# ---------------------------------------------------------------------------
# solve(a, b): a @ x = b

solve_p = Primitive("solve")


def solve(a, b):
    """The solution ``x`` of ``a @ x = b`` (``a``: ``[..., n, n]``, ``b``: ``[..., n, k]``).

    >>> solve(np.eye(2) * 2, np.ones((2, 1)))
    array([[0.5],
           [0.5]])
    """
    return solve_p.bind(a, b)


def _solve_abstract_eval(a, b):
    _check_system("solve", a, b)
    return ShapedArray(b.shape, _check_dtype("solve", a, b))


def _solve_jvp(primals, tangents):
    a, b = primals
    ta, tb = tangents
    x = solve(a, b)
    if type(ta) is Zero and type(tb) is Zero:
        return x, Zero(get_aval(x))
    # d x = a^-1 (d b - d a @ x)
    rhs = Zero(get_aval(x))
    if type(tb) is not Zero:
        rhs = tb
    if type(ta) is not Zero:
        da_x = ew.neg(batched_matmul(ta, x))
        rhs = add_tangents(rhs, da_x)
    return x, solve(a, rhs)


def _solve_transpose(ct, a, b):
    if is_undefined(a):
        raise TypeError("solve is not linear in its matrix")
    return [None, solve(matrix_transpose(a), ct)]


solve_p.abstract_eval = _solve_abstract_eval
solve_p.jvp = _solve_jvp
solve_p.transpose = _solve_transpose
solve_p.linear = True  # in b, for a known matrix
solve_p.batch = batch_leading(solve_p)

# ---------------------------------------------------------------------------
# triangular_solve(a, b): op(tri(a)) @ x = b, where tri keeps the lower (or
# upper) triangle of a (the other triangle is never read) and op transposes
# when transpose_a is set.

triangular_solve_p = Primitive("triangular_solve")


def triangular_solve(a, b, lower: bool = True, transpose_a: bool = False):
    """Solve ``op(T) @ x = b`` for the triangle ``T`` of ``a`` (lower or upper).

    ``op(T)`` is ``T`` or, with ``transpose_a``, ``T``'s transpose (never its
    conjugate).  Only the chosen triangle of ``a`` is read.

    >>> a = np.array([[2.0, 9.0], [1.0, 1.0]])
    >>> triangular_solve(a, np.array([[2.0], [2.0]]), lower=True)
    array([[1.],
           [1.]])
    """
    return triangular_solve_p.bind(a, b, lower=bool(lower), transpose_a=bool(transpose_a))


def triangle(x, lower: bool):
    """The lower (or upper) triangle of ``x``, diagonal included, as a mask product.

    >>> triangle(np.ones((2, 2)), lower=False)
    array([[1., 1.],
           [0., 1.]])
    """
    n = np.shape(x)[-1]
    mask = np.tri(n, n, 0, dtype=real_dtype(x.dtype))
    return ew.mul(x, mask if lower else mask.T)


def _tri_abstract_eval(a, b, *, lower, transpose_a):
    _check_system("triangular_solve", a, b)
    return ShapedArray(b.shape, _check_dtype("triangular_solve", a, b))


def _tri_jvp(primals, tangents, *, lower, transpose_a):
    a, b = primals
    ta, tb = tangents
    x = triangular_solve(a, b, lower, transpose_a)
    if type(ta) is Zero and type(tb) is Zero:
        return x, Zero(get_aval(x))
    rhs = Zero(get_aval(x))
    if type(tb) is not Zero:
        rhs = tb
    if type(ta) is not Zero:
        dt = triangle(ta, lower)
        if transpose_a:
            dt = matrix_transpose(dt)
        rhs = add_tangents(rhs, ew.neg(batched_matmul(dt, x)))
    return x, triangular_solve(a, rhs, lower, transpose_a)


def _tri_transpose(ct, a, b, *, lower, transpose_a):
    if is_undefined(a):
        raise TypeError("triangular_solve is not linear in its matrix")
    return [None, triangular_solve(a, ct, lower, not transpose_a)]


triangular_solve_p.abstract_eval = _tri_abstract_eval
triangular_solve_p.jvp = _tri_jvp
triangular_solve_p.transpose = _tri_transpose
triangular_solve_p.linear = True  # in b, for a known matrix
triangular_solve_p.batch = batch_leading(triangular_solve_p)

# ---------------------------------------------------------------------------
# cholesky(a): the lower-triangular L with L @ L^H = a (only a's lower
# triangle is read).  Derivatives assume symmetric (Hermitian) perturbations.

cholesky_p = Primitive("cholesky")


def cholesky(a):
    """The lower Cholesky factor of the Hermitian positive-definite ``a``.

    >>> cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 0.],
           [1., 1.]])
    """
    return cholesky_p.bind(a)


def _cholesky_abstract_eval(a):
    check_square("cholesky", a.shape)
    _check_dtype("cholesky", a)
    return ShapedArray(a.shape, a.dtype)


def _cholesky_jvp(primals, tangents):
    (a,), (ta,) = primals, tangents
    L = cholesky(a)
    if type(ta) is Zero:
        return L, Zero(get_aval(L))
    # dL = L Phi(L^-1 S L^-H), S = (dA + dA^H) / 2, Phi = lower triangle with a
    # halved diagonal.
    s = ew.mul(ew.add(ta, adjoint(ta)), 0.5)
    y = triangular_solve(L, s, lower=True)                      # L^-1 S
    x = adjoint(triangular_solve(L, adjoint(y), lower=True))    # (L^-1 (L^-1 S)^H)^H
    n = np.shape(a)[-1]
    phi_mask = np.tri(n, n, 0, dtype=real_dtype(L.dtype)) - 0.5 * np.eye(n, dtype=real_dtype(
        L.dtype))
    return L, batched_matmul(L, ew.mul(x, phi_mask))


cholesky_p.abstract_eval = _cholesky_abstract_eval
cholesky_p.jvp = _cholesky_jvp
cholesky_p.batch = batch_leading(cholesky_p)

# ---------------------------------------------------------------------------
# det(a) and slogdet(a) = (sign, log|det|)

det_p = Primitive("det")
slogdet_p = Primitive("slogdet", multiple_results=True)


def det(a):
    """The determinant of each ``[..., n, n]`` matrix.

    >>> det(np.array([[1.0, 2.0], [3.0, 4.0]])).round(6)
    np.float64(-2.0)
    """
    return det_p.bind(a)


def slogdet(a):
    """``[sign, logabsdet]`` of each matrix (``det = sign * exp(logabsdet)``).

    >>> sign, logabsdet = slogdet(np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> float(sign), float(logabsdet)
    (-1.0, 0.0)
    """
    return slogdet_p.bind(a)


def _det_abstract_eval(a):
    check_square("det", a.shape)
    return ShapedArray(a.shape[:-2], _check_dtype("det", a))


def _slogdet_abstract_eval(a):
    check_square("slogdet", a.shape)
    dt = _check_dtype("slogdet", a)
    return [ShapedArray(a.shape[:-2], dt), ShapedArray(a.shape[:-2], real_dtype(dt))]


def _inverse_transpose(a):
    """``A^-T`` (by solving against the identity)."""
    return matrix_transpose(solve(a, batched_identity(tuple(np.shape(a)), a.dtype)))


def _det_jvp(primals, tangents):
    (a,), (ta,) = primals, tangents
    d = det(a)
    if type(ta) is Zero:
        return d, Zero(get_aval(d))
    # d det = det * trace(A^-1 dA)
    return d, ew.mul(d, _trace_of_product(_inverse_transpose(a), ta))


def _slogdet_jvp(primals, tangents):
    (a,), (ta,) = primals, tangents
    sign, logabs = slogdet(a)
    if type(ta) is Zero:
        return [sign, logabs], [Zero(get_aval(sign)), Zero(get_aval(logabs))]
    tr = _trace_of_product(_inverse_transpose(a), ta)
    if np.dtype(a.dtype).kind != "c":
        return [sign, logabs], [Zero(get_aval(sign)), tr]
    # d log det = tr: its real part moves log|det|, its imaginary part rotates the sign.
    rotation = complex_(ew.mul(real(tr), 0.0), imag(tr))
    return [sign, logabs], [ew.mul(sign, rotation), real(tr)]


det_p.abstract_eval = _det_abstract_eval
det_p.jvp = _det_jvp
det_p.batch = batch_leading(det_p)
slogdet_p.abstract_eval = _slogdet_abstract_eval
slogdet_p.jvp = _slogdet_jvp
slogdet_p.batch = batch_leading(slogdet_p)

__all__ = ["solve", "triangular_solve", "cholesky", "det", "slogdet", "solve_p",
           "triangular_solve_p", "cholesky_p", "det_p", "slogdet_p", "matrix_transpose",
           "adjoint", "batched_matmul", "batched_identity", "check_square", "triangle",
           "batch_leading"]
