"""Optimizer benchmark: one ``adamw`` + ``clip_by_global_norm`` update of a 10-million-parameter
pytree, jitted, against a hand-written NumPy update (and optax on JAX when installed).

The pytree is a float32 "model" of nine 1024x1024 dense layers with biases and a 600x1024
embedding (10,078,720 parameters in 19 leaves).  Each row takes (params, state, grads) to
(new params, new state):

- ``numpy (hand-written)``: the formulas written directly in NumPy, updating the moments
  and the params in place (the baseline);
- ``funcnet jit``: ``fn.jit`` of ``optim.chain(clip_by_global_norm(1.0), adamw(...))``
  followed by ``optim.apply_updates`` (and the same with ``donate_argnums`` for params and
  state, which lets the generated code reuse their buffers);
- ``optax (JAX jit)``: the same chain in optax, with donated buffers (only when JAX and
  optax are importable; never a dependency).

Before timing, the rows are checked to produce the same parameters after three steps.
Run from the repository root (``FUNCNET_BACKEND=numba`` for the fused backend)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_optim.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import funcnet as fn  # noqa: E402
from bench_core import Timer, environment  # noqa: E402
from funcnet import optim  # noqa: E402

LR, B1, B2, EPS, WD, MAX_NORM = 1e-3, 0.9, 0.999, 1e-8, 1e-4, 1.0


def make_tree(rng, scale=1.0):
    tree = {f"dense{i}": {"w": (rng.standard_normal((1024, 1024)) * scale).astype(np.float32),
                          "b": (rng.standard_normal(1024) * scale).astype(np.float32)}
            for i in range(9)}
    tree["embed"] = (rng.standard_normal((600, 1024)) * scale).astype(np.float32)
    return tree


def count(tree) -> int:
    return sum(x.size for x in fn.tree.leaves(tree))


# ---------------------------------------------------------------------------
# the rows


def numpy_step_factory():
    """A NumPy programmer's AdamW with global-norm clipping (moments and params in place)."""
    def step(params, state, grads):
        t, ms, vs = state
        leaves_p = fn.tree.leaves(params)
        leaves_g = fn.tree.leaves(grads)
        norm = np.sqrt(sum(np.vdot(g.ravel(), g.ravel()) for g in leaves_g))
        clip = 1.0 if norm < MAX_NORM else MAX_NORM / norm
        t = t + 1
        bc1, bc2 = 1.0 - B1 ** t, 1.0 - B2 ** t
        for p, g, m, v in zip(leaves_p, leaves_g, ms, vs):
            g = g * np.float32(clip)
            m *= np.float32(B1)
            m += np.float32(1 - B1) * g
            v *= np.float32(B2)
            v += np.float32(1 - B2) * (g * g)
            denom = np.sqrt(v / np.float32(bc2))
            denom += np.float32(EPS)
            u = (m / np.float32(bc1)) / denom
            u += np.float32(WD) * p
            p -= np.float32(LR) * u
        return params, (t, ms, vs)

    def init(params):
        leaves = fn.tree.leaves(params)
        return (0, [np.zeros_like(x) for x in leaves], [np.zeros_like(x) for x in leaves])

    return init, step


def funcnet_step_factory(donate: bool):
    tx = optim.chain(optim.clip_by_global_norm(MAX_NORM),
                     optim.adamw(LR, b1=B1, b2=B2, eps=EPS, weight_decay=WD))

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    return tx.init, fn.jit(step, donate_argnums=(0, 1) if donate else ())


def optax_step_factory():
    import jax
    import optax

    tx = optax.chain(optax.clip_by_global_norm(MAX_NORM),
                     optax.adamw(LR, b1=B1, b2=B2, eps=EPS, weight_decay=WD))

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))

    def run(params, state, grads):
        out = jitted(params, state, grads)
        jax.block_until_ready(out)
        return out

    return tx.init, run, jax


# ---------------------------------------------------------------------------


def copy_tree(tree):
    return fn.tree.map(np.array, tree)


def check_agreement(rows, params0, grads) -> float:
    """Max relative difference of the params after three steps, each row against the first."""
    results = []
    for _, (init, step, convert) in rows:
        p = convert(copy_tree(params0))
        s = init(p)
        g = convert(grads)
        for _ in range(3):
            p, s = step(p, s, g)
        results.append([np.asarray(x) for x in fn.tree.leaves(p)])
    worst = 0.0
    for other in results[1:]:
        for a, b in zip(results[0], other):
            worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(a) + 1e-3))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds per repeat and row")
    parser.add_argument("--no-frameworks", action="store_true", help="skip optax / JAX")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    repeat, min_time = (3, 0.2) if args.quick else (args.repeat, args.min_time)

    rng = np.random.default_rng(0)
    params0 = make_tree(rng, 0.05)
    grads = make_tree(rng, 1e-3)  # global norm ~3.2: the clip is active
    n = count(params0)

    same = lambda t: t  # noqa: E731
    np_init, np_step = numpy_step_factory()
    rows = [("numpy (hand-written, in place)", (np_init, np_step, same))]
    for donate in (False, True):
        init, step = funcnet_step_factory(donate)
        rows.append((f"funcnet jit{' (donated)' if donate else ''}", (init, step, same)))
    if not args.no_frameworks:
        try:
            ox_init, ox_step, jax = optax_step_factory()
            to_jax = lambda t: jax.tree.map(jax.numpy.asarray, t)  # noqa: E731
            rows.append((f"optax {__import__('optax').__version__} (JAX jit, donated)",
                         (ox_init, ox_step, to_jax)))
        except ImportError:
            pass

    agreement = check_agreement(rows, params0, grads)

    # Timed rows: each call continues from the previous call's outputs.
    timed = []
    for name, (init, step, convert) in rows:
        box = {"p": convert(copy_tree(params0))}
        box["s"] = init(box["p"])
        g = convert(grads)

        def call(box=box, step=step, g=g):
            box["p"], box["s"] = step(box["p"], box["s"], g)

        timed.append((name, call))
    results = Timer(repeat, min_time).group(timed)

    env = environment()
    env["backend"] = fn.get_backend().name
    if "jax" in sys.modules and "optax" in sys.modules:
        env["jax"], env["optax"] = sys.modules["jax"].__version__, sys.modules["optax"].__version__
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None))
    print(f"adamw + clip_by_global_norm, one update of {n:,} float32 parameters "
          f"({len(fn.tree.leaves(params0))} leaves); rows agree to {agreement:.1e} "
          "(max relative difference after 3 steps)")
    print(f"    {'':44s} {'min ms':>9s} {'median ms':>10s} {'min-ratio':>10s} {'ratio':>7s}")
    for r in results:
        print(f"    {r['name']:44s} {r['min'] * 1e3:9.2f} {r['median'] * 1e3:10.2f} "
              f"{r['ratio_of_minima']:10.2f} {r['ratio']:7.2f}")
    print("target: funcnet jit <= 1.5x the hand-written NumPy update")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "parameters": n,
                                               "agreement": agreement, "rows": results},
                                              indent=2))


if __name__ == "__main__":
    main()
