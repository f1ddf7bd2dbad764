"""NumPy indexing for traced arrays and functional updates (``fnp.at(x)[i].set(v)``).

Eager NumPy arrays cannot carry an ``.at`` attribute, so the update syntax is
``fnp.at(x)[idx].set(v)`` (any array, eager or traced); on tracers
``x.at[idx].set(v)`` works too, as in JAX.  Updates never modify ``x``: they
return a new array.  With repeated indices ``.add`` accumulates, ``.set``
keeps the last write.

>>> import funcnet.numpy as fnp
>>> x = fnp.zeros(3)
>>> fnp.at(x)[1].set(5.0)
array([0., 5., 0.], dtype=float32)
>>> fnp.at(x)[[0, 0]].add(1.0)
array([2., 0., 0.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.backends.base import to_numpy
from funcnet.core.trace import Tracer
from funcnet.errors import ConcretizationError
from funcnet.numpy.conversion import as_array
from funcnet.ops import indexing as ix
from funcnet.ops.elementwise import convert_element_type


def _concrete_mask(m):
    if isinstance(m, Tracer):
        try:
            return np.asarray(m.concrete_value())
        except ConcretizationError:
            raise ConcretizationError(
                "boolean-mask indexing needs a concrete mask, because the result's shape "
                "depends on its values; under jit/vmap use fnp.where(mask, x, fill) or "
                "multiply by the mask instead") from None
    return to_numpy(m)


def _is_array(x) -> bool:
    """Tracers and arrays of any backend (kept as they are); lists are converted."""
    return isinstance(x, Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype"))


def parse_index(shape: tuple, idx) -> tuple[tuple, list]:
    """Split a NumPy index into a static spec and its integer index arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    items = []
    for e in idx:
        if isinstance(e, list):
            e = np.asarray(e)
            if e.dtype == np.float64 and e.size == 0:
                e = e.astype(np.int64)
        if (hasattr(e, "dtype") and getattr(e, "dtype", None) == np.bool_
                and np.ndim(e) > 0):
            items.extend(np.nonzero(_concrete_mask(e)))
            continue
        items.append(e)
    consumed = sum(0 if (e is None or e is Ellipsis) else 1 for e in items)
    if sum(1 for e in items if e is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > len(shape):
        raise IndexError(f"too many indices for an array of shape {shape}: {consumed} "
                         f"indexed, but it has {len(shape)} dimension(s)")
    spec, arrays, dim = [], [], 0
    for e in items:
        if e is Ellipsis:
            for _ in range(len(shape) - consumed):
                spec.append(("slice", None, None, None))
                dim += 1
        elif e is None:
            spec.append(("newaxis",))
        elif isinstance(e, slice):
            for v in (e.start, e.stop, e.step):
                if isinstance(v, Tracer):
                    raise ConcretizationError(
                        "slice bounds must be concrete; for a traced start use "
                        "lax.dynamic_slice(x, starts, sizes)")
            spec.append(("slice", _int_or_none(e.start), _int_or_none(e.stop),
                         _int_or_none(e.step)))
            dim += 1
        elif isinstance(e, (int, np.integer)) and not isinstance(e, bool):
            n = shape[dim]
            i = int(e)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            spec.append(("int", i % n))
            dim += 1
        elif hasattr(e, "dtype") or isinstance(e, Tracer):
            if np.dtype(e.dtype).kind not in "iu":
                raise IndexError(f"arrays used as indices must be of integer (or boolean) "
                                 f"type, got {np.dtype(e.dtype)}")
            spec.append(("array", len(arrays)))
            arrays.append(e)
            dim += 1
        else:
            raise IndexError(f"only integers, slices, ellipsis, None and integer or boolean "
                             f"arrays are valid indices, got {type(e).__name__}")
    return tuple(spec), arrays


def _int_or_none(v):
    return None if v is None else int(v)


def gather_index(x, idx):
    """``x[idx]`` through the ``gather`` primitive (differentiable, traceable)."""
    x = as_array(x)
    spec, arrays = parse_index(tuple(x.shape), idx)
    if all(e[0] == "slice" and e[1:] == (None, None, None) for e in spec):
        return x
    return ix.gather(x, arrays, spec)


class _IndexUpdateRef:
    """``at(x)[idx]``: the methods below return updated copies of ``x``."""

    __slots__ = ("x", "idx")

    def __init__(self, x, idx):
        self.x = x
        self.idx = idx

    def _scatter(self, fn, values):
        x = as_array(self.x)
        spec, arrays = parse_index(tuple(x.shape), self.idx)
        v = convert_element_type(as_array(values), x.dtype)
        return fn(x, v, arrays, spec)

    def get(self):
        """``x[idx]``."""
        return gather_index(self.x, self.idx)

    def set(self, values):
        """``x`` with ``x[idx] = values``."""
        return self._scatter(ix.scatter, values)

    def add(self, values):
        """``x`` with ``x[idx] += values`` (repeated indices accumulate)."""
        return self._scatter(ix.scatter_add, values)

    def mul(self, values):
        """``x`` with ``x[idx] *= values``."""
        return self._scatter(ix.scatter_mul, values)

    def min(self, values):
        """``x`` with ``x[idx] = minimum(x[idx], values)``."""
        return self._scatter(ix.scatter_min, values)

    def max(self, values):
        """``x`` with ``x[idx] = maximum(x[idx], values)``."""
        return self._scatter(ix.scatter_max, values)


class _AtIndexer:
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx) -> _IndexUpdateRef:
        return _IndexUpdateRef(self.x, idx)


def at(x) -> _AtIndexer:
    """Functional index updates: ``fnp.at(x)[idx].set(v)`` returns a new array.

    >>> import funcnet.numpy as fnp
    >>> fnp.at(fnp.arange(4))[1:3].mul(10)
    array([ 0, 10, 20,  3])
    """
    return _AtIndexer(x)


def take(a, indices, axis=None):
    """Elements of ``a`` at ``indices`` along ``axis`` (flattened if None).

    >>> import funcnet.numpy as fnp
    >>> fnp.take(fnp.array([[1, 2], [3, 4]]), [1], axis=1)
    array([[2],
           [4]])
    """
    from funcnet.numpy.manipulation import ravel

    a = as_array(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = axis % a.ndim
    idx = indices if _is_array(indices) else np.asarray(indices)
    if not isinstance(idx, Tracer) and idx.ndim == 0:
        idx = int(idx)
    return gather_index(a, (slice(None),) * axis + (idx,))


def take_along_axis(arr, indices, axis: int):
    """Pick values along ``axis`` by an index array of matching rank (other axes broadcast).

    >>> import funcnet.numpy as fnp
    >>> x = fnp.array([[10, 30, 20]])
    >>> fnp.take_along_axis(x, fnp.argsort(x, axis=1), axis=1)
    array([[10, 20, 30]])
    """
    arr = as_array(arr)
    indices = indices if _is_array(indices) else np.asarray(indices)
    if len(indices.shape) != arr.ndim:
        raise ValueError(f"take_along_axis: indices of rank {np.ndim(indices)} do not match "
                         f"the array's rank {arr.ndim}")
    from funcnet.numpy.manipulation import broadcast_to

    axis = axis % arr.ndim
    shape = tuple(i if k == axis else max(a, i) for k, (a, i) in
                  enumerate(zip(arr.shape, np.shape(indices))))
    idx_shape = shape
    indices = broadcast_to(indices, idx_shape)
    arr_shape = tuple(a if k == axis else s for k, (a, s) in enumerate(zip(arr.shape, shape)))
    arr = broadcast_to(arr, arr_shape)
    return ix.take_along_axis(arr, indices, axis)


def nonzero(a):
    """Indices of the non-zero elements, one array per axis.

    Concrete values only (not under ``jit`` or ``vmap``): the size depends on them.

    >>> import funcnet.numpy as fnp
    >>> fnp.nonzero(fnp.array([[0, 3], [5, 0]]))
    (array([0, 1]), array([1, 0]))
    """
    from funcnet.backends.base import get_backend

    backend = get_backend()
    return tuple(backend.asarray(i) for i in np.nonzero(_concrete_mask(a)))
