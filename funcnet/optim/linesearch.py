"""Line searches as gradient transformations (for L-BFGS, Newton and plain descent).

A line search scales the incoming direction ``u`` by a step size ``a`` chosen
by evaluating the objective along ``params + a * u``.  It needs, as extra
keyword arguments of ``update`` (optax's convention):

- ``value``: the objective at ``params``;
- ``grad``: its gradient at ``params``;
- ``value_fn``: the objective, called as ``value_fn(params, **kwargs)`` where
  ``kwargs`` are the other extra arguments that ``value_fn`` accepts (data
  batches, for example).

Both searches run as one ``lax.while_loop`` and work eagerly and under
``jit``.  The accepted point's value (and gradient, for the zoom search or
with ``store_grad=True``) is kept in the state, so that
:func:`value_and_grad_from_state` can reuse it at the next step.

>>> import funcnet.numpy as fnp
>>> from funcnet import optim
>>> f = lambda w: fnp.sum(w ** 2)
>>> tx = optim.chain(optim.sgd(1.0), optim.scale_by_backtracking_linesearch(20))
>>> w = fnp.array([1.0, -2.0]); state = tx.init(w)
>>> u, state = tx.update(2 * w, state, w, value=f(w), grad=2 * w, value_fn=f)
>>> float(f(optim.apply_updates(w, u))) < float(f(w))
True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax
from funcnet.optim import _numerics as nx
from funcnet.optim.base import GradientTransformation, get

__all__ = ["scale_by_backtracking_linesearch", "scale_by_zoom_linesearch",
           "BacktrackingLinesearchInfo", "ScaleByBacktrackingLinesearchState",
           "ZoomLinesearchInfo", "ScaleByZoomLinesearchState", "value_and_grad_from_state"]

#: Extra ``update`` arguments that belong to the line search, never to the objective.
RESERVED = frozenset({"value", "grad", "value_fn"})


def fn_kwargs(fun: Callable, extra: dict) -> dict:
    """The entries of ``extra`` that ``fun`` accepts as keyword arguments (minus ``RESERVED``)."""
    extra = {k: v for k, v in extra.items() if k not in RESERVED}
    if not extra:
        return {}
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return extra
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return extra
    names = {p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in extra.items() if k in names}


def _need(name, value, who):
    if value is None:
        raise TypeError(f"{who}.update needs the keyword argument {name}= (the objective's "
                        "value at params, its gradient and the objective itself: "
                        "update(updates, state, params, value=..., grad=..., value_fn=...))")
    return value


def _real(x):
    return fnp.real(x) if nx.dtype_of(x).kind == "c" else x


# ---------------------------------------------------------------------------
# backtracking (Armijo)


class BacktrackingLinesearchInfo(NamedTuple):
    """``num_linesearch_steps`` (function evaluations) and ``decrease_error`` (0 when the
    sufficient-decrease condition holds).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_backtracking_linesearch(10).init(fnp.zeros(2)).info
    >>> type(state).__name__, state._fields
    ('BacktrackingLinesearchInfo', ('num_linesearch_steps', 'decrease_error'))
    """

    num_linesearch_steps: Any
    decrease_error: Any


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted ``learning_rate``, the ``value`` there, its ``grad`` (only with
    ``store_grad=True``, else ``None``) and ``info``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_backtracking_linesearch(10).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByBacktrackingLinesearchState', ('learning_rate', 'value', 'grad', 'info'))
    """

    learning_rate: Any
    value: Any
    grad: Any
    info: BacktrackingLinesearchInfo


def scale_by_backtracking_linesearch(max_backtracking_steps: int, slope_rtol=1e-4,
                                     decrease_factor=0.8, increase_factor=1.5,
                                     max_learning_rate=1.0, atol=0.0, rtol=0.0,
                                     store_grad: bool = False) -> GradientTransformation:
    """Shrink the step until ``f(p + a u) <= (1 + rtol) f(p) + a * slope_rtol * <u, g> + atol``.

    The first trial step is ``min(increase_factor * previous, max_learning_rate)``
    (``increase_factor=math.inf``: always ``max_learning_rate``, right for
    Newton and quasi-Newton directions); each failure multiplies it by
    ``decrease_factor``, for at most ``max_backtracking_steps`` trials.  If
    no trial lowered the objective (or all were NaN) the step is 0.  ``u``
    should be a descent direction (``<u, g> < 0``).
    State: :class:`ScaleByBacktrackingLinesearchState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> f = lambda w: fnp.sum(w ** 4)
    >>> w = fnp.array([1.0]); ls = optim.scale_by_backtracking_linesearch(30)
    >>> u, s = ls.update(-4 * w ** 3, ls.init(w), w, value=f(w), grad=4 * w ** 3, value_fn=f)
    >>> float(s.learning_rate) < 1.0, float(s.value) < float(f(w))
    (True, True)
    """
    max_steps = int(max_backtracking_steps)

    def init(params):
        dt = nx.float_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=fnp.asarray(1.0, dtype=dt), value=fnp.asarray(fnp.inf, dtype=dt),
            grad=nx.tree_zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=nx.zeros_count(),
                                            decrease_error=fnp.asarray(fnp.inf, dtype=dt)))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None,
               **extra_args):
        value_fn = _need("value_fn", value_fn, "scale_by_backtracking_linesearch")
        kw = fn_kwargs(value_fn, extra_args)
        if grad is None:
            raise TypeError("scale_by_backtracking_linesearch.update needs grad= (the "
                            "gradient at params)")
        if value is None:
            value = value_fn(params, **kw)
        dt = nx.dtype_of(state.learning_rate)
        value = nx.cast(fnp.asarray(value), dt)
        slope = nx.cast(_real(nx.tree_vdot(updates, grad)), dt)

        def error(step, new_value):
            e = new_value - (1.0 + rtol) * value - step * slope_rtol * slope
            e = fnp.where(fnp.isnan(e), fnp.inf, e)
            return fnp.maximum(e, 0.0).astype(dt)

        def cond(carry):
            step, new_value, err, it = carry
            return fnp.logical_and(fnp.logical_not(err <= atol), it <= max_steps)

        def body(carry):
            step, new_value, err, it = carry
            step = fnp.where(it > 0, decrease_factor * step, step).astype(dt)
            trial = nx.tree_add_scale(params, step, updates)
            new_value = nx.cast(fnp.asarray(value_fn(trial, **kw)), dt)
            return step, new_value, error(step, new_value), (it + 1).astype(fnp.int32)

        if math.isinf(increase_factor):  # restart from the largest step every time
            start = fnp.asarray(max_learning_rate, dtype=dt)
        else:
            start = fnp.minimum(increase_factor * state.learning_rate, max_learning_rate
                                ).astype(dt)
        step, new_value, err, it = lax.while_loop(
            cond, body, (start, value, fnp.asarray(fnp.inf, dtype=dt), nx.zeros_count()))
        # no trial decreased the objective at all: do not move (optax takes the last trial)
        failed = fnp.logical_or(fnp.isinf(err),
                                fnp.logical_and(err > atol, fnp.logical_not(new_value < value)))
        step = fnp.where(failed, 0.0, step).astype(dt)
        new_value = fnp.where(failed, value, new_value).astype(dt)
        new_grad = None
        if store_grad:
            accepted = nx.tree_add_scale(params, step, updates)
            new_grad = nx.tree_cast_like(fn.grad(lambda p: value_fn(p, **kw))(accepted), grad)
        new_updates = fn.tree.map(lambda u: (step.astype(nx.dtype_of(u)) * u), updates)
        return new_updates, ScaleByBacktrackingLinesearchState(
            learning_rate=step, value=new_value, grad=new_grad,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=it, decrease_error=err))

    def status(state):
        return {"learning_rate": state.learning_rate, "value": state.value,
                "num_linesearch_steps": state.info.num_linesearch_steps}

    return GradientTransformation(
        init, update, name="scale_by_backtracking_linesearch",
        hyperparams={"max_backtracking_steps": max_steps, "slope_rtol": slope_rtol,
                     "decrease_factor": decrease_factor, "increase_factor": increase_factor,
                     "max_learning_rate": max_learning_rate}, status=status)


# ---------------------------------------------------------------------------
# zoom (strong Wolfe)


class ZoomLinesearchInfo(NamedTuple):
    """``num_linesearch_steps`` (function evaluations) and ``success`` (whether the strong
    Wolfe conditions hold at the accepted step).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_zoom_linesearch().init(fnp.zeros(2)).info
    >>> type(state).__name__, state._fields
    ('ZoomLinesearchInfo', ('num_linesearch_steps', 'success'))
    """

    num_linesearch_steps: Any
    success: Any


class ScaleByZoomLinesearchState(NamedTuple):
    """The accepted ``learning_rate``, the ``value`` and ``grad`` there, and ``info``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_zoom_linesearch().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByZoomLinesearchState', ('learning_rate', 'value', 'grad', 'info'))
    """

    learning_rate: Any
    value: Any
    grad: Any
    info: ZoomLinesearchInfo


class _Zoom(NamedTuple):
    it: Any
    done: Any
    zooming: Any
    a: Any          # the step to evaluate next
    a_prev: Any
    f_prev: Any
    s_prev: Any
    lo: Any
    f_lo: Any
    s_lo: Any
    hi: Any
    f_hi: Any
    s_hi: Any
    a_best: Any     # the best step with sufficient decrease so far (or 0)
    f_best: Any
    g_best: Any


def _cubic_min(a, fa, sa, b, fb, sb):
    """The minimiser of the cubic through ``(a, fa, sa)`` and ``(b, fb, sb)`` (may be NaN)."""
    d1 = sa + sb - 3 * (fa - fb) / fnp.where(a == b, 1, a - b)
    rad = d1 * d1 - sa * sb
    d2 = fnp.sign(b - a) * fnp.sqrt(fnp.where(rad >= 0, rad, 0))
    den = sb - sa + 2 * d2
    x = b - (b - a) * (sb + d2 - d1) / fnp.where(den == 0, 1, den)
    return fnp.where(fnp.logical_and(rad >= 0, den != 0), x, fnp.nan)


def scale_by_zoom_linesearch(max_linesearch_steps: int = 20, slope_rtol=1e-4, curv_rtol=0.9,
                             increase_factor=2.0, max_stepsize=None,
                             initial_guess_strategy: str = "one",
                             interval_threshold=1e-6) -> GradientTransformation:
    """A step satisfying the strong Wolfe conditions, by bracketing and zooming.

    Accepts ``a`` when ``f(p + a u) <= f(p) + slope_rtol * a * <g, u>`` and
    ``|<g(p + a u), u>| <= curv_rtol * |<g, u>|`` (Nocedal & Wright,
    *Numerical Optimization*, algorithms 3.5 and 3.6, with safeguarded cubic
    interpolation).  The first trial is 1 (``initial_guess_strategy="one"``,
    right for quasi-Newton directions) or the previous step (``"keep"``);
    trials grow by ``increase_factor`` until a bracket is found.  After
    ``max_linesearch_steps`` evaluations without success, the best step with
    sufficient decrease is taken (0 if none).  Each evaluation computes the
    value and the gradient.  State: :class:`ScaleByZoomLinesearchState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> f = lambda w: fnp.sum((w - 1.0) ** 2)
    >>> w = fnp.array([3.0]); ls = optim.scale_by_zoom_linesearch()
    >>> u, s = ls.update(-(w - 1.0), ls.init(w), w, value=f(w), grad=2 * (w - 1.0), value_fn=f)
    >>> optim.apply_updates(w, u), bool(s.info.success)
    (array([1.], dtype=float32), True)
    """
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError("initial_guess_strategy must be 'one' or 'keep', got "
                         f"{initial_guess_strategy!r}")
    max_steps = int(max_linesearch_steps)
    top = fnp.inf if max_stepsize is None else max_stepsize

    def init(params):
        dt = nx.float_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=fnp.asarray(1.0, dtype=dt), value=fnp.asarray(fnp.inf, dtype=dt),
            grad=nx.tree_zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=nx.zeros_count(),
                                    success=fnp.asarray(False)))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None,
               **extra_args):
        value_fn = _need("value_fn", value_fn, "scale_by_zoom_linesearch")
        if grad is None:
            raise TypeError("scale_by_zoom_linesearch.update needs grad= (the gradient at "
                            "params)")
        kw = fn_kwargs(value_fn, extra_args)
        if value is None:
            value = value_fn(params, **kw)
        dt = nx.dtype_of(state.learning_rate)
        f0 = nx.cast(fnp.asarray(value), dt)
        s0 = nx.cast(_real(nx.tree_vdot(grad, updates)), dt)
        value_and_grad = fn.value_and_grad(lambda p: value_fn(p, **kw))

        def scalar(x):
            return nx.cast(fnp.asarray(x), dt)

        def cond(z):
            return fnp.logical_and(fnp.logical_not(z.done), z.it < max_steps)

        def body(z):
            a = z.a
            f, g = value_and_grad(nx.tree_add_scale(params, a, updates))
            f = scalar(f)
            f = fnp.where(fnp.isnan(f), fnp.inf, f).astype(dt)
            s = scalar(_real(nx.tree_vdot(g, updates)))
            armijo = f <= f0 + slope_rtol * a * s0
            curvature = fnp.abs(s) <= curv_rtol * fnp.abs(s0)
            wolfe = fnp.logical_and(armijo, curvature)

            # bracketing phase (algorithm 3.5)
            worse = fnp.logical_or(fnp.logical_not(armijo),
                                   fnp.logical_and(z.it > 0, f >= z.f_prev))
            uphill = fnp.logical_and(fnp.logical_not(worse), s >= 0)
            found = fnp.logical_and(fnp.logical_not(worse), curvature)
            # zooming phase (algorithm 3.6)
            z_hi_here = fnp.logical_or(fnp.logical_not(armijo), f >= z.f_lo)
            z_flip = fnp.logical_and(fnp.logical_not(z_hi_here), s * (z.hi - z.lo) >= 0)

            zoom = z.zooming
            b_lo = fnp.where(worse, z.a_prev, a)
            b_hi = fnp.where(worse, a, z.a_prev)
            b_flo = fnp.where(worse, z.f_prev, f)
            b_fhi = fnp.where(worse, f, z.f_prev)
            b_slo = fnp.where(worse, z.s_prev, s)
            b_shi = fnp.where(worse, s, z.s_prev)
            q_lo = fnp.where(z_hi_here, z.lo, a)
            q_flo = fnp.where(z_hi_here, z.f_lo, f)
            q_slo = fnp.where(z_hi_here, z.s_lo, s)
            q_hi = fnp.where(z_hi_here, a, fnp.where(z_flip, z.lo, z.hi))
            q_fhi = fnp.where(z_hi_here, f, fnp.where(z_flip, z.f_lo, z.f_hi))
            q_shi = fnp.where(z_hi_here, s, fnp.where(z_flip, z.s_lo, z.s_hi))

            start_zoom = fnp.logical_and(fnp.logical_not(zoom),
                                         fnp.logical_or(worse, uphill))
            now_zoom = fnp.logical_or(zoom, start_zoom)
            lo = fnp.where(zoom, q_lo, b_lo).astype(dt)
            hi = fnp.where(zoom, q_hi, b_hi).astype(dt)
            f_lo = fnp.where(zoom, q_flo, b_flo).astype(dt)
            f_hi = fnp.where(zoom, q_fhi, b_fhi).astype(dt)
            s_lo = fnp.where(zoom, q_slo, b_slo).astype(dt)
            s_hi = fnp.where(zoom, q_shi, b_shi).astype(dt)
            done = fnp.where(zoom, wolfe, found)
            narrow = fnp.abs(hi - lo) <= interval_threshold * fnp.maximum(fnp.abs(hi), 1)
            done = fnp.logical_or(done, fnp.logical_and(now_zoom, narrow))

            # next trial: extrapolate, or interpolate inside the bracket
            grow = fnp.minimum(a * increase_factor, top)
            left, right = fnp.minimum(lo, hi), fnp.maximum(lo, hi)
            width = right - left
            cubic = _cubic_min(lo, f_lo, s_lo, hi, f_hi, s_hi)
            inside = fnp.logical_and(cubic >= left + 0.1 * width, cubic <= right - 0.1 * width)
            guess = fnp.where(inside, cubic, 0.5 * (lo + hi))
            nxt = fnp.where(now_zoom, guess, grow).astype(dt)
            # keep the accepted step, else the best one with sufficient decrease
            take = fnp.logical_or(fnp.logical_and(done, wolfe),
                                  fnp.logical_and(armijo, f < z.f_best))
            a_best = fnp.where(take, a, z.a_best).astype(dt)
            f_best = fnp.where(take, f, z.f_best).astype(dt)
            g_best = nx.tree_where(take, g, z.g_best)
            return _Zoom(it=(z.it + 1).astype(fnp.int32), done=done, zooming=now_zoom, a=nxt,
                         a_prev=a, f_prev=f, s_prev=s, lo=lo, f_lo=f_lo, s_lo=s_lo, hi=hi,
                         f_hi=f_hi, s_hi=s_hi, a_best=a_best, f_best=f_best, g_best=g_best)

        if initial_guess_strategy == "one":
            a0 = fnp.minimum(scalar(1.0), top).astype(dt)
        else:
            a0 = fnp.minimum(state.learning_rate, top).astype(dt)
        zero = scalar(0.0)
        z0 = _Zoom(it=nx.zeros_count(), done=fnp.asarray(False), zooming=fnp.asarray(False),
                   a=a0, a_prev=zero, f_prev=f0, s_prev=s0, lo=zero, f_lo=f0, s_lo=s0,
                   hi=zero, f_hi=f0, s_hi=s0, a_best=zero, f_best=f0,
                   g_best=nx.tree_cast_like(grad, state.grad))
        z = lax.while_loop(cond, body, z0)
        success = z.done
        step = z.a_best
        new_updates = fn.tree.map(lambda u: step.astype(nx.dtype_of(u)) * u, updates)
        return new_updates, ScaleByZoomLinesearchState(
            learning_rate=step, value=z.f_best, grad=nx.tree_cast_like(z.g_best, state.grad),
            info=ZoomLinesearchInfo(num_linesearch_steps=z.it, success=success))

    def status(state):
        return {"learning_rate": state.learning_rate, "value": state.value,
                "num_linesearch_steps": state.info.num_linesearch_steps}

    return GradientTransformation(
        init, update, name="scale_by_zoom_linesearch",
        hyperparams={"max_linesearch_steps": max_steps, "slope_rtol": slope_rtol,
                     "curv_rtol": curv_rtol, "initial_guess_strategy": initial_guess_strategy},
        status=status)


def value_and_grad_from_state(value_fn: Callable) -> Callable:
    """``value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    The returned function is called as ``f(params, *args, state=state,
    **kwargs)``.  When the optimizer state holds a finite ``value`` (the
    objective at the point the last step moved to) and a ``grad``, they are
    returned without evaluating ``value_fn``; otherwise both are computed.
    Only for deterministic objectives (not mini-batches).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> f = lambda w: fnp.sum(w ** 2)
    >>> vg = optim.value_and_grad_from_state(f)
    >>> tx = optim.lbfgs()
    >>> w = fnp.array([1.0, 2.0]); state = tx.init(w)
    >>> for _ in range(3):
    ...     v, g = vg(w, state=state)
    ...     u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
    ...     w = optim.apply_updates(w, u)
    >>> float(f(w)) < 1e-10
    True
    """
    vg = fn.value_and_grad(value_fn)

    def wrapped(params, *args, state, **kwargs):
        value = get(state, "value", None)
        grad = get(state, "grad", None)
        if value is None or grad is None or not fn.tree.leaves(grad):
            return vg(params, *args, **kwargs)
        if nx.is_concrete(value):
            if bool(fnp.isfinite(value)):
                return value, grad
            return vg(params, *args, **kwargs)
        return lax.cond(fnp.isfinite(value), lambda: (value, grad),
                        lambda: vg(params, *args, **kwargs))

    return wrapped
