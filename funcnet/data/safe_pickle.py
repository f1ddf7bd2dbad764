"""A restricted unpickler for data files such as CIFAR's "python version".

Unpickling an untrusted file with :mod:`pickle` can run any code: a pickle
names functions (``os.system``, ``builtins.eval`` ...) and calls them.
:func:`safe_load` reads only what data files need:

- plain Python values, which the pickle format builds without naming any
  function: ``dict``, ``list``, ``tuple``, ``str``, ``bytes``, ``int``,
  ``float``, ``bool``, ``None``;
- NumPy arrays of numbers, through exactly the functions NumPy's own pickles
  name (``numpy.core.multiarray._reconstruct`` or its NumPy 2 spelling
  ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``,
  ``numpy.dtype``, ``numpy._core.numeric._frombuffer``), each replaced by a
  checked version that refuses object arrays;
- ``_codecs.encode(text, "latin1")`` and ``builtins.bytes``, which Python 3
  writes for ``bytes`` values in protocol 2.

Every other global raises :class:`UnsafePickleError` *before* anything is
called, so a malicious file is refused without running its payload.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

__all__ = ["UnsafePickleError", "safe_load", "safe_loads"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than plain data and NumPy arrays.

    >>> import pickle
    >>> from funcnet.data import UnsafePickleError
    >>> issubclass(UnsafePickleError, pickle.UnpicklingError)
    True
    """


# NumPy's own reconstruction functions, found through public behaviour (what an
# array's __reduce__ names) rather than by importing private modules.
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _checked_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align, copy)
    if dtype.hasobject:
        raise UnsafePickleError("refusing a NumPy object dtype in a pickle: object arrays can "
                                "hold arbitrary Python objects; only numeric arrays are allowed")
    return dtype


def _checked_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refusing to rebuild an array of type {subtype!r} from a "
                                "pickle: only numpy.ndarray is allowed")
    return _NP_RECONSTRUCT(np.ndarray, shape, _checked_dtype(dtype))


def _checked_frombuffer(buffer, dtype, shape, order):
    return _NP_FROMBUFFER(buffer, _checked_dtype(dtype), shape, order)


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    if str(encoding).lower().replace("-", "").replace("_", "") != "latin1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r} in a "
                                "pickle: only 'latin1' (Python's encoding of bytes) is allowed")
    if not isinstance(text, str):
        raise UnsafePickleError("refusing _codecs.encode of a non-string in a pickle")
    return text.encode("latin1", errors)


def _checked_bytes(*args):
    if args and isinstance(args[0], int):
        raise UnsafePickleError("refusing bytes(n) in a pickle")
    return bytes(*args)


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _checked_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _checked_frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _checked_dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _checked_bytes,
}


class _DataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` knows only the names in ``_ALLOWED``."""

    def find_class(self, module, name):
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"refusing to load the global '{module}.{name}' from a pickle: this loader "
                "accepts only plain Python data (dict, list, tuple, str, bytes, int, float) and "
                "NumPy arrays of numbers, and never runs code from a file. If you trust the "
                "file, load it yourself with the pickle module.")
        return allowed

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing a pickle with persistent ids")


def _check_numeric(value, depth=0):
    """Walk the loaded value and refuse anything but data (a second line of defence)."""
    if depth > 100:
        raise UnsafePickleError("refusing a pickle nested more than 100 levels deep")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise UnsafePickleError("refusing a NumPy object array in a pickle")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_numeric(k, depth + 1)
            _check_numeric(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_numeric(v, depth + 1)
    elif value is not None and not isinstance(value, (str, bytes, bytearray, int, float,
                                                      complex, np.dtype)):
        raise UnsafePickleError(f"refusing a value of type {type(value).__name__} in a pickle")


def safe_load(file, encoding: str = "bytes"):
    """Unpickle plain data and numeric NumPy arrays from a binary file object; refuse the rest.

    ``encoding`` decodes Python 2 ``str`` values as :func:`pickle.load` does;
    the default ``"bytes"`` keeps them as ``bytes``, which is what CIFAR's
    Python 2 pickles need.

    >>> import io, pickle
    >>> import numpy as np
    >>> from funcnet.data import safe_load
    >>> blob = pickle.dumps({"x": np.arange(3, dtype=np.uint8), "y": [1, 2]}, protocol=2)
    >>> safe_load(io.BytesIO(blob))
    {'x': array([0, 1, 2], dtype=uint8), 'y': [1, 2]}
    """
    value = _DataUnpickler(file, encoding=encoding).load()
    _check_numeric(value)
    return value


def safe_loads(data: bytes, encoding: str = "bytes"):
    """:func:`safe_load` from a ``bytes`` object.

    >>> import os, pickle
    >>> from funcnet.data import safe_loads, UnsafePickleError
    >>> class Evil:
    ...     def __reduce__(self):
    ...         return (os.system, ("echo hacked",))
    >>> try:
    ...     safe_loads(pickle.dumps(Evil()))
    ... except UnsafePickleError as e:
    ...     print("refused:", "system" in str(e))
    refused: True
    """
    return safe_load(io.BytesIO(data), encoding=encoding)
