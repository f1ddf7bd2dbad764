"""The training step, the epoch loop, checkpoints and resume, evaluation, the report files."""

import json
import os
import re

import numpy as np
import pytest

import funcnet as fn
from funcnet import checkpoint_io, nn, optim, random, training

pytest.importorskip("sklearn", reason="the digits need scikit-learn (the data extra)")


@pytest.fixture(scope="module")
def digits():
    task = training.tasks.load_task("digits", limit=240)
    return (task.x_train, task.y_train), (task.x_test[:120], task.y_test[:120])


def _stateful_model():
    # BatchNorm (model state) and Dropout (randomness) make resume equivalence meaningful
    return nn.serial(nn.Flatten, nn.Dense(32), nn.BatchNorm(0.9), nn.Relu, nn.Dropout(0.2),
                     nn.Dense(10))


def _optimizer(steps):
    lr = training.make_schedule("warmup-cosine", 1e-2, total_steps=steps, warmup_steps=3)
    return training.make_optimizer("adamw", lr, weight_decay=1e-3, clip_norm=1.0)


def _leaves(state):
    return [np.asarray(fn.to_numpy(x)) for x in fn.tree.leaves(state)]


def test_train_step_learns_and_traces_once(digits):
    (x, y), _ = digits
    model = nn.models.MLP((32,), num_classes=10)
    tx = optim.adam(1e-2)
    ts = training.init_train_state(model, tx, (-1, 8, 8, 1), random.key(0))
    step = training.make_train_step(model, tx)
    params, state, opt_state = ts.params, ts.model_state, ts.opt_state
    losses = []
    for i in range(30):
        params, state, opt_state, m = step(params, state, opt_state, (x[:64], y[:64]),
                                           random.key(i))
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    assert step.trace_count == 1
    assert set(m["grad_norms"]) == {"1_dense", "3_dense"}
    total = np.sqrt(sum(float(v) ** 2 for v in m["grad_norms"].values()))
    assert float(m["grad_norm"]) == pytest.approx(total, rel=1e-5)
    assert 0.0 <= float(m["accuracy"]) <= 1.0


def test_fit_writes_the_run_directory(digits, tmp_path):
    train, test = digits
    model = nn.models.MLP((32,), num_classes=10)
    run = tmp_path / "run"
    lines = []
    result = training.fit(model, optim.adam(1e-2), train, test, epochs=3, batch_size=32,
                          run_dir=run, config={"note": "<b>escaped</b>"}, progress=False,
                          log=lines.append, class_names=[f"digit {i}" for i in range(10)])
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "best.npz", "curves.png",
                 "report.html"):
        assert (run / name).is_file(), name
    records = training.read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3] == [r["epoch"] for r in result.history]
    last = records[-1]
    assert last["test_accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert len(last["test_confusion"]) == 10 and len(last["test_precision"]) == 10
    assert set(last["grad_norms"]) == {"1_dense", "3_dense"} and last["examples_per_second"] > 0
    assert sum(re.match(r"epoch \d/3 +train loss", s) is not None for s in lines) == 3
    config = json.loads((run / "config.json").read_text())
    assert config["note"] == "<b>escaped</b>" and config["epochs"] == 3
    page = (run / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped</b>" not in page
    assert "digit 7" in page
    assert not re.search(r'(src|href)="(http|//)', page)       # nothing external
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_gives_the_uninterrupted_result(digits, tmp_path):
    train, test = digits
    steps = 2 * 8   # 2 epochs of 240 / 32 batches
    kw = dict(batch_size=32, seed=3, progress=False, log=None, report=False)
    full = training.fit(_stateful_model(), _optimizer(steps), train, test, epochs=2,
                        run_dir=tmp_path / "full", **kw)
    # "interrupted" after one epoch (same optimizer: the schedule's horizon is the run's)
    training.fit(_stateful_model(), _optimizer(steps), train, test, epochs=1,
                 run_dir=tmp_path / "split", **kw)
    resumed = training.fit(_stateful_model(), _optimizer(steps), train, test, epochs=2,
                           run_dir=tmp_path / "split", resume=True, **kw)
    assert resumed.state.epoch == full.state.epoch == 2
    assert resumed.state.step == full.state.step == steps
    for a, b in zip(_leaves(full.state), _leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)           # bitwise: params, BN stats, opt, key
    assert int(optim.get(resumed.state.opt_state, "count")) == steps
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")}
             for r in training.read_metrics(tmp_path / "split" / "metrics.jsonl")]
    expect = [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")}
              for r in full.history]
    assert strip == expect


def test_resume_refuses_missing_and_corrupt_checkpoints(digits, tmp_path):
    train, _ = digits
    model, tx = nn.models.MLP((8,), num_classes=10), optim.sgd(0.1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        training.fit(model, tx, train, epochs=1, run_dir=tmp_path, resume=True, log=None,
                     progress=False)
    training.fit(model, tx, train, epochs=1, run_dir=tmp_path, log=None, progress=False,
                 report=False)
    path = tmp_path / training.CHECKPOINT
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(checkpoint_io.CheckpointError, match="truncated or corrupt"):
        training.fit(model, tx, train, epochs=2, run_dir=tmp_path, resume=True, log=None,
                     progress=False)
    # a checkpoint of another model: the mismatch is named
    path.write_bytes(blob)
    with pytest.raises(checkpoint_io.CheckpointError, match=r"1_dense.*expected float32\[16\]"):
        training.fit(nn.models.MLP((16,), num_classes=10), tx, train, epochs=2,
                     run_dir=tmp_path, resume=True, log=None, progress=False)


def test_evaluate_pads_the_last_batch(digits):
    _, (x, y) = digits
    model = nn.models.MLP((16,), num_classes=10)
    _, params, state = model.init_with_state(random.key(1), (-1, 8, 8, 1))
    step = training.make_eval_step(model)
    a = training.evaluate(model, params, state, (x, y), batch_size=50, eval_step=step)
    b = training.evaluate(model, params, state, (x, y), batch_size=len(x))
    assert step.trace_count == 1                      # 50, 50, 20 (padded to 50)
    assert a["confusion"] == b["confusion"] and a["count"] == len(x) == 120
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    logits = model.apply(params, x)
    assert a["accuracy"] == pytest.approx(np.mean(np.argmax(logits, 1) == y))


def test_make_optimizer_and_schedules():
    params = {"w": np.ones(3, np.float32)}
    grads = {"w": np.full(3, 0.5, np.float32)}
    for name in training.OPTIMIZERS:
        tx = training.make_optimizer(name, training.make_schedule("cosine", 0.1, 10))
        updates, _ = tx.update(grads, tx.init(params), params)
        assert np.all(np.asarray(updates["w"]) < 0), name     # a descent step
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        training.make_optimizer("adamax", 0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        training.make_schedule("linear", 0.1, 10)
    clipped = training.make_optimizer("sgd", 1.0, momentum=0, clip_norm=0.1)
    updates, _ = clipped.update(grads, clipped.init(params), params)
    assert np.linalg.norm(updates["w"]) == pytest.approx(0.1, rel=1e-5)


def test_tasks_read_examples(tmp_path):
    import matplotlib.image as mpimg

    spec = {"kind": "image", "input_shape": [8, 8, 1], "classes": list("0123456789")}
    rgb = np.zeros((16, 16, 3), np.float32)
    rgb[4:12, 4:12] = 1.0
    mpimg.imsave(tmp_path / "img.png", rgb)
    img = training.tasks.read_example(spec, str(tmp_path / "img.png"))
    assert img.shape == (8, 8, 1) and img.dtype == np.float32
    assert img[4, 4, 0] == pytest.approx(1.0) and img[0, 0, 0] == pytest.approx(0.0)
    np.save(tmp_path / "x.npy", np.full((8, 8), 255, np.uint8))
    assert training.tasks.read_example(spec, str(tmp_path / "x.npy")).max() == 1.0
    with pytest.raises(FileNotFoundError):
        training.tasks.read_example(spec, str(tmp_path / "missing.png"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(training.tasks.TaskError, match="cannot read the image"):
        training.tasks.read_example(spec, str(tmp_path / "bad.png"))

    audio = {"kind": "audio", "input_shape": [1000],
             "audio": {"sample_rate": 8000, "length": 1000, "n_fft": 256, "hop_length": 80,
                       "n_mfcc": 13}}
    fn.data.write_wav(tmp_path / "a.wav", 0.1 * np.ones(400), 8000)
    wave = training.tasks.read_example(audio, str(tmp_path / "a.wav"))
    assert wave.shape == (1000,) and wave[500] == 0.0 and abs(wave[10] - 0.1) < 1e-3
    fn.data.write_wav(tmp_path / "b.wav", np.zeros(100), 16000)
    with pytest.raises(training.tasks.TaskError, match="16000 Hz"):
        training.tasks.read_example(audio, str(tmp_path / "b.wav"))
    assert training.tasks.input_features(audio)(wave[None]).shape == (1, 13, 13)

    with pytest.raises(training.tasks.TaskError, match="use text"):
        training.tasks.create_model("mlp", {"kind": "text", "dataset": "sms-spam",
                                            "classes": ["a", "b"]})
    with pytest.raises(training.tasks.TaskError, match="unknown dataset"):
        training.tasks.load_task("imagenet")


def test_report_without_history_and_with_missing_pictures(tmp_path):
    page = training.render_report({"dataset": "digits"}, [])
    assert page.startswith("<!DOCTYPE html>") and "Configuration" in page
    # an empty run directory still gets a report
    assert os.path.isfile(training.write_report(tmp_path))
