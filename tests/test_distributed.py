"""funcnet.distributed: one-process behaviour, and whole MPI jobs started with ``mpirun``.

The collectives themselves are tested inside a two-process job by
``tests/mpi/test_distributed_mpi.py`` (``.ci/run`` starts it with
``mpirun -n 2``).  Here: the no-op single-process semantics, ``shard``, the
mismatch report, and jobs this test starts itself -- failures (a killed
rank, an exception, a hung rank, mismatched trees) must end the job with a
non-zero status in bounded time, and ``funcnet train --distributed``
follows the one-process run and resumes with another number of processes.
The job tests skip without ``mpirun`` or a usable ``mpi4py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
from funcnet import distributed, random
from funcnet.distributed.collectives import mismatch_message, reduce_arrays

# ---------------------------------------------------------------------------
# one process: every call is a cheap no-op


def test_one_process_world():
    w = distributed.init()
    assert (w.rank, w.size, w.is_main, w.comm) == (0, 1, True, None)
    assert distributed.init() is w
    assert distributed.joined() is None
    distributed.barrier()


def test_single_process_collectives_return_the_tree():
    tree = {"w": np.ones((2, 3), np.float32), "b": None, "n": 3, "k": random.key(0)}
    assert distributed.allreduce(tree) is tree
    assert distributed.allreduce(tree, op="max") is tree
    assert distributed.broadcast(tree) is tree
    f = fn.jit(lambda t: distributed.allreduce(t))
    assert f({"x": np.ones(2)})["x"].tolist() == [1.0, 1.0]


def test_allreduce_rejects_an_unknown_op():
    with pytest.raises(ValueError, match="op must be one of sum, mean, max, min; got 'avg'"):
        distributed.allreduce({"x": np.ones(2)}, op="avg")


def test_reduce_arrays_alone_copies():
    x = np.arange(4.0)
    (out,) = reduce_arrays(distributed.World(), [x], "mean", ("['x']",))
    out[0] = 7.0
    assert x[0] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 50), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_shards_partition_the_permutation(n, size, seed):
    key = random.key(seed)
    data = {"x": np.arange(n), "y": np.arange(n) * 2}
    parts = [distributed.shard(data, key, rank=r, size=size) for r in range(size)]
    union = np.concatenate([p["x"] for p in parts])
    assert sorted(union.tolist()) == list(range(n))
    assert all((p["y"] == 2 * p["x"]).all() for p in parts)
    order = np.asarray(random.permutation(key, n))
    # dealt out in turn: a global batch of B examples is the union of the processes' next
    # B / size examples
    assert all(p["x"].tolist() == order[r::size].tolist() for r, p in enumerate(parts))
    # one process, no key: the data in order
    assert distributed.shard(data)["x"].tolist() == list(range(n))


def test_shard_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"same number of examples.*\(3,\), \(4,\)"):
        distributed.shard((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="need 0 <= rank < size, got rank 2 and size 2"):
        distributed.shard(np.zeros(3), rank=2, size=2)


def test_mismatch_message_lists_paths_and_ranks():
    a = (("['w']", "float32", (3, 4)), ("['b']", "float32", (4,)))
    b = (("['w']", "float32", (3, 4)), ("['b']", "float64", (4,)), ("['c']", "int32", ()))
    c = (("['b']", "float32", (4,)), ("['w']", "float32", (3, 4)))
    text = mismatch_message("allreduce(op='mean')", [a, b, c], ranks=[0, 1, 2])
    assert "the 3 processes passed different trees" in text
    assert "['b']: float32[4] on rank 0, float64[4] on rank 1" in text
    assert "['c']: on rank 1, missing on rank 0" in text
    assert "rank 2 has the same leaves as rank 0 in a different order" in text


def test_launcher_environment_without_mpi4py_explains(monkeypatch):
    from funcnet.distributed import runtime

    monkeypatch.setattr(runtime, "_world", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails
    with pytest.raises(distributed.DistributedError, match=r"pip install 'funcnet\[mpi\]'"):
        distributed.init()
    monkeypatch.setenv("FUNCNET_DISTRIBUTED", "0")
    assert distributed.init().size == 1


def test_compiled_code_hands_a_collective_its_operands_in_one_buffer(monkeypatch):
    """In jitted code the ops that compute a collective's operands write into consecutive
    slices of one buffer per dtype, and the kernel is told (``packed=True``)."""
    from funcnet.distributed import collectives

    calls = []

    def fake_reduce(w, arrays, op, paths, check=True, packed=False):
        bases = {id(a.base) for a in arrays if a.base is not None}
        calls.append((packed, [str(a.dtype) for a in arrays], len(bases)))
        return [np.array(a) * 2 for a in arrays]  # stands in for "the sum over 2 processes"

    class TwoProcesses:
        size = 2

    monkeypatch.setattr(collectives, "reduce_arrays", fake_reduce)
    monkeypatch.setattr(collectives, "init", lambda: TwoProcesses())
    f = fn.jit(lambda g, n: distributed.allreduce(fn.tree.map(lambda v: v * n, g), op="sum"))
    tree = {"a": np.ones((2, 3), np.float32), "b": np.arange(4, dtype=np.float32),
            "c": np.ones(2)}
    out = f(tree, np.float32(3.0))
    assert out["b"].tolist() == [0.0, 6.0, 12.0, 18.0] and tree["b"][1] == 1.0
    packed, dtypes, bases = calls[-1]
    assert packed and dtypes == ["float32", "float32", "float64"] and bases == 2
    assert f.compiled_source(tree, np.float32(3.0)).count("_empty(") == 2
    # an operand that is also an output is copied into its slice (its own buffer lives on)
    g = fn.jit(lambda x: (x * 2.0, distributed.allreduce((x * 2.0, x + 1.0), op="sum")))
    twice, (a, b) = g(np.ones(3, np.float32))
    assert twice.tolist() == [2.0] * 3 and a.tolist() == [4.0] * 3 and b.tolist() == [4.0] * 3
    assert calls[-1][0] is True
    # eagerly the kernel copies (no packed buffer is promised)
    distributed.allreduce({"x": np.ones(2)})
    assert calls[-1][0] is False


# ---------------------------------------------------------------------------
# whole jobs


def _mpi_usable() -> str | None:
    """Why MPI jobs cannot run here, or None."""
    if shutil.which("mpirun") is None:
        return "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"mpi4py is not usable: {probe.stderr.strip().splitlines()[-1:]}"
    return None


_WHY_NOT = _mpi_usable()
needs_mpi = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))


def mpirun(n: int, args: list, *, timeout: float = 240, env: dict | None = None, cwd=None):
    """Run ``args`` as an ``n``-process job; returns (completed process, seconds)."""
    command = ["mpirun", "-n", str(n), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-run-as-root")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI"))}
    full_env.update({"OPENBLAS_NUM_THREADS": "1", "FUNCNET_DISTRIBUTED_TIMEOUT": "60",
                     # containers often forbid the cross-process memory access (CMA) of
                     # Open MPI's shared-memory transport; plain shared memory works anywhere
                     "OMPI_MCA_btl_vader_single_copy_mechanism": "none"})
    full_env.update(env or {})
    start = time.monotonic()
    done = subprocess.run(command + args, capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd)
    return done, time.monotonic() - start


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


TRAINING_LOOP = """
    import os, signal, sys, time
    import numpy as np
    import funcnet as fn, funcnet.numpy as fnp
    from funcnet import distributed

    w = distributed.init()
    params = {"w": np.zeros(4, np.float32)}
    step = fn.jit(lambda p, x: fn.tree.map(
        lambda a, g: a - 0.1 * g, p, distributed.allreduce(fn.grad(
            lambda q: fnp.sum((q["w"] - x) ** 2))(p))))
    for i in range(200):
        if i == 3 and w.rank == 1:
            FAULT
        params = step(params, np.full(4, w.rank, np.float32))
    print("finished", w.rank, flush=True)
"""


@needs_mpi
@pytest.mark.parametrize("fault, expect", [
    ("os.kill(os.getpid(), signal.SIGKILL)", "rank 1"),
    ("raise ValueError('a bad batch on purpose')",
     "rank 1 of 2: failed with ValueError: a bad batch on purpose"),
    ("time.sleep(600)", "waited more than 3 s"),
    ("sys.exit(0)", "waited more than 3 s"),
])
def test_a_failing_rank_ends_the_job_quickly(tmp_path, fault, expect):
    script = _script(tmp_path, TRAINING_LOOP.replace("FAULT", fault))
    done, seconds = mpirun(2, [sys.executable, script],
                           env={"FUNCNET_DISTRIBUTED_TIMEOUT": "3"}, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert expect in output, output
    assert "finished" not in output
    assert seconds < 60, f"the job took {seconds:.0f} s to end"


@needs_mpi
def test_mismatched_trees_end_the_job_naming_the_paths(tmp_path):
    script = _script(tmp_path, """
        import numpy as np
        from funcnet import distributed
        w = distributed.init()
        grads = {"dense": {"w": np.ones((3, 4 + w.rank), np.float32)}, "b": np.ones(2)}
        distributed.allreduce(grads)
    """)
    done, seconds = mpirun(2, [sys.executable, script])
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "DistributedError" in output
    assert "['dense']['w']: float32[3,4] on rank 0, float32[3,5] on rank 1" in output
    assert seconds < 60


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@needs_mpi
def test_funcnet_train_distributed_follows_one_process_and_resumes(tmp_path):
    pytest.importorskip("sklearn")
    common = ["--epochs", "4", "--batch-size", "32", "--schedule", "constant", "--no-progress",
              "--out", str(tmp_path)]
    cli = [sys.executable, "-m", "funcnet", "train"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI"))}
    env["OPENBLAS_NUM_THREADS"] = "1"
    one = subprocess.run(cli + common + ["--name", "one"], capture_output=True, text=True,
                         timeout=240, env=env)
    assert one.returncode == 0, one.stderr
    # two processes, the first two epochs; then one process continues; then two finish
    first = common[:1] + ["2"] + common[2:]
    two, _ = mpirun(2, cli + first + ["--distributed", "--name", "two"])
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("test accuracy") == 1  # only the main process reports
    assert json.load(open(tmp_path / "two" / "config.json"))["processes"] == 2
    three = common[:1] + ["3"] + common[2:]
    mid = subprocess.run(cli + three + ["--name", "two", "--resume"], capture_output=True,
                         text=True, timeout=240, env=env)
    assert mid.returncode == 0, mid.stderr
    last, _ = mpirun(2, cli + common + ["--distributed", "--name", "two", "--resume"])
    assert last.returncode == 0, last.stdout + last.stderr
    a, b = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert [r["epoch"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)
        assert rb["test_loss"] == pytest.approx(ra["test_loss"], rel=1e-4)
        assert rb["step"] == ra["step"]
    assert sorted(os.listdir(tmp_path)) == ["one", "two"]


@needs_mpi
def test_the_main_process_checks_the_run_and_reports_once(tmp_path):
    done, seconds = mpirun(2, [sys.executable, "-m", "funcnet", "train", "--distributed",
                               "--resume", "--name", "missing", "--out", str(tmp_path)])
    assert done.returncode != 0
    assert done.stderr.count("cannot resume") == 1, done.stderr
    assert seconds < 60


@needs_mpi
def test_the_data_parallel_example_matches_its_one_process_run(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "data_parallel.py")
    one = subprocess.run([sys.executable, example, "--quick"], capture_output=True, text=True,
                         timeout=240, cwd=tmp_path,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert one.returncode == 0, one.stderr
    two, _ = mpirun(2, [sys.executable, example, "--quick", "--save", str(tmp_path / "p.npz")],
                    cwd=tmp_path)
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("RESULT data_parallel") == 1  # rank 0 reports

    def epochs(out):
        return [tuple(map(float, m)) for m in re.findall(
            r"^epoch\s+\d+\s+loss ([0-9.]+)\s+test acc ([0-9.]+)", out, re.M)]

    assert len(epochs(two.stdout)) == 3
    for (loss2, acc2), (loss1, acc1) in zip(epochs(two.stdout), epochs(one.stdout)):
        assert loss2 == pytest.approx(loss1, rel=1e-3) and acc2 == pytest.approx(acc1, abs=0.01)
    assert (tmp_path / "p.npz").exists()


@needs_mpi
def test_train_under_a_launcher_needs_the_distributed_flag(tmp_path):
    done, seconds = mpirun(2, [sys.executable, "-m", "funcnet", "train", "--epochs", "1",
                               "--out", str(tmp_path)])
    assert done.returncode == 2
    assert "add --distributed" in done.stderr
    assert not os.listdir(tmp_path)
