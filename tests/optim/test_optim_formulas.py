"""Every transform and alias against its published formula, written here in plain NumPy.

Random float64 pytrees, 25 steps, whole parameter trajectories compared.  The
references are deliberately naive (one leaf at a time, the formula as printed
in the papers / optax's docs), so they check the arithmetic independently of
funcnet's implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

import funcnet as fn
from funcnet import optim

STEPS = 25
LR = 0.05


def random_tree(seed: int):
    rng = np.random.default_rng(seed)
    if seed % 2:
        return {"dense": {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
                "scale": rng.standard_normal(())}
    return [rng.standard_normal(5), (rng.standard_normal((2, 2, 2)), rng.standard_normal(1))]


def gradient_sequence(params, seed: int):
    rng = np.random.default_rng(100 + seed)
    return [fn.tree.map(lambda x: rng.standard_normal(np.shape(x)) * 0.7, params)
            for _ in range(STEPS)]


def run_funcnet(tx, params, grads):
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optim.apply_updates(params, updates)
        out.append(fn.tree.leaves(params))
    return out


def run_reference(ref, params, grads):
    """``ref(leaves_g, leaves_p, memory, t) -> leaves of updates``; t counts from 1."""
    leaves = [np.array(x, dtype=np.float64) for x in fn.tree.leaves(params)]
    memory: dict = {}
    out = []
    for t, g in enumerate(grads, start=1):
        gl = [np.asarray(x, dtype=np.float64) for x in fn.tree.leaves(g)]
        updates = ref(gl, leaves, memory, t)
        leaves = [p + u for p, u in zip(leaves, updates)]
        out.append(leaves)
    return out


def per_leaf(fun):
    """Lift ``fun(g, p, mem, t) -> u`` over leaves, each leaf with its own memory dict."""
    def ref(gl, pl, memory, t):
        return [fun(g, p, memory.setdefault(i, {}), t) for i, (g, p) in enumerate(zip(gl, pl))]
    return ref


# ---------------------------------------------------------------------------
# references


def ref_sgd(lr, momentum=None, nesterov=False):
    def f(g, p, m, t):
        if momentum is None:
            return -lr * g
        m["v"] = g + momentum * m.get("v", 0.0)
        return -lr * (g + momentum * m["v"]) if nesterov else -lr * m["v"]
    return per_leaf(f)


def adam_direction(g, m, t, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    m["m"] = b1 * m.get("m", 0.0) + (1 - b1) * g
    m["v"] = b2 * m.get("v", 0.0) + (1 - b2) * g * g
    if nesterov:
        m_hat = b1 * m["m"] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
    else:
        m_hat = m["m"] / (1 - b1 ** t)
    v_hat = m["v"] / (1 - b2 ** t)
    return m_hat / (np.sqrt(v_hat + eps_root) + eps)


def ref_adam(lr, nesterov=False, eps_root=0.0, weight_decay=0.0, sched=None):
    def f(g, p, m, t):
        rate = lr if sched is None else sched(t - 1)
        d = adam_direction(g, m, t, eps_root=eps_root, nesterov=nesterov)
        return -rate * (d + weight_decay * p)
    return per_leaf(f)


def ref_rmsprop(lr, decay=0.9, eps=1e-8, centered=False, momentum=None, initial_scale=0.0):
    def f(g, p, m, t):
        m["v"] = decay * m.get("v", initial_scale) + (1 - decay) * g * g
        if centered:
            m["a"] = decay * m.get("a", 0.0) + (1 - decay) * g
            u = -lr * g / np.sqrt(m["v"] - m["a"] ** 2 + eps)
        else:
            u = -lr * g / np.sqrt(m["v"] + eps)
        if momentum is not None:
            m["tr"] = u + momentum * m.get("tr", 0.0)
            u = m["tr"]
        return u
    return per_leaf(f)


def ref_adagrad(lr, init=0.1, eps=1e-7):
    def f(g, p, m, t):
        m["s"] = m.get("s", init) + g * g
        return -lr * g / np.sqrt(m["s"] + eps)
    return per_leaf(f)


def ref_lion(lr, b1=0.9, b2=0.99, weight_decay=1e-3):
    def f(g, p, m, t):
        mu = m.get("m", 0.0)
        u = np.sign((1 - b1) * g + b1 * mu) + weight_decay * p
        m["m"] = b2 * mu + (1 - b2) * g
        return -lr * u
    return per_leaf(f)


def ref_lamb(lr, weight_decay=0.1, eps=1e-6):
    def f(g, p, m, t):
        r = adam_direction(g, m, t, eps=eps) + weight_decay * p
        pn, rn = np.linalg.norm(p.ravel()), np.linalg.norm(r.ravel())
        ratio = 1.0 if pn == 0 or rn == 0 else pn / rn
        return -lr * ratio * r
    return per_leaf(f)


def ref_clip_global_then(inner, max_norm):
    def ref(gl, pl, memory, t):
        norm = np.sqrt(sum(np.sum(g * g) for g in gl))
        if norm >= max_norm:
            gl = [g * (max_norm / norm) for g in gl]
        return inner(gl, pl, memory, t)
    return ref


def ref_clip(delta):
    return per_leaf(lambda g, p, m, t: -LR * np.clip(g, -delta, delta))


def ref_ema(decay, debias=True):
    def f(g, p, m, t):
        m["e"] = decay * m.get("e", 0.0) + (1 - decay) * g
        return -LR * (m["e"] / (1 - decay ** t) if debias else m["e"])
    return per_leaf(f)


def ref_multisteps(k, inner):
    def ref(gl, pl, memory, t):
        acc = memory.setdefault("acc", [])
        acc.append(gl)
        if len(acc) < k:
            return [np.zeros_like(g) for g in gl]
        mean = [np.mean(np.stack(xs), axis=0) for xs in zip(*acc)]
        acc.clear()
        memory["n"] = memory.get("n", 0) + 1
        return inner(mean, pl, memory.setdefault("inner", {}), memory["n"])
    return ref


def schedule_ref(n):
    return 0.1 * 0.95 ** n


CASES = {
    "sgd": (lambda: optim.sgd(LR), ref_sgd(LR)),
    "sgd_momentum": (lambda: optim.sgd(LR, momentum=0.9), ref_sgd(LR, 0.9)),
    "sgd_nesterov": (lambda: optim.sgd(LR, momentum=0.9, nesterov=True),
                     ref_sgd(LR, 0.9, True)),
    "adam": (lambda: optim.adam(LR), ref_adam(LR)),
    "adam_eps_root": (lambda: optim.adam(LR, eps_root=1e-6), ref_adam(LR, eps_root=1e-6)),
    "adam_schedule": (lambda: optim.adam(optim.exponential_decay(0.1, 1, 0.95)),
                      ref_adam(None, sched=schedule_ref)),
    "nadam": (lambda: optim.nadam(LR), ref_adam(LR, nesterov=True)),
    "adamw": (lambda: optim.adamw(LR, weight_decay=0.1), ref_adam(LR, weight_decay=0.1)),
    "rmsprop": (lambda: optim.rmsprop(LR), ref_rmsprop(LR)),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(LR, centered=True, momentum=0.5, initial_scale=0.3),
        ref_rmsprop(LR, centered=True, momentum=0.5, initial_scale=0.3)),
    "adagrad": (lambda: optim.adagrad(LR), ref_adagrad(LR)),
    "lion": (lambda: optim.lion(LR), ref_lion(LR)),
    "lamb": (lambda: optim.lamb(LR, weight_decay=0.1), ref_lamb(LR)),
    "clip": (lambda: optim.chain(optim.clip(0.5), optim.sgd(LR)), ref_clip(0.5)),
    "clip_by_global_norm": (lambda: optim.chain(optim.clip_by_global_norm(2.0), optim.adam(LR)),
                            ref_clip_global_then(ref_adam(LR), 2.0)),
    "ema": (lambda: optim.chain(optim.ema(0.8), optim.scale(-LR)), ref_ema(0.8)),
    "ema_no_debias": (lambda: optim.chain(optim.ema(0.8, debias=False), optim.scale(-LR)),
                      ref_ema(0.8, debias=False)),
    "trace": (lambda: optim.chain(optim.trace(0.7), optim.scale_by_learning_rate(LR)),
              ref_sgd(LR, 0.7)),
    "add_decayed_weights": (lambda: optim.chain(optim.add_decayed_weights(0.3),
                                                optim.scale_by_learning_rate(LR)),
                            per_leaf(lambda g, p, m, t: -LR * (g + 0.3 * p))),
    "scale_by_schedule": (lambda: optim.scale_by_schedule(lambda n: -0.1 * 0.95 ** n),
                          per_leaf(lambda g, p, m, t: -schedule_ref(t - 1) * g)),
    "multisteps": (lambda: optim.MultiSteps(optim.adam(LR), 3),
                   ref_multisteps(3, lambda gl, pl, mem, t: [
                       -LR * adam_direction(g, mem.setdefault(i, {}), t)
                       for i, g in enumerate(gl)])),
    "apply_if_finite": (lambda: optim.apply_if_finite(optim.adam(LR)), ref_adam(LR)),
    "inject_hyperparams": (lambda: optim.inject_hyperparams(optim.adam)(
                               learning_rate=optim.exponential_decay(0.1, 1, 0.95)),
                           ref_adam(None, sched=schedule_ref)),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_matches_published_formula(name, seed):
    make, ref = CASES[name]
    params = random_tree(seed)
    grads = gradient_sequence(params, seed)
    ours = run_funcnet(make(), params, grads)
    theirs = run_reference(ref, params, grads)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            assert np.asarray(x).dtype == np.float64
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}: step {step + 1}")


def test_scale_by_rms_variants():
    g = np.array([0.5, -2.0, 0.0])
    cases = [
        (dict(), lambda v, t: g / np.sqrt(v + 1e-8)),
        (dict(eps_in_sqrt=False), lambda v, t: g / (np.sqrt(v) + 1e-8)),
        (dict(bias_correction=True, eps_in_sqrt=False),
         lambda v, t: g / (np.sqrt(v / (1 - 0.9 ** t)) + 1e-8)),
    ]
    for kw, formula in cases:
        tx = optim.scale_by_rms(**kw)
        state, v = tx.init(g), np.zeros(3)
        for t in range(1, 6):
            u, state = tx.update(g, state)
            v = 0.9 * v + 0.1 * g * g
            np.testing.assert_allclose(u, formula(v, t), rtol=1e-12, err_msg=str(kw))


def test_scale_by_stddev_bias_corrected():
    rng = np.random.default_rng(3)
    tx = optim.scale_by_stddev(decay=0.8, bias_correction=True)
    state, m, v = tx.init(np.zeros(2)), np.zeros(2), np.zeros(2)
    for t in range(1, 8):
        g = rng.standard_normal(2)
        u, state = tx.update(g, state)
        m, v = 0.8 * m + 0.2 * g, 0.8 * v + 0.2 * g * g
        mh, vh = m / (1 - 0.8 ** t), v / (1 - 0.8 ** t)
        if t > 1:  # at t = 1 the estimated variance is 0 up to rounding
            np.testing.assert_allclose(u, g / np.sqrt(vh - mh ** 2 + 1e-8), rtol=1e-7)
        assert int(state.count) == t


def test_scale_by_trust_ratio_zero_norms():
    tx = optim.scale_by_trust_ratio()
    p = {"zero": np.zeros(2), "w": np.array([3.0, 4.0])}
    u = {"zero": np.array([1.0, 1.0]), "w": np.array([0.0, 0.0])}
    out, _ = tx.update(u, tx.init(p), p)
    np.testing.assert_array_equal(out["zero"], [1.0, 1.0])   # ||p|| = 0: ratio 1
    np.testing.assert_array_equal(out["w"], [0.0, 0.0])      # ||u|| = 0: ratio 1, no NaN


def test_float32_and_float16_params_keep_their_dtypes():
    params = {"a": np.ones(3, np.float32), "h": np.ones(2, np.float16)}
    grads = fn.tree.map(lambda x: x * 0.1, params)
    for tx in [optim.adam(0.1), optim.sgd(0.1, 0.9), optim.lamb(0.1), optim.rmsprop(0.1),
               optim.adagrad(0.1), optim.lion(0.1), optim.adamw(0.1)]:
        state = tx.init(params)
        for _ in range(3):
            updates, new_state = tx.update(grads, state, params)
            params2 = optim.apply_updates(params, updates)
            assert {k: v.dtype for k, v in params2.items()} == {"a": np.float32,
                                                                 "h": np.float16}
            before = [(np.shape(x), np.asarray(x).dtype) for x in fn.tree.leaves(state)]
            after = [(np.shape(x), np.asarray(x).dtype) for x in fn.tree.leaves(new_state)]
            assert before == after, tx
            state = new_state


def test_mu_dtype_and_accumulator_dtype():
    params = np.ones(3, np.float32)
    state = optim.adam(0.1, mu_dtype=np.float16).init(params)
    assert state[0].mu.dtype == np.float16 and state[0].nu.dtype == np.float32
    tx = optim.sgd(0.1, momentum=0.9, accumulator_dtype=np.float64)
    u, state = tx.update(params, tx.init(params), params)
    assert state[0].trace.dtype == np.float64
    tx = optim.MultiSteps(optim.sgd(0.1), 2, accumulator_dtype=np.float64)
    assert tx.init(params).acc_grads.dtype == np.float64
    assert optim.MultiSteps(optim.sgd(0.1), 2).init(np.ones(2)).acc_grads.dtype == np.float64
