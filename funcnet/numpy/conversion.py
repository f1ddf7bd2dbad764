"""Turning user inputs into arrays: ``asarray`` and ``array``.

>>> import funcnet.numpy as fnp
>>> fnp.asarray([1.0, 2.0]).dtype
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from funcnet.backends.base import get_backend
from funcnet.config import config
from funcnet.core.aval import scalar_dtype
from funcnet.core.trace import Tracer
from funcnet.ops.elementwise import convert_element_type

_SCALARS = (bool, int, float, complex)


def _contains_tracer(x) -> bool:
    if isinstance(x, Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return any(_contains_tracer(e) for e in x)
    return False


def asarray(a, dtype=None, copy=None):
    """Convert ``a`` to an array of the active backend (tracers pass through).

    Python floats (and lists of them) become ``config.default_float``; an
    array the user passed keeps its dtype unless ``dtype`` is given.

    >>> import funcnet.numpy as fnp
    >>> fnp.asarray(3).dtype, fnp.asarray(3.0).dtype
    (dtype('int64'), dtype('float32'))
    """
    if isinstance(a, Tracer):
        return a if dtype is None else convert_element_type(a, np.dtype(dtype))
    if isinstance(a, (list, tuple)) and _contains_tracer(a):
        from funcnet.numpy.manipulation import stack

        out = stack([asarray(e) for e in a])
        return out if dtype is None else convert_element_type(out, np.dtype(dtype))
    backend = get_backend()
    if isinstance(a, backend.array_type) and dtype is None and not copy:
        return a
    if dtype is None:
        if type(a) in _SCALARS:
            dtype = scalar_dtype(a)
        elif not hasattr(a, "dtype"):
            arr = np.asarray(a)
            if arr.dtype == np.float64:
                dtype = config.float_dtype
            elif arr.dtype == np.complex128 and config.float_dtype == np.float32:
                dtype = np.complex64
            return backend.asarray(arr, dtype=dtype)
    out = backend.asarray(a, dtype=dtype)
    if copy and out is a:
        out = out.copy()
    return out


def array(object, dtype=None, copy: bool = True, ndmin: int = 0):  # noqa: A002 - NumPy name
    """A new array from ``object`` (a copy by default), like ``np.array``.

    >>> import funcnet.numpy as fnp
    >>> fnp.array([[1, 2]], dtype=fnp.float64).shape
    (1, 2)
    """
    out = asarray(object, dtype=dtype, copy=copy)
    if ndmin and out.ndim < ndmin:
        from funcnet.ops.shape import reshape

        out = reshape(out, (1,) * (ndmin - out.ndim) + tuple(out.shape))
    return out


def as_operand(x):
    """Normalise an operand: tracers and backend arrays pass; lists become arrays.

    Python scalars stay Python scalars (weakly typed) so that promotion
    follows NumPy 2: ``float32_array * 2.0`` stays float32.
    """
    if isinstance(x, Tracer) or type(x) in _SCALARS:
        return x
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return x
    return asarray(x)


def as_array(x):
    """Like ``asarray`` but also for Python scalars (used by unary functions)."""
    if isinstance(x, Tracer):
        return x
    return asarray(x)
