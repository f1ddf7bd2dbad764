"""Array creation in funcnet.numpy against NumPy.

Where the user gives the dtype (or an array that has one) results must equal
NumPy's; where funcnet chooses (Python floats, ``zeros(3)``, ``linspace(0, 1)``)
it uses ``fn.config.default_float`` (float32), and the values still equal
NumPy's cast to that dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optable import (
    ALL,
    F32,
    F64,
    FEW,
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


@pytest.fixture
def default_float64():
    """Switch ``config.default_float`` to float64 for one test."""
    old = fn.config.default_float
    fn.config.default_float = "float64"
    try:
        yield
    finally:
        fn.config.default_float = old


# ---------------------------------------------------------------------------
# zeros / ones / empty / full and the *_like family


_SHAPES = [3, (), (0,), (2, 3), (1, 0, 2), [2, 2]]


@pytest.mark.parametrize("shape", _SHAPES, ids=str)
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_filled_default_to_float32(name, shape):
    ref = np.zeros if name == "empty" else getattr(np, name)  # empty is zero-filled
    assert_like_numpy(getattr(fnp, name)(shape), ref(shape, F32))
    for dt in ALL + (np.int16, "float64", float, int, bool):
        assert_like_numpy(getattr(fnp, name)(shape, dt), ref(shape, dt))


def test_filled_follow_default_float(default_float64):
    assert fnp.zeros(2).dtype == F64 and fnp.ones((1,)).dtype == F64
    assert fnp.array([1.0]).dtype == F64 and fnp.full(2, 0.5).dtype == F64
    assert fnp.linspace(0, 1, 3).dtype == F64 and fnp.eye(2).dtype == F64
    assert fnp.add(1.0, 2.0).dtype == F64 and fnp.sin(1.0).dtype == F64


@pytest.mark.parametrize("fill, expected_dtype", [(7, np.int64), (2.5, F32), (True, np.bool_),
                                                  (np.float64(1.5), F64),
                                                  (np.int8(3), np.int8),
                                                  (np.array(2.0, F64), F64)])
def test_full_dtype_of_fill_value(fill, expected_dtype):
    out = fnp.full((2, 3), fill)
    assert_like_numpy(out, np.full((2, 3), fill, expected_dtype))
    assert_like_numpy(fnp.full((2,), fill, np.int32), np.full((2,), fill, np.int32))


def test_full_with_array_fill_broadcasts():
    v = np.array([1.0, 2.0, 3.0], F64)
    assert_like_numpy(fnp.full((2, 3), v), np.full((2, 3), v))
    assert_like_numpy(fnp.full((2, 3), [1, 2, 3]), np.full((2, 3), [1, 2, 3]))
    grads_ok(lambda a: fnp.full((2, 3), a), (v,))


@given(data=st.data())
@VALUES
def test_like_functions_match_numpy(data):
    dtype = data.draw(st.sampled_from(ALL))
    x = data.draw(arrays(dtype, data.draw(shapes())))
    for name in ("zeros_like", "ones_like", "empty_like"):
        ref = np.zeros_like if name == "empty_like" else getattr(np, name)
        assert_like_numpy(getattr(fnp, name)(x), ref(x))
        assert_like_numpy(getattr(fnp, name)(x, dtype=np.int8), ref(x, dtype=np.int8))
        assert_like_numpy(getattr(fnp, name)(x, shape=(2, 1)), ref(x, shape=(2, 1)))
    assert_like_numpy(fnp.full_like(x, 3), np.full_like(x, 3))
    assert_like_numpy(fnp.full_like(x, 1, dtype=F64), np.full_like(x, 1, dtype=F64))


def test_like_functions_on_tracers():
    def f(a):
        z, o, c = fnp.zeros_like(a), fnp.ones_like(a), fnp.full_like(a, 2.5)
        return fnp.sum(a * (z + o + c))

    x = np.array([1.0, 2.0], F32)
    np.testing.assert_allclose(fn.grad(f)(x), [3.5, 3.5])
    assert fn.grad(f)(x).dtype == F32
    assert_traced_matches_eager(lambda a: (fnp.zeros_like(a), fnp.full_like(a, 7, np.int32)), x)


# ---------------------------------------------------------------------------
# ranges


@pytest.mark.parametrize("args, kwargs", [((5,), {}), ((2, 9, 3), {}), ((5, 0, -2), {}),
                                          ((0,), {}), ((3,), {"dtype": np.int8}),
                                          ((3,), {"dtype": float}), ((-2, 2), {"dtype": F32})])
def test_arange_integers_match_numpy(args, kwargs):
    assert_like_numpy(fnp.arange(*args, **kwargs), np.arange(*args, **kwargs))


@pytest.mark.parametrize("args", [(0.5,), (0.0, 1.0, 0.25), (1, 2.5), (3, 0, -0.5)])
def test_arange_floats_use_default_float(args):
    assert_like_numpy(fnp.arange(*args), np.arange(*args).astype(F32))
    assert_like_numpy(fnp.arange(*args, dtype=F64), np.arange(*args, dtype=F64))


def test_arange_needs_concrete_bounds():
    with pytest.raises(TypeError, match="concrete"):
        fn.make_graph(lambda n: fnp.arange(n))(np.int64(3))


_LINSPACE = [
    ((0.0, 1.0), {}), ((0, 1, 5), {}), ((2.0, -3.0, 7), {"endpoint": False}),
    ((0.0, 1.0, 1), {}), ((0.0, 1.0, 0), {}), ((1, 10, 4), {"dtype": int}),
    ((-3, 10, 6), {"dtype": np.int32, "endpoint": False}), ((0.0, 1.0, 4), {"dtype": F64}),
    ((np.float64(0.0), 1.0, 5), {}), ((np.array([0.0, 1.0], F64), 2.0, 3), {}),
    ((np.array([0.0, 1.0], F64), 2.0, 3), {"axis": 1}),
    ((np.array([0.0, 1.0], F32), np.array([[2.0], [4.0]], F32), 4), {"axis": -1}),
    ((0.0, np.array([1.0, 2.0, 3.0], F32), 2), {}),
]


@pytest.mark.parametrize("args, kwargs", _LINSPACE, ids=[str(i) for i in range(len(_LINSPACE))])
def test_linspace_matches_numpy(args, kwargs):
    expected = np.linspace(*args, **kwargs)
    user_dtype = kwargs.get("dtype") is not None or any(hasattr(a, "dtype") for a in args[:2])
    if not user_dtype:  # Python numbers only: funcnet picks float32
        expected = expected.astype(F32)
    assert_like_numpy(fnp.linspace(*args, **kwargs), expected)


def test_linspace_retstep():
    for endpoint in (True, False):
        out, step = fnp.linspace(1.0, 2.0, 5, endpoint=endpoint, retstep=True)
        e_out, e_step = np.linspace(1.0, 2.0, 5, endpoint=endpoint, retstep=True)
        assert_like_numpy(out, e_out.astype(F32))
        assert_like_numpy(step, np.asarray(e_step, F32))


def test_linspace_gradient_and_tracing():
    a, b = np.array([0.5, -1.0]), np.array(2.0)
    grads_ok(lambda s, e: fnp.linspace(s, e, 4), (a, b))
    grads_ok(lambda s, e: fnp.linspace(s, e, 3, endpoint=False, axis=-1), (a, b))
    assert_traced_matches_eager(lambda s, e: fnp.linspace(s, e, 5), a, b)


def test_linspace_negative_num_is_an_error():
    with pytest.raises(ValueError, match="non-negative"):
        fnp.linspace(0.0, 1.0, -1)


# ---------------------------------------------------------------------------
# eye / identity / tri / tril / triu / meshgrid


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2, 1), (3, 3, -2), (3, None, 5), (0,)])
def test_eye_tri_identity(args):
    assert_like_numpy(fnp.eye(*args), np.eye(*args, dtype=F32))
    assert_like_numpy(fnp.eye(*args, dtype=np.int32), np.eye(*args, dtype=np.int32))
    assert_like_numpy(fnp.tri(*args), np.tri(*args, dtype=F32))
    assert_like_numpy(fnp.tri(*args, dtype=bool), np.tri(*args, dtype=bool))
    assert_like_numpy(fnp.identity(args[0]), np.identity(args[0], F32))
    assert_like_numpy(fnp.identity(args[0], F64), np.identity(args[0], F64))


@given(data=st.data())
@VALUES
def test_tril_triu_match_numpy(data):
    dtype = data.draw(st.sampled_from(ALL))
    x = data.draw(arrays(dtype, data.draw(shapes(min_dims=2, max_dims=4))))
    k = data.draw(st.integers(-3, 3))
    assert_like_numpy(fnp.tril(x, k), np.tril(x, k))
    assert_like_numpy(fnp.triu(x, k), np.triu(x, k))
    assert_like_numpy(fnp.tril(x), np.tril(x))


@given(data=st.data())
@FEW
def test_tril_triu_gradients_and_tracing(data):
    x = data.draw(arrays(F64, data.draw(shapes(min_dims=2, max_dims=3, min_side=1,
                                               max_side=3))))
    k = data.draw(st.integers(-2, 2))
    grads_ok(lambda a: fnp.tril(a, k) * 2.0 + fnp.triu(a, -k), (x,))
    assert_traced_matches_eager(lambda a: (fnp.tril(a, k), fnp.triu(a, k)), x.astype(F32))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sizes", [(3,), (3, 2), (2, 0, 4), (1, 3, 2)], ids=str)
def test_meshgrid_matches_numpy(indexing, sizes):
    xs = [np.arange(n, dtype=F32) * 0.5 + i for i, n in enumerate(sizes)]
    got = fnp.meshgrid(*xs, indexing=indexing)
    expected = np.meshgrid(*xs, indexing=indexing)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert_like_numpy(g, e)
    if 0 not in sizes:
        xs64 = [x.astype(F64) for x in xs]
        grads_ok(lambda *a: fnp.meshgrid(*a, indexing=indexing), xs64)
        assert_traced_matches_eager(lambda *a: fnp.meshgrid(*a, indexing=indexing), *xs)


def test_meshgrid_flattens_inputs_traced_or_not():
    a, b = np.arange(4.0).reshape(2, 2), np.arange(3.0)
    for g, e in zip(fnp.meshgrid(a, b), np.meshgrid(a, b), strict=True):
        assert_like_numpy(g, e)
    assert_traced_matches_eager(lambda x, y: fnp.meshgrid(x, y, indexing="ij"), a, b)


def test_meshgrid_bad_indexing():
    with pytest.raises(ValueError, match="indexing"):
        fnp.meshgrid(np.arange(2), indexing="yx")


# ---------------------------------------------------------------------------
# array / asarray


@pytest.mark.parametrize("obj, expected", [
    ([1.0, 2.0], np.array([1.0, 2.0], F32)),
    ([[1, 2], [3, 4]], np.array([[1, 2], [3, 4]])),
    ([True, False], np.array([True, False])),
    ([1, 2.5], np.array([1, 2.5], F32)),
    (3.0, np.array(3.0, F32)),
    (3, np.array(3)),
    (False, np.array(False)),
    ([1 + 2j], np.array([1 + 2j], np.complex64)),
    ([], np.array([], F32)),
    (np.array([1.0], F64), np.array([1.0], F64)),
    (np.array([1, 2], np.int8), np.array([1, 2], np.int8)),
    (np.float64(2.0), np.array(2.0, F64)),
    (np.float16(2.0), np.array(2.0, np.float16)),
], ids=lambda v: repr(v)[:30])
def test_array_and_asarray_dtypes(obj, expected):
    assert_like_numpy(fnp.array(obj), expected)
    assert_like_numpy(fnp.asarray(obj), expected)


def test_array_copies_asarray_does_not():
    x = np.array([1.0, 2.0])
    assert fnp.asarray(x) is x
    y = fnp.array(x)
    assert y is not x
    y[0] = 5.0
    assert x[0] == 1.0
    assert fnp.array(x, copy=False) is x


def test_array_dtype_and_ndmin():
    assert_like_numpy(fnp.array([1, 2], dtype=F64), np.array([1, 2], dtype=F64))
    assert_like_numpy(fnp.asarray([1.5, 2.5], dtype=np.int32), np.asarray([1.5, 2.5],
                                                                          dtype=np.int32))
    assert_like_numpy(fnp.array([1, 2], ndmin=3), np.array([1, 2], ndmin=3))
    assert_like_numpy(fnp.array(np.ones((2, 2), F64), ndmin=1), np.ones((2, 2), F64))


def test_array_of_tracers_stacks_them():
    def f(a):
        return fnp.sum(fnp.array([a[0] * 2.0, a[1], 3.0]) ** 2)

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(fn.grad(f)(x), [8.0, 4.0])
    out, avals = traced(lambda a: fnp.asarray([a, a]), np.ones(3, F32))
    assert avals[0].shape == (2, 3) and avals[0].dtype == F32
    out, avals = traced(lambda a: fnp.asarray(a, dtype=F64), np.ones(3, F32))
    assert avals[0].dtype == F64


def test_creation_inside_transforms():
    def f(a):
        return fnp.sum(a * fnp.ones(3) + fnp.zeros((3,)) + fnp.full(3, 2.0) * fnp.eye(3)[0]
                       + fnp.arange(3.0) + fnp.linspace(0.0, 1.0, 3))

    x = np.array([1.0, 2.0, 3.0], F32)
    g = fn.grad(f)(x)
    assert g.dtype == F32
    np.testing.assert_allclose(g, np.ones(3))
    assert_traced_matches_eager(f, x)


def test_negative_dimensions_are_an_error():
    with pytest.raises(ValueError, match="negative"):
        fnp.zeros((2, -1))
