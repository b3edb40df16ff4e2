"""Temporal shift (TSM: Temporal Shift Module for Efficient Video Understanding, arXiv:1811.08383)."""

from __future__ import annotations

import torch

from vidlab.errors import InputError

__all__ = ["temporal_shift"]


def _shift(x: torch.Tensor, num_segments: int, fold: int, reverse: bool) -> torch.Tensor:
    """Shift channel group ``[0, fold)`` one step toward the past and ``[fold, 2*fold)`` one step toward the
    future (swapped when ``reverse``); the rest is copied. Vacated positions are zero."""
    nt, c, h, w = x.shape
    x5 = x.view(nt // num_segments, num_segments, c, h, w)  # (B, T, C, H, W)
    out = torch.empty_like(x)  # keeps channels_last
    o5 = out.view(nt // num_segments, num_segments, c, h, w)
    past, future = (slice(fold, 2 * fold), slice(0, fold)) if reverse else (slice(0, fold), slice(fold, 2 * fold))
    o5[:, :-1, past] = x5[:, 1:, past]  # frame t sees frame t+1
    o5[:, -1, past] = 0
    o5[:, 1:, future] = x5[:, :-1, future]  # frame t sees frame t-1
    o5[:, 0, future] = 0
    o5[:, :, 2 * fold :] = x5[:, :, 2 * fold :]
    return out


class _TemporalShift(torch.autograd.Function):
    """The shift is linear; its gradient is the shift in the opposite direction. Writing that out avoids the
    autograd graph of the slice assignments, which made forward + backward about 4-5x slower on CPU."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, num_segments: int, fold: int, reverse: bool) -> torch.Tensor:
        ctx.args = (num_segments, fold, reverse)
        return _shift(x, num_segments, fold, reverse)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        num_segments, fold, reverse = ctx.args
        return _TemporalShift.apply(grad, num_segments, fold, not reverse), None, None, None


def temporal_shift(x: torch.Tensor, num_segments: int, shift_div: int = 8) -> torch.Tensor:
    """Shift part of the channels of stacked frames along time, at zero FLOPs.

    With ``fold = C // shift_div``, on each clip of ``num_segments`` consecutive frames:

    - channels ``[0, fold)``: frame t takes the values of frame t+1 (shifted toward the past), the last
      frame gets zeros;
    - channels ``[fold, 2*fold)``: frame t takes the values of frame t-1 (shifted toward the future), the
      first frame gets zeros;
    - channels ``[2*fold, C)``: unchanged.

    This is the convention of MMAction2's ``TemporalShift.shift`` (and of the TSM authors' code), so weights
    trained there work here.

    Args:
        x: ``(B * num_segments, C, H, W)``, frames of one clip consecutive; any memory format.
        num_segments: frames per clip (T).
        shift_div: ``1 / shift_div`` of the channels is shifted in each direction.

    Returns:
        Tensor of the same shape, dtype and memory format as ``x``.
    """
    if x.dim() != 4:
        raise InputError(f"temporal_shift expects (B*T, C, H, W), got shape {tuple(x.shape)}")
    if num_segments < 1 or x.shape[0] % num_segments:
        raise InputError(f"batch dimension {x.shape[0]} is not a multiple of num_segments={num_segments}")
    if shift_div < 1:
        raise InputError(f"shift_div must be >= 1, got {shift_div}")
    fold = x.shape[1] // shift_div
    return _TemporalShift.apply(x, num_segments, fold, False)
