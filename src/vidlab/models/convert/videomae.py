"""MCG-NJU VideoMAE and OpenGVLab VideoMAE V2 fine-tune checkpoints (timm-style ViT keys) -> vidlab names.

vidlab's :class:`~vidlab.models.videomae.VideoMAE` keeps the original names under ``backbone.``
(``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.q_bias, attn.v_bias, attn.proj, norm2, mlp.fc1, mlp.fc2,
gamma_1, gamma_2}``, ``fc_norm`` / ``norm``, a learned ``pos_embed``); ``head`` becomes ``head.fc``. A leading
``module.`` (DeepSpeed / DDP) or ``encoder.`` (pre-training checkpoints) is removed. The pre-training decoder and
mask token have no counterpart and are reported as unexpected keys.
"""

from __future__ import annotations

import torch

from vidlab.models.convert._common import under_backbone

__all__ = ["convert"]


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename an original VideoMAE / VideoMAE V2 ViT state dict (``model`` is accepted for the common signature)."""
    del model
    return under_backbone(state_dict, "VideoMAE", strip=("module.", "encoder."))
