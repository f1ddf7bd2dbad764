"""Every example in examples/ runs with ``--quick`` and says something sensible.

Each example runs in a subprocess, as a user would run it.  With the shared data
folder (``$FUNCNET_SHARED_DATA`` or ``../shared/data``) the quick runs use a small
subset of the real data; without it they use synthetic stand-ins, so these tests
never skip for lack of data.  The quick runs are small on purpose (a few seconds
each); the long accuracy runs are recorded in docs/results.md, not run here.

OpenBLAS gets one thread per process: these tests run beside each other
(``pytest -n 2``) on small shared machines, where two threads per process
oversubscribe the cores and make every small matrix product wait.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytest.importorskip("hypothesis")


def run_example(script: str, *args: str, cwd: Path, timeout: float = 240) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{script} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def result_accuracy(out: str) -> float:
    match = re.search(r"^RESULT \S+ accuracy=([0-9.]+) seconds=[0-9.]+ .*backend=\S+", out, re.M)
    assert match, f"no RESULT line in:\n{out}"
    return float(match.group(1))


def epoch_losses(out: str) -> list[float]:
    return [float(m) for m in re.findall(r"^epoch\s+\d+\s+loss\s+([0-9.]+)", out, re.M)]


@pytest.mark.parametrize("script", ["mnist_mlp.py", "mnist_cnn.py", "fashion_mnist_cnn.py",
                                    "text_classification.py", "speech_digits.py",
                                    "data_parallel.py"])
def test_training_example_quick(script, tmp_path):
    out = run_example(script, "--quick", cwd=tmp_path)
    losses = epoch_losses(out)
    assert len(losses) >= 2, out
    assert losses[-1] < losses[0], f"{script}: the training loss did not fall: {losses}\n{out}"
    assert 0.0 <= result_accuracy(out) <= 1.0


def test_quick_run_without_data_uses_synthetic_stand_ins(tmp_path):
    out = run_example("mnist_mlp.py", "--quick", "--data", str(tmp_path / "empty"), cwd=tmp_path)
    assert "synthetic" in out
    assert result_accuracy(out) > 0.5, out  # the stand-in classes are easy to tell apart


def test_full_run_without_data_says_how_to_get_it(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "mnist_cnn.py"), "--data",
                           str(tmp_path / "empty")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "t10k-images-idx3-ubyte" in proc.stderr and "never downloads" in proc.stderr


def write_fake_cifar10(folder: Path, per_batch: int = 40) -> None:
    """CIFAR-10's binary format: rows of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, (per_batch, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        np.concatenate([labels, pixels], axis=1).tofile(folder / name)


def test_cifar10_resnet_reads_the_binary_format(tmp_path):
    write_fake_cifar10(tmp_path / "cifar-10-batches-bin")
    out = run_example("cifar10_resnet.py", "--quick", "--data", str(tmp_path), cwd=tmp_path)
    assert "data: " + str(tmp_path) in out, out
    assert "200 training, 40 test images" in out, out
    assert len(epoch_losses(out)) == 2
    assert 0.0 <= result_accuracy(out) <= 1.0


def test_per_example_gradients_quick(tmp_path):
    out = run_example("per_example_gradients.py", "--quick", cwd=tmp_path)
    assert "vmap(grad) equals the loop over examples: True" in out, out
    assert "their mean equals the batch gradient:    True" in out, out
    assert re.search(r"DP-SGD .* test accuracy [0-9.]+", out), out
    assert result_accuracy(out) > 0.5, out


def test_gradient_property_tests_quick(tmp_path):
    out = run_example("gradient_property_tests.py", "--quick", cwd=tmp_path)
    assert re.search(r"^8 passed, 0 failed$", out, re.M), out
    assert "FAIL" not in out


def test_gradient_explosion_quick(tmp_path):
    out = run_example("gradient_explosion.py", "--quick", "--out", str(tmp_path / "plots"),
                      cwd=tmp_path)
    assert (tmp_path / "plots" / "gradient_explosion.png").stat().st_size > 10_000
    ratios = [float(r) for r in re.findall(r"first layer / last layer = ([0-9.e+-]+)", out)]
    assert len(ratios) == 2, out
    assert ratios[0] > 1e3, f"the plain network's gradients did not explode:\n{out}"
    assert ratios[1] < 10, f"the fixed network's gradients are not balanced:\n{out}"
    final = dict(re.findall(r"^(plain, bad init|residual \+ init \+ schedule \+ clipping)\s+"
                            r"final loss\s+(\S+)", out, re.M))
    assert len(final) == 2, out
    assert float(final["residual + init + schedule + clipping"]) < 0.8, out
