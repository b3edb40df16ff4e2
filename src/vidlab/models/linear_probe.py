"""A linear classifier over extracted features (linear probing of a frozen backbone's ``vidlab extract`` output).

Not a video model and not in the registry: ``model.name: linear_probe`` with ``data.format: features`` builds it
(:func:`vidlab.engine.builders.build_model`).
"""

from __future__ import annotations

import torch

from vidlab.models.heads import _LinearHead, average_view_scores

__all__ = ["LinearProbe"]


class LinearProbe(_LinearHead):
    """Mean over everything but the channels, dropout, one linear layer.

    Accepts ``(B, C)``, ``(B, N, C)`` (N views of a video: their features are averaged, TSN's consensus) or
    ``(B, N, C, T', H', W')`` maps (``vidlab extract --pool none``). Outputs logits ``(B, num_classes)``.
    """

    num_layers = 0

    def __init__(self, *, in_features: int, num_classes: int, dropout: float = 0.0, init_std: float = 0.01) -> None:
        super().__init__(in_features, num_classes, dropout=dropout, init_std=init_std)

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x
        if x.dim() == 3:
            return x.mean(dim=1)  # (B, N, C) -> (B, C)
        return x.flatten(3).mean(dim=(1, 3))  # (B, N, C, T', H', W') -> (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(x)))

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        """``x`` ``(B, V, ...)``: V inputs per sample, scored one by one and fused like test views."""
        b, v = x.shape[:2]
        return average_view_scores(self(x.flatten(0, 1)).view(b, v, -1), average_clips)

    def layer_id(self, name: str) -> int:
        return 1

    def no_weight_decay(self) -> set[str]:
        return set()
