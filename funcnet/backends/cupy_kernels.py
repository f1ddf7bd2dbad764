"""CuPy kernels: one per primitive name, over ``cupy.ndarray``, matching the NumPy backend.

The table mirrors ``numpy_backend._KERNELS`` name for name.  It is built by
``make_kernels(cp, cpx)`` from the ``cupy`` and ``cupyx`` modules it is given,
so nothing here imports CuPy (the tests also build it over a CPU stand-in).

Dtypes follow NumPy exactly, whatever CuPy's own promotion rules: an
elementwise kernel asks NumPy which loop it would run
(``ufunc.resolve_dtypes``; Python scalars stay weak, as in NumPy 2), casts
its operands to that loop's dtypes and runs CuPy's ufunc, so the two
backends give the same dtype for the same operands.

This module also writes CUDA C for elementwise primitives
(``elementwise_c``): the backend's ``compile`` fuses chains of them into one
``cupy.ElementwiseKernel``, and a few primitives whose CuPy ufunc differs
from NumPy at the edges (shifts by the bit width or more, ``logistic``,
``erf``) run such a kernel eagerly too.

>>> import numpy as np
>>> from funcnet.core.aval import ShapedArray
>>> f32 = ShapedArray((3,), np.float32)
>>> elementwise_c("mul", "t1", f32, [("a0", f32), (2.0, None)], {})
['float t1 = (float)((a0) * ((float)(2.0)));']
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from funcnet.backends.base import has_advanced_index, index_tuple
from funcnet.core.aval import result_dtype

# ---------------------------------------------------------------------------
# CUDA C for elementwise primitives

#: C type of each dtype a generated kernel may use (CuPy's own names for them).
C_TYPES = {
    np.dtype(np.bool_): "bool",
    np.dtype(np.int8): "signed char", np.dtype(np.uint8): "unsigned char",
    np.dtype(np.int16): "short", np.dtype(np.uint16): "unsigned short",
    np.dtype(np.int32): "int", np.dtype(np.uint32): "unsigned int",
    np.dtype(np.int64): "long long", np.dtype(np.uint64): "unsigned long long",
    np.dtype(np.float32): "float", np.dtype(np.float64): "double",
}
_UNSIGNED_C = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int",
               8: "unsigned long long"}

_BINARY_C = {
    "add": "{0} + {1}", "add_any": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}",
    "div": "{0} / {1}", "pow": "pow({0}, {1})", "atan2": "atan2({0}, {1})",
    # NumPy's maximum/minimum: NaN wins (either side)
    "max": "(({0} >= {1} || {0} != {0}) ? {0} : {1})",
    "min": "(({0} <= {1} || {0} != {0}) ? {0} : {1})",
    "and": "{0} & {1}", "or": "{0} | {1}", "xor": "{0} ^ {1}",
}
_COMPARE_C = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_FLOAT_FUNCS = {
    "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p", "sqrt": "sqrt",
    "cbrt": "cbrt", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos",
    "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh",
    "acosh": "acosh", "atanh": "atanh", "erf": "erf",
}
_ROUNDING = {"floor": "floor", "ceil": "ceil", "trunc": "trunc", "round": "rint"}
_FLOAT_ONLY = frozenset({"div", "pow", "atan2", "logistic"} | set(_FLOAT_FUNCS))
# (np.round of a bool array is float16, unlike the graph's bool: never fused)
_NOT_BOOL = frozenset({"sub", "neg", "sign", "shift_left", "shift_right_logical", "round"})
_INT_ONLY = frozenset({"shift_left", "shift_right_logical"})

#: Primitives ``elementwise_c`` can write (the fusible set).
FUSIBLE_PRIMITIVES = frozenset(
    set(_BINARY_C) | set(_COMPARE_C) | set(_FLOAT_FUNCS) | set(_ROUNDING)
    | {"neg", "sign", "abs", "not", "logistic", "is_finite", "select", "convert_element_type",
       "stop_gradient", "shift_left", "shift_right_logical"})


def c_cast(expr: str, src: np.dtype, dst: np.dtype) -> str:
    """``expr`` (of dtype ``src``) converted to ``dst`` as NumPy's ``astype`` does."""
    if src == dst:
        return expr
    if dst == np.bool_:
        return f"(({expr}) != 0)"
    return f"(({C_TYPES[dst]})({expr}))"


def c_literal(value, dtype: np.dtype) -> str | None:
    """A Python scalar as a C constant of ``dtype``; None when it has no exact literal
    (NaN, infinities, complex, or an integer that does not fit ``dtype``)."""
    dtype = np.dtype(dtype)
    if isinstance(value, complex) or dtype not in C_TYPES:
        return None
    if dtype == np.bool_:
        return "true" if value else "false"
    if dtype.kind == "f":
        v = float(value)
        if not math.isfinite(v):
            return None
        return f"(({C_TYPES[dtype]})({v!r}))"
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    info = np.iinfo(dtype)
    v = int(value)
    if not info.min <= v <= info.max:
        return None
    if v == -(2 ** 63):
        return f"(({C_TYPES[dtype]})(-9223372036854775807LL - 1))"
    suffix = "LL" if v < 0 else "ULL"
    return f"(({C_TYPES[dtype]})({v}{suffix}))"


def _compute_dtype(name: str, out_dtype: np.dtype, in_avals) -> np.dtype:
    if name in _COMPARE_C:
        return result_dtype(*in_avals)[0]
    if name == "is_finite":
        return in_avals[0].dtype
    return out_dtype


def elementwise_c(name: str, out: str, out_aval, ins, params,
                  literal: Callable = c_literal) -> list[str] | None:
    """C statements that declare ``out`` and compute primitive ``name`` into it.

    ``ins`` lists ``(expr, aval)`` per operand: a C expression of the operand's
    dtype, or (with ``aval`` None) a Python scalar literal.  Literal operands
    take the computation's dtype, written by ``literal(value, dtype)``
    (``c_literal``; a caller may map non-finite values to kernel arguments).
    Returns None when the primitive, its dtypes or a literal cannot be written
    exactly (the caller then runs the ordinary kernel instead).

    >>> import numpy as np
    >>> from funcnet.core.aval import ShapedArray
    >>> u32 = ShapedArray((4,), np.uint32)
    >>> print(elementwise_c("shift_left", "t", u32, [("a", u32), (13, None)], {})[0])
    unsigned int t = (unsigned int)(((unsigned long long)((unsigned int)(13ULL)) < 32ULL ?
    (unsigned int)((unsigned int)(a) << ((unsigned int)(13ULL))) : (unsigned int)0));
    """
    if name not in FUSIBLE_PRIMITIVES:
        return None
    from funcnet.core.aval import get_aval

    out_dtype = np.dtype(out_aval.dtype)
    if out_dtype not in C_TYPES:
        return None
    avals = [a if a is not None else get_aval(e) for e, a in ins]
    if any(a.dtype not in C_TYPES for a in avals):
        return None
    if name == "convert_element_type":
        if np.dtype(params["new_dtype"]) != out_dtype:
            return None
    elif params:
        return None
    t = _compute_dtype(name, out_dtype, avals)
    if t not in C_TYPES:
        return None
    kind = t.kind
    if name in _FLOAT_ONLY and kind != "f":
        return None
    if name in _NOT_BOOL and kind == "b":
        return None
    if name in _INT_ONLY and kind not in "iu":
        return None
    ct = C_TYPES[t]
    if name in ("select", "convert_element_type", "stop_gradient", "is_finite"):
        op_types = [a.dtype for a in avals]  # these cast (or test) their operands themselves
    else:
        op_types = [t] * len(ins)
    if name == "select":
        op_types = [np.dtype(np.bool_), t, t]
    args = []
    for (expr, aval), a, want in zip(ins, avals, op_types):
        if aval is None:  # a Python scalar literal
            lit = literal(expr, want)
            if lit is None:
                return None
            args.append(lit)
        else:
            args.append(f"({c_cast(expr, a.dtype, want)})" if a.dtype != want else f"({expr})")
    oc = C_TYPES[out_dtype]
    pre: list[str] = []
    if name in _BINARY_C:
        expr = _BINARY_C[name].format(*args)
    elif name in _COMPARE_C:
        expr = f"{args[0]} {_COMPARE_C[name]} {args[1]}"
    elif name in _FLOAT_FUNCS:
        expr = f"{_FLOAT_FUNCS[name]}({args[0]})"
    elif name in _ROUNDING:
        expr = f"{_ROUNDING[name]}({args[0]})" if kind == "f" else args[0]
    elif name == "neg":
        expr = f"-{args[0]}"
    elif name == "abs":
        if kind == "f":
            expr = f"fabs({args[0]})"
        elif kind == "i":
            expr = f"({args[0]} < 0 ? -{args[0]} : {args[0]})"
        else:
            expr = args[0]
    elif name == "sign":
        a = args[0]
        if kind == "f":  # NaN stays NaN; -0.0 and 0.0 give 0.0
            expr = f"({a} > 0 ? ({ct})1 : ({a} < 0 ? ({ct})-1 : ({a} == 0 ? ({ct})0 : {a})))"
        elif kind == "i":
            expr = f"({a} > 0) - ({a} < 0)"
        else:
            expr = f"({a} > 0)"
    elif name == "not":
        expr = f"!{args[0]}" if kind == "b" else f"~{args[0]}"
    elif name == "logistic":  # the NumPy backend's formula, stable for large |x|
        e = f"{out}_e"
        pre.append(f"{ct} {e} = exp(-fabs({args[0]}));")
        expr = f"({args[0]} >= 0 ? ({ct})1 / (({ct})1 + {e}) : {e} / (({ct})1 + {e}))"
    elif name == "is_finite":
        expr = f"isfinite({args[0]})" if avals[0].dtype.kind == "f" else "true"
    elif name == "select":
        expr = f"({args[0]} ? {args[1]} : {args[2]})"
    elif name in ("convert_element_type", "stop_gradient"):
        src = avals[0].dtype
        if ins[0][1] is None:  # a literal: written directly in the target dtype
            lit = literal(ins[0][0], out_dtype)
            if lit is None:
                return None
            return [f"{oc} {out} = {lit};"]
        return [f"{oc} {out} = {c_cast(ins[0][0], src, out_dtype)};"]
    elif name in ("shift_left", "shift_right_logical"):
        # NumPy: a shift by the bit width or more (or a negative one) gives 0
        ut = _UNSIGNED_C[t.itemsize]
        op = "<<" if name == "shift_left" else ">>"
        bits = 8 * t.itemsize
        expr = (f"((unsigned long long){args[1]} < {bits}ULL ? "
                f"({ct})(({ut}){args[0]} {op} {args[1]}) : ({ct})0)")
    else:  # pragma: no cover - FUSIBLE_PRIMITIVES and the branches above agree
        raise AssertionError(name)
    return pre + [f"{oc} {out} = ({oc})({expr});"]


# ---------------------------------------------------------------------------
# The kernel table

#: NumPy ufunc of each primitive run by a CuPy ufunc of the same name.
_UFUNCS = {
    "add_any": "add", "add": "add", "sub": "subtract", "mul": "multiply",
    "div": "true_divide", "pow": "power", "max": "maximum", "min": "minimum",
    "atan2": "arctan2", "rem": "remainder", "floor_divide": "floor_divide",
    "neg": "negative", "sign": "sign", "abs": "absolute", "floor": "floor", "ceil": "ceil",
    "trunc": "trunc", "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p",
    "sqrt": "sqrt", "cbrt": "cbrt", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "arcsin", "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh",
    "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
    "ge": "greater_equal", "is_finite": "isfinite", "and": "bitwise_and",
    "or": "bitwise_or", "xor": "bitwise_xor", "not": "invert", "conj": "conjugate",
}

#: Every primitive name the CuPy table holds (known without importing CuPy).
KERNEL_NAMES = frozenset(set(_UFUNCS) | {
    "zeros", "round", "logistic", "erf", "shift_left", "shift_right_logical", "select",
    "convert_element_type", "stop_gradient", "reshape", "broadcast_in_dim", "transpose",
    "slice", "pad", "concatenate", "rev", "dynamic_slice", "dynamic_update_slice", "full",
    "iota", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
    "cumsum", "cumprod", "sort", "argsort", "dot_general", "gather", "scatter",
    "scatter_add", "scatter_mul", "scatter_min", "scatter_max", "solve",
    "triangular_solve", "cholesky", "det", "slogdet", "fft", "real", "imag", "complex",
    "conv_general_dilated", "reduce_window_sum", "reduce_window_max",
    "select_and_gather_add", "select_and_scatter_add", "cond",
})

_PY_SCALARS = (bool, int, float, complex)
_BOOL = np.dtype(np.bool_)
_I64 = np.dtype(np.int64)






def _window_count(size, window, stride):
    return 0 if size < window else (size - window) // stride + 1


def _lowest(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).min)
    if dtype.kind == "b":
        return False
    return -math.inf


def _bits(x, dtype):
    """``x`` reinterpreted as ``dtype`` of the same size (0-d arrays too)."""
    return x.reshape(x.shape or (1,)).view(dtype).reshape(x.shape)


def _loop_key(a):
    t = type(a)
    if t is bool:
        return _BOOL
    if t in (int, float, complex):
        return t  # weak: NumPy 2 lets the other operand's dtype win
    return a.dtype


class _Kit:
    """The CuPy kernels, closed over the ``cupy``/``cupyx`` modules they run on."""

    def __init__(self, cp, cpx, elementwise_kernel: Callable):
        self.cp = cp
        self.cpx = cpx
        self.nd = cp.ndarray
        # (name, in dtypes, out dtype) -> ElementwiseKernel; built by the backend
        self.elementwise_kernel = elementwise_kernel

    # -- conversions ----------------------------------------------------------

    def dev(self, x):
        """``x`` as a device array (NumPy's dtype for Python scalars)."""
        if isinstance(x, self.nd):
            return x
        return self.cp.asarray(np.asarray(x))

    # -- elementwise ----------------------------------------------------------

    def ufunc(self, np_name: str, cp_name: str | None = None) -> Callable:
        """A kernel running CuPy's ufunc on the operands cast to NumPy's loop dtypes."""
        cp, nd = self.cp, self.nd
        npf = getattr(np, np_name)
        cpf = getattr(cp, cp_name or np_name)
        loops: dict = {}

        def kernel(*args):
            key = tuple(_loop_key(a) for a in args)
            loop = loops.get(key)
            if loop is None:
                loop = loops[key] = npf.resolve_dtypes(key + (None,) * npf.nout)
            ins = []
            for a, dt in zip(args, loop):
                if isinstance(a, nd):
                    ins.append(a if a.dtype == dt else a.astype(dt))
                elif isinstance(a, np.ndarray):
                    ins.append(cp.asarray(a, dtype=dt))
                else:
                    ins.append(dt.type(a))
            if not any(isinstance(a, nd) for a in ins):
                ins[0] = cp.asarray(ins[0])
            out = cpf(*ins)
            want = loop[npf.nin]
            return out if out.dtype == want else out.astype(want)

        kernel.__name__ = np_name
        return kernel

    def generated(self, name: str) -> Callable:
        """A one-primitive generated kernel (``elementwise_c``) over operands cast to the
        dtype NumPy computes in: shifts as ``np.left_shift``/``np.right_shift`` (a
        logical right shift of a signed integer works on its unsigned bits, as the
        NumPy backend's); ``logistic``/``erf`` keep float dtypes (float16 computes in
        float32) and make integers float64."""
        cp, nd = self.cp, self.nd
        from funcnet.core.aval import ShapedArray

        loops: dict = {}

        def plan(key):
            first = key[0] if isinstance(key[0], np.dtype) else np.dtype(
                np.complex128 if key[0] is complex else np.float64 if key[0] is float
                else np.int64)
            if name == "shift_left":
                compute = out_dtype = np.left_shift.resolve_dtypes(key + (None,))[0]
            elif name == "shift_right_logical":
                if first.kind == "i":  # on the unsigned bits, viewed back as signed
                    compute, out_dtype = np.dtype(f"u{first.itemsize}"), first
                else:
                    compute = out_dtype = np.right_shift.resolve_dtypes(key + (None,))[0]
            else:
                if first.kind == "c":
                    raise TypeError(f"{name} of a complex array is not supported on the "
                                    "cupy backend")
                out_dtype = np.result_type(first, np.float16)
                compute = np.promote_types(out_dtype, np.float32)
            avals = [ShapedArray((), compute)] * len(key)
            return compute, out_dtype, self.elementwise_kernel(name, avals,
                                                               ShapedArray((), compute))

        modular = name == "shift_right_logical"

        def kernel(*args):
            key = tuple(_loop_key(a) for a in args)
            loop = loops.get(key)
            if loop is None:
                loop = loops[key] = plan(key)
            compute, out_dtype, ker = loop
            ins = []
            for a in args:
                if isinstance(a, nd):
                    ins.append(a if a.dtype == compute else a.astype(compute))
                elif isinstance(a, np.ndarray):
                    ins.append(cp.asarray(a.astype(compute)))
                elif modular:  # integers wrap onto the unsigned bits, as astype does
                    ins.append(np.asarray(a).astype(compute)[()])
                else:
                    ins.append(compute.type(a))
            if not any(isinstance(a, nd) for a in ins):
                ins[0] = cp.asarray(ins[0])
            out = ker(*ins)
            if out.dtype == out_dtype:
                return out
            if modular:
                return out.view(out_dtype)
            return out.astype(out_dtype)

        kernel.__name__ = name
        return kernel

    def round(self, x):
        x = self.dev(x)
        if x.dtype == _BOOL:
            return x.astype(np.float16)  # as np.round does
        if x.dtype.kind in "iu":
            return x.copy()
        if x.dtype.kind == "c":
            return self.cp.around(x)
        return self.cp.rint(x)

    def select(self, pred, x, y):
        """``where`` with NumPy 2 promotion of Python scalars (as the NumPy backend's)."""
        cp = self.cp
        sx, sy = type(x) in _PY_SCALARS, type(y) in _PY_SCALARS
        if not sx and not sy:
            dtype = np.result_type(x.dtype, y.dtype)
        elif sx and sy:
            from funcnet.core.aval import get_aval

            dtype = result_dtype(get_aval(x), get_aval(y))[0]
        else:
            arr, scalar = (y, x) if sx else (x, y)
            dtype = np.result_type(arr.dtype, scalar)
        ops = []
        for v in (x, y):
            if isinstance(v, self.nd):
                ops.append(v if v.dtype == dtype else v.astype(dtype))
            elif isinstance(v, np.ndarray):
                ops.append(cp.asarray(v, dtype=dtype))
            else:
                ops.append(cp.asarray(dtype.type(v)))
        out = cp.where(self.dev(pred).astype(_BOOL, copy=False), ops[0], ops[1])
        return out if out.dtype == dtype else out.astype(dtype)

    def convert(self, x, *, new_dtype, weak_type):
        new_dtype = np.dtype(new_dtype)
        if not isinstance(x, self.nd):
            host = np.asarray(x)
            if host.dtype.kind == "c" and new_dtype.kind != "c":
                host = host.real
            return self.cp.asarray(host.astype(new_dtype))
        if x.dtype.kind == "c" and new_dtype.kind != "c":
            x = x.real  # complex -> real keeps the real part
        return x.astype(new_dtype)

    def complex(self, x, y):
        cp = self.cp
        dtype = np.result_type(*[v if type(v) in _PY_SCALARS else v.dtype for v in (x, y)],
                               np.complex64)
        shape = np.broadcast_shapes(np.shape(x) if type(x) in _PY_SCALARS else x.shape,
                                    np.shape(y) if type(y) in _PY_SCALARS else y.shape)
        out = cp.empty(shape, dtype)
        out.real[...] = x if type(x) in _PY_SCALARS else self.dev(x)
        out.imag[...] = y if type(y) in _PY_SCALARS else self.dev(y)
        return out

    # -- shapes ---------------------------------------------------------------

    def broadcast_in_dim(self, x, *, shape, broadcast_dimensions):
        x = self.dev(x)
        expanded = [1] * len(shape)
        for i, d in enumerate(broadcast_dimensions):
            expanded[d] = x.shape[i]
        return self.cp.broadcast_to(x.reshape(expanded), shape)

    def slice(self, x, *, start_indices, limit_indices, strides):
        return self.dev(x)[tuple(slice(s, e, st)
                                 for s, e, st in zip(start_indices, limit_indices, strides))]

    def _filled(self, shape, value, dtype):
        if type(value) in _PY_SCALARS or isinstance(value, np.generic):
            return self.cp.full(shape, value, dtype)
        out = self.cp.empty(shape, dtype)
        out[...] = self.dev(value)
        return out

    def pad(self, x, v, *, padding_config):
        x = self.dev(x)
        shape = [lo + hi + d + max(d - 1, 0) * it
                 for d, (lo, hi, it) in zip(x.shape, padding_config)]
        full_shape = [max(lo, 0) + max(hi, 0) + d + max(d - 1, 0) * it
                      for d, (lo, hi, it) in zip(x.shape, padding_config)]
        out = self._filled(full_shape, v, x.dtype)
        place = tuple(slice(max(lo, 0), max(lo, 0) + (d - 1) * (it + 1) + 1 if d else max(lo, 0),
                            it + 1) for d, (lo, hi, it) in zip(x.shape, padding_config))
        out[place] = x
        crop = tuple(slice(max(-lo, 0), max(-lo, 0) + n)
                     for (lo, hi, it), n in zip(padding_config, shape))
        return out[crop]

    def concatenate(self, *xs, dimension):
        return self.cp.concatenate([self.dev(x) for x in xs], axis=dimension)

    @staticmethod
    def _clamped_starts(shape, sizes, starts):
        # int() of a device scalar copies it to the host (one synchronisation)
        return [min(max(int(s), 0), d - n) for s, d, n in zip(starts, shape, sizes)]

    def dynamic_slice(self, x, *starts, slice_sizes):
        x = self.dev(x)
        st = self._clamped_starts(x.shape, slice_sizes, starts)
        return x[tuple(slice(s, s + n) for s, n in zip(st, slice_sizes))]

    def dynamic_update_slice(self, x, update, *starts):
        x = self.dev(x)
        update = self.dev(update)
        st = self._clamped_starts(x.shape, update.shape, starts)
        out = x.copy()
        out[tuple(slice(s, s + n) for s, n in zip(st, update.shape))] = update
        return out

    def iota(self, *, dtype, shape, dimension):
        cp = self.cp
        ar = cp.arange(shape[dimension], dtype=dtype)
        ar = ar.reshape((1,) * dimension + (-1,) + (1,) * (len(shape) - dimension - 1))
        return cp.ascontiguousarray(cp.broadcast_to(ar, shape))

    # -- reductions, scans, sorting ---------------------------------------------

    def reduction(self, kind: str) -> Callable:
        cp = self.cp
        on_bool = {"sum": cp.any, "max": cp.any, "min": cp.all, "prod": cp.all}[kind]
        fn = {"sum": cp.sum, "max": cp.max, "min": cp.min, "prod": cp.prod}[kind]
        keep_dtype = kind in ("sum", "prod")

        def kernel(x, *, axes):
            x = self.dev(x)
            if x.dtype == _BOOL:  # NumPy reduces bools with the bool loop: or / and
                return on_bool(x, axis=axes)
            if keep_dtype and x.dtype.kind in "iu":
                return fn(x, axis=axes, dtype=x.dtype)
            return fn(x, axis=axes)

        kernel.__name__ = f"reduce_{kind}"
        return kernel

    def arg_reduction(self, fn) -> Callable:
        def kernel(x, *, axis, index_dtype):
            return fn(self.dev(x), axis=axis).astype(index_dtype)

        return kernel

    def cumulative(self, kind: str) -> Callable:
        cp = self.cp

        def kernel(x, *, axis, reverse):
            x = self.dev(x)
            if reverse:
                x = cp.flip(x, axis)
            if x.dtype == _BOOL:  # NumPy's bool loop: running or / running and
                if kind == "sum":
                    out = cp.cumsum(x, axis=axis, dtype=_I64) > 0
                else:
                    out = cp.cumsum(~x, axis=axis, dtype=_I64) == 0
            else:
                fn = cp.cumsum if kind == "sum" else cp.cumprod
                out = fn(x, axis=axis, dtype=x.dtype)
            return cp.flip(out, axis) if reverse else out

        kernel.__name__ = f"cum{kind}"
        return kernel

    def sort(self, x, *, axis, descending):
        out = self.cp.sort(self.dev(x), axis=axis)
        return self.cp.flip(out, axis) if descending else out

    def argsort(self, x, *, axis, descending):
        cp = self.cp
        x = self.dev(x)  # CuPy's argsort is stable (its only kind)
        if not descending:
            return cp.argsort(x, axis=axis).astype(_I64)
        n = x.shape[axis]
        flipped = cp.argsort(cp.flip(x, axis), axis=axis)
        return (n - 1 - cp.flip(flipped, axis)).astype(_I64)

    # -- contraction ---------------------------------------------------------------

    def dot_general(self, a, b, *, dimension_numbers):
        cp = self.cp
        a, b = self.dev(a), self.dev(b)
        dtype = np.result_type(a.dtype, b.dtype)
        if dtype == _BOOL:  # or-of-ands, through an integer product
            i32 = np.dtype(np.int32)
            return self.dot_general(a.astype(i32), b.astype(i32),
                                    dimension_numbers=dimension_numbers) != 0
        a = a if a.dtype == dtype else a.astype(dtype)
        b = b if b.dtype == dtype else b.astype(dtype)
        (lc, rc), (lb, rb) = dimension_numbers
        lf = [i for i in range(a.ndim) if i not in lc and i not in lb]
        rf = [i for i in range(b.ndim) if i not in rc and i not in rb]
        out_shape = (tuple(a.shape[i] for i in lb) + tuple(a.shape[i] for i in lf)
                     + tuple(b.shape[i] for i in rf))
        if not lb and not lc:  # an outer product
            return (a.reshape(a.shape + (1,) * b.ndim) * b).astype(dtype, copy=False)
        if not lc:  # batched outer product: broadcast, not rank-1 matmuls
            at = cp.transpose(a, list(lb) + lf)
            bt = cp.transpose(b, list(rb) + rf)
            nb = len(lb)
            return (at.reshape(at.shape + (1,) * len(rf))
                    * bt.reshape(bt.shape[:nb] + (1,) * len(lf) + bt.shape[nb:]))
        # one (batched) matmul: cuBLAS gemm for floats and complex
        at = cp.transpose(a, list(lb) + lf + list(lc))
        bt = cp.transpose(b, list(rb) + list(rc) + rf)
        bshape = at.shape[:len(lb)]
        m = math.prod(at.shape[len(lb):len(lb) + len(lf)])
        k = math.prod(at.shape[len(lb) + len(lf):])
        n = math.prod(bt.shape[len(rb) + len(rc):])
        out = cp.matmul(at.reshape(bshape + (m, k)), bt.reshape(bshape + (k, n)))
        out = out.reshape(out_shape)
        return out if out.dtype == dtype else out.astype(dtype)

    # -- indexing ---------------------------------------------------------------------

    def gather(self, x, *arrays, spec):
        return self.dev(x)[index_tuple(spec, [self.dev(a) for a in arrays])]

    def scatter(self, mode: str | None) -> Callable:
        cp = self.cp
        basic_op = {"add": cp.add, "mul": cp.multiply, "min": cp.minimum,
                    "max": cp.maximum}.get(mode)

        def kernel(x, u, *arrays, spec):
            out = self.dev(x).copy()
            idx = index_tuple(spec, [self.dev(a) for a in arrays])
            if mode is None:
                out[idx] = u if type(u) in _PY_SCALARS else self.dev(u)
            elif not has_advanced_index(spec):
                u = u if type(u) in _PY_SCALARS else self.dev(u)
                out[idx] = basic_op(out[idx], u)
            else:
                self._scatter_at(mode, out, idx, u)
            return out

        kernel.__name__ = f"scatter_{mode}" if mode else "scatter"
        return kernel

    # dtypes that cupyx.scatter_add / scatter_max / scatter_min take directly
    _ATOMIC_ADD = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int32,
                                                   np.uint32, np.uint64))
    # (not float64: on an H100 with CuPy 14.2, scatter_min/max rounded float64 values
    # to float32 precision; the exact ordered rounds are used for it instead)
    _ATOMIC_MINMAX = frozenset(np.dtype(t) for t in (np.float32, np.int32, np.uint32,
                                                      np.uint64))

    def _scatter_at(self, mode, out, idx, u):
        """``np.<ufunc>.at(out, idx, u)`` in place: CuPy's atomics where they exist
        for the dtype (exact for integers; float sums in any order), else the
        ordered rounds of ``_scatter_rounds``."""
        cp, cpx = self.cp, self.cpx
        dt = out.dtype
        u = cp.asarray(dt.type(u)) if type(u) in _PY_SCALARS else self.dev(u)
        u = u if u.dtype == dt else u.astype(dt)
        if mode == "mul" or dt.kind == "c":
            self._scatter_rounds(mode, out, idx, u)
            return
        atomic = cpx.scatter_add if mode == "add" else (
            cpx.scatter_max if mode == "max" else cpx.scatter_min)
        supported = self._ATOMIC_ADD if mode == "add" else self._ATOMIC_MINMAX
        if dt in supported:
            atomic(out, idx, u)
            return
        u64 = np.dtype(np.uint64)
        if mode == "add" and dt == _I64:  # two's complement: add the bits as uint64
            atomic(out.view(u64), idx, _bits(u, u64))
            return
        if dt == _I64:  # max/min: an order-preserving map to uint64 (flip the sign bit)
            flip = np.uint64(1 << 63)
            keys = out.view(u64) ^ flip
            atomic(keys, idx, _bits(u, u64) ^ flip)
            out[...] = (keys ^ flip).view(dt)
            return
        wide = {"b": np.dtype(np.int32), "i": np.dtype(np.int32), "u": np.dtype(np.uint32),
                "f": np.dtype(np.float32)}.get(dt.kind)
        if wide is None or dt.itemsize > wide.itemsize:
            self._scatter_rounds(mode, out, idx, u)
            return
        # narrow dtypes: widen (exact; sums wrap back modulo 2**bits), scatter, narrow
        w = out.astype(wide)
        atomic(w, idx, u.astype(wide))
        out[...] = (w != 0) if dt == _BOOL else w.astype(dt)

    def _scatter_rounds(self, mode, out, idx, u):
        """``np.<ufunc>.at`` exactly, in NumPy's order: the targets of the scattered
        elements are sorted stably, and round ``r`` applies every ``r``-th repeat of a
        target at once (targets are distinct within a round)."""
        cp = self.cp
        op = {"add": cp.add, "mul": cp.multiply, "min": cp.minimum, "max": cp.maximum}[mode]
        pos = cp.arange(out.size, dtype=_I64).reshape(out.shape)[idx]
        if pos.size == 0:
            return
        vals = cp.broadcast_to(u, pos.shape).reshape(-1)
        pos = pos.reshape(-1)
        order = cp.argsort(pos)  # stable
        pos, vals = pos[order], vals[order]
        n = pos.size
        starts_run = cp.ones(n, dtype=_BOOL)
        starts_run[1:] = pos[1:] != pos[:-1]
        first = cp.nonzero(starts_run)[0]
        run = cp.cumsum(starts_run.astype(_I64)) - 1
        rank = cp.arange(n, dtype=_I64) - first[run]
        flat = out.reshape(-1)  # out is a fresh contiguous copy: a view
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            p = pos[sel]
            flat[p] = op(flat[p], vals[sel])

    # -- linear algebra and FFT ---------------------------------------------------------

    def _batched(self, a, b):
        cp = self.cp
        a, b = self.dev(a), self.dev(b)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        dtype = np.result_type(a.dtype, b.dtype)
        a = cp.ascontiguousarray(cp.broadcast_to(a, batch + a.shape[-2:]).astype(dtype,
                                                                                  copy=False))
        b = cp.ascontiguousarray(cp.broadcast_to(b, batch + b.shape[-2:]).astype(dtype,
                                                                                  copy=False))
        return a, b

    def solve(self, a, b):
        a, b = self._batched(a, b)
        return self.cp.linalg.solve(a, b)

    def triangular_solve(self, a, b, *, lower, transpose_a):
        cp = self.cp
        a = self.dev(a)
        t = cp.tril(a) if lower else cp.triu(a)
        if transpose_a:
            t = cp.swapaxes(t, -1, -2)
        return self.solve(t, b)

    def cholesky(self, a):
        return self.cp.linalg.cholesky(self.dev(a))  # reads the lower triangle, like NumPy

    def det(self, a):
        a = self.dev(a)
        out = self.cp.linalg.det(a)
        return out if out.dtype == a.dtype else out.astype(a.dtype)

    def slogdet(self, a):
        a = self.dev(a)
        sign, logabsdet = self.cp.linalg.slogdet(a)
        real = np.dtype(a.dtype.char.lower()) if a.dtype.kind == "c" else a.dtype
        return [sign.astype(a.dtype, copy=False), logabsdet.astype(real, copy=False)]

    def fft(self, x, *, fft_type, n):
        cp = self.cp
        x = self.dev(x)
        fn = {"fft": cp.fft.fft, "ifft": cp.fft.ifft, "rfft": cp.fft.rfft,
              "irfft": cp.fft.irfft}[fft_type]
        out = fn(x, n=n, axis=-1)
        if fft_type == "rfft":
            want = np.result_type(x.dtype, np.complex64)
        elif fft_type == "irfft":
            want = np.dtype(x.dtype.char.lower())
        else:
            want = x.dtype
        return out if out.dtype == want else out.astype(want)

    # -- convolution and windowed reductions --------------------------------------------

    def conv_general_dilated(self, x, w, *, window_strides, padding, lhs_dilation,
                             rhs_dilation, feature_group_count):
        """im2col: one strided view of every window, copied once as an ``(M, K*C)``
        matrix, times the kernel as a ``(K*C, O)`` matrix (cuBLAS gemm)."""
        cp = self.cp
        x, w = self.dev(x), self.dev(w)
        ns = x.ndim - 2
        dtype = np.result_type(x.dtype, w.dtype)
        if any(d != 1 for d in lhs_dilation) or any(p != (0, 0) for p in padding):
            cfg = ((0, 0, 0),) + tuple((lo, hi, d - 1)
                                       for (lo, hi), d in zip(padding, lhs_dilation))
            x = self.pad(x, 0, padding_config=cfg + ((0, 0, 0),))
        k_sp = w.shape[:ns]
        eff = tuple((k - 1) * d + 1 for k, d in zip(k_sp, rhs_dilation))
        n, c = x.shape[0], x.shape[-1]
        i, o = w.shape[-2:]
        out_sp = tuple(_window_count(size, e, s)
                       for size, e, s in zip(x.shape[1:-1], eff, window_strides))
        if 0 in out_sp or n == 0 or o == 0 or c == 0:
            return cp.zeros((n,) + out_sp + (o,), dtype)
        x = cp.ascontiguousarray(x)
        st = x.strides
        # (N, *out, *K, C): window start moves by the stride, a tap by the dilation
        view_shape = (n,) + out_sp + tuple(k_sp) + (c,)
        view_strides = ((st[0],) + tuple(st[1 + a] * s for a, s in enumerate(window_strides))
                        + tuple(st[1 + a] * d for a, d in enumerate(rhs_dilation)) + (st[-1],))
        patches = cp.lib.stride_tricks.as_strided(x, shape=view_shape, strides=view_strides)
        m = n * math.prod(out_sp)
        kp = math.prod(k_sp)
        g = feature_group_count
        if g == 1:
            cols = patches.reshape(m, kp * c)
            if cols.dtype != dtype:
                cols = cols.astype(dtype)
            out = cp.matmul(cols, w.reshape(kp * i, o).astype(dtype, copy=False))
        else:  # one batched matmul over the groups
            og = o // g
            cols = cp.moveaxis(patches.reshape(patches.shape[:-1] + (g, i)), -2, 0)
            cols = cols.reshape(g, m, kp * i).astype(dtype, copy=False)
            wg = w.reshape(kp, i, g, og).transpose(2, 0, 1, 3).reshape(g, kp * i, og)
            out = cp.matmul(cols, wg.astype(dtype, copy=False)).transpose(1, 0, 2)
        return out.reshape((n,) + out_sp + (o,)).astype(dtype, copy=False)

    def _window_pad(self, x, value, padding):
        if any(p != (0, 0) for p in padding):
            return self.pad(x, value, padding_config=tuple((lo, hi, 0) for lo, hi in padding))
        return x

    def reduce_window(self, kind: str) -> Callable:
        """Sliding-window sum or max, one axis at a time (``sum(w)`` passes, not ``prod(w)``)."""
        cp = self.cp
        ufunc = cp.add if kind == "sum" else cp.maximum

        def kernel(x, *, window_dimensions, window_strides, padding):
            x = self.dev(x)
            fill = 0 if kind == "sum" else _lowest(x.dtype)
            out = self._window_pad(x, fill, padding)
            for ax, (w, s) in enumerate(zip(window_dimensions, window_strides)):
                if w == 1 and s == 1:
                    continue
                count = _window_count(out.shape[ax], w, s)
                lead = (slice(None),) * ax
                if count == 0:
                    out = out[lead + (slice(0, 0),)]
                    continue
                parts = [out[lead + (slice(o, o + (count - 1) * s + 1, s),)] for o in range(w)]
                acc = parts[0].copy()
                for p in parts[1:]:
                    ufunc(acc, p, out=acc)
                out = acc
            return out.copy() if out is x else out

        kernel.__name__ = f"reduce_window_{kind}"
        return kernel

    def _window_argmax(self, x, window_dimensions, window_strides, padding):
        """Index (row-major within the window) of the first maximum of every window."""
        cp = self.cp
        x = self.dev(x)
        xp = self._window_pad(x, _lowest(x.dtype), padding)
        out_shape = tuple(_window_count(d, w, s)
                          for d, w, s in zip(xp.shape, window_dimensions, window_strides))
        idx = cp.zeros(out_shape, np.int32)
        if 0 in out_shape:
            return idx, xp.shape, []
        slices = [tuple(slice(o, o + (n - 1) * s + 1, s)
                        for o, n, s in zip(offs, out_shape, window_strides))
                  for offs in np.ndindex(*window_dimensions)]
        best = xp[slices[0]].copy()
        for k, sl in enumerate(slices[1:], 1):
            v = xp[sl]
            better = v > best  # strictly: ties keep the earlier element
            cp.maximum(best, v, out=best)
            # offsets come in increasing order: max(idx, k * better) is k where better
            cp.maximum(idx, better.astype(np.int32) * np.int32(k), out=idx)
        return idx, xp.shape, slices

    def select_and_gather_add(self, t, x, *, window_dimensions, window_strides, padding):
        cp = self.cp
        idx, _, slices = self._window_argmax(x, window_dimensions, window_strides, padding)
        tp = self._window_pad(self.dev(t), 0, padding)
        out = cp.zeros(idx.shape, tp.dtype)
        for k, sl in enumerate(slices):
            out += tp[sl] * (idx == k)  # as the NumPy backend: a product, not a select
        return out

    def select_and_scatter_add(self, s, x, *, window_dimensions, window_strides, padding):
        cp = self.cp
        x = self.dev(x)
        idx, padded_shape, slices = self._window_argmax(x, window_dimensions, window_strides,
                                                         padding)
        s = self.dev(s)
        out = cp.zeros(padded_shape, s.dtype)
        for k, sl in enumerate(slices):
            out[sl] += s * (idx == k)
        crop = tuple(slice(lo, lo + d) for (lo, _), d in zip(padding, x.shape))
        return out[crop]

    # -- control flow -------------------------------------------------------------------

    @staticmethod
    def cond(index, *ops, **params):
        """``cond``'s generic implementation, given the index on the host."""
        from funcnet.core.primitive import registry

        return registry["cond"].impl(np.int64(int(index)), *ops, **params)

    # -- the table ----------------------------------------------------------------------

    def table(self) -> dict[str, Callable]:
        cp = self.cp
        k: dict[str, Callable] = {
            name: self.ufunc(np_name, "conj" if np_name == "conjugate" else np_name)
            for name, np_name in _UFUNCS.items()}
        k.update({
            "zeros": lambda *, shape, dtype: cp.zeros(shape, dtype),
            "round": self.round,
            "logistic": self.generated("logistic"), "erf": self.generated("erf"),
            "shift_left": self.generated("shift_left"),
            "shift_right_logical": self.generated("shift_right_logical"),
            "select": self.select, "convert_element_type": self.convert,
            "stop_gradient": lambda x: x,
            "reshape": lambda x, *, new_sizes: self.dev(x).reshape(new_sizes),
            "broadcast_in_dim": self.broadcast_in_dim,
            "transpose": lambda x, *, permutation: cp.transpose(self.dev(x), permutation),
            "slice": self.slice, "pad": self.pad, "concatenate": self.concatenate,
            "rev": lambda x, *, dimensions: cp.flip(self.dev(x), dimensions),
            "dynamic_slice": self.dynamic_slice,
            "dynamic_update_slice": self.dynamic_update_slice,
            "full": lambda *, shape, fill_value, dtype: self._filled(shape, fill_value, dtype),
            "iota": self.iota,
            "reduce_sum": self.reduction("sum"), "reduce_max": self.reduction("max"),
            "reduce_min": self.reduction("min"), "reduce_prod": self.reduction("prod"),
            "argmax": self.arg_reduction(cp.argmax), "argmin": self.arg_reduction(cp.argmin),
            "cumsum": self.cumulative("sum"), "cumprod": self.cumulative("prod"),
            "sort": self.sort, "argsort": self.argsort,
            "dot_general": self.dot_general,
            "gather": self.gather,
            "scatter": self.scatter(None), "scatter_add": self.scatter("add"),
            "scatter_mul": self.scatter("mul"), "scatter_min": self.scatter("min"),
            "scatter_max": self.scatter("max"),
            "solve": self.solve, "triangular_solve": self.triangular_solve,
            "cholesky": self.cholesky, "det": self.det, "slogdet": self.slogdet,
            "fft": self.fft, "real": lambda x: cp.real(self.dev(x)),
            "imag": lambda x: cp.imag(self.dev(x)), "complex": self.complex,
            "conv_general_dilated": self.conv_general_dilated,
            "reduce_window_sum": self.reduce_window("sum"),
            "reduce_window_max": self.reduce_window("max"),
            "select_and_gather_add": self.select_and_gather_add,
            "select_and_scatter_add": self.select_and_scatter_add,
            "cond": self.cond,
        })
        missing = KERNEL_NAMES.symmetric_difference(k)
        if missing:  # pragma: no cover - a table edit that forgot KERNEL_NAMES
            raise AssertionError(f"CuPy kernel table and KERNEL_NAMES differ: {sorted(missing)}")
        return k


def on_device(kernel: Callable, cp) -> Callable:
    """Wrap a kernel: NumPy array operands move to the device, results are device
    arrays (0-d results too, never host scalars)."""
    nd = cp.ndarray

    def wrapped(*args, **params):
        for a in args:
            if isinstance(a, np.ndarray):
                args = tuple(cp.asarray(v) if isinstance(v, np.ndarray) else v for v in args)
                break
        out = kernel(*args, **params)
        if isinstance(out, nd):
            return out
        if isinstance(out, (list, tuple)):
            return [o if isinstance(o, nd) else cp.asarray(np.asarray(o)) for o in out]
        return cp.asarray(np.asarray(out))

    wrapped.__name__ = getattr(kernel, "__name__", "kernel")
    wrapped.__wrapped__ = kernel
    return wrapped


def make_kernels(cp, cpx, elementwise_kernel: Callable) -> dict[str, Callable]:
    """The CuPy kernel table (name -> kernel) over the modules ``cp`` and ``cpx``.

    ``elementwise_kernel(name, in_avals, out_aval)`` returns a callable running
    the generated kernel for one primitive (the backend supplies it, cached).
    """
    return {name: on_device(k, cp) for name, k in _Kit(cp, cpx, elementwise_kernel).table().items()}


__all__ = ["C_TYPES", "FUSIBLE_PRIMITIVES", "KERNEL_NAMES", "c_cast", "c_literal",
           "elementwise_c", "make_kernels", "on_device"]
