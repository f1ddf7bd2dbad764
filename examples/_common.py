"""Helpers shared by the examples: command-line flags, finding the data, stand-in data
for ``--quick`` runs, and an epoch loop around ``funcnet.training``'s jitted step.

This module is part of the examples, not of funcnet: it is plain user code built on
the public API (``funcnet.training``'s compiled step and evaluation, ``funcnet.optim``,
``funcnet.data``), kept in one place so that each example can show what is special
about it.

Where the data is looked for, in order (the first folder in which the loader finds
its files wins):

1. the ``--data`` flag;
2. the environment variable ``FUNCNET_SHARED_DATA``;
3. ``../shared/data`` next to the repository (the funcnet project's shared folder).

Without data, ``--quick`` runs on small synthetic stand-ins (so a smoke test needs
no files) and a full run stops with the loader's message, which says how to get
the files.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import data, optim, random, training

REPO_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------
# Flags


def make_parser(doc: str, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
                data_flag: bool = True) -> argparse.ArgumentParser:
    """The flags every example takes; an example adds its own before ``parse_args``."""
    parser = argparse.ArgumentParser(
        description=doc.strip().splitlines()[0],
        epilog="See the module docstring for the expected results.")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds on a subset (or synthetic data): the smoke test")
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"passes over the training set (default {epochs})")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help=f"examples per training step (default {batch_size})")
    parser.add_argument("--lr", type=float, default=lr,
                        help=f"peak learning rate (default {lr:g})")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random key")
    if data_flag:
        parser.add_argument("--data", default=None,
                            help="folder with the dataset (or its parent); default: "
                                 "$FUNCNET_SHARED_DATA, then ../shared/data")
    parser.add_argument("--backend", default=None,
                        help="funcnet backend: numpy, numba, cupy (default: "
                             "$FUNCNET_BACKEND or numpy)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the epoch that passes this much training time")
    return parser


def start(args: argparse.Namespace, title: str) -> float:
    """Select the backend, print a header line, and return the start time."""
    if getattr(args, "backend", None):
        fn.set_backend(args.backend)
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    print(f"{title} | backend={fn.get_backend().name} cpus={os.cpu_count()}"
          f"{f' blas_threads={threads}' if threads else ''}"
          f"{' | --quick' if args.quick else ''}", flush=True)
    return time.perf_counter()


# ---------------------------------------------------------------------------
# Data


def data_roots(explicit: str | None = None) -> list[Path]:
    """The folders to try, in order: ``--data``, ``$FUNCNET_SHARED_DATA``, ``../shared/data``."""
    if explicit:
        return [Path(explicit).expanduser()]
    roots = []
    env = os.environ.get("FUNCNET_SHARED_DATA")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(REPO_ROOT.parent / "shared" / "data")
    return roots


def load_dataset(args: argparse.Namespace, load: Callable[[Path], Any], name: str,
                 synthetic: Callable[[], Any] | None = None, roots: Iterable | None = None):
    """``(load(root), source)`` for the first root where ``load`` finds its files.

    With ``--quick`` and no data anywhere, ``(synthetic(), "synthetic")``; without
    ``--quick``, exit with the loader's own message (it says how to get the data).
    """
    roots = list(roots) if roots is not None else data_roots(getattr(args, "data", None))
    error: Exception | None = None
    for root in roots:
        try:
            return load(root), str(root)
        except data.DataNotFoundError as e:
            error = e
    if args.quick and synthetic is not None:
        print(f"{name} not found ({', '.join(map(str, roots))}); --quick uses synthetic "
              "stand-in data", flush=True)
        return synthetic(), "synthetic"
    raise SystemExit(f"{name}: {error}")


def load_mnist_run(args: argparse.Namespace, quick_train: int, quick_test: int,
                   quick_epochs: int):
    """``(train, test, source, epochs)`` of an MNIST example: the real files (see
    :func:`load_dataset`), or with ``--quick`` a subset of them (synthetic stand-ins
    without them) of ``quick_train`` / ``quick_test`` images and at most
    ``quick_epochs`` epochs."""
    (train, test), source = load_dataset(
        args, data.load_mnist, "MNIST",
        synthetic=lambda: (synthetic_images(args.seed, quick_train),
                           synthetic_images(args.seed, quick_test)))
    epochs = args.epochs
    if args.quick:
        train, test = subset(train, quick_train), subset(test, quick_test)
        epochs = min(epochs, quick_epochs)
    return train, test, source, epochs


def subset(arrays, n: int):
    """The first ``n`` examples of each array in a tuple."""
    return tuple(a[:n] for a in arrays)


def synthetic_images(seed: int, n: int, shape=(28, 28, 1), num_classes: int = 10):
    """``(x, y)``: a smooth random template per class plus noise, float32 in ``[0, 1]``.

    Learnable in a few steps, so a ``--quick`` run shows the loss falling.
    """
    rng = np.random.default_rng(seed)
    h, w, c = shape
    coarse = rng.uniform(0, 1, (num_classes, max(h // 4, 2), max(w // 4, 2), c))
    rows = np.linspace(0, coarse.shape[1] - 1, h).round().astype(int)
    cols = np.linspace(0, coarse.shape[2] - 1, w).round().astype(int)
    templates = coarse[:, rows][:, :, cols]
    y = rng.integers(0, num_classes, n)
    x = 0.6 * templates[y] + 0.4 * rng.uniform(0, 1, (n, h, w, c))
    return x.astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What :func:`fit` returns: the trained values and the per-epoch history."""

    params: Any
    state: Any
    opt_state: Any
    test_accuracy: float
    seconds: float
    history: list = field(default_factory=list)


def make_predict(model):
    """A jitted ``predict(params, state, x) -> labels`` (evaluation mode)."""

    def predict(params, state, x):
        logits, _ = model.apply_with_state(params, x, state=state, train=False)
        return fnp.argmax(logits, axis=-1)

    return fn.jit(predict)


def fit(model, tx, train, test, *, epochs: int, batch_size: int, key, augment=None,
        loss_fn=None, max_seconds: float | None = None, eval_batch_size: int = 1000,
        log: Callable[[str], None] = print) -> TrainResult:
    """Train ``model`` with ``tx`` on ``train = (x, y)``; report ``test = (x, y)`` accuracy
    after every epoch.

    The step is ``funcnet.training.make_train_step`` (forward pass, ``value_and_grad``
    and the optimizer update compiled as one ``fn.jit`` graph; stateful models such as
    BatchNorm ResNets are handled with ``apply_with_state``) and the evaluation
    ``funcnet.training.evaluate``.  The loop is written out here because the examples
    need two things ``funcnet.training.fit`` does not do: ``augment(key, xb) -> xb``
    transforms each training batch, and ``max_seconds`` stops after the epoch that
    passes that much time.  Each epoch visits the training set in a fresh order
    (``data.batches`` with the epoch folded into ``key``) and drops the last partial
    batch, so every step has the same shapes and the step is traced once.
    """
    x_train, y_train = train
    init_key, data_key, step_key_base = random.split(key, 3)
    _, params, state = model.init_with_state(init_key, (-1,) + tuple(x_train.shape[1:]))
    opt_state = tx.init(params)
    step = training.make_train_step(model, tx, loss_fn)
    eval_step = training.make_eval_step(model, loss_fn)
    drop_last = len(x_train) >= batch_size
    steps_per_epoch = data.num_batches(len(x_train), batch_size, drop_last=drop_last)

    history = []
    start = time.perf_counter()
    test_acc = float("nan")
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        epoch_key = random.fold_in(data_key, epoch)
        step_keys = random.split(random.fold_in(step_key_base, epoch), steps_per_epoch)
        total_loss, total_acc, seen = 0.0, 0.0, 0
        for i, (xb, yb) in enumerate(data.batches(epoch_key, (x_train, y_train), batch_size,
                                                  drop_last=drop_last)):
            if augment is not None:
                xb = augment(random.fold_in(step_keys[i], 1), xb)
            params, state, opt_state, metrics = step(params, state, opt_state, (xb, yb),
                                                     step_keys[i])
            total_loss += float(metrics["loss"]) * len(yb)
            total_acc += float(metrics["accuracy"]) * len(yb)
            seen += len(yb)
        test_acc = training.evaluate(model, params, state, test, batch_size=eval_batch_size,
                                     eval_step=eval_step)["accuracy"]
        elapsed = time.perf_counter() - start
        record = {"epoch": epoch, "loss": total_loss / seen, "train_accuracy": total_acc / seen,
                  "test_accuracy": test_acc, "epoch_seconds": time.perf_counter() - epoch_start,
                  "seconds": elapsed}
        history.append(record)
        log(f"epoch {epoch:3d}  loss {record['loss']:.4f}  train acc {record['train_accuracy']:.4f}"
            f"  test acc {test_acc:.4f}  ({record['epoch_seconds']:.1f}s, total {elapsed:.0f}s)")
        if max_seconds is not None and elapsed > max_seconds and epoch < epochs:
            log(f"stopping after epoch {epoch}: the time budget of {max_seconds:.0f}s is spent")
            break
    return TrainResult(params, state, opt_state, test_acc, time.perf_counter() - start, history)


def adam_cosine(lr: float, total_steps: int, *, warmup_fraction: float = 0.05,
                weight_decay: float = 0.0, clip: float | None = None):
    """Adam(W) with a linear warm-up and a cosine decay to zero over ``total_steps``."""
    warmup = max(1, int(warmup_fraction * total_steps))
    schedule = optim.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
    opt = (optim.adamw(schedule, weight_decay=weight_decay) if weight_decay
           else optim.adam(schedule))
    return optim.chain(optim.clip_by_global_norm(clip), opt) if clip else opt


def max_seconds(args) -> float | None:
    """``--max-minutes`` in seconds (None when not given)."""
    return None if args.max_minutes is None else 60.0 * args.max_minutes


def report(name: str, acc: float, started: float, *, target: float | None = None,
           source: str = "") -> None:
    """Print the final line the smoke test and docs/results.md read."""
    seconds = time.perf_counter() - started
    verdict = ""
    if target is not None:
        verdict = f" (target {target:.3f}: {'reached' if acc >= target else 'NOT reached'})"
    load = "/".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"final test accuracy: {acc:.4f}{verdict}", flush=True)
    print(f"RESULT {name} accuracy={acc:.4f} seconds={seconds:.1f} "
          f"cpu_seconds={time.process_time():.1f} backend={fn.get_backend().name} "
          f"load={load} data={source or '-'}", flush=True)
