"""Graphs as JSON: the equations of a funcnet ``Graph`` written as data.

A file holds a table of graphs (the traced function, and the bodies that
``scan``/``cond``/``while``/``jit_call`` carry in their parameters), each as::

    {"consts": [[var, aval, array_key], ...],   # constants, stored as .npy entries
     "in":     [[var, aval], ...],
     "eqns":   [{"p": "sin", "in": [atom, ...], "out": [[var, aval], ...],
                 "params": {name: tagged value}}, ...],
     "outs":   [atom, ...]}

``var`` is an integer id, unique in the file; an *atom* is a var id or a
literal ``{"lit": value, "aval": aval}``; an *aval* is ``[shape, dtype]``
(plus ``1`` when weakly typed).  Parameters use the tagged JSON encoding of
:func:`funcnet.checkpoint_io.encode_value` (tuples, dtypes, numpy scalars,
non-finite floats), extended with ``{"$graph": index}``, ``{"$array": key}``,
``{"$treedef": tree}``, ``{"$primitive": name}`` and ``{"$aval": aval}``.
Primitives are found by name in ``funcnet.core.primitive.registry``.  A
parameter holding a Python function cannot be written and raises
:class:`funcnet.export.ExportError` naming the primitive.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> enc = GraphEncoder()
>>> top = enc.graph(fn.make_graph(lambda x: fnp.sin(x) * 2.0)(fnp.ones(3)))
>>> [e["p"] for e in enc.graphs[top]["eqns"]]
['sin', 'mul']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from funcnet.checkpoint_io import (CheckpointError, UnencodableValue, build_tree, decode_value,
                                   describe_tree, dtype_name, encode_value)
from funcnet.core import pytree
from funcnet.core.aval import ShapedArray
from funcnet.core.graph import Eqn, Graph, Literal, Var, typecheck_graph
from funcnet.core.primitive import Primitive, registry

__all__ = ["GraphEncoder", "GraphDecoder", "ExportError", "encode_aval", "decode_aval",
           "describe_treedef", "treedef_from_description"]


class ExportError(CheckpointError):
    """An exported model that cannot be written or read.

    Raised for parameters that cannot be serialised (Python functions), for
    files that are corrupt, foreign or of an incompatible format version, and
    for graphs that do not type-check with this funcnet.  A ``ValueError``.

    >>> issubclass(ExportError, ValueError)
    True
    """


# ---------------------------------------------------------------------------
# avals and tree structures


def encode_aval(aval) -> list:
    """``[shape, dtype]`` (with a trailing ``1`` when weakly typed).

    >>> encode_aval(ShapedArray((2, 3), "float32"))
    [[2, 3], 'float32']
    """
    out = [list(aval.shape), dtype_name(aval.dtype)]
    if getattr(aval, "weak_type", False):
        out.append(1)
    return out


def decode_aval(j) -> ShapedArray:
    """Invert :func:`encode_aval`.

    >>> decode_aval([[2], "int32", 1])
    ShapedArray(int32[2], weak_type=True)
    """
    return ShapedArray(tuple(int(d) for d in j[0]), np.dtype(j[1]), bool(j[2:] and j[2]))


class _Placeholder:
    """A leaf standing in for an array while a treedef is described or rebuilt."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "*"


_HOLE = _Placeholder()


def describe_treedef(treedef) -> dict:
    """A JSON description of a ``PyTreeDef`` (see ``checkpoint_io.describe_tree``).

    >>> import funcnet as fn
    >>> describe_treedef(fn.tree.structure((1, {"a": 2})))["t"]
    'tuple'
    """
    tree = treedef.unflatten([_HOLE] * treedef.num_leaves)
    return describe_tree(tree, lambda p, x: {"t": "*"})


def treedef_from_description(desc: dict):
    """The ``PyTreeDef`` described by :func:`describe_treedef`'s output.

    Namedtuples come back as namedtuple classes made from the recorded name and
    fields; other registered classes as tuples.

    >>> import funcnet as fn
    >>> td = fn.tree.structure(((1, 2), {"a": None}))
    >>> treedef_from_description(describe_treedef(td)) == td
    True
    """
    return pytree.structure(build_tree(desc, lambda p, d: _HOLE, namedtuples=True))


# ---------------------------------------------------------------------------
# encoding


def _describe_param(v) -> str:
    name = getattr(v, "__qualname__", None) or getattr(v, "__name__", None)
    if callable(v) and name:
        return f"a Python function ({name})"
    return f"a {type(v).__name__} ({v!r:.60})"


class GraphEncoder:
    """Encodes graphs into ``self.graphs`` (JSON-able) and ``self.arrays`` (name -> ndarray).

    ``graph(g)`` returns the index of ``g`` in ``self.graphs``; a graph reached
    twice (the same body in two places) is written once.

    >>> import numpy as np, funcnet as fn
    >>> w = np.arange(3.0)
    >>> enc = GraphEncoder()
    >>> _ = enc.graph(fn.make_graph(lambda x: x * w)(np.ones(3)))
    >>> enc.arrays
    {'c0': array([0., 1., 2.])}
    """

    def __init__(self):
        self.graphs: list[dict | None] = []
        self.arrays: dict[str, np.ndarray] = {}
        self._graph_index: dict[int, int] = {}
        self._array_keys: dict[int, str] = {}
        self._var_ids: dict[int, int] = {}
        self._keep: list = []  # keep encoded objects alive so their ids stay unique

    def graph(self, g: Graph) -> int:
        if id(g) in self._graph_index:
            return self._graph_index[id(g)]
        index = len(self.graphs)
        self._graph_index[id(g)] = index
        self._keep.append(g)
        self.graphs.append(None)
        enc = {"consts": [self._define(v) + [self._array(c, "a constant of the graph")]
                          for v, c in zip(g.const_vars, g.consts)],
               "in": [self._define(v) for v in g.in_vars]}
        enc["eqns"] = [self._eqn(e) for e in g.eqns]
        enc["outs"] = [self._atom(v, "the graph's outputs") for v in g.outs]
        self.graphs[index] = enc
        return index

    def _define(self, v: Var) -> list:
        if id(v) in self._var_ids:
            raise ExportError("cannot export: a graph variable is defined twice (the graph is "
                              "malformed)")
        vid = self._var_ids[id(v)] = len(self._var_ids)
        self._keep.append(v)
        return [vid, encode_aval(v.aval)]

    def _atom(self, v, where: str):
        if type(v) is Literal:
            return {"lit": encode_value(v.val), "aval": encode_aval(v.aval)}
        vid = self._var_ids.get(id(v))
        if vid is None:
            raise ExportError(f"cannot export: {where} use a variable that is not defined "
                              "before (the graph is malformed)")
        return vid

    def _array(self, x, what: str) -> str:
        from funcnet.backends import to_numpy
        from funcnet.core.trace import Tracer

        if id(x) in self._array_keys:
            return self._array_keys[id(x)]
        if isinstance(x, Tracer):
            raise ExportError("cannot export: the function closes over a value traced by an "
                              "enclosing transform (jit/grad/vmap); call fn.export outside "
                              "of transforms")
        arr = np.asarray(to_numpy(x))
        if arr.dtype.hasobject:
            raise ExportError(f"cannot export: {what} is an object array ({arr.dtype})")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        key = f"c{len(self.arrays)}"
        self.arrays[key] = arr
        self._array_keys[id(x)] = key
        self._keep.append(x)
        return key

    def _extra(self, v):
        from funcnet.core.trace import Tracer

        if isinstance(v, Graph):
            return {"$graph": self.graph(v)}
        if isinstance(v, (np.ndarray, Tracer)):
            return {"$array": self._array(v, "an array parameter")}
        if isinstance(v, pytree.PyTreeDef):
            return {"$treedef": describe_treedef(v)}
        if isinstance(v, Primitive):
            return {"$primitive": v.name}
        if isinstance(v, ShapedArray):
            return {"$aval": encode_aval(v)}
        return NotImplemented

    def _eqn(self, e: Eqn) -> dict:
        ins = [self._atom(v, f"the inputs of {e.prim.name}") for v in e.inputs]
        params = {}
        for k, v in e.params.items():
            try:
                params[k] = encode_value(v, self._extra)
            except UnencodableValue as err:
                raise ExportError(
                    f"cannot export: primitive {e.prim.name!r} has parameter {k!r} holding "
                    f"{_describe_param(err.value)}, which cannot be written to a file (an "
                    "exported model carries no Python code). This happens when the exported "
                    "function runs a linearized/transposed custom_vjp or checkpoint "
                    "function (e.g. the function returned by fn.linearize); export the "
                    "original function, or its fn.grad, instead.") from None
        return {"p": e.prim.name, "in": ins, "out": [self._define(v) for v in e.outputs],
                "params": params}


# ---------------------------------------------------------------------------
# decoding


def _find_primitive(name: str, where: str, written_by: str) -> Primitive:
    prim = registry.get(name)
    if prim is None:  # defined in a module that is not imported yet?
        import importlib
        import pkgutil

        import funcnet

        for info in pkgutil.walk_packages(funcnet.__path__, prefix="funcnet."):
            if name in registry:
                break
            try:
                importlib.import_module(info.name)
            except Exception:  # optional dependencies (numba, cupy, ...) may be missing
                continue
        prim = registry.get(name)
    if prim is None:
        import funcnet

        raise ExportError(f"{where} uses the primitive {name!r}, which this funcnet "
                          f"({funcnet.__version__}) does not define (the file was written by "
                          f"funcnet {written_by}); load it with that version")
    return prim


class GraphDecoder:
    """Rebuilds ``Graph`` objects from the JSON table written by :class:`GraphEncoder`.

    ``array(key)`` returns the stored array ``key``; ``where`` names the file
    in error messages.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> enc = GraphEncoder()
    >>> top = enc.graph(fn.make_graph(lambda x: fnp.sin(x) * 2.0)(fnp.ones(3)))
    >>> g = GraphDecoder(enc.graphs, enc.arrays.__getitem__, "demo").graph(top)
    >>> [e.prim.name for e in g.eqns]
    ['sin', 'mul']
    """

    def __init__(self, graphs: list, array, where: str, written_by: str = "an unknown version"):
        self._table = graphs
        self._array = array
        self._where = where
        self._written_by = written_by
        self._graphs: dict[int, Graph] = {}
        self._arrays: dict[str, Any] = {}
        self._vars: dict[int, Var] = {}

    def _corrupt(self, what: str) -> ExportError:
        return ExportError(f"{self._where}: the file is corrupt: {what}")

    def graph(self, index: int) -> Graph:
        if index in self._graphs:
            return self._graphs[index]
        if not isinstance(index, int) or not 0 <= index < len(self._table):
            raise self._corrupt(f"graph {index!r} is missing")
        enc = self._table[index]
        const_vars = [self._define(j) for j in enc["consts"]]
        consts = [self._load_array(j[2]) for j in enc["consts"]]
        in_vars = [self._define(j) for j in enc["in"]]
        eqns = [self._eqn(e) for e in enc["eqns"]]
        outs = [self._atom(a) for a in enc["outs"]]
        g = self._graphs[index] = Graph(const_vars, consts, in_vars, eqns, outs)
        return g

    def _load_array(self, key: str):
        if key not in self._arrays:
            self._arrays[key] = self._array(key)
        return self._arrays[key]

    def _define(self, j) -> Var:
        vid, aval = j[0], j[1]
        if vid in self._vars:
            raise self._corrupt(f"variable {vid} is defined twice")
        v = self._vars[vid] = Var(decode_aval(aval))
        return v

    def _atom(self, j):
        if isinstance(j, dict):
            return Literal(decode_value(j["lit"]), decode_aval(j["aval"]))
        v = self._vars.get(j)
        if v is None:
            raise self._corrupt(f"variable {j!r} is used before it is defined")
        return v

    def _extra(self, tag: str, payload):
        if tag == "$graph":
            return self.graph(payload)
        if tag == "$array":
            return self._load_array(payload)
        if tag == "$treedef":
            return treedef_from_description(payload)
        if tag == "$primitive":
            return _find_primitive(payload, self._where, self._written_by)
        if tag == "$aval":
            return decode_aval(payload)
        raise self._corrupt(f"unknown parameter tag {tag!r}")

    def _eqn(self, j: dict) -> Eqn:
        prim = _find_primitive(j["p"], self._where, self._written_by)
        ins = [self._atom(a) for a in j["in"]]
        params = {k: decode_value(v, self._extra) for k, v in j["params"].items()}
        outs = [self._define(o) for o in j["out"]]
        if not prim.multiple_results and len(outs) != 1:
            raise self._corrupt(f"{prim.name} has {len(outs)} outputs")
        return Eqn(prim, ins, params, outs)

    def check(self) -> None:
        """Type-check every decoded graph with this funcnet's shape rules."""
        for _, g in sorted(self._graphs.items()):
            try:
                typecheck_graph(g)
            except Exception as e:
                raise ExportError(
                    f"{self._where}: the model does not type-check with this funcnet (written "
                    f"by funcnet {self._written_by}): {type(e).__name__}: {e}") from None
