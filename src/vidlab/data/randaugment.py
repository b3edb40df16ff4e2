"""RandAugment for video: the same operation on every frame of a clip (VideoMAE's and VideoMamba's fine-tuning
augmentation, timm's ``rand-m7-n4-mstd0.5-inc1``).

The RandAugment kernels take and return uint8 frames ``(N, H, W, C)`` (RGB for the colour ones) and treat every
frame as one image, with the definitions of the PIL operations timm's RandAugment calls (``ImageOps`` /
``ImageEnhance`` / ``Image.transform``), computed with torch: results agree with PIL's up to rounding (the enhance
blends truncate as PIL's) and, for the geometric ones, the interpolation kernel (torch's ``grid_sample``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.data.transform_base import _check_rgb, _has_boxes, _imgs, _rng, _Transform
from vidlab.errors import InputError


def _luma(imgs: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma of uint8 RGB ``(N, H, W, 3)`` as PIL's ``convert("L")`` rounds it, int64 ``(N, H, W)``."""
    x = imgs.to(torch.int64)
    return (x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000) >> 16


def _blend(degenerate: torch.Tensor, imgs: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ``Image.blend(degenerate, imgs, factor)``: ``degenerate + factor * (imgs - degenerate)``, clipped to
    [0, 255] and truncated to uint8 (``factor`` 1 returns ``imgs``)."""
    if factor == 1.0:
        return imgs
    d = degenerate.float()
    return torch.lerp(d, imgs.float(), factor).clamp_(0, 255).to(torch.uint8)


def _lut(imgs: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Per-(frame, channel) lookup tables ``lut`` ``(N, C, 256)`` applied to uint8 frames ``(N, H, W, C)``."""
    n, h, w, c = imgs.shape
    x = imgs.permute(0, 3, 1, 2).reshape(n, c, h * w).to(torch.int64)
    return lut.gather(2, x).to(torch.uint8).reshape(n, c, h, w).permute(0, 2, 3, 1)


def _histograms(imgs: torch.Tensor) -> torch.Tensor:
    """Per-(frame, channel) 256-bin histograms of uint8 frames ``(N, H, W, C)``, int64 ``(N, C, 256)``."""
    n, h, w, c = imgs.shape
    x = imgs.permute(0, 3, 1, 2).reshape(n, c, h * w).to(torch.int64)
    return torch.zeros(n, c, 256, dtype=torch.int64).scatter_add_(2, x, torch.ones_like(x))


def auto_contrast(imgs: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.autocontrast`` (no cutoff): each channel of each frame stretched so its darkest value maps
    to 0 and its brightest to 255 (``int((v - lo) * 255 / (hi - lo))``); a flat channel is kept."""
    x = imgs.permute(0, 3, 1, 2).flatten(2)  # (N, C, H*W)
    lo = x.amin(dim=2, keepdim=True).to(torch.float64)
    hi = x.amax(dim=2, keepdim=True).to(torch.float64)
    scale = 255.0 / (hi - lo).clamp(min=1)
    levels = torch.arange(256, dtype=torch.float64)
    lut = ((levels - lo) * scale).clamp(0, 255).floor()
    lut = torch.where(hi > lo, lut, levels.expand_as(lut)).to(torch.int64)
    return _lut(imgs, lut)


def equalize(imgs: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize``, per channel of each frame: with ``step = (pixels - count of the brightest
    present value) // 255``, value ``v`` maps to ``(step // 2 + pixels darker than v) // step``; a channel with
    ``step == 0`` (one value, or almost) is kept."""
    hist = _histograms(imgs)
    total = hist.sum(dim=2, keepdim=True)
    last = 255 - (hist > 0).flip(2).to(torch.int64).argmax(dim=2, keepdim=True)  # brightest present value
    step = (total - hist.gather(2, last)) // 255
    darker = hist.cumsum(dim=2) - hist
    lut = ((step // 2 + darker) // step.clamp(min=1)).clamp(0, 255)
    lut = torch.where(step > 0, lut, torch.arange(256).expand_as(lut))
    return _lut(imgs, lut)


def invert(imgs: torch.Tensor) -> torch.Tensor:
    """``255 - v``."""
    return 255 - imgs


def posterize(imgs: torch.Tensor, bits: int) -> torch.Tensor:
    """Keeps the ``bits`` most significant bits of every value (8 or more: unchanged; 0: black), as
    ``ImageOps.posterize``."""
    if bits >= 8:
        return imgs
    return imgs & ((0xFF << (8 - max(bits, 0))) & 0xFF)


def solarize(imgs: torch.Tensor, threshold: int) -> torch.Tensor:
    """Inverts values ``>= threshold`` (256: unchanged), as ``ImageOps.solarize``."""
    return torch.where(imgs.to(torch.int16) >= threshold, 255 - imgs, imgs)  # int16: a threshold of 256 fits


def solarize_add(imgs: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    """Adds ``add`` to values below ``threshold``, saturating at 255 (timm's ``solarize_add``)."""
    x = imgs.to(torch.int16)
    return torch.where(x < threshold, (x + add).clamp(0, 255).to(torch.uint8), imgs)


def enhance_color(imgs: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Color``: blend with the frame's grey (luma) version; 0 grey, 1 unchanged."""
    return _blend(_luma(imgs).unsqueeze(-1).expand_as(imgs), imgs, factor)


def enhance_contrast(imgs: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Contrast``: blend with a flat frame at the frame's mean luma (rounded); 1 unchanged."""
    mean = (_luma(imgs).to(torch.float64).mean(dim=(1, 2)) + 0.5).floor()  # (N,)
    return _blend(mean.view(-1, 1, 1, 1).expand(imgs.shape), imgs, factor)


def enhance_brightness(imgs: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Brightness``: blend with black, i.e. ``v * factor`` (clipped, truncated); 1 unchanged."""
    return _blend(torch.zeros((), dtype=torch.uint8).expand(imgs.shape), imgs, factor)


def enhance_sharpness(imgs: torch.Tensor, factor: float) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blend with PIL's SMOOTH filter (3x3 kernel ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] /
    13``, rounded; the one-pixel border is left as it is); 0 smooth, 1 unchanged, 2 sharpened."""
    if factor == 1.0:
        return imgs
    n, h, w, c = imgs.shape
    x = imgs.permute(0, 3, 1, 2).float().reshape(n * c, 1, h, w)
    kernel = torch.ones(1, 1, 3, 3)
    kernel[0, 0, 1, 1] = 5.0
    smooth = x.clone()
    if h > 2 and w > 2:
        smooth[..., 1:-1, 1:-1] = (F.conv2d(x, kernel) / 13.0).round_()
    smooth = smooth.reshape(n, c, h, w).permute(0, 2, 3, 1)
    return _blend(smooth, imgs, factor)


def affine(
    imgs: torch.Tensor, matrix: Sequence[float], fill: int | Sequence[int] = 128, interpolation: str = "bicubic"
) -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, (a, b, c, d, e, f))`` on every frame: the output pixel whose centre is
    ``(x, y)`` (pixel units, the image's corner at 0) samples the input at ``(a x + b y + c, d x + e y + f)``;
    samples that fall outside the input get ``fill``.

    Args:
        imgs: uint8 ``(N, H, W, C)``.
        matrix: ``(a, b, c, d, e, f)``, output -> input.
        fill: value of the uncovered pixels, one int or one per channel.
        interpolation: ``nearest``, ``bilinear`` or ``bicubic`` (torch's ``grid_sample`` kernels: bilinear matches
            PIL's within one level; torch's bicubic kernel is a little sharper than PIL's, ``a = -0.75`` against
            ``-0.5``; nearest may take the other neighbour at exact ties).
    """
    if interpolation not in ("nearest", "bilinear", "bicubic"):
        raise InputError(f"interpolation must be nearest, bilinear or bicubic, got {interpolation!r}")
    n, h, w, c = imgs.shape
    a, b, cc, d, e, f = (float(v) for v in matrix)
    gy, gx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    sx, sy = a * gx + b * gy + cc, d * gx + e * gy + f
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    grid = torch.stack([sx * (2.0 / w) - 1.0, sy * (2.0 / h) - 1.0], dim=-1).expand(n, h, w, 2)
    x = imgs.permute(0, 3, 1, 2).float()
    out = F.grid_sample(x, grid, mode=interpolation, padding_mode="border", align_corners=False)
    out = out.round_().clamp_(0, 255)
    fill_t = torch.as_tensor(fill, dtype=torch.float32).reshape(-1)
    fill_t = fill_t.expand(c) if fill_t.numel() == 1 else fill_t
    out = torch.where(inside, out, fill_t.view(1, c, 1, 1))
    return out.to(torch.uint8).permute(0, 2, 3, 1)


def rotate(imgs: torch.Tensor, degrees: float, **kwargs: Any) -> torch.Tensor:
    """PIL's ``Image.rotate(degrees)``: counter-clockwise about the frame's centre, same size (``kwargs`` as
    :func:`affine`)."""
    h, w = imgs.shape[1:3]
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    cx, cy = w / 2.0, h / 2.0
    return affine(imgs, (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy), **kwargs)


def shear_x(imgs: torch.Tensor, factor: float, **kwargs: Any) -> torch.Tensor:
    """Output ``(x, y)`` samples ``(x + factor * y, y)`` (PIL affine ``(1, factor, 0, 0, 1, 0)``)."""
    return affine(imgs, (1, factor, 0, 0, 1, 0), **kwargs)


def shear_y(imgs: torch.Tensor, factor: float, **kwargs: Any) -> torch.Tensor:
    """Output ``(x, y)`` samples ``(x, y + factor * x)``."""
    return affine(imgs, (1, 0, 0, factor, 1, 0), **kwargs)


def translate_x_rel(imgs: torch.Tensor, fraction: float, **kwargs: Any) -> torch.Tensor:
    """Output ``(x, y)`` samples ``(x + fraction * W, y)``: the content moves left by ``fraction`` of the width."""
    return affine(imgs, (1, 0, fraction * imgs.shape[2], 0, 1, 0), **kwargs)


def translate_y_rel(imgs: torch.Tensor, fraction: float, **kwargs: Any) -> torch.Tensor:
    """Output ``(x, y)`` samples ``(x, y + fraction * H)``: the content moves up by ``fraction`` of the height."""
    return affine(imgs, (1, 0, 0, 0, 1, fraction * imgs.shape[1]), **kwargs)


_RA_MAX = 10.0  # the magnitude scale: operations reach their strongest setting at 10


def _ra_signed(value: float, rng: np.random.Generator) -> float:
    return -value if rng.random() > 0.5 else value


def _ra_enhance(m, rng, hp):
    return (m / _RA_MAX * 1.8 + 0.1,)


def _ra_enhance_increasing(m, rng, hp):
    return (1.0 + _ra_signed(m / _RA_MAX * 0.9, rng),)


#: RandAugment operation -> (kernel, magnitude -> arguments, geometric); timm's names and level functions
_RA_OPS: dict[str, tuple[Callable, Callable | None, bool]] = {
    "AutoContrast": (auto_contrast, None, False),
    "Equalize": (equalize, None, False),
    "Invert": (invert, None, False),
    "Rotate": (rotate, lambda m, rng, hp: (_ra_signed(m / _RA_MAX * 30.0, rng),), True),
    "Posterize": (posterize, lambda m, rng, hp: (int(m / _RA_MAX * 4),), False),
    "PosterizeIncreasing": (posterize, lambda m, rng, hp: (4 - int(m / _RA_MAX * 4),), False),
    "Solarize": (solarize, lambda m, rng, hp: (int(m / _RA_MAX * 256),), False),
    "SolarizeIncreasing": (solarize, lambda m, rng, hp: (256 - int(m / _RA_MAX * 256),), False),
    "SolarizeAdd": (solarize_add, lambda m, rng, hp: (int(m / _RA_MAX * 110),), False),
    "Color": (enhance_color, _ra_enhance, False),
    "ColorIncreasing": (enhance_color, _ra_enhance_increasing, False),
    "Contrast": (enhance_contrast, _ra_enhance, False),
    "ContrastIncreasing": (enhance_contrast, _ra_enhance_increasing, False),
    "Brightness": (enhance_brightness, _ra_enhance, False),
    "BrightnessIncreasing": (enhance_brightness, _ra_enhance_increasing, False),
    "Sharpness": (enhance_sharpness, _ra_enhance, False),
    "SharpnessIncreasing": (enhance_sharpness, _ra_enhance_increasing, False),
    "ShearX": (shear_x, lambda m, rng, hp: (_ra_signed(m / _RA_MAX * 0.3, rng),), True),
    "ShearY": (shear_y, lambda m, rng, hp: (_ra_signed(m / _RA_MAX * 0.3, rng),), True),
    "TranslateXRel": (translate_x_rel, lambda m, rng, hp: (_ra_signed(m / _RA_MAX * hp, rng),), True),
    "TranslateYRel": (translate_y_rel, lambda m, rng, hp: (_ra_signed(m / _RA_MAX * hp, rng),), True),
}

#: timm's ``_RAND_TRANSFORMS`` (``inc0``) and ``_RAND_INCREASING_TRANSFORMS`` (``inc1``)
RAND_AUGMENT_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
    "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)  # fmt: skip
RAND_AUGMENT_INCREASING_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
    "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
    "TranslateXRel", "TranslateYRel",
)  # fmt: skip


def apply_rand_augment_op(imgs: torch.Tensor, name: str, args: Sequence[float], **kwargs: Any) -> torch.Tensor:
    """Applies RandAugment operation ``name`` with its arguments ``args`` (as :class:`RandAugment` records them in
    ``results["rand_augment"]``) to uint8 frames ``(N, H, W, C)``; ``kwargs`` (``fill``, ``interpolation``) go to
    the geometric ones."""
    kernel, _, geometric = _RA_OPS[name]
    return kernel(imgs, *args, **kwargs) if geometric else kernel(imgs, *args)


class RandAugment(_Transform):
    """timm's RandAugment for clips, as VideoMAE and VideoMamba fine-tune with it (``--aa rand-m7-n4-mstd0.5-inc1``,
    the defaults here): ``n`` operations drawn uniformly with replacement from the 15 of the set (``inc=True``:
    timm's "increasing" set, whose strength grows with the magnitude); each is applied with probability ``prob``
    at a magnitude drawn from ``N(m, mstd)`` (``mstd`` 0: exactly ``m``), clipped to [0, 10]. One draw serves the
    whole sample: every frame gets the same operations, magnitudes and signs (as the references apply one PIL
    operation to each frame of the clip). Place it first in a training pipeline to act on whole decoded frames
    before the crop, where the references apply it.

    Operations and the arguments magnitude ``M`` gives them (sign ``+-``: either, with equal odds):

    - ``AutoContrast``, ``Equalize``, ``Invert`` (no argument; :func:`auto_contrast`, :func:`equalize`,
      :func:`invert`);
    - ``Rotate`` by ``+-30 M / 10`` degrees; ``ShearX`` / ``ShearY`` by ``+-0.3 M / 10``; ``TranslateXRel`` /
      ``TranslateYRel`` by ``+-translate_pct M / 10`` of the side (:func:`affine`: ``interpolation``, uncovered
      pixels ``fill``);
    - ``PosterizeIncreasing``: keep ``4 - int(4 M / 10)`` bits; ``SolarizeIncreasing``: invert values ``>= 256 -
      int(256 M / 10)``; ``SolarizeAdd``: add ``int(110 M / 10)`` below 128;
    - ``ColorIncreasing``, ``ContrastIncreasing``, ``BrightnessIncreasing``, ``SharpnessIncreasing``: PIL enhance
      factor ``1 +- 0.9 M / 10``;
    - with ``inc=False`` the plain set replaces these: ``Posterize`` ``int(4 M / 10)`` bits, ``Solarize`` at
      ``int(256 M / 10)``, ``Color`` / ``Contrast`` / ``Brightness`` / ``Sharpness`` factor ``0.1 + 1.8 M / 10``.

    At magnitude 0 the geometric, solarize and enhance operations of the increasing set leave the frames as they
    are; ``PosterizeIncreasing`` keeps 4 bits and the three argument-free operations act at every magnitude.

    ``results["rand_augment"]`` records what was applied: a list of ``(name, args)``.

    Args:
        n: operations per sample.
        m: magnitude, 0-10.
        mstd: standard deviation of the magnitude's noise (0: none).
        inc: the increasing operation set (timm's ``inc1``).
        prob: probability of applying each drawn operation.
        fill: value of the pixels geometric operations uncover (one int, or one per channel); the references' 128.
        interpolation: of the geometric operations: ``bicubic`` (the references' ``--train_interpolation``),
            ``bilinear`` or ``nearest``.
        translate_pct: largest translation, as a fraction of the side.
    """

    def __init__(
        self,
        n: int = 4,
        m: float = 7,
        mstd: float = 0.5,
        inc: bool = True,
        prob: float = 0.5,
        fill: int | Sequence[int] = 128,
        interpolation: str = "bicubic",
        translate_pct: float = 0.45,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"RandAugment n must be a non-negative int, got {n!r}")
        if not 0 <= m <= _RA_MAX:
            raise InputError(f"RandAugment m must be in [0, {_RA_MAX:g}], got {m!r}")
        if mstd < 0 or not 0 <= prob <= 1:
            raise InputError(f"RandAugment needs mstd >= 0 and prob in [0, 1], got mstd={mstd!r}, prob={prob!r}")
        if interpolation not in ("nearest", "bilinear", "bicubic"):
            raise InputError(f"RandAugment interpolation must be nearest, bilinear or bicubic, got {interpolation!r}")
        fills = [fill] if isinstance(fill, int) else list(fill)
        if not fills or not all(isinstance(v, int) and 0 <= v <= 255 for v in fills):
            raise InputError(f"RandAugment fill must be an int in [0, 255] or one per channel, got {fill!r}")
        self.n, self.m, self.mstd, self.inc, self.prob = n, float(m), float(mstd), bool(inc), float(prob)
        self.fill = fill if isinstance(fill, int) else tuple(fill)
        self.interpolation, self.translate_pct = interpolation, float(translate_pct)
        self.ops = RAND_AUGMENT_INCREASING_OPS if self.inc else RAND_AUGMENT_OPS

    def draw(self, rng: np.random.Generator) -> list[tuple[str, tuple]]:
        """The operations one sample gets, with their arguments, in order (in the references' order of draws:
        the operations, then per operation the skip, the magnitude and the sign)."""
        chosen = rng.integers(0, len(self.ops), size=self.n)
        out = []
        for i in chosen.tolist():
            name = self.ops[i]
            if self.prob < 1.0 and rng.random() > self.prob:
                continue
            magnitude = rng.normal(self.m, self.mstd) if self.mstd > 0 else self.m
            magnitude = min(_RA_MAX, max(0.0, float(magnitude)))
            level = _RA_OPS[name][1]
            out.append((name, tuple(level(magnitude, rng, self.translate_pct)) if level is not None else ()))
        return out

    def __call__(self, results: dict) -> dict:
        _check_rgb(results, "RandAugment")
        if _has_boxes(results):
            raise InputError(
                "RandAugment: samples with boxes are not supported (its rotations, shears and translations would not "
                "move them)"
            )
        imgs = _imgs(results)
        if imgs.dtype != torch.uint8 or imgs.shape[-1] != 3:
            raise InputError(f"RandAugment expects uint8 RGB frames (N, H, W, 3), got {imgs.dtype} {tuple(imgs.shape)}")
        applied = self.draw(_rng(results))
        for name, args in applied:
            imgs = apply_rand_augment_op(imgs, name, args, fill=self.fill, interpolation=self.interpolation)
        results["rand_augment"] = applied
        results["imgs"] = imgs
        return results
