"""SlowFast Networks for Video Recognition (arXiv:1812.03982), as MMAction2's ``ResNet3dSlowFast``.

The model takes one clip ``(B, C, T, H, W)`` and subsamples it inside: the slow pathway sees every
``resample_rate``-th frame (tau), the fast pathway every ``resample_rate // speed_ratio``-th (alpha times as many
frames, ``1 / channel_ratio`` of the width). After the stem and after each of the first three stages, a
time-strided conv maps the fast features onto the slow pathway's frame rate and they are concatenated to the slow
features (``backbone.laterals.0`` .. ``.3``). So samplers and multi-view testing treat SlowFast like any 3D model.

Feature maps are the two pathways' maps on the fast pathway's frame rate: ``(B, C_fast + C_slow, T_fast, H', W')``
with the fast channels first (the order the head concatenates pooled features in) and each slow frame repeated
alpha times (nearest-neighbour in time). Mean pooling such a map gives exactly the (fast, slow) features the head
classifies; the head itself takes every alpha-th frame of the slow channels back, so logits are unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models.base import StageBackbone, VideoClassifier
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


class SlowFastBackbone(StageBackbone):
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
        spatial_strides, spatial_dilations: of both pathways' stages (see
            :class:`~vidlab.models.resnet3d.ResNet3d`; the AVA detectors' ``layer4`` has stride 1 and dilation 2).

    ``forward`` returns the combined ``(B, C_fast + C_slow, T_fast, H', W')`` map (see the module docstring);
    ``forward_intermediates`` the same combination of the pathways' ``layerK`` outputs (before the lateral that
    follows them is added to the slow pathway).
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
        spatial_strides: tuple[int, ...] = (1, 2, 2, 2),
        spatial_dilations: tuple[int, ...] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        if resample_rate % speed_ratio:
            raise InputError(f"resample_rate ({resample_rate}) must be a multiple of speed_ratio ({speed_ratio})")
        self.resample_rate = resample_rate
        self.speed_ratio = speed_ratio
        spatial = dict(spatial_strides=spatial_strides, spatial_dilations=spatial_dilations)
        self.fast_path = ResNet3d(
            fast_depth, in_channels=in_channels, base_channels=64 // channel_ratio, conv1_kernel=(5, 7, 7), **spatial
        )
        fast_channels = [64 // channel_ratio, *self.fast_path.stage_channels[:3]]
        self.slow_path = ResNet3d(
            slow_depth,
            in_channels=in_channels,
            lateral_channels=[c * lateral_infl for c in fast_channels],
            **SLOW_PATHWAY,
            **spatial,
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

    num_stages = 4

    def forward_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip -> the ``(slow, fast)`` stem outputs of its two frame rates."""
        if x.shape[2] % self.resample_rate:
            raise InputError(
                f"SlowFast needs clips whose length is a multiple of resample_rate={self.resample_rate} (the slow "
                f"pathway takes every {self.resample_rate}th frame and the fast one has {self.speed_ratio}x as many), "
                f"got T={x.shape[2]}"
            )
        slow = self.slow_path.forward_stem(temporal_subsample(x, self.resample_rate))
        fast = self.fast_path.forward_stem(temporal_subsample(x, self.resample_rate // self.speed_ratio))
        return slow, fast

    def forward_stage(self, i: int, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Lateral ``i`` (fast -> slow), then stage ``i`` of both pathways."""
        slow, fast = state
        slow = self._fuse(i, slow, fast)
        return self.slow_path.forward_stage(i, slow), self.fast_path.forward_stage(i, fast)

    def stage_map(self, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(slow, fast)`` -> ``(B, C_fast + C_slow, T_fast, H', W')``: fast channels, then the slow ones with each
        frame repeated ``speed_ratio`` times."""
        slow, fast = state
        return torch.cat((fast, slow.repeat_interleave(self.speed_ratio, dim=2)), dim=1)

    forward_post = stage_map

    def _fuse(self, i: int, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        lateral = self.laterals[i](fast)
        if self.lateral_norms is not None:
            lateral = self.lateral_norms[i](lateral)
        return torch.cat((slow, lateral), dim=1)


class SlowFastHead(_LinearHead):
    """Average-pool each pathway, concatenate (fast first, then slow), dropout, ``fc``.

    Takes the combined map of :class:`SlowFastBackbone`; ``fast_channels`` and ``speed_ratio`` say where the
    pathways lie in it.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        fast_channels: int,
        speed_ratio: int,
        dropout: float,
        init_std: float,
    ) -> None:
        super().__init__(in_features, num_classes, dropout=dropout, init_std=init_std)
        self.fast_channels = fast_channels
        self.speed_ratio = speed_ratio

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C_fast + C_slow, T_fast, H', W')`` -> logits, or the pooled ``(B, C_fast + C_slow)`` features."""
        # each pathway as the backbone computed it (contiguous, the slow one at its own frame rate), so its mean is
        # the same sum in the same order
        fast = x[:, : self.fast_channels].contiguous()
        slow = x[:, self.fast_channels :, :: self.speed_ratio].contiguous()
        feats = torch.cat((fast.mean(dim=(2, 3, 4)), slow.mean(dim=(2, 3, 4))), dim=1)
        return feats if pre_logits else self.fc(self.dropout(feats))


class SlowFast(VideoClassifier):
    """SlowFast classifier: ``(B, C, T, H, W)`` -> logits; ``forward_features`` returns the combined
    ``(B, C_fast + C_slow, T_fast, H', W')`` map (see the module docstring).

    Intermediates: the four stages, both pathways combined the same way. Layer ids: both stems 0; stage K of both
    pathways and the lateral conv feeding it (``laterals.{K-1}``, with its norm) K; head 5.

    Args:
        num_classes: classifier outputs.
        dropout: dropout before ``head.fc``.
        init_std: std of the normal init of ``head.fc``.
        **backbone: :class:`SlowFastBackbone` arguments.
    """

    stem_prefixes = tuple(f"backbone.{p}_path.{m}" for p in ("slow", "fast") for m in ("conv1", "bn1"))
    stage_prefixes = (
        "backbone.slow_path.layer{n}",
        "backbone.fast_path.layer{n}",
        "backbone.laterals.{i}",
        "backbone.lateral_norms.{i}",
    )

    def __init__(self, *, num_classes: int = 400, dropout: float = 0.5, init_std: float = 0.01, **backbone) -> None:
        super().__init__()
        self.backbone = SlowFastBackbone(**backbone)
        self.head = SlowFastHead(
            self.backbone.num_features,
            num_classes,
            fast_channels=self.backbone.fast_path.num_features,
            speed_ratio=self.backbone.speed_ratio,
            dropout=dropout,
            init_std=init_std,
        )


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
