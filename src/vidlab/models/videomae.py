"""VideoMAE's fine-tuning network (Tong et al., NeurIPS 2022): a plain ViT on 2x16x16 space-time tubes with a fixed
sine-cosine position table, mean pooling and ``fc_norm``; queries and values carry a bias, keys none.

The same network is MMAction2's ``VisionTransformer`` (``vit_mae.py``), HuggingFace's
``VideoMAEForVideoClassification`` and the MCG-NJU / VideoMAE V2 fine-tune checkpoints; all import through
:func:`vidlab.load_checkpoint`. Note the reference epsilons differ: MCG-NJU and MMAction2 use LayerNorm eps 1e-6,
HF's configs 1e-12 in the blocks and PyTorch's default 1e-5 in ``fc_norm`` (``norm_eps`` / ``fc_norm_eps``).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models._vit import LinearHead, TokenClassifier
from vidlab.models.base import StageBackbone
from vidlab.models.layers.transformer import (
    Block,
    grid_table,
    init_vit_weights,
    sincos_table,
    stochastic_depth,
    token_grid,
    trunc_normal_,
)

__all__ = ["VideoMAE", "VisionTransformer3d"]


class VisionTransformer3d(StageBackbone):
    """ViT over ``tubelet x patch x patch`` tubes: ``(B, C, T, H, W)`` -> ``(map, None)``, the tokens as a
    ``(B, embed_dim, T', H', W')`` map: the last block's output with mean pooling (``fc_norm`` acts after the
    pooling, in the classifier's head), normalised by ``norm`` without.

    Tokens are ordered ``(T', H', W')`` with ``W'`` fastest. The position table is built for the ``num_frames x
    img_size`` clip; other clip sizes get it resampled to their grid (:func:`grid_table`).
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        fc_norm_eps: float | None = None,
        use_mean_pooling: bool = True,
        learnable_pos_embed: bool = False,
        init_values: float = 0.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch = (tubelet_size, patch_size, patch_size)
        self.grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.embed_dim = self.num_features = embed_dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=self.patch, stride=self.patch)
        num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        if learnable_pos_embed:
            self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, num_patches, embed_dim)))
        else:  # fixed: not a weight, so not in the state dict (HF and MCG-NJU do not store it either)
            self.register_buffer("pos_embed", sincos_table(num_patches, embed_dim), persistent=False)
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qv_bias=qkv_bias,
                norm_eps=norm_eps,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=p,
                init_values=init_values,
            )
            for p in stochastic_depth(drop_path_rate, depth)
        )
        self.use_mean_pooling = use_mean_pooling
        if use_mean_pooling:
            self.fc_norm = nn.LayerNorm(embed_dim, eps=norm_eps if fc_norm_eps is None else fc_norm_eps)
        else:
            self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        init_vit_weights(self)

    @property
    def num_stages(self) -> int:
        return len(self.blocks)

    def forward_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        grid = token_grid(x, self.patch)
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)  # (B, T'H'W', C)
        pos = grid_table(self.pos_embed, self.grid, grid)
        return self.pos_drop(x + pos.to(x.dtype)), grid

    def forward_visible(
        self, x: torch.Tensor, mask: torch.Tensor | None, return_layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The blocks over the visible tokens only (masked video modelling): ``(B, C, T, H, W)`` and a bool ``mask``
        ``(B, N)`` (True = hidden; tokens ordered ``(T', H', W')``, ``None``: all visible) -> ``(tokens, layers)``:
        the last block's output ``(B, N_visible, embed_dim)``, without the final norm, in token order, and the
        outputs of the blocks listed in ``return_layers`` (0-based), in that order.

        Raises:
            ValueError: for a mask of another shape, or one that hides a different number of tokens per sample.
        """
        tokens, _ = self.forward_stem(x)
        b, n, c = tokens.shape
        if mask is not None:
            if mask.shape != (b, n):
                raise InputError(f"mask of shape {tuple(mask.shape)} for {b} clips of {n} tokens; expected ({b}, {n})")
            visible = (~mask).sum(1)
            if (visible != visible[0]).any():
                raise InputError(f"every clip must keep the same number of visible tokens, got {visible.tolist()}")
            tokens = tokens[~mask].reshape(b, -1, c)
        wanted = set(return_layers)
        layers = {}
        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens)
            if i in wanted:
                layers[i] = tokens
        return tokens, [layers[i] for i in return_layers]

    def forward_stage(
        self, i: int, state: tuple[torch.Tensor, tuple[int, int, int]]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x, grid = state
        return self.blocks[i](x), grid

    def stage_map(self, state: tuple[torch.Tensor, tuple[int, int, int]]) -> torch.Tensor:
        x, grid = state
        return x.transpose(1, 2).unflatten(2, grid)  # (B, N, C) -> (B, C, T', H', W'), a view

    def forward_post(self, state: tuple[torch.Tensor, tuple[int, int, int]]) -> tuple[torch.Tensor, None]:
        x, grid = state
        if not self.use_mean_pooling:
            x = self.norm(x)
        return self.stage_map((x, grid)), None


class VideoMAE(TokenClassifier):
    """VideoMAE ViT classifier. Input ``(B, 3, T, H, W)`` with ``T`` a multiple of ``tubelet_size`` and ``H, W``
    multiples of ``patch_size``; output logits. ``forward_features`` returns the tokens as a ``(B, embed_dim,
    T / tubelet_size, H / patch_size, W / patch_size)`` map; the head averages them and applies
    ``backbone.fc_norm`` (without mean pooling: reads the first token of the normalised map), dropout and ``fc``.
    No class token.

    Args:
        num_classes: classifier outputs.
        dropout: dropout before the classifier (VideoMAE's ``head_drop_rate``).
        init_std: std of the classifier's normal init.
        **kwargs: :class:`VisionTransformer3d` arguments (``img_size``, ``num_frames``, widths, epsilons,
            ``use_mean_pooling``, ``learnable_pos_embed``, ``init_values``, drop rates).
    """

    stem_prefixes = ("backbone.patch_embed", "backbone.pos_embed")
    no_weight_decay_patterns = ("backbone.pos_embed",)  # when learned (a parameter)

    def __init__(self, num_classes: int = 400, *, dropout: float = 0.0, init_std: float = 0.02, **kwargs) -> None:
        super().__init__()
        self.backbone = VisionTransformer3d(**kwargs)
        self.head = LinearHead(self.backbone.embed_dim, num_classes, dropout=dropout, init_std=init_std)
        if isinstance(self.backbone.pos_embed, nn.Parameter):
            self.grid_tables = {"backbone.pos_embed": (self.backbone.grid, 0)}
        else:
            self.fixed_tables = ("backbone.pos_embed",)

    def pool(self, feats: torch.Tensor, cls_token: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the tokens then ``backbone.fc_norm``; without mean pooling the first (normalised) token."""
        tokens = feats.flatten(2).transpose(1, 2)  # (B, N, C): the backbone's token layout again
        if self.backbone.use_mean_pooling:
            return self.backbone.fc_norm(tokens.mean(dim=1))
        return tokens[:, 0]  # the first token, as the references do without mean pooling


_WIDTHS = {
    "s": dict(embed_dim=384, depth=12, num_heads=6),
    "b": dict(embed_dim=768, depth=12, num_heads=12),
    "l": dict(embed_dim=1024, depth=24, num_heads=16),
    "h": dict(embed_dim=1280, depth=32, num_heads=16),
}
for _size, _name in (("s", "ViT-S"), ("b", "ViT-B"), ("l", "ViT-L"), ("h", "ViT-H")):
    register_variant(
        globals(),
        f"videomae_vit_{_size}",
        VideoMAE,
        doc=f"VideoMAE {_name}/16 fine-tuning network (16 frames, 224 px, tubelet 2; Kinetics-400 head).",
        input_shape=(3, 16, 224, 224),
        **_WIDTHS[_size],
    )
