"""Image datasets: the bundled 8x8 digits, MNIST, Fashion-MNIST, CIFAR-10/100.

Every loader returns NumPy arrays.  Images are **NHWC** (``(n, height,
width, channels)``, a channel axis even for grey images).  With the default
``dtype="float32"`` pixels are scaled to ``[0, 1]``; ``dtype="uint8"``
returns the stored bytes unchanged (``0 ... 255``, four times smaller in
memory; divide by 255 later).  Labels are ``int64``.  Formats that come with
a train/test split return ``(x_train, y_train), (x_test, y_test)``.

Nothing is downloaded: a missing file raises
:class:`~funcnet.data.DataNotFoundError` saying where the data belongs and
how to get it.

>>> from funcnet import data
>>> x, y = data.load_digits()
>>> x.shape, x.dtype, y.dtype
((1797, 8, 8, 1), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from funcnet.data._paths import as_path, first_existing, not_found
from funcnet.data.safe_pickle import safe_load

__all__ = ["load_digits", "read_idx", "load_mnist", "load_fashion_mnist", "load_cifar10",
           "load_cifar100", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
           "FASHION_MNIST_SYSTEM_PATH"]

# Where Debian's package dataset-fashion-mnist installs the IDX files.
FASHION_MNIST_SYSTEM_PATH = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _image_dtype(dtype, caller: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt != np.uint8 and dt.kind != "f":
        raise TypeError(f"{caller}: dtype must be a float dtype (pixels scaled to [0, 1]) or "
                        f"uint8 (raw bytes), got {dt}")
    return dt


def _convert_pixels(x_uint8: np.ndarray, dtype: np.dtype, peak: float = 255.0) -> np.ndarray:
    if dtype == np.uint8:
        return x_uint8
    out = x_uint8.astype(dtype)
    out *= dtype.type(1.0 / peak)
    return out


# ---------------------------------------------------------------------------
# scikit-learn's 8x8 digits


def load_digits(dtype="float32"):
    """The 8x8 handwritten digits bundled with scikit-learn: ``(x, y)``, no download.

    1,797 grey images of the digits 0-9 (the UCI "optical recognition of
    handwritten digits" test set), shipped inside scikit-learn, so this works
    offline anywhere the ``data`` extra is installed (``pip install
    "funcnet[data]"``).  ``x`` is ``(1797, 8, 8, 1)``; the stored values are
    ``0 ... 16``, scaled to ``[0, 1]`` for a float ``dtype`` or returned as
    they are for ``dtype="uint8"``.  ``y`` is int64.  There is no official
    split: use :func:`funcnet.data.train_test_split`.

    >>> from funcnet import data
    >>> x, y = data.load_digits()
    >>> float(x.min()), float(x.max()), sorted(set(y.tolist())) == list(range(10))
    (0.0, 1.0, True)
    """
    dt = _image_dtype(dtype, "load_digits")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as e:
        raise ImportError("load_digits needs scikit-learn, which ships the 8x8 digits: "
                          "pip install 'funcnet[data]' (or pip install scikit-learn)") from e
    bunch = sklearn_digits()
    raw = np.asarray(bunch.images).round().astype(np.uint8)[..., None]
    x = _convert_pixels(raw, dt, peak=16.0)
    return x, np.asarray(bunch.target, dtype=np.int64)


# ---------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)


def _read_maybe_gzip(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    if head == _GZIP_MAGIC:
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not, as a NumPy array.

    The IDX header is a magic number ``0 0 type ndim`` followed by ``ndim``
    big-endian 32-bit sizes; the data follows in row-major order.  Gzip is
    recognised by its magic bytes, not by the file name.  The result has the
    file's element type in native byte order.

    >>> import tempfile, os
    >>> import numpy as np
    >>> from funcnet.data import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = as_path(path, "read_idx")
    if not path.is_file():
        raise not_found("read_idx", f"IDX file {path.name!r}", path.parent)
    blob = _read_maybe_gzip(path)
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number "
                         f"{blob[:4].hex() or 'empty'}; expected 0000 <type> <ndim>)")
    dtype, ndim = np.dtype(_IDX_DTYPES[blob[2]]), blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise ValueError(f"read_idx: {path} is truncated (header of {ndim} sizes incomplete)")
    shape = tuple(int(s) for s in np.frombuffer(blob, ">u4", ndim, 4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(blob) - header != expected:
        raise ValueError(f"read_idx: {path} holds {len(blob) - header} bytes of data, but its "
                         f"header announces shape {shape} ({expected} bytes)")
    data = np.frombuffer(blob, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# The four files of MNIST and Fashion-MNIST; each may also be spelt with a dot
# (train-images.idx3-ubyte, as in some copies) and may be gzipped.
_IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def _idx_candidates(stem: str):
    dotted = stem.replace("-idx", ".idx")
    return [stem + ".gz", stem, dotted + ".gz", dotted]


def _load_idx_dataset(folder: Path, caller: str, dataset: str, dtype):
    dt = _image_dtype(dtype, caller)
    out = []
    for split in ("train", "test"):
        arrays = {}
        for kind in ("images", "labels"):
            stem = _IDX_FILES[(split, kind)]
            found = first_existing(folder, _idx_candidates(stem))
            if found is None:
                raise not_found(caller, f"{stem}[.gz]", folder, dataset)
            arrays[kind] = read_idx(found)
        images, labels = arrays["images"], arrays["labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{caller}: {split} images {images.shape} and labels "
                             f"{labels.shape} in {folder} do not match (expected (n, h, w) "
                             "images and n labels)")
        out.append((_convert_pixels(images.astype(np.uint8, copy=False)[..., None], dt),
                    labels.astype(np.int64)))
    return tuple(out)


def _dataset_folder(path, caller: str, subfolders, files, dataset: str) -> Path:
    """``path`` itself if it holds ``files[0]`` (in any accepted spelling), else a subfolder."""
    folder = as_path(path, caller)
    looked = [folder]
    for candidate in [folder, *(folder / s for s in subfolders)]:
        if candidate.is_dir() and first_existing(candidate, files) is not None:
            return candidate
        if candidate is not folder:
            looked.append(candidate)
    raise not_found(caller, f"{files[0]}", looked, dataset)


def load_mnist(path, dtype="float32"):
    """MNIST from its four IDX files: ``(x_train, y_train), (x_test, y_test)``.

    ``path`` is the folder holding ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` (gzipped or not), or a parent folder with
    an ``mnist`` subfolder (such as the project's shared data folder).
    Images are ``(60000, 28, 28, 1)`` and ``(10000, 28, 28, 1)``, float32 in
    ``[0, 1]`` (or the raw bytes with ``dtype="uint8"``); labels int64.

    >>> import os
    >>> from funcnet import data
    >>> folder = os.environ.get("FUNCNET_SHARED_DATA", "../shared/data")
    >>> if os.path.isdir(os.path.join(folder, "mnist")):
    ...     (x, y), (x_test, y_test) = data.load_mnist(folder, dtype="uint8")
    ...     assert x.shape == (60000, 28, 28, 1) and y_test.shape == (10000,)
    >>> try:
    ...     data.load_mnist("/nowhere")
    ... except data.DataNotFoundError as e:
    ...     print("t10k-images-idx3-ubyte" in str(e))
    True
    """
    _image_dtype(dtype, "load_mnist")
    stems = _idx_candidates(_IDX_FILES[("train", "images")])
    folder = _dataset_folder(path, "load_mnist", ["mnist", "MNIST"], stems, "mnist")
    return _load_idx_dataset(folder, "load_mnist", "mnist", dtype)


def load_fashion_mnist(path=None, dtype="float32"):
    """Fashion-MNIST (same IDX format as MNIST): ``(x_train, y_train), (x_test, y_test)``.

    With ``path=None`` the files of Debian's package ``dataset-fashion-mnist``
    (``apt-get install dataset-fashion-mnist``) are used, from
    ``/usr/share/datasets/fashion-mnist``.  Otherwise ``path`` is the folder
    with the four IDX files (or its parent with a ``fashion-mnist``
    subfolder).  Shapes and dtypes as :func:`load_mnist`; the class names are
    ``funcnet.data.FASHION_MNIST_CLASSES``.

    >>> from funcnet import data
    >>> if data.FASHION_MNIST_SYSTEM_PATH.is_dir():
    ...     (x, y), (x_test, y_test) = data.load_fashion_mnist(dtype="uint8")
    ...     assert x.shape == (60000, 28, 28, 1) and len(y_test) == 10000
    >>> data.FASHION_MNIST_CLASSES[9]
    'Ankle boot'
    """
    _image_dtype(dtype, "load_fashion_mnist")
    if path is None:
        path = FASHION_MNIST_SYSTEM_PATH
        if not path.is_dir():
            raise not_found("load_fashion_mnist", "Fashion-MNIST", path, "fashion-mnist")
    stems = _idx_candidates(_IDX_FILES[("train", "images")])
    folder = _dataset_folder(path, "load_fashion_mnist",
                             ["fashion-mnist", "fashion_mnist", "FashionMNIST"], stems,
                             "fashion-mnist")
    return _load_idx_dataset(folder, "load_fashion_mnist", "fashion-mnist", dtype)


# ---------------------------------------------------------------------------
# CIFAR


_CIFAR_PIXELS = 32 * 32 * 3


def _chw_rows_to_nhwc(rows: np.ndarray) -> np.ndarray:
    """CIFAR stores each image as 3072 bytes: the red plane, then green, then blue (row-major)."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_cifar_binary(path: Path, label_bytes: int, caller: str):
    record = label_bytes + _CIFAR_PIXELS
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{caller}: {path} is not a CIFAR binary file ({raw.size} bytes is not "
                         f"a positive multiple of the {record}-byte record)")
    raw = raw.reshape(-1, record)
    return _chw_rows_to_nhwc(raw[:, label_bytes:]), raw[:, :label_bytes].astype(np.int64)


def _str_keys(d, path: Path, caller: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{caller}: {path} does not hold a CIFAR batch (a dict), "
                         f"got {type(d).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def _read_cifar_pickle(path: Path, label_keys, caller: str):
    with open(path, "rb") as f:
        batch = _str_keys(safe_load(f), path, caller)
    missing = [k for k in ("data", *label_keys) if k not in batch]
    if missing:
        raise ValueError(f"{caller}: {path} has no {missing} entries (keys: {sorted(batch)})")
    rows = np.asarray(batch["data"])
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != _CIFAR_PIXELS:
        raise ValueError(f"{caller}: {path}'s 'data' is {rows.dtype}{list(rows.shape)}, "
                         f"expected uint8[n, {_CIFAR_PIXELS}]")
    labels = np.stack([np.asarray(batch[k], dtype=np.int64) for k in label_keys], axis=1)
    if len(labels) != len(rows):
        raise ValueError(f"{caller}: {path} has {len(rows)} images but {len(labels)} labels")
    return _chw_rows_to_nhwc(rows), labels


def _cifar_folder(path, caller: str, formats, dataset: str):
    """Find the folder and format: ``formats`` is ``[(format, subfolder, first_file)]``."""
    folder = as_path(path, caller)
    looked = []
    for candidate in [folder, *(folder / sub for _, sub, _ in formats)]:
        looked.append(candidate)
        for fmt, _, first in formats:
            if (candidate / first).is_file():
                return candidate, fmt
    raise not_found(caller, " or ".join(f"{first}" for _, _, first in formats), looked, dataset)


def _load_cifar(path, caller, dataset, formats, files, label_keys, label_index, dtype):
    dt = _image_dtype(dtype, caller)
    folder, fmt = _cifar_folder(path, caller, formats, dataset)
    out = []
    for split in ("train", "test"):
        images, labels = [], []
        for name in files[fmt][split]:
            file = folder / name
            if not file.is_file():
                raise not_found(caller, f"{name}", folder, dataset)
            if fmt == "binary":
                x, y = _read_cifar_binary(file, len(label_keys), caller)
            else:
                x, y = _read_cifar_pickle(file, label_keys, caller)
            images.append(x)
            labels.append(y[:, label_index])
        out.append((_convert_pixels(np.concatenate(images), dt), np.concatenate(labels)))
    return tuple(out)


_CIFAR10_FILES = {
    "binary": {"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
               "test": ["test_batch.bin"]},
    "pickle": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
}
_CIFAR100_FILES = {
    "binary": {"train": ["train.bin"], "test": ["test.bin"]},
    "pickle": {"train": ["train"], "test": ["test"]},
}


def load_cifar10(path, dtype="float32"):
    """CIFAR-10 in its binary or Python format: ``(x_train, y_train), (x_test, y_test)``.

    ``path`` is the extracted folder (``cifar-10-batches-bin`` or
    ``cifar-10-batches-py``) or its parent.  The binary format is preferred
    when both are there.  The Python format is read by
    :func:`funcnet.data.safe_load`, which accepts only plain data and numeric
    NumPy arrays and refuses any pickle that would run code.  Images are
    ``(50000, 32, 32, 3)`` and ``(10000, 32, 32, 3)``; class names are
    ``funcnet.data.CIFAR10_CLASSES``.

    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from funcnet import data
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> record = np.zeros(1 + 3072, np.uint8); record[0] = 7       # one image of class 7
    >>> for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    ...     record.tofile(folder / name)
    >>> (x, y), (x_test, y_test) = data.load_cifar10(folder)
    >>> x.shape, y.tolist()
    ((5, 32, 32, 3), [7, 7, 7, 7, 7])
    """
    formats = [("binary", "cifar-10-batches-bin", "data_batch_1.bin"),
               ("pickle", "cifar-10-batches-py", "data_batch_1")]
    return _load_cifar(path, "load_cifar10", "cifar-10", formats, _CIFAR10_FILES,
                       ["labels"], 0, dtype)


def load_cifar100(path, label_mode: str = "fine", dtype="float32"):
    """CIFAR-100 in its binary or Python format: ``(x_train, y_train), (x_test, y_test)``.

    ``label_mode`` is ``"fine"`` (100 classes, the default) or ``"coarse"``
    (20 superclasses).  ``path`` is the extracted folder
    (``cifar-100-binary`` or ``cifar-100-python``) or its parent.  The Python
    format goes through the restricted :func:`funcnet.data.safe_load`.

    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from funcnet import data
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> record = np.zeros(2 + 3072, np.uint8); record[:2] = [3, 42]  # coarse 3, fine 42
    >>> for name in ["train.bin", "test.bin"]:
    ...     record.tofile(folder / name)
    >>> (x, y), _ = data.load_cifar100(folder)
    >>> y.tolist(), data.load_cifar100(folder, label_mode="coarse")[0][1].tolist()
    ([42], [3])
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"load_cifar100: label_mode must be 'fine' or 'coarse', "
                         f"got {label_mode!r}")
    formats = [("binary", "cifar-100-binary", "train.bin"),
               ("pickle", "cifar-100-python", "train")]
    # binary records and the label list both put the coarse label first
    return _load_cifar(path, "load_cifar100", "cifar-100", formats, _CIFAR100_FILES,
                       ["coarse_labels", "fine_labels"], 0 if label_mode == "coarse" else 1,
                       dtype)
