"""Everything under ``jit`` and ``vmap``: the same numbers as eager, states whose dtypes and
shapes never change (no re-trace), ``vmap`` over hyper-parameters, gradients through an
update."""

from __future__ import annotations

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import optim
from funcnet.testing import assert_traces

RNG = np.random.default_rng(0)
PARAMS = {"a": RNG.standard_normal((3, 4)).astype(np.float32),
          "b": [RNG.standard_normal(5).astype(np.float32), np.float32(0.5) * np.ones((),
                                                                                 np.float32)]}


def loss(p):
    return sum(fnp.sum((x - 0.3) ** 2) for x in fn.tree.leaves(p))


SCHED = optim.warmup_cosine_decay_schedule(0.0, 0.1, 3, 40)

OPTIMIZERS = {
    "adamw+clip": lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(SCHED)),
    "sgd_nesterov": lambda: optim.sgd(SCHED, 0.9, nesterov=True),
    "rmsprop_centered": lambda: optim.rmsprop(0.01, centered=True, momentum=0.9),
    "adagrad": lambda: optim.adagrad(0.1),
    "lamb": lambda: optim.lamb(0.01, weight_decay=0.1),
    "lion": lambda: optim.lion(0.01),
    "nadam": lambda: optim.nadam(0.01),
    "inject_hyperparams": lambda: optim.inject_hyperparams(optim.adamw)(learning_rate=SCHED,
                                                                        weight_decay=0.1),
    "masked_by_path": lambda: optim.masked(optim.adam(0.1),
                                           optim.by_path(lambda path, x: path.startswith("a"))),
    "multi_transform": lambda: optim.multi_transform(
        {"x": optim.adam(0.1), "y": optim.sgd(0.1)}, {"a": "x", "b": "y"}),
    "apply_if_finite": lambda: optim.apply_if_finite(optim.adam(0.1), 3),
    "multisteps": lambda: optim.MultiSteps(optim.adam(0.1), 3),
    "ema": lambda: optim.chain(optim.ema(0.9), optim.scale(-0.1)),
    "clip_skip": lambda: optim.chain(optim.clip_by_global_norm(1.0, nonfinite="skip"),
                                     optim.sgd(0.1)),
    "scheduled_weight_decay": lambda: optim.adamw(0.01, weight_decay=SCHED),
    "lbfgs_fixed_step": lambda: optim.lbfgs(0.1, linesearch=None),
    "newton_cg": lambda: optim.newton_cg(loss, cg_iters=3),
}


def signature(state):
    return [(np.shape(x), np.asarray(x).dtype) for x in fn.tree.leaves(state)], \
        fn.tree.structure(state)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jit_matches_eager_and_never_retraces(name):
    tx = OPTIMIZERS[name]()

    @fn.jit
    def step(params, state):
        updates, state = tx.update(fn.grad(loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    params, state = PARAMS, tx.init(PARAMS)
    first = signature(state)
    params, state = step(params, state)
    assert signature(state) == first, "the state changed dtype, shape or structure"
    with assert_traces(step, 0):
        for _ in range(5):
            params, state = step(params, state)
    assert signature(state) == first

    eager_p, eager_s = PARAMS, tx.init(PARAMS)
    for _ in range(6):
        updates, eager_s = tx.update(fn.grad(loss)(eager_p), eager_s, eager_p)
        eager_p = optim.apply_updates(eager_p, updates)
    for x, y in zip(fn.tree.leaves((params, state)), fn.tree.leaves((eager_p, eager_s))):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
        assert np.asarray(x).dtype == np.asarray(y).dtype


def test_init_under_jit_gives_the_same_state():
    tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(0.1))
    jitted = fn.jit(tx.init)(PARAMS)
    assert signature(jitted) == signature(tx.init(PARAMS))


def test_lbfgs_with_zoom_line_search_under_jit():
    rosen = lambda w: 100.0 * (w[1] - w[0] ** 2) ** 2 + (1.0 - w[0]) ** 2  # noqa: E731
    tx = optim.lbfgs()

    @fn.jit
    def step(w, state):
        value, grad = fn.value_and_grad(rosen)(w)
        u, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=rosen)
        return optim.apply_updates(w, u), state

    w, state = np.array([-1.2, 1.0]), tx.init(np.zeros(2))
    w, state = step(w, state)
    with assert_traces(step, 0):
        for _ in range(44):
            w, state = step(w, state)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-6)


def train(tx, steps=5):
    params = np.array([1.0, -2.0])
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(fn.grad(lambda p: fnp.sum(p ** 2))(params), state, params)
        params = optim.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("make", [optim.sgd, optim.adam, optim.adamw, optim.rmsprop,
                                  optim.lamb, optim.lion, optim.adagrad, optim.nadam,
                                  lambda lr: optim.sgd(lr, momentum=0.9)],
                         ids=["sgd", "adam", "adamw", "rmsprop", "lamb", "lion", "adagrad",
                              "nadam", "momentum"])
def test_vmap_over_the_learning_rate(make):
    lrs = np.array([0.01, 0.1, 0.3])
    batched = fn.vmap(lambda lr: train(make(lr)))(lrs)
    looped = np.stack([train(make(float(lr))) for lr in lrs])
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)


def test_vmap_over_other_hyperparameters():
    b1s = np.array([0.5, 0.9])
    batched = fn.vmap(lambda b1: train(optim.adam(0.1, b1=b1)))(b1s)
    looped = np.stack([train(optim.adam(0.1, b1=float(b))) for b in b1s])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)
    norms = np.array([0.5, 5.0])
    batched = fn.vmap(lambda m: train(optim.chain(optim.clip_by_global_norm(m),
                                                  optim.sgd(0.1))))(norms)
    looped = np.stack([train(optim.chain(optim.clip_by_global_norm(float(m)), optim.sgd(0.1)))
                       for m in norms])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)


def test_vmap_over_injected_hyperparameter_state():
    tx = optim.inject_hyperparams(optim.adam)(learning_rate=0.1)
    params = np.array([1.0, -2.0])
    state = tx.init(params)
    lrs = np.array([0.01, 0.1, 0.5])
    states = fn.vmap(lambda lr: optim.set(state, "learning_rate", lr))(lrs)
    step = fn.jit(fn.vmap(lambda s: tx.update(2 * params, s, params)))
    updates, states = step(states)
    for i, lr in enumerate(lrs):
        ref = optim.inject_hyperparams(optim.adam)(learning_rate=float(lr))
        u, _ = ref.update(2 * params, ref.init(params), params)
        np.testing.assert_allclose(updates[i], u, rtol=1e-12)


def test_vmap_over_parameter_batches():
    tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1))
    batch = np.stack([np.array([1.0, 2.0]), np.array([0.1, 0.0]), np.array([3.0, -4.0])])

    def one(p):
        u, _ = tx.update(p, tx.init(p), p)
        return u

    np.testing.assert_allclose(fn.vmap(one)(batch), np.stack([one(p) for p in batch]),
                               rtol=1e-12)


def test_gradient_through_an_update_is_finite():
    # meta-gradient of the loss after one adam step w.r.t. the learning rate (eps_root > 0
    # keeps sqrt away from 0, as optax documents)
    def after_step(lr):
        tx = optim.adam(lr, eps_root=1e-8)
        p = np.array([1.0, -2.0])
        u, _ = tx.update(2 * p, tx.init(p), p)
        return fnp.sum(optim.apply_updates(p, u) ** 2)

    g = fn.grad(after_step)(0.1)
    assert np.isfinite(g) and g < 0
    eps = 1e-6
    np.testing.assert_allclose(g, (after_step(0.1 + eps) - after_step(0.1 - eps)) / (2 * eps),
                               rtol=1e-5)
