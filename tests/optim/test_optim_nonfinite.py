"""The non-finite corners as property tests: 0, NaN, inf, ``max_norm=0``.

``clip_by_global_norm``'s policies and ``apply_if_finite`` against what the
issue promises, on gradients with NaN and infinities sprinkled in.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import optim

SETTINGS = settings(max_examples=40, deadline=None)

SPECIAL = st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf])
FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
VALUES = st.one_of(FINITE, FINITE, SPECIAL)   # mostly finite, sometimes special


def grads_strategy(elements=VALUES):
    leaf = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
                      elements=elements)
    return st.fixed_dictionaries({"a": leaf, "b": st.lists(leaf, min_size=1, max_size=2)})


def all_finite(tree) -> bool:
    return all(np.all(np.isfinite(x)) for x in fn.tree.leaves(tree))


def optax_clip(tree, max_norm):
    """optax.clip_by_global_norm's arithmetic, written out in NumPy."""
    leaves = fn.tree.leaves(tree)
    with np.errstate(all="ignore"):
        norm = np.sqrt(sum(np.sum(x * x) for x in leaves))
        if norm < max_norm:
            return tree, norm
        return fn.tree.map(lambda t: (t / norm) * max_norm, tree), norm


@SETTINGS
@given(grads_strategy(), st.sampled_from([0.0, 0.5, 1.0, 10.0]))
def test_propagate_is_optax_arithmetic_except_zero_norm(grads, max_norm):
    tx = optim.clip_by_global_norm(max_norm)
    with np.errstate(all="ignore"):
        out, state = tx.update(grads, tx.init(grads))
    expected, norm = optax_clip(grads, max_norm)
    if norm == 0:  # optax gives 0/0 = NaN here; funcnet gives g, or 0 when max_norm = 0
        expected = grads if max_norm > 0 else fn.tree.map(np.zeros_like, grads)
    for x, y in zip(fn.tree.leaves(out), fn.tree.leaves(expected)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(state.norm, norm)


def scaled_clip(tree, max_norm):
    """The clip with the norm computed as ``m * ||x / m||`` (no underflow or overflow)."""
    leaves = fn.tree.leaves(tree)
    m = max((float(np.max(np.abs(x))) for x in leaves if np.size(x)), default=0.0)
    if m == 0:
        return tree, 0.0
    norm = m * np.sqrt(sum(np.sum((x / m) ** 2) for x in leaves))
    if norm < max_norm:
        return tree, norm
    return fn.tree.map(lambda t: (t / norm) * max_norm, tree), norm


@SETTINGS
@given(grads_strategy(), st.sampled_from([0.0, 0.5, 1.0, 10.0]))
def test_skip_never_turns_finite_leaves_into_nan(grads, max_norm):
    tx = optim.clip_by_global_norm(max_norm, nonfinite="skip")
    with np.errstate(all="ignore"):
        out, state = tx.update(grads, tx.init(grads))
    assert all_finite(out)
    if all_finite(grads):
        expected, norm = scaled_clip(grads, max_norm)
        for x, y in zip(fn.tree.leaves(out), fn.tree.leaves(expected)):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-300)
        assert int(state.nonfinite_count) == 0
        np.testing.assert_allclose(state.norm, norm, rtol=1e-12)
    else:
        for x in fn.tree.leaves(out):
            np.testing.assert_array_equal(x, np.zeros_like(x))
        assert int(state.nonfinite_count) == 1
        assert not np.isfinite(state.norm)


@SETTINGS
@given(grads_strategy())
def test_raise_policy_raises_exactly_on_nonfinite_gradients(grads):
    tx = optim.clip_by_global_norm(1.0, nonfinite="raise")
    state = tx.init(grads)
    if all_finite(grads):
        out, _ = tx.update(grads, state)
        assert all_finite(out)
    else:
        with pytest.raises(FloatingPointError, match="non-finite values in"):
            tx.update(grads, state)


def test_raise_policy_names_the_bad_leaves():
    tx = optim.clip_by_global_norm(1.0, nonfinite="raise")
    grads = {"ok": np.ones(2), "bad": np.array([1.0, np.nan])}
    with pytest.raises(FloatingPointError, match=r"\['bad'\]"):
        tx.update(grads, tx.init(grads))


def test_raise_policy_under_jit_skips_and_counts():
    tx = optim.clip_by_global_norm(1.0, nonfinite="raise")
    step = fn.jit(tx.update)
    grads = np.array([1.0, np.inf])
    out, state = step(grads, tx.init(grads))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert int(optim.get(state, "nonfinite_count")) == 1


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 4), elements=FINITE),
       st.sampled_from(["propagate", "skip", "raise"]))
def test_max_norm_zero_and_zero_gradients_give_zeros(g, policy):
    tx = optim.clip_by_global_norm(0.0, nonfinite=policy)
    for grads in (g, np.zeros_like(g)):
        out, state = tx.update(grads, tx.init(grads))
        np.testing.assert_array_equal(out, np.zeros_like(g))
    zero = np.zeros_like(g)
    out, _ = optim.clip_by_global_norm(1.0, nonfinite=policy).update(zero, tx.init(zero))
    np.testing.assert_array_equal(out, zero)


def test_robust_norm_does_not_overflow():
    big = np.full(4, 1e30, np.float32)   # squares overflow float32
    tx = optim.clip_by_global_norm(1.0, nonfinite="skip")
    out, state = tx.update(big, tx.init(big))
    np.testing.assert_allclose(out, np.full(4, 0.5, np.float32), rtol=1e-6)
    np.testing.assert_allclose(state.norm, 2e30, rtol=1e-6)
    assert state.norm.dtype == np.float32


def test_clip_gradient_is_finite_at_zero():
    def loss(g):
        u, _ = optim.clip_by_global_norm(1.0).update(g, optim.clip_by_global_norm(1.0).init(g))
        return fnp.sum(u)

    d = fn.grad(loss)(np.zeros(3))
    assert np.all(np.isfinite(d))


# ---------------------------------------------------------------------------
# apply_if_finite


def nan_maker():
    """A transform that turns finite inputs into NaN inside a chain (log of negatives)."""
    return optim.stateless(lambda u, p: fn.tree.map(lambda x: fnp.log(x), u), name="log")


FIXED = st.fixed_dictionaries({"a": hnp.arrays(np.float64, 3, elements=VALUES),
                               "b": st.tuples(hnp.arrays(np.float64, (2, 2), elements=VALUES))})


@SETTINGS
@given(st.lists(FIXED, min_size=1, max_size=6))
def test_apply_if_finite_never_applies_nonfinite_updates(seq):
    inner = optim.chain(optim.adam(0.1), nan_maker())
    tx = optim.apply_if_finite(inner)
    params = {"a": np.ones(3), "b": (np.ones((2, 2)),)}
    state = tx.init(params)
    rejected = consecutive = 0
    for grads in seq:
        with np.errstate(all="ignore"):
            expected, _ = inner.update(grads, state.inner_state, params)
            out, new_state = tx.update(grads, state, params)
        ok = all_finite(expected)
        assert all_finite(out)
        if ok:
            consecutive = 0
            for x, y in zip(fn.tree.leaves(out), fn.tree.leaves(expected)):
                np.testing.assert_array_equal(x, y)
        else:
            rejected += 1
            consecutive += 1
            for x in fn.tree.leaves(out):
                np.testing.assert_array_equal(x, np.zeros_like(x))
            for x, y in zip(fn.tree.leaves(new_state.inner_state),
                            fn.tree.leaves(state.inner_state)):
                np.testing.assert_array_equal(x, y)   # the inner state did not move
        assert bool(new_state.last_finite) == ok
        assert int(new_state.total_notfinite) == rejected
        assert int(new_state.notfinite_count) == consecutive
        state = new_state


def test_apply_if_finite_checks_the_output_of_the_whole_chain():
    tx = optim.apply_if_finite(optim.chain(optim.sgd(1.0), nan_maker()))
    g = np.array([1.0, 2.0])           # finite gradient, NaN after the chain
    with np.errstate(invalid="ignore"):
        out, state = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert int(optim.get(state, "total_notfinite")) == 1


def test_apply_if_finite_gives_up_only_when_asked():
    g = np.array([np.nan])
    for limit, applied_at in [(None, None), (2, 3)]:
        tx = optim.apply_if_finite(optim.sgd(0.1), max_consecutive_errors=limit)
        state = tx.init(g)
        for step in range(1, 6):
            out, state = tx.update(g, state)
            assert np.isnan(out[0]) == (applied_at is not None and step >= applied_at)
        assert int(state.notfinite_count) == 5 and int(state.total_notfinite) == 5


def test_apply_if_finite_counters_reset_and_saturate():
    tx = optim.apply_if_finite(optim.sgd(0.1))
    state = tx.init(np.zeros(1))
    _, state = tx.update(np.array([np.inf]), state)
    _, state = tx.update(np.array([1.0]), state)
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 1
    top = np.iinfo(np.int32).max
    state = state._replace(total_notfinite=np.asarray(top, np.int32))
    _, state = tx.update(np.array([np.inf]), state)
    assert int(state.total_notfinite) == top and state.total_notfinite.dtype == np.int32


@pytest.mark.parametrize("make", [lambda: optim.adam(0.1), lambda: optim.rmsprop(0.1),
                                  lambda: optim.adagrad(0.1), lambda: optim.lamb(0.1),
                                  lambda: optim.sgd(0.1, momentum=0.9),
                                  lambda: optim.lion(0.1)])
def test_zero_gradients_give_finite_zero_updates(make):
    tx = make()
    p = np.zeros(3)
    state = tx.init(p)
    for _ in range(3):
        u, state = tx.update(np.zeros(3), state, p)
        np.testing.assert_array_equal(u, np.zeros(3))
    assert all_finite(state)


def test_skip_not_finite_in_multisteps_ignores_the_bad_minibatch():
    opt = optim.MultiSteps(optim.sgd(1.0), 2, should_skip_update_fn=optim.skip_not_finite)
    state = opt.init(np.zeros(2))
    _, state = opt.update(np.array([1.0, 1.0]), state)
    _, state = opt.update(np.array([np.nan, 1.0]), state)   # skipped: as if it never happened
    assert int(state.mini_step) == 1
    u, state = opt.update(np.array([3.0, 3.0]), state)
    np.testing.assert_array_equal(u, [-2.0, -2.0])
    assert int(state.skip_state["num_not_finite"]) == 0
