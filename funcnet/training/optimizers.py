"""Optimizers and learning-rate schedules by name (what the command line offers).

:func:`make_optimizer` builds an ``optim`` transformation from a name, a
learning rate (a number or a schedule), and the usual options; with
``clip_norm`` it is chained after ``optim.clip_by_global_norm``.
:func:`make_schedule` builds ``constant``, ``cosine`` or ``warmup-cosine``
learning-rate schedules for a number of steps.

>>> from funcnet import optim
>>> from funcnet.training import make_optimizer, make_schedule
>>> lr = make_schedule("warmup-cosine", 1e-3, total_steps=100, warmup_steps=10)
>>> round(float(lr(10)), 6), round(float(lr(100)), 6)
(0.001, 0.0)
>>> tx = make_optimizer("adamw", lr, weight_decay=1e-4, clip_norm=1.0)
>>> print(optim.describe(tx).splitlines()[1])
├─ clip_by_global_norm(max_norm=1, nonfinite='propagate')
"""

from __future__ import annotations

from funcnet import optim

__all__ = ["OPTIMIZERS", "SCHEDULES", "DEFAULT_LEARNING_RATES", "make_optimizer",
           "make_schedule"]

#: learning rates that work for the command line's models with each optimizer
DEFAULT_LEARNING_RATES = {"adam": 3e-3, "adamw": 3e-3, "nadam": 3e-3, "sgd": 0.05,
                          "rmsprop": 1e-3, "adagrad": 0.05, "lamb": 3e-3, "lion": 3e-4}
OPTIMIZERS = tuple(DEFAULT_LEARNING_RATES)
SCHEDULES = ("constant", "cosine", "warmup-cosine")


def make_schedule(name: str, learning_rate: float, total_steps: int, warmup_steps: int = 0):
    """A learning rate for ``total_steps`` steps: ``constant`` (the number itself),
    ``cosine`` (``optim.cosine_decay_schedule`` to 0) or ``warmup-cosine`` (linear warmup
    from 0 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``).

    >>> from funcnet.training import make_schedule
    >>> make_schedule("constant", 0.1, 10)
    0.1
    >>> round(float(make_schedule("cosine", 0.1, 10)(5)), 4)
    0.05
    """
    if name == "constant":
        return float(learning_rate)
    total_steps = max(int(total_steps), 1)
    if name == "cosine":
        return optim.cosine_decay_schedule(learning_rate, total_steps)
    if name == "warmup-cosine":
        warmup = min(max(int(warmup_steps), 0), total_steps)
        return optim.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, total_steps)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(name: str, learning_rate, *, momentum: float | None = None,
                   weight_decay: float | None = None,
                   clip_norm: float | None = None) -> optim.GradientTransformation:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) with ``learning_rate``.

    ``momentum`` applies to ``sgd`` (``None`` or 0: plain SGD);
    ``weight_decay`` to ``adamw``, ``lamb`` and ``lion`` (``None``: optax's
    default).  ``clip_norm`` clips the gradient's global norm first.

    >>> from funcnet.training import make_optimizer
    >>> make_optimizer("sgd", 0.1, momentum=0.9).init({"w": [1.0]})[0].trace
    {'w': [array(0., dtype=float32)]}
    """
    wd = {} if weight_decay is None else {"weight_decay": float(weight_decay)}
    if name == "sgd":
        tx = optim.sgd(learning_rate, momentum=momentum or None)
    elif name == "adam":
        tx = optim.adam(learning_rate)
    elif name == "adamw":
        tx = optim.adamw(learning_rate, **wd)
    elif name == "nadam":
        tx = optim.nadam(learning_rate)
    elif name == "rmsprop":
        tx = optim.rmsprop(learning_rate)
    elif name == "adagrad":
        tx = optim.adagrad(learning_rate)
    elif name == "lamb":
        tx = optim.lamb(learning_rate, **wd)
    elif name == "lion":
        tx = optim.lion(learning_rate, **wd)
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if clip_norm is not None:
        tx = optim.chain(optim.clip_by_global_norm(float(clip_norm)), tx)
    return tx
