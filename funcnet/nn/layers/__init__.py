"""Layers as pure ``(init, apply)`` pairs; see :mod:`funcnet.nn.layers.base` for the
convention (including stateful layers).

>>> from funcnet import nn
>>> isinstance(nn.Dense(3), nn.Layer)
True
"""

from funcnet.nn.layers.attention import MultiHeadAttention, dot_product_attention
from funcnet.nn.layers.base import Layer, as_layer
from funcnet.nn.layers.combinators import (FanInConcat, FanInSum, FanOut, parallel, residual,
                                           serial)
from funcnet.nn.layers.conv import (AvgPool1D, AvgPool2D, Conv1D, Conv2D, ConvTranspose2D,
                                    GlobalAvgPool, GlobalMaxPool, MaxPool1D, MaxPool2D)
from funcnet.nn.layers.core import (Dense, Dropout, Elu, Embedding, Flatten, Gelu, Identity,
                                    LeakyRelu, LogSigmoid, LogSoftmax, Relu, Relu6, Reshape,
                                    Sigmoid, Silu, Softmax, Softplus, Standardize, Swish, Tanh,
                                    elementwise)
from funcnet.nn.layers.norm import BatchNorm, GroupNorm, LayerNorm
from funcnet.nn.layers.recurrent import RNN, GRUCell, LSTMCell, SimpleRNNCell

__all__ = [
    "Layer", "as_layer", "Dense", "Embedding", "Dropout", "Flatten", "Reshape", "Identity",
    "elementwise", "Relu", "Relu6", "LeakyRelu", "Elu", "Gelu", "Silu", "Swish", "Sigmoid",
    "LogSigmoid", "Softplus", "Tanh", "Softmax", "LogSoftmax", "Standardize", "Conv1D",
    "Conv2D", "ConvTranspose2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
    "GlobalAvgPool", "GlobalMaxPool", "LayerNorm", "GroupNorm", "BatchNorm", "SimpleRNNCell",
    "LSTMCell", "GRUCell", "RNN", "MultiHeadAttention", "dot_product_attention", "serial",
    "parallel", "residual", "FanOut", "FanInSum", "FanInConcat",
]
