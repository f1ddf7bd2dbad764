"""Multi-head scaled dot-product attention (Vaswani et al., 2017).

>>> import funcnet.numpy as fnp
>>> from funcnet import nn, random
>>> mha = nn.MultiHeadAttention(num_heads=2)
>>> shape, params = mha.init(random.key(0), (-1, 5, 8))          # self-attention
>>> shape, sorted(params)
((-1, 5, 8), ['key', 'out', 'query', 'value'])
>>> mha.apply(params, fnp.ones((3, 5, 8))).shape
(3, 5, 8)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import funcnet.numpy as fnp
from funcnet import random
from funcnet.nn import initializers
from funcnet.nn.activations import softmax
from funcnet.nn.layers.base import Layer, known, shape_tuple
from funcnet.nn.layers.core import matmul_last

__all__ = ["MultiHeadAttention", "dot_product_attention"]


def dot_product_attention(query, key, value, mask=None):
    """``softmax(q k^T / sqrt(d) + masking) v`` over ``(..., T, d)`` arrays.

    ``query`` is ``(..., Tq, d)``, ``key`` ``(..., Tk, d)``, ``value``
    ``(..., Tk, dv)``; ``mask`` (boolean, true where attending is allowed)
    broadcasts to ``(..., Tq, Tk)``.  A query that may attend to nothing
    gets zeros.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> q = k = fnp.eye(2)[None]
    >>> v = fnp.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> out = nn.dot_product_attention(q, k, v, mask=fnp.array([True, False]))
    >>> out
    array([[[1., 0.],
            [1., 0.]]], dtype=float32)
    """
    d = fnp.shape(query)[-1]
    logits = (query * (1.0 / math.sqrt(d))) @ fnp.swapaxes(key, -1, -2)
    if mask is None:
        return softmax(logits, axis=-1) @ value
    mask = fnp.asarray(mask)
    lowest = fnp.finfo(logits.dtype).min
    weights = softmax(fnp.where(mask, logits, lowest), axis=-1)
    weights = fnp.where(mask, weights, 0)  # rows with nothing to attend to give 0
    return weights @ value


def MultiHeadAttention(num_heads: int, *, key_size: int | None = None,
                       out_features: int | None = None, causal: bool = False,
                       use_bias: bool = True, w_init: Callable | None = None,
                       b_init: Callable = initializers.zeros) -> Layer:
    """Multi-head attention over ``(N, T, D)`` sequences.

    The input is one array ``x`` (self-attention: queries, keys and values
    all from ``x``), a pair ``(x_q, x_kv)`` or a triple ``(x_q, x_k, x_v)``.
    Each head projects to ``key_size`` features (default ``D // num_heads``);
    the heads' outputs are concatenated and projected to ``out_features``
    (default ``D`` of the query).  Params ``{"query", "key", "value", "out"}``,
    each ``{"w", "b"}``.

    ``apply(params, x, *, key=None, train=False, mask=None)``: ``mask`` is
    boolean, true where attending is allowed, and broadcasts to
    ``(N, num_heads, Tq, Tk)``; a key-padding mask ``(N, Tk)`` is also
    accepted.  ``causal=True`` adds the mask that stops step ``t`` attending
    to later steps.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn, random
    >>> mha = nn.MultiHeadAttention(4, causal=True)
    >>> shape, params = mha.init(random.key(0), (-1, 6, 16))
    >>> x = random.normal(random.key(1), (2, 6, 16))
    >>> y = mha.apply(params, x)
    >>> bool(abs(y[:, :3] - mha.apply(params, x[:, :3])).max() < 1e-5)   # no peeking
    True
    """
    heads = int(num_heads)
    w_init = initializers.glorot_uniform() if w_init is None else w_init

    def split_inputs(x):
        if isinstance(x, (tuple, list)):
            if len(x) == 2:
                return x[0], x[1], x[1]
            if len(x) == 3:
                return tuple(x)
            raise ValueError(f"MultiHeadAttention takes x, (x_q, x_kv) or (x_q, x_k, x_v); "
                             f"got a tuple of {len(x)}")
        return x, x, x

    def init(rng, input_shape):
        if isinstance(input_shape[0], (tuple, list)):
            shapes = [shape_tuple(s, "MultiHeadAttention", ndim=3) for s in input_shape]
            q_shape, k_shape, v_shape = split_inputs(shapes)
        else:
            q_shape = k_shape = v_shape = shape_tuple(input_shape, "MultiHeadAttention",
                                                      ndim=3)
        dims = [s[-1] for s in (q_shape, k_shape, v_shape)]
        if not all(known(d) for d in dims):
            raise ValueError("MultiHeadAttention: feature sizes must be known, got "
                             f"{input_shape}")
        size = key_size if key_size is not None else dims[0] // heads
        if size < 1:
            raise ValueError(f"MultiHeadAttention: {dims[0]} features cannot be split into "
                             f"{heads} heads; pass key_size")
        out_dim = int(out_features) if out_features is not None else int(dims[0])
        keys = random.split(rng, 8)

        def dense(k_w, k_b, n_in, n_out):
            p = {"w": w_init(k_w, (int(n_in), int(n_out)))}
            if use_bias:
                p["b"] = b_init(k_b, (int(n_out),))
            return p

        params = {"query": dense(keys[0], keys[1], dims[0], heads * size),
                  "key": dense(keys[2], keys[3], dims[1], heads * size),
                  "value": dense(keys[4], keys[5], dims[2], heads * size),
                  "out": dense(keys[6], keys[7], heads * size, out_dim)}
        return q_shape[:2] + (out_dim,), params

    def project(p, x):
        y = matmul_last(x, p["w"])
        return y + p["b"] if "b" in p else y

    def to_heads(y):  # (N, T, H*K) -> (N, H, T, K)
        n, t, hk = fnp.shape(y)
        return fnp.transpose(fnp.reshape(y, (n, t, heads, hk // heads)), (0, 2, 1, 3))

    def apply(params, x, *, key=None, train=False, mask=None):
        x_q, x_k, x_v = split_inputs(x)
        q = to_heads(project(params["query"], x_q))
        k = to_heads(project(params["key"], x_k))
        v = to_heads(project(params["value"], x_v))
        t_q, t_k = fnp.shape(q)[2], fnp.shape(k)[2]
        if mask is not None:
            mask = fnp.asarray(mask).astype(bool)
            if mask.ndim == 2:  # key padding (N, Tk)
                mask = mask[:, None, None, :]
        if causal:
            allowed = fnp.arange(t_k)[None, :] <= fnp.arange(t_q)[:, None]
            mask = allowed if mask is None else fnp.logical_and(mask, allowed)
        out = dot_product_attention(q, k, v, mask)  # (N, H, Tq, K)
        n = fnp.shape(out)[0]
        out = fnp.reshape(fnp.transpose(out, (0, 2, 1, 3)), (n, t_q, -1))
        return project(params["out"], out)

    return Layer(init, apply, name="attention", description=f"MultiHeadAttention({heads})")
