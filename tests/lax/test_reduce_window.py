"""``reduce_window``, ``max_pool`` and ``avg_pool`` (``funcnet/ops/convolution.py``):
values against a direct loop reference, the tie rule of the max-pool
derivative, ``check_grads`` to second order, ``vmap`` against a loop and
``jit`` against eager."""

from __future__ import annotations

import itertools
import operator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.ops.convolution import avg_pool, max_pool, reduce_window
from funcnet.testing import check_grads

VALUES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRADS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# Reference: every window by a loop (tiny sizes only)


def reference_reduce(x, reducer, fill, window, strides, padding):
    """Pad with ``fill``, then reduce each window with ``reducer`` (over a flat list)."""
    xp = np.pad(x, padding, constant_values=fill)
    out_shape = [max((d - w) // s + 1, 0) if d >= w else 0
                 for d, w, s in zip(xp.shape, window, strides)]
    out = np.zeros(out_shape, x.dtype)
    for j in itertools.product(*map(range, out_shape)):
        block = xp[tuple(slice(i * s, i * s + w) for i, s, w in zip(j, strides, window))]
        out[j] = reducer(block.ravel())
    return out


def same_pads(shape, window, strides):
    pads = []
    for d, w, s in zip(shape, window, strides):
        total = max((-(-d // s) - 1) * s + w - d, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def distinct_values(rng, shape):
    """Values at least 0.01 apart, so no window has a tie (finite differences are safe)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.01 + rng.uniform(0, 0.002, n)).reshape(shape) - n * 0.005


@st.composite
def window_configs(draw, max_ndim=3):
    nd = draw(st.integers(1, max_ndim))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    window = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    strides = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.one_of(
        st.sampled_from(["SAME", "VALID"]),
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=nd, max_size=nd)))
    pads = (same_pads(shape, window, strides) if padding == "SAME"
            else [(0, 0)] * nd if padding == "VALID" else [tuple(p) for p in padding])
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return distinct_values(rng, shape), window, strides, padding, pads


@VALUES
@given(window_configs())
def test_max_sum_min_match_the_definition(config):
    x, window, strides, padding, pads = config
    for computation, reducer, fill, init in ((fnp.maximum, np.max, -np.inf, -np.inf),
                                             ("sum", np.sum, 0.0, 0.0),
                                             (fnp.minimum, np.min, np.inf, np.inf)):
        got = reduce_window(x, init, computation, window, strides, padding)
        want = reference_reduce(x, reducer, fill, window, strides, pads)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@GRADS
@given(window_configs(max_ndim=2))
def test_derivatives_to_second_order(config):
    x, window, strides, padding, _ = config
    for computation in ("max", "sum", "min"):
        init = {"max": -np.inf, "sum": 0.0, "min": np.inf}[computation]
        f = lambda x: reduce_window(x, init, computation, window, strides, padding)
        if 0 in f(x).shape:
            continue
        check_grads(f, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("padding", ["VALID", "SAME", [(1, 0), (2, 1)]])
@pytest.mark.parametrize("window,strides", [((2, 2), None), ((3, 2), (1, 2)), ((2, 3), (2, 1))])
def test_pooling_matches_the_definition_and_differentiates(padding, window, strides):
    rng = np.random.default_rng(1)
    x = distinct_values(rng, (2, 5, 6, 3))
    s = window if strides is None else strides
    pads = ([(0, 0)] + (same_pads(x.shape[1:3], window, s) if padding == "SAME" else
                        [(0, 0)] * 2 if padding == "VALID" else list(padding)) + [(0, 0)])
    full_w, full_s = (1,) + window + (1,), (1,) + s + (1,)
    np.testing.assert_allclose(max_pool(x, window, strides, padding),
                               reference_reduce(x, np.max, -np.inf, full_w, full_s, pads))
    sums = reference_reduce(x, np.sum, 0.0, full_w, full_s, pads)
    counts = reference_reduce(np.ones_like(x), np.sum, 0.0, full_w, full_s, pads)
    np.testing.assert_allclose(avg_pool(x, window, strides, padding), sums / np.prod(window),
                               atol=1e-14)
    np.testing.assert_allclose(avg_pool(x, window, strides, padding, count_include_pad=False),
                               sums / np.maximum(counts, 1), atol=1e-14)
    check_grads(lambda x: max_pool(x, window, strides, padding), (x,), order=2)
    check_grads(lambda x: avg_pool(x, window, strides, padding, count_include_pad=False),
                (x,), order=2)


def test_tie_rule_first_maximum_in_row_major_window_order():
    x = np.array([[1.0, 3.0, 3.0, 0.0],
                  [3.0, 2.0, 3.0, 3.0]]).reshape(1, 2, 4, 1)
    g = fn.grad(lambda x: fnp.sum(max_pool(x, (2, 2))))(x)[0, :, :, 0]
    np.testing.assert_array_equal(g, [[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # forward mode routes the tangent the same way
    t = np.arange(8.0).reshape(x.shape)
    _, dt = fn.jvp(lambda x: max_pool(x, (2, 2)), (x,), (t,))
    np.testing.assert_array_equal(dt[0, :, :, 0], [[1.0, 2.0]])
    # overlapping windows each choose their own first maximum
    ones = np.ones((1, 3, 1))
    g = fn.grad(lambda x: fnp.sum(max_pool(x, 2, strides=1)))(ones)
    np.testing.assert_array_equal(g[0, :, 0], [1.0, 1.0, 0.0])


@pytest.mark.parametrize("computation,kind", [
    (fnp.maximum, "max"), (np.maximum, "max"), (max, "max"), ("max", "max"),
    (fnp.add, "sum"), (operator.add, "sum"), (np.add, "sum"), ("sum", "sum"), ("add", "sum"),
    (fnp.minimum, "min"), (min, "min"), ("min", "min"),
])
def test_computations_are_recognised(computation, kind):
    x = np.array([[1.0, -2.0, 5.0], [0.5, 4.0, -1.0]])
    reducer, fill, init = {"max": (np.max, -np.inf, -np.inf), "sum": (np.sum, 0.0, 0.0),
                           "min": (np.min, np.inf, np.inf)}[kind]
    got = reduce_window(x, init, computation, (2, 2), (1, 1), "SAME")
    want = reference_reduce(x, reducer, fill, (2, 2), (1, 1), same_pads(x.shape, (2, 2),
                                                                       (1, 1)))
    np.testing.assert_allclose(got, want)


def test_init_values_that_are_not_the_identity_start_and_pad_every_window():
    x = np.array([1.0, -2.0, 5.0, 0.5])
    pads = [(1, 1)]
    np.testing.assert_allclose(reduce_window(x, 2.0, "sum", (3,), (1,), pads),
                               reference_reduce(x, np.sum, 2.0, (3,), (1,), pads) + 2.0)
    np.testing.assert_allclose(reduce_window(x, 0.0, "max", (2,), (2,)), [1.0, 5.0])
    np.testing.assert_allclose(reduce_window(x, 0.0, "min", (2,), (1,)), [-2.0, -2.0, 0.0])
    g = fn.grad(lambda x: fnp.sum(reduce_window(x, 0.0, "max", (2,), (2,))))(x)
    np.testing.assert_allclose(g, [1.0, 0.0, 1.0, 0.0])


def test_errors():
    with pytest.raises(ValueError, match="computation"):
        reduce_window(np.ones(3), 1.0, fnp.multiply, (2,), (1,))
    with pytest.raises(ValueError, match="window_dimensions"):
        reduce_window(np.ones((3, 3)), 0.0, "sum", (2,), (1,))
    with pytest.raises(ValueError, match="non-negative"):
        reduce_window(np.ones(3), 0.0, "sum", (2,), (1,), [(-1, 0)])
    with pytest.raises(ValueError, match="spatial"):
        max_pool(np.ones(3), 2)


def test_dtypes_and_large_windows():
    xi = np.arange(12, dtype=np.int32).reshape(1, 3, 4, 1)
    assert max_pool(xi, 2).dtype == np.int32
    np.testing.assert_array_equal(max_pool(xi, (3, 4))[0, :, :, 0], [[11]])
    assert avg_pool(xi, 2).dtype == fn.config.default_float
    x32 = np.ones((2, 9, 9, 3), np.float32)
    assert avg_pool(x32, 3).dtype == np.float32
    # global pooling: one window covering every position
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 9, 3))
    np.testing.assert_allclose(max_pool(x, (7, 9))[:, 0, 0], x.max(axis=(1, 2)))
    np.testing.assert_allclose(avg_pool(x, (7, 9))[:, 0, 0], x.mean(axis=(1, 2)))
    g = fn.grad(lambda x: fnp.sum(max_pool(x, (7, 9))))(x)
    np.testing.assert_array_equal(g.sum(axis=(1, 2)), np.ones((2, 3)))


def test_empty_windows():
    x = np.ones((1, 2, 2, 1))
    assert max_pool(x, 3).shape == (1, 0, 0, 1)
    g = fn.grad(lambda x: fnp.sum(max_pool(x, 3)) + fnp.sum(avg_pool(x, 3)))(x)
    np.testing.assert_array_equal(g, np.zeros_like(x))


# ---------------------------------------------------------------------------
# Transforms


POOLS = [
    ("max_pool", lambda x: max_pool(x, (2, 3), (1, 2), "SAME")),
    ("avg_pool", lambda x: avg_pool(x, (3, 2), (2, 1), [(1, 0), (0, 1)],
                                    count_include_pad=False)),
    ("reduce_window", lambda x: reduce_window(x, -np.inf, "max", (1, 2, 2, 2), (1, 1, 2, 1))),
]


@pytest.mark.parametrize("name,f", POOLS)
@pytest.mark.parametrize("axis", [0, 2, 4])
def test_vmap_matches_a_loop(name, f, axis):
    rng = np.random.default_rng(3)
    xs = distinct_values(rng, (3, 2, 5, 4, 2))
    batched = np.moveaxis(xs, 0, axis)
    np.testing.assert_allclose(fn.vmap(f, in_axes=axis)(batched), np.stack([f(x) for x in xs]))
    loss = lambda x: fnp.sum(fnp.sin(f(x)))
    got = fn.vmap(fn.grad(loss), in_axes=axis)(batched)
    np.testing.assert_allclose(got, np.stack([fn.grad(loss)(x) for x in xs]), rtol=1e-12)


def test_vmap_of_tangents_and_cotangents_alone():
    """Batching select_and_gather_add / select_and_scatter_add with only the tangent
    (or cotangent) batched, and with only the operand batched."""
    rng = np.random.default_rng(4)
    x = distinct_values(rng, (1, 4, 5, 2))
    f = lambda x: max_pool(x, (2, 2), (1, 2), "SAME")
    ts = rng.normal(size=(3,) + x.shape)
    got = fn.vmap(lambda t: fn.jvp(f, (x,), (t,))[1])(ts)
    np.testing.assert_allclose(got, np.stack([fn.jvp(f, (x,), (t,))[1] for t in ts]))
    y, vjp = fn.vjp(f, x)
    cts = rng.normal(size=(3,) + y.shape)
    got = fn.vmap(lambda c: vjp(c)[0])(cts)
    np.testing.assert_allclose(got, np.stack([vjp(c)[0] for c in cts]))
    xs = distinct_values(rng, (3,) + x.shape)
    t = rng.normal(size=x.shape)
    got = fn.vmap(lambda x: fn.jvp(f, (x,), (t,))[1])(xs)
    np.testing.assert_allclose(got, np.stack([fn.jvp(f, (v,), (t,))[1] for v in xs]))
    np.testing.assert_allclose(fn.jacfwd(f)(x), fn.jacrev(f)(x))


@pytest.mark.parametrize("name,f", POOLS)
def test_jit_equals_eager(name, f):
    rng = np.random.default_rng(5)
    x = distinct_values(rng, (2, 5, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(fn.jit(f)(x), f(x), rtol=1e-6)
    loss = lambda x: fnp.sum(f(x) ** 2)
    np.testing.assert_allclose(fn.jit(fn.grad(loss))(x), fn.grad(loss)(x), rtol=1e-6)
    np.testing.assert_allclose(fn.grad(fn.jit(loss))(x), fn.grad(loss)(x), rtol=1e-6)
