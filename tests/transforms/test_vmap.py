"""vmap: axes handling, errors, and vmap == loop for every primitive family."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp

rng = np.random.default_rng(0)

# (name, function of one per-example array, per-example shape)
FAMILIES = [
    ("elementwise", lambda x: fnp.sin(x) * 2.0 + fnp.exp(-x), (3, 2)),
    ("broadcast-binary", lambda x: x + fnp.arange(2.0), (3, 2)),
    ("scalar-vs-vector", lambda x: fnp.sum(x) * fnp.ones(4), (3,)),
    ("where", lambda x: fnp.where(x > 0, x, -2 * x), (3, 2)),
    ("reductions", lambda x: fnp.stack([fnp.sum(x, 0), fnp.max(x, 0), fnp.prod(x, 0)]), (3, 2)),
    ("argmax", lambda x: fnp.argmax(x, axis=1), (3, 4)),
    ("cumsum", lambda x: fnp.cumsum(x, axis=0), (3, 2)),
    ("sort", lambda x: fnp.sort(x, axis=-1), (3, 4)),
    ("reshape-transpose", lambda x: x.reshape(2, 3).T, (3, 2)),
    ("slice-rev-pad", lambda x: fnp.pad(fnp.flip(x[1:, ::-1], 0), 1), (3, 2)),
    ("concatenate", lambda x: fnp.concatenate([x, x * 2], axis=1), (3, 2)),
    ("matmul", lambda x: x @ np.arange(8.0).reshape(2, 4), (3, 2)),
    ("matvec-right", lambda x: np.arange(6.0).reshape(2, 3) @ x, (3,)),
    ("outer", lambda x: fnp.outer(x, x), (3,)),
    ("basic-index", lambda x: x[1, ::-1], (3, 2)),
    ("advanced-index", lambda x: x[np.array([2, 0, 2]), 1], (3, 2)),
    ("mixed-index", lambda x: x[:, np.array([1, 0])][np.array([0, 0])], (3, 2)),
    ("at-add", lambda x: fnp.at(x)[np.array([0, 0, 2])].add(1.0), (3, 2)),
    ("at-set", lambda x: fnp.at(x)[1, :].set(5.0), (3, 2)),
    ("take-along", lambda x: fnp.take_along_axis(x, fnp.argsort(x, axis=0), axis=0), (3, 2)),
    ("dynamic-slice", lambda x: fn.lax.dynamic_slice(x, (1, 0), (2, 2)), (3, 2)),
    ("median-var", lambda x: fnp.stack([fnp.median(x, axis=0), fnp.var(x, axis=0)]), (3, 2)),
]


@pytest.mark.parametrize("name,f,shape", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap_equals_loop(name, f, shape, axis):
    xs = rng.standard_normal((4,) + shape)
    moved = np.moveaxis(xs, 0, axis)
    got = fn.vmap(f, in_axes=axis)(moved)
    expected = np.stack([np.asarray(f(x)) for x in xs])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("name,f,shape", FAMILIES[:18], ids=[f[0] for f in FAMILIES[:18]])
def test_jit_vmap_and_vmap_jit_agree(name, f, shape):
    xs = rng.standard_normal((3,) + shape)
    expected = fn.vmap(f)(xs)
    np.testing.assert_allclose(fn.jit(fn.vmap(f))(xs), expected, rtol=1e-12)
    np.testing.assert_allclose(fn.vmap(fn.jit(f))(xs), expected, rtol=1e-12)


def test_in_axes_pytree_prefix_none_and_kwargs():
    w = rng.standard_normal((3, 2))
    xs = rng.standard_normal((5, 2))
    params = {"w": w, "b": np.ones(3)}
    f = lambda p, x: p["w"] @ x + p["b"]  # noqa: E731
    got = fn.vmap(f, in_axes=({"w": None, "b": None}, 0))(params, xs)
    np.testing.assert_allclose(got, xs @ w.T + 1)
    got = fn.vmap(f, in_axes=(None, 0))(params, xs)
    np.testing.assert_allclose(got, xs @ w.T + 1)
    got = fn.vmap(lambda x, scale: x * scale)(xs, scale=np.arange(5.0))
    np.testing.assert_allclose(got, xs * np.arange(5.0)[:, None])


def test_out_axes_and_axis_size():
    xs = rng.standard_normal((4, 3))
    out = fn.vmap(lambda x: (x, fnp.sum(x)), out_axes=(1, 0))(xs)
    assert out[0].shape == (3, 4) and out[1].shape == (4,)
    ones = fn.vmap(lambda: fnp.ones(2), axis_size=3)()
    assert ones.shape == (3, 2)
    const = fn.vmap(lambda x, c: c, in_axes=(0, None), out_axes=(None))(xs, np.ones(2))
    assert const.shape == (2,)


def test_nested_vmap():
    x = rng.standard_normal((2, 3, 4))
    got = fn.vmap(fn.vmap(lambda v: fnp.sum(v * v)))(x)
    np.testing.assert_allclose(got, np.sum(x * x, axis=-1))
    got = fn.vmap(fn.vmap(lambda a, b: a @ b, in_axes=(0, None)), in_axes=(None, 0))(
        x[0], x[1])
    np.testing.assert_allclose(got, x[1] @ x[0].T)


def test_per_example_gradients_are_broadcast_outer_products():
    w = rng.standard_normal((3, 2))
    xs = rng.standard_normal((6, 3))
    loss = lambda w, x: fnp.sum(fnp.tanh(x @ w))  # noqa: E731
    pe = fn.vmap(fn.grad(loss), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(pe, np.stack([fn.grad(loss)(w, x) for x in xs]), rtol=1e-12)
    graph = fn.make_graph(fn.vmap(fn.grad(loss), in_axes=(None, 0)))(w, xs)
    dots = [e for e in graph.eqns if e.prim.name == "dot_general"]
    # the weight gradient is a contraction-free dot_general (an outer product), which
    # the kernels compute by broadcasting rather than as batched rank-1 matmuls
    assert any(not e.params["dimension_numbers"][0][0] for e in dots)


def test_errors_name_argument_and_axes():
    with pytest.raises(ValueError, match=r"in_axes=2 is out of range for argument 0"):
        fn.vmap(lambda x: x, in_axes=2)(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"inconsistent sizes.*argument 1.*size 4"):
        fn.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        fn.vmap(lambda a, b: a, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="out_axes=None"):
        fn.vmap(lambda a: a, out_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="axis_size"):
        fn.vmap(lambda a: a, in_axes=None)(np.ones(3))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2), st.sampled_from(["sum", "max", "mean"]))
def test_property_grad_of_vmap_is_sum_of_grads(batch, axis, red):
    shape = [2, 3]
    shape.insert(axis, batch)
    x = rng.standard_normal(shape)
    reduce = getattr(fnp, red)

    def per(v):
        return reduce(fnp.sin(v) * v)

    g = fn.grad(lambda x: fnp.sum(fn.vmap(per, in_axes=axis)(x)))(x)
    moved = np.moveaxis(x, axis, 0)
    expected = np.moveaxis(np.stack([fn.grad(per)(v) for v in moved]), 0, axis)
    np.testing.assert_allclose(g, expected, rtol=1e-10)
