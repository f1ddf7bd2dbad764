"""Array backends: ``available``, ``set_backend``, ``use_backend``, ``device_put``.

>>> import funcnet as fn
>>> fn.backends.available()[0]
'numpy'
"""

from funcnet.backends.base import (
                                   Backend,
                                   BackendUnavailable,
                                   _default_backend_name,
                                   available,
                                   device_put,
                                   get_backend,
                                   load,
                                   register_backend,
                                   set_backend,
                                   to_numpy,
                                   use_backend,
)
from funcnet.backends.numba_backend import make_numba_backend
from funcnet.backends.cupy_backend import CupyBackend
from funcnet.backends.numpy_backend import NumpyBackend

register_backend("numpy", NumpyBackend)
register_backend("numba", make_numba_backend)
register_backend("cupy", CupyBackend)
set_backend(_default_backend_name())

__all__ = ["Backend", "BackendUnavailable", "available", "device_put", "get_backend", "load",
           "register_backend", "set_backend", "to_numpy", "use_backend", "NumpyBackend"]
