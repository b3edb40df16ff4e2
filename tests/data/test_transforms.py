"""Transforms against MMAction2 1.2.0 (fixture from tests/assets/make_transform_fixtures.py) and properties."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidlab.data import transforms as T
from vidlab.data.batch_transforms import normalize_batch

FIXTURES = json.loads((Path(__file__).parents[1] / "assets" / "transform_fixtures.json").read_text())
CROPS = {"CenterCrop": T.CenterCrop, "ThreeCrop": T.ThreeCrop, "TenCrop": T.TenCrop}


def coord_frames(h: int, w: int, n: int = 2) -> torch.Tensor:
    """(n, h, w, 3) int32 frames whose pixel (y, x) of frame t is (y, x, t)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([torch.stack([yy, xx, torch.full_like(yy, t)], dim=-1) for t in range(n)]).int()


def smooth_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    chans = [128 + 100 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 + c / 2) for c in range(3)]
    return np.round(np.stack(chans, axis=-1)).astype(np.uint8)


def make_results(n=4, h=64, w=80, seed=0, label=3) -> dict:
    rng = np.random.default_rng(seed)
    imgs = torch.from_numpy(rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8))
    return {"imgs": imgs, "label": label, "rng": np.random.default_rng(seed), "num_clips": 1, "clip_len": n}


def _as_scale(scale):
    return tuple(scale) if isinstance(scale, list) else scale


# ----------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("case", FIXTURES["resize"], ids=lambda c: f"{c['in_hw']}-{c['scale']}-{c['keep_ratio']}")
def test_resize_output_size_matches_mmaction2(case):
    resize = T.Resize(_as_scale(case["scale"]), keep_ratio=case["keep_ratio"])
    assert list(resize.output_size(*case["in_hw"])) == case["out_hw"]


def test_resize_runs_on_frames():
    out = T.Resize((-1, 256))({"imgs": torch.zeros(3, 240, 320, 3, dtype=torch.uint8)})
    assert out["imgs"].shape == (3, 256, 341, 3) and out["img_shape"] == (256, 341)
    assert out["imgs"].dtype == torch.uint8


@pytest.mark.parametrize("case", FIXTURES["resize_pixels"], ids=lambda c: f"{c['scale']}")
def test_resize_pixels_close_to_mmaction2(case):
    img = torch.from_numpy(smooth_image(*case["in_hw"]))[None]
    expected = np.array(case["out"])
    resize = T.Resize(_as_scale(case["scale"]), keep_ratio=case["keep_ratio"], antialias=False)
    out = resize({"imgs": img})["imgs"][0].numpy().astype(int)
    assert out.shape == expected.shape
    # OpenCV and torch's uint8 kernel both interpolate in fixed point, with different precision.
    assert np.abs(out - expected).max() <= 1
    assert np.abs(out - expected).mean() < 0.5


@pytest.mark.parametrize("case", FIXTURES["crops"], ids=lambda c: f"{c['type']}-{c['crop_size']}-{c['in_hw']}")
def test_crop_positions_match_mmaction2(case):
    size = case["crop_size"] if isinstance(case["crop_size"], int) else tuple(case["crop_size"])
    out = CROPS[case["type"]](size)({"imgs": coord_frames(*case["in_hw"])})
    corners = [[img[0, 0].tolist(), img[-1, -1].tolist()] for img in out["imgs"]]
    assert corners == case["corners"]
    assert out.get("num_crops", 1) == {"CenterCrop": 1, "ThreeCrop": 3, "TenCrop": 10}[case["type"]]


@pytest.mark.parametrize("case", FIXTURES["multiscale"], ids=lambda c: f"{c['scales']}-{c['num_fixed_crops']}")
def test_multiscale_crop_candidates_match_mmaction2(case):
    transform = T.MultiScaleCrop(
        case["input_size"], case["scales"], case["max_wh_scale_gap"], num_fixed_crops=case["num_fixed_crops"]
    )
    h, w = case["in_hw"]
    boxes = [
        [[x, y, x + cw, y + ch] for x, y in transform.fixed_offsets(h, w, cw, ch)]
        for cw, ch in transform.crop_sizes(h, w)
    ]
    assert boxes == case["boxes"]


@pytest.mark.parametrize("case", FIXTURES["color_jitter"]["cases"], ids=lambda c: f"{c['factors']}-{c['order']}")
def test_color_jitter_close_to_mmaction2(case):
    imgs = torch.tensor(FIXTURES["color_jitter"]["input"], dtype=torch.uint8)
    order = [T.ColorJitter.OPS[i] for i in case["order"]]
    factors = dict(zip(T.ColorJitter.OPS, case["factors"]))
    out = T.apply_color_jitter(imgs, order, factors).numpy().astype(int)
    diff = np.abs(out - np.array(case["out"]))
    if factors["hue"] == 0:
        assert diff.max() <= 1  # float32 summation order of the contrast mean
    else:
        # OpenCV quantizes hue to 2 degrees and saturation to 1/255 inside its uint8 HSV round trip.
        assert diff.max() <= 5 and diff.mean() < 0.6


# ----------------------------------------------------------------------------------------- properties


def test_crops_are_views():
    imgs = torch.zeros(2, 50, 60, 3, dtype=torch.uint8)
    out = T.CenterCrop(32)({"imgs": imgs})["imgs"]
    assert out.untyped_storage().data_ptr() == imgs.untyped_storage().data_ptr()


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "area"])
@pytest.mark.parametrize("size", [(20, 30), (7, 9)])
def test_resize_modes_keep_dtype_and_constants(interpolation, size):
    imgs = torch.full((3, 12, 16, 3), 77, dtype=torch.uint8)
    imgs[1] = 200
    out = T.resize(imgs, size, interpolation)
    assert out.shape == (3, *size, 3) and out.dtype == torch.uint8
    assert (out[0] == 77).all() and (out[1] == 200).all()


@pytest.mark.parametrize("seed", range(20))
def test_random_resized_crop_box_in_bounds_and_ranges(seed):
    transform = T.RandomResizedCrop()
    h, w = 120, 160
    x1, y1, x2, y2 = transform.get_crop_box(h, w, np.random.default_rng(seed))
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    area, ratio = (x2 - x1) * (y2 - y1) / (h * w), (x2 - x1) / (y2 - y1)
    if (x2 - x1, y2 - y1) != (h, h):  # not the fallback square
        assert 0.07 <= area <= 1.0 and 0.7 <= ratio <= 1.4


def test_random_resized_crop_fallback_is_centre_square():
    transform = T.RandomResizedCrop(aspect_ratio_range=(20.0, 20.0))
    assert transform.get_crop_box(256, 340, np.random.default_rng(0)) == (42, 0, 298, 256)


def test_train_pipeline_translates_mmaction2_config_and_is_seeded():
    spec = [
        {"type": "Resize", "scale": [-1, 64]},
        {"type": "RandomResizedCrop"},
        {"type": "Resize", "scale": [32, 32], "keep_ratio": False},
        {"type": "Flip", "flip_ratio": 0.5},
        {"type": "ColorJitter"},
    ]
    pipeline = T.build_pipeline(spec)
    runs = [pipeline(make_results(seed=7)) for _ in range(2)]
    assert runs[0]["imgs"].shape == (4, 32, 32, 3) and runs[0]["imgs"].dtype == torch.uint8
    assert torch.equal(runs[0]["imgs"], runs[1]["imgs"])
    assert (runs[0]["crop_bbox"] == runs[1]["crop_bbox"]).all()
    other = pipeline(make_results(seed=7) | {"rng": np.random.default_rng(8)})
    assert not torch.equal(runs[0]["imgs"], other["imgs"])


@pytest.mark.parametrize("random_crop", [False, True])
def test_multiscale_crop_in_bounds(random_crop):
    transform = T.MultiScaleCrop(48, (1, 0.875, 0.75, 0.66), random_crop=random_crop, num_fixed_crops=13)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x1, y1, x2, y2 = transform.get_crop_box(64, 80, rng)
        assert 0 <= x1 < x2 <= 80 and 0 <= y1 < y2 <= 64
        assert (x2 - x1, y2 - y1) in transform.crop_sizes(64, 80)


def test_random_crop_in_bounds():
    rng = np.random.default_rng(0)
    boxes = {T.RandomCrop(50).get_crop_box(64, 80, rng) for _ in range(300)}
    assert all(0 <= x1 and x2 <= 80 and y2 <= 64 and x2 - x1 == 50 == y2 - y1 for x1, y1, x2, y2 in boxes)
    assert max(b[0] for b in boxes) == 80 - 50 - 1  # MMAction2 never picks the last offset


def test_flip_mirrors_and_remaps_label():
    results = make_results(label=4)
    original = results["imgs"].clone()
    out = T.Flip(flip_ratio=1.0, flip_label_map={4: 5, 5: 4})(results)
    assert out["flip"] and out["label"] == 5
    assert torch.equal(out["imgs"], original.flip(2))
    out = T.Flip(flip_ratio=1.0, direction="vertical")(make_results())
    assert torch.equal(out["imgs"], original.flip(1))
    out = T.Flip(flip_ratio=0.0, flip_label_map={4: 5})(make_results(label=4))
    assert not out["flip"] and out["label"] == 4 and torch.equal(out["imgs"], original)
    out = T.Flip(flip_ratio=1.0, flip_label_map={4: 5})(make_results(label=[1, 4]))
    assert out["label"] == [1, 5]


def test_flip_ratio_is_respected():
    flip = T.Flip(flip_ratio=0.3)
    rng = np.random.default_rng(0)
    flips = [flip({"imgs": torch.zeros(1, 2, 2, 3, dtype=torch.uint8), "rng": rng})["flip"] for _ in range(2000)]
    assert 0.26 < np.mean(flips) < 0.34


def test_ten_crop_pairs_crops_with_mirrors_and_counts_views():
    imgs = coord_frames(20, 30, n=3)
    out = T.TenCrop(16)(T.ThreeCrop(20)({"imgs": imgs}))
    assert out["num_crops"] == 30 and out["imgs"].shape == (90, 16, 16, 3)
    first = out["imgs"][:9]  # crop 0 of the 9 frames that ThreeCrop produced, then its mirror
    assert torch.equal(out["imgs"][9:18], first.flip(2))
    assert not torch.equal(out["imgs"][18:27], first)


def test_color_jitter_same_op_for_all_frames_and_seeded():
    frame = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8))
    results = {"imgs": frame.repeat(4, 1, 1, 1), "rng": np.random.default_rng(1)}
    out = T.ColorJitter()(results)["imgs"]
    assert all(torch.equal(out[0], out[i]) for i in range(4))
    assert not torch.equal(out[0], frame[0])
    again = T.ColorJitter()({"imgs": frame.repeat(4, 1, 1, 1), "rng": np.random.default_rng(1)})["imgs"]
    assert torch.equal(out, again)


def test_hue_rotation_round_trips():
    img = torch.from_numpy(smooth_image(16, 16)).float().permute(2, 0, 1)  # (3, H, W)
    there = T.adjust_hue(img, 0.1)
    assert (there - img).abs().max() > 20
    back = T.adjust_hue(there, -0.1)
    assert (back - img).abs().max() <= 2
    assert torch.equal(T.adjust_hue(img, 0.5 / 255), img)  # offset int(0.5) == 0: identity


def test_normalize_batch_matches_hand_computation():
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 4, 5, 6, 3), dtype=np.uint8))
    out = normalize_batch(x)
    assert out.shape == (2, 3, 3, 4, 5, 6) and out.dtype == torch.float32
    b, v, c, t, i, j = 1, 2, 1, 3, 4, 5
    assert out[b, v, c, t, i, j].item() == pytest.approx((x[b, v, t, i, j, c].item() - mean[c]) / std[c], abs=1e-6)
    expected = (x.double() - torch.tensor(mean, dtype=torch.float64)) / torch.tensor(std, dtype=torch.float64)
    torch.testing.assert_close(out, expected.permute(0, 1, 5, 2, 3, 4).float())
    folded = out.reshape(6, 3, 4, 5, 6)  # (B*V, C, T, H, W) without a copy, channels-last 3D
    assert folded.is_contiguous(memory_format=torch.channels_last_3d)
    five_d = normalize_batch(x[:, 0], contiguous=True)
    assert five_d.shape == (2, 3, 4, 5, 6) and five_d.is_contiguous()
    torch.testing.assert_close(five_d, out[:, 0])


def test_build_pipeline_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"'Blur'.*valid types.*CenterCrop"):
        T.build_pipeline([{"type": "Blur"}])
    with pytest.raises(TypeError, match=r"Flip.*lazy"):
        T.build_pipeline([{"type": "Flip", "lazy": True}])
    with pytest.raises(TypeError, match=r"CenterCrop"):
        T.build_pipeline([{"type": "CenterCrop"}])
    spec = [{"type": "CenterCrop", "crop_size": 8}]
    T.build_pipeline(spec)
    assert spec == [{"type": "CenterCrop", "crop_size": 8}]  # the spec is not consumed


@pytest.mark.parametrize(
    "make",
    [
        lambda: T.Resize(256),
        lambda: T.Resize((-1, 256), keep_ratio=False),
        lambda: T.CenterCrop(0),
        lambda: T.MultiScaleCrop(224, num_fixed_crops=7),
        lambda: T.ColorJitter(brightness=1.5),
        lambda: T.Flip(direction="diagonal"),
        lambda: T.CenterCrop(100)({"imgs": torch.zeros(1, 50, 50, 3)}),
        lambda: T.ThreeCrop(40)({"imgs": torch.zeros(1, 50, 60, 3)}),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises((ValueError, TypeError)):
        make()
