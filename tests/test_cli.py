"""The ``funcnet`` command line: train, evaluate, predict, export, info, --help, errors.

Most tests call ``funcnet.cli.main`` in this process (fast); two run
``python -m funcnet`` in a subprocess, as a user would.  One small training
run (200 digits, 2 epochs) is shared by the module.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import funcnet as fn
from funcnet.cli import main

pytest.importorskip("sklearn", reason="the digits need scikit-learn (the data extra)")

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--limit", "200", "--schedule", "constant", "--no-progress", "--quiet"]


def _run_module(*args, cwd, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("FUNCNET_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "funcnet", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)


def _one_error_line(err: str, prefix: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "--name", "full"]) == 0
    return out


def test_train_writes_a_run_directory(run, capsys):
    full = run / "full"
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "best.npz", "curves.png",
                 "report.html"):
        assert (full / name).is_file(), name
    config = json.loads((full / "config.json").read_text())
    assert config["dataset"] == "digits" and config["model"] == "mlp"
    assert config["optimizer"] == "adam" and config["schedule"] == "constant"
    assert config["limit"] == 200 and config["task"]["input_shape"] == [8, 8, 1]
    assert config["command"].startswith("funcnet train --limit 200")
    records = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_resume_equals_the_uninterrupted_run(run, capsys):
    out = str(run)
    assert main(["train", *TINY, "--epochs", "1", "--out", out, "--name", "split"]) == 0
    assert main(["train", "--epochs", "2", "--out", out, "--name", "split", "--resume",
                 "--quiet", "--no-progress"]) == 0
    a = fn.checkpoint_io.load(run / "full" / "checkpoint.npz")
    b = fn.checkpoint_io.load(run / "split" / "checkpoint.npz")
    la, lb = fn.tree.leaves(a), fn.tree.leaves(b)
    assert len(la) == len(lb) and b["epoch"] == 2
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)
    # a resumed run keeps its settings
    capsys.readouterr()
    assert main(["train", "--resume", "--out", out, "--name", "split", "--lr", "0.5"]) == 2
    _one_error_line(capsys.readouterr().err, "funcnet train: error: --lr 0.5 differs")
    # an existing run is never overwritten by accident
    assert main(["train", *TINY, "--out", out, "--name", "split"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_evaluate_export_and_predict(run, tmp_path, capsys):
    full = str(run / "full")
    assert main(["evaluate", full, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    last = json.loads((run / "full" / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["accuracy"] == pytest.approx(last["test_accuracy"])
    assert metrics["count"] == 200 and len(metrics["confusion"]) == 10
    assert main(["evaluate", full, "--split", "train", "--checkpoint", "best"]) == 0
    text = capsys.readouterr().out
    assert "train split, 200 examples: accuracy" in text and "true \\ predicted" in text

    model = str(tmp_path / "digits.fnx")
    assert main(["export", full, "-o", model]) == 0
    assert "float32[8,8,1]) -> float32[10]" in capsys.readouterr().out
    exported = fn.export.load(model)
    assert exported.metadata["classes"] == [str(i) for i in range(10)]

    x, y = fn.data.load_digits()
    np.save(tmp_path / "seven.npy", x[7])
    import matplotlib.image as mpimg

    mpimg.imsave(tmp_path / "seven.png", x[7, :, :, 0], cmap="gray", vmin=0, vmax=1)
    for source in (full, model):
        assert main(["predict", source, str(tmp_path / "seven.npy"), str(tmp_path / "seven.png"),
                     "--json"]) == 0
        npy, png = json.loads(capsys.readouterr().out)
        assert npy["prediction"] == png["prediction"]
        assert npy["top"][0]["probability"] == pytest.approx(png["top"][0]["probability"],
                                                             abs=1e-3)
    # the exported model agrees with the checkpoint
    params = fn.checkpoint_io.load(run / "full" / "checkpoint.npz")["params"]
    from funcnet.training import tasks

    config = json.loads((run / "full" / "config.json").read_text())
    net = tasks.create_model("mlp", config["task"], hidden_sizes=config["hidden_sizes"])
    probs = tasks.make_predict_fn(net, params, {}, config["task"])(x[:5])
    np.testing.assert_allclose(fn.jit(fn.vmap(exported))(x[:5]), probs, rtol=1e-5, atol=1e-6)


def test_corrupt_checkpoint_and_bad_inputs_are_one_line(run, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((run / "full" / "config.json").read_text())
    blob = (run / "full" / "checkpoint.npz").read_bytes()
    (bad / "checkpoint.npz").write_bytes(blob[:300])
    assert main(["evaluate", str(bad)]) == 1
    line = _one_error_line(capsys.readouterr().err, "funcnet evaluate: error:")
    assert "checkpoint.npz" in line and "truncated or corrupt" in line

    assert main(["predict", str(run / "full"), str(tmp_path / "missing.png")]) == 1
    assert "no such file" in _one_error_line(capsys.readouterr().err, "funcnet predict: error:")
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "not a funcnet run directory" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                 "--no-progress"]) == 1
    line = _one_error_line(capsys.readouterr().err, "funcnet train: error: load_mnist:")
    assert "never downloads" in line


@pytest.mark.parametrize("argv, message", [
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--epochs", "many"], "argument --epochs: expected a positive integer"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    (["train", "--lr", "-1"], "argument --lr: expected a positive number"),
    (["train", "--dataset", "imagenet"], "argument --dataset: invalid choice"),
    (["train", "--model", "text"], "--model text does not fit --dataset digits"),
    (["train", "--resume"], "--resume needs --name"),
    (["serve"], "the following arguments are required: model"),
    ([], "choose a command"),
])
def test_usage_errors_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, "funcnet")
    assert message in line and "--help" in line


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "serve", "info"])
def test_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: funcnet {command}")
    if command == "train":
        for flag in ("--dataset", "--model", "--optimizer", "--schedule", "--clip-norm",
                     "--epochs", "--batch-size", "--backend", "--seed", "--out", "--resume",
                     "--limit"):
            assert flag in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"funcnet {fn.__version__}")
    assert "numpy  usable" in out
    for name in ("numba", "cupy"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
        assert "usable" in line     # "usable" or "not usable: <reason>"
        if "not usable" in line:
            assert len(line.split("not usable:")[1].strip()) > 10
    assert "digits" in out
    assert "distributed: mpi4py " in out and "this process: one process (no MPI launcher)" in out


def test_python_m_funcnet_train_end_to_end(tmp_path):
    proc = _run_module("train", "--epochs", "1", "--limit", "200", "--out", "runs", "--name",
                       "e2e", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout and "test accuracy" in proc.stdout
    assert "ex/s" in proc.stderr                      # the tqdm progress bar
    assert (tmp_path / "runs" / "e2e" / "report.html").is_file()
    bad = _run_module("train", "--epochs", "0.5", cwd=tmp_path)
    assert bad.returncode == 2
    _one_error_line(bad.stderr, "funcnet train: error: argument --epochs")


@pytest.mark.slow
def test_bare_funcnet_train_reaches_97_percent_in_30_seconds(tmp_path):
    import time

    start = time.perf_counter()
    proc = _run_module("train", cwd=tmp_path, timeout=300)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    accuracy = float(proc.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.97, proc.stdout
    assert elapsed < 30, f"took {elapsed:.1f} s"
