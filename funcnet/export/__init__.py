"""Deployment: export a traced model to one file and run it without its source code.

``fn.export(fun, *example_args)`` traces ``fun`` on the example arguments
(arrays, Python scalars or ``fn.ShapeDtypeStruct``\\ s, in any pytree),
optimises the graph as ``fn.jit`` does, and returns an :class:`Exported`:
a callable that runs the graph, with ``.save(path)`` and ``.serialize()``.
The weights ``fun`` closes over become constants of the graph and travel in
the same file.  ``fn.export.load(path)`` reads the file back -- on any
backend, in a process that has never seen ``fun``'s code -- and returns an
:class:`Exported` again.  It checks its arguments' structure, shapes and
dtypes, compiles the graph for the active backend on first use, and binds
primitives, so ``fn.grad``, ``fn.vmap`` and ``fn.jit`` apply to it.

The file is an ``.npz`` (a zip of ``.npy`` entries): the constants, plus a
JSON description of the graphs (see :mod:`funcnet.export.graph_codec`), the
input/output pytree structures and avals, the funcnet version and a format
version.  Nothing is pickled; a file of another format version is refused
with a clear message.

``fn.export`` is this module, made callable: ``fn.export(f, x)`` is
``fn.export.export(f, x)``.

>>> import os, tempfile
>>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
>>> import funcnet.export
>>> w = np.arange(6.0, dtype=np.float32).reshape(3, 2)
>>> exp = fn.export(lambda x: fnp.tanh(x @ w), np.ones((4, 3), np.float32))
>>> path = exp.save(os.path.join(tempfile.mkdtemp(), "model.fnx"))
>>> model = fn.export.load(path)
>>> model.input_shapes, model.output_structure
([(4, 3)], ShapeDtypeStruct(shape=(4, 2), dtype=float32))
>>> bool(np.allclose(model(np.ones((4, 3), np.float32)), np.tanh(np.ones((4, 3)) @ w)))
True
"""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from funcnet.checkpoint_io import (container_bytes, open_container, read_entry,
                                   write_container)
from funcnet.core import pytree
from funcnet.core.aval import get_aval
from funcnet.core.graph import Graph, typecheck_graph
from funcnet.export.graph_codec import (ExportError, GraphDecoder, GraphEncoder, _Placeholder,
                                        decode_aval, describe_treedef, encode_aval,
                                        treedef_from_description)

__all__ = ["export", "load", "deserialize", "Exported", "ExportError", "FORMAT_VERSION"]

#: Version of the exported-model file layout; files of another version are refused.
FORMAT_VERSION = 1
FORMAT = "funcnet.export"

_SCALAR_KINDS = {bool: "b", int: "iufc", float: "fc", complex: "c"}


def _version() -> str:
    import funcnet

    return funcnet.__version__


def _arg_name(path) -> str:
    if path and isinstance(path[0], pytree.SequenceKey):
        return f"argument {path[0].idx}{pytree.keystr(path[1:])}"
    return f"argument {pytree.keystr(path)}"


class Exported:
    """A traced, optimised function with its weights: callable, saveable, loadable.

    Made by ``fn.export(fun, *example_args)`` or ``fn.export.load(path)``.
    Calling it checks that the arguments have the example arguments' pytree
    structure, shapes and dtypes (a Python scalar is accepted for a 0-d input
    of a compatible kind) and raises ``TypeError`` naming each mismatch.

    Metadata (for servers and tools): ``name``, ``input_shapes`` and
    ``input_dtypes`` (one per input leaf, in flatten order), ``input_paths``
    (``'[0]'``, ``"[1]['w']"``: each leaf's key path in the argument tuple),
    ``input_structure`` / ``output_structure`` (the argument tuple / the
    result as pytrees of ``fn.ShapeDtypeStruct``), ``output_shapes``,
    ``output_dtypes``, ``in_tree`` / ``out_tree``, ``signature``,
    ``metadata`` (the JSON dict given to ``fn.export``), ``funcnet_version``,
    ``format_version``, and ``graph`` (``print(exp.graph)`` lists it).

    >>> import numpy as np, funcnet as fn
    >>> import funcnet.export
    >>> exp = fn.export(lambda p, x: {"y": x * p["s"]}, {"s": np.float32(2)}, np.ones(3))
    >>> exp.signature
    "({'s': float32[]}, float64[3]) -> {'y': float64[3]}"
    >>> exp({"s": np.float32(3)}, np.ones(3))["y"]
    array([3., 3., 3.])
    """

    def __init__(self, graph: Graph, in_tree, out_tree, *, name: str = "exported",
                 metadata: dict | None = None, funcnet_version: str | None = None):
        self.graph = graph
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.name = name
        self.metadata = dict(metadata or {})
        self.funcnet_version = funcnet_version or _version()
        self.format_version = FORMAT_VERSION
        self.in_avals = list(graph.in_avals)
        self.out_avals = [v.aval for v in graph.outs]
        holes = in_tree.unflatten([_Placeholder()] * in_tree.num_leaves)
        self._in_paths = [p for p, _ in pytree.flatten_with_path(holes)[0]]
        self._in_desc = None
        self._known_trees = {in_tree}
        self._per_backend: dict[str, Graph] = {}
        self._payload = None
        graph.name = name

    # -- metadata -----------------------------------------------------------

    @property
    def input_shapes(self) -> list[tuple]:
        return [tuple(a.shape) for a in self.in_avals]

    @property
    def input_dtypes(self) -> list[np.dtype]:
        return [np.dtype(a.dtype) for a in self.in_avals]

    @property
    def input_paths(self) -> list[str]:
        return [pytree.keystr(p) for p in self._in_paths]

    @property
    def output_shapes(self) -> list[tuple]:
        return [tuple(a.shape) for a in self.out_avals]

    @property
    def output_dtypes(self) -> list[np.dtype]:
        return [np.dtype(a.dtype) for a in self.out_avals]

    @property
    def input_structure(self):
        from funcnet.transforms.api import ShapeDtypeStruct

        return self.in_tree.unflatten([ShapeDtypeStruct(a.shape, a.dtype) for a in self.in_avals])

    @property
    def output_structure(self):
        from funcnet.transforms.api import ShapeDtypeStruct

        return self.out_tree.unflatten([ShapeDtypeStruct(a.shape, a.dtype)
                                        for a in self.out_avals])

    @property
    def signature(self) -> str:
        holes = self.in_tree.unflatten([_Short(a) for a in self.in_avals])
        outs = self.out_tree.unflatten([_Short(a) for a in self.out_avals])
        ins = repr(holes)
        if self.in_tree.num_leaves and ins.endswith(",)") and len(self.in_tree.children()) == 1:
            ins = ins[:-2] + ")"
        return f"{ins} -> {outs!r}"

    def __repr__(self) -> str:
        return (f"<Exported {self.name}: {self.signature}; funcnet {self.funcnet_version}, "
                f"{len(self.graph.eqns)} equations>")

    # -- calling --------------------------------------------------------------

    def _same_structure(self, tree) -> bool:
        if tree in self._known_trees:
            return True
        if tree.num_leaves != self.in_tree.num_leaves:
            return False
        if self._in_desc is None:
            self._in_desc = describe_treedef(self.in_tree)
        if describe_treedef(tree) == self._in_desc:
            self._known_trees.add(tree)  # e.g. the user's namedtuple class vs the rebuilt one
            return True
        return False

    def _check_args(self, args) -> list:
        from funcnet.core.trace import Tracer

        leaves, tree = pytree.flatten(args)
        if not self._same_structure(tree):
            raise TypeError(f"exported model {self.name} takes arguments structured as "
                            f"{self.in_tree}, got {tree} (it takes {self.signature})")
        vals, bad = [], []
        for x, aval, path in zip(leaves, self.in_avals, self._in_paths):
            kinds = _SCALAR_KINDS.get(type(x))
            if kinds is not None and aval.shape == () and aval.dtype.kind in kinds:
                x = np.asarray(x, dtype=aval.dtype)
            elif isinstance(x, np.generic):
                x = np.asarray(x)
            if not isinstance(x, Tracer) and not (hasattr(x, "shape") and hasattr(x, "dtype")):
                bad.append(f"{_arg_name(path)}: expected {aval.str_short()}, got a "
                           f"{type(x).__name__}")
                continue
            got = get_aval(x)
            if tuple(got.shape) != tuple(aval.shape) or got.dtype != aval.dtype:
                bad.append(f"{_arg_name(path)}: expected {aval.str_short()}, got "
                           f"{got.str_short()}")
            vals.append(x)
        if bad:
            raise TypeError(f"exported model {self.name} was called with arguments of the "
                            "wrong shape or dtype:\n  " + "\n  ".join(bad)
                            + f"\nit takes {self.signature} (use fn.vmap for a batch of "
                              "inputs, .astype to convert dtypes)")
        return vals

    def _graph_for_backend(self) -> Graph:
        from funcnet.backends import device_put, get_backend

        backend = get_backend()
        if backend.array_type is np.ndarray or not self.graph.consts:
            return self.graph
        g = self._per_backend.get(backend.name)
        if g is None:
            src = self.graph
            g = Graph(src.const_vars, [device_put(c) for c in src.consts], src.in_vars,
                      src.eqns, src.outs)
            g.name = self.name
            self._per_backend[backend.name] = g
        return g

    def __call__(self, *args):
        from funcnet.transforms.jit import jit_call_p

        vals = self._check_args(args)
        outs = jit_call_p.bind(*vals, graph=self._graph_for_backend(), name=self.name,
                               donated=frozenset())
        return self.out_tree.unflatten(outs)

    # -- writing --------------------------------------------------------------

    def _encoded(self) -> tuple[dict, dict]:
        if self._payload is None:
            enc = GraphEncoder()
            top = enc.graph(self.graph)
            meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "funcnet_version": self.funcnet_version, "numpy_version": np.__version__,
                    "name": self.name, "metadata": self.metadata,
                    "in_tree": describe_treedef(self.in_tree),
                    "out_tree": describe_treedef(self.out_tree),
                    "in_avals": [encode_aval(a) for a in self.in_avals],
                    "out_avals": [encode_aval(a) for a in self.out_avals],
                    "graph": top, "graphs": enc.graphs}
            self._payload = (meta, enc.arrays)
        return self._payload

    def save(self, path, *, compress: bool = False) -> str:
        """Write the model to ``path`` (one ``.npz`` file, written atomically); returns it.

        ``compress=True`` deflates the weights (smaller file, slower to load).

        >>> import os, tempfile, numpy as np, funcnet as fn
        >>> import funcnet.export
        >>> exp = fn.export(lambda x: x * 2, np.ones(2))
        >>> path = exp.save(os.path.join(tempfile.mkdtemp(), "double.fnx"))
        >>> fn.export.load(path)(np.ones(2))
        array([2., 2.])
        """
        meta, arrays = self._encoded()
        return write_container(path, meta, arrays, compress=compress)

    def serialize(self, *, compress: bool = False) -> bytes:
        """The bytes of the file :meth:`save` writes (read back with ``fn.export.deserialize``).

        >>> import numpy as np, funcnet as fn
        >>> import funcnet.export
        >>> data = fn.export(lambda x: x + 1, np.zeros(2)).serialize()
        >>> fn.export.deserialize(data)(np.zeros(2))
        array([1., 1.])
        """
        meta, arrays = self._encoded()
        return container_bytes(meta, arrays, compress=compress)


class _Short:
    """Prints an aval as ``float32[2,3]`` inside a pytree repr."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self) -> str:
        return self.aval.str_short()


def _check_example(path, x) -> None:
    from funcnet.transforms.api import ShapeDtypeStruct

    if isinstance(x, ShapeDtypeStruct) or type(x) in _SCALAR_KINDS:
        return
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return
    raise TypeError(f"fn.export: example {_arg_name(path)} is a {type(x).__name__} "
                    f"({x!r:.40}); example arguments are arrays, Python scalars or "
                    "fn.ShapeDtypeStructs (bind other arguments with functools.partial)")


def export(fun: Callable, *example_args: Any, name: str | None = None,
           metadata: dict | None = None) -> Exported:
    """Trace ``fun`` on ``example_args`` into a self-contained :class:`Exported` model.

    The example arguments (any pytree of arrays, Python scalars or
    ``fn.ShapeDtypeStruct``\\ s) fix the shapes, dtypes and structure the model
    accepts; arrays ``fun`` closes over (its weights) are stored with it.  The
    graph is optimised as ``fn.jit`` does.  ``name`` defaults to
    ``fun.__name__``; ``metadata`` is a JSON-serialisable dict saved with the
    model (class names, preprocessing settings, ...).  Bind non-array
    arguments with ``functools.partial`` first; for batches of any size,
    export the per-example function and call ``fn.vmap(model)``.

    Raises :class:`ExportError` if the graph holds something that cannot be
    written (a Python function in a primitive's parameters).

    >>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
    >>> import funcnet.export
    >>> exp = fn.export(lambda x: fnp.sum(x ** 2), fn.ShapeDtypeStruct((3,), "float32"))
    >>> exp(np.ones(3, np.float32))
    array(3., dtype=float32)
    >>> exp.input_shapes, exp.input_dtypes
    ([(3,)], [dtype('float32')])
    """
    from funcnet.transforms.api import make_graph
    from funcnet.transforms.passes import optimize

    if not callable(fun):
        raise TypeError(f"fn.export: expected a function, got {type(fun).__name__}")
    pairs, in_tree = pytree.flatten_with_path(example_args)
    for path, x in pairs:
        _check_example(path, x)
    if metadata is not None:
        try:
            metadata = json.loads(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise TypeError(f"fn.export: metadata must be a JSON-serialisable dict ({e})") \
                from None
        if not isinstance(metadata, dict):
            raise TypeError("fn.export: metadata must be a dict")
    traced = make_graph(fun)(*example_args)
    out_tree = traced.out_tree
    graph = optimize(traced)
    typecheck_graph(graph)
    if name is None:
        name = getattr(fun, "__name__", None) or type(fun).__name__
    exp = Exported(graph, in_tree, out_tree, name=str(name), metadata=metadata)
    exp._encoded()  # fail here, not at save time, if something cannot be written
    return exp


def _from_container(source, where: str) -> Exported:
    meta, zf = open_container(source, FORMAT, (FORMAT_VERSION,), where, error=ExportError)
    written = str(meta.get("funcnet_version", "an unknown version"))
    with zf:
        try:
            decoder = GraphDecoder(
                meta["graphs"],
                lambda key: read_entry(zf, key, where, f"the constant {key!r}", ExportError),
                where, written)
            graph = decoder.graph(meta["graph"])
            in_tree = treedef_from_description(meta["in_tree"])
            out_tree = treedef_from_description(meta["out_tree"])
            in_avals = [decode_aval(a) for a in meta["in_avals"]]
            out_avals = [decode_aval(a) for a in meta["out_avals"]]
            name = str(meta.get("name", "exported"))
            user_meta = meta.get("metadata") or {}
        except ExportError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ExportError(f"{where}: the file is corrupt: its model description is "
                              f"malformed ({type(e).__name__}: {e})") from None
    decoder.check()

    def sig(avals):
        return [(tuple(a.shape), a.dtype) for a in avals]

    if (sig(in_avals) != sig(graph.in_avals) or sig(out_avals) != sig(graph.out_avals)
            or in_tree.num_leaves != len(in_avals) or out_tree.num_leaves != len(out_avals)):
        raise ExportError(f"{where}: the file is corrupt: its input/output description does "
                          "not match its graph")
    return Exported(graph, in_tree, out_tree, name=name, metadata=user_meta,
                    funcnet_version=written)


def load(path) -> Exported:
    """Read a model written by :meth:`Exported.save` (no source code needed).

    Raises :class:`ExportError` (a ``ValueError``) for a truncated or corrupt
    file, a file that is not an exported model (a checkpoint, a plain
    ``.npz``), a format version this funcnet cannot read, or a graph that uses
    primitives this funcnet does not have.

    >>> import os, tempfile, numpy as np, funcnet as fn, funcnet.numpy as fnp
    >>> import funcnet.export
    >>> path = os.path.join(tempfile.mkdtemp(), "m.fnx")
    >>> _ = fn.export(lambda x: fnp.maximum(x, 0.0), np.zeros(3, np.float32)).save(path)
    >>> model = fn.export.load(path)
    >>> model(np.array([-1.0, 0.5, 2.0], np.float32))
    array([0. , 0.5, 2. ], dtype=float32)
    >>> fn.grad(lambda x: model(x).sum())(np.array([-1.0, 0.5, 2.0], np.float32))
    array([0., 1., 1.], dtype=float32)
    """
    return _from_container(path, os.fspath(path))


def deserialize(data: bytes) -> Exported:
    """Read a model from the bytes of :meth:`Exported.serialize` (or of a saved file).

    >>> import numpy as np, funcnet as fn
    >>> import funcnet.export
    >>> fn.export.deserialize(fn.export(lambda x: -x, np.ones(2)).serialize())(np.ones(2))
    array([-1., -1.])
    """
    return _from_container(bytes(data), "the serialized model")


class _CallableModule(types.ModuleType):
    """``funcnet.export`` itself: calling it calls :func:`export`."""

    def __call__(self, fun: Callable, *example_args: Any, **kwargs: Any) -> Exported:
        return export(fun, *example_args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
