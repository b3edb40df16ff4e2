"""TimeSformer (Bertasius et al., ICML 2021): a ViT-B/16 over the frames of a clip with divided space-time,
joint space-time or space-only attention.

Frames are embedded by one 16x16 convolution each; a CLS token and a spatial position table are added per frame, a
temporal table per frame index, and the tokens are laid out space-major (``(H'W', T)`` with ``T`` fastest, as
facebookresearch/TimeSformer, MMAction2 and HuggingFace ``TimesformerModel`` do). Divided attention attends over
time at each position (followed by ``temporal_fc``), then over space within each frame with the CLS token copied
into every frame and averaged back. Space-only runs the ViT on each frame and averages the frames' CLS tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models._vit import LinearHead, TokenClassifier
from vidlab.models.base import StageBackbone
from vidlab.models.layers.transformer import (
    Attention,
    Block,
    grid_table,
    init_vit_weights,
    stochastic_depth,
    token_grid,
    trunc_normal_,
)

__all__ = ["TimeSformer", "TimeSformerBackbone"]

ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")


class DividedBlock(Block):
    """Divided space-time block: temporal attention (``temporal_norm1``, ``temporal_attn``, ``temporal_fc``) over
    each position's ``T`` tokens, then :class:`Block`'s spatial attention per frame and MLP.

    Forward takes ``(B, 1 + N*T, C)`` (CLS first, then space-major tokens) and the number of frames ``T``.
    """

    def __init__(self, dim: int, num_heads: int, **kwargs) -> None:
        super().__init__(dim, num_heads, **kwargs)
        self.temporal_norm1 = nn.LayerNorm(dim, eps=self.norm1.eps)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=self.attn.qkv.bias is not None)
        self.temporal_fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:  # type: ignore[override]
        b, length, c = x.shape
        t = num_frames
        n = (length - 1) // t
        cls, tokens = x[:, :1], x[:, 1:]
        # time: (B, N*T, C) -> (B*N, T, C)
        res = self.temporal_attn(self.temporal_norm1(tokens.reshape(b * n, t, c)))
        tokens = tokens + self.drop_path(self.temporal_fc(res).reshape(b, n * t, c))
        # space: (B, N, T, C) -> (B*T, 1 + N, C), the CLS token copied into every frame
        frames = tokens.view(b, n, t, c).transpose(1, 2).reshape(b * t, n, c)
        frames = torch.cat((cls.repeat_interleave(t, dim=0), frames), dim=1)
        res = self.drop_path(self.attn(self.norm1(frames)))
        res_cls = res[:, :1].view(b, t, 1, c).mean(dim=1)
        res = res[:, 1:].view(b, t, n, c).transpose(1, 2).reshape(b, n * t, c)
        x = torch.cat((cls, tokens), dim=1) + torch.cat((res_cls, res), dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformerBackbone(StageBackbone):
    """``(B, C, T, H, W)`` -> ``(map, cls)``: the patch tokens after the final norm as a ``(B, embed_dim, T, H/16,
    W/16)`` map and the normalised CLS token ``(B, embed_dim)``.

    For space-only attention the frames' tokens are averaged before the final norm (``space_only_pooling=
    "before_norm"``, MMAction2 and facebookresearch/TimeSformer; the map is then the last block's output, never
    normalised per frame) or their normalised CLS tokens after it (``"after_norm"``, equal to averaging HF
    ``TimesformerForVideoClassification``'s per-frame logits; the map is normalised).
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        num_frames: int = 8,
        patch_size: int = 16,
        in_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attention_type: str = "divided_space_time",
        space_only_pooling: str = "before_norm",
        norm_eps: float = 1e-6,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise InputError(f"attention_type must be one of {', '.join(ATTENTION_TYPES)}, got {attention_type!r}")
        if space_only_pooling not in ("before_norm", "after_norm"):
            raise InputError(f"space_only_pooling must be 'before_norm' or 'after_norm', got {space_only_pooling!r}")
        self.attention_type = attention_type
        self.space_only_pooling = space_only_pooling
        self.patch_size = patch_size
        self.embed_dim = self.num_features = embed_dim
        side = img_size // patch_size
        self.spatial_grid = (1, side, side)
        self.num_frames = num_frames
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, embed_dim)))
        self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, side * side + 1, embed_dim)))
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        block = DividedBlock if attention_type == "divided_space_time" else Block
        self.blocks = nn.ModuleList(
            block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                norm_eps=norm_eps,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=p,
            )
            for p in stochastic_depth(drop_path_rate, depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        init_vit_weights(self)
        for blk in self.blocks:
            if isinstance(blk, DividedBlock):  # temporal attention starts as the identity
                nn.init.zeros_(blk.temporal_fc.weight)
                nn.init.zeros_(blk.temporal_fc.bias)

    @property
    def num_stages(self) -> int:
        return len(self.blocks)

    def forward_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tokens ``(B*T, 1 + N, C)`` (space-only: per frame) or ``(B, 1 + N*T, C)`` (space-major), and the grid."""
        b = x.shape[0]
        t, h, w = token_grid(x, (1, self.patch_size, self.patch_size))
        x = self.patch_embed.proj(x.transpose(1, 2).flatten(0, 1))  # (B*T, C, H', W')
        x = x.flatten(2).transpose(1, 2)  # (B*T, N, C)
        pos = grid_table(self.pos_embed, self.spatial_grid, (1, h, w), prefix=1)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(torch.cat((cls, x), dim=1) + pos)
        if self.attention_type == "space_only":
            return x, (t, h, w)
        n = h * w
        cls = x[:b, :1]  # CLS + its position: the same in every frame
        time = grid_table(self.time_embed, (self.num_frames, 1, 1), (t, 1, 1))
        x = x[:, 1:].reshape(b, t, n, -1).transpose(1, 2) + time.unsqueeze(1)  # (B, N, T, C)
        return torch.cat((cls, self.time_drop(x).flatten(1, 2)), dim=1), (t, h, w)  # (B, 1 + N*T, C), space-major

    def forward_stage(
        self, i: int, state: tuple[torch.Tensor, tuple[int, int, int]]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x, grid = state
        blk = self.blocks[i]
        return (blk(x, grid[0]) if isinstance(blk, DividedBlock) else blk(x)), grid

    def stage_map(self, state: tuple[torch.Tensor, tuple[int, int, int]]) -> torch.Tensor:
        """The patch tokens (CLS dropped) as ``(B, C, T, H', W')``, a view."""
        x, (t, h, w) = state
        if self.attention_type == "space_only":  # (B*T, 1 + H'W', C) -> (B, T, H', W', C)
            return x[:, 1:].unflatten(0, (-1, t)).unflatten(2, (h, w)).permute(0, 4, 1, 2, 3)
        return x[:, 1:].unflatten(1, (h, w, t)).permute(0, 4, 3, 1, 2)  # (B, H', W', T, C), T fastest

    def forward_post(self, state: tuple[torch.Tensor, tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        x, grid = state
        if self.attention_type != "space_only":
            x = self.norm(x)
            return self.stage_map((x, grid)), x[:, 0]
        t = grid[0]
        if self.space_only_pooling == "after_norm":  # HF: every frame's CLS token normalised, then averaged
            cls = self.norm(x[:, 0]).view(-1, t, x.shape[-1]).mean(dim=1)
            return self.stage_map((self.norm(x), grid)), cls
        cls = self.norm(x.view(-1, t, *x.shape[1:]).mean(dim=1))[:, 0]  # MMAction2 / the original
        return self.stage_map(state), cls


class TimeSformer(TokenClassifier):
    """TimeSformer classifier: ``(B, 3, T, H, W)`` -> logits; ``forward_features`` returns the patch tokens as a
    ``(B, embed_dim, T, H/16, W/16)`` map with the normalised CLS token (averaged over frames for space-only
    attention) as ``feats.cls_token``, which the head classifies.

    Args:
        num_classes: classifier outputs.
        dropout: dropout before the classifier.
        init_std: std of the classifier's init.
        **kwargs: :class:`TimeSformerBackbone` arguments (``attention_type``, ``img_size``, ``num_frames``, widths).
    """

    stem_prefixes = ("backbone.patch_embed", "backbone.cls_token", "backbone.pos_embed", "backbone.time_embed")
    no_weight_decay_patterns = ("backbone.cls_token", "backbone.pos_embed", "backbone.time_embed")

    def __init__(self, num_classes: int = 400, *, dropout: float = 0.0, init_std: float = 0.02, **kwargs) -> None:
        super().__init__()
        self.backbone = TimeSformerBackbone(**kwargs)
        self.head = LinearHead(self.backbone.embed_dim, num_classes, dropout=dropout, init_std=init_std)
        self.grid_tables = {"backbone.pos_embed": (self.backbone.spatial_grid, 1)}
        if self.backbone.attention_type != "space_only":
            self.grid_tables["backbone.time_embed"] = ((self.backbone.num_frames, 1, 1), 0)


for _name, _type, _label in (
    ("timesformer_divst", "divided_space_time", "divided space-time"),
    ("timesformer_jointst", "joint_space_time", "joint space-time"),
    ("timesformer_spaceonly", "space_only", "space-only"),
):
    register_variant(
        globals(),
        _name,
        TimeSformer,
        doc=f"TimeSformer ViT-B/16 with {_label} attention (MMAction2 ``timesformer_*_8xb8-8x32x1-15e_kinetics400``"
        ": 8 frames, 224 px).",
        input_shape=(3, 8, 224, 224),
        attention_type=_type,
    )
