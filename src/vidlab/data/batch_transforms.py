"""Batch-level transforms: uint8 batch to normalized float (:func:`normalize_batch`) and the augmentation that acts
on the normalized batch (:class:`RandomErasing`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vidlab.errors import InputError


def normalize_batch(
    x: torch.Tensor,
    mean: Sequence[float] = (123.675, 116.28, 103.53),
    std: Sequence[float] = (58.395, 57.12, 57.375),
    dtype: torch.dtype = torch.float32,
    contiguous: bool = False,
) -> torch.Tensor:
    """Converts a collated uint8 batch to normalized float with channels moved before time.

    ``(B, V, T, H, W, C) -> (B, V, C, T, H, W)`` and ``(B, T, H, W, C) -> (B, C, T, H, W)``
    (generally, the last axis moves to position -4). Computes ``(x - mean) / std`` like
    MMAction2's data preprocessor. Call it after moving the uint8 batch to the device.

    Args:
        x: uint8 (or float) tensor with channels last.
        mean: Per-channel mean, in the 0-255 range.
        std: Per-channel standard deviation.
        dtype: Output floating dtype.
        contiguous: By default the result is a permuted view of a channels-last buffer, i.e. in
            ``torch.channels_last_3d`` layout once reshaped to ``(B * V, C, T, H, W)`` (which is
            free). Set True for a standard contiguous tensor.

    Returns:
        Normalized tensor of ``dtype``.
    """
    if x.ndim < 4 or x.shape[-1] != len(mean) or len(mean) != len(std):
        raise InputError(f"normalize_batch expects (..., T, H, W, C) with C={len(mean)}, got {tuple(x.shape)}")
    if x.is_floating_point():
        x = x.to(dtype)
    mean_t = torch.tensor(mean, dtype=dtype, device=x.device)
    std_t = torch.tensor(std, dtype=dtype, device=x.device)
    out = torch.sub(x, mean_t).div_(std_t)  # uint8 - float promotes: one pass to float, one in place
    out = out.movedim(-1, -4)
    return out.contiguous() if contiguous else out


# --------------------------------------------------------------------------- batch-level training augmentation


class RandomErasing:
    """Random erasing of normalized training clips (timm's ``RandomErasing`` in the clip form VideoMAE and VideoMamba
    fine-tune with: one box for all frames of a clip).

    Acts on a normalized float batch ``(N, C, T, H, W)`` (after :func:`normalize_batch`, views flattened into the
    batch), so the noise is in units of the normalization's standard deviation, as in the references, which erase
    after normalizing. Each clip, independently, is erased with probability ``prob``: ``k`` boxes with ``k`` drawn
    from ``[1, count]``; a box has area ``U(min_area, max_area) * H * W / k`` and aspect ratio (h / w)
    log-uniform in ``[min_aspect, max_aspect]``, sides rounded, and is placed uniformly where it fits (up to 100
    tries; none fits: that box is skipped). The box is the same on every frame; its content is, by ``mode``:
    ``pixel`` fresh standard-normal noise per pixel, channel and frame; ``rand`` one normal value per channel and
    frame; ``const`` 0 (the mean colour).

    Args:
        prob: probability of erasing a clip.
        mode: ``pixel``, ``rand`` or ``const``.
        count: largest number of boxes per clip.
        min_area, max_area: range of the erased fraction of the frame.
        min_aspect: smallest aspect ratio; ``max_aspect`` (None: ``1 / min_aspect``) the largest.
        generator: torch CPU generator of the random draws; None: torch's global ones (seeded by a training run and
            saved in its checkpoints; the noise then comes from the generator of the clips' device).
    """

    MODES = ("pixel", "rand", "const")

    def __init__(
        self,
        prob: float = 0.25,
        mode: str = "pixel",
        count: int = 1,
        min_area: float = 0.02,
        max_area: float = 1 / 3,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if mode not in self.MODES:
            raise InputError(f"mode must be one of {list(self.MODES)}, got {mode!r}")
        if not 0 <= prob <= 1:
            raise InputError(f"prob must be in [0, 1], got {prob!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(f"count must be a positive int, got {count!r}")
        if not 0 < min_area <= max_area <= 1:
            raise InputError(f"min_area and max_area must satisfy 0 < min <= max <= 1, got {min_area}, {max_area}")
        if min_aspect <= 0 or (max_aspect is not None and max_aspect < min_aspect):
            raise InputError(f"min_aspect and max_aspect must satisfy 0 < min <= max, got {min_aspect}, {max_aspect}")
        max_aspect = 1 / min_aspect if max_aspect is None else max_aspect
        self.prob, self.mode, self.count = float(prob), mode, count
        self.min_area, self.max_area = float(min_area), float(max_area)
        self.min_aspect, self.max_aspect = float(min_aspect), float(max_aspect)
        self.generator = generator

    def __repr__(self) -> str:
        return (
            f"RandomErasing(prob={self.prob}, mode={self.mode!r}, count={self.count}, min_area={self.min_area}, "
            f"max_area={self.max_area}, min_aspect={self.min_aspect}, max_aspect={self.max_aspect})"
        )

    def _uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator, dtype=torch.float64))

    def _randint(self, low: int, high: int) -> int:
        """An int in ``[low, high]`` (both included)."""
        return int(torch.randint(low, high + 1, (), generator=self.generator))

    def boxes(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """The boxes ``(top, left, h, w)`` of one clip (empty: not erased)."""
        if self._uniform() >= self.prob:
            return []
        count = self.count if self.count == 1 else self._randint(1, self.count)
        log_aspect = (math.log(self.min_aspect), math.log(self.max_aspect))
        out = []
        for _ in range(count):
            for _ in range(100):
                area = self._uniform(self.min_area, self.max_area) * height * width / count
                aspect = math.exp(self._uniform(*log_aspect))
                h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
                if w < width and h < height:
                    out.append((self._randint(0, height - h), self._randint(0, width - w), h, w))
                    break
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Erases boxes of the clips ``x`` ``(N, C, T, H, W)``; returns a new tensor (``x`` itself if nothing is
        erased)."""
        if x.dim() != 5:
            raise InputError(f"RandomErasing expects clips (N, C, T, H, W), got shape {tuple(x.shape)}")
        n, c, t, height, width = x.shape
        out = x
        for i in range(n):
            for top, left, h, w in self.boxes(height, width):
                if out is x:
                    out = x.clone()
                if self.mode == "const":
                    fill = torch.zeros(())
                else:  # noise drawn where the clips are, unless a (CPU) generator is given
                    size = (c, t, h, w) if self.mode == "pixel" else (c, t, 1, 1)
                    where = x.device if self.generator is None else self.generator.device
                    fill = torch.randn(size, generator=self.generator, device=where)
                out[i, :, :, top : top + h, left : left + w] = fill.to(device=x.device, dtype=x.dtype)
        return out
