"""Datasets as training tasks: arrays, class names, preprocessing and matching models.

A *task* is what the command line needs to train, evaluate, export and
serve a classifier on one of the datasets of :mod:`funcnet.data`:

- :func:`load_task` loads a dataset (with a fixed, seeded split where the
  dataset has none) and returns a :class:`Task`: the model's inputs and the
  labels, and a JSON-able ``spec`` that says how a *raw* example (an image,
  a wave, a text) becomes a model input;
- :func:`input_features` is that preprocessing as a ``funcnet.numpy``
  function (MFCCs for audio; nothing for images and token ids), so it runs
  under ``fn.jit`` and ``fn.vmap`` and is exported with the model;
- :func:`read_example` reads a raw example from a file (PNG, ``.npy``,
  WAV) or a text string, as the spec requires;
- :func:`create_model` builds a model of ``nn.models`` that fits the task;
- :func:`make_predict_fn` is the whole path from raw examples to class
  probabilities.

=================  ======  ===========================================  ================
dataset            kind    raw example                                  default model
=================  ======  ===========================================  ================
``digits``         image   ``(8, 8, 1)`` float32 in [0, 1]              ``mlp``
``mnist``          image   ``(28, 28, 1)``                              ``mlp``
``fashion-mnist``  image   ``(28, 28, 1)``                              ``mlp``
``cifar10``        image   ``(32, 32, 3)``                              ``mlp``
``fsdd``           audio   ``(8000,)`` float32 wave at 8 kHz            ``speech``
``sms-spam``       text    ``(64,)`` int64 token ids                    ``text``
=================  ======  ===========================================  ================

>>> from funcnet.training import tasks
>>> task = tasks.load_task("digits", limit=100)
>>> task.x_train.shape, task.x_test.shape, task.spec["kind"], task.num_classes
((100, 8, 8, 1), (100, 8, 8, 1), 'image', 10)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

import funcnet as fn
from funcnet import data, nn, random

__all__ = ["DATASETS", "MODELS", "Task", "load_task", "default_data_dir", "default_model",
           "create_model", "input_features", "read_example", "make_predict_fn",
           "TaskError"]

#: dataset name -> kind of input
DATASETS = {"digits": "image", "mnist": "image", "fashion-mnist": "image", "cifar10": "image",
            "fsdd": "audio", "sms-spam": "text"}
#: model name -> the kinds of input it accepts
MODELS = {"mlp": ("image", "audio"), "lenet": ("image",), "resnet": ("image",),
          "text": ("text",), "speech": ("audio",)}

# Fixed preprocessing settings (recorded in each run's spec, so changing them here never
# changes an existing run).
_SPLIT_SEED = 0          # the key of the train/test split of datasets that have none
_AUDIO = {"sample_rate": 8000, "length": 8000, "n_fft": 256, "hop_length": 80, "n_mfcc": 13}
_TEXT = {"maxlen": 64, "num_words": 10000}


class TaskError(ValueError):
    """A task cannot be built or an example does not fit it (bad name, shape, rate...).

    >>> from funcnet.training import tasks
    >>> try:
    ...     tasks.load_task("imagenet")
    ... except tasks.TaskError as e:
    ...     print(str(e)[:26])
    unknown dataset 'imagenet'
    """


@dataclass
class Task:
    """A dataset ready for training: model inputs, labels and the preprocessing spec.

    ``x_train``/``x_test`` are model inputs (features for audio), ``y_*`` int64
    labels; ``spec`` is JSON-able: ``dataset``, ``kind``, ``classes``,
    ``input_shape`` and ``input_dtype`` (one *raw* example) and the
    preprocessing settings (``audio`` or ``tokenizer`` and ``maxlen``).

    >>> from funcnet.training import tasks
    >>> task = tasks.load_task("digits", limit=50)
    >>> task.num_classes, task.classes[:3], task.spec["input_shape"]
    (10, ['0', '1', '2'], [8, 8, 1])
    """

    spec: dict
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.spec["classes"])

    @property
    def classes(self) -> list:
        return list(self.spec["classes"])


def default_data_dir() -> str:
    """Where datasets are looked for by default: ``$FUNCNET_DATA``, else
    ``$FUNCNET_SHARED_DATA``, else ``./data``.

    >>> import os
    >>> from funcnet.training import tasks
    >>> isinstance(tasks.default_data_dir(), str)
    True
    """
    return os.environ.get("FUNCNET_DATA") or os.environ.get("FUNCNET_SHARED_DATA") or "data"


def default_model(dataset_or_spec) -> str:
    """The default model for a dataset name or spec: ``text`` for text, ``speech`` for audio,
    ``mlp`` for images.

    >>> from funcnet.training import tasks
    >>> tasks.default_model("digits"), tasks.default_model("fsdd"), tasks.default_model("sms-spam")
    ('mlp', 'speech', 'text')
    """
    kind = dataset_or_spec["kind"] if isinstance(dataset_or_spec, dict) \
        else _kind(dataset_or_spec)
    return {"image": "mlp", "audio": "speech", "text": "text"}[kind]


def _kind(dataset: str) -> str:
    if dataset not in DATASETS:
        raise TaskError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def _subset(arrays, limit: int | None, salt: int):
    """At most ``limit`` examples, drawn at random (fixed key) and kept in their order."""
    n = len(arrays[1])
    if limit is None or limit >= n:
        return arrays
    if limit <= 0:
        raise TaskError(f"--limit must be positive, got {limit}")
    pick = np.asarray(fn.to_numpy(random.permutation(random.key(salt), n)))[:limit]
    pick = np.sort(pick)
    return tuple(a[pick] for a in arrays)


def _image_task(dataset: str, data_dir: str):
    if dataset == "digits":
        x, y = data.load_digits()
        train, test = data.train_test_split(random.key(_SPLIT_SEED), (x, y), 0.2, stratify=y)
        return train, test, [str(i) for i in range(10)]
    if dataset == "mnist":
        train, test = data.load_mnist(data_dir)
        return train, test, [str(i) for i in range(10)]
    if dataset == "fashion-mnist":
        try:
            train, test = data.load_fashion_mnist(data_dir)
        except data.DataNotFoundError:
            if not data.FASHION_MNIST_SYSTEM_PATH.is_dir():
                raise
            train, test = data.load_fashion_mnist(None)
        return train, test, list(data.FASHION_MNIST_CLASSES)
    train, test = data.load_cifar10(data_dir)
    return train, test, list(data.CIFAR10_CLASSES)


def _fsdd_path(data_dir: str) -> str:
    candidate = os.path.join(data_dir, "fsdd")
    return candidate if os.path.isdir(candidate) else data_dir


def _sms_path(data_dir: str) -> str:
    for candidate in (os.path.join(data_dir, "text", "sms_spam", "SMSSpamCollection"),
                      os.path.join(data_dir, "sms_spam", "SMSSpamCollection"),
                      os.path.join(data_dir, "SMSSpamCollection")):
        if os.path.isfile(candidate):
            return candidate
    if os.path.isfile(data_dir):
        return data_dir
    raise data.DataNotFoundError(
        f"sms-spam: SMSSpamCollection not found (looked in {data_dir}, "
        f"{os.path.join(data_dir, 'text', 'sms_spam')}). The SMS Spam Collection is one "
        "tab-separated file, SMSSpamCollection (label<TAB>text), from the UCI Machine Learning "
        "Repository (dataset 228); pass its folder with --data-dir. funcnet never downloads "
        "data.")


def load_task(dataset: str, data_dir: str | None = None, limit: int | None = None,
              spec: dict | None = None) -> Task:
    """Load ``dataset`` (a name of :data:`DATASETS`) as a :class:`Task`.

    - ``data_dir``: the folder holding the dataset's files or a parent of them
      (default :func:`default_data_dir`); ``digits`` needs no files.
    - ``limit``: keep at most this many training and this many test examples,
      drawn at random with a fixed key (for quick runs).
    - ``spec``: the spec of an earlier run, to preprocess exactly as it did
      (its tokenizer instead of fitting a new one, its audio settings).

    Datasets without a split (digits, sms-spam) are split 80/20, stratified,
    with a fixed key, so every run sees the same test set.  A missing dataset
    raises ``funcnet.data.DataNotFoundError`` saying where it looked and how to
    get the data.

    >>> from funcnet.training import tasks
    >>> task = tasks.load_task("digits")
    >>> len(task.y_train), len(task.y_test)
    (1438, 359)
    """
    kind = _kind(dataset)
    data_dir = default_data_dir() if data_dir is None else os.fspath(data_dir)
    if spec is not None and spec.get("dataset") != dataset:
        raise TaskError(f"the run was trained on {spec.get('dataset')!r}, not {dataset!r}")
    out_spec: dict[str, Any] = {"dataset": dataset, "kind": kind}

    if kind == "image":
        train, test, classes = _image_task(dataset, data_dir)
        train, test = _subset(train, limit, 1), _subset(test, limit, 2)
        out_spec.update(classes=classes, input_shape=list(train[0].shape[1:]),
                        input_dtype="float32")
        x_train, x_test = train[0].astype(np.float32), test[0].astype(np.float32)
        return Task(out_spec, x_train, train[1], x_test, test[1])

    if kind == "audio":
        audio = dict(spec["audio"]) if spec is not None else dict(_AUDIO)
        path = _fsdd_path(data_dir)
        x_tr, y_tr, info = data.load_audio_folder(path, split="train", length=audio["length"],
                                                  return_info=True)
        x_te, y_te = data.load_audio_folder(path, split="test", length=audio["length"])
        if info["sample_rate"] != audio["sample_rate"]:
            raise TaskError(f"fsdd: the recordings are sampled at {info['sample_rate']} Hz, "
                            f"the task expects {audio['sample_rate']} Hz")
        (x_tr, y_tr), (x_te, y_te) = _subset((x_tr, y_tr), limit, 1), _subset((x_te, y_te),
                                                                              limit, 2)
        out_spec.update(classes=[str(c) for c in info["classes"]],
                        input_shape=[audio["length"]], input_dtype="float32", audio=audio)
        featurize = fn.jit(input_features(out_spec))
        return Task(out_spec, _in_chunks(featurize, x_tr), y_tr, _in_chunks(featurize, x_te),
                    y_te)

    # text
    texts, labels, info = data.load_text_csv(_sms_path(data_dir), return_info=True)
    (t_tr, y_tr), (t_te, y_te) = data.train_test_split(random.key(_SPLIT_SEED),
                                                       (texts, labels), 0.2, stratify=labels)
    (t_tr, y_tr), (t_te, y_te) = _subset((t_tr, y_tr), limit, 1), _subset((t_te, y_te), limit, 2)
    if spec is not None:
        tokenizer = data.Tokenizer.from_dict(spec["tokenizer"])
        maxlen = int(spec["maxlen"])
    else:
        tokenizer = data.Tokenizer(num_words=_TEXT["num_words"]).fit(t_tr.tolist())
        maxlen = _TEXT["maxlen"]
    out_spec.update(classes=[str(c) for c in info["classes"]], input_shape=[maxlen],
                    input_dtype="int64", maxlen=maxlen, tokenizer=tokenizer.to_dict())
    return Task(out_spec, tokenizer.encode_batch(t_tr.tolist(), maxlen=maxlen), y_tr,
                tokenizer.encode_batch(t_te.tolist(), maxlen=maxlen), y_te)


def _in_chunks(f, x: np.ndarray, size: int = 256) -> np.ndarray:
    """``f`` over ``x`` in fixed-size chunks (the last one padded), so ``f`` compiles once."""
    out = []
    for lo in range(0, len(x), size):
        chunk = x[lo:lo + size]
        real = len(chunk)
        if real < size and len(x) > size:
            chunk = np.concatenate([chunk, np.zeros((size - real,) + chunk.shape[1:],
                                                    chunk.dtype)])
        out.append(np.asarray(fn.to_numpy(f(chunk)))[:real])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def input_features(spec: dict):
    """The preprocessing from a batch of raw examples to model inputs, in ``funcnet.numpy``.

    Audio: MFCCs of each wave, ``(N, frames, n_mfcc)``; images and token ids
    pass through.  It is traceable, so :func:`make_predict_fn` (and an
    exported model) includes it.

    >>> import numpy as np
    >>> from funcnet.training import tasks
    >>> spec = {"kind": "audio", "audio": {"sample_rate": 8000, "length": 800, "n_fft": 256,
    ...                                    "hop_length": 80, "n_mfcc": 13}}
    >>> tasks.input_features(spec)(np.zeros((2, 800), np.float32)).shape
    (2, 11, 13)
    """
    if spec["kind"] != "audio":
        return lambda x: x
    a = spec["audio"]

    def mfcc(wave):
        return data.mfcc(wave, sample_rate=a["sample_rate"], n_mfcc=a["n_mfcc"],
                         n_fft=a["n_fft"], hop_length=a["hop_length"])

    return fn.vmap(mfcc)


def create_model(name: str, spec: dict, *, hidden_sizes=(128,), dropout: float = 0.0):
    """A model of ``nn.models`` for the task ``spec``: ``mlp``, ``lenet``, ``resnet`` (images),
    ``speech`` (audio), ``text`` (text); ``mlp`` also takes audio features.

    >>> from funcnet.training import tasks
    >>> spec = {"kind": "image", "classes": list("0123456789"), "input_shape": [8, 8, 1]}
    >>> tasks.create_model("mlp", spec, hidden_sizes=(32,))
    <Layer serial(Flatten, Dense(32), Relu, Dense(10))>
    """
    if name not in MODELS:
        raise TaskError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    kind = spec["kind"]
    if kind not in MODELS[name]:
        fits = [m for m, kinds in MODELS.items() if kind in kinds]
        raise TaskError(f"model {name!r} does not fit {spec.get('dataset', kind)!r} ({kind} "
                        f"input); use {' or '.join(fits)}")
    k = len(spec["classes"])
    if name == "mlp":
        return nn.models.MLP(tuple(hidden_sizes), num_classes=k, dropout=dropout)
    if name == "lenet":
        return nn.models.LeNet(num_classes=k)
    if name == "resnet":  # in a data-parallel job, BatchNorm sees the whole batch
        return nn.models.ResNet(num_classes=k, norm="sync_batch")
    if name == "speech":
        return nn.models.SpeechClassifier(num_classes=k, dropout=dropout)
    vocab = len(spec["tokenizer"]["vocab"])
    return nn.models.TextClassifier(vocab_size=vocab, num_classes=k, dropout=dropout)


def make_predict_fn(model, params, model_state, spec: dict):
    """``predict(raw_batch) -> probabilities (N, classes)``: preprocessing, the model in
    inference mode, softmax.  Traceable: ``fn.jit`` it, or ``fn.export`` it.

    >>> import numpy as np
    >>> from funcnet import random
    >>> from funcnet.training import tasks
    >>> spec = {"kind": "image", "classes": ["a", "b"], "input_shape": [3]}
    >>> model = tasks.create_model("mlp", spec, hidden_sizes=(4,))
    >>> _, params, state = model.init_with_state(random.key(0), (-1, 3))
    >>> probs = tasks.make_predict_fn(model, params, state, spec)(np.ones((5, 3), np.float32))
    >>> probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
    ((5, 2), True)
    """
    features = input_features(spec)

    def predict(raw):
        logits, _ = model.apply_with_state(params, features(raw), state=model_state,
                                           train=False)
        return nn.softmax(logits, axis=-1)

    return predict


# ---------------------------------------------------------------------------
# reading raw examples


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(h, w, c)`` to ``(height, width, c)`` (align corners)."""
    h, w = image.shape[:2]
    ys = np.linspace(0.0, h - 1.0, height) if height > 1 else np.zeros(1)
    xs = np.linspace(0.0, w - 1.0, width) if width > 1 else np.zeros(1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _as_image(arr: np.ndarray, shape, source: str) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise TaskError(f"{source}: expected an image (height, width[, channels]), got shape "
                        f"{arr.shape}")
    if arr.shape[-1] == 4:  # RGBA: drop the alpha channel
        arr = arr[..., :3]
    height, width, channels = shape
    if arr.shape[-1] != channels:
        if channels == 1:
            arr = arr.mean(axis=-1, keepdims=True)
        elif arr.shape[-1] == 1:
            arr = np.repeat(arr, channels, axis=-1)
        else:
            raise TaskError(f"{source}: the model expects {channels} channels, the image has "
                            f"{arr.shape[-1]}")
    if arr.shape[:2] != (height, width):
        arr = _resize(arr, height, width)
    return arr


def read_example(spec: dict, source: str) -> np.ndarray:
    """One raw example for the task ``spec``, shaped ``spec["input_shape"]``.

    - images: a PNG (``matplotlib.image.imread``; other formats need Pillow)
      or a ``.npy``; grey/RGB/RGBA are converted to the model's channels
      (grey is the mean of RGB) and the size is resized bilinearly; integer
      pixels are scaled to [0, 1];
    - audio: a WAV file (``funcnet.data.read_wav``) at the task's sample rate,
      or a ``.npy`` wave; mono, padded with zeros or cut to the task's length;
    - text: ``source`` is the text itself, tokenized with the run's tokenizer.

    Problems raise :class:`TaskError` (a ``ValueError``) or ``FileNotFoundError``.

    >>> from funcnet import data
    >>> from funcnet.training import tasks
    >>> spec = {"kind": "text", "input_shape": [4], "maxlen": 4,
    ...         "tokenizer": data.Tokenizer().fit(["free prize"]).to_dict()}
    >>> tasks.read_example(spec, "Free tickets")
    array([2, 1, 0, 0])
    """
    kind = spec["kind"]
    shape = tuple(spec["input_shape"])
    if kind == "text":
        tokenizer = data.Tokenizer.from_dict(spec["tokenizer"])
        return tokenizer.encode_batch([str(source)], maxlen=int(spec["maxlen"]))[0]
    if not os.path.isfile(source):
        raise FileNotFoundError(f"no such file: {source}")
    lower = source.lower()
    if kind == "audio":
        a = spec["audio"]
        if lower.endswith(".npy"):
            wave = np.load(source, allow_pickle=False).astype(np.float32)
        else:
            wave, rate = data.read_wav(source)
            if rate != a["sample_rate"]:
                raise TaskError(f"{source}: sampled at {rate} Hz; the model was trained on "
                                f"{a['sample_rate']} Hz audio (resample it first)")
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        if wave.ndim != 1:
            raise TaskError(f"{source}: expected a mono wave, got shape {wave.shape}")
        out = np.zeros(shape, np.float32)
        n = min(len(wave), shape[0])
        out[:n] = wave[:n]
        return out
    # image
    if lower.endswith(".npy"):
        arr = np.load(source, allow_pickle=False)
        if tuple(arr.shape) == shape:
            return arr.astype(np.float32)
        return _as_image(arr, shape, source)
    try:
        import matplotlib.image as mpimg
    except ImportError as e:
        raise ImportError("reading images needs matplotlib: pip install 'funcnet[data]'") from e
    try:
        arr = mpimg.imread(source)
    except Exception as e:  # matplotlib raises several types for unreadable files
        raise TaskError(f"{source}: cannot read the image ({type(e).__name__}: {e})") from None
    return _as_image(np.asarray(arr), shape, source)
