"""MobileNetV2 backbone over frames (MobileNetV2: Inverted Residuals and Linear Bottlenecks, arXiv:1801.04381).

Layout as MMAction2's ``MobileNetV2`` (width 1.0): a stride-2 3x3 stem ``conv1``/``bn1``, seven stages
``layer1..layer7`` of inverted residual blocks, a final 1x1 ``conv2``/``bn2`` to 1280 channels, ReLU6
throughout. Each block's ``conv`` is a sequence of conv + BN (+ ReLU6) units named ``conv.K.conv`` /
``conv.K.bn``, so MMAction2 keys map over one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models.base import StageBackbone
from vidlab.models.layers import temporal_shift

__all__ = ["InvertedResidual", "MobileNetV2"]

# (expand ratio, output channels, blocks, stride of the first block)
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNAct(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + optional ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """1x1 expansion (if ``expand_ratio`` > 1) -> 3x3 depthwise (strided) -> linear 1x1 projection; a residual
    connection when stride is 1 and channels match. With ``shift_div``, residual blocks that have an expansion
    conv shift part of its input channels along time first (MMAction2's ``MobileNetV2TSM`` placement)."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int, shift_div: int | None = None) -> None:
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res_connect = stride == 1 and cin == cout
        layers = [ConvBNAct(cin, hidden, 1)] if expand_ratio != 1 else []
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden), ConvBNAct(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.shift_div = shift_div if self.use_res_connect and expand_ratio != 1 else None

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        if not self.use_res_connect:
            return self.conv(x)
        out = temporal_shift(x, num_segments, self.shift_div) if self.shift_div else x
        return x + self.conv(out)


class MobileNetV2(StageBackbone):
    """MobileNetV2 (width 1.0) over frames: ``(N, 3, H, W)`` -> ``(N, 1280, H/32, W/32)``.

    Args:
        in_channels: input channels.
        shift_div: temporal shift in the residual blocks with an expansion conv (TSM); ``forward`` then
            needs ``num_segments``.

    ``forward_intermediates`` returns outputs of the seven stages ``layer1`` .. ``layer7`` (the last one before
    ``conv2``).

    Init as MMAction2's: convs Kaiming normal (fan_out, ReLU gain), BN weight 1 and bias 0.
    """

    def __init__(self, *, in_channels: int = 3, shift_div: int | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU6(inplace=True)
        channels = 32
        for i, (expand, cout, num_blocks, stride) in enumerate(_STAGES):
            blocks = []
            for j in range(num_blocks):
                blocks.append(InvertedResidual(channels, cout, stride if j == 0 else 1, expand, shift_div))
                channels = cout
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.conv2 = nn.Conv2d(channels, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.num_features = 1280
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    num_stages = len(_STAGES)

    def forward_stem(self, x: torch.Tensor, **_) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def forward_stage(self, i: int, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        """``layer{i+1}``; ``num_segments`` is only used by the temporal shift."""
        for block in getattr(self, f"layer{i + 1}"):
            x = block(x, num_segments)
        return x

    def forward_post(self, x: torch.Tensor) -> torch.Tensor:
        """The final 1x1 conv to 1280 channels (after ``layer7``)."""
        return self.relu(self.bn2(self.conv2(x)))
