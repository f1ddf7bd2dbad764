"""Scalar helpers for the kernels the Numba backend generates.

Imported only when the ``numba`` backend loads (it imports Numba).  Two kinds:

- **Vectorisable transcendental functions** for float32 and float64: ``exp``,
  ``tanh`` and ``logistic`` built from a Cody-Waite range reduction, a
  polynomial and a bit-level ``2**n`` (an LLVM ``bitcast``), with no calls to
  libm, so LLVM vectorises the loops that use them (Numba's ``math.tanh`` is a
  scalar libm call in every iteration: a fused GELU built on it runs ~30x
  slower than one built on these).  Accuracy, checked in
  ``tests/backends/test_numba.py``: within 2 ulp of the correctly rounded
  result in float32 and within 4 ulp in float64, with NumPy's results on
  0, -0, +-inf and NaN.
- **Operand adapters** used by generated kernels: ``load0`` reads a 0-d
  operand that may arrive as a 0-d array, a NumPy scalar or a Python scalar,
  and ``as_c`` makes an operand C-contiguous (a no-op, decided at compile time,
  for arrays that already are).

The polynomial coefficients are Taylor coefficients ``1/k!``: on the reduced
range ``|r| <= ln(2)/2`` the first omitted term is below half an ulp.

>>> import numpy as np
>>> from funcnet.backends.numba_math import tanh_f32
>>> abs(float(tanh_f32(np.float32(0.5))) - float(np.tanh(0.5))) < 1e-7
True
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# Compiled as functions of their own (LLVM inlines them into the kernels' loops), so their
# fused multiply-adds do not spread to the kernels, whose arithmetic stays NumPy's exactly.
_OPTS = dict(error_model="numpy", fastmath={"contract"}, cache=True)

F32, F64 = np.float32, np.float64
I32, I64 = np.int32, np.int64


# ---------------------------------------------------------------------------
# Reinterpreting integer bits as a float (vectorisable: one bitcast)


@intrinsic
def _f32_from_bits(typingctx, bits):
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(**_OPTS)
def _pow2_f32(n):
    """``2.0**n`` for an integer-valued float32 ``n`` in [-126, 127]."""
    return _f32_from_bits(I32((I32(n) + I32(127)) << I32(23)))


@njit(**_OPTS)
def _pow2_f64(n):
    """``2.0**n`` for an integer-valued float64 ``n`` in [-1022, 1023]."""
    return _f64_from_bits(I64((I64(n) + I64(1023)) << I64(52)))


# Cody-Waite splits of ln(2): the high parts have few significant bits, so
# ``n * hi`` is exact for the ``n`` that occur.
_LN2_HI_F32 = F32(0.693359375)
_LN2_LO_F32 = F32(-2.12194440e-4)
_LOG2E_F32 = F32(1.4426950408889634)
_LN2_HI_F64 = F64(6.93147180369123816490e-01)
_LN2_LO_F64 = F64(1.90821492927058770002e-10)
_LOG2E_F64 = F64(1.4426950408889634)


# ---------------------------------------------------------------------------
# float32


@njit(**_OPTS)
def _expm1_poly_f32(r):
    """``exp(r) - 1`` for ``|r| <= 0.35`` (Taylor to degree 7: the next term is below
    1e-8 relative)."""
    p = F32(1.0 / 5040.0)
    p = p * r + F32(1.0 / 720.0)
    p = p * r + F32(1.0 / 120.0)
    p = p * r + F32(1.0 / 24.0)
    p = p * r + F32(1.0 / 6.0)
    p = p * r + F32(0.5)
    return p * (r * r) + r


@njit(**_OPTS)
def exp_f32(x):
    """``exp(x)`` for float32, vectorisable."""
    xc = min(max(x, F32(-104.0)), F32(89.0))
    n = np.floor(xc * _LOG2E_F32 + F32(0.5))
    r = (xc - n * _LN2_HI_F32) - n * _LN2_LO_F32
    p = _expm1_poly_f32(r) + F32(1.0)
    half = np.floor(n * F32(0.5))
    # two factors keep each power of two a normal number (results down to subnormals)
    y = p * _pow2_f32(half) * _pow2_f32(n - half)
    return y if x == x else x


@njit(**_OPTS)
def _expm1_nonpositive_f32(y):
    """``exp(y) - 1`` for ``y <= 0`` (accurate near 0, exactly -1 far below)."""
    y = max(y, F32(-20.0))
    n = np.floor(y * _LOG2E_F32 + F32(0.5))
    r = (y - n * _LN2_HI_F32) - n * _LN2_LO_F32
    s = _pow2_f32(n)
    return s * _expm1_poly_f32(r) + (s - F32(1.0))


@njit(**_OPTS)
def tanh_f32(x):
    """``tanh(x)`` for float32 as ``-q / (q + 2)``, ``q = expm1(-2|x|)``: one
    branch-free formula, accurate for small and large ``|x|``."""
    q = _expm1_nonpositive_f32(F32(-2.0) * abs(x))
    t = math.copysign(-q / (q + F32(2.0)), x)
    return t if x == x else x


@njit(**_OPTS)
def logistic_f32(x):
    """``1 / (1 + exp(-x))`` for float32 (exp overflows to inf for very negative x: 0)."""
    return F32(1.0) / (F32(1.0) + exp_f32(-x))


# ---------------------------------------------------------------------------
# float64


@njit(**_OPTS)
def _expm1_poly_f64(r):
    """``exp(r) - 1`` for ``|r| <= 0.35`` (Taylor to degree 14)."""
    p = F64(1.0 / 87178291200.0)
    p = p * r + F64(1.0 / 6227020800.0)
    p = p * r + F64(1.0 / 479001600.0)
    p = p * r + F64(1.0 / 39916800.0)
    p = p * r + F64(1.0 / 3628800.0)
    p = p * r + F64(1.0 / 362880.0)
    p = p * r + F64(1.0 / 40320.0)
    p = p * r + F64(1.0 / 5040.0)
    p = p * r + F64(1.0 / 720.0)
    p = p * r + F64(1.0 / 120.0)
    p = p * r + F64(1.0 / 24.0)
    p = p * r + F64(1.0 / 6.0)
    p = p * r + F64(0.5)
    return p * (r * r) + r


@njit(**_OPTS)
def exp_f64(x):
    """``exp(x)`` for float64, vectorisable."""
    xc = min(max(x, F64(-746.0)), F64(710.0))
    n = np.floor(xc * _LOG2E_F64 + F64(0.5))
    r = (xc - n * _LN2_HI_F64) - n * _LN2_LO_F64
    p = _expm1_poly_f64(r) + F64(1.0)
    half = np.floor(n * F64(0.5))
    y = p * _pow2_f64(half) * _pow2_f64(n - half)
    return y if x == x else x


@njit(**_OPTS)
def _expm1_nonpositive_f64(y):
    y = max(y, F64(-40.0))
    n = np.floor(y * _LOG2E_F64 + F64(0.5))
    r = (y - n * _LN2_HI_F64) - n * _LN2_LO_F64
    s = _pow2_f64(n)
    return s * _expm1_poly_f64(r) + (s - F64(1.0))


@njit(**_OPTS)
def tanh_f64(x):
    """``tanh(x)`` for float64 (the float32 formula with float64 constants)."""
    q = _expm1_nonpositive_f64(F64(-2.0) * abs(x))
    t = math.copysign(-q / (q + F64(2.0)), x)
    return t if x == x else x


@njit(**_OPTS)
def logistic_f64(x):
    """``1 / (1 + exp(-x))`` for float64."""
    return F64(1.0) / (F64(1.0) + exp_f64(-x))


# ---------------------------------------------------------------------------
# Operand adapters


def load0(x):
    """The value of a 0-d operand (array, NumPy scalar or Python scalar)."""
    return np.asarray(x).reshape(-1)[0]


@overload(load0, inline="always")
def _load0_impl(x):
    if isinstance(x, types.Array):
        if x.ndim == 0:
            return lambda x: x[()]
        return lambda x: x.ravel()[0]
    if isinstance(x, (types.Number, types.Boolean)):
        return lambda x: x
    return None


def as0d(x):
    """A scalar as a 0-d array (``np.dot`` of two vectors returns a scalar)."""
    return np.asarray(x)


@overload(as0d, inline="always")
def _as0d_impl(x):
    if isinstance(x, types.Array):
        return lambda x: x
    if isinstance(x, (types.Number, types.Boolean)):
        dtype = x

        def impl(x):
            out = np.empty(1, dtype)
            out[0] = x
            return out.reshape(())

        return impl
    return None


def as_c(x):
    """``x`` as a C-contiguous array (no copy when it already is one)."""
    return np.ascontiguousarray(x)


@overload(as_c, inline="always")
def _as_c_impl(x):
    if isinstance(x, types.Array):
        if x.layout == "C":
            return lambda x: x
        return lambda x: np.ascontiguousarray(x)
    return None


__all__ = ["exp_f32", "tanh_f32", "logistic_f32", "exp_f64", "tanh_f64", "logistic_f64",
           "load0", "as_c", "as0d"]
