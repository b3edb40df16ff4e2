"""Classification metrics over numpy arrays, with MMAction2 1.2.0's definitions.

Every function takes plain arrays (``scores`` of shape ``(N, C)``, integer ``labels`` of shape
``(N,)`` or multi-hot ``(N, C)``; lists and torch CPU tensors are converted) and returns Python
floats or numpy arrays. The results equal those of ``mmaction.evaluation.functional`` on the same
inputs (the test suite pins them with a fixture produced by MMAction2); deliberate differences
are opt-in and stated in the docstrings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidlab.errors import InputError

__all__ = [
    "class_accuracy_subset",
    "confusion_matrix",
    "mean_average_precision",
    "mean_class_accuracy",
    "mmit_mean_average_precision",
    "top_k_accuracy",
]


def _scores(scores) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise InputError(f"scores must have shape (N, C), got {scores.shape}")
    return scores


def _labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be {n} integers, got shape {labels.shape} and dtype {labels.dtype}")
    return labels.astype(np.int64)


def top_k_accuracy(scores, labels, topk: Sequence[int] = (1, 5)) -> list[float]:
    """Fraction of samples whose label is among the ``k`` highest scores, for each ``k``.

    Ties between equal scores are broken as MMAction2 does (by the order of ``np.argsort``), so
    results agree with it exactly even on tied scores.

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N,)`` integer labels.
        topk: Values of ``k``.

    Returns:
        One accuracy in ``[0, 1]`` per ``k``.
    """
    scores = _scores(scores)
    labels = _labels(labels, len(scores))
    order = np.argsort(scores, axis=1)  # ascending; the top k are the last k columns
    hit_rank = np.argmax(order[:, ::-1] == labels[:, None], axis=1)  # 0 = best; C - 1 also if absent
    present = (order == labels[:, None]).any(axis=1)
    return [float(np.mean(present & (hit_rank < k))) for k in topk]


def confusion_matrix(pred, labels, num_classes: int | None = None, normalize: str | None = None) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Rows are true classes, columns predictions, both indexed by class id. MMAction2's version
    keeps only the classes that occur in ``pred`` or ``labels`` (its row ``i`` is the ``i``-th
    such class); that is ``cm[np.ix_(present, present)]`` here, and identical when all classes
    occur.

    Args:
        pred: ``(N,)`` predicted class ids.
        labels: ``(N,)`` true class ids.
        num_classes: Matrix size; defaults to ``max(pred, labels) + 1``.
        normalize: None for counts, or "true" (rows sum to 1), "pred" (columns sum to 1),
            "all" (the matrix sums to 1); empty rows/columns stay 0.

    Returns:
        ``(C, C)`` int64 counts, or float64 if ``normalize`` is set.
    """
    if normalize not in (None, "true", "pred", "all"):
        raise InputError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    labels = np.asarray(labels)
    labels = _labels(labels, labels.size)
    pred = _labels(pred, len(labels))
    if len(labels) and min(pred.min(), labels.min()) < 0:
        raise InputError("class ids must be non-negative")
    largest = int(max(pred.max(), labels.max())) + 1 if len(labels) else 0
    num_classes = largest if num_classes is None else num_classes
    if largest > num_classes:
        raise InputError(f"class id {largest - 1} is out of range for num_classes={num_classes}")
    cm = np.bincount(labels * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)
    if normalize is None:
        return cm.astype(np.int64)
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    total = cm.sum(axis=axis, keepdims=axis is not None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(cm / total)


def mean_class_accuracy(scores, labels, absent_classes: str = "zero") -> float:
    """Top-1 accuracy of each class, averaged over classes.

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N,)`` integer labels.
        absent_classes: How to treat classes that are predicted but have no sample. "zero"
            (MMAction2's definition): they enter the average with accuracy 0, so the result
            depends on wrong predictions of classes missing from the evaluated set. "ignore": the
            average runs only over classes with at least one sample (balanced accuracy). Both
            agree when every predicted class has samples; classes neither predicted nor present
            never count.

    Returns:
        Mean class accuracy in ``[0, 1]``.
    """
    if absent_classes not in ("zero", "ignore"):
        raise InputError(f"absent_classes must be 'zero' or 'ignore', got {absent_classes!r}")
    scores = _scores(scores)
    labels = _labels(labels, len(scores))
    pred = np.argmax(scores, axis=1)
    cm = confusion_matrix(pred, labels, num_classes=max(scores.shape[1], int(labels.max()) + 1))
    count, hits = cm.sum(axis=1), np.diag(cm)
    keep = count > 0 if absent_classes == "ignore" else (count > 0) | (cm.sum(axis=0) > 0)
    per_class = np.where(count > 0, hits / np.maximum(count, 1), 0.0)
    return float(np.mean(per_class[keep]))


def class_accuracy_subset(scores, labels, class_ids: Sequence[int]) -> float:
    """Top-1 accuracy over the samples whose label is in ``class_ids``.

    The prediction is still the argmax over all classes, e.g. to report how often
    direction-paired classes ("pushing left to right" / "right to left") are told apart.

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N,)`` integer labels.
        class_ids: Classes whose samples count.

    Returns:
        Accuracy in ``[0, 1]``, or NaN if no sample has a label in ``class_ids``.
    """
    scores = _scores(scores)
    labels = _labels(labels, len(scores))
    mask = np.isin(labels, np.asarray(list(class_ids), dtype=np.int64))
    if not mask.any():
        return float("nan")
    return float(np.mean(np.argmax(scores[mask], axis=1) == labels[mask]))


def _average_precision(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the step precision-recall curve of one ranking; NaN without positives.

    Samples with equal scores share one threshold, as in MMAction2 (and scikit-learn).
    """
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    # Last index of every run of equal scores: one operating point per distinct threshold.
    ends = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(positive)[ends]
    if tps[-1] == 0:
        return float("nan")
    precision = tps / (ends + 1)
    recall_gain = np.diff(np.r_[0, tps]) / tps[-1]
    return float(np.sum(recall_gain * precision))


def _multi_hot(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = _scores(np.stack(scores) if isinstance(scores, list) else scores)
    labels = np.stack(labels) if isinstance(labels, list) else np.asarray(labels)
    if labels.shape != scores.shape:
        raise InputError(f"labels must be multi-hot with the shape of scores {scores.shape}, got {labels.shape}")
    return scores, labels == 1


def mean_average_precision(scores, labels) -> float:
    """Mean over classes of the average precision of ranking all samples by that class's score.

    Classes without positive samples are skipped (as MMAction2).

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N, C)`` multi-hot ground truth (entries equal to 1 are positives).

    Returns:
        mAP in ``[0, 1]``, or NaN if no class has a positive.
    """
    scores, positive = _multi_hot(scores, labels)
    aps = np.array([_average_precision(scores[:, c], positive[:, c]) for c in range(scores.shape[1])])
    aps = aps[~np.isnan(aps)]
    return float(np.mean(aps)) if len(aps) else float("nan")


def mmit_mean_average_precision(scores, labels) -> float:
    """Multi-Moments-in-Time mAP: average precision of ranking the classes of each sample, averaged over samples.

    As MMAction2, a sample without positive labels makes the result NaN.

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N, C)`` multi-hot ground truth.

    Returns:
        mAP in ``[0, 1]``.
    """
    scores, positive = _multi_hot(scores, labels)
    return float(np.mean([_average_precision(s, p) for s, p in zip(scores, positive)]))
