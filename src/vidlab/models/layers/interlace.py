"""Temporal interlace (TIN: Temporal Interlacing Network, arXiv:1912.00869), in plain PyTorch.

MMAction2 computes the integer shifts with ``mmcv.ops.tin_shift``, a compiled CUDA/C++ op; here the shift is a
``gather`` along time, so TIN runs (and trains) on any device without custom kernels.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from vidlab.errors import InputError

__all__ = ["OffsetNet", "TemporalInterlace", "WeightNet", "fractional_shift", "group_shift"]

_AUTOCAST = ("cpu", "cuda")  # device types whose autocast the offset computation opts out of


def group_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Integer temporal shift per sample and channel group: ``out[n, t, c] = x[n, t - shift[n, g(c)], c]``.

    Positions whose source frame falls outside ``[0, T)`` are zero. This is the semantics of mmcv's
    ``tin_shift`` (frame ``t`` moves to ``t + shift``).

    Args:
        x: ``(N, T, C, ...)``.
        shift: ``(N, G)`` integer shifts; ``C`` must be a multiple of ``G`` (channel ``c`` is in group
            ``c // (C // G)``).

    Returns:
        Tensor shaped like ``x``.
    """
    n, t, c = x.shape[:3]
    groups = shift.shape[1]
    if c % groups:
        raise InputError(f"{c} channels cannot be split into {groups} shift groups")
    per_channel = shift.long().repeat_interleave(c // groups, dim=1)  # (N, C)
    src = torch.arange(t, device=x.device).view(1, t, 1) - per_channel.unsqueeze(1)  # (N, T, C)
    valid = (src >= 0) & (src < t)
    index = src.clamp(0, t - 1)
    extra = x.shape[3:]
    index = index.view(n, t, c, *([1] * len(extra))).expand_as(x)
    valid = valid.view(n, t, c, *([1] * len(extra)))
    return torch.gather(x, 1, index) * valid.to(x.dtype)


def fractional_shift(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Shift ``(N, T, C, ...)`` by real-valued per-group offsets ``(N, G)``, linearly interpolating between the two
    nearest integer shifts; differentiable with respect to ``offset`` (through the interpolation weights)."""
    n, t, c = x.shape[:3]
    groups = offset.shape[1]
    low = torch.floor(offset)
    w_high = offset - low  # weight of the shift by low + 1
    out_low = group_shift(x, low.int())
    out_high = group_shift(x, low.int() + 1)
    shape = (n, 1, c) + (1,) * (x.dim() - 3)
    w_high = w_high.repeat_interleave(c // groups, dim=1).view(shape).to(x.dtype)  # weights from float32 offsets
    return (1 - w_high) * out_low + w_high * out_high


class OffsetNet(nn.Module):
    """Per-clip temporal offsets in ``(-2, 2)``: conv1d over time of the pooled channels, two FC layers."""

    def __init__(self, in_channels: int, groups: int, num_segments: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 1, 3, padding=1)
        self.fc1 = nn.Linear(num_segments, num_segments)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(num_segments, groups)
        nn.init.constant_(self.fc2.bias, 0.5108)  # 4 * (sigmoid(0.5108) - 0.5) = 0.5 frame at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` -> offsets ``(N, groups)``."""
        x = self.conv(x).flatten(1)  # (N, T)
        x = self.fc2(self.relu(self.fc1(x)))
        return 4 * (torch.sigmoid(x) - 0.5)


class WeightNet(nn.Module):
    """Per-frame weights in ``(0, 2)`` for each offset group: conv1d over time, ``2 * sigmoid``."""

    def __init__(self, in_channels: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, groups, 3, padding=1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` -> weights ``(N, T, groups)``."""
        return 2 * torch.sigmoid(self.conv(x)).transpose(1, 2)


class TemporalInterlace(nn.Module):
    """Learned fractional temporal shift of the first ``C // shift_div`` channels of stacked frames.

    The shifted channels are split into 4 groups: groups 0 and 1 move by the two offsets ``o0, o1`` predicted by
    :class:`OffsetNet` for the clip, groups 2 and 3 by ``-o0, -o1`` (interlacing past and future); each frame of
    group ``g`` is then scaled by the :class:`WeightNet` weight of offset ``g % 2``. The other channels pass
    unchanged. Offsets and weights are computed from the spatially pooled shifted channels. This follows
    MMAction2's ``TemporalInterlace`` (two deformable groups) exactly.

    Args:
        in_channels: channels of the input frames.
        num_segments: frames per clip (fixed: :class:`OffsetNet` has a ``num_segments``-wide FC layer).
        shift_div: a ``1 / shift_div`` share of the channels is interlaced (4 in MMAction2's TIN configs).
        init: ``"tsm"`` (default): the last layers of the offset and weight nets start at zero weight, so every
            clip starts with the same offsets, +-0.5 frame (an equal mix of each frame and its neighbour, from the
            ``fc2`` bias), and weights of exactly 1; ``"mmaction2"``: PyTorch's default init for those layers, as
            MMAction2 (offsets and weights that differ at random from clip to clip at the start). Only training
            from scratch sees the difference: on SynthActions TIN learns with ``"tsm"`` and stays near chance
            with ``"mmaction2"`` (BENCHMARKS.md).
    """

    groups = 2
    INITS = ("tsm", "mmaction2")

    def __init__(self, in_channels: int, num_segments: int, shift_div: int = 4, init: str = "tsm") -> None:
        super().__init__()
        if init not in self.INITS:
            raise InputError(f"TIN init must be one of {self.INITS}, got {init!r}")
        self.num_segments = num_segments
        self.fold = in_channels // shift_div
        if self.fold % (2 * self.groups):
            raise InputError(f"{in_channels} // shift_div={shift_div} channels must be a multiple of 4 for TIN")
        self.offset_net = OffsetNet(self.fold, self.groups, num_segments)
        self.weight_net = WeightNet(self.fold, self.groups)
        if init == "tsm":
            nn.init.zeros_(self.offset_net.fc2.weight)
            nn.init.zeros_(self.weight_net.conv.weight)

    def forward(self, x: torch.Tensor, num_segments: int | None = None) -> torch.Tensor:
        """``(B * T, C, H, W)`` -> same shape."""
        t = self.num_segments
        if num_segments is not None and num_segments != t:
            raise InputError(f"this TIN block was built for num_segments={t} frames, got T={num_segments}")
        nt, c, h, w = x.shape
        part = x[:, : self.fold].reshape(nt // t, t, self.fold, h, w)  # (B, T, F, H, W)
        # Offsets and weights in float32 even under autocast: in bfloat16 an offset near 1 moves in steps of 1/128.
        with torch.autocast(x.device.type, enabled=False) if x.device.type in _AUTOCAST else contextlib.nullcontext():
            pooled = part.to(torch.promote_types(part.dtype, torch.float32)).mean(dim=(3, 4)).transpose(1, 2)
            offset = self.offset_net(pooled)  # (B, 2)
            weight = self.weight_net(pooled)  # (B, T, 2)
        shifted = fractional_shift(part, torch.cat([offset, -offset], dim=1))  # 4 groups: o0, o1, -o0, -o1
        per_channel = weight.repeat(1, 1, 2).repeat_interleave(self.fold // 4, dim=2)  # (B, T, F): w0 w1 w0 w1
        shifted = shifted * per_channel[..., None, None].to(part.dtype)
        return torch.cat([shifted.reshape(nt, self.fold, h, w), x[:, self.fold :]], dim=1)
