"""Temporal adaptive module (TAM: Temporal Adaptive Module for Video Recognition, arXiv:2005.06803)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError

__all__ = ["TAM"]


class TAM(nn.Module):
    """Video-adaptive temporal convolution of stacked frames ``(B * T, C, H, W)``.

    From the spatially pooled map ``(B, C, T)``:

    - the **local** branch ``L`` (conv1d over time ``C -> C / beta``, BN, ReLU, 1x1 conv1d back to C, sigmoid)
      gives a location-sensitive importance map that scales each channel of each frame;
    - the **global** branch ``G`` (FC ``T -> alpha * T``, BN, ReLU, FC ``-> K``, softmax) gives, for every
      (clip, channel), a K-tap temporal kernel, applied as a depthwise temporal convolution (stride 1,
      zero padding ``K // 2``) to the re-weighted frames.

    Layer names and layout match MMAction2's ``TAM`` (``G.0``, ``G.1``, ``G.3``, ``L.0``, ``L.1``, ``L.3``).

    Args:
        in_channels: C.
        num_segments: T (fixed: ``G`` starts with a T-wide FC layer).
        alpha: width multiplier of ``G``'s hidden layer.
        adaptive_kernel_size: K.
        beta: channel reduction of ``L``.
        conv1d_kernel_size: temporal kernel of ``L``'s first conv.
    """

    def __init__(
        self,
        in_channels: int,
        num_segments: int,
        *,
        alpha: int = 2,
        adaptive_kernel_size: int = 3,
        beta: int = 4,
        conv1d_kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.padding = adaptive_kernel_size // 2
        self.G = nn.Sequential(
            nn.Linear(num_segments, num_segments * alpha, bias=False),
            nn.BatchNorm1d(num_segments * alpha),
            nn.ReLU(inplace=True),
            nn.Linear(num_segments * alpha, adaptive_kernel_size, bias=False),
            nn.Softmax(-1),
        )
        self.L = nn.Sequential(
            nn.Conv1d(
                in_channels, in_channels // beta, conv1d_kernel_size, padding=conv1d_kernel_size // 2, bias=False
            ),
            nn.BatchNorm1d(in_channels // beta),
            nn.ReLU(inplace=True),
            nn.Conv1d(in_channels // beta, in_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor, num_segments: int | None = None) -> torch.Tensor:
        """``(B * T, C, H, W)`` -> same shape."""
        t = self.num_segments
        if num_segments is not None and num_segments != t:
            raise InputError(f"this TAM was built for num_segments={t} frames, got T={num_segments}")
        nt, c, h, w = x.shape
        b = nt // t
        x5 = x.view(b, t, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
        pooled = x5.mean(dim=(3, 4))  # (B, C, T)
        kernel = self.G(pooled.reshape(b * c, t))  # (B*C, K)
        importance = self.L(pooled)  # (B, C, T)
        x5 = x5 * importance[..., None, None]
        y = F.conv2d(
            x5.reshape(1, b * c, t, h * w),
            kernel.view(b * c, 1, -1, 1),
            padding=(self.padding, 0),
            groups=b * c,
        )
        return y.view(b, c, t, h, w).transpose(1, 2).reshape(nt, c, h, w)
