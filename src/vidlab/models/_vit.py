"""What the token-based families (VideoMAE, TimeSformer, VideoMamba, MViT) share: a linear head on pooled tokens,
and position tables that follow the input's token grid and resize when a checkpoint was trained at another clip
size."""

from __future__ import annotations

import math

import torch

from vidlab.models.base import VideoClassifier, check_clip
from vidlab.models.heads import _LinearHead
from vidlab.models.layers.transformer import grid_table

__all__ = ["LinearHead", "TokenClassifier"]


class LinearHead(_LinearHead):
    """Dropout and a linear classifier on pooled ``(B, C)`` features."""

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(self.dropout(x))


class TokenClassifier(VideoClassifier):
    """Base of the transformer / state-space classifiers: ``forward_features`` returns pooled ``(B, C)`` features.

    Subclasses list their position tables in ``grid_tables``: ``{state-dict key: (grid, prefix)}`` where ``grid``
    is the ``(T, H, W)`` token grid the table was built for (``(T, 1, 1)`` for a temporal table, ``(1, H, W)`` for
    a spatial one) and ``prefix`` the number of leading entries that belong to extra tokens (a CLS token) and are
    never resampled. :meth:`adapt_state_dict` resizes a checkpoint's tables to this model's grids (a model trained
    on 16x224 clips fine-tuned on 8x160), and drops fixed tables the model recomputes (``fixed_tables``).
    """

    grid_tables: dict[str, tuple[tuple[int, int, int], int]] = {}
    fixed_tables: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the backbone's pooled ``(B, C')`` features."""
        check_clip(x)
        return self.backbone(x)

    def adapt_state_dict(self, state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """``(state dict, notes)``: tables of other grid sizes resampled with

        :func:`~vidlab.models.layers.transformer.grid_table`, fixed tables dropped; one note per change.

        Raises:
            ValueError: for a table whose size fits no token grid of the model's shape.
        """
        out = dict(state_dict)
        notes = []
        for key in self.fixed_tables:
            if out.pop(key, None) is not None:
                notes.append(f"{key}: fixed table, recomputed for this model's grid")
        own = self.state_dict()
        for key, (grid, prefix) in self.grid_tables.items():
            table = out.get(key)
            if table is None or key not in own or table.shape == own[key].shape:
                continue
            if table.dim() != 3 or table.shape[-1] != own[key].shape[-1]:
                continue  # left for the key report as a shape mismatch
            old = _infer_grid(key, table.shape[1] - prefix, grid)
            out[key] = grid_table(table, old, grid, prefix)
            notes.append(f"{key}: resized from grid {'x'.join(map(str, old))} to grid {'x'.join(map(str, grid))}")
        return out, notes


def _infer_grid(key: str, n: int, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """The ``(T, S, S)`` grid of a checkpoint table of ``n`` positions for a model table on ``grid``: temporal tables
    are ``(n, 1, 1)``, spatial ones square; a space-time table's factorisation ``T * S * S = n`` is the one whose
    ``T / S`` is closest to the model's (16x224 -> 8x14x14 for a model on 4x10x10)."""
    t, h, w = grid
    if h == w == 1:
        return (n, 1, 1)
    candidates = [(n // (s * s), s, s) for s in range(1, math.isqrt(n) + 1) if n % (s * s) == 0]
    if t == 1:
        candidates = [c for c in candidates if c[0] == 1]
    if not candidates:
        raise ValueError(f"{key}: a table of {n} positions fits no token grid of the model's shape {t}x{h}x{w}")
    return min(candidates, key=lambda c: abs(math.log((c[0] / c[1]) / (t / h))))
