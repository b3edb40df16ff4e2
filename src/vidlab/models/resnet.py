"""2D ResNet backbone shared by the frame-level families (TSN, TSM).

Deep Residual Learning for Image Recognition (arXiv:1512.03385). The stride-2 conv of a bottleneck block is
its 3x3 conv ("pytorch" style, as in MMAction2 and torchvision); every conv is followed by BatchNorm.

Parameter names follow torchvision's ``resnet*`` exactly (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.bn1``, ``layer1.0.downsample.0`` / ``.1``), so ImageNet checkpoints in that layout load as they
are. MMAction2's layout maps over with ``convK.conv -> convK``, ``convK.bn -> bnK``,
``downsample.conv/.bn -> downsample.0/.1`` (and ``.net`` dropped for TSM's wrapped ``conv1``).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models.layers import temporal_shift

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


class BasicBlock(nn.Module):
    """Two 3x3 convs; an optional temporal shift at the start of the residual branch (TSM)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        shift_div: int | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.shift_div = shift_div
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = temporal_shift(x, num_segments, self.shift_div) if self.shift_div else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convs; an optional temporal shift at the start of the residual branch."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        shift_div: int | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.shift_div = shift_div
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = temporal_shift(x, num_segments, self.shift_div) if self.shift_div else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_ARCH: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """2D ResNet over frames: ``(N, C, H, W)`` -> ``(N, num_features, H/32, W/32)``; no pooling, no classifier.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input channels.
        shift_div: if set, a temporal shift of ``1/shift_div`` of the channels in each direction is applied at
            the start of the residual branch of the blocks (TSM's ``blockres`` placement: every block, every
            other block for depths whose ``layer3`` has >= 23 blocks, as in the reference). ``forward`` then
            needs ``num_segments``.
        zero_init_residual: zero the last BatchNorm weight of every block, so each block starts as identity.
            MMAction2's 2D ResNet does not do this (its BN weights start at 1), hence the default.
        norm_layer: normalization class taking the channel count.

    Init (MMAction2's from-scratch init): convs Kaiming normal (fan_out, ReLU gain), BN weight 1 and bias 0.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        in_channels: int = 3,
        shift_div: int | None = None,
        zero_init_residual: bool = False,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if depth not in _ARCH:
            raise ValueError(f"ResNet depth must be one of {sorted(_ARCH)}, got {depth}")
        block, stage_blocks = _ARCH[depth]
        shift_every = 2 if stage_blocks[2] >= 23 else 1
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for i, num_blocks in enumerate(stage_blocks):
            planes = 64 * 2**i
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or channels != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, planes * block.expansion, 1, stride=stride, bias=False),
                    norm_layer(planes * block.expansion),
                )
            blocks = []
            for j in range(num_blocks):
                shift = shift_div if j % shift_every == 0 else None
                if j == 0:
                    blocks.append(block(channels, planes, stride, downsample, shift, norm_layer))
                else:
                    blocks.append(block(channels, planes, shift_div=shift, norm_layer=norm_layer))
                channels = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = channels
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, num_features, H', W')``.

        ``num_segments`` (frames per clip, N a multiple of it) is only used by the temporal shift.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = block(x, num_segments)
        return x
