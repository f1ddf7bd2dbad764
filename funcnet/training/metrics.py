"""Classification metrics and the ``metrics.jsonl`` log.

Metrics are computed on the host with NumPy from integer labels and
predictions (they are cheap and need no gradient):

- :func:`confusion_matrix` -- ``counts[true, predicted]``;
- :func:`classification_metrics` -- accuracy, per-class precision and
  recall, their macro averages and the confusion matrix, as plain
  JSON-able Python values;
- :class:`MetricsLog` -- appends one JSON object per line to a file
  (``metrics.jsonl`` in a run directory) and reads it back.

>>> import numpy as np
>>> from funcnet import training
>>> m = training.classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
>>> m["accuracy"], m["precision"], m["recall"]
(0.75, [1.0, 1.0, 0.5], [1.0, 0.5, 1.0])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["confusion_matrix", "classification_metrics", "metrics_from_confusion", "MetricsLog",
           "read_metrics"]


def _labels(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``counts[i, j]``: how many examples of class ``i`` were predicted as class ``j``.

    ``num_classes`` defaults to one more than the largest label seen.  Rows
    are true classes, columns predictions (scikit-learn's convention).

    >>> from funcnet.training import confusion_matrix
    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2])
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.shape[0]} and "
                         f"{p.shape[0]}")
    if num_classes is None:
        num_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has labels outside 0 ... {num_classes - 1}")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float]:
    """``num / den`` per class, 0.0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return [float(v) for v in out]


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Accuracy, per-class precision and recall, macro averages, confusion matrix.

    Returns a dict of JSON-able values: ``accuracy`` (float), ``precision``
    and ``recall`` (one float per class; a class never predicted -- or never
    present -- gets 0.0, as scikit-learn's ``zero_division=0``),
    ``macro_precision``, ``macro_recall``, ``support`` (examples per class)
    and ``confusion`` (a list of rows, true class by predicted class).

    >>> from funcnet.training import classification_metrics
    >>> m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1])
    >>> m["accuracy"], m["precision"], m["recall"], m["confusion"]
    (0.75, [1.0, 0.6666666666666666], [0.5, 1.0], [[1, 1], [0, 2]])
    """
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def metrics_from_confusion(cm) -> dict:
    """:func:`classification_metrics` computed from a confusion matrix ``cm`` (true class
    by predicted class) -- e.g. the sum of the confusion matrices of several shards.

    >>> import numpy as np
    >>> from funcnet.training import metrics_from_confusion
    >>> metrics_from_confusion(np.array([[1, 1], [0, 2]]))["accuracy"]
    0.75
    """
    cm = np.asarray(cm)
    total = int(cm.sum())
    correct = int(np.trace(cm))
    tp = np.diag(cm).astype(np.float64)
    precision = _ratio(tp, cm.sum(axis=0).astype(np.float64))
    recall = _ratio(tp, cm.sum(axis=1).astype(np.float64))
    return {
        "accuracy": correct / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "macro_precision": float(np.mean(precision)) if precision else 0.0,
        "macro_recall": float(np.mean(recall)) if recall else 0.0,
        "support": [int(v) for v in cm.sum(axis=1)],
        "confusion": cm.tolist(),
    }


def _jsonable(value):
    """Plain Python values for ``json.dumps``: arrays and NumPy scalars become lists and
    numbers; non-finite floats become ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """An append-only JSON-lines file: one ``dict`` per line (``metrics.jsonl``).

    Each :meth:`write` appends one line and flushes it, so a run that is
    killed keeps every line written before.  :meth:`read` returns the records;
    :meth:`truncate` keeps only the records a predicate accepts (used when a
    run resumes from a checkpoint older than the log).

    >>> import os, tempfile
    >>> from funcnet.training import MetricsLog
    >>> log = MetricsLog(os.path.join(tempfile.mkdtemp(), "metrics.jsonl"))
    >>> log.write({"epoch": 1, "loss": 0.5})
    >>> log.write({"epoch": 2, "loss": float("nan")})
    >>> log.read()
    [{'epoch': 1, 'loss': 0.5}, {'epoch': 2, 'loss': None}]
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def write(self, record: dict) -> None:
        line = json.dumps(_jsonable(record), sort_keys=False, allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def read(self) -> list[dict]:
        return read_metrics(self.path)

    def truncate(self, keep) -> list[dict]:
        """Rewrite the file with the records for which ``keep(record)`` is true."""
        kept = [r for r in self.read() if keep(r)]
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for r in kept:
                f.write(json.dumps(r, allow_nan=False) + "\n")
        os.replace(tmp, self.path)
        return kept


def read_metrics(path, *, strict: bool = False) -> list[dict]:
    """The records of a JSON-lines metrics file (``[]`` if it does not exist).

    A last line cut short by a crash is ignored; with ``strict=True`` any
    malformed line raises ``ValueError`` naming the line.

    >>> from funcnet.training import read_metrics
    >>> read_metrics("/no/such/metrics.jsonl")
    []
    """
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines: Sequence[str] = f.read().splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if strict or i != len(lines) - 1:
                raise ValueError(f"{path}:{i + 1}: not a JSON object ({e.msg})") from None
    return records
