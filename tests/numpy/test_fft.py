"""``fnp.fft`` and the complex-number primitives against NumPy: values, dtypes,
the transpose rules (inner-product identity with complex cotangents) and
``check_grads`` of real -> complex -> real pipelines in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optable import FEW, GRADS, VALUES, assert_like_numpy, assert_traced_matches_eager, grads_ok

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.numpy import fft as F
from funcnet.ops import fft as fft_ops

NORMS = [None, "backward", "ortho", "forward"]
TRANSFORMS = {"fft": (F.fft, np.fft.fft), "ifft": (F.ifft, np.fft.ifft),
              "rfft": (F.rfft, np.fft.rfft), "irfft": (F.irfft, np.fft.irfft)}
REAL_INPUT = {"rfft"}


@st.composite
def signals(draw, dtype, min_side=1):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=6))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    return x.astype(dtype)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) in (np.float32, np.complex64) \
        else dict(rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------
# Values and dtypes against NumPy


@pytest.mark.parametrize("name", list(TRANSFORMS))
@given(data=st.data())
@VALUES
def test_transforms_match_numpy(name, data):
    ours, ref = TRANSFORMS[name]
    dtypes = [np.float32, np.float64] + ([] if name in REAL_INPUT else
                                         [np.complex64, np.complex128])
    dtype = data.draw(st.sampled_from(dtypes))
    x = data.draw(signals(dtype, min_side=2 if name == "irfft" else 1))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = data.draw(st.sampled_from([None, 1, 2, 3, 5, 8]))
    if name == "irfft" and n is None and x.shape[axis] < 2:
        n = 2
    norm = data.draw(st.sampled_from(NORMS))
    got = ours(x, n=n, axis=axis, norm=norm)
    want = ref(x, n=n, axis=axis, norm=norm)
    assert type(got) is np.ndarray
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_integer_input_transforms_in_float64(name):
    ours, ref = TRANSFORMS[name]
    x = np.arange(6)
    got, want = ours(x), ref(x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_float16_input_is_computed_in_single_precision():
    x = np.arange(4, dtype=np.float16)
    assert F.rfft(x).dtype == np.fft.rfft(x).dtype == np.complex64
    assert F.fft(x).dtype == np.complex64


def test_round_trips():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7))
    np.testing.assert_allclose(F.irfft(F.rfft(x), n=7), x, atol=1e-12)
    np.testing.assert_allclose(F.ifft(F.fft(x, axis=0), axis=0).real, x, atol=1e-12)
    np.testing.assert_allclose(F.irfft(F.rfft(x, norm="ortho"), 7, norm="ortho"), x, atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="invalid number of data points"):
        F.fft(np.ones(4), n=0)
    with pytest.raises(ValueError, match="invalid number of data points"):
        F.irfft(np.ones(1, np.complex128))
    with pytest.raises(TypeError, match="real input"):
        F.rfft(np.ones(4, np.complex64))
    with pytest.raises(ValueError, match="norm"):
        F.fft(np.ones(4), norm="backwards")
    with pytest.raises(ValueError, match="at least one axis"):
        F.fft(np.float64(1.0))
    with pytest.raises(ValueError, match="out of bounds"):
        F.fft(np.ones(4), axis=1)
    with pytest.raises(TypeError, match="n must be an integer"):
        F.fft(np.ones(4), n=2.5)


def test_fftfreq():
    assert_like_numpy(F.fftfreq(5, 0.1, dtype=np.float64), np.fft.fftfreq(5, 0.1))
    assert_like_numpy(F.rfftfreq(6, 0.5, dtype=np.float64), np.fft.rfftfreq(6, 0.5))
    assert F.fftfreq(4).dtype == np.float32


@given(x=signals(np.complex128))
@FEW
def test_traced_matches_eager(x):
    assert_traced_matches_eager(lambda x: F.fft(x, axis=0), x)
    assert_traced_matches_eager(lambda x: F.ifft(x, n=3, norm="ortho"), x)
    assert_traced_matches_eager(lambda x: F.rfft(F.real(x), n=4), x)
    assert_traced_matches_eager(lambda x: F.irfft(x, n=5, axis=0, norm="forward"), x)
    assert_traced_matches_eager(lambda x: (F.real(x), F.imag(x), F.conj(x), fnp.abs(x)), x)


# ---------------------------------------------------------------------------
# Transpose rules: <ct, J v> == <J^T ct, v> with JAX's pairing Re(sum(a * b))


def _pair(a, b):
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("norm", NORMS)
def test_inner_product_identity(name, n, norm):
    rng = np.random.default_rng(n)
    ours, ref = TRANSFORMS[name]
    n_in = n // 2 + 1 if name == "irfft" else n
    x = rng.normal(size=(2, n_in))
    if name not in REAL_INPUT:
        x = x + 1j * rng.normal(size=x.shape)
    v = rng.normal(size=x.shape) + (1j * rng.normal(size=x.shape) if name not in REAL_INPUT
                                    else 0)
    f = lambda x: ours(x, n=n, norm=norm)
    out, f_vjp = fn.vjp(f, x)
    ct = rng.normal(size=out.shape)
    if out.dtype.kind == "c":
        ct = ct + 1j * rng.normal(size=out.shape)
    (x_bar,) = f_vjp(ct)
    assert x_bar.dtype == x.dtype
    _, jv = fn.jvp(f, (x,), (v,))
    np.testing.assert_allclose(jv, ref(v, n=n, norm=norm), rtol=1e-10, atol=1e-12)
    assert _pair(ct, jv) == pytest.approx(_pair(x_bar, v), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("prim_fn, dtype", [(fft_ops.real, np.complex128),
                                            (fft_ops.imag, np.complex128),
                                            (fft_ops.conj, np.complex128)])
def test_complex_part_transposes(prim_fn, dtype):
    rng = np.random.default_rng(0)
    z = (rng.normal(size=3) + 1j * rng.normal(size=3)).astype(dtype)
    v = rng.normal(size=3) + 1j * rng.normal(size=3)
    out, f_vjp = fn.vjp(prim_fn, z)
    ct = rng.normal(size=3) + (1j * rng.normal(size=3) if out.dtype.kind == "c" else 0)
    (z_bar,) = f_vjp(ct)
    assert _pair(ct, prim_fn(v)) == pytest.approx(_pair(z_bar, v), rel=1e-12)


def test_complex_from_parts_transpose():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3))
    vx, vy = rng.normal(size=(2, 3))
    _, f_vjp = fn.vjp(F.complex_from_parts, x, y)
    ct = rng.normal(size=3) + 1j * rng.normal(size=3)
    x_bar, y_bar = f_vjp(ct)
    assert _pair(ct, vx + 1j * vy) == pytest.approx(_pair(x_bar, vx) + _pair(y_bar, vy))


# ---------------------------------------------------------------------------
# Gradients of real -> complex -> real pipelines (check_grads, float64, order 2)


PIPELINES = {
    "power_spectrum": lambda x: fnp.sum(F.real(F.rfft(x) * F.conj(F.rfft(x))), axis=-1),
    "rfft_round_trip": lambda x: F.irfft(F.rfft(x), n=x.shape[-1]),
    "rfft_parts": lambda x: F.real(F.rfft(x, norm="ortho")) * 1.5 - F.imag(F.rfft(x)) ** 2,
    "fft_of_real": lambda x: F.imag(F.fft(x, axis=0)) + F.real(F.fft(x * x, norm="forward")),
    "ifft_of_parts": lambda x: F.real(F.ifft(F.complex_from_parts(x, fnp.sin(x)), n=5)),
    # |z| has a kink at 0: keep the spectrum away from it (|fft(x)| <= 12 here)
    "magnitude": lambda x: fnp.abs(F.fft(x, n=6) + 20.0),
    "conj_product": lambda x: F.real(F.fft(x) * F.conj(F.fft(x[::-1]))),
}


@pytest.mark.parametrize("name", list(PIPELINES))
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6)),
                    elements=st.floats(0.25, 2.0)))
@GRADS
def test_pipeline_grads(name, x):
    grads_ok(PIPELINES[name], (x,))


@pytest.mark.parametrize("n", [1, 2, 5, 6])
@pytest.mark.parametrize("norm", NORMS)
def test_irfft_of_parts_grads(n, norm):
    rng = np.random.default_rng(n)
    m = n // 2 + 1
    re, im = rng.normal(size=(2, 2, m))
    grads_ok(lambda re, im: F.irfft(F.complex_from_parts(re, im), n=n, norm=norm), (re, im))


@pytest.mark.parametrize("n", [3, 8, 12])
def test_resizing_grads(n):
    x = np.random.default_rng(0).normal(size=(4, 6))
    grads_ok(lambda x: F.real(F.rfft(x, n=n, axis=0)), (x,))
    grads_ok(lambda x: F.irfft(F.rfft(x), n=n), (x,))


def test_abs_squared_spectrum_grads():
    # |z| ** 2 through abs: smooth except where a frequency is exactly 0 (abs has a kink
    # there, and its derivative is taken as 0, as in JAX), which random data avoids.
    x = np.random.default_rng(1).normal(size=(3, 8))
    grads_ok(lambda x: fnp.sum(fnp.abs(F.rfft(x)) ** 2, axis=-1), (x,))
    grads_ok(lambda x: fnp.abs(F.rfft(x, norm="ortho")), (x,))


def test_power_spectrum_gradient_formula():
    # d/dx sum |rfft(x)|^2 over the full spectrum is 2 n x (Parseval); check it.
    x = np.random.default_rng(2).normal(size=8)
    g = fn.grad(lambda x: fnp.sum(fnp.abs(F.fft(x)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * 8 * x, rtol=1e-12)


# ---------------------------------------------------------------------------
# Complex parts and complex abs


def _same(actual, expected):
    expected = np.asarray(expected)
    assert type(actual) is np.ndarray
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def test_complex_parts_values():
    z = np.array([1 + 2j, -3 - 0.5j], np.complex64)
    _same(F.real(z), np.real(z))
    _same(F.imag(z), np.imag(z))
    _same(F.conj(z), np.conj(z))
    _same(F.conjugate(z), np.conjugate(z))
    x = np.array([1.0, 2.0])
    assert F.real(x) is x and F.conj(x) is x
    assert_like_numpy(F.imag(x), np.imag(x))
    _same(F.complex_from_parts(np.float32(1), np.array([2.0], np.float32)),
          np.array([1 + 2j], np.complex64))
    with pytest.raises(TypeError, match="real arrays"):
        F.complex_from_parts(z, z)


def test_complex_abs_dtype_value_and_gradient():
    z = np.array([3 + 4j, 0j, -1 + 1j], np.complex64)
    out = fnp.abs(z)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.abs(z))
    assert fn.make_graph(fnp.abs)(z).out_avals[0].dtype == np.float32
    # JAX's convention: grad of a real function of z is conj(df/dx + i df/dy)
    g = fn.grad(lambda z: fnp.sum(fnp.abs(z)))(z.astype(np.complex128))
    np.testing.assert_allclose(g, [0.6 - 0.8j, 0, -np.sqrt(0.5) - np.sqrt(0.5) * 1j])
    g2 = fn.grad(lambda z: fnp.sum(fnp.abs(z) ** 2))(z.astype(np.complex128))
    np.testing.assert_allclose(g2, 2 * np.conj(z))


def test_abs_of_complex_made_from_reals_grads():
    x = np.array([0.5, -1.5, 2.0])
    grads_ok(lambda x: fnp.abs(F.complex_from_parts(x, x * x + 0.5)), (x,))
    grads_ok(lambda x: fnp.abs(x * (1 + 2j)), (x,), order=1)


# ---------------------------------------------------------------------------
# Batching rules (called directly)


@pytest.mark.parametrize("fft_type", fft_ops.FFT_TYPES)
@pytest.mark.parametrize("bdim", [0, 1, 2])
def test_fft_batch_rule(fft_type, bdim):
    rng = np.random.default_rng(0)
    n = 6
    n_in = n // 2 + 1 if fft_type == "irfft" else n
    base = rng.normal(size=(4, 3, n_in))
    if fft_type != "rfft":
        base = base + 1j * rng.normal(size=base.shape)
    x = np.moveaxis(base, 0, bdim)
    out, out_dim = fft_ops.fft_p.batch([x], [bdim], fft_type=fft_type, n=n)
    want = np.stack([fft_ops.fft(base[i], fft_type, n) for i in range(4)])
    np.testing.assert_allclose(np.moveaxis(out, out_dim, 0), want, rtol=1e-12, atol=1e-12)


def test_complex_batch_rule():
    x = np.arange(6.0).reshape(2, 3)  # batched along axis 1 (size 3)
    y = np.array([10.0, 20.0, 30.0])  # batched along axis 0, unbatched rank 0
    out, d = fft_ops.complex_p.batch([x, y], [1, 0])
    want = np.stack([fft_ops.complex_(x[:, i], y[i]) for i in range(3)])
    np.testing.assert_allclose(np.moveaxis(out, d, 0), want)
    out, d = fft_ops.complex_p.batch([x, 1.0], [1, None])
    np.testing.assert_allclose(np.moveaxis(out, d, 0), x.T + 1j)


# ---------------------------------------------------------------------------
# vmap and jit


COMPOSE = {
    "fft": lambda x: F.fft(x, n=6),
    "ifft_axis0": lambda x: F.ifft(x, axis=0, norm="ortho"),
    "rfft": lambda x: F.rfft(F.real(x)),
    "irfft": lambda x: F.irfft(x, n=7),
    "parts": lambda x: (F.real(x), F.imag(x), F.conj(x), fnp.abs(x)),
    "grad_power": fn.grad(lambda x: fnp.sum(fnp.abs(F.rfft(x)) ** 2)),
}


@pytest.mark.parametrize("name", list(COMPOSE))
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_vmap_and_jit_match_the_loop(name, axis):
    f = COMPOSE[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5))
    if name != "grad_power":
        x = x + 1j * rng.normal(size=x.shape)
    want = fn.tree.map(lambda *xs: np.stack(xs), *[f(e) for e in x])
    got = fn.vmap(f, in_axes=axis)(np.moveaxis(x, 0, axis))
    fn.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), got, want)
    fn.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                fn.jit(f)(x[0]), f(x[0]))
