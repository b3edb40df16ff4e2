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
from vidlab.models.base import VideoClassifier, check_clip
from vidlab.models.heads import ClsHead
from vidlab.models.resnet import ResNet
from vidlab.models.tsn import TSN

__all__ = ["C2D"]


class C2D(VideoClassifier):
    """2D ResNet per frame with 3D max-pools; ``(B, C, T, H, W)`` -> logits, T even.

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
        self.backbone = ResNet(depth, in_channels=in_channels)
        self.backbone.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2))
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        b = x.shape[0]
        net = self.backbone

        def to_3d(f: torch.Tensor) -> torch.Tensor:  # (B*T, C, H, W) -> (B, C, T, H, W)
            return f.unflatten(0, (b, -1)).transpose(1, 2)

        def to_2d(f: torch.Tensor) -> torch.Tensor:
            return f.transpose(1, 2).flatten(0, 1)

        f = net.relu(net.bn1(net.conv1(x.transpose(1, 2).flatten(0, 1))))
        f = to_2d(net.maxpool(to_3d(f)))
        f = to_2d(self.pool2(to_3d(net.layer1(f))))
        for layer in (net.layer2, net.layer3, net.layer4):
            f = layer(f)
        return to_3d(f)


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
