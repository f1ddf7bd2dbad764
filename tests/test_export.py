"""Exported models: round trips of real models, a fresh process without the source,
input checks, transforms of loaded models, version refusal and corrupt files."""

from __future__ import annotations

import collections
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import funcnet as fn
import funcnet.export  # noqa: F401  (makes fn.export available before funcnet/__init__ lists it)
import funcnet.numpy as fnp
from funcnet import checkpoint_io, lax, nn, random
from funcnet.export import Exported, ExportError

ROOT = Path(__file__).resolve().parent.parent
Pair = collections.namedtuple("Pair", "first second")


def _f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_trees_close(a, b, tol=1e-6):
    assert repr(fn.tree.structure(a)) == repr(fn.tree.structure(b))
    for x, y in zip(fn.tree.leaves(a), fn.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def round_trip(tmp_path, fun, *args, name="model.fnx"):
    """Export, save, load; check the loaded model against ``fun`` on ``args``."""
    path = fn.export(fun, *args).save(tmp_path / name)
    model = fn.export.load(path)
    assert_trees_close(model(*args), fun(*args))
    return model, path


# ---------------------------------------------------------------------------
# models


def mlp():
    net = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(3), nn.LogSoftmax)
    _, params = net.init(random.key(0), (-1, 4))
    return lambda x: net.apply(params, x), (_f32(5, 4),)


def lstm():
    net = nn.RNN(nn.LSTMCell(6))
    _, params = net.init(random.key(1), (-1, 7, 3))
    return lambda xs: net.apply(params, xs), (_f32(2, 7, 3),)


def scan_rnn():
    w, u = _f32(4, 4, seed=1) * 0.5, _f32(3, 4, seed=2)

    def rnn(xs):
        def step(h, x):
            h = fnp.tanh(h @ w + x @ u)
            return h, fnp.sum(h)

        return lax.scan(step, fnp.zeros(4), xs)

    return rnn, (_f32(9, 3),)


def cnn():
    net = nn.serial(nn.Conv2D(4, (3, 3)), nn.Relu, nn.MaxPool2D((2, 2)), nn.Flatten,
                    nn.Dense(2))
    _, params = net.init(random.key(2), (-1, 8, 8, 3))
    return lambda img: net.apply(params, img), (_f32(2, 8, 8, 3),)


def raw_conv():
    w = _f32(3, 3, 3, 5, seed=3)

    def f(img):
        y = lax.conv(img, w, (1, 1), "SAME")
        return lax.max_pool(fnp.maximum(y, 0.0), (2, 2), (2, 2))

    return f, (_f32(1, 6, 6, 3),)


def with_cond():
    def f(x):
        return lax.cond(fnp.sum(x) > 0, lambda y: y * 2.0, lambda y: y - 1.0, x)

    return f, (_f32(3),)


MODELS = {"mlp": mlp, "lstm": lstm, "scan_rnn": scan_rnn, "cnn": cnn, "raw_conv": raw_conv,
          "cond": with_cond}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_models_round_trip(tmp_path, make):
    fun, args = make()
    model, _ = round_trip(tmp_path, fun, *args)
    assert isinstance(model, Exported)
    assert model.input_shapes == [a.shape for a in args]


def test_cond_takes_both_branches_after_loading(tmp_path):
    fun, (x,) = with_cond()
    model, _ = round_trip(tmp_path, fun, x)
    for v in (np.abs(x), -np.abs(x)):
        np.testing.assert_allclose(model(v), fun(v))


def test_more_control_flow_and_indexing(tmp_path):
    x = _f32(4, 3)
    round_trip(tmp_path, lambda x: lax.while_loop(lambda c: c[0] < 5,
                                                   lambda c: (c[0] + 1, c[1] * 1.5), (0, x)), x)
    round_trip(tmp_path, lambda x: lax.fori_loop(0, 3, lambda i, c: c * 0.5 + 1.0, x), x)
    round_trip(tmp_path, lambda i, x: lax.switch(i, [lambda y: y, lambda y: -y,
                                                     lambda y: y * 3.0], x), np.int32(2), x)
    round_trip(tmp_path, lambda x: x[1:, ::2].sum() + x[fnp.array([0, 2])][:, None, 0:1]
               + fnp.at(x)[0, 1].add(2.0)[3], x)
    round_trip(tmp_path, lambda x: fnp.sort(x, axis=0) + fnp.argmax(x, 0) + fnp.cumsum(x, 0)
               + fnp.pad(x, 1)[1:-1, 1:-1] + fnp.flip(x, 0), x)
    round_trip(tmp_path, lambda k: random.normal(k, (3,)) + random.uniform(random.split(k)[1],
                                                                           (3,)), random.key(4))
    round_trip(tmp_path, lambda x: fnp.fft.rfft(x).real.sum() + fnp.linalg.det(x[:3]), x)


def test_nested_jit_inside_scan_and_debug_print(tmp_path, capsys):
    w = np.array([2.0, 3.0])
    body = fn.jit(lambda c, x: (c + x * w, c * x))  # a jit_call with a constant, in a body
    round_trip(tmp_path, lambda xs: lax.scan(body, np.zeros(2), xs), np.ones((4, 2)))

    def shout(x):
        fn.debug.print("x is {x}", x=x)
        return x * 2

    model, _ = round_trip(tmp_path, shout, np.ones(2))
    capsys.readouterr()
    model(np.full(2, 3.0))
    assert "x is [3. 3.]" in capsys.readouterr().out


def test_pytrees_in_and_out(tmp_path):
    def f(params, pair, scale):
        return {"y": pair.first @ params["w"] * scale, "aux": (pair.second, None)}

    params = {"w": _f32(3, 2)}
    pair = Pair(_f32(4, 3), np.arange(3))
    model, _ = round_trip(tmp_path, f, params, pair, 2.0)
    out = model(params, pair, 3.0)  # the user's namedtuple class is accepted
    np.testing.assert_allclose(out["y"], pair.first @ params["w"] * 3.0, rtol=1e-6)
    assert out["aux"][1] is None
    assert model.input_paths == ["[0]['w']", "[1].first", "[1].second", "[2]"]
    assert model.input_shapes == [(3, 2), (4, 3), (3,), ()]
    assert model.input_dtypes == [np.dtype("float32"), np.dtype("float32"),
                                  np.dtype("int64"), np.dtype("float32")]
    struct = model.output_structure
    assert struct["y"] == fn.ShapeDtypeStruct((4, 2), np.float32)
    assert struct["aux"][0] == fn.ShapeDtypeStruct((3,), np.int64)
    assert model.input_structure[1].first == fn.ShapeDtypeStruct((4, 3), np.float32)
    assert model.output_shapes == [(3,), (4, 2)]
    assert "Pair(first=float32[4,3], second=int64[3])" in model.signature


def test_namedtuple_outputs_keep_their_fields(tmp_path):
    model, _ = round_trip(tmp_path, lambda x: Pair(x, x + 1), np.ones(2))
    out = model(np.ones(2))
    assert type(out).__name__ == "Pair" and out._fields == ("first", "second")
    np.testing.assert_array_equal(out.second, [2.0, 2.0])


def test_shape_dtype_struct_examples_and_metadata(tmp_path):
    w = _f32(3, 3)
    exp = fn.export(lambda x: x @ w, fn.ShapeDtypeStruct((2, 3), "float32"), name="proj",
                    metadata={"labels": ["a", "b", "c"], "version": 2})
    model = fn.export.load(exp.save(tmp_path / "p.fnx"))
    assert model.name == "proj" and model.metadata == {"labels": ["a", "b", "c"], "version": 2}
    assert model.funcnet_version == fn.__version__ and model.format_version == 1
    x = _f32(2, 3)
    np.testing.assert_allclose(model(x), x @ w, rtol=1e-6)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        fn.export(lambda x: x, np.ones(2), metadata={"f": print})


# ---------------------------------------------------------------------------
# transforms of a loaded model


def test_grad_vmap_jit_of_loaded_model(tmp_path):
    w = _f32(3, 2)

    def f(x):
        return fnp.sum(fnp.tanh(x @ w) ** 2)

    model, _ = round_trip(tmp_path, f, _f32(3))
    x, xs = _f32(3, seed=5), _f32(6, 3, seed=6)
    np.testing.assert_allclose(fn.grad(model)(x), fn.grad(f)(x), rtol=1e-5)
    np.testing.assert_allclose(fn.vmap(model)(xs), fn.vmap(f)(xs), rtol=1e-5)
    np.testing.assert_allclose(fn.jit(model)(x), f(x), rtol=1e-6)
    np.testing.assert_allclose(fn.jacfwd(model)(x), fn.grad(f)(x), rtol=1e-5)
    np.testing.assert_allclose(fn.vmap(fn.grad(model))(xs), fn.vmap(fn.grad(f))(xs), rtol=1e-5)


def test_grad_through_a_loaded_scan(tmp_path):
    fun, (xs,) = scan_rnn()
    model, _ = round_trip(tmp_path, fun, xs)

    def loss(m):
        return lambda v: fnp.sum(m(v)[1]) + fnp.sum(m(v)[0])

    np.testing.assert_allclose(fn.grad(loss(model))(xs), fn.grad(loss(fun))(xs), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("backend", fn.backends.available())
def test_loaded_model_runs_on_every_backend(tmp_path, backend):
    fun, args = mlp()
    path = fn.export(fun, *args).save(tmp_path / "m.fnx")
    with fn.use_backend(backend):
        model = fn.export.load(path)
        out = model(*[fn.device_put(a) for a in args])
        assert isinstance(out, fn.get_backend().array_type)
    np.testing.assert_allclose(fn.to_numpy(out), fun(*args), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# input checks


@pytest.fixture
def small_model(tmp_path):
    exp = fn.export(lambda x, s: x * s, _f32(2, 3), np.float32(2))
    return fn.export.load(exp.save(tmp_path / "s.fnx"))


def test_wrong_shape_is_a_clear_error(small_model):
    with pytest.raises(TypeError, match=r"argument 0: expected float32\[2,3\], got "
                                        r"float32\[3,2\]"):
        small_model(_f32(3, 2), np.float32(1))


def test_wrong_dtype_is_a_clear_error(small_model):
    with pytest.raises(TypeError, match=r"argument 1: expected float32\[\], got int32\[\]"):
        small_model(_f32(2, 3), np.int32(1))


def test_wrong_structure_and_non_arrays(small_model):
    with pytest.raises(TypeError, match="structured as"):
        small_model(_f32(2, 3))
    with pytest.raises(TypeError, match="argument 0: expected float32.*got a str"):
        small_model("x", 1.0)


def test_python_scalars_are_accepted_for_scalar_inputs(small_model):
    np.testing.assert_allclose(small_model(np.ones((2, 3), np.float32), 3), np.full((2, 3), 3.0))
    assert small_model(np.ones((2, 3), np.float32), 0.5).dtype == np.float32


# ---------------------------------------------------------------------------
# the file


def test_fresh_process_without_the_source(tmp_path):
    """Each model is loaded and run by a new interpreter that never imports this file."""
    cases = {}
    for key, make in MODELS.items():
        fun, args = make()
        fn.export(fun, *args).save(tmp_path / f"{key}.fnx")
        np.savez(tmp_path / f"{key}_io.npz", *args,
                 *[np.asarray(o) for o in fn.tree.leaves(fun(*args))])
        cases[key] = len(args)
    script = textwrap.dedent(f"""
        import sys, numpy as np
        import funcnet as fn
        import funcnet.export
        assert "test_export" not in sys.modules
        for key, n_args in {cases!r}.items():
            model = fn.export.load(key + ".fnx")
            data = np.load(key + "_io.npz", allow_pickle=False)
            arrays = [data["arr_%d" % i] for i in range(len(data.files))]
            outs = fn.tree.leaves(model(*arrays[:n_args]))
            assert len(outs) == len(arrays) - n_args, key
            for got, want in zip(outs, arrays[n_args:]):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=key)
            print("ok", key)
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [w for k in MODELS for w in ("ok", k)]


def test_file_is_pickle_free_and_deterministic(tmp_path):
    fun, args = mlp()
    a = fn.export(fun, *args).save(tmp_path / "a.fnx")
    b = fn.export(fun, *args).save(tmp_path / "b.fnx")
    assert open(a, "rb").read() == open(b, "rb").read()
    with np.load(a, allow_pickle=False) as npz:
        meta = json.loads(npz["__funcnet__"].tobytes())
        consts = [npz[k] for k in npz.files if k != "__funcnet__"]
    assert meta["format"] == "funcnet.export" and meta["format_version"] == 1
    assert meta["funcnet_version"] == fn.__version__
    assert meta["in_avals"] == [[[5, 4], "float32"]]
    assert sum(c.size for c in consts) == 4 * 16 + 16 + 16 * 3 + 3  # the weights


def test_serialize_and_deserialize_bytes():
    fun, args = cnn()
    data = fn.export(fun, *args).serialize(compress=True)
    assert_trees_close(fn.export.deserialize(data)(*args), fun(*args))


def _edit_meta(path, out, edit):
    with zipfile.ZipFile(path) as zf:
        entries = {n[:-4]: np.load(io.BytesIO(zf.read(n)), allow_pickle=False)
                   for n in zf.namelist()}
    meta = json.loads(entries.pop("__funcnet__").tobytes())
    edit(meta)
    return checkpoint_io.write_container(out, meta, entries)


def test_incompatible_version_is_refused(tmp_path, small_model):
    src = small_model.save(tmp_path / "m.fnx")
    newer = _edit_meta(src, tmp_path / "newer.fnx",
                       lambda m: m.update(format_version=7, funcnet_version="3.1.0"))
    with pytest.raises(ExportError, match=r"funcnet.export format version 7 \(by funcnet "
                                          r"3.1.0\); this funcnet .* reads format version 1 "
                                          r"only: upgrade funcnet"):
        fn.export.load(newer)
    older = _edit_meta(src, tmp_path / "older.fnx", lambda m: m.update(format_version=0))
    with pytest.raises(ExportError, match="format version 0.*re-create it"):
        fn.export.load(older)


def test_unknown_primitive_is_refused(tmp_path, small_model):
    def edit(meta):
        for g in meta["graphs"]:
            for e in g["eqns"]:
                e["p"] = "teleport"

    bad = _edit_meta(small_model.save(tmp_path / "m.fnx"), tmp_path / "bad.fnx", edit)
    with pytest.raises(ExportError, match="primitive 'teleport', which this funcnet"):
        fn.export.load(bad)


def test_graph_that_does_not_typecheck_is_refused(tmp_path, small_model):
    def edit(meta):
        meta["graphs"][meta["graph"]]["eqns"][0]["out"][0][1][0] = [9, 9]

    bad = _edit_meta(small_model.save(tmp_path / "m.fnx"), tmp_path / "bad.fnx", edit)
    with pytest.raises(ExportError, match="does not type-check"):
        fn.export.load(bad)


def test_corrupt_truncated_and_foreign_files(tmp_path, small_model):
    data = small_model.serialize()
    (tmp_path / "cut.fnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="truncated or corrupt"):
        fn.export.load(tmp_path / "cut.fnx")
    with pytest.raises(ExportError, match="truncated or corrupt"):
        fn.export.deserialize(data[:-5])
    ckpt = checkpoint_io.save(tmp_path / "c.npz", {"w": np.ones(2)})
    with pytest.raises(ExportError, match="is a funcnet checkpoint; load it with "
                                          "fn.checkpoint_io.load"):
        fn.export.load(ckpt)
    with pytest.raises(checkpoint_io.CheckpointError, match="is an exported funcnet model"):
        checkpoint_io.load(small_model.save(tmp_path / "m.fnx"))


def test_unserialisable_parameters_name_the_primitive():
    @fn.custom_vjp
    def f(x):
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), x), lambda r, g: (g * fnp.cos(r),))
    _, f_jvp = fn.linearize(f, np.ones(3))
    with pytest.raises(ExportError, match="primitive 'custom_vjp_lin' has parameter 'bwd' "
                                          "holding a Python function"):
        fn.export(f_jvp, np.ones(3))
    # the forward function and its gradient inline the rules: both export
    g = fn.export(fn.grad(lambda x: fnp.sum(f(x))), np.ones(3))
    np.testing.assert_allclose(fn.export.deserialize(g.serialize())(np.ones(3)),
                               np.cos(np.ones(3)))


def test_export_errors_for_bad_arguments():
    with pytest.raises(TypeError, match="expected a function"):
        fn.export(3, np.ones(2))
    with pytest.raises(TypeError, match="example argument 1 is a str"):
        fn.export(lambda x, s: x, np.ones(2), "relu")

    @fn.jit
    def inside(x):
        fn.export(lambda y: y * x, np.ones(2))
        return x

    with pytest.raises(ExportError, match="outside of transforms"):
        inside(np.ones(2))


def test_module_is_callable_and_exposes_functions():
    import funcnet.export as fx

    assert callable(fx) and fx.export is not fx
    exp = fx(lambda x: x + 1, np.zeros(2))
    assert isinstance(exp, fx.Exported)
    assert repr(exp).startswith("<Exported <lambda>: (float64[2]) -> float64[2]")
