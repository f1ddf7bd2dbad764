"""Elementwise primitives (NumPy broadcasting, NumPy 2 promotion) and their rules.

Each primitive's kernel is NumPy's ufunc of the same meaning (``neg`` →
``np.negative``); its JVP and transpose rules sit beside it here.

>>> import numpy as np
>>> from funcnet.ops.elementwise import mul
>>> mul(np.float32(2), 3.0)
array(6., dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray
from funcnet.core.primitive import Primitive
from funcnet.ops.rules import (
    defjvp,
    defjvp_zero,
    deflinear,
    elementwise_abstract_eval,
    is_undefined,
    linear_transpose_elementwise,
    unbroadcast,
)
from funcnet.transforms.ad import UndefinedPrimal, Zero, zeros_like_aval


def _elementwise(name: str, nargs: int, out_dtype=None, float_only=False) -> Primitive:
    p = Primitive(name)

    def abstract_eval(*avals, **params):
        if len(avals) != nargs:
            raise TypeError(f"{name} takes {nargs} operands, got {len(avals)}")
        if float_only:
            for a in avals:
                if a.dtype.kind not in "fc":
                    raise TypeError(f"{name} requires floating-point operands, got {a.str_short()}")
        try:
            return elementwise_abstract_eval(*avals, out_dtype=out_dtype)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None

    p.abstract_eval = abstract_eval
    return p


# ---------------------------------------------------------------------------
# Binary arithmetic

add_p = _elementwise("add", 2)
sub_p = _elementwise("sub", 2)
mul_p = _elementwise("mul", 2)
div_p = _elementwise("div", 2)
pow_p = _elementwise("pow", 2)
max_p = _elementwise("max", 2)
min_p = _elementwise("min", 2)
atan2_p = _elementwise("atan2", 2, float_only=True)
rem_p = _elementwise("rem", 2)
floor_divide_p = _elementwise("floor_divide", 2)


def add(x, y):
    return add_p.bind(x, y)


def sub(x, y):
    return sub_p.bind(x, y)


def mul(x, y):
    return mul_p.bind(x, y)


def div(x, y):
    return div_p.bind(x, y)


def pow(x, y):
    return pow_p.bind(x, y)


def maximum(x, y):
    return max_p.bind(x, y)


def minimum(x, y):
    return min_p.bind(x, y)


def atan2(x, y):
    return atan2_p.bind(x, y)


def rem(x, y):
    return rem_p.bind(x, y)


def floor_divide(x, y):
    return floor_divide_p.bind(x, y)


defjvp(add_p, lambda t, ans, x, y: t, lambda t, ans, x, y: t)
add_p.transpose = linear_transpose_elementwise(lambda ct, i, x, y: ct)
add_p.linear = True

defjvp(sub_p, lambda t, ans, x, y: t, lambda t, ans, x, y: neg(t))
sub_p.transpose = linear_transpose_elementwise(lambda ct, i, x, y: ct if i == 0 else neg(ct))
sub_p.linear = True

defjvp(mul_p, lambda t, ans, x, y: mul(t, y), lambda t, ans, x, y: mul(x, t))


def _mul_transpose(ct, x, y):
    ux, uy = type(x) is UndefinedPrimal, type(y) is UndefinedPrimal
    if ux and uy:
        raise TypeError("mul of two linear values is not linear")
    if ux:
        return [unbroadcast(mul_p.bind(ct, y), x.aval), None]
    return [None, unbroadcast(mul_p.bind(x, ct), y.aval)]


mul_p.transpose = _mul_transpose

defjvp(div_p, lambda t, ans, x, y: div(t, y),
       lambda t, ans, x, y: neg(mul(t, div(ans, y))))


def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise TypeError("division by a linear value is not linear")
    return [unbroadcast(div(ct, y), x.aval), None]


div_p.transpose = _div_transpose


def _pow_jvp_x(t, ans, x, y):
    # d/dx x**y = y * x**(y-1).  Only at x == 0 and y == 0 is that 0 * inf: there x**0
    # is constant, so the derivative is 0.  (Selecting on y == 0 alone would also
    # zero the mixed second derivative d/dy d/dx = 1/x at y == 0.)
    both_zero = bitwise_and(eq(y, 0), eq(x, 0))
    y_minus_1 = y - 1 if type(y) in (int, float) else sub(y, 1)  # keep Python scalars weak
    return mul(t, select(both_zero, 0.0, mul(y, pow(x, y_minus_1))))


def _pow_jvp_y(t, ans, x, y):
    # d/dy x**y = log(x) * x**y; define it as 0 where x == 0 (x**y is 0 or 1 there).
    zero_x = eq(x, 0)
    safe_x = select(zero_x, 1.0, x)
    return mul(t, select(zero_x, 0.0, mul(ans, log(safe_x))))


defjvp(pow_p, _pow_jvp_x, _pow_jvp_y)


def _minmax_weights(winner, loser, ans):
    """1 where ``winner`` wins, 0 where it loses, 1/2 at ties (the gradient is shared).

    Written as ``(sign(winner - loser) + 1) / 2``: four cheap elementwise passes.
    """
    w = mul(add(sign(sub(winner, loser)), 1), 0.5)
    return convert_element_type(w, ans.dtype)


# max: x wins where x > y; min: x wins where x < y
defjvp(max_p, lambda t, ans, x, y: mul(t, _minmax_weights(x, y, ans)),
       lambda t, ans, x, y: mul(t, _minmax_weights(y, x, ans)))
defjvp(min_p, lambda t, ans, x, y: mul(t, _minmax_weights(y, x, ans)),
       lambda t, ans, x, y: mul(t, _minmax_weights(x, y, ans)))

defjvp(atan2_p,
       lambda t, ans, x, y: mul(t, div(y, add(mul(x, x), mul(y, y)))),
       lambda t, ans, x, y: mul(t, div(neg(x), add(mul(x, x), mul(y, y)))))

# x mod y = x - y * floor(x / y): d/dx = 1, d/dy = -floor(x / y).  (x - ans) / y is
# that integer up to rounding, so round it: floor could land one below it.
defjvp(rem_p, lambda t, ans, x, y: t,
       lambda t, ans, x, y: mul(neg(t), round(div(sub(x, ans), y))))
defjvp_zero(floor_divide_p)

# ---------------------------------------------------------------------------
# Unary math


def _unary(name: str, float_only: bool = True) -> Primitive:
    return _elementwise(name, 1, float_only=float_only)


neg_p = _unary("neg", float_only=False)
sign_p = _unary("sign", float_only=False)
abs_p = _unary("abs", float_only=False)
floor_p = _unary("floor", float_only=False)
ceil_p = _unary("ceil", float_only=False)
round_p = _unary("round", float_only=False)
trunc_p = _unary("trunc", float_only=False)
exp_p = _unary("exp")
expm1_p = _unary("expm1")
log_p = _unary("log")
log1p_p = _unary("log1p")
sqrt_p = _unary("sqrt")
cbrt_p = _unary("cbrt")
sin_p = _unary("sin")
cos_p = _unary("cos")
tan_p = _unary("tan")
asin_p = _unary("asin")
acos_p = _unary("acos")
atan_p = _unary("atan")
sinh_p = _unary("sinh")
cosh_p = _unary("cosh")
tanh_p = _unary("tanh")
asinh_p = _unary("asinh")
acosh_p = _unary("acosh")
atanh_p = _unary("atanh")
logistic_p = _unary("logistic")
erf_p = _unary("erf")


def neg(x):
    return neg_p.bind(x)


def sign(x):
    return sign_p.bind(x)


def abs(x):  # noqa: A001 - mirrors NumPy's name
    return abs_p.bind(x)


def floor(x):
    return floor_p.bind(x)


def ceil(x):
    return ceil_p.bind(x)


def round(x):  # noqa: A001
    return round_p.bind(x)


def trunc(x):
    return trunc_p.bind(x)


def exp(x):
    return exp_p.bind(x)


def expm1(x):
    return expm1_p.bind(x)


def log(x):
    return log_p.bind(x)


def log1p(x):
    return log1p_p.bind(x)


def sqrt(x):
    return sqrt_p.bind(x)


def cbrt(x):
    return cbrt_p.bind(x)


def sin(x):
    return sin_p.bind(x)


def cos(x):
    return cos_p.bind(x)


def tan(x):
    return tan_p.bind(x)


def asin(x):
    return asin_p.bind(x)


def acos(x):
    return acos_p.bind(x)


def atan(x):
    return atan_p.bind(x)


def sinh(x):
    return sinh_p.bind(x)


def cosh(x):
    return cosh_p.bind(x)


def tanh(x):
    return tanh_p.bind(x)


def asinh(x):
    return asinh_p.bind(x)


def acosh(x):
    return acosh_p.bind(x)


def atanh(x):
    return atanh_p.bind(x)


def logistic(x):
    return logistic_p.bind(x)


def erf(x):
    return erf_p.bind(x)


deflinear(neg_p, lambda ct, x: [neg(ct)])
defjvp_zero(sign_p)
defjvp_zero(floor_p)
defjvp_zero(ceil_p)
defjvp_zero(round_p)
defjvp_zero(trunc_p)


def _abs_abstract_eval(x):
    # |z| of a complex z is real, of the components' precision (complex64 -> float32).
    out = elementwise_abstract_eval(x)
    if out.dtype.kind == "c":
        return ShapedArray(out.shape, np.dtype(out.dtype.char.lower()), out.weak_type)
    return out


def _abs_jvp(t, ans, x):
    if np.dtype(x.dtype).kind != "c":
        return mul(t, sign(x))
    # d|z| = Re(conj(z) dz) / |z|, taken as 0 at z == 0 (double-where safe).
    from funcnet.ops.fft import complex_, conj, real

    at_zero = eq(ans, 0)
    safe = select(at_zero, 1.0, ans)
    unit = div(x, complex_(safe, zeros_like_aval(ShapedArray(np.shape(ans), ans.dtype))))
    return real(mul(conj(unit), t))


abs_p.abstract_eval = _abs_abstract_eval
defjvp(abs_p, _abs_jvp)
defjvp(exp_p, lambda t, ans, x: mul(t, ans))
defjvp(expm1_p, lambda t, ans, x: mul(t, add(ans, 1)))
defjvp(log_p, lambda t, ans, x: div(t, x))
defjvp(log1p_p, lambda t, ans, x: div(t, add(x, 1)))
defjvp(sqrt_p, lambda t, ans, x: div(t, mul(ans, 2)))
defjvp(cbrt_p, lambda t, ans, x: div(t, mul(mul(ans, ans), 3)))
defjvp(sin_p, lambda t, ans, x: mul(t, cos(x)))
defjvp(cos_p, lambda t, ans, x: neg(mul(t, sin(x))))
defjvp(tan_p, lambda t, ans, x: mul(t, add(mul(ans, ans), 1)))
defjvp(asin_p, lambda t, ans, x: div(t, sqrt(sub(1, mul(x, x)))))
defjvp(acos_p, lambda t, ans, x: neg(div(t, sqrt(sub(1, mul(x, x))))))
defjvp(atan_p, lambda t, ans, x: div(t, add(mul(x, x), 1)))
defjvp(sinh_p, lambda t, ans, x: mul(t, cosh(x)))
defjvp(cosh_p, lambda t, ans, x: mul(t, sinh(x)))
defjvp(tanh_p, lambda t, ans, x: mul(t, sub(1, mul(ans, ans))))
defjvp(asinh_p, lambda t, ans, x: div(t, sqrt(add(mul(x, x), 1))))
defjvp(acosh_p, lambda t, ans, x: div(t, mul(sqrt(sub(x, 1)), sqrt(add(x, 1)))))
defjvp(atanh_p, lambda t, ans, x: div(t, sub(1, mul(x, x))))
defjvp(logistic_p, lambda t, ans, x: mul(t, mul(ans, sub(1, ans))))
_TWO_OVER_SQRT_PI = float(2 / np.sqrt(np.pi))  # a Python float: weak, keeps float32 float32
defjvp(erf_p, lambda t, ans, x: mul(t, mul(_TWO_OVER_SQRT_PI, exp(neg(mul(x, x))))))

# ---------------------------------------------------------------------------
# Comparisons, logic, predicates (boolean results, zero derivative)

_BOOL = np.dtype(np.bool_)
eq_p = _elementwise("eq", 2, out_dtype=_BOOL)
ne_p = _elementwise("ne", 2, out_dtype=_BOOL)
lt_p = _elementwise("lt", 2, out_dtype=_BOOL)
le_p = _elementwise("le", 2, out_dtype=_BOOL)
gt_p = _elementwise("gt", 2, out_dtype=_BOOL)
ge_p = _elementwise("ge", 2, out_dtype=_BOOL)
is_finite_p = _elementwise("is_finite", 1, out_dtype=_BOOL)
and_p = _elementwise("and", 2)
or_p = _elementwise("or", 2)
xor_p = _elementwise("xor", 2)
not_p = _elementwise("not", 1)
shift_left_p = _elementwise("shift_left", 2)
shift_right_logical_p = _elementwise("shift_right_logical", 2)
for _p in (eq_p, ne_p, lt_p, le_p, gt_p, ge_p, is_finite_p, and_p, or_p, xor_p, not_p,
           shift_left_p, shift_right_logical_p):
    defjvp_zero(_p)


def eq(x, y):
    return eq_p.bind(x, y)


def ne(x, y):
    return ne_p.bind(x, y)


def lt(x, y):
    return lt_p.bind(x, y)


def le(x, y):
    return le_p.bind(x, y)


def gt(x, y):
    return gt_p.bind(x, y)


def ge(x, y):
    return ge_p.bind(x, y)


def is_finite(x):
    return is_finite_p.bind(x)


def bitwise_and(x, y):
    return and_p.bind(x, y)


def bitwise_or(x, y):
    return or_p.bind(x, y)


def bitwise_xor(x, y):
    return xor_p.bind(x, y)


def bitwise_not(x):
    return not_p.bind(x)


def shift_left(x, y):
    return shift_left_p.bind(x, y)


def shift_right_logical(x, y):
    return shift_right_logical_p.bind(x, y)


# ---------------------------------------------------------------------------
# select (where) and dtype conversion

select_p = Primitive("select")


def select(pred, on_true, on_false):
    """``on_true`` where ``pred`` else ``on_false`` (broadcasting, like ``np.where``)."""
    return select_p.bind(pred, on_true, on_false)


def _select_abstract_eval(pred, x, y):
    if pred.dtype != _BOOL:
        raise TypeError(f"select's predicate must be bool, got {pred.str_short()}")
    out = elementwise_abstract_eval(x, y)
    shape = elementwise_abstract_eval(pred, out).shape
    return ShapedArray(shape, out.dtype, out.weak_type)


select_p.abstract_eval = _select_abstract_eval


def _select_jvp(primals, tangents):
    pred, x, y = primals
    ans = select(pred, x, y)
    _, tx, ty = tangents
    if type(tx) is Zero and type(ty) is Zero:
        return ans, Zero(ShapedArray(ans.shape, ans.dtype))
    from funcnet.ops.rules import fit_tangent

    aval = ShapedArray(np.shape(ans), ans.dtype)
    tx = 0.0 if type(tx) is Zero else fit_tangent(tx, aval)
    ty = 0.0 if type(ty) is Zero else fit_tangent(ty, aval)
    return ans, fit_tangent(select(pred, tx, ty), aval)


def _select_transpose(ct, pred, x, y):
    if is_undefined(pred):
        raise TypeError("select is not linear in its predicate")
    return [None,
            unbroadcast(select(pred, ct, 0.0), x.aval) if is_undefined(x) else None,
            unbroadcast(select(pred, 0.0, ct), y.aval) if is_undefined(y) else None]


select_p.jvp = _select_jvp
select_p.transpose = _select_transpose
select_p.linear = True

convert_element_type_p = Primitive("convert_element_type")


def convert_element_type(x, dtype, weak_type: bool = False):
    """Cast ``x`` to ``dtype`` (a no-op when it already has it)."""
    dtype = np.dtype(dtype)
    if getattr(x, "dtype", None) == dtype and not weak_type:
        return x
    return convert_element_type_p.bind(x, new_dtype=dtype, weak_type=weak_type)


convert_element_type_p.abstract_eval = lambda x, *, new_dtype, weak_type: ShapedArray(
    x.shape, new_dtype, weak_type)


def _convert_jvp(primals, tangents, *, new_dtype, weak_type):
    (x,), (t,) = primals, tangents
    ans = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type)
    if type(t) is Zero or new_dtype.kind not in "fc":
        return ans, Zero(ShapedArray(np.shape(ans), new_dtype))
    return ans, convert_element_type_p.bind(t, new_dtype=new_dtype, weak_type=weak_type)


def _convert_transpose(ct, x, *, new_dtype, weak_type):
    return [convert_element_type_p.bind(ct, new_dtype=x.aval.dtype, weak_type=x.aval.weak_type)]


convert_element_type_p.jvp = _convert_jvp
convert_element_type_p.transpose = _convert_transpose
convert_element_type_p.linear = True

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.abstract_eval = lambda x: x
defjvp_zero(stop_gradient_p)
stop_gradient_p.differentiable = True  # defined everywhere: its derivative is zero


def stop_gradient(x):
    """``x``, with a zero derivative: gradients do not flow through it.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> float(fn.grad(lambda x: x * fn.stop_gradient(x))(3.0))
    3.0
    """
    return stop_gradient_p.bind(x)


del _p

# ---------------------------------------------------------------------------
# Batching rules (vmap)


def _batch_same_dim(prim):
    def rule(vals, dims, **params):
        return prim.bind(*vals, **params), dims[0]

    return rule


def _install_batching_rules() -> None:
    from funcnet.transforms.batching import batch_elementwise

    for name, value in list(globals().items()):
        if not (name.endswith("_p") and isinstance(value, Primitive)):
            continue
        if value in (convert_element_type_p, stop_gradient_p):
            value.batch = _batch_same_dim(value)
        else:
            value.batch = batch_elementwise(value)


_install_batching_rules()
