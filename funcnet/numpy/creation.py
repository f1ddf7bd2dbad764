"""Array creation in ``funcnet.numpy``: zeros, ones, full, arange, linspace, eye...

Where funcnet chooses the dtype it uses ``fn.config.default_float``.

>>> import funcnet.numpy as fnp
>>> fnp.zeros((2, 2)).dtype
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from funcnet.backends.base import to_numpy
from funcnet.config import config
from funcnet.core.aval import get_aval
from funcnet.core.trace import Tracer
from funcnet.numpy.conversion import as_array, as_operand, asarray
from funcnet.numpy.dtypes import promote_avals
from funcnet.ops import shape as sh
from funcnet.ops.elementwise import convert_element_type


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    out = tuple(int(d) for d in shape)
    if any(d < 0 for d in out):
        raise ValueError(f"negative dimensions are not allowed: {out}")
    return out


def _dtype(dtype, default=None):
    if dtype is None:
        return default if default is not None else config.float_dtype
    return np.dtype(dtype)


def full(shape, fill_value, dtype=None):
    """An array of ``shape`` filled with ``fill_value``.

    >>> import funcnet.numpy as fnp
    >>> fnp.full((2,), 7)
    array([7, 7])
    """
    shape = _shape(shape)
    if isinstance(fill_value, Tracer) or hasattr(fill_value, "shape") and np.ndim(fill_value):
        v = as_array(fill_value)
        if dtype is not None:
            v = convert_element_type(v, np.dtype(dtype))
        return sh.broadcast_to(v, shape)
    if dtype is None:
        dtype = asarray(fill_value).dtype
    return sh.full(shape, to_numpy(fill_value).item() if np.ndim(fill_value) == 0
                   else fill_value, np.dtype(dtype))


def zeros(shape, dtype=None):
    """An array of zeros (``default_float`` unless ``dtype`` is given).

    >>> import funcnet.numpy as fnp
    >>> fnp.zeros(2), fnp.zeros((1, 2), dtype=int)
    (array([0., 0.], dtype=float32), array([[0, 0]]))
    """
    return sh.full(_shape(shape), 0, _dtype(dtype))


def ones(shape, dtype=None):
    """An array of ones (``default_float`` unless ``dtype`` is given).

    >>> import funcnet.numpy as fnp
    >>> fnp.ones((2, 2))
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """
    return sh.full(_shape(shape), 1, _dtype(dtype))


def empty(shape, dtype=None):
    """Like ``zeros`` (funcnet never hands out uninitialised memory).

    >>> import funcnet.numpy as fnp
    >>> fnp.empty(2)
    array([0., 0.], dtype=float32)
    """
    return zeros(shape, dtype)


def zeros_like(a, dtype=None, shape=None):
    """Zeros with the shape and dtype of ``a`` (also ``empty_like``: never uninitialised).

    Python floats and lists of them count as ``default_float``.

    >>> import funcnet.numpy as fnp
    >>> fnp.zeros_like(fnp.array([1, 2])), fnp.zeros_like([1.5, 2.5])
    (array([0, 0]), array([0., 0.], dtype=float32))
    """
    a_shape = np.shape(a) if shape is None else shape
    return sh.full(_shape(a_shape), 0, _dtype(dtype, as_array(a).dtype))


def ones_like(a, dtype=None, shape=None):
    """Ones with the shape and dtype of ``a``.

    >>> import funcnet.numpy as fnp
    >>> fnp.ones_like(fnp.array([[1.0, 2.0]]))
    array([[1., 1.]], dtype=float32)
    """
    a_shape = np.shape(a) if shape is None else shape
    return sh.full(_shape(a_shape), 1, _dtype(dtype, as_array(a).dtype))


def full_like(a, fill_value, dtype=None, shape=None):
    """``fill_value`` with the shape and dtype of ``a`` (the value is cast to that dtype).

    >>> import funcnet.numpy as fnp
    >>> fnp.full_like(fnp.array([1, 2]), 7.5)
    array([7, 7])
    """
    a_shape = np.shape(a) if shape is None else shape
    return full(a_shape, fill_value, _dtype(dtype, as_array(a).dtype))


empty_like = zeros_like


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in ``[start, stop)`` (static bounds; floats use default_float).

    >>> import funcnet.numpy as fnp
    >>> fnp.arange(3)
    array([0, 1, 2])
    """
    for v in (start, stop, step):
        if isinstance(v, Tracer):
            raise TypeError("fnp.arange needs concrete bounds; under jit mark them static "
                            "(static_argnums) or use lax.iota-based code")
    out = np.arange(start, stop, step)
    if dtype is None and out.dtype == np.float64:
        dtype = config.float_dtype
    return asarray(out, dtype=dtype)


def linspace(start, stop, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype=None, axis: int = 0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (traced endpoints allowed).

    Integer (or Python number) endpoints give ``default_float`` values, unless
    ``dtype`` says otherwise; array endpoints broadcast, and ``axis`` says where
    the new axis goes.

    >>> import funcnet.numpy as fnp
    >>> fnp.linspace(0.0, 1.0, 3)
    array([0. , 0.5, 1. ], dtype=float32)
    >>> fnp.linspace(0, 10, 4, dtype=int)
    array([ 0,  3,  6, 10])
    """
    from funcnet.numpy.math import add, divide, floor, multiply, subtract

    num = int(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    start, stop = as_operand(start), as_operand(stop)
    work, _ = promote_avals(get_aval(start), get_aval(stop))  # Python numbers are weak
    if work.kind in "biu":
        work = config.float_dtype  # integer endpoints: funcnet picks the float
    start, stop = as_array(start), as_array(stop)
    out_dtype = work if dtype is None else np.dtype(dtype)
    if out_dtype.kind in "fc":
        work = out_dtype
    elif work.kind not in "fc" or dtype is not None:
        work = np.dtype(np.float64)  # integer results: compute in float64, then floor
    start, stop = convert_element_type(start, work), convert_element_type(stop, work)
    nd = len(np.broadcast_shapes(tuple(start.shape), tuple(stop.shape)))
    steps = np.arange(num, dtype=work).reshape((num,) + (1,) * nd)
    delta = subtract(stop, start)
    div = (num - 1) if endpoint else num
    if div > 0:
        step = divide(delta, div)
        out = add(multiply(steps, step), start)
    else:
        step = multiply(delta, np.nan)
        out = add(multiply(steps, delta), start)
    if endpoint and num > 1:
        from funcnet.numpy.indexing import at

        out = at(out)[-1].set(stop)
    if axis != 0:
        from funcnet.numpy.manipulation import moveaxis

        out = moveaxis(out, 0, axis)
    if out_dtype.kind in "iu":
        out = floor(out)
    out = convert_element_type(out, out_dtype)
    return (out, step) if retstep else out


def eye(N: int, M: int | None = None, k: int = 0, dtype=None):
    """A 2-d array with ones on the ``k``-th diagonal (``default_float`` unless ``dtype``).

    >>> import funcnet.numpy as fnp
    >>> fnp.eye(2, 3, k=1)
    array([[0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    return asarray(np.eye(N, M, k, dtype=_dtype(dtype)))


def identity(n: int, dtype=None):
    """The ``n`` × ``n`` identity matrix (``default_float`` unless ``dtype`` is given).

    >>> import funcnet.numpy as fnp
    >>> fnp.identity(2, dtype=int)
    array([[1, 0],
           [0, 1]])
    """
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype=None):
    """Ones at and below the ``k``-th diagonal (``default_float`` unless ``dtype``).

    >>> import funcnet.numpy as fnp
    >>> fnp.tri(2, 3, k=1)
    array([[1., 1., 0.],
           [1., 1., 1.]], dtype=float32)
    """
    return asarray(np.tri(N, M, k, dtype=_dtype(dtype)))


def tril(m, k: int = 0):
    """The lower triangle of ``m`` (the last two axes): zeros above the ``k``-th diagonal.

    >>> import funcnet.numpy as fnp
    >>> fnp.tril(fnp.array([[1, 2], [3, 4]]))
    array([[1, 0],
           [3, 4]])
    """
    from funcnet.numpy.math import where

    m = as_array(m)
    mask = np.tri(m.shape[-2], m.shape[-1], k, dtype=bool)
    return where(mask, m, np.zeros((), m.dtype))


def triu(m, k: int = 0):
    """The upper triangle of ``m`` (the last two axes): zeros below the ``k``-th diagonal.

    >>> import funcnet.numpy as fnp
    >>> fnp.triu(fnp.array([[1, 2, 3], [4, 5, 6]]), k=1)
    array([[0, 2, 3],
           [0, 0, 6]])
    """
    from funcnet.numpy.math import where

    m = as_array(m)
    mask = np.tri(m.shape[-2], m.shape[-1], k - 1, dtype=bool)
    return where(mask, np.zeros((), m.dtype), m)


def meshgrid(*xi, indexing: str = "xy"):
    """Coordinate matrices from coordinate vectors (``indexing`` ``'xy'`` or ``'ij'``).

    >>> import funcnet.numpy as fnp
    >>> [g.shape for g in fnp.meshgrid(fnp.arange(3), fnp.arange(2))]
    [(2, 3), (2, 3)]
    """
    if indexing not in ("xy", "ij"):
        raise ValueError("indexing must be 'xy' or 'ij'")
    from funcnet.numpy.manipulation import ravel

    xs = [ravel(x) for x in xi]  # inputs are flattened, traced or not
    shape = [x.shape[0] for x in xs]
    if indexing == "xy" and len(xs) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, x in enumerate(xs):
        dim = i
        if indexing == "xy" and len(xs) >= 2 and i < 2:
            dim = 1 - i
        out.append(sh.broadcast_in_dim(x, tuple(shape), (dim,)))
    return out
