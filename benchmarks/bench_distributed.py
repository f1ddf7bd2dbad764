"""Distributed benchmarks: funcnet's allreduce against raw mpi4py, and data-parallel scaling.

Run from the repository root, without a launcher -- the script starts its
own MPI jobs with ``mpirun`` and prints one report::

    python benchmarks/bench_distributed.py
    python benchmarks/bench_distributed.py --quick          # short smoke run
    python benchmarks/bench_distributed.py --json out.json  # also write the numbers

(a) **Allreduce of a 25-million-parameter float32 gradient**, ``mpirun -n 2``
on one machine.  The gradient is a pytree of 16 float32 leaves (the layer
shapes of a wide MLP) holding 25,000,000 values.  Rows, in the same job:

- ``mpi4py Allreduce (one buffer)``: ``comm.Allreduce(MPI.IN_PLACE, buf)``
  on one preallocated 25M float32 buffer -- the baseline;
- ``funcnet allreduce, eager``: ``distributed.allreduce(tree, op="sum")``
  on the user's arrays, which it must leave untouched: the leaves are copied
  into one buffer, reduced, and returned as views of it;
- ``funcnet allreduce, in a jitted step``: the time ``allreduce`` adds to a
  compiled step that weights the gradient (``g * n``, as the data-parallel
  training step does) -- ``jit(lambda g, n: allreduce(map(g * n)))`` minus
  ``jit(lambda g, n: map(g * n))``.  In compiled code the weighting kernels
  write straight into one buffer and the collective reduces it in place;
- ``NumPy + mpi4py by hand``: the same weighting written into slices of one
  preallocated buffer, then ``Allreduce`` in place, minus the weighting;
- ``funcnet, inside training.make_train_step``: the data-parallel training
  step of a 24.9M-parameter MLP (2048-2048x5-1904, batch 16 per process),
  averaging across the processes minus the same step without averaging: the
  gradients are written by the backward pass straight into the buffers the
  collective reduces;
- PyTorch's ``torch.distributed.all_reduce`` (gloo backend, CPU) on one
  25M float32 tensor, when PyTorch is installed (it is never a dependency).

(b) **Scaling of the MNIST CNN training step** from 1 to 2 processes: the
network of ``bench_conv.py`` (conv 3x3x32 - relu - maxpool - conv 3x3x64 -
relu - maxpool - dense 10) as ``nn`` layers, ``training.make_train_step``
with SGD, a global batch of 128 28x28x1 images (64 per process with 2):
the time of one global step with ``mpirun -n 1`` and with ``mpirun -n 2``
(gradient averaging included), one BLAS thread per process.

Times are the minimum (and median) over ``--repeat`` repeats, measured on
rank 0 between barriers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

PARAMS = 25_000_000
# a wide MLP's layers: (in, out) weight matrices and biases, 25,000,000 values in all
LAYERS = [(2048, 2048)] * 5 + [(2048, 1904)]
CNN_BATCH = 128


def gradient_tree() -> dict:
    rng = np.random.default_rng(0)
    tree = {}
    for i, (n_in, n_out) in enumerate(LAYERS):
        tree[f"dense{i}"] = {"w": rng.standard_normal((n_in, n_out), dtype=np.float32),
                             "b": rng.standard_normal(n_out, dtype=np.float32)}
    total = sum(a.size for layer in tree.values() for a in layer.values())
    tree["rest"] = {"w": rng.standard_normal(PARAMS - total - 2048, dtype=np.float32),
                    "b": rng.standard_normal(2048, dtype=np.float32)}
    assert sum(a.size for layer in tree.values() for a in layer.values()) == PARAMS
    return tree


def timed(comm, fun, repeat: int) -> dict:
    """Per-call time of ``fun`` on rank 0, each call started together on every rank."""
    fun()
    runs = []
    for _ in range(repeat):
        comm.Barrier()
        start = time.perf_counter()
        fun()
        runs.append(time.perf_counter() - start)
    comm.Barrier()
    return {"min": min(runs), "median": statistics.median(runs)}


# ---------------------------------------------------------------------------
# workers (run inside an MPI job)


def worker_allreduce(repeat: int) -> dict:
    from mpi4py import MPI

    import funcnet as fn
    from funcnet import distributed

    comm = MPI.COMM_WORLD
    tree = gradient_tree()
    leaves = fn.tree.leaves(tree)
    n = np.float32(2.0)
    flat = np.empty(PARAMS, np.float32)

    # the result must be right before it is timed
    got = distributed.allreduce(tree, op="sum")
    np.testing.assert_allclose(fn.tree.leaves(got)[0][:4], leaves[0][:4] * comm.size)

    def raw():
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)

    def weight_by_hand():
        offset = 0
        for leaf in leaves:
            np.multiply(leaf, n, out=flat[offset:offset + leaf.size].reshape(leaf.shape))
            offset += leaf.size

    def by_hand():
        weight_by_hand()
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)

    weight = fn.jit(lambda g, s: fn.tree.map(lambda x: x * s, g))
    weight_and_reduce = fn.jit(lambda g, s: distributed.allreduce(
        fn.tree.map(lambda x: x * s, g), op="sum"))
    out = weight_and_reduce(tree, n)
    np.testing.assert_allclose(fn.tree.leaves(out)[0][:4], leaves[0][:4] * n * comm.size)

    rows = {
        "raw": timed(comm, raw, repeat),
        "eager": timed(comm, lambda: distributed.allreduce(tree, op="sum"), repeat),
        "jit_step": timed(comm, lambda: weight_and_reduce(tree, n), repeat),
        "jit_weight": timed(comm, lambda: weight(tree, n), repeat),
        "hand_step": timed(comm, by_hand, repeat),
        "hand_weight": timed(comm, weight_by_hand, repeat),
    }
    rows.update(training_step_rows(comm, repeat))
    torch_row = torch_allreduce(comm, flat, repeat)
    if torch_row is not None:
        rows["torch"] = torch_row
    return {"processes": comm.size, "rows": rows}


def training_step_rows(comm, repeat: int) -> dict:
    """``training.make_train_step`` on a 25M-parameter MLP, averaging across the processes
    and not: the difference is what the gradient exchange costs inside the real step."""
    from funcnet import nn, optim, random, training

    model = nn.models.MLP((2048,) * 5, num_classes=1904)
    _, params, state = model.init_with_state(random.key(0), (-1, 2048))
    count = sum(int(p.size) for p in fn_leaves(params))
    tx = optim.sgd(1e-3)
    opt_state = tx.init(params)
    rng = np.random.default_rng(comm.rank)
    batch = (rng.standard_normal((16, 2048), dtype=np.float32), rng.integers(0, 1904, 16))
    rows = {}
    for name, average in (("step_averaged", True), ("step_alone", False)):
        step = training.make_train_step(model, tx, average_across_processes=average)

        def one_step(step=step):
            out = step(params, state, opt_state, batch, random.key(1))
            float(out[3]["loss"])

        rows[name] = timed(comm, one_step, repeat)
    rows["step_averaged"]["parameters"] = count
    return rows


def fn_leaves(tree) -> list:
    import funcnet as fn

    return fn.tree.leaves(tree)


def torch_allreduce(comm, flat: np.ndarray, repeat: int) -> dict | None:
    """PyTorch's ``torch.distributed.all_reduce`` (gloo, CPU) on one tensor, if installed."""
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        return None
    import socket

    torch.set_num_threads(1)
    port = None
    if comm.rank == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    port = comm.bcast(port, root=0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=comm.rank,
                            world_size=comm.size)
    tensor = torch.from_numpy(flat.copy())
    row = timed(comm, lambda: dist.all_reduce(tensor), repeat)
    row["version"] = torch.__version__
    dist.destroy_process_group()
    return row


def cnn_model():
    from funcnet import nn

    return nn.serial(nn.Conv2D(32, (3, 3)), nn.Relu, nn.MaxPool2D((2, 2)),
                     nn.Conv2D(64, (3, 3)), nn.Relu, nn.MaxPool2D((2, 2)),
                     nn.Flatten, nn.Dense(10))


def worker_cnn(repeat: int) -> dict:
    from mpi4py import MPI

    from funcnet import distributed, optim, random, training

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    x = rng.normal(size=(CNN_BATCH, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=CNN_BATCH)
    model, tx = cnn_model(), optim.sgd(0.01)
    _, params, state = model.init_with_state(random.key(0), (-1, 28, 28, 1))
    step = training.make_train_step(model, tx)
    mine = distributed.shard((x, y))
    opt_state = tx.init(params)

    def one_step():
        out = step(params, state, opt_state, mine, random.key(1))
        float(out[3]["loss"])  # wait for the result

    return {"processes": comm.size, "per_process_batch": int(mine[0].shape[0]),
            "step": timed(comm, one_step, repeat)}


# ---------------------------------------------------------------------------
# the driver


def launch(processes: int, worker: str, repeat: int) -> dict:
    command = ["mpirun", "-n", str(processes), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-run-as-root")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # see benchmarks/README.md
        env.pop(name, None)
    done = subprocess.run(command + [sys.executable, __file__, "--worker", worker,
                                     "--repeat", str(repeat)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} {worker} failed:\n{done.stdout}\n{done.stderr}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def environment() -> dict:
    import mpi4py
    from mpi4py import MPI

    import funcnet as fn

    return {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "numpy": np.__version__, "funcnet": fn.__version__, "mpi4py": mpi4py.__version__,
            "mpi": MPI.Get_library_version().splitlines()[0].strip(),
            "cpus": os.cpu_count(), "machine": platform.machine()}


def report(env: dict, allreduce: dict, cnn: list) -> None:
    print(f"{env['date']}  python {env['python']}, numpy {env['numpy']}, mpi4py "
          f"{env['mpi4py']}, {env['mpi']}, {env['cpus']} CPUs")
    rows = allreduce["rows"]
    raw = rows["raw"]["min"]
    gigabytes = PARAMS * 4 / 1e9
    print(f"\n(a) allreduce of a {PARAMS:,}-value float32 gradient (16 leaves), "
          f"mpirun -n {allreduce['processes']}")
    print(f"{'':40} {'min ms':>8} {'median ms':>10} {'GB/s':>6} {'vs raw':>7}")

    def line(label, lo, med):
        print(f"{label:40} {lo * 1e3:8.1f} {med * 1e3:10.1f} {gigabytes / lo:6.2f} "
              f"{raw / lo:6.2f}x")

    line("mpi4py Allreduce (one buffer)", raw, rows["raw"]["median"])
    line("funcnet allreduce, eager (copies)", rows["eager"]["min"], rows["eager"]["median"])
    jit_min = rows["jit_step"]["min"] - rows["jit_weight"]["min"]
    jit_med = rows["jit_step"]["median"] - rows["jit_weight"]["median"]
    line("funcnet allreduce, in a jitted step", jit_min, jit_med)
    hand_min = rows["hand_step"]["min"] - rows["hand_weight"]["min"]
    hand_med = rows["hand_step"]["median"] - rows["hand_weight"]["median"]
    line("NumPy + mpi4py by hand, same step", hand_min, hand_med)
    step_min = rows["step_averaged"]["min"] - rows["step_alone"]["min"]
    step_med = rows["step_averaged"]["median"] - rows["step_alone"]["median"]
    line("funcnet, inside training.make_train_step", step_min, step_med)
    if "torch" in rows:
        line(f"PyTorch {rows['torch']['version']} all_reduce (gloo)", rows["torch"]["min"],
             rows["torch"]["median"])
    print(f"   (whole jitted step {rows['jit_step']['min'] * 1e3:.1f} ms, its weighting alone "
          f"{rows['jit_weight']['min'] * 1e3:.1f} ms; by hand "
          f"{rows['hand_step']['min'] * 1e3:.1f} / {rows['hand_weight']['min'] * 1e3:.1f} ms; "
          f"training step on a {rows['step_averaged']['parameters']:,}-parameter MLP, batch 16 "
          f"per process: {rows['step_averaged']['min'] * 1e3:.1f} ms averaged across the "
          f"processes, {rows['step_alone']['min'] * 1e3:.1f} ms alone)")
    print(f"\n(b) MNIST CNN training step, global batch {CNN_BATCH}, one BLAS thread per process")
    base = cnn[0]["step"]["min"]
    for r in cnn:
        s = r["step"]
        print(f"  {r['processes']} process{'es' if r['processes'] > 1 else '  '} "
              f"({r['per_process_batch']:>3} examples each): {s['min'] * 1e3:7.1f} ms "
              f"(median {s['median'] * 1e3:7.1f}), speed-up {base / s['min']:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["allreduce", "cnn"], help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a few repeats (a smoke run)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.worker:
        result = {"allreduce": worker_allreduce, "cnn": worker_cnn}[args.worker](args.repeat)
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    if shutil.which("mpirun") is None:
        print("mpirun not found: install Open MPI (Debian: apt-get install openmpi-bin "
              "libopenmpi-dev) and pip install 'funcnet[mpi]'", file=sys.stderr)
        return 1
    repeat = args.repeat or (3 if args.quick else 15)
    env = environment()
    allreduce = launch(2, "allreduce", repeat)
    cnn = [launch(n, "cnn", repeat) for n in (1, 2)]
    report(env, allreduce, cnn)
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "allreduce": allreduce,
                                               "cnn": cnn}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
