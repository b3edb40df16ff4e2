"""Per-sample video transforms: functional kernels plus small callable classes.

Transforms act on a ``results`` dict, the layout MMAction2 users know:

* ``"imgs"``: uint8 tensor ``(N, H, W, C)``, the ``N = num_clips * clip_len`` frames of one
  sample stacked along the first axis. Multi-crop transforms multiply ``N`` by their number of
  crops (crop-major: all frames of crop 0, then all frames of crop 1, ...).
* ``"label"``: int or list of ints; ``"num_clips"``, ``"clip_len"``: the sampler's values.
* ``"rng"``: a :class:`numpy.random.Generator`, the only source of randomness, so a seeded
  generator makes a pipeline reproducible. If it is missing, a fresh unseeded one is created
  and stored in ``results``.

* ``"modality"``: ``"Flow"`` when the frames are optical flow, uint8 ``(N, H, W, 2)`` (x, y components; absent or
  ``"RGB"`` otherwise). ``Flip`` then also inverts the x component (:func:`vidlab.data.flow.flip_flow`).

Transforms may add ``"img_shape"`` ``(H, W)``, ``"crop_bbox"`` ``(x1, y1, x2, y2)`` relative to
the image they cropped, ``"flip"``, ``"flip_direction"`` and ``"num_crops"``.

Boxes (action detection) travel with the frames: ``"gt_bboxes"`` and ``"proposals"`` (MMAction2's names), float
``(n, 4)`` arrays ``[x1, y1, x2, y2]`` in pixels of ``"imgs"``, are scaled by resizes, shifted and clipped to the
crop by crops (a box left with no area is dropped, with its rows of ``"gt_labels"`` / ``"proposal_scores"``) and
mirrored by horizontal flips. Multi-crop and vertical flip refuse boxes.

The classes mirror MMAction2 1.2.0 transforms of the same names and arguments (the geometry,
including crop positions and size rounding, matches it exactly), so MMAction2 pipelines
translate 1:1 through :func:`build_pipeline`. Differences are listed in each class docstring.
They never loop over frames in Python: crops are views, flips and multi-crops one copy, and a
resize is a single ``interpolate`` call over all frames.

Normalization is not a per-sample transform: :func:`vidlab.data.batch_transforms.normalize_batch` converts a
collated uint8 batch to normalized float on whatever device the batch lives on (transfer uint8, not float).
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.data.flow import flip_flow
from vidlab.data.randaugment import RandAugment
from vidlab.data.transform_base import (
    Box,
    _check_fits,
    _check_rgb,
    _float_range,
    _has_boxes,
    _imgs,
    _move_boxes,
    _pair,
    _rng,
    _set_imgs,
    _Transform,
)
from vidlab.errors import ArgumentTypeError, InputError

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")
# Kernels torch runs natively on uint8 (channels-last, SIMD) and that agree with the float path.
_UINT8_MODES = ("nearest", "bilinear")


# --------------------------------------------------------------------------- functional kernels


def rescale_size(size: tuple[int, int], scale: float | tuple[float, float]) -> tuple[int, int]:
    """Output ``(w, h)`` of an aspect-preserving resize, with MMAction2/mmcv rounding.

    Args:
        size: Input ``(w, h)``.
        scale: A scale factor, or ``(edge_a, edge_b)``: the largest size whose long side is at most
            ``max(edge_a, edge_b)`` and short side at most ``min(edge_a, edge_b)``. An edge of -1
            (or ``inf``) leaves that side free, so ``(-1, 256)`` means "short side 256".

    Returns:
        ``(new_w, new_h)``, each ``int(side * factor + 0.5)``.
    """
    w, h = size
    if isinstance(scale, (int, float)):
        factor = float(scale)
    else:
        long_edge, short_edge = max(scale), min(scale)
        if short_edge == -1:
            long_edge, short_edge = math.inf, long_edge
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def resize(
    imgs: torch.Tensor, size: tuple[int, int], interpolation: str = "bilinear", antialias: bool = True
) -> torch.Tensor:
    """Resizes all frames in one ``interpolate`` call.

    Args:
        imgs: ``(N, H, W, C)`` tensor, uint8 or float; may be a non-contiguous view (a crop).
        size: Output ``(h, w)``.
        interpolation: "nearest", "bilinear", "bicubic" or "area".
        antialias: Low-pass filter when downscaling (bilinear/bicubic). MMAction2 resizes with
            OpenCV, which does not; ``antialias=False`` reproduces its bilinear output within
            one intensity level.

    Returns:
        ``(N, h, w, C)`` tensor of the input dtype (uint8 results are rounded and clamped).
    """
    if interpolation not in _INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if tuple(imgs.shape[1:3]) == tuple(size):
        return imgs
    x = imgs.permute(0, 3, 1, 2)  # (N, C, H, W) view, channels-last in memory
    # Antialiasing only changes downscaling; the plain kernel is faster when no side shrinks.
    shrinks = size[0] < imgs.shape[1] or size[1] < imgs.shape[2]
    kwargs = {"antialias": antialias and shrinks} if interpolation in ("bilinear", "bicubic") else {}
    if imgs.dtype == torch.uint8 and interpolation in _UINT8_MODES:
        out = F.interpolate(x, size=tuple(size), mode=interpolation, **kwargs)
    else:
        out = F.interpolate(x.float(), size=tuple(size), mode=interpolation, **kwargs)
        if imgs.dtype == torch.uint8:
            out = out.round_().clamp_(0, 255)
        out = out.to(imgs.dtype)
    return out.permute(0, 2, 3, 1)  # (N, h, w, C)


def crop(imgs: torch.Tensor, box: Box) -> torch.Tensor:
    """Crops all frames to ``box = (x1, y1, x2, y2)``; returns a view, no copy."""
    x1, y1, x2, y2 = box
    return imgs[:, y1:y2, x1:x2]


def hflip(imgs: torch.Tensor) -> torch.Tensor:
    """Mirrors all frames left-right."""
    return imgs.flip(2)


def vflip(imgs: torch.Tensor) -> torch.Tensor:
    """Mirrors all frames top-bottom."""
    return imgs.flip(1)


def multi_crop(imgs: torch.Tensor, boxes: Sequence[Box], with_flips: bool = False) -> torch.Tensor:
    """Stacks several equally sized crops of all frames along the frame axis.

    Args:
        imgs: ``(N, H, W, C)`` tensor.
        boxes: Crop boxes ``(x1, y1, x2, y2)`` of equal size.
        with_flips: Follow every crop by its horizontal mirror (TenCrop).

    Returns:
        ``(K * N, h, w, C)`` tensor, crop-major, with ``K = len(boxes) * (2 if with_flips else 1)``.
    """
    parts = []
    for box in boxes:
        part = crop(imgs, box)
        parts.extend([part, hflip(part)] if with_flips else [part])
    return torch.cat(parts, dim=0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of float RGB planes ``(3, ...)`` with MMAction2's weights, shape ``(...)``."""
    r, g, b = x
    return (0.2989 * r).add_(g, alpha=0.587).add_(b, alpha=0.114)


# The colour kernels take float RGB with channels first, ``(3, ..., H, W)``: each channel is then a
# contiguous plane and every step is a plain vectorized elementwise op.


def adjust_brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Scales intensities of float RGB ``(3, ..., H, W)`` (no clamping, as MMAction2)."""
    return x * factor


def adjust_contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blends float RGB ``(3, ..., H, W)`` with the mean luma of each ``(H, W)`` image."""
    mean = _gray(x).mean(dim=(-2, -1), keepdim=True)
    return (factor * x).add_(mean, alpha=1 - factor)


def adjust_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blends float RGB ``(3, ..., H, W)`` with its per-pixel luma."""
    return (factor * x).add_(_gray(x), alpha=1 - factor)


def adjust_hue(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Rotates the hue of float RGB ``(3, ..., H, W)`` by ``int(factor * 255)`` steps of 2 degrees.

    Matches MMAction2's ``ColorJitter.adjust_hue`` (which goes through OpenCV's uint8 HSV, where
    hue has 180 steps), including its clipping and truncation to uint8 before the rotation, but
    computes the rotation in float: OpenCV additionally rounds hue to 2 degrees and saturation to
    1/255, so results differ by a few intensity levels.

    Args:
        x: Float RGB, channels first, values in ``[0, 255]`` (clipped first).
        factor: Hue shift as a fraction, in ``[-0.5, 0.5]``.

    Returns:
        Float RGB with integer values in ``[0, 255]``.
    """
    r, g, b = x.clamp(0, 255).floor_()
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    # Which channel holds the max (red first, then green, as OpenCV). Values are integers, so
    # clamp(1 - (max - c), 0, 1) is 1 where c == max and 0 elsewhere; float arithmetic instead of
    # masks and torch.where keeps every step a cheap vectorized op.
    red = (r - maxc).add_(1).clamp_(0, 1)
    green = (g - maxc).add_(1).clamp_(0, 1).mul_(1 - red)
    blue = (1 - red).sub_(green)
    # Hue in sextants: (g - b) / delta if red is the max, 2 + (b - r) / delta if green, 4 + (r - g) / delta if blue.
    hue = red.mul_(g - b).add_(green.mul_((b - r).add_(delta, alpha=2))).add_(blue.mul_((r - g).add_(delta, alpha=4)))
    hue = hue.div_(delta.clamp(min=1)).add_(int(factor * 255) / 30.0)  # 180 OpenCV hue steps = 6 sextants
    # HSV -> RGB without branches: channel n takes max - delta * clamp(min(k, 4 - k), 0, 1), k = (n + hue) mod 6.
    out = torch.empty_like(x)
    for channel, n in zip(out, (5.0, 3.0, 1.0)):
        k = hue + n
        k = k.sub_(torch.floor(k / 6).mul_(6))
        ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
        torch.addcmul(maxc, delta, ramp, value=-1, out=channel)
    return out.round_()


# --------------------------------------------------------------------------- geometric transforms


class Resize(_Transform):
    """Resizes all frames.

    Args:
        scale: With ``keep_ratio=True``, a float scale factor or a pair of edge bounds (see
            :func:`rescale_size`; ``(-1, 256)`` resizes the short side to 256). With
            ``keep_ratio=False``, the exact output ``(w, h)``.
        keep_ratio: Preserve the aspect ratio.
        interpolation: "nearest", "bilinear", "bicubic" or "area" (MMAction2 also offers
            "lanczos", which torch lacks).
        antialias: Low-pass filter when downscaling; MMAction2 (OpenCV) does not, see
            :func:`resize`.
    """

    def __init__(
        self,
        scale: float | Sequence[int],
        keep_ratio: bool = True,
        interpolation: str = "bilinear",
        antialias: bool = True,
    ) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (float, Sequence)):
            raise ArgumentTypeError(
                f"Resize scale must be a float or a (w, h) pair, got {scale!r}; (-1, 256) = short side 256"
            )
        if isinstance(scale, float):
            if scale <= 0 or not keep_ratio:
                raise InputError(f"Resize: a float scale ({scale}) must be positive and needs keep_ratio=True")
        else:
            scale = tuple(scale)
            if len(scale) != 2 or (not keep_ratio and min(scale) <= 0):
                raise InputError(f"Resize scale must be (w, h) with positive sides when keep_ratio=False, got {scale}")
        if interpolation not in _INTERPOLATIONS:
            raise InputError(f"Resize interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
        self.scale = scale
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.antialias = antialias

    def output_size(self, img_h: int, img_w: int) -> tuple[int, int]:
        """Output ``(h, w)`` for input frames of ``(img_h, img_w)``."""
        new_w, new_h = rescale_size((img_w, img_h), self.scale) if self.keep_ratio else self.scale
        return new_h, new_w

    def __call__(self, results: dict) -> dict:
        imgs = _imgs(results)
        size = self.output_size(*imgs.shape[1:3])
        if _has_boxes(results):
            _move_boxes(results, scale=(size[1] / imgs.shape[2], size[0] / imgs.shape[1]))
        return _set_imgs(results, resize(imgs, size, self.interpolation, self.antialias))


class RandomRescale(Resize):
    """Resizes the short side to a random length in ``scale_range`` (both ends included), keeping the aspect
    ratio (MMAction2's ``RandomRescale``, the AVA training resize).

    Args:
        scale_range: ``(low, high)`` short-side lengths.
        interpolation, antialias: as :class:`Resize`.
    """

    def __init__(self, scale_range: Sequence[int], interpolation: str = "bilinear", antialias: bool = True) -> None:
        lo, hi = _pair(scale_range, "RandomRescale scale_range")
        if not 0 < lo <= hi:
            raise InputError(f"RandomRescale scale_range must be 0 < low <= high, got {scale_range!r}")
        super().__init__((-1, lo), interpolation=interpolation, antialias=antialias)
        self.scale_range = (lo, hi)

    def __call__(self, results: dict) -> dict:
        self.scale = (-1, int(_rng(results).integers(self.scale_range[0], self.scale_range[1] + 1)))
        return super().__call__(results)


class RandomCrop(_Transform):
    """Crops a random ``size x size`` square.

    As in MMAction2, the offset is drawn from ``[0, img - size)``: the bottom/right-most position
    is never chosen.

    Args:
        size: Side of the square crop.
    """

    def __init__(self, size: int) -> None:
        self.size = _pair(size, "RandomCrop size")[0]

    def get_crop_box(self, img_h: int, img_w: int, rng: np.random.Generator) -> Box:
        """Draws the crop box for frames of ``(img_h, img_w)``."""
        _check_fits(self.size, self.size, img_w, img_h, "RandomCrop")
        y = int(rng.integers(0, img_h - self.size)) if img_h > self.size else 0
        x = int(rng.integers(0, img_w - self.size)) if img_w > self.size else 0
        return x, y, x + self.size, y + self.size

    def __call__(self, results: dict) -> dict:
        imgs = _imgs(results)
        box = self.get_crop_box(*imgs.shape[1:3], _rng(results))
        return _set_imgs(results, crop(imgs, box), crop_bbox=np.array(box))


class RandomResizedCrop(_Transform):
    """Crops a random box of random area and aspect ratio (the Inception crop); does not resize.

    As in MMAction2, only the box is chosen here: follow it with
    ``Resize((224, 224), keep_ratio=False)``. Ten candidate boxes are drawn; the first that fits is
    used, otherwise the centred square of the short side.

    Args:
        area_range: Range of the crop area as a fraction of the frame area.
        aspect_ratio_range: Range of the crop's w / h, sampled log-uniformly.
    """

    def __init__(
        self,
        area_range: Sequence[float] = (0.08, 1.0),
        aspect_ratio_range: Sequence[float] = (3 / 4, 4 / 3),
    ) -> None:
        self.area_range = _float_range(area_range, "RandomResizedCrop area_range")
        self.aspect_ratio_range = _float_range(aspect_ratio_range, "RandomResizedCrop aspect_ratio_range")
        if not 0 < self.area_range[0] <= self.area_range[1] <= 1:
            raise InputError(f"RandomResizedCrop area_range must lie in (0, 1], got {area_range}")
        if self.aspect_ratio_range[0] <= 0:
            raise InputError(f"RandomResizedCrop aspect_ratio_range must be positive, got {aspect_ratio_range}")

    def get_crop_box(self, img_h: int, img_w: int, rng: np.random.Generator, max_attempts: int = 10) -> Box:
        """Draws the crop box for frames of ``(img_h, img_w)``."""
        log_ratio = np.log(self.aspect_ratio_range)
        ratios = np.exp(rng.uniform(log_ratio[0], log_ratio[1], size=max_attempts))
        areas = rng.uniform(*self.area_range, size=max_attempts) * (img_h * img_w)
        widths = np.round(np.sqrt(areas * ratios)).astype(np.int64)
        heights = np.round(np.sqrt(areas / ratios)).astype(np.int64)
        fits = (widths <= img_w) & (heights <= img_h) & (widths > 0) & (heights > 0)
        if fits.any():
            i = int(np.argmax(fits))
            w, h = int(widths[i]), int(heights[i])
            x = int(rng.integers(0, img_w - w + 1))
            y = int(rng.integers(0, img_h - h + 1))
            return x, y, x + w, y + h
        side = min(img_h, img_w)
        x, y = (img_w - side) // 2, (img_h - side) // 2
        return x, y, x + side, y + side

    def __call__(self, results: dict) -> dict:
        imgs = _imgs(results)
        box = self.get_crop_box(*imgs.shape[1:3], _rng(results))
        return _set_imgs(results, crop(imgs, box), crop_bbox=np.array(box))


class MultiScaleCrop(_Transform):
    """Crops a box whose sides are random multiples of the short side (the TSN crop); does not resize.

    Crop sides are ``int(short_side * s)`` for ``s`` in ``scales``, with width and height scale
    indices at most ``max_wh_scale_gap`` apart; a side within 2 pixels of ``input_size`` snaps to
    it. The box is placed at one of 5 (corners + centre) or 13 fixed positions, or uniformly at
    random with ``random_crop=True``. Follow it with ``Resize(input_size, keep_ratio=False)``.

    Args:
        input_size: Network input ``(w, h)`` (or one int), used only for the snapping.
        scales: Side scales relative to the short side.
        max_wh_scale_gap: Largest allowed gap between the width and height scale indices.
        random_crop: Place the box uniformly at random instead of at fixed positions.
        num_fixed_crops: 5 or 13 fixed positions.
    """

    def __init__(
        self,
        input_size: int | Sequence[int],
        scales: Sequence[float] = (1,),
        max_wh_scale_gap: int = 1,
        random_crop: bool = False,
        num_fixed_crops: int = 5,
    ) -> None:
        if num_fixed_crops not in (5, 13):
            raise InputError(f"MultiScaleCrop num_fixed_crops must be 5 or 13, got {num_fixed_crops}")
        if not scales or any(s <= 0 for s in scales):
            raise InputError(f"MultiScaleCrop scales must be a non-empty sequence of positive numbers, got {scales!r}")
        self.input_size = _pair(input_size, "MultiScaleCrop input_size")
        self.scales = tuple(scales)
        self.max_wh_scale_gap = max_wh_scale_gap
        self.random_crop = random_crop
        self.num_fixed_crops = num_fixed_crops

    def crop_sizes(self, img_h: int, img_w: int) -> list[tuple[int, int]]:
        """Candidate crop ``(w, h)`` for frames of ``(img_h, img_w)``, in MMAction2's order."""
        sides = [int(min(img_h, img_w) * s) for s in self.scales]
        sizes = []
        for i, h in enumerate(sides):
            for j, w in enumerate(sides):
                if abs(i - j) <= self.max_wh_scale_gap:
                    size = [w, h]
                    for k in range(2):
                        if abs(size[k] - self.input_size[k]) < 3:
                            size[k] = self.input_size[k]
                    sizes.append((size[0], size[1]))
        return sizes

    def fixed_offsets(self, img_h: int, img_w: int, crop_w: int, crop_h: int) -> list[tuple[int, int]]:
        """Fixed ``(x, y)`` crop positions, in MMAction2's order."""
        ws, hs = (img_w - crop_w) // 4, (img_h - crop_h) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]  # corners, centre (in quarter steps)
        if self.num_fixed_crops == 13:
            grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        return [(i * ws, j * hs) for i, j in grid]

    def get_crop_box(self, img_h: int, img_w: int, rng: np.random.Generator) -> Box:
        """Draws the crop box for frames of ``(img_h, img_w)``."""
        sizes = self.crop_sizes(img_h, img_w)
        w, h = sizes[int(rng.integers(len(sizes)))]
        _check_fits(w, h, img_w, img_h, "MultiScaleCrop")
        if self.random_crop:
            x, y = int(rng.integers(0, img_w - w + 1)), int(rng.integers(0, img_h - h + 1))
        else:
            offsets = self.fixed_offsets(img_h, img_w, w, h)
            x, y = offsets[int(rng.integers(len(offsets)))]
        return x, y, x + w, y + h

    def __call__(self, results: dict) -> dict:
        imgs = _imgs(results)
        box = self.get_crop_box(*imgs.shape[1:3], _rng(results))
        return _set_imgs(results, crop(imgs, box), crop_bbox=np.array(box), scales=self.scales)


class CenterCrop(_Transform):
    """Crops the centre of all frames.

    Args:
        crop_size: ``(w, h)`` of the crop, or one int for a square.
    """

    def __init__(self, crop_size: int | Sequence[int]) -> None:
        self.crop_size = _pair(crop_size, "CenterCrop crop_size")

    def get_crop_box(self, img_h: int, img_w: int) -> Box:
        """The crop box for frames of ``(img_h, img_w)``."""
        w, h = self.crop_size
        _check_fits(w, h, img_w, img_h, "CenterCrop")
        x, y = (img_w - w) // 2, (img_h - h) // 2
        return x, y, x + w, y + h

    def __call__(self, results: dict) -> dict:
        imgs = _imgs(results)
        box = self.get_crop_box(*imgs.shape[1:3])
        return _set_imgs(results, crop(imgs, box), crop_bbox=np.array(box))


class _MultiCrop(_Transform):
    """Shared body of ThreeCrop and TenCrop: stack fixed crops along the frame axis."""

    with_flips = False

    def __init__(self, crop_size: int | Sequence[int]) -> None:
        self.crop_size = _pair(crop_size, f"{type(self).__name__} crop_size")

    def get_crop_boxes(self, img_h: int, img_w: int) -> list[Box]:
        raise NotImplementedError

    def __call__(self, results: dict) -> dict:
        if _has_boxes(results):
            raise InputError(f"{type(self).__name__}: multi-crop testing of samples with boxes is not supported")
        imgs = _imgs(results)
        boxes = self.get_crop_boxes(*imgs.shape[1:3])
        num_crops = len(boxes) * (2 if self.with_flips else 1)
        return _set_imgs(
            results,
            multi_crop(imgs, boxes, self.with_flips),
            crop_bbox=np.array(boxes),
            num_crops=results.get("num_crops", 1) * num_crops,
        )


class ThreeCrop(_MultiCrop):
    """Three crops along the long side (left/top, right/bottom, middle): ``N -> 3N``.

    The crop must span the full short side (e.g. ``Resize((-1, 256))`` then ``ThreeCrop(256)``).
    ``results["crop_bbox"]`` holds one box per crop, shape ``(3, 4)`` (MMAction2 repeats it per
    frame). ``results["num_crops"]`` is multiplied by 3.

    Args:
        crop_size: ``(w, h)`` of each crop, or one int for squares.
    """

    def get_crop_boxes(self, img_h: int, img_w: int) -> list[Box]:
        """The three crop boxes, in MMAction2's order."""
        w, h = self.crop_size
        _check_fits(w, h, img_w, img_h, "ThreeCrop")
        if h == img_h:
            step = (img_w - w) // 2
            offsets = [(0, 0), (2 * step, 0), (step, 0)]
        elif w == img_w:
            step = (img_h - h) // 2
            offsets = [(0, 0), (0, 2 * step), (0, step)]
        else:
            raise InputError(f"ThreeCrop: crop (w={w}, h={h}) must match the frame width {img_w} or height {img_h}")
        return [(x, y, x + w, y + h) for x, y in offsets]


class TenCrop(_MultiCrop):
    """Four corner crops and the centre crop, each followed by its mirror: ``N -> 10N``.

    ``results["crop_bbox"]`` holds the five boxes, shape ``(5, 4)``; ``results["num_crops"]`` is
    multiplied by 10.

    Args:
        crop_size: ``(w, h)`` of each crop, or one int for squares.
    """

    with_flips = True

    def get_crop_boxes(self, img_h: int, img_w: int) -> list[Box]:
        """The five crop boxes, in MMAction2's order."""
        w, h = self.crop_size
        _check_fits(w, h, img_w, img_h, "TenCrop")
        ws, hs = (img_w - w) // 4, (img_h - h) // 4
        offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
        return [(x, y, x + w, y + h) for x, y in offsets]


# --------------------------------------------------------------------------- flip and colour


class Flip(_Transform):
    """Mirrors all frames with probability ``flip_ratio`` and remaps direction-sensitive labels.

    Args:
        flip_ratio: Probability of flipping.
        direction: "horizontal" or "vertical".
        flip_label_map: Label of the flipped clip for classes whose meaning flips (e.g. "swiping
            left" <-> "swiping right"); labels not in the map are kept. Applied to every entry
            of a list label.

    Flow frames (``results["modality"] == "Flow"``) are flipped by :func:`~vidlab.data.flow.flip_flow` (mirror and
    ``x -> 255 - x``), horizontally only, as MMAction2 intends (its 1.2.0 ``Flip`` inverts whole frames of the stacked
    layout instead; see :mod:`vidlab.data.flow`).
    """

    def __init__(
        self, flip_ratio: float = 0.5, direction: str = "horizontal", flip_label_map: dict[int, int] | None = None
    ) -> None:
        if direction not in ("horizontal", "vertical"):
            raise InputError(f"Flip direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.flip_ratio = flip_ratio
        self.direction = direction
        self.flip_label_map = {int(k): int(v) for k, v in (flip_label_map or {}).items()} or None

    def _map_label(self, label: Any) -> Any:
        if isinstance(label, (list, tuple)):
            return type(label)(self.flip_label_map.get(int(v), v) for v in label)
        return self.flip_label_map.get(operator.index(label), label)

    def __call__(self, results: dict) -> dict:
        if _has_boxes(results) and self.direction != "horizontal":
            raise InputError("Flip: vertical flips of samples with boxes are not supported")
        flow = results.get("modality") == "Flow"
        if flow and self.direction != "horizontal":
            raise InputError("Flip: flow frames (results['modality'] == 'Flow') are flipped horizontally only")
        flip = bool(_rng(results).random() < self.flip_ratio)
        results["flip"] = flip
        results["flip_direction"] = self.direction
        if not flip:
            return results
        if self.flip_label_map is not None and "label" in results:
            results["label"] = self._map_label(results["label"])
        if self.flip_label_map is not None and results.get("gt_labels") is not None:  # multi-hot (boxes, classes)
            old = np.asarray(results["gt_labels"])
            new = old.copy()
            for src, dst in self.flip_label_map.items():
                new[:, dst] = old[:, src]
            results["gt_labels"] = new
        imgs = _imgs(results)
        if _has_boxes(results):
            _move_boxes(results, hflip_width=imgs.shape[2])
        if flow:
            return _set_imgs(results, flip_flow(imgs))
        return _set_imgs(results, hflip(imgs) if self.direction == "horizontal" else vflip(imgs))


def _jitter_range(value: float | Sequence[float], bound: float, center: float, name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        if not 0 <= value <= bound:
            raise InputError(f"ColorJitter {name} must be in [0, {bound}], got {value}")
        return center - value, center + value
    low, high = _float_range(value, f"ColorJitter {name}")
    if not center - bound <= low <= high <= center + bound:
        raise InputError(f"ColorJitter {name} range must lie in [{center - bound}, {center + bound}], got {value}")
    return low, high


class ColorJitter(_Transform):
    """Random brightness, contrast, saturation and hue, the same for all frames of a sample.

    Follows MMAction2 1.x's ``ColorJitter``: factors are drawn uniformly from
    ``1 +- brightness``, ``1 +- contrast``, ``1 +- saturation`` and ``+- hue``; contrast blends
    with each frame's mean luma; no clamping happens between operations except before the hue
    step; the result is clipped and truncated to uint8. Differences: hue is rotated in float (see
    :func:`adjust_hue`), and the order of the four operations is drawn from ``results["rng"]``
    for every sample unless ``order`` fixes it (MMAction2 draws one order when the transform is
    built, from the global numpy state, and keeps it for the whole run; pass ``order`` to
    reproduce that). Negative hue draws follow MMAction2 under numpy 1; under numpy >= 2
    MMAction2 1.2.0 itself raises OverflowError on them.

    Args:
        brightness: Jitter amount, or an explicit ``(low, high)`` factor range within ``[0, 2]``.
        contrast: Same, for contrast.
        saturation: Same, for saturation.
        hue: Jitter amount in ``[0, 0.5]``, or a ``(low, high)`` range within ``[-0.5, 0.5]``.
        order: Fixed order of the operations, a permutation of
            ``("brightness", "contrast", "saturation", "hue")``, or None for a random order.
    """

    OPS = ("brightness", "contrast", "saturation", "hue")

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.5,
        contrast: float | Sequence[float] = 0.5,
        saturation: float | Sequence[float] = 0.5,
        hue: float | Sequence[float] = 0.1,
        order: Sequence[str] | None = None,
    ) -> None:
        self.brightness = _jitter_range(brightness, 1, 1, "brightness")
        self.contrast = _jitter_range(contrast, 1, 1, "contrast")
        self.saturation = _jitter_range(saturation, 1, 1, "saturation")
        self.hue = _jitter_range(hue, 0.5, 0, "hue")
        if order is not None and sorted(order) != sorted(self.OPS):
            raise InputError(f"ColorJitter order must be a permutation of {self.OPS}, got {order!r}")
        self.order = tuple(order) if order is not None else None

    def __call__(self, results: dict) -> dict:
        _check_rgb(results, "ColorJitter")
        rng = _rng(results)
        factors = {
            "brightness": rng.uniform(*self.brightness),
            "contrast": rng.uniform(*self.contrast),
            "saturation": rng.uniform(*self.saturation),
            "hue": rng.uniform(*self.hue),
        }
        order = self.order or tuple(self.OPS[i] for i in rng.permutation(4))
        imgs = _imgs(results)
        results["imgs"] = apply_color_jitter(imgs, order, factors)
        return results


_COLOR_OPS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "brightness": adjust_brightness,
    "contrast": adjust_contrast,
    "saturation": adjust_saturation,
    "hue": adjust_hue,
}


def apply_color_jitter(
    imgs: torch.Tensor, order: Sequence[str], factors: dict[str, float], chunk_frames: int = 4
) -> torch.Tensor:
    """Applies colour operations with given factors to uint8 RGB frames ``(N, H, W, 3)``.

    An operation whose factor is neutral (1, or 0 for hue) is skipped, as in MMAction2.

    Args:
        imgs: uint8 RGB frames.
        order: Operation names, applied in this order.
        factors: Factor of each operation.
        chunk_frames: Frames processed together (bounds the size of float temporaries).

    Returns:
        uint8 frames, clipped to ``[0, 255]`` and truncated.
    """
    ops = [(_COLOR_OPS[name], float(factors[name])) for name in order]
    ops = [(op, f) for op, f in ops if f != (0 if op is adjust_hue else 1)]
    out = torch.empty_like(imgs)
    # A few frames at a time, channels first: the float temporaries stay small (cache-resident, no
    # fresh pages to fault in) and each channel is a contiguous plane.
    for src, dst in zip(imgs.split(chunk_frames), out.split(chunk_frames)):
        x = torch.empty(src.shape[-1:] + src.shape[:-1], dtype=torch.float32)
        x.copy_(src.permute(3, 0, 1, 2))  # (3, n, H, W)
        for op, factor in ops:
            x = op(x, factor)
        dst.copy_(x.clamp_(0, 255).permute(1, 2, 3, 0))  # float -> uint8 truncates, as MMAction2's astype
    return out


# --------------------------------------------------------------------------- composition


class Compose:
    """Applies transforms in order.

    Args:
        transforms: Callables mapping a results dict to a results dict.
    """

    def __init__(self, transforms: Sequence[Callable[[dict], dict]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, results: dict) -> dict:
        for transform in self.transforms:
            results = transform(results)
        return results

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, index: int) -> Callable[[dict], dict]:
        return self.transforms[index]

    def __repr__(self) -> str:
        body = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{body}\n])"


_REGISTERED = (
    Resize, RandomRescale, RandomCrop, RandomResizedCrop, MultiScaleCrop, CenterCrop, ThreeCrop, TenCrop, Flip,
    ColorJitter, RandAugment,
)  # fmt: skip
TRANSFORMS: dict[str, type] = {cls.__name__: cls for cls in _REGISTERED}


def build_pipeline(spec: Sequence[dict[str, Any]]) -> Compose:
    """Builds a :class:`Compose` from MMAction2-style dicts.

    Args:
        spec: Items like ``{"type": "Resize", "scale": [-1, 256]}``; the other keys are the
            transform's arguments (lists are accepted where tuples are expected).

    Returns:
        The composed pipeline.

    Raises:
        ValueError: Unknown ``type`` (the message lists the valid ones).
        TypeError: Unknown or missing arguments for a transform (the message names it).

    Example:
        >>> build_pipeline([{"type": "CenterCrop", "crop_size": 224}])
        Compose([
            CenterCrop(crop_size=(224, 224)),
        ])
    """
    transforms = []
    for i, item in enumerate(spec):
        kwargs = dict(item)
        name = kwargs.pop("type", None)
        if name == "RandomErasing":
            raise InputError(
                f"pipeline item {i}: RandomErasing acts on the normalized batch, not in a pipeline; configure it as "
                "data.random_erasing"
            )
        if name not in TRANSFORMS:
            raise InputError(f"pipeline item {i}: unknown transform type {name!r}; valid types: {sorted(TRANSFORMS)}")
        cls = TRANSFORMS[name]
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as err:
            params = list(inspect.signature(cls).parameters)
            raise ArgumentTypeError(f"pipeline item {i} ({name}): {err}; {name} accepts {params}") from None
        transforms.append(cls(**kwargs))
    return Compose(transforms)
