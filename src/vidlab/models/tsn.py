"""TSN: Temporal Segment Networks: Towards Good Practices for Deep Action Recognition (arXiv:1608.00859)."""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier, check_clip
from vidlab.models.heads import ClsHead, average_view_scores
from vidlab.models.mobilenet_v2 import MobileNetV2
from vidlab.models.resnet import ResNet

__all__ = ["TSN", "frame_backbone"]


def frame_backbone(depth: int | str, **kwargs) -> nn.Module:
    """A 2D backbone over frames: ``ResNet(depth, **kwargs)`` for an int depth, ``MobileNetV2(**kwargs)`` for
    ``"mobilenetv2"``. Options MobileNetV2 lacks (non-local blocks, ``zero_init_residual``) are an error unless
    left at their off values."""
    if depth == "mobilenetv2":
        unsupported = {k: v for k, v in kwargs.items() if k not in ("in_channels", "shift_div") and v}
        if unsupported:
            raise InputError(f"the MobileNetV2 backbone does not support {sorted(unsupported)}")
        return MobileNetV2(in_channels=kwargs.get("in_channels", 3), shift_div=kwargs.get("shift_div"))
    if isinstance(depth, str):
        raise InputError(f"unknown 2D backbone {depth!r}: use a ResNet depth (18, 34, 50, 101, 152) or 'mobilenetv2'")
    return ResNet(depth, **kwargs)


class TSN(FrameClassifier):
    """A 2D backbone applied to each of T sampled frames (segments), average consensus, one linear classifier.

    Input ``(B, C, T, H, W)`` (T segments, e.g. MMAction2's ``clip_len=1, num_clips=8`` gives T=8), output
    logits ``(B, num_classes)``. ``forward_features`` returns ``(B, C', T, H/32, W/32)``; the head averages it
    over time and space (per-frame spatial pooling followed by the average consensus), applies dropout and
    ``head.fc``.

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152) or ``"mobilenetv2"``.
        num_classes: classifier outputs.
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.4 in MMAction2's TSN configs).
        init_std: std of the normal init of ``head.fc`` (0.01).
        zero_init_residual: see :class:`~vidlab.models.resnet.ResNet` (off, as in MMAction2).
    """

    def __init__(
        self,
        *,
        depth: int | str = 50,
        num_classes: int = 400,
        in_channels: int = 3,
        dropout: float = 0.4,
        init_std: float = 0.01,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = frame_backbone(depth, in_channels=in_channels, zero_init_residual=zero_init_residual)
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        """Multi-view testing as MMAction2's ``Recognizer2D`` + ``TSNHead`` do it: features, not scores, are
        averaged over all ``V * T`` frames of a sample, then ``head.fc`` is applied once; ``average_clips``
        then acts on that single score (``"prob"``: softmax, ``"score"`` / ``None``: the logits).

        Args:
            x: ``(B, V, C, T, H, W)``.
            average_clips: ``"prob"``, ``"score"`` or ``None``.

        Returns:
            ``(B, num_classes)`` float32.
        """
        check_clip(x, ndim=6)
        b, v = x.shape[:2]
        feats = self.forward_features(x.flatten(0, 1))  # (B*V, C', T, H', W')
        feats = feats.unflatten(0, (b, v)).transpose(1, 2).flatten(2, 3)  # (B, C', V*T, H', W')
        logits = self.forward_head(feats)  # (B, K)
        return average_view_scores(logits.unsqueeze(1), average_clips)


_REF = "MMAction2 ``tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb``"
register_variant(globals(), "tsn_r18", TSN, depth=18, doc=f"TSN-ResNet18 ({_REF} with depth 18).")
register_variant(globals(), "tsn_r34", TSN, depth=34, doc=f"TSN-ResNet34 ({_REF} with depth 34).")
register_variant(globals(), "tsn_r50", TSN, depth=50, doc=f"TSN-ResNet50 ({_REF}).")
register_variant(
    globals(),
    "tsn_r101",
    TSN,
    depth=101,
    doc="TSN-ResNet101 (MMAction2 ``tsn_imagenet-pretrained-r101_8xb32-1x1x8-100e_kinetics400-rgb``).",
)
register_variant(globals(), "tsn_r152", TSN, depth=152, doc=f"TSN-ResNet152 ({_REF} with depth 152).")
register_variant(
    globals(),
    "tsn_mobilenetv2",
    TSN,
    depth="mobilenetv2",
    doc="TSN-MobileNetV2 (MMAction2 ``MobileNetV2`` backbone + ``TSNHead``, 1280 in).",
)
