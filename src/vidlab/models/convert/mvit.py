"""MViT checkpoints of PyTorchVideo (v1) and PySlowFast (v1 and v2) -> vidlab names.

vidlab's :class:`~vidlab.models.mvit.MViT` uses PySlowFast's names under ``backbone.`` (``patch_embed.proj``,
``cls_token``, ``pos_embed_spatial/temporal/class``, ``blocks.N.{norm1, attn.{qkv, proj, pool_q/k/v, norm_q/k/v,
rel_pos_t/h/w}, norm2, mlp.fc1/fc2, proj}``, ``norm``); the classifier is ``head.fc``.

- PySlowFast: ``norm`` -> ``backbone.norm``, ``head.projection`` -> ``head.fc``, everything else under
  ``backbone.``.
- PyTorchVideo: ``patch_embed.patch_model`` -> ``patch_embed.proj``; ``cls_positional_encoding.*`` loses that level;
  the separate ``attn.q/k/v`` projections are stacked into ``attn.qkv``; ``norm_embed`` -> ``norm``;
  ``head.proj`` -> ``head.fc``. Its pooled query/key/value norms use LayerNorm eps 1e-5 (``pool_norm_eps=1e-5``,
  set by :data:`~vidlab.models.convert.pytorchvideo.HUB_MODELS`).
"""

from __future__ import annotations

import re

import torch

from vidlab.models.convert._common import collect, stack_qkv

__all__ = ["convert_pyslowfast", "convert_pytorchvideo", "looks_like_pyslowfast_mvit", "looks_like_pytorchvideo_mvit"]


def looks_like_pytorchvideo_mvit(keys) -> bool:
    return any(re.match(r"^(module\.)?cls_positional_encoding\.", k) for k in keys)


def looks_like_pyslowfast_mvit(keys) -> bool:
    keys = {k.removeprefix("module.") for k in keys}
    return "patch_embed.proj.weight" in keys and "head.projection.weight" in keys and "blocks.0.attn.qkv.weight" in keys


def convert_pyslowfast(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    def rename(key: str) -> str:
        key = key.removeprefix("module.")
        if key.startswith("head.projection."):
            return "head.fc." + key.removeprefix("head.projection.")
        return "backbone." + key

    return collect(((k, rename(k), v) for k, v in state_dict.items()), "PySlowFast")


def convert_pytorchvideo(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    pairs, qkv = [], {}
    for key, value in sd.items():
        if m := re.match(r"blocks\.(\d+)\.attn\.([qkv])\.(weight|bias)$", key):
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
            continue
        new = key.replace("patch_embed.patch_model.", "patch_embed.proj.").removeprefix("cls_positional_encoding.")
        new = new.replace("norm_embed.", "norm.")
        new = "head.fc." + new.removeprefix("head.proj.") if new.startswith("head.proj.") else "backbone." + new
        pairs.append((key, new, value))
    for (block, kind), parts in qkv.items():
        stacked = stack_qkv(parts, ("q", "k", "v"), f"PyTorchVideo MViT block {block} ({kind})")
        pairs.append((f"blocks.{block}.attn.q/k/v.{kind}", f"backbone.blocks.{block}.attn.qkv.{kind}", stacked))
    return collect(pairs, "PyTorchVideo")
