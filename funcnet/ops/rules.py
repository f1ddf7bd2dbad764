"""Helpers that define primitives and their rules compactly.

>>> from funcnet.ops.rules import broadcast_shapes
>>> broadcast_shapes((2, 1), (3,))
(2, 3)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import funcnet.ops as _ops  # submodules are looked up at call time (they import this one)
from funcnet.core.aval import ShapedArray, result_dtype
from funcnet.core.primitive import Primitive
from funcnet.transforms.ad import Zero, add_any_p, is_undefined

# ---------------------------------------------------------------------------
# Shapes


def broadcast_shapes(*shapes: tuple) -> tuple:
    """NumPy broadcasting of shapes, with a clear error on mismatch."""
    first = shapes[0]
    if all(s == first for s in shapes[1:]):
        return first
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):
        d = 1
        for s in shapes:
            if len(s) >= -i:
                e = s[i]
                if e != 1:
                    if d != 1 and d != e:
                        raise ValueError(
                            "shapes " + ", ".join(str(tuple(s)) for s in shapes)
                            + " cannot be broadcast together")
                    d = e
        out.append(d)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ValueError(f"{what} {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim if ndim else 0


# ---------------------------------------------------------------------------
# Primitive definition helpers


_YIELDS_TO = {"b": "biufc", "i": "iufc", "u": "iufc", "f": "fc", "c": "c"}


def elementwise_abstract_eval(*avals: ShapedArray, out_dtype=None) -> ShapedArray:
    if out_dtype is None and len(avals) == 2:
        a, b = avals
        # fast paths: identical operands, or an array with a weak scalar it absorbs
        if a.shape == b.shape and a.dtype == b.dtype and a.weak_type == b.weak_type:
            return a
        if b.weak_type and not a.weak_type and not b.shape and a.dtype.kind in _YIELDS_TO[
                b.dtype.kind]:
            return a
        if a.weak_type and not b.weak_type and not a.shape and b.dtype.kind in _YIELDS_TO[
                a.dtype.kind]:
            return b
    shape = broadcast_shapes(*[a.shape for a in avals])
    if out_dtype is not None:
        return ShapedArray(shape, out_dtype)
    dtype, weak = result_dtype(*avals)
    return ShapedArray(shape, dtype, weak)


def fit_tangent(t, aval):
    """Cast and broadcast a tangent contribution to the type of ``aval`` (or an array)."""
    if t.dtype != aval.dtype:
        t = _ops.elementwise.convert_element_type(t, aval.dtype)
    if tuple(t.shape) != tuple(aval.shape):
        t = _ops.shape.broadcast_to(t, tuple(aval.shape))
    return t


def defjvp(prim: Primitive, *rules: Callable | None) -> None:
    """Per-argument JVP rules: ``rule_i(t_i, ans, *primals, **params) -> contribution``.

    Contributions of non-zero tangents are cast/broadcast to the output type
    and summed.  A ``None`` rule marks a non-differentiable argument.
    """

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        out = None
        for rule, t in zip(rules, tangents):
            if rule is None or type(t) is Zero:
                continue
            c = rule(t, ans, *primals, **params)
            if c.dtype != ans.dtype or c.shape != ans.shape:
                c = fit_tangent(c, ans)
            out = c if out is None else add_any_p.bind(out, c)
        return ans, Zero(_aval_of(ans)) if out is None else out

    prim.jvp = jvp


def defjvp_zero(prim: Primitive) -> None:
    """The output does not depend differentiably on the inputs (zero tangent)."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        if prim.multiple_results:
            return ans, [Zero(_aval_of(a)) for a in ans]
        return ans, Zero(_aval_of(ans))

    prim.jvp = jvp
    prim.differentiable = False


def deflinear(prim: Primitive, transpose: Callable) -> None:
    """A primitive linear in its (single) array argument: JVP applies it to the tangent."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        if type(tangents[0]) is Zero:
            return ans, Zero(_aval_of(ans))
        return ans, prim.bind(tangents[0], *primals[1:], **params)

    prim.jvp = jvp
    prim.transpose = transpose
    prim.linear = True


def _aval_of(x) -> ShapedArray:
    from funcnet.core.aval import get_aval

    return get_aval(x)


def unbroadcast(ct, aval: ShapedArray):
    """Sum ``ct`` down to ``aval``'s shape (undo implicit broadcasting) and dtype."""
    shape = aval.shape
    ct_shape = tuple(ct.shape)
    if ct_shape != shape:
        lead = len(ct_shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and ct_shape[lead + i] != 1)
        if axes:
            ct = _ops.reductions.reduce_sum(ct, axes)
        if tuple(ct.shape) != shape:
            ct = _ops.shape.reshape(ct, shape)
    if ct.dtype != aval.dtype and aval.dtype.kind in "fc":
        ct = _ops.elementwise.convert_element_type(ct, aval.dtype)
    return ct


def linear_transpose_elementwise(fn: Callable) -> Callable:
    """Transpose rule for an elementwise op linear in each undefined argument."""

    def transpose(ct, *args, **params):
        return [unbroadcast(fn(ct, i, *args, **params), a.aval) if is_undefined(a) else None
                for i, a in enumerate(args)]

    return transpose


def same_dtype_or_error(prim_name: str, *avals: ShapedArray) -> np.dtype:
    dts = {a.dtype for a in avals}
    if len(dts) > 1:
        shown = ", ".join(f"{a.str_short()}" for a in avals)
        raise TypeError(f"{prim_name} requires operands of one dtype, got {shown}")
    return avals[0].dtype
