"""Products and contractions of funcnet.numpy against NumPy: dot, matmul, vdot, inner,
outer, tensordot, trace, diagonal, diag (einsum and linalg are tested elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optable import (
    ALL,
    F32,
    F64,
    FEW,
    FLOATS,
    GRADS,
    INTS,
    VALUES,
    arrays,
    assert_like_numpy,
    assert_traced_matches_eager,
    grads_ok,
    shapes,
    traced,
)

import funcnet as fn
import funcnet.numpy as fnp

_DTYPES = FLOATS + INTS + (np.dtype(np.bool_),)
_SIDE = st.integers(0, 3)


def _pair(draw, dtype, a_shape, b_shape):
    dtype_b = draw(st.sampled_from([dtype, dtype, F32, np.dtype(np.int32)]))
    return draw(arrays(dtype, a_shape)), draw(arrays(dtype_b, b_shape))


@st.composite
def matmul_shapes(draw, min_side=0):
    m, n, p = (draw(st.integers(min_side, 3)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2,
                                                   min_side=max(min_side, 1), max_side=3))
    ba, bb = batch.input_shapes
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "bb"]))
    return {"vv": ((n,), (n,)), "mv": (ba + (m, n), (n,)), "vm": ((n,), bb + (n, p)),
            "mm": ((m, n), (n, p)), "bb": (ba + (m, n), bb + (n, p))}[kind]


@st.composite
def dot_shapes(draw, min_side=0):
    lo = min_side
    kind = draw(st.sampled_from(["scalar", "vv", "mv", "nd"]))
    n = draw(st.integers(lo, 3))
    if kind == "scalar":
        return draw(st.permutations([(), draw(shapes(max_dims=2, min_side=lo, max_side=3))]))
    if kind == "vv":
        return (n,), (n,)
    if kind == "mv":
        return draw(shapes(max_dims=2, min_side=lo, max_side=3)) + (n,), (n,)
    a = draw(shapes(max_dims=2, min_side=lo, max_side=3)) + (n,)
    b = draw(shapes(max_dims=1, min_side=lo, max_side=3)) + (n, draw(st.integers(lo, 3)))
    return a, b


@st.composite
def inner_shapes(draw, min_side=0):
    n = draw(st.integers(min_side, 3))
    if draw(st.booleans()):
        return draw(st.permutations([(), draw(shapes(max_dims=2, min_side=min_side,
                                                       max_side=3))]))
    return (draw(shapes(max_dims=2, min_side=min_side, max_side=3)) + (n,),
            draw(shapes(max_dims=2, min_side=min_side, max_side=3)) + (n,))


@st.composite
def tensordot_case(draw, min_side=0):
    k = draw(st.integers(0, 2))
    common = tuple(draw(st.integers(min_side, 3)) for _ in range(k))
    a_free = draw(shapes(max_dims=2, min_side=min_side, max_side=3))
    b_free = draw(shapes(max_dims=2, min_side=min_side, max_side=3))
    if draw(st.booleans()):
        return a_free + common, common + b_free, k
    # explicit axis lists, contracted axes placed anywhere and spelled either way
    a_shape = list(a_free)
    a_axes = []
    for d in common:
        pos = draw(st.integers(0, len(a_shape)))
        a_shape.insert(pos, d)
        a_axes = [x + 1 if x >= pos else x for x in a_axes] + [pos]
    b_perm = draw(st.permutations(range(k + len(b_free))))
    b_dims = list(common) + list(b_free)
    b_shape = tuple(b_dims[i] for i in b_perm)
    b_axes = [b_perm.index(i) for i in range(k)]
    na, nb = len(a_shape), len(b_shape)
    a_axes = [x - na if draw(st.booleans()) else x for x in a_axes]
    b_axes = [x - nb if draw(st.booleans()) else x for x in b_axes]
    return tuple(a_shape), b_shape, (a_axes, b_axes)


# ---------------------------------------------------------------------------
# 1. values and dtypes


@given(data=st.data())
@VALUES
def test_matmul_matches_numpy(data):
    dtype = data.draw(st.sampled_from(_DTYPES))
    a, b = _pair(data.draw, dtype, *data.draw(matmul_shapes()))
    expected = np.matmul(a, b)
    assert_like_numpy(fnp.matmul(a, b), expected, 10)
    out, _ = traced(lambda x, y: x @ y, a, b)
    assert_like_numpy(out, expected, 10, check_type=False)


@given(data=st.data())
@VALUES
def test_dot_matches_numpy(data):
    dtype = data.draw(st.sampled_from(_DTYPES))
    a, b = _pair(data.draw, dtype, *data.draw(dot_shapes()))
    assert_like_numpy(fnp.dot(a, b), np.dot(a, b), 10)


@given(data=st.data())
@VALUES
def test_inner_outer_vdot_match_numpy(data):
    dtype = data.draw(st.sampled_from(_DTYPES))
    a, b = _pair(data.draw, dtype, *data.draw(inner_shapes()))
    assert_like_numpy(fnp.inner(a, b), np.inner(a, b), 10)
    assert_like_numpy(fnp.outer(a, b), np.outer(a, b))
    c = data.draw(arrays(dtype, a.shape))
    assert_like_numpy(fnp.vdot(a, c), np.asarray(np.vdot(a, c)), 10)


@given(data=st.data())
@VALUES
def test_tensordot_matches_numpy(data):
    dtype = data.draw(st.sampled_from(_DTYPES))
    a_shape, b_shape, axes = data.draw(tensordot_case())
    a, b = _pair(data.draw, dtype, a_shape, b_shape)
    assert_like_numpy(fnp.tensordot(a, b, axes), np.tensordot(a, b, axes), 10)


@given(data=st.data())
@VALUES
def test_diagonal_trace_match_numpy(data):
    dtype = data.draw(st.sampled_from(ALL))
    x = data.draw(arrays(dtype, data.draw(shapes(min_dims=2, max_dims=4))))
    nd = x.ndim
    a1 = data.draw(st.integers(-nd, nd - 1))
    a2 = data.draw(st.integers(-nd, nd - 1).filter(lambda v: v % nd != a1 % nd))
    k = data.draw(st.integers(-3, 3))
    assert_like_numpy(fnp.diagonal(x, k, a1, a2), np.diagonal(x, k, a1, a2))
    assert_like_numpy(fnp.trace(x, k, a1, a2), np.asarray(np.trace(x, k, a1, a2)))
    assert_like_numpy(fnp.diagonal(x), np.diagonal(x))


@given(data=st.data())
@VALUES
def test_diag_matches_numpy(data):
    dtype = data.draw(st.sampled_from(ALL))
    x = data.draw(arrays(dtype, data.draw(shapes(min_dims=1, max_dims=2))))
    k = data.draw(st.integers(-3, 3))
    assert_like_numpy(fnp.diag(x, k), np.diag(x, k))
    assert_like_numpy(fnp.diag(x), np.diag(x))


# ---------------------------------------------------------------------------
# 2. gradients


@given(data=st.data())
@GRADS
def test_matmul_and_dot_gradients(data):
    a_shape, b_shape = data.draw(matmul_shapes(min_side=1))
    a, b = data.draw(arrays(F64, a_shape)), data.draw(arrays(F64, b_shape))
    grads_ok(fnp.matmul, (a, b))
    grads_ok(lambda x, y: x @ y, (a, b), order=1)
    a_shape, b_shape = data.draw(dot_shapes(min_side=1))
    grads_ok(fnp.dot, (data.draw(arrays(F64, a_shape)), data.draw(arrays(F64, b_shape))))


@given(data=st.data())
@GRADS
def test_inner_outer_vdot_tensordot_gradients(data):
    a_shape, b_shape = data.draw(inner_shapes(min_side=1))
    a, b = data.draw(arrays(F64, a_shape)), data.draw(arrays(F64, b_shape))
    grads_ok(fnp.inner, (a, b))
    grads_ok(fnp.outer, (a, b))
    grads_ok(fnp.vdot, (a, data.draw(arrays(F64, a_shape))))
    a_shape, b_shape, axes = data.draw(tensordot_case(min_side=1))
    a, b = data.draw(arrays(F64, a_shape)), data.draw(arrays(F64, b_shape))
    grads_ok(lambda x, y: fnp.tensordot(x, y, axes), (a, b))


@given(data=st.data())
@FEW
def test_diagonal_trace_diag_gradients(data):
    x = data.draw(arrays(F64, data.draw(shapes(min_dims=2, max_dims=3, min_side=1,
                                               max_side=3))))
    k = data.draw(st.integers(-2, 2))
    grads_ok(lambda a: fnp.diagonal(a, k, -1, 0), (x,))
    grads_ok(lambda a: fnp.trace(a, k), (x,))
    v = data.draw(arrays(F64, data.draw(shapes(min_dims=1, max_dims=1, min_side=1))))
    grads_ok(lambda a: fnp.diag(a, k), (v,))
    grads_ok(lambda a: fnp.diag(a[..., 0] if a.ndim == 3 else a, k), (x,))


def test_gradient_dtypes_follow_inputs():
    for dt in FLOATS:
        a, b = np.ones((2, 3), dt), np.ones((3, 4), dt)
        ga, gb = fn.grad(lambda x, y: fnp.sum(x @ y), argnums=(0, 1))(a, b)
        assert ga.dtype == dt and gb.dtype == dt
    g = fn.grad(lambda x: fnp.sum(fnp.matmul(x, np.ones((3, 2), F64))))(np.ones((2, 3), F32))
    assert g.dtype == F32  # the float64 constant promotes the output, not the gradient


# ---------------------------------------------------------------------------
# 3. traced == eager


@given(data=st.data())
@FEW
def test_traced_matches_eager(data):
    dtype = data.draw(st.sampled_from([F32, np.dtype(np.int32)]))
    a, b = _pair(data.draw, dtype, *data.draw(matmul_shapes()))
    assert_traced_matches_eager(fnp.matmul, a, b)
    a, b = _pair(data.draw, dtype, *data.draw(dot_shapes()))
    assert_traced_matches_eager(lambda x, y: (fnp.dot(x, y), fnp.outer(x, y)), a, b)
    a_shape, b_shape, axes = data.draw(tensordot_case())
    a, b = _pair(data.draw, dtype, a_shape, b_shape)
    assert_traced_matches_eager(lambda x, y: fnp.tensordot(x, y, axes), a, b)
    x = data.draw(arrays(dtype, (3, 4)))
    assert_traced_matches_eager(lambda m: (fnp.trace(m, 1), fnp.diagonal(m, -1), fnp.diag(m),
                                           fnp.diag(m[0], 1)), x)


def test_numpy_matmul_operator_defers_to_tracers():
    a = np.arange(6.0).reshape(2, 3)
    g = fn.grad(lambda x: fnp.sum(a @ x))(np.ones((3, 2)))
    np.testing.assert_allclose(g, np.repeat(a.sum(0)[:, None], 2, 1))
    out, _ = traced(lambda x: (x @ a.T, a @ x, x.dot(a.T)), np.ones((3, 3)))
    np.testing.assert_allclose(out[0], np.ones((3, 3)) @ a.T)


def test_integer_and_bool_products_keep_numpy_dtypes():
    i8 = np.array([[1, 2], [3, 4]], np.int8)
    b = np.array([[True, False], [True, True]])
    for x, y in ((i8, i8), (b, b), (i8, b), (i8, np.ones((2, 2), np.uint8)),
                 (np.ones(2, np.int32), np.ones(2, F32))):
        assert_like_numpy(fnp.matmul(x, y), np.matmul(x, y))
        assert_like_numpy(fnp.dot(x, y), np.dot(x, y))
        assert_like_numpy(fnp.tensordot(x, y, 1), np.tensordot(x, y, 1))
        if x.ndim == 2:
            assert_like_numpy(fnp.trace(x), np.asarray(np.trace(x)))


# ---------------------------------------------------------------------------
# 5. errors


def test_matmul_misalignment_names_shapes():
    for a, b in (((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5, 2, 3), (4, 2))):
        with pytest.raises(ValueError) as info:
            fnp.matmul(np.ones(a), np.ones(b))
        msg = str(info.value)
        assert "matmul" in msg and str(a) in msg and str(b) in msg
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        fn.make_graph(lambda x, y: x @ y)(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="scalar"):
        fnp.matmul(np.ones(()), np.ones(3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)|broadcast"):
        fnp.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2)))


def test_other_contraction_errors_name_shapes():
    with pytest.raises(ValueError, match=r"dot.*\(2, 3\).*\(2, 3\)"):
        fnp.dot(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)|dimensions do not match"):
        fnp.tensordot(np.ones((2, 3)), np.ones(4), ((1,), (0,)))
    with pytest.raises(ValueError, match="diag expects a 1-d or 2-d array"):
        fnp.diag(np.ones((2, 2, 2)))
