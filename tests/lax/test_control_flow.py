"""lax control flow: values, every transform, and the documented limits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax
from funcnet.testing import check_grads


def rnn(params, xs):
    def step(h, x):
        h = fnp.tanh(h @ params["W"] + x @ params["U"] + params["b"])
        return h, fnp.sum(h * h)

    h, ys = lax.scan(step, fnp.zeros(params["b"].shape, params["b"].dtype), xs)
    return fnp.sum(h) + fnp.sum(ys)


def rnn_loop(params, xs):
    h = fnp.zeros(params["b"].shape, params["b"].dtype)
    total = 0.0
    for x in xs:
        h = fnp.tanh(h @ params["W"] + x @ params["U"] + params["b"])
        total = total + fnp.sum(h * h)
    return fnp.sum(h) + total


def make_rnn(seed=0, hidden=3, inp=2, steps=4):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((hidden, hidden)) * 0.5,
              "U": rng.standard_normal((inp, hidden)) * 0.5, "b": rng.standard_normal(hidden) * 0.1}
    return params, rng.standard_normal((steps, inp))


def test_scan_matches_python_loop_values_and_gradients():
    params, xs = make_rnn()
    assert np.isclose(rnn(params, xs), rnn_loop(params, xs))
    g1, g2 = fn.grad(rnn)(params, xs), fn.grad(rnn_loop)(params, xs)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-10)
    np.testing.assert_allclose(fn.grad(rnn, argnums=1)(params, xs),
                               fn.grad(rnn_loop, argnums=1)(params, xs), rtol=1e-10)


def test_scan_check_grads_second_order():
    params, xs = make_rnn(1, hidden=2, inp=2, steps=3)
    check_grads(rnn, (params, xs), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("unroll", [1, 2, 3])
def test_scan_reverse_and_unroll(reverse, unroll):
    xs = np.arange(7.0)
    carry, ys = lax.scan(lambda c, x: (c * 0.5 + x, c), 1.0, xs, reverse=reverse, unroll=unroll)
    c, expected = 1.0, []
    order = range(6, -1, -1) if reverse else range(7)
    out = [None] * 7
    for i in order:
        out[i] = c
        c = c * 0.5 + xs[i]
    assert np.isclose(carry, c)
    np.testing.assert_allclose(ys, out)
    del expected
    f = lambda w: lax.scan(lambda c, x: (c * w + x, c), 1.0, xs, reverse=reverse,  # noqa: E731
                           unroll=unroll)[1].sum()
    check_grads(f, (np.float64(0.7),), order=2)


def test_scan_pytree_carry_and_none_xs():
    def step(c, _):
        return {"a": c["a"] + 1.0, "b": (c["b"][0] * 2.0,)}, c["a"]

    c, ys = lax.scan(step, {"a": 0.0, "b": (1.0,)}, None, length=3)
    assert float(c["a"]) == 3.0 and float(c["b"][0]) == 8.0
    np.testing.assert_allclose(ys, [0.0, 1.0, 2.0])


def test_scan_transforms_compose():
    params, xs = make_rnn(2)
    g = fn.grad(rnn)(params, xs)
    gj = fn.jit(fn.grad(rnn))(params, xs)
    for k in g:
        np.testing.assert_allclose(gj[k], g[k], rtol=1e-10)
    batch = np.stack([xs, xs * 0.5, -xs])
    per_ex = fn.vmap(fn.grad(rnn), in_axes=(None, 0))(params, batch)
    for i, x in enumerate(batch):
        np.testing.assert_allclose(per_ex["W"][i], fn.grad(rnn)(params, x)["W"], rtol=1e-10)
    h = fn.hessian(lambda b: rnn({**params, "b": b}, xs))(params["b"])
    h_loop = fn.hessian(lambda b: rnn_loop({**params, "b": b}, xs))(params["b"])
    np.testing.assert_allclose(h, h_loop, rtol=1e-8)
    gv = fn.grad(lambda p: fnp.sum(fn.vmap(lambda x: rnn(p, x))(batch)))(params)
    np.testing.assert_allclose(gv["U"], sum(fn.grad(rnn)(params, x)["U"] for x in batch),
                               rtol=1e-10)


def test_scan_carry_type_error():
    with pytest.raises(TypeError, match="same types"):
        lax.scan(lambda c, x: (fnp.ones(2), c), fnp.zeros(3), fnp.ones(4))
    with pytest.raises(ValueError, match="different leading sizes"):
        lax.scan(lambda c, x: (c, x), 0.0, (fnp.ones(3), fnp.ones(4)))


def test_fori_loop_static_and_traced_bounds():
    assert float(lax.fori_loop(0, 5, lambda i, a: a + i, 0.0)) == 10.0
    f = lambda x: lax.fori_loop(0, 3, lambda i, a: a * x, 1.0)  # noqa: E731
    assert float(fn.grad(f)(2.0)) == 12.0
    g = fn.jit(lambda n: lax.fori_loop(0, n, lambda i, a: a + 2.0, 0.0))
    assert float(g(4)) == 8.0 and float(g(6)) == 12.0 and g.trace_count == 1


def test_while_loop_forward_mode_and_reverse_error():
    f = lambda x: lax.while_loop(lambda v: v < 10.0, lambda v: v * x, 1.0)  # noqa: E731
    assert float(f(2.0)) == 16.0
    y, t = fn.jvp(f, (2.0,), (1.0,))
    assert float(t) == 32.0  # d/dx x**4 at 2
    with pytest.raises(TypeError, match=r"while_loop.*bounded_while_loop"):
        fn.grad(f)(2.0)


def test_while_loop_batched_predicate_masks_finished_examples():
    f = fn.vmap(lambda x: lax.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x))
    np.testing.assert_allclose(f(np.array([1.0, 3.0, 20.0])), [16.0, 12.0, 20.0])


def test_bounded_while_loop_is_reverse_differentiable():
    f = lambda x: lax.bounded_while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x, 8)  # noqa: E731
    assert float(f(1.5)) == 12.0 and float(fn.grad(f)(1.5)) == 8.0


def test_cond_and_switch_all_transforms():
    f = lambda x: lax.cond(x > 0, lambda x: x * x, lambda x: fnp.sin(x), x)  # noqa: E731
    for x in (2.0, -1.0):
        xs = np.float64(x)
        check_grads(f, (xs,), order=2)
        assert np.isclose(fn.jit(fn.grad(f))(xs), fn.grad(f)(xs))
    np.testing.assert_allclose(fn.vmap(f)(np.array([2.0, -1.0])), [4.0, np.sin(-1.0)])
    np.testing.assert_allclose(fn.vmap(fn.grad(f))(np.array([2.0, -1.0])), [4.0, np.cos(-1.0)])
    branches = [lambda x: x + 1.0, lambda x: x * 10.0, lambda x: -x]
    np.testing.assert_allclose(fn.vmap(lambda i, x: lax.switch(i, branches, x))(
        np.array([0, 1, 2, 5]), np.ones(4)), [2.0, 10.0, -1.0, -1.0])


def test_cond_branch_mismatch_error():
    with pytest.raises(TypeError, match="same"):
        lax.cond(True, lambda x: x, lambda x: (x, x), 1.0)


def test_closed_over_tracers_are_differentiated():
    def f(w):
        return lax.cond(w > 0, lambda x: x * w, lambda x: x, 2.0)

    assert float(fn.grad(f)(3.0)) == 2.0


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.floats(-1.5, 1.5))
def test_property_scan_equals_loop(length, w):
    xs = np.linspace(-1, 1, length)

    def body(c, x):
        return fnp.sin(c * w) + x, c * x

    c1, y1 = lax.scan(body, 0.3, xs)
    c, ys = 0.3, []
    for x in xs:
        c, y = body(c, x)
        ys.append(y)
    assert np.isclose(c1, c)
    np.testing.assert_allclose(y1, np.array(ys, dtype=np.asarray(y1).dtype), rtol=1e-5)
