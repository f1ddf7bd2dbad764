"""Gradient transformations with optax's names and arithmetic.

Each factory closes over its hyper-parameters and returns a
:class:`~funcnet.optim.GradientTransformation` whose state is one NamedTuple.
The formulas (epsilon placement, bias correction, step counting) follow
optax's definitions exactly; ``docs/optim.md`` lists every one.  Counters are
int32 scalars that saturate at the int32 maximum instead of wrapping.

Hyper-parameters may be Python numbers or arrays (so they can be traced:
``vmap`` over a learning rate, or ``inject_hyperparams``).

>>> import funcnet.numpy as fnp
>>> from funcnet import optim
>>> tx = optim.scale_by_adam()
>>> state = tx.init(fnp.zeros(2))
>>> updates, state = tx.update(fnp.array([0.1, -3.0]), state)
>>> updates.round(4), int(state.count)
(array([ 1., -1.], dtype=float32), 1)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.optim import _numerics as nx
from funcnet.optim.base import EmptyState, GradientTransformation, identity

__all__ = [
    "scale", "scale_by_learning_rate", "scale_by_schedule", "scale_by_adam", "scale_by_rms",
    "scale_by_stddev", "scale_by_rss", "scale_by_lion", "scale_by_trust_ratio", "trace", "ema",
    "add_decayed_weights", "ScaleByAdamState", "ScaleByRmsState", "ScaleByRmsWithCountState",
    "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "ScaleByRssState",
    "ScaleByLionState", "ScaleByScheduleState", "TraceState", "EmaState", "WeightDecaySchedule",
    "bias_correction", "update_moment",
]

_is_none = lambda x: x is None  # noqa: E731


def _map(f, first, *rest):
    """``tree.map`` that treats ``None`` as a leaf and keeps ``None`` where ``first`` has it."""
    return fn.tree.map(lambda x, *ys: None if x is None else f(x, *ys), first, *rest,
                       is_leaf=_is_none)


def _init_empty(params):
    return EmptyState()


def _is_zero(x) -> bool:
    """True for a Python number equal to 0 (a static fact; arrays and tracers: False)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def update_moment(updates, moments, decay, order: int):
    """The exponential moving average ``(1 - decay) * g**order + decay * m``, leafwise."""
    def one(g, m):
        gp = g if order == 1 else (nx.abs_sq(g) if order == 2 else g ** order)
        return (1 - decay) * gp + decay * m

    return _map(one, updates, moments)


def bias_correction(moments, decay, count):
    """``m / (1 - decay**count)`` leafwise; the factor is computed in float64, then cast.

    Computing ``decay**count`` wide keeps it from rounding to 1 in low
    precision (the division then happens in the moment's dtype).
    """
    factor = 1 - decay ** count
    return _map(lambda m: m / nx.cast(factor, nx.dtype_of(m)), moments)


_debias = bias_correction  # for factories whose ``bias_correction`` argument hides the function


def _keep_dtypes(new, old):
    """Cast each new state leaf to its old dtype so that a jitted step never re-traces."""
    return fn.tree.map(lambda n, o: None if n is None else nx.cast(n, nx.dtype_of(o)), new, old,
                       is_leaf=_is_none)


# ---------------------------------------------------------------------------
# scaling


def scale(step_size) -> GradientTransformation:
    """Multiply every update by the fixed scalar ``step_size``.

    State: :class:`EmptyState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> optim.scale(-0.5).update(fnp.array([2.0]), optim.EmptyState())[0]
    array([-1.], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        return _map(lambda g: step_size * g, updates), state

    return GradientTransformation(_init_empty, update, name="scale",
                                  hyperparams={"step_size": step_size})


class ScaleByScheduleState(NamedTuple):
    """The step count fed to the schedule (int32).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_schedule(lambda n: 0.1).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByScheduleState', ('count',))
    """

    count: Any


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """Multiply updates by ``step_size_fn(count)``, ``count`` = updates so far (from 0).

    The step size is cast to each update's dtype before multiplying.
    State: :class:`ScaleByScheduleState` ``(count)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_schedule(lambda count: 1.0 / (count + 1))
    >>> state = tx.init(None)
    >>> for _ in range(2):
    ...     u, state = tx.update(fnp.array([1.0]), state)
    >>> u
    array([0.5], dtype=float32)
    """
    def init(params):
        return ScaleByScheduleState(count=nx.zeros_count())

    def update(updates, state, params=None, **extra_args):
        step = step_size_fn(state.count)
        updates = _map(lambda g: fnp.asarray(step, dtype=nx.dtype_of(g)) * g, updates)
        return updates, ScaleByScheduleState(count=nx.safe_increment(state.count))

    def status(state):
        return {"count": state.count, "step_size": step_size_fn(state.count)}

    return GradientTransformation(init, update, name="scale_by_schedule",
                                  hyperparams={"step_size_fn": step_size_fn}, status=status)


def scale_by_learning_rate(learning_rate=None, *, flip_sign: bool = True) -> GradientTransformation:
    """Multiply updates by ``-learning_rate`` (a number or a schedule of the step count).

    The one place where the gradient's sign is flipped into a descent step
    (``flip_sign=False`` keeps the sign).  ``learning_rate=None`` is the
    identity.  State: :class:`EmptyState` for a number,
    :class:`ScaleByScheduleState` for a schedule.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> optim.scale_by_learning_rate(0.1).update(fnp.array([2.0]), optim.EmptyState())[0]
    array([-0.2], dtype=float32)
    """
    if learning_rate is None:
        return identity()
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        inner = scale_by_schedule(lambda count: m * learning_rate(count))

        def status(state):
            return {"count": state.count, "learning_rate": learning_rate(state.count)}

        return GradientTransformation(inner.init, inner.update, name="scale_by_learning_rate",
                                      hyperparams={"learning_rate": learning_rate},
                                      status=status)
    inner = scale(m * learning_rate)
    hp = {"learning_rate": learning_rate}
    if not flip_sign:
        hp["flip_sign"] = False
    return GradientTransformation(inner.init, inner.update, name="scale_by_learning_rate",
                                  hyperparams=hp)


# ---------------------------------------------------------------------------
# adaptive moments


class ScaleByAdamState(NamedTuple):
    """Adam's state: ``count`` (int32), first moment ``mu``, second moment ``nu``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_adam().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByAdamState', ('count', 'mu', 'nu'))
    """

    count: Any
    mu: Any
    nu: Any


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
                  nesterov: bool = False) -> GradientTransformation:
    """Rescale updates by Adam's bias-corrected moments (Kingma & Ba, 2014).

    ``mu = b1*mu + (1-b1)*g``, ``nu = b2*nu + (1-b2)*g**2``,
    ``u = mu_hat / (sqrt(nu_hat + eps_root) + eps)`` with
    ``mu_hat = mu / (1 - b1**t)``, ``nu_hat = nu / (1 - b2**t)``, ``t`` the
    step (1 at the first update).  ``nesterov=True`` is NAdam:
    ``mu_hat = b1*mu/(1-b1**(t+1)) + (1-b1)*g/(1-b1**t)``.
    ``mu_dtype`` sets the first moment's dtype (default: the parameters').
    State: :class:`ScaleByAdamState` ``(count, mu, nu)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_adam()
    >>> u, s = tx.update(fnp.array([0.5]), tx.init(fnp.zeros(1)))
    >>> u.round(6)
    array([1.], dtype=float32)
    """
    mu_dtype = None if mu_dtype is None else np.dtype(mu_dtype)

    def init(params):
        return ScaleByAdamState(count=nx.zeros_count(),
                                mu=nx.tree_zeros_like(params, dtype=mu_dtype),
                                nu=nx.tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        mu = update_moment(updates, state.mu, b1, 1)
        nu = update_moment(updates, state.nu, b2, 2)
        count_inc = nx.safe_increment(state.count)
        if nesterov:
            mu_hat = _map(lambda m, g: b1 * m + (1 - b1) * g,
                          bias_correction(mu, b1, nx.safe_increment(count_inc)),
                          bias_correction(updates, b1, count_inc))
        else:
            mu_hat = bias_correction(mu, b1, count_inc)
        nu_hat = bias_correction(nu, b2, count_inc)
        if _is_zero(eps_root):  # v + 0.0 == v exactly (v >= +0): skip a pass over memory
            new_updates = _map(lambda m, v: m / (fnp.sqrt(v) + eps), mu_hat, nu_hat)
        else:
            new_updates = _map(lambda m, v: m / (fnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return new_updates, ScaleByAdamState(count=count_inc,
                                             mu=_keep_dtypes(mu, state.mu),
                                             nu=_keep_dtypes(nu, state.nu))

    hp = {"b1": b1, "b2": b2, "eps": eps, "eps_root": eps_root}
    if mu_dtype is not None:
        hp["mu_dtype"] = str(mu_dtype)
    if nesterov:
        hp["nesterov"] = True
    return GradientTransformation(init, update, name="scale_by_adam", hyperparams=hp)


class ScaleByRmsState(NamedTuple):
    """RMSProp's state: the moving average ``nu`` of squared updates.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_rms().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByRmsState', ('nu',))
    """

    nu: Any



def _maybe_debias(moments: tuple, decay, state, use_bc: bool):
    """``(count + 1, moments bias-corrected with it)`` with bias correction, else
    ``(None, moments)``."""
    if not use_bc:
        return None, moments
    count_inc = nx.safe_increment(state.count)
    return count_inc, tuple(_debias(m, decay, count_inc) for m in moments)


def _rms_hyperparams(decay, eps, initial_scale, eps_in_sqrt: bool, bias_correction: bool) -> dict:
    """RMSProp's hyper-parameters as ``describe`` shows them (defaults left out)."""
    hp = {"decay": decay, "eps": eps}
    if initial_scale:
        hp["initial_scale"] = initial_scale
    if not eps_in_sqrt:
        hp["eps_in_sqrt"] = False
    if bias_correction:
        hp["bias_correction"] = True
    return hp

class ScaleByRmsWithCountState(NamedTuple):
    """RMSProp's state with bias correction: ``count`` (int32) and ``nu``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_rms(bias_correction=True).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByRmsWithCountState', ('count', 'nu'))
    """

    count: Any
    nu: Any


def _rms_scaling(n, eps, eps_in_sqrt):
    if eps_in_sqrt:
        return 1 / fnp.sqrt(n + eps)
    return 1 / (fnp.sqrt(n) + eps)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                 bias_correction: bool = False) -> GradientTransformation:
    """Divide updates by the root of a moving average of their squares (RMSProp).

    ``nu = decay*nu + (1-decay)*g**2`` (``nu`` starts at ``initial_scale``),
    ``u = g / sqrt(nu + eps)`` (or ``g / (sqrt(nu) + eps)`` with
    ``eps_in_sqrt=False``); ``bias_correction=True`` divides ``nu`` by
    ``1 - decay**t`` first.  State: :class:`ScaleByRmsState` ``(nu)`` or,
    with bias correction, :class:`ScaleByRmsWithCountState` ``(count, nu)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_rms(decay=0.75, eps=0.0)    # nu = 0.25 * 2**2 = 1
    >>> tx.update(fnp.array([2.0]), tx.init(fnp.zeros(1)))[0]
    array([2.], dtype=float32)
    """
    use_bc = bias_correction

    def init(params):
        nu = nx.tree_full_like(params, initial_scale)
        if use_bc:
            return ScaleByRmsWithCountState(count=nx.zeros_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(updates, state, params=None, **extra_args):
        nu = update_moment(updates, state.nu, decay, 2)
        count_inc, (nu_hat,) = _maybe_debias((nu,), decay, state, use_bc)
        new_updates = _map(lambda g, n: _rms_scaling(n, eps, eps_in_sqrt) * g, updates, nu_hat)
        nu = _keep_dtypes(nu, state.nu)
        if use_bc:
            return new_updates, ScaleByRmsWithCountState(count=count_inc, nu=nu)
        return new_updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update, name="scale_by_rms", hyperparams=_rms_hyperparams(
        decay, eps, initial_scale, eps_in_sqrt, use_bc))


class ScaleByRStdDevState(NamedTuple):
    """Centred RMSProp's state: moving averages ``mu`` of updates and ``nu`` of squares.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_stddev().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByRStdDevState', ('mu', 'nu'))
    """

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """Centred RMSProp's state with bias correction: ``count``, ``mu``, ``nu``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_stddev(bias_correction=True).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByRStdDevWithCountState', ('count', 'mu', 'nu'))
    """

    count: Any
    mu: Any
    nu: Any


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False) -> GradientTransformation:
    """Divide updates by a moving estimate of their standard deviation (centred RMSProp).

    ``mu = decay*mu + (1-decay)*g``, ``nu = decay*nu + (1-decay)*g**2``,
    ``u = g / sqrt(nu - mu**2 + eps)`` (``eps`` outside the root with
    ``eps_in_sqrt=False``).  State: :class:`ScaleByRStdDevState` ``(mu, nu)``
    or :class:`ScaleByRStdDevWithCountState` ``(count, mu, nu)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_stddev(decay=0.5, eps=0.0)
    >>> tx.update(fnp.array([2.0]), tx.init(fnp.zeros(1)))[0]
    array([2.], dtype=float32)
    """
    use_bc = bias_correction

    def init(params):
        mu = nx.tree_zeros_like(params)
        nu = nx.tree_full_like(params, initial_scale)
        if use_bc:
            return ScaleByRStdDevWithCountState(count=nx.zeros_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(updates, state, params=None, **extra_args):
        mu = update_moment(updates, state.mu, decay, 1)
        nu = update_moment(updates, state.nu, decay, 2)
        count_inc, (mu_hat, nu_hat) = _maybe_debias((mu, nu), decay, state, use_bc)
        new_updates = _map(lambda g, m, n: _rms_scaling(n - nx.abs_sq(m), eps, eps_in_sqrt) * g,
                           updates, mu_hat, nu_hat)
        mu, nu = _keep_dtypes(mu, state.mu), _keep_dtypes(nu, state.nu)
        if use_bc:
            return new_updates, ScaleByRStdDevWithCountState(count=count_inc, mu=mu, nu=nu)
        return new_updates, ScaleByRStdDevState(mu=mu, nu=nu)

    return GradientTransformation(init, update, name="scale_by_stddev",
                                  hyperparams=_rms_hyperparams(decay, eps, initial_scale,
                                                               eps_in_sqrt, use_bc))


class ScaleByRssState(NamedTuple):
    """AdaGrad's state: the running sum of squared updates.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_rss().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByRssState', ('sum_of_squares',))
    """

    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Divide updates by the root of the sum of all squared updates so far (AdaGrad).

    ``s = s + g**2`` (``s`` starts at ``initial_accumulator_value``),
    ``u = g / sqrt(s + eps)`` where ``s > 0``, else 0.
    State: :class:`ScaleByRssState` ``(sum_of_squares)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
    >>> tx.update(fnp.array([3.0, 0.0]), tx.init(fnp.zeros(2)))[0]
    array([1., 0.], dtype=float32)
    """
    def init(params):
        return ScaleByRssState(sum_of_squares=nx.tree_full_like(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra_args):
        sos = _map(lambda g, t: nx.abs_sq(g) + t, updates, state.sum_of_squares)

        def inv_root(t):
            positive = t > 0
            safe = fnp.where(positive, t + eps, 1)  # double where: no 1/0 on the dead side
            return fnp.where(positive, 1 / fnp.sqrt(safe), 0.0)

        new_updates = _map(lambda g, t: inv_root(t) * g, updates, sos)
        return new_updates, ScaleByRssState(sum_of_squares=_keep_dtypes(sos,
                                                                          state.sum_of_squares))

    return GradientTransformation(init, update, name="scale_by_rss",
                                  hyperparams={"initial_accumulator_value":
                                               initial_accumulator_value, "eps": eps})


class ScaleByLionState(NamedTuple):
    """Lion's state: ``count`` (int32) and the momentum ``mu``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.scale_by_lion().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ScaleByLionState', ('count', 'mu'))
    """

    count: Any
    mu: Any


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None) -> GradientTransformation:
    """Lion's sign update (Chen et al., 2023): ``u = sign((1-b1)*g + b1*mu)``,
    then ``mu = b2*mu + (1-b2)*g``.

    State: :class:`ScaleByLionState` ``(count, mu)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_lion()
    >>> tx.update(fnp.array([0.3, -2.0, 0.0]), tx.init(fnp.zeros(3)))[0]
    array([ 1., -1.,  0.], dtype=float32)
    """
    mu_dtype = None if mu_dtype is None else np.dtype(mu_dtype)

    def init(params):
        return ScaleByLionState(count=nx.zeros_count(),
                                mu=nx.tree_zeros_like(params, dtype=mu_dtype))

    def update(updates, state, params=None, **extra_args):
        new_updates = _map(lambda g, m: fnp.sign((1.0 - b1) * g + b1 * m), updates, state.mu)
        mu = update_moment(updates, state.mu, b2, 1)
        return new_updates, ScaleByLionState(count=nx.safe_increment(state.count),
                                             mu=_keep_dtypes(mu, state.mu))

    hp = {"b1": b1, "b2": b2}
    if mu_dtype is not None:
        hp["mu_dtype"] = str(mu_dtype)
    return GradientTransformation(init, update, name="scale_by_lion", hyperparams=hp)


def scale_by_trust_ratio(min_norm=0.0, trust_coefficient=1.0, eps=0.0) -> GradientTransformation:
    """Scale each leaf by its trust ratio ``coef * ||p|| / (||u|| + eps)`` (LARS / LAMB).

    Norms are per leaf and at least ``min_norm``; where either norm is zero
    the ratio is 1.  Needs ``params``.  State: :class:`EmptyState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.scale_by_trust_ratio()
    >>> tx.update(fnp.array([3.0, 4.0]), optim.EmptyState(), fnp.array([0.0, 1.0]))[0]
    array([0.6, 0.8], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs params: call update(updates, state, "
                             "params)")

        def one(u, p):
            p_norm = nx.safe_norm(p, min_norm)
            u_norm = nx.safe_norm(u, min_norm)
            zero = fnp.logical_or(p_norm == 0.0, u_norm == 0.0)
            ratio = trust_coefficient * p_norm / fnp.where(zero, 1, u_norm + eps)
            return u * fnp.where(zero, fnp.asarray(1.0, dtype=nx.dtype_of(p)), ratio)

        return _map(one, updates, params), state

    return GradientTransformation(_init_empty, update, name="scale_by_trust_ratio",
                                  hyperparams={"min_norm": min_norm,
                                               "trust_coefficient": trust_coefficient,
                                               "eps": eps})


# ---------------------------------------------------------------------------
# accumulation


class TraceState(NamedTuple):
    """Momentum's state: the ``trace`` of past updates.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.trace(0.9).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('TraceState', ('trace',))
    """

    trace: Any


def trace(decay, nesterov: bool = False, accumulator_dtype=None) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``; the update is ``t`` (or ``g + decay * t`` with
    ``nesterov=True``).

    Note: ``trace`` does not damp ``g`` by ``1 - decay``; :func:`ema` does.
    State: :class:`TraceState` ``(trace)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.trace(0.5)
    >>> s = tx.init(fnp.zeros(1))
    >>> _, s = tx.update(fnp.array([1.0]), s)
    >>> tx.update(fnp.array([1.0]), s)[0]
    array([1.5], dtype=float32)
    """
    accumulator_dtype = None if accumulator_dtype is None else np.dtype(accumulator_dtype)

    def init(params):
        return TraceState(trace=nx.tree_zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        new_trace = _map(lambda g, t: g + decay * t, updates, state.trace)
        out = _map(lambda g, t: g + decay * t, updates, new_trace) if nesterov else new_trace
        return out, TraceState(trace=_keep_dtypes(new_trace, state.trace))

    hp = {"decay": decay}
    if nesterov:
        hp["nesterov"] = True
    return GradientTransformation(init, update, name="trace", hyperparams=hp)


class EmaState(NamedTuple):
    """Exponential moving average: ``count`` (int32) and ``ema``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.ema(0.9).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('EmaState', ('count', 'ema'))
    """

    count: Any
    ema: Any


def ema(decay, debias: bool = True, accumulator_dtype=None) -> GradientTransformation:
    """Exponential moving average of the updates: ``e = decay*e + (1-decay)*g``;
    the update is ``e / (1 - decay**t)`` (or ``e`` with ``debias=False``).

    State: :class:`EmaState` ``(count, ema)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.ema(0.9)
    >>> tx.update(fnp.array([2.0]), tx.init(fnp.zeros(1)))[0]   # debiased: exact mean
    array([2.], dtype=float32)
    """
    accumulator_dtype = None if accumulator_dtype is None else np.dtype(accumulator_dtype)

    def init(params):
        return EmaState(count=nx.zeros_count(),
                        ema=nx.tree_zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        new_ema = update_moment(updates, state.ema, decay, 1)
        count_inc = nx.safe_increment(state.count)
        out = bias_correction(new_ema, decay, count_inc) if debias else new_ema
        return out, EmaState(count=count_inc, ema=_keep_dtypes(new_ema, state.ema))

    hp = {"decay": decay}
    if not debias:
        hp["debias"] = False
    return GradientTransformation(init, update, name="ema", hyperparams=hp)


class WeightDecaySchedule(NamedTuple):
    """The step count of a scheduled weight decay (int32).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.add_decayed_weights(lambda n: 0.1).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('WeightDecaySchedule', ('count',))
    """

    count: Any


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay, as in AdamW).

    ``weight_decay`` may be a schedule.  ``mask`` (a pytree of booleans, a
    function of the params returning one, or :func:`~funcnet.optim.by_path`)
    limits the decay to the leaves marked ``True``.  State:
    :class:`EmptyState`, or :class:`WeightDecaySchedule` ``(count)`` for a
    schedule.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.add_decayed_weights(0.1)
    >>> tx.update(fnp.array([1.0]), optim.EmptyState(), fnp.array([5.0]))[0]
    array([1.5], dtype=float32)
    """
    scheduled = callable(weight_decay)

    def init(params):
        return WeightDecaySchedule(count=nx.zeros_count()) if scheduled else EmptyState()

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(updates, state, "
                             "params)")
        new_state = WeightDecaySchedule(nx.safe_increment(state.count)) if scheduled else state
        if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
            return updates, new_state
        s = weight_decay(state.count) if scheduled else weight_decay
        return _map(lambda g, p: g + s * p, updates, params), new_state

    tx = GradientTransformation(init, update, name="add_decayed_weights",
                                hyperparams={"weight_decay": weight_decay})
    if mask is not None:
        from funcnet.optim.wrappers import masked

        return masked(tx, mask)
    return tx
