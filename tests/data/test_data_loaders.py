"""Dataset loaders on small files written here in every format, and on the shared data."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import wave

import numpy as np
import pytest

from funcnet import data

# ---------------------------------------------------------------------------
# IDX (MNIST / Fashion-MNIST)


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    big = array.astype(array.dtype.newbyteorder(">"))
    blob = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape) + big.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)


def write_fake_mnist(folder, gz: bool, n_train=7, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, gz)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_load_mnist_idx(tmp_path, gz):
    written = write_fake_mnist(tmp_path / "mnist", gz)
    # the folder itself, or its parent holding 'mnist'
    for path in (tmp_path / "mnist", tmp_path, str(tmp_path)):
        (x, y), (x_test, y_test) = data.load_mnist(path)
        assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32
        assert x_test.shape == (3, 28, 28, 1)
        assert y.dtype == np.int64 and y_test.dtype == np.int64
        np.testing.assert_array_equal(y, written["train"][1])
        np.testing.assert_allclose(x[..., 0], written["train"][0] / 255.0, rtol=1e-6)
    (x8, _), (x8_test, _) = data.load_mnist(tmp_path, dtype="uint8")
    assert x8.dtype == np.uint8
    np.testing.assert_array_equal(x8_test[..., 0], written["t10k"][0])


def test_read_idx_types_and_errors(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    write_idx(tmp_path / "a.idx", a, gz=False)
    out = data.read_idx(tmp_path / "a.idx")
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, a)
    f = np.linspace(0, 1, 5, dtype=np.float32)
    write_idx(tmp_path / "f.idx.gz", f, gz=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f.idx.gz"), f)

    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    blob = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "short").write_bytes(blob[:-3])
    with pytest.raises(ValueError, match="header announces shape"):
        data.read_idx(tmp_path / "short")


def test_mnist_dotted_names_and_mismatch(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images.idx3-ubyte", rng.integers(0, 255, (n, 28, 28),
                                                                         dtype=np.uint8), False)
        write_idx(tmp_path / f"{split}-labels.idx1-ubyte", np.zeros(n + (split == "t10k"),
                                                                    np.uint8), False)
    with pytest.raises(ValueError, match="do not match"):
        data.load_mnist(tmp_path)


def test_missing_mnist_says_where_and_how(tmp_path):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist(tmp_path / "nowhere")
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "shared" in msg and "never downloads" in msg
    assert str(tmp_path / "nowhere") in msg
    assert isinstance(info.value, FileNotFoundError)
    # one file of four missing: names that file
    write_fake_mnist(tmp_path / "partial", gz=True)
    os.remove(tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_mnist(tmp_path / "partial")


def test_fashion_mnist_path_and_missing_message(tmp_path):
    write_fake_mnist(tmp_path / "fashion-mnist", gz=True, n_train=5, n_test=2)
    (x, _), (x_test, _) = data.load_fashion_mnist(tmp_path)
    assert x.shape == (5, 28, 28, 1) and x_test.shape == (2, 28, 28, 1)
    with pytest.raises(data.DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path / "missing")
    assert len(data.FASHION_MNIST_CLASSES) == 10


def test_fashion_mnist_default_path_message(monkeypatch, tmp_path):
    from funcnet.data import images

    monkeypatch.setattr(images, "FASHION_MNIST_SYSTEM_PATH", tmp_path / "not-installed")
    with pytest.raises(data.DataNotFoundError) as info:
        images.load_fashion_mnist()
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "/usr/share/datasets/fashion-mnist" in str(info.value)


def test_bad_dtype():
    with pytest.raises(TypeError, match="uint8"):
        data.load_mnist("/nowhere", dtype="int32")


def test_load_digits():
    pytest.importorskip("sklearn")
    x, y = data.load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    x8, y8 = data.load_digits(dtype="uint8")
    assert x8.max() == 16
    np.testing.assert_array_equal(y, y8)


# ---------------------------------------------------------------------------
# CIFAR


def cifar_arrays(n, n_label_bytes, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, (n, n_label_bytes)).astype(np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the file's channel-major order
    return images, labels, rows


def python2_pickle(rows: np.ndarray, labels) -> bytes:
    """A CIFAR batch as Python 2's cPickle wrote it (protocol 2, str as BINSTRING, NumPy 1)."""
    raw = rows.tobytes()
    labels_ops = b"".join(b"K" + bytes([int(v)]) for v in labels)
    return (b"\x80\x02}q\x00("
            b"U\x04data"
            b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R"
            b"(K\x01" + b"K" + bytes([len(rows)]) + b"M\x00\x0c\x86"
            b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tb\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
            b"U\x06labels](" + labels_ops + b"e"
            b"U\x0bbatch_labelU\x05batchu.")


def write_cifar10(folder, fmt, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    all_images, all_labels = [], []
    for i, name in enumerate(names):
        images, labels, rows = cifar_arrays(2, 1, seed=i)
        labels %= 10
        all_images.append(images)
        all_labels.append(labels[:, 0])
        if fmt == "binary":
            np.concatenate([labels, rows], axis=1).tofile(folder / f"{name}.bin")
        elif protocol == "py2":
            (folder / name).write_bytes(python2_pickle(rows, labels[:, 0]))
        else:  # keys and strings as bytes, like the original Python 2 pickles
            batch = {b"batch_label": b"batch", b"labels": labels[:, 0].tolist(), b"data": rows,
                     b"filenames": [b"a.png", b"b.png"]}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return (np.concatenate(all_images[:5]), np.concatenate(all_labels[:5]),
            all_images[5], all_labels[5])


@pytest.mark.parametrize("fmt,protocol", [("binary", None), ("pickle", 2), ("pickle", 5),
                                          ("pickle", "py2")])
def test_load_cifar10(tmp_path, fmt, protocol):
    sub = "cifar-10-batches-bin" if fmt == "binary" else "cifar-10-batches-py"
    x_ref, y_ref, xt_ref, yt_ref = write_cifar10(tmp_path / sub, fmt, protocol)
    for path in (tmp_path, tmp_path / sub):
        (x, y), (x_test, y_test) = data.load_cifar10(path, dtype="uint8")
        assert x.shape == (10, 32, 32, 3) and x_test.shape == (2, 32, 32, 3)
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(x_test, xt_ref)
        np.testing.assert_array_equal(y_test, yt_ref)
        assert y.dtype == np.int64
    (xf, _), _ = data.load_cifar10(tmp_path)
    assert xf.dtype == np.float32 and xf.max() <= 1.0
    np.testing.assert_allclose(xf * 255, x_ref, atol=1e-3)


@pytest.mark.parametrize("fmt", ["binary", "pickle"])
def test_load_cifar100(tmp_path, fmt):
    folder = tmp_path / ("cifar-100-binary" if fmt == "binary" else "cifar-100-python")
    folder.mkdir()
    refs = {}
    for seed, name in enumerate(("train", "test")):
        images, labels, rows = cifar_arrays(3, 2, seed)
        refs[name] = (images, labels)
        if fmt == "binary":
            np.concatenate([labels, rows], axis=1).tofile(folder / f"{name}.bin")
        else:
            batch = {"coarse_labels": labels[:, 0].tolist(), "fine_labels": labels[:, 1].tolist(),
                     "data": rows}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (x, y), (x_test, y_test) = data.load_cifar100(tmp_path, dtype="uint8")
    np.testing.assert_array_equal(x, refs["train"][0])
    np.testing.assert_array_equal(y, refs["train"][1][:, 1])
    np.testing.assert_array_equal(y_test, refs["test"][1][:, 1])
    (_, y_coarse), _ = data.load_cifar100(folder, label_mode="coarse")
    np.testing.assert_array_equal(y_coarse, refs["train"][1][:, 0])
    with pytest.raises(ValueError, match="label_mode"):
        data.load_cifar100(folder, label_mode="medium")


class _Payload:
    """A pickle that would create a directory when loaded by plain ``pickle``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_cifar_pickle_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, "pickle")
    target = tmp_path / "pwned"
    evil = {b"labels": [0, 1], b"data": np.zeros((2, 3072), np.uint8), b"x": _Payload(target)}
    (folder / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(data.UnsafePickleError, match="refusing to load the global") as info:
        data.load_cifar10(tmp_path)
    assert "mkdir" in str(info.value)
    assert not target.exists(), "the payload ran"


@pytest.mark.parametrize("payload", [
    lambda t: (eval, ("1 + 1",)),
    lambda t: (getattr, (object, "__subclasses__")),
    lambda t: (np.load, (str(t),)),
    lambda t: (pickle.loads, (b"",)),
], ids=["eval", "getattr", "numpy-load", "pickle-loads"])
def test_safe_load_refuses_any_other_global(payload, tmp_path):
    class Evil:
        def __reduce__(self):
            return payload(tmp_path / "x.npy")

    with pytest.raises(data.UnsafePickleError):
        data.safe_loads(pickle.dumps({"a": Evil()}, protocol=2))


def test_safe_load_refuses_object_arrays_and_other_codecs():
    objects = np.array([1, "a", None], dtype=object)
    with pytest.raises(data.UnsafePickleError, match="object"):
        data.safe_loads(pickle.dumps(objects, protocol=2))
    # a hand-written pickle calling _codecs.encode with another codec
    blob = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x06\x00\x00\x00base64\x86R."
    with pytest.raises(data.UnsafePickleError, match="latin1"):
        data.safe_loads(blob)


def test_safe_load_accepts_plain_data_and_old_numpy_names():
    value = {"a": [1, 2.5, "s", b"b", (3, None, True)], "x": np.arange(6.0).reshape(2, 3)}
    for protocol in (2, 4, 5):
        out = data.safe_loads(pickle.dumps(value, protocol=protocol))
        assert out["a"] == value["a"]
        np.testing.assert_array_equal(out["x"], value["x"])
    # pickles written by NumPy 1 (and CIFAR's originals) name numpy.core.multiarray
    blob = pickle.dumps(np.arange(3, dtype=np.uint8), protocol=2)
    old = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != blob or b"numpy.core.multiarray" in blob
    np.testing.assert_array_equal(data.safe_loads(old), [0, 1, 2])


def test_missing_cifar_message(tmp_path):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_cifar10(tmp_path)
    msg = str(info.value)
    assert "data_batch_1.bin" in msg and "cifar-10-batches-py" in msg and "cifar.html" in msg
    with pytest.raises(data.DataNotFoundError, match="cifar-100-binary"):
        data.load_cifar100(tmp_path)


def test_truncated_cifar_binary(tmp_path):
    write_cifar10(tmp_path, "binary")
    with open(tmp_path / "test_batch.bin", "ab") as f:
        f.write(b"\x00" * 5)
    with pytest.raises(ValueError, match="3073-byte record"):
        data.load_cifar10(tmp_path)


# ---------------------------------------------------------------------------
# WAV folders


def write_pcm(path, ints: np.ndarray, width: int, rate: int, channels: int = 1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 3:
            u = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
            w.writeframes(u.tobytes())
        else:
            w.writeframes(ints.astype({1: np.uint8, 2: "<i2", 4: "<i4"}[width]).tobytes())


@pytest.mark.parametrize("width,ints,expected", [
    (1, np.array([128, 255, 0]), [0.0, 127 / 128, -1.0]),
    (2, np.array([0, 16384, -32768]), [0.0, 0.5, -1.0]),
    (3, np.array([0, 1 << 22, -(1 << 23)]), [0.0, 0.5, -1.0]),
    (4, np.array([0, 1 << 30, -(1 << 31)]), [0.0, 0.5, -1.0]),
], ids=["8bit", "16bit", "24bit", "32bit"])
def test_read_wav_sample_widths(tmp_path, width, ints, expected):
    write_pcm(tmp_path / "a.wav", ints, width, 8000)
    x, rate = data.read_wav(tmp_path / "a.wav")
    assert rate == 8000 and x.dtype == np.float32
    np.testing.assert_allclose(x, expected, atol=1e-7)


def make_fsdd_like(folder, digits=(0, 1, 2), speakers=("ann", "bob"), takes=7, rate=8000):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for d in digits:
        for s in speakers:
            for t in range(takes):
                n = 50 + 10 * d + t
                data.write_wav(folder / f"{d}_{s}_{t}.wav", rng.uniform(-0.5, 0.5, n), rate)


def test_load_audio_folder_fsdd_layout_and_split(tmp_path):
    make_fsdd_like(tmp_path / "fsdd" / "recordings")
    x, y, info = data.load_audio_folder(tmp_path / "fsdd", return_info=True)
    assert x.shape == (42, 50 + 20 + 6) and x.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [14, 14, 14]
    assert info["sample_rate"] == 8000 and info["classes"] == ["0", "1", "2"]
    assert set(info["speaker"].tolist()) == {"ann", "bob"}
    # ordered by label, speaker, take (takes numerically: 0 1 2 ... not 0 1 10)
    assert info["file"][:3].tolist() == ["0_ann_0.wav", "0_ann_1.wav", "0_ann_2.wav"]
    np.testing.assert_array_equal(info["length"], 50 + 10 * y + info["take"])
    # zero padding after each recording's end
    for row, n in zip(x, info["length"]):
        assert not row[n:].any() and row[:n].any()
    x_tr, y_tr, info_tr = data.load_audio_folder(tmp_path, split="train", return_info=True)
    x_te, y_te, info_te = data.load_audio_folder(tmp_path, split="test", return_info=True)
    assert len(x_te) == 3 * 2 * 5 and len(x_tr) == 3 * 2 * 2
    assert x_tr.shape[1] == x_te.shape[1] == x.shape[1]
    assert info_te["take"].max() == 4 and info_tr["take"].min() == 5
    _, y3 = data.load_audio_folder(tmp_path, split="test", test_takes=3)
    assert len(y3) == 18
    x_short, _ = data.load_audio_folder(tmp_path, length=20)
    np.testing.assert_array_equal(x_short, x[:, :20])


def test_load_audio_folder_named_labels_and_stereo(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("yes", "no", "up"):
        data.write_wav(tmp_path / f"{label}_spk_0.wav", rng.uniform(-1, 1, (30, 2)), 16000)
    x, y, info = data.load_audio_folder(tmp_path, return_info=True)
    assert info["classes"] == ["no", "up", "yes"]
    assert y.tolist() == [0, 1, 2]
    stereo, _ = data.read_wav(tmp_path / "no_spk_0.wav")
    np.testing.assert_allclose(x[0], stereo.mean(axis=1), atol=1e-6)


def test_load_audio_folder_errors(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="free-spoken-digit-dataset"):
        data.load_audio_folder(tmp_path)
    data.write_wav(tmp_path / "1_a_0.wav", np.zeros(10), 8000)
    data.write_wav(tmp_path / "2_a_0.wav", np.zeros(10), 16000)
    with pytest.raises(ValueError, match="sample rates"):
        data.load_audio_folder(tmp_path)
    os.remove(tmp_path / "2_a_0.wav")
    data.write_wav(tmp_path / "3.wav", np.zeros(10), 8000)
    with pytest.raises(ValueError, match="take number"):
        data.load_audio_folder(tmp_path, split="train")
    with pytest.raises(ValueError, match="split"):
        data.load_audio_folder(tmp_path, split="validation")
    (tmp_path / "4_a_0.wav").write_bytes(b"not a wav file")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        data.load_audio_folder(tmp_path)


# ---------------------------------------------------------------------------
# text files


def test_load_text_tsv_with_quotes_and_tabs(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text('ham\tHe said "hi, there"\nspam\tWIN!!! call 0800\textra tab\n\n'
                    'ham\t"quoted at start\n', encoding="utf-8")
    texts, labels, info = data.load_text_csv(path, return_info=True)
    assert info["delimiter"] == "\t"
    assert texts.tolist() == ['He said "hi, there"', "WIN!!! call 0800\textra tab",
                              '"quoted at start']
    assert labels.tolist() == [0, 1, 0] and labels.dtype == np.int64
    assert texts.dtype == object
    _, fixed = data.load_text_csv(path, classes=("spam", "ham"))
    assert fixed.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="not in classes"):
        data.load_text_csv(path, classes=("spam",))


def test_load_text_csv_quoted_header_and_latin1(tmp_path):
    path = tmp_path / "spam.csv"
    path.write_bytes('v1,v2\nham,"Hello, caf\xe9"\nspam,Free prize\nham,ok\n'.encode("latin-1"))
    texts, labels = data.load_text_csv(path, header=True)
    assert texts.tolist() == ["Hello, caf\xe9", "Free prize", "ok"]
    assert labels.tolist() == [0, 1, 0]
    # explicit delimiter and columns, integer labels kept as they are
    other = tmp_path / "reviews.txt"
    other.write_text("great film;5\nawful;1\nfine;3\n")
    texts, labels = data.load_text_csv(other, delimiter=";", label_column=1, text_column=0)
    assert texts.tolist() == ["great film", "awful", "fine"] and labels.tolist() == [5, 1, 3]


def test_load_text_csv_errors(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="SMSSpamCollection"):
        data.load_text_csv(tmp_path / "sms_spam" / "SMSSpamCollection")
    bad = tmp_path / "bad.tsv"
    bad.write_text("ham\tok\nlonely\n")
    with pytest.raises(ValueError, match="bad.tsv:2"):
        data.load_text_csv(bad, delimiter="\t")


# ---------------------------------------------------------------------------
# the shared data folder (skipped when it is absent)


def test_shared_mnist(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no mnist folder in the shared data")
    (x, y), (x_test, y_test) = data.load_mnist(shared_data, dtype="uint8")
    assert x.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert y.shape == (60000,) and y_test.shape == (10000,)
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]


def test_shared_fsdd(shared_data):
    folder = shared_data / "fsdd"
    if not folder.is_dir():
        pytest.skip("no fsdd folder in the shared data")
    x_tr, y_tr, info_tr = data.load_audio_folder(folder, split="train", return_info=True)
    x_te, y_te, info_te = data.load_audio_folder(folder, split="test", return_info=True)
    assert len(x_tr) + len(x_te) == 3000
    assert len(x_te) == 300 and len(x_tr) == 2700  # takes 0-4 of 6 speakers x 10 digits
    assert np.bincount(y_te).tolist() == [30] * 10
    assert info_te["sample_rate"] == 8000
    assert len(set(info_tr["speaker"].tolist())) == 6
    assert x_tr.shape[1] == x_te.shape[1] == info_tr["length"].max()


def test_shared_sms_spam(shared_data):
    path = shared_data / "text" / "sms_spam" / "SMSSpamCollection"
    if not path.is_file():
        pytest.skip("no SMS Spam Collection in the shared data")
    texts, labels, info = data.load_text_csv(path, return_info=True)
    assert len(texts) == 5574
    assert info["classes"] == ["ham", "spam"]
    assert np.bincount(labels).tolist() == [4827, 747]


def test_system_fashion_mnist():
    if not data.FASHION_MNIST_SYSTEM_PATH.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    (x, y), (x_test, y_test) = data.load_fashion_mnist(dtype="uint8")
    assert x.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(y).tolist() == [6000] * 10
