"""Shared tables, strategies and assertions for the ``funcnet.numpy`` conformance tests.

One row per op (STYLE.md §9): the funcnet function, its NumPy reference,
its arity, the domain its arguments are drawn from for value tests and for
gradient tests (``None`` when the op is not differentiable), and the input
dtypes NumPy accepts for it.  The test modules parametrise over these rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.core.graph import eval_graph
from funcnet.testing import check_grads

# ---------------------------------------------------------------------------
# Hypothesis budgets (the whole suite must stay fast on two cores)

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
VALUES = settings(max_examples=25, deadline=None, suppress_health_check=_QUIET)
GRADS = settings(max_examples=10, deadline=None, suppress_health_check=_QUIET)
FEW = settings(max_examples=8, deadline=None, suppress_health_check=_QUIET)

# ---------------------------------------------------------------------------
# Dtypes

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F32, F64)
INTS = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32), np.dtype(np.int64))
BOOL = (np.dtype(np.bool_),)
NUMERIC = FLOATS + INTS
ALL = FLOATS + INTS + BOOL

# ---------------------------------------------------------------------------
# Element domains: a domain maps a dtype to a Hypothesis strategy of elements.


@dataclass(frozen=True)
class Dom:
    """Union of closed intervals (floats) / the integers inside them; optional lattice."""

    intervals: tuple = ((-4.0, 4.0),)
    step: float | None = None  # if set: values k * step + offset (keeps away from kinks)
    offset: float = 0.0
    ints: tuple | None = None  # intervals for integer dtypes, if not ``intervals``

    def __call__(self, dtype) -> st.SearchStrategy:
        dtype = np.dtype(dtype)
        if dtype.kind == "b":
            return st.booleans()
        parts = []
        intervals = self.ints if self.ints is not None and dtype.kind in "iu" else self.intervals
        for lo, hi in intervals:
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                a, b = max(math.ceil(lo), info.min), min(math.floor(hi), info.max)
                if a <= b:
                    parts.append(st.integers(a, b))
            elif self.step is not None:
                k_lo = math.ceil((lo - self.offset) / self.step)
                k_hi = math.floor((hi - self.offset) / self.step)
                parts.append(st.integers(k_lo, k_hi).map(
                    lambda k, s=self.step, o=self.offset: k * s + o))
            else:
                width = 8 * dtype.itemsize
                lo_w, hi_w = float(dtype.type(lo)), float(dtype.type(hi))
                parts.append(st.floats(lo_w, hi_w, width=width, allow_subnormal=False))
        return st.one_of(*parts)


ANY = Dom()
POS = Dom(((0.25, 4.0),))
NONZERO = Dom(((-4.0, -0.25), (0.25, 4.0)))
UNIT = Dom(((-0.875, 0.875),))
SMALL = Dom(((-2.0, 2.0),))
# Lattices that stay away from integers, half-integers and each other.
LAT_A = Dom(((-3.0, 3.0),), step=1.0, offset=0.25)    # ..., -0.75, 0.25, 1.25, ...
LAT_B = Dom(((-3.0, 3.0),), step=1.0, offset=-0.25)   # never equal to a LAT_A value
DIVISOR = Dom(((-2.5, -1.5), (1.5, 2.5)), step=1.0, offset=0.5)  # +-1.5, +-2.5


# ---------------------------------------------------------------------------
# Op rows


@dataclass(frozen=True)
class Op:
    """One row of an op table."""

    name: str
    fn: Callable
    ref: Callable
    arity: int = 1
    dom: tuple = (ANY,)           # per-argument domain for value tests
    gdom: tuple | None = None     # per-argument domain for gradient tests; None: not differentiable
    dtypes: tuple = FLOATS        # input dtypes NumPy accepts (both arguments get the same one)
    rtol: float = 1.0             # multiplier on the dtype tolerance (composed ops)
    specials: bool = True         # compare on inf / nan / +-0 inputs as well
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis prints rows by name
        p.text(self.name)


def unary(name, dom=ANY, gdom=None, dtypes=NUMERIC + BOOL, ref=None, **kw) -> Op:
    return Op(name, getattr(fnp, name), ref or getattr(np, name), 1, (dom,),
              None if gdom is None else (gdom,), dtypes, **kw)


def binary(name, dom=(ANY, ANY), gdom=None, dtypes=NUMERIC, ref=None, **kw) -> Op:
    return Op(name, getattr(fnp, name), ref or getattr(np, name), 2, tuple(dom),
              None if gdom is None else tuple(gdom), dtypes, **kw)


_TRANSCENDENTAL_INPUTS = FLOATS + INTS + BOOL

UNARY = [
    unary("negative", gdom=ANY, dtypes=NUMERIC),
    unary("positive", gdom=ANY, dtypes=NUMERIC),
    unary("abs", gdom=NONZERO),
    unary("absolute", gdom=NONZERO),
    unary("sign", gdom=NONZERO, dtypes=NUMERIC),
    unary("exp", SMALL, gdom=SMALL),
    unary("exp2", SMALL, gdom=SMALL, rtol=4),
    unary("expm1", SMALL, gdom=SMALL),
    unary("log", POS, gdom=POS),
    unary("log2", POS, gdom=POS, rtol=4),
    unary("log10", POS, gdom=POS, rtol=4),
    unary("log1p", Dom(((-0.75, 4.0),)), gdom=Dom(((-0.75, 4.0),))),
    unary("sqrt", Dom(((0.0, 9.0),)), gdom=POS),
    unary("cbrt", gdom=NONZERO),
    unary("square", gdom=ANY),
    unary("reciprocal", NONZERO, gdom=NONZERO, dtypes=FLOATS + INTS),
    unary("sin", gdom=ANY),
    unary("cos", gdom=ANY),
    unary("tan", Dom(((-1.25, 1.25),)), gdom=Dom(((-1.25, 1.25),))),
    unary("arcsin", Dom(((-1.0, 1.0),)), gdom=UNIT),
    unary("arccos", Dom(((-1.0, 1.0),)), gdom=UNIT),
    unary("arctan", gdom=ANY),
    unary("sinh", SMALL, gdom=SMALL),
    unary("cosh", SMALL, gdom=SMALL),
    unary("tanh", gdom=ANY),
    unary("arcsinh", gdom=ANY),
    unary("arccosh", Dom(((1.0, 5.0),)), gdom=Dom(((1.25, 4.0),))),
    unary("arctanh", Dom(((-1.0, 1.0),)), gdom=UNIT),
    unary("floor", gdom=LAT_A, dtypes=NUMERIC),
    unary("ceil", gdom=LAT_A, dtypes=NUMERIC),
    unary("trunc", gdom=LAT_A, dtypes=NUMERIC),
    unary("round", gdom=LAT_A, dtypes=NUMERIC),
    unary("around", gdom=LAT_A, dtypes=NUMERIC, ref=np.round),
    unary("nan_to_num", gdom=ANY),
    unary("isfinite"),
    unary("isnan"),
    unary("isinf"),
    unary("logical_not"),
    unary("invert", dtypes=INTS + BOOL, specials=False),
    unary("bitwise_not", dtypes=INTS + BOOL, specials=False, ref=np.invert),
]

_BITS = Dom(((0.0, 6.0),))

BINARY = [
    binary("add", gdom=(ANY, ANY), dtypes=ALL),
    binary("subtract", gdom=(ANY, ANY)),
    binary("multiply", gdom=(ANY, ANY), dtypes=ALL),
    binary("divide", (ANY, NONZERO), gdom=(ANY, NONZERO)),
    binary("true_divide", (ANY, NONZERO), gdom=(ANY, NONZERO)),
    binary("floor_divide", (ANY, NONZERO), gdom=(LAT_A, DIVISOR)),
    binary("mod", (ANY, NONZERO), gdom=(LAT_A, DIVISOR)),
    binary("remainder", (ANY, NONZERO), gdom=(LAT_A, DIVISOR)),
    binary("power", (POS, Dom(((-2.0, 3.0),), ints=((0, 3),))), gdom=(POS, SMALL),
           dtypes=FLOATS + (np.dtype(np.int64),)),
    binary("maximum", gdom=(LAT_A, LAT_B), dtypes=ALL),
    binary("minimum", gdom=(LAT_A, LAT_B), dtypes=ALL),
    binary("fmax", gdom=(LAT_A, LAT_B), dtypes=ALL),
    binary("fmin", gdom=(LAT_A, LAT_B), dtypes=ALL),
    binary("arctan2", gdom=(NONZERO, ANY)),
    binary("hypot", gdom=(NONZERO, NONZERO), rtol=4),
    binary("logaddexp", gdom=(LAT_A, LAT_B), rtol=4),
    binary("equal", dtypes=ALL),
    binary("not_equal", dtypes=ALL),
    binary("less", dtypes=ALL),
    binary("less_equal", dtypes=ALL),
    binary("greater", dtypes=ALL),
    binary("greater_equal", dtypes=ALL),
    binary("logical_and", dtypes=ALL),
    binary("logical_or", dtypes=ALL),
    binary("logical_xor", dtypes=ALL),
    binary("bitwise_and", dtypes=INTS + BOOL, specials=False),
    binary("bitwise_or", dtypes=INTS + BOOL, specials=False),
    binary("bitwise_xor", dtypes=INTS + BOOL, specials=False),
    binary("left_shift", (ANY, _BITS), dtypes=INTS, specials=False),
    binary("right_shift", (Dom(((-100.0, 100.0),)), _BITS), dtypes=INTS, specials=False),
]

ELEMENTWISE = UNARY + BINARY


def ids(rows) -> list[str]:
    return [r.name for r in rows]


# ---------------------------------------------------------------------------
# Assertions


def tolerance(dtype, scale: float = 1.0) -> dict:
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        return dict(rtol=0, atol=0)
    base = {2: 2e-3, 4: 2e-6, 8: 1e-13}[dtype.itemsize if dtype.kind == "f"
                                        else dtype.itemsize // 2]
    return dict(rtol=base * scale, atol=base * scale)


def assert_like_numpy(actual, expected, scale: float = 1.0, check_type: bool = True):
    """Same dtype, same shape, equal values (within the dtype's tolerance; NaN == NaN)."""
    expected = np.asarray(expected)
    if check_type:
        assert type(actual) is np.ndarray, f"eager result is {type(actual).__name__}"
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != NumPy's {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != NumPy's {expected.shape}"
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual, expected, equal_nan=True,
                                   **tolerance(expected.dtype, scale))
        if expected.dtype.kind == "f":  # infinities must agree in sign too
            np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(expected))
            np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected))
    else:
        np.testing.assert_array_equal(actual, expected)


def numpy_ref(ref, *args, **kwargs):
    """NumPy's result, with its floating-point warnings silenced (they are expected)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ref(*args, **kwargs)


def quiet(f, *args, **kwargs):
    """Call funcnet with NumPy's floating-point warnings silenced."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args, **kwargs)


def traced(f, *args):
    """``f`` traced by ``fn.make_graph`` and the graph evaluated: ``(outputs, out_avals)``."""
    graph = fn.make_graph(f)(*args)
    leaves = fn.tree.leaves(list(args))
    outs = quiet(eval_graph, graph, graph.consts, leaves)
    return graph.out_tree.unflatten(outs), graph.out_avals


def assert_traced_matches_eager(f, *args):
    """Under ``make_graph`` the op gives the eager values, and its abstract shape/dtype
    (what ``jit`` relies on) equal the concrete result's."""
    eager = quiet(f, *args)
    out, avals = traced(f, *args)
    eager_leaves = fn.tree.leaves(eager)
    out_leaves = fn.tree.leaves(out)
    assert len(eager_leaves) == len(out_leaves) == len(avals)
    for e, o, a in zip(eager_leaves, out_leaves, avals, strict=True):
        e, o = np.asarray(e), np.asarray(o)
        assert a.shape == e.shape, f"abstract shape {a.shape} != concrete {e.shape}"
        assert a.dtype == e.dtype, f"abstract dtype {a.dtype} != concrete {e.dtype}"
        assert o.dtype == e.dtype
        np.testing.assert_array_equal(o, e)


def grads_ok(f, args, order: int = 2, **kw):
    """``check_grads`` in forward and reverse mode (order 2 unless told)."""
    check_grads(f, tuple(args), order=order, modes=("fwd", "rev"), **kw)


# ---------------------------------------------------------------------------
# Strategies


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(dtype, shape, dom: Dom = ANY, unique: bool = False):
    return hnp.arrays(np.dtype(dtype), shape, elements=dom(dtype), unique=unique)


def distinct(shape, dtype=F64):
    """Arrays of distinct values on a 0.125 lattice (no ties: max/sort are smooth there)."""
    n = int(np.prod(shape, dtype=np.int64))
    return st.permutations(range(n)).map(
        lambda p: (np.asarray(p, dtype) * 0.125 - n / 16).reshape(shape))


SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e30, -1e30]
