"""Fashion-MNIST with a small convolutional network built from layers.

What it shows: a network written with ``nn.serial`` instead of a ready-made model —
``[Conv 3x3 - ReLU - MaxPool 2] x 2``, ``Dense(128)``, ``Dropout`` (which needs the
random ``key`` the training step passes) and ``Dense(10)`` — trained with AdamW and
a warm-up + cosine schedule; at the end, each class's test recall and precision
(from ``funcnet.training.evaluate``) under its name in ``data.FASHION_MNIST_CLASSES``.

Data: Fashion-MNIST's four IDX files.  ``apt-get install dataset-fashion-mnist``
(Debian/Ubuntu) puts them in ``/usr/share/datasets/fashion-mnist``, which is used
when ``--data`` is not given; nothing is downloaded.

Run it::

    python examples/fashion_mnist_cnn.py            # 10 epochs: about 92% test accuracy
    python examples/fashion_mnist_cnn.py --quick    # a few seconds (smoke test)

Expected: >= 90% test accuracy (the measured accuracy, time and backend are in
docs/results.md).
"""

from __future__ import annotations

from _common import (adam_cosine, fit, load_dataset, make_parser, max_seconds, report, start,
                     subset, synthetic_images)

from funcnet import data, nn, random, training

TARGET = 0.90


def build_model(channels=(16, 32), hidden: int = 128, dropout: float = 0.3):
    """Two 3x3 convolution stages, then a dense layer with dropout."""
    he = nn.initializers.he_normal()
    return nn.serial(
        nn.Conv2D(channels[0], 3, w_init=he), nn.Relu, nn.MaxPool2D(2),
        nn.Conv2D(channels[1], 3, w_init=he), nn.Relu, nn.MaxPool2D(2),
        nn.Flatten,
        nn.Dense(hidden, w_init=he), nn.Relu, nn.Dropout(dropout),
        nn.Dense(10),
    )


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=10, batch_size=128, lr=2e-3)
    parser.add_argument("--channels", type=int, nargs=2, default=[16, 32],
                        help="feature maps of the two convolutions (default 16 32)")
    args = parser.parse_args(argv)
    started = start(args, "Fashion-MNIST CNN")

    roots = [args.data] if args.data else [data.FASHION_MNIST_SYSTEM_PATH]
    (train, test), source = load_dataset(
        args, data.load_fashion_mnist, "Fashion-MNIST", roots=roots,
        synthetic=lambda: (synthetic_images(args.seed, 512), synthetic_images(args.seed, 256)))
    epochs = args.epochs
    if args.quick:
        train, test = subset(train, 512), subset(test, 256)
        epochs = min(epochs, 2)
    print(f"data: {source} | {len(train[0])} training, {len(test[0])} test images", flush=True)

    model = build_model(tuple(args.channels))
    steps = epochs * (len(train[0]) // args.batch_size)
    tx = adam_cosine(args.lr, steps, weight_decay=1e-4)
    result = fit(model, tx, train, test, epochs=epochs, batch_size=args.batch_size,
                 key=random.key(args.seed), max_seconds=max_seconds(args))

    metrics = training.evaluate(model, result.params, result.state, test, batch_size=1000)
    print("class         recall  precision")
    for name, recall, precision in zip(data.FASHION_MNIST_CLASSES, metrics["recall"],
                                       metrics["precision"]):
        print(f"  {name:<12s} {recall:.3f}   {precision:.3f}")
    report("fashion_mnist_cnn", result.test_accuracy, started,
           target=None if args.quick else TARGET, source=source)
    return result.test_accuracy


if __name__ == "__main__":
    main()
