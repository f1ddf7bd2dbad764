"""Elementwise ops of funcnet.numpy against NumPy: values, dtypes, gradients, tracing.

Table-driven (see ``optable.py``): every row of ``UNARY`` / ``BINARY`` runs
through the same checks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optable import (
    ALL,
    BINARY,
    ELEMENTWISE,
    F32,
    F64,
    FEW,
    FLOATS,
    GRADS,
    INTS,
    NUMERIC,
    SPECIAL_VALUES,
    UNARY,
    VALUES,
    Dom,
    arrays,
    assert_like_numpy,
    assert_traced_matches_eager,
    grads_ok,
    ids,
    numpy_ref,
    quiet,
    shapes,
    traced,
)

import funcnet as fn
import funcnet.numpy as fnp

DIFFERENTIABLE = [op for op in ELEMENTWISE if op.gdom is not None]
F16 = np.dtype(np.float16)


def _with_float16(dtypes):
    """float16 too, wherever the op takes float32 (values only: gradients use float64)."""
    return dtypes + (F16,) if F32 in dtypes else dtypes


def _draw_args(data, op, dtype, shape_list):
    return [data.draw(arrays(dtype, s, op.dom[i]), label=f"arg{i}")
            for i, s in enumerate(shape_list)]


# ---------------------------------------------------------------------------
# 1. values and dtypes vs NumPy


@pytest.mark.parametrize("op", UNARY, ids=ids(UNARY))
@given(data=st.data())
@VALUES
def test_unary_matches_numpy(op, data):
    dtype = data.draw(st.sampled_from(_with_float16(op.dtypes)), label="dtype")
    (x,) = _draw_args(data, op, dtype, [data.draw(shapes(), label="shape")])
    assert_like_numpy(quiet(op.fn, x), numpy_ref(op.ref, x), op.rtol)


@pytest.mark.parametrize("op", BINARY, ids=ids(BINARY))
@given(data=st.data())
@VALUES
def test_binary_matches_numpy_with_broadcasting(op, data):
    dtype = data.draw(st.sampled_from(_with_float16(op.dtypes)), label="dtype")
    bshapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                          min_side=0, max_side=4))
    x, y = _draw_args(data, op, dtype, bshapes.input_shapes)
    assert_like_numpy(quiet(op.fn, x, y), numpy_ref(op.ref, x, y), op.rtol)


@pytest.mark.parametrize("op", [op for op in ELEMENTWISE if op.specials], ids=ids(
    [op for op in ELEMENTWISE if op.specials]))
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_special_values_match_numpy(op, dtype):
    """inf, -inf, nan, +-0 and huge values give NumPy's results (every pair for binary ops)."""
    v = np.array(SPECIAL_VALUES, dtype)
    args = (v,) if op.arity == 1 else (v[:, None], v[None, :])
    assert_like_numpy(quiet(op.fn, *args), numpy_ref(op.ref, *args), op.rtol)


_OP_DTYPES = [(op, dt) for op in BINARY for dt in FLOATS + INTS if dt in op.dtypes]


@pytest.mark.parametrize("op, dtype", _OP_DTYPES, ids=[f"{o.name}-{d}" for o, d in _OP_DTYPES])
@pytest.mark.parametrize("scalar", [2, 1.5, True], ids=["int", "float", "bool"])
def test_python_scalars_are_weak(op, dtype, scalar):
    """``array op scalar`` and ``scalar op array`` promote like NumPy 2 (weak scalars)."""
    x = np.array([1, 2, 3], dtype)
    for args in ((x, scalar), (scalar, x)):
        try:
            expected = numpy_ref(op.ref, *args)
        except (TypeError, ValueError):  # NumPy refuses (e.g. int8 << 1.5): so may we
            continue
        assert_like_numpy(quiet(op.fn, *args), expected, op.rtol)


@pytest.mark.parametrize("op", UNARY, ids=ids(UNARY))
def test_unary_on_python_scalars_uses_default_float(op):
    """A Python float alone is funcnet's choice of dtype: ``config.default_float``."""
    x = 0.5 if op.name not in ("arccosh", "reciprocal") else 1.5
    if op.name in ("invert", "bitwise_not"):
        x = 3
    out = quiet(op.fn, x)
    assert type(out) is np.ndarray and out.shape == ()
    expected = numpy_ref(op.ref, np.float32(x) if isinstance(x, float) else np.int64(x))
    assert_like_numpy(out, expected, op.rtol)


@pytest.mark.parametrize("a, b", [(np.float32, np.float64), (np.int32, np.float32),
                                  (np.int8, np.uint8), (np.bool_, np.int32),
                                  (np.uint8, np.float16), (np.int64, np.float32)])
@pytest.mark.parametrize("op", [op for op in BINARY if op.name in (
    "add", "multiply", "divide", "maximum", "power", "arctan2", "hypot", "logaddexp",
    "equal", "fmax")], ids=str)
def test_mixed_dtypes_promote_like_numpy(op, a, b):
    x = np.array([1, 2, 3], a)
    y = np.array([[2], [1]], b)
    assert_like_numpy(quiet(op.fn, x, y), numpy_ref(op.ref, x, y), op.rtol)


# ---------------------------------------------------------------------------
# 2. gradients (float64, away from the non-differentiable points)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=ids(DIFFERENTIABLE))
@given(data=st.data())
@GRADS
def test_gradients(op, data):
    if op.arity == 1:
        in_shapes = [data.draw(shapes(max_dims=2, min_side=1, max_side=3), label="shape")]
    else:
        in_shapes = data.draw(hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3)).input_shapes
    args = [data.draw(arrays(F64, s, op.gdom[i]), label=f"arg{i}")
            for i, s in enumerate(in_shapes)]
    grads_ok(op.fn, args)


@pytest.mark.parametrize("op", [op for op in DIFFERENTIABLE if op.arity == 2],
                         ids=ids([op for op in DIFFERENTIABLE if op.arity == 2]))
def test_gradients_with_a_constant_operand(op):
    """Differentiating one argument with the other a Python scalar or a NumPy constant."""
    x = np.array([[0.7, 1.3, 2.2]])  # x / 1.5 and 1.5 / x are not integers
    const = {"power": 2.5, "floor_divide": 1.5, "mod": -1.5, "remainder": 1.5}.get(op.name, 0.5)
    grads_ok(lambda a: op.fn(a, const), (x,))
    grads_ok(lambda a: op.fn(np.full((2, 1), const), a), (x,))


def test_power_gradients_at_special_points():
    # integer exponents with negative bases, and x ** 0 at x == 0
    x = np.array([-1.5, -0.5, 0.75, 2.0])
    grads_ok(lambda a: fnp.power(a, 3), (x,))
    grads_ok(lambda a: a ** 2, (x,))
    g = fn.grad(lambda a: fnp.sum(fnp.power(a, 0.0)))(np.zeros(3))
    np.testing.assert_array_equal(g, np.zeros(3))
    g = fn.grad(lambda e: fnp.sum(fnp.power(0.0, e)))(np.array([1.0, 2.0]))
    assert np.all(np.isfinite(g))


def test_where_and_clip_gradients():
    c = np.array([True, False, True])
    x, y = np.array([0.5, -1.25, 2.0]), np.array([[1.5], [-0.75]])
    grads_ok(lambda a, b: fnp.where(c, a, b), (x, y))
    grads_ok(lambda a: fnp.clip(a, -1.0, 1.0), (np.array([-1.7, -0.3, 0.2, 1.4]),))
    grads_ok(lambda a, lo: fnp.clip(a, lo, 1.0), (np.array([-1.7, 0.2]), np.array(-0.5)))
    # NaN-free gradient through masked_apply (the double-where pattern)
    g = fn.grad(lambda a: fnp.sum(fnp.masked_apply(a > 0, fnp.sqrt, a)))(np.array([4.0, -1.0]))
    np.testing.assert_allclose(g, [0.25, 0.0])


def test_composed_ops_are_smooth_at_ties_and_zero():
    """hypot and logaddexp use max/|.| internally; their derivatives must not see the kinks."""
    for a in (np.array([0.5, 0.5]), np.array([-1.0, 1.0]), np.array([2.0, 2.0])):
        grads_ok(lambda v: fnp.logaddexp(v[0], v[1]), (a,))
        grads_ok(lambda v: fnp.hypot(v[0], v[1]), (a,))
    np.testing.assert_allclose(fn.hessian(lambda v: fnp.logaddexp(v[0], v[1]))(np.zeros(2)),
                               [[0.25, -0.25], [-0.25, 0.25]])
    np.testing.assert_allclose(fn.grad(lambda v: fnp.hypot(v[0], v[1]))(np.zeros(2)), [0, 0])
    np.testing.assert_allclose(fn.grad(lambda v: fnp.logaddexp(v, -np.inf))(1.5), 1.0)


def test_gradient_dtypes_follow_inputs():
    for dt in FLOATS:
        x = np.array([0.5, 1.5], dt)
        for f in (fnp.sin, fnp.exp2, fnp.log10, lambda a: fnp.hypot(a, 2.0),
                  lambda a: fnp.logaddexp(a, 1.0), lambda a: a * 2.0 + 1):
            g = fn.grad(lambda a: fnp.sum(f(a)))(x)
            assert g.dtype == dt, (f, g.dtype)


# ---------------------------------------------------------------------------
# 3. traced == eager


@pytest.mark.parametrize("op", ELEMENTWISE, ids=ids(ELEMENTWISE))
@given(data=st.data())
@FEW
def test_traced_matches_eager(op, data):
    dtype = data.draw(st.sampled_from(op.dtypes), label="dtype")
    if op.arity == 1:
        in_shapes = [data.draw(shapes(max_dims=2), label="shape")]
    else:
        in_shapes = data.draw(hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    args = _draw_args(data, op, dtype, in_shapes)
    assert_traced_matches_eager(op.fn, *args)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=ids(DIFFERENTIABLE))
def test_jvp_primal_output_matches_eager(op):
    args = [np.array([0.75, 1.25, 2.25][: 3], F32) if op.arity == 1 or i == 0
            else np.array([1.5], F32) for i in range(op.arity)]
    eager = quiet(op.fn, *args)
    out, tangent = fn.jvp(op.fn, tuple(args), tuple(np.ones_like(a) for a in args))
    assert_like_numpy(out, eager)
    assert tangent.dtype == eager.dtype and tangent.shape == eager.shape


def test_scalar_and_tracer_weak_typing_under_trace():
    x = np.ones(3, F32)
    out, avals = traced(lambda a: a * 2.0 + 1, x)
    assert avals[0].dtype == F32 and out.dtype == F32
    out, avals = traced(lambda a: fnp.divide(a, 2), np.arange(3))
    assert avals[0].dtype == F64


# ---------------------------------------------------------------------------
# tracer operators behave like NumPy's


_OPERATORS = [
    ("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b),
    ("/", lambda a, b: a / b), ("//", lambda a, b: a // b), ("%", lambda a, b: a % b),
    ("**", lambda a, b: abs(a) ** b), ("<", lambda a, b: a < b), ("<=", lambda a, b: a <= b),
    (">", lambda a, b: a > b), (">=", lambda a, b: a >= b), ("==", lambda a, b: a == b),
    ("!=", lambda a, b: a != b),
]


@pytest.mark.parametrize("name, op", _OPERATORS, ids=[n for n, _ in _OPERATORS])
def test_tracer_operators_and_reflected_operators(name, op):
    x = np.array([[1.5, -2.0, 3.25]], F32)
    y = np.array([[0.5], [2.5]], F64)
    expected = quiet(op, x, y)
    for args in ((x, y), (y, x)):
        expected = quiet(op, *args)
        # tracer (op) numpy array, numpy array (op) tracer, tracer (op) Python scalar
        out, _ = traced(lambda a: op(a, args[1]), args[0])
        assert_like_numpy(out, expected, check_type=False)
        out, _ = traced(lambda b: op(args[0], b), args[1])
        assert_like_numpy(out, expected, check_type=False)
    out, _ = traced(lambda a: op(a, 2.0), x)
    assert_like_numpy(out, quiet(op, x, 2.0), check_type=False)
    out, _ = traced(lambda a: op(3, a), x)
    assert_like_numpy(out, quiet(op, 3, x), check_type=False)


def test_numpy_array_defers_to_tracer():
    """``np_array * tracer`` must call the tracer's reflected method, not NumPy's loop."""
    c = np.array([1.0, 2.0, 3.0])
    g = fn.grad(lambda a: fnp.sum(c * a + c / (a + 4.0) - c ** a))(np.ones(3))
    expected = c - c / 25.0 - np.log(c) * c
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    x = np.array([1, 2], np.int64)
    out, _ = traced(lambda a: (x & a, x | a, x ^ a, ~a, -a, +a, abs(a)),
                                          np.array([3, -1], np.int64))
    np.testing.assert_array_equal(out[0], x & np.array([3, -1]))
    np.testing.assert_array_equal(out[3], ~np.array([3, -1]))


def test_tracer_shift_operators():
    x = np.array([1, 8, -16], np.int32)
    out, _ = traced(lambda a: (a << 2, a >> 1), x)
    np.testing.assert_array_equal(out[0], x << 2)
    np.testing.assert_array_equal(out[1], x >> 1)
    out, _ = traced(lambda a: (3 << a, 256 >> a), np.array([1, 2]))
    np.testing.assert_array_equal(out[0], 3 << np.array([1, 2]))
    np.testing.assert_array_equal(out[1], 256 >> np.array([1, 2]))


# ---------------------------------------------------------------------------
# where / clip / nan_to_num / isfinite family in detail


@given(data=st.data())
@VALUES
def test_where_matches_numpy(data):
    dtype = data.draw(st.sampled_from(ALL))
    s = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, min_side=0,
                                                    max_side=3)).input_shapes
    c = data.draw(hnp.arrays(np.bool_, s[0]))
    x = data.draw(arrays(dtype, s[1]))
    y = data.draw(arrays(data.draw(st.sampled_from(ALL)), s[2]))
    assert_like_numpy(fnp.where(c, x, y), np.where(c, x, y))
    # non-bool conditions are truth-tested like NumPy's
    ci = data.draw(arrays(np.int32, s[0], Dom(((-1.0, 1.0),))))
    assert_like_numpy(fnp.where(ci, x, 2.5), np.where(ci, x, 2.5))
    assert_traced_matches_eager(fnp.where, c, x, y)


def test_where_with_python_scalars():
    c = np.array([True, False])
    assert_like_numpy(fnp.where(c, 1, 2.5), np.where(c, 1, 2.5).astype(F32))
    assert_like_numpy(fnp.where(c, 1, 2), np.where(c, 1, 2))
    assert_like_numpy(fnp.where(c, np.ones(2, np.float16), 2.5), np.where(
        c, np.ones(2, np.float16), np.float16(2.5)))


def test_where_needs_three_arguments():
    with pytest.raises(ValueError, match="nonzero"):
        fnp.where(np.array([True]))


@given(data=st.data())
@VALUES
def test_clip_matches_numpy(data):
    dtype = data.draw(st.sampled_from(NUMERIC))
    shape = data.draw(shapes())
    x = data.draw(arrays(dtype, shape))
    lo = data.draw(st.one_of(st.none(), st.integers(-3, 0), st.floats(-3, 0)))
    hi = data.draw(st.one_of(st.integers(0, 3), st.floats(0, 3)))
    if dtype.kind in "iu" and (isinstance(lo, float) or isinstance(hi, float)):
        return  # NumPy 2 refuses to clip integers with float bounds in some versions
    if dtype.kind == "u" and lo is not None and lo < 0:
        lo = 0
    assert_like_numpy(fnp.clip(x, lo, hi), np.clip(x, lo, hi))
    bounds = data.draw(arrays(dtype, shape[-1:] if shape else ()))
    assert_like_numpy(fnp.clip(x, None, bounds), np.clip(x, None, bounds))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_to_num_options(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1.5], dtype)
    assert_like_numpy(fnp.nan_to_num(x), np.nan_to_num(x))
    assert_like_numpy(fnp.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0),
                      np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0))


def test_nan_propagation_in_max_min_and_fmax_fmin():
    x = np.array([np.nan, 1.0, np.nan, -np.inf], F32)
    y = np.array([2.0, np.nan, np.nan, 0.0], F32)
    for name in ("maximum", "minimum", "fmax", "fmin"):
        assert_like_numpy(getattr(fnp, name)(x, y), getattr(np, name)(x, y))


def test_right_shift_is_arithmetic_on_signed_integers():
    x = np.array([-16, -1, 7, np.iinfo(np.int32).min], np.int32)
    assert_like_numpy(fnp.right_shift(x, 2), np.right_shift(x, 2))
    u = np.array([255, 16], np.uint8)
    assert_like_numpy(fnp.right_shift(u, 3), np.right_shift(u, 3))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_exp2_log2_log10_accuracy_over_a_wide_range(dtype):
    x = np.linspace(-120, 120, 2001).astype(dtype)
    assert_like_numpy(fnp.exp2(x), np.exp2(x))
    p = np.exp2(x)
    for name in ("log2", "log10"):
        assert_like_numpy(getattr(fnp, name)(p), getattr(np, name)(p), 2)


def test_round_with_decimals():
    x = np.array([1.2345, -2.5, 0.5, 1234.5678], F64)
    for d in (0, 1, 2, -1, -2):
        assert_like_numpy(fnp.round(x, d), np.round(x, d))
        assert_like_numpy(fnp.around(x.astype(F32), d), np.round(x.astype(F32), d))
    xi = np.array([15, 25, -35], np.int64)
    assert_like_numpy(fnp.round(xi, 0), np.round(xi, 0))
    assert_like_numpy(fnp.round(xi, -1), np.round(xi, -1))


def test_logical_ops_on_numbers():
    x = np.array([0.0, 2.0, -1.0, np.nan])
    y = np.array([0, 0, 3, 1])
    for name in ("logical_and", "logical_or", "logical_xor"):
        assert_like_numpy(getattr(fnp, name)(x, y), getattr(np, name)(x, y))
    assert_like_numpy(fnp.logical_not(x), np.logical_not(x))


def test_size_zero_and_zero_d():
    e = np.zeros((0, 3), F32)
    assert_like_numpy(fnp.add(e, np.ones(3, F32)), np.add(e, np.ones(3, F32)))
    assert_like_numpy(fnp.sin(np.float64(0.5)), np.asarray(np.sin(np.float64(0.5))))
    out = fnp.multiply(np.array(2.0, F32), 3.0)
    assert type(out) is np.ndarray and out.shape == () and out.dtype == F32


# ---------------------------------------------------------------------------
# 5. error messages


def test_broadcast_error_names_shapes_and_primitive():
    with pytest.raises(ValueError) as info:
        fnp.add(fnp.ones(2), fnp.ones(3))
    msg = str(info.value)
    assert "(2,)" in msg and "(3,)" in msg and "add" in msg


def test_broadcast_error_under_a_transform():
    with pytest.raises(ValueError) as info:
        fn.grad(lambda a: fnp.sum(a * np.ones((4, 2))))(np.ones(3))
    msg = str(info.value)
    assert "(3,)" in msg and "(4, 2)" in msg and "mul" in msg
    with pytest.raises(ValueError, match=r"sub.*\(2, 3\).*\(4,\)"):
        fn.make_graph(lambda a, b: a - b)(np.ones((2, 3)), np.ones(4))


def test_float_only_primitive_rejects_integers_clearly():
    from funcnet.ops import elementwise as ew

    with pytest.raises(TypeError, match="floating"):
        fn.make_graph(lambda a: ew.sin(a))(np.arange(3))
