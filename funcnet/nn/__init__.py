"""``funcnet.nn``: activations, initializers, losses, layers and ready-made models.

Layers are pure ``(init, apply)`` pairs (see :mod:`funcnet.nn.layers.base`
for the convention, including stateful layers such as ``BatchNorm``); params
are nested dicts of arrays, so ``fn.grad``, ``fn.jit``, ``fn.vmap`` and
``fn.tree.map`` work on them directly.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> model = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(3))
>>> _, params = model.init(random.key(0), (-1, 4))
>>> x, y = fnp.ones((8, 4)), fnp.zeros(8, fnp.int32)
>>> def loss(params):
...     logits = model.apply(params, x)
...     return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y)
>>> grads = fn.grad(loss)(params)
>>> sorted(nn.grad_norms(grads, per="layer"))
['0_dense', '2_dense']
"""

from funcnet.nn import initializers, losses  # noqa: F401  (namespaces)
from funcnet.nn.activations import (elu, gelu, leaky_relu, log_sigmoid, log_softmax, logsumexp,
                                    one_hot, relu, relu6, sigmoid, silu, softmax, softplus,
                                    standardize, swish, tanh)
from funcnet.nn.grad_stats import global_norm, grad_norms
from funcnet.nn.layers import (RNN, AvgPool1D, AvgPool2D, BatchNorm, Conv1D, Conv2D,
                               ConvTranspose2D, Dense, Dropout, Elu, Embedding, FanInConcat,
                               FanInSum, FanOut, Flatten, Gelu, GlobalAvgPool, GlobalMaxPool,
                               GroupNorm, GRUCell, Identity, Layer, LayerNorm, LeakyRelu,
                               LogSigmoid, LogSoftmax, LSTMCell, MaxPool1D, MaxPool2D,
                               MultiHeadAttention, Relu, Relu6, Reshape, Sigmoid, Silu,
                               SimpleRNNCell, Softmax, Softplus, Standardize, Swish, Tanh,
                               as_layer, dot_product_attention, elementwise, parallel,
                               residual, serial)

from funcnet.nn import models  # noqa: E402  isort: skip  (uses the layers above)

__all__ = [
    # namespaces
    "initializers", "losses", "models",
    # activations
    "relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "sigmoid", "log_sigmoid",
    "softplus", "tanh", "softmax", "log_softmax", "logsumexp", "one_hot", "standardize",
    # layers
    "Layer", "as_layer", "Dense", "Embedding", "Dropout", "Flatten", "Reshape", "Identity",
    "elementwise", "Relu", "Relu6", "LeakyRelu", "Elu", "Gelu", "Silu", "Swish", "Sigmoid",
    "LogSigmoid", "Softplus", "Tanh", "Softmax", "LogSoftmax", "Standardize", "Conv1D",
    "Conv2D", "ConvTranspose2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
    "GlobalAvgPool", "GlobalMaxPool", "LayerNorm", "GroupNorm", "BatchNorm", "SimpleRNNCell",
    "LSTMCell", "GRUCell", "RNN", "MultiHeadAttention", "dot_product_attention",
    # combinators
    "serial", "parallel", "residual", "FanOut", "FanInSum", "FanInConcat",
    # gradient statistics
    "grad_norms", "global_norm",
]
