"""The interface every video classifier in the zoo implements."""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models.heads import average_view_scores

__all__ = ["FrameClassifier", "VideoClassifier", "check_clip"]


def check_clip(x: torch.Tensor, ndim: int = 5) -> None:
    """Raise a clear error when ``x`` is not a float ``(B, C, T, H, W)`` clip batch (``ndim=6``: with views)."""
    layout = "(B, C, T, H, W)" if ndim == 5 else "(B, V, C, T, H, W)"
    if x.dim() != ndim:
        raise ValueError(f"expected a {ndim}-D input {layout}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float input (normalized clips), got {x.dtype}")


class VideoClassifier(nn.Module):
    """Base class: a ``backbone`` producing ``(B, C', T', H', W')`` features and a classification ``head``.

    Subclasses set ``self.backbone`` and ``self.head`` and implement :meth:`forward_features`. The head must
    accept ``(feats, pre_logits=False)``, expose ``num_classes`` and ``reset_classifier(n)``.

    Inputs are float clips ``(B, C, T, H, W)``, already normalized; outputs are logits ``(B, num_classes)``.
    """

    backbone: nn.Module
    head: nn.Module

    @property
    def num_classes(self) -> int:
        """Number of classifier outputs."""
        return self.head.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> backbone feature map ``(B, C', T', H', W')``."""
        raise NotImplementedError

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits ``(B, num_classes)``; pooled features before the classifier if ``pre_logits``."""
        return self.head(feats, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last classifier layer with a freshly initialised one with ``num_classes`` outputs."""
        self.head.reset_classifier(num_classes)

    #: state-dict prefixes of the layers sized by the class count (``load_checkpoint(..., drop_head=True)`` leaves
    #: them at their fresh init when a checkpoint's differ)
    classifier_prefixes: tuple[str, ...] = ("head.",)

    def auxiliary_logits(self) -> list[tuple[float, torch.Tensor]]:
        """``(loss weight, logits)`` of auxiliary heads from the last training-mode forward, handed over once
        (the trainer adds ``weight * loss(logits)``). Empty for models without one (all but TPN)."""
        return []

    def to_channels_last(self) -> VideoClassifier:
        """Store 2D conv weights as ``channels_last`` and 3D ones as ``channels_last_3d``; returns ``self``.

        ``model.to(memory_format=torch.channels_last)`` fails on 5-D weights, and 2D and 3D families differ;
        this picks the format per parameter. Convolutions then produce channels-last activations.
        """
        formats = {4: torch.channels_last, 5: torch.channels_last_3d}
        for p in self.parameters():
            if p.dim() in formats:
                p.data = p.data.contiguous(memory_format=formats[p.dim()])
        return self

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        """Multi-view testing: one score per sample from V views of it.

        The default runs every view as its own clip and fuses the per-view logits with
        :func:`~vidlab.models.heads.average_view_scores` (as MMAction2's 3D recognizers and TSM do). Families
        whose reference fuses views earlier (TSN averages features) override this.

        Args:
            x: ``(B, V, C, T, H, W)``; V = ``num_clips * num_crops`` views of each sample.
            average_clips: ``"prob"`` (mean of softmax), ``"score"`` (mean of logits) or ``None`` (mean of
                logits, see :func:`~vidlab.models.heads.average_view_scores`).

        Returns:
            ``(B, num_classes)`` float32 scores: probabilities for ``"prob"``, logits otherwise.
        """
        check_clip(x, ndim=6)
        b, v = x.shape[:2]
        logits = self(x.flatten(0, 1))  # (B*V, K)
        return average_view_scores(logits.view(b, v, -1), average_clips)


class FrameClassifier(VideoClassifier):
    """A 2D backbone applied to the T frames of a clip stacked along the batch (MMAction2's ``Recognizer2D``).

    ``forward_features`` reshapes ``(B, C, T, H, W)`` to ``(B * T, C, H, W)``, runs
    ``backbone(frames, num_segments=T)`` (temporal modules mix frames within each clip) and returns
    ``(B, C', T, H', W')``.

    Args:
        num_segments: if set, inputs must have exactly this many frames (families with fixed-size temporal layers
            set it; others leave it ``None`` and follow the input's T).
    """

    def __init__(self, num_segments: int | None = None) -> None:
        super().__init__()
        self.num_segments = num_segments

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        b, t = x.shape[0], x.shape[2]
        if self.num_segments is not None and t != self.num_segments:
            raise ValueError(
                f"this {type(self).__name__} was built for num_segments={self.num_segments} frames, got T={t}"
            )
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W)
        x = self.backbone(x, num_segments=t)  # (B*T, C', H', W')
        return x.unflatten(0, (b, t)).transpose(1, 2)  # (B, C', T, H', W')
