"""The NumPy backend: the living specification of every primitive's meaning.

>>> from funcnet.backends.numpy_backend import NumpyBackend
>>> NumpyBackend.kernels["add"](1, 2)
array(3)
"""

from __future__ import annotations

import math

import numpy as np

from funcnet.backends.base import Backend, has_advanced_index, index_tuple






def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1 / (1 + e), e / (1 + e))


_erf_impl = []


def _erf(x):
    """The error function: SciPy's when installed, else ``math.erf`` element by element."""
    if not _erf_impl:  # resolved on first use: importing SciPy is slow
        try:
            from scipy.special import erf
        except ImportError:
            vec = np.vectorize(math.erf, otypes=[np.float64])
            erf = lambda v: vec(v).astype(np.result_type(v, np.float16))  # noqa: E731
        _erf_impl.append(erf)
    return _erf_impl[0](x)


def _shift_right_logical(x, y):
    x = np.asarray(x)
    if x.dtype.kind == "i":
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        return np.right_shift(x.view(unsigned), np.asarray(y).astype(unsigned)).view(x.dtype)
    return np.right_shift(x, y)


_PY_SCALARS = (bool, int, float, complex)


def _select(pred, x, y):
    """``np.where`` with NumPy 2 promotion of Python scalars (which ``np.where`` lacks)."""
    if type(x) not in _PY_SCALARS and type(y) not in _PY_SCALARS:
        return np.where(pred, x, y)
    arrays = [v for v in (x, y) if type(v) not in _PY_SCALARS]
    if arrays:
        dtype = np.result_type(*arrays, *[v for v in (x, y) if type(v) in _PY_SCALARS])
    else:  # two weak scalars: funcnet's own choice of dtype
        from funcnet.core.aval import get_aval, result_dtype

        dtype = result_dtype(get_aval(x), get_aval(y))[0]
    return np.where(pred, x, y).astype(dtype, copy=False)


def _convert(x, new_dtype, weak_type):
    if np.iscomplexobj(x) and new_dtype.kind != "c":
        x = np.real(x)  # complex -> real keeps the real part (without NumPy's warning)
    if isinstance(x, np.ndarray):
        return x.astype(new_dtype)
    return np.asarray(x, dtype=new_dtype)


def _reduce(ufunc):
    def kernel(x, *, axes, out=None):
        x = np.asarray(x)
        if x.dtype.kind in "biu":
            return ufunc.reduce(x, axis=axes, dtype=x.dtype, out=out)
        return ufunc.reduce(x, axis=axes, out=out)

    kernel.accepts_out = True
    return kernel


def _bid(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


def _slice(x, *, start_indices, limit_indices, strides):
    return x[tuple(slice(s, e, st) for s, e, st in zip(start_indices, limit_indices, strides))]


def _pad(x, v, *, padding_config):
    x = np.asarray(x)
    shape = [lo + hi + d + max(d - 1, 0) * it for d, (lo, hi, it) in zip(x.shape, padding_config)]
    # pad with the non-negative parts, then crop the negative ones
    full_shape = [max(lo, 0) + max(hi, 0) + d + max(d - 1, 0) * it
                  for d, (lo, hi, it) in zip(x.shape, padding_config)]
    out = np.full(full_shape, v, dtype=x.dtype)
    place = tuple(slice(max(lo, 0), max(lo, 0) + (d - 1) * (it + 1) + 1 if d else max(lo, 0),
                        it + 1) for d, (lo, hi, it) in zip(x.shape, padding_config))
    out[place] = x
    crop = tuple(slice(max(-lo, 0), max(-lo, 0) + n) for (lo, hi, it), n in zip(padding_config,
                                                                                shape))
    return out[crop]


def _clamped_starts(shape, sizes, starts):
    return [min(max(int(s), 0), d - n) for s, d, n in zip(starts, shape, sizes)]


def _dynamic_slice(x, *starts, slice_sizes):
    st = _clamped_starts(x.shape, slice_sizes, starts)
    return x[tuple(slice(s, s + n) for s, n in zip(st, slice_sizes))]


def _dynamic_update_slice(x, update, *starts):
    st = _clamped_starts(x.shape, update.shape, starts)
    out = np.array(x, copy=True)
    out[tuple(slice(s, s + n) for s, n in zip(st, update.shape))] = update
    return out


def _cumulative(fn):
    def kernel(x, *, axis, reverse):
        x = np.asarray(x)
        if reverse:
            return np.flip(fn(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
        return fn(x, axis=axis, dtype=x.dtype)

    return kernel


def _sort(x, *, axis, descending):
    out = np.sort(x, axis=axis)
    return np.flip(out, axis) if descending else out


def _argsort(x, *, axis, descending):
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64)
    n = np.shape(x)[axis]
    flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return (n - 1 - np.flip(flipped, axis)).astype(np.int64)


def _dot_general(a, b, *, dimension_numbers, out=None):
    (lc, rc), (lb, rb) = dimension_numbers
    a = np.asarray(a)
    b = np.asarray(b)
    if not lb and a.ndim == 2 and b.ndim == 2 and len(lc) == 1:
        a2 = a if lc[0] == 1 else a.T
        b2 = b if rc[0] == 0 else b.T
        return np.matmul(a2, b2, out=out)  # straight into ``out`` (compiled code's buffer)
    res = _dot_general_any(a, b, lc, rc, lb, rb)
    if out is None:
        return res
    np.copyto(out, res)
    return out


_dot_general.accepts_out = True


def _dot_general_any(a, b, lc, rc, lb, rb):
    if not lb:
        return np.tensordot(a, b, axes=(lc, rc))
    lf = [i for i in range(a.ndim) if i not in lc and i not in lb]
    rf = [i for i in range(b.ndim) if i not in rc and i not in rb]
    if not lc:
        # no contraction: a broadcast outer product, not batched rank-1 matmuls
        at = np.transpose(a, list(lb) + lf)
        bt = np.transpose(b, list(rb) + rf)
        nb = len(lb)
        return (at.reshape(at.shape + (1,) * len(rf))
                * bt.reshape(bt.shape[:nb] + (1,) * len(lf) + bt.shape[nb:]))
    at = np.transpose(a, list(lb) + lf + list(lc))
    bt = np.transpose(b, list(rb) + list(rc) + rf)
    bshape = at.shape[:len(lb)]
    m = int(np.prod(at.shape[len(lb):len(lb) + len(lf)], dtype=np.int64))
    k = int(np.prod(at.shape[len(lb) + len(lf):], dtype=np.int64))
    n = int(np.prod(bt.shape[len(rb) + len(rc):], dtype=np.int64))
    out = np.matmul(at.reshape(bshape + (m, k)), bt.reshape(bshape + (k, n)))
    return out.reshape(bshape + tuple(a.shape[i] for i in lf) + tuple(b.shape[i] for i in rf))


def _gather(x, *arrays, spec):
    return np.asarray(x)[index_tuple(spec, arrays)]


def _scatter_with(ufunc):
    def kernel(x, u, *arrays, spec):
        out = np.array(x, copy=True)
        idx = index_tuple(spec, arrays)
        if ufunc is None:
            out[idx] = u
        elif has_advanced_index(spec):
            ufunc.at(out, idx, u)
        else:
            out[idx] = ufunc(out[idx], u)
        return out

    return kernel


def _iota(*, dtype, shape, dimension):
    ar = np.arange(shape[dimension], dtype=dtype)
    ar = ar.reshape((1,) * dimension + (-1,) + (1,) * (len(shape) - dimension - 1))
    return np.ascontiguousarray(np.broadcast_to(ar, shape))


# linear algebra and FFT kernels (primitives of funcnet/ops/linalg.py and funcnet/ops/fft.py)


def _complex(x, y):
    dtype = np.result_type(x, y, np.complex64)
    out = np.empty(np.broadcast_shapes(np.shape(x), np.shape(y)), dtype)
    out.real = x
    out.imag = y
    return out


_FFTS = {"fft": np.fft.fft, "ifft": np.fft.ifft, "rfft": np.fft.rfft, "irfft": np.fft.irfft}


def _fft(x, *, fft_type, n):
    return _FFTS[fft_type](x, n=n, axis=-1)


def _triangular_solve(a, b, *, lower, transpose_a):
    t = np.tril(a) if lower else np.triu(a)
    return np.linalg.solve(np.swapaxes(t, -1, -2) if transpose_a else t, b)


def _slogdet(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return [sign, logabsdet]


_KERNELS = {
    # AD support
    "zeros": lambda *, shape, dtype: np.zeros(shape, dtype),
    "add_any": np.add,
    # elementwise binary
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "max": np.maximum, "min": np.minimum, "atan2": np.arctan2,
    "rem": np.remainder, "floor_divide": np.floor_divide,
    # elementwise unary
    "neg": np.negative, "sign": np.sign, "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
    "round": np.round, "trunc": np.trunc, "exp": np.exp, "expm1": np.expm1, "log": np.log,
    "log1p": np.log1p, "sqrt": np.sqrt, "cbrt": np.cbrt, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "logistic": _logistic, "erf": _erf,
    # comparisons and logic
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal, "is_finite": np.isfinite,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor, "not": np.invert,
    "shift_left": np.left_shift, "shift_right_logical": _shift_right_logical,
    "select": _select,
    "convert_element_type": _convert,
    "stop_gradient": lambda x: x,
    # shapes
    "reshape": lambda x, *, new_sizes: np.reshape(x, new_sizes),
    "broadcast_in_dim": _bid,
    "transpose": lambda x, *, permutation: np.transpose(x, permutation),
    "slice": _slice, "pad": _pad,
    "concatenate": lambda *xs, dimension: np.concatenate(xs, axis=dimension),
    "rev": lambda x, *, dimensions: np.flip(x, dimensions),
    "dynamic_slice": _dynamic_slice, "dynamic_update_slice": _dynamic_update_slice,
    "full": lambda *, shape, fill_value, dtype: np.full(shape, fill_value, dtype),
    "iota": _iota,
    # reductions, scans, sorting
    "reduce_sum": _reduce(np.add), "reduce_max": _reduce(np.maximum),
    "reduce_min": _reduce(np.minimum), "reduce_prod": _reduce(np.multiply),
    "argmax": lambda x, *, axis, index_dtype: np.argmax(x, axis=axis).astype(index_dtype),
    "argmin": lambda x, *, axis, index_dtype: np.argmin(x, axis=axis).astype(index_dtype),
    "cumsum": _cumulative(np.cumsum), "cumprod": _cumulative(np.cumprod),
    "sort": _sort, "argsort": _argsort,
    # contraction and indexing
    "dot_general": _dot_general,
    "gather": _gather,
    "scatter": _scatter_with(None), "scatter_add": _scatter_with(np.add),
    "scatter_mul": _scatter_with(np.multiply), "scatter_min": _scatter_with(np.minimum),
    "scatter_max": _scatter_with(np.maximum),
    # linear algebra, FFT and complex parts (funcnet/ops/linalg.py, funcnet/ops/fft.py)
    "solve": lambda a, b: np.linalg.solve(a, b), "triangular_solve": _triangular_solve,
    "cholesky": np.linalg.cholesky, "det": np.linalg.det, "slogdet": _slogdet,
    "fft": _fft, "real": np.real, "imag": np.imag, "conj": np.conj, "complex": _complex,
}


# ---------------------------------------------------------------------------
# Convolution and windowed reductions (primitives of funcnet/ops/convolution.py).
# No loops over pixels: im2col through a strided view and one matmul per
# convolution; windowed reductions loop over the few offsets of a window (or,
# for max/sum, over each axis's window separately), each step vectorised.


def _conv_general_dilated(x, w, *, window_strides, padding, lhs_dilation, rhs_dilation,
                          feature_group_count):
    x = np.asarray(x)
    w = np.asarray(w)
    ns = x.ndim - 2
    dtype = np.result_type(x, w)
    if any(d != 1 for d in lhs_dilation) or any(p != (0, 0) for p in padding):
        cfg = ((0, 0, 0),) + tuple((lo, hi, d - 1) for (lo, hi), d in zip(padding, lhs_dilation))
        x = _pad(x, np.zeros((), x.dtype), padding_config=cfg + ((0, 0, 0),))
    k_sp = w.shape[:ns]
    eff = tuple((k - 1) * d + 1 for k, d in zip(k_sp, rhs_dilation))
    n, c = x.shape[0], x.shape[-1]
    i, o = w.shape[-2:]
    out_sp = tuple(0 if size < e else (size - e) // s + 1
                   for size, e, s in zip(x.shape[1:-1], eff, window_strides))
    if 0 in out_sp or n == 0 or o == 0 or c == 0:
        return np.zeros((n,) + out_sp + (o,), dtype)
    # im2col: a strided view (N, *out, C, *K) of the windows, copied once as (M, K*C)
    win = np.lib.stride_tricks.sliding_window_view(x, eff, axis=tuple(range(1, ns + 1)))
    win = win[(slice(None),) + tuple(slice(None, None, s) for s in window_strides)
              + (slice(None),) + tuple(slice(None, None, d) for d in rhs_dilation)]
    patches = win.transpose((0,) + tuple(range(1, ns + 1)) + tuple(range(ns + 2, 2 * ns + 2))
                            + (ns + 1,))
    m = n * math.prod(out_sp)
    kp = math.prod(k_sp)
    g = feature_group_count
    if g == 1:
        out = patches.reshape(m, kp * c) @ w.reshape(kp * i, o)
    else:  # one batched matmul over the groups
        og = o // g
        cols = np.moveaxis(patches.reshape(patches.shape[:-1] + (g, i)), -2, 0)
        cols = cols.reshape(g, m, kp * i)
        wg = w.reshape(kp, i, g, og).transpose(2, 0, 1, 3).reshape(g, kp * i, og)
        out = np.matmul(cols, wg).transpose(1, 0, 2)
    return out.reshape((n,) + out_sp + (o,)).astype(dtype, copy=False)


def _lowest(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    if dtype.kind == "b":
        return False
    return -np.inf


def _window_pad(x, value, padding):
    if any(p != (0, 0) for p in padding):
        return np.pad(x, padding, constant_values=value)
    return x


def _window_count(size, window, stride):
    return 0 if size < window else (size - window) // stride + 1


def _reduce_window_with(ufunc, fill):
    """Sliding-window reduction, separable by axis: along each axis in turn, combine
    the ``w`` strided slices of that axis (``sum(w)`` passes, not ``prod(w)``)."""

    def kernel(x, *, window_dimensions, window_strides, padding):
        x = np.asarray(x)
        out = _window_pad(x, fill(x.dtype), padding)
        for ax, (w, s) in enumerate(zip(window_dimensions, window_strides)):
            if w == 1 and s == 1:
                continue
            n = _window_count(out.shape[ax], w, s)
            lead = (slice(None),) * ax
            if n == 0:
                out = out[lead + (slice(0, 0),)]
                continue
            parts = [out[lead + (slice(o, o + (n - 1) * s + 1, s),)] for o in range(w)]
            acc = np.array(parts[0])
            for p in parts[1:]:
                ufunc(acc, p, out=acc)
            out = acc
        return np.array(out) if out is x else out

    return kernel


def _window_slices(window_dimensions, window_strides, out_shape):
    """For each offset in a window (row-major), the strided slice of the padded operand
    that holds that element of every window."""
    return [tuple(slice(o, o + (n - 1) * s + 1, s)
                  for o, n, s in zip(offs, out_shape, window_strides))
            for offs in np.ndindex(*window_dimensions)]


def _window_argmax(x, window_dimensions, window_strides, padding):
    """Index (row-major within the window) of the first maximum of every window.

    Branch-free: ``best`` and ``idx`` are updated with ``maximum`` only (offsets
    come in increasing order, so ``max(idx, k * better)`` is ``k`` where the
    offset is strictly better, else ``idx``).
    """
    x = np.asarray(x)
    xp = _window_pad(x, _lowest(x.dtype), padding)
    out_shape = tuple(_window_count(d, w, s)
                      for d, w, s in zip(xp.shape, window_dimensions, window_strides))
    n_offsets = math.prod(window_dimensions)
    idx_dtype = np.int8 if n_offsets < 2**7 else np.int16 if n_offsets < 2**15 else np.int32
    idx = np.zeros(out_shape, idx_dtype)
    if 0 in out_shape:
        return idx, xp.shape, []
    slices = _window_slices(window_dimensions, window_strides, out_shape)
    best = np.array(xp[slices[0]])
    better = np.empty(out_shape, bool)
    for k, sl in enumerate(slices[1:], 1):
        v = xp[sl]
        np.greater(v, best, out=better)  # strictly: ties keep the earlier element
        np.maximum(best, v, out=best)
        np.maximum(idx, better.view(np.int8) * idx_dtype(k), out=idx)
    return idx, xp.shape, slices


def _select_and_gather_add(t, x, *, window_dimensions, window_strides, padding):
    idx, _, slices = _window_argmax(x, window_dimensions, window_strides, padding)
    tp = _window_pad(np.asarray(t), 0, padding)
    out = np.zeros(idx.shape, tp.dtype)
    chosen = np.empty(idx.shape, bool)
    for k, sl in enumerate(slices):
        np.equal(idx, k, out=chosen)
        out += tp[sl] * chosen
    return out


def _select_and_scatter_add(s, x, *, window_dimensions, window_strides, padding):
    idx, padded_shape, slices = _window_argmax(x, window_dimensions, window_strides, padding)
    s = np.asarray(s)
    out = np.zeros(padded_shape, s.dtype)
    disjoint = all(st >= w for w, st in zip(window_dimensions, window_strides))
    chosen = np.empty(idx.shape, bool)
    for k, sl in enumerate(slices):
        np.equal(idx, k, out=chosen)
        if disjoint:  # each position belongs to at most one window: write, do not add
            np.multiply(s, chosen, out=out[sl])
        else:
            out[sl] += s * chosen
    crop = tuple(slice(lo, lo + d) for (lo, _), d in zip(padding, np.shape(x)))
    return out[crop]


_KERNELS.update({
    "conv_general_dilated": _conv_general_dilated,
    "reduce_window_sum": _reduce_window_with(np.add, lambda dtype: 0),
    "reduce_window_max": _reduce_window_with(np.maximum, _lowest),
    "select_and_gather_add": _select_and_gather_add,
    "select_and_scatter_add": _select_and_scatter_add,
})


def _returning_arrays(kernel):
    """Wrap a kernel so 0-d results are arrays, never NumPy scalars (as API.md §1 says)."""
    nd = np.ndarray

    def wrapped(*args, **params):
        out = kernel(*args, **params)
        if type(out) is nd:
            return out
        if isinstance(out, (tuple, list)):
            return [o if type(o) is nd else np.asarray(o) for o in out]
        return np.asarray(out)

    wrapped.__name__ = getattr(kernel, "__name__", "kernel")
    return wrapped


class NumpyBackend(Backend):
    """Runs every primitive with NumPy on the CPU."""

    name = "numpy"
    array_type = np.ndarray
    kernels = {name: _returning_arrays(k) for name, k in _KERNELS.items()}
    raw_kernels = _KERNELS
    # kernels that take ``out=``: NumPy ufuncs, matrix products and reductions
    out_capable = frozenset(name for name, k in _KERNELS.items()
                            if (isinstance(k, np.ufunc) or getattr(k, "accepts_out", False))
                            and name not in ("add_any",))
