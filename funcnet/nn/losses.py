"""Loss functions, numerically stable for large logits and extreme probabilities.

Every loss takes ``(predictions, targets)`` (named as in optax) and two
optional keyword arguments:

- ``weights``: an array that broadcasts against the per-example losses
  (for example one weight per example, or a 0/1 mask of padding);
- ``reduction``: ``"mean"`` (the default: the weighted mean
  ``sum(weights * loss) / sum(weights)``, the plain mean without weights),
  ``"sum"`` (``sum(weights * loss)``) or ``"none"`` (``weights * loss`` per
  example, the shape optax's losses return).

*Per-example* means elementwise for the regression and binary losses
(``l1_loss``, ``l2_loss``, ``mse``, ``huber_loss``,
``sigmoid_binary_cross_entropy``, ``hinge_loss``) and reduced over the class
(last) axis for the distribution losses (``softmax_cross_entropy*``,
``cosine_distance``, ``kl_divergence``).

Cross-entropies are computed from logits with log-sum-exp and log-sigmoid
forms, so logits of ``±1e4`` give exact, finite losses and gradients.

>>> import funcnet.numpy as fnp
>>> from funcnet.nn import losses
>>> logits = fnp.array([[1e4, -1e4], [0.0, 0.0]])
>>> losses.softmax_cross_entropy_with_integer_labels(logits, fnp.array([0, 1]))
array(0.3465736, dtype=float32)
>>> losses.softmax_cross_entropy_with_integer_labels(logits, fnp.array([0, 1]),
...                                                  reduction="none")
array([0.       , 0.6931472], dtype=float32)
"""

from __future__ import annotations

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.nn.activations import log_softmax, softplus

__all__ = ["l1_loss", "l2_loss", "mse", "squared_error", "huber_loss", "softmax_cross_entropy",
           "softmax_cross_entropy_with_integer_labels", "sigmoid_binary_cross_entropy",
           "hinge_loss", "cosine_distance", "kl_divergence", "reduce_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(loss, weights=None, reduction: str = "mean"):
    """Weight and reduce per-example losses (what every loss here ends with).

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn.losses import reduce_loss
    >>> reduce_loss(fnp.array([1.0, 3.0]), weights=fnp.array([1.0, 0.0]))
    array(1., dtype=float32)
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if weights is not None:
        weights = fnp.asarray(weights)
        if weights.dtype != loss.dtype:
            weights = weights.astype(loss.dtype)
        loss, weights = fnp.broadcast_arrays(loss, weights)
        loss = loss * weights
    if reduction == "none":
        return loss
    total = fnp.sum(loss)
    if reduction == "sum":
        return total
    if weights is None:
        return fnp.divide(total, max(loss.size, 1))
    return fnp.divide(total, fnp.sum(weights))


def _float_pair(predictions, targets):
    p = fnp.asarray(predictions)
    if not fnp.issubdtype(p.dtype, fnp.inexact):
        p = p.astype(fn.config.default_float)
    t = fnp.asarray(targets)
    if t.dtype != p.dtype:
        t = t.astype(p.dtype)
    return p, t


# ---------------------------------------------------------------------------
# Regression


def l1_loss(predictions, targets, *, weights=None, reduction: str = "mean"):
    """Absolute error ``|predictions - targets|``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.l1_loss(fnp.array([1.0, 2.0]), fnp.array([0.0, 4.0]))
    array(1.5, dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    return reduce_loss(fnp.abs(p - t), weights, reduction)


def l2_loss(predictions, targets, *, weights=None, reduction: str = "mean"):
    """Half the squared error, ``0.5 * (predictions - targets) ** 2`` (optax's ``l2_loss``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.l2_loss(fnp.array([1.0, 2.0]), fnp.array([0.0, 4.0]))
    array(1.25, dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    d = p - t
    return reduce_loss(0.5 * (d * d), weights, reduction)


def mse(predictions, targets, *, weights=None, reduction: str = "mean"):
    """Squared error ``(predictions - targets) ** 2``; with the default reduction, the mean
    squared error.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.mse(fnp.array([1.0, 2.0]), fnp.array([0.0, 4.0]))
    array(2.5, dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    d = p - t
    return reduce_loss(d * d, weights, reduction)


squared_error = mse


def huber_loss(predictions, targets, delta: float = 1.0, *, weights=None,
               reduction: str = "mean"):
    """Huber loss: ``0.5 e**2`` where ``|e| <= delta``, else ``delta * (|e| - 0.5 delta)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.huber_loss(fnp.array([0.5, 3.0]), fnp.array([0.0, 0.0]), reduction="none")
    array([0.125, 2.5  ], dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    err = fnp.abs(p - t)
    quadratic = fnp.minimum(err, delta)
    linear = err - quadratic
    return reduce_loss(0.5 * (quadratic * quadratic) + delta * linear, weights, reduction)


# ---------------------------------------------------------------------------
# Classification


def softmax_cross_entropy(logits, labels, *, axis: int = -1, weights=None,
                          reduction: str = "mean"):
    """Cross-entropy ``-sum(labels * log_softmax(logits), axis)`` with probability ``labels``.

    ``labels`` is a distribution over classes (one-hot or smoothed) with the
    shape of ``logits``.  Classes with label 0 contribute 0, even with a
    logit of ``-inf`` (a masked-out class).

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.softmax_cross_entropy(fnp.array([[0.0, 0.0]]), fnp.array([[1.0, 0.0]]))
    array(0.6931472, dtype=float32)
    """
    logits, labels = _float_pair(logits, labels)
    logp = log_softmax(logits, axis=axis)
    # classes with label 0 add 0, even where a logit is -inf (a masked-out class)
    per_example = -fnp.sum(labels * fnp.where(labels != 0, logp, 0), axis=axis)
    return reduce_loss(per_example, weights, reduction)


def softmax_cross_entropy_with_integer_labels(logits, labels, *, axis: int = -1,
                                              weights=None, reduction: str = "mean"):
    """Cross-entropy with integer class ``labels``: ``logsumexp(logits) - logits[label]``.

    ``labels`` has the shape of ``logits`` without ``axis``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.softmax_cross_entropy_with_integer_labels(fnp.array([[0.0, 0.0]]),
    ...                                                  fnp.array([1]))
    array(0.6931472, dtype=float32)
    """
    logits = fnp.asarray(logits)
    if not fnp.issubdtype(logits.dtype, fnp.inexact):
        logits = logits.astype(fn.config.default_float)
    labels = fnp.asarray(labels)
    if not fnp.issubdtype(labels.dtype, fnp.integer):
        raise TypeError(f"softmax_cross_entropy_with_integer_labels: labels must be integers, "
                        f"got {labels.dtype}; for probability labels use "
                        "softmax_cross_entropy")
    logp = log_softmax(logits, axis=axis)
    picked = fnp.take_along_axis(logp, fnp.expand_dims(labels, axis), axis=axis)
    return reduce_loss(-fnp.squeeze(picked, axis=axis), weights, reduction)


def sigmoid_binary_cross_entropy(logits, labels, *, weights=None, reduction: str = "mean"):
    """Binary cross-entropy from logits: ``softplus(x) - x * labels``, elementwise.

    Equal to ``-labels log sigmoid(x) - (1 - labels) log(1 - sigmoid(x))``
    without ever forming ``sigmoid(x)``; ``labels`` may be soft (in [0, 1]).

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.sigmoid_binary_cross_entropy(fnp.array([1e4, -1e4, 0.0]),
    ...                                     fnp.array([1.0, 0.0, 1.0]), reduction="none")
    array([0.       , 0.       , 0.6931472], dtype=float32)
    """
    x, y = _float_pair(logits, labels)
    return reduce_loss(softplus(x) - x * y, weights, reduction)


def hinge_loss(predictions, targets, *, weights=None, reduction: str = "mean"):
    """Hinge loss ``max(0, 1 - predictions * targets)`` with ``targets`` in ``{-1, +1}``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.hinge_loss(fnp.array([2.0, 0.5, -1.0]), fnp.array([1, 1, 1]),
    ...                   reduction="none")
    array([0. , 0.5, 2. ], dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    margin = 1 - p * t
    return reduce_loss(fnp.where(margin > 0, margin, 0), weights, reduction)


# ---------------------------------------------------------------------------
# Distances between vectors and distributions


def _safe_norm(x, axis):
    """Euclidean norm along ``axis`` whose gradient is 0 (not NaN) at the zero vector."""
    sq = fnp.sum(x * x, axis=axis)
    nonzero = sq > 0
    return fnp.where(nonzero, fnp.sqrt(fnp.where(nonzero, sq, 1)), 0)


def cosine_distance(predictions, targets, *, axis: int = -1, epsilon: float = 1e-8,
                    weights=None, reduction: str = "mean"):
    """``1 - cos(predictions, targets)`` along ``axis``.

    Each norm is at least ``epsilon``, so zero vectors give distance 1 and
    finite gradients.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.cosine_distance(fnp.array([[1.0, 0.0], [1.0, 0.0]]),
    ...                        fnp.array([[0.0, 2.0], [3.0, 0.0]]), reduction="none")
    array([1., 0.], dtype=float32)
    """
    p, t = _float_pair(predictions, targets)
    norms = fnp.maximum(_safe_norm(p, axis), epsilon) * fnp.maximum(_safe_norm(t, axis),
                                                                    epsilon)
    return reduce_loss(1 - fnp.sum(p * t, axis=axis) / norms, weights, reduction)


def kl_divergence(log_predictions, targets, *, axis: int = -1, weights=None,
                  reduction: str = "mean"):
    """``KL(targets || predictions) = sum(targets * (log targets - log_predictions), axis)``.

    ``log_predictions`` are log-probabilities (e.g. from ``log_softmax``) and
    ``targets`` probabilities; terms with ``targets == 0`` are 0 (with zero
    gradient), as ``0 log 0 = 0``, even where a log-prediction is ``-inf``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet.nn import losses
    >>> losses.kl_divergence(fnp.log(fnp.array([[0.5, 0.5]])), fnp.array([[1.0, 0.0]]))
    array(0.6931472, dtype=float32)
    """
    logq, p = _float_pair(log_predictions, targets)
    positive = p > 0
    p_log_p = fnp.where(positive, p * fnp.log(fnp.where(positive, p, 1)), 0)
    per_example = fnp.sum(p_log_p - p * fnp.where(positive, logq, 0), axis=axis)
    return reduce_loss(per_example, weights, reduction)
