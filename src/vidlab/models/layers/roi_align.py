"""RoIAlign (Mask R-CNN, arXiv:1703.06870) in plain PyTorch, with the semantics of the Detectron2 / torchvision /
mmcv kernels, on any device and differentiable with respect to the features through autograd.

What one output value is. A box ``[b, x1, y1, x2, y2]`` in input-image pixels is multiplied by ``spatial_scale``;
with ``aligned=True`` it is then moved by -0.5 so that a feature cell's centre sits at its integer index (the
pixel model of Detectron2's ``ROIAlign(aligned=True)``), and its width and height are used as they are (zero for a
degenerate box); with ``aligned=False`` (the original Detectron behaviour) there is no shift and width and height are
raised to at least 1. The box is cut into ``ph x pw`` equal bins. Each bin is sampled on a regular
``grid_h x grid_w`` grid of points at the centres of equal sub-cells: ``grid = sampling_ratio`` when it is positive,
otherwise ``ceil(roi_h / ph)`` by ``ceil(roi_w / pw)``, chosen per box (a zero-size aligned box then has no sample
points and gives 0). The bin value is the sum of the samples divided by ``max(1, grid_h * grid_w)``.

A sample at ``(y, x)`` on an ``H x W`` map is worth 0 when ``y < -1``, ``y > H``, ``x < -1`` or ``x > W``. Otherwise
negative coordinates are clamped to 0, ``y_low = floor(y)``, ``y_high = y_low + 1``, except that when
``y_low >= H - 1`` both become ``H - 1`` and ``y`` is set to ``H - 1`` (so the last row is repeated instead of read
past); the same for ``x``; and the value is the bilinear mix of the four neighbours.

How it is computed. Bilinear weights factor into a y part and an x part, and so does the "worth 0" rule, so for each
box the whole bin average is a fixed linear map of its image's feature map: per box a ``(ph*pw, H*W)`` matrix
``Ay[p, h] * Ax[q, w] / count``, built from ``(K, ph, grid, H)`` comparisons with the largest grid of the call (unused
sample slots masked out). The output is one matrix product per image that has boxes, so memory is the output plus
``K * ph * pw * H * W`` weights (5 MB in float32 per 100 boxes for 7x7 bins on a 16x16 map) and nothing the size of
``K x C x H x W``. Autograd differentiates that product with respect to ``features``; the boxes get no gradient. The
cost grows with ``H * W`` (every bin weighs the whole map, mostly with zeros), which suits the small maps of video
detection heads; on maps much larger than about 32x32 a gather of the four neighbours would be cheaper. One
consequence: a NaN or inf anywhere in an image's map reaches every box on that image.

Precision. float32 and float64 features are computed in their own dtype, boxes included. For float16/bfloat16
features the sample coordinates and weights are computed in float32 (in bfloat16 a coordinate near 200 is only
resolved to 1 pixel) and the weights are then cast to the feature dtype for the product; the output has the
feature dtype (inside ``torch.autocast`` the product, a matmul, follows autocast's dtype instead).

Speed (K=32 boxes on 8 images, C=2048, 16x16 map, 7x7 bins, ``sampling_ratio=0``, ``aligned=True``, float32,
torch 2.13, 2 shared CPU cores, median of 40 calls of a small timing script, not part of the tests): about 16 ms
forward, 30-40 ms forward + backward; a plain matrix product of the same size alone takes 10 ms. K=300, C=2304 on
16 images: about 0.2-0.3 s forward.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidlab.errors import InputError

__all__ = ["RoIAlign", "roi_align"]


def _pair(output_size: int | tuple[int, int]) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise InputError(f"roi_align: output_size must be a positive int or a pair (ph, pw), got {output_size!r}")
    return size  # type: ignore[return-value]


def _axis_weights(
    start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, num_bins: int, max_grid: int, size: int
) -> torch.Tensor:
    """Interpolation weights along one axis, summed over the sample points of each bin.

    Args:
        start: (K,) box start in feature-map coordinates.
        bin_size: (K,) bin length.
        grid: (K,) sample points per bin along this axis (>= 0).
        num_bins: bins along this axis.
        max_grid: the largest entry of ``grid`` (sample slots beyond a box's own grid are masked out).
        size: feature-map length along this axis.

    Returns:
        (K, num_bins, size): entry ``[k, p, i]`` is the weight of map row/column ``i`` summed over the samples of
        bin ``p``; a sample outside ``[-1, size]`` adds nothing.
    """
    dtype, device = start.dtype, start.device
    p = torch.arange(num_bins, device=device, dtype=dtype).view(1, -1, 1)
    s = torch.arange(max_grid, device=device, dtype=dtype).view(1, 1, -1)
    start, bin_size, grid = start.view(-1, 1, 1), bin_size.view(-1, 1, 1), grid.view(-1, 1, 1)
    # same order of operations as the reference kernels: start + p * bin + (s + 0.5) * bin / grid
    coord = start + p * bin_size + (s + 0.5) * bin_size / grid.clamp(min=1).to(dtype)  # (K, num_bins, max_grid)
    used = (s < grid) & (coord >= -1) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().clamp(max=size - 1)  # a clamp keeps NaN/inf boxes from overflowing the integer cast
    at_edge = low >= size - 1
    coord = torch.where(at_edge, low, coord)  # as the kernels; both neighbours are then the same cell anyway
    low = torch.nan_to_num(low).long()
    high = torch.where(at_edge, low, low + 1)
    frac = coord - low.to(dtype)
    zero = coord.new_zeros(())
    w_low = torch.where(used, 1 - frac, zero).unsqueeze(-1)
    w_high = torch.where(used, frac, zero).unsqueeze(-1)
    cells = torch.arange(size, device=device).view(1, 1, 1, -1)
    weights = w_low * (cells == low.unsqueeze(-1)) + w_high * (cells == high.unsqueeze(-1))  # (K, bins, grid, size)
    return weights.sum(dim=2)


def _bin_weights(
    rois: torch.Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    height: int,
    width: int,
) -> torch.Tensor:
    """(K, ph*pw, H*W) matrices that map a flattened feature map to the K boxes' bin averages."""
    ph, pw = output_size
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # legacy: malformed boxes become at least 1x1
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full_like(roi_h, sampling_ratio, dtype=torch.long)
        max_h = max_w = sampling_ratio
    else:
        # ceil(roi / bins) per box; zero or negative sizes (aligned only) give no samples, NaN/inf boxes none either
        grid_h = torch.nan_to_num(torch.ceil(roi_h / ph), nan=0.0, posinf=0.0).clamp(min=0).long()
        grid_w = torch.nan_to_num(torch.ceil(roi_w / pw), nan=0.0, posinf=0.0).clamp(min=0).long()
        max_h, max_w = (int(v) for v in torch.stack([grid_h.max(), grid_w.max()]).tolist())
    a_y = _axis_weights(y1, bin_h, grid_h, ph, max(max_h, 1), height)  # (K, ph, H)
    a_x = _axis_weights(x1, bin_w, grid_w, pw, max(max_w, 1), width)  # (K, pw, W)
    count = (grid_h * grid_w).clamp(min=1).to(a_y.dtype).view(-1, 1, 1, 1, 1)
    weights = a_y[:, :, None, :, None] * a_x[:, None, :, None, :] / count  # (K, ph, pw, H, W)
    return weights.reshape(len(rois), ph * pw, height * width)


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """Average-pool each box of ``rois`` into ``output_size`` bins by bilinear sampling (see the module docstring).

    Args:
        features: (N, C, H, W) floating-point feature maps.
        rois: (K, 5) boxes ``[batch_index, x1, y1, x2, y2]`` in input-image pixels, on the device of ``features``;
            batch indices may come in any order.
        output_size: bins per box, ``ph`` (square) or ``(ph, pw)``.
        spatial_scale: feature-map size over input-image size (1/16 for a stride-16 map).
        sampling_ratio: sample points per bin along each axis; ``<= 0`` chooses ``ceil(roi_h / ph)`` by
            ``ceil(roi_w / pw)`` for each box.
        aligned: shift the scaled box by -0.5 pixel and keep its size as it is (Detectron2's ``aligned=True``);
            False is the legacy behaviour (no shift, width and height at least 1).

    Returns:
        (K, C, ph, pw) in the dtype of ``features``; (0, C, ph, pw) when there are no boxes.
    """
    ph, pw = _pair(output_size)
    if features.dim() != 4 or not features.is_floating_point():
        raise InputError(
            f"roi_align: features must be a floating-point (N, C, H, W) tensor, got {features.dtype} "
            f"of shape {tuple(features.shape)}"
        )
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise InputError(
            f"roi_align: rois must have shape (K, 5) [batch_index, x1, y1, x2, y2], got {tuple(rois.shape)}"
        )
    if rois.device != features.device:
        raise InputError(f"roi_align: rois are on {rois.device} but features on {features.device}; move one of them")
    n, c, height, width = features.shape
    k = rois.shape[0]
    if k == 0:  # a (0, C, ph, pw) view of features, so backward works and gives zero gradient
        return features.reshape(-1)[:0].view(0, c, ph, pw)

    low_precision = features.dtype in (torch.float16, torch.bfloat16)
    coord_dtype = torch.float32 if low_precision else features.dtype
    rois = rois.detach().to(coord_dtype)
    batch = rois[:, 0].long()  # truncation, as the kernels' integer cast
    in_order = (batch[1:] >= batch[:-1]).all()
    lo, hi, in_order = (int(v) for v in torch.stack([batch.min(), batch.max(), in_order.long()]).tolist())
    if lo < 0 or hi >= n:
        raise InputError(f"roi_align: box batch indices must lie in [0, {n - 1}] for {n} feature maps, got {lo}..{hi}")

    weights = _bin_weights(rois, (ph, pw), spatial_scale, sampling_ratio, aligned, height, width)
    weights = weights.to(features.dtype)  # (K, ph*pw, H*W)
    order = None if in_order else torch.argsort(batch, stable=True)
    if order is not None:
        weights = weights[order]
    counts = torch.bincount(batch, minlength=n).tolist()
    # unbind, not indexing per image: its backward writes all images' gradients at once, where indexing would
    # add one full-size zero-padded gradient per image
    maps = features.reshape(n, c, height * width).unbind(0)
    parts = []
    for image, w_image in enumerate(weights.split(counts)):
        if counts[image]:
            pooled = maps[image] @ w_image.reshape(-1, height * width).T  # (C, k_i*ph*pw)
            parts.append(pooled.view(c, counts[image], ph * pw).transpose(0, 1))
    out = torch.cat(parts)  # (K, C, ph*pw), boxes grouped by image
    if order is not None:
        out = out[torch.argsort(order)]
    return out.view(k, c, ph, pw)


class RoIAlign(nn.Module):
    """:func:`roi_align` with its settings stored; ``forward(features, rois)``."""

    def __init__(
        self, output_size: int | tuple[int, int], spatial_scale: float, sampling_ratio: int = 0, aligned: bool = True
    ) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        if not math.isfinite(self.spatial_scale) or self.spatial_scale <= 0:
            raise InputError(f"RoIAlign: spatial_scale must be a positive number, got {spatial_scale!r}")
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(features, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
