"""The layer convention: a :class:`Layer` is a pure ``(init, apply)`` pair.

**Stateless layers** (almost all)::

    out_shape, params = layer.init(key, input_shape)
    y = layer.apply(params, x, *, key=None, train=False)

**Stateful layers** (``layer.stateful is True``: ``BatchNorm`` and any
combinator holding one) keep their non-trainable values -- running
statistics -- in an explicit *state* pytree, never in hidden mutable state::

    out_shape, params, state = layer.init(key, input_shape)
    y, new_state = layer.apply(params, x, *, state, key=None, train=False)

The caller threads ``new_state`` into the next call (a training step returns
it beside the new parameters).  Combinators (``serial``, ``parallel``,
``residual``) are stateful exactly when one of their children is, and thread
the children's states for you.  Code that must handle both kinds uses
:meth:`Layer.init_with_state` and :meth:`Layer.apply_with_state`, which
always take and return a state (``{}`` for a stateless layer).

``input_shape`` includes the batch axis; its size may be ``None`` or ``-1``
(unknown), and is passed through.  ``key`` is a ``funcnet.random`` key, needed
by ``init`` and, when ``train=True``, by layers that draw random numbers
(``Dropout``).  ``params`` and ``state`` are nested dicts of arrays.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> layer = nn.serial(nn.Dense(4), nn.Relu, nn.Dense(2))
>>> out_shape, params = layer.init(random.key(0), (-1, 3))
>>> out_shape, sorted(params)
((-1, 2), ['0_dense', '1_relu', '2_dense'])
>>> layer.apply(params, fnp.ones((5, 3))).shape
(5, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import funcnet.numpy as fnp

__all__ = ["Layer", "as_layer"]


class Layer(tuple):
    """A layer: the pair ``(init, apply)`` plus what combinators need to know.

    A ``Layer`` *is* a 2-tuple, so ``init, apply = nn.Dense(10)`` works as in
    stax.  Attributes:

    - ``init``, ``apply``: the two pure functions (see the module docstring);
    - ``stateful``: whether ``init`` returns a state and ``apply`` takes and
      returns one;
    - ``name``: a short lower-case name (``"dense"``, ``"conv2d"``), used for
      the parameter keys in combinators.

    Build your own with ``nn.Layer(init, apply, name="mine")``.  Layers
    without options (``nn.Relu``, ``nn.Flatten``, ...) are ready-made values;
    calling one with arguments makes a configured copy (``nn.Softmax(axis=0)``),
    and calling it with none returns it, so ``nn.Relu()`` works too.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> init, apply = nn.Dense(3)
    >>> shape, params = init(random.key(0), (2, 5))
    >>> shape, params["w"].shape, apply(params, fnp.ones((2, 5))).shape
    ((2, 3), (5, 3), (2, 3))
    """

    def __new__(cls, init: Callable, apply: Callable, *, stateful: bool = False,
                name: str = "layer", description: str | None = None,
                configure: Callable | None = None):
        self = super().__new__(cls, (init, apply))
        self.stateful = bool(stateful)
        self.name = str(name)
        self.description = description or name
        self._configure = configure
        return self

    @property
    def init(self) -> Callable:
        return self[0]

    @property
    def apply(self) -> Callable:
        return self[1]

    def __repr__(self) -> str:
        return f"<Layer {self.description}{' (stateful)' if self.stateful else ''}>"

    def __call__(self, *args, **kwargs) -> Layer:
        if self._configure is None:
            raise TypeError(f"{self!r} is an (init, apply) pair, not a function: call "
                            f"layer.init(key, input_shape) and layer.apply(params, x)")
        if not args and not kwargs:
            return self
        return self._configure(*args, **kwargs)

    # tuple defines these; a Layer compares and hashes by identity, like a function
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def init_with_state(self, key, input_shape) -> tuple[Any, dict, dict]:
        """``(out_shape, params, state)`` for any layer (``state`` is ``{}`` if stateless).

        >>> from funcnet import nn, random
        >>> nn.Dense(2).init_with_state(random.key(0), (1, 3))[2]
        {}
        """
        if self.stateful:
            return self.init(key, input_shape)
        out_shape, params = self.init(key, input_shape)
        return out_shape, params, {}

    def apply_with_state(self, params, x, *, state, key=None, train: bool = False,
                         **kwargs) -> tuple[Any, dict]:
        """``(y, new_state)`` for any layer (a stateless one returns ``state`` unchanged).

        >>> import funcnet.numpy as fnp
        >>> from funcnet import nn, random
        >>> layer = nn.Dense(2)
        >>> _, params, state = layer.init_with_state(random.key(0), (1, 3))
        >>> y, state = layer.apply_with_state(params, fnp.ones((1, 3)), state=state)
        >>> y.shape, state
        ((1, 2), {})
        """
        if self.stateful:
            return self.apply(params, x, state=state, key=key, train=train, **kwargs)
        return self.apply(params, x, key=key, train=train, **kwargs), state


def as_layer(layer) -> Layer:
    """Check that ``layer`` is a :class:`Layer` (a plain ``(init, apply)`` pair is wrapped).

    >>> from funcnet import nn
    >>> nn.as_layer(nn.Relu) is nn.Relu
    True
    """
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, tuple) and len(layer) == 2 and all(callable(f) for f in layer):
        return Layer(layer[0], layer[1])
    if callable(layer) and getattr(layer, "__name__", "") and not isinstance(layer, type):
        hint = (f" (did you mean nn.elementwise({layer.__name__})? A plain function is not "
                "a layer)")
    else:
        hint = ""
    raise TypeError(f"expected a layer (an (init, apply) pair such as nn.Dense(10)), got "
                    f"{layer!r}{hint}")


# ---------------------------------------------------------------------------
# Helpers shared by the layer modules


def shape_tuple(input_shape, what: str, min_ndim: int = 1, ndim: int | None = None) -> tuple:
    """``input_shape`` as a tuple, checked for rank."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{what}: input_shape must be a tuple such as (-1, 28, 28, 1), got "
                        f"{input_shape!r}") from None
    if any(isinstance(d, (tuple, list)) for d in shape):
        raise TypeError(f"{what} takes one input, got the shapes {shape}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{what} expects {ndim}-d inputs, got input_shape {shape}")
    if len(shape) < min_ndim:
        raise ValueError(f"{what} expects inputs with at least {min_ndim} dimensions, got "
                         f"input_shape {shape}")
    return shape


def known(d) -> bool:
    """Whether a shape entry is a known size (not ``None`` or ``-1``)."""
    return d is not None and d != -1


def check_ndim(x, ndim: int, what: str, layout: str) -> None:
    """Raise a clear error if ``x`` does not have ``ndim`` axes."""
    if fnp.ndim(x) != ndim:
        raise ValueError(f"{what} expects {ndim}-d inputs {layout}, got shape "
                         f"{tuple(fnp.shape(x))}; for a single example add a batch axis "
                         f"(x[None])")


def int_tuple(value, n: int, what: str, name: str) -> tuple:
    """An int or a sequence of ``n`` ints, as a tuple of ``n`` ints."""
    if isinstance(value, int):
        return (value,) * n
    out = tuple(int(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{what}: {name} needs {n} entries, got {value!r}")
    return out


def split_keys(key, n: int) -> Sequence:
    """``n`` independent keys from ``key`` (a list of ``None`` if ``key`` is ``None``)."""
    if key is None:
        return [None] * n
    from funcnet import random

    if n == 1:
        return [key]
    keys = random.split(key, n)
    return [keys[i] for i in range(n)]
