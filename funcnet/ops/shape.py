"""Shape primitives: reshape, broadcast, transpose, slice, pad, concatenate, rev,
dynamic slicing and creation (``full``), with their rules.

>>> import numpy as np
>>> from funcnet.ops.shape import broadcast_in_dim
>>> broadcast_in_dim(np.arange(3), (2, 3), (1,)).shape
(2, 3)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.primitive import Primitive
from funcnet.ops.rules import deflinear, is_undefined
from funcnet.transforms.ad import Zero, instantiate, zeros_like_aval

# ---------------------------------------------------------------------------
# reshape

reshape_p = Primitive("reshape")


def reshape(x, new_sizes: tuple):
    """Reshape ``x`` to ``new_sizes`` (a tuple of ints; no ``-1``)."""
    new_sizes = tuple(int(d) for d in new_sizes)
    if tuple(np.shape(x)) == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


def _reshape_abstract_eval(x, *, new_sizes):
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise ValueError(f"cannot reshape an array of shape {x.shape} (size {x.size}) "
                         f"into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


reshape_p.abstract_eval = _reshape_abstract_eval
deflinear(reshape_p, lambda ct, x, *, new_sizes: [reshape(ct, x.aval.shape)])

# ---------------------------------------------------------------------------
# broadcast_in_dim

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def broadcast_in_dim(x, shape: tuple, broadcast_dimensions: tuple):
    """Broadcast ``x`` into ``shape``; operand dim ``i`` maps to ``broadcast_dimensions[i]``."""
    shape = tuple(int(d) for d in shape)
    if tuple(np.shape(x)) == shape and tuple(broadcast_dimensions) == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape,
                                   broadcast_dimensions=tuple(broadcast_dimensions))


def broadcast_to(x, shape: tuple):
    """NumPy-style ``broadcast_to`` (trailing dimensions aligned)."""
    shape = tuple(shape)
    xs = tuple(np.shape(x))
    if xs == shape:
        return x
    if len(xs) > len(shape) or any(d not in (1, s) for d, s in zip(xs[::-1], shape[::-1])):
        raise ValueError(f"cannot broadcast an array of shape {xs} to shape {shape}")
    lead = len(shape) - len(xs)
    return broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def _bid_abstract_eval(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim or any(
            x.shape[i] not in (1, shape[d]) for i, d in enumerate(broadcast_dimensions)):
        raise ValueError(f"broadcast_in_dim: cannot broadcast shape {x.shape} to {shape} "
                         f"with broadcast_dimensions={broadcast_dimensions}")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _bid_transpose(ct, x, *, shape, broadcast_dimensions):
    from funcnet.ops.reductions import reduce_sum

    new_dims = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    expanded = tuple(d for i, d in enumerate(broadcast_dimensions)
                     if x.aval.shape[i] == 1 and shape[d] != 1)
    summed = reduce_sum(ct, tuple(sorted(new_dims + expanded))) if new_dims or expanded else ct
    return [reshape(summed, x.aval.shape)]


broadcast_in_dim_p.abstract_eval = _bid_abstract_eval
deflinear(broadcast_in_dim_p, _bid_transpose)

# ---------------------------------------------------------------------------
# transpose

transpose_p = Primitive("transpose")


def transpose(x, permutation: tuple):
    """Permute the axes of ``x``."""
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(f"transpose: permutation {permutation} does not fit shape {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype, x.weak_type)


transpose_p.abstract_eval = _transpose_abstract_eval
deflinear(transpose_p, lambda ct, x, *, permutation: [
    transpose(ct, tuple(np.argsort(permutation)))])

# ---------------------------------------------------------------------------
# slice (static)

slice_p = Primitive("slice")


def slice(x, start_indices, limit_indices, strides=None):  # noqa: A001 - lax name
    """The static slice ``x[start:limit:stride]`` along every axis."""
    ndim = len(np.shape(x))
    strides = tuple(strides) if strides is not None else (1,) * ndim
    return slice_p.bind(x, start_indices=tuple(start_indices),
                        limit_indices=tuple(limit_indices), strides=strides)


def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim):
        raise ValueError(f"slice: indices do not match the rank of shape {x.shape}")
    shape = []
    for d, s, e, st in zip(x.shape, start_indices, limit_indices, strides):
        if not (0 <= s <= e <= d) or st < 1:
            raise ValueError(f"slice: [{s}:{e}:{st}] is out of bounds for shape {x.shape}")
        shape.append((e - s + st - 1) // st)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    cfg = []
    for d, s, n, st in zip(x.aval.shape, start_indices, ct.shape, strides):
        used = s + (n - 1) * st + 1 if n else s
        cfg.append((s, d - used, st - 1) if n else (s, d - s, 0))
    return [pad(ct, np.zeros((), ct.dtype), tuple(cfg))]


slice_p.abstract_eval = _slice_abstract_eval
deflinear(slice_p, _slice_transpose)

# ---------------------------------------------------------------------------
# pad (low, high, interior per dimension; negative low/high crop)

pad_p = Primitive("pad")


def pad(x, padding_value, padding_config: tuple):
    """Pad ``x`` with the scalar ``padding_value``; config is ``(lo, hi, interior)`` per axis."""
    return pad_p.bind(x, padding_value, padding_config=tuple(tuple(c) for c in padding_config))


def _pad_abstract_eval(x, v, *, padding_config):
    if v.shape != ():
        raise ValueError(f"pad: the padding value must be a scalar, got shape {v.shape}")
    if len(padding_config) != x.ndim:
        raise ValueError(f"pad: {len(padding_config)} padding entries for shape {x.shape}")
    shape = []
    for d, (lo, hi, interior) in zip(x.shape, padding_config):
        n = lo + hi + d + max(d - 1, 0) * interior
        if n < 0 or interior < 0:
            raise ValueError(f"pad: config {padding_config} gives a negative size for {x.shape}")
        shape.append(n)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _pad_jvp(primals, tangents, *, padding_config):
    x, v = primals
    tx, tv = tangents
    ans = pad(x, v, padding_config)
    if type(tx) is Zero and type(tv) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, pad(instantiate(tx), instantiate(tv), padding_config)


def _pad_transpose(ct, x, v, *, padding_config):
    from funcnet.ops.elementwise import sub
    from funcnet.ops.reductions import reduce_sum

    unpad = tuple((-lo, -hi, 0) for lo, hi, _ in padding_config)
    inner = pad(ct, np.zeros((), ct.dtype), unpad)
    ct_x = slice(inner, (0,) * inner.ndim, inner.shape,
                 tuple(i + 1 for _, _, i in padding_config))
    ct_v = None
    if is_undefined(v):
        ct_v = sub(reduce_sum(ct, tuple(range(ct.ndim))), reduce_sum(ct_x, tuple(range(ct.ndim))))
    return [ct_x if is_undefined(x) else None, ct_v]


pad_p.abstract_eval = _pad_abstract_eval
pad_p.jvp = _pad_jvp
pad_p.transpose = _pad_transpose
pad_p.linear = True

# ---------------------------------------------------------------------------
# concatenate

concatenate_p = Primitive("concatenate")


def concatenate(xs, dimension: int):
    """Join arrays along an existing axis."""
    return concatenate_p.bind(*xs, dimension=int(dimension))


def _concat_abstract_eval(*xs, dimension):
    from funcnet.core.aval import result_dtype

    first = xs[0].shape
    for x in xs[1:]:
        if len(x.shape) != len(first) or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first)) if i != dimension):
            raise ValueError("concatenate: shapes " + ", ".join(str(x.shape) for x in xs)
                             + f" differ outside dimension {dimension}")
    shape = list(first)
    shape[dimension] = sum(x.shape[dimension] for x in xs)
    dtype, weak = result_dtype(*xs)
    return ShapedArray(tuple(shape), dtype, weak)


def _concat_jvp(primals, tangents, *, dimension):
    ans = concatenate(primals, dimension)
    if all(type(t) is Zero for t in tangents):
        return ans, Zero(get_aval(ans))
    from funcnet.ops.elementwise import convert_element_type

    ts = [convert_element_type(instantiate(t), ans.dtype) for t in tangents]
    return ans, concatenate(ts, dimension)


def _concat_transpose(ct, *xs, dimension):
    out, start = [], 0
    for x in xs:
        n = x.aval.shape[dimension] if is_undefined(x) else np.shape(x)[dimension]
        if is_undefined(x):
            lo = [0] * ct.ndim
            hi = list(ct.shape)
            lo[dimension], hi[dimension] = start, start + n
            out.append(slice(ct, lo, hi))
        else:
            out.append(None)
        start += n
    return out


concatenate_p.abstract_eval = _concat_abstract_eval
concatenate_p.jvp = _concat_jvp
concatenate_p.transpose = _concat_transpose
concatenate_p.linear = True

# ---------------------------------------------------------------------------
# rev (flip)

rev_p = Primitive("rev")


def rev(x, dimensions: tuple):
    """Reverse ``x`` along ``dimensions``."""
    if not dimensions:
        return x
    return rev_p.bind(x, dimensions=tuple(dimensions))


rev_p.abstract_eval = lambda x, *, dimensions: x
deflinear(rev_p, lambda ct, x, *, dimensions: [rev(ct, dimensions)])

# ---------------------------------------------------------------------------
# dynamic_slice / dynamic_update_slice (start indices are traced scalars, clamped)

dynamic_slice_p = Primitive("dynamic_slice")
dynamic_update_slice_p = Primitive("dynamic_update_slice")


def dynamic_slice(x, start_indices, slice_sizes):
    """``x[s0:s0+n0, ...]`` with traced starts (clamped into range, as in JAX)."""
    return dynamic_slice_p.bind(x, *start_indices, slice_sizes=tuple(slice_sizes))


def dynamic_update_slice(x, update, start_indices):
    """``x`` with ``update`` written at traced ``start_indices`` (clamped)."""
    return dynamic_update_slice_p.bind(x, update, *start_indices)


def _check_starts(name, x, starts):
    if len(starts) != x.ndim:
        raise ValueError(f"{name}: {len(starts)} start indices for an array of shape {x.shape}")
    for s in starts:
        if s.shape != () or s.dtype.kind not in "iu":
            raise TypeError(f"{name}: start indices must be integer scalars, got {s.str_short()}")


def _ds_abstract_eval(x, *starts, slice_sizes):
    _check_starts("dynamic_slice", x, starts)
    if len(slice_sizes) != x.ndim or any(n > d or n < 0 for n, d in zip(slice_sizes, x.shape)):
        raise ValueError(f"dynamic_slice: slice_sizes {slice_sizes} do not fit shape {x.shape}")
    return ShapedArray(tuple(slice_sizes), x.dtype, x.weak_type)


def _ds_jvp(primals, tangents, *, slice_sizes):
    x, *starts = primals
    ans = dynamic_slice(x, starts, slice_sizes)
    t = tangents[0]
    if type(t) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, dynamic_slice(t, starts, slice_sizes)


def _ds_transpose(ct, x, *starts, slice_sizes):
    zeros = zeros_like_aval(x.aval)
    return [dynamic_update_slice(zeros, ct, starts)] + [None] * len(starts)


dynamic_slice_p.abstract_eval = _ds_abstract_eval
dynamic_slice_p.jvp = _ds_jvp
dynamic_slice_p.transpose = _ds_transpose
dynamic_slice_p.linear = True


def _dus_abstract_eval(x, update, *starts):
    _check_starts("dynamic_update_slice", x, starts)
    if update.ndim != x.ndim or any(u > d for u, d in zip(update.shape, x.shape)):
        raise ValueError(f"dynamic_update_slice: update of shape {update.shape} does not fit "
                         f"in shape {x.shape}")
    if update.dtype != x.dtype:
        raise TypeError(f"dynamic_update_slice: update dtype {update.dtype} differs from "
                        f"operand dtype {x.dtype}")
    return x


def _dus_jvp(primals, tangents):
    x, update, *starts = primals
    tx, tu = tangents[:2]
    ans = dynamic_update_slice(x, update, starts)
    if type(tx) is Zero and type(tu) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, dynamic_update_slice(instantiate(tx), instantiate(tu), starts)


def _dus_transpose(ct, x, update, *starts):
    u_aval = update.aval if is_undefined(update) else get_aval(update)
    ct_x = dynamic_update_slice(ct, zeros_like_aval(u_aval), starts) if is_undefined(x) else None
    ct_u = dynamic_slice(ct, starts, u_aval.shape) if is_undefined(update) else None
    return [ct_x, ct_u] + [None] * len(starts)


dynamic_update_slice_p.abstract_eval = _dus_abstract_eval
dynamic_update_slice_p.jvp = _dus_jvp
dynamic_update_slice_p.transpose = _dus_transpose
dynamic_update_slice_p.linear = True

# ---------------------------------------------------------------------------
# creation

full_p = Primitive("full")


def full(shape: tuple, fill_value, dtype):
    """A new array of ``shape`` filled with the static scalar ``fill_value``."""
    return full_p.bind(shape=tuple(int(d) for d in shape), fill_value=fill_value,
                       dtype=np.dtype(dtype))


full_p.abstract_eval = lambda *, shape, fill_value, dtype: ShapedArray(shape, dtype)
full_p.jvp = lambda primals, tangents, **params: (
    full_p.bind(**params), Zero(ShapedArray(params["shape"], params["dtype"])))

iota_p = Primitive("iota")


def iota(dtype, shape: tuple, dimension: int):
    """An array of ``shape`` whose values count up along ``dimension``."""
    return iota_p.bind(dtype=np.dtype(dtype), shape=tuple(shape), dimension=int(dimension))


iota_p.abstract_eval = lambda *, dtype, shape, dimension: ShapedArray(shape, dtype)
iota_p.jvp = lambda primals, tangents, **params: (
    iota_p.bind(**params), Zero(ShapedArray(params["shape"], params["dtype"])))

# ---------------------------------------------------------------------------
# Batching rules (vmap): the batch axis is moved to the front, parameters shift.


def _install_batching_rules() -> None:
    from funcnet.transforms.batching import bdim_at_front, moveaxis, shift_axes_rule

    def reshape_rule(vals, dims, *, new_sizes):
        x = moveaxis(vals[0], dims[0], 0)
        return reshape(x, (np.shape(x)[0],) + tuple(new_sizes)), 0

    def bid_rule(vals, dims, *, shape, broadcast_dimensions):
        x = moveaxis(vals[0], dims[0], 0)
        return broadcast_in_dim(x, (np.shape(x)[0],) + tuple(shape),
                                (0,) + tuple(d + 1 for d in broadcast_dimensions)), 0

    def slice_rule(vals, dims, *, start_indices, limit_indices, strides):
        x = moveaxis(vals[0], dims[0], 0)
        return slice(x, (0,) + tuple(start_indices), (np.shape(x)[0],) + tuple(limit_indices),
                     (1,) + tuple(strides)), 0

    def pad_rule(vals, dims, *, padding_config):
        (x, v), (dx, dv) = vals, dims
        size = np.shape(x)[dx] if dx is not None else np.shape(v)[dv]
        x = bdim_at_front(x, dx, size)
        cfg = ((0, 0, 0),) + tuple(padding_config)
        if dv is None:
            return pad(x, v, cfg), 0
        from funcnet.ops.elementwise import select

        padded = pad(x, np.zeros((), x.dtype), cfg)
        mask = pad(full(np.shape(x), False, np.bool_), np.ones((), np.bool_), cfg)
        vb = reshape(moveaxis(v, dv, 0), (size,) + (1,) * (padded.ndim - 1))
        return select(mask, vb, padded), 0

    def concat_rule(vals, dims, *, dimension):
        size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
        xs = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
        return concatenate(xs, dimension + 1), 0

    def ds_rule(vals, dims, *, slice_sizes):
        x, *starts = vals
        dx, *dstarts = dims
        if all(d is None for d in dstarts):
            x = moveaxis(x, dx, 0)
            zero = np.zeros((), get_aval(starts[0]).dtype if starts else np.int64)
            sizes = (np.shape(x)[0],) + tuple(slice_sizes)
            return dynamic_slice(x, [zero] + list(starts), sizes), 0
        return _batched_dynamic_slice(x, dx, starts, dstarts, slice_sizes), 0

    def dus_rule(vals, dims):
        x, u, *starts = vals
        dx, du, *dstarts = dims
        size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
        x = bdim_at_front(x, dx, size)
        u = bdim_at_front(u, du, size)
        if all(d is None for d in dstarts):
            zero = np.zeros((), get_aval(starts[0]).dtype if starts else np.int64)
            return dynamic_update_slice(x, u, [zero] + list(starts)), 0
        return _batched_dynamic_update_slice(x, u, starts, dstarts, size), 0

    reshape_p.batch = reshape_rule
    broadcast_in_dim_p.batch = bid_rule
    transpose_p.batch = shift_axes_rule(transpose_p, perm_params=("permutation",))
    slice_p.batch = slice_rule
    pad_p.batch = pad_rule
    concatenate_p.batch = concat_rule
    rev_p.batch = shift_axes_rule(rev_p, tuple_params=("dimensions",))
    dynamic_slice_p.batch = ds_rule
    dynamic_update_slice_p.batch = dus_rule


def _batched_window_indices(shape, starts, dstarts, sizes, batch):
    """Per-example clamped window indices, as broadcastable index arrays."""
    from funcnet.ops import elementwise as ew
    from funcnet.transforms.batching import bdim_at_front

    nd = len(sizes)
    arrays = []
    for k, (s, d, n, dim) in enumerate(zip(starts, dstarts, sizes, shape)):
        s = bdim_at_front(s, d, batch)  # [B]
        s = ew.maximum(ew.minimum(s, dim - n), 0)
        s = reshape(s, (batch,) + (1,) * nd)
        offs = np.arange(n).reshape((1,) + (1,) * k + (n,) + (1,) * (nd - k - 1))
        arrays.append(ew.add(s, offs))
    bidx = np.arange(batch).reshape((batch,) + (1,) * nd)
    return [bidx] + arrays


def _batched_dynamic_slice(x, dx, starts, dstarts, sizes):
    from funcnet.ops.indexing import gather
    from funcnet.transforms.batching import bdim_at_front

    batch = next(np.shape(s)[d] for s, d in zip(starts, dstarts) if d is not None)
    x = bdim_at_front(x, dx, batch)
    arrays = _batched_window_indices(np.shape(x)[1:], starts, dstarts, sizes, batch)
    return gather(x, arrays, tuple(("array", i) for i in range(len(arrays))))


def _batched_dynamic_update_slice(x, u, starts, dstarts, batch):
    from funcnet.ops.indexing import scatter

    arrays = _batched_window_indices(np.shape(x)[1:], starts, dstarts, np.shape(u)[1:], batch)
    return scatter(x, u, arrays, tuple(("array", i) for i in range(len(arrays))))


_install_batching_rules()
