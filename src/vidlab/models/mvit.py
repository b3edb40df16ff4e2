"""Multiscale Vision Transformers: MViT v1 (Fan et al., ICCV 2021) and MViTv2 (Li et al., CVPR 2022).

A cube-embedding convolution (3x7x7, stride 2x4x4) makes a token grid; CLS first. Each block pools its queries,
keys and values with depthwise 3D convolutions shared across heads (followed by a LayerNorm over the head channels),
so stages shrink the grid (query stride 1x2x2) while widths and heads double. Skip connections are max-pooled to
the query grid.

- **v1** (PyTorchVideo ``mvit_base_16x4/32x3``, PySlowFast ``MVIT_B_*``): separate spatial / temporal / CLS
  absolute position tables; a block keeps its width through attention and widens in its MLP (and a ``proj`` of the
  normalised input on the skip path) at the end of the block before a stage; queries are pooled only in the blocks
  with a query stride.
- **v2** (MMAction2 ``mvit-small/base``, PySlowFast ``MVITv2_*``): no absolute positions; decomposed relative
  position tables (``rel_pos_t/h/w``) added to the attention logits; residual pooling (the pooled query added to the
  attention output); widening inside the attention of the first block of a stage; every block pools queries.

Attention runs on ``scaled_dot_product_attention`` (the relative positions as an additive bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models._vit import LinearHead, TokenClassifier
from vidlab.models.base import StageBackbone
from vidlab.models.layers.transformer import (
    DropPath,
    Mlp,
    grid_table,
    init_vit_weights,
    stochastic_depth,
    trunc_normal_,
)

__all__ = ["MViT", "MViTBackbone", "mvit_schedule"]

Triple = tuple[int, int, int]

ARCHS = {  # MMAction2's arch table: embed_dims, num_layers, num_heads, downscale_indices
    "tiny": dict(embed_dims=96, num_layers=10, num_heads=1, downscale_indices=(1, 3, 8)),
    "small": dict(embed_dims=96, num_layers=16, num_heads=1, downscale_indices=(1, 3, 14)),
    "base": dict(embed_dims=96, num_layers=24, num_heads=1, downscale_indices=(2, 5, 21)),
    "large": dict(embed_dims=144, num_layers=48, num_heads=2, downscale_indices=(2, 8, 44)),
}


@dataclass(frozen=True)
class BlockSpec:
    """One block's layout: widths, heads, pooling kernels (``None``: that tensor is not pooled) and strides."""

    dim_in: int
    dim_out: int
    heads: int
    kernel_q: Triple | None
    stride_q: Triple
    kernel_kv: Triple | None
    stride_kv: Triple


def _kernel(kernel: Triple | None, stride: Triple) -> Triple | None:
    """A pooling kernel: the given one, or ``stride + 1`` where the stride is > 1 (PySlowFast without
    ``POOL_KVQ_KERNEL``); ``None`` when kernel and stride are both all ones (no pooling)."""
    k = tuple(kernel) if kernel is not None else tuple(s + 1 if s > 1 else s for s in stride)
    return None if all(v == 1 for v in k) and all(s == 1 for s in stride) else k


def mvit_schedule(
    *,
    version: int,
    embed_dims: int,
    num_layers: int,
    num_heads: int,
    downscale_indices: tuple[int, ...],
    pool_kernel: Triple | None = (3, 3, 3),
    kv_stride: Triple = (1, 8, 8),
) -> list[BlockSpec]:
    """Per-block layout. At each downscale index the heads double, the query stride is 1x2x2 and the key/value
    stride halves (from ``kv_stride``). Widths double in that block's attention (v2) or at the end of the block
    before it (v1). v1 pools queries only in the strided blocks; v2 in all."""
    specs = []
    dim, heads, skv = embed_dims, num_heads, tuple(kv_stride)
    for i in range(num_layers):
        down = i in downscale_indices
        if down:
            heads *= 2
            skv = tuple(max(s // 2, 1) for s in skv)
        sq = (1, 2, 2) if down else (1, 1, 1)
        if version == 2:
            dim_out = dim * 2 if down else dim
            kq = tuple(pool_kernel) if pool_kernel is not None else _kernel(None, sq)
        else:
            dim_out = dim * 2 if (i + 1) in downscale_indices else dim
            kq = _kernel(pool_kernel, sq) if down else None
        specs.append(BlockSpec(dim, dim_out, heads, kq, sq, _kernel(pool_kernel, skv), skv))
        dim = dim_out
    return specs


def _pool(t: torch.Tensor, pool: nn.Module | None, norm: nn.Module | None, grid: Triple) -> tuple[torch.Tensor, Triple]:
    """Pool the non-CLS tokens of ``(B, heads, 1 + T*H*W, C)`` over their grid (the same op for every head), then
    normalise all tokens. Returns the tokens and the new grid."""
    if pool is None:
        return t, grid
    b, h, _, c = t.shape
    cls, x = t[:, :, :1], t[:, :, 1:]
    x = x.reshape(b * h, *grid, c).permute(0, 4, 1, 2, 3)
    x = pool(x)
    grid = tuple(x.shape[2:])
    x = x.reshape(b, h, c, -1).transpose(2, 3)
    t = torch.cat((cls, x), dim=2)
    return (norm(t) if norm is not None else t), grid


def _rel_table(table: torch.Tensor, q: int, k: int) -> torch.Tensor:
    """Relative-position embeddings ``(q, k, C)`` for a query axis of ``q`` and key axis of ``k`` positions (MViTv2's
    decomposed form: the table is resized linearly when built for other sizes; coordinates scaled by the ratio)."""
    size = 2 * max(q, k) - 1
    if table.shape[0] != size:
        table = F.interpolate(table.t()[None], size=size, mode="linear").squeeze(0).t()
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    idx = torch.arange(q, device=table.device)[:, None] * q_ratio - torch.arange(k, device=table.device)[None] * k_ratio
    idx = (idx + (k - 1) * k_ratio).long()
    return table[idx]


class MultiScaleAttention(nn.Module):
    """Pooling attention over ``(B, 1 + N, dim_in)`` tokens on a grid; output ``(B, 1 + N', dim_out)``."""

    def __init__(
        self,
        spec: BlockSpec,
        *,
        version: int,
        qkv_bias: bool,
        pool_norm_eps: float,
        input_grid: Triple,
    ) -> None:
        super().__init__()
        dim_out = spec.dim_out if version == 2 else spec.dim_in
        self.heads = spec.heads
        self.head_dim = hd = dim_out // spec.heads
        self.qkv = nn.Linear(spec.dim_in, 3 * dim_out, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        for name, kernel, stride in (("q", spec.kernel_q, spec.stride_q), ("k", spec.kernel_kv, spec.stride_kv)):
            for part in (name,) if name == "q" else ("k", "v"):
                if kernel is None:
                    continue
                pad = tuple(k // 2 for k in kernel)
                conv = nn.Conv3d(hd, hd, kernel, stride=stride, padding=pad, groups=hd, bias=False)
                setattr(self, f"pool_{part}", conv)
                setattr(self, f"norm_{part}", nn.LayerNorm(hd, eps=pool_norm_eps))
        self.version = version
        if version == 2:  # decomposed relative positions, sized for the grid the block was built for
            t, h, w = input_grid
            if h != w:
                raise InputError(f"MViTv2 needs a square token grid, got {h}x{w}")
            size = 2 * max(h // spec.stride_q[1], h // spec.stride_kv[1]) - 1
            self.rel_pos_h = nn.Parameter(trunc_normal_(torch.zeros(size, hd)))
            self.rel_pos_w = nn.Parameter(trunc_normal_(torch.zeros(size, hd)))
            self.rel_pos_t = nn.Parameter(trunc_normal_(torch.zeros(2 * t - 1, hd)))

    def _rel_bias(self, q: torch.Tensor, q_grid: Triple, k_grid: Triple) -> torch.Tensor:
        b, h, n, c = q.shape
        rq = q[:, :, 1:].reshape(b, h, *q_grid, c)  # the pooled, normalised, unscaled queries
        rt, rh, rw = (
            torch.einsum(eq, rq, _rel_table(table, qn, kn).to(q.dtype))
            for eq, table, qn, kn in (
                ("bythwc,tkc->bythwk", self.rel_pos_t, q_grid[0], k_grid[0]),
                ("bythwc,hkc->bythwk", self.rel_pos_h, q_grid[1], k_grid[1]),
                ("bythwc,wkc->bythwk", self.rel_pos_w, q_grid[2], k_grid[2]),
            )
        )
        bias = (rt[..., :, None, None] + rh[..., None, :, None] + rw[..., None, None, :]).reshape(b, h, n - 1, -1)
        return F.pad(bias, (1, 0, 1, 0))  # no relative position for the CLS row and column

    def forward(self, x: torch.Tensor, grid: Triple) -> tuple[torch.Tensor, Triple]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, q_grid = _pool(q, getattr(self, "pool_q", None), getattr(self, "norm_q", None), grid)
        k, k_grid = _pool(k, getattr(self, "pool_k", None), getattr(self, "norm_k", None), grid)
        v, _ = _pool(v, getattr(self, "pool_v", None), getattr(self, "norm_v", None), grid)
        bias = self._rel_bias(q, q_grid, k_grid) if self.version == 2 else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        if self.version == 2:  # residual pooling: the pooled query joins the patch tokens' output
            out = torch.cat((out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]), dim=2)
        out = out.transpose(1, 2).reshape(b, out.shape[2], -1)
        return self.proj(out), q_grid


class MultiScaleBlock(nn.Module):
    """``x = pool(skip) + attn(norm1(x))``; ``x = skip' + mlp(norm2(x))``, where a change of width goes through
    ``proj`` of the normalised input (``norm1``'s in v2, ``norm2``'s in v1)."""

    def __init__(
        self,
        spec: BlockSpec,
        *,
        version: int,
        mlp_ratio: float,
        qkv_bias: bool,
        norm_eps: float,
        pool_norm_eps: float,
        drop_path: float,
        input_grid: Triple,
    ) -> None:
        super().__init__()
        self.version = version
        attn_dim = spec.dim_out if version == 2 else spec.dim_in
        self.norm1 = nn.LayerNorm(spec.dim_in, eps=norm_eps)
        self.attn = MultiScaleAttention(
            spec, version=version, qkv_bias=qkv_bias, pool_norm_eps=pool_norm_eps, input_grid=input_grid
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(attn_dim, eps=norm_eps)
        self.mlp = Mlp(attn_dim, int(attn_dim * mlp_ratio))
        if attn_dim != spec.dim_out:  # v1: fc2 widens at the end of the block before a stage
            self.mlp.fc2 = nn.Linear(int(attn_dim * mlp_ratio), spec.dim_out)
        if spec.dim_in != spec.dim_out:
            self.proj = nn.Linear(spec.dim_in, spec.dim_out)
        self.pool_skip = None
        if any(s > 1 for s in spec.stride_q):
            kernel = tuple(s + 1 if s > 1 else s for s in spec.stride_q)
            self.pool_skip = nn.MaxPool3d(kernel, spec.stride_q, tuple(k // 2 for k in kernel))

    def forward(self, x: torch.Tensor, grid: Triple) -> tuple[torch.Tensor, Triple]:
        x_norm = self.norm1(x)
        x_attn, new_grid = self.attn(x_norm, grid)
        skip = self.proj(x_norm) if self.version == 2 and hasattr(self, "proj") else x
        if self.pool_skip is not None:
            skip, _ = _pool(skip.unsqueeze(1), self.pool_skip, None, grid)
            skip = skip.squeeze(1)
        x = skip + self.drop_path(x_attn)
        x_norm = self.norm2(x)
        skip = self.proj(x_norm) if self.version == 1 and hasattr(self, "proj") else x
        return skip + self.drop_path(self.mlp(x_norm)), new_grid


class MViTBackbone(StageBackbone):
    """``(B, C, T, H, W)`` -> ``(map, cls)``: the final-normalised patch tokens on the last block's grid,
    ``(B, C', T', H', W')``, and the final-normalised CLS token ``(B, C')``. A block's output on its grid is a stage
    of ``forward_intermediates``.

    Args:
        arch: MMAction2's ``tiny`` / ``small`` / ``base`` / ``large``, or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads``, ``downscale_indices``.
        version: 1 or 2 (see the module docstring).
        img_size, num_frames: the clip the position tables are built for (other sizes are resampled).
        pool_kernel: query/key/value pooling kernel; ``None`` for PySlowFast's ``stride + 1`` rule.
        kv_stride: key/value stride of the first block (halved at every downscale).
        norm_eps: LayerNorm epsilon of the blocks and the final norm; ``pool_norm_eps`` that of the pooled
            query/key/value norms (PyTorchVideo's v1 uses 1e-5 there).
        drop_path_rate: stochastic depth, rising linearly over the blocks.
    """

    def __init__(
        self,
        *,
        arch: str | dict = "small",
        version: int = 2,
        img_size: int = 224,
        num_frames: int = 16,
        in_channels: int = 3,
        patch_kernel: Triple = (3, 7, 7),
        patch_stride: Triple = (2, 4, 4),
        patch_padding: Triple = (1, 3, 3),
        pool_kernel: Triple | None = (3, 3, 3),
        kv_stride: Triple = (1, 8, 8),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        pool_norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if version not in (1, 2):
            raise InputError(f"MViT version must be 1 or 2, got {version!r}")
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise InputError(f"unknown MViT arch {arch!r}; choose one of {', '.join(ARCHS)} or give a dict")
            arch = ARCHS[arch]
        missing = {"embed_dims", "num_layers", "num_heads", "downscale_indices"} - set(arch)
        if missing:
            raise InputError(f"MViT arch dict lacks {', '.join(sorted(missing))}")
        self.version = version
        specs = mvit_schedule(
            version=version,
            embed_dims=arch["embed_dims"],
            num_layers=arch["num_layers"],
            num_heads=arch["num_heads"],
            downscale_indices=tuple(arch["downscale_indices"]),
            pool_kernel=pool_kernel,
            kv_stride=kv_stride,
        )
        dim = arch["embed_dims"]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, dim, patch_kernel, stride=patch_stride, padding=patch_padding)
        self.grid = tuple(
            (size + 2 * p - k) // s + 1
            for size, k, s, p in zip((num_frames, img_size, img_size), patch_kernel, patch_stride, patch_padding)
        )
        self.cls_token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, dim)))
        if version == 1:
            t, h, w = self.grid
            self.pos_embed_spatial = nn.Parameter(trunc_normal_(torch.zeros(1, h * w, dim)))
            self.pos_embed_temporal = nn.Parameter(trunc_normal_(torch.zeros(1, t, dim)))
            self.pos_embed_class = nn.Parameter(trunc_normal_(torch.zeros(1, 1, dim)))
        rates = stochastic_depth(drop_path_rate, len(specs))
        blocks, grid = [], self.grid
        for spec, rate in zip(specs, rates):
            blocks.append(
                MultiScaleBlock(
                    spec,
                    version=version,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    norm_eps=norm_eps,
                    pool_norm_eps=pool_norm_eps,
                    drop_path=rate,
                    input_grid=grid,
                )
            )
            grid = tuple(g // s for g, s in zip(grid, spec.stride_q))
        self.blocks = nn.ModuleList(blocks)
        self.num_features = specs[-1].dim_out
        self.norm = nn.LayerNorm(self.num_features, eps=norm_eps)
        init_vit_weights(self)  # Linear and LayerNorm only: the relative tables keep their truncated-normal init

    @property
    def num_stages(self) -> int:
        return len(self.blocks)

    def forward_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, Triple]:
        x = self.patch_embed.proj(x)  # (B, C, T', H', W')
        b, c = x.shape[:2]
        grid = tuple(x.shape[2:])
        x = torch.cat((self.cls_token.expand(b, -1, -1), x.flatten(2).transpose(1, 2)), dim=1)
        if self.version == 1:
            t, h, w = grid
            spatial = grid_table(self.pos_embed_spatial, (1, *self.grid[1:]), (1, h, w))
            temporal = grid_table(self.pos_embed_temporal, (self.grid[0], 1, 1), (t, 1, 1))
            pos = (temporal[:, :, None] + spatial[:, None]).reshape(1, t * h * w, c)
            x = x + torch.cat((self.pos_embed_class, pos), dim=1)
        return x, grid

    def forward_stage(self, i: int, state: tuple[torch.Tensor, Triple]) -> tuple[torch.Tensor, Triple]:
        return self.blocks[i](*state)

    def stage_map(self, state: tuple[torch.Tensor, Triple]) -> torch.Tensor:
        x, grid = state
        return x[:, 1:].transpose(1, 2).unflatten(2, grid)  # (B, 1 + N, C) -> (B, C, T', H', W'), a view

    def forward_post(self, state: tuple[torch.Tensor, Triple]) -> tuple[torch.Tensor, torch.Tensor]:
        x, grid = state
        x = self.norm(x)
        return self.stage_map((x, grid)), x[:, 0]


class MViT(TokenClassifier):
    """MViT classifier: ``(B, 3, T, H, W)`` -> logits; ``forward_features`` returns the final-normalised patch tokens
    on the last block's grid (``(B, 8 * embed_dims, T / 2, H / 32, W / 32)`` with three downscales) with the CLS
    token the head classifies as ``feats.cls_token``. Layer ids: cube embedding, CLS token and position tables 0,
    ``blocks.k`` k + 1, final norm and head L + 1; no weight decay for the CLS token and the absolute (v1) and
    relative (v2, ``rel_pos_*``) position tables.

    Args:
        num_classes: classifier outputs.
        dropout: dropout before the classifier (0.5 in all references).
        init_std: std of the classifier's init.
        **kwargs: :class:`MViTBackbone` arguments.
    """

    stem_prefixes = (
        "backbone.patch_embed",
        "backbone.cls_token",
        "backbone.pos_embed_spatial",
        "backbone.pos_embed_temporal",
        "backbone.pos_embed_class",
    )
    no_weight_decay_patterns = ("backbone.cls_token", "backbone.pos_embed_*", "backbone.blocks.*.attn.rel_pos_*")

    def __init__(self, num_classes: int = 400, *, dropout: float = 0.5, init_std: float = 0.02, **kwargs) -> None:
        super().__init__()
        self.backbone = MViTBackbone(**kwargs)
        self.head = LinearHead(self.backbone.num_features, num_classes, dropout=dropout, init_std=init_std)
        if self.backbone.version == 1:
            t, h, w = self.backbone.grid
            self.grid_tables = {
                "backbone.pos_embed_spatial": ((1, h, w), 0),
                "backbone.pos_embed_temporal": ((t, 1, 1), 0),
            }


_V1 = dict(version=1, arch=dict(embed_dims=96, num_layers=16, num_heads=1, downscale_indices=(1, 3, 14)))
register_variant(
    globals(),
    "mvit_v1_b_16x4",
    MViT,
    doc="MViT-B 16x4 (v1; PyTorchVideo ``mvit_base_16x4``, PySlowFast ``MVIT_B_16x4_CONV``): 16 frames, 224 px.",
    input_shape=(3, 16, 224, 224),
    num_frames=16,
    **_V1,
)
register_variant(
    globals(),
    "mvit_v1_b_32x3",
    MViT,
    doc="MViT-B 32x3 (v1; the 16-block MViT-B on 32 frames: PyTorchVideo ``mvit_base_32x3``).",
    input_shape=(3, 32, 224, 224),
    num_frames=32,
    **_V1,
)
register_variant(
    globals(),
    "mvit_v1_b24_32x3",
    MViT,
    doc="MViT-B-24 32x3 (v1, 24 blocks; PySlowFast ``MVIT_B_32x3_CONV``: pooling kernels stride + 1).",
    input_shape=(3, 32, 224, 224),
    num_frames=32,
    version=1,
    arch=dict(embed_dims=96, num_layers=24, num_heads=1, downscale_indices=(2, 5, 21)),
    pool_kernel=None,
)
register_variant(
    globals(),
    "mvit_v2_s",
    MViT,
    doc="MViTv2-S (MMAction2 ``mvit-small-p244_32xb16-16x4x1-200e_kinetics400``, PySlowFast ``MVITv2_S_16x4``).",
    input_shape=(3, 16, 224, 224),
    arch="small",
    num_frames=16,
)
register_variant(
    globals(),
    "mvit_v2_b",
    MViT,
    doc="MViTv2-B (MMAction2 ``mvit-base-p244_32x3x1_kinetics400``, PySlowFast ``MVITv2_B_32x3``): 32 frames.",
    input_shape=(3, 32, 224, 224),
    arch="base",
    num_frames=32,
)
