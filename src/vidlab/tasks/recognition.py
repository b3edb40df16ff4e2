"""Action recognition: single-label (cross-entropy) or multi-label (binary cross-entropy) classification."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidlab import metrics
from vidlab.data.mixup import Mixup, soft_target_cross_entropy
from vidlab.errors import InputError
from vidlab.tasks.base import Task


def compute_metrics(
    scores: np.ndarray, labels: np.ndarray, *, multi_label: bool = False, topk=(1, 5), paired_classes=()
) -> dict:
    """The standard recognition metrics (MMAction2 definitions; see vidlab.metrics)."""
    if multi_label:
        return {"mAP": float(metrics.mean_average_precision(scores, labels))}
    # top-k with k >= num_classes is 1.0 (every class is in the top k), as MMAction2 computes it
    accs = metrics.top_k_accuracy(scores, labels, topk=tuple(min(t, scores.shape[1]) for t in topk))
    out = {f"top{t}": float(a) for t, a in zip(topk, accs)}
    out["mean_class_acc"] = float(metrics.mean_class_accuracy(scores, labels))
    if len(paired_classes):
        out["paired_top1"] = float(metrics.class_accuracy_subset(scores, labels, list(paired_classes)))
    return out


class RecognitionTask(Task):
    """Classification of whole clips.

    Args:
        multi_label: multi-hot targets, binary cross-entropy, mAP (else one label, cross-entropy, top-k accuracy).
        label_smoothing: of the single-label cross-entropy (with ``mixup``, the mixed targets carry it).
        average_clips: fusion of test views (``prob`` | ``score`` | ``None``, MMAction2's option; ``max``: the
            largest sigmoid probability over views, PySlowFast's multi-label / Charades test).
        topk: the top-k accuracies reported.
        paired_classes: class ids whose top-1 is reported apart (SynthActions' direction pairs).
        mixup: a :class:`~vidlab.data.mixup.Mixup` applied to training batches (single-label only): the loss is
            then the cross-entropy with its soft targets.
    """

    name = "recognition"

    def __init__(
        self,
        *,
        multi_label: bool = False,
        label_smoothing: float = 0.0,
        average_clips: str | None = "prob",
        topk=(1, 5),
        paired_classes=(),
        mixup: Mixup | None = None,
    ) -> None:
        if mixup is not None and multi_label:
            raise InputError("Mixup / CutMix needs single-label targets; multi-label recognition has multi-hot ones")
        self.multi_label, self.label_smoothing, self.average_clips = multi_label, label_smoothing, average_clips
        self.mixup = mixup
        self.topk, self.paired_classes = tuple(topk), tuple(paired_classes)
        self.best_metric = "mAP" if multi_label else "top1"

    def targets(self, batch: dict, device: torch.device, views: int) -> torch.Tensor:
        """The labels repeated per view, or the per-view labels ``view_label`` ``(B, V[, K])`` where the dataset gives
        them (repeated augmentation: a flip with a label map may change one repeat's label)."""
        if "view_label" in batch:
            y = batch["view_label"].to(device)
            if y.shape[1] != views:
                raise InputError(f"view_label has {y.shape[1]} labels per sample for {views} views")
            return y.flatten(0, 1)
        y = batch["label"].to(device)
        return y.repeat_interleave(views, dim=0) if views > 1 else y

    def augment_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().augment_batch(x, y)
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        return x, y

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(outputs, targets.float())
        if targets.is_floating_point():  # soft targets (Mixup's, smoothing included)
            return soft_target_cross_entropy(outputs, targets)
        return F.cross_entropy(outputs, targets, label_smoothing=self.label_smoothing)

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model.forward_views(x, average_clips=self.average_clips)

    def evaluate(self, predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return compute_metrics(
            predictions, targets, multi_label=self.multi_label, topk=self.topk, paired_classes=self.paired_classes
        )

    def state(self) -> dict:
        return {"name": self.name, "multi_label": self.multi_label, "average_clips": self.average_clips}

    def summary_metrics(self) -> list[str]:
        if self.multi_label:
            return ["mAP"]
        return ["top1", "top5", "mean_class_acc"]
