"""Mixup and CutMix of training batches, with label-smoothed soft targets and the cross-entropy that reads them.

The semantics are timm's ``Mixup`` (the one VideoMAE's and VideoMamba's fine-tuning scripts use), applied to
normalized clips ``(N, C, T, H, W)``:

- a mixing weight ``lam ~ Beta(alpha, alpha)`` is drawn with probability ``prob`` (else ``lam = 1``: no mixing);
  with both ``mixup_alpha`` and ``cutmix_alpha`` > 0, CutMix replaces Mixup with probability ``switch_prob``;
- Mixup: ``x_i <- lam * x_i + (1 - lam) * x_j``; CutMix: a box of ``x_j`` is pasted into ``x_i``, and ``lam`` is then
  corrected to the share of ``x_i`` left visible, ``1 - box area / (H * W)``. The box is cut in ``(H, W)``, the same
  on every frame of the clip;
- the partner ``j`` of sample ``i`` is ``N - 1 - i`` (the batch flipped along its first axis);
- targets: one-hot vectors smoothed to ``off = smoothing / K`` and ``on = 1 - smoothing + off`` (K classes), mixed
  with the same weight: ``lam * y_i + (1 - lam) * y_j``.

``mode`` says how many weights are drawn: ``batch`` one for the whole batch (the references' default), ``elem`` one
per sample, ``pair`` one per pair ``(i, N - 1 - i)`` (both members mix with each other; needs an even batch).

Randomness comes from a torch generator (``generator``; None: torch's global CPU generator, which a training run
seeds and its checkpoints save, so a resumed run draws what an uninterrupted one would). The Beta draws go through a
numpy generator seeded from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.errors import InputError

__all__ = ["MODES", "Mixup", "smooth_one_hot", "soft_target_cross_entropy"]

#: values of ``Mixup(mode=...)``
MODES = ("batch", "pair", "elem")


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Float32 ``(N, num_classes)`` targets of class indices ``labels`` ``(N,)``: ``1 - smoothing + smoothing / K`` at
    the label, ``smoothing / K`` elsewhere (rows sum to 1)."""
    off = smoothing / num_classes
    out = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
    return out.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with probability targets: the batch mean of ``sum_k -targets_k * log_softmax(logits)_k``."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class Mixup:
    """Mixup / CutMix of a batch of clips and their class labels -> ``(mixed clips, soft targets)``.

    Args:
        num_classes: K, the width of the soft targets.
        mixup_alpha: Beta parameter of Mixup's weight; 0 turns Mixup off.
        cutmix_alpha: Beta parameter of CutMix's weight; 0 turns CutMix off.
        cutmix_minmax: ``(low, high)`` box sides as fractions of the frame's: CutMix then cuts a box of random
            sides in that range (turning CutMix on, with ``cutmix_alpha`` taken as 1) instead of one of area
            ``1 - lam``; None: off.
        prob: probability that a batch (``batch``) or a sample (``elem``, ``pair``) is mixed at all.
        switch_prob: probability of CutMix instead of Mixup when both are on.
        mode: ``batch``, ``pair`` or ``elem`` (see the module docstring).
        label_smoothing: smoothing of the one-hot targets (applied whether or not a batch is mixed).
        generator: torch CPU generator of all random draws; None: torch's global one.

    Raises:
        ValueError: neither Mixup nor CutMix is on, an argument is out of range, or an unknown ``mode``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise InputError(f"mixup_alpha and cutmix_alpha must be >= 0, got {mixup_alpha} and {cutmix_alpha}")
        for name, value in (("prob", prob), ("switch_prob", switch_prob), ("label_smoothing", label_smoothing)):
            if not 0 <= value <= 1:
                raise InputError(f"{name} must be in [0, 1], got {value}")
        if cutmix_minmax is not None:
            cutmix_minmax = tuple(float(v) for v in cutmix_minmax)
            if len(cutmix_minmax) != 2 or not 0 < cutmix_minmax[0] <= cutmix_minmax[1] <= 1:
                raise InputError(f"cutmix_minmax must be [low, high] with 0 < low <= high <= 1, got {cutmix_minmax}")
            cutmix_alpha = 1.0  # as timm: the box comes from minmax, the alpha only switches CutMix on
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise InputError("Mixup needs mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax")
        if num_classes < 1:
            raise InputError(f"num_classes must be positive, got {num_classes}")
        self.num_classes, self.mode, self.generator = num_classes, mode, generator
        self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax = float(mixup_alpha), float(cutmix_alpha), cutmix_minmax
        self.prob, self.switch_prob, self.label_smoothing = float(prob), float(switch_prob), float(label_smoothing)

    def __repr__(self) -> str:
        return (
            f"Mixup(num_classes={self.num_classes}, mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
            f"cutmix_minmax={self.cutmix_minmax}, prob={self.prob}, switch_prob={self.switch_prob}, "
            f"mode={self.mode!r}, label_smoothing={self.label_smoothing})"
        )

    # ----------------------------------------------------------------------------------------- random draws

    def _uniform(self, n: int | None = None) -> np.ndarray | float:
        if n is None:
            return float(torch.rand((), generator=self.generator))
        return torch.rand(n, generator=self.generator, dtype=torch.float64).numpy()

    def _randint(self, low: int, high: int) -> int:
        """An int in ``[low, high)``; ``low`` when the range is empty."""
        return low if high <= low else int(torch.randint(low, high, (), generator=self.generator))

    def _beta(self, alpha: float, n: int | None = None) -> np.ndarray | float:
        seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        draw = np.random.default_rng(seed).beta(alpha, alpha, size=n)
        return draw if n is not None else float(draw)

    def _params_per_batch(self) -> tuple[float, bool]:
        lam, use_cutmix = 1.0, False
        if self._uniform() < self.prob:
            if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
                use_cutmix = self._uniform() < self.switch_prob
                lam = self._beta(self.cutmix_alpha if use_cutmix else self.mixup_alpha)
            elif self.mixup_alpha > 0:
                lam = self._beta(self.mixup_alpha)
            else:
                use_cutmix, lam = True, self._beta(self.cutmix_alpha)
        return float(lam), use_cutmix

    def _params_per_elem(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = self._uniform(n) < self.switch_prob
            lam = np.where(use_cutmix, self._beta(self.cutmix_alpha, n), self._beta(self.mixup_alpha, n))
        elif self.mixup_alpha > 0:
            use_cutmix, lam = np.zeros(n, dtype=bool), self._beta(self.mixup_alpha, n)
        else:
            use_cutmix, lam = np.ones(n, dtype=bool), self._beta(self.cutmix_alpha, n)
        lam = np.where(self._uniform(n) < self.prob, lam, 1.0)
        return lam.astype(np.float64), use_cutmix

    def cutmix_box(self, height: int, width: int, lam: float) -> tuple[tuple[int, int, int, int], float]:
        """A CutMix box ``(y1, y2, x1, x2)`` (ends exclusive) for frames of ``height x width`` and weight ``lam``,
        and ``lam`` corrected to the area the box leaves: ``1 - (y2 - y1) * (x2 - x1) / (height * width)``.

        Without ``cutmix_minmax`` the box has sides ``int(side * sqrt(1 - lam))`` around a uniformly drawn centre,
        clipped to the frame; with it, sides drawn in ``[low * side, high * side)`` at a position that fits.
        """
        if self.cutmix_minmax is not None:
            low, high = self.cutmix_minmax
            cut_h = self._randint(int(height * low), int(height * high))
            cut_w = self._randint(int(width * low), int(width * high))
            y1, x1 = self._randint(0, height - cut_h), self._randint(0, width - cut_w)
            y2, x2 = y1 + cut_h, x1 + cut_w
        else:
            ratio = math.sqrt(1.0 - lam)
            cut_h, cut_w = int(height * ratio), int(width * ratio)
            cy, cx = self._randint(0, height), self._randint(0, width)
            y1, y2 = min(max(cy - cut_h // 2, 0), height), min(max(cy + cut_h // 2, 0), height)
            x1, x2 = min(max(cx - cut_w // 2, 0), width), min(max(cx + cut_w // 2, 0), width)
        return (y1, y2, x1, x2), 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)

    # ----------------------------------------------------------------------------------------- mixing

    def _mix_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam, use_cutmix = self._params_per_batch()
        if lam != 1.0:
            if use_cutmix:
                (y1, y2, x1, x2), lam = self.cutmix_box(x.shape[-2], x.shape[-1], lam)
                x = x.clone()
                x[..., y1:y2, x1:x2] = x.flip(0)[..., y1:y2, x1:x2]
            else:
                x = x * lam + x.flip(0) * (1.0 - lam)
        return x, torch.full((x.shape[0],), lam, dtype=torch.float64)

    def _mix_elem(self, x: torch.Tensor, pair: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        if pair and n % 2:
            raise InputError(f"Mixup mode 'pair' needs an even number of clips, got {n}")
        draws = n // 2 if pair else n
        lam, use_cutmix = self._params_per_elem(draws)
        out = x.clone()
        blend = np.flatnonzero(~use_cutmix & (lam != 1.0))  # Mixup, all at once
        if len(blend):
            i = torch.from_numpy(blend).to(x.device)
            j = n - 1 - i
            w = torch.from_numpy(lam[blend]).to(device=x.device, dtype=x.dtype).view(-1, *[1] * (x.dim() - 1))
            out[i] = x[i] * w + x[j] * (1.0 - w)
            if pair:
                out[j] = x[j] * w + x[i] * (1.0 - w)
        for i in np.flatnonzero(use_cutmix & (lam != 1.0)).tolist():  # CutMix, a box each
            j = n - 1 - i
            (y1, y2, x1, x2), lam[i] = self.cutmix_box(x.shape[-2], x.shape[-1], lam[i])
            out[i, ..., y1:y2, x1:x2] = x[j, ..., y1:y2, x1:x2]
            if pair:
                out[j, ..., y1:y2, x1:x2] = x[i, ..., y1:y2, x1:x2]
        if pair:
            lam = np.concatenate([lam, lam[::-1]])
        return out, torch.from_numpy(np.ascontiguousarray(lam))

    def __call__(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``x`` ``(N, ...)`` (clips ``(N, C, T, H, W)`` for CutMix: the box is cut in the last two axes) with
        its flipped self; returns the mixed clips (a new tensor; ``x`` is left as it was) and float32 soft targets
        ``(N, num_classes)`` on ``labels``' device.

        Args:
            x: float clips.
            labels: int class indices ``(N,)`` (single-label targets).
        """
        if labels.dim() != 1 or labels.is_floating_point() or labels.shape[0] != x.shape[0]:
            raise InputError(
                f"Mixup needs one class index per clip: int labels of shape ({x.shape[0]},), got "
                f"{labels.dtype} {tuple(labels.shape)} (multi-label or regression targets cannot be mixed this way)"
            )
        if self.mode == "batch":
            x, lam = self._mix_batch(x)
        else:
            x, lam = self._mix_elem(x, pair=self.mode == "pair")
        lam = lam.to(device=labels.device, dtype=torch.float32).unsqueeze(1)
        y = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        return x, y * lam + y.flip(0) * (1.0 - lam)
