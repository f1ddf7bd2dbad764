"""Pytrees: nested containers of arrays that transforms flatten and rebuild.

A *pytree* is a nest of registered containers (``dict``, ``list``, ``tuple``,
namedtuples, ``None``, ``collections.OrderedDict``, ``collections.defaultdict``,
and classes registered with :func:`register_node` or
:func:`register_dataclass`).  Everything else -- arrays, Python scalars, any
unregistered object -- is a *leaf*.

:func:`flatten` turns a tree into a list of leaves plus a :class:`PyTreeDef`
describing the containers; :func:`unflatten` rebuilds the tree from a treedef
and new leaves.  Treedefs are hashable and compare equal iff the structures
are equal, so transforms use them as cache keys.

This module is the bottom layer of funcnet and imports only the standard
library.  The public face is :mod:`funcnet.tree`.

>>> from funcnet import tree
>>> leaves, treedef = tree.flatten({"b": (1, 2), "a": 3})
>>> leaves
[3, 1, 2]
>>> treedef
PyTreeDef({'a': *, 'b': (*, *)})
>>> tree.unflatten(treedef, [30, 10, 20])
{'a': 30, 'b': (10, 20)}
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import functools
import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

__all__ = [
    "DictKey",
    "FlattenedIndexKey",
    "GetAttrKey",
    "PyTreeDef",
    "SequenceKey",
    "all",
    "flatten",
    "flatten_with_path",
    "keystr",
    "leaves",
    "map",
    "map_with_path",
    "reduce",
    "register_dataclass",
    "register_node",
    "structure",
    "unflatten",
]

PyTree = Any
IsLeaf = Callable[[Any], bool] | None


# --------------------------------------------------------------------------
# Path keys
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DictKey:
    """Path entry for a mapping child: ``str(DictKey('a')) == "['a']"``.

    >>> str(DictKey("params"))
    "['params']"
    """

    key: Hashable

    def __str__(self) -> str:
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class SequenceKey:
    """Path entry for a list or tuple child: ``str(SequenceKey(0)) == '[0]'``.

    >>> str(SequenceKey(3))
    '[3]'
    """

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class GetAttrKey:
    """Path entry for an attribute (namedtuple or dataclass field): ``.w``.

    >>> str(GetAttrKey("w"))
    '.w'
    """

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class FlattenedIndexKey:
    """Path entry for a child of a node registered without key information.

    >>> str(FlattenedIndexKey(1))
    '[<flat index 1>]'
    """

    key: int

    def __str__(self) -> str:
        return f"[<flat index {self.key}>]"


KeyEntry = DictKey | SequenceKey | GetAttrKey | FlattenedIndexKey
KeyPath = tuple[Any, ...]


def _simple_key(k: Any) -> str:
    if isinstance(k, DictKey | FlattenedIndexKey):
        return str(k.key)
    if isinstance(k, SequenceKey):
        return str(k.idx)
    if isinstance(k, GetAttrKey):
        return k.name
    return str(k)


def keystr(path: Iterable[Any], *, simple: bool = False, separator: str = "") -> str:
    """Render a key path (as produced by :func:`flatten_with_path`) as a string.

    With ``simple=True`` each key is shown bare (``params``, ``0``, ``w``)
    and joined with ``separator``.

    >>> from funcnet import tree
    >>> path = (DictKey("params"), SequenceKey(0), GetAttrKey("w"))
    >>> tree.keystr(path)
    "['params'][0].w"
    >>> tree.keystr(path, simple=True, separator="/")
    'params/0/w'
    """
    if simple:
        return separator.join(_simple_key(k) for k in path)
    return separator.join(str(k) for k in path)


# --------------------------------------------------------------------------
# Node registry
# --------------------------------------------------------------------------


def _n_children(n: int) -> str:
    return "1 child" if n == 1 else f"{n} children"


def _keys_str(keys: Sequence[Any], limit: int = 12) -> str:
    """``['a', 'b']``; long key lists are cut short for error messages."""
    if len(keys) <= limit:
        return repr(list(keys))
    shown = ", ".join(repr(k) for k in keys[:limit])
    return f"[{shown}, ... ({len(keys)} keys in all)]"


class _NodeDef:
    """How to take apart and rebuild one container type (internal)."""

    __slots__ = (
        "describe",
        "flatten",
        "flatten_with_keys",
        "mapping_keys",
        "repr",
        "type",
        "unflatten",
    )

    def __init__(
        self,
        typ: type,
        flatten: Callable[[Any], tuple[Sequence[Any], Any]],
        unflatten: Callable[[Any, list[Any]], Any],
        flatten_with_keys: Callable[[Any], tuple[list[tuple[Any, Any]], Any]],
        describe: Callable[[Any, int], str],
        repr: Callable[[Any, list[str]], str],
        mapping_keys: Callable[[Any], tuple[Any, ...]] | None = None,
    ) -> None:
        self.type = typ
        self.flatten = flatten
        self.unflatten = unflatten
        self.flatten_with_keys = flatten_with_keys
        self.describe = describe
        self.repr = repr
        self.mapping_keys = mapping_keys

    def __repr__(self) -> str:
        return f"<pytree node {self.type.__qualname__}>"

    def __reduce__(self) -> tuple[Any, tuple[type]]:
        return (_node_for_type, (self.type,))


# type -> _NodeDef for containers, None for types known to be leaves.
_nodes: dict[type, _NodeDef | None] = {}
# Types registered explicitly (built-ins and register_node/register_dataclass).
_registered: set[type] = set()
_UNKNOWN = object()


def _classify(t: type) -> _NodeDef | None:
    """Look up ``t`` on the slow path; cache the answer (namedtuple or leaf)."""
    node = _nodes.get(t, _UNKNOWN)
    if node is not _UNKNOWN:
        return node  # type: ignore[return-value]
    if issubclass(t, tuple) and isinstance(getattr(t, "_fields", None), tuple):
        node = _namedtuple_node(t)
    else:
        node = None
    _nodes[t] = node
    return node


def _node_for_type(t: type) -> _NodeDef:
    node = _classify(t)
    if node is None:
        raise TypeError(f"{t.__qualname__} is not a registered pytree node type")
    return node


def _register(node: _NodeDef) -> None:
    if node.type in _registered:
        raise ValueError(
            f"{node.type.__module__}.{node.type.__qualname__} is already registered "
            "as a pytree node type"
        )
    _registered.add(node.type)
    _nodes[node.type] = node


def _sorted_keys(d: dict[Any, Any]) -> list[Any]:
    try:
        return sorted(d)
    except TypeError:
        pass
    # Unsortable mix of key types: group keys by type (ordered by the type's
    # qualified name), sort within each group naturally or else by repr.
    groups: dict[tuple[str, str], list[Any]] = {}
    for k in d:
        t = type(k)
        groups.setdefault((t.__module__, t.__qualname__), []).append(k)
    out: list[Any] = []
    for name in sorted(groups):
        group = groups[name]
        try:
            group.sort()
        except TypeError:
            group.sort(key=repr)
        out.extend(group)
    return out


def _index_keyed(children: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(SequenceKey(i), c) for i, c in enumerate(children)]


# ---- list -----------------------------------------------------------------


def _list_flatten(x: list[Any]) -> tuple[list[Any], None]:
    return x, None


def _list_unflatten(aux: None, children: list[Any]) -> list[Any]:
    return children  # always a fresh list built by the caller


def _list_keyed(x: list[Any]) -> tuple[list[tuple[Any, Any]], None]:
    return _index_keyed(x), None


def _list_describe(aux: None, n: int) -> str:
    return f"a list of {_n_children(n)}"


def _list_repr(aux: None, cs: list[str]) -> str:
    return "[" + ", ".join(cs) + "]"


# ---- tuple ----------------------------------------------------------------


def _tuple_flatten(x: tuple[Any, ...]) -> tuple[tuple[Any, ...], None]:
    return x, None


def _tuple_unflatten(aux: None, children: list[Any]) -> tuple[Any, ...]:
    return tuple(children)


def _tuple_keyed(x: tuple[Any, ...]) -> tuple[list[tuple[Any, Any]], None]:
    return _index_keyed(x), None


def _tuple_describe(aux: None, n: int) -> str:
    return f"a tuple of {_n_children(n)}"


def _tuple_repr(aux: None, cs: list[str]) -> str:
    if len(cs) == 1:
        return f"({cs[0]},)"
    return "(" + ", ".join(cs) + ")"


# ---- None -----------------------------------------------------------------


def _none_flatten(x: None) -> tuple[tuple[()], None]:
    return (), None


def _none_unflatten(aux: None, children: list[Any]) -> None:
    return None


def _none_keyed(x: None) -> tuple[list[tuple[Any, Any]], None]:
    return [], None


def _none_describe(aux: None, n: int) -> str:
    return "None"


def _none_repr(aux: None, cs: list[str]) -> str:
    return "None"


# ---- dict -----------------------------------------------------------------


def _dict_flatten(x: dict[Any, Any]) -> tuple[list[Any], tuple[Any, ...]]:
    keys = _sorted_keys(x)
    return [x[k] for k in keys], tuple(keys)


def _dict_unflatten(aux: tuple[Any, ...], children: list[Any]) -> dict[Any, Any]:
    return dict(zip(aux, children))


def _dict_keyed(x: dict[Any, Any]) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    keys = _sorted_keys(x)
    return [(DictKey(k), x[k]) for k in keys], tuple(keys)


def _dict_describe(aux: tuple[Any, ...], n: int) -> str:
    return f"a dict with keys {_keys_str(aux)}"


def _items_repr(keys: Iterable[Any], cs: list[str]) -> str:
    return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(keys, cs)) + "}"


def _dict_repr(aux: tuple[Any, ...], cs: list[str]) -> str:
    return _items_repr(aux, cs)


def _identity_keys(aux: tuple[Any, ...]) -> tuple[Any, ...]:
    return aux


# ---- OrderedDict ----------------------------------------------------------


def _odict_flatten(x: collections.OrderedDict) -> tuple[list[Any], tuple[Any, ...]]:
    return list(x.values()), tuple(x)


def _odict_unflatten(aux: tuple[Any, ...], children: list[Any]) -> collections.OrderedDict:
    return collections.OrderedDict(zip(aux, children))


def _odict_keyed(x: collections.OrderedDict) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    return [(DictKey(k), v) for k, v in x.items()], tuple(x)


def _odict_describe(aux: tuple[Any, ...], n: int) -> str:
    return f"an OrderedDict with keys {_keys_str(aux)}"


def _odict_repr(aux: tuple[Any, ...], cs: list[str]) -> str:
    return f"OrderedDict({_items_repr(aux, cs)})"


# ---- defaultdict ----------------------------------------------------------


def _ddict_flatten(x: collections.defaultdict) -> tuple[list[Any], tuple[Any, tuple[Any, ...]]]:
    keys = _sorted_keys(x)
    return [x[k] for k in keys], (x.default_factory, tuple(keys))


def _ddict_unflatten(aux: tuple[Any, tuple[Any, ...]],
                     children: list[Any]) -> collections.defaultdict:
    return collections.defaultdict(aux[0], zip(aux[1], children))


def _ddict_keyed(x: collections.defaultdict) -> tuple[list[tuple[Any, Any]], Any]:
    keys = _sorted_keys(x)
    return [(DictKey(k), x[k]) for k in keys], (x.default_factory, tuple(keys))


def _factory_name(f: Any) -> str:
    return getattr(f, "__name__", None) or repr(f)


def _ddict_describe(aux: tuple[Any, tuple[Any, ...]], n: int) -> str:
    return f"a defaultdict({_factory_name(aux[0])}) with keys {_keys_str(aux[1])}"


def _ddict_repr(aux: tuple[Any, tuple[Any, ...]], cs: list[str]) -> str:
    return f"defaultdict({_factory_name(aux[0])}, {_items_repr(aux[1], cs)})"


def _ddict_keys(aux: tuple[Any, tuple[Any, ...]]) -> tuple[Any, ...]:
    return aux[1]


# ---- namedtuple -----------------------------------------------------------


def _namedtuple_node(cls: type) -> _NodeDef:
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    name = cls.__name__
    attr_keys = [GetAttrKey(f) for f in fields]

    def unflatten(aux: None, children: list[Any]) -> Any:
        return cls(*children)

    def keyed(x: Any) -> tuple[list[tuple[Any, Any]], None]:
        return list(zip(attr_keys, x)), None

    def describe(aux: None, n: int) -> str:
        return f"a namedtuple {name} with fields {list(fields)!r}"

    def repr_(aux: None, cs: list[str]) -> str:
        return f"{name}(" + ", ".join(f"{f}={c}" for f, c in zip(fields, cs)) + ")"

    return _NodeDef(cls, _tuple_flatten, unflatten, keyed, describe, repr_)


def _register_builtins() -> None:
    _register(_NodeDef(list, _list_flatten, _list_unflatten, _list_keyed,
                       _list_describe, _list_repr))
    _register(_NodeDef(tuple, _tuple_flatten, _tuple_unflatten, _tuple_keyed,
                       _tuple_describe, _tuple_repr))
    _register(_NodeDef(type(None), _none_flatten, _none_unflatten, _none_keyed,
                       _none_describe, _none_repr))
    _register(_NodeDef(dict, _dict_flatten, _dict_unflatten, _dict_keyed,
                       _dict_describe, _dict_repr, _identity_keys))
    _register(_NodeDef(collections.OrderedDict, _odict_flatten, _odict_unflatten,
                       _odict_keyed, _odict_describe, _odict_repr, _identity_keys))
    _register(_NodeDef(collections.defaultdict, _ddict_flatten, _ddict_unflatten,
                       _ddict_keyed, _ddict_describe, _ddict_repr, _ddict_keys))


_register_builtins()
# Hot paths test these node defs by identity instead of calling through them.
_DICT_NODE = _nodes[dict]
_LIST_NODE = _nodes[list]
_TUPLE_NODE = _nodes[tuple]


# ---- user registration ----------------------------------------------------


def register_node(
    cls: type,
    flatten_fn: Callable[[Any], tuple[Iterable[Any], Hashable]],
    unflatten_fn: Callable[[Any, tuple[Any, ...]], Any],
    flatten_with_keys_fn: Callable[[Any], tuple[Iterable[tuple[Any, Any]], Hashable]]
    | None = None,
) -> type:
    """Register ``cls`` as a pytree container type and return ``cls``.

    ``flatten_fn(obj)`` returns ``(children, aux_data)``; ``aux_data`` must be
    hashable and comparable with ``==`` (it becomes part of the treedef).
    ``unflatten_fn(aux_data, children)`` rebuilds the object; ``children``
    is passed as a tuple.  Optionally ``flatten_with_keys_fn(obj)`` returns
    ``([(key, child), ...], aux_data)`` to name children in key paths;
    without it children are named :class:`FlattenedIndexKey`.  Only the
    exact type is registered (subclasses stay leaves).  Registering a type
    twice raises ``ValueError``.

    >>> from funcnet import tree
    >>> class Pair:
    ...     def __init__(self, a, b):
    ...         self.a, self.b = a, b
    >>> _ = tree.register_node(Pair, lambda p: ((p.a, p.b), None),
    ...                        lambda aux, ch: Pair(*ch))
    >>> tree.leaves(Pair(1, [2, 3]))
    [1, 2, 3]
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_node expects a class, got {cls!r}")
    name = cls.__name__

    def flatten(x: Any) -> tuple[tuple[Any, ...], Any]:
        children, aux = flatten_fn(x)
        return tuple(children), aux

    def unflatten(aux: Any, children: list[Any]) -> Any:
        return unflatten_fn(aux, tuple(children))

    if flatten_with_keys_fn is None:
        def keyed(x: Any) -> tuple[list[tuple[Any, Any]], Any]:
            children, aux = flatten_fn(x)
            return [(FlattenedIndexKey(i), c) for i, c in enumerate(children)], aux
    else:
        def keyed(x: Any) -> tuple[list[tuple[Any, Any]], Any]:
            pairs, aux = flatten_with_keys_fn(x)
            return [(k, c) for k, c in pairs], aux

    def describe(aux: Any, n: int) -> str:
        return f"a {name} node with {_n_children(n)} and aux data {aux!r}"

    def repr_(aux: Any, cs: list[str]) -> str:
        return f"CustomNode({name}[{aux!r}], [" + ", ".join(cs) + "])"

    _register(_NodeDef(cls, flatten, unflatten, keyed, describe, repr_))
    return cls


def _attr_tuple_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        def get_none(obj: Any) -> tuple[Any, ...]:
            return ()
        return get_none
    if len(names) == 1:
        get_one = operator.attrgetter(names[0])

        def get_single(obj: Any) -> tuple[Any, ...]:
            return (get_one(obj),)
        return get_single
    return operator.attrgetter(*names)


def register_dataclass(cls: type) -> type:
    """Register a dataclass as a pytree node; usable as a class decorator.

    Every field is a child, in declaration order, except fields declared with
    ``dataclasses.field(metadata={"static": True})``: those go into the
    treedef's aux data (so they must be hashable) and are compared as part of
    the structure.  Rebuilding sets the fields directly on a new instance
    (via ``object.__new__`` and ``object.__setattr__``, so frozen and slotted
    dataclasses work); ``__init__`` and ``__post_init__`` are **not** called,
    so validation there never sees transform-internal leaf values.

    >>> import dataclasses
    >>> from funcnet import tree
    >>> @tree.register_dataclass
    ... @dataclasses.dataclass
    ... class Linear:
    ...     w: float
    ...     b: float
    ...     act: str = dataclasses.field(default="relu", metadata={"static": True})
    >>> tree.flatten(Linear(1.0, 2.0))
    ([1.0, 2.0], PyTreeDef(Linear(w=*, b=*, act='relu')))
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"register_dataclass expects a dataclass type, got {cls!r}")
    fields = dataclasses.fields(cls)
    data_names = tuple(f.name for f in fields if not f.metadata.get("static", False))
    static_names = tuple(f.name for f in fields if f.metadata.get("static", False))
    order = [(f.name, bool(f.metadata.get("static", False))) for f in fields]
    get_data = _attr_tuple_getter(data_names)
    get_static = _attr_tuple_getter(static_names)
    data_keys = [GetAttrKey(n) for n in data_names]
    name = cls.__name__
    new = object.__new__
    setattr_ = object.__setattr__

    def flatten(x: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return get_data(x), get_static(x)

    def unflatten(aux: tuple[Any, ...], children: list[Any]) -> Any:
        obj = new(cls)
        for n, v in zip(data_names, children):
            setattr_(obj, n, v)
        for n, v in zip(static_names, aux):
            setattr_(obj, n, v)
        return obj

    def keyed(x: Any) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
        return list(zip(data_keys, get_data(x))), get_static(x)

    def describe(aux: tuple[Any, ...], n: int) -> str:
        if not static_names:
            return f"a dataclass {name}"
        statics = dict(zip(static_names, aux))
        return f"a dataclass {name} with static fields {statics!r}"

    def repr_(aux: tuple[Any, ...], cs: list[str]) -> str:
        data_it = iter(cs)
        static_it = iter(aux)
        parts = []
        for fname, is_static in order:
            if is_static:
                parts.append(f"{fname}={next(static_it)!r}")
            else:
                parts.append(f"{fname}={next(data_it)}")
        return f"{name}(" + ", ".join(parts) + ")"

    _register(_NodeDef(cls, flatten, unflatten, keyed, describe, repr_))
    return cls


# --------------------------------------------------------------------------
# Treedef
# --------------------------------------------------------------------------
#
# A treedef stores its nodes in pre-order as a tuple of entries.  A leaf is
# the entry ``None``; a container is ``(node_def, aux_data, num_children)``.
# Equality and hashing are those of that tuple (node defs compare by
# identity), so both run at C speed; the hash is computed once and cached.


class _Mismatch(Exception):
    """Internal: structure mismatch found during flatten_up_to."""

    def __init__(self, message: Callable[[str | None], str], path: list[Any] | None = None):
        super().__init__()
        self.message = message
        self.path = path if path is not None else []  # innermost key first


def _in(whom: str | None) -> str:
    return f" in {whom}" if whom else ""


def _describe_value(x: Any) -> str:
    node = _nodes.get(type(x), _UNKNOWN)
    if node is _UNKNOWN:
        node = _classify(type(x))
    if node is None:
        return f"a leaf of type {type(x).__name__}"
    children, aux = node.flatten(x)  # type: ignore[union-attr]
    return node.describe(aux, len(children))  # type: ignore[union-attr]


def _mismatch_general(node: _NodeDef, aux: Any, n: int, x: Any) -> _Mismatch:
    expected = node.describe(aux, n)

    def message(whom: str | None) -> str:
        return f"expected {expected}, got {_describe_value(x)}{_in(whom)}"

    return _Mismatch(message)


def _mismatch_same_type(node: _NodeDef, aux: Any, n: int, x: Any, xaux: Any) -> _Mismatch:
    if node.mapping_keys is not None:
        want = node.mapping_keys(aux)
        got = node.mapping_keys(xaux)
        got_set = set(got)
        want_set = set(want)
        missing = [k for k in want if k not in got_set]
        if missing:
            k = missing[0]
            return _Mismatch(
                lambda whom: f"key {k!r} is missing{_in(whom)} (keys {_keys_str(got)})",
                [DictKey(k)],
            )
        extra = [k for k in got if k not in want_set]
        if extra:
            k = extra[0]
            return _Mismatch(
                lambda whom: f"unexpected key {k!r}{_in(whom)} (expected keys {_keys_str(want)})",
                [DictKey(k)],
            )
    return _mismatch_general(node, aux, n, x)


def _child_key(node: _NodeDef, x: Any, j: int) -> Any:
    return node.flatten_with_keys(x)[0][j][0]


def _up_to(entries: tuple[Any, ...], i: int, x: Any, out: list[Any]) -> int:
    """Flatten ``x`` along ``entries`` from entry ``i``; return the next index."""
    entry = entries[i]
    if entry is None:
        out.append(x)
        return i + 1
    node, aux, n = entry
    t = type(x)
    if node is _DICT_NODE:
        if t is not dict:
            raise _mismatch_general(node, aux, n, x)
        try:
            keys = tuple(sorted(x))
        except TypeError:
            keys = tuple(_sorted_keys(x))
        if keys != aux:
            raise _mismatch_same_type(node, aux, n, x, keys)
        children = [x[k] for k in keys]
    elif node is _TUPLE_NODE or node is _LIST_NODE:
        if t is not node.type:
            raise _mismatch_general(node, aux, n, x)
        if len(x) != n:
            raise _mismatch_same_type(node, aux, n, x, None)
        children = x
    else:
        xnode = _nodes.get(t, _UNKNOWN)
        if xnode is _UNKNOWN:
            xnode = _classify(t)
        if xnode is not node:
            raise _mismatch_general(node, aux, n, x)
        children, xaux = node.flatten(x)
        if len(children) != n or xaux != aux:
            raise _mismatch_same_type(node, aux, n, x, xaux)
    i += 1
    for j, child in enumerate(children):
        if entries[i] is None:
            out.append(child)
            i += 1
            continue
        try:
            i = _up_to(entries, i, child, out)
        except _Mismatch as e:
            e.path.append(_child_key(node, x, j))
            raise
    return i


def _flatten_up_to(treedef: PyTreeDef, tree: Any, whom: str | None) -> list[Any]:
    out: list[Any] = []
    try:
        _up_to(treedef._entries, 0, tree, out)
    except _Mismatch as e:
        where = keystr(reversed(e.path)) or "the root"
        raise ValueError(f"tree structures differ at {where}: {e.message(whom)}") from None
    return out


def _subtree_end(entries: tuple[Any, ...], i: int) -> int:
    pending = 1
    while pending:
        e = entries[i]
        pending += (e[2] if e is not None else 0) - 1
        i += 1
    return i


def _count_leaves(entries: Iterable[Any]) -> int:
    return sum(1 for e in entries if e is None)


class PyTreeDef:
    """The structure of a pytree: its containers, without the leaves.

    Treedefs compare equal iff the structures are equal (container types,
    dict keys, namedtuple types, aux data) and are hashable, so they can key
    caches.  Get one from :func:`flatten` or :func:`structure`.

    >>> from funcnet import tree
    >>> td = tree.structure({"a": 1, "b": (2, 3)})
    >>> td
    PyTreeDef({'a': *, 'b': (*, *)})
    >>> td.num_leaves
    3
    >>> td == tree.structure({"b": (0, 0), "a": 0})
    True
    """

    __slots__ = ("_entries", "_hash", "num_leaves")

    def __init__(self, entries: tuple[Any, ...], num_leaves: int) -> None:
        self._entries = entries
        self.num_leaves = num_leaves
        self._hash: int | None = None

    @property
    def num_nodes(self) -> int:
        """Number of nodes, counting containers and leaves.

        >>> from funcnet import tree
        >>> tree.structure([1, (2, 3)]).num_nodes
        5
        """
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PyTreeDef:
            return NotImplemented
        if self.num_leaves != other.num_leaves:
            return False
        h1, h2 = self._hash, other._hash
        if h1 is not None and h2 is not None and h1 != h2:
            return False
        return self._entries == other._entries

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(self._entries)
        return h

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (PyTreeDef, (self._entries, self.num_leaves))

    def _repr_at(self, i: int) -> tuple[str, int]:
        entry = self._entries[i]
        if entry is None:
            return "*", i + 1
        node, aux, n = entry
        i += 1
        parts = []
        for _ in range(n):
            s, i = self._repr_at(i)
            parts.append(s)
        return node.repr(aux, parts), i

    def __repr__(self) -> str:
        return f"PyTreeDef({self._repr_at(0)[0]})"

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """Build a tree of this structure from ``leaves`` (in flatten order).

        >>> from funcnet import tree
        >>> td = tree.structure((0, [0, 0]))
        >>> td.unflatten(["a", "b", "c"])
        ('a', ['b', 'c'])
        """
        if type(leaves) is not list and type(leaves) is not tuple:
            leaves = list(leaves)
        li = len(leaves)  # type: ignore[arg-type]
        if li != self.num_leaves:
            raise ValueError(
                f"unflatten: the treedef expects {self.num_leaves} "
                f"lea{'f' if self.num_leaves == 1 else 'ves'}, got {li} "
                f"(treedef {_truncate(repr(self))})"
            )
        stack: list[Any] = []
        push = stack.append
        it = reversed(leaves)  # type: ignore[arg-type]
        for entry in reversed(self._entries):
            if entry is None:
                push(next(it))
                continue
            node, aux, n = entry
            if n:
                children = stack[-n:]
                del stack[-n:]
                children.reverse()
            else:
                children = []
            if node is _DICT_NODE:
                push(dict(zip(aux, children)))
            elif node is _TUPLE_NODE:
                push(tuple(children))
            elif node is _LIST_NODE:
                push(children)
            else:
                push(node.unflatten(aux, children))
        return stack[0]

    def flatten_up_to(self, tree: Any) -> list[Any]:
        """Flatten ``tree`` only as deep as this treedef's leaves.

        This treedef must be a *prefix* of ``tree``'s structure: wherever the
        treedef has a leaf, the whole corresponding subtree of ``tree`` is
        returned as one item.  A mismatch raises ``ValueError`` naming the key
        path and what differed.

        >>> from funcnet import tree
        >>> prefix = tree.structure({"a": 0, "b": 0})
        >>> prefix.flatten_up_to({"a": [1, 2], "b": {"c": 3}})
        [[1, 2], {'c': 3}]
        """
        return _flatten_up_to(self, tree, None)

    def children(self) -> list[PyTreeDef]:
        """Treedefs of the root node's children (``[]`` for a leaf).

        >>> from funcnet import tree
        >>> tree.structure({"a": 1, "b": (2, 3)}).children()
        [PyTreeDef(*), PyTreeDef((*, *))]
        """
        entries = self._entries
        root = entries[0]
        if root is None:
            return []
        out = []
        i = 1
        for _ in range(root[2]):
            j = _subtree_end(entries, i)
            sub = entries[i:j]
            out.append(PyTreeDef(sub, _count_leaves(sub)))
            i = j
        return out

    def node_data(self) -> tuple[type, Any] | None:
        """``(type, aux_data)`` of the root node, or ``None`` for a leaf.

        >>> from funcnet import tree
        >>> tree.structure({"b": 1, "a": 2}).node_data()
        (<class 'dict'>, ('a', 'b'))
        """
        root = self._entries[0]
        if root is None:
            return None
        return root[0].type, root[1]

    def is_leaf(self) -> bool:
        """Whether this treedef is a single leaf.

        >>> from funcnet import tree
        >>> tree.structure(1.0).is_leaf(), tree.structure([1.0]).is_leaf()
        (True, False)
        """
        return self._entries[0] is None


def _truncate(s: str, n: int = 200) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


_LEAF_TREEDEF = PyTreeDef((None,), 1)


# --------------------------------------------------------------------------
# Flattening
# --------------------------------------------------------------------------


def _flatten_fast(x: Any, leaves: list[Any], entries: list[Any]) -> None:
    """Flatten without ``is_leaf``: the hot path, with built-ins inlined."""
    t = type(x)
    if t is dict:
        try:
            keys = sorted(x)
        except TypeError:
            keys = _sorted_keys(x)
        children = [x[k] for k in keys]
        entries.append((_DICT_NODE, tuple(keys), len(children)))
    elif t is tuple:
        children = x
        entries.append((_TUPLE_NODE, None, len(x)))
    elif t is list:
        children = x
        entries.append((_LIST_NODE, None, len(x)))
    else:
        node = _nodes.get(t, _UNKNOWN)
        if node is _UNKNOWN:
            node = _classify(t)
        if node is None:
            leaves.append(x)
            entries.append(None)
            return
        children, aux = node.flatten(x)  # type: ignore[union-attr]
        entries.append((node, aux, len(children)))
    get = _nodes.get
    for c in children:
        if get(type(c), _UNKNOWN) is None:  # known leaf type: skip the call
            leaves.append(c)
            entries.append(None)
        else:
            _flatten_fast(c, leaves, entries)


def _flatten_into(x: Any, leaves: list[Any], entries: list[Any], is_leaf: IsLeaf) -> None:
    if is_leaf(x):  # type: ignore[misc]
        leaves.append(x)
        entries.append(None)
        return
    node = _nodes.get(type(x), _UNKNOWN)
    if node is _UNKNOWN:
        node = _classify(type(x))
    if node is None:
        leaves.append(x)
        entries.append(None)
        return
    children, aux = node.flatten(x)  # type: ignore[union-attr]
    entries.append((node, aux, len(children)))
    for c in children:
        _flatten_into(c, leaves, entries, is_leaf)


def _leaves_fast(x: Any, leaves: list[Any]) -> None:
    t = type(x)
    if t is dict:
        try:
            children = [x[k] for k in sorted(x)]
        except TypeError:
            children = [x[k] for k in _sorted_keys(x)]
    elif t is tuple or t is list:
        children = x
    else:
        node = _nodes.get(t, _UNKNOWN)
        if node is _UNKNOWN:
            node = _classify(t)
        if node is None:
            leaves.append(x)
            return
        children = node.flatten(x)[0]  # type: ignore[union-attr]
    get = _nodes.get
    for c in children:
        if get(type(c), _UNKNOWN) is None:
            leaves.append(c)
        else:
            _leaves_fast(c, leaves)


def _leaves_into(x: Any, leaves: list[Any], is_leaf: IsLeaf) -> None:
    if is_leaf(x):  # type: ignore[misc]
        leaves.append(x)
        return
    node = _nodes.get(type(x), _UNKNOWN)
    if node is _UNKNOWN:
        node = _classify(type(x))
    if node is None:
        leaves.append(x)
        return
    for c in node.flatten(x)[0]:  # type: ignore[union-attr]
        _leaves_into(c, leaves, is_leaf)


def flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list[Any], PyTreeDef]:
    """Split ``tree`` into a list of leaves and a :class:`PyTreeDef`.

    Leaves come in a deterministic order: dicts by sorted key, sequences and
    namedtuples by position, registered nodes in the order their flatten
    function gives.  ``None`` is a container with no children.  If
    ``is_leaf(subtree)`` is true, that subtree is treated as a leaf.

    >>> from funcnet import tree
    >>> tree.flatten([1, None, {"x": 2}])
    ([1, 2], PyTreeDef([*, None, {'x': *}]))
    >>> tree.flatten([1, None], is_leaf=lambda x: x is None)
    ([1, None], PyTreeDef([*, *]))
    """
    leaves: list[Any] = []
    entries: list[Any] = []
    if is_leaf is None:
        _flatten_fast(tree, leaves, entries)
    else:
        _flatten_into(tree, leaves, entries, is_leaf)
    if len(entries) == 1 and entries[0] is None:
        return leaves, _LEAF_TREEDEF
    return leaves, PyTreeDef(tuple(entries), len(leaves))


def unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a tree of structure ``treedef`` from ``leaves``.

    Raises ``ValueError`` stating both counts if the number of leaves is not
    ``treedef.num_leaves``.

    >>> from funcnet import tree
    >>> leaves, td = tree.flatten({"a": 1, "b": [2, 3]})
    >>> tree.unflatten(td, [x * 10 for x in leaves])
    {'a': 10, 'b': [20, 30]}
    """
    return treedef.unflatten(leaves)


def leaves(tree: Any, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of ``tree``, in :func:`flatten` order.

    >>> from funcnet import tree
    >>> tree.leaves({"b": [2, 3], "a": 1})
    [1, 2, 3]
    """
    out: list[Any] = []
    if is_leaf is None:
        _leaves_fast(tree, out)
    else:
        _leaves_into(tree, out, is_leaf)
    return out


def structure(tree: Any, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The :class:`PyTreeDef` of ``tree``.

    >>> from funcnet import tree
    >>> tree.structure((1, [2, 3]))
    PyTreeDef((*, [*, *]))
    """
    return flatten(tree, is_leaf)[1]


_ORDINALS = ("first", "second", "third", "fourth", "fifth",
             "sixth", "seventh", "eighth", "ninth", "tenth")


def _tree_name(i: int) -> str:
    """``'the second tree'`` for i == 1 (0-based position among map's trees)."""
    if i < len(_ORDINALS):
        return f"the {_ORDINALS[i]} tree"
    return f"tree number {i + 1}"


def map(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Apply ``f`` leafwise, returning a tree of the same structure as ``tree``.

    With extra trees, ``f(x, *ys)`` receives the matching leaves of each.
    Every extra tree must match ``tree``'s structure down to ``tree``'s
    leaves (a subtree sitting where ``tree`` has a leaf is passed whole);
    otherwise ``ValueError`` names the key path and what differed.

    >>> from funcnet import tree
    >>> tree.map(lambda x: x * 2, {"a": 1, "b": (2, 3)})
    {'a': 2, 'b': (4, 6)}
    >>> tree.map(lambda x, y: x + y, [1, 2], [10, 20])
    [11, 22]
    """
    leaves_, treedef = flatten(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(x) for x in leaves_])
    others = [_flatten_up_to(treedef, r, _tree_name(i + 1)) for i, r in enumerate(rest)]
    return treedef.unflatten([f(*xs) for xs in zip(leaves_, *others)])


def _flatten_with_path_into(
    x: Any, path: KeyPath, pairs: list[tuple[KeyPath, Any]], entries: list[Any], is_leaf: IsLeaf
) -> None:
    if is_leaf is not None and is_leaf(x):
        pairs.append((path, x))
        entries.append(None)
        return
    node = _nodes.get(type(x), _UNKNOWN)
    if node is _UNKNOWN:
        node = _classify(type(x))
    if node is None:
        pairs.append((path, x))
        entries.append(None)
        return
    keyed, aux = node.flatten_with_keys(x)  # type: ignore[union-attr]
    entries.append((node, aux, len(keyed)))
    for k, c in keyed:
        _flatten_with_path_into(c, path + (k,), pairs, entries, is_leaf)


def flatten_with_path(
    tree: Any, is_leaf: IsLeaf = None
) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
    """Like :func:`flatten`, but each leaf comes with its key path.

    A path is a tuple of :class:`DictKey`, :class:`SequenceKey`,
    :class:`GetAttrKey` (namedtuple and dataclass fields) or
    :class:`FlattenedIndexKey` entries; render it with :func:`keystr`.

    >>> from funcnet import tree
    >>> pairs, td = tree.flatten_with_path({"params": [{"w": 1.0}]})
    >>> [(tree.keystr(p), x) for p, x in pairs]
    [("['params'][0]['w']", 1.0)]
    """
    pairs: list[tuple[KeyPath, Any]] = []
    entries: list[Any] = []
    _flatten_with_path_into(tree, (), pairs, entries, is_leaf)
    return pairs, PyTreeDef(tuple(entries), len(pairs))


def map_with_path(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Like :func:`map`, but calls ``f(path, leaf, *rest_leaves)``.

    >>> from funcnet import tree
    >>> tree.map_with_path(lambda p, x: f"{tree.keystr(p)}={x}", {"a": [1, 2]})
    {'a': ["['a'][0]=1", "['a'][1]=2"]}
    """
    pairs, treedef = flatten_with_path(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(p, x) for p, x in pairs])
    others = [_flatten_up_to(treedef, r, _tree_name(i + 1)) for i, r in enumerate(rest)]
    return treedef.unflatten([f(p, x, *ys) for (p, x), *ys in zip(pairs, *others)])


_NO_INITIALIZER = object()


def reduce(
    f: Callable[[Any, Any], Any],
    tree: Any,
    initializer: Any = _NO_INITIALIZER,
    is_leaf: IsLeaf = None,
) -> Any:
    """Fold ``f`` over the leaves of ``tree`` from left to right.

    Without ``initializer`` the first leaf starts the fold, and a tree with no
    leaves raises ``TypeError``.

    >>> import operator
    >>> from funcnet import tree
    >>> tree.reduce(operator.add, {"a": 1, "b": [2, 3]})
    6
    >>> tree.reduce(operator.add, [], 0)
    0
    """
    xs = leaves(tree, is_leaf)
    if initializer is _NO_INITIALIZER:
        if not xs:
            raise TypeError("reduce() of a tree with no leaves and no initializer")
        return functools.reduce(f, xs)
    return functools.reduce(f, xs, initializer)


def all(tree: Any, is_leaf: IsLeaf = None) -> bool:
    """Whether every leaf of ``tree`` is truthy (``True`` for no leaves).

    >>> from funcnet import tree
    >>> tree.all({"a": True, "b": [1, 2]}), tree.all([True, 0]), tree.all([])
    (True, False, True)
    """
    return builtins.all(leaves(tree, is_leaf))
