"""CIFAR-10 with a small ResNet (residual blocks + BatchNorm) and data augmentation.

What it shows:

- a **stateful** model: ``nn.models.ResNet`` uses BatchNorm, whose running mean and
  variance live in an explicit ``state`` pytree that the jitted training step takes
  and returns (``model.apply_with_state``; see docs/nn.md);
- augmentation as pure functions of a key, batched with ``fn.vmap`` and compiled
  with ``fn.jit``: a random 32x32 crop of the image padded by 4 pixels, and a
  random horizontal flip (``data.random_crop``, ``data.random_flip``);
- per-channel standardisation with the training set's statistics; SGD with
  Nesterov momentum, weight decay and a warm-up + cosine schedule.

Data: CIFAR-10's binary version (``cifar-10-batches-bin/data_batch_1.bin`` ...
``test_batch.bin``, read by ``data.load_cifar10``), or its python version (read by a
restricted unpickler that cannot run code).  Pass the extracted folder or its
parent with ``--data``; ``$FUNCNET_SHARED_DATA`` and ``../shared/data`` are tried
too.  Nothing is downloaded.

Run it::

    python examples/cifar10_resnet.py --data ~/datasets        # 30 epochs
    python examples/cifar10_resnet.py --quick                  # synthetic images, seconds

Expected: this example has NOT been run on the real CIFAR-10 in the funcnet project
(the data is not available on its machines; see docs/results.md).  A ResNet-8 of
this width (16-32-64 channels) is a small network: expect roughly 80-85% test
accuracy from 30 epochs; a CPU epoch over the 50,000 images takes many minutes.
``--quick`` runs on synthetic 32x32 images (or on a subset of the real data when it
is there).
"""

from __future__ import annotations

import numpy as np
from _common import fit, load_dataset, make_parser, max_seconds, report, start, subset

import funcnet as fn
from funcnet import data, nn, optim, random


def synthetic_cifar(seed: int, n: int):
    """32x32 RGB stand-ins: a coloured blob whose position and colour depend on the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    colours = rng.uniform(0.2, 1.0, (10, 3))
    centres = rng.uniform(8, 24, (10, 2))
    rows, cols = np.mgrid[0:32, 0:32]
    dist2 = ((rows[None] - centres[y, 0, None, None]) ** 2
             + (cols[None] - centres[y, 1, None, None]) ** 2)
    blob = np.exp(-dist2 / 40.0)[..., None] * colours[y, None, None, :]
    x = 0.7 * blob + 0.3 * rng.uniform(0, 1, (n, 32, 32, 3))
    return x.astype(np.float32), y.astype(np.int64)


def standardize(train, test):
    """Subtract the training set's per-channel mean and divide by its standard deviation."""
    mean = train[0].mean(axis=(0, 1, 2))
    std = train[0].std(axis=(0, 1, 2)) + 1e-6
    return (((train[0] - mean) / std).astype(np.float32), train[1]), \
        (((test[0] - mean) / std).astype(np.float32), test[1])


def make_augment():
    """``augment(key, batch)``: pad-4 random crop and random flip of every image, jitted."""

    def one(key, image):
        k_crop, k_flip = random.split(key)
        image = data.random_crop(k_crop, image, 32, padding=4)
        return data.random_flip(k_flip, image)

    batched = fn.jit(fn.vmap(one))

    def augment(key, batch):
        return batched(random.split(key, len(batch)), batch)

    return augment


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=30, batch_size=128, lr=0.1)
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 1, 1],
                        help="residual blocks per stage (default 1 1 1: ResNet-8)")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    args = parser.parse_args(argv)
    started = start(args, "CIFAR-10 ResNet")

    (train, test), source = load_dataset(
        args, data.load_cifar10, "CIFAR-10",
        synthetic=lambda: (synthetic_cifar(args.seed, 256), synthetic_cifar(args.seed + 1, 128)))
    epochs = args.epochs
    if args.quick:
        train, test = subset(train, 256), subset(test, 128)
        epochs = min(epochs, 2)
        args.width, args.blocks = 8, [1, 1]
    train, test = standardize(train, test)
    print(f"data: {source} | {len(train[0])} training, {len(test[0])} test images", flush=True)

    model = nn.models.ResNet(num_classes=10, stage_sizes=tuple(args.blocks), width=args.width)
    steps = epochs * (len(train[0]) // args.batch_size)
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, max(1, steps // 20), max(steps, 2))
    tx = optim.chain(optim.add_decayed_weights(5e-4),
                     optim.sgd(schedule, momentum=0.9, nesterov=True))
    result = fit(model, tx, train, test, epochs=epochs, batch_size=args.batch_size,
                 key=random.key(args.seed), augment=None if args.no_augment else make_augment(),
                 max_seconds=max_seconds(args))
    report("cifar10_resnet", result.test_accuracy, started, source=source)
    return result.test_accuracy


if __name__ == "__main__":
    main()
