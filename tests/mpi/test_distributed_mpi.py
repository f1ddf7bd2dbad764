"""funcnet.distributed in a real MPI job: run by ``.ci/run`` as

    mpirun -n 2 --allow-run-as-root --oversubscribe python -m pytest -q tests/mpi

Every rank runs every test in the same order, so the collectives pair up.
Under the ordinary test command (one process) the module is skipped.
Hypothesis runs derandomized, so both ranks draw the same examples; each
rank fills the drawn tree with its own values and computes the expected
reduction with NumPy from every rank's values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import distributed, nn, optim, random, training
from funcnet.distributed import transports

pytestmark = pytest.mark.skipif(distributed.size() < 2,
                                reason="needs an MPI job: mpirun -n 2 python -m pytest tests/mpi")

SAME_ON_EVERY_RANK = settings(derandomize=True, database=None, max_examples=25, deadline=None,
                              suppress_health_check=list(HealthCheck))

DTYPES = ["float32", "float64", "int32", "int64", "complex64"]


def gather(obj):
    """Every rank's ``obj`` (small test metadata only)."""
    return distributed.world().comm.allgather(obj)


def values(spec, rank: int, seed: int):
    """The tree ``spec`` describes, filled with rank ``rank``'s values."""
    rng = np.random.default_rng(seed * 1000 + rank)
    out = {}
    for name, (dtype, shape) in spec.items():
        if dtype is None:
            out[name] = None
        elif dtype.startswith("complex"):
            out[name] = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
        elif dtype.startswith("float"):
            out[name] = rng.normal(size=shape).astype(dtype)
        else:
            out[name] = rng.integers(-50, 50, size=shape).astype(dtype)
    return out


def reference(arrays, op):
    stacked = np.stack(arrays)
    if op == "sum":
        return stacked.sum(axis=0, dtype=stacked.dtype)
    if op == "max":
        return stacked.max(axis=0)
    if op == "min":
        return stacked.min(axis=0)
    if stacked.dtype.kind in "iu":  # the mean of integers rounds toward zero
        return np.trunc(stacked.sum(axis=0) / len(arrays)).astype(stacked.dtype)
    return stacked.mean(axis=0, dtype=stacked.dtype)


leaf_specs = st.tuples(st.sampled_from(DTYPES + [None]),
                       st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple))
tree_specs = st.dictionaries(st.sampled_from("abcdefgh"), leaf_specs, min_size=1, max_size=6)


@SAME_ON_EVERY_RANK
@given(tree_specs, st.sampled_from(["sum", "mean", "max", "min"]), st.integers(0, 10_000))
def test_allreduce_equals_the_numpy_reduction(spec, op, seed):
    if op in ("max", "min"):
        spec = {k: (d if d is None or not d.startswith("complex") else "float32", s)
                for k, (d, s) in spec.items()}
    w = distributed.world()
    mine = values(spec, w.rank, seed)
    every = [values(spec, r, seed) for r in range(w.size)]
    out = distributed.allreduce(mine, op=op)
    for name, (dtype, _) in spec.items():
        if dtype is None:
            assert out[name] is None
            continue
        want = reference([t[name] for t in every], op)
        assert out[name].dtype == want.dtype and out[name].shape == want.shape
        np.testing.assert_allclose(out[name], want, rtol=1e-6, atol=1e-6)
    # the input is never modified
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(v) for v in mine.values() if v is not None] + [np.zeros(0)]),
        np.concatenate([np.ravel(v) for v in values(spec, w.rank, seed).values()
                        if v is not None] + [np.zeros(0)]))


def test_one_collective_per_dtype(monkeypatch):
    calls = []
    real = transports.MPITransport.allreduce
    monkeypatch.setattr(transports.MPITransport, "allreduce",
                        lambda self, buf, op: (calls.append((buf.dtype, buf.size)),
                                               real(self, buf, op)))
    tree = {f"w{i}": np.ones((3, i + 1), np.float32) for i in range(10)}
    tree.update({"n": np.arange(4, dtype=np.int32), "m": np.int32(1), "skip": None})
    out = distributed.allreduce(tree, op="sum")
    assert sorted((str(d), n) for d, n in calls) == [("float32", 3 * 55), ("int32", 5)]
    assert out["w3"].shape == (3, 4) and float(out["w3"][0, 0]) == distributed.size()


def test_allreduce_under_jit_grad_and_vmap():
    w = distributed.world()
    x = np.arange(3, dtype=np.float32) + w.rank
    mean_x = np.mean([np.arange(3) + r for r in range(w.size)], axis=0)
    jitted = fn.jit(lambda t: distributed.allreduce(t))
    np.testing.assert_allclose(jitted({"x": x})["x"], mean_x)
    assert jitted.trace_count == 1
    np.testing.assert_allclose(jitted({"x": x + 1})["x"], mean_x + 1)
    assert jitted.trace_count == 1

    # d/dw of sum over ranks of sum((mean_r w*x_r)^2) = 2 * size * mean(w*x) * x_r / size
    def loss(v):
        return fnp.sum(distributed.allreduce(v * x) ** 2)

    v = np.ones(3, np.float32)
    want = 2 * mean_x * x
    np.testing.assert_allclose(fn.grad(loss)(v), want, rtol=1e-6)
    np.testing.assert_allclose(fn.jit(fn.grad(loss))(v), want, rtol=1e-6)
    batched = fn.vmap(lambda row: distributed.allreduce(row, op="sum"))(np.ones((4, 3)) * w.rank)
    np.testing.assert_allclose(batched, np.full((4, 3), sum(range(w.size))))
    with pytest.raises(TypeError, match="no derivative"):
        fn.grad(lambda v: fnp.sum(distributed.allreduce(v, op="max")))(v)


def test_allreduce_refuses_booleans_and_text_naming_the_leaf():
    with pytest.raises(TypeError, match=r"\['mask'\] of dtype bool"):
        distributed.allreduce({"mask": np.ones(3, bool), "w": np.ones(2)})
    with pytest.raises(TypeError, match=r"\['name'\] of dtype <U3"):
        distributed.allreduce({"name": "abc", "w": np.ones(2)})


def test_mismatched_trees_are_reported_with_their_paths():
    w = distributed.world()
    tree = {"w": np.ones((3, 4) if w.rank == 0 else (4, 4), np.float32), "b": np.ones(4)}
    if w.rank == 1:
        tree["extra"] = np.ones(1)
    with pytest.raises(distributed.DistributedError) as info:
        distributed.allreduce(tree)
    text = str(info.value)
    assert "['w']: float32[3,4] on rank 0, float32[4,4] on rank 1" in text
    assert "['extra']: on rank 1, missing on rank 0" in text
    # the job is still usable afterwards
    assert float(distributed.allreduce({"ok": np.ones(1)}, op="sum")["ok"][0]) == w.size


def test_broadcast_gives_every_rank_the_roots_tree():
    w = distributed.world()
    for root in range(w.size):
        tree = {"w": np.full((2, 3), w.rank, np.float16), "k": random.key(w.rank),
                "step": w.rank * 10, "name": f"rank{w.rank}", "none": None,
                "c": np.full(2, w.rank + 1j, np.complex128), "empty": np.zeros((0, 3))}
        out = distributed.broadcast(tree, root=root)
        np.testing.assert_array_equal(out["w"], np.full((2, 3), root, np.float16))
        np.testing.assert_array_equal(out["k"], random.key(root))
        assert out["step"] == root * 10 and out["name"] == f"rank{root}" and out["none"] is None
        assert out["c"].dtype == np.complex128 and out["c"][0] == root + 1j
        assert out["empty"].shape == (0, 3)


def test_broadcast_mismatch_names_the_paths():
    w = distributed.world()
    tree = {"w": np.ones(3 if w.rank == 0 else 5)}
    with pytest.raises(distributed.DistributedError, match=r"\['w'\]: float64\[3\] on rank 0"):
        distributed.broadcast(tree)
    tree = {"step": 1} if w.rank == 0 else {"step": 1, "more": None, "x": 2.0}
    with pytest.raises(distributed.DistributedError, match=r"\['x'\]: on rank 1, missing on rank 0"):
        distributed.broadcast(tree)


@SAME_ON_EVERY_RANK
@given(st.integers(0, 60), st.integers(0, 2**31 - 1))
def test_shards_cover_the_data_exactly_once(n, seed):
    key = random.key(seed)
    x = np.arange(n)
    mine = distributed.shard({"x": x, "y": -x}, key)
    assert (mine["y"] == -mine["x"]).all()
    parts = gather(mine["x"].tolist())
    union = sorted(v for part in parts for v in part)
    assert union == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # the strided shards are the one-process permutation, dealt out in turn
    order = np.asarray(random.permutation(key, n))
    for r, part in enumerate(parts):
        assert part == order[r::len(parts)].tolist()


def _single_process(monkeypatch):
    """Make funcnet's training code see a one-process job (for reference runs)."""
    monkeypatch.setattr(distributed, "size", lambda: 1)
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    monkeypatch.setattr(distributed, "is_main", lambda: True)


@pytest.mark.parametrize("sizes", [(8, 8), (5, 3)])
def test_training_steps_equal_one_process_on_the_combined_batch(sizes):
    w = distributed.world()
    if len(sizes) != w.size:
        pytest.skip("written for 2 processes")
    rng = np.random.default_rng(0)
    n = sum(sizes)
    x = rng.normal(size=(5, n, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=(5, n))
    model = nn.serial(nn.Dense(16), nn.BatchNorm(0.9), nn.Relu, nn.Dense(3))
    tx = optim.adamw(1e-2)
    _, params0, state0 = model.init_with_state(random.key(0), (-1, 6))
    lo = sum(sizes[:w.rank])
    mine = slice(lo, lo + sizes[w.rank])

    def run(step, part):
        p, s, o = params0, state0, tx.init(params0)
        for t in range(5):
            p, s, o, m = step(p, s, o, (x[t][part], y[t][part]), random.key(t))
        return p, s, m

    # BatchNorm normalises each process's share with its own batch statistics, so with it
    # the check is that every rank holds the same parameters and running statistics
    p_bn, s_bn, _ = run(training.make_train_step(model, tx), mine)
    for a, b in zip(fn.tree.leaves((p_bn, s_bn)), fn.tree.leaves(gather((p_bn, s_bn))[0])):
        np.testing.assert_array_equal(a, b)
    plain = nn.serial(nn.Dense(16), nn.Tanh, nn.Dense(3))
    _, params0, state0 = plain.init_with_state(random.key(0), (-1, 6))
    p_dist, _, m_dist = run(training.make_train_step(plain, tx), mine)
    p_ref, _, m_ref = run(training.make_train_step(plain, tx, average_across_processes=False),
                          slice(None))
    for a, b in zip(fn.tree.leaves(p_dist), fn.tree.leaves(p_ref)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(m_dist["loss"], m_ref["loss"], rtol=1e-5)
    np.testing.assert_allclose(m_dist["grad_norm"], m_ref["grad_norm"], rtol=1e-5)

    # BatchNorm(sync=True) normalises with the statistics of the combined batch: the
    # processes then train exactly as one process on it, running statistics included.
    # (SGD: the bias before a BatchNorm has a zero gradient up to rounding, which Adam
    # would blow up into full-size steps of noise.)
    synced = nn.serial(nn.Dense(16), nn.BatchNorm(0.9, sync=True), nn.Relu, nn.Dense(3))
    _, params0, state0 = synced.init_with_state(random.key(0), (-1, 6))
    tx = optim.sgd(0.1)
    p_dist, s_dist, m_dist = run(training.make_train_step(synced, tx), mine)
    p_ref, s_ref, m_ref = run(training.make_train_step(synced, tx,
                                                       average_across_processes=False),
                              slice(None))
    for a, b in zip(fn.tree.leaves((p_dist, s_dist)), fn.tree.leaves((p_ref, s_ref))):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(m_dist["loss"], m_ref["loss"], rtol=1e-5)


def test_evaluate_shares_the_work_and_counts_everything():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=37)
    model = nn.models.MLP((8,), num_classes=3)
    _, params, state = model.init_with_state(random.key(0), (-1, 4))
    got = training.evaluate(model, params, state, (x, y), batch_size=8)
    logits, losses = training.make_eval_step(model)(params, state, x, y)
    want = training.classification_metrics(y, np.argmax(np.asarray(logits), axis=-1), 3)
    assert got["confusion"] == want["confusion"] and got["count"] == 37
    np.testing.assert_allclose(got["loss"], float(np.mean(np.asarray(losses))), rtol=1e-5)
    # fewer examples than processes: a rank with nothing to evaluate still takes part
    tiny = training.evaluate(model, params, state, (x[:1], y[:1]))
    assert tiny["count"] == 1 and sum(map(sum, tiny["confusion"])) == 1


def _shared_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("shared")) if distributed.is_main() else ""
    return distributed.broadcast({"path": path})["path"]


def _fit(run_dir=None, epochs=4, resume=False):
    from funcnet import data

    x, y = data.load_digits()
    return training.fit(nn.models.MLP((16,), num_classes=10), optim.adam(3e-3),
                        (x[:300], y[:300]), (x[300:400], y[300:400]), epochs=epochs,
                        batch_size=30, seed=3, run_dir=run_dir, resume=resume, progress=False,
                        log=None, report=False)


def test_fit_follows_the_one_process_run_and_resumes_with_another_count(tmp_path_factory,
                                                                        monkeypatch):
    pytest.importorskip("sklearn")
    shared = _shared_dir(tmp_path_factory)
    distributed_run = _fit(run_dir=shared + "/two", epochs=2)
    with monkeypatch.context() as m:
        _single_process(m)
        straight = _fit(epochs=4)
        if distributed.world().is_main:  # one process continues the two-process run ...
            _fit(run_dir=shared + "/two", epochs=3, resume=True)
    distributed.barrier()
    resumed = _fit(run_dir=shared + "/two", epochs=4, resume=True)  # ... and two finish it
    assert resumed.state.epoch == 4 and resumed.state.step == straight.state.step
    for a, b in zip(fn.tree.leaves(resumed.state.params), fn.tree.leaves(straight.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert distributed_run.history[-1]["train_loss"] == pytest.approx(
        straight.history[1]["train_loss"], rel=1e-5)
    assert resumed.test_metrics["confusion"] == straight.test_metrics["confusion"]
    if distributed.is_main():
        records = training.read_metrics(shared + "/two/metrics.jsonl")
        assert [r["epoch"] for r in records] == [1, 2, 3, 4]


def test_broadcast_object_and_too_small_batches():
    w = distributed.world()
    assert distributed.broadcast_object({"run": "a"} if w.is_main else None) == {"run": "a"}
    x = np.zeros((6, 2), np.float32)
    y = np.zeros(6, np.int64)
    with pytest.raises(ValueError, match="batch_size 1 is smaller than the 2 processes"):
        training.fit(nn.models.MLP((4,), num_classes=2), optim.sgd(0.1), (x, y), epochs=1,
                     batch_size=1, progress=False, log=None)
    assert training.steps_per_epoch(7, 3) == 2  # the last batch of one example is skipped


def test_resnet_with_synchronised_batch_norm_equals_one_process():
    w = distributed.world()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=(2, 8))
    model = nn.models.ResNet(num_classes=3, stage_sizes=(1, 1), width=4, norm="sync_batch")
    tx = optim.sgd(0.05)
    _, params0, state0 = model.init_with_state(random.key(0), (-1, 8, 8, 1))
    mine = slice(4 * w.rank, 4 * w.rank + 4) if w.size == 2 else slice(None)

    def run(step, part):
        p, s, o = params0, state0, tx.init(params0)
        for t in range(2):
            p, s, o, _ = step(p, s, o, (x[t][part], y[t][part]), random.key(t))
        return p, s

    got = run(training.make_train_step(model, tx), mine)
    want = run(training.make_train_step(model, tx, average_across_processes=False), slice(None))
    for a, b in zip(fn.tree.leaves(got), fn.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
