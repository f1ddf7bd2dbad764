"""Gradient clipping: ``clip``, ``clip_by_global_norm`` and ``global_norm``.

``clip_by_global_norm`` matches optax's arithmetic by default and fixes its
sharp corners: the pre-clip norm is kept in the state, a zero gradient with
``max_norm=0`` gives zeros (not NaN), and a ``nonfinite`` policy decides what
happens when a gradient holds NaN or infinity.

>>> import funcnet.numpy as fnp
>>> from funcnet import optim
>>> tx = optim.clip_by_global_norm(1.0, nonfinite="skip")
>>> state = tx.init(fnp.zeros(2))
>>> tx.update(fnp.array([fnp.nan, 1.0]), state)[0]     # skipped: zeros, not NaN
array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax
from funcnet.optim import _numerics as nx
from funcnet.optim.base import EmptyState, GradientTransformation

__all__ = ["clip", "clip_by_global_norm", "global_norm", "ClipByGlobalNormState"]

_POLICIES = ("propagate", "skip", "raise")


def _init_empty(params):
    return EmptyState()


def clip(max_delta) -> GradientTransformation:
    """Clip every update elementwise into ``[-max_delta, max_delta]``.

    State: :class:`~funcnet.optim.EmptyState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> optim.clip(1.0).update(fnp.array([-3.0, 0.5, 2.0]), optim.EmptyState())[0]
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        return fn.tree.map(lambda g: fnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(_init_empty, update, name="clip",
                                  hyperparams={"max_delta": max_delta})


def global_norm(updates):
    """The 2-norm of all elements of all leaves, ``sqrt(sum_leaves sum(|x|**2))``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> float(optim.global_norm({"a": fnp.array([3.0]), "b": fnp.array([[4.0]])}))
    5.0
    """
    return fnp.sqrt(nx.tree_sum_squares(updates))


def _robust_norm(updates):
    """The global norm computed as ``s * ||x / s||`` with ``s = max|x|``: no overflow for
    finite inputs, and NaN or infinity exactly when some element is not finite."""
    leaves = [x for x in fn.tree.leaves(updates) if fnp.size(x) > 0]
    if not leaves:
        return fnp.sqrt(nx.tree_sum_squares(updates))
    m = fnp.max(fnp.abs(leaves[0]))
    for x in leaves[1:]:
        m = fnp.maximum(m, fnp.max(fnp.abs(x)))
    s = fnp.where(fnp.logical_and(m > 0, fnp.isfinite(m)), m, 1)
    total = 0
    for x in leaves:
        y = x / s.astype(nx.dtype_of(x))
        total = total + fnp.sum(nx.abs_sq(y))
    return fnp.where(fnp.isfinite(m), s * fnp.sqrt(total), m)


class ClipByGlobalNormState(NamedTuple):
    """``norm``: the global norm of the last incoming updates (before clipping);
    ``nonfinite_count``: how many updates so far had a NaN or infinite norm (int32).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.clip_by_global_norm(1.0).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ClipByGlobalNormState', ('norm', 'nonfinite_count'))
    """

    norm: Any
    nonfinite_count: Any


def _nonfinite_paths(updates) -> list[str]:
    bad = []
    for path, x in fn.tree.flatten_with_path(updates)[0]:
        if nx.dtype_of(x).kind in "fc" and not bool(fnp.all(fnp.isfinite(x))):
            bad.append(fn.tree.keystr(path) or "<root>")
    return bad


def clip_by_global_norm(max_norm, nonfinite: str = "propagate") -> GradientTransformation:
    """Scale all updates by ``max_norm / g`` when their global norm ``g`` exceeds ``max_norm``.

    ``u = g_i`` if ``g < max_norm`` else ``g_i / g * max_norm`` (optax's
    arithmetic).  A zero gradient stays zero, also with ``max_norm=0``.

    ``nonfinite`` says what happens when the norm is NaN or infinite:

    - ``"propagate"`` (default, as optax): the arithmetic above runs as is, so
      NaN spreads to every leaf;
    - ``"skip"``: the update is all zeros (finite leaves never become NaN);
    - ``"raise"``: eagerly, ``FloatingPointError`` naming the offending
      leaves; under ``jit``/``vmap`` (where Python cannot raise mid-step) it
      skips like ``"skip"`` and the step is visible in the state: check
      ``optim.get(state, "nonfinite_count")`` after the step.

    The non-default policies compute the norm without overflow (scaled by
    the largest element).  State: :class:`ClipByGlobalNormState`
    ``(norm, nonfinite_count)`` -- the pre-clip norm is readable with
    ``optim.get(state, "norm")``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.clip_by_global_norm(1.0)
    >>> u, state = tx.update(fnp.array([3.0, 4.0]), tx.init(fnp.zeros(2)))
    >>> u, float(state.norm)
    (array([0.6, 0.8], dtype=float32), 5.0)
    """
    if nonfinite not in _POLICIES:
        raise ValueError(f"clip_by_global_norm: nonfinite must be one of {_POLICIES}, "
                         f"got {nonfinite!r}")

    def init(params):
        return ClipByGlobalNormState(norm=fnp.zeros((), dtype=nx.float_dtype(params)),
                                     nonfinite_count=nx.zeros_count())

    def update(updates, state, params=None, **extra_args):
        g_norm = global_norm(updates) if nonfinite == "propagate" else _robust_norm(updates)
        finite = fnp.isfinite(g_norm)
        if nonfinite == "raise" and nx.is_concrete(g_norm) and not bool(finite):
            raise FloatingPointError(
                f"clip_by_global_norm: the gradient's global norm is {float(g_norm)}; "
                f"non-finite values in {', '.join(_nonfinite_paths(updates))}")
        keep = g_norm < max_norm
        # g_norm == 0 (so max_norm <= 0, or a norm that underflowed): t / 1 * max_norm, not 0/0
        denom = fnp.where(g_norm == 0, 1, g_norm)

        def clip_leaf(t):
            clipped = t / nx.cast(denom, nx.dtype_of(t))
            if not (isinstance(max_norm, (int, float)) and max_norm == 1):
                clipped = clipped * max_norm  # (t / g) * max_norm, optax's order
            return clipped.astype(nx.dtype_of(t))

        branches = [lambda u: u, lambda u: fn.tree.map(clip_leaf, u)]
        index = fnp.where(keep, 0, 1)
        if nonfinite != "propagate":
            branches.append(nx.tree_zeros_like)
            index = fnp.where(finite, index, 2)
        if nx.is_concrete(index):  # eager: compute only the branch that is taken
            new_updates = branches[int(index)](updates)
        else:  # traced: one branch runs (both, selected, under vmap)
            new_updates = lax.switch(index, branches, updates)
        count = fnp.where(finite, state.nonfinite_count,
                          nx.safe_increment(state.nonfinite_count))
        return new_updates, ClipByGlobalNormState(
            norm=nx.cast(g_norm, nx.dtype_of(state.norm)), nonfinite_count=count)

    def status(state):
        return {"norm": state.norm, "nonfinite_count": state.nonfinite_count}

    return GradientTransformation(init, update, name="clip_by_global_norm",
                                  hyperparams={"max_norm": max_norm, "nonfinite": nonfinite},
                                  status=status)
