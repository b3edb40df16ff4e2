"""Token masks for masked video modelling (VideoMAE).

A mask is a bool tensor over the ``(T', H', W')`` token grid flattened with ``W'`` fastest (the order in which a
patch embedding's tokens come); ``True`` = masked (hidden from the encoder, predicted by the decoder).

- **tube** (VideoMAE's default): one spatial mask of ``int(ratio * H' * W')`` positions, chosen uniformly at
  random, repeated on every temporal slice, so a masked patch stays masked through the clip and motion cannot leak
  it from a neighbouring frame;
- **random**: ``int(ratio * T' * H' * W')`` positions of the whole grid.

Both mask the same number of tokens in every sample, which the encoder needs (its batches of visible tokens are
rectangular).
"""

from __future__ import annotations

import torch

from vidlab.errors import InputError

__all__ = ["MASK_TYPES", "mask_batch", "random_mask", "tube_mask"]

MASK_TYPES = ("tube", "random")


def _check(num_frames: int, height: int, width: int, ratio: float) -> None:
    if min(num_frames, height, width) < 1:
        raise InputError(f"the token grid must be positive, got {num_frames}x{height}x{width}")
    if not 0.0 <= ratio < 1.0:
        raise InputError(f"mask ratio must be in [0, 1), got {ratio}")


def _choose(n: int, k: int, generator: torch.Generator | None) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[:k]] = True
    return mask


def tube_mask(
    num_frames: int, height: int, width: int, ratio: float = 0.9, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Tube mask of one sample on a ``num_frames x height x width`` token grid (tubelet / patch units): ``(T'H'W',)``
    bool with ``int(ratio * height * width)`` masked positions per temporal slice, the same in every slice.

    Raises:
        ValueError: for a ratio outside ``[0, 1)`` or an empty grid.
    """
    _check(num_frames, height, width, ratio)
    spatial = _choose(height * width, int(ratio * height * width), generator)
    return spatial.repeat(num_frames)


def random_mask(
    num_frames: int, height: int, width: int, ratio: float = 0.9, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random mask of one sample: ``int(ratio * T'H'W')`` masked positions anywhere on the grid."""
    _check(num_frames, height, width, ratio)
    n = num_frames * height * width
    return _choose(n, int(ratio * n), generator)


def mask_batch(
    batch: int,
    grid: tuple[int, int, int],
    ratio: float,
    kind: str = "tube",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(batch, T'H'W')`` masks of ``kind`` (``tube`` | ``random``), one independent draw per sample.

    Raises:
        ValueError: for an unknown kind.
    """
    if kind not in MASK_TYPES:
        raise InputError(f"unknown mask type {kind!r}; choose one of {list(MASK_TYPES)}")
    fn = tube_mask if kind == "tube" else random_mask
    return torch.stack([fn(*grid, ratio, generator) for _ in range(batch)])
