"""The epoch loop: training with a progress bar, evaluation, logging, checkpoints, resume.

A run's whole mutable state is one :class:`TrainState` (a NamedTuple, so a
pytree): the parameters, the model state (BatchNorm statistics), the
optimizer state, the random key that the next epoch splits, and the
number of finished epochs and steps.  :func:`save_checkpoint` writes it
with ``fn.checkpoint_io`` (atomically); :func:`load_checkpoint` reads it back
against a freshly initialised state, so the optimizer state comes back as
its NamedTuples and every shape and dtype is checked.  Because every random
number of an epoch is drawn from keys split off ``TrainState.key``, a run
resumed from a checkpoint computes exactly what the uninterrupted run would
have computed.

:func:`fit` ties it together and, given a ``run_dir``, writes there

- ``config.json`` -- the configuration it was given plus its own settings;
- ``metrics.jsonl`` -- one JSON object per epoch (train and test loss and
  accuracy, per-class precision and recall, the confusion matrix, mean
  per-layer gradient norms, time and throughput);
- ``checkpoint.npz`` -- the latest :class:`TrainState` (after every epoch);
- ``best.npz`` -- the state with the best test accuracy so far;
- ``curves.png`` and ``report.html`` (see :mod:`funcnet.training.report`).

>>> import numpy as np
>>> from funcnet import data, nn, optim, random, training
>>> x, y = data.load_digits()
>>> model = nn.models.MLP((32,), num_classes=10)
>>> result = training.fit(model, optim.adam(1e-2), (x[:400], y[:400]), (x[400:600], y[400:600]),
...                       epochs=5, batch_size=32, seed=0, progress=False, log=None)
>>> result.state.epoch, len(result.history), result.history[-1]["test_accuracy"] > 0.8
(5, 5, True)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import funcnet as fn
from funcnet import checkpoint_io, distributed, optim, random
from funcnet.training.metrics import MetricsLog, confusion_matrix, metrics_from_confusion
from funcnet.training.step import make_eval_step, make_train_step

__all__ = ["TrainState", "FitResult", "init_train_state", "train_epoch", "steps_per_epoch",
           "evaluate", "fit",
           "save_checkpoint", "load_checkpoint", "CHECKPOINT", "BEST", "CONFIG", "METRICS"]

CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


class TrainState(NamedTuple):
    """Everything a run needs to continue: a pytree, saved as one checkpoint.

    ``params`` and ``model_state`` are the model's (``model_state`` is ``{}``
    for a stateless model), ``opt_state`` the optimizer's, ``key`` the random
    key the next epoch splits, ``epoch`` and ``step`` the finished epochs and
    optimizer steps (Python ints).

    >>> from funcnet import nn, optim, random, training
    >>> ts = training.init_train_state(nn.Dense(2), optim.adam(1e-3), (-1, 3), random.key(0))
    >>> ts._fields
    ('params', 'model_state', 'opt_state', 'key', 'epoch', 'step')
    """

    params: Any
    model_state: Any
    opt_state: Any
    key: Any
    epoch: int = 0
    step: int = 0


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final state, the per-epoch records (as in
    ``metrics.jsonl``), the final test metrics (or ``None``) and the run directory.

    >>> from funcnet.training import FitResult
    >>> FitResult._fields
    ('state', 'history', 'test_metrics', 'run_dir')
    """

    state: TrainState
    history: list
    test_metrics: dict | None
    run_dir: str | None


def init_train_state(model, tx: optim.GradientTransformation, input_shape, key) -> TrainState:
    """A fresh :class:`TrainState`: ``model`` initialised for ``input_shape`` (batch axis
    first, ``-1`` for any size) from one half of ``key``, ``tx`` initialised on the
    params; the other half of ``key`` drives training.

    >>> from funcnet import nn, optim, random, training
    >>> ts = training.init_train_state(nn.Dense(3), optim.sgd(0.1), (-1, 2), random.key(0))
    >>> sorted(ts.params), ts.model_state, ts.epoch
    (['b', 'w'], {}, 0)
    """
    init_key, train_key = random.split(key)
    _, params, model_state = model.init_with_state(init_key, tuple(input_shape))
    return TrainState(params, model_state, tx.init(params), train_key, 0, 0)


def save_checkpoint(path, state: TrainState) -> str:
    """Write ``state`` to ``path`` atomically (``fn.checkpoint_io.save``); returns the path.

    >>> import os, tempfile
    >>> from funcnet import nn, optim, random, training
    >>> tx = optim.adam(1e-3)
    >>> ts = training.init_train_state(nn.Dense(3), tx, (-1, 2), random.key(0))
    >>> path = training.save_checkpoint(os.path.join(tempfile.mkdtemp(), "c.npz"), ts)
    >>> training.load_checkpoint(path, like=ts).opt_state[0].count
    array(0, dtype=int32)
    """
    state = TrainState(*state)
    return checkpoint_io.save(path, state._asdict())


def load_checkpoint(path, like: TrainState) -> TrainState:
    """Read a :class:`TrainState` saved by :func:`save_checkpoint`.

    ``like`` is a state of the same model and optimizer (typically
    :func:`init_train_state`'s): the file is checked against it -- same
    leaves, shapes and dtypes -- and the optimizer state gets its NamedTuple
    types back.  A missing, corrupt or mismatched file raises
    ``fn.checkpoint_io.CheckpointError`` (a ``ValueError``) that says what is
    wrong; a missing file raises ``FileNotFoundError``.

    >>> import os, tempfile
    >>> from funcnet import nn, optim, random, training
    >>> model, tx = nn.Dense(3), optim.sgd(0.1)
    >>> ts = training.init_train_state(model, tx, (-1, 2), random.key(0))
    >>> path = training.save_checkpoint(os.path.join(tempfile.mkdtemp(), "c.npz"), ts)
    >>> other = training.init_train_state(nn.Dense(4), tx, (-1, 2), random.key(0))
    >>> try:
    ...     training.load_checkpoint(path, like=other)
    ... except ValueError as e:
    ...     print("expected float32[4]" in str(e))
    True
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)}")
    like = TrainState(*like)
    restored = checkpoint_io.load(path, like=like._asdict())
    return TrainState(**restored)


# ---------------------------------------------------------------------------
# evaluation


def _pad_to(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size:
        return arr
    pad = np.zeros((size - arr.shape[0],) + arr.shape[1:], dtype=arr.dtype)
    return np.concatenate([arr, pad])


def evaluate(model, params, model_state, data, *, batch_size: int = 256,
             num_classes: int | None = None, loss_fn: Callable | None = None,
             eval_step: Callable | None = None) -> dict:
    """Evaluate a classifier on ``data = (x, y)``: loss, accuracy, per-class precision and
    recall, confusion matrix.

    The model runs in inference mode in batches of ``batch_size``; the last
    batch is padded to the same size (and the padding ignored), so the
    compiled evaluation step is traced once.  ``num_classes`` defaults to the
    model's number of logits.  In a job of several processes
    (``funcnet.distributed``) each evaluates its share of the examples and
    the confusion matrices and losses are summed, so every process gets the
    metrics of the whole set.  Returns :func:`classification_metrics`'s dict
    plus ``loss`` (the mean per-example loss) and ``count``.

    >>> import numpy as np
    >>> from funcnet import nn, random, training
    >>> model = nn.models.MLP((8,), num_classes=3)
    >>> _, params, state = model.init_with_state(random.key(0), (-1, 4))
    >>> x, y = np.ones((10, 4), np.float32), np.arange(10) % 3
    >>> m = training.evaluate(model, params, state, (x, y), batch_size=4)
    >>> m["count"], len(m["confusion"]), 0.0 <= m["accuracy"] <= 1.0
    (10, 3, True)
    """
    x, y = data
    x, y = np.asarray(fn.to_numpy(x)), np.asarray(fn.to_numpy(y))
    n = x.shape[0]
    if n == 0:
        raise ValueError("evaluate: no examples to evaluate")
    processes = distributed.size()
    if processes > 1:  # each process evaluates its share; the counts are summed
        x, y = distributed.shard((x, y))
    step = eval_step if eval_step is not None else make_eval_step(model, loss_fn)
    size = max(1, min(batch_size, x.shape[0]))
    predictions, loss_sum = [], 0.0
    for lo in range(0, x.shape[0], size):
        xb, yb = x[lo:lo + size], y[lo:lo + size]
        real = xb.shape[0]
        logits, losses = step(params, model_state, _pad_to(xb, size), _pad_to(yb, size))
        logits = np.asarray(fn.to_numpy(logits))[:real]
        losses = np.asarray(fn.to_numpy(losses))[:real]
        if num_classes is None:
            num_classes = logits.shape[-1]
        predictions.append(np.argmax(logits, axis=-1))
        loss_sum += float(np.sum(losses, dtype=np.float64))
    if processes > 1:
        # a process whose share is empty learns the number of classes from the others
        num_classes = int(distributed.allreduce(np.int64(num_classes or 0), op="max"))
    predicted = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
    counts = confusion_matrix(y, predicted, num_classes)
    if processes > 1:
        counts, loss_sum = distributed.allreduce((counts, np.float64(loss_sum)), op="sum")
    metrics = metrics_from_confusion(counts)
    metrics["loss"] = float(loss_sum) / n
    metrics["count"] = n
    return metrics


# ---------------------------------------------------------------------------
# training


class _Progress:
    """A tqdm bar counting examples (so its rate is the throughput), or nothing."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the data extra is not installed: no bar
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit="ex", unit_scale=True,
                                leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, loss: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def steps_per_epoch(n: int, batch_size: int, processes: int | None = None) -> int:
    """The optimizer steps of one epoch over ``n`` examples: one per batch of
    ``batch_size``, less a last batch with fewer examples than ``processes``
    (default: the job's), which a data-parallel epoch skips (:func:`train_epoch`).

    >>> from funcnet import training
    >>> training.steps_per_epoch(100, 32), training.steps_per_epoch(97, 32, processes=2)
    (4, 3)
    """
    processes = distributed.size() if processes is None else processes
    if batch_size < processes:
        raise ValueError(f"batch_size {batch_size} is smaller than the {processes} processes: "
                         f"each batch is shared by the processes, so it needs at least one "
                         f"example for each")
    full, last = divmod(int(n), int(batch_size))
    return full + (1 if last >= max(processes, 1) else 0)


def train_epoch(step: Callable, state: TrainState, data, batch_size: int, *,
                progress: bool = False, desc: str = "train") -> tuple[TrainState, dict]:
    """One pass over ``data = (x, y)`` in a random order: returns the new state and the
    epoch's metrics.

    The epoch splits ``state.key`` into the key of the next epoch, the key of
    the example order (``funcnet.data.batches``) and the key of the model's
    randomness, folded with the step number for each step.  The metrics are
    example-weighted means over the epoch: ``train_loss``,
    ``train_accuracy``, ``grad_norm`` and ``grad_norms`` (per layer), plus
    ``seconds`` and ``examples_per_second``.  With ``progress=True`` a tqdm
    bar shows the throughput, the running loss and accuracy.

    In a job of several processes (``funcnet.distributed``) ``batch_size`` is
    the global batch: every process draws the same order, and each takes every
    ``size``-th example of each batch (``distributed.shard``), so the processes
    together see exactly the batches of the one-process run; the step (see
    :func:`make_train_step`) averages the gradients.  A last batch with fewer
    examples than processes is skipped.  The metrics are those of the whole
    batches, the same on every process.

    >>> import numpy as np
    >>> from funcnet import nn, optim, random, training
    >>> model, tx = nn.models.MLP((8,), num_classes=2), optim.sgd(0.1)
    >>> ts = training.init_train_state(model, tx, (-1, 3), random.key(0))
    >>> x, y = np.ones((10, 3), np.float32), np.arange(10) % 2
    >>> ts, m = training.train_epoch(training.make_train_step(model, tx), ts, (x, y), 4)
    >>> ts.epoch, ts.step, sorted(m)[:3]
    (1, 3, ['examples_per_second', 'grad_norm', 'grad_norms'])
    """
    from funcnet import data as fdata

    x, y = data
    n = int(np.shape(x)[0])
    steps_per_epoch(n, batch_size)  # checks that every process gets examples
    next_key, order_key, model_key = random.split(state.key, 3)
    bar = _Progress(n, desc, progress)
    params, model_state, opt_state, step_count = (state.params, state.model_state,
                                                  state.opt_state, state.step)
    totals = {"loss": 0.0, "accuracy": 0.0, "grad_norm": 0.0}
    layer_totals: dict[str, float] = {}
    seen = 0
    start = time.perf_counter()
    processes = distributed.size()
    if processes > 1:  # each process draws its own dropout masks
        model_key = random.fold_in(model_key, distributed.rank())
    try:
        for i, (xb, yb) in enumerate(fdata.batches(order_key, (x, y), batch_size)):
            b = int(xb.shape[0])  # the examples of the whole step, on every process together
            if processes > 1:
                if b < processes:  # too few to give every process one: the epoch ends here
                    break
                xb, yb = distributed.shard((xb, yb))
            params, model_state, opt_state, m = step(params, model_state, opt_state, (xb, yb),
                                                     random.fold_in(model_key, i))
            seen += b
            step_count += 1
            for name in totals:
                totals[name] += b * float(fn.to_numpy(m[name]))
            for name, v in m["grad_norms"].items():
                layer_totals[name] = layer_totals.get(name, 0.0) + b * float(fn.to_numpy(v))
            bar.update(b, totals["loss"] / seen, totals["accuracy"] / seen)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    new_state = TrainState(params, model_state, opt_state, next_key, state.epoch + 1, step_count)
    seen = max(seen, 1)
    metrics = {"train_loss": totals["loss"] / seen, "train_accuracy": totals["accuracy"] / seen,
               "grad_norm": totals["grad_norm"] / seen,
               "grad_norms": {k: v / seen for k, v in layer_totals.items()},
               "seconds": seconds, "examples_per_second": n / seconds if seconds > 0 else 0.0}
    return new_state, metrics


def _write_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


def _format_epoch(record: dict, epochs: int) -> str:
    text = (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}")
    if record.get("test_accuracy") is not None:
        text += f"  test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.4f}"
    text += f"  ({record['seconds']:.1f} s, {record['examples_per_second']:,.0f} ex/s)"
    return text


def fit(model, tx: optim.GradientTransformation, train_data, test_data=None, *,
        epochs: int, batch_size: int = 64, seed: int = 0, key=None,
        run_dir=None, resume: bool = False, loss_fn: Callable | None = None,
        config: dict | None = None, class_names=None, progress: bool = True,
        log: Callable | None = print, report: bool = True,
        eval_batch_size: int = 256) -> FitResult:
    """Train ``model`` with ``tx`` for ``epochs`` epochs (in total); evaluate after each.

    - ``train_data``, ``test_data``: ``(x, y)`` NumPy arrays with integer
      labels (``test_data`` may be ``None``).
    - randomness: everything is derived from ``key`` (default
      ``random.key(seed)``): the initial parameters, each epoch's example
      order and the model's randomness (Dropout).
    - ``run_dir``: where ``config.json``, ``metrics.jsonl``,
      ``checkpoint.npz``, ``best.npz``, ``curves.png`` and ``report.html``
      go (created if needed; ``None`` writes nothing).  ``config`` (JSON-able)
      is saved in ``config.json`` and shown in the report.
    - ``resume=True`` continues from ``run_dir/checkpoint.npz`` (the
      parameters, the optimizer and model states, the key and the epoch
      counter) up to ``epochs``; ``metrics.jsonl`` keeps the records up to the
      checkpoint's epoch.  The result equals the uninterrupted run's.
    - ``progress``: a tqdm progress bar per epoch (throughput, loss,
      accuracy) on stderr; ``log`` (default ``print``, ``None`` for silence)
      receives one summary line per epoch.
    - ``report``: write ``curves.png`` and ``report.html`` at the end
      (needs matplotlib; skipped with a message without it).
    - several processes (``mpirun -n 4 ...``, see ``funcnet.distributed``):
      the same call on every process trains one model data-parallel.
      ``batch_size`` is the global batch (see :func:`train_epoch`), the
      processes start from the main process's state (:func:`broadcast
      <funcnet.distributed.broadcast>`, also after ``resume``), evaluation is
      shared, and only the main process logs, shows progress and writes
      ``run_dir`` (checkpoints atomically).  A checkpoint does not depend on
      the number of processes: a run can resume with a different number.

    Returns a :class:`FitResult`.

    >>> import os, tempfile
    >>> import numpy as np
    >>> from funcnet import nn, optim, training
    >>> x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    >>> y = (x.sum(axis=1) > 0).astype(np.int64)
    >>> run = os.path.join(tempfile.mkdtemp(), "run")
    >>> r = training.fit(nn.models.MLP((8,), num_classes=2), optim.adam(1e-2), (x, y), (x, y),
    ...                  epochs=2, batch_size=8, run_dir=run, progress=False, log=None,
    ...                  report=False)
    >>> r.state.epoch, sorted(os.listdir(run))
    (2, ['best.npz', 'checkpoint.npz', 'config.json', 'metrics.jsonl'])
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be non-negative, got {epochs}")
    if batch_size <= 0:
        raise ValueError(f"fit: batch_size must be positive, got {batch_size}")
    x_train, y_train = (np.asarray(fn.to_numpy(a)) for a in train_data)
    if x_train.shape[0] == 0:
        raise ValueError("fit: the training set is empty")
    if test_data is not None:
        test_data = tuple(np.asarray(fn.to_numpy(a)) for a in test_data)
    key = random.key(seed) if key is None else key
    main = distributed.is_main()
    say = log if log is not None and main else (lambda *_: None)
    progress = progress and main

    input_shape = (-1,) + tuple(x_train.shape[1:])
    state = init_train_state(model, tx, input_shape, key)
    run_dir = os.fspath(run_dir) if run_dir is not None else None
    history: list[dict] = []
    metrics_log = None
    if run_dir is not None and main:
        os.makedirs(run_dir, exist_ok=True)
        metrics_log = MetricsLog(os.path.join(run_dir, METRICS))
        if resume:
            state = load_checkpoint(os.path.join(run_dir, CHECKPOINT), like=state)
            history = metrics_log.truncate(lambda r: r.get("epoch", 0) <= state.epoch)
            say(f"resuming {run_dir} from epoch {state.epoch}")
        else:
            if os.path.exists(metrics_log.path):
                os.remove(metrics_log.path)
        full_config = dict(config or {})
        full_config.setdefault("epochs", epochs)
        full_config.setdefault("batch_size", batch_size)
        full_config.setdefault("seed", seed)
        full_config.setdefault("model_description", repr(model))
        full_config.setdefault("backend", fn.get_backend().name)
        full_config["processes"] = distributed.size()
        _write_json(os.path.join(run_dir, CONFIG), full_config)
    elif resume and run_dir is None:
        raise ValueError("fit: resume=True needs the run_dir of the run to resume")
    if distributed.size() > 1:  # every process starts from the main process's state
        state = distributed.broadcast(state)

    step = make_train_step(model, tx, loss_fn)
    eval_step = make_eval_step(model, loss_fn)
    best = max((r.get("test_accuracy") or -1.0 for r in history), default=-1.0)
    test_metrics = None
    for epoch in range(state.epoch, epochs):
        state, train_metrics = train_epoch(step, state, (x_train, y_train), batch_size,
                                           progress=progress,
                                           desc=f"epoch {epoch + 1}/{epochs}")
        if not math.isfinite(train_metrics["train_loss"]):
            say(f"warning: the training loss is {train_metrics['train_loss']} in epoch "
                f"{epoch + 1}; lower the learning rate or clip gradients (--clip-norm)")
        record = {"epoch": state.epoch, "step": state.step, **train_metrics}
        if test_data is not None:
            test_metrics = evaluate(model, state.params, state.model_state, test_data,
                                    batch_size=eval_batch_size, eval_step=eval_step)
            record.update({f"test_{k}": v for k, v in test_metrics.items() if k != "count"})
        history.append(record)
        say(_format_epoch(record, epochs))
        if metrics_log is not None:  # the main process writes the files
            metrics_log.write(record)
            save_checkpoint(os.path.join(run_dir, CHECKPOINT), state)
            accuracy = record.get("test_accuracy")
            if accuracy is not None and accuracy > best:
                best = accuracy
                save_checkpoint(os.path.join(run_dir, BEST), state)
    if test_metrics is None and test_data is not None and state.epoch > 0:
        test_metrics = evaluate(model, state.params, state.model_state, test_data,
                                batch_size=eval_batch_size, eval_step=eval_step)
    if metrics_log is not None and report:
        from funcnet.training.report import write_report

        write_report(run_dir, class_names=class_names, log=say)
    return FitResult(state, history, test_metrics, run_dir)
