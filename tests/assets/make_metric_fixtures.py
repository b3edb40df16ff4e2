"""Writes metric_fixtures.json: random inputs and MMAction2 1.2.0's metric values on them.

Run with a Python environment that has ``mmaction2==1.2.0`` installed (vidlab is not needed):

    python tests/assets/make_metric_fixtures.py
"""

import json
import warnings
from pathlib import Path

import numpy as np
from mmaction.evaluation.functional import (
    confusion_matrix,
    mean_average_precision,
    mean_class_accuracy,
    mmit_mean_average_precision,
    top_k_accuracy,
)

OUT = Path(__file__).with_name("metric_fixtures.json")


def single_label_case(rng, n, c, tie_decimals=None, missing_classes=0, spurious_preds=False):
    """Scores (optionally rounded, to create ties) and labels that may skip some classes."""
    scores = rng.normal(size=(n, c))
    if tie_decimals is not None:
        scores = np.round(scores, tie_decimals)
    labels = rng.integers(0, c - missing_classes, size=n)
    if spurious_preds:  # make some samples predict a class that has no samples
        scores[: n // 5, c - 1] += 10
    pred = np.argmax(scores, axis=1)
    return {
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "top_k": [float(v) for v in top_k_accuracy(scores, labels, (1, 2, 5, c + 3))],
        "mean_class_accuracy": float(mean_class_accuracy(scores, labels)),
        "confusion_matrix": confusion_matrix(pred, labels.astype(np.int64)).tolist(),
    }


def multi_label_case(rng, n, c, tie_decimals=None, empty_class=False):
    scores = rng.random(size=(n, c))
    if tie_decimals is not None:
        scores = np.round(scores, tie_decimals)
    labels = (rng.random(size=(n, c)) < 0.3).astype(np.int64)
    labels[np.arange(n), rng.integers(0, c, size=n)] = 1  # every sample has a positive (MMIT needs one)
    if empty_class:
        labels[:, 0] = 0
        labels[labels.sum(1) == 0, 1] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MMAction2 divides by zero for classes without positives
        map_value = float(mean_average_precision(list(scores), list(labels)))
    return {
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "mean_average_precision": map_value,
        "mmit_mean_average_precision": float(mmit_mean_average_precision(list(scores), list(labels))),
    }


def main():
    rng = np.random.default_rng(0)
    single = [
        single_label_case(rng, 50, 7),
        single_label_case(rng, 200, 12, tie_decimals=0),
        single_label_case(rng, 40, 10, missing_classes=3),
        single_label_case(rng, 60, 8, missing_classes=2, spurious_preds=True),
        single_label_case(rng, 30, 4, tie_decimals=1),
    ]
    multi = [
        multi_label_case(rng, 30, 6),
        multi_label_case(rng, 80, 10, tie_decimals=1),
        multi_label_case(rng, 25, 5, empty_class=True),
    ]
    fixtures = {
        "source": "mmaction2 1.2.0 (mmaction.evaluation.functional)",
        "single_label": single,
        "multi_label": multi,
    }
    OUT.write_text(json.dumps(fixtures) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
