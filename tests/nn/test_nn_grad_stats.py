"""funcnet.nn.grad_norms / global_norm: values, grouping by layer, jit."""

import numpy as np
import pytest

import funcnet as fn
from funcnet import nn, random

GRADS = {
    "0_conv2d": {"w": np.full((3, 3, 1, 2), 0.5, np.float32), "b": np.array([3.0, 4.0],
                                                                             np.float32)},
    "1_relu": {},
    "2_residual": {"main": {"0_dense": {"w": np.ones((2, 2), np.float32)}}},
    "steps": np.array(3),  # an integer leaf: skipped
}


def test_per_leaf_and_per_layer():
    leaf = nn.grad_norms(GRADS)
    assert list(leaf) == ["0_conv2d/b", "0_conv2d/w", "2_residual/main/0_dense/w"]
    np.testing.assert_allclose(leaf["0_conv2d/b"], 5.0)
    np.testing.assert_allclose(leaf["0_conv2d/w"], 0.5 * np.sqrt(18))
    layer = nn.grad_norms(GRADS, per="layer")
    assert list(layer) == ["0_conv2d", "2_residual/main/0_dense"]
    np.testing.assert_allclose(layer["0_conv2d"], np.sqrt(25 + 0.25 * 18))
    np.testing.assert_allclose(nn.global_norm(GRADS), np.sqrt(25 + 0.25 * 18 + 4))
    assert all(isinstance(v, np.ndarray) and v.shape == () for v in layer.values())
    with pytest.raises(ValueError, match="per"):
        nn.grad_norms(GRADS, per="module")
    assert list(nn.grad_norms({"a": [np.ones(2)]}, separator=".")) == ["a.0"]


def test_inside_jit_with_a_real_model():
    model = nn.serial(nn.Dense(4), nn.Relu, nn.Dense(2))
    _, params = model.init(random.key(0), (-1, 3))
    x = np.ones((5, 3), np.float32)

    @fn.jit
    def step(p):
        loss, g = fn.value_and_grad(lambda p: (model.apply(p, x) ** 2).sum())(p)
        return loss, nn.grad_norms(g, per="layer"), nn.global_norm(g)

    loss, norms, total = step(params)
    g = fn.grad(lambda p: (model.apply(p, x) ** 2).sum())(params)
    assert sorted(norms) == ["0_dense", "2_dense"]
    ref = np.sqrt(sum(float((np.asarray(a) ** 2).sum()) for a in fn.tree.leaves(g)))
    np.testing.assert_allclose(total, ref, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(sum(float(v) ** 2 for v in norms.values())), ref,
                               rtol=1e-5)
