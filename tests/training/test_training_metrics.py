"""Classification metrics and the metrics.jsonl log."""

import json

import numpy as np
import pytest

from funcnet import training


def test_confusion_matrix_counts_true_by_predicted():
    cm = training.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 2, 1, 2, 2, 0], num_classes=4)
    expected = np.zeros((4, 4), int)
    for t, p in [(0, 0), (0, 2), (1, 1), (2, 2), (2, 2), (2, 0)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)


def test_classification_metrics_match_definitions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 5, 300))
    y_pred[y_pred == 4] = 3                      # class 4 is never predicted
    m = training.classification_metrics(y_true, y_pred, num_classes=5)
    assert m["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    for c in range(5):
        predicted, actual = y_pred == c, y_true == c
        tp = np.sum(predicted & actual)
        assert m["precision"][c] == pytest.approx(tp / predicted.sum() if predicted.any() else 0)
        assert m["recall"][c] == pytest.approx(tp / actual.sum())
        assert m["support"][c] == actual.sum()
    assert m["precision"][4] == 0.0
    assert np.sum(m["confusion"]) == 300
    json.dumps(m)  # plain JSON-able values
    try:
        from sklearn.metrics import precision_score, recall_score
    except ImportError:
        return
    np.testing.assert_allclose(m["precision"], precision_score(y_true, y_pred, average=None,
                                                               zero_division=0))
    np.testing.assert_allclose(m["recall"], recall_score(y_true, y_pred, average=None,
                                                         zero_division=0))


def test_metrics_reject_bad_labels():
    with pytest.raises(ValueError, match="same length"):
        training.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="outside 0 ... 1"):
        training.confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="1-d"):
        training.confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 2), int))


def test_metrics_log_appends_reads_and_truncates(tmp_path):
    log = training.MetricsLog(tmp_path / "metrics.jsonl")
    for epoch in (1, 2, 3):
        log.write({"epoch": epoch, "loss": np.float32(1.0 / epoch), "cm": np.eye(2, dtype=int)})
    records = log.read()
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[0]["cm"] == [[1, 0], [0, 1]] and isinstance(records[1]["loss"], float)
    assert [r["epoch"] for r in log.truncate(lambda r: r["epoch"] <= 2)] == [1, 2]
    # a line cut short by a crash at the end is ignored; one in the middle is an error
    with open(log.path, "a") as f:
        f.write('{"epoch": 3, "lo')
    assert [r["epoch"] for r in training.read_metrics(log.path)] == [1, 2]
    with pytest.raises(ValueError, match="metrics.jsonl:3"):
        training.read_metrics(log.path, strict=True)
