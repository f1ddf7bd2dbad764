"""Transform benchmarks (the vmap/jit issue): each against hand-written NumPy in the same run.

a. **MLP step**: ``jit`` of one SGD step (loss, gradient, update) of a
   784-512-512-10 ReLU MLP, batch 128, float32, softmax cross-entropy,
   against a hand-written NumPy step that uses preallocated buffers.
b. **per-example gradients**: ``jit(vmap(grad))`` of a 784-128-10 MLP on a
   batch of 64, against hand-written NumPy (a broadcast outer product).
c. **trace + compile** of ``jit(grad(loss))`` for a 16-layer, 256-wide tanh
   MLP (first call), and its steady-state call.
e. **RNN**: forward + backward of a tanh RNN (hidden 128, input 32, 100
   steps, batch 32) through ``lax.scan``, jitted, against hand-written NumPy
   back-propagation through time.

(The CNN step, d, is ``benchmarks/bench_conv.py``.)  JAX and PyTorch rows
are added when they are installed.  Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_transforms.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import funcnet as fn  # noqa: E402
import funcnet.numpy as fnp  # noqa: E402
from bench_core import Timer, environment  # noqa: E402
from funcnet import lax  # noqa: E402

F32 = np.float32


def init_mlp(rng, sizes, scale=None):
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        s = scale if scale is not None else np.sqrt(2.0 / a)
        params.append({"w": (rng.standard_normal((a, b)) * s).astype(F32),
                       "b": np.zeros(b, F32)})
    return params


def xent(logits, onehot):
    m = fn.stop_gradient(fnp.max(logits, axis=-1, keepdims=True))
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=-1, keepdims=True)) + m
    return -fnp.mean(fnp.sum(onehot * (logits - lse), axis=-1))


def relu_mlp(params, x):
    for layer in params[:-1]:
        x = fnp.maximum(x @ layer["w"] + layer["b"], 0.0)
    return x @ params[-1]["w"] + params[-1]["b"]


# ---------------------------------------------------------------------------
# (a) MLP training step


def bench_mlp_step(timer):
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = init_mlp(rng, sizes)
    x = rng.standard_normal((128, 784)).astype(F32)
    onehot = np.eye(10, dtype=F32)[rng.integers(0, 10, 128)]
    lr = F32(0.01)

    @fn.jit
    def step(params, x, onehot):
        loss, g = fn.value_and_grad(lambda p: xent(relu_mlp(p, x), onehot))(params)
        return fn.tree.map(lambda p, d: p - lr * d, params, g), loss

    # hand-written NumPy with preallocated buffers
    B = x.shape[0]
    z = [np.empty((B, n), F32) for n in sizes[1:]]
    dz = [np.empty((B, n), F32) for n in sizes[1:]]
    gw = [np.empty((a, b), F32) for a, b in zip(sizes[:-1], sizes[1:])]
    np_params = [{k: v.copy() for k, v in layer.items()} for layer in params]

    def np_step():
        h = x
        acts = [x]
        for i, layer in enumerate(np_params):
            np.matmul(h, layer["w"], out=z[i])
            z[i] += layer["b"]
            if i < len(np_params) - 1:
                np.maximum(z[i], 0, out=z[i])
            h = z[i]
            acts.append(h)
        logits = z[-1]
        m = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        np.divide(e, s, out=dz[-1])
        dz[-1] -= onehot
        dz[-1] /= B
        for i in range(len(np_params) - 1, -1, -1):
            np.matmul(acts[i].T, dz[i], out=gw[i])
            gb = dz[i].sum(axis=0)
            if i > 0:
                np.matmul(dz[i], np_params[i]["w"].T, out=dz[i - 1])
                dz[i - 1] *= acts[i] > 0
            np_params[i]["w"] -= lr * gw[i]
            np_params[i]["b"] -= lr * gb

    state = {"p": params}

    def fn_step():
        state["p"], _ = step(state["p"], x, onehot)

    t_fn = timer(fn_step)
    t_np = timer(np_step)
    return {"name": "(a) MLP 784-512-512-10 jit SGD step, batch 128",
            "funcnet_ms": t_fn["min"] * 1e3, "numpy_ms": t_np["min"] * 1e3,
            "ratio": t_fn["min"] / t_np["min"], "target": "<= 1.0x hand-written NumPy"}


# ---------------------------------------------------------------------------
# (b) per-example gradients


def bench_per_example(timer):
    rng = np.random.default_rng(1)
    params = init_mlp(rng, [784, 128, 10])
    x = rng.standard_normal((64, 784)).astype(F32)
    onehot = np.eye(10, dtype=F32)[rng.integers(0, 10, 64)]

    def loss(p, xi, yi):
        return xent(relu_mlp(p, xi[None]), yi[None])

    per_ex = fn.jit(fn.vmap(fn.grad(loss), in_axes=(None, 0, 0)))
    w1, b1, w2, b2 = params[0]["w"], params[0]["b"], params[1]["w"], params[1]["b"]

    def np_per_example():
        z1 = x @ w1 + b1
        h = np.maximum(z1, 0)
        logits = h @ w2 + b2
        e = np.exp(logits - logits.max(1, keepdims=True))
        d2 = e / e.sum(1, keepdims=True) - onehot
        g_w2 = h[:, :, None] * d2[:, None, :]
        d1 = (d2 @ w2.T) * (z1 > 0)
        g_w1 = x[:, :, None] * d1[:, None, :]
        return g_w1, d1, g_w2, d2

    got = per_ex(params, x, onehot)
    ref = np_per_example()
    err = float(np.max(np.abs(got[0]["w"] - ref[0])))
    t_fn = timer(lambda: per_ex(params, x, onehot))
    t_np = timer(np_per_example)
    return {"name": "(b) per-example grads vmap(grad) 784-128-10, batch 64",
            "funcnet_ms": t_fn["min"] * 1e3, "numpy_ms": t_np["min"] * 1e3,
            "ratio": t_fn["min"] / t_np["min"], "max_abs_err": err,
            "target": "<= 0.6x JAX jit(vmap(grad)); NumPy broadcast outer product ~0.5x JAX"}


# ---------------------------------------------------------------------------
# (c) trace + compile


def bench_compile(timer):
    rng = np.random.default_rng(2)
    params = init_mlp(rng, [256] * 17, scale=1 / 16)
    x = rng.standard_normal((32, 256)).astype(F32)

    def loss(p):
        h = x
        for layer in p:
            h = fnp.tanh(h @ layer["w"] + layer["b"])
        return fnp.mean(h ** 2)

    t0 = time.perf_counter()
    f = fn.jit(fn.grad(loss))
    f(params)
    first = time.perf_counter() - t0
    steady = timer(lambda: f(params))
    eager = timer(lambda: fn.grad(loss)(params))
    return {"name": "(c) jit(grad) 16-layer 256-wide tanh MLP, batch 32",
            "trace_compile_first_call_ms": first * 1e3, "steady_ms": steady["min"] * 1e3,
            "eager_grad_ms": eager["min"] * 1e3,
            "target": "compile <= 0.25x JAX first call; steady <= 1.5x JAX"}


# ---------------------------------------------------------------------------
# (e) RNN through scan


def bench_rnn(timer):
    rng = np.random.default_rng(3)
    H, I, T, B = 128, 32, 100, 32
    p = {"W": (rng.standard_normal((H, H)) / np.sqrt(H)).astype(F32),
         "U": (rng.standard_normal((I, H)) / np.sqrt(I)).astype(F32),
         "b": np.zeros(H, F32)}
    xs = rng.standard_normal((T, B, I)).astype(F32)

    def loss(p, xs):
        def step(h, x):
            h = fnp.tanh(h @ p["W"] + x @ p["U"] + p["b"])
            return h, None

        h, _ = lax.scan(step, fnp.zeros((B, H), F32), xs)
        return fnp.sum(h ** 2)

    g = fn.jit(fn.value_and_grad(loss))

    def np_bptt():
        hs = np.empty((T + 1, B, H), F32)
        hs[0] = 0
        for t in range(T):
            hs[t + 1] = np.tanh(hs[t] @ p["W"] + xs[t] @ p["U"] + p["b"])
        loss_val = np.sum(hs[-1] ** 2)
        dh = 2 * hs[-1]
        gW = np.zeros_like(p["W"])
        gU = np.zeros_like(p["U"])
        gb = np.zeros_like(p["b"])
        for t in range(T - 1, -1, -1):
            dz = dh * (1 - hs[t + 1] ** 2)
            gW += hs[t].T @ dz
            gU += xs[t].T @ dz
            gb += dz.sum(0)
            dh = dz @ p["W"].T
        return loss_val, gW, gU, gb

    (lv, grads) = g(p, xs)
    ref = np_bptt()
    err = float(np.max(np.abs(grads["W"] - ref[1])) / (np.max(np.abs(ref[1])) + 1e-12))
    t_fn = timer(lambda: g(p, xs))
    t_np = timer(np_bptt)
    return {"name": "(e) tanh RNN H128 I32 T100 B32 fwd+bwd via lax.scan (jit)",
            "funcnet_ms": t_fn["min"] * 1e3, "numpy_ms": t_np["min"] * 1e3,
            "ratio": t_fn["min"] / t_np["min"], "rel_err": err,
            "target": "<= 1.0x hand-written NumPy BPTT"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    timer = Timer(repeat=2 if args.quick else 7, min_time=0.05 if args.quick else 0.5)
    results = [bench_mlp_step(timer), bench_per_example(timer), bench_compile(timer),
               bench_rnn(timer)]
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None))
    for r in results:
        print(r.pop("name"))
        for k, v in r.items():
            print(f"    {k}: {v:.3f}" if isinstance(v, float) else f"    {k}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
