"""``funcnet.optim``: stateless, optax-compatible gradient transformations, schedules and
second-order methods.

An optimizer is a :class:`GradientTransformation` ``(init, update)``; its
state is a pytree of NamedTuples, readable by name with :func:`get`.
Updates are added to the params with :func:`apply_updates`.  The names and
the arithmetic are optax's; ``docs/optim.md`` has the table of every
transform, its state and its formula.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import optim
>>> loss = lambda p: fnp.sum((p["w"] - 1.0) ** 2)
>>> tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(0.1))
>>> params = {"w": fnp.zeros(3)}
>>> state = tx.init(params)
>>> @fn.jit
... def step(params, state):
...     updates, state = tx.update(fn.grad(loss)(params), state, params)
...     return optim.apply_updates(params, updates), state
>>> for _ in range(50):
...     params, state = step(params, state)
>>> params["w"].round(1), int(optim.get(state, "count"))
(array([1., 1., 1.], dtype=float32), 50)
"""

from funcnet.optim.aliases import adagrad, adam, adamw, lamb, lion, nadam, nadamw, rmsprop, sgd
from funcnet.optim.base import (EmptyState, GradientTransformation, Schedule, ScalarOrSchedule,
                                apply_updates, chain, describe, get, get_all, identity,
                                named_chain, set, set_to_zero, stateless)
from funcnet.optim.clipping import ClipByGlobalNormState, clip, clip_by_global_norm, global_norm
from funcnet.optim.linesearch import (BacktrackingLinesearchInfo,
                                      ScaleByBacktrackingLinesearchState,
                                      ScaleByZoomLinesearchState, ZoomLinesearchInfo,
                                      scale_by_backtracking_linesearch, scale_by_zoom_linesearch,
                                      value_and_grad_from_state)
from funcnet.optim.schedules import (constant_schedule, cosine_decay_schedule, exponential_decay,
                                     join_schedules, linear_schedule, piecewise_constant_schedule,
                                     polynomial_schedule, warmup_cosine_decay_schedule)
from funcnet.optim.second_order import (ScaleByLBFGSState, ScaleByNewtonCGState, lbfgs, newton,
                                        newton_cg, scale_by_lbfgs, scale_by_newton,
                                        scale_by_newton_cg)
from funcnet.optim.transforms import (EmaState, ScaleByAdamState, ScaleByLionState,
                                      ScaleByRmsState, ScaleByRmsWithCountState,
                                      ScaleByRssState, ScaleByRStdDevState,
                                      ScaleByRStdDevWithCountState, ScaleByScheduleState,
                                      TraceState, WeightDecaySchedule, add_decayed_weights, ema,
                                      scale, scale_by_adam, scale_by_learning_rate,
                                      scale_by_lion, scale_by_rms, scale_by_rss,
                                      scale_by_schedule, scale_by_stddev, scale_by_trust_ratio,
                                      trace)
from funcnet.optim.wrappers import (ApplyIfFiniteState, InjectHyperparamsState, MaskedNode,
                                    MaskedState, MultiSteps, MultiStepsState,
                                    MultiTransformState, apply_if_finite, by_path,
                                    inject_hyperparams, masked, multi_transform, skip_not_finite)

__all__ = [
    # core
    "GradientTransformation", "EmptyState", "identity", "set_to_zero", "stateless",
    "apply_updates", "chain", "named_chain", "get", "get_all", "describe", "Schedule",
    "ScalarOrSchedule",
    # ``optim.set`` is public too, but left out of __all__ so that a star-import cannot
    # shadow the built-in ``set``.
    # transforms
    "scale", "scale_by_learning_rate", "scale_by_schedule", "scale_by_adam", "scale_by_rms",
    "scale_by_stddev", "scale_by_rss", "scale_by_lion", "scale_by_trust_ratio", "trace", "ema",
    "add_decayed_weights", "clip", "clip_by_global_norm", "global_norm",
    # wrappers
    "masked", "multi_transform", "by_path", "apply_if_finite", "inject_hyperparams",
    "MultiSteps", "skip_not_finite", "MaskedNode",
    # aliases
    "sgd", "adam", "adamw", "nadam", "nadamw", "rmsprop", "adagrad", "lamb", "lion",
    # schedules
    "constant_schedule", "polynomial_schedule", "linear_schedule", "exponential_decay",
    "cosine_decay_schedule", "warmup_cosine_decay_schedule", "piecewise_constant_schedule",
    "join_schedules",
    # second order and line searches
    "newton", "newton_cg", "lbfgs", "scale_by_newton", "scale_by_newton_cg", "scale_by_lbfgs",
    "scale_by_backtracking_linesearch", "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
    # states
    "ScaleByAdamState", "ScaleByRmsState", "ScaleByRmsWithCountState", "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState", "ScaleByRssState", "ScaleByLionState",
    "ScaleByScheduleState", "TraceState", "EmaState", "WeightDecaySchedule",
    "ClipByGlobalNormState", "MaskedState", "MultiTransformState", "ApplyIfFiniteState",
    "InjectHyperparamsState", "MultiStepsState", "ScaleByNewtonCGState", "ScaleByLBFGSState",
    "ScaleByBacktrackingLinesearchState", "BacktrackingLinesearchInfo",
    "ScaleByZoomLinesearchState", "ZoomLinesearchInfo",
]
