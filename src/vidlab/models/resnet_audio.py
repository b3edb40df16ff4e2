"""Audio recognizers on log-mel spectrograms, as MMAction2 1.2.0 builds them (its ``RecognizerAudio``).

- :class:`ResNetAudio`: the audio pathway of Audiovisual SlowFast Networks for Video Recognition (arXiv:2001.08740),
  MMAction2's ``ResNetAudio``: a bottleneck ResNet over ``(T, F)`` spectrograms without stem down-sampling, whose
  stem and first two stages use convolutions factorised into a time kernel ``(k, 1)`` and a frequency kernel
  ``(1, k)`` (:class:`FreqTimeConv`).
- :class:`AudioClassifier`: a backbone (``ResNetAudio``, or the 2D :class:`~vidlab.models.resnet.ResNet` of the
  frame families with one input channel) plus MMAction2's ``TSNAudioHead``: global average pool over time and
  frequency, dropout, one linear layer.

Shapes. A clip is a single-channel spectrogram ``(1, T, F)``: T time steps (feature rows) by F mel bins, the layout
of MMAction2's feature files after its ``AudioFeatureSelector`` and ``FormatAudioShape(input_format='NCTF')``
(its recipes: ``T = 128`` rows of 16 ms, ``F = 80`` mel bins, see :mod:`vidlab.data.audio`). Models take
``(B, 1, T, F)`` and return logits ``(B, num_classes)``; ``forward_features`` gives the unpooled map
``(B, C', T', F')`` (ResNetAudio: ``T / 8``, ``F / 8``, 1024 channels at depth 50; 2D ResNet: ``/ 32``).
Multi-view testing (:meth:`AudioClassifier.forward_views`) takes ``(B, V, 1, T, F)``, V clips of one sample
(MMAction2's test pipeline: ``num_clips=10``), runs every clip on its own and averages the softmax of the clips'
logits (``average_clips="prob"``, as ``TSNAudioHead``'s configs): what MMAction2's ``RecognizerAudio`` does after
folding ``(N, num_clips, 1, T, F)`` into the batch.

The registry lists these models under ``task="audio"`` (``vidlab.list_models(task="audio")``), apart from the video
recognizers. Its ``input_shape`` has four entries; for audio it reads ``(C, 1, T, F)``: one single-channel
"frame" whose rows are time steps and columns mel bins. The model itself takes the 4-D ``(B, C, T, F)``.

State-dict names: ``backbone.conv1`` (a :class:`FreqTimeConv`: ``conv_t`` / ``bn_t`` over time, ``conv_f`` /
``bn_f`` over frequency), ``backbone.bn1``, ``backbone.layerK.J.{conv1,bn1,conv2,conv3,bn3,downsample.0/.1}``
(a factorised ``conv2`` holds its own ``conv_t`` / ``bn_t`` / ``conv_f`` / ``bn_f``) and ``head.fc``. MMAction2's
checkpoints map over with :mod:`vidlab.models.convert.mmaction2` (``source="mmaction2"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._init import init_conv_bn
from vidlab.models._registry import register_model
from vidlab.models.base import StageBackbone, VideoClassifier
from vidlab.models.heads import ClsHead
from vidlab.models.resnet import ResNet

__all__ = ["AudioBottleneck", "AudioClassifier", "FreqTimeConv", "ResNetAudio", "check_spectrogram"]

#: blocks per stage of the bottleneck depths MMAction2's ResNetAudio offers
_STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def check_spectrogram(x: torch.Tensor, ndim: int = 4) -> None:
    """Raise a clear error when ``x`` is not a float ``(B, C, T, F)`` spectrogram batch (``ndim=5``: with views)."""
    layout = "(B, C, T, F)" if ndim == 4 else "(B, V, C, T, F)"
    if x.dim() != ndim:
        raise InputError(
            f"audio models take a {ndim}-D spectrogram batch {layout} (T time steps by F mel bins), got shape "
            f"{tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"expected a float spectrogram input, got {x.dtype}")


class FreqTimeConv(nn.Module):
    """A ``k x k`` convolution factorised into two parallel branches (MMAction2's ``ConvAudio``): ``conv_t``, a
    ``(k, 1)`` kernel over time, and ``conv_f``, a ``(1, k)`` kernel over frequency, each followed by BatchNorm
    (``bn_t`` / ``bn_f``) and ReLU; the branch outputs are summed (``op="sum"``) or concatenated along channels
    (``op="concat"``: ``2 * out_channels`` channels out). Both branches pad ``k // 2`` and share the stride.

    Input ``(N, C, T, F)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int | tuple[int, int] = 1,
        op: str = "concat",
    ) -> None:
        super().__init__()
        if op not in ("concat", "sum"):
            raise InputError(f"op must be 'concat' or 'sum', got {op!r}")
        self.op = op
        self.out_channels = out_channels * (2 if op == "concat" else 1)
        k = kernel_size
        self.conv_t = nn.Conv2d(in_channels, out_channels, (k, 1), stride=stride, padding=(k // 2, 0), bias=False)
        self.bn_t = nn.BatchNorm2d(out_channels)
        self.conv_f = nn.Conv2d(in_channels, out_channels, (1, k), stride=stride, padding=(0, k // 2), bias=False)
        self.bn_f = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.relu(self.bn_t(self.conv_t(x)))
        f = self.relu(self.bn_f(self.conv_f(x)))
        return t + f if self.op == "sum" else torch.cat((t, f), dim=1)


class AudioBottleneck(nn.Module):
    """ResNetAudio's bottleneck (MMAction2's ``Bottleneck2dAudio``): 1x1 conv + BN + ReLU; a strided 3x3 conv with
    neither BN nor ReLU after it, or, if ``factorize``, a :class:`FreqTimeConv` (``op="concat"``, its branches
    normalised and rectified inside) giving ``2 * planes`` channels; 1x1 conv to ``4 * planes`` + BN; residual
    addition; ReLU.

    Args:
        in_channels: input channels.
        planes: width of the block's middle convs.
        stride: stride of the 3x3 conv (both axes).
        dilation: dilation of an unfactorised 3x3 conv (the factorised one has none, as in MMAction2).
        downsample: projection of the identity path, if shapes differ.
        factorize: factorise the 3x3 conv into time and frequency kernels.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        factorize: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        if factorize:
            self.conv2 = FreqTimeConv(planes, planes, 3, stride=stride, op="concat")
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.conv3 = nn.Conv2d(2 * planes if factorize else planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.conv2(out)))
        return self.relu(out + identity)


def _per_block(value: int | Sequence[int], num_blocks: int, stage: int) -> list[int]:
    """A stage's ``factorize`` entry (one flag for all its blocks, or one per block) as one flag per block."""
    flags = [int(value)] * num_blocks if isinstance(value, int) else [int(v) for v in value]
    if len(flags) != num_blocks:
        raise InputError(f"factorize for stage {stage + 1} needs one flag per block ({num_blocks}), got {value!r}")
    return flags


class ResNetAudio(StageBackbone):
    """ResNet over spectrograms (MMAction2's ``ResNetAudio``): ``(N, C, T, F)`` -> ``(N, 32 * base_channels, T / 8,
    F / 8)`` with the default strides; no pooling, no classifier.

    Stem: a factorised ``conv1_kernel`` conv (:class:`FreqTimeConv`, ``op="sum"``) to ``base_channels``, then
    ``bn1`` and ReLU; no max-pool. Four stages of :class:`AudioBottleneck` blocks of width ``base_channels * 2**i``
    (out ``4x`` that), the first block of each strided by ``strides[i]`` in time and frequency alike.

    Args:
        depth: 50, 101 or 152.
        in_channels: input channels (1 for a spectrogram).
        base_channels: stem output channels and width of stage 1 (32).
        strides: stride of each stage's first block.
        dilations: dilation of each stage's unfactorised 3x3 convs.
        conv1_kernel: kernel size of the factorised stem conv (9).
        conv1_stride: its stride (1).
        factorize: per stage, whether its 3x3 convs are factorised: one flag for the whole stage or one per block
            (``(1, 1, 0, 0)``: stages 1 and 2).
        zero_init_residual: zero every block's last BatchNorm weight at init (MMAction2's default for this backbone).

    Init (MMAction2's from scratch): convs Kaiming normal (fan_out, ReLU gain), BatchNorm weight 1, bias 0.
    """

    num_stages = 4

    def __init__(
        self,
        depth: int = 50,
        *,
        in_channels: int = 1,
        base_channels: int = 32,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        conv1_kernel: int = 9,
        conv1_stride: int | tuple[int, int] = 1,
        factorize: Sequence[int | Sequence[int]] = (1, 1, 0, 0),
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if depth not in _STAGE_BLOCKS:
            raise InputError(f"ResNetAudio depth must be one of {sorted(_STAGE_BLOCKS)}, got {depth}")
        for name, value in (("strides", strides), ("dilations", dilations), ("factorize", factorize)):
            if len(value) != self.num_stages:
                raise InputError(f"{name} needs one entry per stage ({self.num_stages}), got {value!r}")
        self.conv1 = FreqTimeConv(in_channels, base_channels, conv1_kernel, stride=conv1_stride, op="sum")
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        channels = base_channels
        for i, num_blocks in enumerate(_STAGE_BLOCKS[depth]):
            planes = base_channels * 2**i
            layer = self._make_stage(
                channels, planes, strides[i], dilations[i], _per_block(factorize[i], num_blocks, i)
            )
            self.add_module(f"layer{i + 1}", layer)
            channels = planes * AudioBottleneck.expansion
        self.num_features = channels
        init_conv_bn(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, AudioBottleneck):
                    nn.init.zeros_(m.bn3.weight)

    @staticmethod
    def _make_stage(channels: int, planes: int, stride: int, dilation: int, factorize: list[int]) -> nn.Sequential:
        out_channels = planes * AudioBottleneck.expansion
        downsample = None
        if stride != 1 or channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        blocks = [AudioBottleneck(channels, planes, stride, dilation, downsample, factorize=bool(factorize[0]))]
        blocks += [AudioBottleneck(out_channels, planes, 1, dilation, factorize=bool(f)) for f in factorize[1:]]
        return nn.Sequential(*blocks)

    def forward_stem(self, x: torch.Tensor, **_) -> torch.Tensor:
        """``(N, C, T, F)`` -> factorised ``conv1``, ``bn1``, ReLU."""
        return self.relu(self.bn1(self.conv1(x)))

    def forward_stage(self, i: int, x: torch.Tensor, **_) -> torch.Tensor:
        """``layer{i+1}``."""
        return getattr(self, f"layer{i + 1}")(x)


class AudioClassifier(VideoClassifier):
    """A spectrogram backbone and MMAction2's ``TSNAudioHead`` (average pool over time and frequency, dropout,
    ``head.fc``): MMAction2's ``RecognizerAudio``.

    Input ``(B, C, T, F)`` (C = 1: a log-mel spectrogram clip), output logits ``(B, num_classes)``;
    ``forward_features`` returns the unpooled ``(B, C', T', F')`` map, ``forward_intermediates`` the stages' maps,
    ``forward_views`` fuses ``(B, V, C, T, F)`` views (see the module docstring).

    Args:
        arch: ``"resnet_audio"`` (:class:`ResNetAudio`) or ``"resnet"`` (the 2D
            :class:`~vidlab.models.resnet.ResNet` of the frame families: 7x7 stride-2 stem conv and max-pool,
            MMAction2's ``ResNet`` with ``in_channels=1``).
        depth: the backbone's depth (ResNetAudio: 50, 101, 152; ResNet: 18 .. 152).
        num_classes: classifier outputs.
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.5 in MMAction2's audio configs).
        init_std: std of the normal init of ``head.fc``.
        norm_eval: keep every BatchNorm of the backbone in eval mode (running statistics frozen) while training
            (MMAction2's ``norm_eval``; off in its audio configs).
        **backbone_kwargs: further :class:`ResNetAudio` arguments (``base_channels``, ``factorize``, ...).
    """

    def __init__(
        self,
        *,
        arch: str = "resnet_audio",
        depth: int = 50,
        num_classes: int = 400,
        in_channels: int = 1,
        dropout: float = 0.5,
        init_std: float = 0.01,
        norm_eval: bool = False,
        **backbone_kwargs,
    ) -> None:
        super().__init__()
        if arch == "resnet_audio":
            self.backbone = ResNetAudio(depth, in_channels=in_channels, **backbone_kwargs)
        elif arch == "resnet":
            if backbone_kwargs:
                raise InputError(f"arch='resnet' takes no further backbone arguments, got {sorted(backbone_kwargs)}")
            self.backbone = ResNet(depth, in_channels=in_channels)
        else:
            raise InputError(f"unknown audio backbone arch {arch!r}: use 'resnet_audio' or 'resnet'")
        self.norm_eval = norm_eval
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def train(self, mode: bool = True) -> AudioClassifier:
        """Set the training mode; with ``norm_eval`` the backbone's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, F)`` -> backbone map ``(B, C', T', F')``."""
        check_spectrogram(x)
        return self.backbone(x)

    def forward_head(
        self, feats: torch.Tensor, pre_logits: bool = False, cls_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, C', T', F')`` map -> logits ``(B, num_classes)``, or the pooled ``(B, C')`` if ``pre_logits``."""
        if feats.dim() != 4:
            raise InputError(
                f"forward_head takes the (B, C, T', F') map forward_features returns, got shape {tuple(feats.shape)}"
            )
        return self.head(feats.unsqueeze(2), pre_logits=pre_logits)  # ClsHead pools (B, C, 1, T', F')

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """``(B, C, T, F)`` -> the ``(B, C_k, T_k, F_k)`` maps of the stages ``indices`` selects (see
        :func:`~vidlab.models.base.take_indices`)."""
        check_spectrogram(x)
        return self.backbone.forward_intermediates(x, indices)

    def check_views(self, x: torch.Tensor) -> None:
        """Multi-view input is ``(B, V, C, T, F)``: each of the V clips is classified on its own and the softmax
        averaged (MMAction2's ``TSNAudioHead(average_clips='prob')``), by the inherited ``forward_views``."""
        check_spectrogram(x, ndim=5)


#: registered clip shape: (C, 1, T, F), one single-channel "frame" of T = 128 rows by F = 80 mel bins
_SHAPE = (1, 1, 128, 80)


@register_model(input_shape=_SHAPE, task="audio")
def audioonly_r50(*, num_classes: int = 400, **kwargs) -> AudioClassifier:
    """ResNetAudio-50 + TSNAudioHead (MMAction2 ``audioonly_r50_8xb160-64x1x1-100e_kinetics400-audio-feature``)."""
    return AudioClassifier(arch="resnet_audio", depth=50, num_classes=num_classes, **kwargs)


@register_model(input_shape=_SHAPE, task="audio")
def tsn_r18_audio(*, num_classes: int = 400, **kwargs) -> AudioClassifier:
    """2D ResNet-18 on one input channel + TSNAudioHead (MMAction2
    ``tsn_r18_8xb320-64x1x1-100e_kinetics400-audio-feature``)."""
    return AudioClassifier(arch="resnet", depth=18, num_classes=num_classes, **kwargs)


__all__ += ["audioonly_r50", "tsn_r18_audio"]
