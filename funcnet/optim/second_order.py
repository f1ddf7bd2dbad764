"""Second-order methods as gradient transformations: Newton, Newton-CG and L-BFGS.

They keep the ``GradientTransformation`` pattern: the incoming updates are
the gradient at ``params``, and whatever else a method needs arrives as extra
keyword arguments of ``update`` (optax's convention for L-BFGS):

- ``newton(loss_fn)`` and ``newton_cg(loss_fn)`` hold the objective;
  arguments of ``loss_fn`` beyond the params (a data batch, say) are passed
  to ``update`` by keyword: ``tx.update(g, state, params, x=x, y=y)`` calls
  ``loss_fn(params, x=x, y=y)``.
- ``lbfgs()`` and the line searches take ``value=`` (the objective at
  ``params``), ``grad=`` (its gradient) and ``value_fn=`` (the objective).
  When ``grad`` is omitted the incoming updates are used; when ``value`` is
  omitted it is computed with ``value_fn``.

The sign flip is, as everywhere, in ``scale_by_learning_rate``:
``scale_by_newton`` returns ``H^-1 g`` and the alias multiplies by ``-lr``.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import optim
>>> A = fnp.array([[3.0, 1.0], [1.0, 2.0]]); b = fnp.array([1.0, -1.0])
>>> loss = lambda w: 0.5 * w @ A @ w - b @ w
>>> tx = optim.newton(loss)
>>> w = fnp.zeros(2)
>>> u, _ = tx.update(fn.grad(loss)(w), tx.init(w), w)
>>> optim.apply_updates(w, u).round(4)          # the minimiser, in one step
array([ 0.6, -0.8], dtype=float32)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax
from funcnet.optim import _numerics as nx
from funcnet.optim.base import EmptyState, GradientTransformation, call_update, chain, identity
from funcnet.optim.linesearch import (fn_kwargs, scale_by_backtracking_linesearch,
                                      scale_by_zoom_linesearch)
from funcnet.optim.transforms import scale_by_learning_rate

__all__ = ["scale_by_newton", "newton", "ScaleByNewtonCGState", "scale_by_newton_cg",
           "newton_cg", "ScaleByLBFGSState", "scale_by_lbfgs", "lbfgs"]


def _real(x):
    return fnp.real(x) if nx.dtype_of(x).kind == "c" else x


def _linesearch(spec, who: str):
    """``None`` / ``"zoom"`` / ``"backtracking"`` / a transform -> a transform."""
    if spec is None:
        return identity()
    if spec == "zoom":
        return scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")
    if spec == "backtracking":
        return scale_by_backtracking_linesearch(max_backtracking_steps=30,
                                                increase_factor=math.inf)
    if isinstance(spec, str):
        raise ValueError(f"{who}: linesearch must be None, 'zoom', 'backtracking' or a "
                         f"transform, got {spec!r}")
    return spec


def _with_defaults(tx: GradientTransformation, loss_fn, name: str, hyperparams: dict,
                   children, search: bool) -> GradientTransformation:
    """``tx`` whose ``update`` fills in ``grad=`` (the updates), ``value_fn=`` (``loss_fn``)
    and ``value=`` when a line search needs them and the caller left them out."""
    def update(updates, state, params=None, **extra_args):
        if not search:
            return call_update(tx, updates, state, params, extra_args)
        extra = dict(extra_args)
        extra.setdefault("grad", updates)
        fun = extra.get("value_fn", loss_fn)
        if fun is not None:
            extra["value_fn"] = fun
            if "value" not in extra and params is not None:
                extra["value"] = fun(params, **fn_kwargs(fun, extra))
        return call_update(tx, updates, state, params, extra)

    out = GradientTransformation(tx.init, update, name=name, hyperparams=hyperparams,
                                 children=children, child_states=tx.child_states)
    out.compact = True
    return out


# ---------------------------------------------------------------------------
# Newton


def scale_by_newton(loss_fn, damping=0.0) -> GradientTransformation:
    """Precondition the gradient by the inverse Hessian: ``u = (H + damping I)^-1 g``.

    ``H`` is the full Hessian of ``loss_fn`` at ``params`` (``fn.hessian`` over
    all parameters raveled into one vector), so this is for small problems
    (a few thousand parameters).  Needs ``params``.  State: :class:`EmptyState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_newton(lambda w: fnp.sum(2.0 * w ** 2))
    >>> w = fnp.array([1.0, 3.0])
    >>> tx.update(4.0 * w, tx.init(w), w)[0]
    array([1., 3.], dtype=float32)
    """
    def init(params):
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_newton needs params: update(updates, state, params)")
        kw = fn_kwargs(loss_fn, extra_args)
        vec, unravel = nx.ravel_tree(params)
        g, unravel_g = nx.ravel_tree(updates)
        hess = fn.hessian(lambda v: loss_fn(unravel(v), **kw))(vec)
        hess = nx.cast(hess, nx.dtype_of(g))
        n = int(np.shape(vec)[0])
        if n == 0:
            return updates, state
        system = hess + damping * fnp.eye(n, dtype=nx.dtype_of(hess))
        step = fnp.linalg.solve(system, g)
        return unravel_g(step), state

    return GradientTransformation(init, update, name="scale_by_newton",
                                  hyperparams={"loss_fn": loss_fn, "damping": damping})


def newton(loss_fn, damping=0.0, learning_rate=1.0, linesearch=None) -> GradientTransformation:
    """Newton's method: ``u = -learning_rate * (H + damping I)^-1 g``, H the full Hessian.

    ``chain(scale_by_newton(loss_fn, damping), scale_by_learning_rate(learning_rate),
    linesearch)``.  A quadratic is solved in one step.  ``linesearch`` may be
    ``None`` (full steps), ``"backtracking"``, ``"zoom"`` or a line-search
    transform; the line search gets ``value_fn=loss_fn`` and ``grad=updates``
    unless given.  Data arguments of ``loss_fn`` are passed to ``update`` by
    keyword.  For small problems only (see :func:`newton_cg` otherwise).

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> loss = lambda w, x: fnp.sum((w - x) ** 2)
    >>> tx = optim.newton(loss)
    >>> w, x = fnp.zeros(2), fnp.array([1.0, 2.0])
    >>> u, _ = tx.update(fn.grad(loss)(w, x), tx.init(w), w, x=x)
    >>> optim.apply_updates(w, u)
    array([1., 2.], dtype=float32)
    """
    ls = _linesearch(linesearch, "newton")
    inner = chain(scale_by_newton(loss_fn, damping), scale_by_learning_rate(learning_rate), ls)
    return _with_defaults(inner, loss_fn, "newton",
                          {"damping": damping, "learning_rate": learning_rate}, inner.children,
                          linesearch is not None)


# ---------------------------------------------------------------------------
# Newton-CG


class ScaleByNewtonCGState(NamedTuple):
    """``cg_iterations``: conjugate-gradient iterations used by the last step (int32).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_newton_cg(fnp.sum).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByNewtonCGState', ('cg_iterations',))
    """

    cg_iterations: Any


def scale_by_newton_cg(loss_fn, damping=0.0, cg_iters: int = 20, tol=1e-5
                       ) -> GradientTransformation:
    """Approximately solve ``(H + damping I) u = g`` by conjugate gradient, Hessian-free.

    Each CG iteration needs one Hessian-vector product, computed as the
    ``jvp`` of ``grad(loss_fn)`` -- the Hessian is never formed.  CG stops
    after ``cg_iters`` iterations, when ``||r|| <= tol * ||g||``, or on
    non-positive curvature (then the current iterate is returned, or ``g``
    itself if that happens at the first iteration, as in Nocedal & Wright's
    algorithm 7.1).  State: :class:`ScaleByNewtonCGState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_newton_cg(lambda w: fnp.sum(2.0 * w ** 2))
    >>> w = fnp.array([1.0, 3.0])
    >>> tx.update(4.0 * w, tx.init(w), w)[0]
    array([1., 3.], dtype=float32)
    """
    max_iters = int(cg_iters)

    def init(params):
        return ScaleByNewtonCGState(cg_iterations=nx.zeros_count())

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_newton_cg needs params: update(updates, state, params)")
        kw = fn_kwargs(loss_fn, extra_args)
        gradient = fn.grad(lambda p: loss_fn(p, **kw))

        def hvp(v):
            hv = fn.jvp(gradient, (params,), (nx.tree_cast_like(v, params),))[1]
            return nx.tree_cast_like(nx.tree_add_scale(hv, damping, v), v)

        b = updates
        dt = nx.float_dtype(b)
        bb = nx.cast(_real(nx.tree_vdot(b, b)), dt)
        threshold = (tol * tol) * bb

        def cond(c):
            x, r, p, rr, i, stop = c
            return fnp.logical_and(fnp.logical_and(i < max_iters, rr > threshold),
                                   fnp.logical_not(stop))

        def body(c):
            x, r, p, rr, i, stop = c
            hp = hvp(p)
            curv = nx.cast(_real(nx.tree_vdot(p, hp)), dt)
            negative = curv <= 0
            alpha = rr / fnp.where(negative, 1, curv)
            x_new = nx.tree_add_scale(x, alpha, p)
            r_new = nx.tree_add_scale(r, -alpha, hp)
            rr_new = nx.cast(_real(nx.tree_vdot(r_new, r_new)), dt)
            p_new = nx.tree_add_scale(r_new, rr_new / fnp.where(rr == 0, 1, rr), p)
            # non-positive curvature: keep x (or take g at the first iteration) and stop
            x_neg = nx.tree_where(i == 0, b, x)
            keep = lambda new, old: nx.tree_where(negative, old, new)  # noqa: E731
            return (keep(x_new, x_neg), keep(r_new, r), keep(p_new, p),
                    fnp.where(negative, rr, rr_new).astype(dt), (i + 1).astype(fnp.int32),
                    negative)

        x0 = nx.tree_zeros_like(b)
        x, _, _, _, iters, _ = lax.while_loop(
            cond, body, (x0, b, b, bb, nx.zeros_count(), fnp.asarray(False)))
        return x, ScaleByNewtonCGState(cg_iterations=iters)

    return GradientTransformation(init, update, name="scale_by_newton_cg",
                                  hyperparams={"loss_fn": loss_fn, "damping": damping,
                                               "cg_iters": max_iters, "tol": tol})


def newton_cg(loss_fn, damping=0.0, cg_iters: int = 20, tol=1e-5, learning_rate=1.0,
              linesearch=None) -> GradientTransformation:
    """Hessian-free Newton: ``u = -learning_rate * CG-solve(H + damping I, g)``.

    ``chain(scale_by_newton_cg(...), scale_by_learning_rate(learning_rate), linesearch)``
    (see :func:`scale_by_newton_cg`).  Memory and time per step are those of
    ``cg_iters`` gradient evaluations, so it scales to large models.
    ``linesearch`` as in :func:`newton`.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> loss = lambda w: fnp.sum((w - 1.0) ** 2) + 0.5 * fnp.sum(w) ** 2
    >>> tx = optim.newton_cg(loss, cg_iters=5)
    >>> w = fnp.zeros(3)
    >>> u, state = tx.update(fn.grad(loss)(w), tx.init(w), w)
    >>> optim.apply_updates(w, u).round(4), int(optim.get(state, "cg_iterations"))
    (array([0.4, 0.4, 0.4], dtype=float32), 1)
    """
    ls = _linesearch(linesearch, "newton_cg")
    inner = chain(scale_by_newton_cg(loss_fn, damping, cg_iters, tol),
                  scale_by_learning_rate(learning_rate), ls)
    return _with_defaults(inner, loss_fn, "newton_cg",
                          {"damping": damping, "cg_iters": int(cg_iters), "tol": tol,
                           "learning_rate": learning_rate}, inner.children,
                          linesearch is not None)


# ---------------------------------------------------------------------------
# L-BFGS


class ScaleByLBFGSState(NamedTuple):
    """``count`` (int32); the previous ``params`` and ``updates`` (gradient); the last
    ``memory_size`` differences of params and of gradients (stacked on a leading axis,
    used as a ring buffer) and their inverse inner products ``weights_memory``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_lbfgs().init(fnp.zeros(2))
    >>> state.diff_params_memory.shape, state.weights_memory.shape   # memory_size = 10
    ((10, 2), (10,))
    """

    count: Any
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: Any


def _two_loop(updates, dw_mem, du_mem, rhos, identity_scale, memory_idx, memory_size):
    """L-BFGS's two-loop recursion over the ring buffer, oldest pair first."""
    order = (memory_idx + fnp.arange(memory_size)) % memory_size
    dws = fn.tree.map(lambda m: fnp.take(m, order, axis=0), dw_mem)
    dus = fn.tree.map(lambda m: fnp.take(m, order, axis=0), du_mem)
    rho = fnp.take(rhos, order)

    def right(vec, xs):
        dw, du, r = xs
        alpha = r * _real(nx.tree_vdot(dw, vec))
        return nx.tree_cast_like(nx.tree_add_scale(vec, -alpha, du), vec), alpha

    vec, alphas = lax.scan(right, updates, (dws, dus, rho), reverse=True)
    vec = fn.tree.map(lambda v: identity_scale * v, vec)
    vec = nx.tree_cast_like(vec, updates)

    def left(vec, xs):
        dw, du, r, alpha = xs
        beta = r * _real(nx.tree_vdot(du, vec))
        return nx.tree_cast_like(nx.tree_add_scale(vec, alpha - beta, dw), vec), beta

    vec, _ = lax.scan(left, vec, (dws, dus, rho, alphas))
    return vec


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True
                   ) -> GradientTransformation:
    """Precondition the gradient by L-BFGS's inverse-Hessian estimate (optax's arithmetic).

    Keeps the last ``memory_size`` pairs ``s = p_k - p_{k-1}``,
    ``y = g_k - g_{k-1}`` and applies the two-loop recursion (Nocedal &
    Wright, algorithm 7.4), the initial matrix ``<s, y> / <y, y> I`` (or
    ``min(1, 1/||g||) I`` at the first step) when ``scale_init_precond``.
    A pair with non-positive curvature ``<s, y> <= 0`` is not stored (optax
    stores it, which can turn the direction uphill); otherwise the
    arithmetic is optax's.
    Needs ``params``.  State: :class:`ScaleByLBFGSState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_lbfgs()
    >>> w = fnp.array([1.0, 2.0])
    >>> u, state = tx.update(fnp.array([0.3, 0.4]), tx.init(w), w)
    >>> u                                  # first step: g / max(1, ||g||)
    array([0.3, 0.4], dtype=float32)
    """
    if memory_size < 1:
        raise ValueError(f"scale_by_lbfgs: memory_size must be >= 1, got {memory_size}")
    m = int(memory_size)

    def init(params):
        stacked = fn.tree.map(lambda x: fnp.zeros((m,) + tuple(np.shape(x)),
                                                  dtype=nx.dtype_of(x)), params)
        return ScaleByLBFGSState(count=nx.zeros_count(), params=nx.tree_zeros_like(params),
                                 updates=nx.tree_zeros_like(params),
                                 diff_params_memory=stacked, diff_updates_memory=stacked,
                                 weights_memory=fnp.zeros((m,), dtype=nx.float_dtype(params)))

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_lbfgs needs params: update(updates, state, params)")
        count = state.count
        memory_idx = count % m
        prev_idx = (count - 1) % m
        wdt = nx.dtype_of(state.weights_memory)
        started = count > 0
        diff_params = fn.tree.map(lambda p, q: p - q, params, state.params)
        diff_updates = fn.tree.map(lambda u, v: u - v, updates, state.updates)
        sy = nx.cast(_real(nx.tree_vdot(diff_updates, diff_params)), wdt)
        # A pair with <s, y> <= 0 would make the inverse-Hessian estimate indefinite (and
        # the direction uphill); it is stored as zeros, so that it has no effect.  optax
        # keeps it; both agree whenever the curvature is positive.
        usable = fnp.logical_and(started, sy > 0.0)
        weight = fnp.where(usable, 1.0 / fnp.where(usable, sy, 1.0), 0.0).astype(wdt)
        diff_params = fn.tree.map(lambda x: fnp.where(usable, x, fnp.zeros_like(x)), diff_params)
        diff_updates = fn.tree.map(lambda x: fnp.where(usable, x, fnp.zeros_like(x)),
                                   diff_updates)

        def put(mem, x):
            x = nx.cast(fnp.asarray(x), nx.dtype_of(mem))
            start = [prev_idx] + [0] * np.ndim(x)
            return lax.dynamic_update_slice(mem, fnp.reshape(x, (1,) + tuple(np.shape(x))), start)

        dw_mem = fn.tree.map(put, state.diff_params_memory, diff_params)
        du_mem = fn.tree.map(put, state.diff_updates_memory, diff_updates)
        w_mem = put(state.weights_memory, weight)
        if scale_init_precond:
            numerator = nx.cast(_real(nx.tree_vdot(diff_updates, diff_params)), wdt)
            denominator = nx.cast(nx.tree_sum_squares(diff_updates), wdt)
            positive = denominator > 0.0
            ratio = numerator / fnp.where(positive, denominator, 1.0)
            identity_scale = fnp.where(positive, ratio, 1.0)
            update_norm = nx.cast(fnp.sqrt(nx.tree_sum_squares(fn.tree.map(fn.stop_gradient,
                                                                           updates))), wdt)
            capped = fnp.minimum(1.0, 1.0 / fnp.where(update_norm == 0, 1.0, update_norm))
            capped = fnp.where(update_norm == 0, 1.0, capped)
            identity_scale = fnp.where(usable, identity_scale, capped).astype(wdt)
        else:
            identity_scale = fnp.asarray(1.0, dtype=wdt)
        direction = _two_loop(updates, dw_mem, du_mem, w_mem, identity_scale, memory_idx, m)
        return direction, ScaleByLBFGSState(
            count=nx.safe_increment(count), params=nx.tree_cast_like(params, state.params),
            updates=nx.tree_cast_like(updates, state.updates), diff_params_memory=dw_mem,
            diff_updates_memory=du_mem, weights_memory=w_mem)

    return GradientTransformation(init, update, name="scale_by_lbfgs",
                                  hyperparams={"memory_size": m,
                                               "scale_init_precond": scale_init_precond})


def lbfgs(learning_rate=None, memory_size: int = 10, scale_init_precond: bool = True,
          linesearch: Any = "zoom") -> GradientTransformation:
    """L-BFGS: ``chain(scale_by_lbfgs(memory_size), scale_by_learning_rate(lr or 1), linesearch)``.

    As in optax, ``update`` takes ``value=``, ``grad=`` and ``value_fn=``
    keyword arguments for the line search (plus any data arguments of
    ``value_fn``); ``grad`` defaults to the incoming updates and ``value`` is
    computed from ``value_fn`` when omitted.  ``linesearch`` is ``"zoom"``
    (strong Wolfe, the default, as optax), ``"backtracking"`` (Armijo), a
    line-search transform, or ``None`` (fixed steps of ``learning_rate``).
    :func:`~funcnet.optim.value_and_grad_from_state` saves one evaluation per
    step on deterministic objectives.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> f = lambda w: fnp.sum((w - 2.0) ** 2) + fnp.sum(w ** 4)
    >>> tx = optim.lbfgs()
    >>> w = fnp.zeros(3); state = tx.init(w)
    >>> for _ in range(10):
    ...     value, grad = fn.value_and_grad(f)(w)
    ...     u, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
    ...     w = optim.apply_updates(w, u)
    >>> float(fnp.abs(fn.grad(f)(w)).max()) < 1e-4
    True
    """
    ls = _linesearch(linesearch, "lbfgs")
    inner = chain(scale_by_lbfgs(memory_size, scale_init_precond),
                  scale_by_learning_rate(1.0 if learning_rate is None else learning_rate), ls)
    hp = {"memory_size": int(memory_size)}
    if learning_rate is not None:
        hp["learning_rate"] = learning_rate
    return _with_defaults(inner, None, "lbfgs", hp, inner.children, linesearch is not None)
