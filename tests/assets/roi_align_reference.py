"""A plain-loop RoIAlign with the Detectron2 / mmcv kernel rules written out, for tests and fixture scripts (it
imports only torch, so the reference environments can run it too)."""

import math

import torch


def bilinear_loop(fmap: list, height: int, width: int, y: float, x: float) -> float:
    """One sample point, with the kernels' boundary rules written out."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * fmap[y_low][x_low]
        + hy * lx * fmap[y_low][x_high]
        + ly * hx * fmap[y_high][x_low]
        + ly * lx * fmap[y_high][x_high]
    )


def roi_align_loop(features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Loops over boxes, channels, bins and sample points, in Python floats."""
    ph, pw = output_size
    feats = features.double().tolist()
    num_channels, height, width = features.shape[1:]
    out = torch.zeros(len(rois), num_channels, ph, pw, dtype=torch.float64)
    for k, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        offset = 0.5 if aligned else 0.0
        start_w, start_h = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w, roi_h = x2 * spatial_scale - offset - start_w, y2 * spatial_scale - offset - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / ph, roi_w / pw
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw)
        count = max(grid_h * grid_w, 1)
        for c in range(num_channels):
            fmap = feats[int(b)][c]
            for i in range(ph):
                for j in range(pw):
                    total = 0.0
                    for iy in range(grid_h):
                        y = start_h + i * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_w + j * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += bilinear_loop(fmap, height, width, y, x)
                    out[k, c, i, j] = total / count
    return out
