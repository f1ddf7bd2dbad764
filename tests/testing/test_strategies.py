"""Tests for the Hypothesis strategies of ``funcnet.testing``: each generates what
its docstring promises."""

import subprocess
import sys

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import funcnet as fn  # noqa: E402
from funcnet.testing import (  # noqa: E402
    arrays,
    broadcastable_shapes,
    check_grads,
    default_elements,
    pytrees,
    shapes,
)

FEW = settings(max_examples=60, deadline=None)


@FEW
@given(shapes())
def test_shapes_defaults(s):
    assert isinstance(s, tuple)
    assert 0 <= len(s) <= 4
    assert all(isinstance(d, int) and 0 <= d <= 5 for d in s)


@FEW
@given(st.data())
def test_shapes_bounds(data):
    min_dims = data.draw(st.integers(0, 3))
    max_dims = data.draw(st.integers(min_dims, 4))
    min_side = data.draw(st.integers(0, 3))
    max_side = data.draw(st.integers(min_side, 6))
    s = data.draw(shapes(min_dims, max_dims, min_side, max_side))
    assert min_dims <= len(s) <= max_dims
    assert all(min_side <= d <= max_side for d in s)


@FEW
@given(arrays((2, 3)))
def test_arrays_default_float64_in_range(x):
    assert isinstance(x, np.ndarray)
    assert x.shape == (2, 3) and x.dtype == np.float64
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 10)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32, np.int64, np.uint8,
                                   np.bool_])
def test_arrays_dtypes(dtype):
    @FEW
    @given(arrays(shapes(max_dims=2), dtype))
    def check(x):
        assert x.dtype == np.dtype(dtype)
        if x.dtype.kind == "f":
            assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 10)
        elif x.dtype.kind == "i":
            assert np.all(np.abs(x) <= 10)
        elif x.dtype.kind == "u":
            assert np.all(x <= 10)

    check()


@FEW
@given(arrays(shapes(min_dims=1, max_dims=3, max_side=3)))
def test_arrays_with_a_shape_strategy(x):
    assert 1 <= x.ndim <= 3 and all(d <= 3 for d in x.shape)


@FEW
@given(arrays(4, np.float64, elements=st.floats(0.5, 1.0)))
def test_arrays_custom_elements_and_int_shape(x):
    assert x.shape == (4,)
    assert np.all((x >= 0.5) & (x <= 1.0))


@FEW
@given(arrays((3,), st.sampled_from([np.float32, np.float64])))
def test_arrays_dtype_strategy(x):
    assert x.dtype in (np.float32, np.float64) and x.shape == (3,)


@FEW
@given(default_elements(np.complex128))
def test_default_complex_elements(z):
    assert abs(z) <= 10 * (1 + 1e-12)  # magnitude bounded by 10, up to rounding


def test_default_elements_rejects_unknown_dtype():
    with pytest.raises(TypeError, match="elements="):
        default_elements(np.dtype("U3"))


BASE_SHAPES = [(), (1,), (3,), (3, 1, 4), (2, 0, 5), (1, 1)]


@pytest.mark.parametrize("shape", BASE_SHAPES)
def test_broadcastable_shapes_broadcast(shape):
    @settings(max_examples=40, deadline=None)
    @given(broadcastable_shapes(shape))
    def check(other):
        np.broadcast_shapes(shape, other)  # raises if incompatible
        assert len(other) <= max(len(shape), 0) + 2
        for d_other, d_base in zip(reversed(other), reversed(shape)):
            assert d_other in (1, d_base) or d_base == 1

    check()


@FEW
@given(broadcastable_shapes((2, 3), min_dims=3, max_dims=4, min_side=2, max_side=3))
def test_broadcastable_shapes_bounds(other):
    assert 3 <= len(other) <= 4
    np.broadcast_shapes((2, 3), other)
    assert all(2 <= d <= 3 for d in other[:-2])


@FEW
@given(st.data())
def test_broadcastable_shapes_from_a_shape_strategy(data):
    base = data.draw(shapes(max_dims=3, min_side=1, max_side=4))
    other = data.draw(broadcastable_shapes(st.just(base)))
    np.broadcast_shapes(base, other)


def _depth(t) -> int:
    if isinstance(t, dict):
        return 1 + max((_depth(v) for v in t.values()), default=0)
    if isinstance(t, (list, tuple)):
        return 1 + max((_depth(v) for v in t), default=0)
    return 0


@FEW
@given(pytrees(st.integers(0, 9)))
def test_pytrees_leaves_and_depth(t):
    assert _depth(t) <= 3
    leaves = fn.tree.leaves(t)
    assert all(isinstance(x, int) and 0 <= x <= 9 for x in leaves)
    # a pytree round-trips through flatten/unflatten
    flat, treedef = fn.tree.flatten(t)
    assert fn.tree.unflatten(treedef, flat) == t


@FEW
@given(pytrees(arrays((2,)), max_depth=2, max_children=2))
def test_pytrees_of_arrays(t):
    assert _depth(t) <= 2
    for leaf in fn.tree.leaves(t):
        assert isinstance(leaf, np.ndarray) and leaf.shape == (2,)


@FEW
@given(pytrees(st.integers(), max_depth=0))
def test_pytrees_depth_zero_is_a_leaf(t):
    assert isinstance(t, int)


def test_pytrees_generates_every_container_kind():
    seen = set()

    @settings(max_examples=200, deadline=None)
    @given(pytrees(st.integers(), max_depth=1))
    def collect(t):
        seen.add(type(t))

    collect()
    assert {int, list, tuple, dict} <= seen


def test_pytrees_argument_errors():
    with pytest.raises(TypeError, match="strategy"):
        pytrees([1, 2])
    with pytest.raises(ValueError, match="max_depth"):
        pytrees(st.integers(), max_depth=-1)


@settings(max_examples=15, deadline=None)
@given(pytrees(arrays(shapes(max_dims=2, min_side=1, max_side=3)), max_depth=2))
def test_strategies_feed_check_grads(t):
    import funcnet.numpy as fnp

    if not fn.tree.leaves(t):
        return
    check_grads(lambda tree: fn.tree.map(lambda x: fnp.sin(x) * x, tree), (t,), order=1)


def test_check_grads_imports_without_hypothesis():
    # Hide hypothesis from a fresh interpreter: funcnet.testing.check_grads must still
    # import and run, and using a strategy must say how to install Hypothesis.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hypothesis' or name.startswith('hypothesis.'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, funcnet.numpy as fnp\n"
        "from funcnet.testing import check_grads, arrays\n"
        "check_grads(fnp.sin, (np.array([0.5]),))\n"
        "assert 'hypothesis' not in sys.modules\n"
        "try:\n"
        "    arrays((2,))\n"
        "except ImportError as e:\n"
        "    assert 'pip install' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(fn.__file__).parent.parent))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
