"""C2D: the 2D ResNet baseline of Non-local Neural Networks (arXiv:1711.07971), as MMAction2's ``C2D``.

Every conv is 2D (applied to each frame); the network is 3D only through its pools: the stem's ``1x3x3``
max-pool (no padding) and a ``2x1x1`` temporal max-pool after ``layer1`` that halves the frames. The weights are
those of a 2D ResNet (``backbone.conv1``, ``backbone.layer1.0.conv1`` ... with 4-D kernels), so torchvision's
ImageNet checkpoints load directly.

MMAction2's "nopool" C2D configs are its TSN-R50/R101 recognizer on 8 frames; ``c2d_r50_nopool`` and
``c2d_r101_nopool`` are registered as exactly that network (:class:`~vidlab.models.tsn.TSN`, dropout 0.4).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.models._registry import register_variant
from vidlab.models.base import VideoClassifier, clips_of, frames_of
from vidlab.models.heads import ClsHead
from vidlab.models.resnet import ResNet
from vidlab.models.tsn import TSN

__all__ = ["C2D", "C2DBackbone"]


class C2DBackbone(ResNet):
    """A 2D ResNet run on clips ``(B, C, T, H, W)`` -> ``(B, C', T / 2, H', W')``: its convs per frame, its stem pool
    and ``pool2`` (a ``2x1x1`` temporal max-pool after ``layer1``, part of stage 0) 3D."""

    def __init__(self, depth: int, *, in_channels: int = 3) -> None:
        super().__init__(depth, in_channels=in_channels)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2))
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))

    def forward_stem(self, x: torch.Tensor, **_) -> torch.Tensor:
        f = self.relu(self.bn1(self.conv1(frames_of(x))))  # (B*T, C, H, W)
        return self.maxpool(clips_of(f, x.shape[0]))

    def forward_stage(self, i: int, x: torch.Tensor, **_) -> torch.Tensor:
        x = clips_of(getattr(self, f"layer{i + 1}")(frames_of(x)), x.shape[0])
        return self.pool2(x) if i == 0 else x


class C2D(VideoClassifier):
    """2D ResNet per frame with 3D max-pools; ``(B, C, T, H, W)`` -> logits, T even.

    ``forward_features`` returns ``(B, C', T / 2, H / 32, W / 32)``; stages and layer ids as the ResNet's.

    Args:
        depth: ResNet depth.
        num_classes: classifier outputs.
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.5).
        init_std: std of the normal init of ``head.fc``.
    """

    def __init__(
        self, *, depth: int = 50, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, init_std=0.01
    ) -> None:
        super().__init__()
        self.backbone = C2DBackbone(depth, in_channels=in_channels)
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)


_REF = "MMAction2 ``c2d_r{}-in1k-pre{}_8xb32-8x8x1-100e_kinetics400-rgb``"
register_variant(globals(), "c2d_r50", C2D, doc=f"C2D-ResNet50 ({_REF.format(50, '')}).", depth=50)
register_variant(globals(), "c2d_r101", C2D, doc=f"C2D-ResNet101 ({_REF.format(50, '')} with depth 101).", depth=101)
for _depth in (50, 101):
    register_variant(
        globals(),
        f"c2d_r{_depth}_nopool",
        TSN,
        doc=f"C2D-ResNet{_depth} without temporal pooling ({_REF.format(_depth, '-nopool')}: TSN on 8 frames).",
        depth=_depth,
    )
