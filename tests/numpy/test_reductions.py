"""Reductions of funcnet.numpy against NumPy: axis (None, int, negative, tuple),
keepdims, dtypes, size-0 axes, NaN, gradients and tracing.  One row per op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optable import (
    ALL,
    ANY,
    BOOL,
    F32,
    F64,
    FEW,
    FLOATS,
    GRADS,
    INTS,
    NUMERIC,
    SMALL,
    VALUES,
    Dom,
    arrays,
    assert_like_numpy,
    assert_traced_matches_eager,
    distinct,
    grads_ok,
    numpy_ref,
    quiet,
    shapes,
    traced,
)

import funcnet as fn
import funcnet.numpy as fnp


@dataclass(frozen=True)
class Red:
    """One reduction: its axis forms, its domain, and how it treats empty axes."""

    name: str
    ref: Callable
    tuple_axes: bool = True       # ``axis`` may be a tuple
    keepdims: bool = True
    dtypes: tuple = ALL
    dom: Dom = ANY
    grad: str | None = "any"      # "any": any values; "distinct": no ties; None: no gradient
    empty: str = "value"          # "value": NumPy returns one; "raises": ValueError
    kwargs: tuple = ()            # extra keyword variants, e.g. (("ddof", 1),)

    @property
    def fn(self):
        return getattr(fnp, self.name)

    def __repr__(self) -> str:
        return self.name

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.name)


REDUCTIONS = [
    Red("sum", np.sum),
    Red("prod", np.prod, dom=SMALL),
    Red("mean", np.mean),
    Red("max", np.max, grad="distinct", empty="raises"),
    Red("min", np.min, grad="distinct", empty="raises"),
    Red("amax", np.amax, grad="distinct", empty="raises"),
    Red("amin", np.amin, grad="distinct", empty="raises"),
    Red("var", np.var, dtypes=NUMERIC, grad="distinct"),
    Red("var", np.var, dtypes=FLOATS, grad="distinct", kwargs=(("ddof", 1),)),
    Red("std", np.std, dtypes=NUMERIC, grad="distinct"),
    Red("std", np.std, dtypes=FLOATS, grad="distinct", kwargs=(("ddof", 1),)),
    Red("median", np.median, tuple_axes=False, dtypes=NUMERIC, grad="distinct"),
    Red("argmax", np.argmax, tuple_axes=False, grad=None, empty="raises"),
    Red("argmin", np.argmin, tuple_axes=False, grad=None, empty="raises"),
    Red("cumsum", np.cumsum, tuple_axes=False, keepdims=False),
    Red("cumprod", np.cumprod, tuple_axes=False, keepdims=False, dom=SMALL),
    Red("all", np.all, grad=None),
    Red("any", np.any, grad=None),
]


def _id(r: Red) -> str:
    return r.name + "".join(f"-{k}{v}" for k, v in r.kwargs)


IDS = [_id(r) for r in REDUCTIONS]
DIFFERENTIABLE = [r for r in REDUCTIONS if r.grad is not None]


@st.composite
def axis_args(draw, red: Red, ndim: int):
    """``axis`` (None, an int - maybe negative - or a tuple) and ``keepdims``."""
    forms = [st.none()]
    if ndim:
        forms.append(st.integers(-ndim, ndim - 1))
        if red.tuple_axes:
            forms.append(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(
                lambda axes: tuple(a - ndim if a % 2 else a for a in axes)))
    kw = {"axis": draw(st.one_of(*forms))}
    if red.keepdims:
        kw["keepdims"] = draw(st.booleans())
    kw.update(dict(red.kwargs))
    return kw


def _empty_reduced(shape, kw) -> bool:
    axis = kw.get("axis")
    if axis is None:
        return int(np.prod(shape)) == 0
    axes = axis if isinstance(axis, tuple) else (axis,)
    return any(shape[a] == 0 for a in axes)


# ---------------------------------------------------------------------------
# 1. values and dtypes


@pytest.mark.parametrize("red", REDUCTIONS, ids=IDS)
@given(data=st.data())
@VALUES
def test_matches_numpy(red, data):
    dtype = data.draw(st.sampled_from(red.dtypes), label="dtype")
    shape = data.draw(shapes(max_dims=4), label="shape")
    x = data.draw(arrays(dtype, shape, red.dom), label="x")
    kw = data.draw(axis_args(red, x.ndim), label="kwargs")
    if red.empty == "raises" and _empty_reduced(shape, kw):
        with pytest.raises(ValueError):
            red.fn(x, **kw)
        return
    if red.name == "median" and x.size == 0:
        return  # NumPy warns and returns NaN; funcnet's median of nothing is an error
    scale = 50.0 if red.name in ("var", "std", "prod", "cumprod") else 4.0
    assert_like_numpy(quiet(red.fn, x, **kw), numpy_ref(red.ref, x, **kw), scale)


@pytest.mark.parametrize("red", REDUCTIONS, ids=IDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_and_inf_propagate_like_numpy(red, dtype):
    x = np.array([[1.0, np.nan, -2.0, 0.5], [np.inf, 3.0, -np.inf, 0.0],
                  [2.0, -1.0, 4.0, 0.25]], dtype)
    for kw in ({"axis": None}, {"axis": 0}, {"axis": -1}):
        kw = {**kw, **dict(red.kwargs)}
        assert_like_numpy(quiet(red.fn, x, **kw), numpy_ref(red.ref, x, **kw))


@pytest.mark.parametrize("name, dtype", [(n, d) for n in ("sum", "prod", "cumsum", "cumprod")
                                         for d in INTS + BOOL + (np.dtype(np.float16),)])
def test_accumulator_dtypes_match_numpy(name, dtype):
    """Small integers and bools sum as (u)int64; floats keep their dtype; ``dtype=`` wins."""
    x = np.ones((2, 3), dtype)
    assert_like_numpy(getattr(fnp, name)(x), getattr(np, name)(x))
    assert_like_numpy(getattr(fnp, name)(x, axis=1, dtype=np.float32),
                      getattr(np, name)(x, axis=1, dtype=np.float32))


@pytest.mark.parametrize("dtype", INTS + BOOL, ids=str)
def test_mean_var_std_of_integers_are_float64(dtype):
    x = np.arange(6).reshape(2, 3).astype(dtype)
    for name in ("mean", "var", "std", "median"):
        assert_like_numpy(getattr(fnp, name)(x, axis=0), getattr(np, name)(x, axis=0))
    assert_like_numpy(fnp.mean(x, dtype=np.float32), np.mean(x, dtype=np.float32))


def test_float16_mean_accumulates_in_float32():
    x = np.full(4096, 1.1, np.float16)
    assert_like_numpy(fnp.mean(x), np.mean(x))
    assert_like_numpy(fnp.mean(x.reshape(64, 64), axis=1), np.mean(x.reshape(64, 64), axis=1))
    g = fn.grad(lambda a: fnp.mean(a))(x[:4])
    assert g.dtype == np.float16


def test_median_tuple_axes_and_keepdims():
    x = np.arange(24.0).reshape(2, 3, 4) % 7
    for axis in ((0, 2), (-1, 0), (1,), (0, 1, 2)):
        for keepdims in (False, True):
            assert_like_numpy(fnp.median(x, axis=axis, keepdims=keepdims),
                              np.median(x, axis=axis, keepdims=keepdims))


def test_reductions_of_python_lists_and_scalars():
    assert_like_numpy(fnp.sum([1.0, 2.0]), np.sum(np.array([1.0, 2.0], F32)))
    assert_like_numpy(fnp.mean(3.0), np.mean(np.float32(3.0)))
    assert_like_numpy(fnp.max([[1, 5], [3, 2]], axis=0), np.max([[1, 5], [3, 2]], axis=0))


# ---------------------------------------------------------------------------
# 2. gradients


@pytest.mark.parametrize("red", DIFFERENTIABLE, ids=[_id(r) for r in DIFFERENTIABLE])
@given(data=st.data())
@GRADS
def test_gradients(red, data):
    min_side = 2 if red.name in ("std", "var") else 1  # std is not smooth at zero spread
    shape = data.draw(shapes(min_dims=0 if min_side == 1 else 1, max_dims=3, min_side=min_side,
                             max_side=3), label="shape")
    if red.grad == "distinct":
        x = data.draw(distinct(shape), label="x")
    else:
        x = data.draw(arrays(F64, shape, SMALL), label="x")
    kw = data.draw(axis_args(red, x.ndim), label="kwargs")
    if red.name in ("std", "var") and kw["axis"] is not None:
        axes = kw["axis"] if isinstance(kw["axis"], tuple) else (kw["axis"],)
        if not axes:
            return  # a reduction over no axes has zero spread
    grads_ok(lambda a: red.fn(a, **kw), (x,))


def test_max_min_gradients_share_ties_equally():
    x = np.array([1.0, 3.0, 3.0, -2.0])
    np.testing.assert_allclose(fn.grad(fnp.max)(x), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(fn.grad(lambda a: fnp.min(a, axis=0))(x), [0, 0, 0, 1])
    np.testing.assert_allclose(fn.grad(lambda a: a.max())(np.full(4, 2.0)), np.full(4, 0.25))


def test_prod_gradient_with_zeros_is_exact():
    for x in (np.array([0.0, 2.0, 3.0]), np.array([0.0, 0.0, 3.0]), np.array([[0.0, 1.5],
                                                                               [2.0, 0.0]])):
        grads_ok(lambda a: fnp.prod(a, axis=-1), (x,))
        grads_ok(lambda a: fnp.cumprod(a, axis=-1), (x,))
    np.testing.assert_allclose(fn.grad(fnp.prod)(np.array([0.0, 2.0, 3.0])), [6.0, 0.0, 0.0])


def test_gradient_dtypes_follow_inputs():
    for dt in FLOATS:
        x = np.arange(1.0, 7.0, dtype=dt).reshape(2, 3)
        for name in ("sum", "mean", "prod", "max", "var", "std", "median"):
            g = fn.grad(lambda a, name=name: fnp.sum(getattr(fnp, name)(a, axis=0)))(x)
            assert g.dtype == dt, (name, g.dtype)


# ---------------------------------------------------------------------------
# 3. traced == eager, and tracer methods


@pytest.mark.parametrize("red", REDUCTIONS, ids=IDS)
@given(data=st.data())
@FEW
def test_traced_matches_eager(red, data):
    dtype = data.draw(st.sampled_from(red.dtypes), label="dtype")
    x = data.draw(arrays(dtype, data.draw(shapes(max_dims=3, min_side=1)), red.dom), label="x")
    kw = data.draw(axis_args(red, x.ndim), label="kwargs")
    assert_traced_matches_eager(lambda a: red.fn(a, **kw), x)


_METHODS = [
    ("sum", {}), ("sum", {"axis": 0}), ("sum", {"axis": -1, "keepdims": True}),
    ("mean", {"axis": (0, 1)}), ("prod", {"axis": 1}), ("max", {}), ("max", {"axis": 0}),
    ("min", {"axis": -1}), ("var", {"axis": 0}), ("std", {"ddof": 1}), ("argmax", {}),
    ("argmax", {"axis": 1}), ("argmin", {"axis": 0}), ("cumsum", {"axis": 0}),
    ("cumprod", {}), ("all", {}), ("any", {"axis": 1}),
]


@pytest.mark.parametrize("method, kw", _METHODS, ids=[f"{m}{k}" for m, k in _METHODS])
@pytest.mark.parametrize("dtype", [F32, np.dtype(np.int32)], ids=str)
def test_tracer_methods_match_numpy_methods(method, kw, dtype):
    x = (np.arange(12) % 5 - 1).reshape(3, 4).astype(dtype)
    expected = numpy_ref(lambda a: getattr(a, method)(**kw), x)
    out, avals = traced(lambda a: getattr(a, method)(**kw), x)
    assert_like_numpy(out, expected, check_type=False)
    assert avals[0].dtype == np.asarray(expected).dtype


def test_methods_under_grad():
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    g = fn.grad(lambda a: a.sum() + a.mean(axis=0).prod() + a.max() - a.var() + a.std(axis=1)[0]
                )(x)
    expected_num = np.zeros_like(x)
    f = (lambda a: a.sum() + a.mean(axis=0).prod() + a.max() - a.var() + a.std(axis=1)[0])
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = 1e-6
        expected_num[i] = (f(x + e) - f(x - e)) / 2e-6
    np.testing.assert_allclose(g, expected_num, rtol=1e-6)


# ---------------------------------------------------------------------------
# 5. errors


@pytest.mark.parametrize("name", ["sum", "mean", "max", "argmax", "cumsum", "var", "all",
                                  "median"])
def test_axis_out_of_range_is_named(name):
    with pytest.raises((ValueError, IndexError)) as info:
        getattr(fnp, name)(np.ones((2, 3)), axis=2)
    msg = str(info.value)
    assert "axis 2" in msg and "dimension 2" in msg


def test_repeated_axis_is_an_error():
    with pytest.raises(ValueError, match="repeated axis"):
        fnp.sum(np.ones((2, 3)), axis=(0, -2))


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_empty_reduction_without_identity_raises(name):
    with pytest.raises(ValueError, match="empty"):
        getattr(fnp, name)(np.ones((0, 3)), axis=0)
    assert_like_numpy(getattr(fnp, name)(np.ones((0, 3)), axis=1),
                      getattr(np, name)(np.ones((0, 3)), axis=1))


def test_reductions_over_empty_axes_give_numpy_identities():
    e = np.ones((2, 0), F32)
    for name in ("sum", "prod", "all", "any", "cumsum"):
        assert_like_numpy(getattr(fnp, name)(e, axis=1), getattr(np, name)(e, axis=1))
    assert_like_numpy(quiet(fnp.mean, e, axis=1), numpy_ref(np.mean, e, axis=1))
    assert_like_numpy(quiet(fnp.var, e, axis=1, ddof=1), numpy_ref(np.var, e, axis=1, ddof=1))


def test_ddof_larger_than_count_matches_numpy():
    x = np.array([[1.0, 2.0]], F64)
    for ddof in (1, 2, 3):
        assert_like_numpy(quiet(fnp.var, x, axis=0, ddof=ddof),
                          numpy_ref(np.var, x, axis=0, ddof=ddof))
