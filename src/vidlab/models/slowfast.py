"""SlowFast Networks for Video Recognition (arXiv:1812.03982), as MMAction2's ``ResNet3dSlowFast``.

The model takes one clip ``(B, C, T, H, W)`` and subsamples it inside: the slow pathway sees every
``resample_rate``-th frame (tau), the fast pathway every ``resample_rate // speed_ratio``-th (alpha times as many
frames, ``1 / channel_ratio`` of the width). After the stem and after each of the first three stages, a
time-strided conv maps the fast features onto the slow pathway's frame rate and they are concatenated to the slow
features (``backbone.laterals.0`` .. ``.3``). So samplers and multi-view testing treat SlowFast like any 3D model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidlab.models._registry import register_variant
from vidlab.models.base import VideoClassifier, check_clip
from vidlab.models.heads import _LinearHead
from vidlab.models.resnet3d import ResNet3d
from vidlab.models.slowonly import SLOW_PATHWAY

__all__ = ["SlowFast", "SlowFastBackbone", "SlowFastHead"]


def temporal_subsample(x: torch.Tensor, rate: int) -> torch.Tensor:
    """Every ``rate``-th frame of ``(B, C, T, H, W)``, ``floor(T / rate)`` of them (nearest-neighbour resizing of
    time by ``1 / rate``, as MMAction2 does it)."""
    if rate == 1:
        return x
    return x[:, :, ::rate][:, :, : math.floor(x.shape[2] * (1.0 / rate))]


class SlowFastBackbone(nn.Module):
    """Slow and fast :class:`~vidlab.models.resnet3d.ResNet3d` pathways with fast-to-slow lateral convs.

    Args:
        slow_depth, fast_depth: ResNet depths of the pathways.
        resample_rate: tau, the slow pathway's frame stride within the input clip.
        speed_ratio: alpha, how many more frames the fast pathway sees (also the laterals' temporal stride).
        channel_ratio: beta^-1, the slow pathway's width over the fast one's.
        fusion_kernel: temporal kernel of the lateral convs.
        lateral_infl: lateral output channels per fast channel.
        lateral_norm: BatchNorm + ReLU after each lateral conv (``backbone.lateral_norms.K.0``), as PySlowFast and
            PyTorchVideo build SlowFast; MMAction2's configs have none.
        in_channels: input channels.

    ``forward`` returns ``(slow, fast)`` feature maps.
    """

    def __init__(
        self,
        *,
        slow_depth: int = 50,
        fast_depth: int = 50,
        resample_rate: int = 8,
        speed_ratio: int = 8,
        channel_ratio: int = 8,
        fusion_kernel: int = 5,
        lateral_infl: int = 2,
        lateral_norm: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if resample_rate % speed_ratio:
            raise ValueError(f"resample_rate ({resample_rate}) must be a multiple of speed_ratio ({speed_ratio})")
        self.resample_rate = resample_rate
        self.speed_ratio = speed_ratio
        self.fast_path = ResNet3d(
            fast_depth, in_channels=in_channels, base_channels=64 // channel_ratio, conv1_kernel=(5, 7, 7)
        )
        fast_channels = [64 // channel_ratio, *self.fast_path.stage_channels[:3]]
        self.slow_path = ResNet3d(
            slow_depth,
            in_channels=in_channels,
            lateral_channels=[c * lateral_infl for c in fast_channels],
            **SLOW_PATHWAY,
        )
        pad = (fusion_kernel - 1) // 2
        self.laterals = nn.ModuleList(
            nn.Conv3d(c, c * lateral_infl, (fusion_kernel, 1, 1), (speed_ratio, 1, 1), (pad, 0, 0), bias=False)
            for c in fast_channels
        )
        self.lateral_norms = (
            nn.ModuleList(nn.Sequential(nn.BatchNorm3d(c * lateral_infl), nn.ReLU(inplace=True)) for c in fast_channels)
            if lateral_norm
            else None
        )
        for m in self.laterals:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.num_features = self.slow_path.num_features + self.fast_path.num_features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2] % self.resample_rate:
            raise ValueError(
                f"SlowFast needs clips whose length is a multiple of resample_rate={self.resample_rate} (the slow "
                f"pathway takes every {self.resample_rate}th frame and the fast one has {self.speed_ratio}x as many), "
                f"got T={x.shape[2]}"
            )
        slow = self.slow_path.stem(temporal_subsample(x, self.resample_rate))
        fast = self.fast_path.stem(temporal_subsample(x, self.resample_rate // self.speed_ratio))
        slow = self._fuse(0, slow, fast)
        for i in range(4):
            slow = self.slow_path.stage(i, slow)
            fast = self.fast_path.stage(i, fast)
            if i < 3:
                slow = self._fuse(i + 1, slow, fast)
        return slow, fast

    def _fuse(self, i: int, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        lateral = self.laterals[i](fast)
        if self.lateral_norms is not None:
            lateral = self.lateral_norms[i](lateral)
        return torch.cat((slow, lateral), dim=1)


class SlowFastHead(_LinearHead):
    """Average-pool each pathway, concatenate (fast first, then slow), dropout, ``fc``."""

    def forward(self, x: tuple[torch.Tensor, torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        slow, fast = x
        feats = torch.cat((fast.mean(dim=(2, 3, 4)), slow.mean(dim=(2, 3, 4))), dim=1)
        return feats if pre_logits else self.fc(self.dropout(feats))


class SlowFast(VideoClassifier):
    """SlowFast classifier: ``(B, C, T, H, W)`` -> logits; ``forward_features`` returns ``(slow, fast)`` maps.

    Args:
        num_classes: classifier outputs.
        dropout: dropout before ``head.fc``.
        init_std: std of the normal init of ``head.fc``.
        **backbone: :class:`SlowFastBackbone` arguments.
    """

    def __init__(self, *, num_classes: int = 400, dropout: float = 0.5, init_std: float = 0.01, **backbone) -> None:
        super().__init__()
        self.backbone = SlowFastBackbone(**backbone)
        self.head = SlowFastHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_clip(x)
        return self.backbone(x)


_REF = "MMAction2 ``slowfast_{}-256e_kinetics400-rgb``"
_SHAPE = (3, 32, 224, 224)
register_variant(
    globals(),
    "slowfast_r50_4x16",
    SlowFast,
    doc=f"SlowFast-ResNet50 4x16: 4 slow / 32 fast frames of a 32-frame clip ({_REF.format('r50_8xb8-4x16x1')}).",
    input_shape=_SHAPE,
)
register_variant(
    globals(),
    "slowfast_r50_8x8",
    SlowFast,
    doc=f"SlowFast-ResNet50 8x8: 8 slow / 32 fast frames ({_REF.format('r50_8xb8-8x8x1')}).",
    input_shape=_SHAPE,
    resample_rate=4,
    speed_ratio=4,
    fusion_kernel=7,
)
register_variant(
    globals(),
    "slowfast_r101_8x8",
    SlowFast,
    doc=f"SlowFast-ResNet101 8x8 ({_REF.format('r101_8xb8-8x8x1')}).",
    input_shape=_SHAPE,
    slow_depth=101,
    fast_depth=101,
    resample_rate=4,
    speed_ratio=4,
    fusion_kernel=7,
)
register_variant(
    globals(),
    "slowfast_r101_r50_4x16",
    SlowFast,
    doc=f"SlowFast 4x16 with a ResNet101 slow and a ResNet50 fast pathway ({_REF.format('r101-r50_32xb8-4x16x1')}).",
    input_shape=_SHAPE,
    slow_depth=101,
)
