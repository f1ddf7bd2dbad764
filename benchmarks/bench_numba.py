"""Numba-backend benchmarks: each against the NumPy backend and JAX, timed in the same run.

a. **GELU**: ``jit`` of the tanh-approximation GELU on 4,194,304 float32 values.
   Targets: Numba backend <= 0.6x JAX's ``jit``, and >= 4x faster than the NumPy
   backend.
b. **MLP step**: the training step of ``bench_transforms.py`` (a) (784-512-512-10
   ReLU MLP, batch 128, SGD, jitted).  Target: Numba backend <= 1.0x the NumPy
   backend.
c. **RNN**: forward + backward of a tanh RNN (hidden 128, input 32, 100 steps,
   batch 32) through ``lax.scan``, jitted.  Target: Numba backend <= 1.0x JAX's
   ``lax.scan``.

Each benchmark first checks that the backends agree.  Rows are timed round-robin
(``bench_core.Timer.group``): *ratio* is the median over repeats of (row / first
row in the same round), which cancels most of the load of a shared machine; the
minimum is the least disturbed repeat.  Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_numba.py --blas-threads 1

(first run: Numba compiles the kernels, ~30 s; later runs load them from the
disk cache).  ``--quick`` for a smoke test, ``--json PATH`` to save the numbers.
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
from bench_transforms import init_mlp, relu_mlp, xent  # noqa: E402
from funcnet import lax  # noqa: E402

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_platforms", "cpu")
except Exception:  # pragma: no cover - JAX is optional
    jax = jnp = None

F32 = np.float32


def on(backend: str, f):
    """``f`` called with ``backend`` active."""
    def run(*args):
        with fn.use_backend(backend):
            return f(*args)
    return run


def _max_rel(a, b) -> float:
    err = 0.0
    for x, y in zip(fn.tree.leaves(a), fn.tree.leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        err = max(err, float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-30)))
    return err


def _report(name, rows, baseline_row, target, extra=None):
    out = {"name": name, "target": target, **(extra or {})}
    base = next(r for r in rows if r["name"] == baseline_row)
    for r in rows:
        out[r["name"]] = {"min_ms": r["min"] * 1e3, "median_ms": r["median"] * 1e3,
                          "ratio": r["ratio"] / base["ratio"],
                          "ratio_of_minima": r["min"] / base["min"]}
    return out


def _time(timer, rows):
    t0 = time.perf_counter()
    for _, f in rows:  # first calls compile: not timed
        f()
    compile_s = time.perf_counter() - t0
    return timer.group(rows), compile_s


# ---------------------------------------------------------------------------
# (a) GELU


def gelu(x, np_=fnp):
    return 0.5 * x * (1 + np_.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def bench_gelu(timer, n=4194304):
    x = np.random.default_rng(0).standard_normal(n).astype(F32)
    f_nb, f_np = fn.jit(gelu), fn.jit(gelu)
    nb, npb = on("numba", f_nb), on("numpy", f_np)
    rows = [("numba", lambda: nb(x)), ("numpy backend", lambda: npb(x))]
    extra = {"max_rel_err_numba_vs_numpy": _max_rel(nb(x), npb(x))}
    if jax is not None:
        jf = jax.jit(lambda v: gelu(v, jnp))
        jx = jnp.asarray(x)
        rows.insert(0, ("jax", lambda: jf(jx).block_until_ready()))
        extra["max_rel_err_numba_vs_jax"] = _max_rel(nb(x), np.asarray(jf(jx)))
    res, _ = _time(timer, rows)
    return _report(f"(a) jit tanh-GELU, {n} float32", res, "jax" if jax else "numpy backend",
                   "numba <= 0.6x JAX jit; numba >= 4x faster than the NumPy backend", extra)


# ---------------------------------------------------------------------------
# (b) MLP training step


def bench_mlp(timer):
    rng = np.random.default_rng(0)
    params = init_mlp(rng, [784, 512, 512, 10])
    x = rng.standard_normal((128, 784)).astype(F32)
    onehot = np.eye(10, dtype=F32)[rng.integers(0, 10, 128)]
    lr = F32(0.01)

    def make():
        @fn.jit
        def step(params, x, onehot):
            loss, g = fn.value_and_grad(lambda p: xent(relu_mlp(p, x), onehot))(params)
            return fn.tree.map(lambda p, d: p - lr * d, params, g), loss
        return step

    nb, npb = on("numba", make()), on("numpy", make())
    extra = {"max_rel_err": _max_rel(nb(params, x, onehot), npb(params, x, onehot))}
    rows = [("numpy backend", lambda: npb(params, x, onehot)),
            ("numba", lambda: nb(params, x, onehot))]
    if jax is not None:
        def jloss(p, x, y):
            h = x
            for layer in p[:-1]:
                h = jnp.maximum(h @ layer["w"] + layer["b"], 0.0)
            logits = h @ p[-1]["w"] + p[-1]["b"]
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=-1))

        @jax.jit
        def jstep(p, x, y):
            loss, g = jax.value_and_grad(jloss)(p, x, y)
            return jax.tree.map(lambda a, d: a - lr * d, p, g), loss

        jp = jax.tree.map(jnp.asarray, params)
        rows.append(("jax", lambda: jax.block_until_ready(jstep(jp, x, onehot))))
    res, _ = _time(timer, rows)
    return _report("(b) MLP 784-512-512-10 jit SGD step, batch 128", res, "numpy backend",
                   "numba <= 1.0x the NumPy backend", extra)


# ---------------------------------------------------------------------------
# (c) RNN through scan


def bench_rnn(timer):
    rng = np.random.default_rng(3)
    H, I, T, B = 128, 32, 100, 32  # noqa: E741 - hidden, input, steps, batch
    p = {"W": (rng.standard_normal((H, H)) / np.sqrt(H)).astype(F32),
         "U": (rng.standard_normal((I, H)) / np.sqrt(I)).astype(F32),
         "b": np.zeros(H, F32)}
    xs = rng.standard_normal((T, B, I)).astype(F32)

    def make(np_, lax_, value_and_grad):
        def loss(p, xs):
            def step(h, x):
                return np_.tanh(h @ p["W"] + x @ p["U"] + p["b"]), None

            h, _ = lax_.scan(step, np_.zeros((B, H), F32), xs)
            return np_.sum(h ** 2)

        return value_and_grad(loss)

    nb = on("numba", fn.jit(make(fnp, lax, fn.value_and_grad)))
    npb = on("numpy", fn.jit(make(fnp, lax, fn.value_and_grad)))
    extra = {"max_rel_err": _max_rel(nb(p, xs), npb(p, xs))}
    rows = [("numba", lambda: nb(p, xs)), ("numpy backend", lambda: npb(p, xs))]
    if jax is not None:
        jg = jax.jit(make(jnp, jax.lax, jax.value_and_grad))
        rows.insert(0, ("jax", lambda: jax.block_until_ready(jg(p, xs))))
    res, _ = _time(timer, rows)
    return _report("(c) tanh RNN H128 I32 T100 B32 fwd+bwd via lax.scan (jit)", res,
                   "jax" if jax else "numpy backend", "numba <= 1.0x JAX lax.scan", extra)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--blas-threads", type=int, metavar="N",
                    help="limit BLAS to N threads (needs threadpoolctl); on a busy 2-core "
                         "machine multi-threaded BLAS stalls for whole scheduler slices")
    args = ap.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)
    if "numba" not in fn.backends.available():
        print('the numba backend is not available: pip install "funcnet[numba]"')
        return 1
    timer = Timer(repeat=2 if args.quick else args.repeat, min_time=0.05 if args.quick else 0.3)
    t0 = time.perf_counter()
    results = [bench_gelu(timer, 1 << 16 if args.quick else 4194304), bench_mlp(timer),
               bench_rnn(timer)]
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None))
    print(f"(total {time.perf_counter() - t0:.1f} s, first calls included)")
    for r in results:
        print(r["name"])
        print(f"    target: {r['target']}")
        for k, v in r.items():
            if isinstance(v, dict):
                print(f"    {k:15s} min {v['min_ms']:9.3f} ms   median {v['median_ms']:9.3f} ms"
                      f"   ratio {v['ratio']:6.3f}   (ratio of minima {v['ratio_of_minima']:.3f})")
            elif k not in ("name", "target"):
                print(f"    {k}: {v:.2e}" if isinstance(v, float) else f"    {k}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
