"""Metrics against MMAction2 1.2.0 (fixture from tests/assets/make_metric_fixtures.py) and by hand."""

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import vidlab.metrics as M

FIXTURES = json.loads((Path(__file__).parents[1] / "assets" / "metric_fixtures.json").read_text())
SINGLE = FIXTURES["single_label"]
MULTI = FIXTURES["multi_label"]


@pytest.mark.parametrize("case", SINGLE, ids=range(len(SINGLE)))
def test_single_label_metrics_match_mmaction2(case):
    scores, labels = np.array(case["scores"]), np.array(case["labels"])
    num_classes = scores.shape[1]
    assert M.top_k_accuracy(scores, labels, (1, 2, 5, num_classes + 3)) == pytest.approx(case["top_k"], abs=1e-12)
    assert M.mean_class_accuracy(scores, labels) == pytest.approx(case["mean_class_accuracy"], abs=1e-12)
    pred = scores.argmax(1)
    cm = M.confusion_matrix(pred, labels)
    assert cm.dtype == np.int64
    present = np.unique(np.concatenate([pred, labels]))
    np.testing.assert_array_equal(cm[np.ix_(present, present)], case["confusion_matrix"])


@pytest.mark.parametrize("case", MULTI, ids=range(len(MULTI)))
def test_multi_label_metrics_match_mmaction2(case):
    scores, labels = np.array(case["scores"]), np.array(case["labels"])
    assert M.mean_average_precision(scores, labels) == pytest.approx(case["mean_average_precision"], abs=1e-9)
    assert M.mmit_mean_average_precision(scores, labels) == pytest.approx(case["mmit_mean_average_precision"], abs=1e-9)
    assert M.mean_average_precision(list(scores), list(labels)) == pytest.approx(case["mean_average_precision"])


def test_top_k_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 2])
    assert M.top_k_accuracy(scores, labels, (1, 2, 3)) == [0.25, 0.5, 1.0]


def test_mean_class_accuracy_absent_classes():
    # Class 2 has no sample but is predicted once: MMAction2 averages it in as 0.
    scores = np.eye(3)[[0, 0, 1, 2]]
    labels = np.array([0, 0, 1, 1])
    assert M.mean_class_accuracy(scores, labels) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert M.mean_class_accuracy(scores, labels, absent_classes="ignore") == pytest.approx((1.0 + 0.5) / 2)


def test_confusion_matrix_by_hand_and_normalized():
    pred, labels = np.array([0, 1, 1, 2, 2]), np.array([0, 1, 2, 2, 2])
    expected = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 2]])
    np.testing.assert_array_equal(M.confusion_matrix(pred, labels), expected)
    assert M.confusion_matrix(pred, labels, num_classes=5).shape == (5, 5)
    np.testing.assert_allclose(M.confusion_matrix(pred, labels, normalize="true").sum(1), 1.0)
    np.testing.assert_allclose(M.confusion_matrix(pred, labels, num_classes=4, normalize="pred")[:, 3], 0.0)
    with pytest.raises(ValueError, match="num_classes"):
        M.confusion_matrix(pred, labels, num_classes=2)


def test_average_precision_by_hand():
    # Ranking: + - + -  -> AP = (1/1 + 2/3) / 2.
    scores = np.array([[0.9], [0.8], [0.7], [0.1]])
    labels = np.array([[1], [0], [1], [0]])
    assert M.mean_average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    # Tied scores share one threshold: all four at once -> precision 1/2 at recall 1.
    assert M.mean_average_precision(np.full((4, 1), 0.5), labels) == pytest.approx(0.5)
    assert math.isnan(M.mean_average_precision(scores, np.zeros_like(labels)))


def test_class_accuracy_subset():
    scores = np.eye(4)[[0, 1, 1, 3, 2]]
    labels = np.array([0, 1, 2, 3, 3])
    assert M.class_accuracy_subset(scores, labels, [1, 2]) == pytest.approx(0.5)
    assert M.class_accuracy_subset(scores, labels, (3,)) == pytest.approx(0.5)
    assert math.isnan(M.class_accuracy_subset(scores, labels, [7]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="scores"):
        M.top_k_accuracy(np.zeros(5), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        M.top_k_accuracy(np.zeros((5, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="multi-hot"):
        M.mean_average_precision(np.zeros((5, 3)), np.zeros(5))


def test_metrics_import_only_numpy_and_torch():
    for path in (Path(M.__file__).parent).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root in {"numpy", "torch", "__future__", "collections", "typing", "math"} or (
                    name.startswith("vidlab.metrics") or name == "vidlab.errors"  # the error family imports nothing
                ), f"{path.name} imports {name}"
