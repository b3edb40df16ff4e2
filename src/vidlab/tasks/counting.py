"""Repetition counting: how many times the action in a video repeats (UCFRep; docs/COUNTING.md).

The count head follows the anchor-based head of Deep-Temporal-Repetition-Counting (Zhang et al., "Context-aware and
Scale-insensitive Temporal Repetition Counting", CVPR 2020) as SEVERE runs it on R(2+1)D-18's pooled features: for
each of A cycle-length anchors, a two-way classification (does the cycle length match this anchor?) and a
regression of ``log(cycle / anchor)``; the count is read off the best-scoring anchor. Here it is one pass over one
clip that spans the whole video (``UniformSample``), where the reference tracks cycles through many windows of the
video; docs/COUNTING.md lists what is simplified.

The head is the model's own classifier with ``3 * A`` outputs (``model.num_classes`` is set from the anchors by the
builder), laid out as the reference's ``fc_cls`` (``2 * A``: A negative logits, then A positive logits) followed by
``fc_box`` (``A``). Cycle lengths and anchors are fractions of the clip's span, so a video with ``n`` repetitions has
the cycle length ``1 / n``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidlab import metrics
from vidlab.errors import InputError
from vidlab.tasks.base import Task

#: 13 cycle-length anchors from 1/2 to 1/32 of the clip, a factor 2 ** (1/3) (~1.26, the spacing of the reference's
#: 0.8 / 1.0 / 1.25 anchors) apart: with the reference's IoU threshold 0.5 they cover counts from 1 to 64
DEFAULT_ANCHORS = tuple(2.0 ** (-1 - k / 3) for k in range(13))


def split_outputs(outputs: torch.Tensor, num_anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's ``(N, 3A)`` outputs -> classification logits ``(N, 2, A)`` (index 1: the anchor matches) and
    log-offsets ``(N, A)``."""
    if outputs.dim() != 2 or outputs.shape[1] != 3 * num_anchors:
        raise InputError(
            f"the counting head has 3 x {num_anchors} anchors = {3 * num_anchors} outputs, the model gives "
            f"{tuple(outputs.shape)}: build the model with num_classes={3 * num_anchors}"
        )
    return outputs[:, : 2 * num_anchors].reshape(-1, 2, num_anchors), outputs[:, 2 * num_anchors :]


def anchor_targets(
    counts: torch.Tensor, anchors: torch.Tensor, pos_iou: float = 0.5, neg_iou: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor training targets of videos with ``counts`` repetitions (the reference's ``update_labels``).

    The cycle length is ``c = 1 / count``; its overlap with anchor ``a`` is ``min(c, a) / max(c, a)``. An anchor
    is positive (1) where the overlap is ``>= pos_iou`` (regression target ``log(c / a)``), negative (0) where it is
    ``<= neg_iou``, ignored (-1) in between. A video with count 0 (no repetition) makes every anchor negative.

    Returns:
        ``(labels, offsets)``: int64 ``(N, A)`` in {1, 0, -1} and float ``(N, A)`` (0 where not positive).
    """
    counts = counts.float().reshape(-1, 1)
    anchors = anchors.to(counts).reshape(1, -1)
    repeats = counts > 0
    cycle = 1.0 / counts.clamp_min(1e-6)
    overlap = torch.minimum(cycle, anchors) / torch.maximum(cycle, anchors)
    overlap = torch.where(repeats, overlap, torch.zeros_like(overlap))
    labels = torch.full(overlap.shape, -1, dtype=torch.long, device=counts.device)
    labels[overlap <= neg_iou] = 0
    labels[overlap >= pos_iou] = 1  # after the negatives: with pos_iou == neg_iou an overlap of exactly 0.5 is positive
    offsets = torch.where(labels == 1, torch.log(cycle / anchors), torch.zeros_like(overlap))
    return labels, offsets


def decode_counts(
    cls_logits: torch.Tensor,
    offsets: torch.Tensor,
    anchors: torch.Tensor,
    *,
    clamp: float = math.log(2.0),
    rounded: bool = True,
    zero_threshold: float | None = None,
) -> torch.Tensor:
    """Counts ``(N,)`` from the head's outputs: the anchor with the highest positive probability, its cycle length
    ``a * exp(offset)`` (offset clamped to ``+-clamp``), and the count ``1 / cycle`` (rounded half up if
    ``rounded``). With ``zero_threshold``, a video whose best anchor's probability
    is below it is counted 0 (no repetition; not in the reference)."""
    prob = cls_logits.float().softmax(dim=1)[:, 1]  # (N, A)
    score, best = prob.max(dim=1)
    anchors = anchors.to(offsets.device, torch.float32)
    offset = offsets.float().gather(1, best[:, None])[:, 0].clamp(-clamp, clamp)
    counts = 1.0 / (anchors[best] * torch.exp(offset))
    if rounded:
        counts = torch.floor(counts + 0.5)
    if zero_threshold is not None:
        counts = torch.where(score < zero_threshold, torch.zeros_like(counts), counts)
    return counts


class CountingTask(Task):
    """Repetition counts from a ``path count`` list (``data.target_type``: regression; one value per video).

    Args:
        anchors: cycle-length anchors as fractions of the clip's span (default :data:`DEFAULT_ANCHORS`).
        pos_iou, neg_iou: overlap thresholds of positive / negative anchors (the reference's ``iou_ubound`` /
            ``iou_lbound``, both 0.5).
        box_weight: weight of the smooth-L1 offset loss against the anchors' cross-entropy (the reference's 50).
        clamp: bound of the predicted log-offsets when counting; None: ``log(1 / pos_iou)``, the largest offset a
            positive anchor is trained on (``log 2``; the reference clamps to 0.5 and corrects the rest over its
            tracking steps, which one pass has not).
        rounded: round predicted counts (the reference does).
        zero_threshold: count a video 0 when its best anchor's probability is below this (None: never).
    """

    name = "counting"
    best_metric = "mae_norm"
    best_mode = "min"

    def __init__(
        self,
        *,
        anchors=None,
        pos_iou: float = 0.5,
        neg_iou: float = 0.5,
        box_weight: float = 50.0,
        clamp: float | None = None,
        rounded: bool = True,
        zero_threshold: float | None = None,
    ) -> None:
        anchors = list(DEFAULT_ANCHORS if anchors is None else anchors)
        if not anchors or min(anchors) <= 0:
            raise InputError(f"counting anchors must be positive cycle lengths (fractions of the clip), got {anchors}")
        if not 0 < neg_iou <= pos_iou <= 1:
            raise InputError(f"counting needs 0 < neg_iou <= pos_iou <= 1, got neg_iou={neg_iou}, pos_iou={pos_iou}")
        self.anchors = torch.tensor([float(a) for a in anchors], dtype=torch.float32)
        self.pos_iou, self.neg_iou, self.box_weight = pos_iou, neg_iou, box_weight
        self.clamp = math.log(1.0 / pos_iou) if clamp is None else float(clamp)
        self.rounded, self.zero_threshold = rounded, zero_threshold

    @property
    def num_outputs(self) -> int:
        """Outputs the model's classifier needs: ``3 * len(anchors)``."""
        return 3 * len(self.anchors)

    def targets(self, batch: dict, device: torch.device, views: int) -> torch.Tensor:
        """The counts ``(B * views,)``, repeated per view."""
        y = batch["label"].to(device).float().reshape(len(batch["label"]), -1)
        if y.shape[1] != 1:
            raise InputError(f"counting needs one count per video (a 'path count' list), got {y.shape[1]} values")
        y = y[:, 0]
        return y.repeat_interleave(views) if views > 1 else y

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the anchors' two-way classification (ignored anchors left out) plus ``box_weight``
        times the smooth-L1 loss of the positive anchors' offsets, averaged over all anchors (the reference fills
        the other entries with the detached prediction, so they add zero)."""
        cls_logits, offsets = split_outputs(outputs, len(self.anchors))
        labels, target = anchor_targets(targets, self.anchors, self.pos_iou, self.neg_iou)
        if (labels >= 0).any():
            loss = F.cross_entropy(cls_logits, labels, ignore_index=-1)
        else:  # every anchor of every sample ignored: nothing to classify
            loss = cls_logits.sum() * 0.0
        target = torch.where(labels == 1, target, offsets.detach())
        return loss + self.box_weight * F.smooth_l1_loss(offsets, target)

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Counts ``(N,)`` from head outputs ``(N, 3A)``."""
        cls_logits, offsets = split_outputs(outputs.float(), len(self.anchors))
        return decode_counts(
            cls_logits,
            offsets,
            self.anchors,
            clamp=self.clamp,
            rounded=self.rounded,
            zero_threshold=self.zero_threshold,
        )

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Counts ``(B, 1)``: the views' head outputs averaged (logits and offsets), then decoded."""
        return self.decode(model.forward_views(x, average_clips="score").float())[:, None]

    def evaluate(self, predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return metrics.counting_metrics(predictions, targets)

    def state(self) -> dict:
        return {
            "name": self.name,
            "anchors": self.anchors.tolist(),
            "pos_iou": self.pos_iou,
            "neg_iou": self.neg_iou,
            "box_weight": self.box_weight,
            "clamp": self.clamp,
            "rounded": self.rounded,
            "zero_threshold": self.zero_threshold,
        }

    def summary_metrics(self) -> list[str]:
        return ["mae_norm", "obo", "mae"]
