"""funcnet.nn.losses: against straightforward NumPy formulas, reductions and weights,
stability at +-1e4 logits and extreme probabilities, gradient checks."""

import numpy as np
import pytest

import funcnet as fn
from funcnet import nn
from funcnet.nn import losses
from funcnet.testing import check_grads

RNG = np.random.default_rng(0)
P = RNG.normal(size=(4, 3))
T = RNG.normal(size=(4, 3))
PROBS = RNG.dirichlet(np.ones(3), size=4)
INT_LABELS = np.array([0, 2, 1, 2])
SIGNS = np.where(RNG.random((4, 3)) < 0.5, -1.0, 1.0)


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _huber(e, d=1.0):
    a = np.abs(e)
    return np.where(a <= d, 0.5 * e ** 2, d * (a - 0.5 * d))


def _cos(p, t):
    return 1 - (p * t).sum(-1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1))


# name -> (loss function, args, per-example NumPy reference)
CASES = {
    "l1_loss": (losses.l1_loss, (P, T), np.abs(P - T)),
    "l2_loss": (losses.l2_loss, (P, T), 0.5 * (P - T) ** 2),
    "mse": (losses.mse, (P, T), (P - T) ** 2),
    "huber_loss": (lambda p, t, **kw: losses.huber_loss(p, t, 0.7, **kw), (P * 2, T),
                   _huber(P * 2 - T, 0.7)),
    "softmax_cross_entropy": (losses.softmax_cross_entropy, (P, PROBS),
                              -(PROBS * _log_softmax(P)).sum(-1)),
    "softmax_cross_entropy_with_integer_labels": (
        losses.softmax_cross_entropy_with_integer_labels, (P, INT_LABELS),
        -_log_softmax(P)[np.arange(4), INT_LABELS]),
    "sigmoid_binary_cross_entropy": (
        losses.sigmoid_binary_cross_entropy, (P, PROBS),
        -PROBS * np.log(1 / (1 + np.exp(-P))) - (1 - PROBS) * np.log(1 - 1 / (1 + np.exp(-P)))),
    "hinge_loss": (losses.hinge_loss, (P, SIGNS), np.maximum(0, 1 - P * SIGNS)),
    "cosine_distance": (losses.cosine_distance, (P, T), _cos(P, T)),
    "kl_divergence": (losses.kl_divergence, (_log_softmax(P), PROBS),
                      (PROBS * (np.log(PROBS) - _log_softmax(P))).sum(-1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_formula_with_every_reduction(name):
    f, args, ref = CASES[name]
    np.testing.assert_allclose(f(*args, reduction="none"), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f(*args), ref.mean(), rtol=1e-10)
    np.testing.assert_allclose(f(*args, reduction="sum"), ref.sum(), rtol=1e-10)
    w = np.linspace(0.0, 2.0, ref.shape[0]).reshape((-1,) + (1,) * (ref.ndim - 1))
    wb = np.broadcast_to(w, ref.shape)
    np.testing.assert_allclose(f(*args, weights=w, reduction="none"), ref * wb, rtol=1e-10)
    np.testing.assert_allclose(f(*args, weights=w), (ref * wb).sum() / wb.sum(), rtol=1e-10)
    out32 = f(*(a.astype(np.float32) if a.dtype.kind == "f" else a for a in args))
    assert out32.dtype == np.float32 and out32.shape == ()
    assert isinstance(out32, np.ndarray)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients(name):
    f, args, _ = CASES[name]
    if args[1].dtype.kind == "f":
        check_grads(lambda p, t: f(p, t, reduction="none"), args, order=1)
    else:
        check_grads(lambda p: f(p, args[1], reduction="none"), args[:1], order=1)
    got = fn.jit(lambda *a: f(*a))(*args)
    np.testing.assert_allclose(got, f(*args), rtol=1e-12)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        losses.mse(P, T, reduction="avg")


def test_integer_labels_must_be_integers():
    with pytest.raises(TypeError, match="integers"):
        losses.softmax_cross_entropy_with_integer_labels(P, PROBS)


# ---------------------------------------------------------------------------
# Stability


BIG = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], np.float32)


def test_cross_entropies_at_1e4():
    labels = np.array([0, 1])
    ce = losses.softmax_cross_entropy_with_integer_labels(BIG, labels, reduction="none")
    np.testing.assert_allclose(ce, [0.0, np.log(2)], atol=1e-6)
    wrong = losses.softmax_cross_entropy_with_integer_labels(BIG, np.array([1, 0]),
                                                             reduction="none")
    np.testing.assert_allclose(wrong, [2e4, 2e4 + np.log(2)], rtol=1e-6)
    soft = losses.softmax_cross_entropy(BIG, nn.one_hot(labels, 3), reduction="none")
    np.testing.assert_allclose(soft, ce, atol=1e-6)
    bce = losses.sigmoid_binary_cross_entropy(BIG, (BIG > 0).astype(np.float32),
                                              reduction="none")
    np.testing.assert_allclose(bce, np.where(BIG == 0, np.log(2), 0), atol=1e-6)
    bce_wrong = losses.sigmoid_binary_cross_entropy(BIG, (BIG < 0).astype(np.float32),
                                                    reduction="none")
    np.testing.assert_allclose(bce_wrong, np.where(BIG == 0, np.log(2), 1e4), rtol=1e-6)
    for f in (lambda x: losses.softmax_cross_entropy_with_integer_labels(x, labels),
              lambda x: losses.softmax_cross_entropy(x, nn.one_hot(labels, 3)),
              lambda x: losses.sigmoid_binary_cross_entropy(x, (x > 0).astype(x.dtype)),
              lambda x: losses.sigmoid_binary_cross_entropy(x, (x < 0).astype(x.dtype))):
        g = fn.grad(f)(BIG)
        assert np.all(np.isfinite(g)), g
        assert np.all(np.abs(g) <= 1.0)


def test_masked_classes_and_zero_probabilities():
    logits = np.array([[2.0, -np.inf, 0.0]])
    labels = np.array([[1.0, 0.0, 0.0]])
    value, g = fn.value_and_grad(lambda x: losses.softmax_cross_entropy(x, labels))(logits)
    assert np.isfinite(value) and np.all(np.isfinite(g))
    logq = np.array([[np.log(0.5), -np.inf, np.log(0.5)]])  # a log-prediction of -inf
    p = np.array([[0.5, 0.0, 0.5]])
    kl, g = fn.value_and_grad(losses.kl_divergence)(logq, p)
    assert float(kl) == 0.0 and np.all(np.isfinite(g))
    # targets at 0 and 1 exactly: finite, with finite gradients in both arguments
    check_grads(losses.kl_divergence, (np.log(np.array([[0.2, 0.8]])),
                                       np.array([[0.5, 0.5]])), order=1)
    g_t = fn.grad(losses.kl_divergence, argnums=1)(np.log([[0.2, 0.8]]), np.array([[0.0, 1.0]]))
    assert np.all(np.isfinite(g_t))


def test_cosine_distance_of_zero_vectors():
    z = np.zeros((1, 3))
    value, g = fn.value_and_grad(losses.cosine_distance)(z, np.ones((1, 3)))
    assert float(value) == 1.0 and np.all(np.isfinite(g))


def test_huber_is_smooth_at_delta():
    d = 0.5
    f = lambda e: losses.huber_loss(e, 0.0, d, reduction="sum")
    left, right = (float(fn.grad(f)(np.array([v]))[0]) for v in (d - 1e-7, d + 1e-7))
    assert left == pytest.approx(right, abs=1e-6)
    assert float(fn.grad(f)(np.array([0.0]))[0]) == 0.0
