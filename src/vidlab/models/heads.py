"""Classification heads over ``(B, C, T, H, W)`` feature maps, and averaging of scores over test views."""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError

__all__ = ["AVERAGE_CLIPS", "ClsHead", "SegmentConsensusHead", "average_view_scores"]

#: accepted values of ``average_clips`` (MMAction2's ``test_cfg`` / head option of the same name, plus PySlowFast's
#: multi-label ``max``).
AVERAGE_CLIPS = ("prob", "score", None, "max")


def average_view_scores(scores: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
    """Fuse per-view class scores into one score per sample.

    Args:
        scores: logits of shape ``(B, V, num_classes)``, V test views (``num_clips * num_crops``) per sample.
        average_clips: ``"prob"``: softmax over classes, then mean over views (the result are probabilities);
            ``"score"``: mean of the logits over views; ``None``: no softmax, mean of the logits; ``"max"``:
            sigmoid of each class, then the maximum over views (PySlowFast's multi-label test, e.g. Charades: its
            head applies ``HEAD_ACT: sigmoid`` in eval mode and ``DATA.ENSEMBLE_METHOD: max`` keeps each class's
            largest probability; the sigmoid being monotonic, that is the sigmoid of the largest logit).

    Returns:
        ``(B, num_classes)`` float32 scores.

    Note:
        MMAction2's ``average_clip`` returns the unreduced ``(B, V, num_classes)`` logits for ``None``. Here the
        result always has one row per sample, so ``None`` reduces with a mean like ``"score"``; with one view
        (V == 1) both give exactly the raw logits, as in MMAction2.
    """
    if average_clips not in AVERAGE_CLIPS:
        raise InputError(f"average_clips must be one of {AVERAGE_CLIPS}, got {average_clips!r}")
    if scores.dim() != 3:
        raise InputError(f"expected scores of shape (B, V, num_classes), got {tuple(scores.shape)}")
    scores = scores.float()  # softmax and mean in float32 also under bfloat16 autocast
    if average_clips == "max":
        return scores.amax(dim=1).sigmoid()  # = max of the views' sigmoids, computed once per class
    if average_clips == "prob":
        scores = scores.softmax(dim=-1)
    return scores.mean(dim=1)


class _LinearHead(nn.Module):
    """Shared parts of the single-``fc`` heads: dropout, ``fc``, init and :meth:`reset_classifier`."""

    def __init__(self, in_features: int, num_classes: int, *, dropout: float, init_std: float) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.init_std = init_std
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes)
        self._init_fc()

    def _init_fc(self) -> None:
        nn.init.normal_(self.fc.weight, std=self.init_std)
        nn.init.zeros_(self.fc.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` by a freshly initialised one with ``num_classes`` outputs (same device and dtype)."""
        old = self.fc
        self.fc = nn.Linear(self.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
        self.num_classes = num_classes
        self._init_fc()


class ClsHead(_LinearHead):
    """Global average pool over ``(T, H, W)``, dropout, linear classifier.

    For a 2D backbone whose frames were stacked along T this is TSN's head: spatial average per frame, then
    the average consensus over segments (mean of equal-sized means is the global mean), then one ``fc``.

    Args:
        in_features: channels of the feature map.
        num_classes: classifier outputs.
        dropout: dropout probability before ``fc``.
        init_std: std of the normal init of ``fc.weight`` (bias 0).
    """

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``, or pooled features ``(B, C)`` if ``pre_logits``."""
        x = x.mean(dim=(2, 3, 4))  # (B, C)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))


class SegmentConsensusHead(_LinearHead):
    """Per-segment classifier followed by an average consensus over segments (TSM's head).

    Each time step t of the ``(B, C, T, H, W)`` map (one frame of a 2D backbone) is pooled over space, passed
    through dropout and ``fc``; the ``T`` logits are then averaged. At eval time this equals ``fc`` of the
    mean feature; in training each segment gets its own dropout mask, as in the reference implementation.

    Args:
        in_features: channels of the feature map.
        num_classes: classifier outputs.
        dropout: dropout probability before ``fc``.
        init_std: std of the normal init of ``fc.weight`` (bias 0).
    """

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``, or pooled features ``(B, C)`` if ``pre_logits``."""
        x = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C)
        if pre_logits:
            return x.mean(dim=1)
        return self.fc(self.dropout(x)).mean(dim=1)  # (B, T, K) -> (B, K)
