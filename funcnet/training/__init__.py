"""``funcnet.training``: jitted training steps, the epoch loop, evaluation and reports.

- :func:`make_train_step` -- one compiled step ``(params, model_state,
  opt_state, batch, key) -> (params, model_state, opt_state, metrics)`` from
  a model, an ``optim`` transformation and a loss; the metrics include
  per-layer gradient norms (``nn.grad_norms``);
- :func:`fit` -- the epoch loop: a tqdm progress bar (throughput, loss,
  accuracy), evaluation after every epoch, ``metrics.jsonl``, atomic
  checkpoints, resuming, ``curves.png`` and ``report.html``;
- :func:`evaluate` and :func:`classification_metrics` -- accuracy,
  per-class precision and recall, the confusion matrix;
- :func:`make_optimizer`, :func:`make_schedule` -- optimizers and
  learning-rate schedules by name;
- :class:`TrainState`, :func:`save_checkpoint`, :func:`load_checkpoint`;
- :func:`plot_curves`, :func:`write_report` -- the pictures;
- :mod:`funcnet.training.tasks` -- the datasets of the command line as
  training tasks (arrays, preprocessing, matching models).

>>> import numpy as np
>>> from funcnet import nn, optim, random, training
>>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
>>> y = (x[:, 0] > 0).astype(np.int64)
>>> result = training.fit(nn.models.MLP((16,), num_classes=2), optim.adam(1e-2), (x, y),
...                       (x, y), epochs=5, batch_size=16, progress=False, log=None)
>>> result.test_metrics["accuracy"] > 0.8
True
"""

from funcnet.training import tasks
from funcnet.training.loop import (BEST, CHECKPOINT, CONFIG, METRICS, FitResult, TrainState,
                                   evaluate, fit, init_train_state, load_checkpoint,
                                   save_checkpoint, steps_per_epoch, train_epoch)
from funcnet.training.optimizers import (DEFAULT_LEARNING_RATES, OPTIMIZERS, SCHEDULES,
                                         make_optimizer, make_schedule)
from funcnet.training.metrics import (MetricsLog, classification_metrics, confusion_matrix,
                                      metrics_from_confusion, read_metrics)
from funcnet.training.report import (plot_confusion, plot_curves, plot_grad_norms,
                                     render_report, write_report)
from funcnet.training.step import cross_entropy, make_eval_step, make_train_step

__all__ = [
    "make_train_step", "make_eval_step", "cross_entropy",
    "TrainState", "FitResult", "init_train_state", "train_epoch", "steps_per_epoch", "evaluate",
    "fit",
    "save_checkpoint", "load_checkpoint", "CHECKPOINT", "BEST", "CONFIG", "METRICS",
    "classification_metrics", "confusion_matrix", "metrics_from_confusion", "MetricsLog",
    "read_metrics",
    "plot_curves", "plot_confusion", "plot_grad_norms", "render_report", "write_report",
    "make_optimizer", "make_schedule", "OPTIMIZERS", "SCHEDULES", "DEFAULT_LEARNING_RATES",
    "tasks",
]
