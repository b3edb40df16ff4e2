"""TRN: Temporal Relational Reasoning in Videos (arXiv:1711.08496), on a 2D ResNet as in MMAction2."""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier
from vidlab.models.layers import RelationModule, RelationModuleMultiScale
from vidlab.models.resnet import ResNet

__all__ = ["TRN", "TRNHead"]


class TRNHead(nn.Module):
    """Per-frame embedding then temporal relations: spatial average, dropout, ``fc`` (C -> ``hidden_dim``),
    then a :class:`~vidlab.models.layers.RelationModuleMultiScale` (``multi_scale``) or
    :class:`~vidlab.models.layers.RelationModule` over the T embeddings."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_segments: int,
        *,
        multi_scale: bool = True,
        hidden_dim: int = 256,
        dropout: float = 0.8,
        init_std: float = 0.001,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, hidden_dim)
        nn.init.normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)
        relation = RelationModuleMultiScale if multi_scale else RelationModule
        self.consensus = relation(hidden_dim, num_segments, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``; the mean frame feature ``(B, C)`` if ``pre_logits``."""
        x = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C)
        if pre_logits:
            return x.mean(dim=1)
        return self.consensus(self.fc(self.dropout(x)))

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh last layers (the class-score layer of every relation MLP) with ``num_classes`` outputs."""
        self.consensus.reset_classifier(num_classes)
        self.num_classes = num_classes


class TRN(FrameClassifier):
    """A plain 2D ResNet over T frames and a temporal relation head (:class:`TRNHead`).

    Args:
        depth: ResNet depth.
        num_classes: classifier outputs.
        num_segments: frames per clip; fixed (the relation MLPs take concatenated frame embeddings).
        multi_scale: multi-scale relations (``TRNMultiScale``, the default) or a single T-frame relation.
        hidden_dim: per-frame embedding size (256).
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.8 in MMAction2's TRN configs).
        init_std: std of the normal init of ``head.fc`` (0.001).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        num_classes: int = 174,
        num_segments: int = 8,
        multi_scale: bool = True,
        hidden_dim: int = 256,
        in_channels: int = 3,
        dropout: float = 0.8,
        init_std: float = 0.001,
    ) -> None:
        super().__init__(num_segments)
        self.backbone = ResNet(depth, in_channels=in_channels)
        self.head = TRNHead(
            self.backbone.num_features,
            num_classes,
            num_segments,
            multi_scale=multi_scale,
            hidden_dim=hidden_dim,
            dropout=dropout,
            init_std=init_std,
        )


_CFG = "MMAction2 ``trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb``, 174 classes"
register_variant(globals(), "trn_r50", TRN, num_classes=174, depth=50, doc=f"TRN-ResNet50, multi-scale ({_CFG}).")
register_variant(
    globals(),
    "trn_r50_single_scale",
    TRN,
    num_classes=174,
    depth=50,
    multi_scale=False,
    doc=f"TRN-ResNet50 with the single-scale relation ({_CFG} with ``relation_type='TRN'``).",
)
register_variant(
    globals(),
    "trn_r18",
    TRN,
    num_classes=174,
    depth=18,
    doc=f"TRN-ResNet18, multi-scale ({_CFG} with depth 18; for small experiments).",
)
