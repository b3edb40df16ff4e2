"""TANet: Temporal Adaptive Module for Video Recognition (arXiv:2005.06803)."""

from __future__ import annotations

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier
from vidlab.models.heads import SegmentConsensusHead
from vidlab.models.resnet import ResNet

__all__ = ["TANet"]


class TANet(FrameClassifier):
    """A 2D ResNet with a temporal adaptive module (:class:`~vidlab.models.layers.TAM`) after the first conv of
    every block, and TSM's segment-consensus head.

    MMAction2's TANet accepts only bottleneck blocks; here basic blocks take the TAM after their first conv too
    (``tanet_r18``, for small experiments).

    Args:
        depth: ResNet depth.
        num_classes: classifier outputs.
        num_segments: frames per clip (>= 3); fixed, as TAM's global branch has a T-wide FC layer.
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.5).
        init_std: std of the normal init of ``head.fc`` (0.001).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        num_classes: int = 400,
        num_segments: int = 8,
        in_channels: int = 3,
        dropout: float = 0.5,
        init_std: float = 0.001,
    ) -> None:
        if num_segments < 3:
            raise InputError(f"TANet needs num_segments >= 3, got {num_segments}")
        super().__init__(num_segments)
        self.backbone = ResNet(depth, in_channels=in_channels, tam=True, num_segments=num_segments)
        self.head = SegmentConsensusHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)


register_variant(
    globals(),
    "tanet_r50",
    TANet,
    depth=50,
    doc="TANet-ResNet50 (MMAction2 ``tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb``).",
)
register_variant(
    globals(),
    "tanet_r18",
    TANet,
    depth=18,
    doc="TANet-ResNet18 (TAM in basic blocks; not an MMAction2 model, for small experiments).",
)
