"""Reductions of ``funcnet.numpy``: sum, mean, max, argmax, var, cumsum, median...

>>> import funcnet.numpy as fnp
>>> fnp.sum(fnp.ones((2, 3)), axis=-1)
array([3., 3.], dtype=float32)
"""

from __future__ import annotations

import builtins

import numpy as np

from funcnet.numpy.conversion import as_array
from funcnet.ops import reductions as red
from funcnet.ops.elementwise import convert_element_type
from funcnet.ops.rules import normalize_axis
from funcnet.ops.shape import reshape


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = tuple(sorted(normalize_axis(int(a), ndim) for a in axes))
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return out


def _keep(y, shape, axes, keepdims):
    if not keepdims:
        return y
    return reshape(y, tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _sum_dtype(dtype) -> np.dtype:
    if dtype.kind == "b" or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return dtype


def sum(a, axis=None, dtype=None, keepdims: bool = False):  # noqa: A001
    """Sum of elements over ``axis`` (small integers and bools sum as int64, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.sum(fnp.array([True, True, False]))
    array(2)
    """
    a = as_array(a)
    a = convert_element_type(a, np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype))
    axes = normalize_axes(axis, a.ndim)
    return _keep(red.reduce_sum(a, axes), a.shape, axes, keepdims)


def prod(a, axis=None, dtype=None, keepdims: bool = False):
    """Product of elements over ``axis`` (exact derivative even with zeros; small integers and
    bools multiply as int64, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.prod(fnp.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([3., 8.], dtype=float32)
    """
    a = as_array(a)
    a = convert_element_type(a, np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype))
    axes = normalize_axes(axis, a.ndim)
    return _keep(red.reduce_prod(a, axes), a.shape, axes, keepdims)


def _count(shape, axes) -> int:
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def mean(a, axis=None, dtype=None, keepdims: bool = False):
    """Arithmetic mean over ``axis`` (integers average in float64, as in NumPy; float16
    sums in float32 and rounds the mean back to float16, as NumPy does too).

    >>> import funcnet.numpy as fnp
    >>> fnp.mean(fnp.array([1.0, 2.0, 6.0]))
    array(3., dtype=float32)
    """
    from funcnet.ops.elementwise import div

    a = as_array(a)
    out_dtype = None
    if dtype is None:
        dtype = a.dtype if a.dtype.kind in "fc" else np.dtype(np.float64)
        if dtype == np.float16:
            dtype, out_dtype = np.dtype(np.float32), dtype
    a = convert_element_type(a, dtype)
    axes = normalize_axes(axis, a.ndim)
    n = _count(a.shape, axes)
    out = div(_keep(red.reduce_sum(a, axes), a.shape, axes, keepdims), np.asarray(n, a.dtype))
    return out if out_dtype is None else convert_element_type(out, out_dtype)


def _chooser(prim_fn, name):
    def fn(a, axis=None, keepdims: bool = False):
        a = as_array(a)
        axes = normalize_axes(axis, a.ndim)
        if builtins.any(a.shape[i] == 0 for i in axes):
            raise ValueError(f"{name} of an empty axis (shape {a.shape}, axis {axis}): "
                             "the reduction has no identity")
        return _keep(prim_fn(a, axes), a.shape, axes, keepdims)

    fn.__name__ = name
    fn.__doc__ = (f"The {name[1:]}imum over ``axis`` (NaN propagates; ties share the gradient)."
                  f"\n\n    >>> import funcnet.numpy as fnp\n"
                  f"    >>> fnp.{name}(fnp.array([[1, 5], [3, 2]]), axis=0)\n"
                  f"    array({[3, 5] if name == 'amax' else [1, 2]})\n    ")
    return fn


amax = _chooser(red.reduce_max, "amax")
amin = _chooser(red.reduce_min, "amin")
max = amax  # noqa: A001
min = amin  # noqa: A001


def _arg(prim_fn, name):
    def fn(a, axis=None, keepdims: bool = False):
        a = as_array(a)
        in_ndim = a.ndim
        if axis is None:
            a = reshape(a, (a.size,))
            ax = 0
        else:
            ax = normalize_axis(int(axis), a.ndim)
        if a.shape[ax] == 0:
            raise ValueError(f"{name} of an empty sequence (shape {a.shape})")
        out = prim_fn(a, ax)
        if keepdims:
            shape = (1,) * in_ndim if axis is None else tuple(
                1 if i == ax else d for i, d in enumerate(a.shape))
            out = reshape(out, shape)
        return out

    fn.__name__ = name
    fn.__doc__ = (f"Index of the first {name[3:]}imum along ``axis`` (flattened if None)."
                  f"\n\n    >>> import funcnet.numpy as fnp\n"
                  f"    >>> int(fnp.{name}(fnp.array([3, 1, 4])))\n"
                  f"    {2 if name == 'argmax' else 1}\n    ")
    return fn


argmax = _arg(red.argmax, "argmax")
argmin = _arg(red.argmin, "argmin")


def var(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.var(fnp.array([1.0, 3.0])))
    1.0
    """
    a = as_array(a)
    m = mean(a, axis=axis, dtype=dtype, keepdims=True)
    from funcnet.ops.elementwise import div, mul, sub

    d = sub(a, m)
    axes = normalize_axes(axis, a.ndim)
    n = builtins.max(_count(a.shape, axes) - ddof, 0)  # as NumPy: 0 gives inf / nan
    out = sum(mul(d, d), axis=axis, keepdims=keepdims)
    return div(out, np.asarray(n, out.dtype))


def std(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False):
    """Standard deviation over ``axis`` (``ddof`` as in ``var``; integers give float64).

    Its gradient is NaN where the variance is 0 (the derivative of ``sqrt`` at 0).

    >>> import funcnet.numpy as fnp
    >>> fnp.std(fnp.array([1.0, 3.0])), fnp.std(fnp.array([1, 3]), ddof=1)
    (array(1., dtype=float32), array(1.41421356))
    """
    from funcnet.numpy.math import sqrt

    return sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def _cumulative(prim_fn, name):
    def fn(a, axis=None, dtype=None):
        a = as_array(a)
        a = convert_element_type(a, np.dtype(dtype) if dtype is not None
                                 else _sum_dtype(a.dtype))
        if axis is None:
            a = reshape(a, (a.size,))
            axis = 0
        return prim_fn(a, normalize_axis(int(axis), a.ndim))

    fn.__name__ = name
    fn.__doc__ = (f"Cumulative {name[3:]} along ``axis`` (flattened if None).\n\n"
                  f"    >>> import funcnet.numpy as fnp\n"
                  f"    >>> fnp.{name}(fnp.array([1, 2, 3]))\n"
                  f"    array({[1, 3, 6] if name == 'cumsum' else [1, 2, 6]})\n    ")
    return fn


cumsum = _cumulative(red.cumsum, "cumsum")
cumprod = _cumulative(red.cumprod, "cumprod")


def all(a, axis=None, keepdims: bool = False):  # noqa: A001
    """True where every element along ``axis`` is non-zero (True for an empty axis).

    >>> import funcnet.numpy as fnp
    >>> fnp.all(fnp.array([[1, 0], [1, 1]]), axis=1)
    array([False,  True])
    """
    from funcnet.numpy.math import _as_bool

    b = _as_bool(a)
    axes = normalize_axes(axis, b.ndim)
    if _count(b.shape, axes) == 0:
        from funcnet.numpy.creation import ones

        return ones(tuple(1 if i in axes else d for i, d in enumerate(b.shape)) if keepdims
                    else tuple(d for i, d in enumerate(b.shape) if i not in axes), bool)
    return _keep(red.reduce_min(b, axes), b.shape, axes, keepdims)


def any(a, axis=None, keepdims: bool = False):  # noqa: A001
    """True where some element along ``axis`` is non-zero.

    >>> import funcnet.numpy as fnp
    >>> bool(fnp.any(fnp.array([0, 0, 1])))
    True
    """
    from funcnet.numpy.math import _as_bool

    b = _as_bool(a)
    axes = normalize_axes(axis, b.ndim)
    if _count(b.shape, axes) == 0:
        from funcnet.numpy.creation import zeros

        return zeros(tuple(1 if i in axes else d for i, d in enumerate(b.shape)) if keepdims
                     else tuple(d for i, d in enumerate(b.shape) if i not in axes), bool)
    return _keep(red.reduce_max(b, axes), b.shape, axes, keepdims)


def median(a, axis=None, keepdims: bool = False):
    """The median along ``axis`` (an int, a tuple or None; the mean of the two middle
    values for even counts; NaN if the values include NaN, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> float(fnp.median(fnp.array([3.0, 1.0, 2.0, 10.0])))
    2.5
    """
    from funcnet.numpy.creation import full
    from funcnet.numpy.indexing import take
    from funcnet.numpy.manipulation import moveaxis
    from funcnet.numpy.math import isnan, where
    from funcnet.ops.elementwise import add, div

    a = as_array(a)
    if a.dtype.kind not in "fc":
        a = convert_element_type(a, np.float64)
    axes = normalize_axes(axis, a.ndim)
    kept = tuple(d for i, d in enumerate(a.shape) if i not in axes)
    out_shape = _keep_shape(a.shape, axes) if keepdims else kept
    n = _count(a.shape, axes)
    if n == 0:
        return full(out_shape, np.nan, a.dtype)  # NumPy warns and gives NaN
    # the reduced axes, moved last and merged into one
    flat = reshape(moveaxis(a, axes, tuple(range(-len(axes), 0))), kept + (n,))
    s = red.sort(flat, len(kept))
    lo = take(s, (n - 1) // 2, axis=-1)
    hi = take(s, n // 2, axis=-1)
    out = div(add(lo, hi), np.asarray(2, a.dtype))
    out = where(any(isnan(flat), axis=-1), np.asarray(np.nan, a.dtype), out)
    return reshape(out, out_shape)


def _keep_shape(shape, axes) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))
