"""Parameter initializers: functions ``init(key, shape, dtype=None) -> array``.

As in ``jax.nn.initializers``, :func:`zeros` and :func:`ones` are
initializers themselves; every other name is a factory that takes the
initializer's hyper-parameters and returns one.  ``dtype`` defaults to
``fn.config.default_float``.  Initializers are pure functions of the key,
so they also work under ``fn.jit`` and ``fn.vmap``.

**Fans.**  For a kernel of shape ``shape``, ``fan_in`` is
``shape[in_axis] * receptive_field`` and ``fan_out`` is
``shape[out_axis] * receptive_field``, where ``receptive_field`` is the
product of the remaining (spatial) axes.  The defaults ``in_axis=-2``,
``out_axis=-1`` fit dense kernels ``(in, out)`` and convolution kernels in
``HWIO`` / ``WIO`` layout, e.g. ``(3, 3, 16, 32)`` has ``fan_in = 3*3*16``
and ``fan_out = 3*3*32``.  A 1-d shape has ``fan_in = fan_out = shape[0]``.

>>> from funcnet import random
>>> from funcnet.nn import initializers
>>> w = initializers.he_normal()(random.key(0), (256, 128))
>>> w.shape, w.dtype, 0.07 < float(w.std()) < 0.1   # sqrt(2 / 256) = 0.088
((256, 128), dtype('float32'), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import random

__all__ = ["zeros", "ones", "constant", "normal", "uniform", "truncated_normal",
           "variance_scaling", "glorot_uniform", "glorot_normal", "xavier_uniform",
           "xavier_normal", "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
           "lecun_uniform", "lecun_normal", "orthogonal", "compute_fans"]

Initializer = Callable  # (key, shape, dtype=None) -> array

# Standard deviation of a standard normal truncated to (-2, 2): dividing by it makes a
# truncated draw have unit variance.
_TRUNCATED_STD = 0.87962566103423978


def _dtype(dtype):
    return fnp.dtype(fn.config.default_float if dtype is None else dtype)


def _shape(shape) -> tuple:
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def zeros(key, shape, dtype=None):
    """All zeros (the key is ignored).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.zeros(random.key(0), (2,))
    array([0., 0.], dtype=float32)
    """
    return fnp.zeros(_shape(shape), _dtype(dtype))


def ones(key, shape, dtype=None):
    """All ones (the key is ignored).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.ones(random.key(0), (2,))
    array([1., 1.], dtype=float32)
    """
    return fnp.ones(_shape(shape), _dtype(dtype))


def constant(value) -> Initializer:
    """An initializer that fills with ``value`` (a number or an array broadcast to ``shape``).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.constant(0.5)(random.key(0), (3,))
    array([0.5, 0.5, 0.5], dtype=float32)
    """

    def init(key, shape, dtype=None):
        return fnp.full(_shape(shape), value, _dtype(dtype))

    return init


def normal(stddev: float = 1e-2) -> Initializer:
    """Normal draws with mean 0 and standard deviation ``stddev``.

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> w = initializers.normal(2.0)(random.key(0), (10000,))
    >>> 1.9 < float(w.std()) < 2.1
    True
    """

    def init(key, shape, dtype=None):
        dtype = _dtype(dtype)
        return random.normal(key, _shape(shape), dtype) * fnp.asarray(stddev, dtype)

    return init


def uniform(scale: float = 1e-2) -> Initializer:
    """Uniform draws in ``[0, scale)`` (as in ``jax.nn.initializers.uniform``).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> w = initializers.uniform(3.0)(random.key(0), (1000,))
    >>> bool(w.min() >= 0.0), bool(w.max() < 3.0)
    (True, True)
    """

    def init(key, shape, dtype=None):
        return random.uniform(key, _shape(shape), _dtype(dtype), 0.0, float(scale))

    return init


def truncated_normal(stddev: float = 1e-2, lower: float = -2.0,
                     upper: float = 2.0) -> Initializer:
    """Normal draws truncated to ``(lower, upper)`` standard deviations, times ``stddev``.

    ``stddev`` scales the *untruncated* normal (as in JAX), so the draws'
    standard deviation is a little smaller than ``stddev``.

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> w = initializers.truncated_normal(1.0)(random.key(0), (1000,))
    >>> bool(abs(w).max() < 2.0)
    True
    """

    def init(key, shape, dtype=None):
        dtype = _dtype(dtype)
        draw = random.truncated_normal(key, lower, upper, _shape(shape), dtype)
        return draw * fnp.asarray(stddev, dtype)

    return init


def compute_fans(shape: Sequence[int], in_axis=-2, out_axis=-1,
                 batch_axis=()) -> tuple[float, float]:
    """``(fan_in, fan_out)`` of a kernel shape (see the module docstring).

    ``in_axis``, ``out_axis`` and ``batch_axis`` may be ints or sequences of
    ints; batch axes count in neither fan.

    >>> from funcnet.nn.initializers import compute_fans
    >>> compute_fans((3, 3, 16, 32))
    (144.0, 288.0)
    """
    shape = _shape(shape)
    if len(shape) < 2:
        n = float(shape[0]) if shape else 1.0
        return n, n

    def axes(a):
        a = (a,) if isinstance(a, int) else tuple(a)
        return {x % len(shape) for x in a}

    ins, outs, batch = axes(in_axis), axes(out_axis), axes(batch_axis)
    in_size = math.prod(shape[i] for i in ins)
    out_size = math.prod(shape[i] for i in outs)
    field = math.prod(d for i, d in enumerate(shape) if i not in ins | outs | batch)
    return float(in_size * field), float(out_size * field)


def variance_scaling(scale: float, mode: str, distribution: str, in_axis=-2, out_axis=-1,
                     batch_axis=()) -> Initializer:
    """Draws with variance ``scale / n``, ``n`` the fan chosen by ``mode``.

    - ``mode``: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (their mean);
    - ``distribution``: ``"truncated_normal"`` (truncated at two standard
      deviations and rescaled to the exact variance), ``"normal"`` or
      ``"uniform"`` (on ``[-sqrt(3 var), sqrt(3 var)]``).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> init = initializers.variance_scaling(2.0, "fan_in", "normal")
    >>> w = init(random.key(0), (3, 3, 32, 64))        # HWIO: fan_in = 288
    >>> round(float(w.var()) * 288 / 2.0, 1)
    1.0
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', "
                         f"got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be 'truncated_normal', 'normal' "
                         f"or 'uniform', got {distribution!r}")

    def init(key, shape, dtype=None):
        shape, dtype = _shape(shape), _dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = float(scale) / max(n, 1.0)
        if distribution == "truncated_normal":
            std = math.sqrt(variance) / _TRUNCATED_STD
            return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * fnp.asarray(std,
                                                                                        dtype)
        if distribution == "normal":
            return random.normal(key, shape, dtype) * fnp.asarray(math.sqrt(variance), dtype)
        limit = math.sqrt(3.0 * variance)
        return random.uniform(key, shape, dtype, -limit, limit)

    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """Glorot (Xavier) uniform: variance ``1 / fan_avg`` (Glorot & Bengio, 2010).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> w = initializers.glorot_uniform()(random.key(0), (100, 300))
    >>> bool(abs(w).max() <= (6 / 400) ** 0.5)
    True
    """
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """Glorot (Xavier) normal: truncated normal with variance ``1 / fan_avg``.

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.glorot_normal()(random.key(0), (4, 5)).shape
    (4, 5)
    """
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """He (Kaiming) uniform: variance ``2 / fan_in``, for ReLU networks (He et al., 2015).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.he_uniform()(random.key(0), (3, 3, 1, 8)).shape
    (3, 3, 1, 8)
    """
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """He (Kaiming) normal: truncated normal with variance ``2 / fan_in``.

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.he_normal()(random.key(0), (8, 2)).dtype
    dtype('float32')
    """
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """LeCun uniform: variance ``1 / fan_in``.

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.lecun_uniform()(random.key(0), (8, 2)).shape
    (8, 2)
    """
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=()) -> Initializer:
    """LeCun normal: truncated normal with variance ``1 / fan_in`` (the default of ``Dense``).

    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> initializers.lecun_normal()(random.key(0), (8, 2)).shape
    (8, 2)
    """
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Initializer:
    """A (semi-)orthogonal matrix times ``scale`` (Saxe et al., 2014), uniformly distributed.

    The shape is viewed as a matrix with ``shape[column_axis]`` columns and
    the product of the other axes as rows; the result has orthonormal
    columns if there are at least as many rows, else orthonormal rows.  It is
    the Q factor of a Gaussian matrix with a positive-diagonal R, computed by
    Cholesky QR, twice, in float64 (orthonormal to about 1e-15).

    >>> import numpy as np
    >>> from funcnet import random
    >>> from funcnet.nn import initializers
    >>> q = initializers.orthogonal()(random.key(0), (6, 4))
    >>> np.allclose(q.T @ q, np.eye(4), atol=1e-6)
    True
    """

    def init(key, shape, dtype=None):
        shape, dtype = _shape(shape), _dtype(dtype)
        if len(shape) < 2:
            raise ValueError(f"orthogonal initializer needs at least 2 dimensions, got shape "
                             f"{shape}")
        axis = column_axis % len(shape)
        cols = shape[axis]
        rows = math.prod(shape) // cols
        tall = rows >= cols
        a = random.normal(key, (rows, cols) if tall else (cols, rows), fnp.float64)
        q = _cholesky_qr(_cholesky_qr(a))
        if not tall:
            q = q.T
        rest = shape[:axis] + shape[axis + 1:]
        q = fnp.moveaxis(fnp.reshape(q, rest + (cols,)), -1, axis)
        return (q * scale).astype(dtype)

    return init


def _cholesky_qr(a):
    """The Q of ``a = Q R`` (R upper triangular with a positive diagonal): with
    ``a^T a = L L^T``, ``Q = a L^-T`` (a product, so the result is row-major, which
    the matrix products that later use it prefer)."""
    lower = fnp.linalg.cholesky(a.T @ a)
    return a @ fnp.linalg.inv(lower).T
