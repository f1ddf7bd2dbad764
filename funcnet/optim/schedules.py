"""Schedules: functions from the step count to a hyper-parameter value (optax's formulas).

A schedule is any callable ``step -> value``; a learning rate may be a number
or a schedule everywhere.  The step is the number of updates taken so far
(0 at the first update); it may be a Python int, an int32 array or a tracer.
The schedules made here print their arguments (``describe`` shows them).

>>> from funcnet import optim
>>> sched = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=4)
>>> [round(float(sched(n)), 3) for n in range(6)]
[0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import funcnet.numpy as fnp

__all__ = ["constant_schedule", "polynomial_schedule", "linear_schedule", "exponential_decay",
           "cosine_decay_schedule", "warmup_cosine_decay_schedule",
           "piecewise_constant_schedule", "join_schedules"]


class _Schedule:
    """A schedule function that remembers how it was made (for ``repr`` and ``describe``)."""

    def __init__(self, fun: Callable, name: str, args: dict):
        self._fun = fun
        self.__name__ = name
        self.args = args

    def __call__(self, count):
        if isinstance(count, (int, np.integer)) and not isinstance(count, bool):
            count = np.asarray(count)  # a Python int computes like an int array (in float64)
        return self._fun(count)

    def __repr__(self) -> str:
        def fmt(v):
            if isinstance(v, float):
                return f"{v:.6g}"
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(fmt(x) for x in v) + "]"
            return repr(v)

        return f"{self.__name__}(" + ", ".join(f"{k}={fmt(v)}" for k, v in self.args.items()) + ")"


def constant_schedule(value) -> Callable:
    """``value`` at every step.

    >>> from funcnet import optim
    >>> optim.constant_schedule(0.1)(1000)
    0.1
    """
    return _Schedule(lambda count: value, "constant_schedule", {"value": value})


def polynomial_schedule(init_value, end_value, power, transition_steps: int,
                        transition_begin: int = 0) -> Callable:
    """From ``init_value`` to ``end_value`` along ``(1 - t)**power`` over ``transition_steps``
    steps, starting after ``transition_begin`` steps; constant outside.

    ``v(n) = (init - end) * (1 - c / transition_steps)**power + end`` with
    ``c = clip(n - transition_begin, 0, transition_steps)``.  A non-positive
    ``transition_steps`` gives the constant ``init_value``.

    >>> from funcnet import optim
    >>> float(optim.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)(2))
    0.25
    """
    args = {"init_value": init_value, "end_value": end_value, "power": power,
            "transition_steps": transition_steps}
    if transition_begin:
        args["transition_begin"] = transition_begin
    if transition_steps <= 0:
        return _Schedule(lambda count: init_value, "polynomial_schedule", args)
    begin = max(transition_begin, 0)

    def schedule(count):
        c = fnp.clip(count - begin, 0, transition_steps)
        frac = 1 - c / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value

    return _Schedule(schedule, "polynomial_schedule", args)


def linear_schedule(init_value, end_value, transition_steps: int,
                    transition_begin: int = 0) -> Callable:
    """Linear from ``init_value`` to ``end_value`` over ``transition_steps`` steps
    (``polynomial_schedule`` with ``power=1``).

    >>> from funcnet import optim
    >>> float(optim.linear_schedule(1.0, 0.0, transition_steps=4)(1))
    0.75
    """
    inner = polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)
    args = {"init_value": init_value, "end_value": end_value,
            "transition_steps": transition_steps}
    if transition_begin:
        args["transition_begin"] = transition_begin
    return _Schedule(inner, "linear_schedule", args)


def exponential_decay(init_value, transition_steps: int, decay_rate, transition_begin: int = 0,
                      staircase: bool = False, end_value=None) -> Callable:
    """``init_value * decay_rate ** ((n - transition_begin) / transition_steps)``.

    ``init_value`` until ``transition_begin``; ``staircase=True`` floors the
    exponent; ``end_value`` bounds the result (a floor when decaying, a
    ceiling when ``decay_rate > 1``).  Non-positive ``transition_steps`` or a
    zero ``decay_rate`` give the constant ``init_value``.

    >>> from funcnet import optim
    >>> float(optim.exponential_decay(1.0, transition_steps=2, decay_rate=0.5)(4))
    0.25
    """
    args = {"init_value": init_value, "transition_steps": transition_steps,
            "decay_rate": decay_rate}
    if transition_begin:
        args["transition_begin"] = transition_begin
    if staircase:
        args["staircase"] = True
    if end_value is not None:
        args["end_value"] = end_value
    if transition_steps <= 0 or decay_rate == 0:
        return _Schedule(lambda count: init_value, "exponential_decay", args)
    begin = max(transition_begin, 0)
    bound = None
    if end_value is not None:
        bound = fnp.maximum if decay_rate < 1.0 else fnp.minimum

    def schedule(count):
        shifted = count - begin
        p = shifted / transition_steps
        if staircase:
            p = fnp.floor(p)
        value = fnp.where(shifted <= 0, init_value, init_value * decay_rate ** p)
        if bound is not None:
            value = bound(value, end_value)
        return value

    return _Schedule(schedule, "exponential_decay", args)


def cosine_decay_schedule(init_value, decay_steps: int, alpha=0.0, exponent=1.0) -> Callable:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps`` steps.

    ``v(n) = init * ((1 - alpha) * (0.5 * (1 + cos(pi * m / decay_steps)))**exponent + alpha)``
    with ``m = min(n, decay_steps)`` (Loshchilov & Hutter, 2016).

    >>> from funcnet import optim
    >>> float(optim.cosine_decay_schedule(1.0, decay_steps=4)(2))
    0.5
    """
    if not decay_steps > 0:
        raise ValueError(f"cosine_decay_schedule needs positive decay_steps, got {decay_steps}")
    args = {"init_value": init_value, "decay_steps": decay_steps}
    if alpha:
        args["alpha"] = alpha
    if exponent != 1.0:
        args["exponent"] = exponent
    steps = float(decay_steps)

    def schedule(count):
        m = fnp.minimum(count, steps)
        cosine = 0.5 * (1 + fnp.cos(np.pi * m / steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)

    return _Schedule(schedule, "cosine_decay_schedule", args)


def join_schedules(schedules: Sequence[Callable], boundaries: Sequence[int]) -> Callable:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on; each sees the steps since its start.

    >>> from funcnet import optim
    >>> s = optim.join_schedules([optim.constant_schedule(1.0),
    ...                           optim.linear_schedule(1.0, 0.0, 10)], [5])
    >>> float(s(4)), float(s(6))
    (1.0, 0.9)
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules needs one boundary fewer than schedules: got "
                         f"{len(schedules)} schedules and {len(boundaries)} boundaries")

    def schedule(count):
        out = schedules[0](count)
        for boundary, s in zip(boundaries, schedules[1:]):
            out = fnp.where(count < boundary, out, s(count - boundary))
        return out

    return _Schedule(schedule, "join_schedules",
                     {"schedules": schedules, "boundaries": boundaries})


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps: int, decay_steps: int,
                                 end_value=0.0, exponent=1.0) -> Callable:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine
    decay to ``end_value``; ``decay_steps`` counts the warm-up too.

    >>> from funcnet import optim
    >>> s = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=110)
    >>> float(s(5)), float(s(10)), round(float(s(60)), 6)
    (0.5, 1.0, 0.5)
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    inner = join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])
    args = {"init_value": init_value, "peak_value": peak_value, "warmup_steps": warmup_steps,
            "decay_steps": decay_steps}
    if end_value:
        args["end_value"] = end_value
    if exponent != 1.0:
        args["exponent"] = exponent
    return _Schedule(inner, "warmup_cosine_decay_schedule", args)


def piecewise_constant_schedule(init_value, boundaries_and_scales: dict | None = None
                                ) -> Callable:
    """``init_value`` multiplied by ``scale`` at each boundary step ``{boundary: scale}``.

    At step ``n`` the value is ``init_value`` times the product of the
    scales of all boundaries ``<= n``.  Scales must be non-negative.

    >>> from funcnet import optim
    >>> s = optim.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
    >>> [round(float(s(n)), 3) for n in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.05, 0.05]
    """
    pairs = sorted((boundaries_and_scales or {}).items())
    if any(scale < 0 for _, scale in pairs):
        raise ValueError("piecewise_constant_schedule needs non-negative scales")

    def schedule(count):
        v = init_value
        for threshold, scale in pairs:
            indicator = fnp.maximum(0.0, fnp.sign(threshold - count))
            v = v * indicator + (1 - indicator) * scale * v
        return v

    args = {"init_value": init_value}
    if pairs:
        args["boundaries_and_scales"] = dict(pairs)
    return _Schedule(schedule, "piecewise_constant_schedule", args)
