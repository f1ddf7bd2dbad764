"""Tokenizer and pad_sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from funcnet import data

TEXTS = ["Free entry! Win a FREE prize now.", "Are you free now?", "ok... see you soon, ok?"]


def test_word_vocabulary_order_and_special_tokens():
    tok = data.Tokenizer().fit(TEXTS)
    assert tok.vocab[:2] == ["<pad>", "<unk>"] and tok.pad_id == 0 and tok.oov_id == 1
    # by count ('.' x4, free x3), ties in first-seen order (now, you, ?, ok: 2 each)
    assert tok.vocab[2:8] == [".", "free", "now", "you", "?", "ok"]
    counts = [tok.counts[t] for t in tok.vocab[2:]]
    assert counts == sorted(counts, reverse=True)
    assert tok.vocab_size == len(tok.vocab) == len(set(tok.vocab))


def test_lowercase_punctuation_modes():
    assert data.Tokenizer().tokenize("Hi, YOU!") == ["hi", ",", "you", "!"]
    assert data.Tokenizer(lower=False).tokenize("Hi, YOU!") == ["Hi", ",", "YOU", "!"]
    assert data.Tokenizer(punctuation="drop").tokenize("Hi, YOU!") == ["hi", "you"]
    assert data.Tokenizer(punctuation="keep").tokenize("Hi, YOU!") == ["hi,", "you!"]


def test_vocab_limit_oov_and_round_trip():
    tok = data.Tokenizer(num_words=6).fit(TEXTS)
    assert tok.vocab_size == 6
    ids = tok.encode("free prize now")
    assert ids[0] == tok.token_to_id["free"] and ids[1] == tok.oov_id
    assert max(ids) < 6
    assert tok.decode(ids) == "free <unk> now"
    full = data.Tokenizer().fit(TEXTS)
    assert full.decode(full.encode("are you free?")) == "are you free ?"


def test_char_level():
    tok = data.Tokenizer(level="char").fit(["aab", "Ba"])
    assert tok.vocab == ["<pad>", "<unk>", "a", "b"]
    assert tok.encode("abz") == [2, 3, 1]
    assert tok.decode([2, 3, 0, 0]) == "ab"
    assert tok.decode([2, 0], skip_pad=False) == "a<pad>"


def test_encode_batch_and_serialisation():
    tok = data.Tokenizer().fit(TEXTS)
    batch = tok.encode_batch(TEXTS, maxlen=5)
    assert batch.shape == (3, 5) and batch.dtype == np.int64
    np.testing.assert_array_equal(batch[1], tok.encode(TEXTS[1]))
    again = data.Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.vocab == tok.vocab
    np.testing.assert_array_equal(again.encode_batch(TEXTS), tok.encode_batch(TEXTS))


def test_tokenizer_errors():
    with pytest.raises(ValueError, match="level"):
        data.Tokenizer(level="byte")
    with pytest.raises(ValueError, match="at least 2"):
        data.Tokenizer(num_words=1)
    with pytest.raises(TypeError, match="not one str"):
        data.Tokenizer().fit("just one text")
    tok = data.Tokenizer().fit(["a"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([7])


@pytest.mark.parametrize("padding,truncating,expected", [
    ("post", "post", [[1, 2, 3], [4, 0, 0], [5, 6, 7]]),
    ("pre", "post", [[1, 2, 3], [0, 0, 4], [5, 6, 7]]),
    ("post", "pre", [[1, 2, 3], [4, 0, 0], [6, 7, 8]]),
    ("pre", "pre", [[1, 2, 3], [0, 0, 4], [6, 7, 8]]),
])
def test_pad_sequences(padding, truncating, expected):
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8]]
    out = data.pad_sequences(seqs, maxlen=3, padding=padding, truncating=truncating)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


def test_pad_sequences_defaults_and_value():
    out = data.pad_sequences([[1], [2, 3], []], value=-1)
    np.testing.assert_array_equal(out, [[1, -1], [2, 3], [-1, -1]])
    assert data.pad_sequences([], maxlen=4).shape == (0, 4)
    assert data.pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    with pytest.raises(ValueError, match="padding"):
        data.pad_sequences([[1]], padding="middle")


def test_tokenizer_on_shared_sms_spam(shared_data):
    path = shared_data / "text" / "sms_spam" / "SMSSpamCollection"
    if not path.is_file():
        pytest.skip("no SMS Spam Collection in the shared data")
    texts, labels = data.load_text_csv(path)
    tok = data.Tokenizer(num_words=2000).fit(texts[:4574])
    x = tok.encode_batch(texts, maxlen=40)
    assert x.shape == (5574, 40) and x.max() < 2000
    assert (x[:, 0] != tok.pad_id).all()  # every message has at least one token
