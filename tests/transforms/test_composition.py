"""The composition matrix of API.md §2: every pair (and the listed triples) of
transforms agrees with the untransformed computation (vmap = loop, jit = eager,
grad = finite differences)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax
from funcnet.testing import check_grads


def f(w, x):
    """A small model with a matmul, a nonlinearity and a scan."""
    h = fnp.tanh(x @ w)
    c, _ = lax.scan(lambda c, v: (c * 0.9 + fnp.sin(v), None), 0.0 * h[0], h)
    return fnp.sum(c * c) + fnp.sum(h ** 2) * 0.1


def data(seed, batch=3, din=3, dout=2, rows=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((din, dout)), rng.standard_normal((batch, rows, din))


def loop(g, ws, xs):
    return np.stack([np.asarray(g(ws, x)) for x in xs])


PAIRS = {
    "grad": lambda: fn.grad(f),
    "jit(grad)": lambda: fn.jit(fn.grad(f)),
    "grad(jit)": lambda: fn.grad(fn.jit(f)),
    "jit(grad(jit))": lambda: fn.jit(fn.grad(fn.jit(f))),
    "jit(jit(grad))": lambda: fn.jit(fn.jit(fn.grad(f))),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradient_routes_agree(name):
    w, xs = data(0)
    expected = fn.grad(f)(w, xs[0])
    np.testing.assert_allclose(PAIRS[name]()(w, xs[0]), expected, rtol=1e-10)


@pytest.mark.parametrize("outer", ["vmap", "jit(vmap)", "vmap(jit)"])
def test_per_example_routes_agree_with_loop(outer):
    w, xs = data(1)
    g = fn.grad(f)
    expected = loop(g, w, xs)
    make = {"vmap": lambda: fn.vmap(g, in_axes=(None, 0)),
            "jit(vmap)": lambda: fn.jit(fn.vmap(g, in_axes=(None, 0))),
            "vmap(jit)": lambda: fn.vmap(fn.jit(g), in_axes=(None, 0))}[outer]
    np.testing.assert_allclose(make()(w, xs), expected, rtol=1e-10)


def test_grad_of_vmap_equals_sum_of_grads():
    w, xs = data(2)
    total = fn.grad(lambda w: fnp.sum(fn.vmap(f, in_axes=(None, 0))(w, xs)))(w)
    np.testing.assert_allclose(total, sum(fn.grad(f)(w, x) for x in xs), rtol=1e-10)


def test_second_order_routes():
    w, xs = data(3)
    h_rev_fwd = fn.jacfwd(fn.jacrev(f))(w, xs[0])
    h_rev_rev = fn.jacrev(fn.jacrev(f))(w, xs[0])
    h_fwd_fwd = fn.jacfwd(fn.jacfwd(f))(w, xs[0])
    np.testing.assert_allclose(h_rev_fwd, h_rev_rev, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(h_fwd_fwd, h_rev_rev, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fn.hessian(f)(w, xs[0]), h_rev_fwd, rtol=1e-10)
    np.testing.assert_allclose(fn.jit(fn.hessian(f))(w, xs[0]), h_rev_fwd, rtol=1e-10)
    per = fn.vmap(fn.jacrev(f), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(per, loop(fn.jacrev(f), w, xs), rtol=1e-10)


def test_vmap_of_vmap_and_jit_of_vmap_of_vmap():
    w, xs = data(4)
    xs2 = np.stack([xs, -xs])
    inner = fn.vmap(f, in_axes=(None, 0))
    expected = np.stack([inner(w, x) for x in xs2])
    np.testing.assert_allclose(fn.vmap(inner, in_axes=(None, 0))(w, xs2), expected, rtol=1e-12)
    np.testing.assert_allclose(fn.jit(fn.vmap(inner, in_axes=(None, 0)))(w, xs2), expected,
                               rtol=1e-12)


def test_vmap_of_cond_and_grad_through_it():
    def g(x):
        return lax.cond(fnp.sum(x) > 0, lambda v: fnp.sum(v ** 2), lambda v: fnp.sum(fnp.sin(v)),
                        x)

    xs = np.array([[1.0, 2.0], [-1.0, -3.0], [0.5, -0.2]])
    np.testing.assert_allclose(fn.vmap(g)(xs), [g(x) for x in xs])
    np.testing.assert_allclose(fn.vmap(fn.grad(g))(xs), np.stack([fn.grad(g)(x) for x in xs]))
    np.testing.assert_allclose(fn.grad(lambda xs: fnp.sum(fn.vmap(g)(xs)))(xs),
                               np.stack([fn.grad(g)(x) for x in xs]))


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10_000))
def test_property_transformed_gradients_match_finite_differences(din, dout, rows, seed):
    w, xs = data(seed, batch=2, din=din, dout=dout, rows=rows)
    check_grads(lambda w: f(w, xs[0]), (w,), order=2, modes=("fwd", "rev"))
    check_grads(lambda w: fn.jit(f)(w, xs[0]), (w,), order=1, modes=("fwd", "rev"))
    check_grads(lambda w: fnp.sum(fn.vmap(f, in_axes=(None, 0))(w, xs)), (w,), order=1)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2), st.integers(0, 10_000))
def test_property_vmap_equals_loop_any_axis(batch, axis, seed):
    rng = np.random.default_rng(seed)
    shape = [2, 3]
    shape.insert(axis, batch)
    x = rng.standard_normal(shape)

    def g(v):
        return fnp.cumsum(fnp.sort(v, axis=-1) * fnp.arange(v.shape[-1]), axis=0) @ fnp.ones(
            v.shape[-1])

    moved = np.moveaxis(x, axis, 0)
    expected = np.stack([g(v) for v in moved])
    np.testing.assert_allclose(fn.vmap(g, in_axes=axis)(x), expected, rtol=1e-12)
    np.testing.assert_allclose(fn.jit(fn.vmap(g, in_axes=axis))(x), expected, rtol=1e-12)
