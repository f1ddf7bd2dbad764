"""``funcnet.numpy.fft`` (``fnp.fft``): discrete Fourier transforms, and the
complex-number helpers ``real``, ``imag``, ``conj`` used around them.

``fft``, ``ifft``, ``rfft`` and ``irfft`` follow NumPy: ``n`` pads with zeros
or truncates the input along ``axis``, and ``norm`` is ``None``/``"backward"``
(no scaling forward, ``1/n`` backward), ``"ortho"`` (``1/sqrt(n)`` both ways)
or ``"forward"`` (``1/n`` forward).  Integer input is transformed in float64,
as NumPy does; float32 stays in single precision (complex64).

All four are linear, so they differentiate in forward and reverse mode and to
any order.  Complex gradients follow JAX's convention: for a real-valued
``f`` of a complex ``z``, ``grad(f)(z)`` is ``conj(df/dx + i df/dy)``.  For
real → complex → real pipelines (the usual case: ``sum(abs(rfft(x)) ** 2)``)
that gives the ordinary real gradient.

>>> import numpy as np
>>> import funcnet as fn
>>> from funcnet.numpy import fft as fft_mod
>>> fft_mod.rfft(np.array([1.0, 2.0, 3.0, 4.0]))
array([10.+0.j, -2.+2.j, -2.+0.j])
>>> fn.grad(lambda x: fft_mod.irfft(fft_mod.rfft(x)).sum())(np.ones(4))
array([1., 1., 1., 1.])
"""

from __future__ import annotations

import numpy as np

from funcnet.config import config
from funcnet.numpy.conversion import as_array, asarray
from funcnet.ops import elementwise as ew
from funcnet.ops import fft as fft_ops
from funcnet.ops import shape as sh
from funcnet.ops.rules import normalize_axis

_NORMS = (None, "backward", "ortho", "forward")

# ---------------------------------------------------------------------------
# Complex parts


def real(val):
    """The real part of ``val`` (real arrays are returned unchanged).

    >>> import numpy as np
    >>> from funcnet.numpy.fft import real
    >>> real(np.array([1 + 2j, 3 - 4j]))
    array([1., 3.])
    """
    val = as_array(val)
    return fft_ops.real(val) if val.dtype.kind == "c" else val


def imag(val):
    """The imaginary part of ``val`` (zeros of the same dtype for real arrays).

    >>> import numpy as np
    >>> from funcnet.numpy.fft import imag
    >>> imag(np.array([1 + 2j, 3 - 4j]))
    array([ 2., -4.])
    """
    val = as_array(val)
    if val.dtype.kind == "c":
        return fft_ops.imag(val)
    return sh.full(tuple(val.shape), 0, val.dtype)


def conj(x):
    """The complex conjugate of ``x`` (real arrays are returned unchanged).

    >>> import numpy as np
    >>> from funcnet.numpy.fft import conj
    >>> conj(np.array([1 + 2j]))
    array([1.-2.j])
    """
    x = as_array(x)
    return fft_ops.conj(x) if x.dtype.kind == "c" else x


conjugate = conj


def complex_from_parts(re, im):
    """``re + 1j * im`` from two real arrays (broadcast together).

    >>> import numpy as np
    >>> from funcnet.numpy.fft import complex_from_parts
    >>> complex_from_parts(np.array([1.0, 2.0]), np.array([0.5, -1.0]))
    array([1.+0.5j, 2.-1.j ])
    """
    re, im = as_array(re), as_array(im)
    for v in (re, im):
        if v.dtype.kind == "c":
            raise TypeError(f"complex_from_parts needs real arrays, got dtype {v.dtype}")
    return fft_ops.complex_(re, im)


# ---------------------------------------------------------------------------
# Transforms


def _float_precision(x):
    """Integers and bools become float64 (as in NumPy); float16 becomes float32."""
    if x.dtype.kind in "biu":
        return ew.convert_element_type(x, np.float64)
    if x.dtype == np.float16:
        return ew.convert_element_type(x, np.float32)
    if x.dtype == np.complex64 or x.dtype == np.complex128 or x.dtype.kind == "f":
        return x
    raise TypeError(f"the FFT does not support arrays of dtype {x.dtype}")


def _as_complex(x):
    x = _float_precision(x)
    if x.dtype.kind == "c":
        return x
    return fft_ops.complex_(x, sh.full(tuple(x.shape), 0, x.dtype))


def _as_real(x, name):
    x = _float_precision(x)
    if x.dtype.kind == "c":
        raise TypeError(f"{name} requires a real input, got dtype {x.dtype}; use fft for "
                        "complex data")
    return x


def _to_last(x, axis, name):
    if x.ndim == 0:
        raise ValueError(f"{name} needs an array with at least one axis, got a 0-d array")
    axis = normalize_axis(axis, x.ndim)
    if axis != x.ndim - 1:
        perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
        x = sh.transpose(x, perm)
    return x, axis


def _from_last(x, axis):
    nd = x.ndim
    if axis == nd - 1:
        return x
    perm = list(range(nd - 1))
    perm.insert(axis, nd - 1)
    return sh.transpose(x, tuple(perm))


def _resize_last(x, size: int):
    """Truncate or zero-pad the last axis to ``size``."""
    m = x.shape[-1]
    if m == size:
        return x
    if m > size:
        return sh.slice(x, (0,) * x.ndim, tuple(x.shape[:-1]) + (size,))
    cfg = ((0, 0, 0),) * (x.ndim - 1) + ((0, size - m, 0),)
    return sh.pad(x, np.zeros((), x.dtype), cfg)


def _check_n(n, name):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}: n must be an integer, got {n!r}")
    if n < 1:
        raise ValueError(f"{name}: invalid number of data points ({n}) specified")
    return int(n)


def _scale(out, n, norm, inverse):
    if norm not in _NORMS:
        raise ValueError(f'norm must be None, "backward", "ortho" or "forward", got {norm!r}')
    if norm is None or norm == "backward":
        return out
    if norm == "ortho":
        factor = np.sqrt(n) if inverse else 1 / np.sqrt(n)
    else:  # "forward"
        factor = float(n) if inverse else 1.0 / n
    return ew.mul(out, float(factor))


def _complex_transform(a, n, axis: int, norm, kind: str):
    """``fft`` or ``ifft`` (``kind``) of ``a`` along ``axis``, cut or padded to ``n``."""
    a = _as_complex(as_array(a))
    n = _check_n(n, kind)
    x, axis = _to_last(a, axis, kind)
    n = x.shape[-1] if n is None else n
    if n < 1:
        raise ValueError(f"{kind}: invalid number of data points ({n}) specified")
    out = fft_ops.fft(_resize_last(x, n), kind, n)
    return _from_last(_scale(out, n, norm, inverse=kind == "ifft"), axis)


def fft(a, n=None, axis: int = -1, norm=None):
    """The one-dimensional discrete Fourier transform along ``axis``.

    >>> import numpy as np
    >>> from funcnet.numpy.fft import fft
    >>> fft(np.array([1.0, 0.0, 0.0, 0.0]))
    array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    return _complex_transform(a, n, axis, norm, "fft")


def ifft(a, n=None, axis: int = -1, norm=None):
    """The inverse of ``fft`` (divides by ``n`` unless ``norm`` says otherwise).

    >>> import numpy as np
    >>> from funcnet.numpy.fft import fft, ifft
    >>> ifft(fft(np.array([1.0, 2.0, 3.0]))).real.round(6)
    array([1., 2., 3.])
    """
    return _complex_transform(a, n, axis, norm, "ifft")


def rfft(a, n=None, axis: int = -1, norm=None):
    """The FFT of real input: the ``n // 2 + 1`` non-negative frequencies.

    >>> import numpy as np
    >>> from funcnet.numpy.fft import rfft
    >>> rfft(np.array([1.0, 1.0, 1.0, 1.0], np.float32))
    array([4.+0.j, 0.+0.j, 0.+0.j], dtype=complex64)
    """
    a = _as_real(as_array(a), "rfft")
    n = _check_n(n, "rfft")
    x, axis = _to_last(a, axis, "rfft")
    n = x.shape[-1] if n is None else n
    if n < 1:
        raise ValueError(f"rfft: invalid number of data points ({n}) specified")
    out = fft_ops.fft(_resize_last(x, n), "rfft", n)
    return _from_last(_scale(out, n, norm, inverse=False), axis)


def irfft(a, n=None, axis: int = -1, norm=None):
    """The inverse of ``rfft``: ``n`` real samples (default ``2 * (m - 1)`` for ``m`` inputs).

    The imaginary parts of the zero frequency (and of the Nyquist frequency
    when ``n`` is even) are ignored, as in NumPy.

    >>> import numpy as np
    >>> from funcnet.numpy.fft import irfft, rfft
    >>> irfft(rfft(np.array([1.0, 2.0, 3.0, 4.0, 5.0])), n=5).round(6)
    array([1., 2., 3., 4., 5.])
    """
    a = _as_complex(as_array(a))
    n = _check_n(n, "irfft")
    x, axis = _to_last(a, axis, "irfft")
    n = 2 * (x.shape[-1] - 1) if n is None else n
    if n < 1:
        raise ValueError(f"irfft: invalid number of data points ({n}) specified")
    out = fft_ops.fft(_resize_last(x, n // 2 + 1), "irfft", n)
    return _from_last(_scale(out, n, norm, inverse=True), axis)


def fftfreq(n: int, d: float = 1.0, dtype=None):
    """The sample frequencies of an ``n``-point ``fft`` with sample spacing ``d``.

    The dtype is ``fn.config.default_float`` unless ``dtype`` is given.

    >>> from funcnet.numpy.fft import fftfreq
    >>> fftfreq(4, 0.5)
    array([ 0. ,  0.5, -1. , -0.5], dtype=float32)
    """
    return asarray(np.fft.fftfreq(int(n), d), dtype=dtype or config.float_dtype)


def rfftfreq(n: int, d: float = 1.0, dtype=None):
    """The sample frequencies of an ``n``-point ``rfft`` with sample spacing ``d``.

    >>> from funcnet.numpy.fft import rfftfreq
    >>> rfftfreq(4, 0.5)
    array([0. , 0.5, 1. ], dtype=float32)
    """
    return asarray(np.fft.rfftfreq(int(n), d), dtype=dtype or config.float_dtype)


__all__ = ["fft", "ifft", "rfft", "irfft", "fftfreq", "rfftfreq", "real", "imag", "conj",
           "conjugate", "complex_from_parts"]
