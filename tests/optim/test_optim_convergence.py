"""Every alias converges on toy problems; the second-order methods in a stated number of steps.

Problems (float64): a 5-D convex quadratic, L2-regularised logistic regression
on 200 synthetic points, and the Rosenbrock function from (-1.2, 1).
"""

from __future__ import annotations

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import optim

RNG = np.random.default_rng(0)
_Q = RNG.standard_normal((5, 5))
A = _Q @ _Q.T / 5 + 0.5 * np.eye(5)
C = RNG.standard_normal(5)
X = RNG.standard_normal((200, 4))
Y = (X @ np.array([1.5, -2.0, 0.5, 1.0]) + 0.3 * RNG.standard_normal(200) > 0).astype(float)


def quadratic(w):
    return 0.5 * (w - C) @ A @ (w - C)


def logistic(p, x=X, y=Y):
    z = x @ p["w"] + p["b"]
    return fnp.mean(fnp.logaddexp(0.0, z) - y * z) + 1e-2 * fnp.sum(p["w"] ** 2)


def rosenbrock(w):
    return 100.0 * (w[1] - w[0] ** 2) ** 2 + (1.0 - w[0]) ** 2


def logistic_start():
    return {"w": np.zeros(4), "b": np.zeros(())}


def minimise(tx, f, w, steps):
    @fn.jit
    def step(w, s):
        u, s = tx.update(fn.grad(f)(w), s, w)
        return optim.apply_updates(w, u), s

    state = tx.init(w)
    for _ in range(steps):
        w, state = step(w, state)
    return w


def logistic_optimum():
    p = logistic_start()
    tx = optim.newton(logistic)
    state = tx.init(p)
    for _ in range(12):
        u, state = tx.update(fn.grad(logistic)(p), state, p)
        p = optim.apply_updates(p, u)
    return float(logistic(p)), p


LOGISTIC_MIN, LOGISTIC_ARGMIN = logistic_optimum()


def cos(lr, steps=500):
    return optim.cosine_decay_schedule(lr, steps)


# alias, quadratic tolerance on |w - argmin|, logistic tolerance on loss - min
ALIASES = {
    "sgd": (lambda: optim.sgd(0.3), 1e-10, 1e-6),
    "sgd_momentum": (lambda: optim.sgd(0.1, momentum=0.9), 1e-10, 1e-8),
    "sgd_nesterov": (lambda: optim.sgd(0.1, momentum=0.9, nesterov=True), 1e-10, 1e-8),
    "adam": (lambda: optim.adam(0.05), 1e-8, 1e-8),
    "adamw": (lambda: optim.adamw(0.05, weight_decay=0.0), 1e-8, 1e-8),
    "nadam": (lambda: optim.nadam(0.05), 1e-8, 1e-8),
    "rmsprop": (lambda: optim.rmsprop(cos(0.02)), 1e-8, 1e-8),
    "adagrad": (lambda: optim.adagrad(0.5), 1e-8, 1e-8),
    "lamb": (lambda: optim.lamb(cos(0.05)), 1e-3, 1e-4),
    "lion": (lambda: optim.lion(cos(0.03), weight_decay=0.0), 1e-3, 1e-3),
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_alias_converges_on_quadratic_and_logistic_regression(name):
    make, tol_quad, tol_logistic = ALIASES[name]
    w = minimise(make(), quadratic, np.zeros(5), 500)
    assert np.max(np.abs(w - C)) < tol_quad, name
    p = minimise(make(), logistic, logistic_start(), 500)
    assert float(logistic(p)) - LOGISTIC_MIN < tol_logistic, name


@pytest.mark.parametrize("make", [lambda: optim.adam(0.05),
                                  lambda: optim.adamw(0.05, weight_decay=0.0),
                                  lambda: optim.nadam(cos(0.05, 3000))],
                         ids=["adam", "adamw", "nadam"])
def test_adam_family_reaches_rosenbrock_minimum(make):
    w = minimise(make(), rosenbrock, np.array([-1.2, 1.0]), 3000)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-3)


def test_newton_solves_a_quadratic_in_one_step():
    w = np.zeros(5)
    tx = optim.newton(quadratic)
    u, _ = tx.update(fn.grad(quadratic)(w), tx.init(w), w)
    np.testing.assert_allclose(optim.apply_updates(w, u), C, rtol=1e-12, atol=1e-12)


def test_newton_on_a_pytree_with_data_arguments():
    p = logistic_start()
    tx = optim.newton(logistic, damping=0.0)
    state = tx.init(p)
    for _ in range(8):
        u, state = tx.update(fn.grad(logistic)(p, X, Y), state, p, x=X, y=Y)
        p = optim.apply_updates(p, u)
    np.testing.assert_allclose(p["w"], LOGISTIC_ARGMIN["w"], atol=1e-10)


def descend(tx, f, w, steps, line_search=True):
    """Run ``tx`` from ``w``; return (w, number of steps until |w - 1| < 1e-6 or None)."""
    state = tx.init(w)
    reached = None
    for i in range(steps):
        value, grad = fn.value_and_grad(f)(w)
        if line_search:
            u, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
        else:
            u, state = tx.update(grad, state, w)
        w = optim.apply_updates(w, u)
        if reached is None and np.max(np.abs(w - 1.0)) < 1e-6:
            reached = i + 1
    return w, reached


# stated step budgets for Rosenbrock from (-1.2, 1) to |w - (1, 1)| < 1e-6
@pytest.mark.parametrize("name,make,budget,line_search", [
    ("newton", lambda: optim.newton(rosenbrock), 10, False),
    ("newton_cg", lambda: optim.newton_cg(rosenbrock, cg_iters=10), 10, False),
    ("newton_cg_backtracking",
     lambda: optim.newton_cg(rosenbrock, cg_iters=10, linesearch="backtracking"), 25, False),
    ("lbfgs_zoom", lambda: optim.lbfgs(), 45, True),
    ("lbfgs_backtracking", lambda: optim.lbfgs(linesearch="backtracking"), 60, True),
])
def test_second_order_reaches_rosenbrock_minimum(name, make, budget, line_search):
    w, reached = descend(make(), rosenbrock, np.array([-1.2, 1.0]), budget, line_search)
    assert reached is not None and reached <= budget, (name, w, reached)


def test_newton_cg_never_materialises_the_hessian():
    # 2,000 parameters: a dense Hessian would be 4M entries; CG needs only HVPs.
    n = 2000
    d = np.linspace(1.0, 10.0, n)

    def f(w):
        return 0.5 * fnp.sum(d * w * w) + 0.1 * fnp.sum(w ** 4) - fnp.sum(w)

    tx = optim.newton_cg(f, cg_iters=50, tol=1e-10)
    w = np.zeros(n)
    state = tx.init(w)
    for _ in range(6):
        u, state = tx.update(fn.grad(f)(w), state, w)
        w = optim.apply_updates(w, u)
    assert float(np.max(np.abs(fn.grad(f)(w)))) < 1e-8
    assert 0 < int(optim.get(state, "cg_iterations")) <= 50


def test_newton_cg_negative_curvature_falls_back_to_the_gradient():
    f = lambda w: -fnp.sum(w ** 2)  # noqa: E731 - concave: H = -2I
    w = np.array([1.0, -1.0])
    tx = optim.scale_by_newton_cg(f)
    g = fn.grad(f)(w)
    u, state = tx.update(g, tx.init(w), w)
    np.testing.assert_array_equal(u, g)
    assert int(state.cg_iterations) == 1


def test_lbfgs_value_and_grad_from_state_saves_evaluations():
    tx = optim.lbfgs()
    vg = optim.value_and_grad_from_state(rosenbrock)
    w = np.array([-1.2, 1.0])
    state = tx.init(w)
    for i in range(45):
        value, grad = vg(w, state=state)
        if i:  # reused from the line search, not recomputed
            assert value is optim.get(state, "value") and grad is optim.get(state, "grad")
            np.testing.assert_allclose(value, rosenbrock(w), rtol=1e-8, atol=1e-14)
            np.testing.assert_allclose(grad, fn.grad(rosenbrock)(w), rtol=1e-9, atol=1e-12)
        u, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=rosenbrock)
        w = optim.apply_updates(w, u)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-6)
    assert bool(optim.get(state, "success"))


def test_lbfgs_without_line_search_matches_fixed_steps_on_quadratic():
    w = minimise(optim.lbfgs(learning_rate=0.5, linesearch=None), quadratic, np.zeros(5), 200)
    np.testing.assert_allclose(w, C, atol=1e-8)


def test_backtracking_line_search_guarantees_decrease():
    tx = optim.chain(optim.sgd(1.0), optim.scale_by_backtracking_linesearch(40))
    w = np.array([-1.2, 1.0])
    state = tx.init(w)
    values = [float(rosenbrock(w))]
    for _ in range(20):
        value, grad = fn.value_and_grad(rosenbrock)(w)
        u, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=rosenbrock)
        w = optim.apply_updates(w, u)
        values.append(float(rosenbrock(w)))
        assert float(optim.get(state, "value")) == pytest.approx(values[-1])
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert values[-1] < values[0]


def test_line_search_passes_data_arguments_to_value_fn():
    tx = optim.lbfgs()
    p = logistic_start()
    state = tx.init(p)
    for _ in range(15):
        value, grad = fn.value_and_grad(logistic)(p, X, Y)
        u, state = tx.update(grad, state, p, value=value, grad=grad, value_fn=logistic,
                             x=X, y=Y)
        p = optim.apply_updates(p, u)
    assert float(logistic(p)) - LOGISTIC_MIN < 1e-10


def test_line_search_needs_value_fn():
    tx = optim.lbfgs()
    w = np.zeros(2)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(w, tx.init(w), w)
