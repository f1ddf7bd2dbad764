"""The array interface of tracers: operators, methods, indexing and ``.at``.

Attached to ``funcnet.core.trace.Tracer`` here, so that the core stays free
of array math while a traced value behaves like an array.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> float(fn.grad(lambda x: (x.reshape(2, 2) @ x.reshape(2, 2)).sum())(fnp.ones(4))[0])
4.0
"""

from __future__ import annotations

import numpy as np

from funcnet.core.trace import Tracer
from funcnet.numpy import fft, indexing, manipulation, math, products, reductions
from funcnet.ops.elementwise import convert_element_type


def _swap(f):
    return lambda self, other: f(other, self)


def _reshape(self, *shape, order="C"):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return manipulation.reshape(self, shape, order)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = axes[0]
    return manipulation.transpose(self, axes or None)


def _astype(self, dtype, copy=True):
    return convert_element_type(self, np.dtype(dtype))


_METHODS = {
    "__add__": math.add, "__radd__": _swap(math.add),
    "__sub__": math.subtract, "__rsub__": _swap(math.subtract),
    "__mul__": math.multiply, "__rmul__": _swap(math.multiply),
    "__truediv__": math.divide, "__rtruediv__": _swap(math.divide),
    "__floordiv__": math.floor_divide, "__rfloordiv__": _swap(math.floor_divide),
    "__mod__": math.mod, "__rmod__": _swap(math.mod),
    "__pow__": math.power, "__rpow__": _swap(math.power),
    "__matmul__": products.matmul, "__rmatmul__": _swap(products.matmul),
    "__and__": math.bitwise_and, "__rand__": _swap(math.bitwise_and),
    "__or__": math.bitwise_or, "__ror__": _swap(math.bitwise_or),
    "__xor__": math.bitwise_xor, "__rxor__": _swap(math.bitwise_xor),
    "__lshift__": math.left_shift, "__rlshift__": _swap(math.left_shift),
    "__rshift__": math.right_shift, "__rrshift__": _swap(math.right_shift),
    "__lt__": math.less, "__le__": math.less_equal, "__gt__": math.greater,
    "__ge__": math.greater_equal, "__eq__": math.equal, "__ne__": math.not_equal,
    "__neg__": math.negative, "__pos__": math.positive, "__abs__": math.absolute,
    "__invert__": math.invert,
    "__getitem__": indexing.gather_index,
    "reshape": _reshape, "transpose": _transpose, "astype": _astype,
    "sum": reductions.sum, "mean": reductions.mean, "prod": reductions.prod,
    "max": reductions.amax, "min": reductions.amin, "var": reductions.var,
    "std": reductions.std, "argmax": reductions.argmax, "argmin": reductions.argmin,
    "cumsum": reductions.cumsum, "cumprod": reductions.cumprod,
    "all": reductions.all, "any": reductions.any,
    "squeeze": manipulation.squeeze, "ravel": manipulation.ravel,
    "flatten": manipulation.ravel, "swapaxes": manipulation.swapaxes,
    "dot": products.dot, "clip": math.clip, "round": math.round,
    "sort": manipulation.sort, "argsort": manipulation.argsort,
    "diagonal": products.diagonal, "trace": products.trace,
    "conj": fft.conj, "conjugate": fft.conj,
}

for _name, _fn in _METHODS.items():
    setattr(Tracer, _name, _fn)
del _name, _fn
Tracer.T = property(lambda self: manipulation.transpose(self))
Tracer.at = property(lambda self: indexing.at(self))
Tracer.mT = property(lambda self: manipulation.swapaxes(self, -1, -2))
Tracer.real = property(fft.real)
Tracer.imag = property(fft.imag)
