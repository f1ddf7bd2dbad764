"""``dot_general``: the one contraction primitive behind dot, matmul, tensordot.

>>> import numpy as np
>>> from funcnet.ops.contraction import dot_general
>>> dot_general(np.ones((2, 3)), np.ones((3, 4)), (((1,), (0,)), ((), ()))).shape
(2, 4)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, result_dtype
from funcnet.core.primitive import Primitive
from funcnet.ops.rules import is_undefined
from funcnet.ops.shape import transpose
from funcnet.transforms.ad import Zero, add_tangents

dot_general_p = Primitive("dot_general")


def dot_general(lhs, rhs, dimension_numbers):
    """Contract ``lhs`` and ``rhs``: ``((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``.

    The result's axes are the batch axes, then ``lhs``'s free axes, then ``rhs``'s.
    """
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dn)


def _free(ndim, contract, batch):
    return tuple(i for i in range(ndim) if i not in contract and i not in batch)


def _dot_abstract_eval(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise ValueError(f"dot_general: mismatched dimension numbers {dimension_numbers}")
    for a, b, what in ((lc, rc, "contracting"), (lb, rb, "batch")):
        for i, j in zip(a, b):
            if not (0 <= i < lhs.ndim and 0 <= j < rhs.ndim) or lhs.shape[i] != rhs.shape[j]:
                raise ValueError(
                    f"dot_general: {what} dimensions do not match: lhs {lhs.str_short()} "
                    f"axis {i} vs rhs {rhs.str_short()} axis {j}")
    shape = (tuple(lhs.shape[i] for i in lb) + tuple(lhs.shape[i] for i in _free(lhs.ndim, lc, lb))
             + tuple(rhs.shape[i] for i in _free(rhs.ndim, rc, rb)))
    dtype, weak = result_dtype(lhs, rhs)
    return ShapedArray(shape, dtype, weak)


def _dot_jvp(primals, tangents, *, dimension_numbers):
    lhs, rhs = primals
    tl, tr = tangents
    ans = dot_general_p.bind(lhs, rhs, dimension_numbers=dimension_numbers)
    out = Zero(ShapedArray(np.shape(ans), ans.dtype))
    if type(tl) is not Zero:
        out = add_tangents(out, dot_general_p.bind(tl, rhs, dimension_numbers=dimension_numbers))
    if type(tr) is not Zero:
        out = add_tangents(out, dot_general_p.bind(lhs, tr, dimension_numbers=dimension_numbers))
    return ans, out


def _transpose_operand(ct, x_ndim, other, contract, other_contract, batch, other_batch,
                       x_first):
    """Cotangent of operand ``x`` of ``dot_general(x, other)`` (or of ``(other, x)``)."""
    x_free = _free(x_ndim, contract, batch)
    o_free = _free(np.ndim(other), other_contract, other_batch)
    nb = len(batch)
    # ct's axes: batch, then the first operand's free axes, then the second's.
    start = nb + (len(x_free) if x_first else 0)
    ct_o_free = tuple(range(start, start + len(o_free)))
    # Axes of the result, named by the axis of x each one stands for.  With
    # (ct, other): batch, x's free axes, then other's contracting axes in
    # ascending order; with (other, ct) those two groups swap.  Pick the order
    # that needs no final transpose (a contiguous gradient), if either does.
    other_side = [contract[other_contract.index(c)] for c in sorted(other_contract)]
    ct_first = list(batch) + list(x_free) + other_side
    other_first = list(batch) + other_side + list(x_free)
    if ct_first != sorted(ct_first) and other_first == sorted(other_first):
        res = dot_general(other, ct, ((o_free, ct_o_free), (tuple(other_batch), tuple(range(nb)))))
        return res
    res = dot_general(ct, other, ((ct_o_free, o_free), (tuple(range(nb)), tuple(other_batch))))
    return transpose(res, tuple(int(i) for i in np.argsort(ct_first)))


def _dot_transpose(ct, lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined(lhs) and is_undefined(rhs):
        raise TypeError("dot_general of two linear values is not linear")
    if is_undefined(lhs):
        return [_transpose_operand(ct, lhs.aval.ndim, rhs, lc, rc, lb, rb, True), None]
    return [None, _transpose_operand(ct, rhs.aval.ndim, lhs, rc, lc, rb, lb, False)]


dot_general_p.abstract_eval = _dot_abstract_eval
dot_general_p.jvp = _dot_jvp
dot_general_p.transpose = _dot_transpose
dot_general_p.linear = True

# ---------------------------------------------------------------------------
# Batching rule (vmap)


def _dot_batch(vals, dims, *, dimension_numbers):
    from funcnet.transforms.batching import moveaxis

    (lhs, rhs), (dl, dr) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    shift = lambda axes: tuple(a + 1 for a in axes)  # noqa: E731
    if dl is not None and dr is not None:
        lhs, rhs = moveaxis(lhs, dl, 0), moveaxis(rhs, dr, 0)
        dn = ((shift(lc), shift(rc)), ((0,) + shift(lb), (0,) + shift(rb)))
        return dot_general(lhs, rhs, dn), 0
    if dl is not None:
        lhs = moveaxis(lhs, dl, 0)
        dn = ((shift(lc), rc), (shift(lb), rb))
        return dot_general(lhs, rhs, dn), len(lb)
    rhs = moveaxis(rhs, dr, 0)
    dn = ((lc, shift(rc)), (lb, shift(rb)))
    lhs_free = np.ndim(lhs) - len(lc) - len(lb)
    return dot_general(lhs, rhs, dn), len(lb) + lhs_free


dot_general_p.batch = _dot_batch
