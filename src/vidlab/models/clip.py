"""CLIP's image tower (Radford et al., ICML 2021) run on every frame of a clip: the vision transformer of OpenAI's
``clip`` package (``VisionTransformer`` in ``model.py``) and HuggingFace's ``CLIPVisionModel``.

Each frame is cut into ``patch x patch`` patches by a 2D convolution without bias; a class token (``cls_token``,
OpenAI's ``class_embedding``) is put first and a learned position table (``pos_embed``, OpenAI's
``positional_embedding``) added; ``ln_pre`` normalises the tokens before the blocks. Blocks are pre-LN
(``x + attn(norm1(x))``, ``x + mlp(norm2(x))``) with one fused ``qkv`` projection (OpenAI's ``in_proj``) and an MLP
of width ``4 * width`` with QuickGELU, ``x * sigmoid(1.702 x)``. After the last block ``ln_post`` normalises the
class token and the optional ``proj`` (``width x output_dim``, applied as ``x @ proj``) maps it to CLIP's joint
embedding space. LayerNorm epsilon 1e-5 everywhere (OpenAI's and HF's default).

Frames never mix: ``(B, C, T, H, W)`` runs as ``B * T`` images. The model's output (``num_classes=0``) is the
frame-averaged image embedding ``(B, output_dim)``; with ``num_classes > 0`` a linear classifier follows.
:meth:`CLIPViT.forward_teacher` gives what masked teacher distillation (:mod:`vidlab.models.distill`) aligns to.

Weights: OpenAI's checkpoints (``ViT-B-16.pt``, ``ViT-L-14.pt``: TorchScript archives or state dicts, the
``visual.*`` keys) load with ``source="openai_clip"``, HF's ``CLIPVisionModel`` / ``CLIPVisionModelWithProjection``
/ ``CLIPModel`` state dicts with ``source="hf_clip"`` (:mod:`vidlab.models.convert.clip`). Inputs are normalised
with CLIP's mean and std (:data:`CLIP_MEAN`, :data:`CLIP_STD`, in [0, 1] pixel units).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_model
from vidlab.models._vit import LinearHead, TokenClassifier
from vidlab.models.base import StageBackbone, check_clip, frames_of
from vidlab.models.layers.transformer import Mlp, grid_table, init_vit_weights, token_grid

__all__ = ["CLIP_MEAN", "CLIP_STD", "CLIPVisionTransformer", "CLIPViT", "QuickGELU", "clip_vit_b16", "clip_vit_l14"]

#: CLIP's input normalization (OpenAI's preprocessing), in [0, 1] pixel units
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 * x)``: the GELU approximation OpenAI's CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """Multi-head self-attention with a fused, biased ``qkv`` projection and an output ``proj``; can also return the
    attention weights averaged over heads (as ``nn.MultiheadAttention(need_weights=True)``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise InputError(f"width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, N, C)`` -> ``(output, weights)``: ``weights`` ``(B, N, N)`` (query, key) averaged over heads, or
        ``None`` unless ``need_weights``."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (c // self.num_heads) ** -0.5
            attn = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
            out, weights = attn @ v, attn.mean(dim=1)
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v), None
        return self.proj(out.transpose(1, 2).reshape(b, n, c)), weights


class CLIPBlock(nn.Module):
    """OpenAI's ``ResidualAttentionBlock``: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))`` (QuickGELU MLP)."""

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float = 4.0, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = CLIPAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.mlp.act = QuickGELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x, False)[0]

    def forward_with_attention(
        self, x: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(output, attention weights averaged over heads)`` (the weights ``None`` unless ``need_weights``)."""
        y, weights = self.attn(self.norm1(x), need_weights)
        x = x + y
        return x + self.mlp(self.norm2(x)), weights


#: what passes between blocks: the tokens of every frame ``(B*T, 1 + H'W', width)`` and the ``(T, H', W')`` grid
_State = tuple[torch.Tensor, tuple[int, int, int]]


class CLIPVisionTransformer(StageBackbone):
    """``(B, C, T, H, W)`` -> ``(map, embedding)``: the last block's patch tokens of every frame as a ``(B, width, T,
    H / patch, W / patch)`` map (no ``ln_post``, as HF's ``last_hidden_state``) and the frame average of the
    frames' image embeddings, ``proj(ln_post(cls))``, ``(B, output_dim)``. Stage maps (``forward_intermediates``)
    are blocks' patch tokens likewise.

    The position table is built for ``img_size``; other frame sizes get it resampled bicubically to their patch grid
    (:func:`~vidlab.models.layers.transformer.grid_table`, the class token's entry kept).

    Args:
        img_size: frame side the position table is built for (224; 336 for OpenAI's ``ViT-L/14@336px``).
        patch_size: patch side (16 for B/16, 14 for L/14).
        in_channels: input channels.
        width: token width.
        depth: blocks.
        num_heads: attention heads (OpenAI: ``width // 64``).
        mlp_ratio: MLP width relative to ``width``.
        output_dim: columns of ``proj`` (CLIP's embedding width: 512 for B/16, 768 for L/14); 0 (or ``None``): no
            ``proj`` (HF's ``CLIPVisionModel`` has none), the embedding is ``ln_post(cls)``.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        width: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        output_dim: int | None = 512,  # 0 / None: no projection
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.patch = (1, patch_size, patch_size)
        side = img_size // patch_size
        self.spatial_grid = (1, side, side)
        self.embed_dim = self.num_features = width
        self.output_dim = output_dim if output_dim else width
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, width, patch_size, stride=patch_size, bias=False)
        scale = width**-0.5  # OpenAI's init of the class token, position table and projection: N(0, scale^2)
        self.cls_token = nn.Parameter(nn.init.normal_(torch.empty(1, 1, width), std=scale))
        self.pos_embed = nn.Parameter(nn.init.normal_(torch.empty(1, side * side + 1, width), std=scale))
        self.ln_pre = nn.LayerNorm(width, eps=norm_eps)
        self.blocks = nn.ModuleList(
            CLIPBlock(width, num_heads, mlp_ratio=mlp_ratio, norm_eps=norm_eps) for _ in range(depth)
        )
        self.ln_post = nn.LayerNorm(width, eps=norm_eps)
        if output_dim:
            self.proj = nn.Parameter(nn.init.normal_(torch.empty(width, output_dim), std=scale))
        else:
            self.register_parameter("proj", None)
        init_vit_weights(self.blocks)  # the tower is meant to be loaded; a plain ViT init otherwise

    @property
    def num_stages(self) -> int:
        return len(self.blocks)

    def forward_stem(self, x: torch.Tensor) -> _State:
        """The frames' tokens after ``ln_pre``, ``(B*T, 1 + H'W', width)`` (frame ``t`` of clip ``b`` is row
        ``b * T + t``), and the ``(T, H', W')`` grid."""
        t, h, w = token_grid(x, self.patch)
        tokens = self.patch_embed.proj(frames_of(x)).flatten(2).transpose(1, 2)  # (B*T, H'W', width)
        cls = self.cls_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        pos = grid_table(self.pos_embed, self.spatial_grid, (1, h, w), prefix=1)
        return self.ln_pre(torch.cat((cls, tokens), dim=1) + pos.to(tokens.dtype)), (t, h, w)

    def forward_stage(self, i: int, state: _State) -> _State:
        tokens, grid = state
        return self.blocks[i](tokens), grid

    @staticmethod
    def _grid_map(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Patch tokens ``(B*T, 1 + H'W', C)`` -> ``(B, C, T, H', W')``."""
        t, h, w = grid
        return tokens[:, 1:].reshape(-1, t, h, w, tokens.shape[-1]).permute(0, 4, 1, 2, 3)

    def stage_map(self, state: _State) -> torch.Tensor:
        tokens, grid = state
        return self._grid_map(tokens, grid)

    def embed(self, tokens: torch.Tensor, ln_post: bool = True) -> torch.Tensor:
        """``ln_post`` (unless ``ln_post=False``), then ``proj`` where the tower has one, on tokens ``(..., width)``:
        CLIP's image embedding when applied to the class token."""
        if ln_post:
            tokens = self.ln_post(tokens)
        return tokens @ self.proj.to(tokens.dtype) if self.proj is not None else tokens

    def forward_post(self, state: _State) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, grid = state
        cls = self.embed(tokens[:, 0])  # (B*T, output_dim)
        return self._grid_map(tokens, grid), cls.view(-1, grid[0], cls.shape[-1]).mean(dim=1)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output for every frame, ``(B*T, 1 + H'W', width)``: HF's ``last_hidden_state``."""
        state = self.forward_stem(x)
        for i in range(self.num_stages):
            state = self.forward_stage(i, state)
        return state[0]

    def forward_teacher(
        self, x: torch.Tensor, layers: list[int], ln_post: bool = True
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """What masked teacher distillation aligns to (Unmasked Teacher's CLIP teacher):

        - for each block in ``layers`` (0-based, in that order), its patch tokens through :meth:`embed` (``ln_post``
          then ``proj``, as UMT's teacher treats every returned layer) as a ``(B, output_dim, T, H', W')`` map;
        - for the same blocks, the class token through :meth:`embed`, averaged over the frames, ``(B, output_dim)``
          (VideoMamba's ``clip_return_cls`` target);
        - the last block's attention of the class token to the patch tokens of each frame, averaged over heads,
          ``(B, T, H', W')`` (each frame's weights sum to one minus the class token's weight on itself).

        Features are not L2-normalised here. ``ln_post=False`` skips ``ln_post`` (what VideoMamba's teacher does
        with ``clip_return_cls``).
        """
        tokens, grid = self.forward_stem(x)
        wanted, outs = set(layers), {}
        attention = None
        last = self.num_stages - 1
        for i, blk in enumerate(self.blocks):
            if i == last:
                tokens, attention = blk.forward_with_attention(tokens)
            else:
                tokens = blk(tokens)
            if i in wanted:
                outs[i] = self.embed(tokens, ln_post)
        t, h, w = grid
        maps = [self._grid_map(outs[i], grid) for i in layers]
        cls = [outs[i][:, 0].view(-1, t, outs[i].shape[-1]).mean(dim=1) for i in layers]
        return maps, cls, attention[:, 0, 1:].reshape(-1, t, h, w)


class _EmbeddingHead(nn.Module):
    """No classifier (``num_classes=0``): the pooled embedding is the output."""

    num_classes = 0

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x


class CLIPViT(TokenClassifier):
    """CLIP's image tower on every frame: ``(B, 3, T, H, W)`` -> the frame-averaged image embedding ``(B,
    output_dim)`` (``num_classes=0``), or logits of a linear classifier on it. ``forward_features`` returns the last
    block's patch tokens as a map, with the embedding as ``feats.cls_token``.

    Layer ids: patch embedding, class token, position table and ``ln_pre`` 0; block k k + 1; ``ln_post``, ``proj``
    and the classifier L + 1.

    Args:
        num_classes: classifier outputs; 0 for none (the embedding is the output).
        dropout: dropout before the classifier.
        init_std: std of the classifier's init.
        **kwargs: :class:`CLIPVisionTransformer` arguments.
    """

    stem_prefixes = ("backbone.patch_embed", "backbone.cls_token", "backbone.pos_embed", "backbone.ln_pre")
    no_weight_decay_patterns = ("backbone.cls_token", "backbone.pos_embed")

    def __init__(self, num_classes: int = 0, *, dropout: float = 0.0, init_std: float = 0.02, **kwargs) -> None:
        super().__init__()
        self.backbone = CLIPVisionTransformer(**kwargs)
        self._head_args = {"dropout": dropout, "init_std": init_std}
        self.head = self._make_head(num_classes)
        self.grid_tables = {"backbone.pos_embed": (self.backbone.spatial_grid, 1)}

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes < 0:
            raise InputError(f"num_classes must be >= 0 (0: no classifier), got {num_classes}")
        dim = self.backbone.output_dim
        return LinearHead(dim, num_classes, **self._head_args) if num_classes else _EmbeddingHead(dim)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier with ``num_classes`` outputs (0: none), on the model's device and dtype."""
        p = self.backbone.pos_embed
        self.head = self._make_head(num_classes).to(device=p.device, dtype=p.dtype)

    def forward_teacher(
        self, x: torch.Tensor, layers: list[int], ln_post: bool = True
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """See :meth:`CLIPVisionTransformer.forward_teacher`."""
        check_clip(x)
        return self.backbone.forward_teacher(x, layers, ln_post)


@register_model(input_shape=(3, 8, 224, 224), task="encoder")
def clip_vit_b16(*, num_classes: int = 0, **kwargs) -> CLIPViT:
    """OpenAI CLIP ViT-B/16 image tower on every frame (224 px, width 768, 12 blocks, embedding 512); no classifier
    unless ``num_classes > 0``."""
    fixed = dict(patch_size=16, width=768, depth=12, num_heads=12, output_dim=512)
    return CLIPViT(num_classes=num_classes, **{**fixed, **kwargs})


@register_model(input_shape=(3, 8, 224, 224), task="encoder")
def clip_vit_l14(*, num_classes: int = 0, **kwargs) -> CLIPViT:
    """OpenAI CLIP ViT-L/14 image tower on every frame (224 px, width 1024, 24 blocks, embedding 768); no classifier
    unless ``num_classes > 0``."""
    fixed = dict(patch_size=14, width=1024, depth=24, num_heads=16, output_dim=768)
    return CLIPViT(num_classes=num_classes, **{**fixed, **kwargs})
