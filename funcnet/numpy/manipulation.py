"""Shape manipulation of ``funcnet.numpy``: reshape, transpose, stack, split, pad...

>>> import funcnet.numpy as fnp
>>> fnp.stack([fnp.ones(2), fnp.zeros(2)]).shape
(2, 2)
"""

from __future__ import annotations

import builtins

import numpy as np

from funcnet.backends.base import to_numpy
from funcnet.core.aval import get_aval, result_dtype
from funcnet.numpy.conversion import _contains_tracer, as_array, asarray
from funcnet.ops import shape as sh
from funcnet.ops.elementwise import convert_element_type
from funcnet.ops.rules import broadcast_shapes as _broadcast_shapes
from funcnet.ops.rules import normalize_axis


def shape(a) -> tuple:
    """The shape of ``a`` as a tuple of ints (static, also for traced arrays).

    >>> import funcnet.numpy as fnp
    >>> fnp.shape(fnp.zeros((2, 3))), fnp.shape([[1, 2, 3]])
    ((2, 3), (1, 3))
    """
    return tuple(np.shape(a)) if not hasattr(a, "shape") else tuple(a.shape)


def ndim(a) -> int:
    """The number of dimensions of ``a``.

    >>> import funcnet.numpy as fnp
    >>> fnp.ndim(fnp.zeros((2, 3))), fnp.ndim(5.0)
    (2, 0)
    """
    return len(shape(a))


def size(a, axis=None) -> int:
    """The number of elements of ``a`` (along ``axis`` if given).

    >>> import funcnet.numpy as fnp
    >>> fnp.size(fnp.zeros((2, 3))), fnp.size(fnp.zeros((2, 3)), axis=1)
    (6, 3)
    """
    s = shape(a)
    if axis is not None:
        return s[axis]
    return int(np.prod(s, dtype=np.int64))


def _resolve_shape(newshape, total: int) -> tuple:
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    newshape = tuple(int(d) for d in newshape)
    if newshape.count(-1) > 1:
        raise ValueError(f"can only specify one unknown dimension, got {newshape}")
    if -1 in newshape:
        known = int(np.prod([d for d in newshape if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape an array of size {total} into shape {newshape}")
        newshape = tuple(total // known if d == -1 else d for d in newshape)
    return newshape


def reshape(a, newshape, order: str = "C"):
    """A view of ``a`` with a new shape (one dimension may be -1).

    >>> import funcnet.numpy as fnp
    >>> fnp.reshape(fnp.arange(6), (2, -1)).shape
    (2, 3)
    """
    if order != "C":
        raise NotImplementedError("only order='C' reshapes are supported")
    a = as_array(a)
    return sh.reshape(a, _resolve_shape(newshape, a.size))


def ravel(a):
    """``a`` flattened to one dimension (row-major order).

    >>> import funcnet.numpy as fnp
    >>> fnp.ravel(fnp.array([[1, 2], [3, 4]]))
    array([1, 2, 3, 4])
    """
    a = as_array(a)
    return sh.reshape(a, (a.size,))


def transpose(a, axes=None):
    """Permute the axes (reverse them by default).

    >>> import funcnet.numpy as fnp
    >>> fnp.transpose(fnp.array([[1, 2, 3]]))
    array([[1],
           [2],
           [3]])
    >>> fnp.transpose(fnp.zeros((2, 3, 4)), (1, 0, 2)).shape
    (3, 2, 4)
    """
    a = as_array(a)
    if axes is None:
        axes = tuple(range(a.ndim))[::-1]
    return sh.transpose(a, tuple(normalize_axis(int(x), a.ndim) for x in axes))


def swapaxes(a, axis1: int, axis2: int):
    """Exchange two axes.

    >>> import funcnet.numpy as fnp
    >>> fnp.swapaxes(fnp.zeros((2, 3, 4)), 0, 2).shape
    (4, 3, 2)
    """
    a = as_array(a)
    perm = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return sh.transpose(a, tuple(perm))


def moveaxis(a, source, destination):
    """Move axes to new positions, keeping the order of the others.

    >>> import funcnet.numpy as fnp
    >>> fnp.moveaxis(fnp.zeros((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    a = as_array(a)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    src = [normalize_axis(s, a.ndim) for s in src]
    dst = [normalize_axis(d, a.ndim) for d in dst]
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return sh.transpose(a, tuple(order))


def expand_dims(a, axis):
    """Insert length-1 axes at ``axis`` (an int or tuple, positions in the result).

    >>> import funcnet.numpy as fnp
    >>> fnp.expand_dims(fnp.array([1, 2]), 0)
    array([[1, 2]])
    >>> fnp.expand_dims(fnp.array([1, 2]), (0, 2)).shape
    (1, 2, 1)
    """
    a = as_array(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out_ndim = a.ndim + len(axes)
    axes = sorted(normalize_axis(x, out_ndim) for x in axes)
    new = list(a.shape)
    for x in axes:
        new.insert(x, 1)
    return sh.reshape(a, tuple(new))


def squeeze(a, axis=None):
    """Remove length-1 axes (all of them, or those in ``axis``).

    >>> import funcnet.numpy as fnp
    >>> fnp.squeeze(fnp.zeros((1, 2, 1))).shape, fnp.squeeze(fnp.zeros((1, 2, 1)), axis=0).shape
    ((2,), (2, 1))
    """
    a = as_array(a)
    if axis is None:
        axes = [i for i, d in enumerate(a.shape) if d == 1]
    else:
        given = (axis,) if isinstance(axis, (int, np.integer)) else axis
        axes = [normalize_axis(x, a.ndim) for x in given]
        for x in axes:
            if a.shape[x] != 1:
                raise ValueError(f"cannot squeeze axis {x} of size {a.shape[x]} (shape {a.shape})")
    return sh.reshape(a, tuple(d for i, d in enumerate(a.shape) if i not in axes))


def broadcast_to(a, shape):
    """Broadcast ``a`` to ``shape`` (read-only semantics, like NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.broadcast_to(fnp.array([1, 2]), (2, 2))
    array([[1, 2],
           [1, 2]])
    """
    a = as_array(a)
    return sh.broadcast_to(a, (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape))


def broadcast_shapes(*shapes) -> tuple:
    """The shape that broadcasting ``shapes`` together gives.

    >>> import funcnet.numpy as fnp
    >>> fnp.broadcast_shapes((2, 1), (3,))
    (2, 3)
    """
    return _broadcast_shapes(*[tuple(s) for s in shapes])


def broadcast_arrays(*args):
    """Broadcast arrays against each other (returns a list).

    >>> import funcnet.numpy as fnp
    >>> fnp.broadcast_arrays(fnp.array([[1], [2]]), fnp.array([10, 20]))
    [array([[1, 1],
           [2, 2]]), array([[10, 20],
           [10, 20]])]
    """
    arrs = [as_array(a) for a in args]
    s = _broadcast_shapes(*[a.shape for a in arrs])
    return [sh.broadcast_to(a, s) for a in arrs]


def _promote_all(arrs):
    dtype, _ = result_dtype(*[get_aval(a) for a in arrs])
    return [convert_element_type(a, dtype) for a in arrs]


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (``axis=None`` flattens first).

    >>> import funcnet.numpy as fnp
    >>> fnp.concatenate([fnp.ones(2), fnp.zeros(1)])
    array([1., 1., 0.], dtype=float32)
    """
    arrs = [as_array(a) for a in arrays]
    if not arrs:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrs = [ravel(a) for a in arrs]
        axis = 0
    for a in arrs:
        if a.ndim == 0:
            raise ValueError("zero-dimensional arrays cannot be concatenated")
    arrs = _promote_all(arrs)
    if len(arrs) == 1:
        return arrs[0]
    return sh.concatenate(arrs, normalize_axis(axis, arrs[0].ndim))


def stack(arrays, axis: int = 0):
    """Join arrays of the same shape along a new axis.

    >>> import funcnet.numpy as fnp
    >>> fnp.stack([fnp.array([1, 2]), fnp.array([3, 4])], axis=1)
    array([[1, 3],
           [2, 4]])
    """
    arrs = [as_array(a) for a in arrays]
    if not arrs:
        raise ValueError("need at least one array to stack")
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise ValueError(f"all input arrays must have the same shape, got {sorted(shapes)}")
    axis = normalize_axis(axis, arrs[0].ndim + 1)
    return concatenate([expand_dims(a, axis) for a in arrs], axis)


def hstack(arrays):
    """Stack along the second axis (the first for 1-d arrays).

    >>> import funcnet.numpy as fnp
    >>> fnp.hstack([fnp.array([1, 2]), fnp.array([3])])
    array([1, 2, 3])
    """
    arrs = [atleast_1d(a) for a in arrays]
    return concatenate(arrs, 0 if arrs[0].ndim == 1 else 1)


def vstack(arrays):
    """Stack along the first axis, treating 1-d arrays as rows.

    >>> import funcnet.numpy as fnp
    >>> fnp.vstack([fnp.array([1, 2]), fnp.array([3, 4])])
    array([[1, 2],
           [3, 4]])
    """
    return concatenate([atleast_2d(a) for a in arrays], 0)


def atleast_1d(a):
    """``a`` with at least one dimension (one array; NumPy's version also takes several).

    >>> import funcnet.numpy as fnp
    >>> fnp.atleast_1d(5), fnp.atleast_1d(5.0)
    (array([5]), array([5.], dtype=float32))
    """
    a = as_array(a)
    return sh.reshape(a, (1,)) if a.ndim == 0 else a


def atleast_2d(a):
    """``a`` with at least two dimensions (1-d arrays become rows).

    >>> import funcnet.numpy as fnp
    >>> fnp.atleast_2d(fnp.array([1, 2]))
    array([[1, 2]])
    """
    a = as_array(a)
    if a.ndim >= 2:
        return a
    return sh.reshape(a, (1,) * (2 - a.ndim) + tuple(a.shape))


def _slice_axis(a, start, stop, axis):
    lo = [0] * a.ndim
    hi = list(a.shape)
    lo[axis], hi[axis] = start, stop
    return sh.slice(a, lo, hi)


def array_split(a, indices_or_sections, axis: int = 0):
    """Split into a list of sub-arrays; ``k`` sections need not divide the axis evenly.

    >>> import funcnet.numpy as fnp
    >>> fnp.array_split(fnp.arange(5), 2)
    [array([0, 1, 2]), array([3, 4])]
    >>> fnp.array_split(fnp.arange(5), [1, 3])
    [array([0]), array([1, 2]), array([3, 4])]
    """
    a = as_array(a)
    axis = normalize_axis(axis, a.ndim)
    n = a.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError("number of sections must be larger than 0")
        q, r = divmod(n, k)
        bounds = [0]
        for i in range(k):
            bounds.append(bounds[-1] + q + (1 if i < r else 0))
    else:
        bounds = [0] + [builtins.min(builtins.max(int(i) + n if int(i) < 0 else int(i), 0), n)
                      for i in indices_or_sections] + [n]
    return [_slice_axis(a, lo, builtins.max(lo, hi), axis) for lo, hi in zip(bounds, bounds[1:])]


def split(a, indices_or_sections, axis: int = 0):
    """Split into equal sub-arrays (or at the given indices).

    >>> import funcnet.numpy as fnp
    >>> [p.shape for p in fnp.split(fnp.arange(6), 3)]
    [(2,), (2,), (2,)]
    """
    a = as_array(a)
    if isinstance(indices_or_sections, (int, np.integer)):
        n = a.shape[normalize_axis(axis, a.ndim)]
        if n % int(indices_or_sections):
            raise ValueError(f"array split does not result in an equal division: axis of "
                             f"length {n} into {indices_or_sections} sections")
    return array_split(a, indices_or_sections, axis)


def tile(a, reps):
    """Repeat the whole array ``reps`` times along each axis.

    >>> import funcnet.numpy as fnp
    >>> fnp.tile(fnp.array([1, 2]), 2)
    array([1, 2, 1, 2])
    >>> fnp.tile(fnp.array([1, 2]), (2, 1))
    array([[1, 2],
           [1, 2]])
    """
    a = as_array(a)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(a.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    a = sh.reshape(a, (1,) * (nd - a.ndim) + tuple(a.shape))
    # broadcast to [r0, d0, r1, d1, ...] then merge pairs
    big = []
    dims = []
    for i, (r, d) in enumerate(zip(reps, a.shape)):
        big += [r, d]
        dims.append(2 * i + 1)
    out = sh.broadcast_in_dim(a, tuple(big), tuple(dims))
    return sh.reshape(out, tuple(r * d for r, d in zip(reps, a.shape)))


def repeat(a, repeats, axis=None):
    """Repeat each element ``repeats`` times (an int or one count per element).

    >>> import funcnet.numpy as fnp
    >>> fnp.repeat(fnp.array([1, 2]), 2), fnp.repeat(fnp.array([1, 2]), [1, 3])
    (array([1, 1, 2, 2]), array([1, 2, 2, 2]))
    """
    from funcnet.numpy.indexing import take

    a = as_array(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis(axis, a.ndim)
    if isinstance(repeats, (int, np.integer)):
        r = int(repeats)
        shp = list(a.shape)
        big = shp[:axis + 1] + [r] + shp[axis + 1:]
        out = sh.broadcast_in_dim(a, tuple(big),
                                  tuple(i if i <= axis else i + 1 for i in range(a.ndim)))
        shp[axis] *= r
        return sh.reshape(out, tuple(shp))
    counts = to_numpy(repeats).astype(np.int64)
    idx = np.repeat(np.arange(a.shape[axis]), counts)
    return take(a, idx, axis=axis)


def flip(a, axis=None):
    """Reverse the order of elements along ``axis`` (all axes if None).

    >>> import funcnet.numpy as fnp
    >>> fnp.flip(fnp.array([[1, 2], [3, 4]]), axis=1)
    array([[2, 1],
           [4, 3]])
    """
    a = as_array(a)
    if axis is None:
        axes = tuple(range(a.ndim))
    else:
        given = (axis,) if isinstance(axis, (int, np.integer)) else axis
        axes = tuple(normalize_axis(x, a.ndim) for x in given)
    return sh.rev(a, axes)


def roll(a, shift, axis=None):
    """Shift elements cyclically along ``axis`` (flattened if None).

    >>> import funcnet.numpy as fnp
    >>> fnp.roll(fnp.arange(4), 1)
    array([3, 0, 1, 2])
    """
    a = as_array(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    shifts = (shift,) if isinstance(shift, (int, np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, ax in zip(shifts, axes):
        ax = normalize_axis(ax, a.ndim)
        n = a.shape[ax]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            a = concatenate([_slice_axis(a, n - s, n, ax), _slice_axis(a, 0, n - s, ax)], ax)
    return a


def pad(array, pad_width, mode: str = "constant", constant_values=0):
    """Pad an array; modes ``constant``, ``edge``, ``reflect``, ``symmetric``, ``wrap``.

    >>> import funcnet.numpy as fnp
    >>> fnp.pad(fnp.array([1, 2]), 1)
    array([0, 1, 2, 0])
    """
    a = as_array(array)
    if a.ndim == 0:
        return a  # NumPy pads a 0-d array to itself
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2)).tolist()
    if builtins.any(lo < 0 or hi < 0 for lo, hi in pw):
        raise ValueError(f"pad_width must be non-negative, got {pad_width}")
    if mode == "constant":
        if _contains_tracer(constant_values):
            # traced fill values stay traced, so gradients reach them
            cv = convert_element_type(asarray(constant_values), a.dtype)
            if cv.ndim == 0:
                return sh.pad(a, cv, tuple((lo, hi, 0) for lo, hi in pw))
            from funcnet.numpy.indexing import gather_index

            cv = sh.broadcast_to(cv, (a.ndim, 2))
            values = [(gather_index(cv, (ax, 0)), gather_index(cv, (ax, 1)))
                      for ax in range(a.ndim)]
        else:
            cv = np.broadcast_to(to_numpy(constant_values), (a.ndim, 2))
            if cv.size and np.all(cv == cv.flat[0]):
                val = convert_element_type(as_array(cv.flat[0]), a.dtype)
                return sh.pad(a, val, tuple((lo, hi, 0) for lo, hi in pw))
            values = [tuple(convert_element_type(as_array(v), a.dtype) for v in cv[ax])
                      for ax in range(a.ndim)]
        for ax, ((lo, hi), (val_lo, val_hi)) in enumerate(zip(pw, values)):
            cfg = [(0, 0, 0)] * a.ndim
            cfg[ax] = (lo, 0, 0)
            a = sh.pad(a, val_lo, tuple(cfg))
            cfg[ax] = (0, hi, 0)
            a = sh.pad(a, val_hi, tuple(cfg))
        return a
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ValueError(f"unsupported pad mode {mode!r}; use constant, edge, reflect, "
                         "symmetric or wrap")
    from funcnet.numpy.indexing import take

    for ax, (lo, hi) in enumerate(pw):
        n = a.shape[ax]
        if n == 0 and (lo or hi):
            raise ValueError(f"cannot pad an empty axis with mode {mode!r}")
        idx = np.arange(-lo, n + hi)
        if mode == "edge":
            idx = np.clip(idx, 0, n - 1)
        elif mode == "wrap":
            idx = idx % n
        else:
            period = 2 * n - 2 if mode == "reflect" else 2 * n
            if period == 0:
                idx = np.zeros_like(idx)
            else:
                idx = idx % period
                if mode == "reflect":
                    idx = np.where(idx >= n, period - idx, idx)
                else:
                    idx = np.where(idx >= n, period - 1 - idx, idx)
        a = take(a, idx, axis=ax)
    return a


def sort(a, axis: int | None = -1):
    """Sorted copy of ``a`` along ``axis`` (flattened if None; differentiable).

    >>> import funcnet.numpy as fnp
    >>> fnp.sort(fnp.array([3, 1, 2]))
    array([1, 2, 3])
    """
    from funcnet.ops.reductions import sort as _sort

    a = as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    return _sort(a, normalize_axis(axis, a.ndim))


def argsort(a, axis: int | None = -1):
    """Indices that sort ``a`` along ``axis`` (stable; flattened if None).

    >>> import funcnet.numpy as fnp
    >>> fnp.argsort(fnp.array([3.0, 1.0, 3.0, 2.0]))
    array([1, 3, 0, 2])
    """
    from funcnet.ops.reductions import argsort as _argsort

    a = as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    return _argsort(a, normalize_axis(axis, a.ndim))
