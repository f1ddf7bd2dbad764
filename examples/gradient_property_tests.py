"""How to test the gradients of your own model with Hypothesis and ``funcnet.testing``.

What it shows: property-based tests, the way a user writes them for a model of
their own.  The model here has a hand-written layer — an RMSNorm whose backward
pass is a ``fn.custom_vjp`` (hand-written gradients are where bugs hide) — inside a
small tanh network with a softmax cross-entropy loss.  Hypothesis draws shapes,
inputs and initialisation seeds; the tests check:

1. the hand-written VJP against central finite differences (``check_grads``);
2. the hand-written VJP against funcnet's automatic derivative of the plain
   formula (they must agree to float64 rounding);
3. the whole loss's gradient, first and second order, in forward and reverse
   mode, against finite differences;
4. mathematical properties any correct gradient has: the cross-entropy's
   gradient with respect to the last bias sums to zero over the classes, and
   the per-example gradients (``vmap(grad)``) average to the batch gradient;
5. that ``jit`` changes nothing (``jit(grad(f)) == grad(f)``);
6. and that the checks have teeth: a deliberately wrong backward rule fails.

Inputs are float64 (finite differences need the precision) and drawn away from
the places where the function is not smooth.  ``funcnet.testing`` provides
``check_grads`` and the strategies ``arrays`` and ``shapes``.

Run it::

    python -m pytest examples/gradient_property_tests.py -q     # as a test file
    python examples/gradient_property_tests.py                  # 30 examples per property
    python examples/gradient_property_tests.py --quick          # 5 per property (smoke test)

Expected: every property passes (``python ...`` prints ``PASS`` for each test).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import nn, random
from funcnet.testing import arrays, check_grads, shapes

# One settings object for every property (no deadline: the first call of a shape traces
# and compiles).  Decorating each test, rather than loading a global profile, leaves the
# settings of any other test in the same pytest session alone.  Hypothesis fixes a test's
# settings when it is decorated, so the script's --quick is read here, at import.
QUICK = __name__ == "__main__" and "--quick" in sys.argv[1:]
PROPERTY = settings(max_examples=5 if QUICK else 30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

EPS = 1e-3


# ---------------------------------------------------------------------------
# The model under test: your own code.


def rms_norm_reference(x, scale):
    """RMSNorm written plainly: funcnet differentiates it automatically."""
    rms = fnp.sqrt(fnp.mean(x * x, axis=-1, keepdims=True) + EPS)
    return x / rms * scale


@fn.custom_vjp
def rms_norm(x, scale):
    """The same function with a hand-written backward pass (one fused formula)."""
    return rms_norm_reference(x, scale)


def _rms_norm_fwd(x, scale):
    inv = 1.0 / fnp.sqrt(fnp.mean(x * x, axis=-1, keepdims=True) + EPS)
    return x * inv * scale, (x, scale, inv)


def _rms_norm_bwd(residuals, g):
    x, scale, inv = residuals
    n = x.shape[-1]
    gs = g * scale
    # d/dx [x * inv]: inv * gs - x * inv^3 * mean(gs * x)
    dx = inv * gs - x * inv ** 3 * fnp.sum(gs * x, axis=-1, keepdims=True) / n
    dscale = fnp.sum((g * x * inv).reshape(-1, n), axis=0)
    return dx, dscale


rms_norm.defvjp(_rms_norm_fwd, _rms_norm_bwd)


def RMSNorm():
    """A layer around ``rms_norm`` (``nn.Layer``: init and apply)."""

    def init(key, input_shape):
        return input_shape, {"scale": fnp.ones((input_shape[-1],))}

    def apply(params, x, *, key=None, train=False):
        return rms_norm(x, params["scale"])

    return nn.Layer(init, apply, name="rms_norm")


NUM_CLASSES = 3
model = nn.serial(nn.Dense(8), RMSNorm(), nn.Tanh, nn.Dense(NUM_CLASSES))
plain_model = nn.serial(nn.Dense(8), nn.Tanh, nn.Dense(NUM_CLASSES))


def loss(params, x, y, net=model):
    return nn.losses.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y)


def init_params(seed: int, features: int, net=model):
    """float64 parameters (funcnet's initializers default to float32)."""
    _, params = net.init(random.key(seed), (-1, features))
    return fn.tree.map(lambda p: np.asarray(p, np.float64), params)


# ---------------------------------------------------------------------------
# Strategies: what Hypothesis draws.

moderate = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
seeds = st.integers(0, 2**31 - 1)


@st.composite
def batches(draw, max_batch: int = 5, max_features: int = 6):
    """``(x, y)``: a float64 batch of 1-5 examples with 1-6 features, integer labels."""
    n = draw(st.integers(1, max_batch))
    f = draw(st.integers(1, max_features))
    x = draw(arrays((n, f), np.float64, elements=moderate))
    y = draw(arrays((n,), np.int64, elements=st.integers(0, NUM_CLASSES - 1)))
    return x, y


# ---------------------------------------------------------------------------
# The properties.


@PROPERTY
@given(arrays(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), np.float64,
              elements=moderate), seeds)
def test_rms_norm_vjp_matches_finite_differences(x, seed):
    scale = np.asarray(random.normal(random.key(seed), (x.shape[-1],), np.float64))
    check_grads(rms_norm, (x, scale), order=1, modes=("rev",))


@PROPERTY
@given(arrays(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), np.float64,
              elements=moderate), seeds)
def test_rms_norm_vjp_equals_autodiff(x, seed):
    scale = np.asarray(random.normal(random.key(seed), (x.shape[-1],), np.float64))
    g = np.asarray(random.normal(random.fold_in(random.key(seed), 1), x.shape, np.float64))
    _, vjp_custom = fn.vjp(rms_norm, x, scale)
    _, vjp_auto = fn.vjp(rms_norm_reference, x, scale)
    for got, want in zip(vjp_custom(g), vjp_auto(g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@PROPERTY
@given(batches(), seeds)
def test_loss_gradient_matches_finite_differences(batch, seed):
    x, y = batch
    params = init_params(seed, x.shape[1])
    # The custom VJP gives reverse mode; without a JVP rule forward mode is not defined.
    check_grads(lambda p: loss(p, x, y), (params,), order=1, modes=("rev",))


@PROPERTY
@given(batches(max_batch=3, max_features=3), seeds)
def test_plain_loss_second_order(batch, seed):
    x, y = batch
    params = init_params(seed, x.shape[1], plain_model)
    check_grads(lambda p: loss(p, x, y, plain_model), (params,), order=2, modes=("fwd", "rev"))


@PROPERTY
@given(batches(), seeds)
def test_last_bias_gradient_sums_to_zero(batch, seed):
    # d(cross-entropy)/d(logits) = softmax - onehot, whose entries sum to zero.
    x, y = batch
    grads = fn.grad(loss)(init_params(seed, x.shape[1]), x, y)
    bias_grad = grads["3_dense"]["b"]
    assert abs(float(np.sum(bias_grad))) < 1e-12


@PROPERTY
@given(batches(), seeds)
def test_per_example_gradients_average_to_the_batch_gradient(batch, seed):
    x, y = batch
    params = init_params(seed, x.shape[1])
    one = lambda p, xi, yi: loss(p, xi[None], yi[None])
    per_example = fn.vmap(fn.grad(one), in_axes=(None, 0, 0))(params, x, y)
    whole = fn.grad(loss)(params, x, y)
    for pe, w in zip(fn.tree.leaves(per_example), fn.tree.leaves(whole)):
        assert pe.shape == (x.shape[0],) + w.shape
        np.testing.assert_allclose(np.mean(pe, axis=0), w, rtol=1e-9, atol=1e-12)


@PROPERTY
@given(batches(), seeds)
def test_jit_does_not_change_the_gradient(batch, seed):
    x, y = batch
    params = init_params(seed, x.shape[1])
    eager = fn.grad(loss)(params, x, y)
    jitted = fn.jit(fn.grad(loss))(params, x, y)
    for a, b in zip(fn.tree.leaves(eager), fn.tree.leaves(jitted)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_wrong_backward_rule_is_caught():
    @fn.custom_vjp
    def bad_rms_norm(x, scale):
        return rms_norm_reference(x, scale)

    def bad_bwd(residuals, g):
        x, scale, inv = residuals
        dx = g * scale * inv  # the second term of the derivative is missing
        return dx, fnp.sum((g * x * inv).reshape(-1, x.shape[-1]), axis=0)

    bad_rms_norm.defvjp(_rms_norm_fwd, bad_bwd)
    x = np.array([[0.5, -1.2, 2.0], [1.5, 0.3, -0.7]])
    try:
        check_grads(bad_rms_norm, (x, np.ones(3)), order=1, modes=("rev",))
    except AssertionError as e:
        assert "check_grads failed" in str(e)
    else:
        raise AssertionError("check_grads did not notice the wrong rule")


TESTS = [test_rms_norm_vjp_matches_finite_differences, test_rms_norm_vjp_equals_autodiff,
         test_loss_gradient_matches_finite_differences, test_plain_loss_second_order,
         test_last_bias_gradient_sums_to_zero,
         test_per_example_gradients_average_to_the_batch_gradient,
         test_jit_does_not_change_the_gradient, test_a_wrong_backward_rule_is_caught]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 examples per property")
    parser.add_argument("--backend", default=None, help="funcnet backend (default numpy)")
    args = parser.parse_args(argv)
    if args.backend:
        fn.set_backend(args.backend)
    print(f"gradient property tests | backend={fn.get_backend().name} "
          f"max_examples={PROPERTY.max_examples}", flush=True)
    failed = 0
    for test in TESTS:
        t0 = time.perf_counter()
        try:
            test()
            status = "PASS"
        except Exception as e:  # report every test, then fail at the end
            status = f"FAIL {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            failed += 1
        print(f"{status:4s}  {test.__name__}  ({time.perf_counter() - t0:.1f}s)", flush=True)
    print(f"{len(TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
