"""The jitted training and evaluation steps.

:func:`make_train_step` builds, from a model (an ``nn`` layer), an
``optim`` transformation and a loss, one compiled function::

    step(params, model_state, opt_state, batch, key)
        -> (params, model_state, opt_state, metrics)

``batch`` is ``(x, y)``; ``model_state`` is the model's explicit state
(BatchNorm statistics; ``{}`` for a stateless model), threaded with
``layer.apply_with_state``; ``key`` drives the model's randomness (Dropout).
``metrics`` holds the batch's mean ``loss`` and ``accuracy``, the gradient's
global norm ``grad_norm`` and its per-layer norms ``grad_norms``
(``nn.grad_norms(grads, per="layer")``) -- all computed inside the compiled
step, at the cost of one sum of squares per parameter.

:func:`make_eval_step` builds the compiled evaluation function
``(params, model_state, x, y) -> (logits, per-example losses)`` (no
dropout, BatchNorm in inference mode).

>>> import numpy as np
>>> from funcnet import nn, optim, random, training
>>> model = nn.models.MLP((16,), num_classes=3)
>>> _, params, state = model.init_with_state(random.key(0), (-1, 4))
>>> tx = optim.sgd(0.1)
>>> step = training.make_train_step(model, tx)
>>> x, y = np.ones((8, 4), np.float32), np.arange(8) % 3
>>> params, state, opt_state, m = step(params, state, tx.init(params), (x, y), random.key(1))
>>> sorted(m), sorted(m["grad_norms"])
(['accuracy', 'grad_norm', 'grad_norms', 'loss'], ['1_dense', '3_dense'])
"""

from __future__ import annotations

from collections.abc import Callable

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import distributed, nn, optim

__all__ = ["cross_entropy", "make_train_step", "make_eval_step"]


def cross_entropy(logits, labels, reduction: str = "mean"):
    """Softmax cross-entropy of ``logits`` ``(N, C)`` against integer ``labels`` ``(N,)``.

    The default loss of :func:`make_train_step`;
    ``nn.losses.softmax_cross_entropy_with_integer_labels``.

    >>> import numpy as np
    >>> from funcnet.training import cross_entropy
    >>> round(float(cross_entropy(np.zeros((2, 4), np.float32), np.array([0, 3]))), 4)
    1.3863
    """
    return nn.losses.softmax_cross_entropy_with_integer_labels(logits, labels,
                                                               reduction=reduction)


def _accuracy(logits, labels):
    hits = fnp.argmax(logits, axis=-1) == labels
    return fnp.mean(hits.astype(logits.dtype))


def _share_weight(count: int, dtype):
    """This process's share of the whole batch: its example count over every process's."""
    n = fnp.asarray(count, dtype=dtype)
    return fn.stop_gradient(n / distributed.allreduce(n, op="sum"))


def _sum_across_processes(grads, model_state, loss, accuracy, weight):
    """Sums over the processes, in one allreduce per dtype, of values each weighted by the
    process's share of the batch (gradients come weighted from the loss): the means over
    the union of the batches, even when the shares differ.  The model state's floating
    leaves (BatchNorm statistics) are averaged the same way, which keeps every process's
    copy identical."""
    inexact = lambda v: fnp.issubdtype(fnp.result_type(v), fnp.inexact)
    state = fn.tree.map(lambda v: v * weight if inexact(v) else None, model_state)
    grads, state, loss, accuracy = distributed.allreduce(
        (grads, state, loss, accuracy * weight), op="sum")
    model_state = fn.tree.map(lambda mine, v: mine if v is None else v, model_state, state)
    return grads, model_state, loss, accuracy


def make_train_step(model, tx: optim.GradientTransformation,
                    loss_fn: Callable | None = None, *, jit: bool = True,
                    average_across_processes: bool | None = None) -> Callable:
    """A compiled training step for ``model`` (an ``nn`` layer) and the optimizer ``tx``.

    ``loss_fn(logits, labels) -> scalar`` defaults to :func:`cross_entropy`.
    The returned ``step(params, model_state, opt_state, batch, key)`` returns
    ``(params, model_state, opt_state, metrics)``: it runs the model in
    training mode (``train=True``, with ``key`` for Dropout), differentiates
    the loss, applies ``tx`` and reports ``loss``, ``accuracy`` (for class
    logits), ``grad_norm`` and ``grad_norms`` (per layer) as 0-d arrays.
    ``jit=False`` returns the plain Python function (for debugging).

    Data-parallel training (``funcnet.distributed``): with
    ``average_across_processes`` (default: when the job has more than one
    process) each process passes its own share of the batch.  Each
    differentiates its loss weighted by its share of the whole batch, and
    the step sums the gradients over the processes -- the gradient of the
    whole batch's mean loss, also through ``BatchNorm(sync=True)``'s shared
    statistics -- together with the loss, the accuracy and the model state's
    floating leaves, in one allreduce per dtype (plus one for the batch
    sizes).  Every process then applies the same update.

    >>> import numpy as np
    >>> from funcnet import nn, optim, random, training
    >>> model = nn.serial(nn.Dense(4), nn.BatchNorm(0.9), nn.Relu, nn.Dense(2))
    >>> _, params, state = model.init_with_state(random.key(0), (-1, 3))
    >>> tx = optim.adam(1e-2)
    >>> step = training.make_train_step(model, tx)
    >>> batch = (np.ones((5, 3), np.float32), np.array([0, 1, 0, 1, 1]))
    >>> params, state, opt_state, m = step(params, state, tx.init(params), batch, random.key(1))
    >>> sorted(state["1_batch_norm"]), float(m["loss"]) > 0
    (['mean', 'var'], True)
    """
    loss_of = cross_entropy if loss_fn is None else loss_fn
    average = (distributed.size() > 1 if average_across_processes is None
               else average_across_processes)

    def objective(params, model_state, x, y, key, weight):
        logits, new_state = model.apply_with_state(params, x, state=model_state, key=key,
                                                   train=True)
        # aux values are returned without their derivative (funcnet's value_and_grad hands
        # aux back as traced values of the inner differentiation otherwise)
        aux = fn.tree.map(fn.stop_gradient, (new_state, logits))
        loss = loss_of(logits, y)
        return (loss if weight is None else loss * weight), aux

    value_and_grad = fn.value_and_grad(objective, has_aux=True)

    def step(params, model_state, opt_state, batch, key):
        x, y = batch
        weight = _share_weight(fnp.shape(x)[0], fn.config.float_dtype) if average else None
        (loss, (new_state, logits)), grads = value_and_grad(params, model_state, x, y, key,
                                                            weight)
        accuracy = _accuracy(logits, y)
        if average:
            grads, new_state, loss, accuracy = _sum_across_processes(
                grads, new_state, loss, accuracy, weight)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        metrics = {"loss": loss, "accuracy": accuracy,
                   "grad_norm": nn.global_norm(grads),
                   "grad_norms": nn.grad_norms(grads, per="layer")}
        return params, new_state, opt_state, metrics

    return fn.jit(step) if jit else step


def make_eval_step(model, loss_fn: Callable | None = None, *, jit: bool = True) -> Callable:
    """A compiled ``eval_step(params, model_state, x, y) -> (logits, losses)``.

    The model runs in inference mode (``train=False``: no Dropout, BatchNorm
    with its running statistics).  ``losses`` are per example:
    ``loss_fn(logits, labels, reduction="none")`` (default
    :func:`cross_entropy`).

    >>> import numpy as np
    >>> from funcnet import nn, random, training
    >>> model = nn.models.MLP((8,), num_classes=2)
    >>> _, params, state = model.init_with_state(random.key(0), (-1, 3))
    >>> logits, losses = training.make_eval_step(model)(params, state, np.ones((4, 3)),
    ...                                                 np.zeros(4, np.int64))
    >>> logits.shape, losses.shape
    ((4, 2), (4,))
    """
    loss_of = cross_entropy if loss_fn is None else loss_fn

    def eval_step(params, model_state, x, y):
        logits, _ = model.apply_with_state(params, x, state=model_state, train=False)
        return logits, loss_of(logits, y, reduction="none")

    return fn.jit(eval_step) if jit else eval_step
