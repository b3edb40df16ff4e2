"""torchvision state dicts -> vidlab names.

Two layouts are covered:

- **image** ResNets (``resnet18`` ... ``resnet152``, e.g. ImageNet weights), loaded as the 2D backbone of the
  frame-level families (TSN, TSM, TIN, TANet, TRN, C2D). vidlab's 2D ResNet uses torchvision's parameter names,
  so the mapping is ``key -> "backbone." + key``; the ImageNet classifier ``fc.*`` is dropped.
- the **video** ``r2plus1d_18`` (-> vidlab's ``r2plus1d_r18``, the backbone of SEVERE's self-supervised
  checkpoints): ``stem.0/1/3/4`` -> ``backbone.conv1.conv_s / conv1.bn_mid / conv1.conv_t / bn1``;
  ``layerK.J.convN.0.0/.0.1/.0.3`` -> ``backbone.layerK.J.convN.conv_s/.bn_mid/.conv_t``, ``convN.1`` -> ``bnN``;
  ``downsample`` keeps its names under ``backbone.``; ``fc`` -> ``head.fc`` (kept: Kinetics-400 classes).

torchvision's other video models (``r3d_18``, ``mc3_18``, ``mvit``, ``swin3d``) are not covered.
"""

from __future__ import annotations

import re

import torch

__all__ = ["convert", "looks_like_image_resnet", "looks_like_r2plus1d"]

_R2PLUS1D_RULES = [
    (re.compile(r"^stem\.0\."), "backbone.conv1.conv_s."),
    (re.compile(r"^stem\.1\."), "backbone.conv1.bn_mid."),
    (re.compile(r"^stem\.3\."), "backbone.conv1.conv_t."),
    (re.compile(r"^stem\.4\."), "backbone.bn1."),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.0\."), r"backbone.\1.conv\2.conv_s."),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.1\."), r"backbone.\1.conv\2.bn_mid."),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.3\."), r"backbone.\1.conv\2.conv_t."),
    (re.compile(r"^(layer\d\.\d+)\.conv(\d)\.1\."), r"backbone.\1.bn\2."),
    (re.compile(r"^(layer\d\.\d+)\.downsample\."), r"backbone.\1.downsample."),
    (re.compile(r"^fc\."), "head.fc."),
]


def looks_like_image_resnet(keys) -> bool:
    """Whether ``keys`` are those of a torchvision image ResNet (``conv1.weight``, ``bn1.*``, ``layer1.0.*``)."""
    keys = {k.removeprefix("module.") for k in keys}
    return "conv1.weight" in keys and "bn1.running_mean" in keys and any(k.startswith("layer1.0.") for k in keys)


def looks_like_r2plus1d(keys) -> bool:
    """Whether ``keys`` are those of torchvision's ``r2plus1d_18`` (a factorised stem ``stem.3``)."""
    keys = {k.removeprefix("module.") for k in keys}
    return "stem.0.weight" in keys and "stem.3.weight" in keys and "layer1.0.conv1.0.0.weight" in keys


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a torchvision image ResNet's state dict to a vidlab 2D backbone's (``backbone.*``, without ``fc``),
    or an ``r2plus1d_18`` state dict to ``r2plus1d_r18``'s.

    Raises:
        NotImplementedError: for other torchvision layouts (``r3d_18``, ``mc3_18``, ``mvit``, ``swin3d``).
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if looks_like_r2plus1d(sd):
        out = {}
        for key, value in sd.items():
            new = key
            for pattern, repl in _R2PLUS1D_RULES:
                new, n = pattern.subn(repl, key)
                if n:
                    break
            out[new] = value
        return out
    if not looks_like_image_resnet(sd):
        raise NotImplementedError(
            "only torchvision image ResNets (2D backbones) and the video r2plus1d_18 can be converted; other "
            "torchvision video models (r3d_18, mc3_18, mvit, swin3d) are not covered"
        )
    return {"backbone." + k: v for k, v in sd.items() if not k.startswith("fc.")}
