"""funcnet.nn benchmark: forward + backward of two ready-made models, jitted.

1. ``resnet``: ``nn.models.ResNet()`` (8 layers: a 3x3 stem with 16 channels and
   three residual blocks of 16, 32 and 64 channels, BatchNorm in training mode,
   global average pooling, 10 classes) on a float32 batch of 64 x 32 x 32 x 3;
2. ``text``: ``nn.models.TextClassifier`` (embedding 1000 x 64, a masked GRU
   with 64 units, 2 classes) on a batch of 32 token sequences of length 64
   (random lengths from 16 to 64, padded with 0).

One call is the softmax cross-entropy loss and its gradient with respect to
every parameter (``fn.jit(fn.value_and_grad(loss))``, steady state).  The
same models are built by hand in JAX (``jax.jit``, with ``lax.scan`` for the
GRU) and in PyTorch (eager autograd; ``nn.GRU`` with packed sequences) when
they are installed, **with the same parameters**, and their losses and
gradients are compared with funcnet's before anything is timed.

Rows are timed round-robin (one repeat of every row, then the next repeat),
and *ratio* is the median over repeats of ``row / JAX`` measured in the same
round, which cancels most of the load of a shared machine; *min* is the least
disturbed repeat.  Run from the repository root::

    python benchmarks/bench_nn.py
    python benchmarks/bench_nn.py --quick               # a short smoke run
    python benchmarks/bench_nn.py --threads 1           # one BLAS / XLA / torch thread
    python benchmarks/bench_nn.py --json out.json       # also write the numbers
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
from funcnet import nn, random  # noqa: E402

RESNET_BATCH, IMAGE, CLASSES = 64, 32, 10
TEXT_BATCH, SEQ_LEN, VOCAB, EMBED, HIDDEN = 32, 64, 1000, 64, 64
BN_MOMENTUM, BN_EPS = 0.9, 1e-5

# ---------------------------------------------------------------------------
# Problems (funcnet builds the parameters; the other frameworks copy them)


def resnet_problem(seed: int = 0):
    model = nn.models.ResNet(CLASSES)
    _, params, state = model.init(random.key(seed), (-1, IMAGE, IMAGE, 3))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(RESNET_BATCH, IMAGE, IMAGE, 3)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=RESNET_BATCH)

    def loss(params, state, x, y):
        logits, state = model.apply(params, x, state=state, train=True)
        return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y), state

    step = fn.jit(fn.value_and_grad(loss, has_aux=True))
    return dict(params=params, state=state, x=x, y=y,
                run=lambda: step(params, state, x, y),
                value_and_grad=lambda: _flat_resnet_grads(step(params, state, x, y)))


def _flat_resnet_grads(out):
    (loss, _), grads = out
    return float(loss), grads


def text_problem(seed: int = 0):
    model = nn.models.TextClassifier(VOCAB, 2, embed_dim=EMBED, hidden_size=HIDDEN)
    _, params = model.init(random.key(seed), (-1, SEQ_LEN))
    rng = np.random.default_rng(seed)
    lengths = rng.integers(SEQ_LEN // 4, SEQ_LEN + 1, size=TEXT_BATCH)
    ids = rng.integers(1, VOCAB, size=(TEXT_BATCH, SEQ_LEN))
    ids = np.where(np.arange(SEQ_LEN) < lengths[:, None], ids, 0).astype(np.int64)
    y = rng.integers(0, 2, size=TEXT_BATCH)

    def loss(params, ids, y):
        return nn.losses.softmax_cross_entropy_with_integer_labels(model.apply(params, ids), y)

    step = fn.jit(fn.value_and_grad(loss))
    return dict(params=params, ids=ids, lengths=lengths, y=y,
                run=lambda: step(params, ids, y),
                value_and_grad=lambda: (float(step(params, ids, y)[0]),
                                        step(params, ids, y)[1]))


# ---------------------------------------------------------------------------
# The ResNet's structure, walked in the same order by the JAX and PyTorch versions


def resnet_layout(params):
    """``[(kind, funcnet params, children)]`` for the stem, blocks and head."""
    keys = sorted(params)
    stem = (params[keys[0]]["w"], params[keys[1]])
    blocks = []
    for k in keys[3:-2]:
        res = params[k]["0_residual"]
        main = res["main"]
        conv1, bn1, conv2, bn2 = (main[m] for m in sorted(main) if m.split("_", 1)[1]
                                  in ("conv2d", "batch_norm"))
        proj = None
        if "shortcut" in res:
            sc = res["shortcut"]
            proj = (sc["0_conv2d"]["w"], sc["1_batch_norm"])
        blocks.append(dict(conv1=conv1["w"], bn1=bn1, conv2=conv2["w"], bn2=bn2, proj=proj,
                           strides=2 if proj is not None else 1))
    head = params[keys[-1]]
    return stem, blocks, head


# ---------------------------------------------------------------------------
# JAX


def jax_rows(resnet, text):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_platforms", "cpu")
    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x, w, s=1):
        return jax.lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=dn)

    def bn(x, p):
        m = x.mean((0, 1, 2))
        v = ((x - m) ** 2).mean((0, 1, 2))
        return (x - m) * (jax.lax.rsqrt(v + BN_EPS) * p["scale"]) + p["bias"]

    stem, blocks, head = resnet_layout(resnet["params"])
    jp = jax.tree.map(jnp.asarray, dict(stem=stem, blocks=blocks, head=head))
    for b in jp["blocks"]:
        b.pop("strides")
    strides = [b["strides"] for b in blocks]

    def resnet_loss(p, x, y):
        h = jax.nn.relu(bn(conv(x, p["stem"][0]), p["stem"][1]))
        for b, s in zip(p["blocks"], strides):
            a = jax.nn.relu(bn(conv(h, b["conv1"], s), b["bn1"]))
            a = bn(conv(a, b["conv2"]), b["bn2"])
            sc = h if b["proj"] is None else bn(conv(h, b["proj"][0], s), b["proj"][1])
            h = jax.nn.relu(a + sc)
        logits = h.mean((1, 2)) @ p["head"]["w"] + p["head"]["b"]
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).mean()

    r_step = jax.jit(jax.value_and_grad(resnet_loss))
    rx, ry = jnp.asarray(resnet["x"]), jnp.asarray(resnet["y"])

    tp = jax.tree.map(jnp.asarray, text["params"])

    def text_loss(p, ids, y):
        mask = ids != 0
        x = p["embedding"]["embedding"][ids]
        enc = p["encoder"]
        xs = jnp.swapaxes(x @ enc["w_i"] + enc["b_i"], 0, 1)
        ms = jnp.swapaxes(mask, 0, 1)[..., None]

        def body(h, inputs):
            xt, m = inputs
            hp = h @ enc["w_h"] + enc["b_h"]
            rz = jax.nn.sigmoid(xt[:, :2 * HIDDEN] + hp[:, :2 * HIDDEN])
            n = jnp.tanh(xt[:, 2 * HIDDEN:] + rz[:, :HIDDEN] * hp[:, 2 * HIDDEN:])
            new = n + rz[:, HIDDEN:] * (h - n)
            new = jnp.where(m, new, h)
            return new, jnp.where(m, new, 0)

        h, _ = jax.lax.scan(body, jnp.zeros((ids.shape[0], HIDDEN), xs.dtype), (xs, ms))
        logits = h @ p["head"]["w"] + p["head"]["b"]
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).mean()

    t_step = jax.jit(jax.value_and_grad(text_loss))
    tids, ty = jnp.asarray(text["ids"]), jnp.asarray(text["y"])

    def resnet_grads():
        loss, g = r_step(jp, rx, ry)
        return float(loss), g

    return {
        "resnet": dict(name="JAX jit", run=lambda: jax.block_until_ready(r_step(jp, rx, ry)),
                       value_and_grad=resnet_grads),
        "text": dict(name="JAX jit (lax.scan)",
                     run=lambda: jax.block_until_ready(t_step(tp, tids, ty)),
                     value_and_grad=lambda: (float(t_step(tp, tids, ty)[0]),
                                             t_step(tp, tids, ty)[1])),
    }


# ---------------------------------------------------------------------------
# PyTorch


def torch_rows(resnet, text):
    import torch
    import torch.nn.functional as F

    def t(a, grad=True):
        return torch.tensor(np.asarray(a), requires_grad=grad)

    stem, blocks, head = resnet_layout(resnet["params"])

    def conv_w(w):  # HWIO -> OIHW
        return t(np.ascontiguousarray(np.transpose(np.asarray(w), (3, 2, 0, 1))))

    def bn_p(p):
        return {"scale": t(p["scale"]), "bias": t(p["bias"])}

    tp = {"stem": (conv_w(stem[0]), bn_p(stem[1])),
          "blocks": [dict(conv1=conv_w(b["conv1"]), bn1=bn_p(b["bn1"]),
                          conv2=conv_w(b["conv2"]), bn2=bn_p(b["bn2"]),
                          proj=None if b["proj"] is None else (conv_w(b["proj"][0]),
                                                                bn_p(b["proj"][1])),
                          strides=b["strides"]) for b in blocks],
          "head": {"w": t(head["w"]), "b": t(head["b"])}}
    leaves = [tp["stem"][0], *tp["stem"][1].values()]
    for b in tp["blocks"]:
        leaves += [b["conv1"], *b["bn1"].values(), b["conv2"], *b["bn2"].values()]
        if b["proj"] is not None:
            leaves += [b["proj"][0], *b["proj"][1].values()]
    leaves += [tp["head"]["w"], tp["head"]["b"]]
    x = torch.from_numpy(resnet["x"]).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(resnet["y"])

    def bn(h, p):
        return F.batch_norm(h, None, None, p["scale"], p["bias"], training=True,
                            eps=BN_EPS)

    def conv(h, w, s=1):
        """A 3x3 convolution with JAX's SAME padding (at stride 2: one row/column after)."""
        if s == 1:
            return F.conv2d(h, w, padding=1)
        return F.conv2d(F.pad(h, (0, 1, 0, 1)), w, stride=s)

    def resnet_step():
        h = F.relu(bn(conv(x, tp["stem"][0]), tp["stem"][1]))
        for b in tp["blocks"]:
            a = F.relu(bn(conv(h, b["conv1"], b["strides"]), b["bn1"]))
            a = bn(conv(a, b["conv2"]), b["bn2"])
            sc = h if b["proj"] is None else bn(F.conv2d(h, b["proj"][0],
                                                         stride=b["strides"]), b["proj"][1])
            h = F.relu(a + sc)
        logits = h.mean((2, 3)) @ tp["head"]["w"] + tp["head"]["b"]
        loss = F.cross_entropy(logits, y)
        return loss, torch.autograd.grad(loss, leaves)

    p = text["params"]
    emb = t(p["embedding"]["embedding"])
    gru = torch.nn.GRU(EMBED, HIDDEN, batch_first=True)
    with torch.no_grad():  # funcnet keeps (in, 3H) matrices; PyTorch (3H, in), gates r, z, n
        gru.weight_ih_l0.copy_(torch.from_numpy(np.asarray(p["encoder"]["w_i"]).T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(np.asarray(p["encoder"]["w_h"]).T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(np.asarray(p["encoder"]["b_i"])))
        gru.bias_hh_l0.copy_(torch.from_numpy(np.asarray(p["encoder"]["b_h"])))
    hw, hb = t(p["head"]["w"]), t(p["head"]["b"])
    ids = torch.from_numpy(text["ids"])
    lengths = torch.from_numpy(text["lengths"])
    ty = torch.from_numpy(text["y"])
    text_leaves = [emb, *gru.parameters(), hw, hb]

    def text_step():
        packed = torch.nn.utils.rnn.pack_padded_sequence(F.embedding(ids, emb), lengths,
                                                         batch_first=True,
                                                         enforce_sorted=False)
        _, h = gru(packed)
        loss = F.cross_entropy(h[0] @ hw + hb, ty)
        return loss, torch.autograd.grad(loss, text_leaves)

    return {
        "resnet": dict(name="PyTorch eager", run=resnet_step,
                       value_and_grad=lambda: _torch_loss_and_grads(resnet_step())),
        "text": dict(name="PyTorch eager (nn.GRU, packed)", run=text_step,
                     value_and_grad=lambda: _torch_loss_and_grads(text_step())),
    }


def _torch_loss_and_grads(out):
    loss, grads = out
    return float(loss.detach()), [g.numpy() for g in grads]


# ---------------------------------------------------------------------------
# Checks and timing


def _norm(tree_or_list) -> float:
    leaves = fn.tree.leaves(tree_or_list)
    return float(np.sqrt(sum(float(np.sum(np.square(np.asarray(a, np.float64))))
                             for a in leaves)))


def check_agreement(problem: str, funcnet_row: dict, others: list[dict]) -> None:
    """Losses agree to 1e-4 and gradient norms (layouts differ) to 1e-3."""
    loss, grads = funcnet_row["value_and_grad"]()
    norm = _norm(grads)
    for row in others:
        other_loss, other_grads = row["value_and_grad"]()
        other_norm = _norm(other_grads)
        ok = (abs(other_loss - loss) <= 1e-4 * max(1.0, abs(loss))
              and abs(other_norm - norm) <= 1e-3 * norm)
        row["loss_diff"] = abs(other_loss - loss)
        row["grad_norm_rel_diff"] = abs(other_norm - norm) / norm
        if not ok:
            raise AssertionError(f"{problem}: {row['name']} disagrees with funcnet: loss "
                                 f"{other_loss} vs {loss}, gradient norm {other_norm} vs "
                                 f"{norm}")


def time_round_robin(rows: list[dict], repeat: int, min_time: float) -> None:
    for row in rows:
        row["run"]()  # warm up (compile)
        elapsed = timeit.Timer(row["run"]).timeit(1)
        row["number"] = max(1, round(min_time / max(elapsed, 1e-9)))
        row["times"] = []
    for _ in range(repeat):
        for row in rows:
            row["times"].append(timeit.Timer(row["run"]).timeit(row["number"]) / row["number"])
    base = next((r for r in rows if r["name"].startswith("JAX")), rows[0])
    for row in rows:
        row["min"] = min(row["times"])
        row["median"] = statistics.median(row["times"])
        row["ratio"] = statistics.median(a / b for a, b in zip(row["times"], base["times"]))
        row["baseline"] = base["name"]


def set_threads(n: int) -> None:
    """Limit every library to ``n`` threads (before JAX is imported)."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               f"=false intra_op_parallelism_threads={n}").strip()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        print("note: threadpoolctl is not installed; NumPy's BLAS threads are not limited")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def environment() -> dict:
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "python": platform.python_version(), "numpy": np.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "funcnet": fn.__version__,
           "backend": fn.get_backend().name}
    for mod in ("jax", "torch"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return env


def run(args) -> dict:
    problems = {"resnet": resnet_problem(), "text": text_problem()}
    frameworks = {}
    if not args.no_frameworks:
        for name, factory in (("jax", jax_rows), ("torch", torch_rows)):
            try:
                frameworks[name] = factory(problems["resnet"], problems["text"])
            except ImportError:
                print(f"note: {name} is not installed; its rows are skipped")
    results = {}
    for problem in ("resnet", "text"):
        funcnet_row = dict(name="funcnet jit(value_and_grad)", run=problems[problem]["run"],
                           value_and_grad=problems[problem]["value_and_grad"])
        others = [rows[problem] for rows in frameworks.values()]
        check_agreement(problem, funcnet_row, others)
        rows = [funcnet_row] + others
        time_round_robin(rows, args.repeat, args.min_time)
        results[problem] = [{k: v for k, v in r.items() if k not in ("run", "value_and_grad")}
                            for r in rows]
    return results


def print_report(env: dict, results: dict) -> None:
    titles = {"resnet": f"ResNet-8 forward + backward, batch {RESNET_BATCH}x{IMAGE}x{IMAGE}x3",
              "text": f"GRU text classifier forward + backward, batch {TEXT_BATCH} x length "
                      f"{SEQ_LEN} (padded)"}
    print(f"funcnet.nn benchmark (numpy {env['numpy']}, {env['cpus']} CPUs, backend "
          f"{env['backend']}, jax {env.get('jax', '-')}, torch {env.get('torch', '-')})")
    for problem, rows in results.items():
        print(f"\n{titles[problem]}")
        print(f"    {'':36s} {'min ms':>9s} {'median ms':>10s} {'ratio':>8s}")
        for r in rows:
            print(f"    {r['name']:36s} {r['min'] * 1e3:9.2f} {r['median'] * 1e3:10.2f} "
                  f"{r['ratio']:7.2f}x")
        print(f"    (ratio: median over rounds of row / {rows[0]['baseline']})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds each timed repeat of a row runs (about)")
    parser.add_argument("--threads", type=int, help="limit BLAS, XLA and PyTorch threads")
    parser.add_argument("--no-frameworks", action="store_true", help="skip JAX and PyTorch")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.min_time = 2, 0.05
    if args.threads:
        set_threads(args.threads)
    env = environment()
    results = run(args)
    print_report(env, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, **results}, indent=2)
                                   + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
