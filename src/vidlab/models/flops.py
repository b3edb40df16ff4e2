"""Multiply-adds of a registered model's forward pass, counted by ``torch.utils.flop_counter`` (``vidlab flops``).

One multiply-add is two FLOPs; the counter sees the matrix products and convolutions (attention included), not
element-wise operations, normalisations or pooling, as mmengine's and fvcore's counters (docs/MODEL_ZOO.md compares
the three).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidlab.errors import InputError
from vidlab.models._registry import create_model, get_model_info

__all__ = ["count_macs"]

#: tasks whose models take one clip and return scores (detectors also need boxes, pre-training models masks)
_CLIP_TASKS = ("recognition", "counting", "audio")


def count_macs(name: str, shape: tuple[int, ...] | None = None, **kwargs) -> tuple[float, bool]:
    """Multiply-adds of one eval-mode forward of ``name`` (built with ``kwargs``) on a ``(1, *shape)`` input.

    Args:
        name: a registered recognition, counting or audio model.
        shape: the clip ``(C, T, H, W)``; None: the model's registered input shape.
        **kwargs: builder arguments (``num_classes`` ...).

    Returns:
        ``(multiply-adds, fallback)``: the count runs on the meta device (no weights, no arithmetic) and falls back
        to real CPU tensors (``fallback`` True) where an operation has no meta kernel.

    Raises:
        InputError: a model that does not take a clip alone (a detector, a pre-training model, an encoder tower).
    """
    info = get_model_info(name)
    if info.task not in _CLIP_TASKS:
        raise InputError(f"{name} is a {info.task} model; FLOPs are counted for models that take a clip alone")
    shape = tuple(shape) if shape is not None else info.input_shape
    try:
        with torch.device("meta"):
            model = create_model(name, **kwargs).eval()
            x = torch.empty(1, *shape)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return counter.get_total_flops() / 2, False
    except (NotImplementedError, RuntimeError):
        model = create_model(name, **kwargs).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *shape))
        return counter.get_total_flops() / 2, True
