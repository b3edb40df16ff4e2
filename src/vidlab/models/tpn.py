"""TPN: Temporal Pyramid Network for Action Recognition (arXiv:2004.03548), as MMAction2's ``TPN`` neck.

A backbone's last two stages (``layer3``: 1024 channels, ``layer4``: 2048) feed a pyramid neck: spatial
modulation (a strided conv brings ``layer3`` to ``layer4``'s size and width), temporal modulation (a grouped
temporal conv to 1024 channels, then a temporal max-pool by ``temporal_scale``), a top-down and a bottom-up
information flow each fused over levels (``level_fusion_1`` / ``_2``), and a final ``pyramid_fusion`` conv to
2048 channels; the head averages that map and applies dropout and ``head.fc``. An auxiliary head
(``neck.aux_head``) classifies from ``layer3`` in training: :meth:`TPN.forward_train` returns its logits with the
loss weight ``aux_weight`` (0.5) for the trainer to add; ``forward`` returns the main logits only.

Two backbones, as MMAction2's configs: a TSM ResNet-50 over frames (``tpn_tsm_r50``, 8 segments,
Something-Something V1) and a SlowOnly ResNet-50 (``tpn_slowonly_r50``, 8x8, Kinetics-400).

Parameter names follow MMAction2's neck (a conv + BatchNorm + ReLU unit has ``conv`` and ``bn``), so only the
backbone and head need renaming on import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models.base import VideoClassifier, check_clip, clips_of, frames_of
from vidlab.models.heads import ClsHead
from vidlab.models.resnet import ResNet
from vidlab.models.resnet3d import ResNet3d
from vidlab.models.slowonly import SLOW_PATHWAY

__all__ = ["TPN", "TPNNeck"]

BACKBONES = ("tsm_r50", "slowonly_r50")


class ConvUnit(nn.Module):
    """A bias-free 3D conv with optional BatchNorm (``bn``) and ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel, stride=1, padding=0, *, groups: int = 1, norm: bool = True, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm3d(cout) if norm else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return x if self.act is None else self.act(x)


class LevelFusion(nn.Module):
    """Per level a grouped 1x1x1 conv + BN + ReLU (``downsamples.i.conv``), concatenation, 1x1x1 ``fusion_conv``."""

    def __init__(self, in_channels: tuple[int, ...], mid_channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.downsamples = nn.ModuleList(
            nn.ModuleDict({"conv": ConvUnit(c, m, 1, groups=32)}) for c, m in zip(in_channels, mid_channels)
        )
        self.fusion_conv = ConvUnit(sum(mid_channels), out_channels, 1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.fusion_conv(torch.cat([d["conv"](x) for d, x in zip(self.downsamples, xs)], dim=1))


class AuxHead(nn.Module):
    """Strided conv + BN + ReLU to twice the width, global average pool, dropout, ``fc`` (training only)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvUnit(in_channels, in_channels * 2, (1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(in_channels * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.conv(x).mean(dim=(2, 3, 4))))


class TPNNeck(nn.Module):
    """The temporal pyramid over two levels ``(layer3, layer4)`` -> ``(B, 2048, T / temporal_scale, H, W)``.

    Args:
        in_channels: widths of the two levels (1024, 2048).
        out_channels: width of the modulated levels (1024).
        temporal_scale: temporal max-pool of the modulation (8, ceil mode: 8 frames become 1).
        num_classes: outputs of the auxiliary head; ``None`` for none.
    """

    def __init__(
        self,
        in_channels: tuple[int, int] = (1024, 2048),
        out_channels: int = 1024,
        temporal_scale: int = 8,
        num_classes: int | None = 400,
    ) -> None:
        super().__init__()
        top = in_channels[-1]
        # spatial modulation: log2(top / c) strided convs per level (one for layer3, none for layer4)
        self.spatial_modulation = nn.ModuleDict(
            {
                "spatial_modulation": nn.ModuleList(
                    nn.ModuleList(
                        ConvUnit(c * 2**f, c * 2 ** (f + 1), (1, 3, 3), (1, 2, 2), (0, 1, 1))
                        for f in range(int(math.log2(top // c)))
                    )
                    for c in in_channels
                )
            }
        )
        self.temporal_modulation_ops = nn.ModuleList(
            nn.ModuleDict(
                {"conv": ConvUnit(top, out_channels, (3, 1, 1), padding=(1, 0, 0), groups=32, norm=False, act=False)}
            )
            for _ in in_channels
        )
        self.temporal_pool = nn.MaxPool3d((temporal_scale, 1, 1), (temporal_scale, 1, 1), ceil_mode=True)
        self.downsample_ops = nn.ModuleList(
            nn.ModuleDict(
                {"conv": ConvUnit(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0), norm=False, act=False)}
            )
            for _ in in_channels[:-1]
        )
        mids = (out_channels,) * len(in_channels)
        self.level_fusion_1 = LevelFusion(mids, mids, 2 * out_channels)
        self.level_fusion_2 = LevelFusion(mids, mids, 2 * out_channels)
        self.pyramid_fusion = ConvUnit(4 * out_channels, 2048, 1)
        self.aux_head = AuxHead(in_channels[-2], num_classes) if num_classes else None
        self.num_features = 2048
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.aux_head is not None:
            nn.init.normal_(self.aux_head.fc.weight, std=0.01)
            nn.init.zeros_(self.aux_head.fc.bias)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        spatial = []
        for ops, x in zip(self.spatial_modulation["spatial_modulation"], levels):
            for op in ops:
                x = op(x)
            spatial.append(x)
        modulated = [self.temporal_pool(t["conv"](x)) for t, x in zip(self.temporal_modulation_ops, spatial)]
        outs = list(modulated)
        for i in range(len(outs) - 1, 0, -1):  # top-down (MMAction2's upsampling by (1, 1, 1): an identity)
            outs[i - 1] = outs[i - 1] + outs[i]
        top_down = self.level_fusion_1(outs)
        for i in range(len(outs) - 1):  # bottom-up, cascaded on the top-down sums
            outs[i + 1] = outs[i + 1] + self.downsample_ops[i]["conv"](outs[i])
        bottom_up = self.level_fusion_2(outs)
        return self.pyramid_fusion(torch.cat([top_down, bottom_up], dim=1))


class TPN(VideoClassifier):
    """A backbone's ``layer3`` and ``layer4`` through :class:`TPNNeck`, global average pool, dropout, ``head.fc``.

    ``forward_features`` returns the neck's ``(B, 2048, T / temporal_scale, H / 32, W / 32)`` map;
    ``forward_intermediates`` the backbone's four stages; :meth:`forward_train` also the auxiliary logits. Layer ids:
    the backbone's (stem 0, ``layerK`` K), the neck (auxiliary head included) and the head 5.

    Args:
        backbone: ``"tsm_r50"`` (2D ResNet-50 with temporal shift over the T frames of the clip) or
            ``"slowonly_r50"`` (3D SlowOnly ResNet-50).
        num_classes: classifier outputs (also the auxiliary head's).
        temporal_scale: the neck's temporal pool (8).
        dropout: dropout before ``head.fc`` (0.5).
        aux_weight: weight of the auxiliary head's loss in training (0.5; 0 disables the head).
        init_std: std of the normal init of ``head.fc``.
    """

    #: state-dict prefixes of the layers sized by the class count (``drop_head`` skips them when they differ)
    classifier_prefixes = ("head.", "neck.aux_head.fc.")

    def __init__(
        self,
        *,
        backbone: str = "slowonly_r50",
        num_classes: int = 400,
        temporal_scale: int = 8,
        dropout: float = 0.5,
        aux_weight: float = 0.5,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise InputError(f"TPN backbone must be one of {BACKBONES}, got {backbone!r}")
        self.frames_2d = backbone == "tsm_r50"
        if self.frames_2d:
            self.backbone = ResNet(50, shift_div=8)
        else:
            self.backbone = ResNet3d(50, **SLOW_PATHWAY)
        self.aux_weight = aux_weight
        self.neck = TPNNeck(temporal_scale=temporal_scale, num_classes=num_classes if aux_weight else None)
        self.head = ClsHead(self.neck.num_features, num_classes, dropout=dropout, init_std=init_std)

    @property
    def num_features(self) -> int:
        return self.neck.num_features

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        check_clip(x)
        if not self.frames_2d:
            return self.backbone.forward_intermediates(x, indices)
        b, t = x.shape[0], x.shape[2]  # the 2D backbone runs on the frames, its shifts within each clip of T
        return [clips_of(f, b) for f in self.backbone.forward_intermediates(frames_of(x), indices, num_segments=t)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.forward_intermediates(x, [2, 3]))  # layer3, layer4

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]]]:
        """``(logits, [(aux_weight, auxiliary logits)])``; the list is empty without an auxiliary head."""
        levels = self.forward_intermediates(x, [2, 3])
        aux = [] if self.neck.aux_head is None else [(self.aux_weight, self.neck.aux_head(levels[0]))]
        return self.forward_head(self.neck(levels)), aux

    def reset_classifier(self, num_classes: int) -> None:
        """New ``head.fc`` and auxiliary ``fc`` with ``num_classes`` outputs."""
        super().reset_classifier(num_classes)
        aux = self.neck.aux_head
        if aux is not None:
            old = aux.fc
            aux.fc = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
            nn.init.normal_(aux.fc.weight, std=0.01)
            nn.init.zeros_(aux.fc.bias)


register_variant(
    globals(),
    "tpn_tsm_r50",
    TPN,
    doc="TPN on TSM-ResNet50, 8 segments (MMAction2 ``tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb``).",
    num_classes=174,
    backbone="tsm_r50",
)
register_variant(
    globals(),
    "tpn_slowonly_r50",
    TPN,
    doc="TPN on SlowOnly-ResNet50 8x8 (MMAction2 ``tpn-slowonly_r50_8xb8-8x8x1-150e_kinetics400-rgb``).",
    backbone="slowonly_r50",
)
