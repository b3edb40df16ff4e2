"""TSM: Temporal Shift Module for Efficient Video Understanding (arXiv:1811.08383), with optional non-local
blocks (Non-local Neural Networks, arXiv:1711.07971) as in MMAction2's TSM-NL configs."""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.base import FrameClassifier
from vidlab.models.heads import SegmentConsensusHead
from vidlab.models.tsn import frame_backbone

__all__ = ["NL_STAGES", "TSM"]

#: non-local placement of MMAction2's TSM-R50-NL configs: blocks 0 and 2 of layer2, 0, 2 and 4 of layer3.
NL_STAGES = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))


class TSM(FrameClassifier):
    """A 2D backbone over T frames whose residual blocks shift part of their channels along time.

    Input ``(B, C, T, H, W)``, output logits ``(B, num_classes)``. Each residual branch starts with
    :func:`~vidlab.models.layers.temporal_shift` over the T frames of its clip (``1/shift_div`` of the
    channels toward the past, as many toward the future). The head pools each frame, applies dropout and
    ``head.fc`` per frame and averages the T logits (TSM's average consensus).

    The shift uses the T of the actual input, so one model runs on 8- or 16-frame clips. (MMAction2 fixes
    ``num_segments`` at build time and, fed more frames, splits them into clips of that length; pass such
    clips as views to :meth:`forward_views` instead.) Multi-view testing scores each view separately and
    averages the scores (the inherited :meth:`~vidlab.models.base.VideoClassifier.forward_views`).

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152) or ``"mobilenetv2"``.
        num_classes: classifier outputs.
        in_channels: input channels.
        num_segments: if set, inputs must have exactly this many frames (a check, nothing else).
        shift_div: 8 in the paper and in MMAction2's configs.
        non_local: per-stage flags of non-local blocks (ResNet only), e.g. :data:`NL_STAGES`.
        non_local_mode: ``"gaussian"``, ``"embedded_gaussian"`` or ``"dot_product"``.
        dropout: dropout before ``head.fc`` (0.5 in MMAction2's TSM configs).
        init_std: std of the normal init of ``head.fc`` (0.001).
        zero_init_residual: see :class:`~vidlab.models.resnet.ResNet` (off, as in MMAction2).
    """

    def __init__(
        self,
        *,
        depth: int | str = 50,
        num_classes: int = 400,
        in_channels: int = 3,
        num_segments: int | None = None,
        shift_div: int = 8,
        non_local: tuple[tuple[int, ...], ...] | None = None,
        non_local_mode: str = "embedded_gaussian",
        dropout: float = 0.5,
        init_std: float = 0.001,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__(num_segments)
        self.backbone = frame_backbone(
            depth,
            in_channels=in_channels,
            shift_div=shift_div,
            non_local=non_local,
            zero_init_residual=zero_init_residual,
            **({"non_local_mode": non_local_mode} if non_local else {}),
        )
        self.head = SegmentConsensusHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)


_CFG = "tsm_imagenet-pretrained-{}_8xb16-1x1x8-50e_{}-rgb"
register_variant(
    globals(),
    "tsm_r18",
    TSM,
    "TSM-ResNet18 (MMAction2 ``" + _CFG.format("r50", "kinetics400") + "`` with depth 18).",
    depth=18,
)
register_variant(
    globals(), "tsm_r50", TSM, "TSM-ResNet50 (MMAction2 ``" + _CFG.format("r50", "kinetics400") + "``).", depth=50
)
register_variant(
    globals(),
    "tsm_r101",
    TSM,
    "TSM-ResNet101 (MMAction2 ``" + _CFG.format("r101", "sthv2") + "``: Something-Something V2, 174 classes).",
    num_classes=174,
    depth=101,
)
register_variant(
    globals(),
    "tsm_mobilenetv2",
    TSM,
    "TSM-MobileNetV2 (MMAction2 ``tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb``).",
    depth="mobilenetv2",
)
for _mode in ("dot_product", "embedded_gaussian", "gaussian"):
    register_variant(
        globals(),
        f"tsm_r50_nl_{_mode}",
        TSM,
        f"TSM-ResNet50 with {_mode.replace('_', ' ')} non-local blocks (MMAction2 ``"
        + _CFG.format(f"r50-nl-{_mode.replace('_', '-')}", "kinetics400")
        + "``).",
        depth=50,
        non_local=NL_STAGES,
        non_local_mode=_mode,
    )
