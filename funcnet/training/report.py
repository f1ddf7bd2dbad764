"""Pictures of a run: ``curves.png`` and a self-contained ``report.html``.

Both are made from what a run directory holds -- ``config.json`` and
``metrics.jsonl`` (see :func:`funcnet.training.fit`) -- so a report can be
rebuilt at any time with :func:`write_report`.  Plots use matplotlib's Agg
renderer through ``matplotlib.figure.Figure`` directly (never ``pyplot``),
so making them changes no global matplotlib state and needs no display.

``report.html`` is one file with no external resources: the training curves,
the confusion matrix and the per-layer gradient norms over training are
inlined as base64 PNG images, next to the per-class precision and recall and
the run's configuration.

>>> import os, tempfile
>>> from funcnet import training
>>> history = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 1 - 0.5 / e,
...             "test_loss": 1.2 / e, "test_accuracy": 1 - 0.6 / e} for e in (1, 2, 3)]
>>> path = training.plot_curves(history, os.path.join(tempfile.mkdtemp(), "curves.png"))
>>> open(path, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable, Sequence

from funcnet.training.metrics import read_metrics

__all__ = ["plot_curves", "plot_confusion", "plot_grad_norms", "render_report",
           "write_report"]


def _figure(width: float, height: float):
    """A matplotlib Figure drawn by Agg, without touching pyplot's global state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'funcnet[data]' "
                          "(or pip install matplotlib)") from e
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _series(history: Sequence[dict], name: str):
    points = [(r["epoch"], r[name]) for r in history if r.get(name) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _curves_png(history: Sequence[dict]) -> bytes:
    fig = _figure(9.0, 3.4)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    for ax, what in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for split, style in (("train", "-o"), ("test", "-s")):
            xs, ys = _series(history, f"{split}_{what}")
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(what)
        ax.set_title(what)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return _png_bytes(fig)


def plot_curves(history: Sequence[dict], path) -> str:
    """Write loss and accuracy per epoch (train and test) as a PNG; returns the path.

    ``history`` is a list of per-epoch records (``metrics.jsonl``'s lines) with
    ``epoch`` and any of ``train_loss``, ``test_loss``, ``train_accuracy``,
    ``test_accuracy``.

    >>> import os, tempfile
    >>> from funcnet.training import plot_curves
    >>> path = plot_curves([{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.3}],
    ...                    os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> os.path.getsize(path) > 1000
    True
    """
    data = _curves_png(history)
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def plot_confusion(confusion, class_names: Sequence[str] | None = None) -> bytes:
    """The confusion matrix (true class by predicted class) as PNG bytes, with the counts
    written in the cells when there are at most 20 classes.

    >>> from funcnet.training import plot_confusion
    >>> plot_confusion([[5, 1], [0, 4]], ["ham", "spam"])[:4]
    b'\\x89PNG'
    """
    import numpy as np

    cm = np.asarray(confusion)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None and len(class_names) == k \
        else [str(i) for i in range(k)]
    size = min(3.0 + 0.45 * k, 12.0)
    fig = _figure(size + 1.0, size)
    fig.subplots_adjust(left=0.15, right=0.95, bottom=0.15, top=0.92)
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if k <= 20:
        ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0,
                      ha="right" if max(map(len, names)) > 2 else "center")
        ax.set_yticks(range(k), names)
        peak = cm.max() if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if peak and cm[i, j] > peak / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    return _png_bytes(fig)


def plot_grad_norms(history: Sequence[dict]) -> bytes:
    """Mean gradient norm per layer and epoch (a log scale) as PNG bytes.

    >>> from funcnet.training import plot_grad_norms
    >>> plot_grad_norms([{"epoch": 1, "grad_norms": {"0_dense": 0.5}}])[:4]
    b'\\x89PNG'
    """
    layers = sorted({name for r in history for name in (r.get("grad_norms") or {})})
    fig = _figure(9.0, 3.6)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.9)
    ax = fig.subplots()
    for name in layers:
        points = [(r["epoch"], r["grad_norms"][name]) for r in history
                  if name in (r.get("grad_norms") or {}) and r["grad_norms"][name]]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "-o", markersize=3,
                    label=name)
    if any(line.get_ydata().size for line in ax.get_lines()):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel("mean gradient norm")
    ax.set_title("gradient norm per layer (mean over each epoch's steps)")
    ax.grid(alpha=0.3, which="both")
    if layers:
        ax.legend(fontsize=7, ncol=max(1, len(layers) // 8), loc="best")
    return _png_bytes(fig)


# ---------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.summary span { display: inline-block; margin-right: 2em; }
.note { color: #777; font-size: 0.9em; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="num"' if i >= numeric_from and isinstance(v, (int, float)) else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(config: dict, history: Sequence[dict], *,
                  class_names: Sequence[str] | None = None, title: str | None = None,
                  curves_png: bytes | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`).

    Needs matplotlib for the pictures; without it the page says so and keeps
    the tables.

    >>> from funcnet.training import render_report
    >>> page = render_report({"model": "mlp"}, [{"epoch": 1, "train_loss": 0.5,
    ...                                          "train_accuracy": 0.9}])
    >>> page.startswith("<!DOCTYPE html>") and "mlp" in page
    True
    """
    title = title or f"funcnet run: {config.get('name') or config.get('dataset') or 'report'}"
    last = history[-1] if history else {}
    names = list(class_names) if class_names is not None else config.get("classes")
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]

    summary = [("epochs", last.get("epoch", 0))]
    for key in ("test_accuracy", "test_loss", "train_accuracy", "train_loss"):
        if last.get(key) is not None:
            summary.append((key.replace("_", " "), f"{last[key]:.4f}"))
    total = sum(r.get("seconds") or 0.0 for r in history)
    summary.append(("training time", f"{total:.1f} s"))
    parts.append('<p class="summary">' + "".join(
        f"<span><b>{html.escape(k)}</b>: {html.escape(str(v))}</span>" for k, v in summary)
        + "</p>")

    pictures = True
    try:
        curves = curves_png if curves_png is not None else _curves_png(history)
    except ImportError as e:
        pictures = False
        parts.append(f'<p class="note">No pictures: {html.escape(str(e))}</p>')

    parts.append("<h2>Training curves</h2>")
    if pictures:
        parts.append(_img(curves, "loss and accuracy per epoch, train and test"))

    confusion = last.get("test_confusion")
    if confusion is not None:
        parts.append("<h2>Confusion matrix (test set, last epoch)</h2>")
        if pictures:
            parts.append(_img(plot_confusion(confusion, names), "confusion matrix"))
        k = len(confusion)
        labels = names if names is not None and len(names) == k else [str(i) for i in
                                                                      range(k)]
        rows = [[labels[i], last["test_precision"][i], last["test_recall"][i],
                 last.get("test_support", [None] * k)[i]] for i in range(k)]
        parts.append("<h2>Per-class precision and recall (test)</h2>")
        parts.append(_table(["class", "precision", "recall", "support"], rows))

    if any(r.get("grad_norms") for r in history):
        parts.append("<h2>Gradient norms per layer</h2>")
        if pictures:
            parts.append(_img(plot_grad_norms(history), "gradient norm per layer and epoch"))

    columns = [c for c in ("epoch", "train_loss", "train_accuracy", "test_loss",
                           "test_accuracy", "grad_norm", "seconds", "examples_per_second")
               if any(c in r for r in history)]
    if history:
        parts.append("<h2>Per-epoch metrics</h2>")
        parts.append(_table(columns, [[r.get(c) for c in columns] for r in history]))

    parts.append("<h2>Configuration</h2>")
    shown = {k: v for k, v in sorted(config.items()) if k not in ("classes", "task")}
    parts.append(_table(["setting", "value"], [[k, v] for k, v in shown.items()],
                        numeric_from=1))
    parts.append('<p class="note">Written by funcnet. Every picture is embedded in this file '
                 "(base64 PNG); it needs no network.</p></body></html>\n")
    return "\n".join(parts)


def write_report(run_dir, *, class_names: Sequence[str] | None = None,
                 log: Callable | None = None) -> str | None:
    """Write ``curves.png`` and ``report.html`` in ``run_dir`` from its ``config.json`` and
    ``metrics.jsonl``; returns the report's path.

    Without matplotlib, ``curves.png`` is skipped (``log`` is told) and the
    report has the tables only.

    >>> import json, os, tempfile
    >>> from funcnet.training import write_report
    >>> run = tempfile.mkdtemp()
    >>> record = {"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.6}
    >>> with open(os.path.join(run, "metrics.jsonl"), "w") as f:
    ...     print(json.dumps(record), file=f)
    >>> os.path.basename(write_report(run)), sorted(os.listdir(run))
    ('report.html', ['curves.png', 'metrics.jsonl', 'report.html'])
    """
    run_dir = os.fspath(run_dir)
    config_path = os.path.join(run_dir, "config.json")
    config = {}
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    history = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    curves = None
    try:
        curves = _curves_png(history)
    except ImportError as e:
        if log is not None:
            log(f"no curves.png: {e}")
    if curves is not None:
        tmp = os.path.join(run_dir, "curves.png.tmp")
        with open(tmp, "wb") as f:
            f.write(curves)
        os.replace(tmp, os.path.join(run_dir, "curves.png"))
    page = render_report(config, history, class_names=class_names, curves_png=curves)
    path = os.path.join(run_dir, "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
