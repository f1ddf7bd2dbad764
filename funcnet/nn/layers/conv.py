"""Convolution and pooling layers (channels-last: ``(N, W, C)``, ``(N, H, W, C)``).

Kernels are stored in the matching channels-last layouts ``WIO`` and ``HWIO``
(``ConvTranspose2D`` too: ``(kh, kw, in, out)``), which the initializers'
fan computation expects.  ``padding`` is ``"SAME"``, ``"VALID"`` or one
``(lo, hi)`` pair per spatial axis.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> layer = nn.serial(nn.Conv2D(8, 3), nn.Relu, nn.MaxPool2D(2), nn.GlobalAvgPool)
>>> shape, params = layer.init(random.key(0), (-1, 16, 16, 3))
>>> shape, layer.apply(params, fnp.ones((2, 16, 16, 3))).shape
((-1, 8), (2, 8))
"""

from __future__ import annotations

from collections.abc import Callable

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax, random
from funcnet.nn import initializers
from funcnet.nn.layers.base import Layer, check_ndim, int_tuple, known, shape_tuple

__all__ = ["Conv1D", "Conv2D", "ConvTranspose2D", "MaxPool1D", "MaxPool2D", "AvgPool1D",
           "AvgPool2D", "GlobalAvgPool", "GlobalMaxPool"]

_LAYOUT = {1: "(N, W, C)", 2: "(N, H, W, C)"}


def _padding(padding, ns: int, what: str):
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise ValueError(f"{what}: padding must be 'SAME', 'VALID' or (lo, hi) pairs, got "
                             f"{padding!r}")
        return mode
    pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(pairs) != ns:
        raise ValueError(f"{what}: padding needs {ns} (lo, hi) pairs, got {padding!r}")
    return pairs


def _output_shape(apply_example, input_shape: tuple, what: str, dtype=None) -> tuple:
    """The output shape of ``apply_example`` on a batch of ``input_shape`` (traced, not run).

    The batch size may be unknown (``None``/``-1``): it is traced as 1 and passed through.
    """
    if not all(known(d) for d in input_shape[1:]):
        raise ValueError(f"{what}: every axis but the batch must have a known size, got "
                         f"input_shape {input_shape}")
    batch = input_shape[0]
    probe = (batch if known(batch) else 1,) + tuple(int(d) for d in input_shape[1:])
    dtype = fn.config.default_float if dtype is None else dtype
    out = fn.eval_shape(apply_example, fn.ShapeDtypeStruct(probe, dtype))
    return (batch,) + tuple(out.shape[1:])


def _in_features(shape: tuple, what: str) -> int:
    c = shape[-1]
    if not known(c):
        raise ValueError(f"{what}: the number of input channels (last axis) must be known, "
                         f"got input_shape {shape}")
    return int(c)


# ---------------------------------------------------------------------------
# Convolutions


def _conv_layer(ns: int, cls_name: str, features: int, kernel_size, strides, padding,
                dilation, feature_group_count: int, use_bias: bool, w_init, b_init,
                transpose: bool = False) -> Layer:
    what = cls_name
    features = int(features)
    kernel = int_tuple(kernel_size, ns, what, "kernel_size")
    strides = int_tuple(strides, ns, what, "strides")
    dilation = int_tuple(dilation, ns, what, "dilation")
    padding = _padding(padding, ns, what)
    groups = int(feature_group_count)
    if groups < 1 or features % groups:
        raise ValueError(f"{what}: features ({features}) must be divisible by "
                         f"feature_group_count ({groups})")
    w_init = initializers.lecun_normal() if w_init is None else w_init

    def conv(params, x):
        w = params["w"]
        if transpose:
            y = lax.conv_transpose(x, w, strides, padding, rhs_dilation=dilation)
        else:
            y = lax.conv(x, w, strides, padding, rhs_dilation=dilation,
                         feature_group_count=groups)
        if use_bias:
            y = y + params["b"]
        return y

    def init(key, input_shape):
        shape = shape_tuple(input_shape, what, ndim=ns + 2)
        c = _in_features(shape, what)
        if c % groups:
            raise ValueError(f"{what}: input channels ({c}) must be divisible by "
                             f"feature_group_count ({groups})")
        k_w, k_b = random.split(key)
        params = {"w": w_init(k_w, kernel + (c // groups, features))}
        if use_bias:
            params["b"] = b_init(k_b, (features,))
        return _output_shape(lambda x: conv(params, x), shape, what), params

    def apply(params, x, *, key=None, train=False):
        check_ndim(x, ns + 2, what, _LAYOUT[ns])
        return conv(params, x)

    options = f", strides={strides}" if any(s != 1 for s in strides) else ""
    return Layer(init, apply, name=cls_name.lower(),
                 description=f"{cls_name}({features}, {kernel}{options})")


def Conv1D(features: int, kernel_size, strides=1, padding="SAME", *, dilation=1,
           feature_group_count: int = 1, use_bias: bool = True, w_init: Callable | None = None,
           b_init: Callable = initializers.zeros) -> Layer:
    """1-d convolution of ``(N, W, C)`` inputs; kernel ``(k, C // groups, features)``.

    Params ``{"w", "b"}``; ``w`` defaults to ``lecun_normal()``.  ``dilation``
    spaces the kernel taps (atrous); ``feature_group_count=C`` is depthwise.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Conv1D(4, 5, strides=2)
    >>> shape, params = layer.init(random.key(0), (-1, 32, 3))
    >>> shape, params["w"].shape, layer.apply(params, fnp.ones((2, 32, 3))).shape
    ((-1, 16, 4), (5, 3, 4), (2, 16, 4))
    """
    return _conv_layer(1, "Conv1D", features, kernel_size, strides, padding, dilation,
                       feature_group_count, use_bias, w_init, b_init)


def Conv2D(features: int, kernel_size, strides=1, padding="SAME", *, dilation=1,
           feature_group_count: int = 1, use_bias: bool = True, w_init: Callable | None = None,
           b_init: Callable = initializers.zeros) -> Layer:
    """2-d convolution of ``(N, H, W, C)`` inputs; kernel ``HWIO``.

    ``kernel_size``, ``strides`` and ``dilation`` are an int or a pair.
    Params ``{"w": (kh, kw, C // groups, features), "b": (features,)}``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Conv2D(16, (3, 3), padding="VALID")
    >>> shape, params = layer.init(random.key(0), (-1, 28, 28, 1))
    >>> shape, params["w"].shape
    ((-1, 26, 26, 16), (3, 3, 1, 16))
    """
    return _conv_layer(2, "Conv2D", features, kernel_size, strides, padding, dilation,
                       feature_group_count, use_bias, w_init, b_init)


def ConvTranspose2D(features: int, kernel_size, strides=1, padding="SAME", *, dilation=1,
                    use_bias: bool = True, w_init: Callable | None = None,
                    b_init: Callable = initializers.zeros) -> Layer:
    """Transposed 2-d convolution (upsampling): ``"SAME"`` multiplies H and W by ``strides``.

    Kernel ``(kh, kw, C, features)``, applied as in ``lax.conv_transpose``
    (a convolution of the stride-dilated input; the kernel is not flipped,
    as in Flax).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.ConvTranspose2D(3, 4, strides=2)
    >>> shape, params = layer.init(random.key(0), (-1, 7, 7, 8))
    >>> shape, layer.apply(params, fnp.ones((1, 7, 7, 8))).shape
    ((-1, 14, 14, 3), (1, 14, 14, 3))
    """
    return _conv_layer(2, "ConvTranspose2D", features, kernel_size, strides, padding, dilation,
                       1, use_bias, w_init, b_init, transpose=True)


# ---------------------------------------------------------------------------
# Pooling


def _pool_layer(ns: int, kind: str, window, strides, padding) -> Layer:
    cls_name = f"{'Max' if kind == 'max' else 'Avg'}Pool{ns}D"
    window = int_tuple(window, ns, cls_name, "window")
    strides = window if strides is None else int_tuple(strides, ns, cls_name, "strides")
    padding = _padding(padding, ns, cls_name)
    pool = lax.max_pool if kind == "max" else lax.avg_pool

    def init(key, input_shape):
        shape = shape_tuple(input_shape, cls_name, ndim=ns + 2)
        return _output_shape(lambda x: pool(x, window, strides, padding), shape, cls_name), {}

    def apply(params, x, *, key=None, train=False):
        check_ndim(x, ns + 2, cls_name, _LAYOUT[ns])
        return pool(x, window, strides, padding)

    return Layer(init, apply, name=cls_name.lower(), description=f"{cls_name}({window})")


def MaxPool1D(window, strides=None, padding="VALID") -> Layer:
    """Max pooling over ``W`` of ``(N, W, C)`` inputs (``strides`` defaults to ``window``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.MaxPool1D(2).apply({}, fnp.arange(4.0).reshape(1, 4, 1))[0, :, 0]
    array([1., 3.], dtype=float32)
    """
    return _pool_layer(1, "max", window, strides, padding)


def MaxPool2D(window, strides=None, padding="VALID") -> Layer:
    """Max pooling over ``H, W`` of ``(N, H, W, C)`` inputs (``strides`` defaults to ``window``).

    The gradient of each window goes to its first maximal element.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> nn.MaxPool2D(2).init(random.key(0), (-1, 28, 28, 6))[0]
    (-1, 14, 14, 6)
    """
    return _pool_layer(2, "max", window, strides, padding)


def AvgPool1D(window, strides=None, padding="VALID") -> Layer:
    """Average pooling over ``W`` of ``(N, W, C)`` inputs.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.AvgPool1D(2).apply({}, fnp.arange(4.0).reshape(1, 4, 1))[0, :, 0]
    array([0.5, 2.5], dtype=float32)
    """
    return _pool_layer(1, "avg", window, strides, padding)


def AvgPool2D(window, strides=None, padding="VALID") -> Layer:
    """Average pooling over ``H, W`` of ``(N, H, W, C)`` inputs (padding counts as zeros).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.AvgPool2D(2).apply({}, fnp.ones((1, 4, 4, 1))).shape
    (1, 2, 2, 1)
    """
    return _pool_layer(2, "avg", window, strides, padding)


def _global_pool(kind: str) -> Layer:
    cls_name = "GlobalAvgPool" if kind == "avg" else "GlobalMaxPool"

    def init(key, input_shape):
        shape = shape_tuple(input_shape, cls_name, min_ndim=3)
        return (shape[0], shape[-1]), {}

    def apply(params, x, *, key=None, train=False):
        x = fnp.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"{cls_name} expects (N, *spatial, C) inputs, got shape "
                             f"{tuple(x.shape)}")
        axes = tuple(range(1, x.ndim - 1))
        return fnp.mean(x, axis=axes) if kind == "avg" else fnp.max(x, axis=axes)

    layer = Layer(init, apply, name=cls_name.lower(), description=cls_name,
                  configure=lambda: layer)
    return layer


GlobalAvgPool = _global_pool("avg")
GlobalAvgPool.__doc__ = """Mean over the spatial axes: ``(N, *spatial, C) -> (N, C)``.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn
>>> nn.GlobalAvgPool.apply({}, fnp.ones((2, 5, 5, 3))).shape
(2, 3)
"""
GlobalMaxPool = _global_pool("max")
GlobalMaxPool.__doc__ = """Max over the spatial axes: ``(N, *spatial, C) -> (N, C)``.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn
>>> nn.GlobalMaxPool.apply({}, fnp.ones((2, 5, 3))).shape
(2, 3)
"""

__test__ = {"GlobalAvgPool": GlobalAvgPool.__doc__, "GlobalMaxPool": GlobalMaxPool.__doc__}
