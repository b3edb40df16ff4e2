"""Bidirectional Mamba mixer (VideoMamba / Vision Mamba "v2") and RMSNorm, in plain PyTorch.

The mixer projects tokens to ``x`` and a gate ``z`` (``in_proj``), then runs two independent Mamba branches: one
over the sequence, one over the reversed sequence with its own ``conv1d_b``, ``x_proj_b``, ``dt_proj_b``,
``A_b_log`` and ``D_b``. Each branch is a causal depthwise convolution + SiLU, the data-dependent ``dt, B, C``
projections and the selective scan (:func:`~vidlab.models.layers.selective_scan.selective_scan`, ``dt_proj``'s bias
added inside as ``delta_bias`` before softplus), gated by ``silu(z)``. The outputs are summed (the backward one
flipped back; no halving) and projected by ``out_proj``: the arithmetic of the official CUDA fast path
(``mamba_inner_fn_no_out_proj`` per direction).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.models.layers.selective_scan import selective_scan

__all__ = ["BiMamba", "RMSNorm"]


class RMSNorm(nn.Module):
    """``x * rsqrt(mean(x**2) + eps) * weight`` over the last dimension (no bias, no mean subtraction)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


class BiMamba(nn.Module):
    """Bidirectional Mamba over ``(B, L, dim)`` tokens.

    Args:
        dim: token width.
        d_state: SSM state size per channel (16).
        d_conv: causal convolution width (4).
        expand: inner width ``d_inner = expand * dim`` (2).
        dt_rank: rank of the ``dt`` projection (``ceil(dim / 16)`` if None).
        dt_min, dt_max: range of the initial step sizes (Mamba's init of ``dt_proj``'s bias).
    """

    def __init__(
        self,
        dim: int,
        *,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        self.d_inner = d_inner = expand * dim
        self.dt_rank = dt_rank = dt_rank or math.ceil(dim / 16)
        self.d_state = d_state
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        for suffix in ("", "_b"):
            conv = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
            x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
            dt_proj = nn.Linear(dt_rank, d_inner)
            nn.init.uniform_(dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
            dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=1e-4)
            with torch.no_grad():
                dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
            a_log = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)
            setattr(self, f"conv1d{suffix}", conv)
            setattr(self, f"x_proj{suffix}", x_proj)
            setattr(self, f"dt_proj{suffix}", dt_proj)
            self.register_parameter("A_log" if not suffix else "A_b_log", nn.Parameter(a_log))
            self.register_parameter(f"D{suffix}", nn.Parameter(torch.ones(d_inner)))
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    def _branch(self, x: torch.Tensor, z: torch.Tensor, suffix: str) -> torch.Tensor:
        conv = getattr(self, f"conv1d{suffix}")
        x_proj = getattr(self, f"x_proj{suffix}")
        dt_proj = getattr(self, f"dt_proj{suffix}")
        a_log = self.A_log if not suffix else self.A_b_log
        length = x.shape[-1]
        u = F.silu(conv(x)[..., :length])  # causal: left padding only
        dt, b, c = x_proj(u.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight).transpose(1, 2)  # (B, d_inner, L); the bias goes in the scan
        return selective_scan(
            u,
            delta,
            -torch.exp(a_log.float()),
            b.transpose(1, 2),
            c.transpose(1, 2),
            D=getattr(self, f"D{suffix}"),
            z=z,
            delta_bias=dt_proj.bias,
            delta_softplus=True,
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
        y = self._branch(x, z, "")
        y_b = self._branch(x.flip(-1), z.flip(-1), "_b").flip(-1)
        return self.out_proj((y + y_b).transpose(1, 2).to(h.dtype))
