"""Evaluation metrics: pure functions over numpy arrays (MMAction2 definitions)."""

from vidlab.metrics.classification import (
    class_accuracy_subset,
    confusion_matrix,
    mean_average_precision,
    mean_class_accuracy,
    mmit_mean_average_precision,
    top_k_accuracy,
)

__all__ = [
    "class_accuracy_subset",
    "confusion_matrix",
    "mean_average_precision",
    "mean_class_accuracy",
    "mmit_mean_average_precision",
    "top_k_accuracy",
]
