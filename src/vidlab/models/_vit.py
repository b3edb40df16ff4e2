"""What the token-based families (VideoMAE, TimeSformer, VideoMamba, MViT) share: feature maps of patch tokens on
their grid, a linear head on the pooled tokens or the class token, and position tables that follow the input's token
grid and resize when a checkpoint was trained at another clip size."""

from __future__ import annotations

import math

import torch

from vidlab.errors import InputError
from vidlab.models.base import VideoClassifier, check_clip, check_map
from vidlab.models.heads import _LinearHead
from vidlab.models.layers.transformer import grid_table

__all__ = ["LinearHead", "TokenClassifier"]


class LinearHead(_LinearHead):
    """Dropout and a linear classifier on pooled ``(B, C)`` features."""

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(self.dropout(x))


class TokenClassifier(VideoClassifier):
    """Base of the transformer / state-space classifiers.

    The backbone is a :class:`~vidlab.models.base.StageBackbone` whose stages are the blocks: its ``stage_map``
    puts a block's patch tokens on the ``(T', H', W')`` token grid, and its output is ``(map, cls)``: the patch
    tokens after the final per-token norm (where the reference normalises every token; else the last block's
    output) as ``(B, C, T', H', W')``, and the class token the reference classifies, ``(B, C)``, or ``None``.

    ``forward_features`` returns the map with the class token attached as ``feats.cls_token``; ``forward`` hands it
    to ``forward_head`` explicitly. :meth:`pool` reads the class token out (families without one override it), then
    ``head`` applies dropout and ``fc``. ``forward_intermediates`` gives block outputs on the grid, before the final
    norm; layer ids: patch embedding, position tables and class token 0, block k k, final norm and head L + 1.

    Subclasses list their position tables in ``grid_tables``: ``{state-dict key: (grid, prefix)}`` where ``grid``
    is the ``(T, H, W)`` token grid the table was built for (``(T, 1, 1)`` for a temporal table, ``(1, H, W)`` for
    a spatial one) and ``prefix`` the number of leading entries that belong to extra tokens (a CLS token) and are
    never resampled. :meth:`adapt_state_dict` resizes a checkpoint's tables to this model's grids (a model trained
    on 16x224 clips fine-tuned on 8x160), and drops fixed tables the model recomputes (``fixed_tables``).
    """

    grid_tables: dict[str, tuple[tuple[int, int, int], int]] = {}
    fixed_tables: tuple[str, ...] = ()
    stem_prefixes = ("backbone.patch_embed", "backbone.cls_token", "backbone.pos_embed")
    stage_prefixes = ("backbone.blocks.{i}",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the patch-token map ``(B, C', T', H', W')`` (with ``.cls_token`` where the model
        classifies one)."""
        check_clip(x)
        feats, cls = self.backbone(x)
        if cls is not None:
            feats.cls_token = cls
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x)
        feats, cls = self.backbone(x)
        return self.forward_head(feats, cls_token=cls)

    def forward_head(
        self, feats: torch.Tensor, pre_logits: bool = False, cls_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_map(feats)
        return self.head(self.pool(feats, cls_token), pre_logits=pre_logits)

    def pool(self, feats: torch.Tensor, cls_token: torch.Tensor | None = None) -> torch.Tensor:
        """The ``(B, C)`` feature the classifier takes: here the class token, ``cls_token`` or ``feats.cls_token``.

        Raises:
            ValueError: if there is neither.
        """
        cls = cls_token if cls_token is not None else getattr(feats, "cls_token", None)
        if cls is None:
            raise InputError(
                f"{type(self).__name__} classifies its class token: pass cls_token= to forward_head, or the map "
                "forward_features returned (it carries the token as feats.cls_token)"
            )
        return cls

    def adapt_state_dict(
        self, state_dict: dict[str, torch.Tensor], source_frames: int | None = None
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """``(state dict, notes)``: tables of other grid sizes resampled with

        :func:`~vidlab.models.layers.transformer.grid_table`, fixed tables dropped; one note per change.
        ``source_frames``: the frames of the clips the checkpoint was built for (VideoMamba's ``--orig_t_size``),
        which says how a space-time table is laid out; without it the layout is inferred (:func:`_infer_grid`).

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
            tubelet = getattr(getattr(self, "backbone", None), "patch", (1,))[0]
            tokens_t = source_frames // tubelet if source_frames else None
            old = _infer_grid(key, table.shape[1] - prefix, grid, tokens_t)
            out[key] = grid_table(table, old, grid, prefix)
            notes.append(f"{key}: resized from grid {'x'.join(map(str, old))} to grid {'x'.join(map(str, grid))}")
        return out, notes


def _infer_grid(key: str, n: int, grid: tuple[int, int, int], tokens_t: int | None = None) -> tuple[int, int, int]:
    """The ``(T, S, S)`` grid of a checkpoint table of ``n`` positions for a model table on ``grid``: temporal tables
    are ``(n, 1, 1)``, spatial ones square. A space-time table has ``tokens_t`` time steps when that is known (the
    checkpoint's frames / tubelet); otherwise its factorisation ``T * S * S = n`` is the one whose ``T / S`` is
    closest to the model's (16x224 -> 8x14x14 for a model on 4x10x10). That guess fails for a table of another
    length at the same size (8x224 into a 32-frame model reads as 16x7x7): give the checkpoint's frames then."""
    t, h, w = grid
    if h == w == 1:
        return (n, 1, 1)
    if tokens_t is not None and t > 1:
        side = math.isqrt(n // tokens_t) if n % tokens_t == 0 else 0
        if side * side * tokens_t != n:
            raise InputError(f"{key}: a table of {n} positions is no {tokens_t} x S x S token grid")
        return (tokens_t, side, side)
    candidates = [(n // (s * s), s, s) for s in range(1, math.isqrt(n) + 1) if n % (s * s) == 0]
    if t == 1:
        candidates = [c for c in candidates if c[0] == 1]
    if not candidates:
        raise InputError(f"{key}: a table of {n} positions fits no token grid of the model's shape {t}x{h}x{w}")
    return min(candidates, key=lambda c: abs(math.log((c[0] / c[1]) / (t / h))))
