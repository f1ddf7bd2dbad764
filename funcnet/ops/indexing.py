"""Indexing primitives: ``gather`` (NumPy indexing), ``scatter`` (``.at[].set``),
``scatter_add`` / ``scatter_mul`` / ``scatter_min`` / ``scatter_max``.

An index expression is split into a static *spec* (a hashable tuple of
``("int", i)``, ``("slice", start, stop, step)``, ``("newaxis",)`` and
``("array", k)`` entries) and the dynamic integer index arrays it refers to,
which are the primitive's operands after the array (and updates).

>>> import numpy as np
>>> from funcnet.ops.indexing import gather
>>> gather(np.arange(6).reshape(2, 3), (np.array([1, 0]),), (("array", 0), ("int", 2)))
array([5, 2])
"""

from __future__ import annotations

import numpy as np

from funcnet.backends.base import has_advanced_index as has_advanced
from funcnet.backends.base import index_tuple
from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.primitive import Primitive
from funcnet.ops import elementwise as ew
from funcnet.ops.rules import is_undefined, unbroadcast
from funcnet.ops.shape import full
from funcnet.transforms.ad import Zero, instantiate, zeros_like_aval


def indexed_shape(shape: tuple, spec: tuple, index_avals) -> tuple:
    """The shape of ``x[index]`` under NumPy's rules, from shapes alone."""
    base = np.broadcast_to(np.empty((), np.int8), shape)
    dummies = []
    for a in index_avals:
        if a.dtype.kind not in "iu":
            raise TypeError(f"array indices must be integers, got {a.str_short()}")
        dummies.append(np.zeros(a.shape, np.intp))
    try:
        return base[index_tuple(spec, dummies)].shape
    except IndexError as e:
        if any(d == 0 for d in shape):
            raise IndexError(f"index {spec} into an empty axis of shape {shape}") from None
        raise IndexError(f"index does not fit shape {shape}: {e}") from None


def _num_arrays(spec) -> int:
    return sum(1 for e in spec if e[0] == "array")


# ---------------------------------------------------------------------------
# gather

gather_p = Primitive("gather")


def gather(x, arrays, spec):
    """``x[index]`` for the index described by ``spec`` and ``arrays``."""
    return gather_p.bind(x, *arrays, spec=spec)


def _gather_abstract_eval(x, *arrays, spec):
    return ShapedArray(indexed_shape(x.shape, spec, arrays), x.dtype, x.weak_type)


def _gather_jvp(primals, tangents, *, spec):
    x, *arrays = primals
    ans = gather(x, arrays, spec)
    if type(tangents[0]) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, gather(tangents[0], arrays, spec)


def _gather_transpose(ct, x, *arrays, spec):
    zeros = zeros_like_aval(x.aval)
    return [scatter_add(zeros, ct, arrays, spec)] + [None] * len(arrays)


gather_p.abstract_eval = _gather_abstract_eval
gather_p.jvp = _gather_jvp
gather_p.transpose = _gather_transpose
gather_p.linear = True


def take_along_axis(x, idx, axis: int):
    """``np.take_along_axis`` as a gather (differentiable in ``x``)."""
    shape = np.shape(idx)
    ndim = len(shape)
    axis = axis % ndim
    arrays, spec = [], []
    for d in range(ndim):
        if d == axis:
            arrays.append(idx)
        else:
            ar = np.arange(shape[d]).reshape((1,) * d + (shape[d],) + (1,) * (ndim - d - 1))
            arrays.append(ar)
        spec.append(("array", d))
    return gather(x, arrays, tuple(spec))


# ---------------------------------------------------------------------------
# scatters: x with x[index] replaced / combined with updates


def _scatter_abstract_eval(name):
    def rule(x, updates, *arrays, spec):
        target = indexed_shape(x.shape, spec, arrays)
        ushape = updates.shape
        if len(ushape) > len(target) or any(
                u not in (1, t) for u, t in zip(ushape[::-1], target[::-1])):
            raise ValueError(f"{name}: updates of shape {ushape} cannot be broadcast to the "
                             f"indexed shape {target} of an array of shape {x.shape}")
        return x

    return rule


scatter_p = Primitive("scatter")
scatter_add_p = Primitive("scatter_add")
scatter_mul_p = Primitive("scatter_mul")
scatter_min_p = Primitive("scatter_min")
scatter_max_p = Primitive("scatter_max")
for _p in (scatter_p, scatter_add_p, scatter_mul_p, scatter_min_p, scatter_max_p):
    _p.abstract_eval = _scatter_abstract_eval(_p.name)
del _p


def scatter(x, updates, arrays, spec):
    return scatter_p.bind(x, updates, *arrays, spec=spec)


def scatter_add(x, updates, arrays, spec):
    return scatter_add_p.bind(x, updates, *arrays, spec=spec)


def scatter_mul(x, updates, arrays, spec):
    return scatter_mul_p.bind(x, updates, *arrays, spec=spec)


def scatter_min(x, updates, arrays, spec):
    return scatter_min_p.bind(x, updates, *arrays, spec=spec)


def scatter_max(x, updates, arrays, spec):
    return scatter_max_p.bind(x, updates, *arrays, spec=spec)


def _linear_scatter_jvp(prim):
    def jvp(primals, tangents, *, spec):
        x, u, *arrays = primals
        tx, tu = tangents[:2]
        ans = prim.bind(x, u, *arrays, spec=spec)
        if type(tx) is Zero and type(tu) is Zero:
            return ans, Zero(get_aval(ans))
        tu = zeros_like_aval(get_aval(u)) if type(tu) is Zero else ew.convert_element_type(
            tu, ans.dtype)
        return ans, prim.bind(instantiate(tx), tu, *arrays, spec=spec)

    return jvp


def _updates_ct(ct, u, arrays, spec):
    return unbroadcast(gather(ct, arrays, spec), u.aval) if is_undefined(u) else None


def _scatter_add_transpose(ct, x, u, *arrays, spec):
    return [ct if is_undefined(x) else None, _updates_ct(ct, u, arrays, spec)] + [None] * len(
        arrays)


def _scatter_transpose(ct, x, u, *arrays, spec):
    ct_x = scatter(ct, np.zeros((), ct.dtype), arrays, spec) if is_undefined(x) else None
    return [ct_x, _updates_ct(ct, u, arrays, spec)] + [None] * len(arrays)


scatter_add_p.jvp = _linear_scatter_jvp(scatter_add_p)
scatter_add_p.transpose = _scatter_add_transpose
scatter_add_p.linear = True
scatter_p.jvp = _linear_scatter_jvp(scatter_p)
scatter_p.transpose = _scatter_transpose
scatter_p.linear = True


def _scatter_mul_jvp(primals, tangents, *, spec):
    # out = x * prod(updates landing on each position).  Linear in x; for the
    # updates, d out / d u_k = out / u_k at u_k's position (u_k != 0).
    x, u, *arrays = primals
    tx, tu = tangents[:2]
    ans = scatter_mul(x, u, arrays, spec)
    out = Zero(get_aval(ans))
    if type(tx) is not Zero:
        out = scatter_mul(tx, u, arrays, spec)
    if type(tu) is not Zero:
        contrib = ew.mul(ew.div(gather(ans, arrays, spec), u), tu)
        delta = scatter_add(zeros_like_aval(get_aval(ans)), contrib, arrays, spec)
        out = delta if type(out) is Zero else ew.add(out, delta)
    return ans, out


def _scatter_mul_transpose(ct, x, u, *arrays, spec):
    if is_undefined(u):
        raise TypeError("scatter_mul is not linear in its updates")
    return [scatter_mul(ct, u, arrays, spec), None] + [None] * len(arrays)


scatter_mul_p.jvp = _scatter_mul_jvp
scatter_mul_p.transpose = _scatter_mul_transpose


def _scatter_chooser_jvp(prim):
    def jvp(primals, tangents, *, spec):
        # The winner (x or an update) carries its tangent; ties share it.
        x, u, *arrays = primals
        tx, tu = tangents[:2]
        ans = prim.bind(x, u, *arrays, spec=spec)
        out = Zero(get_aval(ans))
        if type(tx) is not Zero:
            out = ew.select(ew.eq(ans, x), tx, 0.0)
        if type(tu) is not Zero:
            won = ew.eq(gather(ans, arrays, spec), u)
            picked = ew.select(won, tu, 0.0)
            delta = scatter_add(zeros_like_aval(get_aval(ans)), picked, arrays, spec)
            out = delta if type(out) is Zero else ew.add(out, delta)
        return ans, out

    return jvp


scatter_min_p.jvp = _scatter_chooser_jvp(scatter_min_p)
scatter_max_p.jvp = _scatter_chooser_jvp(scatter_max_p)

__all__ = ["gather", "scatter", "scatter_add", "scatter_mul", "scatter_min", "scatter_max",
           "take_along_axis", "index_tuple", "indexed_shape", "has_advanced", "full"]

# ---------------------------------------------------------------------------
# Batching rules (vmap).  Basic indexing just gains a leading full slice; any
# advanced index is rewritten in an all-advanced form whose result layout is
# explicit, with an ``arange(batch)`` index for the batch axis.

_FULL = ("slice", None, None, None)


def _complete(spec, ndim):
    consumed = sum(1 for e in spec if e[0] != "newaxis")
    return tuple(spec) + (_FULL,) * (ndim - consumed)


def _layout(shape, spec, array_shapes):
    """The per-example output layout of ``x[index]`` under NumPy's rules.

    Returns ``(items, rank, adv_shape)`` where ``items`` lists, in output
    order, ``("slice", entry, length)``, ``("newaxis",)`` or ``("adv",)``.
    """
    from funcnet.ops.rules import broadcast_shapes

    has_adv = any(e[0] == "array" for e in spec)
    adv_pos = [i for i, e in enumerate(spec)
               if e[0] == "array" or (has_adv and e[0] == "int")]
    adv_shape = broadcast_shapes(*[array_shapes[spec[i][1]] if spec[i][0] == "array"
                                   else () for i in adv_pos]) if adv_pos else ()
    contiguous = bool(adv_pos) and adv_pos == list(range(adv_pos[0], adv_pos[-1] + 1))
    items, placed, dim = [], False, 0
    if adv_pos and not contiguous:
        items.append(("adv",))
        placed = True
    for i, e in enumerate(spec):
        if e[0] == "newaxis":
            items.append(("newaxis",))
            continue
        if e[0] == "slice":
            n = len(range(*builtin_slice(e[1], e[2], e[3]).indices(shape[dim])))
            items.append(("slice", i, n))
        elif i in adv_pos and not placed:
            items.append(("adv",))
            placed = True
        dim += 1
    rank = sum(len(adv_shape) if it[0] == "adv" else 1 for it in items)
    return items, rank, adv_shape


builtin_slice = slice


def _advanced_indices(shape, spec, arrays, adims, batch):
    """All-advanced index arrays (batch first) equivalent to ``spec``, batched."""
    from funcnet.ops.shape import reshape
    from funcnet.transforms.batching import moveaxis

    spec = _complete(spec, len(shape))
    example_shapes = [tuple(np.shape(a))[:d] + tuple(np.shape(a))[d + 1:] if d is not None
                      else tuple(np.shape(a)) for a, d in zip(arrays, adims)]
    items, rank, adv_shape = _layout(shape, spec, example_shapes)
    pos, adv_at = {}, None
    k = 0
    for it in items:
        if it[0] == "slice":
            pos[it[1]] = k
        if it[0] == "adv":
            adv_at = k
            k += len(adv_shape)
        else:
            k += 1
    out = [np.arange(batch).reshape((batch,) + (1,) * rank)]
    dim = 0
    for i, e in enumerate(spec):
        if e[0] == "newaxis":
            continue
        if e[0] == "slice":
            vals = np.arange(*builtin_slice(e[1], e[2], e[3]).indices(shape[dim]))
            p = pos[i]
            out.append(vals.reshape((1,) * (p + 1) + (len(vals),) + (1,) * (rank - p - 1)))
        elif e[0] == "int":
            out.append(np.asarray(e[1]))
        else:
            a, d = arrays[e[1]], adims[e[1]]
            lead = batch if d is not None else 1
            if d is not None:
                a = moveaxis(a, d, 0)
            a_shape = tuple(np.shape(a))[1:] if d is not None else tuple(np.shape(a))
            new = ((lead,) + (1,) * adv_at + (1,) * (len(adv_shape) - len(a_shape)) + a_shape
                   + (1,) * (rank - adv_at - len(adv_shape)))
            out.append(reshape(a, new))
        dim += 1
    return out, tuple(("array", i) for i in range(len(out))), rank


def _gather_batch(vals, dims, *, spec):
    from funcnet.transforms.batching import bdim_at_front, moveaxis

    x, *arrays = vals
    dx, *adims = dims
    if all(d is None for d in adims) and not has_advanced(spec):
        return gather(moveaxis(x, dx, 0), arrays, (_FULL,) + tuple(spec)), 0
    batch = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    x = bdim_at_front(x, dx, batch)
    idx, new_spec, _ = _advanced_indices(tuple(np.shape(x))[1:], spec, arrays, adims, batch)
    return gather(x, idx, new_spec), 0


def _scatter_batch(prim):
    def rule(vals, dims, *, spec):
        from funcnet.ops.shape import reshape
        from funcnet.transforms.batching import bdim_at_front, moveaxis

        x, u, *arrays = vals
        dx, du, *adims = dims
        batch = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
        x = bdim_at_front(x, dx, batch)
        if all(d is None for d in adims) and not has_advanced(spec):
            if du is not None:
                u = moveaxis(u, du, 0)
                target = indexed_shape(tuple(np.shape(x))[1:], spec,
                                       [get_aval(a) for a in arrays])
                ushape = tuple(np.shape(u))[1:]
                u = reshape(u, (batch,) + (1,) * (len(target) - len(ushape)) + ushape)
            return prim.bind(x, u, *arrays, spec=(_FULL,) + tuple(spec)), 0
        idx, new_spec, rank = _advanced_indices(tuple(np.shape(x))[1:], spec, arrays, adims,
                                                batch)
        if du is not None:
            u = moveaxis(u, du, 0)
            ushape = tuple(np.shape(u))[1:]
            u = reshape(u, (batch,) + (1,) * (rank - len(ushape)) + ushape)
        return prim.bind(x, u, *idx, spec=new_spec), 0

    return rule


gather_p.batch = _gather_batch
for _p in (scatter_p, scatter_add_p, scatter_mul_p, scatter_min_p, scatter_max_p):
    _p.batch = _scatter_batch(_p)
del _p
