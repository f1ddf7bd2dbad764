"""Data-parallel training on several processes (MPI): MNIST LeNet-5, with the loop written out.

What it shows: ``funcnet.distributed`` in a hand-written training loop.

- rank 0's initial parameters are broadcast to every process (``broadcast``);
- every process draws the same order of the examples (the same key) and keeps
  its share of each global batch (``shard``);
- the gradients are averaged inside the jitted step (``allreduce``), so every
  process applies the same update and the copies stay identical;
- each process evaluates its share of the test set and the counts are summed;
- only rank 0 prints and saves the parameters (``--save``).

Data: the four MNIST IDX files, found through ``--data``, ``$FUNCNET_SHARED_DATA``
or ``../shared/data/mnist`` (nothing is downloaded); ``--quick`` without them uses
synthetic stand-in images.

Run it (``pip install -e ".[mpi]"`` and an MPI library first; see docs/distributed.md)::

    mpirun -n 2 python examples/data_parallel.py            # 4 epochs on 2 processes
    mpirun -n 2 python examples/data_parallel.py --quick    # a few seconds (smoke test)
    python examples/data_parallel.py --quick                # the same script, one process

Expected: about 99% test accuracy after 4 epochs (measured numbers in docs/results.md).
"""

from __future__ import annotations

import numpy as np
from _common import load_mnist_run, make_parser, report, start

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import checkpoint_io, data, distributed, nn, optim, random

TARGET = 0.99


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=4, batch_size=128, lr=2e-3)
    parser.add_argument("--save", default=None, metavar="PATH",
                        help="rank 0 writes the trained parameters here (.npz)")
    args = parser.parse_args(argv)
    rank, size = distributed.rank(), distributed.size()
    say = print if distributed.is_main() else (lambda *a, **k: None)
    started = start(args, f"MNIST LeNet-5, data parallel on {size} process(es)") \
        if distributed.is_main() else None
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {size} "
                         "processes (each takes an equal share of every batch)")

    train, test, source, epochs = load_mnist_run(args, 512, 256, 3)
    say(f"data: {source} | {len(train[0])} training, {len(test[0])} test images | global "
        f"batch {args.batch_size}, {args.batch_size // size} per process", flush=True)

    model = nn.models.LeNet(num_classes=10)
    _, params = model.init(random.key(args.seed), (-1, 28, 28, 1))
    params = distributed.broadcast(params)  # every process starts from rank 0's values
    steps = epochs * (len(train[0]) // args.batch_size)
    tx = optim.adam(optim.cosine_decay_schedule(args.lr, max(steps, 1)))
    opt_state = tx.init(params)

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y)

    @fn.jit
    def train_step(params, opt_state, x, y):
        loss, grads = fn.value_and_grad(loss_fn)(params, x, y)
        # the mean over the processes of equal shares = the gradient of the whole batch
        grads, loss = distributed.allreduce((grads, loss), op="mean")
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    @fn.jit
    def correct(params, x, y):
        return fnp.sum(fnp.argmax(model.apply(params, x), axis=-1) == y)

    x_test, y_test = distributed.shard(test)  # this process's share of the test set
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        order_key = random.fold_in(random.key(args.seed + 1), epoch)  # the same on every rank
        losses = []
        for xb, yb in data.batches(order_key, train, args.batch_size, drop_last=True):
            xb, yb = distributed.shard((xb, yb))
            params, opt_state, loss = train_step(params, opt_state, xb, yb)
            losses.append(float(loss))
        hits = sum(int(correct(params, x_test[i:i + 500], y_test[i:i + 500]))
                   for i in range(0, len(y_test), 500))
        hits, count = distributed.allreduce((np.int64(hits), np.int64(len(y_test))), op="sum")
        accuracy = int(hits) / int(count)
        say(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  test acc {accuracy:.4f}", flush=True)

    if args.save and distributed.is_main():
        checkpoint_io.save(args.save, params)
        say(f"rank {rank} saved the parameters to {args.save}")
    if distributed.is_main():
        report("data_parallel", accuracy, started, target=None if args.quick else TARGET,
               source=f"{source} processes={size}")
    return accuracy


if __name__ == "__main__":
    main()
