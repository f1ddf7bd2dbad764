"""funcnet.nn activations: values against NumPy formulas, derivatives at the kinks (as in
JAX), stability at +-1e4, finite-difference gradient checks, jit and vmap."""

import math

import numpy as np
import pytest

import funcnet as fn
from funcnet import nn
from funcnet.testing import check_grads

_erf = np.vectorize(math.erf)


def _np_sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x))
                    / (1 + np.exp(-np.abs(x))))


def _np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# name -> (function, float64 NumPy reference, smooth: check second derivatives)
ELEMENTWISE = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0), False),
    "relu6": (nn.relu6, lambda x: np.clip(x, 0, 6), False),
    "leaky_relu": (nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x), False),
    "elu": (nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), False),
    "gelu": (nn.gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                        * (x + 0.044715 * x ** 3))), True),
    "gelu_exact": (lambda x: nn.gelu(x, approximate=False),
                   lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))), True),
    "silu": (nn.silu, lambda x: x * _np_sigmoid(x), True),
    "sigmoid": (nn.sigmoid, _np_sigmoid, True),
    "log_sigmoid": (nn.log_sigmoid, lambda x: -_np_softplus(-x), True),
    "softplus": (nn.softplus, _np_softplus, True),
    "tanh": (nn.tanh, np.tanh, True),
}

X = np.array([-30.0, -6.5, -2.0, -0.3, 0.4, 1.7, 5.9, 6.2, 25.0])


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_values_match_numpy(name):
    f, ref, _ = ELEMENTWISE[name]
    np.testing.assert_allclose(f(X), ref(X), rtol=1e-12, atol=1e-300)
    y32 = f(X.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ref(X), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_gradients_match_finite_differences(name):
    f, _, smooth = ELEMENTWISE[name]
    x = np.array([-2.3, -0.7, 0.45, 1.3, 3.1])
    check_grads(f, (x,), order=2 if smooth else 1)


KINKS = [  # (function, x, derivative there, as in JAX)
    (nn.relu, 0.0, 0.0), (nn.relu6, 0.0, 0.0), (nn.relu6, 6.0, 0.0),
    (nn.leaky_relu, 0.0, 1.0), (nn.elu, 0.0, 1.0), (nn.sigmoid, 0.0, 0.25),
    (nn.softplus, 0.0, 0.5), (nn.log_sigmoid, 0.0, 0.5), (nn.silu, 0.0, 0.5),
]


@pytest.mark.parametrize("f,x,expected", KINKS, ids=lambda v: getattr(v, "__name__", None))
def test_derivatives_at_kinks(f, x, expected):
    for g in (fn.grad(f), fn.jit(fn.grad(f)), fn.grad(fn.jit(f))):
        assert float(g(np.float32(x))) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "softplus", "silu", "elu", "gelu",
                                  "relu", "tanh"])
def test_stable_at_large_inputs(name):
    f, ref, _ = ELEMENTWISE[name]
    x = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    y = f(x)
    assert np.all(np.isfinite(y)), y
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=1e-6, atol=1e-30)
    g = fn.vmap(fn.grad(f))(x)
    assert np.all(np.isfinite(g)), g


def test_sigmoid_tails_keep_relative_precision():
    x = np.array([-80.0, -30.0], np.float32)
    np.testing.assert_allclose(nn.sigmoid(x), np.exp(x.astype(np.float64)), rtol=1e-6)


def test_integer_inputs():
    x = np.array([-2, 0, 3])
    assert nn.relu(x).dtype == x.dtype
    np.testing.assert_array_equal(nn.relu(x), [0, 0, 3])
    assert nn.sigmoid(x).dtype == np.float32


# ---------------------------------------------------------------------------
# softmax family


def _np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def test_softmax_and_log_softmax_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5)) * 4
    for axis in (-1, 0):
        np.testing.assert_allclose(nn.log_softmax(x, axis=axis), _np_log_softmax(x, axis),
                                   rtol=1e-12)
        np.testing.assert_allclose(nn.softmax(x, axis=axis), np.exp(_np_log_softmax(x, axis)),
                                   rtol=1e-12)
    np.testing.assert_allclose(nn.softmax(x, axis=None).sum(), 1.0)


def test_softmax_family_stable_at_1e4():
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4]], np.float32)
    np.testing.assert_allclose(nn.softmax(x), [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(nn.log_softmax(x)[0], [0, -2e4, -1e4])
    np.testing.assert_allclose(nn.logsumexp(x, axis=1), [1e4, 1e4 + np.log(2)], rtol=1e-7)
    for f in (lambda x: nn.log_softmax(x)[:, 1].sum(), lambda x: nn.softmax(x)[:, 0].sum(),
              lambda x: nn.logsumexp(x)):
        g = fn.grad(f)(x)
        assert np.all(np.isfinite(g)), g


@pytest.mark.filterwarnings("ignore:divide by zero")  # log(0) = -inf, as in NumPy
def test_logsumexp_options():
    x = np.array([[0.0, 1.0, 2.0], [3.0, -np.inf, 1.0]])
    ref = np.log(np.exp(x).sum(axis=1))
    np.testing.assert_allclose(nn.logsumexp(x, axis=1), ref)
    assert nn.logsumexp(x, axis=1, keepdims=True).shape == (2, 1)
    np.testing.assert_allclose(nn.logsumexp(x), np.log(np.exp(x).sum()))
    b = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(nn.logsumexp(x, axis=1, b=b), np.log((b * np.exp(x)).sum(1)))
    assert float(nn.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf
    check_grads(lambda x: nn.logsumexp(x, axis=0), (np.array([[0.3, -1.0], [2.0, 0.5]]),))


def test_softmax_gradients_and_transforms():
    x = np.array([[0.3, -1.2, 2.0], [0.1, 0.1, -0.5]])
    check_grads(nn.softmax, (x,))
    check_grads(nn.log_softmax, (x,))
    np.testing.assert_allclose(fn.jit(nn.softmax)(x), nn.softmax(x))
    np.testing.assert_allclose(fn.vmap(nn.log_softmax)(x), nn.log_softmax(x))


# ---------------------------------------------------------------------------
# one_hot and standardize


def test_one_hot():
    y = nn.one_hot(np.array([[0, 3], [1, -1]]), 3)
    assert y.shape == (2, 2, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y[0], [[1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(y[1], [[0, 1, 0], [0, 0, 0]])
    assert nn.one_hot(np.array([0, 1]), 2, dtype=np.int32).dtype == np.int32
    np.testing.assert_array_equal(nn.one_hot(np.array([0, 1]), 3, axis=0),
                                  np.eye(3)[:, :2])
    np.testing.assert_array_equal(fn.jit(lambda i: nn.one_hot(i, 4))(np.array([2])),
                                  [[0, 0, 1, 0]])


def test_standardize():
    x = np.random.default_rng(1).normal(size=(4, 6)) * 3 + 2
    y = nn.standardize(x, epsilon=0.0)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=-1), 1, rtol=1e-12)
    y0 = nn.standardize(x, axis=0, mean=0.0, variance=4.0, epsilon=0.0)
    np.testing.assert_allclose(y0, x / 2)
    check_grads(nn.standardize, (x[:2, :3],), order=1)
