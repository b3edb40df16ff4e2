"""3D ResNet backbone shared by the clip-level families: I3D, SlowOnly, R(2+1)D, CSN and SlowFast's pathways.

One configurable network, set up the way MMAction2's ``ResNet3d`` is: a stem (conv ``conv1`` with ``bn1`` and
ReLU, then an optional ``(1, 3, 3)`` max-pool), four stages of residual blocks (``layer1`` .. ``layer4``) and an
optional temporal max-pool after ``layer1`` (``pool2``). Per stage and per block, a block's temporal kernel can be
"inflated" (I3D) or not (SlowOnly keeps the first two stages 2D); convs can be factorised into a spatial and a
temporal conv (R(2+1)D) or made channel-separated (CSN). The stride-2 conv of a bottleneck block is its middle
conv ("pytorch" style).

Parameter names: ``conv1`` + ``bn1`` (stem), ``layerK.J.conv1/bn1/conv2/bn2[/conv3/bn3]``,
``layerK.J.downsample.0/.1``, ``layerK.J.non_local`` (non-local block after the block), CSN's extra pointwise conv
of interaction-preserving blocks ``conv2p`` + ``bn2p``; a factorised conv is a module with ``conv_s``, ``bn_mid``,
``conv_t``. MMAction2's layout maps over with ``convK.conv -> convK``, ``convK.bn -> bnK`` (see
:mod:`vidlab.models.convert.mmaction2`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._init import init_conv_bn
from vidlab.models.base import StageBackbone, VideoClassifier
from vidlab.models.heads import ClsHead
from vidlab.models.layers import NonLocal3d

__all__ = ["BasicBlock3d", "Bottleneck3d", "Conv2plus1d", "ResNet3d", "ResNet3dClassifier", "make_conv"]

CONV_KINDS = ("3d", "2plus1d")
#: non-local block layouts (see ``ResNet3d``'s ``non_local_style``)
NON_LOCAL_STYLES = ("mmaction2", "pyslowfast")


def _triple(v) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


def mid_channels_2plus1d(in_channels: int, out_channels: int, kernel: Sequence[int]) -> int:
    """Width between the spatial and temporal conv of a factorised conv with as many weights as a full
    ``3 x kh x kw`` conv (R(2+1)D, arXiv:1711.11248, eq. 1): ``3*in*out*kh*kw // (in*kh*kw + 3*out)``. The factor
    3 is fixed whatever the temporal kernel, also for the 1x1x1 shortcut convs, as in MMAction2 and torchvision."""
    _, kh, kw = kernel
    return int(3 * in_channels * out_channels * kh * kw / (in_channels * kh * kw + 3 * out_channels))


class Conv2plus1d(nn.Module):
    """A ``kt x kh x kw`` conv factorised as ``conv_s`` (``1 x kh x kw``) -> ``bn_mid`` -> ReLU -> ``conv_t``
    (``kt x 1 x 1``); spatial stride and padding go to ``conv_s``, temporal ones to ``conv_t``.

    Args:
        mid_channels: width between the two convs; by default :func:`mid_channels_2plus1d` (MMAction2's
            choice); torchvision's R(2+1)D-18 uses other widths in its stem and second convs.
        temporal_first: run ``conv_t`` first (PyTorchVideo's R(2+1)D-50 order).
        eps: epsilon of ``bn_mid``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Sequence[int],
        stride: Sequence[int] = (1, 1, 1),
        padding: Sequence[int] = (0, 0, 0),
        *,
        mid_channels: int | None = None,
        temporal_first: bool = False,
        eps: float = 1e-5,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kernel, stride, padding = _triple(kernel), _triple(stride), _triple(padding)
        mid = mid_channels or mid_channels_2plus1d(in_channels, out_channels, kernel)
        self.temporal_first = temporal_first
        s_in, s_out = (mid, out_channels) if temporal_first else (in_channels, mid)
        t_in, t_out = (in_channels, mid) if temporal_first else (mid, out_channels)
        self.conv_s = nn.Conv3d(
            s_in, s_out, (1, *kernel[1:]), stride=(1, *stride[1:]), padding=(0, *padding[1:]), bias=bias
        )
        self.bn_mid = nn.BatchNorm3d(mid, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.conv_t = nn.Conv3d(
            t_in, t_out, (kernel[0], 1, 1), stride=(stride[0], 1, 1), padding=(padding[0], 0, 0), bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (self.conv_t, self.conv_s) if self.temporal_first else (self.conv_s, self.conv_t)
        return second(self.relu(self.bn_mid(first(x))))


def make_conv(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel: Sequence[int] | int,
    stride: Sequence[int] | int = 1,
    padding: Sequence[int] | int = 0,
    *,
    groups: int = 1,
    mid_channels: int | None = None,
    temporal_first: bool = False,
    dilation: Sequence[int] | int = 1,
) -> nn.Module:
    """A bias-free conv of ``kind`` ``"3d"`` (``nn.Conv3d``) or ``"2plus1d"`` (:class:`Conv2plus1d`)."""
    if kind == "3d":
        return nn.Conv3d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=False,
        )  # fmt: skip
    if kind == "2plus1d":
        if groups != 1 or _triple(dilation) != (1, 1, 1):
            raise InputError("a factorised (2+1)D conv cannot be grouped or dilated")
        # bn_mid keeps BatchNorm's default epsilon even where the block's norms use another (MMAction2 builds it
        # with the conv, apart from the norm config)
        return Conv2plus1d(
            in_channels, out_channels, kernel, stride, padding, mid_channels=mid_channels, temporal_first=temporal_first
        )
    raise InputError(f"conv kind must be one of {CONV_KINDS}, got {kind!r}")


class _Block3d(nn.Module):
    non_local: nn.Module | None

    def _finish(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(out + identity)
        return out if self.non_local is None else self.non_local(out)


class BasicBlock3d(_Block3d):
    """Two 3x3x3 convs (``1x3x3`` when not inflated); strides on the first conv.

    Args:
        mid_channels: widths inside the factorised convs (``conv_kind="2plus1d"``), one per conv; ``None`` for
            MMAction2's per-conv choice.
        temporal_dilation: temporal dilation of the first conv; above 1 that conv is one full 3D conv whatever
            ``conv_kind`` (TCLR's R(2+1)D-18 ``layer4``), with temporal padding equal to the dilation.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        inflate: bool = True,
        conv_kind: str = "3d",
        eps: float = 1e-5,
        non_local: nn.Module | None = None,
        mid_channels: tuple[int | None, int | None] = (None, None),
        dilation: int = 1,
        temporal_dilation: int = 1,
        **_: object,
    ) -> None:
        super().__init__()
        kernel, padding = ((3, 3, 3), (1, 1, 1)) if inflate else ((1, 3, 3), (0, 1, 1))
        stride = (temporal_stride, spatial_stride, spatial_stride)
        dilated = (padding[0], dilation, dilation)  # the first conv is dilated, as MMAction2's BasicBlock3d
        if temporal_dilation != 1:  # a full 3D conv, dilated in time (TCLR)
            self.conv1 = make_conv(
                "3d", in_channels, planes, kernel, stride, (padding[0] * temporal_dilation, dilation, dilation),
                dilation=(temporal_dilation, dilation, dilation),
            )  # fmt: skip
        else:
            self.conv1 = make_conv(
                conv_kind, in_channels, planes, kernel, stride, dilated, mid_channels=mid_channels[0],
                dilation=(1, dilation, dilation),
            )  # fmt: skip
        self.bn1 = nn.BatchNorm3d(planes, eps=eps)
        self.conv2 = make_conv(conv_kind, planes, planes, kernel, 1, padding, mid_channels=mid_channels[1])
        self.bn2 = nn.BatchNorm3d(planes, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.non_local = non_local

    def last_bn(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._finish(self.bn2(self.conv2(out)), x)


class Bottleneck3d(_Block3d):
    """1x1x1 -> 3x3 -> 1x1x1 convs with the temporal kernel on the first conv (``inflate_style="3x1x1"``) or the
    middle one (``"3x3x3"``); strides on the middle conv.

    Args:
        csn: channel-separated middle conv (CSN): ``"ir"`` makes it depthwise, ``"ip"`` also puts a pointwise
            conv (``conv2p`` + ``bn2p``, no activation) before it; ``None``: a full conv.
        middle_conv: ``"2plus1d_tfirst"``: factorise only the middle conv, temporal conv first, as wide as the
            block (PyTorchVideo's R(2+1)D-50); ``None``: a conv of ``conv_kind``.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        inflate: bool = True,
        inflate_style: str = "3x1x1",
        conv_kind: str = "3d",
        eps: float = 1e-5,
        non_local: nn.Module | None = None,
        csn: str | None = None,
        middle_conv: str | None = None,
        dilation: int = 1,
        **_: object,
    ) -> None:
        super().__init__()
        if inflate_style not in ("3x1x1", "3x3x3"):
            raise InputError(f"inflate_style must be '3x1x1' or '3x3x3', got {inflate_style!r}")
        if csn not in (None, "ir", "ip"):
            raise InputError(f"csn bottleneck mode must be 'ir', 'ip' or None, got {csn!r}")
        k1, p1, k2, p2 = (1, 1, 1), (0, 0, 0), (1, 3, 3), (0, 1, 1)
        if inflate and inflate_style == "3x1x1":
            k1, p1 = (3, 1, 1), (1, 0, 0)
        elif inflate:
            k2, p2 = (3, 3, 3), (1, 1, 1)
        self.conv1 = make_conv(conv_kind, in_channels, planes, k1, 1, p1)
        self.bn1 = nn.BatchNorm3d(planes, eps=eps)
        self.conv2p = self.bn2p = None
        if csn == "ip":
            self.conv2p = make_conv(conv_kind, planes, planes, 1)
            self.bn2p = nn.BatchNorm3d(planes, eps=eps)
        stride = (temporal_stride, spatial_stride, spatial_stride)
        if dilation != 1:  # the middle conv's spatial kernel is dilated (res5 of the AVA detectors)
            p2 = (p2[0], dilation, dilation)
        if middle_conv == "2plus1d_tfirst":  # PyTorchVideo's R(2+1)D-50: only this conv factorised, time first
            self.conv2 = make_conv("2plus1d", planes, planes, k2, stride, p2, mid_channels=planes, temporal_first=True)
        else:
            self.conv2 = make_conv(
                conv_kind, planes, planes, k2, stride, p2, groups=planes if csn else 1, dilation=(1, dilation, dilation)
            )
        self.bn2 = nn.BatchNorm3d(planes, eps=eps)
        self.conv3 = make_conv(conv_kind, planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm3d(planes * 4, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.non_local = non_local

    def last_bn(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        if self.conv2p is not None:
            out = self.bn2p(self.conv2p(out))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._finish(self.bn3(self.conv3(out)), x)


_ARCH: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock3d, (2, 2, 2, 2)),
    34: (BasicBlock3d, (3, 4, 6, 3)),
    50: (Bottleneck3d, (3, 4, 6, 3)),
    101: (Bottleneck3d, (3, 4, 23, 3)),
    152: (Bottleneck3d, (3, 8, 36, 3)),
}


def _per_block(value, stage_blocks: Sequence[int], what: str) -> list[tuple[int, ...]]:
    """Expand a per-stage (int) or per-block (tuple) flag spec to one tuple of flags per stage."""
    if isinstance(value, int):
        value = (value,) * len(stage_blocks)
    if len(value) != len(stage_blocks):
        raise InputError(f"{what} needs one entry per stage ({len(stage_blocks)}), got {value!r}")
    out = []
    for spec, n in zip(value, stage_blocks):
        flags = (spec,) * n if isinstance(spec, int) else tuple(spec)
        if len(flags) != n:
            raise InputError(f"{what}: a stage of {n} blocks needs {n} flags, got {spec!r}")
        out.append(flags)
    return out


def _make_block(
    block: type[nn.Module],
    cin: int,
    planes: int,
    ss: int,
    ts: int,
    *,
    inflate: bool,
    non_local: dict | None,
    downsample_kind: str,
    per_block_mid: bool,
    conv_kind: str,
    eps: float,
    **options,
) -> nn.Module:
    """One residual block of :class:`ResNet3d`, with its shortcut conv (when the shape changes), non-local block
    (``non_local``: its :class:`NonLocal3d` arguments) and, for torchvision's R(2+1)D, block-wide factorised widths."""
    out_channels = planes * block.expansion
    downsample = None
    if ss != 1 or ts != 1 or cin != out_channels:
        downsample = nn.Sequential(
            make_conv(downsample_kind, cin, out_channels, 1, (ts, ss, ss)), nn.BatchNorm3d(out_channels, eps=eps)
        )
    mids = (None, None)
    if per_block_mid and conv_kind == "2plus1d":
        mids = (mid_channels_2plus1d(cin, planes, (3, 3, 3)),) * 2
    nl = NonLocal3d(out_channels, sub_sample=True, **non_local) if non_local else None
    return block(
        cin,
        planes,
        ss,
        ts,
        downsample,
        inflate=inflate,
        conv_kind=conv_kind,
        eps=eps,
        non_local=nl,
        mid_channels=mids,
        **options,
    )


def _check_arch(depth: int, csn: str | None, temporal_dilations, non_local_style: str):
    """The block class and per-stage block counts of ``depth``, after the checks of the arguments that depend on it."""
    if depth not in _ARCH:
        raise InputError(f"ResNet3d depth must be one of {sorted(_ARCH)}, got {depth}")
    if csn and depth < 50:
        raise InputError("CSN blocks are bottlenecks: depth must be 50, 101 or 152")
    block, stage_blocks = _ARCH[depth]
    if any(int(d) != 1 for d in temporal_dilations) and block is not BasicBlock3d:
        raise InputError(f"temporal_dilations apply to basic blocks (depth 18, 34), not depth {depth}")
    if non_local_style not in NON_LOCAL_STYLES:
        raise InputError(f"non_local_style must be one of {NON_LOCAL_STYLES}, got {non_local_style!r}")
    return block, stage_blocks


class ResNet3d(StageBackbone):
    """3D ResNet: ``(B, C, T, H, W)`` -> ``(B, num_features, T', H', W')``; no pooling, no classifier. ``H' = H/32``
    with the stem pool and ``spatial_strides=(1, 2, 2, 2)`` (``H/16`` without the pool, as torchvision's R(2+1)D).

    Args:
        depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).
        in_channels: input channels.
        base_channels: width of the stem and of ``layer1`` (64; 8 for SlowFast's fast pathway).
        conv1_kernel: stem conv kernel ``(kt, kh, kw)``; spatial stride 2, "same" padding.
        conv1_stride_t: temporal stride of the stem conv.
        with_pool1: ``(1, 3, 3)`` max-pool after the stem (spatial stride 2, temporal ``pool1_stride_t``).
        pool1_stride_t: temporal stride of that pool.
        with_pool2: ``(2, 1, 1)`` temporal max-pool after ``layer1`` (I3D, C2D).
        spatial_strides, temporal_strides: strides of the first block of each stage.
        spatial_dilations: spatial dilation of the 3x3 convs of each stage (AVA detectors run ``layer4`` with
            stride 1 and dilation 2: ``spatial_strides=(1, 2, 2, 1), spatial_dilations=(1, 1, 1, 2)``, a map of
            ``H/16``).
        temporal_dilations: temporal dilation of the first conv of each stage's first block (basic blocks only);
            a dilated conv is one full 3D conv also in a factorised network. TCLR's R(2+1)D-18 (Dave et al.,
            arXiv:2101.07974) trades ``layer4``'s temporal stride for dilation: ``temporal_strides=(1, 2, 2, 1),
            temporal_dilations=(1, 1, 1, 2)`` (twice the frames in the output map).
        inflate: per stage (int) or per block (tuple of 0/1): temporal kernel 3 in the block (I3D's inflation).
        inflate_style: ``"3x1x1"`` (temporal kernel on a bottleneck's first conv) or ``"3x3x3"`` (middle conv).
        non_local: per stage or per block, 0/1: a non-local block after that block.
        non_local_mode, non_local_use_scale: the blocks' pairwise function and scaling; they sub-sample space
            (``sub_sample=True``, as every MMAction2 config; see :class:`~vidlab.models.layers.non_local.NonLocal3d`).
        non_local_style: ``"mmaction2"`` (mmcv's block) or ``"pyslowfast"`` (PySlowFast's: ``conv_out`` with a bias,
            keys and values from the spatially pooled input; its ``softmax`` instantiation is
            ``non_local_mode="embedded_gaussian", non_local_use_scale=True``).
        conv_kind: ``"3d"`` or ``"2plus1d"`` (every conv factorised, R(2+1)D); ``downsample_kind`` sets the shortcut
            convs separately (torchvision's R(2+1)D keeps them 3D).
        stem_mid_channels: width inside a factorised stem (torchvision: 45).
        block_mid_channels: ``"per_conv"`` (MMAction2) or ``"block"``: both factorised convs of a basic block use
            the width computed from the block's input and output channels (torchvision).
        csn: CSN bottleneck mode, ``"ir"`` or ``"ip"`` (see :class:`Bottleneck3d`).
        middle_conv: see :class:`Bottleneck3d`.
        norm_eps: BatchNorm epsilon (1e-3 in MMAction2's CSN and R(2+1)D configs).
        lateral_channels: extra input channels of each stage (SlowFast's slow pathway receives the fast
            pathway's lateral features concatenated to its own).
        zero_init_residual: zero the last BN weight of every block (MMAction2's ResNet3d default; its I3D, CSN
            and R(2+1)D configs turn it off).

    Init (MMAction2's from-scratch init): convs Kaiming normal (fan_out, ReLU gain), BN weight 1 and bias 0, then
    the zero residual init; non-local blocks keep their own init.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        in_channels: int = 3,
        base_channels: int = 64,
        conv1_kernel: Sequence[int] = (3, 7, 7),
        conv1_stride_t: int = 1,
        with_pool1: bool = True,
        pool1_stride_t: int = 1,
        with_pool2: bool = False,
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        spatial_dilations: Sequence[int] = (1, 1, 1, 1),
        temporal_dilations: Sequence[int] = (1, 1, 1, 1),
        inflate=1,
        inflate_style: str = "3x1x1",
        non_local=0,
        non_local_mode: str = "embedded_gaussian",
        non_local_use_scale: bool = False,
        non_local_style: str = "mmaction2",
        conv_kind: str = "3d",
        downsample_kind: str | None = None,
        stem_mid_channels: int | None = None,
        block_mid_channels: str = "per_conv",
        csn: str | None = None,
        middle_conv: str | None = None,
        norm_eps: float = 1e-5,
        lateral_channels: Sequence[int] = (0, 0, 0, 0),
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        block, stage_blocks = _check_arch(depth, csn, temporal_dilations, non_local_style)
        kt, kh, kw = _triple(conv1_kernel)
        self.conv1 = make_conv(
            conv_kind,
            in_channels,
            base_channels,
            (kt, kh, kw),
            (conv1_stride_t, 2, 2),
            ((kt - 1) // 2, (kh - 1) // 2, (kw - 1) // 2),
            mid_channels=stem_mid_channels,
        )
        self.bn1 = nn.BatchNorm3d(base_channels, eps=norm_eps)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(pool1_stride_t, 2, 2), padding=(0, 1, 1)) if with_pool1 else None
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1)) if with_pool2 else None
        pyslowfast = non_local_style == "pyslowfast"
        block_args = dict(
            inflate_style=inflate_style, conv_kind=conv_kind, eps=norm_eps, csn=csn, middle_conv=middle_conv,
            downsample_kind=downsample_kind or conv_kind, per_block_mid=block_mid_channels == "block",
        )  # fmt: skip
        stage_args = dict(
            inflate=_per_block(inflate, stage_blocks, "inflate"),
            non_local=_per_block(non_local, stage_blocks, "non_local"),
            nl_args=dict(
                mode=non_local_mode, use_scale=non_local_use_scale, pool_input=pyslowfast, out_bias=pyslowfast
            ),
            strides=(spatial_strides, temporal_strides),
            dilations=(spatial_dilations, temporal_dilations),
            lateral_channels=lateral_channels,
        )
        self._make_stages(block, stage_blocks, base_channels, block_args, **stage_args)
        self._init_weights(zero_init_residual)

    def _make_stages(
        self, block, stage_blocks, base_channels: int, block_args: dict, *, inflate, non_local, nl_args, strides,
        dilations, lateral_channels,
    ) -> None:  # fmt: skip
        """``layer1`` .. ``layer4`` (``stage_channels``, ``num_features``): stage ``i`` has ``planes = base * 2**i``;
        its first block takes the stage's strides, temporal dilation and lateral channels."""
        spatial_strides, temporal_strides = strides
        spatial_dilations, temporal_dilations = dilations
        channels = base_channels
        self.stage_channels: list[int] = []
        for i, num_blocks in enumerate(stage_blocks):
            planes = base_channels * 2**i
            blocks = []
            for j in range(num_blocks):
                first = j == 0
                blocks.append(
                    _make_block(
                        block,
                        channels + (lateral_channels[i] if first else 0),
                        planes,
                        spatial_strides[i] if first else 1,
                        temporal_strides[i] if first else 1,
                        inflate=bool(inflate[i][j]),
                        non_local=nl_args if non_local[i][j] else None,
                        dilation=int(spatial_dilations[i]),
                        temporal_dilation=int(temporal_dilations[i]) if first else 1,
                        **block_args,
                    )
                )
                channels = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.stage_channels.append(channels)
        self.num_features = channels

    def _init_weights(self, zero_init_residual: bool) -> None:
        init_conv_bn(self, skip=[b.non_local for b in self.modules() if isinstance(b, _Block3d) and b.non_local])
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _Block3d):
                    nn.init.zeros_(m.last_bn().weight)

    num_stages = 4

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return x if self.maxpool is None else self.maxpool(x)

    def forward_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Stage ``i`` (0-based), including ``pool2`` after the first one."""
        x = getattr(self, f"layer{i + 1}")(x)
        return self.pool2(x) if i == 0 and self.pool2 is not None else x


class ResNet3dClassifier(VideoClassifier):
    """A :class:`ResNet3d` backbone and a global-average-pool + dropout + ``fc`` head (MMAction2's
    ``Recognizer3D`` with ``I3DHead``): I3D, SlowOnly, R(2+1)D and CSN.

    Input ``(B, C, T, H, W)``, output logits ``(B, num_classes)``; ``forward_features`` returns the last stage's
    ``(B, C', T', H', W')`` map, ``forward_intermediates`` those of ``layer1`` .. ``layer4`` (``layer1``'s after
    ``pool2``); layer ids: stem 0, ``layerK`` K, head 5.

    Args:
        depth: ResNet depth.
        num_classes: classifier outputs.
        dropout: dropout before ``head.fc`` (0.5 in MMAction2's 3D configs).
        init_std: std of the normal init of ``head.fc``.
        **backbone: the other :class:`ResNet3d` arguments.
    """

    def __init__(
        self, *, depth: int = 50, num_classes: int = 400, dropout: float = 0.5, init_std: float = 0.01, **backbone
    ) -> None:
        super().__init__()
        self.backbone = ResNet3d(depth, **backbone)
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)
