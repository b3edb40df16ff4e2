"""2D ResNet backbone shared by the frame-level families (TSN, TSM, TIN, TANet, TRN).

Deep Residual Learning for Image Recognition (arXiv:1512.03385). The stride-2 conv of a bottleneck block is
its 3x3 conv ("pytorch" style, as in MMAction2 and torchvision); every conv is followed by BatchNorm.

Parameter names follow torchvision's ``resnet*`` exactly (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.bn1``, ``layer1.0.downsample.0`` / ``.1``), so torchvision's ImageNet checkpoints load as the
``backbone`` of a zoo model with only a ``backbone.`` prefix (``source="torchvision"``). MMAction2's layout
maps over with ``convK.conv -> convK``, ``convK.bn -> bnK``, ``downsample.conv/.bn -> downsample.0/.1`` (the
wrappers MMAction2 puts around blocks and convs for TSM, TIN, TANet and non-local blocks are unwrapped; see
:mod:`vidlab.models.convert.mmaction2`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._init import init_conv_bn
from vidlab.models.base import StageBackbone
from vidlab.models.layers import TAM, NonLocal3d, TemporalInterlace, temporal_shift

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


class _Block(nn.Module):
    """Residual block with optional temporal modules (frames of B clips stacked as ``(B * T, C, H, W)``).

    In the residual branch, before ``conv1``: a temporal shift (``shift_div``, TSM) and/or a temporal
    interlace (``interlace``, TIN); after ``conv1``'s ReLU: a temporal adaptive module (``tam``, TANet). After the
    block's output ReLU: a non-local block over the clip (``non_local``, TSM-NL). The identity path is never
    shifted.
    """

    expansion = 1
    shift_div: int | None
    interlace: nn.Module | None
    tam: nn.Module | None
    non_local: nn.Module | None

    def _set_temporal(self, shift_div, interlace, tam, non_local) -> None:
        self.shift_div = shift_div
        self.interlace = interlace
        self.tam = tam
        self.non_local = non_local

    def _pre(self, x: torch.Tensor, num_segments: int) -> torch.Tensor:
        if self.shift_div:
            x = temporal_shift(x, num_segments, self.shift_div)
        if self.interlace is not None:
            x = self.interlace(x, num_segments)
        return x

    def _after_conv1(self, x: torch.Tensor, num_segments: int) -> torch.Tensor:
        return x if self.tam is None else self.tam(x, num_segments)

    def _post(self, x: torch.Tensor, num_segments: int) -> torch.Tensor:
        return x if self.non_local is None else self.non_local.forward_frames(x, num_segments)


class BasicBlock(_Block):
    """Two 3x3 convs."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        shift_div: int | None = None,
        interlace: nn.Module | None = None,
        tam: nn.Module | None = None,
        non_local: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._set_temporal(shift_div, interlace, tam, non_local)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self._pre(x, num_segments))))
        out = self.bn2(self.conv2(self._after_conv1(out, num_segments)))
        return self._post(self.relu(out + identity), num_segments)


class Bottleneck(_Block):
    """1x1 -> 3x3 (strided) -> 1x1 convs."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        shift_div: int | None = None,
        interlace: nn.Module | None = None,
        tam: nn.Module | None = None,
        non_local: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._set_temporal(shift_div, interlace, tam, non_local)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self._pre(x, num_segments))))
        out = self.relu(self.bn2(self.conv2(self._after_conv1(out, num_segments))))
        out = self.bn3(self.conv3(out))
        return self._post(self.relu(out + identity), num_segments)


_ARCH: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(StageBackbone):
    """2D ResNet over frames: ``(N, C, H, W)`` -> ``(N, num_features, H/32, W/32)``; no pooling, no classifier.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input channels.
        shift_div: if set, a temporal shift of ``1/shift_div`` of the channels in each direction is applied at
            the start of the residual branch of the blocks (TSM's ``blockres`` placement: every block, every
            other block for depths whose ``layer3`` has >= 23 blocks, as in the reference).
        interlace_div: if set, a :class:`~vidlab.models.layers.interlace.TemporalInterlace` of
            ``1/interlace_div`` of the channels at the start of every block's residual branch (TIN).
        tam: a :class:`~vidlab.models.layers.tam.TAM` after ``conv1`` of every block (TANet).
        non_local: per stage, one flag per block: a non-local block after that block (TSM-NL), e.g.
            ``((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))``.
        interlace_init: init of the interlace modules' offset and weight nets (``"tsm"`` or ``"mmaction2"``, see
            :class:`~vidlab.models.layers.interlace.TemporalInterlace`).
        non_local_mode: pairwise function of the non-local blocks (see
            :class:`~vidlab.models.layers.non_local.NonLocal3d`); they use ``sub_sample=True``,
            ``use_scale=False``, as MMAction2's TSM-NL configs.
        num_segments: frames per clip, needed by the TIN and TAM modules (fixed-size layers over time).
        zero_init_residual: zero the last BatchNorm weight of every block, so each block starts as identity.
            MMAction2's 2D ResNet does not do this (its BN weights start at 1), hence the default.
        norm_layer: normalization class taking the channel count.

    ``forward`` needs ``num_segments`` (frames per clip, N a multiple of it) whenever a temporal module is on; so
    does ``forward_intermediates`` (the outputs of ``layer1`` .. ``layer4``, see
    :class:`~vidlab.models.base.StageBackbone`).

    Init (MMAction2's from-scratch init): convs Kaiming normal (fan_out, ReLU gain), BN weight 1 and bias 0;
    the temporal modules keep their own init.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        in_channels: int = 3,
        shift_div: int | None = None,
        interlace_div: int | None = None,
        tam: bool = False,
        non_local: tuple[tuple[int, ...], ...] | None = None,
        non_local_mode: str = "embedded_gaussian",
        interlace_init: str = "tsm",
        num_segments: int = 8,
        zero_init_residual: bool = False,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if depth not in _ARCH:
            raise InputError(f"ResNet depth must be one of {sorted(_ARCH)}, got {depth}")
        block, stage_blocks = _ARCH[depth]
        if non_local is not None and [len(s) for s in non_local] != list(stage_blocks):
            raise InputError(f"non_local needs one flag per block, {list(stage_blocks)} per stage, got {non_local!r}")
        shift_every = 2 if stage_blocks[2] >= 23 else 1
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for i, num_blocks in enumerate(stage_blocks):
            planes = 64 * 2**i
            out_channels = planes * block.expansion
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(num_blocks):
                downsample = None
                if j == 0 and (stride != 1 or channels != out_channels):
                    downsample = nn.Sequential(
                        nn.Conv2d(channels, out_channels, 1, stride=stride, bias=False), norm_layer(out_channels)
                    )
                nl = None
                if non_local is not None and non_local[i][j]:
                    nl = NonLocal3d(out_channels, non_local_mode, sub_sample=True, use_scale=False)
                blocks.append(
                    block(
                        channels,
                        planes,
                        stride if j == 0 else 1,
                        downsample,
                        norm_layer,
                        shift_div=shift_div if j % shift_every == 0 else None,
                        interlace=TemporalInterlace(channels, num_segments, interlace_div, interlace_init)
                        if interlace_div
                        else None,
                        tam=TAM(planes, num_segments) if tam else None,
                        non_local=nl,
                    )
                )
                channels = out_channels
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = channels
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        temporal = [t for b in self.modules() if isinstance(b, _Block) for t in (b.interlace, b.tam, b.non_local)]
        init_conv_bn(self, skip=[t for t in temporal if t is not None])
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _Block):
                    m.zero_init_last()

    num_stages = 4

    def forward_stem(self, x: torch.Tensor, **_) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``conv1``, ``bn1``, ReLU, max-pool."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stage(self, i: int, x: torch.Tensor, num_segments: int = 1) -> torch.Tensor:
        """``layer{i+1}``; ``num_segments`` (frames per clip, N a multiple of it) is only used by the temporal
        modules."""
        for block in getattr(self, f"layer{i + 1}"):
            x = block(x, num_segments)
        return x
