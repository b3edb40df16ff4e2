"""TSM: Temporal Shift Module for Efficient Video Understanding (arXiv:1811.08383)."""

from __future__ import annotations

import torch

from vidlab.models._registry import register_model
from vidlab.models.base import VideoClassifier, check_clip
from vidlab.models.heads import SegmentConsensusHead
from vidlab.models.resnet import ResNet

__all__ = ["TSM", "tsm_r18", "tsm_r50"]


class TSM(VideoClassifier):
    """A 2D ResNet over T frames whose residual blocks shift part of their channels along time.

    Input ``(B, C, T, H, W)``, output logits ``(B, num_classes)``. Each residual branch starts with
    :func:`~vidlab.models.layers.temporal_shift` over the T frames of its clip (``1/shift_div`` of the
    channels toward the past, as many toward the future). The head pools each frame, applies dropout and
    ``head.fc`` per frame and averages the T logits (TSM's average consensus).

    The shift uses the T of the actual input, so one model runs on 8- or 16-frame clips. (MMAction2 fixes
    ``num_segments`` at build time and, fed more frames, splits them into clips of that length; pass such
    clips as views to :meth:`forward_views` instead.) Multi-view testing scores each view separately and
    averages the scores (the inherited :meth:`~vidlab.models.base.VideoClassifier.forward_views`).

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152).
        num_classes: classifier outputs.
        in_channels: input channels.
        num_segments: if set, inputs must have exactly this many frames (a check, nothing else).
        shift_div: 8 in the paper and in MMAction2's configs.
        dropout: dropout before ``head.fc`` (0.5 in MMAction2's TSM configs).
        init_std: std of the normal init of ``head.fc`` (0.001).
        zero_init_residual: see :class:`~vidlab.models.resnet.ResNet` (off, as in MMAction2).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        num_classes: int = 400,
        in_channels: int = 3,
        num_segments: int | None = None,
        shift_div: int = 8,
        dropout: float = 0.5,
        init_std: float = 0.001,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.backbone = ResNet(
            depth, in_channels=in_channels, shift_div=shift_div, zero_init_residual=zero_init_residual
        )
        self.head = SegmentConsensusHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        b, t = x.shape[0], x.shape[2]
        if self.num_segments is not None and t != self.num_segments:
            raise ValueError(f"this TSM was built for num_segments={self.num_segments} frames, got T={t}")
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W)
        x = self.backbone(x, num_segments=t)  # (B*T, C', H', W')
        return x.unflatten(0, (b, t)).transpose(1, 2)  # (B, C', T, H', W')


@register_model(input_shape=(3, 8, 224, 224))
def tsm_r18(*, num_classes: int = 400, **kwargs) -> TSM:
    """TSM with a ResNet-18 backbone."""
    return TSM(depth=18, num_classes=num_classes, **kwargs)


@register_model(input_shape=(3, 8, 224, 224))
def tsm_r50(*, num_classes: int = 400, **kwargs) -> TSM:
    """TSM with a ResNet-50 backbone (MMAction2 ``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb``)."""
    return TSM(depth=50, num_classes=num_classes, **kwargs)
