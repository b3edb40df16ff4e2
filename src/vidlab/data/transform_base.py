"""What the per-sample transforms share: the ``results`` dict accessors, the boxes that travel with the frames,
argument checks and the base class (see :mod:`vidlab.data.transforms` for the ``results`` layout)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vidlab.errors import InputError

Box = tuple[int, int, int, int]  # (x1, y1, x2, y2), right/bottom exclusive


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """An int or a ``(w, h)`` pair as a tuple of two ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise InputError(f"{name} must be a positive int or a (w, h) pair of positive ints, got {value!r}")
    return pair


def _float_range(value: Sequence[float], name: str) -> tuple[float, float]:
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or pair[0] > pair[1]:
        raise InputError(f"{name} must be a (low, high) pair with low <= high, got {value!r}")
    return pair


def _imgs(results: dict) -> torch.Tensor:
    imgs = results["imgs"]
    if isinstance(imgs, np.ndarray):
        imgs = torch.from_numpy(imgs)
    if imgs.ndim != 4:
        raise InputError(f"results['imgs'] must be (N, H, W, C), got shape {tuple(imgs.shape)}")
    return imgs


def _rng(results: dict) -> np.random.Generator:
    if results.get("rng") is None:
        results["rng"] = np.random.default_rng()
    return results["rng"]


#: results keys of ``(n, 4)`` pixel boxes that geometric transforms move with the frames
BOX_KEYS = ("gt_bboxes", "proposals")
#: per-box arrays that go with a box a crop drops
_BOX_EXTRAS = {"gt_bboxes": ("gt_labels",), "proposals": ("proposal_scores",)}


def _move_boxes(
    results: dict,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    crop_box: Box | None = None,
    hflip_width: int | None = None,
) -> None:
    """Apply a resize (``scale`` = (sx, sy)), a crop (boxes shifted, clipped to it, empty ones dropped) or a
    horizontal flip of frames ``hflip_width`` wide to the boxes in ``results``."""
    for key in BOX_KEYS:
        if results.get(key) is None:
            continue
        b = np.asarray(results[key], dtype=np.float32).reshape(-1, 4) * np.float32([*scale, *scale])
        if crop_box is not None:
            x1, y1, x2, y2 = crop_box
            b = b - np.float32([x1, y1, x1, y1])
            b[:, 0::2] = b[:, 0::2].clip(0, x2 - x1)
            b[:, 1::2] = b[:, 1::2].clip(0, y2 - y1)
            keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b = b[keep]
            for extra in _BOX_EXTRAS[key]:
                if results.get(extra) is not None:
                    results[extra] = results[extra][keep]
        if hflip_width is not None:
            b = np.stack([hflip_width - b[:, 2], b[:, 1], hflip_width - b[:, 0], b[:, 3]], axis=1)
        results[key] = b


def _has_boxes(results: dict) -> bool:
    return any(results.get(k) is not None for k in BOX_KEYS)


def _check_rgb(results: dict, name: str) -> None:
    if results.get("modality") == "Flow":
        raise InputError(f"{name} changes colours of RGB frames; remove it from the pipeline of flow frames")


def _set_imgs(results: dict, imgs: torch.Tensor, **extra: Any) -> dict:
    if "crop_bbox" in extra and _has_boxes(results):
        _move_boxes(results, crop_box=tuple(int(v) for v in extra["crop_bbox"]))
    results["imgs"] = imgs
    results["img_shape"] = tuple(imgs.shape[1:3])
    results.update(extra)
    return results


def _check_fits(crop_w: int, crop_h: int, img_w: int, img_h: int, name: str) -> None:
    if crop_w > img_w or crop_h > img_h:
        raise InputError(f"{name}: crop (w={crop_w}, h={crop_h}) is larger than the frames (w={img_w}, h={img_h})")


class _Transform:
    """Base of the transform classes: a repr built from the constructor arguments (stored under their names)."""

    def __repr__(self) -> str:
        params = inspect.signature(type(self)).parameters
        return f"{type(self).__name__}({', '.join(f'{name}={getattr(self, name)!r}' for name in params)})"
