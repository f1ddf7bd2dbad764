"""GPU training steps: funcnet on the cupy backend against PyTorch and JAX on the same GPU.

Two measurements, float32, each a whole training step (forward, backward,
SGD update), compiled where the framework compiles:

a. **MLP step**: 784-1024-1024-10 ReLU MLP, softmax cross-entropy, batch 512
   (``--quick``: batch 128).
b. **CNN step**: NHWC 32x32x3 images, conv3x3(32)-ReLU-maxpool2 ->
   conv3x3(64)-ReLU-maxpool2 -> dense(10), softmax cross-entropy, batch 64
   (``--quick``: batch 16).

Rows: ``funcnet jit`` (``fn.jit`` of ``fn.value_and_grad``: fused elementwise
kernels + cuBLAS), ``funcnet eager`` (MLP only), ``PyTorch`` (eager autograd,
cuDNN convolutions) and ``JAX`` (``jax.jit``), where installed with GPU
support.  Every framework starts from the same parameters and data; before
timing, each step's loss and gradients are checked against funcnet's (a fast
wrong gradient is not a result).  TF32 is off everywhere (CuPy does not use
it unless ``CUPY_TF32=1``; PyTorch's cuDNN and JAX's default matmul precision
would), so all rows compute in full float32.

Run on a machine with an NVIDIA GPU, from the repository root::

    python benchmarks/bench_gpu.py --quick          # a smoke run (seconds)
    python benchmarks/bench_gpu.py --json out.json  # full sizes, numbers saved

Times are per step: the minimum and median over ``--repeat`` repeats of a
loop of ``--steps`` steps, the device synchronised around each loop.
``ratio`` is the row's median over funcnet jit's median, measured in the same
run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: share the GPU

import funcnet as fn  # noqa: E402
import funcnet.numpy as fnp  # noqa: E402
from funcnet import lax  # noqa: E402

LR = 0.01


# ---------------------------------------------------------------------------
# Models, written once per framework from the same NumPy parameters


def mlp_params(rng, sizes):
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"w{i}"] = (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
        p[f"b{i}"] = np.zeros(b, np.float32)
    return p


def cnn_params(rng):
    return {"k0": (rng.standard_normal((3, 3, 3, 32)) * np.sqrt(2 / 27)).astype(np.float32),
            "c0": np.zeros(32, np.float32),
            "k1": (rng.standard_normal((3, 3, 32, 64)) * np.sqrt(2 / 288)).astype(np.float32),
            "c1": np.zeros(64, np.float32),
            "w": (rng.standard_normal((8 * 8 * 64, 10)) * np.sqrt(1 / 4096)).astype(np.float32),
            "b": np.zeros(10, np.float32)}


def _xent(logits, onehot):
    z = logits - fnp.max(logits, axis=1, keepdims=True)
    logp = z - fnp.log(fnp.sum(fnp.exp(z), axis=1, keepdims=True))
    return -fnp.mean(fnp.sum(onehot * logp, axis=1))


def fn_mlp_loss(p, x, onehot):
    n = len(p) // 2
    h = x
    for i in range(n - 1):
        h = fnp.maximum(h @ p[f"w{i}"] + p[f"b{i}"], 0.0)
    return _xent(h @ p[f"w{n - 1}"] + p[f"b{n - 1}"], onehot)


def fn_cnn_loss(p, x, onehot):
    h = fnp.maximum(lax.conv(x, p["k0"], padding="SAME") + p["c0"], 0.0)
    h = lax.max_pool(h, (2, 2), strides=(2, 2))
    h = fnp.maximum(lax.conv(h, p["k1"], padding="SAME") + p["c1"], 0.0)
    h = lax.max_pool(h, (2, 2), strides=(2, 2))
    return _xent(h.reshape(h.shape[0], -1) @ p["w"] + p["b"], onehot)


def fn_step(loss):
    def step(p, x, onehot):
        value, grads = fn.value_and_grad(loss)(p, x, onehot)
        return value, fn.tree.map(lambda w, g: w - LR * g, p, grads), grads

    return step


def torch_steps(torch, kind):
    F = torch.nn.functional

    def mlp_loss(p, x, onehot):
        n = len(p) // 2
        h = x
        for i in range(n - 1):
            h = torch.relu(h @ p[f"w{i}"] + p[f"b{i}"])
        logits = h @ p[f"w{n - 1}"] + p[f"b{n - 1}"]
        return -(onehot * torch.log_softmax(logits, dim=1)).sum(1).mean()

    def cnn_loss(p, x, onehot):  # NCHW inside, the same function as funcnet's NHWC one
        h = x.permute(0, 3, 1, 2)
        h = torch.relu(F.conv2d(h, p["k0"].permute(3, 2, 0, 1), p["c0"], padding=1))
        h = F.max_pool2d(h, 2)
        h = torch.relu(F.conv2d(h, p["k1"].permute(3, 2, 0, 1), p["c1"], padding=1))
        h = F.max_pool2d(h, 2).permute(0, 2, 3, 1).reshape(h.shape[0], -1)
        logits = h @ p["w"] + p["b"]
        return -(onehot * torch.log_softmax(logits, dim=1)).sum(1).mean()

    loss = mlp_loss if kind == "mlp" else cnn_loss

    def step(p, x, onehot):
        for v in p.values():
            v.grad = None
        value = loss(p, x, onehot)
        value.backward()
        with torch.no_grad():
            new = {k: v - LR * v.grad for k, v in p.items()}
        grads = {k: v.grad for k, v in p.items()}
        return value.detach(), new, grads

    return step


def jax_step(jax, kind):
    jnp = jax.numpy

    def xent(logits, onehot):
        return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits, axis=1), axis=1))

    def mlp_loss(p, x, onehot):
        n = len(p) // 2
        h = x
        for i in range(n - 1):
            h = jax.nn.relu(h @ p[f"w{i}"] + p[f"b{i}"])
        return xent(h @ p[f"w{n - 1}"] + p[f"b{n - 1}"], onehot)

    def conv(h, k):
        return jax.lax.conv_general_dilated(h, k, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                     "VALID")

    def cnn_loss(p, x, onehot):
        h = pool(jax.nn.relu(conv(x, p["k0"]) + p["c0"]))
        h = pool(jax.nn.relu(conv(h, p["k1"]) + p["c1"]))
        return xent(h.reshape(h.shape[0], -1) @ p["w"] + p["b"], onehot)

    loss = mlp_loss if kind == "mlp" else cnn_loss

    @jax.jit
    def step(p, x, onehot):
        value, grads = jax.value_and_grad(loss)(p, x, onehot)
        return value, jax.tree_util.tree_map(lambda w, g: w - LR * g, p, grads), grads

    return step


# ---------------------------------------------------------------------------
# Timing


def time_steps(run, sync, steps: int, repeat: int) -> dict:
    """Per-step seconds over ``repeat`` loops of ``steps`` steps (the device synced)."""
    run()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        sync()
        times.append((time.perf_counter() - t0) / steps)
    return {"min": min(times), "median": statistics.median(times), "steps": steps}


def _close(name, got, want, rtol=2e-3):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-6)
    err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    if not err <= rtol:
        raise AssertionError(f"{name}: differs from funcnet by {err:.2e} (relative to max |x|)")
    return err


def bench(kind: str, args, frameworks) -> list[dict]:
    rng = np.random.default_rng(0)
    if kind == "mlp":
        batch = 128 if args.quick else args.batch
        params = mlp_params(rng, (784, 1024, 1024, 10))
        x = rng.standard_normal((batch, 784)).astype(np.float32)
        loss = fn_mlp_loss
    else:
        batch = 16 if args.quick else max(args.batch // 8, 1)
        params = cnn_params(rng)
        x = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)
        loss = fn_cnn_loss
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    steps = 5 if args.quick else args.steps
    repeat = 3 if args.quick else args.repeat
    rows = []

    backend = fn.set_backend("cupy")
    sync = backend.synchronize
    dp = fn.device_put(params)
    dx, dy = backend.asarray(x), backend.asarray(onehot)
    step = fn.jit(fn_step(loss))
    ref_loss, _, ref_grads = step(dp, dx, dy)
    ref_loss = float(fn.to_numpy(ref_loss))
    ref_grads = {k: fn.to_numpy(v) for k, v in ref_grads.items()}
    graph = step.lower(dp, dx, dy)
    from funcnet.transforms.jit import compiled_for

    n_fused = len(compiled_for(graph).fused_kernels)
    rows.append(dict(name="funcnet jit (cupy)", fused_kernels=n_fused,
                     equations=len(graph.eqns),
                     **time_steps(lambda: step(dp, dx, dy), sync, steps, repeat)))
    if kind == "mlp":
        eager = fn_step(loss)
        rows.append(dict(name="funcnet eager (cupy)",
                         **time_steps(lambda: eager(dp, dx, dy), sync, steps, repeat)))
    fn.set_backend("numpy")

    torch = frameworks.get("torch")
    if torch is not None:
        dev = torch.device("cuda")
        tp = {k: torch.tensor(v, device=dev, requires_grad=True) for k, v in params.items()}
        tx, ty = torch.tensor(x, device=dev), torch.tensor(onehot, device=dev)
        tstep = torch_steps(torch, kind)
        v, _, g = tstep(tp, tx, ty)
        err = max(_close("PyTorch loss", v.item(), ref_loss),
                  *[_close(f"PyTorch grad {k}", g[k].cpu().numpy(), ref_grads[k])
                    for k in params])
        rows.append(dict(name="PyTorch eager (cuDNN)", max_rel_diff=err,
                         **time_steps(lambda: tstep(tp, tx, ty), torch.cuda.synchronize,
                                      steps, repeat)))
    jax = frameworks.get("jax")
    if jax is not None:
        jp = jax.device_put(params)
        jx, jy = jax.device_put(x), jax.device_put(onehot)
        jstep = jax_step(jax, kind)
        v, _, g = jstep(jp, jx, jy)
        err = max(_close("JAX loss", float(v), ref_loss),
                  *[_close(f"JAX grad {k}", np.asarray(g[k]), ref_grads[k]) for k in params])

        def run():
            out = jstep(jp, jx, jy)
            run.last = out

        def jsync():
            jax.block_until_ready(run.last)

        run()
        rows.append(dict(name="JAX jit (XLA)", max_rel_diff=err,
                         **time_steps(run, jsync, steps, repeat)))
    base = rows[0]["median"]
    for r in rows:
        r["ratio"] = r["median"] / base
        r["group"] = f"{kind.upper()} step (batch {batch})"
    return rows


def load_frameworks(enabled: bool) -> dict:
    """PyTorch and JAX, where installed with GPU support (and wanted)."""
    out = {}
    if not enabled:
        return out
    try:
        import torch

        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
            out["torch"] = torch
    except ImportError:
        pass
    try:
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            jax.config.update("jax_default_matmul_precision", "highest")
            out["jax"] = jax
    except Exception:  # not installed, or no GPU plugin
        pass
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    ap.add_argument("--batch", type=int, default=512, help="MLP batch (CNN: batch / 8)")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed loop")
    ap.add_argument("--repeat", type=int, default=5, help="timed loops per row")
    ap.add_argument("--no-frameworks", action="store_true", help="skip PyTorch and JAX")
    ap.add_argument("--json", type=Path, help="also write every number to this file")
    args = ap.parse_args(argv)
    try:
        backend = fn.backends.load("cupy")
    except fn.backends.BackendUnavailable as e:
        print(f"bench_gpu: the cupy backend is not usable here: {e}")
        return 2
    cp = backend.cp
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    frameworks = load_frameworks(not args.no_frameworks)
    info = {"date": datetime.date.today().isoformat(), "gpu": gpu, "cupy": cp.__version__,
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": getattr(frameworks.get("torch"), "__version__", None),
            "jax": getattr(frameworks.get("jax"), "__version__", None)}
    print("  ".join(f"{k}={v}" for k, v in info.items()))
    rows = bench("mlp", args, frameworks) + bench("cnn", args, frameworks)
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            print(f"\n{group}")
            print(f"  {'':28s} {'min ms':>9s} {'median ms':>10s} {'x funcnet':>10s}")
        extra = (f"  ({r['fused_kernels']} fused kernels, {r['equations']} equations)"
                 if "fused_kernels" in r else "")
        print(f"  {r['name']:28s} {1e3 * r['min']:9.3f} {1e3 * r['median']:10.3f} "
              f"{r['ratio']:10.2f}{extra}")
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
