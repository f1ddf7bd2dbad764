"""Shape manipulation in funcnet.numpy against NumPy: values, dtypes, gradients, tracing.

Each row of ``CASES`` is a Hypothesis strategy that draws the arrays and the
static arguments of one call; the same call is made on ``funcnet.numpy`` and
on ``numpy`` (their signatures agree), then differentiated and traced.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    distinct,
    grads_ok,
    shapes,
    traced,
)

import funcnet as fn
import funcnet.numpy as fnp


@dataclass
class Call:
    """The arrays of one call and how to make it on a module (``fnp`` or ``np``)."""

    arrays: list
    make: object  # (module, arrays) -> result
    text: str

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis prints the call, not the arrays
        p.text(self.text)

    def on(self, module, arrs=None):
        return self.make(module, self.arrays if arrs is None else list(arrs))


def _arr(draw, dtype, shape, unique=False):
    if unique and np.dtype(dtype) == F64:
        return draw(distinct(shape))
    return draw(arrays(dtype, shape))


def _signed(draw, axis, ndim):
    """``axis`` or its negative spelling."""
    return axis - ndim if draw(st.booleans()) else axis


def _axes_subset(draw, ndim, min_size=0):
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, min_size=min_size,
                         max_size=ndim)) if ndim else []
    return tuple(_signed(draw, a, ndim) for a in axes)


# ---------------------------------------------------------------------------
# one strategy per op: draw(dtype, smooth) -> Call   (smooth: distinct values, min side 1)


@st.composite
def reshape(draw, dtype, smooth=False):
    shape = draw(shapes(max_dims=4, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    size = x.size
    options = [(size,), shape[::-1], (1,) + shape, shape + (1,), size]
    for i in range(len(shape)):
        rest = int(np.prod([e for j, e in enumerate(shape) if j != i]))
        if rest:
            options.append(shape[:i] + (-1,) + shape[i + 1:])
    if size:
        options.append(-1)
    new = draw(st.sampled_from(options))
    return Call([x], lambda m, a: m.reshape(a[0], new), f"reshape({shape}, {new})")


@st.composite
def ravel(draw, dtype, smooth=False):
    x = _arr(draw, dtype, draw(shapes(min_side=int(smooth))), smooth)
    return Call([x], lambda m, a: m.ravel(a[0]), f"ravel({x.shape})")


@st.composite
def transpose(draw, dtype, smooth=False):
    shape = draw(shapes(max_dims=4, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    axes = draw(st.one_of(st.none(), st.permutations(range(len(shape))).map(tuple)))
    if axes is not None:
        axes = tuple(_signed(draw, a, len(shape)) for a in axes)
    return Call([x], lambda m, a: m.transpose(a[0], axes), f"transpose({shape}, {axes})")


@st.composite
def swapaxes(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, max_dims=4, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    n = len(shape)
    i, j = draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))
    return Call([x], lambda m, a: m.swapaxes(a[0], i, j), f"swapaxes({shape}, {i}, {j})")


@st.composite
def moveaxis(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, max_dims=4, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    n = len(shape)
    k = draw(st.integers(1, n))
    src = draw(st.permutations(range(n)))[:k]
    dst = draw(st.permutations(range(n)))[:k]
    src = tuple(_signed(draw, a, n) for a in src)
    dst = tuple(_signed(draw, a, n) for a in dst)
    if k == 1 and draw(st.booleans()):
        src, dst = src[0], dst[0]
    return Call([x], lambda m, a: m.moveaxis(a[0], src, dst), f"moveaxis({shape}, {src}, {dst})")


@st.composite
def expand_dims(draw, dtype, smooth=False):
    shape = draw(shapes(min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    out_ndim = len(shape) + draw(st.integers(1, 2))
    axes = draw(st.lists(st.integers(0, out_ndim - 1), unique=True,
                         min_size=out_ndim - len(shape), max_size=out_ndim - len(shape)))
    axes = tuple(_signed(draw, a, out_ndim) for a in axes)
    axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else axes
    return Call([x], lambda m, a: m.expand_dims(a[0], axis), f"expand_dims({shape}, {axis})")


@st.composite
def squeeze(draw, dtype, smooth=False):
    shape = draw(st.lists(st.sampled_from([1, 1, 2, 3] if smooth else [0, 1, 1, 2, 3]),
                          max_size=4).map(tuple))
    x = _arr(draw, dtype, shape, smooth)
    ones = [i for i, d in enumerate(shape) if d == 1]
    axis = draw(st.one_of(st.none(), st.lists(st.sampled_from(ones), unique=True).map(tuple)
                          if ones else st.none()))
    if axis is not None:
        axis = tuple(_signed(draw, a, len(shape)) for a in axis)
        if len(axis) == 1 and draw(st.booleans()):
            axis = axis[0]
    return Call([x], lambda m, a: m.squeeze(a[0], axis), f"squeeze({shape}, {axis})")


@st.composite
def broadcast_to(draw, dtype, smooth=False):
    shape = draw(shapes(max_dims=3, min_side=int(smooth), max_side=3))
    x = _arr(draw, dtype, shape, smooth)
    lead = tuple(draw(st.lists(st.integers(int(smooth), 3), max_size=2)))
    target = lead + tuple(draw(st.integers(0 if not smooth else 1, 3)) if d == 1 else d
                          for d in shape)
    return Call([x], lambda m, a: m.broadcast_to(a[0], target),
                f"broadcast_to({shape}, {target})")


@st.composite
def broadcast_arrays(draw, dtype, smooth=False):
    k = draw(st.integers(1, 3))
    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=k, max_dims=3,
                                                min_side=int(smooth), max_side=3))
    xs = [_arr(draw, dtype, s, smooth) for s in bs.input_shapes]
    return Call(xs, lambda m, a: m.broadcast_arrays(*a), f"broadcast_arrays{bs.input_shapes}")


@st.composite
def concatenate(draw, dtype, smooth=False):
    k = draw(st.integers(1, 3))
    if draw(st.booleans()):  # axis=None flattens arrays of any shape
        xs = [_arr(draw, dtype, draw(shapes(min_side=int(smooth))), smooth) for _ in range(k)]
        return Call(xs, lambda m, a: m.concatenate(a, axis=None),
                    f"concatenate({[x.shape for x in xs]}, None)")
    shape = draw(shapes(min_dims=1, min_side=int(smooth)))
    n = len(shape)
    axis = draw(st.integers(-n, n - 1))
    xs = []
    for _ in range(k):
        s = list(shape)
        s[axis] = draw(st.integers(int(smooth), 3))
        xs.append(_arr(draw, draw(st.sampled_from([dtype, dtype, F32])) if not smooth else dtype,
                       tuple(s), smooth))
    return Call(xs, lambda m, a: m.concatenate(a, axis=axis),
                f"concatenate({[x.shape for x in xs]}, {axis})")


@st.composite
def stack(draw, dtype, smooth=False):
    shape = draw(shapes(min_side=int(smooth)))
    xs = [_arr(draw, dtype, shape, smooth) for _ in range(draw(st.integers(1, 3)))]
    n = len(shape) + 1
    axis = draw(st.integers(-n, n - 1))
    return Call(xs, lambda m, a: m.stack(a, axis=axis), f"stack({len(xs)} x {shape}, {axis})")


@st.composite
def hstack(draw, dtype, smooth=False):
    k = draw(st.integers(1, 3))
    ndim = draw(st.integers(0, 2))
    lo = int(smooth)
    if ndim == 0:
        xs = [_arr(draw, dtype, (), smooth) for _ in range(k)]
    elif ndim == 1:
        xs = [_arr(draw, dtype, (draw(st.integers(lo, 3)),), smooth) for _ in range(k)]
    else:
        r = draw(st.integers(lo, 3))
        xs = [_arr(draw, dtype, (r, draw(st.integers(lo, 3))), smooth) for _ in range(k)]
    return Call(xs, lambda m, a: m.hstack(a), f"hstack({[x.shape for x in xs]})")


@st.composite
def vstack(draw, dtype, smooth=False):
    k = draw(st.integers(1, 3))
    ndim = draw(st.integers(0, 2))
    lo = int(smooth)
    if ndim == 0:
        xs = [_arr(draw, dtype, (), smooth) for _ in range(k)]
    elif ndim == 1:
        n = draw(st.integers(lo, 3))
        xs = [_arr(draw, dtype, (n,), smooth) for _ in range(k)]
    else:
        c = draw(st.integers(lo, 3))
        xs = [_arr(draw, dtype, (draw(st.integers(lo, 3)), c), smooth) for _ in range(k)]
    return Call(xs, lambda m, a: m.vstack(a), f"vstack({[x.shape for x in xs]})")


@st.composite
def split(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    divisors = [k for k in range(1, 5) if n % k == 0]
    ind = draw(st.one_of(st.sampled_from(divisors),
                         st.lists(st.integers(0, n), max_size=3).map(sorted)))
    return Call([x], lambda m, a: m.split(a[0], ind, axis=axis), f"split({shape}, {ind}, {axis})")


@st.composite
def array_split(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    ind = draw(st.one_of(st.integers(1, 5), st.lists(st.integers(0, shape[axis] + 2),
                                                     max_size=3)))
    return Call([x], lambda m, a: m.array_split(a[0], ind, axis=axis),
                f"array_split({shape}, {ind}, {axis})")


@st.composite
def tile(draw, dtype, smooth=False):
    shape = draw(shapes(max_dims=3, min_side=int(smooth), max_side=3))
    x = _arr(draw, dtype, shape, smooth)
    lo = int(smooth)
    reps = draw(st.one_of(st.integers(lo, 3),
                          st.lists(st.integers(lo, 2), max_size=4).map(tuple)))
    return Call([x], lambda m, a: m.tile(a[0], reps), f"tile({shape}, {reps})")


@st.composite
def repeat(draw, dtype, smooth=False):
    shape = draw(shapes(max_dims=3, min_side=int(smooth), max_side=3))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))
                if shape else st.none())
    n = x.size if axis is None else shape[axis]
    reps = draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n,
                                                       max_size=n)))
    return Call([x], lambda m, a: m.repeat(a[0], reps, axis=axis),
                f"repeat({shape}, {reps}, {axis})")


@st.composite
def pad(draw, dtype, smooth=False):
    mode = draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    shape = draw(shapes(max_dims=3, min_side=1 if mode != "constant" or smooth else 0,
                        max_side=3))
    x = _arr(draw, dtype, shape, smooth)
    nd = len(shape)
    per_axis = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=max(nd, 1),
                        max_size=max(nd, 1))
    width = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                           per_axis))
    kw = {}
    if mode == "constant" and draw(st.booleans()):
        kw["constant_values"] = draw(st.one_of(
            st.integers(0, 5), st.tuples(st.integers(0, 5), st.integers(0, 5)),
            st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=max(nd, 1),
                     max_size=max(nd, 1))))
    return Call([x], lambda m, a: m.pad(a[0], width, mode=mode, **kw),
                f"pad({shape}, {width}, {mode}, {kw})")


@st.composite
def flip(draw, dtype, smooth=False):
    shape = draw(shapes(min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1) if shape
                          else st.none(), st.just(_axes_subset(draw, len(shape)))))
    return Call([x], lambda m, a: m.flip(a[0], axis), f"flip({shape}, {axis})")


@st.composite
def roll(draw, dtype, smooth=False):
    shape = draw(shapes(min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    if not shape or draw(st.booleans()):
        shift, axis = draw(st.integers(-5, 5)), None
    else:
        axes = _axes_subset(draw, len(shape), min_size=1)
        shift = tuple(draw(st.integers(-5, 5)) for _ in axes)
        axis = axes
        if len(axes) == 1 and draw(st.booleans()):
            shift, axis = shift[0], axes[0]
    return Call([x], lambda m, a: m.roll(a[0], shift, axis=axis), f"roll({shape}, {shift}, {axis})")


@st.composite
def take(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, min_side=1))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = x.size if axis is None else shape[axis]
    idx = draw(st.one_of(st.integers(-n, n - 1),
                         hnp.arrays(np.int64, shapes(max_dims=2, max_side=3),
                                    elements=st.integers(-n, n - 1))))
    return Call([x], lambda m, a: m.take(a[0], idx, axis=axis), f"take({shape}, {idx}, {axis})")


@st.composite
def take_along_axis(draw, dtype, smooth=False):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    ishape = tuple(draw(st.integers(0, 3)) if i == axis % len(shape) else
                   draw(st.sampled_from([1, d])) for i, d in enumerate(shape))
    idx = draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, shape[axis] - 1)))
    return Call([x], lambda m, a: m.take_along_axis(a[0], idx, axis=axis),
                f"take_along_axis({shape}, {idx.shape}, {axis})")


@st.composite
def sort(draw, dtype, smooth=False):
    shape = draw(shapes(min_side=int(smooth)))
    x = _arr(draw, dtype, shape, smooth)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)
                          if shape else st.none()))
    return Call([x], lambda m, a: m.sort(a[0], axis=axis), f"sort({shape}, {axis})")


@st.composite
def argsort(draw, dtype, smooth=False):
    shape = draw(shapes())
    x = _arr(draw, dtype, shape)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)
                          if shape else st.none()))

    def make(m, a):  # funcnet's argsort is stable: compare with NumPy's stable sort
        return m.argsort(a[0], axis=axis, kind="stable") if m is np else m.argsort(a[0], axis)

    return Call([x], make, f"argsort({shape}, {axis})")


def _simple(name):
    @st.composite
    def case(draw, dtype, smooth=False):
        x = _arr(draw, dtype, draw(shapes(min_side=int(smooth))), smooth)
        return Call([x], lambda m, a: getattr(m, name)(a[0]), f"{name}({x.shape})")

    case.__name__ = name
    return case


atleast_1d, atleast_2d = _simple("atleast_1d"), _simple("atleast_2d")

CASES = [reshape, ravel, transpose, swapaxes, moveaxis, expand_dims, squeeze, broadcast_to,
         broadcast_arrays, concatenate, stack, hstack, vstack, split, array_split, tile, repeat,
         pad, flip, roll, take, take_along_axis, sort, argsort, atleast_1d, atleast_2d]
DIFFERENTIABLE = [c for c in CASES if c is not argsort]
IDS = [c.__name__ for c in CASES]


def _check_same(got, expected):
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert_like_numpy(g, e)
    else:
        assert_like_numpy(got, expected)


# ---------------------------------------------------------------------------
# 1. values and dtypes


@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
@VALUES
def test_matches_numpy(case, data):
    dtype = data.draw(st.sampled_from(ALL), label="dtype")
    call = data.draw(case(dtype), label="call")
    _check_same(call.on(fnp), call.on(np))


# ---------------------------------------------------------------------------
# 2. gradients


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=[c.__name__ for c in DIFFERENTIABLE])
@given(data=st.data())
@GRADS
def test_gradients(case, data):
    call = data.draw(case(F64, smooth=True), label="call")
    grads_ok(lambda *arrs: call.on(fnp, arrs), call.arrays)


# ---------------------------------------------------------------------------
# 3. traced == eager


@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
@FEW
def test_traced_matches_eager(case, data):
    dtype = data.draw(st.sampled_from([F32, np.dtype(np.int32), np.dtype(np.bool_)]))
    call = data.draw(case(dtype), label="call")
    assert_traced_matches_eager(lambda *arrs: call.on(fnp, arrs), *call.arrays)


def test_shape_ndim_size():
    x = np.zeros((2, 0, 3))
    assert fnp.shape(x) == (2, 0, 3) and fnp.ndim(x) == 3 and fnp.size(x) == 0
    assert fnp.size(x, 2) == 3 and fnp.shape(5.0) == () and fnp.ndim([[1, 2]]) == 2
    assert fnp.size([[1, 2]]) == 2

    def f(a):
        assert fnp.shape(a) == (2, 3) and fnp.ndim(a) == 2 and fnp.size(a) == 6
        return a

    traced(f, np.ones((2, 3)))


def test_broadcast_shapes():
    assert fnp.broadcast_shapes((2, 1), (3,), ()) == np.broadcast_shapes((2, 1), (3,), ())
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        fnp.broadcast_shapes((2,), (3,))


def test_pad_gradients_reach_traced_fill_values():
    x = np.arange(4.0).reshape(2, 2)
    grads_ok(lambda c: fnp.pad(x, 1, constant_values=c), (np.array(2.5),))
    grads_ok(lambda a, c: fnp.pad(a, ((1, 0), (2, 1)), constant_values=c),
             (x, np.array([[1.0, 2.0], [3.0, 4.0]])))
    g = fn.grad(lambda c: fnp.sum(fnp.pad(x, 1, constant_values=c)))(2.0)
    np.testing.assert_allclose(g, 12.0)  # 16 elements, 4 of them from x


# ---------------------------------------------------------------------------
# tracer methods


_TRACER_METHODS = [
    ("reshape(3, 4)", lambda a: a.reshape(3, 4)),
    ("reshape((4, -1))", lambda a: a.reshape((4, -1))),
    ("T", lambda a: a.T), ("mT", lambda a: np.swapaxes(a, -1, -2) if isinstance(a, np.ndarray)
                           else a.mT),
    ("transpose()", lambda a: a.transpose()), ("transpose(1, 0)", lambda a: a.transpose(1, 0)),
    ("transpose((1, 0))", lambda a: a.transpose((1, 0))), ("ravel", lambda a: a.ravel()),
    ("flatten", lambda a: a.flatten()), ("swapaxes", lambda a: a.swapaxes(0, 1)),
    ("squeeze", lambda a: a.reshape(1, 12, 1).squeeze()), ("astype", lambda a: a.astype(np.int8)),
    ("sort", lambda a: a.sort(axis=0) if not isinstance(a, np.ndarray) else np.sort(a, axis=0)),
    ("argsort", lambda a: a.argsort() if not isinstance(a, np.ndarray)
     else np.argsort(a, kind="stable")),
    ("clip", lambda a: a.clip(0.0, 2.0)), ("round", lambda a: a.round()),
    ("diagonal", lambda a: a.diagonal()), ("trace", lambda a: a.trace()),
    ("len", lambda a: np.full(1, len(a))),
    ("iter", lambda a: [r for r in a]), ("dot", lambda a: a.dot(np.ones((4, 2), F32))),
]


@pytest.mark.parametrize("name, f", _TRACER_METHODS, ids=[n for n, _ in _TRACER_METHODS])
def test_tracer_methods_match_numpy(name, f):
    x = (np.arange(12, dtype=F32) * 0.7 % 3).reshape(3, 4)
    out, _ = traced(f, x)
    _check_same_loose(out, f(x))


def _check_same_loose(got, expected):
    if isinstance(expected, list):
        for g, e in zip(got, expected, strict=True):
            assert_like_numpy(g, e, check_type=False)
    else:
        assert_like_numpy(got, expected, check_type=False)


def test_tracer_attributes():
    def f(a):
        assert a.shape == (3, 4) and a.ndim == 2 and a.size == 12 and a.dtype == F32
        assert a.T.shape == (4, 3) and a.mT.shape == (4, 3)
        return a

    traced(f, np.ones((3, 4), F32))
    fn.grad(lambda a: f(a).sum())(np.ones((3, 4), F32))


# ---------------------------------------------------------------------------
# 5. errors


def test_reshape_size_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        fnp.reshape(np.ones((2, 3)), (4,))
    assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value)
    with pytest.raises(ValueError, match=r"size 6.*\(4, -1\)"):
        fnp.reshape(np.ones((2, 3)), (4, -1))
    with pytest.raises(ValueError, match="one unknown dimension"):
        fnp.reshape(np.ones(6), (-1, -1))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(5,\)"):
        fn.make_graph(lambda a: a.reshape(5))(np.ones((2, 3)))


def test_other_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        fnp.broadcast_to(np.ones(2), (3,))
    with pytest.raises(ValueError, match="squeeze axis 0 of size 2"):
        fnp.squeeze(np.ones((2, 1)), axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)|differ"):
        fnp.concatenate([np.ones((2, 3)), np.ones((2, 4))], axis=0)
    with pytest.raises(ValueError, match="same shape"):
        fnp.stack([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="equal division"):
        fnp.split(np.ones(5), 2)
    with pytest.raises(ValueError, match="axis 3 is out of bounds.*dimension 2"):
        fnp.transpose(np.ones((2, 3)), (0, 3))
    with pytest.raises(ValueError, match="axis -3 is out of bounds.*dimension 2"):
        fnp.moveaxis(np.ones((2, 3)), -3, 0)
    with pytest.raises(ValueError, match="pad mode"):
        fnp.pad(np.ones(3), 1, mode="mean-ish")
