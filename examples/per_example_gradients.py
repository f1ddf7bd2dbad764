"""Per-example gradients with ``fn.vmap(fn.grad(...))``, and DP-SGD built on them.

What it shows:

1. ``fn.vmap(fn.grad(loss_of_one_example), in_axes=(None, 0, 0))`` gives the
   gradient of every example in a batch at once (one leading axis per parameter
   leaf), equal to a Python loop over the examples and much faster, and their
   mean is the ordinary batch gradient;
2. per-example gradient norms find the examples the model finds hardest (the
   largest norms belong mostly to misclassified images);
3. differentially-private SGD (Abadi et al., 2016): clip every example's gradient to
   norm ``C``, sum, add Gaussian noise of standard deviation ``sigma * C``, average —
   one jitted step — trained beside plain SGD on the same data.

Data: scikit-learn's bundled 8x8 digits (``data.load_digits``; no files needed);
without scikit-learn, synthetic 8x8 images.

Run it::

    python examples/per_example_gradients.py            # 30 epochs each: ~98% / ~95%
    python examples/per_example_gradients.py --quick    # seconds (smoke test)

Expected: the checks print ``True``; plain SGD reaches about 98% test accuracy
and DP-SGD (``C = 1``, ``sigma = 1``) about 95%.
"""

from __future__ import annotations

import time

import numpy as np
from _common import make_parser, report, start, synthetic_images

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import data, nn, optim, random


def load_digits(seed: int):
    try:
        x, y = data.load_digits()
        source = "scikit-learn digits"
    except ImportError:
        x, y = synthetic_images(seed, 1797, shape=(8, 8, 1))
        source = "synthetic"
    (x_train, y_train), (x_test, y_test) = data.train_test_split(random.key(seed), (x, y), 0.2,
                                                                 stratify=y)
    return (x_train, y_train), (x_test, y_test), source


model = nn.models.MLP((64,), num_classes=10)


def example_loss(params, x, y):
    """The loss of ONE example (no batch axis): the model sees a batch of one."""
    logits = model.apply(params, x[None])
    return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y[None])


def batch_loss(params, x, y):
    return nn.losses.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y)


per_example_grads = fn.jit(fn.vmap(fn.grad(example_loss), in_axes=(None, 0, 0)))
one_grad = fn.jit(fn.grad(example_loss))


def per_example_norms(grads):
    """The norm of each example's whole gradient: ``(batch,)``."""
    squares = [fnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in fn.tree.leaves(grads)]
    return fnp.sqrt(sum(squares))


def dp_sgd_step(tx, clip_norm: float, noise_multiplier: float):
    """A jitted DP-SGD step: clip per-example gradients, sum, add noise, average, update."""

    def step(params, opt_state, x, y, key):
        grads = fn.vmap(fn.grad(example_loss), in_axes=(None, 0, 0))(params, x, y)
        norms = per_example_norms(grads)
        factor = fnp.minimum(1.0, clip_norm / fnp.maximum(norms, 1e-12))      # (batch,)
        leaves, treedef = fn.tree.flatten(grads)
        keys = random.split(key, len(leaves))
        noisy = []
        for g, k in zip(leaves, keys):
            clipped = fnp.sum(g * factor.reshape((-1,) + (1,) * (g.ndim - 1)), axis=0)
            noise = noise_multiplier * clip_norm * random.normal(k, clipped.shape, clipped.dtype)
            noisy.append((clipped + noise) / x.shape[0])
        updates, opt_state = tx.update(fn.tree.unflatten(treedef, noisy), opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    return fn.jit(step)


def sgd_step(tx):
    def step(params, opt_state, x, y, key):
        grads = fn.grad(batch_loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    return fn.jit(step)


def test_accuracy(params, x, y) -> float:
    return float(np.mean(np.argmax(fn.to_numpy(model.apply(params, x)), axis=-1) == y))


def train(step, params, opt_state, train_set, epochs: int, batch_size: int, seed: int):
    """``epochs`` passes of ``step(params, opt_state, x, y, key)``; the trained params."""
    for epoch in range(epochs):
        base = random.fold_in(random.key(seed), epoch)
        for i, (xb, yb) in enumerate(data.batches(base, train_set, batch_size, drop_last=True)):
            params, opt_state = step(params, opt_state, xb, yb, random.fold_in(base, i + 1))
    return params


def shapes(tree) -> dict:
    pairs, _ = fn.tree.flatten_with_path(tree)
    return {fn.tree.keystr(path, simple=True, separator="/"): tuple(np.shape(leaf))
            for path, leaf in pairs}


def check_against_loop(params, x, y) -> bool:
    """vmap(grad) equals the loop over examples, and its mean the batch gradient."""
    grads = per_example_grads(params, x, y)
    print(f"parameter shapes        {shapes(params)}")
    print(f"per-example grad shapes {shapes(grads)}")
    looped = [one_grad(params, x[i], y[i]) for i in range(len(x))]
    same = all(np.allclose(fn.to_numpy(a)[i], fn.to_numpy(b), atol=1e-5)
               for i, g in enumerate(looped)
               for a, b in zip(fn.tree.leaves(grads), fn.tree.leaves(g)))
    print("vmap(grad) equals the loop over examples:", same)
    mean = [np.mean(fn.to_numpy(g), axis=0) for g in fn.tree.leaves(grads)]
    batch = fn.tree.leaves(fn.grad(batch_loss)(params, x, y))
    agrees = all(np.allclose(a, fn.to_numpy(b), atol=1e-5) for a, b in zip(mean, batch))
    print("their mean equals the batch gradient:   ", agrees)
    return same and agrees


def time_against_loop(params, x, y, repeats: int) -> None:
    per_example_grads(params, x, y)
    t0 = time.perf_counter()
    for _ in range(repeats):
        per_example_grads(params, x, y)
    t_vmap = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        for i in range(len(x)):
            one_grad(params, x[i], y[i])
    t_loop = (time.perf_counter() - t0) / repeats
    print(f"{len(x)} per-example gradients: vmap {1e3 * t_vmap:.2f} ms, "
          f"loop {1e3 * t_loop:.2f} ms ({t_loop / t_vmap:.0f}x faster)")


def hardest_examples(params, x, y, k: int = 10) -> None:
    """The test examples with the largest gradient norms, and how many are misclassified."""
    norms = fn.to_numpy(per_example_norms(per_example_grads(params, x, y)))
    wrong = np.argmax(fn.to_numpy(model.apply(params, x)), axis=-1) != y
    top = np.argsort(norms)[::-1][:k]
    print(f"gradient norm: median {np.median(norms):.2e}; the {k} largest "
          f"({norms[top[-1]]:.2e} .. {norms[top[0]]:.2e}) include {int(wrong[top].sum())} of the "
          f"{int(wrong.sum())} misclassified test images")


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=30, batch_size=64, lr=0.05)
    parser.add_argument("--clip", type=float, default=1.0, help="DP-SGD clipping norm C")
    parser.add_argument("--noise", type=float, default=1.0, help="DP-SGD noise multiplier sigma")
    args = parser.parse_args(argv)
    started = start(args, "Per-example gradients")
    train_set, test_set, source = load_digits(args.seed)
    epochs = 2 if args.quick else args.epochs
    print(f"data: {source} | {len(train_set[0])} training, {len(test_set[0])} test images",
          flush=True)

    _, params = model.init(random.key(args.seed), (-1, 8, 8, 1))
    x, y = train_set[0][:32], train_set[1][:32]
    ok = check_against_loop(params, x, y)
    time_against_loop(params, x, y, repeats=2 if args.quick else 20)

    tx = optim.sgd(args.lr, momentum=0.9)
    plain = train(sgd_step(tx), params, tx.init(params), train_set, epochs, args.batch_size,
                  args.seed)
    plain_acc = test_accuracy(plain, *test_set)
    print(f"plain SGD: test accuracy {plain_acc:.4f}")
    hardest_examples(plain, *test_set)

    dp = train(dp_sgd_step(tx, args.clip, args.noise), params, tx.init(params), train_set,
               epochs, args.batch_size, args.seed)
    dp_acc = test_accuracy(dp, *test_set)
    print(f"DP-SGD (C={args.clip:g}, sigma={args.noise:g}): test accuracy {dp_acc:.4f}")

    report("per_example_gradients", plain_acc, started, source=source)
    if not ok:
        raise SystemExit("per-example gradients disagree with the loop")
    return plain_acc


if __name__ == "__main__":
    main()
