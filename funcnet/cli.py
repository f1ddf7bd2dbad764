"""The ``funcnet`` command line: ``train``, ``evaluate``, ``predict``, ``export``, ``serve``,
``info``.

``funcnet train`` with no options trains an MLP on the 8x8 digits bundled
with scikit-learn (about 98% test accuracy in a few seconds) and writes a
run directory ``runs/<name>/`` with ``config.json``, ``metrics.jsonl``,
``checkpoint.npz`` (the latest state, written atomically after every
epoch), ``best.npz``, ``curves.png`` and ``report.html``.  ``funcnet
<command> --help`` lists each command's options; ``docs/cli.md`` is the
reference.

Errors are one line on stderr: exit status 2 for a usage error (a bad flag
or value), 1 for a failure while running (missing data, a corrupt
checkpoint, an input of the wrong shape).  ``FUNCNET_TRACEBACK=full`` shows
the traceback of an unexpected error.

>>> from funcnet.cli import main
>>> main(["train", "--epochs", "-1"])
2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser", "UsageError"]

PROG = "funcnet"
BACKENDS = ("numpy", "numba", "cupy")


class UsageError(Exception):
    """A bad command line: reported in one line with exit status 2.

    >>> from funcnet.cli import UsageError
    >>> UsageError("--epochs must be positive", "funcnet train").prog
    'funcnet train'
    """

    def __init__(self, message: str, prog: str = PROG):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises :class:`UsageError` instead of printing the usage
    and exiting, so that ``main`` reports it in one line."""

    def error(self, message):
        raise UsageError(message, self.prog)


# ---------------------------------------------------------------------------
# argument types


def _number(convert: type, strict: bool, expected: str):
    """An argparse type: ``convert(text)``, finite and > 0 (``strict``) or >= 0."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (value > 0 if strict else value >= 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_positive_int = _number(int, True, "a positive integer")
_nonnegative_int = _number(int, False, "an integer >= 0")
_positive_float = _number(float, True, "a positive number")
_nonnegative_float = _number(float, False, "a number >= 0")


def _rate(text: str) -> float:
    value = _nonnegative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text}")
    return value


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 256,128, "
                                         f"got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive layer sizes such as 256,128, got "
                                         f"{text!r}")
    return sizes


# ---------------------------------------------------------------------------
# the parser


_TRAIN_DEFAULTS = {"dataset": "digits", "model": None, "optimizer": "adam", "lr": None,
                   "momentum": 0.9, "weight_decay": None, "schedule": "cosine",
                   "warmup_epochs": 1.0, "clip_norm": None, "epochs": 20, "batch_size": 64,
                   "hidden_sizes": [128], "dropout": 0.0, "seed": 0, "limit": None}
# settings a resumed run must keep (everything that shapes the computation but the length)
_RESUME_FIXED = ("dataset", "model", "optimizer", "lr", "momentum", "weight_decay", "schedule",
                 "warmup_epochs", "clip_norm", "batch_size", "hidden_sizes", "dropout", "seed",
                 "limit")


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of the ``funcnet`` command (for documentation tools).

    >>> from funcnet.cli import build_parser
    >>> build_parser().parse_args(["train", "--epochs", "3"]).epochs
    3
    """
    from funcnet.training import optimizers, tasks

    parser = _Parser(prog=PROG, description="Train, evaluate, export and serve funcnet models.",
                     epilog="Run 'funcnet <command> --help' for a command's options.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)

    backend = _Parser(add_help=False)
    backend.add_argument("--backend", choices=BACKENDS, default=None,
                         help="array backend (default: $FUNCNET_BACKEND or numpy)")

    # -- train --------------------------------------------------------------------------
    t = sub.add_parser(
        "train", parents=[backend], help="train a model on a dataset",
        description="Train a classifier and write a run directory (config.json, metrics.jsonl, "
                    "checkpoint.npz, best.npz, curves.png, report.html). Without options: an "
                    "MLP on the bundled 8x8 digits.")
    g = t.add_argument_group("data and model")
    g.add_argument("--dataset", choices=list(tasks.DATASETS), default=None,
                   help="dataset (default: digits, bundled with scikit-learn)")
    g.add_argument("--data-dir", default=None,
                   help="folder holding the dataset files, or a parent of them (default: "
                        "$FUNCNET_DATA, else $FUNCNET_SHARED_DATA, else ./data)")
    g.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use at most N training and N test examples (quick runs)")
    g.add_argument("--model", choices=list(tasks.MODELS), default=None,
                   help="model (default: mlp for images, speech for fsdd, text for sms-spam)")
    g.add_argument("--hidden-sizes", type=_sizes, default=None, metavar="N[,N...]",
                   help="hidden layer sizes of the MLP (default: 128)")
    g.add_argument("--dropout", type=_rate, default=None, metavar="RATE",
                   help="dropout rate (the probability of dropping; default 0)")
    g = t.add_argument_group("optimization")
    g.add_argument("--optimizer", choices=list(optimizers.OPTIMIZERS), default=None,
                   help="optimizer (default: adam)")
    g.add_argument("--lr", type=_positive_float, default=None, metavar="RATE",
                   help="peak learning rate (default per optimizer: adam 3e-3, sgd 0.05, ...)")
    g.add_argument("--momentum", type=_nonnegative_float, default=None,
                   help="momentum of sgd (default 0.9; 0 for plain SGD)")
    g.add_argument("--weight-decay", type=_nonnegative_float, default=None,
                   help="weight decay of adamw, lamb, lion (default: the optimizer's)")
    g.add_argument("--schedule", choices=list(optimizers.SCHEDULES), default=None,
                   help="learning-rate schedule over the run (default: cosine)")
    g.add_argument("--warmup-epochs", type=_nonnegative_float, default=None, metavar="E",
                   help="warmup length of warmup-cosine, in epochs (default 1)")
    g.add_argument("--clip-norm", type=_positive_float, default=None, metavar="NORM",
                   help="clip the gradient's global norm to NORM")
    g.add_argument("--epochs", type=_positive_int, default=None,
                   help="total number of epochs (default 20; with --resume: train up to this)")
    g.add_argument("--batch-size", type=_positive_int, default=None,
                   help="default 64 (with --distributed: the global batch, shared by the "
                        "processes)")
    g.add_argument("--seed", type=_nonnegative_int, default=None,
                   help="random seed: initial parameters, example order, dropout (default 0)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training across the processes of an MPI job: "
                        "mpirun -n 4 funcnet train --distributed ... (see docs/distributed.md)")
    g = t.add_argument_group("run directory")
    g.add_argument("--out", default="runs", metavar="DIR",
                   help="parent folder of run directories (default: runs)")
    g.add_argument("--name", default=None,
                   help="run name: the run directory is DIR/NAME (default: <dataset>-<model>, "
                        "numbered if taken)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run DIR/NAME from its checkpoint.npz (same settings; "
                        "--epochs may grow)")
    g.add_argument("--overwrite", action="store_true",
                   help="start afresh in DIR/NAME even if it holds a run")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--quiet", action="store_true", help="print only the final result")

    # -- evaluate -----------------------------------------------------------------------
    e = sub.add_parser(
        "evaluate", parents=[backend], help="evaluate a checkpoint on a dataset split",
        description="Evaluate a trained run: accuracy, per-class precision and recall, and the "
                    "confusion matrix.")
    e.add_argument("run", help="a run directory, or a checkpoint file inside one")
    e.add_argument("--checkpoint", default="latest", choices=["latest", "best"],
                   help="which checkpoint of the run directory (default: latest)")
    e.add_argument("--split", choices=["test", "train"], default="test",
                   help="dataset split (default: test)")
    e.add_argument("--data-dir", default=None, help="as for train")
    e.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="evaluate on at most N examples")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    # -- predict ------------------------------------------------------------------------
    p = sub.add_parser(
        "predict", parents=[backend], help="classify images, WAV files or texts",
        description="Classify inputs with a run directory, a checkpoint or an exported .fnx "
                    "model: image files (PNG, or .npy arrays), WAV files, or texts (for text "
                    "models, each INPUT is the text itself).")
    p.add_argument("model", help="a run directory, a checkpoint in one, or a .fnx file")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="an image (.png, .npy), a .wav file, or a text string")
    p.add_argument("--checkpoint", default="latest", choices=["latest", "best"],
                   help="which checkpoint of a run directory (default: latest)")
    p.add_argument("--top", type=_positive_int, default=3, help="classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")

    # -- export -------------------------------------------------------------------------
    x = sub.add_parser(
        "export", parents=[backend], help="export a checkpoint to a .fnx model file",
        description="Export a trained run as one .fnx file (fn.export): the preprocessing, the "
                    "model and its weights, from one raw example to class probabilities; it "
                    "runs without the model's code (funcnet predict, funcnet serve, "
                    "fn.export.load).")
    x.add_argument("run", help="a run directory, or a checkpoint file inside one")
    x.add_argument("-o", "--output", default=None,
                   help="the .fnx file to write (default: RUN/model.fnx)")
    x.add_argument("--checkpoint", default="latest", choices=["latest", "best"],
                   help="which checkpoint of the run directory (default: latest)")

    # -- serve --------------------------------------------------------------------------
    s = sub.add_parser(
        "serve", parents=[backend], help="serve an exported model over HTTP (JSON)",
        description="Serve a .fnx model: GET /health, GET /info, POST /predict with "
                    '{"inputs": [...]} (or {"texts": [...]} for text models).')
    s.add_argument("model", help="a .fnx file written by funcnet export (or fn.export)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=_nonnegative_int, default=8000,
                   help="port (default 8000; 0 picks a free one)")
    s.add_argument("--max-request-bytes", type=_positive_int, default=1 << 20, metavar="N",
                   help="larger request bodies are refused with 413 (default 1 MiB)")
    s.add_argument("--max-batch", type=_positive_int, default=256, metavar="N",
                   help="most examples per request (default 256)")
    s.add_argument("--quiet", action="store_true", help="do not log requests")

    # -- info ---------------------------------------------------------------------------
    i = sub.add_parser("info", help="versions, backends and datasets",
                       description="Print funcnet's version, the libraries it uses, every "
                                   "backend and whether it can run here (and why not), and "
                                   "the datasets found.")
    i.add_argument("--data-dir", default=None, help="where to look for datasets")
    return parser


# ---------------------------------------------------------------------------
# helpers


def _say(quiet: bool = False):
    def say(*args):
        if not quiet:
            print(*args, flush=True)
    return say


def _set_backend(name: str | None) -> None:
    if name is None:
        return
    import funcnet as fn

    fn.set_backend(name)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def _run_paths(run: str, which: str) -> tuple[str, str]:
    """``(run directory, checkpoint file)`` for a run directory or a checkpoint in one."""
    from funcnet import training

    if os.path.isdir(run):
        run_dir = run
        ckpt = os.path.join(run, training.BEST if which == "best" else training.CHECKPOINT)
    elif os.path.isfile(run):
        run_dir, ckpt = os.path.dirname(os.path.abspath(run)), run
    else:
        raise FileNotFoundError(f"no run directory or checkpoint at {run}")
    if not os.path.isfile(os.path.join(run_dir, training.CONFIG)):
        raise FileNotFoundError(f"{run_dir} has no {training.CONFIG}: it is not a funcnet run "
                                "directory (made by funcnet train)")
    if not os.path.isfile(ckpt):
        raise FileNotFoundError(f"no checkpoint {ckpt}" + (
            " (best.npz is written only when there is a test set)" if which == "best" else ""))
    return run_dir, ckpt


def _build(config: dict, steps_per_epoch: int | None = None):
    """``(model, tx)`` from a run's configuration."""
    from funcnet.training import make_optimizer, make_schedule, tasks

    spec = config["task"]
    model = tasks.create_model(config["model"], spec, hidden_sizes=config["hidden_sizes"],
                               dropout=config["dropout"])
    steps = steps_per_epoch or config["steps_per_epoch"]
    lr = make_schedule(config["schedule"], config["lr"], config["epochs"] * steps,
                       round(config["warmup_epochs"] * steps))
    tx = make_optimizer(config["optimizer"], lr, momentum=config["momentum"],
                        weight_decay=config["weight_decay"], clip_norm=config["clip_norm"])
    return model, tx


def _restore(run: str, which: str):
    """``(config, model, params, model_state)`` of a trained run."""
    from funcnet import random, training

    run_dir, ckpt = _run_paths(run, which)
    config = _read_json(os.path.join(run_dir, training.CONFIG))
    for key in ("task", "model", "model_input_shape"):
        if key not in config:
            raise ValueError(f"{run_dir}/{training.CONFIG} has no {key!r}: it was not written "
                             "by funcnet train")
    model, tx = _build(config)
    like = training.init_train_state(model, tx, [-1, *config["model_input_shape"]],
                                     random.key(0))
    state = training.load_checkpoint(ckpt, like=like)
    return config, model, state.params, state.model_state


# ---------------------------------------------------------------------------
# train


def _train_config(args) -> dict:
    given = {k: getattr(args, k) for k in _TRAIN_DEFAULTS if getattr(args, k) is not None}
    config = {**_TRAIN_DEFAULTS, **given}
    return config, given


def _new_run_dir(out: str, name: str | None, base: str) -> str:
    if name is not None:
        return os.path.join(out, name)
    candidate, n = os.path.join(out, base), 1
    while os.path.exists(candidate) and os.listdir(candidate):
        n += 1
        candidate = os.path.join(out, f"{base}-{n}")
    return candidate


def _resumed_config(args, config: dict, given: dict) -> dict:
    """The saved configuration of the run to resume, with the new ``--epochs``."""
    from funcnet import training

    if args.name is None:
        raise UsageError("--resume needs --name (the run to continue is --out DIR/--name NAME)",
                         "funcnet train")
    config_path = os.path.join(args.out, args.name, training.CONFIG)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"cannot resume: {config_path} does not exist")
    saved = _read_json(config_path)
    for key in _RESUME_FIXED:
        if key in given and given[key] != saved.get(key):
            raise UsageError(f"--{key.replace('_', '-')} {given[key]} differs from the run's "
                             f"{saved.get(key)}; a resumed run keeps its settings (only "
                             "--epochs may change)", "funcnet train")
    return {**saved, "epochs": config["epochs"] if "epochs" in given else saved["epochs"]}


def _join_job(requested: bool) -> bool:
    """Join the MPI job for ``--distributed``; refuse to train N copies of one run without it.
    Returns whether this is the main process."""
    from funcnet import distributed

    if requested:
        world = distributed.init()
        if world.size == 1 and world.is_main:
            print("funcnet train: --distributed, but no MPI launcher started this process: "
                  "training in one process (see docs/distributed.md)", file=sys.stderr)
        return world.is_main
    if distributed.launched() and distributed.size() > 1:
        raise UsageError(f"this is one of {distributed.size()} processes of an MPI job: add "
                         "--distributed to train one model on all of them (without it every "
                         "process would train alone and write the same run directory)",
                         "funcnet train")
    return True


def _run_settings(args, config: dict, given: dict) -> tuple[dict, str]:
    """The configuration and run directory of a new run (checked), or of the run to resume."""
    from funcnet import training
    from funcnet.training import DEFAULT_LEARNING_RATES, tasks

    if args.resume:
        return _resumed_config(args, config, given), os.path.join(args.out, args.name)
    kind = tasks.DATASETS[config["dataset"]]
    if config["model"] is None:
        config["model"] = tasks.default_model(config["dataset"])
    elif kind not in tasks.MODELS[config["model"]]:
        fits = " or ".join(m for m, kinds in tasks.MODELS.items() if kind in kinds)
        raise UsageError(f"--model {config['model']} does not fit --dataset "
                         f"{config['dataset']} ({kind} input); use {fits}", "funcnet train")
    if config["lr"] is None:
        config["lr"] = DEFAULT_LEARNING_RATES[config["optimizer"]]
    run_dir = _new_run_dir(args.out, args.name, f"{config['dataset']}-{config['model']}")
    if not args.overwrite and any(os.path.exists(os.path.join(run_dir, f))
                                  for f in (training.CONFIG, training.CHECKPOINT)):
        raise UsageError(f"{run_dir} already holds a run: continue it with --resume, "
                         "replace it with --overwrite, or choose another --name",
                         "funcnet train")
    config["name"] = os.path.basename(run_dir)
    return config, run_dir


def cmd_train(args) -> int:
    import funcnet as fn
    from funcnet import distributed, training
    from funcnet.training import tasks

    _set_backend(args.backend)  # before joining the job: each process then picks its GPU
    main = _join_job(args.distributed)
    say = _say(args.quiet or not main)
    config, given = _train_config(args)
    if distributed.size() > 1:  # the main process reads and checks the run directory
        outcome = None
        if main:
            try:
                outcome = ("ok", _run_settings(args, config, given))
            except (UsageError, OSError, ValueError) as e:
                outcome = (type(e).__name__, str(e))
        kind, value = distributed.broadcast_object(outcome)
        if kind != "ok":  # every process stops with the main process's error
            error = (UsageError(value, "funcnet train") if kind == "UsageError"
                     else ValueError(value) if kind == "ValueError" else OSError(value))
            if not main:  # the main process prints it
                error.reported_by_main = True
            raise error
        config, run_dir = value
    else:
        config, run_dir = _run_settings(args, config, given)

    start = time.perf_counter()
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    task = tasks.load_task(config["dataset"], data_dir, config["limit"],
                           spec=config["task"] if args.resume else None)
    steps = training.steps_per_epoch(len(task.y_train), config["batch_size"])
    config.update(task=task.spec, classes=task.classes, steps_per_epoch=steps,
                  model_input_shape=list(task.x_train.shape[1:]), data_dir=data_dir,
                  backend=fn.get_backend().name, funcnet_version=fn.__version__,
                  command=" ".join(["funcnet", *args.argv]))
    model, tx = _build(config, steps)
    _, params, _ = model.init_with_state(fn.random.key(0), (-1, *config["model_input_shape"]))
    size = sum(int(p.size) for p in fn.tree.leaves(params))
    say(f"{config['dataset']}: {len(task.y_train)} training and {len(task.y_test)} test "
        f"examples, {task.num_classes} classes; model {config['model']} ({size:,} parameters), "
        f"{config['optimizer']} lr {config['lr']:g} ({config['schedule']} schedule); "
        f"run directory {run_dir}")
    result = training.fit(model, tx, (task.x_train, task.y_train), (task.x_test, task.y_test),
                          epochs=config["epochs"], batch_size=config["batch_size"],
                          seed=config["seed"], run_dir=run_dir, resume=args.resume,
                          config=config, class_names=task.classes,
                          progress=not (args.no_progress or args.quiet), log=say)
    elapsed = time.perf_counter() - start
    final = result.test_metrics
    if final is not None and main:
        epochs = result.state.epoch
        print(f"test accuracy {final['accuracy']:.4f} (loss {final['loss']:.4f}, "
              f"{final['count']} examples) after {epochs} epoch{'s' if epochs != 1 else ''} "
              f"in {elapsed:.1f} s; report: {os.path.join(run_dir, 'report.html')}", flush=True)
    return 0


# ---------------------------------------------------------------------------
# evaluate


def _confusion_text(confusion, classes) -> str:
    k = len(confusion)
    labels = [str(c)[:8] for c in classes] if classes and len(classes) == k else \
        [str(i) for i in range(k)]
    width = max(5, max(len(x) for x in labels), max(len(str(v)) for row in confusion
                                                    for v in row))
    lines = ["true \\ predicted".ljust(width + 2) + " ".join(x.rjust(width) for x in labels)]
    for label, row in zip(labels, confusion):
        lines.append(label.ljust(width + 2) + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from funcnet import training
    from funcnet.training import tasks

    _set_backend(args.backend)
    config, model, params, model_state = _restore(args.run, args.checkpoint)
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    limit = config.get("limit")
    if args.limit is not None:
        limit = args.limit if limit is None else min(limit, args.limit)
    task = tasks.load_task(config["dataset"], data_dir, limit, spec=config["task"])
    xy = (task.x_test, task.y_test) if args.split == "test" else (task.x_train, task.y_train)
    m = training.evaluate(model, params, model_state, xy, num_classes=task.num_classes)
    if args.json:
        print(json.dumps({"split": args.split, "classes": task.classes, **m}))
        return 0
    print(f"{config['dataset']} {args.split} split, {m['count']} examples: accuracy "
          f"{m['accuracy']:.4f}, loss {m['loss']:.4f}, macro precision "
          f"{m['macro_precision']:.4f}, macro recall {m['macro_recall']:.4f}")
    print(f"{'class':>12} {'precision':>9} {'recall':>9} {'support':>8}")
    for c, p, r, s in zip(task.classes, m["precision"], m["recall"], m["support"]):
        print(f"{str(c)[:12]:>12} {p:9.4f} {r:9.4f} {s:8d}")
    print(_confusion_text(m["confusion"], task.classes))
    return 0


# ---------------------------------------------------------------------------
# predict and export


def _export_model(config, model, params, model_state):
    import numpy as np

    import funcnet as fn
    from funcnet.training import tasks

    spec = config["task"]
    predict = tasks.make_predict_fn(model, params, model_state, spec)
    example = np.zeros(spec["input_shape"], dtype=spec["input_dtype"])
    metadata = {"task": spec, "classes": config.get("classes") or spec["classes"],
                "model": config["model"], "run": config.get("name")}
    name = f"{config['dataset']}-{config['model']}"
    return fn.export(lambda x: predict(x[None])[0], example, name=name, metadata=metadata)


def cmd_export(args) -> int:
    import funcnet.export  # noqa: F401  (fn.export)

    _set_backend(args.backend)
    config, model, params, model_state = _restore(args.run, args.checkpoint)
    exported = _export_model(config, model, params, model_state)
    run_dir = args.run if os.path.isdir(args.run) else os.path.dirname(os.path.abspath(args.run))
    out = args.output or os.path.join(run_dir, "model.fnx")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write {out}: the folder {parent} does not exist")
    path = exported.save(out)
    print(f"exported {exported.name} {exported.signature} to {path} "
          f"({os.path.getsize(path):,} bytes)")
    return 0


def _predictor(args):
    """``(spec, classes, predict_one)`` where ``predict_one(raw) -> probabilities``."""
    import numpy as np

    import funcnet as fn

    if os.path.isfile(args.model) and args.model.lower().endswith(".fnx"):
        import funcnet.export  # noqa: F401

        exported = fn.export.load(args.model)
        spec = (exported.metadata or {}).get("task")
        if not isinstance(spec, dict):
            raise ValueError(f"{args.model} has no task description in its metadata: export it "
                             "with funcnet export (or call it from Python with fn.export.load)")
        classes = exported.metadata.get("classes") or spec["classes"]

        def predict_one(raw):
            return np.asarray(fn.to_numpy(exported(raw)))

        return spec, classes, predict_one
    from funcnet.training import tasks

    config, model, params, model_state = _restore(args.model, args.checkpoint)
    spec = config["task"]
    batched = fn.jit(tasks.make_predict_fn(model, params, model_state, spec))

    def predict_one(raw):
        return np.asarray(fn.to_numpy(batched(raw[None])))[0]

    return spec, config.get("classes") or spec["classes"], predict_one


def cmd_predict(args) -> int:
    import numpy as np

    from funcnet.training import tasks

    _set_backend(args.backend)
    spec, classes, predict_one = _predictor(args)
    results = []
    for source in args.inputs:
        raw = tasks.read_example(spec, source)
        probs = predict_one(raw.astype(spec["input_dtype"]))
        order = np.argsort(-probs)[:args.top]
        results.append({"input": source,
                        "prediction": str(classes[int(order[0])]),
                        "top": [{"label": str(classes[int(i)]), "probability": float(probs[i])}
                                for i in order]})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
        return 0
    for r in results:
        others = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in r["top"])
        shown = r["input"] if len(r["input"]) <= 60 else r["input"][:57] + "..."
        print(f"{shown}: {r['prediction']}  ({others})")
    return 0


# ---------------------------------------------------------------------------
# serve and info


def cmd_serve(args) -> int:
    from funcnet import serve

    _set_backend(args.backend)
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no model file {args.model} (make one with funcnet export)")
    serve.serve(args.model, args.host, args.port, max_request_bytes=args.max_request_bytes,
                max_batch=args.max_batch, quiet=args.quiet, log=_say())
    return 0


def _version_of(module: str) -> str:
    from importlib import metadata

    names = {"sklearn": "scikit-learn"}
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args) -> int:
    import numpy as np

    import funcnet as fn
    from funcnet.training import tasks

    print(f"funcnet {fn.__version__}  (python {platform.python_version()}, numpy "
          f"{np.__version__}, {platform.system()} {platform.machine()})")
    print("libraries: " + ", ".join(f"{m} {_version_of(m)}" for m in
                                    ("numba", "cupy", "sklearn", "matplotlib", "tqdm")))
    print(f"backends (active: {fn.get_backend().name}; choose with --backend or "
          "FUNCNET_BACKEND):")
    for name in BACKENDS:
        try:
            fn.backends.load(name)
            status = "usable"
        except Exception as e:  # BackendUnavailable, or an import that fails for another reason
            status = "not usable: " + " ".join(str(e).split())
        print(f"  {name:6} {status}")
    from funcnet import distributed

    mpirun = shutil.which("mpirun") or "not found"
    launched = ("started by an MPI launcher" if distributed.launched()
                else "one process (no MPI launcher)")
    print(f"distributed: mpi4py {_version_of('mpi4py')}, mpirun {mpirun}; this process: "
          f"{launched} (see docs/distributed.md)")
    data_dir = args.data_dir or tasks.default_data_dir()
    print(f"datasets (--data-dir {data_dir}):")
    for name in tasks.DATASETS:
        print(f"  {name:14} {_dataset_status(name, data_dir)}")
    return 0


def _dataset_status(name: str, data_dir: str) -> str:
    from funcnet import data

    join = os.path.join
    if name == "digits":
        return "bundled with scikit-learn" if _version_of("sklearn") != "not installed" \
            else "needs scikit-learn (pip install 'funcnet[data]')"
    candidates = {
        "mnist": [join(data_dir, "mnist"), data_dir],
        "fashion-mnist": [join(data_dir, "fashion-mnist"), str(data.FASHION_MNIST_SYSTEM_PATH)],
        "cifar10": [join(data_dir, "cifar-10-batches-bin"), join(data_dir, "cifar-10-batches-py")],
        "fsdd": [join(data_dir, "fsdd", "recordings"), join(data_dir, "recordings")],
        "sms-spam": [join(data_dir, "text", "sms_spam", "SMSSpamCollection"),
                     join(data_dir, "SMSSpamCollection")],
    }[name]
    for c in candidates:
        if name == "mnist" and not os.path.exists(join(c, "train-labels-idx1-ubyte.gz")) \
                and not os.path.exists(join(c, "train-labels-idx1-ubyte")):
            continue
        if os.path.exists(c):
            return f"found ({c})"
    return "not found"


# ---------------------------------------------------------------------------
# main


_COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
             "export": cmd_export, "serve": cmd_serve, "info": cmd_info}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``funcnet`` command line with ``argv`` (default ``sys.argv[1:]``); returns the
    exit status: 0 on success, 2 for a usage error, 1 for an error while running.

    >>> from funcnet.cli import main
    >>> main(["predict"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    status = _run(argv)
    if status != 0:
        from funcnet import distributed

        world = distributed.joined()
        if world is not None:  # the other processes would wait for this one forever
            if _MAIN_REPORTS[0] and not world.is_main:
                time.sleep(10)  # the main process prints the error and ends the job first
            world.abort(f"funcnet exits with status {status}; aborting the job", status)
    return status


#: set when this process stops with an error that the main process reports
_MAIN_REPORTS = [False]


def _run(argv: list) -> int:
    prog = PROG
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help / --version printed by argparse
            return int(e.code or 0)
        if args.version:
            import funcnet as fn

            print(f"funcnet {fn.__version__}")
            return 0
        if args.command is None:
            raise UsageError(f"choose a command: {', '.join(_COMMANDS)}")
        prog = f"{PROG} {args.command}"
        args.argv = argv
        return _COMMANDS[args.command](args)
    except UsageError as e:
        if getattr(e, "reported_by_main", False):  # the main process prints it
            _MAIN_REPORTS[0] = True
            return 2
        hint = e.prog if e.prog.startswith(PROG) else PROG
        print(f"{e.prog}: error: {_one_line(e)} (see '{hint} --help')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if getattr(e, "reported_by_main", False):
            _MAIN_REPORTS[0] = True
            return 1
        if os.environ.get("FUNCNET_TRACEBACK", "").lower() == "full":
            raise
        from funcnet.backends import BackendUnavailable

        known = (OSError, ValueError, TypeError, ImportError, LookupError, BackendUnavailable)
        text = _one_line(e) or type(e).__name__
        if not isinstance(e, known) or isinstance(e, (KeyError, IndexError)):
            text = f"{type(e).__name__}: {text} (FUNCNET_TRACEBACK=full shows the traceback)"
        print(f"{prog}: error: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
