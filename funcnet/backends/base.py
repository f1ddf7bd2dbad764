"""The backend layer: the ``Backend`` protocol, the registry and the active backend.

A backend is a table from primitive name to kernel, plus conversion to and
from NumPy.  Backends never import transforms or ops: they only see names.

>>> import funcnet as fn
>>> "numpy" in fn.backends.available()
True
>>> fn.get_backend().name
'numpy'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from funcnet.core import trace as _trace


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (the message says why and how to fix it)."""


class Backend:
    """An array implementation: a kernel per primitive name and NumPy conversion.

    Subclasses set ``name``, ``array_type`` and ``kernels`` and may override
    ``asarray``/``to_numpy``.
    """

    name: str = "?"
    array_type: type = np.ndarray
    kernels: dict[str, Callable] = {}
    #: kernels used inside compiled code (may skip eager-only conveniences)
    raw_kernels: dict[str, Callable] | None = None
    #: primitive names whose raw kernels accept ``out=`` (for buffer reuse)
    out_capable: frozenset = frozenset()

    def asarray(self, x, dtype=None):
        """Convert ``x`` (NumPy array, scalar, nested list) to this backend's array."""
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x) -> np.ndarray:
        """Convert one of this backend's arrays to a NumPy array."""
        return np.asarray(x)

    def kernel_for(self, prim) -> Callable:
        """The kernel used for ``prim`` in compiled code."""
        raw = self.raw_kernels if self.raw_kernels is not None else self.kernels
        kernel = raw.get(prim.name) or prim.impl
        if kernel is None:
            raise NotImplementedError(
                f"primitive '{prim.name}' has no kernel on the {self.name!r} backend")
        return kernel

    def compile(self, graph, donated: frozenset = frozenset()) -> Callable:
        """Turn a graph into a callable ``f(*inputs) -> list of outputs``.

        The default generates one Python function per graph (``codegen.py``).
        """
        from funcnet.backends.codegen import generate

        fn_, source = generate(graph, self.kernel_for, self.out_capable, donated,
                               name="_compiled")
        fn_.source = source
        return fn_

    def __repr__(self) -> str:
        return f"<funcnet backend {self.name!r}>"


class KernelTable(dict):
    """Maps ``Primitive`` objects to kernels, resolved lazily by name.

    With ``wrap`` (``funcnet.debug``'s NaN checks) every kernel is wrapped.
    """

    def __init__(self, backend: Backend, wrap=None):
        super().__init__()
        self.backend = backend
        self.wrap = wrap

    def __missing__(self, prim):
        kernel = self.backend.kernels.get(prim.name) or prim.impl
        if kernel is None:
            raise NotImplementedError(
                f"primitive '{prim.name}' has no kernel on the {self.backend.name!r} backend")
        if self.wrap is not None:
            kernel = self.wrap(prim, kernel)
        self[prim] = kernel
        return kernel


# name -> zero-argument factory that returns a Backend or raises BackendUnavailable
_factories: dict[str, Callable[[], Backend]] = {}
_instances: dict[str, Backend] = {}
_lock = threading.RLock()
_active: list[Backend] = []


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Register a backend under ``name``; ``factory()`` builds it or raises
    ``BackendUnavailable`` explaining what is missing.

    >>> from funcnet.backends.base import register_backend, Backend
    >>> class Mine(Backend):
    ...     name = "mine"
    >>> register_backend("mine", Mine)
    """
    _factories[name] = factory
    _instances.pop(name, None)
    for key in [k for k in _tables if k[0] == name]:
        del _tables[key]
    _tables.pop(name, None)


def load(name: str) -> Backend:
    """The backend called ``name``, built on first use."""
    with _lock:
        if name not in _instances:
            if name not in _factories:
                raise BackendUnavailable(
                    f"unknown backend {name!r}; registered backends: {sorted(_factories)}")
            _instances[name] = _factories[name]()
        return _instances[name]


def available() -> list[str]:
    """Names of the backends that can run on this machine."""
    out = []
    for name in _factories:
        try:
            load(name)
        except BackendUnavailable:
            continue
        out.append(name)
    return out


def get_backend() -> Backend:
    """The active backend.

    >>> import funcnet as fn
    >>> fn.get_backend().name
    'numpy'
    """
    return _active[-1]


_tables: dict[tuple, KernelTable] = {}


def _activate(backend: Backend) -> None:
    wrap = _trace.state.wrap_kernel
    key = (backend.name, wrap)
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = KernelTable(backend, wrap)
    _trace.state.kernels = table


def refresh() -> None:
    """Re-select the active backend's kernel table (after ``state.wrap_kernel`` changed)."""
    _activate(get_backend())


def set_backend(name: str) -> Backend:
    """Make ``name`` the active backend for this process (also ``FUNCNET_BACKEND``).

    >>> import funcnet as fn
    >>> fn.set_backend("numpy").name
    'numpy'
    """
    backend = load(name)
    with _lock:
        if _active:
            _active[-1] = backend
        else:
            _active.append(backend)
        _activate(backend)
    return backend


@contextmanager
def use_backend(name: str):
    """Run a block with another backend active.

    >>> import funcnet as fn
    >>> with fn.use_backend("numpy"):
    ...     fn.get_backend().name
    'numpy'
    """
    backend = load(name)
    with _lock:
        _active.append(backend)
        _activate(backend)
    try:
        yield backend
    finally:
        with _lock:
            _active.pop()
            _activate(_active[-1])


def _is_leaf_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def device_put(x: Any, backend: str | None = None):
    """Move every array leaf of the pytree ``x`` to ``backend`` (default: the active one).

    >>> import numpy as np, funcnet as fn
    >>> type(fn.device_put({"w": np.ones(2)})["w"]).__name__
    'ndarray'
    """
    from funcnet.core.pytree import map as tree_map

    target = load(backend) if backend is not None else get_backend()

    def move(leaf):
        if not _is_leaf_array(leaf):
            return leaf
        if isinstance(leaf, target.array_type):
            return leaf
        return target.asarray(to_numpy(leaf))

    return tree_map(move, x)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from an array of any backend (or anything ``np.asarray`` takes).

    For a pytree, map it: ``fn.tree.map(fn.to_numpy, params)``.

    >>> import funcnet as fn
    >>> fn.to_numpy([1.0, 2.0])
    array([1., 2.])
    """
    if isinstance(x, np.ndarray):
        return x
    for inst in list(_instances.values()):
        if inst.array_type is not np.ndarray and isinstance(x, inst.array_type):
            return inst.to_numpy(x)
    return np.asarray(x)


def _default_backend_name() -> str:
    return os.environ.get("FUNCNET_BACKEND", "numpy")


def index_tuple(spec: tuple, arrays) -> tuple:
    """Rebuild a NumPy index tuple from an indexing primitive's static ``spec`` and
    its index arrays (``("int", i)``, ``("slice", a, b, c)``, ``("newaxis",)``,
    ``("array", k)`` entries); shared by every backend's gather/scatter kernels.

    >>> index_tuple((("int", 1), ("slice", None, None, 2)), [])
    (1, slice(None, None, 2))
    """
    out = []
    for e in spec:
        kind = e[0]
        if kind == "int":
            out.append(e[1])
        elif kind == "slice":
            out.append(slice(e[1], e[2], e[3]))
        elif kind == "newaxis":
            out.append(None)
        else:
            out.append(arrays[e[1]])
    return tuple(out)


def has_advanced_index(spec: tuple) -> bool:
    """True if ``spec`` contains an index array (advanced indexing)."""
    return any(e[0] == "array" for e in spec)
