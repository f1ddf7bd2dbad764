"""Pytree utilities: flatten, rebuild and map over nested containers.

The public face of :mod:`funcnet.core.pytree`, named after ``jax.tree``.

>>> from funcnet import tree
>>> params = {"w": [1.0, 2.0], "b": 0.5}
>>> tree.map(lambda x: x * 2, params)
{'b': 1.0, 'w': [2.0, 4.0]}
>>> leaves, treedef = tree.flatten(params)
>>> leaves, treedef
([0.5, 1.0, 2.0], PyTreeDef({'b': *, 'w': [*, *]}))
>>> [tree.keystr(p) for p, _ in tree.flatten_with_path(params)[0]]
["['b']", "['w'][0]", "['w'][1]"]
"""

from funcnet.core.pytree import (
    DictKey,
    FlattenedIndexKey,
    GetAttrKey,
    PyTreeDef,
    SequenceKey,
    all,
    flatten,
    flatten_with_path,
    keystr,
    leaves,
    map,
    map_with_path,
    reduce,
    register_dataclass,
    register_node,
    structure,
    unflatten,
)

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
