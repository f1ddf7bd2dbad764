"""CNN training-step benchmark: funcnet's convolution and pooling against NumPy by hand.

The network (channels-last, float32, batch 64 of 28x28x1 images)::

    conv 3x3x32 (SAME) - relu - maxpool 2 - conv 3x3x64 (SAME) - relu - maxpool 2
    - dense 10 - softmax cross-entropy (mean over the batch)

One step is the loss, its gradient with respect to every parameter, and a
plain SGD update.  Rows, all measured in the same run:

- ``funcnet jit``: ``fn.jit(fn.value_and_grad(loss))`` (steady state, after
  the first call traced and compiled it), then the update with ``fn.tree.map``;
- ``funcnet eager``: the same without ``jit``;
- ``NumPy by hand``: the same network's forward and backward pass written
  directly in NumPy (im2col with a strided view and one matmul per
  convolution, col2im by the nine kernel offsets, pooling by reshapes);
- JAX (``jax.jit``) and PyTorch (eager autograd) when installed.

The first step's losses and gradients of funcnet and of the NumPy version are
compared before timing.  Run from the repository root::

    python benchmarks/bench_conv.py
    python benchmarks/bench_conv.py --quick            # short smoke run
    python benchmarks/bench_conv.py --json out.json    # also write the numbers

Times are per step: the minimum and the median over ``--repeat`` repeats.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import funcnet as fn  # noqa: E402
import funcnet.numpy as fnp  # noqa: E402
from funcnet.ops.convolution import conv, max_pool  # noqa: E402

BATCH, SIZE, CLASSES = 64, 28, 10
LR = 0.01

# ---------------------------------------------------------------------------
# Timing


class Timer:
    """Per-call minimum and median of ``fun()`` in seconds."""

    def __init__(self, repeat: int, min_time: float):
        self.repeat = repeat
        self.min_time = min_time

    def __call__(self, fun) -> dict:
        fun()  # warm up
        t = timeit.Timer(fun)
        elapsed = t.timeit(1)
        number = max(1, round(self.min_time / max(elapsed, 1e-9)))
        runs = [x / number for x in t.repeat(repeat=self.repeat, number=number)]
        return {"min": min(runs), "median": statistics.median(runs), "number": number}


# ---------------------------------------------------------------------------
# Data and parameters


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, SIZE, SIZE, 1)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=BATCH)
    he = lambda shape, fan_in: (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(
        np.float32)  # noqa: E731
    params = {
        "w1": he((3, 3, 1, 32), 9), "b1": np.zeros(32, np.float32),
        "w2": he((3, 3, 32, 64), 9 * 32), "b2": np.zeros(64, np.float32),
        "w3": he((7 * 7 * 64, CLASSES), 7 * 7 * 64), "b3": np.zeros(CLASSES, np.float32),
    }
    onehot = np.eye(CLASSES, dtype=np.float32)[y]
    return params, x, onehot


# ---------------------------------------------------------------------------
# funcnet


def funcnet_loss(params, x, onehot):
    h = fnp.maximum(conv(x, params["w1"], padding="SAME") + params["b1"], 0.0)
    h = max_pool(h, (2, 2))
    h = fnp.maximum(conv(h, params["w2"], padding="SAME") + params["b2"], 0.0)
    h = max_pool(h, (2, 2))
    logits = fnp.reshape(h, (h.shape[0], -1)) @ params["w3"] + params["b3"]
    shifted = logits - fn.stop_gradient(fnp.max(logits, axis=1, keepdims=True))
    logp = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=1, keepdims=True))
    return -fnp.sum(logp * onehot) / logits.shape[0]


def funcnet_step(value_and_grad):
    def step(params, x, onehot):
        loss, grads = value_and_grad(params, x, onehot)
        return fn.tree.map(lambda p, g: p - LR * g, params, grads), loss

    return step


# ---------------------------------------------------------------------------
# NumPy by hand


def _im2col(x):
    """3x3 SAME patches of NHWC ``x`` as a (N*H*W, 9*C) matrix (one copy)."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, 9 * c)


def _col2im(cols, shape):
    """Adjoint of ``_im2col``: add each patch entry back to its pixel."""
    n, h, w, c = shape
    cols = cols.reshape(n, h, w, 3, 3, c)
    out = np.zeros((n, h + 2, w + 2, c), cols.dtype)
    for i in range(3):
        for j in range(3):
            out[:, i:i + h, j:j + w, :] += cols[:, :, :, i, j, :]
    return out[:, 1:-1, 1:-1, :]


def _conv_fwd(x, w, b):
    cols = _im2col(x)
    out = cols @ w.reshape(-1, w.shape[-1]) + b
    return out.reshape(x.shape[:3] + (w.shape[-1],)), cols


def _pool_fwd(x):
    n, h, w, c = x.shape
    v = x.reshape(n, h // 2, 2, w // 2, 2, c)
    out = v.max(axis=(2, 4))
    return out


def _pool_bwd(dout, x, out):
    n, h, w, c = x.shape
    v = x.reshape(n, h // 2, 2, w // 2, 2, c)
    mask = v == out[:, :, None, :, None, :]
    return (mask * dout[:, :, None, :, None, :]).reshape(x.shape)


def numpy_value_and_grad(params, x, onehot):
    w1, b1, w2, b2, w3, b3 = (params[k] for k in ("w1", "b1", "w2", "b2", "w3", "b3"))
    z1, cols1 = _conv_fwd(x, w1, b1)
    a1 = np.maximum(z1, 0)
    p1 = _pool_fwd(a1)
    z2, cols2 = _conv_fwd(p1, w2, b2)
    a2 = np.maximum(z2, 0)
    p2 = _pool_fwd(a2)
    flat = p2.reshape(p2.shape[0], -1)
    logits = flat @ w3 + b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.sum((shifted - np.log(s)) * onehot) / n
    dlogits = (e / s - onehot) / n
    g = {"w3": flat.T @ dlogits, "b3": dlogits.sum(axis=0)}
    dp2 = (dlogits @ w3.T).reshape(p2.shape)
    dz2 = _pool_bwd(dp2, a2, p2) * (z2 > 0)
    dz2m = dz2.reshape(-1, dz2.shape[-1])
    g["w2"] = (cols2.T @ dz2m).reshape(w2.shape)
    g["b2"] = dz2m.sum(axis=0)
    dp1 = _col2im(dz2m @ w2.reshape(-1, w2.shape[-1]).T, p1.shape)
    dz1 = _pool_bwd(dp1, a1, p1) * (z1 > 0)
    dz1m = dz1.reshape(-1, dz1.shape[-1])
    g["w1"] = (cols1.T @ dz1m).reshape(w1.shape)
    g["b1"] = dz1m.sum(axis=0)
    return np.float32(loss), g


def numpy_step(params, x, onehot):
    loss, grads = numpy_value_and_grad(params, x, onehot)
    return {k: p - LR * grads[k] for k, p in params.items()}, loss


# ---------------------------------------------------------------------------
# Optional frameworks (not installed here; rows appear when they are)


def framework_rows(timer, params, x, onehot) -> list[dict]:
    rows = []
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_platforms", "cpu")

        def jloss(p, x, oh):
            dn = ("NHWC", "HWIO", "NHWC")
            h = jax.lax.conv_general_dilated(x, p["w1"], (1, 1), "SAME", dimension_numbers=dn)
            h = jax.nn.relu(h + p["b1"])
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
            h = jax.lax.conv_general_dilated(h, p["w2"], (1, 1), "SAME", dimension_numbers=dn)
            h = jax.nn.relu(h + p["b2"])
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
            logits = h.reshape(h.shape[0], -1) @ p["w3"] + p["b3"]
            return -jnp.sum(jax.nn.log_softmax(logits) * oh) / logits.shape[0]

        @jax.jit
        def jstep(p, x, oh):
            loss, g = jax.value_and_grad(jloss)(p, x, oh)
            return jax.tree.map(lambda a, b: a - LR * b, p, g), loss

        jp = {k: jnp.asarray(v) for k, v in params.items()}
        jx, joh = jnp.asarray(x), jnp.asarray(onehot)
        rows.append(dict(name="JAX jit", **timer(
            lambda: jax.block_until_ready(jstep(jp, jx, joh)))))
    except ImportError:
        pass
    try:
        import torch

        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        toh = torch.from_numpy(onehot)

        def tstep():
            w1 = tp["w1"].permute(3, 2, 0, 1)
            w2 = tp["w2"].permute(3, 2, 0, 1)
            h = torch.relu(torch.nn.functional.conv2d(tx, w1, tp["b1"], padding=1))
            h = torch.nn.functional.max_pool2d(h, 2)
            h = torch.relu(torch.nn.functional.conv2d(h, w2, tp["b2"], padding=1))
            h = torch.nn.functional.max_pool2d(h, 2).permute(0, 2, 3, 1).reshape(BATCH, -1)
            logits = h @ tp["w3"] + tp["b3"]
            loss = -(torch.log_softmax(logits, 1) * toh).sum() / BATCH
            grads = torch.autograd.grad(loss, list(tp.values()))
            with torch.no_grad():
                return [p - LR * g for p, g in zip(tp.values(), grads)], loss

        rows.append(dict(name="PyTorch eager", **timer(tstep)))
    except ImportError:
        pass
    return rows


# ---------------------------------------------------------------------------
# Report


def check_agreement(params, x, onehot) -> float:
    """Largest relative gradient difference between funcnet and the NumPy version."""
    loss_f, g_f = fn.value_and_grad(funcnet_loss)(params, x, onehot)
    loss_n, g_n = numpy_value_and_grad(params, x, onehot)
    np.testing.assert_allclose(loss_f, loss_n, rtol=1e-4)
    worst = 0.0
    for k in params:
        scale = np.abs(g_n[k]).max() + 1e-12
        worst = max(worst, float(np.abs(g_f[k] - g_n[k]).max() / scale))
    assert worst < 1e-3, f"funcnet and NumPy gradients differ: {worst:.2e}"
    _, g_jit = fn.jit(fn.value_and_grad(funcnet_loss))(params, x, onehot)
    wrong = sorted(k for k, v in g_jit.items() if v.dtype != params[k].dtype)
    if wrong:  # the step then runs (part of) its backward pass in float64
        print(f"warning: jit gradients of {wrong} are not float32: "
              f"{ {k: str(g_jit[k].dtype) for k in wrong} }")
    return worst


def environment() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "funcnet": fn.__version__,
        "backend": fn.get_backend().name,
    }


def run(timer: Timer) -> list[dict]:
    params, x, onehot = make_problem()
    worst = check_agreement(params, x, onehot)
    jit_step = funcnet_step(fn.jit(fn.value_and_grad(funcnet_loss)))
    eager_step = funcnet_step(fn.value_and_grad(funcnet_loss))
    rows = [
        dict(name="NumPy by hand (im2col)", **timer(lambda: numpy_step(params, x, onehot))),
        dict(name="funcnet jit(value_and_grad)", **timer(lambda: jit_step(params, x, onehot))),
        dict(name="funcnet eager value_and_grad", **timer(
            lambda: eager_step(params, x, onehot))),
    ]
    rows += framework_rows(timer, params, x, onehot)
    base = rows[0]["min"]
    for r in rows:
        r["ratio"] = r["min"] / base
        r["baseline"] = rows[0]["name"]
    rows[0]["max_rel_grad_diff_vs_funcnet"] = worst
    return rows


def print_report(env: dict, rows: list[dict]) -> None:
    print(f"CNN training step, batch {BATCH}x{SIZE}x{SIZE}x1 float32 "
          f"(numpy {env['numpy']}, {env['cpus']} CPUs, backend {env['backend']})")
    print(f"    {'':34s} {'min ms':>9s} {'median ms':>10s} {'vs NumPy':>9s}")
    for r in rows:
        print(f"    {r['name']:34s} {r['min'] * 1e3:9.2f} {r['median'] * 1e3:10.2f} "
              f"{r['ratio']:8.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds each repeat runs (about)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.min_time = 2, 0.05
    env = environment()
    rows = run(Timer(args.repeat, args.min_time))
    print_report(env, rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "cnn_step": rows}, indent=2)
                                   + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
