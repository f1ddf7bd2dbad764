"""Combinators: build networks from layers.

- :func:`serial` chains layers; :func:`parallel` applies one layer per input
  of a tuple; :func:`FanOut` copies its input into a tuple; :data:`FanInSum`
  and :func:`FanInConcat` join a tuple; :func:`residual` is
  ``main(x) + shortcut(x)``.
- Params (and states) are dicts keyed by position and layer name:
  ``"0_conv2d"``, ``"1_relu"``, ...  (zero-padded, ``"00_..."``, when there are
  ten or more children, so that the keys sort in layer order).  A parameterless
  child keeps its key with ``{}``; the state dict has keys only for stateful
  children.
- A combinator is stateful exactly when one of its children is, and then
  threads the children's states (see :mod:`funcnet.nn.layers.base`).
- With a ``key``, each child gets an independent sub-key; ``train`` is passed
  to every child.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> block = nn.residual(nn.Dense(4), nn.Relu, nn.Dense(4))
>>> shape, params = block.init(random.key(0), (-1, 4))
>>> sorted(params), sorted(params["main"])
(['main'], ['0_dense', '1_relu', '2_dense'])
"""

from __future__ import annotations

import funcnet.numpy as fnp
from funcnet.nn.layers.base import Layer, as_layer, shape_tuple, split_keys

__all__ = ["serial", "parallel", "residual", "FanOut", "FanInSum", "FanInConcat"]


def _child_names(layers) -> list[str]:
    width = len(str(len(layers) - 1))
    return [f"{i:0{width}d}_{layer.name}" for i, layer in enumerate(layers)]


def _check_state(state, stateful: bool, what: str):
    if stateful and state is None:
        raise ValueError(f"{what} contains a stateful layer (such as BatchNorm): call "
                         "apply(params, x, state=state, ...) with the state from init, and use "
                         "the new state it returns (or use layer.apply_with_state)")


def _make(init, apply_with_state, stateful: bool, name: str, description: str) -> Layer:
    """A combinator layer from functions written in the uniform (always-stateful) form.

    ``init(key, shape) -> (out_shape, params, state)`` and ``apply_with_state(params,
    x, state, key, train) -> (y, state)``; the wrapper gives the layer the stateless
    signatures when no child has state.
    """
    if stateful:
        def apply(params, x, *, state=None, key=None, train=False):
            _check_state(state, True, description)
            return apply_with_state(params, x, state, key, train)

        return Layer(init, apply, stateful=True, name=name, description=description)

    def init_stateless(key, input_shape):
        out_shape, params, _ = init(key, input_shape)
        return out_shape, params

    def apply_stateless(params, x, *, key=None, train=False):
        return apply_with_state(params, x, {}, key, train)[0]

    return Layer(init_stateless, apply_stateless, name=name, description=description)


def serial(*layers) -> Layer:
    """Compose layers left to right: ``serial(f, g)(x) = g(f(x))``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> mlp = nn.serial(nn.Flatten, nn.Dense(32), nn.Relu, nn.Dense(10))
    >>> shape, params = mlp.init(random.key(0), (-1, 8, 8))
    >>> shape, mlp.apply(params, fnp.ones((5, 8, 8))).shape
    ((-1, 10), (5, 10))
    """
    if len(layers) == 1 and isinstance(layers[0], (list, tuple)) and not isinstance(layers[0],
                                                                                   Layer):
        layers = tuple(layers[0])
    layers = [as_layer(layer) for layer in layers]
    names = _child_names(layers)
    stateful = any(layer.stateful for layer in layers)

    def init(key, input_shape):
        params, state = {}, {}
        shape = input_shape
        for name, layer, k in zip(names, layers, split_keys(key, len(layers))):
            shape, params[name], s = layer.init_with_state(k, shape)
            if layer.stateful:
                state[name] = s
        return shape, params, state

    def apply_with_state(params, x, state, key, train):
        new_state = {}
        for name, layer, k in zip(names, layers, split_keys(key, len(layers))):
            if layer.stateful:
                x, new_state[name] = layer.apply(params[name], x, state=state[name], key=k,
                                                 train=train)
            else:
                x = layer.apply(params[name], x, key=k, train=train)
        return x, new_state

    inner = ", ".join(layer.description for layer in layers)
    return _make(init, apply_with_state, stateful, "serial", f"serial({inner})")


def parallel(*layers) -> Layer:
    """Apply ``layers[i]`` to the ``i``-th element of a tuple input; the output is a tuple.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> two = nn.parallel(nn.Dense(2), nn.Dense(3))
    >>> shapes, params = two.init(random.key(0), ((-1, 4), (-1, 5)))
    >>> shapes
    ((-1, 2), (-1, 3))
    """
    layers = [as_layer(layer) for layer in layers]
    names = _child_names(layers)
    stateful = any(layer.stateful for layer in layers)
    what = f"parallel of {len(layers)} layers"

    def check(n):
        if n != len(layers):
            raise ValueError(f"{what} needs a tuple of {len(layers)} inputs, got {n}")

    def init(key, input_shape):
        check(len(input_shape))
        shapes, params, state = [], {}, {}
        for name, layer, k, shape in zip(names, layers, split_keys(key, len(layers)),
                                         input_shape):
            out, params[name], s = layer.init_with_state(k, shape)
            shapes.append(out)
            if layer.stateful:
                state[name] = s
        return tuple(shapes), params, state

    def apply_with_state(params, xs, state, key, train):
        check(len(xs))
        ys, new_state = [], {}
        for name, layer, k, x in zip(names, layers, split_keys(key, len(layers)), xs):
            if layer.stateful:
                y, new_state[name] = layer.apply(params[name], x, state=state[name], key=k,
                                                 train=train)
            else:
                y = layer.apply(params[name], x, key=k, train=train)
            ys.append(y)
        return tuple(ys), new_state

    inner = ", ".join(layer.description for layer in layers)
    return _make(init, apply_with_state, stateful, "parallel", f"parallel({inner})")


def residual(*layers, shortcut=None) -> Layer:
    """``serial(*layers)(x) + shortcut(x)``; ``shortcut`` defaults to the identity.

    Params ``{"main": ..., "shortcut": ...}`` (``"shortcut"`` only when one is
    given, e.g. a strided 1x1 ``Conv2D`` projection when the shapes change).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> block = nn.residual(nn.Conv2D(8, 3, strides=2), shortcut=nn.Conv2D(8, 1, strides=2))
    >>> shape, params = block.init(random.key(0), (-1, 8, 8, 4))
    >>> shape, sorted(params)
    ((-1, 4, 4, 8), ['main', 'shortcut'])
    """
    main = serial(*layers)
    short = None if shortcut is None else as_layer(shortcut)
    parts = [("main", main)] + ([("shortcut", short)] if short is not None else [])
    stateful = any(layer.stateful for _, layer in parts)

    def init(key, input_shape):
        params, state, shapes = {}, {}, []
        for (name, layer), k in zip(parts, split_keys(key, len(parts))):
            out, params[name], s = layer.init_with_state(k, input_shape)
            shapes.append(tuple(out))
            if layer.stateful:
                state[name] = s
        if len(shapes) == 2 and shapes[0] != shapes[1]:
            raise ValueError(f"residual: the main branch gives shape {shapes[0]} but the "
                             f"shortcut gives {shapes[1]}; they must match")
        if short is None and tuple(shapes[0]) != tuple(input_shape):
            raise ValueError(f"residual: the main branch changes the shape {tuple(input_shape)}"
                             f" to {shapes[0]}; pass a shortcut (e.g. a 1x1 Conv2D or Dense "
                             "projection) that gives the same shape")
        return shapes[0], params, state

    def apply_with_state(params, x, state, key, train):
        ys, new_state = [], {}
        for (name, layer), k in zip(parts, split_keys(key, len(parts))):
            if layer.stateful:
                y, new_state[name] = layer.apply(params[name], x, state=state[name], key=k,
                                                 train=train)
            else:
                y = layer.apply(params[name], x, key=k, train=train)
            ys.append(y)
        return (ys[0] + ys[1] if len(ys) == 2 else ys[0] + x), new_state

    description = f"residual({main.description[7:-1]}"
    description += f", shortcut={short.description})" if short is not None else ")"
    return _make(init, apply_with_state, stateful, "residual", description)


def FanOut(num: int) -> Layer:
    """Copy the input into a tuple of ``num`` references.

    >>> from funcnet import nn, random
    >>> nn.FanOut(2).init(random.key(0), (-1, 3))[0]
    ((-1, 3), (-1, 3))
    """
    num = int(num)

    def init(key, input_shape):
        return (tuple(input_shape),) * num, {}

    def apply(params, x, *, key=None, train=False):
        return (x,) * num

    return Layer(init, apply, name="fan_out", description=f"FanOut({num})")


def _fan_in_sum():
    def init(key, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"FanInSum: the inputs must have one shape, got {shapes}")
        return shapes[0], {}

    def apply(params, xs, *, key=None, train=False):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total

    layer = Layer(init, apply, name="fan_in_sum", description="FanInSum",
                  configure=lambda: layer)
    return layer


FanInSum = _fan_in_sum()
FanInSum.__doc__ = """Sum a tuple of inputs of one shape.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn
>>> nn.FanInSum.apply({}, (fnp.ones(2), fnp.ones(2)))
array([2., 2.], dtype=float32)
"""


def FanInConcat(axis: int = -1) -> Layer:
    """Concatenate a tuple of inputs along ``axis`` (the batch axis 0 is not allowed).

    >>> from funcnet import nn, random
    >>> nn.FanInConcat().init(random.key(0), ((-1, 3), (-1, 5)))[0]
    (-1, 8)
    """
    axis = int(axis)

    def init(key, input_shape):
        shapes = [shape_tuple(s, "FanInConcat") for s in input_shape]
        ndim = len(shapes[0])
        ax = axis % ndim
        if ax == 0:
            raise ValueError("FanInConcat: axis 0 is the batch axis")
        sizes = [s[ax] for s in shapes]
        total = -1 if any(d is None or d == -1 for d in sizes) else sum(sizes)
        return shapes[0][:ax] + (total,) + shapes[0][ax + 1:], {}

    def apply(params, xs, *, key=None, train=False):
        return fnp.concatenate(list(xs), axis=axis)

    return Layer(init, apply, name="fan_in_concat", description=f"FanInConcat({axis})")


__test__ = {"FanInSum": FanInSum.__doc__}
