"""VideoMAE pre-training (Tong et al., NeurIPS 2022): masked autoencoding of video tubes.

The encoder is :class:`~vidlab.models.videomae.VisionTransformer3d` with its final ``norm``, run on the visible
tokens only. ``encoder_to_decoder`` (no bias) maps them to the decoder's width; a learned ``mask_token`` stands for
every hidden token; both get the decoder's fixed sine-cosine table at their own positions and are concatenated,
visible tokens first, then the masked ones in token order. The decoder's blocks, ``norm`` and ``head`` predict the
masked tokens' pixels: ``3 * tubelet * patch * patch`` values per token, ordered ``(tubelet, patch_h, patch_w,
channel)``.

Targets: the input unnormalized to [0, 1] (``mean`` / ``std``: the normalization the data used, in [0, 1] units),
cut into tubes; with ``norm_pix_loss`` each tube is normalized per channel over its ``tubelet * patch * patch``
pixels with the unbiased variance, ``(p - mean) / (sqrt(var) + 1e-6)`` (the epsilon outside the square root, as
the original code and HF). The loss is the MSE over the masked tokens only.

State-dict keys are the original ``modeling_pretrain.py`` layout: ``encoder.patch_embed.proj``,
``encoder.blocks.N.*``, ``encoder.norm``, ``encoder_to_decoder``, ``mask_token``, ``decoder.blocks.N.*``,
``decoder.norm``, ``decoder.head``; the position tables are fixed and not stored. HF's
``VideoMAEForPreTraining`` converts both ways (:mod:`vidlab.models.convert.videomae_pretrain`). Epsilons: the
original uses LayerNorm eps 1e-6 everywhere; HF 1e-12 in the blocks and the encoder norm and PyTorch's 1e-5 in the
decoder's final norm (``norm_eps`` / ``decoder_norm_eps``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_model
from vidlab.models.layers.masking import MASK_TYPES, mask_batch
from vidlab.models.layers.transformer import Block, init_vit_weights, sincos_table, token_grid, trunc_normal_
from vidlab.models.videomae import VisionTransformer3d

__all__ = ["PretrainDecoder", "VideoMAEPretrain", "patchify", "unpatchify"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def patchify(frames: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, N, tubelet * patch * patch, C)``: tokens in ``(T', H', W')`` order, the pixels
    of each in ``(tubelet, patch_h, patch_w)`` order."""
    b, c, t, h, w = frames.shape
    x = frames.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, T', H', W', tubelet, p, p, C)
    return x.reshape(b, -1, tubelet * patch * patch, c)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], tubelet: int, patch: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(B, N, tubelet * patch * patch * C)`` (or the 4-D form) -> ``(B, C, T, H,
    W)``."""
    b, n = tokens.shape[:2]
    t, h, w = grid
    x = tokens.reshape(b, t, h, w, tubelet, patch, patch, -1)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T', tubelet, H', p, W', p)
    return x.reshape(b, -1, t * tubelet, h * patch, w * patch)


class PretrainDecoder(nn.Module):
    """The decoder: blocks, ``norm`` and a linear ``head``, applied to the last ``num_masked`` tokens only."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        out_dim: int,
        *,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        final_norm_eps: float = 1e-6,
        init_values: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(
                dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qv_bias=qkv_bias,
                norm_eps=norm_eps,
                drop_path=p,
                init_values=init_values,
            )
            for p in rates
        )
        self.norm = nn.LayerNorm(dim, eps=final_norm_eps)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, num_masked: int) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, -num_masked:]))


class VideoMAEPretrain(nn.Module):
    """VideoMAE's masked autoencoder. ``model(x, mask)`` with ``x`` ``(B, C, T, H, W)`` normalized as the data is
    (``mean`` / ``std``) and ``mask`` bool ``(B, N)`` (True = masked, tokens ordered ``(T', H', W')``, the same
    count per sample) returns ``{"loss", "pred", "target", "mask"}``: ``pred`` and ``target`` ``(B, N_masked, 3 *
    tubelet * patch * patch)``. Without ``mask``, one is drawn per sample (``mask_type``, ``mask_ratio``) from the
    global torch RNG (seed it, or fork it, for reproducible masks).

    Args:
        num_frames, img_size, patch_size, tubelet_size, in_channels: the clip and its tubes.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias, init_values, drop_path_rate: the encoder
            (:class:`VisionTransformer3d`).
        decoder_dim, decoder_depth, decoder_num_heads: the decoder.
        norm_eps: LayerNorm epsilon of every block and the encoder's final norm.
        decoder_norm_eps: the decoder's final norm (``None``: ``norm_eps``).
        mask_type, mask_ratio: masks drawn when none is given (``tube`` | ``random``).
        norm_pix_loss: normalize each target tube (else raw [0, 1] pixels).
        mean, std: the input normalization in [0, 1] units (vidlab's data.mean / 255), to recover pixels.
        num_classes: ignored (no classifier); accepted so the common builders can pass it.
    """

    def __init__(
        self,
        *,
        num_frames: int = 16,
        img_size: int = 224,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        init_values: float = 0.0,
        drop_path_rate: float = 0.0,
        decoder_dim: int = 384,
        decoder_depth: int = 4,
        decoder_num_heads: int = 6,
        norm_eps: float = 1e-6,
        decoder_norm_eps: float | None = None,
        mask_type: str = "tube",
        mask_ratio: float = 0.9,
        norm_pix_loss: bool = True,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        del num_classes
        self.num_classes = 0  # no classifier
        if mask_type not in MASK_TYPES:
            raise InputError(f"mask_type must be one of {list(MASK_TYPES)}, got {mask_type!r}")
        if not 0.0 <= mask_ratio < 1.0:
            raise InputError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if len(mean) != in_channels or len(std) != in_channels:
            raise InputError(f"mean and std need {in_channels} values, got {list(mean)} and {list(std)}")
        self.encoder = VisionTransformer3d(
            img_size=img_size,
            num_frames=num_frames,
            patch_size=patch_size,
            tubelet_size=tubelet_size,
            in_channels=in_channels,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            norm_eps=norm_eps,
            use_mean_pooling=False,
            init_values=init_values,
            drop_path_rate=drop_path_rate,
        )
        self.tubelet, self.patch_size = tubelet_size, patch_size
        self.grid = self.encoder.grid
        self.out_dim = in_channels * tubelet_size * patch_size * patch_size
        self.encoder_to_decoder = nn.Linear(embed_dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder = PretrainDecoder(
            decoder_dim,
            decoder_depth,
            decoder_num_heads,
            self.out_dim,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            norm_eps=norm_eps,
            final_norm_eps=norm_eps if decoder_norm_eps is None else decoder_norm_eps,
            init_values=init_values,
        )
        n = self.grid[0] * self.grid[1] * self.grid[2]
        self.register_buffer("decoder_pos_embed", sincos_table(n, decoder_dim), persistent=False)
        self.mask_type, self.mask_ratio, self.norm_pix_loss = mask_type, float(mask_ratio), bool(norm_pix_loss)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32), persistent=False)
        init_vit_weights(self.decoder)
        nn.init.xavier_uniform_(self.encoder_to_decoder.weight)
        trunc_normal_(self.mask_token)

    def token_grid(self, x: torch.Tensor) -> tuple[int, int, int]:
        """``(T', H', W')`` of a ``(B, C, T, H, W)`` clip (errors name a size that is not a multiple of the tube)."""
        return token_grid(x, (self.tubelet, self.patch_size, self.patch_size))

    def draw_mask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Masks for the clips of ``x`` (``mask_type`` / ``mask_ratio``), on ``x``'s device."""
        return mask_batch(x.shape[0], self.token_grid(x), self.mask_ratio, self.mask_type, generator).to(x.device)

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets of every token, ``(B, N, 3 * tubelet * patch * patch)`` float32."""
        shape = (1, -1, 1, 1, 1)
        frames = x.float() * self.pixel_std.view(shape) + self.pixel_mean.view(shape)  # back to [0, 1]
        tubes = patchify(frames, self.tubelet, self.patch_size)  # (B, N, P, C)
        if self.norm_pix_loss:
            tubes = (tubes - tubes.mean(dim=-2, keepdim=True)) / (
                tubes.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
            )
        return tubes.flatten(2)

    def forward_decoder(self, visible: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predictions ``(B, N_masked, out_dim)`` from the encoder's normalized visible tokens."""
        x = self.encoder_to_decoder(visible)
        b, _, c = x.shape
        pos = self.decoder_pos_embed
        if pos.shape[1] != mask.shape[1]:  # another clip size than built for: the table of its token count
            pos = sincos_table(mask.shape[1], c).to(x.device)
        pos = pos.to(x.dtype).expand(b, -1, -1)
        pos_visible = pos[~mask].reshape(b, -1, c)
        pos_masked = pos[mask].reshape(b, -1, c)
        full = torch.cat((x + pos_visible, self.mask_token.to(x.dtype) + pos_masked), dim=1)
        return self.decoder(full, pos_masked.shape[1])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if mask is None:
            mask = self.draw_mask(x)
        mask = mask.to(device=x.device, dtype=torch.bool)
        visible, _ = self.encoder.forward_visible(x, mask)
        pred = self.forward_decoder(self.encoder.norm(visible), mask)
        target = self.targets(x)
        target = target[mask].reshape(x.shape[0], -1, target.shape[-1])
        loss = F.mse_loss(pred.float(), target)
        return {"loss": loss, "pred": pred, "target": target, "mask": mask}


_SIZES = {  # encoder widths and the decoder each original pre-training script pairs with them
    "s": dict(embed_dim=384, depth=12, num_heads=6, decoder_dim=192, decoder_num_heads=3, decoder_depth=4),
    "b": dict(embed_dim=768, depth=12, num_heads=12, decoder_dim=384, decoder_num_heads=6, decoder_depth=4),
    "l": dict(embed_dim=1024, depth=24, num_heads=16, decoder_dim=512, decoder_num_heads=8, decoder_depth=12),
    "h": dict(embed_dim=1280, depth=32, num_heads=16, decoder_dim=640, decoder_num_heads=8, decoder_depth=12),
}


def _register(size: str, label: str) -> None:
    fixed = _SIZES[size]

    def builder(*, num_classes: int = 0, **kwargs) -> VideoMAEPretrain:
        return VideoMAEPretrain(num_classes=num_classes, **{**fixed, **kwargs})

    name = f"videomae_pretrain_vit_{size}"
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"VideoMAE {label}/16 masked autoencoder (16 frames, 224 px, tubelet 2, tube masking at 90%; decoder "
        f"{fixed['decoder_dim']} wide, {fixed['decoder_depth']} blocks)."
    )
    register_model(input_shape=(3, 16, 224, 224), task="pretrain")(builder)
    globals()[name] = builder
    __all__.append(name)


for _size, _label in (("s", "ViT-S"), ("b", "ViT-B"), ("l", "ViT-L"), ("h", "ViT-H")):
    _register(_size, _label)
