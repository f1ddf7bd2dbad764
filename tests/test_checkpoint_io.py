"""Checkpoints: round trips, atomic writes, corrupt files, ``like=`` checks, no pickle."""

from __future__ import annotations

import collections
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.checkpoint_io as checkpoint_io
from funcnet.checkpoint_io import CheckpointError
from funcnet.testing import strategies as fst

Adam = collections.namedtuple("Adam", "count mu nu")
Empty = collections.namedtuple("Empty", "")


def assert_same_tree(a, b):
    """Equal structure, equal leaves of the same type (and dtype for arrays)."""
    la, ta = fn.tree.flatten(a)
    lb, tb = fn.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        assert type(x) is type(y), (x, y)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        elif isinstance(x, float) and np.isnan(x):
            assert np.isnan(y)
        else:
            assert x == y


def example_state():
    return {
        "params": {"dense": {"w": np.arange(12, dtype=np.float32).reshape(3, 4),
                             "b": np.zeros(4, np.float16)}},
        "opt": (Adam(np.int32(7), [np.ones(2), None], {"x": np.full((2, 2), -1.5)}), None),
        "epoch": 12, "lr": 1e-3, "done": False, "z": 1 + 2j, "inf": float("-inf"),
        "name": "mlp",
        "key": np.array([0, 42], np.uint32),
        "masks": [np.array([True, False]), np.zeros((0, 3), np.int8)],
        "i64": np.array(2**40, np.int64), "u64": np.array([2**63], np.uint64),
        "c64": np.array([1 + 1j], np.complex64),
        7: "an int key", (1, "t"): np.float64(0.25),
    }


def test_round_trip_with_like_restores_every_type(tmp_path):
    state = example_state()
    path = checkpoint_io.save(tmp_path / "ckpt.npz", state)
    assert path == str(tmp_path / "ckpt.npz")
    back = checkpoint_io.load(path, like=state)
    expect = fn.tree.map(lambda x: np.asarray(x) if isinstance(x, np.generic) else x, state)
    assert_same_tree(back, expect)
    assert isinstance(back["opt"][0], Adam)
    assert back["opt"][0].count == 7


def test_round_trip_without_like_gives_plain_containers(tmp_path):
    state = example_state()
    back = checkpoint_io.load(checkpoint_io.save(tmp_path / "c.npz", state))
    adam = back["opt"][0]
    assert type(adam) is tuple and len(adam) == 3  # the namedtuple comes back as a tuple
    assert back["opt"][1] is None and adam[1][1] is None
    assert back[7] == "an int key" and back["epoch"] == 12 and type(back["epoch"]) is int
    assert back["lr"] == 1e-3 and back["done"] is False and back["z"] == 1 + 2j
    assert back["inf"] == float("-inf")
    assert back[(1, "t")] == 0.25 and back[(1, "t")].dtype == np.float64
    np.testing.assert_array_equal(back["params"]["dense"]["w"], state["params"]["dense"]["w"])
    assert back["masks"][1].shape == (0, 3) and back["masks"][1].dtype == np.int8
    assert back["u64"][0] == 2**63
    plain = fn.tree.map(lambda x: np.asarray(x) if isinstance(x, np.generic) else x,
                        {k: v for k, v in state.items() if k != "opt"})
    assert_same_tree({k: v for k, v in back.items() if k != "opt"}, plain)


@pytest.mark.parametrize("tree", [{}, [], (), None, [None, {}], {"a": ()}, Empty(), 3, "s",
                                  np.float32(1.5)],
                         ids=lambda t: repr(t)[:20])
def test_empty_and_bare_trees(tmp_path, tree):
    path = checkpoint_io.save(tmp_path / "e.npz", tree)
    back = checkpoint_io.load(path, like=tree)
    expect = np.asarray(tree) if isinstance(tree, np.generic) else tree
    assert_same_tree(back, expect)


_dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64,
                           np.uint8, np.uint32, np.bool_, np.complex64])
_array_leaves = fst.arrays(fst.shapes(max_dims=3, max_side=3), _dtypes)
_scalar_leaves = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                           st.booleans(), st.text(max_size=5))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=fst.pytrees(st.one_of(_array_leaves, _scalar_leaves, st.none()), max_depth=3))
def test_random_pytrees_round_trip(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("hyp") / "t.npz"
    checkpoint_io.save(path, tree)
    assert_same_tree(checkpoint_io.load(path), tree)
    assert_same_tree(checkpoint_io.load(path, like=tree), tree)
    abstract = fn.tree.map(lambda x: fn.ShapeDtypeStruct(x.shape, x.dtype)
                           if isinstance(x, np.ndarray) else x, tree)
    assert_same_tree(checkpoint_io.load(path, like=abstract), tree)


def test_like_accepts_shape_dtype_structs_and_places_on_backend(tmp_path):
    params = {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    path = checkpoint_io.save(tmp_path / "p.npz", params)
    abstract = fn.eval_shape(lambda p: p, params)
    back = checkpoint_io.load(path, like=abstract)
    assert isinstance(back["w"], fn.get_backend().array_type)
    assert_same_tree(back, params)


def test_compressed_checkpoints_round_trip(tmp_path):
    big = {"w": np.zeros((200, 200), np.float32)}
    plain = checkpoint_io.save(tmp_path / "a.npz", big)
    packed = checkpoint_io.save(tmp_path / "b.npz", big, compress=True)
    assert os.path.getsize(packed) < os.path.getsize(plain) / 10
    assert_same_tree(checkpoint_io.load(packed, like=big), big)


def test_same_tree_gives_identical_bytes(tmp_path):
    state = example_state()
    a = checkpoint_io.save(tmp_path / "a.npz", state)
    b = checkpoint_io.save(tmp_path / "b.npz", state)
    assert open(a, "rb").read() == open(b, "rb").read()


# ---------------------------------------------------------------------------
# like= mismatches name the key path


@pytest.fixture
def saved(tmp_path):
    state = {"params": {"w": np.ones((3, 4), np.float32), "b": np.zeros(4, np.float32)},
             "opt": Adam(np.int32(0), np.ones(2), np.ones(2)), "epoch": 3}
    return checkpoint_io.save(tmp_path / "s.npz", state), state


def test_like_shape_mismatch_names_path_and_shapes(saved):
    path, state = saved
    like = {**state, "params": {**state["params"], "w": np.ones((4, 3), np.float32)}}
    with pytest.raises(CheckpointError, match=r"\['params'\]\['w'\]: expected float32\[4,3\] "
                                              r"\(from like\), found float32\[3,4\]"):
        checkpoint_io.load(path, like=like)


def test_like_dtype_mismatch(saved):
    path, state = saved
    like = {**state, "opt": state["opt"]._replace(count=np.int64(0))}
    with pytest.raises(CheckpointError, match=r"\['opt'\]\.count: expected int64\[\].*int32"):
        checkpoint_io.load(path, like=like)


def test_like_missing_and_extra_leaves(saved):
    path, state = saved
    like = {**state, "params": {"w": state["params"]["w"], "gamma": np.ones(4, np.float32)}}
    with pytest.raises(CheckpointError) as info:
        checkpoint_io.load(path, like=like)
    msg = str(info.value)
    assert "in like but not in the file: ['params']['gamma']" in msg
    assert "in the file but not in like: ['params']['b']" in msg


def test_like_python_scalar_type_mismatch(saved):
    path, state = saved
    with pytest.raises(CheckpointError, match=r"\['epoch'\]: expected a Python float"):
        checkpoint_io.load(path, like={**state, "epoch": 3.0})


def test_like_with_a_tuple_where_the_file_has_a_namedtuple(saved):
    path, state = saved
    with pytest.raises(CheckpointError, match=r"\['opt'\]\.count"):
        checkpoint_io.load(path, like={**state, "opt": tuple(state["opt"])})


def test_like_with_unusable_leaf(saved):
    path, state = saved
    with pytest.raises(TypeError, match=r"like's leaf at \['epoch'\] is a object"):
        checkpoint_io.load(path, like={**state, "epoch": object()})


# ---------------------------------------------------------------------------
# what cannot be saved


def test_unsaveable_leaves_name_the_path(tmp_path):
    with pytest.raises(TypeError, match=r"leaf at \['f'\]\[1\] is a function"):
        checkpoint_io.save(tmp_path / "x.npz", {"f": [1, lambda x: x]})
    with pytest.raises(TypeError, match=r"array at \['o'\] has dtype object"):
        checkpoint_io.save(tmp_path / "x.npz", {"o": np.array([None, 1], dtype=object)})
    assert os.listdir(tmp_path) == []


def test_saving_a_tracer_is_an_error(tmp_path):
    @fn.jit
    def f(x):
        checkpoint_io.save(tmp_path / "t.npz", {"x": x})
        return x

    with pytest.raises(TypeError, match="traced value"):
        f(np.ones(2))


# ---------------------------------------------------------------------------
# atomic writes


def test_crash_before_rename_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = checkpoint_io.save(tmp_path / "ckpt.npz", {"w": np.zeros(3)})
    before = open(path, "rb").read()

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint_io.save(path, {"w": np.ones(3), "step": 1})
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert open(path, "rb").read() == before
    monkeypatch.undo()
    assert_same_tree(checkpoint_io.load(path), {"w": np.zeros(3)})


def test_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = checkpoint_io.save(tmp_path / "ckpt.npz", {"a": np.zeros(3), "b": np.zeros(3)})
    before = open(path, "rb").read()
    real = checkpoint_io._write_entry
    calls = []

    def write_then_die(zf, name, arr):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is killed half-way through the entries
        real(zf, name, arr)

    monkeypatch.setattr(checkpoint_io, "_write_entry", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_io.save(path, {"a": np.ones(3), "b": np.ones(3)})
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert open(path, "rb").read() == before


def test_new_file_is_not_private(tmp_path):
    path = checkpoint_io.save(tmp_path / "c.npz", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


# ---------------------------------------------------------------------------
# corrupt, truncated and foreign files


@pytest.fixture
def good_bytes(tmp_path):
    path = checkpoint_io.save(tmp_path / "good.npz",
                              {"w": np.arange(1000, dtype=np.float32), "step": 5})
    return open(path, "rb").read()


@pytest.mark.parametrize("cut", [1, 10, 0.5, -1, -30])
def test_truncated_files(tmp_path, good_bytes, cut):
    n = int(len(good_bytes) * cut) if isinstance(cut, float) else cut % len(good_bytes)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good_bytes[:n])
    with pytest.raises(CheckpointError, match="truncated or corrupt|not an .npz"):
        checkpoint_io.load(bad)


def test_empty_file(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        checkpoint_io.load(tmp_path / "e.npz")


def test_flipped_bytes_in_the_data_are_detected(tmp_path, good_bytes):
    zf = zipfile.ZipFile(tmp_path / "good.npz")
    info = zf.getinfo("a0.npy")
    offset = info.header_offset + 30 + len(info.filename) + 200  # inside the array data
    data = bytearray(good_bytes)
    data[offset] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"truncated or corrupt: cannot read the array "
                                              r"at \['w'\].*CRC"):
        checkpoint_io.load(tmp_path / "bad.npz")


def test_garbage_and_foreign_files(tmp_path):
    (tmp_path / "g.npz").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="not a funcnet checkpoint"):
        checkpoint_io.load(tmp_path / "g.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a funcnet checkpoint: it has no "
                                              "'__funcnet__' entry.*a"):
        checkpoint_io.load(tmp_path / "plain.npz")
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(CheckpointError, match="single .npy array"):
        checkpoint_io.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        checkpoint_io.load(tmp_path / "missing.npz")


def _rewrite_meta(src, dst, edit):
    with zipfile.ZipFile(src) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(np.load(src, allow_pickle=False)["__funcnet__"].tobytes())
    edit(meta)
    arrays = {n[:-4]: np.load(src, allow_pickle=False)[n[:-4]] for n in entries
              if n != "__funcnet__.npy"}
    checkpoint_io.write_container(dst, meta, arrays)


def test_version_mismatch_is_refused(tmp_path, good_bytes):
    src = tmp_path / "good.npz"
    _rewrite_meta(src, tmp_path / "new.npz", lambda m: m.update(format_version=2,
                                                                funcnet_version="9.9"))
    with pytest.raises(CheckpointError, match=r"format version 2 \(by funcnet 9.9\).*reads "
                                              r"format version 1.*upgrade funcnet"):
        checkpoint_io.load(tmp_path / "new.npz")


def test_description_that_disagrees_with_the_data(tmp_path, good_bytes):
    def edit(meta):
        meta["tree"]["c"][1]["shape"] = [999]

    _rewrite_meta(tmp_path / "good.npz", tmp_path / "lie.npz", edit)
    with pytest.raises(CheckpointError, match=r"corrupt: the array at \['w'\] is described as "
                                              r"float32\[999\] but stored as float32\[1000\]"):
        checkpoint_io.load(tmp_path / "lie.npz")


def test_files_are_pickle_free(tmp_path):
    path = checkpoint_io.save(tmp_path / "c.npz", example_state())
    with np.load(path, allow_pickle=False) as npz:
        contents = {k: npz[k] for k in npz.files}
    meta = json.loads(contents.pop("__funcnet__").tobytes().decode("utf-8"))
    assert meta["format"] == "funcnet.checkpoint" and meta["format_version"] == 1
    assert all(a.dtype != object for a in contents.values())
