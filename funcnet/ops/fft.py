"""Complex-number and FFT primitives: ``real``, ``imag``, ``conj``, ``complex``
and ``fft`` (complex FFT, its inverse, and the real-input pair rfft / irfft).

Every primitive here is linear over the reals, so each has a transpose rule.
Complex cotangents follow JAX's convention: a cotangent ``c`` of a complex
value ``z`` pairs with a tangent ``dz`` as ``Re(c * dz)`` (no conjugation).
Under that pairing the transpose of a complex-linear map is its plain matrix
transpose (the DFT matrix is symmetric, so ``fft`` transposes to ``fft``) and
the gradient of a real function of ``z`` is the conjugate of ``df/dx + i df/dy``
(``grad(lambda z: abs(z) ** 2)(z) == 2 * conj(z)``).

The ``fft`` primitive transforms the *last* axis only and never pads or
truncates (``funcnet.numpy.fft`` moves axes and resizes around it).  Its
scaling is NumPy's default ``norm="backward"``: ``ifft`` and ``irfft`` divide
by ``n``.

>>> import numpy as np
>>> from funcnet.ops.fft import fft, real
>>> real(fft(np.array([1.0, 2.0, 3.0, 4.0], np.complex128), "fft", 4))
array([10., -2., -2., -2.])
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.primitive import Primitive
from funcnet.ops import elementwise as ew
from funcnet.ops.rules import deflinear, elementwise_abstract_eval, is_undefined, unbroadcast
from funcnet.ops.shape import broadcast_in_dim, transpose
from funcnet.transforms.ad import Zero, zeros_like_aval


def real_dtype(dtype) -> np.dtype:
    """The real dtype of a complex dtype's components (``complex64`` → ``float32``).

    >>> real_dtype(np.complex64)
    dtype('float32')
    """
    dtype = np.dtype(dtype)
    return np.dtype(dtype.char.lower()) if dtype.kind == "c" else dtype


def complex_dtype(dtype) -> np.dtype:
    """The complex dtype with components of ``dtype`` (``float32`` → ``complex64``).

    >>> complex_dtype(np.float64)
    dtype('complex128')
    """
    return np.result_type(np.dtype(dtype), np.complex64)


def _is_mapped(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def _move_to_front(x, d):
    if d == 0:
        return x
    nd = len(np.shape(x))
    return transpose(x, (d,) + tuple(i for i in range(nd) if i != d))


# ---------------------------------------------------------------------------
# real, imag, conj (unary; only complex operands reach the primitives)

real_p = Primitive("real")
imag_p = Primitive("imag")
conj_p = Primitive("conj")


def real(x):
    """The real part of a complex array (a real array of matching precision).

    >>> real(np.array([1 + 2j], np.complex64))
    array([1.], dtype=float32)
    """
    return real_p.bind(x)


def imag(x):
    """The imaginary part of a complex array.

    >>> imag(np.array([1 + 2j]))
    array([2.])
    """
    return imag_p.bind(x)


def conj(x):
    """The complex conjugate of a complex array.

    >>> conj(np.array([1 + 2j]))
    array([1.-2.j])
    """
    return conj_p.bind(x)


def _complex_only(name):
    def check(x):
        if x.dtype.kind != "c":
            raise TypeError(f"{name} requires a complex operand, got {x.str_short()}")

    return check


def _part_abstract_eval(name):
    check = _complex_only(name)

    def rule(x):
        check(x)
        return ShapedArray(x.shape, real_dtype(x.dtype), x.weak_type)

    return rule


def _conj_abstract_eval(x):
    _complex_only("conj")(x)
    return x


def _unary_batch(prim):
    def rule(args, dims, **params):
        return prim.bind(*args, **params), dims[0]

    return rule


real_p.abstract_eval = _part_abstract_eval("real")
imag_p.abstract_eval = _part_abstract_eval("imag")
conj_p.abstract_eval = _conj_abstract_eval

# ct * Re(dz) = Re(ct * dz): the cotangent of z is ct itself, made complex.
deflinear(real_p, lambda ct, x: [complex_(ct, zeros_like_aval(get_aval(ct)))])
# ct * Im(dz) = Re(-i ct * dz): the cotangent of z is -i ct.
deflinear(imag_p, lambda ct, x: [complex_(zeros_like_aval(get_aval(ct)), ew.neg(ct))])
# Re(ct * conj(dz)) = Re(conj(ct) * dz).
deflinear(conj_p, lambda ct, x: [conj(ct)])
for _p in (real_p, imag_p, conj_p):
    _p.batch = _unary_batch(_p)
del _p

# ---------------------------------------------------------------------------
# complex(x, y) = x + i y (elementwise, NumPy broadcasting)

complex_p = Primitive("complex")


def complex_(x, y):
    """``x + 1j * y`` from two real arrays (broadcast together).

    >>> complex_(np.array([1.0, 2.0]), np.array(3.0))
    array([1.+3.j, 2.+3.j])
    """
    return complex_p.bind(x, y)


def _complex_abstract_eval(x, y):
    for a in (x, y):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"complex requires real operands, got {a.str_short()}")
    try:
        out = elementwise_abstract_eval(x, y)
    except ValueError as e:
        raise ValueError(f"complex: {e}") from None
    return ShapedArray(out.shape, complex_dtype(out.dtype), out.weak_type)


def _complex_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    ans = complex_(x, y)
    aval = get_aval(ans)
    if type(tx) is Zero and type(ty) is Zero:
        return ans, Zero(aval)
    part = real_dtype(aval.dtype)
    tx = zeros_like_aval(ShapedArray(aval.shape, part)) if type(tx) is Zero else tx
    ty = zeros_like_aval(ShapedArray(aval.shape, part)) if type(ty) is Zero else ty
    t = complex_(ew.convert_element_type(tx, part), ew.convert_element_type(ty, part))
    if tuple(np.shape(t)) != aval.shape:
        from funcnet.ops.shape import broadcast_to

        t = broadcast_to(t, aval.shape)
    return ans, t


def _complex_transpose(ct, x, y):
    # Re(ct * (dx + i dy)) = Re(ct) dx - Im(ct) dy
    return [unbroadcast(real(ct), x.aval) if is_undefined(x) else None,
            unbroadcast(ew.neg(imag(ct)), y.aval) if is_undefined(y) else None]


def _complex_batch(args, dims):
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if _is_mapped(d))
    rank = max(len(np.shape(a)) - (1 if _is_mapped(d) else 0) for a, d in zip(args, dims))
    moved = []
    for a, d in zip(args, dims):
        if _is_mapped(d):
            a = _move_to_front(a, d)
            rest = tuple(np.shape(a)[1:])
            shape = (size,) + (1,) * (rank - len(rest)) + rest
            a = broadcast_in_dim(a, shape, (0,) + tuple(range(1 + rank - len(rest), 1 + rank)))
        moved.append(a)
    return complex_(*moved), 0


complex_p.abstract_eval = _complex_abstract_eval
complex_p.jvp = _complex_jvp
complex_p.transpose = _complex_transpose
complex_p.linear = True
complex_p.batch = _complex_batch

# ---------------------------------------------------------------------------
# fft over the last axis: fft_type in {"fft", "ifft", "rfft", "irfft"};
# ``n`` is the transform length (the output length for irfft).

fft_p = Primitive("fft")
FFT_TYPES = ("fft", "ifft", "rfft", "irfft")


def fft(x, fft_type: str, n: int):
    """The ``fft_type`` transform of length ``n`` over the last axis of ``x``.

    ``fft``/``ifft`` take complex input of length ``n``; ``rfft`` takes real
    input of length ``n`` and returns ``n // 2 + 1`` frequencies; ``irfft``
    takes ``n // 2 + 1`` complex frequencies and returns ``n`` real samples.

    >>> fft(np.array([4.0, 0.0, 0.0]), "rfft", 3)
    array([4.+0.j, 4.+0.j])
    """
    if fft_type not in FFT_TYPES:
        raise ValueError(f"fft_type must be one of {FFT_TYPES}, got {fft_type!r}")
    return fft_p.bind(x, fft_type=fft_type, n=int(n))


def _fft_abstract_eval(x, *, fft_type, n):
    if x.ndim < 1:
        raise ValueError(f"{fft_type} needs an array with at least one axis, got {x.str_short()}")
    if n < 1:
        raise ValueError(f"{fft_type}: invalid number of FFT data points ({n})")
    real_in = fft_type == "rfft"
    if real_in and x.dtype not in (np.float32, np.float64):
        raise TypeError(f"rfft requires a float32 or float64 operand, got {x.str_short()}")
    if not real_in and x.dtype not in (np.complex64, np.complex128):
        raise TypeError(f"{fft_type} requires a complex64 or complex128 operand, "
                        f"got {x.str_short()}")
    n_in = n // 2 + 1 if fft_type == "irfft" else n
    if x.shape[-1] != n_in:
        raise ValueError(f"{fft_type} of length {n} needs a last axis of size {n_in}, got "
                         f"shape {x.shape}")
    n_out = n // 2 + 1 if fft_type == "rfft" else n
    if fft_type == "rfft":
        dtype = complex_dtype(x.dtype)
    elif fft_type == "irfft":
        dtype = real_dtype(x.dtype)
    else:
        dtype = x.dtype
    return ShapedArray(x.shape[:-1] + (n_out,), dtype)


def half_spectrum_weights(n: int, dtype) -> np.ndarray:
    """How often each of rfft's ``n // 2 + 1`` frequencies occurs in the full spectrum.

    >>> half_spectrum_weights(4, np.float64)
    array([1., 2., 1.])
    """
    w = np.full(n // 2 + 1, 2, dtype=dtype)
    w[0] = 1
    if n % 2 == 0:
        w[-1] = 1
    return w


def _fft_transpose(ct, x, *, fft_type, n):
    if fft_type in ("fft", "ifft"):
        # The DFT matrix and its inverse are symmetric.
        return [fft(ct, fft_type, n)]
    if fft_type == "rfft":
        # x_bar[j] = Re(sum_k ct[k] e^{-2 pi i jk/n}) over the half spectrum k < n//2+1,
        # which is n * irfft(conj(ct) / w): irfft counts the k-th frequency w[k] times.
        w = half_spectrum_weights(n, real_dtype(ct.dtype))
        return [ew.mul(fft(ew.div(conj(ct), w), "irfft", n), float(n))]
    # irfft: x[j] = (1/n) sum_k w[k] Re(c[k] e^{2 pi i jk/n}), so
    # c_bar[k] = (w[k]/n) sum_j ct[j] e^{2 pi i jk/n} = (w[k]/n) conj(rfft(ct))[k].
    w = half_spectrum_weights(n, ct.dtype) / n
    return [ew.mul(conj(fft(ct, "rfft", n)), w)]


def _fft_batch(args, dims, *, fft_type, n):
    (x,), (d,) = args, dims
    nd = len(np.shape(x))
    if d == nd - 1:  # the batch axis is the transformed axis's place: move it first
        x, d = _move_to_front(x, d), 0
    return fft(x, fft_type, n), d


fft_p.abstract_eval = _fft_abstract_eval
deflinear(fft_p, _fft_transpose)
fft_p.batch = _fft_batch

__all__ = ["real", "imag", "conj", "complex_", "fft", "real_p", "imag_p", "conj_p",
           "complex_p", "fft_p", "real_dtype", "complex_dtype", "half_spectrum_weights",
           "FFT_TYPES"]
