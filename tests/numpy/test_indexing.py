"""NumPy indexing and functional updates in funcnet.numpy.

``x[idx]`` on tracers and ``fnp.at(x)[idx].get()`` on any array must equal
NumPy's ``x[idx]``; ``fnp.at(x)[idx].set/add/mul/min/max(v)`` must equal NumPy's
in-place update of a copy (``np.add.at`` & co. for repeated indices); and
gradients flow through gathers and scatters.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optable import (
    ALL,
    F32,
    F64,
    FEW,
    GRADS,
    VALUES,
    arrays,
    assert_like_numpy,
    assert_traced_matches_eager,
    grads_ok,
    shapes,
    traced,
)

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.errors import ConcretizationError

SHAPE = (4, 5, 6)
X = (np.arange(120, dtype=F64) * 0.125 - 7.0).reshape(SHAPE)  # distinct values
M4 = np.array([True, False, True, True])
M45 = (np.arange(20).reshape(4, 5) % 3) == 0

INDEXES = {
    "int": 2, "neg-int": -1, "ints": (1, 2), "neg-ints": (-1, -2, -3), "full": (3, 4, 5),
    "slice": slice(1, 3), "reverse": slice(None, None, -1), "neg-step": slice(-1, 0, -2),
    "past-end": slice(10, 20), "slice-int": (slice(None), 2), "ellipsis-int": (Ellipsis, 1),
    "int-ellipsis": (1, Ellipsis), "newaxis": (None, 1), "ellipsis-newaxis": (Ellipsis, None),
    "mixed-basic": (slice(None), None, slice(1, 4, 2)), "empty-tuple": (), "ellipsis": Ellipsis,
    "all-kinds": (0, Ellipsis, None, -1),
    "list": [0, 2, 3], "neg-array": np.array([-1, 0]), "two-arrays": (np.array([0, 1]),
                                                                      np.array([2, 3])),
    "slice-list": (slice(None), [1, 1, 3]), "2d-array": (np.array([[0, 1], [2, 3]]),),
    "int-slice-array": (1, slice(None), np.array([0, 5, 2])),
    "separated-arrays": (np.array([0, 1]), slice(None), np.array([1, 2])),
    "broadcast-arrays": (np.array([[0], [3]]), np.array([1, 2, 4])),
    "ellipsis-dups": (Ellipsis, [0, 0, 1]), "newaxis-array": (None, [1, 2], None),
    "empty-array": np.array([], np.int64), "empty-list": (slice(None), []),
    "mask-first": M4, "mask-2d": M45, "mask-full": X > 0, "slice-mask": (slice(None),
                                                                          M45[0]),
    "mask-none-true": np.zeros(4, bool), "mask-and-int": (M4, 2),
    "mask-list": [True, False, False, True],
}
NAMES = list(INDEXES)
DUPLICATE_FREE = [n for n in NAMES if n not in ("ellipsis-dups", "slice-list")]


def _ufunc_at(ufunc, x, idx, v):
    """NumPy's reference for the ``.add/.mul/.min/.max`` updates (repeats accumulate)."""
    out = x.copy()
    try:
        ufunc.at(out, idx, v)
    except (TypeError, IndexError, ValueError):  # basic-only indexes ufunc.at refuses
        out[idx] = ufunc(out[idx], v)
    return out


def _numpy_update(kind, x, idx, v):
    if kind == "set":
        out = x.copy()
        out[idx] = v
        return out
    return _ufunc_at({"add": np.add, "mul": np.multiply, "min": np.minimum,
                      "max": np.maximum}[kind], x, idx, v)


# ---------------------------------------------------------------------------
# 4. gathers: values, tracing, gradients


@pytest.mark.parametrize("name", NAMES)
def test_get_matches_numpy(name):
    idx = INDEXES[name]
    for x in (X, X.astype(F32), (X * 8).astype(np.int32), X > 0):
        assert_like_numpy(fnp.at(x)[idx].get(), x[idx])
        out, avals = traced(lambda a, idx=idx: a[idx], x)
        assert_like_numpy(out, x[idx], check_type=False)
        assert avals[0].shape == x[idx].shape and avals[0].dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
def test_gather_gradients(name):
    idx = INDEXES[name]
    grads_ok(lambda a: a[idx] * a[idx], (X,))
    g = fn.grad(lambda a: fnp.sum(a[idx]))(X)
    np_idx = np.asarray(idx) if isinstance(idx, list) else idx
    assert_like_numpy(g, _ufunc_at(np.add, np.zeros_like(X), np_idx, 1.0))


@given(data=st.data())
@VALUES
def test_basic_indexing_matches_numpy(data):
    shape = data.draw(shapes(max_dims=4), label="shape")
    dtype = data.draw(st.sampled_from(ALL))
    x = data.draw(arrays(dtype, shape))
    idx = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True),
                    label="idx")
    assert_like_numpy(fnp.at(x)[idx].get(), x[idx])
    assert_traced_matches_eager(lambda a: a[idx], x)


@given(data=st.data())
@VALUES
def test_integer_array_indexing_matches_numpy(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1), label="shape")
    x = data.draw(arrays(F32, shape))
    idx = data.draw(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2)),
                    label="idx")
    assert_like_numpy(fnp.at(x)[idx].get(), x[idx])
    out, _ = traced(lambda a, *ix: a[ix], x, *idx)  # traced (not constant) index arrays
    assert_like_numpy(out, x[idx], check_type=False)


@given(data=st.data())
@GRADS
def test_random_gather_gradients(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), label="shape")
    x = data.draw(arrays(F64, shape))
    idx = data.draw(st.one_of(
        hnp.basic_indices(shape, allow_newaxis=True),
        hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2, max_side=3))),
        label="idx")
    grads_ok(lambda a: a[idx], (x,))


def test_boolean_mask_under_grad():
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    g = fn.grad(lambda a: fnp.sum(a[a > 0] ** 2))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 2 * x, 0.0))
    g = fn.grad(lambda a: fnp.sum(fnp.at(a)[x < 0].set(0.0)))(x)
    np.testing.assert_allclose(g, (x >= 0).astype(float))


def test_traced_boolean_mask_needs_a_concrete_mask():
    with pytest.raises(ConcretizationError, match="where"):
        fn.make_graph(lambda a: a[a > 0])(np.ones(3))
    assert_like_numpy(fnp.nonzero(np.array([0, 3, 0, 1]))[0], np.nonzero([0, 3, 0, 1])[0])


# ---------------------------------------------------------------------------
# 4. functional updates


@pytest.mark.parametrize("kind", ["set", "add", "mul", "min", "max"])
@pytest.mark.parametrize("name", NAMES)
def test_updates_match_numpy(name, kind):
    idx = INDEXES[name]
    target = X[idx]
    v = (np.arange(target.size, dtype=F64) % 7 + 0.0625).reshape(target.shape)
    expected = _numpy_update(kind, X, idx, v)
    assert_like_numpy(getattr(fnp.at(X)[idx], kind)(v), expected)
    # a broadcast scalar update, and a float32 array with a weakly typed value
    assert_like_numpy(getattr(fnp.at(X)[idx], kind)(2.5), _numpy_update(kind, X, idx, 2.5))
    x32 = X.astype(F32)
    assert_like_numpy(getattr(fnp.at(x32)[idx], kind)(1.5), _numpy_update(kind, x32, idx,
                                                                            np.float32(1.5)))
    assert_traced_matches_eager(lambda a, u: getattr(fnp.at(a)[idx], kind)(u), X, v)
    out, _ = traced(lambda a, u: getattr(a.at[idx], kind)(u), X, v)  # the tracer's .at
    assert_like_numpy(out, expected, check_type=False)


def test_duplicate_indices_accumulate_in_add():
    x = np.zeros(4, F32)
    idx = np.array([0, 1, 1, 3, 1])
    assert_like_numpy(fnp.at(x)[idx].add(1.0), np.array([1, 3, 0, 1], F32))
    assert_like_numpy(fnp.at(x)[idx].add(np.arange(5.0, dtype=F32)),
                      np.array([0, 1 + 2 + 4, 0, 3], F32))
    assert_like_numpy(fnp.at(x + 2)[idx].mul(2.0), np.array([4, 16, 2, 4], F32))
    assert_like_numpy(fnp.at(x)[[2, 2]].min(np.array([-1.0, -3.0], F32)),
                      np.array([0, 0, -3, 0], F32))
    assert_like_numpy(fnp.at(x)[[2, 2]].max(np.array([1.0, 3.0], F32)),
                      np.array([0, 0, 3, 0], F32))
    g = fn.grad(lambda u: fnp.sum(fnp.at(np.zeros(4))[idx].add(u) ** 2))(np.ones(5))
    np.testing.assert_allclose(g, [2.0, 6.0, 6.0, 2.0, 6.0])


def test_updates_do_not_modify_the_input():
    x = np.arange(4.0)
    before = x.copy()
    for kind in ("set", "add", "mul", "min", "max"):
        getattr(fnp.at(x)[1:3], kind)(10.0)
    np.testing.assert_array_equal(x, before)


def test_update_values_are_cast_to_the_array_dtype():
    x = np.arange(4, dtype=np.int32)
    assert_like_numpy(fnp.at(x)[0].set(2.7), np.array([2, 1, 2, 3], np.int32))
    assert fnp.at(X.astype(F32))[0, 0, 0].add(np.float64(1.0)).dtype == F32
    assert fnp.at(X.astype(F32))[:, 0].set(np.ones(6, F64)).dtype == F32


_UPDATE_GRAD_INDEXES = ["int", "slice", "reverse", "list", "two-arrays", "ellipsis-dups",
                        "slice-list", "mask-2d", "separated-arrays", "newaxis"]


@pytest.mark.parametrize("kind", ["set", "add", "mul", "min", "max"])
@pytest.mark.parametrize("name", _UPDATE_GRAD_INDEXES)
def test_update_gradients(name, kind):
    """Gradients with respect to both the array and the update values (order 2)."""
    idx = INDEXES[name]
    x = X[:, :, :3]  # smaller: every element is perturbed by the checks
    target = x[idx]
    # distinct, non-zero and never equal to an x value: min/max have no ties, mul no 0
    v = (np.arange(target.size, dtype=F64) * 0.375 - 2.0 + 0.0625).reshape(target.shape)
    if kind in ("set", "min", "max") and name in ("ellipsis-dups", "slice-list"):
        pytest.skip("repeated writes: which one wins is not a smooth function of the values")
    grads_ok(lambda a, u: getattr(fnp.at(a)[idx], kind)(u), (x, v))


def _loss(w, at):
    w = at(w)[0].set(w[1] * 3.0)
    w = at(w)[1:].add(1.0)
    w = at(w)[np.array([2, 2])].mul(2.0)
    w = at(w)[-1].max(0.0)
    return fnp.sum(w ** 2)


def test_tracer_at_property_inside_grad():
    def loss(w):  # JAX style: only tracers carry .at
        return _loss(w, lambda t: t.at)

    w = np.array([1.0, 2.0, -3.0, 4.0])
    grads_ok(lambda a: _loss(a, fnp.at), (w,))  # finite differences need fnp.at
    g = fn.grad(loss)(w)
    assert_like_numpy(g, fn.grad(lambda a: _loss(a, fnp.at))(w))
    w0 = np.array([6.0, 3.0, -8.0, 5.0])  # the updated array
    np.testing.assert_allclose(g, [0.0, 2 * w0[0] * 3 + 2 * w0[1], 2 * w0[2] * 4, 2 * w0[3]])
    out, _ = traced(loss, w)  # under make_graph too (eager NumPy arrays have no .at)
    np.testing.assert_allclose(out, np.sum(w0 ** 2))


def test_at_get_under_trace_and_at_on_lists():
    assert_traced_matches_eager(lambda a: fnp.at(a)[1:, ::2].get(), X)
    assert_like_numpy(fnp.at([1.0, 2.0, 3.0])[1].set(5.0), np.array([1, 5, 3], F32))


@given(data=st.data())
@FEW
def test_random_scatter_add_gradients(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    x = data.draw(arrays(F64, shape))
    idx = data.draw(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=1,
                                                                         max_side=4)))
    u = data.draw(arrays(F64, x[idx].shape))
    grads_ok(lambda a, b: fnp.at(a)[idx].add(b) ** 2, (x, u))
    positions = {tuple(int(i.flat[k]) % n for i, n in zip(idx, shape, strict=False))
                 for k in range(idx[0].size)}
    if len(positions) == idx[0].size:  # .set is smooth only without repeated positions
        grads_ok(lambda a, b: fnp.at(a)[idx].set(b * 2.0), (x, u))


# ---------------------------------------------------------------------------
# 5. errors


def test_out_of_bounds_integer_index_is_named():
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 3"):
        fnp.at(np.ones(3))[5].get()
    with pytest.raises(IndexError, match="index -4 is out of bounds for axis 1 with size 3"):
        fn.make_graph(lambda a: a[0, -4])(np.ones((2, 3)))
    with pytest.raises(IndexError, match="out of bounds"):
        fnp.at(np.ones(3))[np.array([0, 7])].get()
    with pytest.raises(IndexError, match="out of bounds"):
        fn.grad(lambda a: fnp.sum(a[np.array([0, 7])]))(np.ones(3))


def test_bad_indexes_are_named():
    with pytest.raises(IndexError, match="too many indices.*3 indexed.*2 dimension"):
        fnp.at(np.ones((2, 3)))[0, 0, 0].get()
    with pytest.raises(IndexError, match="integer"):
        fnp.at(np.ones(3))[np.array([0.5])].get()
    with pytest.raises(IndexError, match="float"):
        fnp.at(np.ones(3))[1.5].get()
    with pytest.raises(IndexError, match="single ellipsis"):
        fnp.at(np.ones((2, 3)))[..., 0, ...].get()
    with pytest.raises(ValueError, match=r"updates of shape \(3,\).*\(2,\)"):
        fnp.at(np.ones(4))[:2].set(np.ones(3))
    with pytest.raises(ConcretizationError, match="dynamic_slice"):
        fn.make_graph(lambda a, i: a[i:])(np.ones(3), np.int64(1))
