"""X3D: Expanding Architectures for Efficient Video Recognition (arXiv:2004.04730).

Parameter names: ``backbone.conv1_s`` (spatial stem conv, no norm), ``backbone.conv1_t`` + ``backbone.bn1``
(depthwise temporal stem conv), ``backbone.layer{1..4}.{j}.conv1/bn1/conv2/bn2/se.fc1/se.fc2/conv3/bn3``,
``...downsample.0/.1``, ``backbone.conv5`` + ``backbone.bn5``, ``head.fc1``, ``head.fc2``. MMAction2's layout
maps over with ``convK.conv -> convK``, ``convK.bn -> bnK`` (``conv1_t.bn -> bn1``), ``se_module -> se``,
``downsample.conv/.bn -> downsample.0/.1``, ``cls_head -> head``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidlab.models._init import init_conv_bn
from vidlab.models._registry import register_variant
from vidlab.models.base import StageBackbone, VideoClassifier

__all__ = ["X3D", "X3DBackbone", "X3DHead"]


def _round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count and round it to a multiple of ``divisor`` (never more than 10% below)."""
    width *= multiplier
    rounded = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


def _round_repeats(repeats: int, multiplier: float) -> int:
    return int(math.ceil(multiplier * repeats))


class SqueezeExcite(nn.Module):
    """Channel gating from the clip-averaged features: ``x * sigmoid(fc2(relu(fc1(mean(x)))))``."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = _round_width(channels, ratio)
        self.fc1 = nn.Conv3d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
        return x * torch.sigmoid(self.fc2(self.relu(self.fc1(s))))


class X3DBlock(nn.Module):
    """1x1x1 conv -> depthwise 3x3x3 conv (spatially strided) -> [SE] -> swish -> 1x1x1 conv, plus shortcut."""

    def __init__(
        self,
        in_channels: int,
        planes: int,
        out_channels: int,
        spatial_stride: int = 1,
        se_ratio: float | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        shortcut_norm: bool = True,
    ) -> None:
        super().__init__()
        stride = (1, spatial_stride, spatial_stride)
        self.conv1 = nn.Conv3d(in_channels, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = norm_layer(planes)
        self.se = SqueezeExcite(planes, se_ratio) if se_ratio else None
        self.swish = nn.SiLU(inplace=True)
        self.conv3 = nn.Conv3d(planes, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if spatial_stride != 1 or in_channels != out_channels:
            conv = nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.downsample = nn.Sequential(conv, norm_layer(out_channels)) if shortcut_norm else nn.Sequential(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        out = self.bn3(self.conv3(self.swish(out)))
        return self.relu(out + identity)


class X3DBackbone(StageBackbone):
    """X3D trunk: ``(B, 3, T, H, W)`` -> ``(B, num_features, T, H/32, W/32)`` (no temporal stride).

    Args:
        gamma_w: width multiplier of the stage output channels (base 24).
        gamma_b: bottleneck (inner) width multiplier; also sets ``conv5``'s width.
        gamma_d: depth multiplier of the stage block counts (base 1, 2, 5, 3).
        in_channels: input channels.
        se_ratio: squeeze-excitation reduction, on every other block (the 1st, 3rd, ... of each stage);
            ``None`` disables SE.
        zero_init_residual: zero ``bn3.weight`` of every block (MMAction2's default for X3D).
        norm_layer: normalization class taking the channel count.
        stage1_shortcut_norm: BatchNorm after the shortcut conv of ``layer1``'s first block (whose input and
            output widths agree). PyTorchVideo's X3D has none there (MMAction2 and PySlowFast have one).
        conv5: end with ``conv5`` + ``bn5`` + ReLU (``num_features = gamma_b x`` the last stage's width); False: the
            backbone ends with ``layer4`` (PySlowFast's X3D detectors put their RoI head there).

    Init (MMAction2's from-scratch init): convs Kaiming normal (fan_out, ReLU gain) with zero bias, BN
    weight 1 and bias 0, then the zero residual init.
    """

    def __init__(
        self,
        *,
        gamma_w: float = 1.0,
        gamma_b: float = 2.25,
        gamma_d: float = 2.2,
        in_channels: int = 3,
        se_ratio: float | None = 1 / 16,
        zero_init_residual: bool = True,
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        stage1_shortcut_norm: bool = True,
        conv5: bool = True,
    ) -> None:
        super().__init__()
        base = _round_width(24, gamma_w)
        self.conv1_s = nn.Conv3d(in_channels, base, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv1_t = nn.Conv3d(base, base, (5, 1, 1), padding=(2, 0, 0), groups=base, bias=False)
        self.bn1 = norm_layer(base)
        self.relu = nn.ReLU(inplace=True)
        channels = base
        for i, repeats in enumerate((1, 2, 5, 3)):
            out_channels = base * 2**i
            planes = int(out_channels * gamma_b)
            blocks = [
                X3DBlock(
                    channels if j == 0 else out_channels,
                    planes,
                    out_channels,
                    spatial_stride=2 if j == 0 else 1,
                    se_ratio=se_ratio if j % 2 == 0 else None,
                    norm_layer=norm_layer,
                    shortcut_norm=stage1_shortcut_norm or i > 0,
                )
                for j in range(_round_repeats(repeats, gamma_d))
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            channels = out_channels
        self.num_features = int(channels * gamma_b) if conv5 else channels
        self.conv5 = nn.Conv3d(channels, self.num_features, 1, bias=False) if conv5 else None
        self.bn5 = norm_layer(self.num_features) if conv5 else None
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        init_conv_bn(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, X3DBlock):
                    nn.init.zeros_(m.bn3.weight)

    num_stages = 4

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1_t(self.conv1_s(x))))

    def forward_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"layer{i + 1}")(x)

    def forward_post(self, x: torch.Tensor) -> torch.Tensor:
        """``conv5`` + ``bn5`` + ReLU after ``layer4`` (nothing without ``conv5``)."""
        return x if self.conv5 is None else self.relu(self.bn5(self.conv5(x)))


class X3DHead(nn.Module):
    """Global average pool, ``fc1`` (no bias) + ReLU, dropout, ``fc2``.

    Args:
        in_features: channels of the feature map.
        num_classes: classifier outputs.
        hidden: width of ``fc1`` (2048).
        dropout: dropout before ``fc2``.
        init_std: std of the normal init of ``fc1`` and ``fc2`` weights (biases 0).
        fc1_bias: give ``fc1`` a bias (MMAction2's X3D configs do not).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        hidden: int = 2048,
        dropout: float = 0.5,
        init_std: float = 0.01,
        fc1_bias: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.hidden = hidden
        self.init_std = init_std
        self.fc1 = nn.Linear(in_features, hidden, bias=fc1_bias)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, num_classes)
        for fc in (self.fc1, self.fc2):
            self._init_fc(fc)

    def _init_fc(self, fc: nn.Linear) -> None:
        nn.init.normal_(fc.weight, std=self.init_std)
        if fc.bias is not None:
            nn.init.zeros_(fc.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc2`` by a freshly initialised one with ``num_classes`` outputs."""
        w = self.fc2.weight
        self.fc2 = nn.Linear(self.hidden, num_classes, device=w.device, dtype=w.dtype)
        self.num_classes = num_classes
        self._init_fc(self.fc2)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``, or the ``fc1`` activations ``(B, hidden)``."""
        x = self.relu(self.fc1(x.mean(dim=(2, 3, 4))))
        if pre_logits:
            return x
        return self.fc2(self.dropout(x))


class X3D(VideoClassifier):
    """X3D classifier: 3D backbone with depthwise convs, MLP head.

    Input ``(B, 3, T, H, W)``, output logits ``(B, num_classes)``; ``forward_features`` returns
    ``(B, 432, T, H/32, W/32)`` for X3D-S/M (after ``conv5``), ``forward_intermediates`` the outputs of
    ``layer1`` .. ``layer4`` (before ``conv5``). Layer ids: stem (``conv1_s``, ``conv1_t``, ``bn1``) 0, ``layerK``
    K, ``conv5``/``bn5`` and the head 5. Multi-view testing averages per-view scores.

    Args:
        num_classes: classifier outputs.
        gamma_w, gamma_b, gamma_d, in_channels, se_ratio, zero_init_residual, stage1_shortcut_norm, conv5: see
            :class:`X3DBackbone`.
        hidden, dropout, init_std, fc1_bias: see :class:`X3DHead`.
    """

    stem_prefixes = ("backbone.conv1_s", "backbone.conv1_t", "backbone.bn1")

    def __init__(
        self,
        *,
        num_classes: int = 400,
        gamma_w: float = 1.0,
        gamma_b: float = 2.25,
        gamma_d: float = 2.2,
        in_channels: int = 3,
        se_ratio: float | None = 1 / 16,
        zero_init_residual: bool = True,
        stage1_shortcut_norm: bool = True,
        conv5: bool = True,
        hidden: int = 2048,
        dropout: float = 0.5,
        init_std: float = 0.01,
        fc1_bias: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = X3DBackbone(
            gamma_w=gamma_w,
            gamma_b=gamma_b,
            gamma_d=gamma_d,
            in_channels=in_channels,
            se_ratio=se_ratio,
            zero_init_residual=zero_init_residual,
            stage1_shortcut_norm=stage1_shortcut_norm,
            conv5=conv5,
        )
        self.head = X3DHead(
            self.backbone.num_features,
            num_classes,
            hidden=hidden,
            dropout=dropout,
            init_std=init_std,
            fc1_bias=fc1_bias,
        )


# X3D-XS, -S and -M are one network (gamma_w 1, gamma_b 2.25, gamma_d 2.2) run on different clips; X3D-L is
# deeper (gamma_d 5). Clip shapes as in the X3D paper's Table 4.
_X3D = dict(gamma_w=1.0, gamma_b=2.25, gamma_d=2.2)
register_variant(
    globals(), "x3d_xs", X3D, doc="X3D-XS (4 frames, 160 px; the X3D-S network).", input_shape=(3, 4, 160, 160), **_X3D
)
register_variant(
    globals(),
    "x3d_s",
    X3D,
    doc="X3D-S (MMAction2 ``x3d_s_13x6x1_facebook-kinetics400-rgb``: 13 frames, 160 px training crop).",
    input_shape=(3, 13, 160, 160),
    **_X3D,
)
register_variant(
    globals(),
    "x3d_m",
    X3D,
    doc="X3D-M (MMAction2 ``x3d_m_16x5x1_facebook-kinetics400-rgb``: 16 frames, 224 px).",
    input_shape=(3, 16, 224, 224),
    **_X3D,
)
register_variant(
    globals(),
    "x3d_l",
    X3D,
    doc="X3D-L (gamma_d 5.0; 16 frames, 312 px).",
    input_shape=(3, 16, 312, 312),
    **{**_X3D, "gamma_d": 5.0},
)
