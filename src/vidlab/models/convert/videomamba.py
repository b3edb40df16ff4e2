"""Official VideoMamba checkpoints (OpenGVLab/VideoMamba ``videomamba_tiny/small/middle``) -> vidlab names.

vidlab keeps the official parameter names under ``backbone.`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``temporal_pos_embedding``, ``layers.N.mixer.*`` with the backward branch's ``*_b`` parameters, ``layers.N.norm``,
``norm_f``); the classifier ``head`` becomes ``head.fc``. Every key of the official layout is covered
(``tests/assets/videomamba_keys.json`` lists them).
"""

from __future__ import annotations

import torch

from vidlab.models.convert._common import under_backbone

__all__ = ["convert"]


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename an official VideoMamba state dict (``model`` is accepted for the common signature)."""
    del model
    return under_backbone(state_dict, "VideoMamba", strip=("module.",))
