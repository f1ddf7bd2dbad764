"""Tests for funcnet.tree (pytree flatten/unflatten/map and friends)."""

from __future__ import annotations

import ast
import collections
import dataclasses
import doctest
import operator
import pathlib
import pickle
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funcnet import tree
from funcnet.core import pytree as pytree_mod
from funcnet.tree import DictKey, FlattenedIndexKey, GetAttrKey, PyTreeDef, SequenceKey

# --------------------------------------------------------------------------
# Helper types
# --------------------------------------------------------------------------


class Point(NamedTuple):
    x: Any
    y: Any


class OtherPoint(NamedTuple):
    x: Any
    y: Any


class Box:
    """A registered class without key information."""

    def __init__(self, a: Any, b: Any, tag: str = "box") -> None:
        self.a, self.b, self.tag = a, b, tag

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Box
            and self.tag == other.tag
            and _tree_equal(self.a, other.a)
            and _tree_equal(self.b, other.b)
        )

    __hash__ = None  # type: ignore[assignment]


tree.register_node(
    Box,
    lambda b: ((b.a, b.b), b.tag),
    lambda tag, ch: Box(ch[0], ch[1], tag),
)


class Named:
    """A registered class that names its children."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __eq__(self, other: object) -> bool:
        return type(other) is Named and (self.first, self.second) == (other.first, other.second)

    __hash__ = None  # type: ignore[assignment]


tree.register_node(
    Named,
    lambda n: ((n.first, n.second), None),
    lambda aux, ch: Named(*ch),
    flatten_with_keys_fn=lambda n: (
        ((GetAttrKey("first"), n.first), (GetAttrKey("second"), n.second)),
        None,
    ),
)


@tree.register_dataclass
@dataclasses.dataclass
class Linear:
    w: Any
    b: Any
    act: str = dataclasses.field(default="relu", metadata={"static": True})


@tree.register_dataclass
@dataclasses.dataclass(frozen=True)
class Frozen:
    value: Any
    name: str = dataclasses.field(default="f", metadata={"static": True})
    extra: Any = None


@tree.register_dataclass
@dataclasses.dataclass
class Validated:
    x: Any
    calls: list = dataclasses.field(
        default_factory=list, compare=False, metadata={"static": True}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.x, int | float):
            raise TypeError("x must be a number")


def _tree_equal(a: Any, b: Any) -> bool:
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    if ta != tb or len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (type(x) is type(y) and np.array_equal(x, y)):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

ROUND_TRIP_CASES = [
    1,
    1.5,
    "a string is a leaf",
    np.arange(3),
    None,
    [],
    (),
    {},
    [None],
    [1, 2, 3],
    (1, (2, (3, ()))),
    {"a": 1, "b": [2, 3], "c": {"d": (4, None)}},
    {"b": 1, "a": 2},
    [[], [[]], {}, ()],
    Point(1, [2, 3]),
    Point(Point(1, 2), None),
    collections.OrderedDict([("z", 1), ("a", 2)]),
    collections.defaultdict(list, {"b": 1, "a": [2]}),
    Box(1, [2, 3]),
    Box({"k": Box(1, 2, "inner")}, None, "outer"),
    Named(1, (2, 3)),
    Linear(np.ones(2), 0.5, act="tanh"),
    Frozen(value=[1, 2], name="g", extra={"e": 3}),
    {"params": [Linear(1.0, 2.0), Linear(3.0, 4.0)], "state": (np.zeros(1), None)},
    {1: "x", "a": "y", (2, 3): "z"},  # mixed, unsortable key types
]


@pytest.mark.parametrize("t", ROUND_TRIP_CASES, ids=lambda t: type(t).__name__)
def test_round_trip(t: Any) -> None:
    leaves, td = tree.flatten(t)
    rebuilt = tree.unflatten(td, leaves)
    assert type(rebuilt) is type(t)
    assert _tree_equal(rebuilt, t)
    assert tree.structure(rebuilt) == td
    assert hash(tree.structure(rebuilt)) == hash(td)
    assert td.num_leaves == len(leaves)
    again = tree.leaves(t)
    assert len(again) == len(leaves) and all(a is b for a, b in zip(again, leaves))
    # Rebuilding with new leaves really uses them, in order.
    marks = list(range(len(leaves)))
    assert tree.leaves(td.unflatten(marks)) == marks


def test_round_trip_keeps_container_types() -> None:
    t = (collections.OrderedDict(b=1, a=2), Point(1, 2), [3], {"k": None})
    out = tree.map(lambda x: x, t)
    assert type(out[0]) is collections.OrderedDict
    assert list(out[0]) == ["b", "a"]
    assert type(out[1]) is Point
    assert out == t


def test_leaf_and_none() -> None:
    assert tree.flatten(5) == ([5], tree.structure(0))
    assert repr(tree.structure(5)) == "PyTreeDef(*)"
    leaves, td = tree.flatten(None)
    assert leaves == []
    assert repr(td) == "PyTreeDef(None)"
    assert td.num_leaves == 0
    assert tree.unflatten(td, []) is None
    assert tree.leaves([None, 1, (None,)]) == [1]


def test_empty_containers_are_distinct_structures() -> None:
    structures = [tree.structure(x) for x in ([], (), {}, None, collections.OrderedDict(), 0)]
    for i, a in enumerate(structures):
        for j, b in enumerate(structures):
            assert (a == b) == (i == j)


def test_numpy_arrays_and_scalars_are_leaves() -> None:
    arr = np.arange(6).reshape(2, 3)
    leaves, td = tree.flatten({"a": arr, "b": np.float32(1.0), "c": 2 + 3j})
    assert leaves[0] is arr
    assert td.num_leaves == 3


def test_unregistered_subclasses_are_leaves() -> None:
    class MyDict(dict):
        pass

    class MyBox(Box):
        pass

    d = MyDict(a=1)
    b = MyBox(1, 2)
    assert tree.leaves(d) == [d]
    assert tree.leaves(b) == [b]


def test_dict_key_order_is_sorted_and_insertion_independent() -> None:
    a = {"b": 1, "a": 2, "c": 3}
    b = {"c": 30, "a": 20, "b": 10}
    assert tree.leaves(a) == [2, 1, 3]
    assert tree.structure(a) == tree.structure(b)
    assert repr(tree.structure(a)) == "PyTreeDef({'a': *, 'b': *, 'c': *})"


def test_unsortable_dict_keys_fall_back_to_a_deterministic_order() -> None:
    a = {"b": 1, 2: 2, "a": 3, 1: 4, (0,): 5}
    b = {(0,): 50, 1: 40, "a": 30, 2: 20, "b": 10}
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    assert ta == tb
    # Grouped by type name (int, str, tuple), naturally sorted within a group.
    assert la == [4, 2, 3, 1, 5]
    assert lb == [40, 20, 30, 10, 50]
    assert tree.unflatten(ta, la) == a
    # The same order is used when checking structures.
    assert tree.map(operator.add, a, b) == {"b": 11, 2: 22, "a": 33, 1: 44, (0,): 55}


def test_ordered_dict_keeps_insertion_order() -> None:
    od = collections.OrderedDict([("z", 1), ("a", 2)])
    assert tree.leaves(od) == [1, 2]
    assert tree.structure(od) != tree.structure({"z": 1, "a": 2})
    assert tree.structure(od) != tree.structure(collections.OrderedDict([("a", 1), ("z", 2)]))
    assert repr(tree.structure(od)) == "PyTreeDef(OrderedDict({'z': *, 'a': *}))"


def test_defaultdict() -> None:
    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    out = tree.map(lambda x: x * 10, dd)
    assert type(out) is collections.defaultdict
    assert out.default_factory is list
    assert out == {"a": 20, "b": 10}
    assert tree.structure(dd) != tree.structure(collections.defaultdict(dict, {"b": 1, "a": 2}))


def test_namedtuple() -> None:
    leaves, td = tree.flatten(Point(1, (2, 3)))
    assert leaves == [1, 2, 3]
    assert repr(td) == "PyTreeDef(Point(x=*, y=(*, *)))"
    assert td != tree.structure((1, (2, 3)))
    assert td != tree.structure(OtherPoint(1, (2, 3)))
    assert tree.unflatten(td, [4, 5, 6]) == Point(4, (5, 6))
    assert type(tree.unflatten(td, [4, 5, 6])) is Point


def test_registered_class() -> None:
    b = Box(1, [2, 3], "t")
    leaves, td = tree.flatten(b)
    assert leaves == [1, 2, 3]
    assert repr(td) == "PyTreeDef(CustomNode(Box['t'], [*, [*, *]]))"
    assert td != tree.structure(Box(1, [2, 3], "other"))
    out = tree.map(lambda x: -x, b)
    assert isinstance(out, Box) and out.tag == "t" and out.a == -1 and out.b == [-2, -3]


def test_register_node_twice_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        tree.register_node(Box, lambda b: ((), None), lambda aux, ch: Box(1, 2))
    with pytest.raises(ValueError, match="already registered"):
        tree.register_node(dict, lambda d: ((), None), lambda aux, ch: {})
    with pytest.raises(TypeError):
        tree.register_node(Box(1, 2), lambda b: ((), None), lambda aux, ch: None)  # type: ignore[arg-type]


def test_registering_a_type_already_seen_as_leaf() -> None:
    class Late:
        def __init__(self, v: Any) -> None:
            self.v = v

    obj = Late([1, 2])
    assert tree.leaves(obj) == [obj]  # cached as a leaf type ...
    tree.register_node(Late, lambda o: ((o.v,), None), lambda aux, ch: Late(*ch))
    assert tree.leaves(obj) == [1, 2]  # ... until registered


def test_dataclass_with_static_field() -> None:
    lin = Linear(w=np.ones(2), b=0.5, act="tanh")
    leaves, td = tree.flatten(lin)
    assert len(leaves) == 2 and leaves[1] == 0.5
    assert repr(td) == "PyTreeDef(Linear(w=*, b=*, act='tanh'))"
    assert td != tree.structure(Linear(np.ones(2), 0.5, act="relu"))
    assert td == tree.structure(Linear(1, 2, act="tanh"))
    out = tree.map(lambda x: x * 2, lin)
    assert isinstance(out, Linear) and out.act == "tanh" and out.b == 1.0
    pairs, _ = tree.flatten_with_path(lin)
    assert [tree.keystr(p) for p, _ in pairs] == [".w", ".b"]


def test_frozen_dataclass_and_field_order() -> None:
    f = Frozen(value=1, name="n", extra=(2, 3))
    leaves, td = tree.flatten(f)
    assert leaves == [1, 2, 3]
    assert repr(td) == "PyTreeDef(Frozen(value=*, name='n', extra=(*, *)))"
    out = tree.unflatten(td, ["a", "b", "c"])
    assert out == Frozen(value="a", name="n", extra=("b", "c"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.value = 3  # type: ignore[misc]


def test_slotted_dataclass_and_init_false_field() -> None:
    @tree.register_dataclass
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: Any
        b: int = dataclasses.field(default=0, metadata={"static": True})
        c: Any = dataclasses.field(init=False, default=5)

    s = Slotted(1, 2)
    leaves, td = tree.flatten(s)
    assert leaves == [1, 5]
    assert repr(td) == "PyTreeDef(Slotted(a=*, b=2, c=*))"
    out = tree.map(lambda x: x * 10, s)
    assert (out.a, out.b, out.c) == (10, 2, 50)


def test_dataclass_unflatten_skips_post_init() -> None:
    v = Validated(1.0)
    out = tree.map(lambda x: "not a number", v)
    assert out.x == "not a number"


def test_register_dataclass_rejects_non_dataclasses() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="dataclass"):
        tree.register_dataclass(Plain)
    with pytest.raises(TypeError, match="dataclass"):
        tree.register_dataclass(Linear(1, 2))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Treedef API
# --------------------------------------------------------------------------


def test_treedef_repr() -> None:
    assert repr(tree.structure({"a": 1, "b": (2, 3)})) == "PyTreeDef({'a': *, 'b': (*, *)})"
    assert repr(tree.structure((1,))) == "PyTreeDef((*,))"
    assert repr(tree.structure([None, []])) == "PyTreeDef([None, []])"
    assert (
        repr(tree.structure(collections.defaultdict(list, a=1)))
        == "PyTreeDef(defaultdict(list, {'a': *}))"
    )


def test_treedef_equality_and_hash() -> None:
    a = tree.structure({"x": [1, 2], "y": None})
    b = tree.structure({"y": None, "x": [np.zeros(3), "s"]})
    c = tree.structure({"x": [1, 2, 3], "y": None})
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert a != "not a treedef"
    cache = {a: "hit"}
    assert cache[b] == "hit"
    assert c not in cache
    # Keys of equal value but different structure type differ.
    assert tree.structure([1, 2]) != tree.structure((1, 2))
    assert tree.structure({"a": 1}) != tree.structure({"b": 1})


def test_treedef_children_node_data_and_counts() -> None:
    td = tree.structure({"a": 1, "b": (2, [3, 4]), "c": None})
    kids = td.children()
    assert kids == [tree.structure(0), tree.structure((0, [0, 0])), tree.structure(None)]
    assert [k.num_leaves for k in kids] == [1, 3, 0]
    assert td.node_data() == (dict, ("a", "b", "c"))
    assert tree.structure(1).children() == []
    assert tree.structure(1).node_data() is None
    assert tree.structure(1).is_leaf() and not td.is_leaf()
    assert td.num_leaves == 4
    assert td.num_nodes == 8  # dict, leaf, tuple, leaf, list, leaf, leaf, None


def test_treedef_pickles() -> None:
    td = tree.structure({"a": [1, Point(2, 3)], "b": Linear(1, 2)})
    td2 = pickle.loads(pickle.dumps(td))
    assert td2 == td and hash(td2) == hash(td)


def test_unflatten_accepts_iterables() -> None:
    td = tree.structure([0, (0, 0)])
    assert td.unflatten(iter([1, 2, 3])) == [1, (2, 3)]
    assert tree.unflatten(td, (x for x in "abc")) == ["a", ("b", "c")]


def test_unflatten_wrong_leaf_count() -> None:
    td = tree.structure({"a": 1, "b": (2, 3)})
    with pytest.raises(ValueError, match=r"expects 3 leaves, got 2"):
        tree.unflatten(td, [1, 2])
    with pytest.raises(ValueError, match=r"expects 3 leaves, got 4"):
        td.unflatten([1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"expects 1 leaf, got 0"):
        tree.structure(1).unflatten([])


def test_flatten_up_to_with_prefix() -> None:
    prefix = tree.structure({"a": 0, "b": (0, 0)})
    full = {"a": {"x": 1, "y": [2]}, "b": ([3, 4], None)}
    assert prefix.flatten_up_to(full) == [{"x": 1, "y": [2]}, [3, 4], None]
    # A leaf treedef takes the whole tree.
    assert tree.structure(0).flatten_up_to(full) == [full]
    # in_axes-style prefix with None leaves.
    axes = (0, None, {"w": 1})
    td = tree.structure(axes, is_leaf=lambda x: x is None)
    args = (np.zeros(3), {"k": 1}, {"w": [1, 2]})
    assert td.flatten_up_to(args)[1] == {"k": 1}
    assert td.flatten_up_to(args)[2] == [1, 2]


def test_flatten_up_to_errors() -> None:
    prefix = tree.structure({"a": 0, "b": (0, 0)})
    with pytest.raises(ValueError) as e:
        prefix.flatten_up_to({"a": 1, "b": [1, 2]})
    assert str(e.value) == (
        "tree structures differ at ['b']: expected a tuple of 2 children, got a list of 2 children"
    )
    with pytest.raises(ValueError) as e:
        prefix.flatten_up_to({"a": 1})
    assert str(e.value) == "tree structures differ at ['b']: key 'b' is missing (keys ['a'])"
    with pytest.raises(ValueError) as e:
        prefix.flatten_up_to(5)
    assert str(e.value) == (
        "tree structures differ at the root: expected a dict with keys ['a', 'b'], "
        "got a leaf of type int"
    )


# --------------------------------------------------------------------------
# map, with several trees, with paths
# --------------------------------------------------------------------------


def test_map_several_trees() -> None:
    a = {"a": 1, "b": (2, 3)}
    b = {"a": 10, "b": (20, 30)}
    c = {"b": (200, 300), "a": 100}
    assert tree.map(lambda x, y, z: x + y + z, a, b, c) == {"a": 111, "b": (222, 333)}


def test_map_rest_trees_may_be_deeper_at_leaves() -> None:
    out = tree.map(lambda x, y: (x, y), {"a": 1, "b": 2}, {"a": [1, 2], "b": {"c": 3}})
    assert out == {"a": (1, [1, 2]), "b": (2, {"c": 3})}


def test_map_with_none_subtrees() -> None:
    assert tree.map(lambda x: x + 1, [1, None, (2, None)]) == [2, None, (3, None)]
    assert tree.map(lambda x, y: x + y, [1, None], [2, None]) == [3, None]


def test_map_is_leaf() -> None:
    t = {"a": (1, 2), "b": [(3, 4)]}
    out = tree.map(lambda x: sum(x), t, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 3, "b": [7]}
    out = tree.map(lambda x: x is None, [1, None], is_leaf=lambda x: x is None)
    assert out == [False, True]


def test_flatten_with_path_and_keystr() -> None:
    t = {
        "params": [{"w": 1, "b": 2}, Linear(3, 4)],
        "pt": Point(5, None),
        "box": Box(6, 7),
        "named": Named(8, 9),
        "od": collections.OrderedDict(z=10),
    }
    pairs, td = tree.flatten_with_path(t)
    assert td == tree.structure(t)
    assert [x for _, x in pairs] == tree.leaves(t)
    got = [(tree.keystr(p), x) for p, x in pairs]
    assert got == [
        ("['box'][<flat index 0>]", 6),
        ("['box'][<flat index 1>]", 7),
        ("['named'].first", 8),
        ("['named'].second", 9),
        ("['od']['z']", 10),
        ("['params'][0]['b']", 2),
        ("['params'][0]['w']", 1),
        ("['params'][1].w", 3),
        ("['params'][1].b", 4),
        ("['pt'].x", 5),
    ]
    path = pairs[5][0]
    assert path == (DictKey("params"), SequenceKey(0), DictKey("b"))
    assert tree.keystr(path, simple=True, separator="/") == "params/0/b"
    assert pairs[0][0][1] == FlattenedIndexKey(0)
    assert tree.flatten_with_path(3) == ([((), 3)], tree.structure(3))
    assert tree.keystr(()) == ""


def test_key_types() -> None:
    assert str(DictKey("a")) == "['a']"
    assert str(DictKey(1)) == "[1]"
    assert str(SequenceKey(0)) == "[0]"
    assert str(GetAttrKey("w")) == ".w"
    assert DictKey("a") == DictKey("a") and hash(DictKey("a")) == hash(DictKey("a"))
    assert DictKey("a") != GetAttrKey("a")
    assert repr(SequenceKey(2)) == "SequenceKey(idx=2)"


def test_flatten_with_path_is_leaf() -> None:
    pairs, td = tree.flatten_with_path({"a": (1, 2), "b": 3}, is_leaf=lambda x: isinstance(x, tuple))
    assert [(tree.keystr(p), x) for p, x in pairs] == [("['a']", (1, 2)), ("['b']", 3)]
    assert td.num_leaves == 2


def test_map_with_path() -> None:
    t = {"a": [1, 2], "b": Point(3, 4)}
    out = tree.map_with_path(lambda p, x: tree.keystr(p), t)
    assert out == {"a": ["['a'][0]", "['a'][1]"], "b": Point("['b'].x", "['b'].y")}
    out = tree.map_with_path(lambda p, x, y: (len(p), x + y), t, tree.map(lambda x: 10 * x, t))
    assert out == {"a": [(2, 11), (2, 22)], "b": Point((2, 33), (2, 44))}
    with pytest.raises(ValueError, match=r"at \['a'\]: expected a list of 2 children"):
        tree.map_with_path(lambda p, x, y: x, t, {"a": [1], "b": Point(1, 2)})


# --------------------------------------------------------------------------
# Structure-mismatch error messages
# --------------------------------------------------------------------------


def _map_error(*trees: Any) -> str:
    with pytest.raises(ValueError) as e:
        tree.map(lambda *xs: xs[0], *trees)
    return str(e.value)


def test_error_sequence_type_and_length() -> None:
    msg = _map_error({"a": 1, "b": [0, (1, 2)]}, {"a": 1, "b": [0, [1, 2, 3]]})
    assert msg == (
        "tree structures differ at ['b'][1]: expected a tuple of 2 children, "
        "got a list of 3 children in the second tree"
    )
    msg = _map_error([1, 2], [1, 2, 3])
    assert msg == (
        "tree structures differ at the root: expected a list of 2 children, "
        "got a list of 3 children in the second tree"
    )
    msg = _map_error([(1,)], [(1, 2)])
    assert msg == (
        "tree structures differ at [0]: expected a tuple of 1 child, "
        "got a tuple of 2 children in the second tree"
    )


def test_error_missing_and_extra_dict_keys() -> None:
    msg = _map_error({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2})
    assert msg == (
        "tree structures differ at ['c']: key 'c' is missing in the second tree (keys ['a', 'b'])"
    )
    msg = _map_error({"x": {"a": 1}}, {"x": {"a": 1, "d": 2}})
    assert msg == (
        "tree structures differ at ['x']['d']: unexpected key 'd' in the second tree "
        "(expected keys ['a'])"
    )


def test_error_names_the_right_tree() -> None:
    msg = _map_error([1, 2], [1, 2], (1, 2))
    assert msg == (
        "tree structures differ at the root: expected a list of 2 children, "
        "got a tuple of 2 children in the third tree"
    )


def test_error_leaf_where_node_expected_and_none() -> None:
    msg = _map_error({"a": [1, 2]}, {"a": 5})
    assert msg == (
        "tree structures differ at ['a']: expected a list of 2 children, "
        "got a leaf of type int in the second tree"
    )
    msg = _map_error({"a": None}, {"a": 5})
    assert msg == "tree structures differ at ['a']: expected None, got a leaf of type int in the second tree"
    msg = _map_error({"a": (1,)}, {"a": None})
    assert msg == "tree structures differ at ['a']: expected a tuple of 1 child, got None in the second tree"


def test_error_namedtuple_dataclass_and_custom_nodes() -> None:
    msg = _map_error([Point(1, 2)], [(1, 2)])
    assert msg == (
        "tree structures differ at [0]: expected a namedtuple Point with fields ['x', 'y'], "
        "got a tuple of 2 children in the second tree"
    )
    msg = _map_error([Point(1, 2)], [OtherPoint(1, 2)])
    assert "got a namedtuple OtherPoint with fields ['x', 'y']" in msg
    msg = _map_error({"l": Linear(1, 2, "relu")}, {"l": Linear(1, 2, "tanh")})
    assert msg == (
        "tree structures differ at ['l']: expected a dataclass Linear with static fields "
        "{'act': 'relu'}, got a dataclass Linear with static fields {'act': 'tanh'} "
        "in the second tree"
    )
    msg = _map_error(Box(1, (2, 3)), Box(1, (2, 3, 4)))
    assert msg == (
        "tree structures differ at [<flat index 1>]: expected a tuple of 2 children, "
        "got a tuple of 3 children in the second tree"
    )
    msg = _map_error(Box(1, 2, "p"), Box(1, 2, "q"))
    assert msg == (
        "tree structures differ at the root: expected a Box node with 2 children and aux data "
        "'p', got a Box node with 2 children and aux data 'q' in the second tree"
    )
    msg = _map_error(Point(Linear(1, [2]), 0), Point(Linear(1, [2, 3]), 0))
    assert msg.startswith("tree structures differ at .x.b: expected a list of 1 child")


def test_error_ordered_dict_order() -> None:
    a = collections.OrderedDict([("a", 1), ("b", 2)])
    b = collections.OrderedDict([("b", 1), ("a", 2)])
    msg = _map_error(a, b)
    assert msg == (
        "tree structures differ at the root: expected an OrderedDict with keys ['a', 'b'], "
        "got an OrderedDict with keys ['b', 'a'] in the second tree"
    )


def test_error_long_key_lists_are_shortened() -> None:
    a = {f"k{i:03d}": i for i in range(100)}
    b = dict(a)
    del b["k050"]
    msg = _map_error(a, b)
    assert msg.startswith("tree structures differ at ['k050']: key 'k050' is missing in the second tree")
    assert "... (99 keys in all)]" in msg
    assert len(msg) < 400


def test_error_is_value_error_without_internal_chaining() -> None:
    with pytest.raises(ValueError) as e:
        tree.map(lambda x, y: x, [1], [1, 2])
    assert e.value.__cause__ is None
    assert e.value.__suppress_context__


# --------------------------------------------------------------------------
# reduce / all / leaves
# --------------------------------------------------------------------------


def test_reduce() -> None:
    t = {"a": 1, "b": [2, 3], "c": None}
    assert tree.reduce(operator.add, t) == 6
    assert tree.reduce(operator.add, t, 100) == 106
    assert tree.reduce(lambda acc, x: acc + [x], t, []) == [1, 2, 3]
    assert tree.reduce(operator.add, [], 7) == 7
    assert tree.reduce(operator.add, {"a": None}, initializer=None) is None
    with pytest.raises(TypeError, match="no leaves"):
        tree.reduce(operator.add, [None, {}])
    assert tree.reduce(operator.add, [(1, 2), (3, 4)], (), is_leaf=lambda x: isinstance(x, tuple)) == (
        1, 2, 3, 4)


def test_all() -> None:
    assert tree.all({"a": True, "b": [1, np.True_]})
    assert not tree.all({"a": True, "b": [1, 0]})
    assert tree.all([])
    assert tree.all(None)
    assert not tree.all([None], is_leaf=lambda x: x is None)


def test_leaves_is_leaf() -> None:
    t = {"a": (1, 2), "b": [None, 3]}
    assert tree.leaves(t) == [1, 2, 3]
    assert tree.leaves(t, is_leaf=lambda x: x is None) == [1, 2, None, 3]
    assert tree.leaves(t, is_leaf=lambda x: isinstance(x, tuple)) == [(1, 2), 3]
    assert tree.leaves(t, is_leaf=lambda x: x is t) == [t]


# --------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------

_leaf = st.one_of(st.integers(), st.floats(allow_nan=False))
_keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
_trees = st.recursive(
    st.one_of(_leaf, st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_keys, children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_property_round_trip(t: Any) -> None:
    leaves, td = tree.flatten(t)
    assert tree.unflatten(td, leaves) == t
    assert td.num_leaves == len(leaves)


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_property_map_identity_and_leaves_order(t: Any) -> None:
    assert tree.map(lambda x: x, t) == t
    leaves, td = tree.flatten(t)
    assert tree.leaves(t) == leaves
    assert [x for _, x in tree.flatten_with_path(t)[0]] == leaves
    assert tree.flatten_with_path(t)[1] == td
    # Leaves come back in flatten order: tag each with its index.
    tagged = td.unflatten(range(td.num_leaves))
    assert tree.leaves(tagged) == list(range(td.num_leaves))
    assert td.flatten_up_to(t) == leaves


@settings(max_examples=200, deadline=None)
@given(_trees, _trees)
def test_property_treedef_equality_and_hash(a: Any, b: Any) -> None:
    ta, tb = tree.structure(a), tree.structure(b)
    assert ta == tree.structure(tree.map(lambda x: 0, a))
    assert hash(ta) == hash(tree.structure(tree.map(lambda x: "z", a)))
    if ta == tb:
        assert hash(ta) == hash(tb)
        assert repr(ta) == repr(tb)
        tree.map(lambda x, y: None, a, b)  # same structure: no error
    else:
        assert repr(ta) != repr(tb)
        # Extra trees may be deeper where the first has leaves, so one
        # direction may succeed -- but never both.
        ok = 0
        for x, y in ((a, b), (b, a)):
            try:
                tree.map(lambda u, v: None, x, y)
                ok += 1
            except ValueError as e:
                assert str(e).startswith("tree structures differ at ")
        assert ok < 2
    # Whenever a's structure is a prefix of b, the pieces rebuild b.
    try:
        pieces = ta.flatten_up_to(b)
    except ValueError:
        return
    assert ta.unflatten(pieces) == b


@settings(max_examples=100, deadline=None)
@given(_trees)
def test_property_children_and_paths(t: Any) -> None:
    pairs, td = tree.flatten_with_path(t)
    # Following each path from the root reaches the leaf.
    for path, leaf in pairs:
        node = t
        for k in path:
            node = node[k.key] if isinstance(k, DictKey) else node[k.idx]
        assert node == leaf
    kids = td.children()
    assert sum(k.num_leaves for k in kids) == (td.num_leaves if kids else 0)


# --------------------------------------------------------------------------
# Module hygiene
# --------------------------------------------------------------------------

_PYTREE_PATH = pathlib.Path(pytree_mod.__file__)


def test_pytree_module_imports_only_stdlib() -> None:
    mod = ast.parse(_PYTREE_PATH.read_text())
    for node in ast.walk(mod):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert not name.startswith("funcnet"), name
            assert name.split(".")[0] in {
                "__future__", "builtins", "collections", "dataclasses", "functools",
                "operator", "typing",
            }, name


def test_tree_module_exports() -> None:
    for name in tree.__all__:
        assert getattr(tree, name) is getattr(pytree_mod, name)
        obj = getattr(tree, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, name
    assert PyTreeDef is pytree_mod.PyTreeDef


@pytest.mark.parametrize("module", [pytree_mod, tree], ids=["pytree", "tree"])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
