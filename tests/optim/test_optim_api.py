"""The core protocol and the fixes to optax's sharp corners: chain order, apply_updates,
state by name, describe, labels for masked / multi_transform, inject_hyperparams,
MultiSteps, schedules and counters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import optim

# ---------------------------------------------------------------------------
# core


def test_gradient_transformation_is_an_init_update_pair():
    tx = optim.sgd(0.1)
    init, update = tx
    assert init is tx.init and update is tx.update
    assert isinstance(tx, tuple) and tx[0] is tx.init
    assert "sgd" in repr(tx)


def test_chain_runs_left_to_right():
    g = np.array([0.3, 0.9])
    a = optim.chain(optim.scale(2.0), optim.clip(1.0))   # scale, then clip
    b = optim.chain(optim.clip(1.0), optim.scale(2.0))   # clip, then scale
    np.testing.assert_allclose(a.update(g, a.init(g))[0], [0.6, 1.0])
    np.testing.assert_allclose(b.update(g, b.init(g))[0], [0.6, 1.8])


def test_chain_state_is_a_tuple_and_rejects_a_foreign_state():
    tx = optim.chain(optim.scale_by_adam(), optim.scale(-0.1))
    state = tx.init(np.zeros(2))
    assert isinstance(state, tuple) and len(state) == 2
    with pytest.raises(ValueError, match="chain of 2 transforms"):
        tx.update(np.zeros(2), (state[0],))


def test_named_chain_state_by_name():
    tx = optim.named_chain(("clip", optim.clip_by_global_norm(1.0)), ("opt", optim.adam(0.1)))
    state = tx.init(np.zeros(2))
    u, state = tx.update(np.array([3.0, 4.0]), state)
    assert float(state["clip"].norm) == 5.0
    assert int(optim.get(state, "opt/count")) == 1
    with pytest.raises(ValueError, match="unique"):
        optim.named_chain(("a", optim.sgd(1.0)), ("a", optim.sgd(1.0)))


def test_user_transforms_without_extra_args_work_in_a_chain():
    # An optax-style user transform (no **extra_args), next to a line search that needs them.
    double = optim.GradientTransformation(lambda p: optim.EmptyState(),
                                          lambda u, s, p=None: (fn.tree.map(lambda x: 2 * x, u),
                                                                s))
    f = lambda w: fnp.sum(w ** 2)  # noqa: E731
    tx = optim.chain(double, optim.scale(-0.25), optim.scale_by_backtracking_linesearch(10))
    w = np.array([1.0, -1.0])
    u, _ = tx.update(2 * w, tx.init(w), w, value=f(w), grad=2 * w, value_fn=f)
    np.testing.assert_allclose(optim.apply_updates(w, u), [0.0, 0.0])
    # a plain (init, update) tuple is accepted too
    pair = (lambda p: (), lambda u, s, p=None: (u, s))
    assert optim.chain(pair, optim.sgd(1.0)).update(w, ((), ((), ())))[0][0] == -1.0


def test_apply_updates_keeps_dtypes_and_passes_none():
    params = {"h": np.ones(2, np.float16), "i": np.arange(3, dtype=np.int32), "none": None,
              "frozen": np.ones(1)}
    updates = {"h": np.full(2, 0.25), "i": np.ones(3), "none": None, "frozen": None}
    out = optim.apply_updates(params, updates)
    assert out["h"].dtype == np.float16 and out["i"].dtype == np.int32
    np.testing.assert_array_equal(out["i"], [1, 2, 3])
    assert out["none"] is None and out["frozen"] is params["frozen"]


def test_sign_flip_only_in_scale_by_learning_rate():
    g = np.array([1.0])
    assert optim.scale_by_adam().update(g, optim.scale_by_adam().init(g))[0][0] > 0
    assert optim.scale_by_learning_rate(0.5).update(g, optim.EmptyState())[0][0] == -0.5
    tx = optim.scale_by_learning_rate(0.5, flip_sign=False)
    assert tx.update(g, tx.init(g))[0][0] == 0.5
    assert optim.scale_by_learning_rate(None).update(g, optim.EmptyState())[0][0] == 1.0


def test_counters_are_int32_and_saturate():
    tx = optim.adam(0.1)
    state = tx.init(np.zeros(1))
    assert state[0].count.dtype == np.int32 and state[0].count.shape == ()
    top = np.iinfo(np.int32).max
    state = (state[0]._replace(count=np.asarray(top, np.int32)), state[1])
    u, state = tx.update(np.ones(1), state)
    assert int(state[0].count) == top and state[0].count.dtype == np.int32
    assert np.all(np.isfinite(u))


# ---------------------------------------------------------------------------
# state by name


def test_get_through_chain_inject_masked_and_wrappers():
    sched = optim.linear_schedule(0.1, 0.0, 10)
    inner = optim.inject_hyperparams(optim.adamw)(learning_rate=sched, weight_decay=0.01)
    tx = optim.apply_if_finite(optim.chain(optim.clip_by_global_norm(1.0),
                                           optim.masked(inner, {"w": True, "b": False})))
    params = {"w": np.ones(2), "b": np.ones(1)}
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update({"w": np.ones(2), "b": np.ones(1)}, state, params)
    assert float(optim.get(state, "learning_rate")) == pytest.approx(0.1 * 0.8)  # step 2's
    assert int(optim.get(state, "count")) == 3
    assert float(optim.get(state, "weight_decay")) == pytest.approx(0.01)
    assert float(optim.get(state, "norm")) == pytest.approx(math.sqrt(3))
    assert int(optim.get(state, "total_notfinite")) == 0
    counts = optim.get_all(state, "count")
    assert all(int(v) == 3 for v in counts.values()) and len(counts) == 2
    assert int(optim.get(state, "inner_state/count")) == 3
    assert optim.get(state, "nope", default=None) is None
    with pytest.raises(KeyError, match="learning_rate"):
        optim.get(state, "learning_rat")


def test_set_changes_a_hyperparameter_and_keeps_its_dtype():
    tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1, momentum=0.9)
    params = np.zeros(2, np.float32)
    state = tx.init(params)
    state = optim.set(state, "learning_rate", 1.0)
    assert optim.get(state, "learning_rate").dtype == np.float32
    u, state = tx.update(np.ones(2, np.float32), state)
    np.testing.assert_allclose(u, [-1.0, -1.0])
    with pytest.raises(KeyError):
        optim.set(state, "nope", 1.0)


def test_describe_shows_the_chain_order_and_current_values():
    tx = optim.chain(optim.clip_by_global_norm(1.0),
                     optim.adamw(optim.linear_schedule(1.0, 0.0, 10), weight_decay=0.5))
    state = tx.init(np.zeros(2))
    for _ in range(2):
        _, state = tx.update(np.ones(2), state, np.zeros(2))
    text = optim.describe(tx, state)
    lines = text.splitlines()
    assert lines[0] == "chain"
    assert "clip_by_global_norm(max_norm=1" in lines[1] and "norm=1.41421" in lines[1]
    order = [next(i for i, ln in enumerate(lines) if name in ln)
             for name in ("scale_by_adam", "add_decayed_weights", "scale_by_learning_rate")]
    assert order == sorted(order)
    assert "count=2" in text and "learning_rate=0.8" in text and "weight_decay=0.5" in text
    assert "linear_schedule(init_value=1, end_value=0, transition_steps=10)" in text
    assert optim.describe(tx).splitlines()[0] == "chain"   # without a state


def test_describe_wrappers():
    tx = optim.multi_transform({"a": optim.sgd(0.1), "b": optim.MultiSteps(optim.adam(0.1), 4)},
                               optim.by_path(lambda path, x: "a" if path == "w" else "b"))
    params = {"w": np.zeros(1), "v": np.zeros(1)}
    text = optim.describe(tx, tx.init(params))
    assert "multi_transform" in text and "a: sgd(learning_rate=0.1)" in text
    assert "MultiSteps(every_k_schedule=4" in text and "mini_step=0" in text
    inj = optim.inject_hyperparams(optim.adam)(learning_rate=optim.constant_schedule(0.5))
    assert "learning_rate=0.5" in optim.describe(inj, inj.init(params))


# ---------------------------------------------------------------------------
# labels


@dataclasses.dataclass
class CallableLabels:
    """A callable pytree of labels (as some model libraries make their modules)."""

    w: object
    b: object

    def __call__(self, *args):  # pragma: no cover - must never be called
        raise AssertionError("a callable pytree was mistaken for a label function")


fn.tree.register_dataclass(CallableLabels)


def test_masked_by_pytree_function_path_and_prefix():
    params = {"dense": {"w": np.ones(2), "b": np.ones(1)}, "out": np.ones(3)}
    grads = fn.tree.map(np.zeros_like, params)
    decay = optim.add_decayed_weights(1.0)
    specs = [
        {"dense": {"w": True, "b": False}, "out": True},
        lambda p: {"dense": {"w": True, "b": False}, "out": True},
        optim.by_path(lambda path, x: not path.endswith("b")),
        {"dense": {"w": True, "b": False}, "out": True},
    ]
    for spec in specs:
        tx = optim.masked(decay, spec)
        u, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_array_equal(u["dense"]["b"], [0.0])
        np.testing.assert_array_equal(u["dense"]["w"], [1.0, 1.0])
        np.testing.assert_array_equal(u["out"], [1.0, 1.0, 1.0])
    prefix = optim.masked(decay, {"dense": False, "out": True})
    u, _ = prefix.update(grads, prefix.init(params), params)
    np.testing.assert_array_equal(u["dense"]["w"], [0.0, 0.0])


def test_masked_keeps_inner_state_only_for_masked_in_leaves():
    tx = optim.masked(optim.adam(0.1), {"w": True, "b": False})
    state = tx.init({"w": np.zeros(3), "b": np.zeros(1000)})
    assert sum(np.size(x) for x in fn.tree.leaves(state)) == 1 + 3 + 3


def test_mismatched_labels_name_the_differing_paths():
    params = {"dense": {"w": np.ones(2), "b": np.ones(1)}, "out": np.ones(1)}
    tx = optim.masked(optim.sgd(1.0), {"dense": {"w": True, "kernel": False}, "out": True})
    with pytest.raises(ValueError) as info:
        tx.init(params)
    message = str(info.value)
    assert "dense/b" in message and "dense/kernel" in message
    mt = optim.multi_transform({"x": optim.sgd(1.0)}, {"dense": "x"})
    with pytest.raises(ValueError, match="out"):
        mt.init(params)


def test_callable_pytree_is_never_mistaken_for_a_label_function():
    params = CallableLabels(w=np.ones(2), b=np.ones(1))
    labels = CallableLabels(w="fast", b="frozen")
    tx = optim.multi_transform({"fast": optim.sgd(1.0), "frozen": optim.set_to_zero()}, labels)
    u, _ = tx.update(params, tx.init(params), params)
    np.testing.assert_array_equal(u.w, [-1.0, -1.0])
    np.testing.assert_array_equal(u.b, [0.0])
    mask = CallableLabels(w=True, b=False)
    m = optim.masked(optim.scale(3.0), mask)
    u, _ = m.update(params, m.init(params), params)
    np.testing.assert_array_equal(u.w, [3.0, 3.0])
    np.testing.assert_array_equal(u.b, [1.0])


def test_multi_transform_labels_three_ways_and_missing_labels():
    params = {"w": np.ones(2), "b": np.ones(1)}
    ways = [{"w": "adam", "b": "sgd"},
            lambda p: {"w": "adam", "b": "sgd"},
            optim.by_path(lambda path, x: "sgd" if path == "b" else "adam")]
    results = []
    for labels in ways:
        tx = optim.multi_transform({"adam": optim.adam(0.1), "sgd": optim.sgd(0.5)}, labels)
        state = tx.init(params)
        u, state = tx.update(params, state, params)
        results.append(u)
        assert set(state.inner_states) == {"adam", "sgd"}
    for u in results:
        np.testing.assert_allclose(u["w"], [-0.1, -0.1])
        np.testing.assert_allclose(u["b"], [-0.5])
    tx = optim.multi_transform({"adam": optim.adam(0.1)}, {"w": "adam", "b": "other"})
    with pytest.raises(ValueError, match="'other'"):
        tx.init(params)


def test_add_decayed_weights_mask_and_schedule():
    tx = optim.add_decayed_weights(lambda n: 0.5 * (n + 1), mask={"w": True, "b": False})
    params = {"w": np.ones(1), "b": np.ones(1)}
    state = tx.init(params)
    for expected in (0.5, 1.0):
        u, state = tx.update(fn.tree.map(np.zeros_like, params), state, params)
        np.testing.assert_allclose(u["w"], [expected])
        np.testing.assert_allclose(u["b"], [0.0])
    with pytest.raises(ValueError, match="needs params"):
        optim.add_decayed_weights(0.1).update(np.zeros(1), optim.EmptyState())


# ---------------------------------------------------------------------------
# inject_hyperparams and MultiSteps


def test_inject_hyperparams_schedules_static_args_and_dtypes():
    tx = optim.inject_hyperparams(optim.sgd, static_args="nesterov")(
        learning_rate=lambda n: 1.0 / (n + 1), momentum=0.5, nesterov=True)
    params = np.zeros(2, np.float64)
    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == np.float64
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    ref = optim.sgd(1.0, momentum=0.5, nesterov=True)
    rstate = ref.init(params)
    for n in range(4):
        u, state = tx.update(np.ones(2), state)
        r, rstate = ref.update(np.ones(2), rstate)
        np.testing.assert_allclose(u, r / (n + 1))
    f32 = optim.inject_hyperparams(optim.adam, hyperparam_dtype=np.float32)(0.1)
    assert f32.init(params).hyperparams["learning_rate"].dtype == np.float32
    with pytest.raises(ValueError, match="static_args"):
        optim.inject_hyperparams(optim.sgd, static_args=("nope",))


def test_multisteps_sum_and_schedule():
    opt = optim.MultiSteps(optim.sgd(1.0), every_k_schedule=lambda step: 2 + step,
                           use_grad_mean=False)
    state = opt.init(np.zeros(1))
    emitted = []
    for _ in range(7):
        u, state = opt.update(np.array([1.0]), state)
        emitted.append(float(u[0]))
    assert emitted == [0.0, -2.0, 0.0, 0.0, -3.0, 0.0, 0.0]
    assert int(state.gradient_step) == 2 and bool(opt.has_updated(state)) is False
    with pytest.raises(ValueError):
        optim.MultiSteps(optim.sgd(1.0), 0)


def test_multisteps_in_a_chain():
    tx = optim.chain(optim.clip(1.0), optim.MultiSteps(optim.sgd(1.0), 2))
    state = tx.init(np.zeros(1))
    u1, state = tx.update(np.array([5.0]), state)
    u2, state = tx.update(np.array([0.0]), state)
    assert float(u1[0]) == 0.0 and float(u2[0]) == -0.5


# ---------------------------------------------------------------------------
# schedules


def test_schedules_against_their_formulas():
    n = np.arange(0, 30)
    cases = [
        (optim.constant_schedule(0.3), np.full(30, 0.3)),
        (optim.linear_schedule(1.0, 0.1, 10, transition_begin=5),
         1.0 + (0.1 - 1.0) * np.clip(n - 5, 0, 10) / 10),
        (optim.polynomial_schedule(1.0, 0.0, 2, 20), (1 - np.clip(n, 0, 20) / 20) ** 2),
        (optim.exponential_decay(2.0, 5, 0.5), 2.0 * 0.5 ** (n / 5)),
        (optim.exponential_decay(2.0, 5, 0.5, staircase=True), 2.0 * 0.5 ** np.floor(n / 5)),
        (optim.exponential_decay(2.0, 5, 0.5, transition_begin=3, end_value=0.5),
         np.maximum(np.where(n <= 3, 2.0, 2.0 * 0.5 ** ((n - 3) / 5)), 0.5)),
        (optim.cosine_decay_schedule(1.0, 20, alpha=0.1),
         0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(n, 20) / 20)) + 0.1),
        (optim.cosine_decay_schedule(1.0, 20, exponent=2.0),
         (0.5 * (1 + np.cos(np.pi * np.minimum(n, 20) / 20))) ** 2),
        (optim.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.1}),
         np.where(n < 10, 1.0, np.where(n < 20, 0.5, 0.05))),
        (optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 30, end_value=0.1),
         np.where(n < 10, n / 10,
                  0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(n - 10, 20) / 20)))),
    ]
    for sched, expected in cases:
        got = np.array([float(sched(int(k))) for k in n])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=repr(sched))
        traced = fn.jit(lambda c, s=sched: fnp.asarray(s(c)) * 1.0)
        got32 = np.array([float(traced(np.asarray(k, np.int32))) for k in n[:12]])
        np.testing.assert_allclose(got32, expected[:12], rtol=1e-6, atol=1e-7)


def test_join_schedules_and_errors():
    s = optim.join_schedules([optim.constant_schedule(1.0), optim.linear_schedule(1.0, 0.0, 4),
                              optim.constant_schedule(-1.0)], [2, 6])
    assert [float(s(k)) for k in range(8)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, -1.0, -1.0]
    with pytest.raises(ValueError):
        optim.join_schedules([optim.constant_schedule(1.0)], [3])
    with pytest.raises(ValueError):
        optim.cosine_decay_schedule(1.0, 0)
    with pytest.raises(ValueError):
        optim.piecewise_constant_schedule(1.0, {3: -1.0})
    assert float(optim.linear_schedule(0.5, 0.0, 0)(10)) == 0.5
    assert float(optim.exponential_decay(0.5, 0, 0.1)(10)) == 0.5


def test_learning_rate_number_or_schedule_everywhere():
    sched = optim.constant_schedule(0.1)
    for make in (optim.sgd, optim.adam, optim.adamw, optim.nadam, optim.rmsprop, optim.adagrad,
                 optim.lamb, optim.lion):
        p = np.ones(2)
        a, b = make(0.1), make(sched)
        ua, _ = a.update(np.ones(2), a.init(p), p)
        ub, _ = b.update(np.ones(2), b.init(p), p)
        np.testing.assert_allclose(ua, ub, rtol=1e-12)


def test_none_leaves_pass_through_every_optimizer():
    params = {"w": np.ones(2), "frozen": None}
    grads = {"w": np.ones(2), "frozen": None}
    for tx in [optim.adam(0.1), optim.sgd(0.1, 0.9), optim.lamb(0.1), optim.lion(0.1),
               optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(0.1)),
               optim.rmsprop(0.1), optim.MultiSteps(optim.adam(0.1), 1),
               optim.apply_if_finite(optim.adam(0.1))]:
        state = tx.init(params)
        updates, state = tx.update(grads, state, params)
        new = optim.apply_updates(params, updates)
        assert new["frozen"] is None and new["w"].shape == (2,)
        assert np.all(new["w"] < 1.0)


def test_masked_line_search_with_compatible_extra_args():
    f = lambda p: fnp.sum(p["w"] ** 2) + fnp.sum(p["b"] ** 2)  # noqa: E731
    params = {"w": np.array([1.0, -1.0]), "b": np.array([3.0])}
    inner = optim.chain(optim.sgd(1.0), optim.scale_by_backtracking_linesearch(30))
    tx = optim.masked(inner, {"w": True, "b": False}, mask_compatible_extra_args=True)
    value, grad = fn.value_and_grad(f)(params)
    masked_f = lambda p: fnp.sum(p["w"] ** 2)  # noqa: E731 - the objective seen by the mask
    u, _ = tx.update(grad, tx.init(params), params, value=masked_f(params), grad=grad,
                     value_fn=masked_f)
    new_w = optim.apply_updates(params, u)["w"]
    np.testing.assert_allclose(new_w, [-0.6, 0.6])   # first trial (step 1) fails, 0.8 is taken
    np.testing.assert_allclose(u["b"], grad["b"])   # passed through unchanged
