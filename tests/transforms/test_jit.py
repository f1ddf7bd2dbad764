"""jit: equals eager, caching and retracing, statics, donation, passes, compositions."""

import logging

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax

rng = np.random.default_rng(0)


def mlp(params, x):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    return fnp.sum((h @ params["w2"]) ** 2)


PARAMS = {"w1": rng.standard_normal((4, 5)), "b1": rng.standard_normal(5),
          "w2": rng.standard_normal((5, 2))}
X = rng.standard_normal((3, 4))


def test_jit_equals_eager_and_keeps_dtypes():
    f = fn.jit(mlp)
    assert np.isclose(f(PARAMS, X), mlp(PARAMS, X))
    out = fn.jit(lambda x: x * 2.0)(np.ones(3, np.float32))
    assert out.dtype == np.float32 and isinstance(out, np.ndarray)
    out = fn.jit(lambda x: fnp.sum(x))(np.ones(3))
    assert isinstance(out, np.ndarray) and out.shape == ()


def test_no_retrace_for_same_signature_and_explained_retrace(caplog, monkeypatch):
    f = fn.jit(mlp)
    f(PARAMS, X)
    f({k: v + 1 for k, v in PARAMS.items()}, X * 2)
    assert f.trace_count == 1
    info = f.cache_info()
    assert info.hits == 1 and info.misses == 1 and info.currsize == 1
    monkeypatch.setenv("FUNCNET_EXPLAIN_RETRACE", "1")
    with caplog.at_level(logging.WARNING, logger="funcnet.jit"):
        f(PARAMS, X[:2])
    assert f.trace_count == 2
    assert "argument 1: shape (3, 4) -> (2, 4)" in caplog.text
    with caplog.at_level(logging.WARNING, logger="funcnet.jit"):
        f(PARAMS, X.astype(np.float32))
    assert "dtype float64 -> float32" in caplog.text
    with caplog.at_level(logging.WARNING, logger="funcnet.jit"):
        f({**PARAMS, "b1": PARAMS["b1"][None, :]}, X)
    assert "argument 0['b1']" in caplog.text


def test_weak_types_are_part_of_the_signature():
    f = fn.jit(lambda x: x * 2)
    f(3.0)
    f(np.float32(3.0))
    assert f.trace_count == 2


def test_static_argnums_and_argnames():
    f = fn.jit(lambda x, n, mode="a": x * n if mode == "a" else -x, static_argnums=1,
               static_argnames="mode")
    np.testing.assert_allclose(f(np.ones(2), 3), 3 * np.ones(2))
    np.testing.assert_allclose(f(np.ones(2), 3, mode="b"), -np.ones(2))
    f(np.ones(2), 3)
    assert f.trace_count == 2
    with pytest.raises(TypeError, match="static argument 1 .* unhashable .* list"):
        f(np.ones(2), [3])


def test_python_branch_on_traced_value_explains_fix():
    f = fn.jit(lambda x: x if x > 0 else -x)
    with pytest.raises(fn.errors.ConcretizationError, match="lax.cond"):
        f(1.0)


def test_bounded_lru_cache():
    f = fn.jit(lambda x: x + 1, maxsize=2)
    for n in range(1, 5):
        f(np.ones(n))
    assert f.cache_info().currsize == 2
    f(np.ones(4))
    assert f.trace_count == 4


def test_donate_argnums_reuses_input_buffer():
    f = fn.jit(lambda x: fnp.exp(x) * 2.0 + 1.0, donate_argnums=0)
    x = np.ones(1000)
    expected = np.exp(1.0) * 2 + 1
    out = f(x)
    np.testing.assert_allclose(out, expected)
    assert "out=a0" in f.compiled_source(np.ones(1000))


def test_passes_cse_dce_constant_folding():
    c = np.arange(3.0)
    g = fn.jit(lambda x: fnp.sin(x) + fnp.sin(x) + fnp.exp(c) * 2.0 + 0 * fnp.cos(x)).lower(
        np.ones(3))
    names = [e.prim.name for e in g.eqns]
    assert names.count("sin") == 1  # CSE
    assert "exp" not in names  # folded: depends only on a constant
    src = str(g)
    assert "sin" in src and "lambda" in src


def test_intermediates_freed_and_buffers_reused():
    f = fn.jit(lambda x: fnp.tanh(fnp.exp(x) * 2.0 + 1.0))
    src = f.compiled_source(np.ones(10))
    assert "del " in src and "out=" in src


def test_large_trace_warns_about_unrolled_loops(monkeypatch):
    from funcnet.transforms import jit as jit_mod

    monkeypatch.setattr(jit_mod, "LARGE_TRACE", 50)

    def unrolled(x):
        for _ in range(60):
            x = fnp.sin(x)
        return x

    with pytest.warns(UserWarning, match="lax.scan"):
        fn.jit(unrolled)(np.ones(2))


def test_compositions_with_jit():
    g = fn.grad(mlp)(PARAMS, X)
    for got in (fn.jit(fn.grad(mlp))(PARAMS, X), fn.grad(fn.jit(mlp))(PARAMS, X),
                fn.jit(fn.grad(fn.jit(mlp)))(PARAMS, X)):
        for k in g:
            np.testing.assert_allclose(got[k], g[k], rtol=1e-12)
    per = fn.jit(fn.vmap(fn.grad(mlp), in_axes=(None, 0)))(PARAMS, X[:, None, :])
    for i in range(3):
        np.testing.assert_allclose(per["w1"][i], fn.grad(mlp)(PARAMS, X[i:i + 1])["w1"],
                                   rtol=1e-12)
    h = fn.jit(fn.hessian(lambda b: mlp({**PARAMS, "b1": b}, X)))(PARAMS["b1"])
    h2 = fn.hessian(lambda b: mlp({**PARAMS, "b1": b}, X))(PARAMS["b1"])
    np.testing.assert_allclose(h, h2, rtol=1e-10)
    scan_f = fn.jit(lambda x: lax.scan(lambda c, v: (c * v, c), 1.0, x)[0])
    assert np.isclose(scan_f(np.arange(1.0, 4.0)), 6.0)


def test_jit_closing_over_outer_tracer():
    def loss(w):
        return fn.jit(lambda x: fnp.sum(x * w))(np.ones(3))

    np.testing.assert_allclose(fn.grad(loss)(np.array([1.0, 2.0, 3.0])), np.ones(3))


def test_eval_shape_and_make_graph():
    out = fn.eval_shape(mlp, PARAMS, fn.ShapeDtypeStruct((7, 4), np.float32))
    assert out.shape == () and out.dtype == np.float64
    g = fn.make_graph(mlp)(PARAMS, X)
    from funcnet.core.graph import typecheck_graph

    typecheck_graph(g)
    assert "dot_general" in str(g)


def test_assert_traces():
    from funcnet.testing import assert_traces

    f = fn.jit(lambda x: x + 1)
    with assert_traces(f, 1):
        f(np.ones(2))
        f(np.ones(2) * 3)
    with pytest.raises(AssertionError, match="traced 1 time.*expected 0.*EXPLAIN_RETRACE"):
        with assert_traces(f, 0):
            f(np.ones(5))
