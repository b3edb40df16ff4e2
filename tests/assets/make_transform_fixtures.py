"""Writes transform_fixtures.json: MMAction2 1.2.0's outputs for the geometric and colour transforms.

Run with a Python environment that has ``mmaction2==1.2.0`` installed (vidlab is not needed):

    python tests/assets/make_transform_fixtures.py

Crops are recorded on "coordinate frames" whose pixels hold ``(y, x, frame)``, so an output
pixel says exactly where it came from. Random choices are enumerated by patching ``random.choice``
(MultiScaleCrop) or ``np.random.uniform`` (ColorJitter) and setting the drawn values.
"""

import json
import random
from pathlib import Path
from unittest import mock

import numpy as np
from mmaction.datasets.transforms import CenterCrop, ColorJitter, MultiScaleCrop, Resize, TenCrop, ThreeCrop

OUT = Path(__file__).with_name("transform_fixtures.json")


def coord_frames(h, w, n=2):
    """(n, h, w, 3) int32 frames whose pixel (y, x) of frame t is (y, x, t)."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return [np.stack([yy, xx, np.full_like(yy, t)], axis=-1).astype(np.int32) for t in range(n)]


def smooth_image(h, w):
    """uint8 RGB test image with smooth gradients (same formula in the test)."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    chans = [128 + 100 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 + c / 2) for c in range(3)]
    return np.round(np.stack(chans, axis=-1)).astype(np.uint8)


def corners(imgs):
    """For every output frame, the source (y, x, t) of its top-left and bottom-right pixels."""
    return [[img[0, 0].tolist(), img[-1, -1].tolist()] for img in imgs]


def resize_cases():
    shapes = [(240, 320), (256, 340), (480, 640), (360, 480), (720, 1280), (101, 203), (1080, 1920), (131, 97)]
    scales = [((-1, 256), True), ((256, -1), True), ((340, 256), True), ((-1, 128), True), (0.5, True), (1.37, True)]
    scales += [((224, 224), False), ((171, 128), False)]
    cases = []
    for h, w in shapes:
        for scale, keep_ratio in scales:
            results = {"imgs": [np.zeros((h, w, 3), np.uint8)], "modality": "RGB"}
            out = Resize(scale, keep_ratio=keep_ratio).transform(results)
            cases.append({"in_hw": [h, w], "scale": scale, "keep_ratio": keep_ratio, "out_hw": list(out["img_shape"])})
    return cases


def resize_pixel_cases():
    cases = []
    for scale, keep_ratio in [((-1, 30), True), ((-1, 12), True), ((40, 18), False)]:
        img = smooth_image(24, 32)
        out = Resize(scale, keep_ratio=keep_ratio).transform({"imgs": [img], "modality": "RGB"})["imgs"][0]
        cases.append({"in_hw": [24, 32], "scale": scale, "keep_ratio": keep_ratio, "out": out.tolist()})
    return cases


def crop_cases():
    specs = [
        ("CenterCrop", CenterCrop, 224, (256, 340)),
        ("CenterCrop", CenterCrop, (224, 200), (256, 340)),
        ("CenterCrop", CenterCrop, 112, (128, 171)),
        ("CenterCrop", CenterCrop, 7, (10, 13)),
        ("ThreeCrop", ThreeCrop, 256, (256, 340)),
        ("ThreeCrop", ThreeCrop, 256, (340, 256)),
        ("ThreeCrop", ThreeCrop, (60, 40), (40, 101)),
        ("ThreeCrop", ThreeCrop, (9, 5), (16, 9)),
        ("TenCrop", TenCrop, 224, (256, 340)),
        ("TenCrop", TenCrop, 112, (128, 171)),
        ("TenCrop", TenCrop, (5, 3), (9, 14)),
    ]
    cases = []
    for name, cls, size, (h, w) in specs:
        out = cls(size).transform({"imgs": coord_frames(h, w), "modality": "RGB"})
        cases.append({"type": name, "crop_size": size, "in_hw": [h, w], "corners": corners(out["imgs"])})
    return cases


def multiscale_cases():
    specs = [
        (224, (1, 0.875, 0.75, 0.66), 1, 5, (256, 340)),
        (224, (1, 0.875, 0.75, 0.66), 1, 13, (256, 340)),
        (112, (1, 0.8), 0, 13, (128, 171)),
        ((112, 96), (1, 0.875, 0.75), 2, 5, (120, 160)),
    ]
    cases = []
    for input_size, scales, gap, num_fixed, (h, w) in specs:
        transform = MultiScaleCrop(input_size, scales, max_wh_scale_gap=gap, num_fixed_crops=num_fixed)
        boxes = []
        size_idx = 0
        while True:
            row = []
            for offset_idx in range(num_fixed):
                picks = iter([size_idx, offset_idx])
                calls = []

                def choice(seq, picks=picks, calls=calls):
                    calls.append(len(seq))
                    return seq[next(picks)]

                with mock.patch.object(random, "choice", choice):
                    out = transform.transform({"imgs": coord_frames(h, w, 1), "modality": "RGB"})
                row.append(out["crop_bbox"].tolist())
            boxes.append(row)
            size_idx += 1
            if size_idx == calls[0]:
                break
        cases.append(
            dict(input_size=input_size, scales=scales, max_wh_scale_gap=gap, num_fixed_crops=num_fixed, in_hw=[h, w])
            | {"boxes": boxes}
        )
    return cases


def color_cases():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(2, 6, 8, 3), dtype=np.uint8)
    img[0, 0, :4] = [[0, 0, 0], [255, 255, 255], [200, 10, 10], [10, 200, 10]]  # grey and saturated corners
    cases = []
    settings = [
        ((1.3, 1.0, 1.0, 0.0), (0, 1, 2, 3)),
        ((1.0, 0.6, 1.0, 0.0), (0, 1, 2, 3)),
        ((1.0, 1.0, 1.4, 0.0), (0, 1, 2, 3)),
        ((1.0, 1.0, 1.0, 0.05), (0, 1, 2, 3)),
        ((1.0, 1.0, 1.0, 0.1), (0, 1, 2, 3)),
        ((0.7, 1.45, 0.55, 0.08), (3, 1, 0, 2)),
        ((1.2, 0.8, 1.3, 0.02), (2, 3, 0, 1)),
    ]
    for (b, c, s, hue), order in settings:
        transform = ColorJitter()
        transform.fn_idx = np.array(order)
        draws = iter([b, c, s, hue])
        with mock.patch.object(np.random, "uniform", lambda low=0.0, high=1.0, size=None, draws=draws: next(draws)):
            out = transform.transform({"imgs": list(img.copy())})["imgs"]
        cases.append({"factors": [b, c, s, hue], "order": list(order), "out": np.stack(out).tolist()})
    return {"input": img.tolist(), "cases": cases}


def main():
    fixtures = {
        "source": "mmaction2 1.2.0 (mmaction.datasets.transforms.processing)",
        "resize": resize_cases(),
        "resize_pixels": resize_pixel_cases(),
        "crops": crop_cases(),
        "multiscale": multiscale_cases(),
        "color_jitter": color_cases(),
    }
    OUT.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
