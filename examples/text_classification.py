"""SMS spam detection: a word-level GRU (or self-attention) text classifier.

What it shows: the text tools of ``funcnet.data`` — ``load_text_csv`` (the
tab-separated SMS Spam Collection), a seeded stratified ``train_test_split``,
``Tokenizer`` fitted on the training messages only (after replacing every digit
by 0, so that unseen phone numbers still map to a known token), ``encode_batch``
into padded id matrices — and ``nn.models.TextClassifier``: an embedding, then a GRU that
skips the padding (a mask; its backward pass through time is a hand-written
``custom_vjp``) or masked self-attention, then dropout (0.5) and a dense layer,
trained with AdamW (weight decay 0.05).  At the end:
accuracy, spam precision/recall, and a few messages classified by the trained
model.

Data: ``SMSSpamCollection`` (5,574 messages, 13% spam), found through ``--data``,
``$FUNCNET_SHARED_DATA`` or ``../shared/data/text/sms_spam``; nothing is downloaded.
The collection has no official split: 20% of it (stratified, ``--seed 0``) is the
test set.

Run it::

    python examples/text_classification.py                      # GRU: about 98.7% accuracy
    python examples/text_classification.py --encoder attention
    python examples/text_classification.py --quick              # seconds (smoke test)

Expected: >= 98% test accuracy (the measured accuracy, time and backend are in
docs/results.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from _common import adam_cosine, fit, load_dataset, make_parser, make_predict, report, start

import funcnet as fn
from funcnet import data, nn, random, training

TARGET = 0.98
SMS_FILE = Path("text") / "sms_spam" / "SMSSpamCollection"


def load_sms(root: Path):
    """Texts and labels (0 = ham, 1 = spam) from ``root`` or ``root/text/sms_spam``."""
    root = Path(root)
    for candidate in (root, root / "SMSSpamCollection", root / SMS_FILE,
                      root / "sms_spam" / "SMSSpamCollection"):
        if candidate.is_file():
            return data.load_text_csv(candidate, classes=("ham", "spam"))
    raise data.DataNotFoundError(
        f"SMSSpamCollection not found under {root} (nor in text/sms_spam/ there). It is one "
        "tab-separated file, 'label<TAB>text' per line; get it from the UCI Machine Learning "
        "Repository (dataset 228, 'SMS Spam Collection') and pass its folder with --data.")


def normalize_digits(texts):
    """Replace every digit by 0, so that all phone numbers (or prices, or codes) of one
    length share a token: spam is full of numbers never seen in training."""
    return np.array([re.sub(r"[0-9]", "0", t) for t in texts], dtype=object)


def synthetic_sms(seed: int, n: int = 400):
    """Stand-in messages: spam draws from promotional words, ham from everyday ones."""
    rng = np.random.default_rng(seed)
    ham = "ok see you at home later call me when are we going lunch tonight thanks love".split()
    spam = "win free prize cash claim now urgent txt reply stop offer call mobile award".split()
    labels = (rng.uniform(size=n) < 0.3).astype(np.int64)
    texts = np.array([" ".join(rng.choice(spam if lab else ham, rng.integers(4, 15)))
                      for lab in labels], dtype=object)
    return texts, labels


def main(argv=None) -> float:
    parser = make_parser(__doc__, epochs=8, batch_size=64, lr=3e-3)
    parser.add_argument("--encoder", choices=["gru", "attention"], default="gru")
    parser.add_argument("--maxlen", type=int, default=48, help="tokens kept per message")
    parser.add_argument("--dropout", type=float, default=0.5, help="drop rate of the summary")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--keep-digits", action="store_true",
                        help="do not replace digits by 0 before tokenizing")
    parser.add_argument("--vocab", type=int, default=8000,
                        help="vocabulary size, <pad> and <unk> included")
    args = parser.parse_args(argv)
    started = start(args, f"SMS spam ({args.encoder})")

    (texts, labels), source = load_dataset(args, load_sms, "SMS Spam Collection",
                                           synthetic=lambda: synthetic_sms(args.seed))
    epochs = args.epochs
    if args.quick:
        texts, labels = texts[:600], labels[:600]
        epochs = min(epochs, 2)
    (t_train, y_train), (t_test, y_test) = data.train_test_split(
        random.key(args.seed), (texts, labels), 0.2, stratify=labels)
    print(f"data: {source} | {len(t_train)} training, {len(t_test)} test messages, "
          f"{labels.mean():.1%} spam", flush=True)

    if not args.keep_digits:
        t_train, t_test = normalize_digits(t_train), normalize_digits(t_test)
    tokenizer = data.Tokenizer(num_words=args.vocab).fit(t_train)
    x_train = tokenizer.encode_batch(t_train, maxlen=args.maxlen)
    x_test = tokenizer.encode_batch(t_test, maxlen=args.maxlen)
    print(f"vocabulary: {tokenizer.vocab_size} tokens; ids {x_train.shape}", flush=True)

    model = nn.models.TextClassifier(tokenizer.vocab_size, num_classes=2, embed_dim=64,
                                     hidden_size=64, encoder=args.encoder, dropout=args.dropout)
    steps = epochs * (len(x_train) // args.batch_size)
    tx = adam_cosine(args.lr, steps, weight_decay=args.weight_decay, clip=1.0)
    result = fit(model, tx, (x_train, y_train), (x_test, y_test), epochs=epochs,
                 batch_size=args.batch_size, key=random.key(args.seed))

    metrics = training.evaluate(model, result.params, result.state, (x_test, y_test))
    print(f"spam precision {metrics['precision'][1]:.3f}  recall {metrics['recall'][1]:.3f}"
          f"  confusion (rows: true ham, spam) {metrics['confusion']}")
    predict = make_predict(model)
    examples = ["Are we still meeting for lunch tomorrow?",
                "WINNER!! You have been selected for a free prize. Call now to claim"]
    verdicts = fn.to_numpy(predict(result.params, result.state,
                                   tokenizer.encode_batch(examples, maxlen=args.maxlen)))
    for text, v in zip(examples, verdicts):
        print(f"  {'spam' if v else 'ham ':4s} <- {text!r}")
    report("text_classification", result.test_accuracy, started,
           target=None if args.quick else TARGET, source=source)
    return result.test_accuracy


if __name__ == "__main__":
    main()
