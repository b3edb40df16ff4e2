"""TSN: Temporal Segment Networks: Towards Good Practices for Deep Action Recognition (arXiv:1608.00859)."""

from __future__ import annotations

import torch

from vidlab.models._registry import register_model
from vidlab.models.base import VideoClassifier, check_clip
from vidlab.models.heads import ClsHead, average_view_scores
from vidlab.models.resnet import ResNet

__all__ = ["TSN", "tsn_r18", "tsn_r50"]


class TSN(VideoClassifier):
    """A 2D ResNet applied to each of T sampled frames (segments), average consensus, one linear classifier.

    Input ``(B, C, T, H, W)`` (T segments, e.g. MMAction2's ``clip_len=1, num_clips=8`` gives T=8), output
    logits ``(B, num_classes)``. ``forward_features`` returns ``(B, C', T, H/32, W/32)``; the head averages it
    over time and space (per-frame spatial pooling followed by the average consensus), applies dropout and
    ``head.fc``.

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152).
        num_classes: classifier outputs.
        in_channels: input channels.
        dropout: dropout before ``head.fc`` (0.4 in MMAction2's TSN configs).
        init_std: std of the normal init of ``head.fc`` (0.01).
        zero_init_residual: see :class:`~vidlab.models.resnet.ResNet` (off, as in MMAction2).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        num_classes: int = 400,
        in_channels: int = 3,
        dropout: float = 0.4,
        init_std: float = 0.01,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = ResNet(depth, in_channels=in_channels, zero_init_residual=zero_init_residual)
        self.head = ClsHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        b, t = x.shape[0], x.shape[2]
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W)
        x = self.backbone(x)  # (B*T, C', H', W')
        return x.unflatten(0, (b, t)).transpose(1, 2)  # (B, C', T, H', W')

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        """Multi-view testing as MMAction2's ``Recognizer2D`` + ``TSNHead`` do it: features, not scores, are
        averaged over all ``V * T`` frames of a sample, then ``head.fc`` is applied once; ``average_clips``
        then acts on that single score (``"prob"``: softmax, ``"score"`` / ``None``: the logits).

        Args:
            x: ``(B, V, C, T, H, W)``.
            average_clips: ``"prob"``, ``"score"`` or ``None``.

        Returns:
            ``(B, num_classes)`` float32.
        """
        check_clip(x, ndim=6)
        b, v = x.shape[:2]
        feats = self.forward_features(x.flatten(0, 1))  # (B*V, C', T, H', W')
        feats = feats.unflatten(0, (b, v)).transpose(1, 2).flatten(2, 3)  # (B, C', V*T, H', W')
        logits = self.forward_head(feats)  # (B, K)
        return average_view_scores(logits.unsqueeze(1), average_clips)


@register_model(input_shape=(3, 8, 224, 224))
def tsn_r18(*, num_classes: int = 400, **kwargs) -> TSN:
    """TSN with a ResNet-18 backbone."""
    return TSN(depth=18, num_classes=num_classes, **kwargs)


@register_model(input_shape=(3, 8, 224, 224))
def tsn_r50(*, num_classes: int = 400, **kwargs) -> TSN:
    """TSN with a ResNet-50 backbone (MMAction2 ``tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb``)."""
    return TSN(depth=50, num_classes=num_classes, **kwargs)
