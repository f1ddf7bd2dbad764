"""Dtype names and queries of ``funcnet.numpy`` (NumPy's own dtype objects).

>>> import funcnet.numpy as fnp
>>> fnp.result_type(fnp.float32, 2.0)
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import get_aval, result_dtype

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


def result_type(*args) -> np.dtype:
    """The dtype NumPy 2 promotion gives ``args`` (Python scalars are weak).

    >>> import funcnet.numpy as fnp
    >>> fnp.result_type(fnp.int32, fnp.float32)
    dtype('float64')
    """
    avals = []
    for a in args:
        if isinstance(a, (type, np.dtype, str)):
            from funcnet.core.aval import ShapedArray

            avals.append(ShapedArray((), np.dtype(a)))
        else:
            avals.append(get_aval(a))
    return result_dtype(*avals)[0]
