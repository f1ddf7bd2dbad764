"""Finding dataset files on disk, and the error that says where they belong.

No loader in ``funcnet.data`` downloads anything.  When a file or folder is
missing, the loader raises :class:`DataNotFoundError` (a
``FileNotFoundError``) whose message says what was looked for, where, and
how to get the data.
"""

from __future__ import annotations

import os
from pathlib import Path

# How to obtain each dataset, quoted by the missing-data errors (and by docs/datasets.md).
HOW_TO_GET = {
    "mnist": (
        "MNIST is four IDX files, gzipped or not: train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz. "
        "Put them in one folder and pass that folder (or its parent holding an 'mnist' folder); "
        "in the funcnet project they are in the shared data folder, ../shared/data/mnist "
        "(or $FUNCNET_SHARED_DATA/mnist). They are published at http://yann.lecun.com/exdb/mnist/."
    ),
    "fashion-mnist": (
        "Fashion-MNIST has the same four IDX file names as MNIST "
        "(train-images-idx3-ubyte.gz, ..., t10k-labels-idx1-ubyte.gz). On Debian and "
        "Ubuntu, 'apt-get install dataset-fashion-mnist' installs them in "
        "/usr/share/datasets/fashion-mnist, which load_fashion_mnist() finds by itself; "
        "otherwise get them from https://github.com/zalandoresearch/fashion-mnist and pass "
        "their folder."
    ),
    "cifar-10": (
        "CIFAR-10 comes as 'CIFAR-10 binary version' (folder cifar-10-batches-bin: "
        "data_batch_1.bin ... data_batch_5.bin, test_batch.bin) or 'CIFAR-10 python version' "
        "(folder cifar-10-batches-py: data_batch_1 ... data_batch_5, test_batch). Get an "
        "archive from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass the "
        "extracted folder (or its parent)."
    ),
    "cifar-100": (
        "CIFAR-100 comes as 'CIFAR-100 binary version' (folder cifar-100-binary: train.bin, "
        "test.bin) or 'CIFAR-100 python version' (folder cifar-100-python: train, test). Get an "
        "archive from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass the "
        "extracted folder (or its parent)."
    ),
    "fsdd": (
        "The Free Spoken Digit Dataset is a folder of WAV files named "
        "{digit}_{speaker}_{take}.wav (its 'recordings' folder). In the funcnet project it is in "
        "the shared data folder, ../shared/data/fsdd/recordings (or "
        "$FUNCNET_SHARED_DATA/fsdd/recordings); elsewhere clone "
        "https://github.com/Jakobovski/free-spoken-digit-dataset and pass its 'recordings' folder."
    ),
    "sms-spam": (
        "The SMS Spam Collection is one tab-separated file, SMSSpamCollection, with lines "
        "'label<TAB>text'. In the funcnet project it is ../shared/data/text/sms_spam/"
        "SMSSpamCollection (or $FUNCNET_SHARED_DATA/text/sms_spam/SMSSpamCollection); elsewhere "
        "get it from the UCI Machine Learning Repository (dataset 228, 'SMS Spam Collection')."
    ),
}


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where a loader looked; the message says how to get them.

    >>> from funcnet.data import DataNotFoundError
    >>> issubclass(DataNotFoundError, FileNotFoundError)
    True
    """


def as_path(path, caller: str) -> Path:
    """``path`` as a ``Path`` (``~`` expanded); a clear ``TypeError`` for anything else."""
    if isinstance(path, (str, os.PathLike)):
        return Path(path).expanduser()
    raise TypeError(f"{caller}: path must be a str or os.PathLike, got {type(path).__name__}")


def not_found(caller: str, what: str, looked_in, dataset: str | None = None
              ) -> DataNotFoundError:
    """The error for missing data: what was looked for, where, and how to get it."""
    places = [looked_in] if isinstance(looked_in, (str, os.PathLike)) else list(looked_in)
    where = ", ".join(str(p) for p in places)
    message = f"{caller}: {what} not found (looked in {where})."
    if dataset is not None:
        message += " " + HOW_TO_GET[dataset]
    message += " funcnet never downloads data."
    return DataNotFoundError(message)


def first_existing(folder: Path, names) -> Path | None:
    """The first of ``folder / name`` that is a file, or None."""
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None
