"""Abstract values: what a transform knows about an array (shape, dtype, weak type).

>>> import numpy as np
>>> from funcnet.core.aval import ShapedArray, get_aval
>>> get_aval(np.zeros((2, 3), np.float32))
ShapedArray(float32[2,3])
>>> get_aval(1.5)
ShapedArray(float32[], weak_type=True)
"""

from __future__ import annotations

import numpy as np

from funcnet.config import config

_SCALAR_TYPES = (bool, int, float, complex)


class ShapedArray:
    """The shape, dtype and weak-typedness of an array, without its values.

    A *weak* type comes from a Python scalar: it yields to the dtype of any
    array it meets (``float32_array * 2.0`` stays float32), as in NumPy 2.
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: tuple, dtype, weak_type: bool = False):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def str_short(self) -> str:
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]"

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.str_short()}{weak})"

    def __eq__(self, other) -> bool:
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def strip_weak(self) -> ShapedArray:
        return ShapedArray(self.shape, self.dtype) if self.weak_type else self

    def update(self, shape=None, dtype=None, weak_type=None) -> ShapedArray:
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)


def scalar_dtype(x) -> np.dtype:
    """The dtype funcnet gives a Python scalar (floats use ``config.default_float``)."""
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, int):
        return config.default_int
    if isinstance(x, float):
        return config.float_dtype
    return np.dtype(np.complex128 if config.float_dtype == np.float64 else np.complex64)


_scalar_avals: dict = {}


def _scalar_aval(x) -> ShapedArray:
    key = (type(x), config._default_float)
    aval = _scalar_avals.get(key)
    if aval is None:
        aval = _scalar_avals[key] = ShapedArray((), scalar_dtype(x), weak_type=True)
    return aval


def get_aval(x) -> ShapedArray:
    """The abstract value of a tracer, array or Python scalar."""
    t = type(x)
    if t is np.ndarray:
        return ShapedArray(x.shape, x.dtype)
    if t in _SCALAR_TYPES:
        aval = _scalar_avals.get((t, config._default_float))
        return aval if aval is not None else _scalar_aval(x)
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval
    shape = getattr(x, "shape", None)
    if shape is not None and hasattr(x, "dtype"):
        return ShapedArray(shape, x.dtype)
    if isinstance(x, np.generic):
        return ShapedArray((), x.dtype)
    raise TypeError(f"{type(x).__name__} is not a valid funcnet array type: {x!r:.80}")


def is_array_like(x) -> bool:
    """True for values that can be the leaf of a traced computation."""
    try:
        get_aval(x)
    except TypeError:
        return False
    return True


_WEAK_STANDIN = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}
_KIND_ORDER = "buifc"
_KIND_SAMPLE = {"b": False, "u": 0, "i": 0, "f": 0.0, "c": 0j}


def result_dtype(*avals: ShapedArray) -> tuple[np.dtype, bool]:
    """NumPy 2 promotion over avals, treating weak avals as Python scalars.

    Returns ``(dtype, weak_type)``; the result is weak only if every input is.
    """
    strong = [a.dtype for a in avals if not a.weak_type]
    if not strong:
        # only Python scalars: the widest kind, at funcnet's default dtype for it
        kind = max((a.dtype.kind for a in avals), key=_KIND_ORDER.index)
        if all(a.dtype.kind == kind for a in avals):
            dt = avals[0].dtype
            for a in avals[1:]:
                dt = np.promote_types(dt, a.dtype)
            return dt, True
        return scalar_dtype(_KIND_SAMPLE[kind]), True
    first = strong[0]
    if len(strong) == len(avals) and all(d == first for d in strong):
        return first, False
    weak = [_WEAK_STANDIN[a.dtype.kind] for a in avals if a.weak_type]
    dt = np.result_type(*strong, *weak)
    return dt, False
