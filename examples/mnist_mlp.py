"""MNIST with a multi-layer perceptron: 784-512-512-10, ReLU, dropout, Adam.

What it shows: a ready-made model (``nn.models.MLP``) trained by one jitted step
(forward pass, ``fn.value_and_grad``, AdamW update with a warm-up + cosine
schedule) on the 60,000 MNIST training images; accuracy on the 10,000 test images
after every epoch.

Data: the four MNIST IDX files, found through ``--data``, ``$FUNCNET_SHARED_DATA``
or ``../shared/data/mnist`` (nothing is downloaded).

Run it::

    python examples/mnist_mlp.py            # 15 epochs: about 98.5% test accuracy
    python examples/mnist_mlp.py --quick    # a few seconds on 2,000 images (smoke test)

Expected: >= 98.0% test accuracy in well under 10 minutes on 2 CPU cores (the
measured accuracy, time and backend are in docs/results.md).
"""

from __future__ import annotations

from _common import adam_cosine, fit, load_mnist_run, make_parser, max_seconds, report, start

from funcnet import nn, random

TARGET = 0.98


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=15, batch_size=128, lr=1e-3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512],
                        help="hidden layer sizes (default 512 512)")
    parser.add_argument("--dropout", type=float, default=0.2, help="drop rate after each layer")
    args = parser.parse_args(argv)
    started = start(args, "MNIST MLP")

    train, test, source, epochs = load_mnist_run(args, 2000, 500, 2)
    if args.quick:
        args.hidden = [128]
    print(f"data: {source} | {len(train[0])} training, {len(test[0])} test images", flush=True)

    model = nn.models.MLP(tuple(args.hidden), num_classes=10, dropout=args.dropout)
    steps = epochs * (len(train[0]) // args.batch_size)
    tx = adam_cosine(args.lr, steps, weight_decay=1e-4)
    result = fit(model, tx, train, test, epochs=epochs, batch_size=args.batch_size,
                 key=random.key(args.seed), max_seconds=max_seconds(args))
    report("mnist_mlp", result.test_accuracy, started, target=None if args.quick else TARGET,
           source=source)
    return result.test_accuracy


if __name__ == "__main__":
    main()
