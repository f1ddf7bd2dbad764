"""WAV files and folders of them (the Free Spoken Digit Dataset), with the standard library.

Files are read with Python's :mod:`wave` module (uncompressed PCM, 8, 16,
24 or 32 bits); samples become float32 in ``[-1, 1)``.

A folder of recordings is labelled from the file names, as the Free Spoken
Digit Dataset (FSDD) names them: ``{label}_{speaker}_{take}.wav``, e.g.
``7_jackson_32.wav``.  :func:`load_audio_folder` returns the waves padded to
one length and the labels, and on request each file's speaker and take;
``split="train"`` / ``split="test"`` applies FSDD's standard split (takes
0-4 of every speaker and digit are the test set).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from funcnet.data._paths import as_path, not_found

__all__ = ["read_wav", "write_wav", "load_audio_folder", "parse_audio_name"]


def _pcm_to_float(raw: bytes, width: int, channels: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:  # little-endian 24-bit: sign-extend into int32
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        x = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0 ** 31).astype(np.float32)
    else:
        raise ValueError(f"unsupported WAV sample width of {width} bytes")
    return x.reshape(-1, channels) if channels > 1 else x


def _open_wav(path: Path, caller: str):
    try:
        return wave.open(str(path), "rb")
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{caller}: {path} is not a PCM WAV file that Python's wave module "
                         f"reads ({e})") from e


def read_wav(path):
    """Read a PCM WAV file: ``(samples, sample_rate)``.

    ``samples`` is float32 in ``[-1, 1)``: shape ``(n,)`` for mono,
    ``(n, channels)`` otherwise.

    >>> import os, tempfile
    >>> import numpy as np
    >>> from funcnet.data import read_wav, write_wav
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> write_wav(path, np.array([0.0, 0.5, -0.5, -1.0]), 8000)
    >>> read_wav(path)
    (array([ 0. ,  0.5, -0.5, -1. ], dtype=float32), 8000)
    """
    path = as_path(path, "read_wav")
    if not path.is_file():
        raise not_found("read_wav", f"WAV file {path.name!r}", path.parent)
    with _open_wav(path, "read_wav") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    try:
        return _pcm_to_float(raw, width, channels), rate
    except ValueError as e:
        raise ValueError(f"read_wav: {path}: {e}") from e


def write_wav(path, samples, sample_rate: int) -> None:
    """Write float samples in ``[-1, 1]`` (``(n,)`` or ``(n, channels)``) as 16-bit PCM.

    Values are clipped to ``[-1, 1]`` and rounded to the nearest 16-bit step.

    >>> import os, tempfile
    >>> import numpy as np
    >>> from funcnet.data import read_wav, write_wav
    >>> path = os.path.join(tempfile.mkdtemp(), "stereo.wav")
    >>> write_wav(path, np.zeros((100, 2)), 16000)
    >>> x, rate = read_wav(path)
    >>> x.shape, rate
    ((100, 2), 16000)
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"write_wav: samples must be (n,) or (n, channels), got {x.shape}")
    channels = 1 if x.ndim == 1 else x.shape[1]
    ints = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(as_path(path, "write_wav")), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(ints.tobytes())


def parse_audio_name(name: str):
    """Split a file name ``{label}_{speaker}_{take}.wav`` into ``(label, speaker, take)``.

    ``label`` is the text before the first underscore, ``take`` the integer
    after the last one (``-1`` if it is not an integer), ``speaker`` what is
    between (``""`` if nothing).

    >>> from funcnet.data import parse_audio_name
    >>> parse_audio_name("7_jackson_32.wav")
    ('7', 'jackson', 32)
    >>> parse_audio_name("yes_0a7c2a8d_nohash_1.wav")
    ('yes', '0a7c2a8d_nohash', 1)
    >>> parse_audio_name("bird.wav")
    ('bird', '', -1)
    """
    stem = Path(name).stem
    parts = stem.split("_")
    label = parts[0]
    if len(parts) == 1:
        return label, "", -1
    last = parts[-1]
    if last.isdigit():
        return label, "_".join(parts[1:-1]), int(last)
    return label, "_".join(parts[1:]), -1


def _wav_files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav")


def _find_wav_folder(path, caller: str) -> tuple[Path, list[Path]]:
    folder = as_path(path, caller)
    looked = []
    for candidate in (folder, folder / "recordings", folder / "fsdd" / "recordings"):
        looked.append(candidate)
        if candidate.is_dir():
            files = _wav_files(candidate)
            if files:
                return candidate, files
    raise not_found(caller, "WAV files (*.wav)", looked, "fsdd")


def _label_sort_key(label: str):
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def load_audio_folder(path, *, length: int | None = None, split: str | None = None,
                      test_takes: int = 5, return_info: bool = False):
    """Load a folder of WAV recordings labelled by name: ``(x, y)`` or ``(x, y, info)``.

    Names follow ``{label}_{speaker}_{take}.wav`` (see
    :func:`parse_audio_name`), as in the Free Spoken Digit Dataset; ``path``
    is the folder of WAV files, or a folder with a ``recordings`` subfolder
    (FSDD's layout).  Files are ordered by label, speaker and take.

    - ``x``: float32 ``(n, length)``, mono (channels averaged), each wave
      zero-padded at the end or truncated to ``length`` samples (default: the
      longest file in the folder, so ``split="train"`` and ``split="test"``
      give the same width).
    - ``y``: int64 labels: the integer itself when every label is an integer
      (FSDD's digits), else the index of the label in the sorted label names
      (``info["classes"]``).
    - ``split``: ``None`` (every file), ``"train"`` or ``"test"``: FSDD's
      standard split puts takes ``0 ... test_takes - 1`` (default 0-4) of
      every speaker and label in the test set.
    - ``info`` (with ``return_info=True``): a dict of per-file NumPy arrays
      ``"speaker"`` (str), ``"take"`` (int64), ``"length"`` (samples before
      padding), ``"file"`` (names), plus ``"sample_rate"`` (int) and
      ``"classes"`` (label names in label order).

    Every file must have the same sample rate (there is no resampling).

    >>> import os, tempfile
    >>> import numpy as np
    >>> from funcnet import data
    >>> folder = tempfile.mkdtemp()
    >>> for digit in (3, 5):
    ...     for take in range(6):
    ...         name = f"{digit}_alice_{take}.wav"
    ...         data.write_wav(os.path.join(folder, name), np.zeros(100 + take), 8000)
    >>> x, y, info = data.load_audio_folder(folder, split="train", return_info=True)
    >>> x.shape, y.tolist(), info["take"].tolist(), info["sample_rate"]
    ((2, 105), [3, 5], [5, 5], 8000)
    """
    caller = "load_audio_folder"
    if split not in (None, "train", "test"):
        raise ValueError(f"{caller}: split must be None, 'train' or 'test', got {split!r}")
    folder, files = _find_wav_folder(path, caller)
    parsed = [parse_audio_name(f.name) for f in files]

    headers = []
    for f in files:
        with _open_wav(f, caller) as w:
            headers.append((w.getnframes(), w.getframerate()))
    rates = sorted({rate for _, rate in headers})
    if len(rates) > 1:
        raise ValueError(f"{caller}: the files in {folder} have different sample rates {rates}; "
                         "resample them to one rate first")

    order = sorted(range(len(files)),
                   key=lambda i: (_label_sort_key(parsed[i][0]), parsed[i][1], parsed[i][2],
                                  files[i].name))
    width = max(n for n, _ in headers) if length is None else int(length)
    if width <= 0:
        raise ValueError(f"{caller}: length must be positive, got {length}")

    classes = sorted({p[0] for p in parsed}, key=_label_sort_key)
    integer_labels = all(_label_sort_key(c)[0] == 0 for c in classes)
    class_index = {c: i for i, c in enumerate(classes)}

    if split is not None:
        if any(parsed[i][2] < 0 for i in order):
            bad = next(files[i].name for i in order if parsed[i][2] < 0)
            raise ValueError(f"{caller}: split={split!r} needs a take number at the end of every "
                             f"file name ({{label}}_{{speaker}}_{{take}}.wav), e.g. {bad!r} has "
                             "none")
        in_test = [parsed[i][2] < test_takes for i in order]
        order = [i for i, t in zip(order, in_test) if t == (split == "test")]

    x = np.zeros((len(order), width), dtype=np.float32)
    for row, i in enumerate(order):
        samples, _ = read_wav(files[i])
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        n = min(width, samples.shape[0])
        x[row, :n] = samples[:n]
    labels = [parsed[i][0] for i in order]
    y = np.array([int(lab) if integer_labels else class_index[lab] for lab in labels],
                 dtype=np.int64)
    if not return_info:
        return x, y
    info = {
        "speaker": np.array([parsed[i][1] for i in order], dtype=str),
        "take": np.array([parsed[i][2] for i in order], dtype=np.int64),
        "length": np.array([headers[i][0] for i in order], dtype=np.int64),
        "file": np.array([files[i].name for i in order], dtype=str),
        "sample_rate": rates[0],
        "classes": classes,
    }
    return x, y, info
