"""``fnp.linalg`` against NumPy: values, dtypes, batching, errors and derivatives
(``check_grads`` to second order, forward and reverse, in float64)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optable import FEW, GRADS, VALUES, assert_like_numpy, assert_traced_matches_eager, grads_ok

import funcnet as fn
from funcnet.numpy import linalg as la
from funcnet.ops import linalg as la_ops

FLOATS = (np.float32, np.float64)
# float32 results of a 4x4 factorisation lose a few more digits than one ufunc
SCALE = {np.dtype(np.float32): 200.0, np.dtype(np.float64): 1e3}

# ---------------------------------------------------------------------------
# Strategies: well-conditioned matrices


def batch_shapes(max_dims=2):
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=3)


@st.composite
def general_matrices(draw, dtype=None, batch=None, n=None):
    """Strictly diagonally dominant matrices: entries in [-1, 1] plus (n + 1) I."""
    dtype = np.dtype(draw(st.sampled_from(FLOATS)) if dtype is None else dtype)
    batch = draw(batch_shapes()) if batch is None else batch
    n = draw(st.integers(1, 4)) if n is None else n
    m = draw(hnp.arrays(np.float64, batch + (n, n), elements=st.floats(-1, 1)))
    sign = draw(st.sampled_from([1.0, -1.0]))
    return (m + sign * (n + 1) * np.eye(n)).astype(dtype)


@st.composite
def spd_matrices(draw, dtype=None, batch=None, n=None):
    """Symmetric positive definite: B B^T + n I."""
    dtype = np.dtype(draw(st.sampled_from(FLOATS)) if dtype is None else dtype)
    batch = draw(batch_shapes()) if batch is None else batch
    n = draw(st.integers(1, 4)) if n is None else n
    b = draw(hnp.arrays(np.float64, batch + (n, n), elements=st.floats(-1, 1)))
    return (b @ np.swapaxes(b, -1, -2) + n * np.eye(n)).astype(dtype)


def rhs(draw, batch, n, k, dtype):
    return draw(hnp.arrays(np.float64, batch + (n, k), elements=st.floats(-2, 2))).astype(dtype)


def sym(m):
    """The symmetric part (the derivative of cholesky assumes symmetric perturbations)."""
    return (m + m.mT) / 2 if not isinstance(m, np.ndarray) else (m + np.swapaxes(m, -1, -2)) / 2


def scale(a):
    return SCALE[np.asarray(a).dtype]


# ---------------------------------------------------------------------------
# Values against NumPy


@given(a=general_matrices())
@VALUES
def test_det_matches_numpy(a):
    assert_like_numpy(la.det(a), np.linalg.det(a), scale(a))


@given(a=general_matrices())
@VALUES
def test_slogdet_matches_numpy(a):
    sign, logabsdet = la.slogdet(a)
    ref = np.linalg.slogdet(a)
    assert_like_numpy(sign, ref.sign)
    assert_like_numpy(logabsdet, ref.logabsdet, scale(a))
    res = la.slogdet(a)
    assert res.sign is res[0] and res.logabsdet is res[1]


@given(a=general_matrices())
@VALUES
def test_inv_matches_numpy(a):
    assert_like_numpy(la.inv(a), np.linalg.inv(a), scale(a))


@given(data=st.data())
@VALUES
def test_solve_matches_numpy(data):
    dtype = np.dtype(data.draw(st.sampled_from(FLOATS)))
    batch = data.draw(batch_shapes())
    n = data.draw(st.integers(1, 4))
    a = data.draw(general_matrices(dtype, batch, n))
    k = data.draw(st.integers(1, 3))
    b = rhs(data.draw, batch, n, k, dtype)
    assert_like_numpy(la.solve(a, b), np.linalg.solve(a, b), scale(a))
    # NumPy 2: a 1-d b is one vector; other b broadcast their leading axes with a's
    v = b[(0,) * len(batch) + (slice(None), 0)]
    assert_like_numpy(la.solve(a, v), np.linalg.solve(a, v), scale(a))
    b2 = b[(0,) * len(batch)]
    assert_like_numpy(la.solve(a, b2), np.linalg.solve(a, b2), scale(a))
    a2 = a[(0,) * len(batch)]
    assert_like_numpy(la.solve(a2, b), np.linalg.solve(a2, b), scale(a))


@given(a=spd_matrices())
@VALUES
def test_cholesky_matches_numpy(a):
    assert_like_numpy(la.cholesky(a), np.linalg.cholesky(a), scale(a))
    assert_like_numpy(la.cholesky(a, upper=True), np.swapaxes(np.linalg.cholesky(a), -1, -2),
                      scale(a))


def test_cholesky_reads_only_the_lower_triangle():
    a = np.array([[4.0, 99.0], [2.0, 5.0]])
    np.testing.assert_allclose(la.cholesky(a), [[2.0, 0.0], [1.0, 2.0]])


def test_complex_matrices():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(2, 3, 3)) + 1j * rng.normal(size=(2, 3, 3))
    a = m + 4 * np.eye(3)
    h = m @ np.conj(np.swapaxes(m, -1, -2)) + 3 * np.eye(3)
    b = rng.normal(size=(2, 3, 2)) + 1j * rng.normal(size=(2, 3, 2))
    for dtype in (np.complex64, np.complex128):
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.complex64 else dict(rtol=1e-10)
        ac, hc, bc = a.astype(dtype), h.astype(dtype), b.astype(dtype)
        np.testing.assert_allclose(la.det(ac), np.linalg.det(ac), **tol)
        np.testing.assert_allclose(la.inv(ac), np.linalg.inv(ac), **tol)
        np.testing.assert_allclose(la.solve(ac, bc), np.linalg.solve(ac, bc), **tol)
        np.testing.assert_allclose(la.cholesky(hc), np.linalg.cholesky(hc), **tol)
        sign, logabsdet = la.slogdet(ac)
        ref = np.linalg.slogdet(ac)
        assert logabsdet.dtype == ref.logabsdet.dtype
        np.testing.assert_allclose(sign, ref.sign, **tol)
        np.testing.assert_allclose(logabsdet, ref.logabsdet, **tol)


def test_integer_input_is_computed_in_float64():
    a = np.array([[2, 1], [1, 3]])
    assert la.det(a).dtype == np.float64
    assert la.inv(a).dtype == np.float64
    assert la.solve(a, np.array([1, 2])).dtype == np.float64
    assert la.norm(np.array([3, 4])).dtype == np.float64
    np.testing.assert_allclose(la.solve(a, np.array([1, 2])), np.linalg.solve(a, [1, 2]))


def test_float32_stays_float32():
    a = np.eye(3, dtype=np.float32) * 2
    for out in (la.det(a), la.inv(a), la.cholesky(a), la.solve(a, a), *la.slogdet(a),
                la.norm(a), la.norm(a, 1)):
        assert out.dtype == np.float32
    assert la.norm(np.ones(3, np.complex64)).dtype == np.float32


def test_eager_results_are_ndarrays():
    a = np.eye(2) * 2
    for out in (la.det(a), la.inv(a), *la.slogdet(a), la.norm(a)):
        assert type(out) is np.ndarray


# ---------------------------------------------------------------------------
# norm


VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1]
MATRIX_ORDS = [None, "fro", 1, -1, np.inf, -np.inf]


@given(data=st.data())
@VALUES
def test_vector_norms_match_numpy(data):
    dtype = np.dtype(data.draw(st.sampled_from(FLOATS + (np.complex64, np.complex128))))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    if dtype.kind == "c":
        x = x + 1j * x[..., ::-1]
    x = x.astype(dtype)
    ord_ = data.draw(st.sampled_from(VECTOR_ORDS))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    with np.errstate(divide="ignore"):
        ref = np.linalg.norm(x, ord_, axis, keepdims)
        got = la.norm(x, ord_, axis, keepdims)
    assert_like_numpy(got, ref, 10.0)
    if x.ndim == 1:
        with np.errstate(divide="ignore"):
            assert_like_numpy(la.norm(x, ord_), np.linalg.norm(x, ord_), 10.0)


@given(data=st.data())
@VALUES
def test_matrix_norms_match_numpy(data):
    dtype = np.dtype(data.draw(st.sampled_from(FLOATS)))
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    ord_ = data.draw(st.sampled_from(MATRIX_ORDS))
    axes = data.draw(st.permutations(range(x.ndim)))[:2]
    keepdims = data.draw(st.booleans())
    ref = np.linalg.norm(x, ord_, tuple(axes), keepdims)
    assert_like_numpy(la.norm(x, ord_, tuple(axes), keepdims), ref, 10.0)
    if x.ndim == 2:
        assert_like_numpy(la.norm(x, ord_), np.linalg.norm(x, ord_), 10.0)


@pytest.mark.parametrize("keepdims", [False, True])
def test_default_norm_flattens(keepdims):
    x = np.arange(24.0).reshape(2, 3, 4)
    assert_like_numpy(la.norm(x, keepdims=keepdims), np.linalg.norm(x, keepdims=keepdims))


def test_norm_gradient_at_zero_is_zero_not_nan():
    for x in (np.zeros(3), np.zeros((2, 2))):
        g = fn.grad(la.norm)(x)
        np.testing.assert_array_equal(g, np.zeros_like(x))
    g = fn.grad(lambda x: la.norm(x, axis=1).sum())(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(g, [[0.0, 0.0], [0.6, 0.8]])
    h = fn.hessian(la.norm)(np.zeros(2))
    assert np.all(np.isfinite(h))
    g = fn.grad(lambda x: la.norm(x, "fro"))(np.zeros((2, 3), np.float32))
    assert g.dtype == np.float32 and not np.any(np.isnan(g))


def test_norm_errors():
    with pytest.raises(NotImplementedError, match="SVD"):
        la.norm(np.eye(2), "nuc")
    with pytest.raises(NotImplementedError, match="SVD"):
        la.norm(np.eye(2), 2)
    with pytest.raises(ValueError, match="invalid norm order 'fro' for vectors"):
        la.norm(np.ones(3), "fro")
    with pytest.raises(ValueError, match="invalid norm order"):
        la.norm(np.eye(2), 3)
    with pytest.raises(ValueError, match="needs axis"):
        la.norm(np.ones((2, 2, 2)), 1)
    with pytest.raises(ValueError, match="1 or 2 axes"):
        la.norm(np.ones((2, 2, 2)), axis=(0, 1, 2))
    with pytest.raises(ValueError, match="duplicate"):
        la.norm(np.ones((2, 2)), axis=(1, -1))


# ---------------------------------------------------------------------------
# Errors


def test_non_square_errors_name_the_shape():
    for f in (la.det, la.inv, la.cholesky, la.slogdet):
        with pytest.raises(ValueError, match=r"\(2, 3\)"):
            f(np.ones((2, 3)))
        with pytest.raises(ValueError, match=r"square"):
            f(np.ones(3))


def test_solve_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2,\)"):
        la.solve(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 1\)"):
        la.solve(np.eye(3), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(4, 3, 1\)"):
        la.solve(np.ones((2, 3, 3)), np.ones((4, 3, 1)))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        la.solve(np.ones((3, 2)), np.ones(3))


def test_unsupported_dtype_and_singular_matrices():
    with pytest.raises(TypeError, match="float16"):
        la.det(np.eye(2, dtype=np.float16))
    with pytest.raises(la.LinAlgError):
        la.inv(np.zeros((2, 2)))
    with pytest.raises(la.LinAlgError):
        la.cholesky(-np.eye(2))
    assert float(la.det(np.zeros((2, 2)))) == 0.0


def test_primitive_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(2, 3, 1\)"):
        la_ops.solve(np.eye(2), np.ones((2, 3, 1)))
    with pytest.raises(TypeError, match="one dtype"):  # checked when traced
        fn.make_graph(la_ops.solve)(np.eye(2), np.ones((2, 1), np.float32))
    with pytest.raises(ValueError, match="square"):
        la_ops.triangular_solve(np.ones((2, 3)), np.ones((2, 1)))


# ---------------------------------------------------------------------------
# Tracing: abstract shapes/dtypes agree with the eager results


@given(a=general_matrices(), s=spd_matrices(n=3, batch=()))
@FEW
def test_traced_matches_eager(a, s):
    assert_traced_matches_eager(la.det, a)
    assert_traced_matches_eager(lambda a: tuple(la.slogdet(a)), a)
    assert_traced_matches_eager(la.inv, a)
    assert_traced_matches_eager(la.norm, a)
    assert_traced_matches_eager(lambda a: la.norm(a, 1, axis=(-1, -2), keepdims=True), a)
    assert_traced_matches_eager(lambda a: la.solve(a, a), a)
    assert_traced_matches_eager(la.cholesky, s)


# ---------------------------------------------------------------------------
# Derivatives (float64, forward and reverse, orders 1 and 2)


@given(a=general_matrices(np.float64, n=3))
@GRADS
def test_det_grads(a):
    grads_ok(la.det, (a,))


@given(a=general_matrices(np.float64, n=3))
@GRADS
def test_slogdet_grads(a):
    grads_ok(lambda a: la.slogdet(a).logabsdet, (a,))
    grads_ok(lambda a: la.slogdet(a).sign, (a,), order=1)


@given(a=general_matrices(np.float64, n=3))
@GRADS
def test_inv_grads(a):
    grads_ok(la.inv, (a,))


@given(data=st.data())
@GRADS
def test_solve_grads(data):
    batch = data.draw(batch_shapes(1))
    n = data.draw(st.integers(1, 3))
    a = data.draw(general_matrices(np.float64, batch, n))
    b = rhs(data.draw, batch, n, 2, np.float64)
    grads_ok(la.solve, (a, b))
    v = b[(0,) * len(batch) + (slice(None), 0)]
    grads_ok(la.solve, (a, v))


@given(s=spd_matrices(np.float64))
@GRADS
def test_cholesky_grads(s):
    grads_ok(lambda m: la.cholesky(sym(m)), (s,))
    grads_ok(lambda m: la.cholesky(sym(m), upper=True), (s,), order=1)


@pytest.mark.parametrize("ord_", [None, 1, np.inf, 3])
def test_vector_norm_grads(ord_):
    x = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])
    grads_ok(lambda x: la.norm(x, ord_, axis=-1), (x,))


@pytest.mark.parametrize("ord_", [None, "fro", 1, -1, np.inf, -np.inf])
def test_matrix_norm_grads(ord_):
    x = np.array([[0.5, -1.25, 2.0], [1.5, 0.35, -0.75]])
    grads_ok(lambda x: la.norm(x, ord_), (x,))


def test_gradient_formulas():
    a = np.array([[3.0, 1.0], [0.5, 2.0]])
    inv_t = np.linalg.inv(a).T
    np.testing.assert_allclose(fn.grad(la.det)(a), np.linalg.det(a) * inv_t)
    np.testing.assert_allclose(fn.grad(lambda a: la.slogdet(a)[1])(a), inv_t)
    np.testing.assert_allclose(fn.grad(lambda a: la.slogdet(a)[0])(a), np.zeros((2, 2)))


def test_complex_slogdet_jvp():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)) + 3 * np.eye(3)
    da = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    eps = 1e-6
    (_, _), (dsign, dlog) = fn.jvp(lambda a: tuple(la.slogdet(a)), (a,), (da,))
    up, down = np.linalg.slogdet(a + eps * da), np.linalg.slogdet(a - eps * da)
    np.testing.assert_allclose(dlog, (up.logabsdet - down.logabsdet) / (2 * eps), rtol=1e-6)
    np.testing.assert_allclose(dsign, (up.sign - down.sign) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_complex_cholesky_jvp():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    h = m @ m.conj().T + 3 * np.eye(3)
    dm = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    dh = dm + dm.conj().T
    eps = 1e-6
    _, dL = fn.jvp(la.cholesky, (h,), (dh,))
    fd = (np.linalg.cholesky(h + eps * dh) - np.linalg.cholesky(h - eps * dh)) / (2 * eps)
    np.testing.assert_allclose(dL, fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# triangular_solve (the primitive behind cholesky's derivative)


@given(data=st.data())
@FEW
def test_triangular_solve(data):
    batch = data.draw(batch_shapes(1))
    n = data.draw(st.integers(1, 3))
    a = data.draw(general_matrices(np.float64, batch, n))
    b = rhs(data.draw, batch, n, 2, np.float64)
    for lower in (True, False):
        for transpose_a in (False, True):
            t = np.tril(a) if lower else np.triu(a)
            t = np.swapaxes(t, -1, -2) if transpose_a else t
            got = la_ops.triangular_solve(a, b, lower, transpose_a)
            np.testing.assert_allclose(got, np.linalg.solve(t, b), rtol=1e-12, atol=1e-12)
            grads_ok(lambda a, b: la_ops.triangular_solve(a, b, lower, transpose_a), (a, b))


# ---------------------------------------------------------------------------
# Batching rules (called directly: each must equal the loop over the batch axis)


def _loop(f, args, dims, size):
    outs = []
    for i in range(size):
        outs.append(f(*[np.take(a, i, axis=d) if d is not None else a
                        for a, d in zip(args, dims)]))
    return outs


@pytest.mark.parametrize("dims", [(0, 0), (1, None), (None, 2), (2, 1)])
def test_solve_batch_rule(dims):
    rng = np.random.default_rng(0)
    base_a = rng.normal(size=(3, 3)) + 4 * np.eye(3)
    size = 4
    a = np.stack([base_a + 0.1 * i for i in range(size)], axis=dims[0]) if dims[0] is not None \
        else base_a
    b = rng.normal(size=(3, 2, size) if dims[1] == 2 else (3, 2))
    if dims[1] is not None and dims[1] != 2:
        b = np.moveaxis(rng.normal(size=(size, 3, 2)), 0, dims[1])
    for prim, f in ((la_ops.solve_p, la_ops.solve),
                    (la_ops.triangular_solve_p,
                     lambda a, b: la_ops.triangular_solve(a, b, True, False))):
        params = {} if prim is la_ops.solve_p else dict(lower=True, transpose_a=False)
        out, out_dim = prim.batch([a, b], list(dims), **params)
        want = np.stack(_loop(f, (a, b), dims, size))
        np.testing.assert_allclose(np.moveaxis(out, out_dim, 0), want, rtol=1e-12)


def test_unary_linalg_batch_rules():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 2, 3))
    a = m @ np.swapaxes(m, -1, -2) + np.eye(2)  # (3, 2, 2) SPD
    a = np.moveaxis(a, 0, 2)                    # batch axis 2
    for prim, f in ((la_ops.cholesky_p, np.linalg.cholesky), (la_ops.det_p, np.linalg.det)):
        out, out_dim = prim.batch([a], [2])
        want = np.stack(_loop(f, (a,), (2,), 3))
        np.testing.assert_allclose(np.moveaxis(out, out_dim, 0), want, rtol=1e-12)
    (sign, logabsdet), dims = la_ops.slogdet_p.batch([a], [2])
    want = np.linalg.slogdet(np.moveaxis(a, 2, 0))
    np.testing.assert_allclose(np.moveaxis(logabsdet, dims[1], 0), want.logabsdet)
    np.testing.assert_allclose(np.moveaxis(sign, dims[0], 0), want.sign)


# ---------------------------------------------------------------------------
# vmap and jit


def _tree_close(a, b, tol=1e-10):
    fn.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


COMPOSE = {
    "det": (la.det, "general"), "inv": (la.inv, "general"),
    "slogdet": (lambda a: tuple(la.slogdet(a)), "general"),
    "cholesky": (la.cholesky, "spd"), "norm": (la.norm, "general"),
    "norm_inf": (lambda a: la.norm(a, np.inf), "general"),
    "solve": (lambda a: la.solve(a, a[:, :1] * 2.0), "general"),
    "grad_det": (fn.grad(la.det), "general"),
    "grad_cholesky": (fn.grad(lambda m: la.cholesky(sym(m)).sum()), "spd"),
}


@pytest.mark.parametrize("name", list(COMPOSE))
@pytest.mark.parametrize("axis", [0, 2])
def test_vmap_and_jit_match_the_loop(name, axis):
    f, kind = COMPOSE[name]
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 3, 3))
    a = m + 4 * np.eye(3) if kind == "general" else m @ np.swapaxes(m, -1, -2) + np.eye(3)
    want = [f(x) for x in a]
    got = fn.vmap(f, in_axes=axis)(np.moveaxis(a, 0, axis))
    _tree_close(got, fn.tree.map(lambda *xs: np.stack(xs), *want))
    _tree_close(fn.jit(f)(a[0]), want[0])
