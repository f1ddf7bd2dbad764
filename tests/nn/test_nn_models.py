"""funcnet.nn.models: each model overfits a tiny batch in a few dozen jitted Adam steps.

The optimiser is written inline (funcnet.optim is tested on its own)."""

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import nn, random, tree


def adam(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """A minimal Adam: ``init(params) -> state``, ``update(grads, state, params)``."""

    def init(params):
        zeros = tree.map(fnp.zeros_like, params)
        return (np.zeros((), np.float32), zeros, zeros)

    def update(grads, state, params):
        t, m, v = state
        t = t + 1
        m = tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = tree.map(lambda p, m, v: p - lr * (m / c1) / (fnp.sqrt(v / c2) + eps),
                          params, m, v)
        return params, (t, m, v)

    return init, update


def overfit(model, x, y, steps, lr=1e-2, seed=0):
    """Train ``model`` on one batch with Adam; returns (first loss, last loss, params, state)."""
    _, params, state = model.init_with_state(random.key(seed), (-1,) + x.shape[1:])
    opt_init, opt_update = adam(lr)
    opt_state = opt_init(params)

    def loss_fn(p, s, key):
        logits, s = model.apply_with_state(p, x, state=s, key=key, train=True)
        loss = nn.losses.softmax_cross_entropy_with_integer_labels(logits, y)
        return loss, s

    @fn.jit
    def step(p, s, o, key):
        (loss, s), grads = fn.value_and_grad(loss_fn, has_aux=True)(p, s, key)
        p, o = opt_update(grads, o, p)
        return p, s, o, loss

    losses = []
    keys = random.split(random.key(seed + 1), steps)
    for i in range(steps):
        params, state, opt_state, loss = step(params, state, opt_state, keys[i])
        losses.append(float(loss))
    assert step.trace_count == 1, step.trace_count   # one compile for all the steps
    return losses[0], losses[-1], params, state


def _images(n, size, channels, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, channels)).astype(np.float32)
    return x, np.arange(n) % classes


def _tokens(n, length, vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(n, length))
    lengths = rng.integers(2, length + 1, size=n)
    ids = np.where(np.arange(length) < lengths[:, None], ids, 0)   # post-padding with 0
    return ids, np.arange(n) % 2


@pytest.mark.parametrize("name,model,data,steps,lr", [
    ("mlp", lambda: nn.models.MLP((32,), num_classes=4, dropout=0.1),
     lambda: _images(8, 4, 2, 4), 30, 1e-2),
    ("lenet", lambda: nn.models.LeNet(num_classes=4, channels=(4, 8), hidden_sizes=(16,)),
     lambda: _images(8, 8, 1, 4), 30, 1e-2),
    ("resnet_batch_norm", lambda: nn.models.ResNet(4, stage_sizes=(1, 1), width=4),
     lambda: _images(8, 8, 3, 4), 30, 2e-2),
    ("resnet_group_norm", lambda: nn.models.ResNet(4, stage_sizes=(1, 1), width=4,
                                                   norm="group"),
     lambda: _images(8, 8, 3, 4), 30, 3e-2),
    ("text_gru", lambda: nn.models.TextClassifier(20, 2, embed_dim=8, hidden_size=8),
     lambda: _tokens(8, 6, 20), 40, 3e-2),
    ("text_attention", lambda: nn.models.TextClassifier(20, 2, embed_dim=8, num_heads=2,
                                                        encoder="attention", dropout=0.1),
     lambda: _tokens(8, 6, 20), 40, 3e-2),
    ("speech_conv", lambda: nn.models.SpeechClassifier(4, channels=(8, 8)),
     lambda: (np.random.default_rng(0).normal(size=(8, 12, 5)).astype(np.float32),
              np.arange(8) % 4), 40, 1e-2),
    ("speech_gru", lambda: nn.models.SpeechClassifier(4, encoder="gru", hidden_size=8),
     lambda: (np.random.default_rng(0).normal(size=(8, 6, 5)).astype(np.float32),
              np.arange(8) % 4), 40, 3e-2),
])
def test_model_overfits_a_tiny_batch(name, model, data, steps, lr):
    x, y = data()
    first, last, params, state = overfit(model(), x, y, steps, lr)
    assert last < 0.15, (name, first, last)
    assert last < first / 5, (name, first, last)


def test_resnet_state_and_evaluation():
    model = nn.models.ResNet(4, stage_sizes=(1, 1), width=4)
    x, y = _images(8, 8, 3, 4)
    _, params, state0 = model.init(random.key(0), (-1, 8, 8, 3))
    _, _, params, state = overfit(model, x, y, 40)
    assert tree.structure(state) == tree.structure(state0)
    moved = [not np.allclose(a, b) for a, b in zip(tree.leaves(state), tree.leaves(state0))]
    assert all(moved)
    logits, same = model.apply(params, x, state=state)          # evaluation mode
    for a, b in zip(tree.leaves(same), tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    assert (np.argmax(logits, -1) == y).mean() >= 0.75


def test_residual_block_shortcuts():
    block = nn.models.ResidualBlock(8)
    _, p_same, _ = block.init(random.key(0), (-1, 4, 4, 8))
    _, p_proj, _ = block.init(random.key(0), (-1, 4, 4, 3))
    assert "shortcut" not in p_same["0_residual"] and "shortcut" in p_proj["0_residual"]
    stateless = nn.models.ResidualBlock(8, 2, norm=None)
    assert not stateless.stateful
    shape, params = stateless.init(random.key(0), (-1, 4, 4, 8))
    assert shape == (-1, 2, 2, 8)
    assert stateless.apply(params, np.ones((1, 4, 4, 8), np.float32)).shape == (1, 2, 2, 8)


def test_text_classifier_ignores_padding():
    for encoder in ("gru", "attention"):
        model = nn.models.TextClassifier(20, 3, embed_dim=8, hidden_size=8, encoder=encoder,
                                         num_heads=2)
        _, params = model.init(random.key(0), (-1, 7))
        ids = np.array([[4, 9, 2, 0, 0, 0, 0]])
        np.testing.assert_allclose(model.apply(params, ids), model.apply(params, ids[:, :3]),
                                   rtol=1e-5, atol=1e-6)


def test_create_by_name():
    assert nn.models.create("LeNet").init(random.key(0), (-1, 28, 28, 1))[0] == (-1, 10)
    assert nn.models.create("text", vocab_size=10).init(random.key(0), (-1, 5))[0] == (-1, 2)
    with pytest.raises(ValueError, match="unknown model"):
        nn.models.create("vgg")
