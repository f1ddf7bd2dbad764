"""Ready-made models for the examples and the command line.

Each function returns a :class:`~funcnet.nn.Layer` whose output is the
class logits ``(N, num_classes)`` (train with
``nn.losses.softmax_cross_entropy_with_integer_labels``):

| model | input | notes |
|---|---|---|
| :func:`MLP` | ``(N, ...)`` (flattened) | dense layers, optional dropout |
| :func:`LeNet` | images ``(N, H, W, C)`` | two conv + pool stages, three dense layers |
| :func:`ResNet` | images ``(N, H, W, C)`` | residual blocks; **stateful** with BatchNorm |
| :func:`TextClassifier` | token ids ``(N, T)`` | embedding + masked GRU or attention pooling |
| :func:`SpeechClassifier` | frames ``(N, T, F)`` | log-mel / MFCC frames; 1-d convs or a GRU |

:func:`create` builds one by name (``"mlp"``, ``"lenet"``, ``"resnet"``,
``"text"``, ``"speech"``), for command-line tools.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> model = nn.models.LeNet(num_classes=10)
>>> shape, params = model.init(random.key(0), (-1, 28, 28, 1))
>>> shape, model.apply(params, fnp.zeros((2, 28, 28, 1))).shape
((-1, 10), (2, 10))
"""

from __future__ import annotations

from collections.abc import Sequence

import funcnet.numpy as fnp
from funcnet import random
from funcnet.nn import initializers
from funcnet.nn.layers.attention import MultiHeadAttention
from funcnet.nn.layers.base import Layer, as_layer, shape_tuple
from funcnet.nn.layers.combinators import residual, serial
from funcnet.nn.layers.conv import Conv1D, Conv2D, GlobalAvgPool, MaxPool1D, MaxPool2D
from funcnet.nn.layers.core import Dense, Dropout, Embedding, Flatten, Relu
from funcnet.nn.layers.norm import BatchNorm, GroupNorm, LayerNorm
from funcnet.nn.layers.recurrent import RNN, GRUCell

__all__ = ["MLP", "LeNet", "ResidualBlock", "ResNet", "TextClassifier", "SpeechClassifier",
           "create", "MODELS"]


def MLP(hidden_sizes: Sequence[int] = (128,), num_classes: int = 10, *, activation=Relu,
        dropout: float = 0.0) -> Layer:
    """Flatten, then ``Dense(h) - activation [- Dropout]`` per hidden size, then
    ``Dense(num_classes)``.  Dense kernels use ``he_normal`` (suited to ReLU).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> mlp = nn.models.MLP((32, 16), num_classes=3)
    >>> shape, params = mlp.init(random.key(0), (-1, 8, 8))
    >>> shape, len(params)
    ((-1, 3), 6)
    """
    layers = [Flatten]
    for h in hidden_sizes:
        layers += [Dense(h, w_init=initializers.he_normal()), as_layer(activation)]
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(num_classes))
    return serial(*layers)


def LeNet(num_classes: int = 10, *, channels: Sequence[int] = (6, 16),
          hidden_sizes: Sequence[int] = (120, 84)) -> Layer:
    """A LeNet-5-style CNN: ``[Conv2D 5x5 (SAME) - ReLU - MaxPool 2] x 2``, then dense
    layers.  With SAME padding it fits any image of at least 4x4 (28x28 MNIST, 8x8
    digits, 32x32 CIFAR).

    >>> from funcnet import nn, random
    >>> nn.models.LeNet().init(random.key(0), (-1, 8, 8, 1))[0]
    (-1, 10)
    """
    he = initializers.he_normal()
    layers = []
    for c in channels:
        layers += [Conv2D(c, 5, w_init=he), Relu, MaxPool2D(2)]
    layers.append(Flatten)
    for h in hidden_sizes:
        layers += [Dense(h, w_init=he), Relu]
    layers.append(Dense(num_classes))
    return serial(*layers)


def _norm_layer(norm: str | None, features: int):
    if norm in ("batch", "sync_batch"):
        return [BatchNorm(0.9, sync=norm == "sync_batch")]
    if norm == "group":
        return [GroupNorm(min(8, features))]
    if norm is None or norm == "none":
        return []
    raise ValueError(f"norm must be 'batch', 'sync_batch', 'group' or None, got {norm!r}")


def ResidualBlock(features: int, strides: int = 1, *, norm: str | None = "batch") -> Layer:
    """The basic ResNet block (He et al., 2016): ``relu(main(x) + shortcut(x))`` with
    ``main = conv3x3 (strides) - norm - relu - conv3x3 - norm``.

    The shortcut is the identity when the shape is kept; otherwise (a stride
    or a change of channels) a 1x1 convolution with ``strides`` and a norm
    (a *projection*), chosen by ``init`` from the input shape.  Params
    ``{"main", "shortcut"}`` (``"shortcut"`` only with a projection).

    >>> from funcnet import nn, random
    >>> block = nn.models.ResidualBlock(32, strides=2)
    >>> shape, params, state = block.init(random.key(0), (-1, 16, 16, 16))
    >>> shape, sorted(params["0_residual"]), block.stateful
    ((-1, 8, 8, 32), ['main', 'shortcut'], True)
    """
    he = initializers.he_normal()
    main = [Conv2D(features, 3, strides, use_bias=False, w_init=he), *_norm_layer(norm, features),
            Relu, Conv2D(features, 3, use_bias=False, w_init=he), *_norm_layer(norm, features)]
    projection = serial(Conv2D(features, 1, strides, use_bias=False, w_init=he),
                        *_norm_layer(norm, features))
    identity_block = serial(residual(*main), Relu)
    projected_block = serial(residual(*main, shortcut=projection), Relu)
    stateful = identity_block.stateful

    def needs_projection(input_shape) -> bool:
        shape = shape_tuple(input_shape, "ResidualBlock", ndim=4)
        return strides != 1 or shape[-1] != features

    def choose(params):
        return projected_block if "shortcut" in params["0_residual"] else identity_block

    def init(key, input_shape):
        block = projected_block if needs_projection(input_shape) else identity_block
        return block.init(key, input_shape)

    if stateful:
        def apply(params, x, *, state=None, key=None, train=False):
            return choose(params).apply(params, x, state=state, key=key, train=train)
    else:
        def apply(params, x, *, key=None, train=False):
            return choose(params).apply(params, x, key=key, train=train)

    return Layer(init, apply, stateful=stateful, name="block",
                 description=f"ResidualBlock({features}, strides={strides})")


def ResNet(num_classes: int = 10, *, stage_sizes: Sequence[int] = (1, 1, 1), width: int = 16,
           norm: str | None = "batch") -> Layer:
    """A small ResNet for ``(N, H, W, C)`` images (CIFAR-style, He et al., 2016).

    A 3x3 convolution with ``width`` channels, then stages of
    :func:`ResidualBlock` s (``stage_sizes[i]`` blocks with ``width * 2**i``
    channels; every stage after the first starts with a stride-2 block whose
    shortcut is a projection), global average pooling and a dense layer.
    The defaults make an 8-layer network (three stages of one block).

    With ``norm="batch"`` the model is **stateful**::

        shape, params, state = model.init(key, (-1, 32, 32, 3))
        logits, state = model.apply(params, x, state=state, train=True)
        logits, _ = model.apply(params, x, state=state)          # evaluation

    ``norm="sync_batch"`` uses ``BatchNorm(sync=True)`` (statistics over
    every process's batch in data-parallel training; the same as ``"batch"``
    in one process).  ``norm="group"`` (GroupNorm) or ``None`` give a
    stateless model.

    >>> from funcnet import nn, random
    >>> model = nn.models.ResNet(num_classes=10)
    >>> shape, params, state = model.init(random.key(0), (-1, 32, 32, 3))
    >>> shape, model.stateful
    ((-1, 10), True)
    """
    he = initializers.he_normal()
    layers = [Conv2D(width, 3, use_bias=False, w_init=he), *_norm_layer(norm, width), Relu]
    for i, blocks in enumerate(stage_sizes):
        features = width * 2 ** i
        for b in range(blocks):
            strides = 2 if (i > 0 and b == 0) else 1
            layers.append(ResidualBlock(features, strides, norm=norm))
    layers += [GlobalAvgPool, Dense(num_classes)]
    return serial(*layers)


# ---------------------------------------------------------------------------
# Sequence models


def _masked_mean(h, mask):
    """Mean of ``h`` (N, T, D) over the time steps where ``mask`` (N, T) holds."""
    m = mask.astype(h.dtype)[..., None]
    total = fnp.sum(h * m, axis=1)
    count = fnp.maximum(fnp.sum(m, axis=1), 1)
    return total / count


def TextClassifier(vocab_size: int, num_classes: int = 2, *, embed_dim: int = 64,
                   hidden_size: int = 64, encoder: str = "gru", num_heads: int = 4,
                   pad_id: int = 0, dropout: float = 0.0) -> Layer:
    """Classify token-id sequences ``(N, T)`` padded with ``pad_id``.

    ``Embedding(vocab_size, embed_dim)``, then an encoder that ignores the
    padding, then ``Dense(num_classes)``:

    - ``encoder="gru"``: a GRU with ``hidden_size`` units over the real
      tokens (masked); its final state is the summary;
    - ``encoder="attention"``: self-attention (``num_heads`` heads, padding
      masked) with a residual connection and LayerNorm, then the mean over
      the real tokens (attention pooling).

    ``dropout`` (the drop rate) applies to the summary when ``train=True``.
    Params ``{"embedding", "encoder", "head"}`` (plus ``"norm"`` for
    attention).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> model = nn.models.TextClassifier(vocab_size=50, num_classes=3)
    >>> shape, params = model.init(random.key(0), (-1, 12))
    >>> ids = fnp.array([[5, 7, 9, 0, 0], [3, 0, 0, 0, 0]])
    >>> shape, model.apply(params, ids).shape
    ((-1, 3), (2, 3))
    """
    if encoder not in ("gru", "attention"):
        raise ValueError(f"TextClassifier: encoder must be 'gru' or 'attention', got "
                         f"{encoder!r}")
    embed = Embedding(vocab_size, embed_dim, embedding_init=initializers.normal(0.1))
    if encoder == "gru":
        enc = RNN(GRUCell(hidden_size), return_sequences=False)
        summary_dim = hidden_size
    else:
        enc = MultiHeadAttention(num_heads)
        norm = LayerNorm()
        summary_dim = embed_dim
    head = Dense(num_classes)
    drop = Dropout(dropout)

    def init(key, input_shape):
        shape = shape_tuple(input_shape, "TextClassifier", ndim=2)
        k_e, k_r, k_h, k_n = random.split(key, 4)
        e_shape, params_e = embed.init(k_e, shape)
        _, params_r = enc.init(k_r, e_shape)
        params = {"embedding": params_e, "encoder": params_r,
                  "head": head.init(k_h, (shape[0], summary_dim))[1]}
        if encoder == "attention":
            params["norm"] = norm.init(k_n, e_shape)[1]
        return (shape[0], num_classes), params

    def apply(params, x, *, key=None, train=False):
        ids = fnp.asarray(x)
        mask = ids != pad_id
        h = embed.apply(params["embedding"], ids)
        if encoder == "gru":
            summary = enc.apply(params["encoder"], h, mask=mask)
        else:
            h = norm.apply(params["norm"], h + enc.apply(params["encoder"], h, mask=mask))
            summary = _masked_mean(h, mask)
        summary = drop.apply({}, summary, key=key, train=train)
        return head.apply(params["head"], summary)

    return Layer(init, apply, name="text_classifier",
                 description=f"TextClassifier({vocab_size}, {num_classes}, encoder={encoder!r})")


def SpeechClassifier(num_classes: int = 10, *, encoder: str = "conv",
                     channels: Sequence[int] = (32, 64), kernel_size: int = 5,
                     hidden_size: int = 64, dropout: float = 0.0) -> Layer:
    """Classify spoken commands from feature frames ``(N, T, F)`` (log-mel or MFCC).

    A ``LayerNorm`` over the features of each frame, then

    - ``encoder="conv"``: ``[Conv1D(c, kernel_size) - ReLU - MaxPool1D 2]`` per
      entry of ``channels``, then the mean over time;
    - ``encoder="gru"``: a GRU with ``hidden_size`` units; its final state;

    then ``[Dropout -] Dense(num_classes)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> model = nn.models.SpeechClassifier(num_classes=10)
    >>> shape, params = model.init(random.key(0), (-1, 40, 13))     # 40 frames of 13 MFCCs
    >>> shape, model.apply(params, fnp.zeros((2, 40, 13))).shape
    ((-1, 10), (2, 10))
    """
    layers = [LayerNorm()]
    if encoder == "conv":
        for c in channels:
            layers += [Conv1D(c, kernel_size, w_init=initializers.he_normal()), Relu,
                       MaxPool1D(2)]
        layers.append(GlobalAvgPool)
    elif encoder == "gru":
        layers.append(RNN(GRUCell(hidden_size), return_sequences=False))
    else:
        raise ValueError(f"SpeechClassifier: encoder must be 'conv' or 'gru', got {encoder!r}")
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(num_classes))
    return serial(*layers)


MODELS = {"mlp": MLP, "lenet": LeNet, "resnet": ResNet, "text": TextClassifier,
          "speech": SpeechClassifier}


def create(name: str, **kwargs) -> Layer:
    """Build a model by name: ``"mlp"``, ``"lenet"``, ``"resnet"``, ``"text"`` or
    ``"speech"``, with the model function's keyword arguments.

    >>> from funcnet import nn
    >>> nn.models.create("mlp", hidden_sizes=(64,), num_classes=10)
    <Layer serial(Flatten, Dense(64), Relu, Dense(10))>
    """
    try:
        factory = MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return factory(**kwargs)
