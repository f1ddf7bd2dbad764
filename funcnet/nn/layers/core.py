"""Core layers: ``Dense``, ``Embedding``, ``Dropout``, ``Flatten``, ``Reshape``,
``Identity``, and the activation functions as layers.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> shape, params = nn.Dense(3).init(random.key(0), (-1, 4))
>>> shape, sorted(params)
((-1, 3), ['b', 'w'])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import funcnet.numpy as fnp
from funcnet import random
from funcnet.nn import activations as act
from funcnet.nn import initializers
from funcnet.nn.layers.base import Layer, known, shape_tuple

__all__ = ["Dense", "Embedding", "Dropout", "Flatten", "Reshape", "Identity", "elementwise",
           "Relu", "Relu6", "LeakyRelu", "Elu", "Gelu", "Silu", "Swish", "Sigmoid",
           "LogSigmoid", "Softplus", "Tanh", "Softmax", "LogSoftmax", "Standardize"]


def _known_dim(shape: tuple, axis: int, what: str) -> int:
    d = shape[axis]
    if not known(d):
        raise ValueError(f"{what}: the size of axis {axis} of the input must be known to "
                         f"create the parameters, got input_shape {shape}")
    return int(d)


def matmul_last(x, w):
    """``x @ w`` over the last axis of ``x`` (any number of leading axes), as one 2-d matmul."""
    if fnp.ndim(x) <= 2:
        return x @ w
    lead = tuple(fnp.shape(x)[:-1])
    out = fnp.reshape(x, (-1, fnp.shape(x)[-1])) @ w
    return fnp.reshape(out, lead + (fnp.shape(w)[-1],))


# ---------------------------------------------------------------------------
# Dense


def Dense(features: int, *, use_bias: bool = True, w_init: Callable | None = None,
          b_init: Callable = initializers.zeros) -> Layer:
    """A fully connected layer ``x @ w + b`` over the last axis of ``x``.

    Params ``{"w": (in, features), "b": (features,)}``; ``w`` defaults to
    ``lecun_normal()``, ``b`` to zeros.  Any number of leading axes is fine.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Dense(2)
    >>> shape, params = layer.init(random.key(0), (-1, 7, 3))
    >>> shape, layer.apply(params, fnp.ones((4, 7, 3))).shape
    ((-1, 7, 2), (4, 7, 2))
    """
    features = int(features)
    w_init = initializers.lecun_normal() if w_init is None else w_init

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "Dense")
        in_dim = _known_dim(shape, -1, "Dense")
        k_w, k_b = random.split(key)
        params = {"w": w_init(k_w, (in_dim, features))}
        if use_bias:
            params["b"] = b_init(k_b, (features,))
        return shape[:-1] + (features,), params

    def apply(params, x, *, key=None, train=False):
        y = matmul_last(x, params["w"])
        if use_bias:
            y = y + params["b"]
        return y

    return Layer(init, apply, name="dense", description=f"Dense({features})")


# ---------------------------------------------------------------------------
# Embedding


def Embedding(num_embeddings: int, features: int, *,
              embedding_init: Callable | None = None) -> Layer:
    """A lookup table: integer ids of any shape ``S`` to vectors, shape ``S + (features,)``.

    Params ``{"embedding": (num_embeddings, features)}``, initialised from
    ``normal(1.0)`` by default.  Out-of-range ids are clamped (as in JAX's
    gather).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Embedding(100, 8)
    >>> shape, params = layer.init(random.key(0), (-1, 12))
    >>> shape, layer.apply(params, fnp.zeros((2, 12), fnp.int32)).shape
    ((-1, 12, 8), (2, 12, 8))
    """
    num_embeddings, features = int(num_embeddings), int(features)
    embedding_init = initializers.normal(1.0) if embedding_init is None else embedding_init

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "Embedding", min_ndim=0)
        return shape + (features,), {"embedding": embedding_init(key, (num_embeddings,
                                                                        features))}

    def apply(params, x, *, key=None, train=False):
        ids = fnp.asarray(x)
        if not fnp.issubdtype(ids.dtype, fnp.integer):
            raise TypeError(f"Embedding expects integer ids, got {ids.dtype}")
        ids = fnp.clip(ids, 0, num_embeddings - 1)
        return fnp.take(params["embedding"], ids, axis=0)

    return Layer(init, apply, name="embedding",
                 description=f"Embedding({num_embeddings}, {features})")


# ---------------------------------------------------------------------------
# Dropout


def Dropout(rate: float) -> Layer:
    """Zero each element with probability ``rate`` during training; scale the rest by
    ``1 / (1 - rate)`` (inverted dropout).  Identity when ``train=False``.

    ``rate`` is the probability of *dropping* (as in PyTorch and Keras; stax's
    argument was the keep rate).  ``apply(..., train=True)`` needs a ``key``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Dropout(0.5)
    >>> _, params = layer.init(random.key(0), (-1, 4))
    >>> layer.apply(params, fnp.ones((1, 4)))                    # evaluation: identity
    array([[1., 1., 1., 1.]], dtype=float32)
    >>> y = layer.apply(params, fnp.ones((1000,)), key=random.key(1), train=True)
    >>> sorted({float(v) for v in y}), 400 < int((y == 0).sum()) < 600
    ([0.0, 2.0], True)
    """
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"Dropout: rate is the probability of dropping an element and must "
                         f"be in [0, 1], got {rate}")

    def init(key, input_shape):
        return tuple(input_shape), {}

    def apply(params, x, *, key=None, train=False):
        if not isinstance(train, bool):
            raise TypeError("Dropout: train must be a Python bool (mark it static under jit, "
                            f"e.g. fn.jit(f, static_argnames='train')), got {train!r}")
        if not train or rate == 0.0:
            return x
        if key is None:
            raise ValueError(f"Dropout(rate={rate}) needs a random key when train=True: call "
                             "apply(params, x, key=key, train=True)")
        x = fnp.asarray(x)
        if rate == 1.0:
            return fnp.zeros_like(x)
        keep = random.bernoulli(key, 1.0 - rate, tuple(fnp.shape(x)))
        return fnp.where(keep, x / (1.0 - rate), 0)

    return Layer(init, apply, name="dropout", description=f"Dropout({rate})")


# ---------------------------------------------------------------------------
# Shape layers


def _flatten():
    def init(key, input_shape):
        shape = shape_tuple(input_shape, "Flatten", min_ndim=1)
        rest = shape[1:]
        size = math.prod(rest) if all(known(d) for d in rest) else -1
        return (shape[0], size), {}

    def apply(params, x, *, key=None, train=False):
        x = fnp.asarray(x)
        return fnp.reshape(x, (fnp.shape(x)[0], -1))

    return Layer(init, apply, name="flatten", description="Flatten",
                 configure=lambda: Flatten)


Flatten = _flatten()
Flatten.__doc__ = """Flatten every axis but the first (the batch): ``(N, ...) -> (N, prod(...))``.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> nn.Flatten.init(random.key(0), (-1, 4, 4, 3))[0]
(-1, 48)
>>> nn.Flatten.apply({}, fnp.ones((2, 4, 4, 3))).shape
(2, 48)
"""


def Reshape(shape) -> Layer:
    """Reshape every example (all axes but the batch) to ``shape`` (one entry may be -1).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> layer = nn.Reshape((7, 7, 1))
    >>> layer.init(random.key(0), (-1, 49))[0], layer.apply({}, fnp.ones((2, 49))).shape
    ((-1, 7, 7, 1), (2, 7, 7, 1))
    """
    target = tuple(int(d) for d in shape)
    if sum(d == -1 for d in target) > 1:
        raise ValueError(f"Reshape: at most one entry of shape may be -1, got {target}")

    def init(key, input_shape):
        in_shape = shape_tuple(input_shape, "Reshape", min_ndim=1)
        rest = in_shape[1:]
        out = target
        if -1 in target and all(known(d) for d in rest):
            size, other = math.prod(rest), math.prod(d for d in target if d != -1)
            if other == 0 or size % other:
                raise ValueError(f"Reshape: cannot reshape examples of shape {rest} to "
                                 f"{target}")
            out = tuple(size // other if d == -1 else d for d in target)
        elif all(known(d) for d in rest) and math.prod(rest) != math.prod(target):
            raise ValueError(f"Reshape: cannot reshape examples of shape {rest} "
                             f"({math.prod(rest)} elements) to {target}")
        return (in_shape[0],) + out, {}

    def apply(params, x, *, key=None, train=False):
        x = fnp.asarray(x)
        return fnp.reshape(x, (fnp.shape(x)[0],) + target)

    return Layer(init, apply, name="reshape", description=f"Reshape({target})")


def _identity():
    def init(key, input_shape):
        return input_shape, {}

    def apply(params, x, *, key=None, train=False):
        return x

    return Layer(init, apply, name="identity", description="Identity",
                 configure=lambda: Identity)


Identity = _identity()
Identity.__doc__ = """The layer that returns its input (a shortcut in ``residual``).

>>> from funcnet import nn, random
>>> nn.Identity.apply({}, 3.0)
3.0
"""


# ---------------------------------------------------------------------------
# Functions as layers


def elementwise(fun: Callable, *, name: str | None = None, **fun_kwargs) -> Layer:
    """A parameterless layer that applies ``fun(x, **fun_kwargs)`` (shape-preserving).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> layer = nn.elementwise(fnp.square)
    >>> layer.apply({}, fnp.array([3.0]))
    array([9.], dtype=float32)
    """
    name = name or getattr(fun, "__name__", "elementwise")
    f = functools.partial(fun, **fun_kwargs) if fun_kwargs else fun

    def init(key, input_shape):
        return input_shape, {}

    def apply(params, x, *, key=None, train=False):
        return f(x)

    options = ", ".join(f"{k}={v!r}" for k, v in fun_kwargs.items())
    return Layer(init, apply, name=name, description=f"elementwise({name}{', ' if options else ''}"
                 f"{options})")


def _activation_layer(fun: Callable, layer_name: str, **defaults) -> Layer:
    """A ready-made activation layer; calling it with options configures a copy."""

    def make(**options) -> Layer:
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"{layer_name} takes the options {sorted(defaults) or 'none'}, got "
                            f"{sorted(unknown)}")
        kw = {**defaults, **options}
        f = functools.partial(fun, **kw) if kw else fun

        def init(key, input_shape):
            return input_shape, {}

        def apply(params, x, *, key=None, train=False):
            return f(x)

        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        layer = Layer(init, apply, name=layer_name.lower(),
                      description=f"{layer_name}({shown})" if shown else layer_name,
                      configure=make)
        layer.__doc__ = (
            f"``nn.{fun.__name__}`` as a parameterless, shape-preserving layer (options: "
            f"{', '.join(f'{k}={v!r}' for k, v in defaults.items()) or 'none'}).\n\n"
            f">>> import funcnet.numpy as fnp\n>>> from funcnet import nn\n"
            f">>> nn.{layer_name}.apply({{}}, fnp.zeros((2, 3))).shape\n(2, 3)\n")
        return layer

    return make()


Relu = _activation_layer(act.relu, "Relu")
Relu6 = _activation_layer(act.relu6, "Relu6")
LeakyRelu = _activation_layer(act.leaky_relu, "LeakyRelu", negative_slope=0.01)
Elu = _activation_layer(act.elu, "Elu", alpha=1.0)
Gelu = _activation_layer(act.gelu, "Gelu", approximate=True)
Silu = _activation_layer(act.silu, "Silu")
Swish = Silu
Sigmoid = _activation_layer(act.sigmoid, "Sigmoid")
LogSigmoid = _activation_layer(act.log_sigmoid, "LogSigmoid")
Softplus = _activation_layer(act.softplus, "Softplus")
Tanh = _activation_layer(act.tanh, "Tanh")
Softmax = _activation_layer(act.softmax, "Softmax", axis=-1)
LogSoftmax = _activation_layer(act.log_softmax, "LogSoftmax", axis=-1)
Standardize = _activation_layer(act.standardize, "Standardize", axis=-1, epsilon=1e-5)

__test__ = {"Flatten": Flatten.__doc__, "Identity": Identity.__doc__,
            **{name: globals()[name].__doc__ for name in __all__[7:]}}
