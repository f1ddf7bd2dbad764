"""Normalisation layers: ``LayerNorm``, ``GroupNorm`` and the stateful ``BatchNorm``.

``BatchNorm`` is funcnet's stateful layer (see :mod:`funcnet.nn.layers.base`
for the convention): its running statistics live in a ``state`` dict that
``init`` returns and ``apply`` takes and returns updated::

    shape, params, state = bn.init(key, input_shape)
    y, state = bn.apply(params, x, state=state, train=True)    # batch statistics
    y, _ = bn.apply(params, x, state=state)                    # running statistics

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> bn = nn.BatchNorm(momentum=0.9)
>>> shape, params, state = bn.init(random.key(0), (-1, 3))
>>> y, state = bn.apply(params, fnp.full((4, 3), 2.0), state=state, train=True)
>>> state["mean"]
array([0.2, 0.2, 0.2], dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import distributed, random
from funcnet.nn import initializers
from funcnet.nn.layers.base import Layer, known, shape_tuple

__all__ = ["LayerNorm", "GroupNorm", "BatchNorm"]


def _floating(x):
    x = fnp.asarray(x)
    if not fnp.issubdtype(x.dtype, fnp.inexact):
        x = x.astype(fn.config.default_float)
    return x


def _affine_params(key, size, use_scale, use_bias, scale_init, bias_init) -> dict:
    k_s, k_b = random.split(key)
    params = {}
    if use_scale:
        params["scale"] = scale_init(k_s, size)
    if use_bias:
        params["bias"] = bias_init(k_b, size)
    return params


def _affine(y, params):
    if "scale" in params:
        y = y * params["scale"]
    if "bias" in params:
        y = y + params["bias"]
    return y


def _normalize(x, axes, epsilon):
    """``(x - mean) / sqrt(var + epsilon)`` with statistics over ``axes``."""
    mean = fnp.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = fnp.mean(centred * centred, axis=axes, keepdims=True)
    return centred * (1.0 / fnp.sqrt(var + epsilon))


def _normalized_axes(axis, ndim: int, what: str) -> tuple:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(sorted(a % ndim for a in axes))
    if any(not -ndim <= a < ndim for a in axes) or len(set(out)) != len(out):
        raise ValueError(f"{what}: axis {axis} is not valid for {ndim}-d inputs")
    return out


# ---------------------------------------------------------------------------
# LayerNorm and GroupNorm


def LayerNorm(axis=-1, *, epsilon: float = 1e-5, use_scale: bool = True, use_bias: bool = True,
              scale_init: Callable = initializers.ones,
              bias_init: Callable = initializers.zeros) -> Layer:
    """Normalise each example over ``axis`` (an int or trailing axes), then scale and shift.

    Params ``{"scale", "bias"}`` of the normalised axes' shape (ones and
    zeros).  Statistics are per example, so it behaves the same in training
    and evaluation and under per-example ``vmap``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.LayerNorm()
    >>> _, params = layer.init(random.key(0), (-1, 3))
    >>> layer.apply(params, fnp.array([[1.0, 2.0, 3.0]]))
    array([[-1.2247356,  0.       ,  1.2247356]], dtype=float32)
    """

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "LayerNorm")
        axes = _normalized_axes(axis, len(shape), "LayerNorm")
        size = tuple(shape[a] for a in axes)
        if not all(known(d) for d in size):
            raise ValueError(f"LayerNorm: the normalised axes need known sizes, got "
                             f"input_shape {shape}")
        return shape, _affine_params(key, size, use_scale, use_bias, scale_init, bias_init)

    def apply(params, x, *, key=None, train=False):
        x = _floating(x)
        axes = _normalized_axes(axis, x.ndim, "LayerNorm")
        if axes != tuple(range(x.ndim - len(axes), x.ndim)):
            raise ValueError(f"LayerNorm: axis must name trailing axes, got {axis}")
        return _affine(_normalize(x, axes, epsilon), params)

    return Layer(init, apply, name="layer_norm", description="LayerNorm")


def GroupNorm(num_groups: int = 32, *, epsilon: float = 1e-5, use_scale: bool = True,
              use_bias: bool = True, scale_init: Callable = initializers.ones,
              bias_init: Callable = initializers.zeros) -> Layer:
    """Group normalisation (Wu & He, 2018) of channels-last ``(N, ..., C)`` inputs.

    The ``C`` channels form ``num_groups`` groups; each example is normalised
    over its spatial axes and the channels of a group.  Params ``{"scale",
    "bias"}`` of shape ``(C,)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.GroupNorm(2)
    >>> _, params = layer.init(random.key(0), (-1, 5, 4))
    >>> y = layer.apply(params, fnp.arange(40.0).reshape(2, 5, 4))
    >>> y.shape, round(float(y[0, :, :2].mean()), 5), round(float(y[0, :, :2].std()), 3)
    ((2, 5, 4), 0.0, 1.0)
    """
    groups = int(num_groups)

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "GroupNorm", min_ndim=2)
        c = shape[-1]
        if not known(c) or c % groups:
            raise ValueError(f"GroupNorm({groups}): the channels (last axis, {c}) must be a "
                             f"known multiple of num_groups")
        return shape, _affine_params(key, (c,), use_scale, use_bias, scale_init, bias_init)

    def apply(params, x, *, key=None, train=False):
        x = _floating(x)
        if x.ndim < 2:
            raise ValueError(f"GroupNorm expects (N, ..., C) inputs, got shape {x.shape}")
        shape = tuple(x.shape)
        c = shape[-1]
        grouped = fnp.reshape(x, shape[:-1] + (groups, c // groups))
        axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
        y = fnp.reshape(_normalize(grouped, axes, epsilon), shape)
        return _affine(y, params)

    return Layer(init, apply, name="group_norm", description=f"GroupNorm({groups})")


# ---------------------------------------------------------------------------
# BatchNorm (stateful)


def _batch_moments(x, axes: tuple, sync: bool):
    """Mean and (biased) variance over ``axes`` -- with ``sync``, over the union of every
    process's batch (``funcnet.distributed``): sums and counts are allreduced, in two
    passes (the mean first, then the centred squares) for accuracy."""
    if not sync or distributed.size() == 1:
        mean = fnp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        return mean, centred, fnp.mean(centred * centred, axis=axes, keepdims=True)
    count = fnp.asarray(math.prod(x.shape[a] for a in axes), x.dtype)
    total, count = distributed.allreduce((fnp.sum(x, axis=axes, keepdims=True), count),
                                         op="sum")
    mean = total / count
    centred = x - mean
    squares = distributed.allreduce(fnp.sum(centred * centred, axis=axes, keepdims=True),
                                    op="sum")
    return mean, centred, squares / count


def BatchNorm(momentum: float = 0.99, *, epsilon: float = 1e-5, axis: int = -1,
              use_scale: bool = True, use_bias: bool = True,
              scale_init: Callable = initializers.ones,
              bias_init: Callable = initializers.zeros, sync: bool = False) -> Layer:
    """Batch normalisation (Ioffe & Szegedy, 2015) over every axis but the feature ``axis``.

    A **stateful** layer: ``init`` returns ``(shape, params, state)`` with
    params ``{"scale", "bias"}`` and state ``{"mean": zeros, "var": ones}``
    (one entry per feature); ``apply(params, x, *, state, key=None,
    train=False)`` returns ``(y, new_state)``.

    - ``train=True``: normalise with the batch's mean and (biased) variance,
      through which gradients flow, and return the running statistics moved
      towards them: ``new = momentum * old + (1 - momentum) * batch``;
    - ``train=False``: normalise with the running statistics; the state is
      returned unchanged.
    - ``sync=True``: in data-parallel training (``funcnet.distributed``),
      the batch statistics are those of the union of every process's batch
      (sums allreduced; gradients flow through them), so the processes train
      exactly as one process on the combined batch would; with one process it
      changes nothing.  Without it each process normalises with its own share.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> bn = nn.BatchNorm()
    >>> _, params, state = bn.init(random.key(0), (-1, 4, 4, 2))
    >>> x = random.normal(random.key(1), (8, 4, 4, 2)) * 3.0 + 1.0
    >>> y, new_state = bn.apply(params, x, state=state, train=True)
    >>> round(float(y.mean()), 4), round(float(y.std()), 3)
    (0.0, 1.0)
    """
    momentum = float(momentum)

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "BatchNorm", min_ndim=1)
        c = shape[axis]
        if not known(c):
            raise ValueError(f"BatchNorm: the feature axis {axis} needs a known size, got "
                             f"input_shape {shape}")
        params = _affine_params(key, (c,), use_scale, use_bias, scale_init, bias_init)
        state = {"mean": initializers.zeros(None, (c,)), "var": initializers.ones(None, (c,))}
        return shape, params, state

    def apply(params, x, *, state=None, key=None, train=False):
        if state is None:
            raise ValueError("BatchNorm is a stateful layer: call apply(params, x, state=state, "
                             "train=...) with the state from init, and use the new state it "
                             "returns")
        if not isinstance(train, bool):
            raise TypeError("BatchNorm: train must be a Python bool (mark it static under "
                            f"jit), got {train!r}")
        x = _floating(x)
        feature = axis % x.ndim
        axes = tuple(a for a in range(x.ndim) if a != feature)
        bshape = tuple(x.shape[a] if a == feature else 1 for a in range(x.ndim))
        if train:
            mean, centred, var = _batch_moments(x, axes, sync)
            new_state = {}
            for name, batch_value in (("mean", mean), ("var", var)):
                old = state[name]
                value = fn.stop_gradient(fnp.reshape(batch_value, old.shape)).astype(old.dtype)
                new_state[name] = momentum * old + (1.0 - momentum) * value
        else:
            mean = fnp.reshape(state["mean"], bshape).astype(x.dtype)
            var = fnp.reshape(state["var"], bshape).astype(x.dtype)
            centred = x - mean
            new_state = state
        multiplier = 1.0 / fnp.sqrt(var + epsilon)  # per feature: fold the scale in first
        if "scale" in params:
            multiplier = multiplier * fnp.reshape(params["scale"], bshape)
        y = centred * multiplier
        if "bias" in params:
            y = y + fnp.reshape(params["bias"], bshape)
        return y, new_state

    return Layer(init, apply, stateful=True, name="batch_norm",
                 description=f"BatchNorm(momentum={momentum}{', sync=True' if sync else ''})")
