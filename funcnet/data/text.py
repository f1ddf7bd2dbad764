"""Text data: labelled text files, a word/character tokenizer, and padding.

>>> from funcnet.data import Tokenizer, pad_sequences
>>> tok = Tokenizer().fit(["the cat sat", "the dog"])
>>> tok.encode("the cat ran")
[2, 3, 1]
>>> pad_sequences([[2, 3], [4]], maxlen=3)
array([[2, 3, 0],
       [4, 0, 0]])
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import numpy as np

from funcnet.data._paths import as_path, not_found

__all__ = ["load_text_csv", "Tokenizer", "pad_sequences"]

_DELIMITERS = "\t,;|"


def _decode(blob: bytes, encoding: str | None) -> str:
    if encoding is not None:
        return blob.decode(encoding)
    try:
        return blob.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Latin-1 maps every byte, so older files (e.g. Kaggle's spam.csv) still load.
        return blob.decode("latin-1")


def _guess_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    if all("\t" in ln for ln in lines):
        return "\t"
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return "\t" if "\t" in lines[0] else ","


def load_text_csv(path, *, delimiter: str | None = None, label_column: int = 0,
                  text_column: int = 1, header: bool = False, classes=None,
                  encoding: str | None = None, return_info: bool = False):
    """Labelled texts from a delimited file: ``(texts, labels)`` or ``(texts, labels, info)``.

    Each row holds a label and a text (by default ``label<delimiter>text``,
    as in the SMS Spam Collection's ``ham<TAB>Go until jurong point...``).

    - ``delimiter``: ``None`` guesses it from the first lines (tab, comma,
      semicolon or ``|``).  Tab-separated files are read without quote
      processing (texts may contain ``"``), and a text that itself contains
      the delimiter keeps it when the text is the last column.  Other
      delimiters follow CSV quoting rules.
    - ``header``: skip the first row.
    - ``classes``: the label names in label order (e.g. ``("ham",
      "spam")``); by default integer labels are kept as they are and names
      are numbered in sorted order (``info["classes"]``).
    - ``encoding``: by default UTF-8, falling back to Latin-1.

    ``texts`` is a NumPy object array of ``str`` (so :func:`batches` can
    index it), ``labels`` int64.  Empty lines are skipped.

    >>> import os, tempfile
    >>> from funcnet import data
    >>> path = os.path.join(tempfile.mkdtemp(), "sms.tsv")
    >>> with open(path, "w") as f:
    ...     _ = f.write('ham\\tSee you at 5, ok?\\nspam\\tWIN a "free" prize!\\n')
    >>> texts, labels, info = data.load_text_csv(path, return_info=True)
    >>> texts.tolist(), labels.tolist(), info["classes"]
    (['See you at 5, ok?', 'WIN a "free" prize!'], [0, 1], ['ham', 'spam'])
    """
    caller = "load_text_csv"
    path = as_path(path, caller)
    if not path.is_file():
        hint = "sms-spam" if "sms" in str(path).lower() or "spam" in str(path).lower() else None
        raise not_found(caller, f"text file {path.name!r}", path.parent, hint)
    text = _decode(path.read_bytes(), encoding)
    delim = _guess_delimiter(text) if delimiter is None else delimiter
    if len(delim) != 1:
        raise ValueError(f"{caller}: delimiter must be one character, got {delim!r}")
    quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quoting=quoting)
    needed = max(label_column, text_column) + 1
    raw_labels, texts = [], []
    for lineno, row in enumerate(reader, start=1):
        if header and lineno == 1:
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < needed:
            raise ValueError(f"{caller}: {path}:{lineno} has {len(row)} field(s), expected at "
                             f"least {needed} (delimiter {delim!r}): {row!r}")
        if text_column == needed - 1 and len(row) > needed and delim == "\t":
            row = row[:text_column] + [delim.join(row[text_column:])]
        raw_labels.append(row[label_column].strip())
        texts.append(row[text_column])

    if classes is not None:
        classes = [str(c) for c in classes]
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(raw_labels) - set(index))
        if unknown:
            raise ValueError(f"{caller}: labels {unknown[:5]} are not in classes={classes}")
        labels = [index[lab] for lab in raw_labels]
    elif raw_labels and all(re.fullmatch(r"-?\d+", lab) for lab in raw_labels):
        labels = [int(lab) for lab in raw_labels]
        classes = sorted(set(raw_labels), key=int)
    else:
        classes = sorted(set(raw_labels))
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[lab] for lab in raw_labels]
    x = np.empty(len(texts), dtype=object)
    x[:] = texts
    y = np.array(labels, dtype=np.int64)
    if return_info:
        return x, y, {"classes": classes, "delimiter": delim}
    return x, y


# ---------------------------------------------------------------------------
# Tokenizer


_WORD = re.compile(r"\w+", re.UNICODE)
_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Tokenizer:
    """A word- or character-level vocabulary: fit on texts, then encode and decode.

    - ``level``: ``"word"`` (default) or ``"char"``.
    - ``num_words``: the vocabulary size limit, *including* the two special
      tokens; the most frequent tokens are kept (ties: first seen first).
      ``None`` keeps every token.
    - ``lower``: lowercase before splitting (default ``True``).
    - ``punctuation`` (word level): ``"split"`` makes every punctuation mark
      a token of its own (``"ok?"`` → ``ok``, ``?``), ``"drop"`` removes it,
      ``"keep"`` splits on whitespace only.
    - ids: ``0`` is the padding token ``pad_token`` (``"<pad>"``), ``1`` the
      out-of-vocabulary token ``oov_token`` (``"<unk>"``), then the
      vocabulary from the most frequent token down.

    ``fit`` returns the tokenizer itself, so ``Tokenizer().fit(texts)`` reads
    naturally; ``to_dict``/``from_dict`` save and restore it (plain JSON-able
    data).

    >>> from funcnet.data import Tokenizer
    >>> tok = Tokenizer(num_words=5).fit(["Hello, world!", "hello there", "hello"])
    >>> tok.vocab
    ['<pad>', '<unk>', 'hello', ',', 'world']
    >>> ids = tok.encode("Hello there, world")
    >>> ids, tok.decode(ids)
    ([2, 1, 3, 4], 'hello <unk> , world')
    >>> Tokenizer(level="char").fit(["abba"]).encode("abc")
    [2, 3, 1]
    """

    def __init__(self, level: str = "word", num_words: int | None = None, lower: bool = True,
                 punctuation: str = "split", oov_token: str = "<unk>", pad_token: str = "<pad>"):
        if level not in ("word", "char"):
            raise ValueError(f"Tokenizer: level must be 'word' or 'char', got {level!r}")
        if punctuation not in ("split", "drop", "keep"):
            raise ValueError(f"Tokenizer: punctuation must be 'split', 'drop' or 'keep', "
                             f"got {punctuation!r}")
        if num_words is not None and num_words < 2:
            raise ValueError(f"Tokenizer: num_words counts the pad and OOV tokens, so it must be "
                             f"at least 2, got {num_words}")
        if oov_token == pad_token:
            raise ValueError("Tokenizer: oov_token and pad_token must differ")
        self.level = level
        self.num_words = num_words
        self.lower = lower
        self.punctuation = punctuation
        self.oov_token = oov_token
        self.pad_token = pad_token
        self.vocab = [pad_token, oov_token]
        self.token_to_id = {pad_token: 0, oov_token: 1}
        self.counts: dict[str, int] = {}

    pad_id = 0
    oov_id = 1

    @property
    def vocab_size(self) -> int:
        """The number of ids (special tokens included): embedding tables need this many rows.

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer().fit(["a b a"]).vocab_size
        4
        """
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"Tokenizer(level={self.level!r}, vocab_size={self.vocab_size}, "
                f"num_words={self.num_words}, lower={self.lower})")

    def tokenize(self, text: str) -> list[str]:
        """Split one text into tokens (lowercased if ``lower``), before any id lookup.

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer().tokenize("Don't stop!")
        ['don', "'", 't', 'stop', '!']
        >>> Tokenizer(punctuation="drop").tokenize("Don't stop!")
        ['don', 't', 'stop']
        """
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer: texts must be str, got {type(text).__name__}")
        if self.lower:
            text = text.lower()
        if self.level == "char":
            return list(text)
        if self.punctuation == "split":
            return _WORD_OR_PUNCT.findall(text)
        if self.punctuation == "drop":
            return _WORD.findall(text)
        return text.split()

    def fit(self, texts) -> Tokenizer:
        """Build the vocabulary from an iterable of texts (replacing any earlier one).

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer().fit(["b a", "a"]).vocab
        ['<pad>', '<unk>', 'a', 'b']
        """
        if isinstance(texts, str):
            raise TypeError("Tokenizer.fit expects an iterable of texts, not one str; "
                            "wrap it in a list")
        counts: Counter = Counter()
        for text in texts:
            counts.update(self.tokenize(text))
        for special in (self.pad_token, self.oov_token):
            counts.pop(special, None)
        # most_common sorts by count and keeps first-seen order among ties
        limit = None if self.num_words is None else self.num_words - 2
        kept = [tok for tok, _ in counts.most_common(limit)]
        self.vocab = [self.pad_token, self.oov_token, *kept]
        self.token_to_id = {tok: i for i, tok in enumerate(self.vocab)}
        self.counts = dict(counts)
        return self

    def encode(self, text: str) -> list[int]:
        """The ids of one text's tokens (unknown tokens → ``oov_id``).

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer().fit(["a b"]).encode("b c a")
        [3, 1, 2]
        """
        lookup = self.token_to_id
        return [lookup.get(tok, self.oov_id) for tok in self.tokenize(text)]

    def encode_batch(self, texts, maxlen: int | None = None, padding: str = "post",
                     truncating: str = "post") -> np.ndarray:
        """Encode many texts into one int64 array ``(len(texts), maxlen)``.

        Padding and truncation as :func:`pad_sequences` (with ``pad_id``).

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer().fit(["a b"]).encode_batch(["a", "b a b"], maxlen=2)
        array([[2, 0],
               [3, 2]])
        """
        if isinstance(texts, str):
            raise TypeError("Tokenizer.encode_batch expects an iterable of texts, not one str")
        return pad_sequences([self.encode(t) for t in texts], maxlen=maxlen, padding=padding,
                             truncating=truncating, value=self.pad_id)

    def decode(self, ids, skip_pad: bool = True) -> str:
        """Tokens for ``ids``, joined by spaces (word level) or nothing (char level).

        Padding ids are left out unless ``skip_pad=False``.

        >>> from funcnet.data import Tokenizer
        >>> tok = Tokenizer(level="char").fit(["hello"])
        >>> tok.decode(tok.encode("hole") + [0, 0])
        'hole'
        """
        tokens = []
        for i in np.asarray(ids).reshape(-1).tolist():
            i = int(i)
            if skip_pad and i == self.pad_id:
                continue
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"Tokenizer.decode: id {i} is outside the vocabulary "
                                 f"(0 ... {len(self.vocab) - 1})")
            tokens.append(self.vocab[i])
        return ("" if self.level == "char" else " ").join(tokens)

    def to_dict(self) -> dict:
        """The tokenizer as plain data (settings and vocabulary), e.g. for ``json.dump``.

        >>> from funcnet.data import Tokenizer
        >>> tok = Tokenizer().fit(["x y"])
        >>> Tokenizer.from_dict(tok.to_dict()).encode("y x") == tok.encode("y x")
        True
        """
        return {"level": self.level, "num_words": self.num_words, "lower": self.lower,
                "punctuation": self.punctuation, "oov_token": self.oov_token,
                "pad_token": self.pad_token, "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`to_dict`'s output.

        >>> from funcnet.data import Tokenizer
        >>> Tokenizer.from_dict(Tokenizer().fit(["q"]).to_dict()).vocab
        ['<pad>', '<unk>', 'q']
        """
        tok = cls(level=d["level"], num_words=d["num_words"], lower=d["lower"],
                  punctuation=d["punctuation"], oov_token=d["oov_token"],
                  pad_token=d["pad_token"])
        vocab = list(d["vocab"])
        if vocab[:2] != [tok.pad_token, tok.oov_token]:
            raise ValueError("Tokenizer.from_dict: the vocabulary must start with the pad and "
                             "OOV tokens")
        tok.vocab = vocab
        tok.token_to_id = {t: i for i, t in enumerate(vocab)}
        return tok


def pad_sequences(seqs, maxlen: int | None = None, padding: str = "post",
                  truncating: str = "post", value=0, dtype=np.int64) -> np.ndarray:
    """Pad (or cut) sequences to one length: an array ``(len(seqs), maxlen)``.

    ``maxlen`` defaults to the longest sequence.  ``padding="post"`` adds
    ``value`` at the end, ``"pre"`` at the start; ``truncating="post"``
    drops the end of longer sequences, ``"pre"`` their start.  Both default
    to ``"post"`` (Keras defaults to ``"pre"``): the start of a text is kept
    and the tokens stay at the same positions.

    >>> from funcnet.data import pad_sequences
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="pre", truncating="pre")
    array([[2, 3],
           [0, 4]])
    """
    for name, mode in (("padding", padding), ("truncating", truncating)):
        if mode not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {name} must be 'pre' or 'post', got {mode!r}")
    seqs = [np.asarray(s).reshape(-1) for s in seqs]
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    if maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be non-negative, got {maxlen}")
    out = np.full((len(seqs), maxlen), value, dtype=dtype)
    for row, s in enumerate(seqs):
        if maxlen == 0:
            break
        s = s[:maxlen] if truncating == "post" else s[-maxlen:]
        if padding == "post":
            out[row, :len(s)] = s
        else:
            out[row, maxlen - len(s):] = s
    return out
