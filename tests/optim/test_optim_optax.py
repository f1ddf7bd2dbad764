"""Trajectories against optax itself, when optax (and JAX) happen to be installed.

Optional: skipped without optax, never a dependency.  JAX runs with 64-bit
floats here so that the comparison is of the arithmetic, not of float32
rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

import funcnet as fn  # noqa: E402
from funcnet import optim  # noqa: E402

STEPS = 25
RNG = np.random.default_rng(0)
PARAMS = {"a": RNG.standard_normal((3, 4)), "b": [RNG.standard_normal(5), RNG.standard_normal(())]}
GRADS = [fn.tree.map(lambda x: RNG.standard_normal(np.shape(x)), PARAMS) for _ in range(STEPS)]


def sched(n):
    return 0.1 * 0.9 ** n


def to_jax(tree):
    return jax.tree.map(jnp.asarray, tree)


def compare(ours, theirs, grads=None, rtol=1e-10):
    grads = GRADS if grads is None else grads
    p1, p2 = PARAMS, to_jax(PARAMS)
    s1, s2 = ours.init(p1), theirs.init(p2)
    for step, g in enumerate(grads):
        u1, s1 = ours.update(g, s1, p1)
        u2, s2 = theirs.update(to_jax(g), s2, p2)
        p1, p2 = optim.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        for x, y in zip(fn.tree.leaves(p1), jax.tree.leaves(p2)):
            np.testing.assert_allclose(x, np.asarray(y), rtol=rtol, atol=1e-13,
                                       err_msg=f"step {step + 1}")


CASES = {
    "sgd": lambda o: o.sgd(0.1),
    "sgd_momentum": lambda o: o.sgd(0.1, 0.9),
    "sgd_nesterov_schedule": lambda o: o.sgd(sched, 0.9, nesterov=True),
    "adam": lambda o: o.adam(0.01),
    "adam_schedule_eps_root": lambda o: o.adam(sched, eps_root=1e-8),
    "nadam": lambda o: o.nadam(0.01),
    "adamw": lambda o: o.adamw(0.01, weight_decay=0.1),
    "adamw_scheduled_decay": lambda o: o.adamw(0.01, weight_decay=sched),
    "rmsprop": lambda o: o.rmsprop(0.01),
    "rmsprop_centered": lambda o: o.rmsprop(0.01, centered=True, momentum=0.9,
                                            eps_in_sqrt=False, bias_correction=True,
                                            initial_scale=0.1),
    "rmsprop_nesterov": lambda o: o.rmsprop(0.01, bias_correction=True, momentum=0.5,
                                            nesterov=True),
    "adagrad": lambda o: o.adagrad(0.1),
    "lamb": lambda o: o.lamb(0.01, weight_decay=0.1),
    "lion": lambda o: o.lion(0.001),
    "clip": lambda o: o.chain(o.clip(0.5), o.sgd(0.1)),
    "clip_by_global_norm": lambda o: o.chain(o.clip_by_global_norm(2.0), o.adam(0.1)),
    "ema": lambda o: o.chain(o.ema(0.9), o.scale(-0.1)),
    "ema_no_debias": lambda o: o.chain(o.ema(0.9, debias=False), o.scale(-0.1)),
    "stddev": lambda o: o.chain(o.scale_by_stddev(), o.scale(-0.01)),
    "trace": lambda o: o.chain(o.trace(0.7, nesterov=True), o.scale(-0.1)),
    "scale_by_schedule": lambda o: o.scale_by_schedule(sched),
    "trust_ratio": lambda o: o.chain(o.scale_by_trust_ratio(0.1, 0.5, 1e-3), o.scale(-0.1)),
    "inject_hyperparams": lambda o: o.inject_hyperparams(o.adam)(learning_rate=sched, b1=0.8),
    "masked": lambda o: o.masked(o.adam(0.1), {"a": True, "b": False}),
    "multi_transform": lambda o: o.multi_transform({"x": o.adam(0.1), "y": o.sgd(0.1, 0.9)},
                                                   {"a": "x", "b": ["y", "x"]}),
    "apply_if_finite": lambda o: o.apply_if_finite(o.adam(0.1), 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_trajectory_as_optax(name):
    compare(CASES[name](optim), CASES[name](optax))


def test_multisteps_same_as_optax():
    compare(optim.MultiSteps(optim.adam(0.1), 3),
            optax.MultiSteps(optax.adam(0.1), 3, accumulator_dtype=jnp.float64))


def test_lbfgs_same_as_optax_on_a_convex_problem():
    q = RNG.standard_normal((5, 5))
    a = q @ q.T + np.eye(5)

    def f(w):
        return 0.5 * w @ a @ w + 0.1 * (w ** 4).sum()

    cases = [(optim.lbfgs(0.05, memory_size=3, linesearch=None),
              optax.lbfgs(0.05, memory_size=3, linesearch=None), 1.0),
             (optim.scale_by_lbfgs(4, scale_init_precond=False),
              optax.scale_by_lbfgs(4, scale_init_precond=False), -0.05)]
    for ours, theirs, step in cases:
        w1 = w2 = np.ones(5)
        s1, s2 = ours.init(w1), theirs.init(jnp.asarray(w2))
        for _ in range(12):
            u1, s1 = ours.update(fn.grad(f)(w1), s1, w1)
            u2, s2 = theirs.update(jax.grad(f)(jnp.asarray(w2)), s2, jnp.asarray(w2))
            w1 = optim.apply_updates(w1, step * u1)
            w2 = np.asarray(optax.apply_updates(jnp.asarray(w2), step * u2))
            np.testing.assert_allclose(w1, w2, rtol=1e-9, atol=1e-12)


def test_schedules_same_as_optax():
    pairs = [
        ("constant_schedule", (0.3,), {}),
        ("linear_schedule", (1.0, 0.1, 10), {"transition_begin": 5}),
        ("polynomial_schedule", (1.0, 0.0, 2, 20), {}),
        ("exponential_decay", (2.0, 5, 0.5), {"staircase": True, "transition_begin": 3}),
        ("exponential_decay", (2.0, 5, 0.5), {"end_value": 0.7}),
        ("cosine_decay_schedule", (1.0, 20), {"alpha": 0.1, "exponent": 2.0}),
        ("warmup_cosine_decay_schedule", (0.0, 1.0, 10, 30), {"end_value": 0.1}),
        ("piecewise_constant_schedule", (1.0, {10: 0.5, 20: 0.1}), {}),
    ]
    for name, args, kwargs in pairs:
        ours, theirs = getattr(optim, name)(*args, **kwargs), getattr(optax, name)(*args,
                                                                                  **kwargs)
        for n in range(35):
            np.testing.assert_allclose(float(ours(np.int32(n))), float(theirs(jnp.int32(n))),
                                       rtol=1e-6, err_msg=f"{name} at {n}")  # JAX: int32 -> f32


def test_clip_by_global_norm_on_finite_gradients_same_as_optax():
    for max_norm in (0.1, 1.0, 100.0):
        ours, theirs = optim.clip_by_global_norm(max_norm), optax.clip_by_global_norm(max_norm)
        for g in GRADS[:5]:
            u1, _ = ours.update(g, ours.init(g))
            u2, _ = theirs.update(to_jax(g), theirs.init(to_jax(g)))
            for x, y in zip(fn.tree.leaves(u1), jax.tree.leaves(u2)):
                np.testing.assert_allclose(x, np.asarray(y), rtol=1e-13)
