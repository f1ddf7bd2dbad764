"""Process-wide settings: ``fn.config.default_float`` and friends.

>>> import funcnet as fn
>>> fn.config.default_float
'float32'
"""

from __future__ import annotations

import os

import numpy as np


class Config:
    """Settings read by funcnet where it must choose something for the user.

    ``default_float`` is the dtype funcnet picks when *it* chooses
    (``fnp.zeros(3)``, ``fnp.array([1.0])``, Python floats, random draws).
    It never changes the dtype of an array the user passed in.

    >>> import funcnet as fn
    >>> cfg = fn.config
    >>> cfg.default_float = "float64"; cfg.default_float = "float32"
    """

    def __init__(self) -> None:
        self._default_float = np.dtype(os.environ.get("FUNCNET_DEFAULT_FLOAT", "float32"))
        self.default_int = np.dtype(np.int64)
        self.traceback_mode = os.environ.get("FUNCNET_TRACEBACK", "filtered")

    @property
    def default_float(self) -> str:
        return self._default_float.name

    @default_float.setter
    def default_float(self, value) -> None:
        dt = np.dtype(value)
        if dt.kind != "f":
            raise ValueError(f"default_float must be a floating dtype, got {dt}")
        self._default_float = dt

    @property
    def float_dtype(self) -> np.dtype:
        """The default float as a ``numpy.dtype`` object."""
        return self._default_float


config = Config()
