"""Evaluation metrics: pure functions over numpy arrays (MMAction2 definitions); AVA frame-mAP in ``ava``."""

from vidlab.metrics.ava import frame_map, microg_metrics, read_ava_csv, read_labelmap, write_ava_csv
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
    "frame_map",
    "mean_average_precision",
    "mean_class_accuracy",
    "microg_metrics",
    "mmit_mean_average_precision",
    "read_ava_csv",
    "read_labelmap",
    "top_k_accuracy",
    "write_ava_csv",
]
