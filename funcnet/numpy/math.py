"""Elementwise functions of ``funcnet.numpy`` (ufunc-like, NumPy broadcasting).

>>> import funcnet.numpy as fnp
>>> fnp.add(fnp.ones(2), 1.0)
array([2., 2.], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from funcnet.config import config
from funcnet.core.aval import get_aval, result_dtype, scalar_dtype
from funcnet.core.trace import Tracer, kernel_failed, state
from funcnet.numpy.conversion import as_array, as_operand, asarray
from funcnet.numpy.dtypes import promote_avals
from funcnet.ops import elementwise as ew
from funcnet.ops.elementwise import convert_element_type

_ND = np.ndarray
_SCALAR_KIND = {bool: 0, int: 1, float: 2, complex: 3}


def _scalar_pair(x, y):
    """Two Python scalars: funcnet picks the dtype (``default_float`` for floats)."""
    hi = x if _SCALAR_KIND[type(x)] >= _SCALAR_KIND[type(y)] else y
    return asarray(x, scalar_dtype(hi)), y


def _binary(prim, x, y):
    if state.eager and type(x) is _ND and type(y) is _ND:  # the hot path: the kernel itself
        try:
            return state.kernels[prim](x, y)
        except Exception as e:
            kernel_failed(prim, (x, y), {}, e)
    x, y = as_operand(x), as_operand(y)
    if not hasattr(x, "dtype") and not hasattr(y, "dtype"):
        x, y = _scalar_pair(x, y)
    elif isinstance(x, Tracer) or isinstance(y, Tracer):
        x, y = _absorb_weak(x, y)
    return prim.bind(x, y)


def _absorb_weak(x, y):
    """Cast a weakly typed traced operand (e.g. a loop index) to the other's dtype.

    A weak *Python scalar* already follows NumPy 2 promotion in every kernel;
    a weak traced value holds a real array, which NumPy would promote
    strongly, so the cast makes the run match the traced types.
    """
    wx = isinstance(x, Tracer) and x.aval.weak_type
    wy = isinstance(y, Tracer) and y.aval.weak_type
    if wx == wy:
        return x, y
    weak, strong = (x, y) if wx else (y, x)
    s_dtype = getattr(strong, "dtype", None)
    if s_dtype is None or s_dtype == weak.dtype:
        return x, y
    from funcnet.core.aval import get_aval, result_dtype

    dtype = result_dtype(get_aval(weak), get_aval(strong))[0]
    cast = [convert_element_type(v, dtype) if getattr(v, "dtype", None) != dtype else v
            for v in (x, y)]
    return cast[0], cast[1]


def _float_dtype(dtype: np.dtype, divide: bool = False) -> np.dtype:
    """The float dtype NumPy computes an integer/bool input in.

    True division always uses float64; other ufuncs (sqrt, arctan2, ...) take
    the smallest float that holds the integer type (int8 -> float16).
    """
    if dtype.kind in "biu":
        return np.dtype(np.float64) if divide else np.promote_types(dtype, np.float16)
    return dtype


def _float_operand(x):
    """Integers and bools are promoted to float for roots, logs, trigonometry..."""
    x = as_array(x)
    if x.dtype.kind in "biu":
        x = convert_element_type(x, _float_dtype(x.dtype))
    return x


def _float_pair(x, y, divide: bool = False):
    """Both operands in their common floating dtype (NumPy 2 promotion, weak scalars)."""
    x, y = as_operand(x), as_operand(y)
    avals = (get_aval(x), get_aval(y))
    dtype, weak = promote_avals(*avals)
    if dtype.kind in "biu":
        if weak:
            dtype = config.float_dtype  # Python numbers alone: funcnet picks the float
        elif divide:
            dtype = np.dtype(np.float64)
        else:  # NumPy looks for the smallest float loop both integer types fit in
            dtype = np.result_type(*[_float_dtype(a.dtype) for a in avals if not a.weak_type])
    return _cast_operand(x, dtype), _cast_operand(y, dtype)


def _cast_operand(x, dtype):
    if not hasattr(x, "dtype"):
        return asarray(x, dtype)
    return convert_element_type(x, dtype)


def _float_binary(prim, x, y, divide: bool = False):
    if (state.eager and type(x) is _ND and type(y) is _ND and x.dtype == y.dtype
            and x.dtype.kind in "fc"):
        return prim.bind(x, y)
    return prim.bind(*_float_pair(x, y, divide))


def add(x, y):
    """Elementwise ``x + y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.add(1, 2)
    array(3)
    """
    return _binary(ew.add_p, x, y)


def subtract(x, y):
    """Elementwise ``x - y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.subtract(fnp.array([3.0, 1.0]), 1.0)
    array([2., 0.], dtype=float32)
    """
    return _binary(ew.sub_p, x, y)


def multiply(x, y):
    """Elementwise ``x * y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.multiply(fnp.array([1, 2]), 3)
    array([3, 6])
    """
    return _binary(ew.mul_p, x, y)


def divide(x, y):
    """Elementwise true division ``x / y`` (integers promote to float, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.divide(fnp.array([1, 2]), 2)
    array([0.5, 1. ])
    """
    return _float_binary(ew.div_p, x, y, divide=True)


true_divide = divide


def floor_divide(x, y):
    """Elementwise ``x // y``, rounded towards minus infinity (as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.floor_divide(fnp.array([7, -7]), 2)
    array([ 3, -4])
    """
    return _binary(ew.floor_divide_p, x, y)


def mod(x, y):
    """Elementwise remainder with the sign of ``y`` (NumPy's ``mod``, alias ``remainder``).

    >>> import funcnet.numpy as fnp
    >>> fnp.mod(fnp.array([5, -5]), 3)
    array([2, 1])
    """
    return _binary(ew.rem_p, x, y)


remainder = mod


def power(x, y):
    """Elementwise ``x ** y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.power(fnp.array([2.0, 3.0]), 2)
    array([4., 9.], dtype=float32)
    """
    return _binary(ew.pow_p, x, y)


def maximum(x, y):
    """Elementwise maximum (NaN propagates; at ties the gradient is split evenly).

    >>> import funcnet.numpy as fnp
    >>> fnp.maximum(fnp.array([1.0, float("nan")]), fnp.array([3.0, 2.0]))
    array([ 3., nan], dtype=float32)
    """
    return _binary(ew.max_p, x, y)


def minimum(x, y):
    """Elementwise minimum (NaN propagates; at ties the gradient is split evenly).

    >>> import funcnet.numpy as fnp
    >>> fnp.minimum(fnp.array([1.0, float("nan")]), fnp.array([3.0, 2.0]))
    array([ 1., nan], dtype=float32)
    """
    return _binary(ew.min_p, x, y)


def fmax(x, y):
    """Elementwise maximum that ignores NaN when the other value is a number.

    >>> import funcnet.numpy as fnp
    >>> fnp.fmax(fnp.array([1.0, float("nan")]), fnp.array([float("nan"), 2.0]))
    array([1., 2.], dtype=float32)
    """
    x, y = as_operand(x), as_operand(y)
    # replace a NaN by the other value *before* the comparison: no NaN gradients
    x, y = where(isnan(x), y, x), where(isnan(y), x, y)
    return maximum(x, y)


def fmin(x, y):
    """Elementwise minimum that ignores NaN when the other value is a number.

    >>> import funcnet.numpy as fnp
    >>> fnp.fmin(fnp.array([1.0, float("nan")]), 0.0)
    array([0., 0.], dtype=float32)
    """
    x, y = as_operand(x), as_operand(y)
    x, y = where(isnan(x), y, x), where(isnan(y), x, y)
    return minimum(x, y)


def arctan2(x1, x2):
    """Elementwise ``arctan(x1 / x2)`` with the quadrant chosen by the signs.

    Integers are computed in floating point, as in NumPy.

    >>> import funcnet.numpy as fnp
    >>> fnp.arctan2(fnp.array([1.0, -1.0]), -1.0)
    array([ 2.3561945, -2.3561945], dtype=float32)
    """
    return _float_binary(ew.atan2_p, x1, x2)


def hypot(x1, x2):
    """``sqrt(x1**2 + x2**2)`` without overflow for large inputs.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.hypot(3.0, 4.0))
    5.0
    """
    x1, x2 = _float_pair(x1, x2)
    a, b = absolute(x1), absolute(x2)
    # Divide by the larger magnitude so that squares cannot overflow.  The scale is
    # held constant for differentiation: it cancels mathematically, so derivatives are
    # those of sqrt(x1**2 + x2**2) - smooth also where |x1| == |x2|.
    scale = ew.stop_gradient(maximum(a, b))
    zero = equal(scale, 0)
    safe = where(zero, 1, scale)
    r1, r2 = divide(x1, safe), divide(x2, safe)
    q = where(zero, 1, add(multiply(r1, r1), multiply(r2, r2)))
    out = where(zero, 0, multiply(scale, sqrt(q)))
    # an infinite side wins even over NaN, as in C99 (and NumPy)
    return where(logical_or(isinf(a), isinf(b)), math.inf, out)


def logaddexp(x1, x2):
    """``log(exp(x1) + exp(x2))``, stable for large inputs.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.logaddexp(1000.0, 1000.0)) > 1000
    True
    """
    x1, x2 = _float_pair(x1, x2)
    top = maximum(x1, x2)
    finite = isfinite(top)  # otherwise the answer is top: an infinity or NaN
    a1, a2 = where(finite, x1, 0), where(finite, x2, 0)
    d = subtract(a1, a2)
    first = greater_equal(d, 0)
    # The larger input plus log1p(exp(-|x1 - x2|)).  Both pick the same side at a tie,
    # so the kinks of max and |.| cancel in every derivative, not just the first.
    hi = where(first, a1, a2)
    gap = where(first, d, negative(d))
    return where(finite, add(hi, log1p(exp(negative(gap)))), top)


def _unary(prim, float_only=True):
    def fn(x):
        if type(x) is _ND and state.eager and (not float_only or x.dtype.kind in "fc"):
            return prim.bind(x)  # the common eager case: no conversion needed
        x = _float_operand(x) if float_only else as_array(x)
        return prim.bind(x)

    return fn


negative = _unary(ew.neg_p, float_only=False)
sign = _unary(ew.sign_p, float_only=False)
absolute = _unary(ew.abs_p, float_only=False)
abs = absolute  # noqa: A001
exp = _unary(ew.exp_p)
expm1 = _unary(ew.expm1_p)
log = _unary(ew.log_p)
log1p = _unary(ew.log1p_p)
sqrt = _unary(ew.sqrt_p)
cbrt = _unary(ew.cbrt_p)
sin = _unary(ew.sin_p)
cos = _unary(ew.cos_p)
tan = _unary(ew.tan_p)
arcsin = _unary(ew.asin_p)
arccos = _unary(ew.acos_p)
arctan = _unary(ew.atan_p)
sinh = _unary(ew.sinh_p)
cosh = _unary(ew.cosh_p)
tanh = _unary(ew.tanh_p)
arcsinh = _unary(ew.asinh_p)
arccosh = _unary(ew.acosh_p)
arctanh = _unary(ew.atanh_p)
# name: (what it does, an example input, the output it gives)
_DOCS = {
    "negative": ("Elementwise ``-x``.", "[1.0, -2.0]", "array([-1.,  2.], dtype=float32)"),
    "sign": ("Elementwise sign (-1, 0 or 1; its derivative is 0).", "[-3.0, 0.0, 2.0]",
             "array([-1.,  0.,  1.], dtype=float32)"),
    "absolute": ("Elementwise ``|x|`` (alias ``abs``; its derivative at 0 is 0).", "[-1.5, 2.0]",
                 "array([1.5, 2. ], dtype=float32)"),
    "exp": ("Elementwise ``e**x``.", "[0.0, 1.0]", "array([1.      , 2.718282], dtype=float32)"),
    "expm1": ("Elementwise ``exp(x) - 1``, accurate near 0.", "[1e-08]",
              "array([1.e-08], dtype=float32)"),
    "log": ("Elementwise natural logarithm.", "[1.0, 2.0]",
            "array([0.       , 0.6931472], dtype=float32)"),
    "log1p": ("Elementwise ``log(1 + x)``, accurate near 0.", "[1e-08]",
              "array([1.e-08], dtype=float32)"),
    "sqrt": ("Elementwise square root (integers give float64, as in NumPy).", "[4, 9]",
             "array([2., 3.])"),
    "cbrt": ("Elementwise cube root.", "[8.0, -1.0]", "array([ 2., -1.], dtype=float32)"),
    "sin": ("Elementwise sine.", "[0.0, 1.0]", "array([0.      , 0.841471], dtype=float32)"),
    "cos": ("Elementwise cosine.", "[0.0, 1.0]",
            "array([1.       , 0.5403023], dtype=float32)"),
    "tan": ("Elementwise tangent.", "[0.0, 1.0]",
            "array([0.       , 1.5574077], dtype=float32)"),
    "arcsin": ("Elementwise inverse sine.", "[0.0, 1.0]",
               "array([0.       , 1.5707964], dtype=float32)"),
    "arccos": ("Elementwise inverse cosine.", "[1.0, 0.0]",
               "array([0.       , 1.5707964], dtype=float32)"),
    "arctan": ("Elementwise inverse tangent.", "[0.0, 1.0]",
               "array([0.       , 0.7853982], dtype=float32)"),
    "sinh": ("Elementwise hyperbolic sine.", "[0.0, 1.0]",
             "array([0.       , 1.1752012], dtype=float32)"),
    "cosh": ("Elementwise hyperbolic cosine.", "[0.0, 1.0]",
             "array([1.       , 1.5430807], dtype=float32)"),
    "tanh": ("Elementwise hyperbolic tangent.", "[0.0, 1.0]",
             "array([0.       , 0.7615942], dtype=float32)"),
    "arcsinh": ("Elementwise inverse hyperbolic sine.", "[0.0, 1.0]",
                "array([0.       , 0.8813736], dtype=float32)"),
    "arccosh": ("Elementwise inverse hyperbolic cosine.", "[1.0, 2.0]",
                "array([0.      , 1.316958], dtype=float32)"),
    "arctanh": ("Elementwise inverse hyperbolic tangent.", "[0.0, 0.5]",
                "array([0.        , 0.54930615], dtype=float32)"),
}


def _set_docs(docs: dict) -> None:
    """Name each factory-made function and give it its own docstring and example."""
    for name, (doc, arg, out) in docs.items():
        f = globals()[name]
        f.__name__ = f.__qualname__ = name
        f.__doc__ = (f"{doc}\n\n    >>> import funcnet.numpy as fnp\n"
                     f"    >>> fnp.{name}(fnp.array({arg}))\n    {out}\n    ")


_set_docs(_DOCS)


def positive(x):
    """Elementwise ``+x`` (returns ``x`` as an array).

    >>> import funcnet.numpy as fnp
    >>> fnp.positive(fnp.array([-1, 2]))
    array([-1,  2])
    """
    return as_array(x)


_LN2 = math.log(2.0)  # Python floats: weak, so float32 inputs stay float32
_LN10 = math.log(10.0)


def exp2(x):
    """Elementwise ``2**x``.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.exp2(3.0))
    8.0
    """
    # 2 ** x with NumPy's pow kernel: exp(x * ln 2) would lose ~|x| ulps to rounding
    return power(2, _float_operand(x))


def log2(x):
    """Elementwise base-2 logarithm.

    >>> import funcnet.numpy as fnp
    >>> fnp.log2(fnp.array([8.0]))
    array([3.], dtype=float32)
    """
    return divide(log(x), _LN2)


def log10(x):
    """Elementwise base-10 logarithm.

    >>> import funcnet.numpy as fnp
    >>> fnp.log10(fnp.array([1.0, 100.0]))
    array([0., 2.], dtype=float32)
    """
    return divide(log(x), _LN10)


def square(x):
    """Elementwise ``x * x`` (bools square as int8, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.square(fnp.array([2, -3]))
    array([4, 9])
    """
    x = as_array(x)
    if x.dtype == np.bool_:
        x = convert_element_type(x, np.int8)
    return multiply(x, x)


def reciprocal(x):
    """Elementwise ``1 / x``; integers keep NumPy's integer result (0 unless ``|x| == 1``).

    >>> import funcnet.numpy as fnp
    >>> fnp.reciprocal(fnp.array([4.0])), fnp.reciprocal(fnp.array([1, 2, -1]))
    (array([0.25], dtype=float32), array([ 1,  0, -1]))
    """
    x = as_array(x)
    if x.dtype.kind in "iu":
        return where(equal(absolute(x), 1), x, 0)
    return divide(1, _float_operand(x))


def _rounding(prim):
    def fn(x):
        x = as_array(x)
        if x.dtype.kind in "biu":
            return x
        return prim.bind(x)

    return fn


floor = _rounding(ew.floor_p)
ceil = _rounding(ew.ceil_p)
trunc = _rounding(ew.trunc_p)
_set_docs({
    "floor": ("Elementwise floor (integers pass through; the derivative is 0).", "[-1.5, 1.5]",
              "array([-2.,  1.], dtype=float32)"),
    "ceil": ("Elementwise ceiling (integers pass through; the derivative is 0).", "[-1.5, 1.5]",
             "array([-1.,  2.], dtype=float32)"),
    "trunc": ("Elementwise rounding towards zero (integers pass through; the derivative is 0).",
              "[-1.5, 1.5]", "array([-1.,  1.], dtype=float32)"),
})


def round(x, decimals: int = 0):  # noqa: A001
    """Round half to even, to ``decimals`` places (like ``np.round``).

    >>> import funcnet.numpy as fnp
    >>> fnp.round(fnp.array([0.5, 1.5, 2.25]), 1)
    array([0.5, 1.5, 2.2], dtype=float32)
    """
    x = as_array(x)
    decimals = int(decimals)
    if x.dtype.kind in "biu":
        if decimals >= 0:
            return x
        # round to tens, hundreds... in float64, then back to the integer type
        xf = convert_element_type(x, np.float64)
        scale = 10.0 ** -decimals
        return convert_element_type(multiply(ew.round_p.bind(divide(xf, scale)), scale),
                                    x.dtype)
    if decimals == 0:
        return ew.round_p.bind(x)
    if decimals > 0:  # the same steps as NumPy, so that halves round the same way
        scale = 10.0 ** decimals
        return divide(ew.round_p.bind(multiply(x, scale)), scale)
    scale = 10.0 ** -decimals
    return multiply(ew.round_p.bind(divide(x, scale)), scale)


around = round


# ---------------------------------------------------------------------------
# comparisons and logic


def equal(x, y):
    """Elementwise ``x == y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.equal(fnp.array([1, 2]), 2)
    array([False,  True])
    """
    return _binary(ew.eq_p, x, y)


def not_equal(x, y):
    """Elementwise ``x != y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.not_equal(fnp.array([1, 2]), 2)
    array([ True, False])
    """
    return _binary(ew.ne_p, x, y)


def less(x, y):
    """Elementwise ``x < y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.less(fnp.array([1, 2, 3]), 2)
    array([ True, False, False])
    """
    return _binary(ew.lt_p, x, y)


def less_equal(x, y):
    """Elementwise ``x <= y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.less_equal(fnp.array([1, 2, 3]), 2)
    array([ True,  True, False])
    """
    return _binary(ew.le_p, x, y)


def greater(x, y):
    """Elementwise ``x > y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.greater(fnp.array([1, 2, 3]), 2)
    array([False, False,  True])
    """
    return _binary(ew.gt_p, x, y)


def greater_equal(x, y):
    """Elementwise ``x >= y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.greater_equal(fnp.array([1, 2, 3]), 2)
    array([False,  True,  True])
    """
    return _binary(ew.ge_p, x, y)


def _as_bool(x):
    x = as_array(x)
    return x if x.dtype == np.bool_ else not_equal(x, 0)


def logical_and(x, y):
    """Elementwise logical and (non-zero values count as true).

    >>> import funcnet.numpy as fnp
    >>> fnp.logical_and(fnp.array([True, True, False]), fnp.array([1, 0, 1]))
    array([ True, False, False])
    """
    return ew.and_p.bind(_as_bool(x), _as_bool(y))


def logical_or(x, y):
    """Elementwise logical or (non-zero values count as true).

    >>> import funcnet.numpy as fnp
    >>> fnp.logical_or(fnp.array([0, 1, 0]), fnp.array([0, 0, 2]))
    array([False,  True,  True])
    """
    return ew.or_p.bind(_as_bool(x), _as_bool(y))


def logical_xor(x, y):
    """Elementwise logical exclusive or (non-zero values count as true).

    >>> import funcnet.numpy as fnp
    >>> fnp.logical_xor(fnp.array([True, True]), fnp.array([True, False]))
    array([False,  True])
    """
    return ew.xor_p.bind(_as_bool(x), _as_bool(y))


def logical_not(x):
    """Elementwise logical not.

    >>> import funcnet.numpy as fnp
    >>> fnp.logical_not(fnp.array([0, 2]))
    array([ True, False])
    """
    return ew.not_p.bind(_as_bool(x))


def bitwise_and(x, y):
    """Elementwise ``x & y`` on integers and bools.

    >>> import funcnet.numpy as fnp
    >>> fnp.bitwise_and(fnp.array([12, 10]), 6)
    array([4, 2])
    """
    return _binary(ew.and_p, x, y)


def bitwise_or(x, y):
    """Elementwise ``x | y`` on integers and bools.

    >>> import funcnet.numpy as fnp
    >>> fnp.bitwise_or(fnp.array([12, 10]), 6)
    array([14, 14])
    """
    return _binary(ew.or_p, x, y)


def bitwise_xor(x, y):
    """Elementwise ``x ^ y`` on integers and bools.

    >>> import funcnet.numpy as fnp
    >>> fnp.bitwise_xor(fnp.array([12, 10]), 6)
    array([10, 12])
    """
    return _binary(ew.xor_p, x, y)


def invert(x):
    """Elementwise ``~x`` on integers and bools (alias ``bitwise_not``).

    >>> import funcnet.numpy as fnp
    >>> fnp.invert(fnp.array([0, 5])), fnp.invert(fnp.array([True, False]))
    (array([-1, -6]), array([False,  True]))
    """
    return ew.not_p.bind(as_array(x))


bitwise_not = invert


def left_shift(x, y):
    """Elementwise ``x << y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.left_shift(fnp.array([1, 3]), 2)
    array([ 4, 12])
    """
    return _binary(ew.shift_left_p, x, y)


def right_shift(x, y):
    """Elementwise ``x >> y``: arithmetic (sign-filling) for signed integers, as in NumPy.

    >>> import funcnet.numpy as fnp
    >>> fnp.right_shift(fnp.array([-16, 16]), 2)
    array([-4,  4])
    """
    x, y = as_operand(x), as_operand(y)
    if not hasattr(x, "dtype") and not hasattr(y, "dtype"):
        x, y = _scalar_pair(x, y)
    dtype, _ = result_dtype(get_aval(x), get_aval(y))
    x = _cast_operand(x, dtype)
    if dtype.kind != "i":
        return ew.shift_right_logical_p.bind(x, y)
    # For negative x, ~x is non-negative: shift it logically and flip the bits back.
    negative_x = ew.lt_p.bind(x, 0)
    source = ew.select_p.bind(negative_x, ew.not_p.bind(x), x)
    shifted = ew.shift_right_logical_p.bind(source, y)
    return ew.select_p.bind(negative_x, ew.not_p.bind(shifted), shifted)


def isfinite(x):
    """True where ``x`` is neither infinite nor NaN.

    >>> import funcnet.numpy as fnp
    >>> fnp.isfinite(fnp.array([1.0, float("inf"), float("nan")]))
    array([ True, False, False])
    """
    x = as_array(x)
    if x.dtype.kind in "biu":
        return logical_not(ew.ne_p.bind(x, x))
    return ew.is_finite_p.bind(x)


def isnan(x):
    """True where ``x`` is NaN.

    >>> import funcnet.numpy as fnp
    >>> fnp.isnan(fnp.array([1.0, float("inf"), float("nan")]))
    array([False, False,  True])
    """
    x = as_array(x)
    return ew.ne_p.bind(x, x)


def isinf(x):
    """True where ``x`` is +inf or -inf.

    >>> import funcnet.numpy as fnp
    >>> fnp.isinf(fnp.array([1.0, -float("inf"), float("nan")]))
    array([False,  True, False])
    """
    x = as_array(x)
    if x.dtype.kind in "biu":
        return ew.ne_p.bind(x, x)
    return logical_and(logical_not(isfinite(x)), logical_not(isnan(x)))


def where(condition, x=None, y=None):
    """``x`` where ``condition`` else ``y`` (the three-argument form of ``np.where``).

    Beware the NaN-gradient trap: ``where(x > 0, sqrt(x), 0.0)`` has a NaN
    gradient at ``x <= 0`` because the unused branch is still differentiated
    (0 * inf = NaN).  Make the unused branch safe, or use ``masked_apply``.

    >>> import funcnet.numpy as fnp
    >>> fnp.where(fnp.array([True, False]), 1.0, 2.0)
    array([1., 2.], dtype=float32)
    """
    if x is None or y is None:
        raise ValueError("fnp.where needs all three arguments; for the indices of true "
                         "elements use fnp.nonzero (outside jit)")
    cond = _as_bool(condition)
    x, y = as_operand(x), as_operand(y)
    if not hasattr(x, "dtype") and not hasattr(y, "dtype"):
        x, y = _scalar_pair(x, y)
    return ew.select_p.bind(cond, x, y)


def masked_apply(mask, fun, x, fill=0.0, safe_value=1.0):
    """``where(mask, fun(x), fill)`` with gradients free of NaN where ``mask`` is false.

    The double-``where`` pattern: ``fun`` only ever sees ``x`` where the mask
    holds and ``safe_value`` elsewhere, so its derivative is finite there.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> f = lambda x: fnp.sum(fnp.masked_apply(x > 0, fnp.sqrt, x))
    >>> fn.grad(f)(fnp.array([4.0, -1.0]))
    array([0.25, 0.  ], dtype=float32)
    """
    x = as_array(x)
    return where(mask, fun(where(mask, x, safe_value)), fill)


def clip(a, a_min=None, a_max=None):
    """Limit values to ``[a_min, a_max]`` (either may be ``None``).

    >>> import funcnet.numpy as fnp
    >>> fnp.clip(fnp.array([-2.0, 0.5, 3.0]), -1.0, 1.0)
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    a = as_array(a)
    if a_min is not None:
        a = maximum(a, a_min)
    if a_max is not None:
        a = minimum(a, a_max)
    return a


def nan_to_num(x, copy: bool = True, nan: float = 0.0, posinf=None, neginf=None):
    """Replace NaN with ``nan`` and infinities with large finite numbers.

    >>> import funcnet.numpy as fnp
    >>> fnp.nan_to_num(fnp.array([float("nan"), 1.0]))
    array([0., 1.], dtype=float32)
    """
    x = as_array(x)
    if x.dtype.kind not in "fc":
        return x
    info = np.finfo(x.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    x = where(isnan(x), nan, x)
    x = where(x == np.inf, posinf, x)
    return where(x == -np.inf, neginf, x)
