"""Temporal relation consensus (TRN: Temporal Relational Reasoning in Videos, arXiv:1711.08496).

Both modules take per-frame embeddings ``(B, T, D)`` and return class scores ``(B, num_classes)``; names and
layout follow MMAction2's ``RelationModule`` / ``RelationModuleMultiScale``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from vidlab.errors import InputError

__all__ = ["RelationModule", "RelationModuleMultiScale"]


def _fusion(in_features: int, hidden: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def _reset_last(seq: nn.Sequential, num_classes: int) -> None:
    old = seq[-1]
    seq[-1] = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)


class RelationModule(nn.Module):
    """Single-scale relation: an MLP over the concatenated embeddings of all T frames (bottleneck 512)."""

    def __init__(self, hidden_dim: int, num_segments: int, num_classes: int) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.classifier = _fusion(num_segments * hidden_dim, 512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.flatten(1))

    def reset_classifier(self, num_classes: int) -> None:
        _reset_last(self.classifier, num_classes)


class RelationModuleMultiScale(nn.Module):
    """Multi-scale relations: for every scale s = T, T-1, ..., 2, an MLP (bottleneck 256) scores ordered
    s-frame subsets; the scores of all scales are summed.

    Scale T has one subset (all frames). For smaller scales, ``max_subsample`` (3) of the ``C(T, s)`` subsets
    are drawn at random per forward pass in training, as in the reference. In eval mode the reference draws
    at random too (its test scores vary between runs); here eval uses one fixed draw, made at construction
    from a seeded generator, so test results are reproducible. :meth:`set_relations` sets the eval draw
    explicitly (e.g. to replay the reference's).

    Args:
        hidden_dim: D, size of each frame's embedding.
        num_segments: T.
        num_classes: outputs of each scale's MLP.
        max_subsample: subsets scored per scale below T.
        seed: seed of the fixed eval draw.
    """

    def __init__(
        self, hidden_dim: int, num_segments: int, num_classes: int, max_subsample: int = 3, seed: int = 0
    ) -> None:
        super().__init__()
        if num_segments < 2:
            raise InputError(f"TRN needs at least 2 segments, got {num_segments}")
        self.num_segments = num_segments
        self.scales = list(range(num_segments, 1, -1))
        self.relations = [list(itertools.combinations(range(num_segments), s)) for s in self.scales]
        self.subsample = [min(max_subsample, len(r)) for r in self.relations]
        self.fc_fusion_scales = nn.ModuleList(_fusion(s * hidden_dim, 256, num_classes) for s in self.scales)
        gen = torch.Generator().manual_seed(seed)
        self.eval_relations = [self._draw(i, gen) for i in range(len(self.scales))]

    def _draw(self, scale_id: int, generator: torch.Generator | None = None) -> list[int]:
        if scale_id == 0:
            return [0]
        perm = torch.randperm(len(self.relations[scale_id]), generator=generator, device="cpu")
        return perm[: self.subsample[scale_id]].tolist()

    def set_relations(self, indices: list[list[int]]) -> None:
        """Fix the subsets scored in eval mode: ``indices[i]`` indexes ``itertools.combinations(range(T), s_i)``
        for scale ``s_i = T - i`` (``indices[0]`` must be ``[0]``)."""
        if len(indices) != len(self.scales) or list(indices[0]) != [0]:
            raise InputError(f"expected {len(self.scales)} index lists starting with [0], got {indices!r}")
        for i, idx in enumerate(indices):
            if any(not 0 <= j < len(self.relations[i]) for j in idx):
                raise InputError(f"relation index out of range for scale {self.scales[i]}: {idx}")
        self.eval_relations = [list(map(int, idx)) for idx in indices]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` -> ``(B, num_classes)``."""
        if x.shape[1] != self.num_segments:
            raise InputError(f"this TRN head was built for num_segments={self.num_segments}, got T={x.shape[1]}")
        out = None
        for i, fusion in enumerate(self.fc_fusion_scales):
            chosen = self._draw(i) if self.training else self.eval_relations[i]
            for j in chosen:
                frames = x[:, list(self.relations[i][j])].flatten(1)
                score = fusion(frames)
                out = score if out is None else out + score
        return out

    def reset_classifier(self, num_classes: int) -> None:
        for fusion in self.fc_fusion_scales:
            _reset_last(fusion, num_classes)
