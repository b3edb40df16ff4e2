"""SimCount: a 2D ResNet over T frames and a temporal self-similarity head, for repetition counting.

The head follows the idea of RepNet (Dwibedi et al., "Counting Out Time: Class Agnostic Video Repetition Counting
in the Wild", CVPR 2020): a repeated motion shows as a periodic pattern in the matrix of similarities between the
frames' embeddings, whatever the actor looks like, so the count is read off that matrix instead of off pooled
appearance features. It is vidlab's own small model, not a port: RepNet's per-frame period classifier (a
transformer over the matrix's rows) is replaced by one convolution and an MLP over the whole matrix, which give the
outputs of the task's head (for ``task: counting``, the anchor head's ``3 x A`` outputs; docs/COUNTING.md).

Steps: per-frame spatial average of the backbone's map -> ``embed`` (C -> ``embed_dim``) -> the ``(T, T)`` matrix
of negative squared distances divided by ``temperature``, softmax over each row (RepNet's 13.544) -> a 3x3
convolution to ``channels`` maps, ReLU -> flatten, dropout, ``hidden`` (``channels * T * T -> hidden_dim``), ReLU ->
``fc``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier
from vidlab.models.tsn import frame_backbone

__all__ = ["SimCount", "SelfSimilarityHead"]


class SelfSimilarityHead(nn.Module):
    """``(B, C, T, H, W)`` -> outputs ``(B, num_classes)`` through the frames' self-similarity matrix (module doc)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_segments: int,
        *,
        embed_dim: int = 128,
        channels: int = 32,
        hidden_dim: int = 512,
        temperature: float = 13.544,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.num_classes, self.temperature = num_classes, temperature
        self.embed = nn.Linear(in_features, embed_dim)
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.hidden = nn.Linear(channels * num_segments * num_segments, hidden_dim)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def similarity(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``(B, T, C)`` -> row-softmaxed similarity matrix ``(B, T, T)``."""
        e = self.embed(frames)
        return torch.softmax(-torch.cdist(e, e).pow(2) / self.temperature, dim=-1)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> outputs ``(B, num_classes)``; the mean frame feature ``(B, C)`` if ``pre_logits``."""
        frames = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C)
        if pre_logits:
            return frames.mean(dim=1)
        maps = torch.relu(self.conv(self.similarity(frames)[:, None]))
        return self.fc(torch.relu(self.hidden(self.dropout(maps.flatten(1)))))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh ``fc`` with ``num_classes`` outputs."""
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        self.num_classes = num_classes


class SimCount(FrameClassifier):
    """A 2D ResNet over the T frames of a clip and a :class:`SelfSimilarityHead`.

    Args:
        depth: ResNet depth (18, 34, 50, ...).
        num_classes: outputs (for ``task: counting`` the builder sets ``3 x`` the anchor count).
        num_segments: frames per clip; fixed (the head's MLP sees the whole ``T x T`` matrix).
        in_channels: input channels.
        **head: :class:`SelfSimilarityHead`'s options (``embed_dim``, ``channels``, ``hidden_dim``, ``temperature``,
            ``dropout``).
    """

    def __init__(
        self, *, depth: int = 18, num_classes: int = 39, num_segments: int = 16, in_channels: int = 3, **head
    ) -> None:
        super().__init__(num_segments)
        self.backbone = frame_backbone(depth, in_channels=in_channels)
        self.head = SelfSimilarityHead(self.backbone.num_features, num_classes, num_segments, **head)


_DOC = "counts repetitions from the frames' self-similarity matrix (vidlab's own; RepNet's idea, not its model)"
register_variant(globals(), "simcount_r18", SimCount, num_classes=39, depth=18, input_shape=(3, 16, 112, 112),
                 task="counting", doc=f"SimCount-ResNet18, 16 frames: {_DOC}.")  # fmt: skip
register_variant(globals(), "simcount_r50", SimCount, num_classes=39, depth=50, input_shape=(3, 16, 112, 112),
                 task="counting", doc=f"SimCount-ResNet50, 16 frames: {_DOC}.")  # fmt: skip
