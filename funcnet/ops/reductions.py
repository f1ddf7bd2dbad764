"""Reductions, scans and sorting primitives (sum, max, prod, argmax, cumsum,
cumprod, sort, argsort) with their rules.

>>> import numpy as np
>>> from funcnet.ops.reductions import reduce_sum
>>> reduce_sum(np.ones((2, 3)), (1,))
array([3., 3.])
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.primitive import Primitive
from funcnet.ops import elementwise as ew
from funcnet.ops.rules import defjvp, defjvp_zero, deflinear
from funcnet.ops.shape import broadcast_in_dim, reshape, rev, transpose
from funcnet.transforms.ad import Zero


def _check_axes(name: str, x: ShapedArray, axes: tuple) -> None:
    if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"{name}: axes {axes} are invalid for an array of shape {x.shape}")


def _reduce_abstract_eval(name):
    def rule(x, *, axes):
        _check_axes(name, x, axes)
        return ShapedArray(tuple(d for i, d in enumerate(x.shape) if i not in axes),
                           x.dtype, x.weak_type)

    return rule


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def expand_reduced(y, shape, axes):
    """Broadcast a reduction's result back to the operand's shape."""
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return broadcast_in_dim(y, tuple(shape), kept)


# ---------------------------------------------------------------------------
# sum

reduce_sum_p = Primitive("reduce_sum")


def reduce_sum(x, axes: tuple):
    """Sum over ``axes`` (a tuple of non-negative ints); keeps the dtype."""
    return reduce_sum_p.bind(x, axes=tuple(axes))


reduce_sum_p.abstract_eval = _reduce_abstract_eval("reduce_sum")
deflinear(reduce_sum_p, lambda ct, x, *, axes: [expand_reduced(ct, x.aval.shape, axes)])

# ---------------------------------------------------------------------------
# max / min (ties share the derivative equally, as in JAX)

reduce_max_p = Primitive("reduce_max")
reduce_min_p = Primitive("reduce_min")
reduce_max_p.abstract_eval = _reduce_abstract_eval("reduce_max")
reduce_min_p.abstract_eval = _reduce_abstract_eval("reduce_min")


def reduce_max(x, axes: tuple):
    return reduce_max_p.bind(x, axes=tuple(axes))


def reduce_min(x, axes: tuple):
    return reduce_min_p.bind(x, axes=tuple(axes))


def _chooser_jvp(t, ans, x, *, axes):
    location = ew.convert_element_type(ew.eq(x, expand_reduced(ans, np.shape(x), axes)),
                                       ans.dtype)
    counts = reduce_sum(location, axes)
    return ew.div(reduce_sum(ew.mul(t, location), axes), counts)


defjvp(reduce_max_p, _chooser_jvp)
defjvp(reduce_min_p, _chooser_jvp)

# ---------------------------------------------------------------------------
# prod (derivative is the product of the other elements: exact with zeros)

reduce_prod_p = Primitive("reduce_prod")
reduce_prod_p.abstract_eval = _reduce_abstract_eval("reduce_prod")


def reduce_prod(x, axes: tuple):
    return reduce_prod_p.bind(x, axes=tuple(axes))


def _move_to_end(x, axes):
    """Transpose ``axes`` to the end and merge them into one trailing axis."""
    shape = np.shape(x)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    xt = transpose(x, kept + tuple(axes))
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    return reshape(xt, tuple(shape[i] for i in kept) + (n,))


def _prod_jvp(t, ans, x, *, axes):
    flat = _move_to_end(x, axes)
    tflat = _move_to_end(t, axes)
    last = flat.ndim - 1
    ones = ew.add(ew.mul(flat, 0), 1)
    # product of the elements before and after each position (exclusive scans)
    before = cumprod(_shift(flat, ones, last, forward=True), last)
    after = cumprod(_shift(flat, ones, last, forward=False), last, reverse=True)
    return reduce_sum(ew.mul(tflat, ew.mul(before, after)), (last,))


def _shift(x, ones, axis, forward):
    from funcnet.ops.shape import concatenate
    from funcnet.ops.shape import slice as slice_

    n = np.shape(x)[axis]
    shape = np.shape(x)
    if n == 0:  # nothing to shift (and no element of ``ones`` to slice)
        return x
    one = slice_(ones, (0,) * len(shape), shape[:axis] + (1,) + shape[axis + 1:])
    if forward:
        body = slice_(x, (0,) * len(shape), shape[:axis] + (n - 1,) + shape[axis + 1:])
        return concatenate([one, body], axis)
    body = slice_(x, (0,) * axis + (1,) + (0,) * (len(shape) - axis - 1), shape)
    return concatenate([body, one], axis)


defjvp(reduce_prod_p, _prod_jvp)

# ---------------------------------------------------------------------------
# argmax / argmin

argmax_p = Primitive("argmax")
argmin_p = Primitive("argmin")


def _arg_abstract_eval(x, *, axis, index_dtype):
    _check_axes("argmax/argmin", x, (axis,))
    return ShapedArray(tuple(d for i, d in enumerate(x.shape) if i != axis), index_dtype)


argmax_p.abstract_eval = _arg_abstract_eval
argmin_p.abstract_eval = _arg_abstract_eval
defjvp_zero(argmax_p)
defjvp_zero(argmin_p)


def argmax(x, axis: int, index_dtype=np.int64):
    return argmax_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


def argmin(x, axis: int, index_dtype=np.int64):
    return argmin_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


# ---------------------------------------------------------------------------
# cumulative sum / product

cumsum_p = Primitive("cumsum")
cumprod_p = Primitive("cumprod")


def _cum_abstract_eval(x, *, axis, reverse):
    _check_axes("cumulative op", x, (axis,))
    return x


cumsum_p.abstract_eval = _cum_abstract_eval
cumprod_p.abstract_eval = _cum_abstract_eval


def cumsum(x, axis: int, reverse: bool = False):
    return cumsum_p.bind(x, axis=int(axis), reverse=bool(reverse))


def cumprod(x, axis: int, reverse: bool = False):
    return cumprod_p.bind(x, axis=int(axis), reverse=bool(reverse))


deflinear(cumsum_p, lambda ct, x, *, axis, reverse: [cumsum(ct, axis, not reverse)])


def _cumprod_jvp(t, ans, x, *, axis, reverse):
    # d out_i = sum_{j<=i} t_j * prod_{k<=i, k!=j} x_k. Build, for each j, the
    # cumulative product of x with x_j replaced by 1 (exact where x has zeros).
    if reverse:
        return rev(_cumprod_jvp(rev(t, (axis,)), rev(ans, (axis,)), rev(x, (axis,)),
                                axis=axis, reverse=False), (axis,))
    shape = np.shape(x)
    n = shape[axis]
    xm = transpose(x, tuple(i for i in range(len(shape)) if i != axis) + (axis,))
    tm = transpose(t, tuple(i for i in range(len(shape)) if i != axis) + (axis,))
    lead = xm.shape[:-1]
    big = lead + (n, n)  # [..., j, k]
    xb = broadcast_in_dim(xm, big, tuple(range(len(lead))) + (len(lead) + 1,))
    eye = np.eye(n, dtype=bool)
    prods = cumprod(ew.select(eye, 1, xb), len(lead) + 1)  # [..., j, i]
    mask = np.tril(np.ones((n, n), dtype=bool)).T  # i >= j  ->  [j, i]
    weights = ew.select(mask, prods, 0)
    tb = broadcast_in_dim(tm, big, tuple(range(len(lead))) + (len(lead),))
    out = reduce_sum(ew.mul(weights, tb), (len(lead),))  # [..., i]
    inv = np.argsort(tuple(i for i in range(len(shape)) if i != axis) + (axis,))
    return transpose(out, tuple(inv))


defjvp(cumprod_p, _cumprod_jvp)

# ---------------------------------------------------------------------------
# sort / argsort

sort_p = Primitive("sort")
argsort_p = Primitive("argsort")


def _sort_abstract_eval(x, *, axis, descending):
    _check_axes("sort", x, (axis,))
    return x


sort_p.abstract_eval = _sort_abstract_eval
argsort_p.abstract_eval = lambda x, *, axis, descending: ShapedArray(x.shape, np.int64)
defjvp_zero(argsort_p)


def sort(x, axis: int = -1, descending: bool = False):
    axis = int(axis) % max(len(np.shape(x)), 1)
    return sort_p.bind(x, axis=axis, descending=bool(descending))


def argsort(x, axis: int = -1, descending: bool = False):
    axis = int(axis) % max(len(np.shape(x)), 1)
    return argsort_p.bind(x, axis=axis, descending=bool(descending))


def _sort_jvp(primals, tangents, *, axis, descending):
    (x,), (t,) = primals, tangents
    ans = sort(x, axis, descending)
    if type(t) is Zero:
        return ans, Zero(get_aval(ans))
    from funcnet.ops.indexing import take_along_axis

    return ans, take_along_axis(t, argsort(x, axis, descending), axis)


sort_p.jvp = _sort_jvp

# ---------------------------------------------------------------------------
# Batching rules (vmap)


def _install_batching_rules() -> None:
    from funcnet.transforms.batching import shift_axes_rule

    for p in (reduce_sum_p, reduce_max_p, reduce_min_p, reduce_prod_p):
        p.batch = shift_axes_rule(p, tuple_params=("axes",))
    for p in (argmax_p, argmin_p, cumsum_p, cumprod_p, sort_p, argsort_p):
        p.batch = shift_axes_rule(p, axis_params=("axis",))


_install_batching_rules()
