"""torchvision state dicts -> vidlab names.

Covered so far: torchvision's **image** ResNets (``resnet18`` ... ``resnet152``, e.g. ImageNet weights), loaded
as the 2D backbone of the frame-level families (TSN, TSM, TIN, TANet, TRN). vidlab's 2D ResNet uses
torchvision's parameter names, so the mapping is ``key -> "backbone." + key``; the ImageNet classifier
``fc.*`` is dropped. torchvision's video models (``r3d_18``, ``r2plus1d_18``, ``mvit``, ``swin3d``) are not
covered yet.
"""

from __future__ import annotations

import torch

__all__ = ["convert", "looks_like_image_resnet"]


def looks_like_image_resnet(keys) -> bool:
    """Whether ``keys`` are those of a torchvision image ResNet (``conv1.weight``, ``bn1.*``, ``layer1.0.*``)."""
    keys = {k.removeprefix("module.") for k in keys}
    return "conv1.weight" in keys and "bn1.running_mean" in keys and any(k.startswith("layer1.0.") for k in keys)


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a torchvision image ResNet's state dict to a vidlab 2D backbone's (``backbone.*``), without ``fc``.

    Raises:
        NotImplementedError: for torchvision layouts other than an image ResNet (the video models).
    """
    if not looks_like_image_resnet(state_dict):
        raise NotImplementedError(
            "only torchvision image ResNets (2D backbones) can be converted so far; torchvision video models "
            "(r3d, r2plus1d, mvit, swin3d) are not covered yet"
        )
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if not key.startswith("fc."):
            out["backbone." + key] = value
    return out
