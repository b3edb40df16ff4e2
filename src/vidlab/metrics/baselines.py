"""Trivial baselines that need no model: what a metric gives for a prediction that ignores the video.

They put a number under "chance" in result tables: a trained model that does not beat them has learnt nothing
from the pixels.
"""

from __future__ import annotations

import numpy as np

from vidlab.errors import InputError
from vidlab.metrics.classification import mean_average_precision
from vidlab.metrics.counting import counting_metrics, round_counts

__all__ = ["class_prior_map", "mean_count_baseline"]


def mean_count_baseline(train_counts, test_counts, *, rounded: bool = True) -> dict[str, float]:
    """Counting metrics of predicting the training set's mean count for every test video.

    Args:
        train_counts: ``(N,)`` training counts.
        test_counts: ``(M,)`` ground-truth counts of the evaluated videos.
        rounded: round the mean half up first, as the counting task rounds its predictions.

    Returns:
        :func:`~vidlab.metrics.counting.counting_metrics` of that prediction, plus ``prediction`` (the count
        predicted).
    """
    train = np.asarray(train_counts, dtype=np.float64).reshape(-1)
    if len(train) == 0:
        raise InputError("no training counts")
    value = float(round_counts(train.mean())) if rounded else float(train.mean())
    test = np.asarray(test_counts, dtype=np.float64).reshape(-1)
    return {**counting_metrics(np.full(len(test), value), test), "prediction": value}


def class_prior_map(train_labels, test_labels) -> float:
    """mAP (:func:`~vidlab.metrics.classification.mean_average_precision`) of scoring every test video with the
    classes' frequencies in the training set.

    Each class's score is then the same for all videos: they tie at one threshold, so the class's AP is its
    frequency in the evaluated set, and the result is the mean over classes with a positive of their test
    frequency (the training frequencies only matter through which classes they name).

    Args:
        train_labels: ``(N, C)`` multi-hot training targets.
        test_labels: ``(M, C)`` multi-hot targets of the evaluated videos.
    """
    train = np.asarray(train_labels, dtype=np.float64)
    test = np.asarray(test_labels)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise InputError(f"expected multi-hot (N, C) and (M, C) targets, got {train.shape} and {test.shape}")
    prior = (train == 1).mean(axis=0)
    return mean_average_precision(np.tile(prior, (len(test), 1)), test)
