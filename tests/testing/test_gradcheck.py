"""Tests for ``funcnet.testing.check_grads``: it passes on correct derivatives and
catches deliberately wrong JVP and transpose rules, naming what failed."""

import re
import sys

import numpy as np
import pytest

import funcnet.numpy as fnp
from funcnet.core.aval import ShapedArray
from funcnet.core.primitive import Primitive, registry
from funcnet.ops import elementwise as ew
from funcnet.ops.rules import defjvp, deflinear
from funcnet.testing import DEFAULT_TOLERANCES, check_grads

DTYPES = [np.float64, np.float32]


def _rand(shape, dtype, lo=-2.0, hi=2.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


# ---------------------------------------------------------------------------
# Correct functions pass


def _mlp(params, x):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    return fnp.sum((h @ params["w2"]) ** 2)


CASES = {
    "sin": (fnp.sin, lambda dt: (_rand((3, 4), dt),)),
    "exp_times_x": (lambda x: fnp.exp(x) * x, lambda dt: (_rand((5,), dt),)),
    "matmul": (lambda a, b: a @ b, lambda dt: (_rand((3, 4), dt), _rand((4, 2), dt, seed=1))),
    "tanh_matmul": (lambda a, b: fnp.tanh(a @ b),
                    lambda dt: (_rand((3, 4), dt), _rand((4, 2), dt, seed=1))),
    "sum": (lambda x: fnp.sum(x * x), lambda dt: (_rand((2, 3), dt),)),
    "mean_axis": (lambda x: fnp.mean(fnp.sin(x), axis=0), lambda dt: (_rand((4, 3), dt),)),
    "broadcast": (lambda x, y: x * y + fnp.cos(y), lambda dt: (_rand((3, 1), dt),
                                                             _rand((4,), dt, seed=2))),
    "scalar": (lambda x: fnp.log(x * x + 1.0), lambda dt: (_rand((), dt),)),
    "reciprocal": (lambda x: 1.0 / (x * x + 0.5), lambda dt: (_rand((6,), dt),)),
    "dict_args": (_mlp, lambda dt: ({"w1": _rand((3, 4), dt), "b1": _rand((4,), dt, seed=1),
                                     "w2": _rand((4, 2), dt, seed=2)},
                                    _rand((5, 3), dt, seed=3))),
    "pytree_in_out": (lambda p, xs: {"y": [p[0] * xs[0], fnp.exp(p[1]) + xs[1]],
                                     "z": fnp.sum(p[0] ** 3)},
                      lambda dt: ((_rand((3,), dt), _rand((3,), dt, seed=1)),
                                  [_rand((3,), dt, seed=2), _rand((3,), dt, seed=3)])),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("order", [1, 2])
def test_correct_functions_pass(name, dtype, order):
    f, make_args = CASES[name]
    assert check_grads(f, make_args(dtype), order=order) is None


@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev"), "rev"])
def test_each_mode_alone(modes):
    check_grads(lambda x: fnp.sin(x) * x, (_rand((4,), np.float64),), modes=modes)


def test_integer_leaves_are_held_fixed():
    x = _rand((3, 4), np.float64)
    n = np.arange(12).reshape(3, 4)
    check_grads(lambda x, n: x * n + fnp.sin(x), (x, n))
    check_grads(lambda p: p["x"][p["i"]] ** 2, ({"x": x[0], "i": np.array([2, 0, 2])},))


def test_integer_and_boolean_outputs_are_skipped():
    x = np.array([0.3, 1.2, -0.5])
    check_grads(lambda x: (fnp.sin(x), fnp.argmax(x), x > 0), (x,))


def test_scalars_and_single_argument():
    check_grads(fnp.sin, (0.5,))  # a Python float becomes funcnet's default float
    check_grads(lambda x: fnp.exp(x) * 2.0, np.array([0.1, 0.2]))  # not a tuple: one argument


def test_empty_array():
    check_grads(lambda x: fnp.sum(x) + fnp.sin(x), (np.zeros((0, 3)),))


def test_third_order():
    check_grads(lambda x: fnp.sin(x) * fnp.exp(x), (_rand((3,), np.float64),), order=3)


def test_default_tolerances_table():
    eps64, atol64, rtol64 = DEFAULT_TOLERANCES[np.dtype(np.float64)]
    eps32, atol32, rtol32 = DEFAULT_TOLERANCES[np.dtype(np.float32)]
    assert eps64 < eps32 and atol64 < atol32 and rtol64 < rtol32


@pytest.mark.parametrize("kwargs, match", [
    ({"modes": ("fwd", "backward")}, "modes"),
    ({"modes": ()}, "modes"),
    ({"order": 0}, "order"),
    ({"order": 1.5}, "order"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_grads(fnp.sin, (np.ones(2),), **kwargs)


def test_no_float_inputs():
    with pytest.raises(ValueError, match="no floating-point input"):
        check_grads(lambda n: n * 2, (np.arange(3),))


def test_complex_inputs_rejected():
    with pytest.raises(TypeError, match="complex"):
        check_grads(lambda z: z, (np.ones(2, np.complex128),))


# ---------------------------------------------------------------------------
# Deliberately wrong rules are caught
#
# The primitives are created per test module and removed from the registry
# afterwards, so that tests which enumerate every primitive never see them.


@pytest.fixture(scope="module")
def bad_prims():
    made = {}

    def new(name, impl):
        p = Primitive(name)
        p.abstract_eval = lambda x: ShapedArray(x.shape, x.dtype)
        p.impl = impl
        made[name] = p
        return p

    # sin whose derivative is 2*cos(x) instead of cos(x).
    bad_sin = new("bad_sin_test", np.sin)
    defjvp(bad_sin, lambda t, ans, x: ew.mul(t, ew.mul(2.0, ew.cos(x))))

    # sin whose derivative is wrong only where x > 1.5 (to locate the worst element).
    spot_sin = new("spot_sin_test", np.sin)
    defjvp(spot_sin, lambda t, ans, x: ew.mul(
        t, ew.select(ew.gt(x, 1.5), ew.mul(3.0, ew.cos(x)), ew.cos(x))))

    # y = 3x with a correct JVP (it applies itself) but a transpose that multiplies by 2.
    bad_scale = new("bad_scale_test", lambda x: 3 * x)
    deflinear(bad_scale, lambda ct, x: [ew.mul(ct, 2.0)])

    # cos whose derivative has the wrong sign (+sin), used as the first derivative
    # of a sin with a correct-looking JVP: only second derivatives are wrong.
    bad_cos = new("bad_cos_test", np.cos)
    defjvp(bad_cos, lambda t, ans, x: ew.mul(t, ew.sin(x)))
    sin2 = new("sin_bad_second_test", np.sin)
    defjvp(sin2, lambda t, ans, x: ew.mul(t, bad_cos.bind(x)))

    # a primitive with no differentiation rule at all
    new("no_rule_test", np.sin)

    yield {k.removesuffix("_test"): p for k, p in made.items()}
    for name in made:
        registry.pop(name, None)


def _first_line(err) -> str:
    return str(err.value).splitlines()[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_wrong_jvp_rule_is_caught_in_both_modes(bad_prims, dtype, mode):
    bad_sin = bad_prims["bad_sin"]
    x = _rand((4,), dtype)
    assert np.allclose(bad_sin.bind(x), np.sin(x))  # the primal is right
    with pytest.raises(AssertionError) as err:
        check_grads(lambda x: bad_sin.bind(x) * 2.0, (x,), order=1, modes=(mode,))
    assert f"mode={mode!r}" in _first_line(err)
    assert "order=1" in _first_line(err)


def test_wrong_transpose_rule_is_caught_only_in_rev_mode(bad_prims):
    bad_scale = bad_prims["bad_scale"]
    f = lambda x: fnp.sin(bad_scale.bind(x))
    x = _rand((3,), np.float64)
    check_grads(f, (x,), order=2, modes=("fwd",))  # forward mode never transposes
    with pytest.raises(AssertionError) as err:
        check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    assert "mode='rev'" in _first_line(err)
    assert "order=1" in _first_line(err)


def test_wrong_second_derivative_is_caught_at_order_2(bad_prims):
    sin2 = bad_prims["sin_bad_second"]
    x = _rand((3,), np.float64)
    for mode in ("fwd", "rev"):
        check_grads(sin2.bind, (x,), order=1, modes=(mode,))  # first derivatives are right
        with pytest.raises(AssertionError) as err:
            check_grads(sin2.bind, (x,), order=2, modes=(mode,))
        msg = str(err.value)
        assert f"mode={mode!r}" in msg and "order=2" in msg
        inner = "jvp" if mode == "fwd" else "vjp"
        assert f"function checked: {inner}(bind)" in msg


def test_fwd_failure_message_names_paths_and_worst_element(bad_prims):
    spot_sin = bad_prims["spot_sin"]
    params = {"a": np.array([0.1, 0.2, 0.3]), "b": np.array([0.4, 0.5, 2.0, 0.7])}
    f = lambda p: {"u": fnp.sin(p["a"]), "v": spot_sin.bind(p["b"]) * 1.0}
    with pytest.raises(AssertionError) as err:
        check_grads(f, (params,), order=1, modes=("fwd",))
    msg = str(err.value)
    assert "mode='fwd'" in msg and "order=1" in msg
    assert "input leaf: args[0]['b']" in msg
    assert "output leaf: out['v']" in msg
    assert "at index (2,)" in msg
    for word in ("expected", "got", "abs error", "rel error", "allowed"):
        assert word in msg
    # the numbers reported are the finite-difference and JVP values at that element
    expected = float(re.search(r"expected\s+(\S+)", msg).group(1))
    got = float(re.search(r"got\s+(\S+)", msg).group(1))
    assert got == pytest.approx(3 * expected, rel=1e-6)


def test_rev_failure_message_names_paths_and_worst_element(bad_prims):
    spot_sin = bad_prims["spot_sin"]
    x = np.array([0.1, 0.2, 0.3])
    y = np.array([[0.4, 0.5], [2.0, 0.7]])
    f = lambda x, y: fnp.sum(fnp.sin(x)) + spot_sin.bind(y)
    with pytest.raises(AssertionError) as err:
        check_grads(f, (x, y), order=1, modes=("rev",))
    msg = str(err.value)
    assert "mode='rev'" in msg and "order=1" in msg
    assert "input leaf: args[1]" in msg
    assert "at index (1, 0)" in msg
    for word in ("expected", "got", "abs error", "rel error", "allowed"):
        assert word in msg


def test_fwd_failure_at_order_2_names_tangent_inputs(bad_prims):
    sin2 = bad_prims["sin_bad_second"]
    with pytest.raises(AssertionError) as err:
        check_grads(lambda p: sin2.bind(p["w"]), ({"w": np.array([0.3, 0.9])},), order=2,
                    modes=("fwd",))
    msg = str(err.value)
    assert "function checked: jvp(<lambda>)" in msg
    assert "args[0]['w']" in msg or "tangent of args[0]['w']" in msg


def test_errors_from_transforms_say_what_was_being_checked(bad_prims):
    no_rule = bad_prims["no_rule"]
    with pytest.raises(NotImplementedError, match="no_rule_test") as err:
        check_grads(no_rule.bind, (np.array([0.5]),), modes=("rev",))
    notes = " ".join(getattr(err.value, "__notes__", []))
    if sys.version_info >= (3, 11):
        assert "mode='rev'" in notes and "order=1" in notes


def test_tolerances_can_be_overridden():
    x = np.array([0.5, 1.0])
    check_grads(fnp.sin, (x,), eps=1e-1, atol=1e-2, rtol=1e-2)  # coarse but passes
    with pytest.raises(AssertionError, match="eps=1"):
        check_grads(fnp.sin, (x,), eps=1.0, atol=0.0, rtol=0.0, order=1)


def test_reproducible():
    # The same failing check reports the same numbers every time (fixed-seed directions).
    def run():
        with pytest.raises(AssertionError) as err:
            check_grads(fnp.exp, (np.array([0.5, 1.0]),), eps=0.5, atol=0.0, rtol=1e-9)
        return str(err.value)

    assert run() == run()


def test_public_api_names():
    import funcnet.testing as t

    assert t.check_grads is check_grads
    assert {"check_grads", "arrays", "shapes", "broadcastable_shapes", "pytrees"} <= set(
        t.__all__)
    assert {"arrays", "pytrees"} <= set(dir(t))
    with pytest.raises(AttributeError):
        t.no_such_thing  # noqa: B018
    from funcnet import testing

    assert testing is t
