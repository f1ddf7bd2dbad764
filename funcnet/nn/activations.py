"""Activation functions and other small pure functions of neural networks.

Each works on arrays of any shape, eagerly and under every transform, and
keeps the input's floating dtype (integer inputs are computed in
``fn.config.default_float``, except by :func:`relu`, :func:`relu6` and
:func:`leaky_relu`, which keep integers as integers, as in JAX).

Derivatives follow JAX's conventions at the kinks: ``relu`` and ``relu6``
have derivative 0 at 0 (and ``relu6`` at 6), ``leaky_relu`` has derivative 1
at 0.  Every function is written with ``fnp.where`` (a ``select``), whose
derivative is a cheap select of the tangent; the same derivatives hold under
``jit`` in either order of composition.  The saturating functions
(``sigmoid``, ``log_sigmoid``, ``softplus``, ``softmax``, ``log_softmax``,
``logsumexp``) never overflow and have finite gradients for inputs of any
size, such as ``±1e4``.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn
>>> nn.relu(fnp.array([-2.0, 0.0, 3.0]))
array([0., 0., 3.], dtype=float32)
>>> nn.softmax(fnp.array([1e4, 1e4]))
array([0.5, 0.5], dtype=float32)
"""

from __future__ import annotations

import math

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax

__all__ = ["relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "sigmoid",
           "log_sigmoid", "softplus", "tanh", "softmax", "log_softmax", "logsumexp", "one_hot",
           "standardize"]


def _floating(x):
    """``x`` as an array of a floating dtype (integers and bools in the default float)."""
    x = fnp.asarray(x)
    if not fnp.issubdtype(x.dtype, fnp.inexact):
        x = x.astype(fn.config.default_float)
    return x


def _minus_abs(x):
    """``-|x|`` as a select, so that its derivative at 0 is -1 (the ``x >= 0`` side).

    The functions below split at ``x >= 0`` and use this on the same side, so
    their derivatives at 0 come out exactly right (``|x|``'s derivative at 0
    is 0, which would lose half of them).
    """
    return fnp.where(x >= 0, -x, x)


# ---------------------------------------------------------------------------
# Piecewise-linear


def relu(x):
    """Rectified linear unit ``max(x, 0)``, with derivative 0 at 0 (as in JAX).

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.relu(fnp.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.], dtype=float32)
    >>> fn.grad(lambda x: nn.relu(x).sum())(fnp.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x > 0, x, 0)


def relu6(x):
    """``min(max(x, 0), 6)``, with derivative 0 at 0 and at 6.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.relu6(fnp.array([-1.0, 3.0, 9.0]))
    array([0., 3., 6.], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x > 0, fnp.where(x < 6, x, 6), 0)


def leaky_relu(x, negative_slope: float = 0.01):
    """``x`` where ``x >= 0``, else ``negative_slope * x``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.leaky_relu(fnp.array([-2.0, 3.0]), negative_slope=0.1)
    array([-0.2,  3. ], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x >= 0, x, negative_slope * x)


# ---------------------------------------------------------------------------
# Smooth


def elu(x, alpha: float = 1.0):
    """Exponential linear unit: ``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    The exponential only ever sees non-positive values (the double-``where``
    pattern), so large inputs neither overflow nor give NaN gradients.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.elu(fnp.array([-1e4, 0.0, 2.0]))
    array([-1.,  0.,  2.], dtype=float32)
    """
    x = _floating(x)
    positive = x > 0
    return fnp.where(positive, x, alpha * fnp.expm1(fnp.where(positive, 0, x)))


def _erf(x):
    erf = getattr(lax, "erf", None)
    if erf is None:  # until funcnet.lax exports erf (the primitive exists in funcnet.ops)
        from funcnet.ops.elementwise import erf
    return erf(x)


def gelu(x, approximate: bool = True):
    """Gaussian error linear unit ``x * Phi(x)`` (Hendrycks & Gimpel, 2016).

    ``approximate=True`` (the default, as in JAX) uses the tanh form
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``; ``False`` the exact
    ``0.5 x (1 + erf(x / sqrt(2)))``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.gelu(fnp.array([-3.0, 0.0, 1.0]))
    array([-0.00363734,  0.        ,  0.841192  ], dtype=float32)
    >>> nn.gelu(fnp.array([1.0]), approximate=False)
    array([0.8413447], dtype=float32)
    """
    x = _floating(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + fnp.tanh(c * (x + 0.044715 * (x * x * x))))
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))``, without overflow for any ``x``.

    Computed from ``exp(-|x|)``, so ``sigmoid(-100)`` is a tiny positive
    number (not 0 by cancellation) and every gradient is finite.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.sigmoid(fnp.array([-1e4, 0.0, 1e4]))
    array([0. , 0.5, 1. ], dtype=float32)
    """
    x = _floating(x)
    e = fnp.exp(_minus_abs(x))  # in (0, 1]
    return fnp.where(x >= 0, 1, e) / (1 + e)


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, accurate and finite for large ``|x|``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.log_sigmoid(fnp.array([-1e4, 0.0, 1e4]))
    array([-1.000000e+04, -6.931472e-01,  0.000000e+00], dtype=float32)
    """
    x = _floating(x)
    return fnp.where(x >= 0, 0, x) - fnp.log1p(fnp.exp(_minus_abs(x)))


def softplus(x):
    """``log(1 + exp(x))``, accurate and finite for large ``|x|``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.softplus(fnp.array([-1e4, 0.0, 1e4]))
    array([0.000000e+00, 6.931472e-01, 1.000000e+04], dtype=float32)
    """
    x = _floating(x)
    return fnp.where(x >= 0, x, 0) + fnp.log1p(fnp.exp(_minus_abs(x)))


def silu(x):
    """Sigmoid-weighted linear unit ``x * sigmoid(x)`` (also called swish).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.silu(fnp.array([0.0, 1.0]))
    array([0.       , 0.7310586], dtype=float32)
    """
    x = _floating(x)
    return x * sigmoid(x)


swish = silu


def tanh(x):
    """Hyperbolic tangent (the same as ``fnp.tanh``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.tanh(fnp.array([0.0]))
    array([0.], dtype=float32)
    """
    return fnp.tanh(x)


# ---------------------------------------------------------------------------
# Normalising: softmax and friends


def _stable_max(x, axis):
    """The max along ``axis`` (kept), 0 where it is infinite; no gradient flows through it."""
    m = fnp.max(x, axis=axis, keepdims=True)
    return fn.stop_gradient(fnp.where(fnp.isfinite(m), m, 0))


def logsumexp(a, axis=None, b=None, keepdims: bool = False):
    """``log(sum(b * exp(a), axis))``, computed stably by shifting by the maximum.

    ``b`` (optional) weights the terms and broadcasts against ``a``.  Inputs
    of ``-inf`` contribute nothing; ``+inf`` gives ``+inf``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.logsumexp(fnp.array([1e4, 1e4]))
    array(10000.693, dtype=float32)
    >>> nn.logsumexp(fnp.array([[0.0, -fnp.inf], [1.0, 1.0]]), axis=1)
    array([0.       , 1.6931472], dtype=float32)
    """
    a = _floating(a)
    m = _stable_max(a, axis)
    e = fnp.exp(a - m)
    if b is not None:
        e = b * e
    out = fnp.log(fnp.sum(e, axis=axis, keepdims=True)) + m
    if not keepdims:
        out = fnp.squeeze(out, axis=axis) if axis is not None else fnp.reshape(out, ())
    return out


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum (no overflow).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.softmax(fnp.array([0.0, 0.0, fnp.log(2.0)]))
    array([0.25, 0.25, 0.5 ], dtype=float32)
    """
    x = _floating(x)
    e = fnp.exp(x - _stable_max(x, axis))
    return e / fnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis)``: log-probabilities, finite for logits as large as ``±1e4``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.log_softmax(fnp.array([1e4, -1e4]))
    array([     0., -20000.], dtype=float32)
    """
    x = _floating(x)
    shifted = x - _stable_max(x, axis)
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Encoding and normalisation helpers


def one_hot(x, num_classes: int, *, dtype=None, axis: int = -1):
    """One-hot encoding of integer ``x``: a new axis of length ``num_classes``.

    Values outside ``[0, num_classes)`` give all-zero rows (as in JAX).
    ``dtype`` defaults to ``fn.config.default_float``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.one_hot(fnp.array([0, 2, 5]), 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    x = fnp.asarray(x)
    hot = fnp.expand_dims(x, -1) == fnp.arange(int(num_classes))
    hot = hot.astype(fn.config.default_float if dtype is None else dtype)
    if axis not in (-1, x.ndim):
        hot = fnp.moveaxis(hot, -1, axis)
    return hot


def standardize(x, axis=-1, mean=None, variance=None, epsilon: float = 1e-5):
    """``(x - mean) / sqrt(variance + epsilon)`` along ``axis``.

    ``mean`` and ``variance`` are computed from ``x`` unless given (they must
    then broadcast against ``x``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.standardize(fnp.array([1.0, 2.0, 3.0]), epsilon=0.0)
    array([-1.2247449,  0.       ,  1.2247449], dtype=float32)
    """
    x = _floating(x)
    if mean is None:
        mean = fnp.mean(x, axis=axis, keepdims=True)
    centred = x - mean
    if variance is None:
        variance = fnp.mean(centred * centred, axis=axis, keepdims=True)
    return centred / fnp.sqrt(variance + epsilon)
