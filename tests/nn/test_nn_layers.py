"""funcnet.nn layers.

Table-driven: every row of ``LAYERS`` checks that ``init``'s output shape matches
``apply``'s, gradient checks against finite differences (float64, forward and reverse
mode) with respect to params and inputs, ``vmap`` over examples equal to the loop, and
``jit`` equal to eager.  Then layer-specific behaviour: Dropout, BatchNorm's state,
RNN masking and cells against NumPy, attention against NumPy, combinators.
"""

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import nn, random, tree
from funcnet.testing import check_grads

KEY = random.key(0)

# id -> (layer factory, input shape with the batch first, input kind)
LAYERS = {
    "dense": (lambda: nn.Dense(3), (2, 4), "float"),
    "dense_3d_no_bias": (lambda: nn.Dense(2, use_bias=False), (2, 3, 4), "float"),
    "conv1d": (lambda: nn.Conv1D(3, 3, strides=2), (2, 7, 2), "float"),
    "conv1d_dilated_valid": (lambda: nn.Conv1D(2, 2, padding="VALID", dilation=2), (1, 6, 2),
                             "float"),
    "conv2d": (lambda: nn.Conv2D(3, 3), (2, 5, 5, 2), "float"),
    "conv2d_grouped_strided": (lambda: nn.Conv2D(4, (2, 3), strides=2, feature_group_count=2),
                               (1, 5, 6, 4), "float"),
    "conv_transpose2d": (lambda: nn.ConvTranspose2D(2, 3, strides=2), (2, 3, 3, 2), "float"),
    "max_pool2d": (lambda: nn.MaxPool2D(2), (2, 4, 4, 2), "float"),
    "max_pool1d_same": (lambda: nn.MaxPool1D(3, strides=2, padding="SAME"), (2, 5, 2),
                        "float"),
    "avg_pool2d_same": (lambda: nn.AvgPool2D(2, padding="SAME"), (2, 5, 5, 2), "float"),
    "avg_pool1d": (lambda: nn.AvgPool1D(2), (2, 4, 3), "float"),
    "global_avg_pool": (lambda: nn.GlobalAvgPool, (2, 3, 3, 2), "float"),
    "global_max_pool": (lambda: nn.GlobalMaxPool, (2, 4, 2), "float"),
    "flatten": (lambda: nn.Flatten, (2, 3, 2), "float"),
    "reshape": (lambda: nn.Reshape((3, -1)), (2, 6), "float"),
    "dropout_eval": (lambda: nn.Dropout(0.5), (2, 3), "float"),
    "embedding": (lambda: nn.Embedding(10, 3), (2, 4), "int"),
    "layer_norm": (lambda: nn.LayerNorm(), (2, 3, 4), "float"),
    "layer_norm_2axes": (lambda: nn.LayerNorm(axis=(-2, -1)), (2, 3, 4), "float"),
    "group_norm": (lambda: nn.GroupNorm(2), (2, 3, 4), "float"),
    "batch_norm_train": (lambda: nn.BatchNorm(0.9), (4, 3), "float"),
    "batch_norm_eval": (lambda: nn.BatchNorm(0.9), (3, 2, 2, 3), "float"),
    "simple_rnn": (lambda: nn.RNN(nn.SimpleRNNCell(3)), (2, 4, 2), "float"),
    "lstm_final": (lambda: nn.RNN(nn.LSTMCell(3), return_sequences=False), (2, 4, 2), "float"),
    "gru_reverse": (lambda: nn.RNN(nn.GRUCell(3), reverse=True), (2, 4, 2), "float"),
    "attention": (lambda: nn.MultiHeadAttention(2), (2, 3, 4), "float"),
    "attention_causal": (lambda: nn.MultiHeadAttention(2, key_size=3, out_features=5,
                                                      causal=True), (1, 3, 4), "float"),
    "gelu": (lambda: nn.Gelu, (2, 3), "float"),
    "softmax_axis0": (lambda: nn.Softmax(axis=0), (3, 2), "float"),
    "serial": (lambda: nn.serial(nn.Conv2D(2, 2), nn.Tanh, nn.Flatten, nn.Dense(3)),
               (2, 3, 3, 1), "float"),
    "residual_projection": (lambda: nn.residual(nn.Dense(3), nn.Tanh, shortcut=nn.Dense(3)),
                            (2, 4), "float"),
    "fan_out_parallel_concat": (lambda: nn.serial(nn.FanOut(2), nn.parallel(nn.Dense(2),
                                                                           nn.Identity),
                                                  nn.FanInConcat()), (2, 3), "float"),
    "serial_with_batch_norm": (lambda: nn.serial(nn.Dense(3), nn.BatchNorm(), nn.Relu,
                                                 nn.Dense(2)), (4, 2), "float"),
}

TRAIN = {"batch_norm_train", "serial_with_batch_norm"}


def _setup(name, dtype=np.float32):
    factory, shape, kind = LAYERS[name]
    layer = factory()
    out_shape, params, state = layer.init_with_state(KEY, (-1,) + shape[1:])
    if kind == "int":
        x = np.asarray(random.randint(random.key(1), shape, 0, 10))
    else:
        x = np.asarray(random.normal(random.key(1), shape), dtype)
    if dtype != np.float32:
        params = tree.map(lambda a: np.asarray(a, dtype), params)
        state = tree.map(lambda a: np.asarray(a, dtype), state)
    train = name in TRAIN
    return layer, out_shape, params, state, x, kind, train


def _run(layer, params, state, x, train, key=None):
    return layer.apply_with_state(params, x, state=state, train=train, key=key)[0]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_init_shape_matches_apply(name):
    layer, out_shape, params, state, x, _, train = _setup(name)
    y = _run(layer, params, state, x, train)
    assert out_shape[0] == -1
    assert tuple(out_shape[1:]) == tuple(np.shape(y)[1:])
    known_shape = layer.init_with_state(KEY, x.shape)[0]
    assert tuple(known_shape) == tuple(np.shape(y))
    assert layer.stateful == bool(state)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_float64(name):
    layer, _, params, state, x, kind, train = _setup(name, np.float64)
    if kind == "int":
        check_grads(lambda p: _run(layer, p, state, x, train), (params,), order=1)
    else:
        check_grads(lambda p, x: _run(layer, p, state, x, train), (params, x), order=1)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_jit_equals_eager(name):
    layer, _, params, state, x, _, train = _setup(name)
    f = fn.jit(lambda p, s, x: layer.apply_with_state(p, x, state=s, train=train))
    (y, s1), (y0, s0) = f(params, state, x), layer.apply_with_state(params, x, state=state,
                                                                    train=train)
    np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-6)
    for a, b in zip(tree.leaves(s1), tree.leaves(s0)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    g = fn.jit(fn.grad(lambda p: fnp.sum(_run(layer, p, state, x, train) ** 2)))(params)
    g0 = fn.grad(lambda p: fnp.sum(_run(layer, p, state, x, train) ** 2))(params)
    for a, b in zip(tree.leaves(g), tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_vmap_over_batches_equals_loop(name):
    layer, _, params, state, x, _, train = _setup(name)
    xs = np.stack([x, x[::-1] * 2 if x.dtype.kind == "f" else x[::-1]])

    def f(xb):
        return layer.apply_with_state(params, xb, state=state, train=train)

    ys, states = fn.vmap(f)(xs)
    for i in range(2):
        y, s = f(xs[i])
        np.testing.assert_allclose(ys[i], y, rtol=1e-5, atol=1e-6)
        for a, b in zip(tree.leaves(states), tree.leaves(s)):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7)


def test_per_example_gradients_with_vmap():
    layer = nn.serial(nn.Conv2D(2, 3), nn.Relu, nn.GlobalAvgPool, nn.Dense(1))
    _, params = layer.init(KEY, (-1, 4, 4, 1))
    x = np.asarray(random.normal(random.key(1), (3, 4, 4, 1)))

    def loss(p, xi):
        return fnp.sum(layer.apply(p, xi[None]))

    per_example = fn.vmap(fn.grad(loss), in_axes=(None, 0))(params, x)
    for i in range(3):
        gi = fn.grad(loss)(params, x[i])
        for a, b in zip(tree.leaves(per_example), tree.leaves(gi)):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# The Layer object and shape errors


def test_layer_is_a_pair_and_configurable():
    init, apply = nn.Dense(2)
    assert callable(init) and callable(apply)
    assert nn.Relu() is nn.Relu and nn.Flatten() is nn.Flatten
    soft0 = nn.Softmax(axis=0)
    np.testing.assert_allclose(soft0.apply({}, np.ones((2, 3))), np.full((2, 3), 0.5))
    assert "Softmax(axis=0)" in repr(soft0)
    with pytest.raises(TypeError, match="options"):
        nn.Softmax(axes=1)
    with pytest.raises(TypeError, match="not a function"):
        nn.Dense(2)(np.ones(3))
    layer = nn.as_layer((init, apply))
    assert isinstance(layer, nn.Layer) and not layer.stateful
    with pytest.raises(TypeError, match="elementwise"):
        nn.serial(fnp.tanh)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="known"):
        nn.Dense(2).init(KEY, (-1, None))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        _, p = nn.Conv2D(2, 3).init(KEY, (-1, 4, 4, 1))
        nn.Conv2D(2, 3).apply(p, np.ones((4, 4, 1)))
    with pytest.raises(ValueError, match="4-d"):
        nn.Conv2D(2, 3).init(KEY, (-1, 4, 4))
    with pytest.raises(ValueError, match="shortcut"):
        nn.residual(nn.Dense(3)).init(KEY, (-1, 4))
    with pytest.raises(ValueError, match="Reshape"):
        nn.Reshape((4, 4)).init(KEY, (-1, 10))


# ---------------------------------------------------------------------------
# Dropout


def test_dropout():
    layer = nn.Dropout(0.25)
    x = np.ones((200, 50), np.float32)
    np.testing.assert_array_equal(layer.apply({}, x), x)
    with pytest.raises(ValueError, match="key"):
        layer.apply({}, x, train=True)
    y = layer.apply({}, x, key=random.key(3), train=True)
    dropped = float((y == 0).mean())
    assert dropped == pytest.approx(0.25, abs=0.02)          # rate = probability of dropping
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75])
    assert float(y.mean()) == pytest.approx(1.0, abs=0.03)    # inverted dropout keeps the mean
    f = fn.jit(lambda x, k: layer.apply({}, x, key=k, train=True))
    np.testing.assert_array_equal(f(x, random.key(3)), y)
    assert not np.array_equal(layer.apply({}, x, key=random.key(4), train=True), y)
    np.testing.assert_array_equal(nn.Dropout(1.0).apply({}, x, key=KEY, train=True), 0 * x)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="bool"):
        fn.jit(lambda t: layer.apply({}, x, key=KEY, train=t))(True)


def test_serial_gives_each_layer_its_own_key():
    layer = nn.serial(nn.Dropout(0.5), nn.Dropout(0.5), nn.FanOut(1))
    x = np.ones((1, 1000), np.float32)
    y = layer.apply(layer.init(KEY, x.shape)[1], x, key=random.key(5), train=True)[0]
    single = nn.Dropout(0.5).apply({}, x, key=random.key(5), train=True)
    assert float((y == 0).mean()) == pytest.approx(0.75, abs=0.04)
    assert not np.array_equal(y == 0, single == 0)


# ---------------------------------------------------------------------------
# BatchNorm and state threading


def test_batch_norm_statistics_and_state():
    bn = nn.BatchNorm(momentum=0.8, epsilon=0.0)
    _, params, state = bn.init(KEY, (-1, 2, 3))
    x = np.asarray(random.normal(random.key(2), (5, 2, 3)), np.float64) * 2 + 1
    y, new = bn.apply(params, x, state=state, train=True)
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var), rtol=1e-6)
    np.testing.assert_allclose(new["mean"], 0.2 * mean, rtol=1e-6)
    np.testing.assert_allclose(new["var"], 0.8 + 0.2 * var, rtol=1e-6)
    assert new["mean"].dtype == np.float32                       # state keeps its dtype
    y_eval, same = bn.apply(params, x, state=new)
    assert same is new
    np.testing.assert_allclose(y_eval, (x - new["mean"]) / np.sqrt(new["var"]), rtol=1e-5)
    with pytest.raises(ValueError, match="stateful"):
        bn.apply(params, x)


def test_combinators_thread_state():
    model = nn.serial(nn.Dense(4), nn.residual(nn.BatchNorm(0.5), nn.Relu), nn.Dense(2),
                      nn.BatchNorm(0.5))
    assert model.stateful
    shape, params, state = model.init(KEY, (-1, 3))
    assert shape == (-1, 2) and sorted(state) == ["1_residual", "3_batch_norm"]
    assert sorted(state["1_residual"]["main"]) == ["0_batch_norm"]
    x = np.asarray(random.normal(random.key(1), (6, 3)))
    y, new = model.apply(params, x, state=state, train=True)
    assert tree.structure(new) == tree.structure(state)
    assert not np.allclose(new["3_batch_norm"]["mean"], 0)
    y_eval, unchanged = model.apply(params, x, state=new)
    for a, b in zip(tree.leaves(unchanged), tree.leaves(new)):
        np.testing.assert_array_equal(a, b)

    def loss(p, s):
        out, s = model.apply(p, x, state=s, train=True)
        return fnp.sum(out ** 2), s

    (value, s2), grads = fn.jit(fn.value_and_grad(loss, has_aux=True))(params, state)
    assert tree.structure(grads) == tree.structure(params)
    for a, b in zip(tree.leaves(s2), tree.leaves(new)):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    with pytest.raises(ValueError, match="stateful"):
        model.apply(params, x)


# ---------------------------------------------------------------------------
# Recurrent layers


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_cells_match_numpy():
    rng = np.random.default_rng(0)
    x, h, c = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))

    def f64(p):
        return tree.map(lambda a: np.asarray(a, np.float64), p)

    p = f64(nn.SimpleRNNCell(4).init(KEY, 3))
    _, out = nn.SimpleRNNCell(4)(p, h, x)
    np.testing.assert_allclose(out, np.tanh(x @ p["w_i"] + p["b_i"] + h @ p["w_h"]), rtol=1e-7)

    p = f64(nn.LSTMCell(4).init(KEY, 3))
    np.testing.assert_allclose(p["b_i"], np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    (h1, c1), out = nn.LSTMCell(4)(p, (h, c), x)
    z = x @ p["w_i"] + p["b_i"] + h @ p["w_h"]
    i, f, o, g = _np_sigmoid(z[:, :4]), _np_sigmoid(z[:, 4:8]), _np_sigmoid(z[:, 8:12]), \
        np.tanh(z[:, 12:])
    np.testing.assert_allclose(c1, f * c + i * g, rtol=1e-7)
    np.testing.assert_allclose(h1, o * np.tanh(f * c + i * g), rtol=1e-7)
    np.testing.assert_array_equal(out, h1)

    p = f64(nn.GRUCell(4).init(KEY, 3))
    _, out = nn.GRUCell(4)(p, h, x)
    xi, hh = x @ p["w_i"] + p["b_i"], h @ p["w_h"] + p["b_h"]
    r, u = _np_sigmoid(xi[:, :4] + hh[:, :4]), _np_sigmoid(xi[:, 4:8] + hh[:, 4:8])
    n = np.tanh(xi[:, 8:] + r * hh[:, 8:])
    np.testing.assert_allclose(out, (1 - u) * n + u * h, rtol=1e-7)


def test_recurrent_weights_are_orthogonal():
    w_h = np.asarray(nn.GRUCell(5).init(KEY, 2)["w_h"], np.float64)
    for k in range(3):
        block = w_h[:, 5 * k:5 * (k + 1)]
        np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-5)


@pytest.mark.parametrize("cell", [nn.SimpleRNNCell(3), nn.LSTMCell(3), nn.GRUCell(3)],
                         ids=repr)
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_masking_equals_unpadded(cell, reverse):
    seqs = nn.RNN(cell, reverse=reverse)
    final = nn.RNN(cell, reverse=reverse, return_sequences=False)
    _, params = seqs.init(KEY, (-1, 6, 2))
    x = np.asarray(random.normal(random.key(1), (1, 4, 2)))
    ref_seq, ref_final = seqs.apply(params, x), final.apply(params, x)
    junk = np.full((1, 2, 2), 7.0, np.float32)
    for padded, mask, real in [
        (np.concatenate([x, junk], 1), np.arange(6) < 4, slice(0, 4)),      # post-padding
        (np.concatenate([junk, x], 1), np.arange(6) >= 2, slice(2, 6)),     # pre-padding
    ]:
        mask = mask[None]
        y = seqs.apply(params, padded, mask=mask)
        np.testing.assert_allclose(y[:, real], ref_seq, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(y[:, ~mask[0]], 0)
        np.testing.assert_allclose(final.apply(params, padded, mask=mask), ref_final,
                                   rtol=1e-5, atol=1e-6)


def test_rnn_masked_gradients_and_lengths_in_a_batch():
    rnn = nn.RNN(nn.GRUCell(3), return_sequences=False)
    _, params = rnn.init(KEY, (-1, 5, 2))
    params = tree.map(lambda a: np.asarray(a, np.float64), params)
    x = np.asarray(random.normal(random.key(2), (3, 5, 2)), np.float64)
    mask = np.arange(5) < np.array([[5], [3], [1]])
    check_grads(lambda p, x: rnn.apply(p, x, mask=mask), (params, x), order=1)
    g = fn.grad(lambda x: fnp.sum(rnn.apply(params, x, mask=mask)))(x)
    np.testing.assert_array_equal(g[~mask], 0)    # padding gets no gradient
    with pytest.raises(ValueError, match="mask"):
        rnn.apply(params, x, mask=mask[:, :4])


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gru_hand_written_backward_equals_automatic(masked, reverse, return_sequences):
    from funcnet.nn.layers.recurrent import _Cell

    cell = nn.GRUCell(3)
    params = tree.map(lambda a: np.asarray(a, np.float64), cell.init(KEY, 2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 2))
    h0 = rng.normal(size=(2, 3))
    keep = (np.arange(5) < np.array([[5], [2]])).T[..., None] if masked else None

    def run(recurrence, p, x, h0):
        xs = tree.map(lambda a: fnp.swapaxes(a, 0, 1), cell.project(p, x))
        h, ys = recurrence(p, xs, keep, h0, reverse=reverse, return_sequences=return_sequences)
        return (h, ys) if return_sequences else h

    fast = lambda p, x, h0: run(cell.recurrence, p, x, h0)
    auto = lambda p, x, h0: run(lambda *a, **k: _Cell.recurrence(cell, *a, **k), p, x, h0)
    for a, b in zip(tree.leaves(fast(params, x, h0)), tree.leaves(auto(params, x, h0))):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    u = tree.map(lambda a: rng.normal(size=np.shape(a)), auto(params, x, h0))
    for f in (fn.vjp, lambda f, *a: fn.vjp(fn.jit(f), *a)):
        got = f(fast, params, x, h0)[1](u)
        want = fn.vjp(auto, params, x, h0)[1](u)
        for a, b in zip(tree.leaves(got), tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    check_grads(fast, (params, x, h0), order=2, modes=("rev",))


def test_rnn_unroll_and_initial_carry():
    rnn = nn.RNN(nn.LSTMCell(3))
    _, params = rnn.init(KEY, (-1, 5, 2))
    x = np.asarray(random.normal(random.key(1), (2, 5, 2)))
    np.testing.assert_allclose(nn.RNN(nn.LSTMCell(3), unroll=2).apply(params, x),
                               rnn.apply(params, x), rtol=1e-6)
    carry = (np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    assert not np.allclose(rnn.apply(params, x, initial_carry=carry), rnn.apply(params, x))


# ---------------------------------------------------------------------------
# Attention


def _np_attention(p, xq, xkv, heads, mask=None):
    def proj(d, x):
        return x @ d["w"] + d["b"]

    q, k, v = proj(p["query"], xq), proj(p["key"], xkv), proj(p["value"], xkv)
    n, tq, hk = q.shape
    kk = hk // heads
    q = q.reshape(n, tq, heads, kk).transpose(0, 2, 1, 3)
    k = k.reshape(n, -1, heads, kk).transpose(0, 2, 1, 3)
    v = v.reshape(n, -1, heads, kk).transpose(0, 2, 1, 3)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(kk)
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    out = (w @ v).transpose(0, 2, 1, 3).reshape(n, tq, hk)
    return proj(p["out"], out)


def test_attention_matches_numpy_with_key_padding():
    mha = nn.MultiHeadAttention(2)
    _, params = mha.init(KEY, ((-1, 3, 4), (-1, 5, 6)))
    assert params["key"]["w"].shape == (6, 4)
    xq = np.asarray(random.normal(random.key(1), (2, 3, 4)), np.float64)
    xkv = np.asarray(random.normal(random.key(2), (2, 5, 6)), np.float64)
    p64 = tree.map(lambda a: np.asarray(a, np.float64), params)
    np.testing.assert_allclose(mha.apply(p64, (xq, xkv)), _np_attention(p64, xq, xkv, 2),
                               rtol=1e-10)
    keep = np.array([[True, True, True, False, False], [True] * 5])
    got = mha.apply(p64, (xq, xkv), mask=keep)
    np.testing.assert_allclose(got, _np_attention(p64, xq, xkv, 2, keep[:, None, None]),
                               rtol=1e-10)
    changed = xkv.copy()
    changed[0, 3:] = 100.0                                  # padded keys do not matter
    np.testing.assert_allclose(mha.apply(p64, (xq, changed), mask=keep)[0], got[0],
                               rtol=1e-10)


def test_dot_product_attention_fully_masked_row_is_zero():
    q = np.ones((1, 2, 3))
    out = nn.dot_product_attention(q, q, q, mask=np.array([[True, True], [False, False]]))
    np.testing.assert_array_equal(out[0, 1], 0)
    g = fn.grad(lambda q: fnp.sum(nn.dot_product_attention(
        q, q, q, mask=np.array([[True, True], [False, False]]))))(q)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------
# Combinators


def test_combinator_param_names():
    layers = [nn.Dense(2)] + [nn.Relu] * 10
    _, params = nn.serial(*layers).init(KEY, (-1, 3))
    assert sorted(params)[:3] == ["00_dense", "01_relu", "02_relu"]
    assert nn.serial([nn.Dense(2), nn.Relu]).init(KEY, (-1, 3))[0] == (-1, 2)
    fan = nn.serial(nn.FanOut(3), nn.parallel(nn.Dense(2), nn.Dense(2), nn.Identity),
                    nn.FanInSum)
    with pytest.raises(ValueError, match="one shape"):
        fan.init(KEY, (-1, 3))
    ok = nn.serial(nn.FanOut(2), nn.parallel(nn.Dense(3), nn.Identity), nn.FanInSum)
    shape, params = ok.init(KEY, (-1, 3))
    x = np.ones((2, 3), np.float32)
    p = params["1_parallel"]["0_dense"]
    np.testing.assert_allclose(ok.apply(params, x), x @ p["w"] + p["b"] + x, rtol=1e-6)
    with pytest.raises(ValueError, match="tuple of 2"):
        nn.parallel(nn.Dense(1), nn.Dense(1)).init(KEY, ((-1, 2),))


# ---------------------------------------------------------------------------
# Backends


OTHER_BACKENDS = [b for b in fn.backends.available() if b != "numpy"]
# Compiling kernels (Numba) takes seconds per layer on a cold cache: these few run by
# default, the whole table with -m slow.
QUICK_ON_BACKENDS = {"dense", "conv2d", "batch_norm_train"}


@pytest.mark.skipif(not OTHER_BACKENDS, reason="only the NumPy backend is available")
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("name", [n if n in QUICK_ON_BACKENDS else
                                  pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(LAYERS)])
def test_other_backends_match_numpy(backend, name):
    layer, _, params, state, x, kind, train = _setup(name)

    def loss(p, s, x):
        y, s = layer.apply_with_state(p, x, state=s, train=train)
        return fnp.sum(y * y), s

    f = fn.value_and_grad(loss, has_aux=True)
    (ref, ref_state), ref_grads = fn.jit(f)(params, state, x)
    with fn.use_backend(backend):
        (got, got_state), grads = fn.jit(f)(*(fn.device_put(a) for a in (params, state, x)))
    np.testing.assert_allclose(fn.to_numpy(got), ref, rtol=1e-4)
    for a, b in zip(tree.leaves((grads, got_state)), tree.leaves((ref_grads, ref_state))):
        np.testing.assert_allclose(fn.to_numpy(a), b, rtol=1e-4, atol=1e-5)


def test_synchronised_batch_norm_is_plain_batch_norm_in_one_process():
    x = random.normal(random.key(3), (6, 4)) * 2.0 + 1.0
    plain, synced = nn.BatchNorm(0.9), nn.BatchNorm(0.9, sync=True)
    _, params, state = plain.init(random.key(0), (-1, 4))
    y1, s1 = plain.apply(params, x, state=state, train=True)
    y2, s2 = synced.apply(params, x, state=state, train=True)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(s1["var"], s2["var"])
    assert "sync=True" in repr(synced)
