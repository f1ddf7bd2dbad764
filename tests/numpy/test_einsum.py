"""``fnp.einsum`` against ``numpy.einsum``: a table of subscripts, randomly
generated subscripts (Hypothesis), dtypes, errors, tracing and derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optable import FEW, GRADS, VALUES, assert_like_numpy, assert_traced_matches_eager, grads_ok

import funcnet as fn
from funcnet.numpy.einsum import einsum, parse_subscripts

# (subscripts, operand shapes)
TABLE = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iii->i", [(2, 2, 2)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("i,i", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("i,i->i", [(1,), (3,)]),
    ("ij,j->i", [(2, 1), (3,)]),
    ("ba", [(2, 3)]),
    ("Ab,ba", [(2, 3), (3, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->j", [(3, 2, 3)]),
    ("ii,jj->ij", [(2, 2), (3, 3)]),
    ("ijj,k->ik", [(2, 3, 3), (4,)]),
    ("ijk,jkl,lm->im", [(2, 3, 4), (3, 4, 5), (5, 2)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("ab,cd,bc->ad", [(2, 3), (4, 5), (3, 4)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(1, 2, 3), (4, 3, 2)]),
    ("...", [(2, 3)]),
    ("i...->...", [(2, 3, 4)]),
    ("a...b,b...->...a", [(2, 3, 4), (4, 3)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]),
    ("", [()]),
    (",->", [(), ()]),
    ("i,->i", [(3,), ()]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
]


def _operands(shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, size=s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("spec, shapes", TABLE, ids=[t[0] or "empty" for t in TABLE])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_table_matches_numpy(spec, shapes, dtype):
    ops = _operands(shapes, dtype)
    assert_like_numpy(einsum(spec, *ops), np.einsum(spec, *ops), scale=10.0)


@pytest.mark.parametrize("spec, shapes", TABLE, ids=[t[0] or "empty" for t in TABLE])
def test_table_grads(spec, shapes):
    grads_ok(lambda *xs: einsum(spec, *xs), _operands(shapes))


@pytest.mark.parametrize("spec, shapes", TABLE[:12], ids=[t[0] for t in TABLE[:12]])
def test_table_traced_matches_eager(spec, shapes):
    assert_traced_matches_eager(lambda *xs: einsum(spec, *xs), *_operands(shapes))


# ---------------------------------------------------------------------------
# Random subscripts


@st.composite
def einsum_problems(draw, max_operands=3):
    """A random valid einsum: subscripts, operand shapes (size-1 broadcasting included)."""
    letters = "abcdeF"
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    n_ops = draw(st.integers(1, max_operands))
    n_ell = draw(st.integers(0, 2))
    ell_sizes = [draw(st.integers(1, 3)) for _ in range(n_ell)]
    terms, shapes = [], []
    for _ in range(n_ops):
        labels = draw(st.lists(st.sampled_from(letters), max_size=4))
        shape = [sizes[c] if draw(st.integers(0, 4)) else 1 for c in labels]
        # a repeated label must have one size within an operand
        for c in set(labels):
            if labels.count(c) > 1:
                shape = [sizes[c] if lab == c else d for lab, d in zip(labels, shape)]
        term = "".join(labels)
        if n_ell and draw(st.booleans()):
            k = draw(st.integers(0, n_ell))
            pos = draw(st.integers(0, len(labels)))
            own = [s if draw(st.integers(0, 3)) else 1 for s in ell_sizes[n_ell - k:]]
            term = term[:pos] + "..." + term[pos:]
            shape = shape[:pos] + own + shape[pos:]
        terms.append(term)
        shapes.append(tuple(shape))
    spec = ",".join(terms)
    if draw(st.booleans()):
        used = sorted({c for t in terms for c in t if c != "."})
        out = draw(st.permutations(used))[:draw(st.integers(0, len(used)))]
        out = "".join(out)
        if any("..." in t for t in terms):
            pos = draw(st.integers(0, len(out)))
            out = out[:pos] + "..." + out[pos:]
        spec += "->" + out
    return spec, shapes


@given(problem=einsum_problems(), dtype=st.sampled_from([np.float32, np.float64, np.int64]))
@VALUES
def test_random_subscripts_match_numpy(problem, dtype):
    spec, shapes = problem
    ops = [o.astype(dtype) if dtype != np.int64 else np.round(o).astype(np.int64)
           for o in _operands(shapes)]
    assert_like_numpy(einsum(spec, *ops), np.einsum(spec, *ops), scale=10.0)


@given(problem=einsum_problems(max_operands=2))
@GRADS
def test_random_subscripts_grads(problem):
    spec, shapes = problem
    grads_ok(lambda *xs: einsum(spec, *xs), _operands(shapes))


@given(problem=einsum_problems())
@FEW
def test_only_existing_primitives_are_used(problem):
    spec, shapes = problem
    graph = fn.make_graph(lambda *xs: einsum(spec, *xs))(*_operands(shapes))
    used = {eqn.prim.name for eqn in graph.eqns}
    assert used <= {"dot_general", "transpose", "reduce_sum", "reshape", "gather",
                    "broadcast_in_dim", "convert_element_type"}, used


# ---------------------------------------------------------------------------
# Forms, dtypes and errors


def test_interleaved_form():
    a, b = _operands([(2, 3), (3, 4)])
    np.testing.assert_allclose(einsum(a, [0, 1], b, [1, 2], [0, 2]), a @ b)
    np.testing.assert_allclose(einsum(a, [0, 1], b, [1, 2]), a @ b)
    c = _operands([(5, 2, 3)])[0]
    np.testing.assert_allclose(einsum(c, [Ellipsis, 0, 1], [1, Ellipsis]),
                               np.einsum(c, [Ellipsis, 0, 1], [1, Ellipsis]))


def test_dtypes_promote_like_numpy():
    a32 = np.ones((2, 3), np.float32)
    a64 = np.ones((3, 2))
    i = np.arange(6).reshape(3, 2)
    assert einsum("ij,jk", a32, a32.T).dtype == np.float32
    assert einsum("ij,jk", a32, a64).dtype == np.float64
    assert einsum("ij,jk", a32, i).dtype == np.einsum("ij,jk", a32, i).dtype
    assert einsum("ij,jk", i.T, i).dtype == np.int64


def test_parse_subscripts():
    assert parse_subscripts("ij,jk", [(2, 3), (3, 4)]) == ([["i", "j"], ["j", "k"]], ["i", "k"])
    assert parse_subscripts("...i", [(4, 5, 2)]) == ([[0, 1, "i"]], [0, 1, "i"])
    assert parse_subscripts("i...,j->j...", [(2, 3), (4,)]) == ([["i", 0], ["j"]], ["j", 0])


@pytest.mark.parametrize("spec, shapes, match", [
    ("ij,jk", [(2, 3)], "2 operand"),
    ("ij", [(2, 3, 4)], "names 2 axes"),
    ("ijk", [(2, 3)], "names 3 axes"),
    ("ij,jk", [(2, 3), (4, 5)], "size 4 in one operand and 3"),
    ("ii", [(2, 3)], "different sizes"),
    ("ij->k", [(2, 3)], "'k' does not appear"),
    ("ij->ii", [(2, 3)], "more than once"),
    ("i1", [(2, 3)], "invalid subscript"),
    ("...i->i", [(2, 3)], "no '...'"),
    ("i......", [(2, 3)], "more than one ellipsis"),
    ("ij->i->j", [(2, 3)], "more than one '->'"),
    ("ij-i", [(2, 3)], "malformed"),
])
def test_errors(spec, shapes, match):
    with pytest.raises(ValueError, match=match):
        einsum(spec, *_operands(shapes))


def test_needs_an_operand():
    with pytest.raises(ValueError, match="at least one operand"):
        einsum("ij")


def test_grad_of_matmul_einsum():
    a, b = _operands([(2, 3), (3, 4)])
    ga, gb = fn.grad(lambda a, b: einsum("ij,jk->", a, b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, np.ones((2, 4)) @ b.T)
    np.testing.assert_allclose(gb, a.T @ np.ones((2, 4)))


@pytest.mark.parametrize("spec, shapes", TABLE[:16], ids=[t[0] for t in TABLE[:16]])
def test_vmap_and_jit_match_the_loop(spec, shapes):
    ops = _operands([(3,) + s for s in shapes])
    f = lambda *xs: einsum(spec, *xs)
    want = np.stack([f(*[o[i] for o in ops]) for i in range(3)])
    np.testing.assert_allclose(fn.vmap(f)(*ops), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fn.jit(f)(*[o[0] for o in ops]), want[0], rtol=1e-12, atol=1e-12)


def test_fnp_einsum_stays_a_function_after_the_submodule_is_imported():
    # Importing the submodule funcnet.numpy.einsum for the first time sets the package
    # attribute ``einsum`` to the module; funcnet/numpy/__init__.py must import the
    # submodule itself before binding the name to the function.
    import funcnet.numpy as fnp
    import funcnet.numpy.einsum  # noqa: F401

    fnp.einsum("ii", np.eye(2))
    assert callable(fnp.einsum) and fnp.einsum("ii", np.eye(2)) == 2.0
