"""``lax.conv`` (``funcnet/ops/convolution.py``): values against a direct loop
reference, layouts, dtypes, derivatives (``check_grads`` to second order,
forward and reverse, float64), ``vmap`` against a loop and ``jit`` against eager."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.ops.convolution import conv, conv_general_dilated, conv_transpose
from funcnet.testing import check_grads

VALUES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRADS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# Reference: the definition, one output element at a time (tiny sizes only)


def same_pads(sizes, kernel, strides, lhs_dilation, rhs_dilation):
    """'SAME' padding from its definition: ceil(dilated input / stride) outputs."""
    pads = []
    for h, k, s, ld, rd in zip(sizes, kernel, strides, lhs_dilation, rhs_dilation):
        size, ke = (h - 1) * ld + 1, (k - 1) * rd + 1
        out = -(-size // s)
        total = max((out - 1) * s + ke - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def reference_conv(x, w, strides, padding, lhs_dilation, rhs_dilation, groups):
    """Channels-last convolution by its definition: out[n, j, o] = sum over taps k
    and group inputs i of x at dilated-padded position j*s + k*rd (when that position
    holds an input element) times w[k, i, o]."""
    n, *sp = x.shape[:-1]
    ns = len(sp)
    ksp = w.shape[:ns]
    i_per, o = w.shape[-2:]
    o_per = o // groups
    out_sp = []
    for h, k, s, (lo, hi), ld, rd in zip(sp, ksp, strides, padding, lhs_dilation, rhs_dilation):
        size, ke = (h - 1) * ld + 1 + lo + hi, (k - 1) * rd + 1
        out_sp.append(0 if size < ke else (size - ke) // s + 1)
    out = np.zeros([n] + out_sp + [o], np.result_type(x, w))
    for b, j, oo in itertools.product(range(n), itertools.product(*map(range, out_sp)),
                                      range(o)):
        g = oo // o_per
        acc = 0.0
        for k in itertools.product(*map(range, ksp)):
            pos = []
            for d in range(ns):
                q = j[d] * strides[d] + k[d] * rhs_dilation[d] - padding[d][0]
                if q < 0 or q % lhs_dilation[d] or q // lhs_dilation[d] >= sp[d]:
                    break
                pos.append(q // lhs_dilation[d])
            else:
                for i in range(i_per):
                    acc += x[(b, *pos, g * i_per + i)] * w[(*k, i, oo)]
        out[(b, *j, oo)] = acc
    return out


@st.composite
def conv_configs(draw, max_spatial=2, max_size=5):
    """A random convolution: strides, dilations 1-2, SAME/VALID/explicit padding, 1-2 groups."""
    ns = draw(st.integers(1, max_spatial))
    ints = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ns))  # noqa: E731
    groups, i_per, o_per = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    sizes, kernel = ints(1, max_size), ints(1, 3)
    strides, lhs_dil, rhs_dil = ints(1, 2), ints(1, 2), ints(1, 2)
    padding = draw(st.one_of(
        st.sampled_from(["SAME", "VALID"]),
        st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 2)), min_size=ns, max_size=ns)))
    pads = (same_pads(sizes, kernel, strides, lhs_dil, rhs_dil) if padding == "SAME"
            else ((0, 0),) * ns if padding == "VALID" else tuple(padding))
    for h, k, (lo, hi), ld, rd in zip(sizes, kernel, pads, lhs_dil, rhs_dil):
        assume((h - 1) * ld + 1 + lo + hi >= (k - 1) * rd + 1)  # a non-empty output
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + sizes + (groups * i_per,))
    w = rng.normal(size=kernel + (i_per, groups * o_per))
    kwargs = dict(strides=strides, padding=padding, lhs_dilation=lhs_dil,
                  rhs_dilation=rhs_dil, feature_group_count=groups)
    return x, w, kwargs, pads


@VALUES
@given(conv_configs())
def test_matches_the_definition(config):
    x, w, kw, pads = config
    got = conv(x, w, **kw)
    want = reference_conv(x, w, kw["strides"], pads, kw["lhs_dilation"], kw["rhs_dilation"],
                          kw["feature_group_count"])
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@GRADS
@given(conv_configs(max_size=4))
def test_derivatives_to_second_order(config):
    x, w, kw, _ = config
    check_grads(lambda x, w: conv(x, w, **kw), (x, w), order=2, modes=("fwd", "rev"))


def test_derivatives_in_three_spatial_dimensions():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(1, 3, 4, 3, 2)), rng.normal(size=(2, 2, 2, 1, 4))
    f = lambda x, w: conv(x, w, strides=(1, 2, 1), padding="SAME", rhs_dilation=(1, 1, 2),
                          feature_group_count=2)
    check_grads(f, (x, w), order=2)


def test_depthwise_matches_per_channel_convolutions():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(2, 6, 7, 3)), rng.normal(size=(3, 3, 1, 6))  # multiplier 2
    got = conv(x, w, padding="SAME", feature_group_count=3)
    for c in range(3):
        per = conv(x[..., c:c + 1], w[..., 2 * c:2 * c + 2], padding="SAME")
        np.testing.assert_allclose(got[..., 2 * c:2 * c + 2], per, rtol=1e-12)


def test_matches_scipy_correlate():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(7, 9)), rng.normal(size=(3, 4))
    got = conv(x[None, :, :, None], w[:, :, None, None])[0, :, :, 0]
    np.testing.assert_allclose(got, signal.correlate2d(x, w, mode="valid"), rtol=1e-12)
    got = conv(x[None, :, :, None], w[:, :, None, None], padding=[(2, 2), (3, 3)])[0, :, :, 0]
    np.testing.assert_allclose(got, signal.correlate2d(x, w, mode="full"), rtol=1e-12)


# ---------------------------------------------------------------------------
# Layouts, shapes, dtypes


@pytest.mark.parametrize("specs", [("NCHW", "OIHW", "NCHW"), ("NHWC", "OIHW", "NCHW"),
                                   ("CHWN", "IOWH", "WNCH"), ("NWHC", "HWIO", "NHWC")])
def test_dimension_numbers_are_transposes_of_the_canonical_layout(specs):
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(2, 5, 6, 4)), rng.normal(size=(3, 2, 2, 6))  # NHWC, HWIO
    want = conv(x, w, strides=(2, 1), padding="SAME", feature_group_count=2)  # NHWC
    lhs, rhs, out = specs
    xt = np.transpose(x, ["NHWC".index(ch) for ch in lhs])
    wt = np.transpose(w, ["HWIO".index(ch) for ch in rhs])
    # spatial axes pair up by letter: a stride for H and one for W, in the kernel's order
    strides = tuple({"H": 2, "W": 1}[ch] for ch in rhs if ch in "HW")
    got = conv(xt, wt, strides=strides, padding="SAME", dimension_numbers=specs,
               feature_group_count=2)
    np.testing.assert_allclose(got, np.transpose(want, ["NHWC".index(ch) for ch in out]),
                               rtol=1e-12)


def test_default_layouts_follow_the_rank():
    rng = np.random.default_rng(7)
    x1, w1 = rng.normal(size=(2, 8, 3)), rng.normal(size=(3, 3, 5))
    assert conv(x1, w1).shape == (2, 6, 5)
    np.testing.assert_allclose(conv(x1, w1), conv(x1, w1, dimension_numbers=("NWC", "WIO",
                                                                             "NWC")))
    x3, w3 = rng.normal(size=(1, 4, 5, 6, 2)), rng.normal(size=(2, 2, 2, 2, 3))
    assert conv(x3, w3, padding="SAME").shape == (1, 4, 5, 6, 3)
    # conv_general_dilated keeps JAX's channels-first default
    xc = np.transpose(x1, (0, 2, 1))
    wc = np.transpose(w1, (2, 1, 0))
    np.testing.assert_allclose(conv_general_dilated(xc, wc, (1,), "VALID"),
                               np.transpose(conv(x1, w1), (0, 2, 1)))


@pytest.mark.parametrize("size,kernel,stride", [(5, 3, 1), (5, 3, 2), (6, 2, 2), (7, 4, 3),
                                                (1, 3, 2), (4, 1, 3)])
def test_same_padding_gives_ceil_of_size_over_stride(size, kernel, stride):
    x, w = np.ones((1, size, 1)), np.ones((kernel, 1, 1))
    assert conv(x, w, strides=stride, padding="same").shape == (1, -(-size // stride), 1)


def test_dtypes():
    x32, w32 = np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 1), np.float32)
    assert conv(x32, w32).dtype == np.float32
    assert conv(x32.astype(np.int32), w32).dtype == np.float64  # NumPy promotion
    assert conv(x32.astype(np.int64), w32.astype(np.int64)).dtype == np.int64
    assert conv(x32.astype(np.float16), w32).dtype == np.float32
    g = fn.grad(lambda w: fnp.sum(conv(x32, w)))(w32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.full(w32.shape, 4.0))


def test_accepts_nested_lists():
    out = conv([[[1.0], [2.0], [3.0]]], [[[1.0]], [[-1.0]]])
    np.testing.assert_allclose(out, [[[-1.0], [-1.0]]])


def test_degenerate_sizes():
    assert conv(np.ones((0, 5, 2)), np.ones((3, 2, 4))).shape == (0, 3, 4)
    assert conv(np.ones((2, 2, 2)), np.ones((3, 2, 4))).shape == (2, 0, 4)
    g = fn.grad(lambda x: fnp.sum(conv(x, np.ones((3, 2, 4)))))(np.ones((2, 2, 2)))
    np.testing.assert_array_equal(g, np.zeros((2, 2, 2)))


@pytest.mark.parametrize("call,match", [
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 2, 4))), "input features"),
    (lambda: conv(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 3)), feature_group_count=2),
     "divisible"),
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3))), "rank"),
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 4)), padding="FULL"), "padding"),
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 4)), padding=[(1, 1)]), "pairs"),
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 4)), strides=(1, 0)), "positive"),
    (lambda: conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 4)),
                  dimension_numbers=("NHWC", "HWIO", "NHWD")), "dimension_numbers"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------
# Transposed convolution


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("kernel,stride,dilation", [(3, 1, 1), (3, 2, 1), (4, 2, 1),
                                                     (2, 2, 1), (3, 2, 2), (5, 3, 1)])
def test_conv_transpose_is_the_gradient_of_conv(padding, kernel, stride, dilation):
    rng = np.random.default_rng(8)
    ke = (kernel - 1) * dilation + 1
    out_size = 3
    # an input size for which the strided conv uses every input element
    size = out_size * stride if padding == "SAME" else (out_size - 1) * stride + max(ke, stride)
    x = rng.normal(size=(2, size, size + stride, 3))
    w = rng.normal(size=(kernel, kernel, 3, 4))
    kw = dict(strides=(stride, stride), padding=padding, rhs_dilation=(dilation, dilation))
    y, vjp = fn.vjp(lambda x: conv(x, w, **kw), x)
    ct = rng.normal(size=y.shape)
    got = conv_transpose(ct, w, transpose_kernel=True, **kw)
    np.testing.assert_allclose(got, vjp(ct)[0], rtol=1e-10, atol=1e-12)


def test_conv_transpose_in_a_channels_first_layout():
    rng = np.random.default_rng(14)
    dn = ("NCHW", "OIHW", "NCHW")
    x, w = rng.normal(size=(2, 3, 6, 8)), rng.normal(size=(4, 3, 3, 2))
    y, vjp = fn.vjp(lambda x: conv(x, w, (2, 2), "SAME", dimension_numbers=dn), x)
    ct = rng.normal(size=y.shape)
    got = conv_transpose(ct, w, (2, 2), "SAME", dimension_numbers=dn, transpose_kernel=True)
    np.testing.assert_allclose(got, vjp(ct)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (1, 3), (5, 2)])
def test_conv_transpose_output_sizes(kernel, stride):
    x, w = np.ones((1, 4, 2)), np.ones((kernel, 2, 3))
    assert conv_transpose(x, w, stride, "SAME").shape == (1, 4 * stride, 3)
    assert conv_transpose(x, w, stride, "VALID").shape == (1, 4 * stride + max(kernel - stride,
                                                                               0), 3)


def test_conv_transpose_derivatives():
    rng = np.random.default_rng(9)
    x, w = rng.normal(size=(1, 3, 2, 2)), rng.normal(size=(3, 2, 2, 3))
    check_grads(lambda x, w: conv_transpose(x, w, (2, 1), "SAME"), (x, w), order=2)


# ---------------------------------------------------------------------------
# Transforms: vmap against a loop, jit against eager, compositions

GROUPS = [1, 2]


def _batched_case(rng, groups, batch=3):
    x = rng.normal(size=(batch, 2, 5, 4, 2 * groups))
    w = rng.normal(size=(batch, 3, 2, 2, 3 * groups))
    f = lambda x, w: conv(x, w, strides=(2, 1), padding="SAME", rhs_dilation=(1, 2),
                          feature_group_count=groups)
    return x, w, f


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("in_axes", [(0, 0), (0, None), (None, 0), (2, 4), (None, 1), (3, None)])
def test_vmap_matches_a_loop(groups, in_axes):
    rng = np.random.default_rng(10)
    x, w, f = _batched_case(rng, groups)
    ax, aw = in_axes
    xs = x if ax is None else np.moveaxis(x, 0, ax)
    ws = w if aw is None else np.moveaxis(w, 0, aw)
    got = fn.vmap(f, in_axes=in_axes)(xs[0] if ax is None else xs, ws[0] if aw is None else ws)
    want = np.stack([f(x[0] if ax is None else x[b], w[0] if aw is None else w[b])
                     for b in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", GROUPS)
def test_vmap_of_grad_and_grad_of_vmap(groups):
    rng = np.random.default_rng(11)
    x, w, f = _batched_case(rng, groups)
    loss = lambda x, w: fnp.sum(fnp.tanh(f(x, w)))
    got = fn.vmap(fn.grad(loss, argnums=(0, 1)))(x, w)
    for b in range(3):
        want = fn.grad(loss, argnums=(0, 1))(x[b], w[b])
        for g_, w_ in zip(got, want):
            np.testing.assert_allclose(g_[b], w_, rtol=1e-10)
    total = lambda w: fnp.sum(fn.vmap(loss, in_axes=(0, None))(x, w))
    want = sum(fn.grad(loss, argnums=1)(x[b], w[0]) for b in range(3))
    np.testing.assert_allclose(fn.grad(total)(w[0]), want, rtol=1e-10)


def test_vmap_of_jacobian_products():
    """jacfwd/jacrev batch the conv's linear rules (tangent or cotangent batched alone)."""
    rng = np.random.default_rng(12)
    x, w = rng.normal(size=(1, 4, 2)), rng.normal(size=(2, 2, 2))
    f = lambda x, w: conv(x, w, strides=2, padding="SAME")
    for argnum in (0, 1):
        fwd = fn.jacfwd(f, argnums=argnum)(x, w)
        rev = fn.jacrev(f, argnums=argnum)(x, w)
        np.testing.assert_allclose(fwd, rev, rtol=1e-12, atol=1e-12)


def test_jit_equals_eager_and_does_not_retrace():
    rng = np.random.default_rng(13)
    x, w = rng.normal(size=(2, 6, 6, 2)).astype(np.float32), rng.normal(size=(3, 3, 2, 4))
    w = w.astype(np.float32)

    def loss(w, x):
        y = conv(x, w, strides=(2, 2), padding="SAME", dimension_numbers=("NHWC", "HWIO",
                                                                          "NCHW"))
        return fnp.sum(y * y)

    jf = fn.jit(conv, static_argnames=("padding",))
    np.testing.assert_allclose(jf(x, w, padding="SAME"), conv(x, w, padding="SAME"),
                               rtol=1e-6)
    step = fn.jit(fn.value_and_grad(loss))
    v, g = step(w, x)
    v2, g2 = fn.value_and_grad(loss)(w, x)
    np.testing.assert_allclose(v, v2, rtol=1e-5)
    np.testing.assert_allclose(g, g2, rtol=1e-5)
    step(w + 1, x)
    assert step.trace_count == 1
    assert "conv_general_dilated" in str(fn.make_graph(loss)(w, x))
