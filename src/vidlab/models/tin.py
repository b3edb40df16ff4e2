"""TIN: Temporal Interlacing Network (arXiv:1912.00869)."""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier
from vidlab.models.heads import SegmentConsensusHead
from vidlab.models.resnet import ResNet

__all__ = ["TIN"]


class TIN(FrameClassifier):
    """A 2D ResNet whose blocks interlace part of their channels along time with learned, clip-dependent
    fractional offsets (:class:`~vidlab.models.layers.TemporalInterlace`), and TSM's segment-consensus head.

    The interlace runs in plain PyTorch (a ``gather`` along time), so unlike MMAction2 it needs no compiled
    ``tin_shift`` op and runs on CPU.

    Args:
        depth: ResNet depth.
        num_classes: classifier outputs.
        num_segments: frames per clip; fixed, as the offset network has a T-wide FC layer.
        shift_div: a ``1 / shift_div`` share of the channels is interlaced (4 in MMAction2's configs).
        interlace_init: ``"tsm"`` (every clip starts with offsets +-0.5 frame and weights 1) or ``"mmaction2"``
            (PyTorch's default init of the offset and weight nets, as MMAction2); see
            :class:`~vidlab.models.layers.interlace.TemporalInterlace`. Loaded weights are unaffected.
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
        shift_div: int = 4,
        interlace_init: str = "tsm",
        in_channels: int = 3,
        dropout: float = 0.5,
        init_std: float = 0.001,
    ) -> None:
        super().__init__(num_segments)
        self.backbone = ResNet(
            depth,
            in_channels=in_channels,
            interlace_div=shift_div,
            interlace_init=interlace_init,
            num_segments=num_segments,
        )
        self.head = SegmentConsensusHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)


register_variant(
    globals(),
    "tin_r50",
    TIN,
    depth=50,
    doc="TIN-ResNet50 (MMAction2 ``tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb``).",
)
register_variant(
    globals(),
    "tin_r18",
    TIN,
    depth=18,
    doc="TIN-ResNet18 (the TIN-R50 config with depth 18; for small experiments).",
)
