"""Quickstart: train a small classifier on real data with funcnet.

A one-hidden-layer MLP learns to read scikit-learn's bundled 8x8 handwritten
digits (1,797 images, shipped inside scikit-learn: nothing is downloaded).
Everything is a pure function of explicit values:

- the parameters are a plain dict of NumPy arrays;
- ``loss(params, x, y)`` is ordinary funcnet.numpy code;
- ``fn.value_and_grad(loss)`` gives the loss and a dict of gradients shaped
  like ``params``;
- the optimizer (SGD with momentum) is three lines over ``fn.tree.map``.

Run it::

    python examples/quickstart.py            # about 30 epochs, a few seconds
    python examples/quickstart.py --quick    # 3 epochs, for smoke tests
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp


def load_data(seed: int):
    """Digits split 80/20 (stratified, fixed seed), standardised with training statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-3  # some corner pixels are always 0
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)
    return x_train, y_train, x_test, y_test


def init_params(seed: int, sizes=(64, 128, 10)) -> dict:
    """He-normal weights and zero biases, as a flat dict of float32 arrays."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        scale = np.sqrt(2.0 / n_in)
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) * scale).astype(np.float32)
        params[f"b{i}"] = np.zeros(n_out, dtype=np.float32)
    return params


def predict(params: dict, x):
    """Logits of the MLP: dense -> ReLU -> dense."""
    h = fnp.maximum(x @ params["w0"] + params["b0"], 0.0)
    return h @ params["w1"] + params["b1"]


def log_softmax(z):
    """Numerically stable log-softmax over the last axis."""
    z = z - fn.stop_gradient(fnp.max(z, axis=-1, keepdims=True))
    return z - fnp.log(fnp.sum(fnp.exp(z), axis=-1, keepdims=True))


def loss(params: dict, x, y):
    """Mean softmax cross-entropy of integer labels ``y``."""
    logp = log_softmax(predict(params, x))
    onehot = (y[:, None] == np.arange(logp.shape[-1])).astype(logp.dtype)
    return -fnp.mean(fnp.sum(logp * onehot, axis=-1))


def accuracy(params: dict, x, y) -> float:
    return float(np.mean(np.argmax(predict(params, x), axis=-1) == y))


def train(epochs: int, batch_size: int, lr: float, momentum: float, seed: int) -> float:
    x_train, y_train, x_test, y_test = load_data(seed)
    params = init_params(seed)
    velocity = fn.tree.map(np.zeros_like, params)
    loss_and_grad = fn.value_and_grad(loss)
    rng = np.random.default_rng(seed + 1)
    n = len(x_train)
    print(f"digits: {n} training / {len(x_test)} test images of 8x8 pixels, "
          f"backend={fn.get_backend().name}")
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total, batches = 0.0, 0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            value, grads = loss_and_grad(params, x_train[idx], y_train[idx])
            # SGD with momentum, written out: v <- m v + g ;  p <- p - lr v
            velocity = fn.tree.map(lambda v, g: momentum * v + g, velocity, grads)
            params = fn.tree.map(lambda p, v: p - lr * v, params, velocity)
            total += float(value)
            batches += 1
        print(f"epoch {epoch:3d}  loss {total / batches:.4f}  "
              f"test accuracy {accuracy(params, x_test, y_test):.4f}")
    acc = accuracy(params, x_test, y_test)
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f}s")
    print(f"final test accuracy: {acc:.4f}")
    return acc


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--quick", action="store_true", help="3 epochs (smoke test)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    return train(epochs, args.batch_size, args.lr, args.momentum, args.seed)


if __name__ == "__main__":
    main()
