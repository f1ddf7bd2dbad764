"""``funcnet.data``: datasets, batching, augmentation, audio features and text tools.

Everything returns or takes NumPy arrays and explicit random keys; nothing
is downloaded (see ``docs/datasets.md`` for where each dataset goes).

- datasets: :func:`load_digits` (bundled, offline), :func:`load_mnist`,
  :func:`load_fashion_mnist`, :func:`load_cifar10`, :func:`load_cifar100`,
  :func:`load_audio_folder` (WAV, e.g. the Free Spoken Digit Dataset),
  :func:`load_text_csv` (e.g. the SMS Spam Collection);
- batching: :func:`batches`, :func:`num_batches`, :func:`train_test_split`;
- augmentation (pure functions of a key, one example, ``vmap``/``jit``-able):
  :func:`random_crop`, :func:`random_flip`, :func:`random_rotation`,
  :func:`random_scale`, :func:`time_shift`, :func:`add_noise`;
- audio features in ``funcnet.numpy``: :func:`stft`, :func:`spectrogram`,
  :func:`mel_spectrogram`, :func:`mfcc`;
- text: :class:`Tokenizer`, :func:`pad_sequences`.

>>> import funcnet as fn
>>> from funcnet import data, random
>>> x, y = data.load_digits()
>>> key = random.key(0)
>>> (x_train, y_train), (x_test, y_test) = data.train_test_split(key, (x, y), 0.2, stratify=y)
>>> flip = fn.vmap(data.random_flip)
>>> for xb, yb in data.batches(random.fold_in(key, 1), (x_train, y_train), batch_size=256):
...     xb = flip(random.split(random.key(2), len(xb)), xb)
>>> xb.shape
(158, 8, 8, 1)
"""

from funcnet.data._paths import DataNotFoundError
from funcnet.data.audio import (dct_matrix, frame, hann_window, hz_to_mel, mel_filterbank,
                                mel_spectrogram, mel_to_hz, mfcc, power_to_db, spectrogram, stft)
from funcnet.data.augment import (add_noise, random_crop, random_flip, random_rotation,
                                  random_scale, rotate, time_shift, zoom)
from funcnet.data.batching import batches, num_batches, train_test_split
from funcnet.data.images import (CIFAR10_CLASSES, FASHION_MNIST_CLASSES,
                                 FASHION_MNIST_SYSTEM_PATH, load_cifar10, load_cifar100,
                                 load_digits, load_fashion_mnist, load_mnist, read_idx)
from funcnet.data.safe_pickle import UnsafePickleError, safe_load, safe_loads
from funcnet.data.text import Tokenizer, load_text_csv, pad_sequences
from funcnet.data.wav import load_audio_folder, parse_audio_name, read_wav, write_wav

__all__ = [
    # datasets
    "load_digits", "load_mnist", "load_fashion_mnist", "load_cifar10", "load_cifar100",
    "load_audio_folder", "load_text_csv", "read_idx", "read_wav", "write_wav",
    "parse_audio_name", "safe_load", "safe_loads", "DataNotFoundError", "UnsafePickleError",
    "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES", "FASHION_MNIST_SYSTEM_PATH",
    # batching
    "batches", "num_batches", "train_test_split",
    # augmentation
    "random_crop", "random_flip", "random_rotation", "random_scale", "rotate", "zoom",
    "time_shift", "add_noise",
    # audio features
    "stft", "spectrogram", "mel_spectrogram", "mfcc", "mel_filterbank", "power_to_db",
    "hz_to_mel", "mel_to_hz", "dct_matrix", "hann_window", "frame",
    # text
    "Tokenizer", "pad_sequences",
]
