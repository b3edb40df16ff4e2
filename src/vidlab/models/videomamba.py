"""VideoMamba (Li et al., ECCV 2024): a stack of bidirectional Mamba blocks over the patch tokens of a clip, runnable
on CPU.

The clip is cut into 1x16x16 patches (tubelet 1); a CLS token and a spatial position table are added per frame, a
temporal table per frame, and the tokens are laid out frame by frame (spatial-first scan: ``(T, H'W')`` with space
fastest), the CLS token first. Blocks are pre-norm with RMSNorm and a residual stream carried in float32 (the
official "fused add + norm" order); the head classifies the final-normalised CLS token.

The official implementation needs CUDA kernels (``selective_scan_cuda``, ``causal_conv1d``, Triton norms); here
the scan is :func:`~vidlab.models.layers.selective_scan.selective_scan` in plain PyTorch. Official checkpoints
(OpenGVLab/VideoMamba ``videomamba_tiny/small/middle``) load with ``source="videomamba"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models._vit import LinearHead, TokenClassifier
from vidlab.models.base import StageBackbone
from vidlab.models.layers.mamba import BiMamba, RMSNorm
from vidlab.models.layers.transformer import DropPath, grid_table, stochastic_depth, token_grid, trunc_normal_

__all__ = ["VideoMamba", "VideoMambaBackbone"]

#: what passes between blocks: the mixer output, the float32 residual stream (None before the first block), the grid
_State = tuple[torch.Tensor, torch.Tensor | None, tuple[int, int, int]]


class MambaBlock(nn.Module):
    """``residual += drop_path(hidden)``; ``hidden = mixer(norm(residual))`` (the first block starts the residual)."""

    def __init__(self, dim: int, *, norm_eps: float, drop_path: float, d_state: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, eps=norm_eps)
        self.mixer = BiMamba(dim, d_state=d_state)
        self.drop_path = DropPath(drop_path)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        residual = hidden.float() if residual is None else residual + self.drop_path(hidden).float()
        return self.mixer(self.norm(residual.to(hidden.dtype))), residual


class VideoMambaBackbone(StageBackbone):
    """``(B, C, T, H, W)`` -> ``(map, cls)``: the final-normalised patch tokens as a ``(B, embed_dim, T / tubelet,
    H / 16, W / 16)`` map and the final-normalised CLS token ``(B, embed_dim)``. A block's output (``stage_map``,
    ``forward_intermediates``) is the residual stream after it: what the next block normalises.

    ``use_checkpoint`` (the official option of that name) recomputes each block's forward during backward instead
    of keeping its activations: the scan's per-state intermediates (``batch x tokens x 2 dim x d_state`` floats per
    direction) then live for one block at a time, which is what makes training fit in CPU memory.
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        num_frames: int = 8,
        patch_size: int = 16,
        tubelet_size: int = 1,
        in_channels: int = 3,
        embed_dim: int = 192,
        depth: int = 24,
        d_state: int = 16,
        norm_eps: float = 1e-5,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.patch = (tubelet_size, patch_size, patch_size)
        side = img_size // patch_size
        self.spatial_grid = (1, side, side)
        self.temporal_grid = (num_frames // tubelet_size, 1, 1)
        self.embed_dim = self.num_features = embed_dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=self.patch, stride=self.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, side * side + 1, embed_dim)))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, self.temporal_grid[0], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        # block i drops the previous block's output; the last one's is dropped before norm_f (the official schedule)
        rates = [0.0, *stochastic_depth(drop_path_rate, depth)]
        self.layers = nn.ModuleList(
            MambaBlock(embed_dim, norm_eps=norm_eps, drop_path=rates[i], d_state=d_state) for i in range(depth)
        )
        self.drop_path = DropPath(drop_path_rate)
        self.norm_f = RMSNorm(embed_dim, eps=norm_eps)
        for m in self.modules():  # Linear init as the official segm_init_weights; Mamba's dt init is kept
            if isinstance(m, nn.Linear) and not any(
                m is getattr(blk.mixer, n) for blk in self.layers for n in ("dt_proj", "dt_proj_b")
            ):
                trunc_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for blk in self.layers:  # residual branches scaled down with depth (GPT-2 / Mamba "rescale_prenorm_residual")
            with torch.no_grad():
                blk.mixer.out_proj.weight.div_(math.sqrt(depth))

    @property
    def num_stages(self) -> int:
        return len(self.layers)

    def forward_stem(self, x: torch.Tensor) -> _State:
        """``(hidden, residual, grid)``: the tokens ``(B, 1 + T'N, C)``, no residual yet, the ``(T', H', W')`` grid."""
        b = x.shape[0]
        t, h, w = token_grid(x, self.patch)
        x = self.patch_embed.proj(x)  # (B, C, T', H', W')
        x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, -1)
        pos = grid_table(self.pos_embed, self.spatial_grid, (1, h, w), prefix=1)
        x = torch.cat((self.cls_token.expand(b * t, -1, -1), x), dim=1) + pos
        cls = x[:b, :1]  # CLS + its position: the same in every frame
        time = grid_table(self.temporal_pos_embedding, self.temporal_grid, (t, 1, 1))
        x = x[:, 1:].view(b, t, h * w, -1) + time.unsqueeze(2)  # (B, T', N, C)
        x = self.pos_drop(torch.cat((cls, x.flatten(1, 2)), dim=1))  # (B, 1 + T'N, C), frame by frame
        return x, None, (t, h, w)

    def forward_visible(
        self, x: torch.Tensor, mask: torch.Tensor | None, return_layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The blocks over the CLS token and the visible patch tokens only (masked pre-training): ``(B, C, T, H, W)``
        and a bool ``mask`` ``(B, N)`` over the patch tokens (True = hidden; ordered ``(T', H', W')``, ``None``: all
        visible; the CLS token is always kept) -> ``(tokens, layers)``: the residual stream after the last block,
        ``(B, 1 + N_visible, embed_dim)``, CLS first and the rest in token order, without ``norm_f``; and the
        residual stream after each block listed in ``return_layers`` (0-based), in that order.

        A block's stream is the one the next block receives (the official pre-training reads it there, with the
        next block's stochastic-depth draw); the last block's adds its output with ``drop_path`` as
        :meth:`forward_post` does.

        Raises:
            ValueError: for a mask of another shape, one that hides a different number of tokens per sample, or a
                block index out of range.
        """
        bad = [i for i in return_layers if not 0 <= i < self.num_stages]
        if bad:
            raise InputError(f"return_layers {bad} out of range: this backbone has blocks 0..{self.num_stages - 1}")
        hidden, _, grid = self.forward_stem(x)
        b, n, c = hidden.shape
        if mask is not None:
            if mask.shape != (b, n - 1):
                raise InputError(
                    f"mask of shape {tuple(mask.shape)} for {b} clips of {n - 1} patch tokens; expected ({b}, {n - 1})"
                )
            visible = (~mask).sum(1)
            if (visible != visible[0]).any():
                raise InputError(f"every clip must keep the same number of visible tokens, got {visible.tolist()}")
            keep = torch.cat((mask.new_ones(b, 1), ~mask), dim=1)  # the CLS token is always visible
            hidden = hidden[keep].reshape(b, -1, c)
        wanted, layers = set(return_layers), {}
        state: _State = (hidden, None, grid)
        for i in range(self.num_stages):
            state = self.forward_stage(i, state)
            if i - 1 in wanted:  # the stream block i received: block i - 1's output
                layers[i - 1] = state[1]
        hidden, residual, _ = state
        out = residual + self.drop_path(hidden).float()
        layers[self.num_stages - 1] = out
        return out.to(hidden.dtype), [layers[i].to(hidden.dtype) for i in return_layers]

    def forward_stage(self, i: int, state: _State) -> _State:
        hidden, residual, grid = state
        layer = self.layers[i]
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            hidden, residual = checkpoint(layer, hidden, residual, use_reentrant=False)
        else:
            hidden, residual = layer(hidden, residual)
        return hidden, residual, grid

    @staticmethod
    def _grid_map(x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        return x[:, 1:].unflatten(1, grid).permute(0, 4, 1, 2, 3)  # (B, T', H', W', C) -> (B, C, T', H', W')

    def stage_map(self, state: _State) -> torch.Tensor:
        hidden, residual, grid = state
        return self._grid_map((residual + hidden.float()).to(hidden.dtype), grid)

    def forward_post(self, state: _State) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, residual, grid = state
        residual = residual + self.drop_path(hidden).float()
        x = self.norm_f(residual.to(hidden.dtype))  # every token, as the official fused add + norm
        return self._grid_map(x, grid), x[:, 0]


class VideoMamba(TokenClassifier):
    """VideoMamba classifier: ``(B, 3, T, H, W)`` -> logits; ``forward_features`` returns the final-normalised patch
    tokens as a map with the CLS token the head classifies as ``feats.cls_token``.

    Layer ids as the official fine-tuning's layer decay: patch embedding, CLS token and position tables 0,
    ``layers.k`` k + 1, ``norm_f`` and head L + 1. ``no_weight_decay()``: the official model's list (CLS token and
    both position tables); ``D``/``D_b`` are 1-D (the optimizer leaves them undecayed anyway), and ``A_log`` /
    ``A_b_log`` are decayed as in the official recipe (its optimizer ignores mamba_ssm's ``_no_weight_decay`` tags).

    Args:
        num_classes: classifier outputs.
        dropout: dropout before the classifier (the official ``fc_drop_rate``).
        init_std: std of the classifier's init.
        **kwargs: :class:`VideoMambaBackbone` arguments (``img_size``, ``num_frames``, ``embed_dim``, ``depth``...).
    """

    stem_prefixes = (
        "backbone.patch_embed",
        "backbone.cls_token",
        "backbone.pos_embed",
        "backbone.temporal_pos_embedding",
    )
    stage_prefixes = ("backbone.layers.{i}",)
    no_weight_decay_patterns = ("backbone.cls_token", "backbone.pos_embed", "backbone.temporal_pos_embedding")

    def __init__(self, num_classes: int = 400, *, dropout: float = 0.0, init_std: float = 0.02, **kwargs) -> None:
        super().__init__()
        self.backbone = VideoMambaBackbone(**kwargs)
        self.head = LinearHead(self.backbone.embed_dim, num_classes, dropout=dropout, init_std=init_std)
        self.grid_tables = {
            "backbone.pos_embed": (self.backbone.spatial_grid, 1),
            "backbone.temporal_pos_embedding": (self.backbone.temporal_grid, 0),
        }


for _size, _label, _dims in (
    ("ti", "Tiny", dict(embed_dim=192, depth=24)),
    ("s", "Small", dict(embed_dim=384, depth=24)),
    ("m", "Middle", dict(embed_dim=576, depth=32)),
):
    register_variant(
        globals(),
        f"videomamba_{_size}",
        VideoMamba,
        doc=f"VideoMamba-{_label} (official ``videomamba_{_label.lower()}``: 8 frames, 224 px, 16x16 patches).",
        input_shape=(3, 8, 224, 224),
        **_dims,
    )
