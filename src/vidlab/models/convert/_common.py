"""Pieces the converters share."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

from vidlab.errors import InputError

__all__ = ["as_detector", "collect", "fast_first", "last_width", "layer3_is_2d", "stack_qkv", "under_backbone"]


def collect(pairs: Iterable[tuple[str, str, torch.Tensor]], toolbox: str) -> dict[str, torch.Tensor]:
    """``{new key: value}`` from ``(old key, new key, value)`` triples.

    Raises:
        ValueError: if two keys map to the same new key (naming both and ``toolbox``).
    """
    out: dict[str, torch.Tensor] = {}
    for key, new, value in pairs:
        if new in out:
            raise InputError(f"{toolbox} keys collide after renaming: {key!r} -> {new!r} (already present)")
        out[new] = value
    return out


def as_detector(converted: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict in a recognizer's vidlab layout moved into an ``ActionDetector``'s: the recognizer is the
    detector's ``backbone`` (``backbone.X`` -> ``backbone.backbone.X``); ``head.fc.*`` (the per-box classifier) and
    every other key keep their names."""
    return {("backbone." + k if k.startswith("backbone.") else k): v for k, v in converted.items()}


def fast_first(weight: torch.Tensor, fast_channels: int) -> torch.Tensor:
    """A SlowFast classifier weight over (slow, fast) features reordered for (fast, slow) features."""
    slow = weight.shape[1] - fast_channels
    return torch.cat((weight[:, slow:], weight[:, :slow]), dim=1)


def last_width(sd: dict[str, torch.Tensor], prefix: str) -> int:
    """Output channels of the last block under ``prefix`` (the size of its last ``norm_c`` / ``c_bn``)."""
    norms = [k for k in sd if k.startswith(prefix) and re.search(r"norm_c\.weight$|c_bn\.weight$", k)]
    return sd[norms[-1]].shape[0]


def layer3_is_2d(converted: dict[str, torch.Tensor]) -> bool:
    """Whether converted ResNet weights have no temporal kernel in ``layer3`` (C2D rather than Slow)."""
    kernels = [v.shape[2] for k, v in converted.items() if re.fullmatch(r"backbone\.layer3\.\d+\.conv1\.weight", k)]
    return bool(kernels) and max(kernels) == 1


def under_backbone(
    state_dict: dict[str, torch.Tensor], toolbox: str, strip: tuple[str, ...] = ("module.",)
) -> dict[str, torch.Tensor]:
    """The layout of a model whose vidlab names are the original ones under ``backbone.``: each of the ``strip``
    prefixes is removed in turn, ``head.*`` becomes ``head.fc.*`` and every other key gains ``backbone.``."""

    def rename(key: str) -> str:
        for prefix in strip:
            key = key.removeprefix(prefix)
        return "head.fc." + key.removeprefix("head.") if key.startswith("head.") else "backbone." + key

    return collect(((k, rename(k), v) for k, v in state_dict.items()), toolbox)


def stack_qkv(parts: dict[str, torch.Tensor], names: tuple[str, str, str], where: str) -> torch.Tensor:
    """Separate query / key / value projections (``parts[names[i]]``) stacked into one fused ``qkv`` tensor.

    Raises:
        ValueError: naming ``where`` if one of the three is missing.
    """
    if set(parts) != set(names):
        raise InputError(f"{where}: expected {', '.join(names)} projections, got {sorted(parts)}")
    return torch.cat([parts[n] for n in names])
