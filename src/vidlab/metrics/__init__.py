"""Evaluation metrics: pure functions over numpy arrays (MMAction2 definitions); AVA frame-mAP in ``ava``; repetition
counting in ``counting``; model-free baselines in ``baselines``;
caption / VQA metrics (BLEU, CIDEr-D, ROUGE-L, METEOR, S-BERT, BERTScore) in ``caption``."""

from vidlab.metrics.ava import frame_map, microg_metrics, read_ava_csv, read_labelmap, write_ava_csv
from vidlab.metrics.baselines import class_prior_map, mean_count_baseline
from vidlab.metrics.caption import caption_scores
from vidlab.metrics.classification import (
    class_accuracy_subset,
    confusion_matrix,
    mean_average_precision,
    mean_class_accuracy,
    mmit_mean_average_precision,
    top_k_accuracy,
)
from vidlab.metrics.counting import counting_metrics, round_counts

__all__ = [
    "caption_scores",
    "class_accuracy_subset",
    "class_prior_map",
    "confusion_matrix",
    "counting_metrics",
    "frame_map",
    "mean_average_precision",
    "mean_class_accuracy",
    "mean_count_baseline",
    "microg_metrics",
    "mmit_mean_average_precision",
    "read_ava_csv",
    "read_labelmap",
    "round_counts",
    "top_k_accuracy",
    "write_ava_csv",
]
