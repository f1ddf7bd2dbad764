"""The Numba backend: fused kernels against the NumPy backend, the vectorised math,
scans as one loop, caching and logging.

Every check compares with the NumPy backend (the specification): integer, bool and
random-bit results bit for bit, floats within the dtype's tolerance.  Kernels are
compiled once per machine (Numba's disk cache), so a second run is much faster.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax, random
from funcnet.backends import BackendUnavailable

numba = pytest.importorskip("numba", reason="the numba backend needs numba "
                                            '(pip install "funcnet[numba]")')

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "numpy"))
from optable import BINARY, SPECIAL_VALUES, UNARY, assert_like_numpy  # noqa: E402

from funcnet.backends import numba_backend, numba_fusion  # noqa: E402
from funcnet.ops.elementwise import logistic, shift_right_logical  # noqa: E402
from funcnet.transforms.jit import compiled_for  # noqa: E402

RNG = np.random.default_rng(0)


def both(f, *args):
    """``f(*args)`` eagerly on the NumPy backend and jitted on the Numba backend."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fn.use_backend("numpy"):
            ref = f(*args)
        with fn.use_backend("numba"):
            jf = fn.jit(f)
            got = jf(*args)
            source = jf.compiled_source(*args)
    return ref, got, source


def assert_same(ref, got, scale=1.0):
    r_leaves, g_leaves = fn.tree.leaves(ref), fn.tree.leaves(got)
    assert len(r_leaves) == len(g_leaves)
    for r, g in zip(r_leaves, g_leaves):
        assert_like_numpy(g, r, scale)


def n_kernels(source: str) -> int:
    return source.count("# --- fused kernel")


# ---------------------------------------------------------------------------
# Availability


def test_missing_numba_says_how_to_install(monkeypatch):
    from funcnet.backends.numba_backend import make_numba_backend

    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(BackendUnavailable, match=r'pip install "funcnet\[numba\]"'):
        make_numba_backend()


def test_eager_mode_is_numpy():
    with fn.use_backend("numba") as b:
        assert b.name == "numba" and "numba" in fn.backends.available()
        out = fnp.tanh(np.float32(0.5)) + fnp.ones(3)
    assert type(out) is np.ndarray and out.dtype == np.float32


# ---------------------------------------------------------------------------
# Every elementwise primitive, fused, per dtype


def _values(dtype, n=40):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.concatenate([RNG.uniform(-4, 4, n), SPECIAL_VALUES]).astype(dtype)
    if dtype.kind == "b":
        return RNG.integers(0, 2, n).astype(dtype)
    info = np.iinfo(dtype)
    v = RNG.integers(max(info.min, -200), min(info.max, 200), n).astype(dtype)
    v[:3] = [info.min, info.max, 0]
    return v


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "bool"])
def test_every_elementwise_op_fused(dtype):
    """All the table's ops on one dtype in one jitted function: ``where(x == x, x, x)``
    makes every op consume a value computed in the kernel, so they all fuse.  (Other
    integer widths: ``test_integer_bit_ops_are_bit_exact``.)"""
    dt = np.dtype(dtype)
    x = _values(dt)
    y = _values(dt)[::-1].copy()
    if dt.kind in "iu":
        y = (np.abs(y.astype(np.int64)) % 5).astype(dt)  # no negative powers / huge shifts
    unary = [op for op in UNARY if dt in op.dtypes]
    binary = [op for op in BINARY if dt in op.dtypes]

    def f(x, y):
        x, y = fnp.where(x == x, x, x), fnp.where(y == y, y, y)
        out = {op.name: op.fn(x) for op in unary}
        out.update({"2" + op.name: op.fn(x, y) for op in binary})
        return out

    ref, got, source = both(f, x, y)
    assert n_kernels(source) >= 1
    for name in ref:
        scale = 4.0 if name.lstrip("2") in ("power", "hypot", "logaddexp", "exp2") else 1.0
        assert_like_numpy(got[name], ref[name], scale)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint32, np.int64,
                                   np.uint64])
def test_integer_bit_ops_are_bit_exact(dtype):
    """Wrap-around arithmetic, shifts by any amount (NumPy gives 0 past the width),
    logical right shifts of negative numbers, casts between widths."""
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, 64, dtype=dtype, endpoint=True)
    bits = 8 * np.dtype(dtype).itemsize
    s = RNG.integers(0, bits + 3, 64).astype(dtype)

    def f(x, s):
        a = x * 3 + 7
        return (fnp.left_shift(a, s), shift_right_logical(a, s) ^ x,
                (a - x) // 3, a % 7, fnp.maximum(a, x), (a & x) | ~s,
                a.astype(np.int8), a.astype(np.uint16), a.astype(np.float32) * 2,
                fnp.where(a > x, a, s))

    ref, got, source = both(f, x, s)
    assert n_kernels(source) == (1 if bits <= 32 else 4)  # 64-bit // and % stay NumPy's
    assert_same(ref, got)


def test_float_arithmetic_is_bit_identical():
    """No fast-math in kernels: + - * /, sqrt, min/max, casts round exactly as NumPy."""
    x, y = _values(np.float32), _values(np.float32)[::-1].copy()

    def f(x, y):
        z = (x * 1.7 - y) / (y * y + 0.5) + fnp.sqrt(fnp.abs(x))
        return fnp.maximum(z, y * 0.25), (z * 3.0 + x).astype(np.float64) * 0.1 - y

    ref, got, source = both(f, x, y)
    assert n_kernels(source) == 1
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


def test_convert_and_weak_scalars():
    i = _values(np.int16, 52)
    x = _values(np.float32)

    def f(x, i):
        return ((x * 2 + i).astype(np.float64), (i + 1.5) * 2, (x > 0) + (x < 1),
                (i * 2).astype(np.bool_), fnp.sign(i * 1), fnp.abs(i - 3),
                (x * 1.0).astype(np.bool_) & (i > 0))

    ref, got, source = both(f, x, i)
    assert n_kernels(source) >= 1
    assert_same(ref, got)


# ---------------------------------------------------------------------------
# Fusion: what becomes one kernel


def gelu(x):
    return 0.5 * x * (1 + fnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def test_gelu_is_one_vectorisable_kernel():
    x = RNG.standard_normal(1000).astype(np.float32)
    ref, got, source = both(gelu, x)
    assert n_kernels(source) == 1
    assert "tanh_f32" in source and "math.tanh" not in source
    assert "**" not in source.split("def kernel")[1]  # x ** 3 is multiplications
    assert_same(ref, got)


def test_broadcasting_zero_d_and_noncontiguous_operands():
    x = RNG.standard_normal((6, 5, 4)).astype(np.float32)
    b = RNG.standard_normal((5, 1)).astype(np.float32)
    s = np.float32(1.5)

    def f(x, b, s, xt):
        y = fnp.exp(x) * b + s
        z = fnp.broadcast_to(x[:, :1, :], (6, 5, 4)) * 3.0 - x
        return y, z, fnp.tanh(xt * 2.0) + xt, fnp.tanh(s * 2.0) * s

    ref, got, source = both(f, x, b, s, np.transpose(x, (2, 1, 0)))
    assert n_kernels(source) >= 3
    assert_same(ref, got)


# kept outer loop, chunked outer loop with and without kept dimensions, full reduction
AXES = {"sum": [(0,), (2,), (0, 2), (1, 2), (0, 1, 2)], "max": [(1,), (0, 1, 2)],
        "min": [(0,), (2,)]}


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
def test_trailing_reductions_fuse(kind):
    x = RNG.standard_normal((6, 5, 4)).astype(np.float32)
    x[2, 3, 1] = np.nan if kind != "sum" else x[2, 3, 1]
    red = getattr(fnp, kind)

    def f(x):
        return [red(fnp.sin(x * (k + 1.0)) * 2.0 + 1.0, axis=axes)  # distinct chains
                for k, axes in enumerate(AXES[kind])]

    ref, got, source = both(f, x)
    n = len(AXES[kind])
    assert source.count("reduce_") == n and n_kernels(source) == n
    assert_same(ref, got, 4.0)


def test_integer_reductions_are_exact():
    x = RNG.integers(-100, 100, (7, 9)).astype(np.int8)

    def f(x):
        y = x * 3 + 1
        return fnp.sum(y, axis=0, dtype=np.int8), fnp.max(y * 2, axis=1), fnp.min(y - 2)

    ref, got, source = both(f, x)
    assert n_kernels(source) == 3
    assert_same(ref, got)


def test_parallel_kernels(monkeypatch):
    monkeypatch.setattr(numba_fusion, "PARALLEL_MIN_SIZE", 64)
    monkeypatch.setattr(numba_backend, "PARALLEL", "always")
    x = RNG.standard_normal((40, 30)).astype(np.float32)

    def f(x):
        return gelu(x), fnp.sum(fnp.exp(x) * 0.5, axis=0)

    ref, got, source = both(f, x)
    assert source.count("parallel=True") == 2
    assert_same(ref, got, 4.0)


def test_big_kernels_keep_the_faster_of_serial_and_parallel(monkeypatch):
    import time

    def slow(x):
        time.sleep(0.002)
        return x + 1

    tuned = numba_backend.Autotuned(lambda x: x + 1, slow)
    assert [tuned(1) for _ in range(8)] == [2] * 8
    assert tuned.choice == "serial"
    monkeypatch.setattr(numba_fusion, "PARALLEL_MIN_SIZE", 64)
    x = RNG.standard_normal((40, 30)).astype(np.float32)
    with fn.use_backend("numba"):
        f = fn.jit(lambda v: fnp.exp(v) * 3.0 - v)
        assert "parallel and serial" in f.compiled_source(x)
        for _ in range(7):
            np.testing.assert_allclose(f(x), np.exp(x) * 3 - x, rtol=1e-6)


def test_intermediates_used_outside_become_extra_outputs():
    x = RNG.standard_normal((8, 3)).astype(np.float32)
    w = RNG.standard_normal((3, 3)).astype(np.float32)

    def f(x, w):
        h = fnp.maximum(x + 1.0, 0.0)         # used by the kernel and by the matmul
        return fnp.tanh(h * 2.0) + (h @ w)

    ref, got, source = both(f, x, w)
    assert_same(ref, got)


def test_grad_of_mlp_matches():
    x = RNG.standard_normal((16, 8)).astype(np.float32)
    params = {"w": RNG.standard_normal((8, 4)).astype(np.float32), "b": np.zeros(4, np.float32)}

    def loss(p, x):
        logits = fnp.maximum(x @ p["w"] + p["b"], 0.0)
        return fnp.mean(fnp.log(fnp.sum(fnp.exp(logits), axis=1)))

    ref, got, source = both(lambda p, x: fn.value_and_grad(loss)(p, x), params, x)
    assert n_kernels(source) >= 2
    assert_same(ref, got, 4.0)


def test_random_bits_are_bit_identical():
    k = random.key(42)

    def f(k):
        k1, k2 = random.split(k)
        return random.bits(k1, (50,)), random.uniform(k2, (5, 7)), random.randint(k1, (9,), 0, 10)

    ref, got, source = both(f, k)
    assert n_kernels(source) >= 1
    for r, g in zip(fn.tree.leaves(ref), fn.tree.leaves(got)):
        np.testing.assert_array_equal(g, r)


# ---------------------------------------------------------------------------
# Vectorisable transcendental functions


def _ulps(got, ref, dtype):
    ref = np.asarray(ref, np.longdouble)
    ok = np.isfinite(ref) & (np.abs(ref) > np.finfo(dtype).tiny) & (np.abs(ref) < np.finfo(
        dtype).max)
    spacing = np.spacing(np.abs(ref[ok]).astype(dtype)).astype(np.longdouble)
    return float(np.max(np.abs(got[ok].astype(np.longdouble) - ref[ok]) / spacing))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_math_accuracy(dtype):
    """exp, tanh and logistic in generated kernels: within 3 ulp of the exact value on a
    dense grid, and NumPy's results on 0, -0, +-inf and NaN."""
    lim = 120.0 if dtype == np.float32 else 750.0
    x = np.concatenate([np.linspace(-lim, lim, 20001), np.linspace(-12, 12, 20001),
                        np.geomspace(1e-30, 30, 2000), -np.geomspace(1e-30, 30, 2000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(dtype)

    def f(v):
        v = fnp.where(v == v, v, v)  # so that each function is in the kernel
        return {"exp": fnp.exp(v), "tanh": fnp.tanh(v), "logistic": logistic(v)}

    ref, got, source = both(f, x)
    assert n_kernels(source) == 1
    sfx = f"_f{np.dtype(dtype).itemsize * 8}("
    assert all(name + sfx in source for name in ("exp", "tanh", "logistic"))
    xl = x.astype(np.longdouble)
    with np.errstate(all="ignore"):
        exact = {"exp": np.exp(xl), "tanh": np.tanh(xl), "logistic": 1 / (1 + np.exp(-xl))}
    for name in exact:
        assert _ulps(got[name][:-5], exact[name][:-5], dtype) <= 3.0, name
        g, r = got[name][-5:], ref[name][-5:]
        np.testing.assert_array_equal(g, r)
        np.testing.assert_array_equal(np.signbit(g[:4]), np.signbit(r[:4]))


# ---------------------------------------------------------------------------
# Scans


def _rnn_loss(p, xs):
    def step(h, x):
        return fnp.tanh(h @ p["W"] + x @ p["U"] + p["b"]), h[:, :2]

    h, ys = lax.scan(step, fnp.zeros((4, 6), np.float32), xs)
    return fnp.sum(h ** 2) + fnp.mean(ys)


def _rnn_params():
    return {"W": (RNG.standard_normal((6, 6)) * 0.4).astype(np.float32),
            "U": (RNG.standard_normal((3, 6)) * 0.4).astype(np.float32),
            "b": np.full(6, 0.1, np.float32)}


def test_scan_compiles_to_one_loop_and_matches():
    p, xs = _rnn_params(), RNG.standard_normal((7, 4, 3)).astype(np.float32)
    ref, got, source = both(lambda p, xs: fn.value_and_grad(_rnn_loss)(p, xs), p, xs)
    assert_same(ref, got, 10.0)
    jf = fn.jit(fn.value_and_grad(_rnn_loss))
    with fn.use_backend("numba"):
        jf(p, xs)
        graph = compiled_for(jf.lower(p, xs)).graph
    scans = [e for e in graph.eqns if e.prim.name == "scan"]
    assert len(scans) == 2  # the primal scan and the residual-stacking scan ran once
    names = [e.prim.name for e in graph.eqns]
    assert "hoisted_projection" in names and "hoisted_product" in names
    assert "hoisted_sum" in names
    for e in scans:
        loop = e.params["body"].__dict__.get("_numba_loops", {})
        assert loop and all(v is not None for v in loop.values())


def test_scan_eager_reverse_and_fallback():
    xs = np.arange(6.0, dtype=np.float32)

    def cum(c, x):
        return c + x, c * x

    for reverse in (False, True):
        with fn.use_backend("numpy"):
            ref = lax.scan(cum, 0.0, xs, reverse=reverse)
        with fn.use_backend("numba"):
            got = lax.scan(cum, 0.0, xs, reverse=reverse)
        assert_same(ref, got)

    def sort_step(c, x):  # sort has no Numba translation: a Python loop over the step
        return c + fnp.sort(x)[0], fnp.sort(x)

    xs2 = RNG.standard_normal((5, 4)).astype(np.float32)
    ref, got, _ = both(lambda xs: lax.scan(sort_step, np.float32(0), xs), xs2)
    assert_same(ref, got)


def test_fori_loop_and_int_carry():
    def f(x):
        return lax.fori_loop(0, 10, lambda i, c: (c[0] * 1.1 + i, c[1] + 1), (x, np.int32(0)))

    ref, got, _ = both(f, np.ones(3, np.float32))
    assert_same(ref, got)


# ---------------------------------------------------------------------------
# Caching and logging


def test_kernels_are_cached_by_their_source():
    from funcnet.backends import numba_backend

    x = RNG.standard_normal(10).astype(np.float32)
    both(lambda v: fnp.tanh(v * 3.0) - v, x)
    cached = dict(numba_backend._kernel_cache._memory)
    both(lambda w: fnp.tanh(w * 3.0) - w, x)   # another function, same chain
    assert dict(numba_backend._kernel_cache._memory) == cached


def test_compile_log_line(caplog, monkeypatch):
    monkeypatch.setenv("FUNCNET_LOG_COMPILES", "1")
    with caplog.at_level(logging.WARNING, logger="funcnet.jit"):
        both(lambda v: fnp.exp(v * 0.25) + 1.0, np.ones(5, np.float32))
    lines = [r.getMessage() for r in caplog.records if "numba backend" in r.getMessage()]
    assert lines and "fused kernels" in lines[0] and " s" in lines[0]


_SCRIPT = textwrap.dedent("""
    import numpy as np, funcnet as fn, funcnet.numpy as fnp
    fn.set_backend("numba")
    f = fn.jit(lambda x: fnp.tanh(x * 1.25) * 0.75 + x)
    print(float(f(np.ones(4, np.float32))[0]))
""")


def test_disk_cache_across_processes(tmp_path):
    env = dict(os.environ, FUNCNET_CACHE_DIR=str(tmp_path), FUNCNET_LOG_COMPILES="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    runs = [subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout == runs[1].stdout
    assert "1 compiled, 0 from the disk cache" in runs[0].stderr
    assert "0 compiled, 1 from the disk cache" in runs[1].stderr
    assert list((tmp_path / "numba").glob("k_*.py"))
