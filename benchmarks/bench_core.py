"""Core overhead benchmarks: eager dispatch, recording under ``grad``, and an MLP gradient.

Three measurements, each against a baseline measured in the same run:

a. **eager op**: ``fnp.add(a, b)`` on two float32[8] arrays, against ``a + b``
   and ``np.add(a, b)`` (and ``jnp.add`` / ``torch.add`` when installed).
b. **op inside grad**: ``fn.grad`` of a function that applies N cheap
   elementwise ops to a float32[8] array, divided by N: the cost of
   recording one op and running its forward, tangent and transposed
   (backward) work.
c. **MLP gradient**: loss and gradient of a 784-512-256-10 ReLU MLP with
   softmax cross-entropy on a float32 batch of 128, un-jitted, against the
   same model's forward and backward pass written by hand in NumPy (and
   PyTorch eager autograd / JAX when installed).

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_core.py
    python benchmarks/bench_core.py --quick           # fewer repeats (smoke test)
    python benchmarks/bench_core.py --json out.json   # also write the numbers

Times are per call: the minimum and the median over ``--repeat`` repeats of
a loop sized to run about ``--min-time`` seconds.
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

# Targets from the benchmark issue (per call, this machine).
TARGET_EAGER_US = 1.0
TARGET_GRAD_OP_US = 4.0
TARGET_MLP_RATIO = 1.3


torch = jax = jnp = None


def load_frameworks(enabled: bool) -> None:
    """Import PyTorch and JAX for comparison rows, where installed (and wanted)."""
    global torch, jax, jnp
    if not enabled:
        return
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_platforms", "cpu")
    except ImportError:
        jax = jnp = None


# ---------------------------------------------------------------------------
# Timing


class Timer:
    """timeit-style timing of a group of functions, interleaved.

    Each function gets a loop count that runs about ``min_time`` seconds; then
    the repeats go round-robin (baseline, candidate 1, candidate 2, baseline,
    ...) so that load from other processes hits every row alike.  Per row:
    the minimum and median time per call, and ``ratio``, the median over
    repeats of (row time / baseline time in the same round).
    """

    def __init__(self, repeat: int, min_time: float):
        self.repeat = repeat
        self.min_time = min_time

    def _number(self, t: timeit.Timer) -> int:
        number, elapsed = 1, t.timeit(1)
        while elapsed < 0.02 and number < 10**7:  # calibrate on a short loop
            number *= 10
            elapsed = t.timeit(number)
        return max(1, round(number * self.min_time / elapsed))

    def __call__(self, fun) -> dict:
        """Time one function alone: ``{"min", "median", "number"}`` (seconds per call)."""
        fun()
        t = timeit.Timer(fun)
        number = self._number(t)
        runs = [x / number for x in t.repeat(repeat=self.repeat, number=number)]
        return {"min": min(runs), "median": statistics.median(runs), "number": number}

    def group(self, rows: list[tuple[str, object]]) -> list[dict]:
        """Time ``[(name, fun), ...]``; the first row is the baseline."""
        for _, fun in rows:
            fun()  # warm up (caches, first-call imports)
        timers = [timeit.Timer(fun) for _, fun in rows]
        numbers = [self._number(t) for t in timers]
        runs: list[list[float]] = [[] for _ in rows]
        for _ in range(self.repeat):
            for i, (t, n) in enumerate(zip(timers, numbers)):
                runs[i].append(t.timeit(n) / n)
        base = runs[0]
        return [{"name": name, "min": min(r), "median": statistics.median(r), "number": n,
                 "ratio": statistics.median(x / b for x, b in zip(r, base)),
                 "ratio_of_minima": min(r) / min(base)}
                for (name, _), r, n in zip(rows, runs, numbers)]


# ---------------------------------------------------------------------------
# (a) eager per-op overhead


def bench_eager(timer: Timer) -> list[dict]:
    a = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    b = np.linspace(1.0, 2.0, 8, dtype=np.float32)
    rows = [
        ("a + b (NumPy operator)", lambda: a + b),
        ("np.add(a, b)", lambda: np.add(a, b)),
        ("fnp.add(a, b)", lambda: fnp.add(a, b)),
        ("fnp.multiply(a, b)", lambda: fnp.multiply(a, b)),
        ("fnp.exp(a)", lambda: fnp.exp(a)),
        ("np.exp(a)", lambda: np.exp(a)),
    ]
    if jax is not None:
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        rows.append(("jnp.add(a, b) (JAX, dispatch only)", lambda: jnp.add(ja, jb)))
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        rows.append(("torch.add(a, b)", lambda: torch.add(ta, tb)))
    rows.insert(0, rows.pop(1))  # np.add is the baseline
    return [dict(group="eager op", baseline="np.add(a, b)", **r) for r in timer.group(rows)]


# ---------------------------------------------------------------------------
# (b) op recorded inside grad


def bench_grad_ops(timer: Timer, n_ops: int) -> list[dict]:
    x = np.linspace(0.1, 0.9, 8, dtype=np.float32)
    w = np.full(8, 1.0001, dtype=np.float32)
    c = np.full(8, 0.001, dtype=np.float32)
    pairs = n_ops // 2

    def chain(y, mul, add, total):
        for _ in range(pairs):
            y = add(mul(y, w), c)
        return total(y)

    def f(x):
        return chain(x, fnp.multiply, fnp.add, fnp.sum)

    grad_f = fn.grad(f)
    rows = [("funcnet eager forward only", lambda: f(x)),
            ("funcnet fn.grad", lambda: grad_f(x))]
    if torch is not None:
        tw, tc = torch.from_numpy(w), torch.from_numpy(c)

        def torch_grad():
            tx = torch.from_numpy(x).requires_grad_(True)
            y = tx
            for _ in range(pairs):
                y = y * tw + tc
            y.sum().backward()
            return tx.grad

        rows.append(("PyTorch eager autograd", torch_grad))
    if jax is not None:
        jw, jc = jnp.asarray(w), jnp.asarray(c)

        def jf(x):
            y = x
            for _ in range(pairs):
                y = y * jw + jc
            return jnp.sum(y)

        jgrad = jax.grad(jf)
        jx = jnp.asarray(x)
        rows.append(("JAX jax.grad, un-jitted", lambda: jgrad(jx).block_until_ready()))
    total = 2 * pairs + 1
    out = []
    for r in timer.group(rows):
        r = dict(group=f"op inside grad (N={total} ops)", n_ops=total, **r)
        r["per_op_min"] = r["min"] / total
        r["per_op_median"] = r["median"] / total
        out.append(r)
    return out


# ---------------------------------------------------------------------------
# (c) MLP loss gradient


SIZES = (784, 512, 256, 10)
BATCH = 128


def mlp_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype(
            np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=BATCH)
    return params, x, y


def funcnet_loss(params, x, y, relu=lambda h: fnp.maximum(h, 0.0)):
    h = x
    for i in range(len(SIZES) - 1):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < len(SIZES) - 2:
            h = relu(h)
    z = h - fn.stop_gradient(fnp.max(h, axis=-1, keepdims=True))
    logp = z - fnp.log(fnp.sum(fnp.exp(z), axis=-1, keepdims=True))
    onehot = (y[:, None] == np.arange(SIZES[-1])).astype(np.float32)
    return -fnp.mean(fnp.sum(logp * onehot, axis=-1))


def numpy_loss_and_grad(params, x, y):
    """The same model's loss and gradient, forward and backward written by hand."""
    n_layers = len(SIZES) - 1
    acts, pre = [x], []
    h = x
    for i in range(n_layers):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        pre.append(h)
        if i < n_layers - 1:
            h = np.maximum(h, 0.0)
            acts.append(h)
    z = h - h.max(axis=-1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=-1, keepdims=True)
    rows = np.arange(len(y))
    loss = -np.mean(z[rows, y] - np.log(s[:, 0]))
    dh = e / s
    dh[rows, y] -= 1.0
    dh /= np.float32(len(y))
    grads = {}
    for i in reversed(range(n_layers)):
        grads[f"w{i}"] = acts[i].T @ dh
        grads[f"b{i}"] = dh.sum(axis=0)
        if i:
            dh = (dh @ params[f"w{i}"].T) * (pre[i - 1] > 0)
    return loss, grads


def bench_mlp(timer: Timer) -> list[dict]:
    params, x, y = mlp_data()
    vg = fn.value_and_grad(funcnet_loss)

    # Same numbers first: a benchmark of a wrong gradient is worthless.
    (v1, g1), (v2, g2) = vg(params, x, y), numpy_loss_and_grad(params, x, y)
    assert np.allclose(v1, v2, rtol=1e-4), (v1, v2)
    for k in params:
        assert g1[k].dtype == np.float32, (k, g1[k].dtype)
        assert np.allclose(g1[k], g2[k], rtol=1e-3, atol=1e-5), k

    vg_nn = fn.value_and_grad(lambda p, x, y: funcnet_loss(p, x, y, relu=fn.nn.relu))
    rows = [("hand-written NumPy forward+backward", lambda: numpy_loss_and_grad(params, x, y)),
            ("funcnet fn.value_and_grad (un-jitted)", lambda: vg(params, x, y)),
            ("funcnet, relu = fn.nn.relu (un-jitted)", lambda: vg_nn(params, x, y))]
    if torch is not None:
        tparams = {k: torch.from_numpy(v) for k, v in params.items()}
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            ps = {k: v.detach().requires_grad_(True) for k, v in tparams.items()}
            h = tx
            for i in range(len(SIZES) - 1):
                h = h @ ps[f"w{i}"] + ps[f"b{i}"]
                if i < len(SIZES) - 2:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, ty)
            loss.backward()
            return loss, {k: v.grad for k, v in ps.items()}

        rows.append(("PyTorch eager autograd", torch_step))
    if jax is not None:
        jparams = {k: jnp.asarray(v) for k, v in params.items()}
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def jloss(p, x, y):
            h = x
            for i in range(len(SIZES) - 1):
                h = h @ p[f"w{i}"] + p[f"b{i}"]
                if i < len(SIZES) - 2:
                    h = jnp.maximum(h, 0.0)
            logp = jax.nn.log_softmax(h)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        jvg = jax.value_and_grad(jloss)
        jvg_jit = jax.jit(jvg)

        def ready(out):
            return jax.block_until_ready(out)

        rows.append(("JAX value_and_grad, un-jitted", lambda: ready(jvg(jparams, jx, jy))))
        rows.append(("JAX value_and_grad, jitted (reference)",
                     lambda: ready(jvg_jit(jparams, jx, jy))))
    group = f"MLP grad {'-'.join(map(str, SIZES))}, batch {BATCH}"
    return [dict(group=group, baseline="hand-written NumPy", **r) for r in timer.group(rows)]


# ---------------------------------------------------------------------------
# Report


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for p in threadpool_info():
        if p.get("user_api") == "blas":
            parts.append(f"{p.get('internal_api')} {p.get('version')} "
                         f"{p.get('architecture')} x{p.get('num_threads')} threads")
    return "; ".join(parts) or "no BLAS found"


def environment() -> dict:
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "funcnet": fn.__version__,
        "torch": getattr(torch, "__version__", None),
        "jax": getattr(jax, "__version__", None),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "blas": blas_info(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.2f}" if us < 100 else f"{us:,.0f}"


def print_report(env: dict, eager, grad_ops, mlp) -> None:
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None))
    print("ratio: median over repeats of (row / first row, timed in the same round); "
          "min-ratio: ratio of the minima")
    print()
    head = f"{'min-ratio':>10s} {'ratio':>7s}"
    print(f"(a) {eager[0]['group']}: float32[8] operands, vs np.add(a, b)")
    print(f"    {'':40s} {'min µs':>10s} {'median µs':>10s} {head}")
    for r in eager:
        print(f"    {r['name']:40s} {_us(r['min']):>10s} {_us(r['median']):>10s} "
              f"{r['ratio_of_minima']:10.2f} {r['ratio']:7.2f}")
    print()
    print(f"(b) {grad_ops[0]['group']} on float32[8]: µs per op = call time / N; "
          "ratios vs the eager forward pass")
    print(f"    {'':40s} {'call ms':>10s} {'µs/op min':>10s} {'µs/op med':>10s} {head}")
    for r in grad_ops:
        print(f"    {r['name']:40s} {r['min'] * 1e3:10.2f} {_us(r['per_op_min']):>10s} "
              f"{_us(r['per_op_median']):>10s} {r['ratio_of_minima']:10.2f} {r['ratio']:7.2f}")
    print()
    print(f"(c) {mlp[0]['group']}, float32, vs hand-written NumPy")
    print(f"    {'':40s} {'min ms':>10s} {'median ms':>10s} {head}")
    for r in mlp:
        print(f"    {r['name']:40s} {r['min'] * 1e3:10.2f} {r['median'] * 1e3:10.2f} "
              f"{r['ratio_of_minima']:10.2f} {r['ratio']:7.2f}")
    print()
    fnp_add = next(r for r in eager if r["name"] == "fnp.add(a, b)")
    np_add = next(r for r in eager if r["name"] == "np.add(a, b)")
    grad_row = next(r for r in grad_ops if r["name"] == "funcnet fn.grad")
    mlp_row = next(r for r in mlp if r["name"].startswith("funcnet"))
    checks = [
        ("eager fnp.add", f"{_us(fnp_add['min'])} µs "
         f"(+{_us(fnp_add['min'] - np_add['min'])} µs over np.add)",
         f"<= {TARGET_EAGER_US} µs", fnp_add["min"] * 1e6 <= TARGET_EAGER_US),
        ("op inside grad", f"{_us(grad_row['per_op_min'])} µs/op",
         f"<= {TARGET_GRAD_OP_US} µs", grad_row["per_op_min"] * 1e6 <= TARGET_GRAD_OP_US),
        ("MLP grad vs NumPy", f"{mlp_row['ratio']:.2f}x", f"<= {TARGET_MLP_RATIO}x",
         mlp_row["ratio"] <= TARGET_MLP_RATIO),
    ]
    print("targets:")
    for name, got, target, ok in checks:
        print(f"    {name:20s} {got:34s} target {target:10s} {'met' if ok else 'NOT MET'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each repeat runs (about)")
    parser.add_argument("--ops", type=int, default=1000, help="N for the op-inside-grad test")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--blas-threads", type=int, metavar="N",
                        help="limit BLAS (and PyTorch) to N threads (needs threadpoolctl)")
    parser.add_argument("--no-frameworks", action="store_true",
                        help="skip the PyTorch and JAX rows even if they are installed")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.min_time, args.ops = 2, 0.02, 100
    load_frameworks(not args.no_frameworks)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)
        if torch is not None:
            torch.set_num_threads(args.blas_threads)
    timer = Timer(args.repeat, args.min_time)

    env = environment()
    eager = bench_eager(timer)
    grad_ops = bench_grad_ops(timer, args.ops)
    mlp = bench_mlp(timer)
    print_report(env, eager, grad_ops, mlp)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"environment": env, "eager": eager, "grad_ops": grad_ops, "mlp": mlp},
            indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
