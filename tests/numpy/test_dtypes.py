"""Dtypes of funcnet.numpy: names, ``finfo``/``iinfo``, ``result_type`` and NumPy 2
promotion (Python scalars are weak), in eager mode and under tracing, plus the
places where funcnet itself picks the dtype (``config.default_float``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from optable import F32, F64, assert_like_numpy, traced

import funcnet as fn
import funcnet.numpy as fnp

API_DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "uint32",
              "bool_"]
DTYPES = [np.dtype(getattr(np, n)) for n in API_DTYPES]


@pytest.fixture
def default_float64():
    old = fn.config.default_float
    fn.config.default_float = "float64"
    try:
        yield
    finally:
        fn.config.default_float = old


@pytest.mark.parametrize("name", API_DTYPES)
def test_dtype_names_are_numpys(name):
    assert np.dtype(getattr(fnp, name)) == np.dtype(getattr(np, name))
    assert fnp.dtype(name) == np.dtype(name)
    x = fnp.zeros(2, getattr(fnp, name))
    assert x.dtype == np.dtype(name)


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo(name):
    f, g = fnp.finfo(getattr(fnp, name)), np.finfo(name)
    assert (f.eps, f.max, f.min, f.tiny, f.bits) == (g.eps, g.max, g.min, g.tiny, g.bits)


@pytest.mark.parametrize("name", ["int8", "int32", "int64", "uint8", "uint32"])
def test_iinfo(name):
    i, j = fnp.iinfo(getattr(fnp, name)), np.iinfo(name)
    assert (i.min, i.max, i.bits) == (j.min, j.max, j.bits)


_PAIRS = list(itertools.product(DTYPES, DTYPES))


@pytest.mark.parametrize("a, b", _PAIRS, ids=[f"{a}-{b}" for a, b in _PAIRS])
def test_promotion_table_matches_numpy(a, b):
    """Every pair of API dtypes: result_type, eager ops and traced avals agree with NumPy."""
    x, y = np.ones(2, a), np.ones((3, 1), b)
    expected = np.result_type(a, b)
    assert fnp.result_type(a, b) == expected
    assert fnp.result_type(x, y) == expected
    for name in ("add", "multiply", "maximum", "where"):
        args = (x, y) if name != "where" else (np.array([True, False]), x, y)
        got = getattr(fnp, name)(*args)
        assert got.dtype == expected, name
        _, avals = traced(getattr(fnp, name), *args)
        assert avals[0].dtype == expected, name
    assert fnp.concatenate([x, y.ravel()]).dtype == np.concatenate([x, y.ravel()]).dtype
    assert fnp.stack([x, x.astype(b)]).dtype == np.stack([x, x.astype(b)]).dtype


@pytest.mark.parametrize("scalar", [True, 3, -2, 2.5, 1j], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_python_scalars_are_weak(dtype, scalar):
    x = np.ones(3, dtype)
    try:
        expected = np.add(x, scalar)
    except (OverflowError, TypeError):  # e.g. uint8 + -2: NumPy 2 refuses
        return
    assert fnp.result_type(x, scalar) == expected.dtype
    assert_like_numpy(fnp.add(x, scalar), expected)
    assert_like_numpy(fnp.add(scalar, x), np.add(scalar, x))
    _, avals = traced(lambda a: a + scalar, x)
    assert avals[0].dtype == expected.dtype
    _, avals = traced(lambda a: scalar * a, x)
    assert avals[0].dtype == np.multiply(scalar, x).dtype


def test_numpy_scalars_are_strong():
    x = np.ones(2, F32)
    assert fnp.add(x, np.float64(1.0)).dtype == np.add(x, np.float64(1.0)).dtype == F64
    assert fnp.multiply(np.int8(2), np.ones(2, np.int8)).dtype == np.int8
    assert fnp.result_type(x, np.float64(1.0)) == F64


@pytest.mark.parametrize("args, expected", [
    ((2.0,), F32), ((1, 2.0), F32), ((2.0, 1), F32), ((1, 2), np.dtype(np.int64)),
    ((True, 1), np.dtype(np.int64)), ((True, False), np.dtype(np.bool_)),
    (("float32", 2.0), F32), ((np.int32, 2.0), F64), ((np.float16, 1), np.dtype(np.float16)),
])
def test_result_type_with_python_scalars(args, expected):
    """Python numbers alone: funcnet picks (float -> default_float, int -> int64)."""
    assert fnp.result_type(*args) == expected


@pytest.mark.parametrize("f, expected", [
    (lambda: fnp.array([1.0]), F32), (lambda: fnp.asarray(1.0), F32),
    (lambda: fnp.array([[1, 2.0]]), F32), (lambda: fnp.zeros(3), F32),
    (lambda: fnp.ones((2,)), F32), (lambda: fnp.empty(1), F32), (lambda: fnp.full(2, 1.5), F32),
    (lambda: fnp.eye(2), F32), (lambda: fnp.identity(2), F32), (lambda: fnp.tri(2), F32),
    (lambda: fnp.linspace(0, 1, 3), F32), (lambda: fnp.arange(0.5, 2), F32),
    (lambda: fnp.add(1.0, 2.0), F32), (lambda: fnp.add(1, 2.0), F32),
    (lambda: fnp.multiply(2.0, True), F32), (lambda: fnp.sin(1.0), F32),
    (lambda: fnp.sqrt(4), np.dtype(np.float64)), (lambda: fnp.divide(1, 2), F32),
    (lambda: fnp.hypot(3, 4), F32), (lambda: fnp.arctan2(1.0, 2), F32),
    (lambda: fnp.mean([1.0, 2.0]), F32), (lambda: fnp.add(1, 2), np.dtype(np.int64)),
    (lambda: fn.grad(lambda x: x * x)(3.0), F32),
    (lambda: fn.grad(lambda x: x ** 2)(2.0), F32),
])
def test_funcnet_picks_default_float(f, expected):
    out = f()
    assert type(out) is np.ndarray
    assert out.dtype == expected


def test_default_float64_config(default_float64):
    assert fnp.array([1.0]).dtype == F64 and fnp.zeros(2).dtype == F64
    assert fnp.add(1.0, 2.0).dtype == F64 and fnp.divide(1, 2).dtype == F64
    assert fnp.result_type(2.0) == F64
    assert fn.grad(lambda x: x * x)(3.0).dtype == F64
    # a user's float32 array stays float32 whatever the default is
    assert fnp.add(np.ones(2, F32), 1.0).dtype == F32
    assert fnp.sin(np.ones(2, F32)).dtype == F32


def test_user_dtypes_are_never_changed():
    for dt in (np.float16, F32, F64):
        x = np.ones((2, 2), dt)
        for out in (fnp.sin(x), x * 2.0, fnp.mean(x), fnp.exp2(x), fnp.log10(x), fnp.var(x),
                    fnp.hypot(x, 1), fnp.logaddexp(x, 0.5), fnp.clip(x, 0, 1.5), fnp.median(x),
                    fnp.round(x, 2), fnp.nan_to_num(x), fnp.matmul(x, x), fnp.tril(x),
                    fnp.linspace(x[0], 2.0, 3), fnp.where(x > 0, x, 0.0), fnp.pad(x, 1),
                    fnp.at(x)[0].add(1.0), fnp.diag(x[0])):
            assert out.dtype == dt


def test_astype_on_tracers():
    x = np.array([1.7, -2.2], F32)
    out, avals = traced(lambda a: (a.astype(np.int32), a.astype("float64"), a.astype(bool)), x)
    assert [a.dtype for a in avals] == [np.int32, F64, np.bool_]
    np.testing.assert_array_equal(out[0], x.astype(np.int32))
    g = fn.grad(lambda a: fnp.sum(a.astype(F64) ** 2))(x)
    assert g.dtype == F32
    np.testing.assert_allclose(g, 2 * x)
