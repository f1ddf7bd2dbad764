"""Spoken digits (the Free Spoken Digit Dataset) from log-mel features with a 1-d CNN.

What it shows: audio in ``funcnet.data`` — ``load_audio_folder`` with FSDD's standard
split (takes 0-4 of every speaker and digit are the 300 test recordings, takes
5-49 the 2,700 training ones), log-mel spectrograms computed by a jitted, vmapped
``data.mel_spectrogram`` + ``data.power_to_db`` (funcnet.numpy code, so the same
features on every backend), waveform augmentation (``data.time_shift`` and
``data.add_noise``, pure functions of a key) and ``nn.models.SpeechClassifier``
(per-frame LayerNorm, two ``Conv1D - ReLU - MaxPool`` stages, mean over time).

Data: FSDD's ``recordings/{digit}_{speaker}_{take}.wav`` (8 kHz), found through
``--data``, ``$FUNCNET_SHARED_DATA`` or ``../shared/data/fsdd``; nothing is downloaded.

Run it::

    python examples/speech_digits.py            # 30 epochs: about 99% test accuracy
    python examples/speech_digits.py --quick    # seconds (smoke test)

Expected: >= 95% accuracy on the standard test split (the measured accuracy, time
and backend are in docs/results.md).
"""

from __future__ import annotations

import numpy as np
from _common import adam_cosine, fit, load_dataset, make_parser, max_seconds, report, start

import funcnet as fn
from funcnet import data, nn, random

TARGET = 0.95
SAMPLE_RATE = 8000
LENGTH = 8000  # one second; FSDD's recordings are trimmed and nearly all shorter


def load_fsdd(root):
    """``((x_train, y_train), (x_test, y_test))`` with FSDD's standard split."""
    from pathlib import Path

    root = Path(root)
    folder = root / "fsdd" if (root / "fsdd").is_dir() else root
    train = data.load_audio_folder(folder, split="train", length=LENGTH)
    test = data.load_audio_folder(folder, split="test", length=LENGTH)
    return train, test


def synthetic_digits(seed: int, n: int):
    """Stand-in "recordings": a digit-dependent pair of tones with a random onset, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    t = np.arange(LENGTH) / SAMPLE_RATE
    x = 0.02 * rng.standard_normal((n, LENGTH))
    for i, digit in enumerate(y):
        onset = rng.integers(0, LENGTH // 4)
        dur = LENGTH // 2
        tone = (np.sin(2 * np.pi * (300 + 150 * digit) * t[:dur])
                + 0.5 * np.sin(2 * np.pi * (1200 + 90 * digit) * t[:dur]))
        x[i, onset:onset + dur] += 0.3 * tone
    return x.astype(np.float32), y.astype(np.int64)


def make_features(n_mels: int = 40):
    """A jitted ``features(waves) -> (n, frames, n_mels)`` log-mel spectrogram (dB / 40)."""

    def one(wave):
        mel = data.mel_spectrogram(wave, SAMPLE_RATE, n_fft=256, hop_length=80, n_mels=n_mels)
        return data.power_to_db(mel, top_db=80.0) / 40.0

    batched = fn.jit(fn.vmap(one))

    def features(waves, batch_size: int = 500):
        return np.concatenate([fn.to_numpy(batched(w))
                               for w in data.batches(None, waves, batch_size, shuffle=False)])

    return features


def augmented_features(waves, seed: int, copies: int, features):
    """``copies`` randomly shifted, noisy versions of every training wave, as features."""
    batched = fn.jit(fn.vmap(lambda k, w: data.add_noise(
        random.fold_in(k, 1), data.time_shift(k, w, LENGTH // 8), snr_db=20.0)))
    out = []
    for c in range(copies):
        keys = random.split(random.fold_in(random.key(seed), c), len(waves))
        out.append(features(fn.to_numpy(batched(keys, waves))))
    return np.concatenate(out)


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=30, batch_size=64, lr=2e-3)
    parser.add_argument("--augment", type=int, default=2,
                        help="augmented copies of the training set added to it (default 2)")
    args = parser.parse_args(argv)
    started = start(args, "Spoken digits (FSDD)")

    (train, test), source = load_dataset(
        args, load_fsdd, "Free Spoken Digit Dataset",
        synthetic=lambda: (synthetic_digits(args.seed, 300), synthetic_digits(args.seed + 1, 100)))
    epochs = args.epochs
    if args.quick:
        rng = np.random.default_rng(args.seed)  # a subset with every digit in it
        pick_train = rng.permutation(len(train[0]))[:300]
        pick_test = rng.permutation(len(test[0]))[:100]
        train = (train[0][pick_train], train[1][pick_train])
        test = (test[0][pick_test], test[1][pick_test])
        epochs, args.augment = min(epochs, 3), 0
    print(f"data: {source} | {len(train[0])} training, {len(test[0])} test recordings",
          flush=True)

    features = make_features()
    f_train, f_test = features(train[0]), features(test[0])
    y_train = train[1]
    if args.augment:
        f_train = np.concatenate([f_train, augmented_features(train[0], args.seed, args.augment,
                                                              features)])
        y_train = np.tile(y_train, args.augment + 1)
    print(f"features: {f_train.shape[1]} frames x {f_train.shape[2]} log-mel bands; "
          f"{len(f_train)} training examples with augmentation", flush=True)

    model = nn.models.SpeechClassifier(num_classes=10, encoder="conv", channels=(32, 64),
                                       dropout=0.2)
    steps = epochs * (len(f_train) // args.batch_size)
    tx = adam_cosine(args.lr, steps, weight_decay=1e-4)
    result = fit(model, tx, (f_train, y_train), (f_test, test[1]), epochs=epochs,
                 batch_size=args.batch_size, key=random.key(args.seed),
                 max_seconds=max_seconds(args))
    report("speech_digits", result.test_accuracy, started,
           target=None if args.quick else TARGET, source=source)
    return result.test_accuracy


if __name__ == "__main__":
    main()
