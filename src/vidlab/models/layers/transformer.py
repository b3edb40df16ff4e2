"""Building blocks shared by the video transformers: attention on ``scaled_dot_product_attention``, the MLP, stochastic
depth, the pre-norm block and position tables (fixed sine-cosine, and resizing a table laid out on a token grid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError

__all__ = [
    "Attention",
    "Block",
    "DropPath",
    "Mlp",
    "grid_table",
    "init_vit_weights",
    "resize_grid_table",
    "sincos_table",
    "stochastic_depth",
    "token_grid",
]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p`` (and scale the rest by
    ``1 / (1 - p)``); the identity in eval mode or for ``p == 0``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head self-attention over ``(B, N, C)`` tokens with one fused ``qkv`` projection.

    Args:
        dim: token width.
        num_heads: heads (``dim`` must be divisible by it).
        qkv_bias: a bias on the ``qkv`` projection.
        qv_bias: instead of one ``qkv`` bias, separate ``q_bias`` and ``v_bias`` and no key bias (VideoMAE / BEiT).
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        qv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise InputError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and not qv_bias)
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if hasattr(self, "q_bias"):
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        q, k, v = qkv.view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> dropout -> ``fc2`` -> dropout."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``, each branch optionally
    scaled by a learned per-channel ``gamma_1`` / ``gamma_2`` (layer scale, ``init_values > 0``) and dropped by
    stochastic depth.

    Args:
        dim, num_heads, qkv_bias, qv_bias: as :class:`Attention`.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
        norm_eps: LayerNorm epsilon.
        drop: dropout after the attention projection and in the MLP.
        attn_drop: attention-weight dropout.
        drop_path: stochastic-depth probability of this block.
        init_values: initial layer scale; 0 for none.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qv_bias: bool = False,
        norm_eps: float = 1e-6,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qv_bias=qv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path)
        if init_values > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "gamma_1"):
            x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
            return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def sincos_table(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed sine-cosine position table of "Attention Is All You Need", ``(1, num_positions, dim)`` float32:
    entry ``(p, i)`` is ``sin`` (even ``i``) or ``cos`` (odd ``i``) of ``p / 10000 ** (2 * (i // 2) / dim)``,
    computed in float64 (VideoMAE's table over the flattened token index)."""
    i = torch.arange(dim, dtype=torch.float64)
    freq = torch.pow(10000.0, -(i - i % 2) / dim)
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] * freq[None]
    table = torch.where(i.long() % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.float().unsqueeze(0)


def grid_table(
    table: torch.Tensor, grid: tuple[int, int, int], new_grid: tuple[int, int, int], prefix: int = 0
) -> torch.Tensor:
    """``table`` (built for ``grid``) for an input whose token grid is ``new_grid``: itself, or resampled. The first
    ``prefix`` entries (extra tokens such as CLS) are kept as they are."""
    if tuple(grid) == tuple(new_grid):
        return table
    return torch.cat((table[:, :prefix], resize_grid_table(table[:, prefix:], grid, new_grid)), dim=1)


def resize_grid_table(
    table: torch.Tensor, old_grid: tuple[int, int, int], new_grid: tuple[int, int, int]
) -> torch.Tensor:
    """Resample a position table laid out on a ``(T, H, W)`` token grid to another grid.

    ``table`` is ``(1, T*H*W, C)`` with ``W`` fastest. The spatial axes are resampled bicubically (per time step,
    ``align_corners=False``, as MMAction2 and timm resize ViT tables), then the temporal axis linearly. At the
    same grid the result equals the table (bicubic and linear weights at the source positions are exactly 0 and 1);
    callers skip the call when the grids agree.

    Raises:
        ValueError: if the table does not hold ``T*H*W`` entries.
    """
    t, h, w = old_grid
    if table.dim() != 3 or table.shape[1] != t * h * w:
        raise InputError(f"position table of shape {tuple(table.shape)} does not cover a {t}x{h}x{w} token grid")
    nt, nh, nw = new_grid
    c = table.shape[-1]
    dtype = table.dtype
    x = table.float().view(t, h, w, c).permute(0, 3, 1, 2)  # (T, C, H, W)
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False)
    x = x.permute(2, 3, 1, 0).reshape(nh * nw, c, t)  # (T, C, H, W) -> (H*W, C, T) for a 1-D linear resample
    x = F.interpolate(x, size=nt, mode="linear", align_corners=False)
    x = x.view(nh, nw, c, nt).permute(3, 2, 0, 1)
    return x.permute(0, 2, 3, 1).reshape(1, nt * nh * nw, c).to(dtype)


def _check_divisible(size: int, patch: int, what: str) -> int:
    if size % patch:
        raise InputError(f"{what} {size} is not divisible by the patch size {patch}")
    return size // patch


def token_grid(x: torch.Tensor, patch: tuple[int, int, int]) -> tuple[int, int, int]:
    """The ``(T', H', W')`` token grid of a ``(B, C, T, H, W)`` clip cut into ``patch`` = ``(t, h, w)`` patches.

    Raises:
        ValueError: if a clip dimension is not a multiple of the patch size (naming which).
    """
    return (
        _check_divisible(x.shape[2], patch[0], "clip length"),
        _check_divisible(x.shape[3], patch[1], "height"),
        _check_divisible(x.shape[4], patch[2], "width"),
    )


def stochastic_depth(rate: float, depth: int) -> list[float]:
    """Per-block drop-path probabilities rising linearly from 0 to ``rate``."""
    return [rate * i / max(depth - 1, 1) for i in range(depth)]


def trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Truncated normal init at +-2 std."""
    return nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


def init_vit_weights(module: nn.Module) -> None:
    """ViT init (timm's): Linear weights truncated normal std 0.02, zero biases; LayerNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
