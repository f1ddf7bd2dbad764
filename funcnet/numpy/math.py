"""Elementwise functions of ``funcnet.numpy`` (ufunc-like, NumPy broadcasting).

>>> import funcnet.numpy as fnp
>>> fnp.add(fnp.ones(2), 1.0)
array([2., 2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.trace import state
from funcnet.numpy.conversion import as_array, as_operand, asarray
from funcnet.ops import elementwise as ew
from funcnet.ops.elementwise import convert_element_type

_ND = np.ndarray


def _binary(prim, x, y):
    if state.eager and type(x) is _ND and type(y) is _ND:
        return prim.bind(x, y)
    x, y = as_operand(x), as_operand(y)
    if not hasattr(x, "dtype") and not hasattr(y, "dtype"):
        x = asarray(x)
    return prim.bind(x, y)


def _float_operand(x):
    """Integers and bools are promoted to float for true division, roots, logs..."""
    x = as_array(x)
    if x.dtype.kind in "biu":
        x = convert_element_type(x, np.promote_types(x.dtype, np.float16))
    return x


def _float_binary(prim, x, y):
    x, y = as_operand(x), as_operand(y)
    kinds = [v.dtype.kind if hasattr(v, "dtype") else np.asarray(v).dtype.kind
             for v in (x, y)]
    if all(k in "biu" for k in kinds):
        x = _float_operand(x)
    if not hasattr(x, "dtype") and not hasattr(y, "dtype"):
        x = asarray(x)
    return prim.bind(x, y)


def add(x, y):
    """Elementwise ``x + y``.

    >>> import funcnet.numpy as fnp
    >>> fnp.add(1, 2)
    array(3)
    """
    return _binary(ew.add_p, x, y)


def subtract(x, y):
    """Elementwise ``x - y``."""
    return _binary(ew.sub_p, x, y)


def multiply(x, y):
    """Elementwise ``x * y``."""
    return _binary(ew.mul_p, x, y)


def divide(x, y):
    """Elementwise true division ``x / y`` (integers promote to float, as in NumPy).

    >>> import funcnet.numpy as fnp
    >>> fnp.divide(fnp.array([1, 2]), 2)
    array([0.5, 1. ])
    """
    return _float_binary(ew.div_p, x, y)


true_divide = divide


def floor_divide(x, y):
    """Elementwise ``x // y``."""
    return _binary(ew.floor_divide_p, x, y)


def mod(x, y):
    """Elementwise remainder with the sign of ``y`` (NumPy's ``mod``)."""
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
    """Elementwise maximum (NaN propagates)."""
    return _binary(ew.max_p, x, y)


def minimum(x, y):
    """Elementwise minimum (NaN propagates)."""
    return _binary(ew.min_p, x, y)


def fmax(x, y):
    """Elementwise maximum that ignores NaN when the other value is a number."""
    x, y = as_operand(x), as_operand(y)
    return where(isnan(x), y, where(isnan(y), x, maximum(x, y)))


def fmin(x, y):
    """Elementwise minimum that ignores NaN when the other value is a number."""
    x, y = as_operand(x), as_operand(y)
    return where(isnan(x), y, where(isnan(y), x, minimum(x, y)))


def arctan2(x1, x2):
    """Elementwise ``arctan(x1 / x2)`` with the quadrant chosen by the signs."""
    return _float_binary(ew.atan2_p, x1, x2)


def hypot(x1, x2):
    """``sqrt(x1**2 + x2**2)`` without overflow for large inputs.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.hypot(3.0, 4.0))
    5.0
    """
    a, b = abs(as_operand(x1)), abs(as_operand(x2))
    big = maximum(a, b)
    small = minimum(a, b)
    safe_big = where(big == 0, 1.0, big)
    ratio = small / safe_big
    return where(big == 0, 0.0, big * sqrt(1 + ratio * ratio))


def logaddexp(x1, x2):
    """``log(exp(x1) + exp(x2))``, stable for large inputs.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.logaddexp(1000.0, 1000.0)) > 1000
    True
    """
    x1, x2 = as_operand(x1), as_operand(x2)
    hi = maximum(x1, x2)
    hi_safe = where(isfinite(hi), hi, 0.0)
    delta = where(x1 == x2, 0.0, -abs(x1 - x2))
    return where(isfinite(hi), hi_safe + log1p(exp(delta)), hi)


def _unary(prim, float_only=True):
    def fn(x):
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
_DOCS = {
    "negative": "Elementwise ``-x``.", "sign": "Elementwise sign (-1, 0 or 1).",
    "absolute": "Elementwise ``|x|``.", "exp": "Elementwise ``e**x``.",
    "expm1": "Elementwise ``exp(x) - 1``, accurate near 0.",
    "log": "Elementwise natural logarithm.", "log1p": "Elementwise ``log(1 + x)``, accurate near 0.",
    "sqrt": "Elementwise square root.", "cbrt": "Elementwise cube root.",
    "sin": "Elementwise sine.", "cos": "Elementwise cosine.", "tan": "Elementwise tangent.",
    "arcsin": "Elementwise inverse sine.", "arccos": "Elementwise inverse cosine.",
    "arctan": "Elementwise inverse tangent.", "sinh": "Elementwise hyperbolic sine.",
    "cosh": "Elementwise hyperbolic cosine.", "tanh": "Elementwise hyperbolic tangent.",
    "arcsinh": "Elementwise inverse hyperbolic sine.",
    "arccosh": "Elementwise inverse hyperbolic cosine.",
    "arctanh": "Elementwise inverse hyperbolic tangent.",
}
for _name, _doc in _DOCS.items():
    _f = globals()[_name]
    _f.__name__ = _f.__qualname__ = _name
    _f.__doc__ = (f"{_doc}\n\n    >>> import funcnet.numpy as fnp\n"
                  f"    >>> fnp.{_name}(fnp.array([0.5])).shape\n    (1,)\n    ")
del _name, _doc, _f


def positive(x):
    """Elementwise ``+x`` (returns ``x``)."""
    return as_array(x)


def exp2(x):
    """Elementwise ``2**x``.

    >>> import funcnet.numpy as fnp
    >>> float(fnp.exp2(3.0))
    8.0
    """
    x = _float_operand(x)
    return exp(x * np.log(2.0))


def log2(x):
    """Elementwise base-2 logarithm."""
    return log(x) / np.log(2.0)


def log10(x):
    """Elementwise base-10 logarithm."""
    return log(x) / np.log(10.0)


def square(x):
    """Elementwise ``x * x``."""
    x = as_array(x)
    return x * x


def reciprocal(x):
    """Elementwise ``1 / x`` (integers keep NumPy's integer semantics via ``divide``)."""
    return divide(1, as_array(x)) if as_array(x).dtype.kind in "fc" else divide(1.0, x)


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
floor.__doc__ = "Elementwise floor (integers pass through)."
ceil.__doc__ = "Elementwise ceiling (integers pass through)."
trunc.__doc__ = "Elementwise rounding towards zero (integers pass through)."


def round(x, decimals: int = 0):  # noqa: A001
    """Round half to even, to ``decimals`` places (like ``np.round``).

    >>> import funcnet.numpy as fnp
    >>> fnp.round(fnp.array([0.5, 1.5, 2.25]), 1)
    array([0.5, 1.5, 2.2], dtype=float32)
    """
    x = as_array(x)
    if x.dtype.kind in "biu" and decimals >= 0:
        return x
    if decimals == 0:
        return ew.round_p.bind(x)
    scale = 10.0 ** decimals
    return ew.round_p.bind(x * scale) / scale


around = round


# ---------------------------------------------------------------------------
# comparisons and logic


def equal(x, y):
    """Elementwise ``x == y``."""
    return _binary(ew.eq_p, x, y)


def not_equal(x, y):
    """Elementwise ``x != y``."""
    return _binary(ew.ne_p, x, y)


def less(x, y):
    """Elementwise ``x < y``."""
    return _binary(ew.lt_p, x, y)


def less_equal(x, y):
    """Elementwise ``x <= y``."""
    return _binary(ew.le_p, x, y)


def greater(x, y):
    """Elementwise ``x > y``."""
    return _binary(ew.gt_p, x, y)


def greater_equal(x, y):
    """Elementwise ``x >= y``."""
    return _binary(ew.ge_p, x, y)


def _as_bool(x):
    x = as_array(x)
    return x if x.dtype == np.bool_ else not_equal(x, 0)


def logical_and(x, y):
    """Elementwise logical and."""
    return ew.and_p.bind(_as_bool(x), _as_bool(y))


def logical_or(x, y):
    """Elementwise logical or."""
    return ew.or_p.bind(_as_bool(x), _as_bool(y))


def logical_xor(x, y):
    """Elementwise logical exclusive or."""
    return ew.xor_p.bind(_as_bool(x), _as_bool(y))


def logical_not(x):
    """Elementwise logical not.

    >>> import funcnet.numpy as fnp
    >>> fnp.logical_not(fnp.array([0, 2]))
    array([ True, False])
    """
    return ew.not_p.bind(_as_bool(x))


def bitwise_and(x, y):
    """Elementwise ``x & y`` on integers and bools."""
    return _binary(ew.and_p, x, y)


def bitwise_or(x, y):
    """Elementwise ``x | y`` on integers and bools."""
    return _binary(ew.or_p, x, y)


def bitwise_xor(x, y):
    """Elementwise ``x ^ y`` on integers and bools."""
    return _binary(ew.xor_p, x, y)


def invert(x):
    """Elementwise ``~x`` on integers and bools."""
    return ew.not_p.bind(as_array(x))


bitwise_not = invert


def left_shift(x, y):
    """Elementwise ``x << y``."""
    return _binary(ew.shift_left_p, x, y)


def right_shift(x, y):
    """Elementwise logical right shift ``x >> y``."""
    return _binary(ew.shift_right_logical_p, x, y)


def isfinite(x):
    """True where ``x`` is neither infinite nor NaN."""
    x = as_array(x)
    if x.dtype.kind in "biu":
        return logical_not(ew.ne_p.bind(x, x))
    return ew.is_finite_p.bind(x)


def isnan(x):
    """True where ``x`` is NaN."""
    x = as_array(x)
    return ew.ne_p.bind(x, x)


def isinf(x):
    """True where ``x`` is +inf or -inf."""
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
        x = asarray(x)
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
