"""Dtype names and queries of ``funcnet.numpy`` (NumPy's own dtype objects).

>>> import funcnet.numpy as fnp
>>> fnp.result_type(fnp.float32, 2.0)
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from funcnet.config import config
from funcnet.core.aval import ShapedArray, get_aval, result_dtype

float16 = np.float16
float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
uint32 = np.uint32
uint64 = np.uint64
bool_ = np.bool_
complex64 = np.complex64
complex128 = np.complex128
finfo = np.finfo
iinfo = np.iinfo
dtype = np.dtype
issubdtype = np.issubdtype
floating = np.floating
integer = np.integer
inexact = np.inexact
number = np.number
pi = np.pi
e = np.e
inf = np.inf
nan = np.nan
newaxis = None


def promote_avals(*avals) -> tuple[np.dtype, bool]:
    """``(dtype, weak)`` of combining ``avals`` (NumPy 2 promotion, weak Python scalars).

    Python numbers alone are funcnet's choice: the result has the kind of the
    highest one (bool < int < float < complex) in funcnet's default dtype of
    that kind, so ``1 + 2.0`` is ``default_float``, not float64.
    """
    dtype, weak = result_dtype(*avals)
    if weak:
        kind = max((a.dtype.kind for a in avals), key="biufc".index)
        dtype = _WEAK_DEFAULT[kind]()
    return dtype, weak


_WEAK_DEFAULT = {
    "b": lambda: np.dtype(np.bool_),
    "i": lambda: config.default_int,
    "u": lambda: config.default_int,
    "f": lambda: config.float_dtype,
    "c": lambda: np.dtype(np.complex128 if config.float_dtype == np.float64 else np.complex64),
}


def result_type(*args) -> np.dtype:
    """The dtype NumPy 2 promotion gives ``args`` (Python scalars are weak; Python
    numbers alone give funcnet's default dtype of their kind).

    >>> import funcnet.numpy as fnp
    >>> fnp.result_type(fnp.int32, fnp.float32), fnp.result_type(fnp.float32, 2.0)
    (dtype('float64'), dtype('float32'))
    >>> fnp.result_type(1, 2.0)
    dtype('float32')
    """
    avals = []
    for a in args:
        if isinstance(a, (type, np.dtype, str)):
            avals.append(ShapedArray((), np.dtype(a)))
        else:
            avals.append(get_aval(a))
    return promote_avals(*avals)[0]
