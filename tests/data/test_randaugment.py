"""RandAugment for clips: timm's operations on uint8 frames, one draw per clip, PIL's definitions."""

import numpy as np
import pytest
import torch

from vidlab.data import randaugment as T
from vidlab.data.transforms import RandAugment, build_pipeline

ALL_OPS = sorted(set(T.RAND_AUGMENT_OPS) | set(T.RAND_AUGMENT_INCREASING_OPS))


def _frames(n=3, h=20, w=24, seed=0):
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _args(name, magnitude, seed=0):
    level = T._RA_OPS[name][1]
    return level(magnitude, np.random.default_rng(seed), 0.45) if level is not None else ()


@pytest.mark.parametrize("name", ALL_OPS)
def test_each_op_keeps_shape_dtype_and_treats_frames_alike(name):
    frame = _frames(1)
    clip = frame.expand(4, -1, -1, -1)  # four identical frames
    out = T.apply_rand_augment_op(clip, name, _args(name, 7.0))
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert torch.equal(out, out[:1].expand_as(out))  # the same operation and magnitude on every frame
    frames = _frames(3, seed=1)  # and on a clip of different frames: as if applied frame by frame
    whole = T.apply_rand_augment_op(frames, name, _args(name, 7.0))
    assert torch.equal(whole, torch.cat([T.apply_rand_augment_op(f[None], name, _args(name, 7.0)) for f in frames]))


@pytest.mark.parametrize("name", [n for n in T.RAND_AUGMENT_INCREASING_OPS if n not in ("AutoContrast", "Equalize")])
def test_magnitude_zero_of_the_increasing_set(name):
    x = _frames()
    out = T.apply_rand_augment_op(x, name, _args(name, 0.0))
    if name == "Invert":
        assert torch.equal(out, 255 - x)
    elif name == "PosterizeIncreasing":
        assert torch.equal(out, x & 0xF0)  # keeps 4 bits at magnitude 0
    else:
        assert torch.equal(out, x)


def test_level_arguments_follow_timm():
    rng = np.random.default_rng(0)
    assert T._RA_OPS["PosterizeIncreasing"][1](10.0, rng, 0.45) == (0,)
    assert T._RA_OPS["SolarizeIncreasing"][1](5.0, rng, 0.45) == (128,)
    assert T._RA_OPS["SolarizeAdd"][1](10.0, rng, 0.45) == (110,)
    assert abs(T._RA_OPS["Rotate"][1](10.0, rng, 0.45)[0]) == 30.0
    assert abs(T._RA_OPS["TranslateXRel"][1](5.0, rng, 0.45)[0]) == pytest.approx(0.225)
    assert abs(T._RA_OPS["ContrastIncreasing"][1](10.0, rng, 0.45)[0] - 1) == pytest.approx(0.9)
    assert T._RA_OPS["Contrast"][1](10.0, rng, 0.45) == pytest.approx((1.9,))
    signs = {np.sign(T._RA_OPS["ShearX"][1](5.0, rng, 0.45)[0]) for _ in range(20)}
    assert signs == {-1.0, 1.0}


def test_pixel_ops_values():
    x = torch.tensor([[[[0, 100, 200], [50, 128, 255]]]], dtype=torch.uint8)  # (1, 1, 2, 3)
    assert T.posterize(x, 2).flatten().tolist() == [0, 64, 192, 0, 128, 192]
    assert T.solarize(x, 128).flatten().tolist() == [0, 100, 55, 50, 127, 0]
    assert T.solarize_add(x, 60).flatten().tolist() == [60, 160, 200, 110, 128, 255]
    assert T.enhance_brightness(x, 0.5).flatten().tolist() == [0, 50, 100, 25, 64, 127]
    ac = T.auto_contrast(torch.tensor([[[[10, 0, 7]], [[20, 0, 7]], [[30, 0, 7]]]], dtype=torch.uint8))
    assert ac[0, :, 0, 0].tolist() == [0, 127, 255] and (ac[..., 1] == 0).all() and (ac[..., 2] == 7).all()
    grey = T.enhance_color(_frames(1), 0.0)
    assert torch.equal(grey[..., 0], grey[..., 1]) and torch.equal(grey[..., 1], grey[..., 2])


def test_rotate_is_counter_clockwise():
    x = _frames(1, 16, 16)
    out = T.rotate(x, 90.0, interpolation="nearest")
    assert torch.equal(out, torch.rot90(x, 1, dims=(1, 2)))  # numpy/torch rot90: counter-clockwise as displayed


def test_ops_match_pil():
    Image = pytest.importorskip("PIL.Image")
    ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
    ImageOps = pytest.importorskip("PIL.ImageOps")
    x = _frames(1, 20, 24, seed=3)
    pil = Image.fromarray(x[0].numpy())

    def close(ours, ref, tol):
        diff = np.abs(ours[0].numpy().astype(int) - np.asarray(ref).astype(int))
        assert diff.max() <= tol

    close(T.equalize(x), ImageOps.equalize(pil), 0)
    close(T.auto_contrast(x), ImageOps.autocontrast(pil), 1)
    close(T.posterize(x, 3), ImageOps.posterize(pil, 3), 0)
    close(T.solarize(x, 90), ImageOps.solarize(pil, 90), 0)
    for f in (0.3, 1.6):
        close(T.enhance_color(x, f), ImageEnhance.Color(pil).enhance(f), 1)
        close(T.enhance_contrast(x, f), ImageEnhance.Contrast(pil).enhance(f), 1)
        close(T.enhance_brightness(x, f), ImageEnhance.Brightness(pil).enhance(f), 1)
        close(T.enhance_sharpness(x, f), ImageEnhance.Sharpness(pil).enhance(f), 1)
    fill = {"fillcolor": (128, 128, 128), "resample": Image.BILINEAR}
    close(T.rotate(x, 25.0, interpolation="bilinear"), pil.rotate(25.0, **fill), 1)
    close(
        T.shear_x(x, 0.2, interpolation="bilinear"),
        pil.transform(pil.size, Image.AFFINE, (1, 0.2, 0, 0, 1, 0), **fill),
        1,
    )
    close(
        T.translate_y_rel(x, -0.3, interpolation="bilinear"),
        pil.transform(pil.size, Image.AFFINE, (1, 0, 0, 0, 1, -0.3 * 20), **fill),
        1,
    )
    assert (T.solarize(x, 256) == x).all() and (T.solarize(x, 0) == 255 - x).all()


def test_rand_augment_draws_once_per_clip_and_is_deterministic():
    ra = RandAugment(n=4, m=7, mstd=0.5, inc=True)
    clip = _frames(1, 24, 32).expand(5, -1, -1, -1)

    def run(seed):
        return ra({"imgs": clip, "rng": np.random.default_rng(seed)})

    a, b = run(0), run(0)
    assert torch.equal(a["imgs"], b["imgs"]) and a["rand_augment"] == b["rand_augment"]
    assert all(name in T.RAND_AUGMENT_INCREASING_OPS for name, _ in a["rand_augment"])
    outs = [run(s) for s in range(1, 12)]
    assert any(o["rand_augment"] != a["rand_augment"] for o in outs)
    for o in [a, *outs]:
        assert torch.equal(o["imgs"], o["imgs"][:1].expand_as(o["imgs"]))  # identical frames stay identical
        replay = clip
        for name, args in o["rand_augment"]:
            replay = T.apply_rand_augment_op(replay, name, args, fill=128, interpolation="bicubic")
        assert torch.equal(replay, o["imgs"])


def test_rand_augment_op_count_and_magnitude_clipping():
    rng = np.random.default_rng(0)
    assert all(len(RandAugment(n=3, prob=1.0).draw(rng)) == 3 for _ in range(10))
    counts = [len(RandAugment(n=4, prob=0.5).draw(rng)) for _ in range(400)]
    assert np.mean(counts) == pytest.approx(2.0, abs=0.2)
    wild = RandAugment(n=8, m=10, mstd=5.0, prob=1.0, inc=True)
    for _ in range(30):
        for name, args in wild.draw(rng):
            if name == "Rotate":
                assert abs(args[0]) <= 30.0
            if name.endswith("Increasing") and name[:-10] in ("Color", "Contrast", "Brightness", "Sharpness"):
                assert 0.1 - 1e-9 <= args[0] <= 1.9 + 1e-9
    plain = RandAugment(inc=False)
    assert "Posterize" in plain.ops and "PosterizeIncreasing" not in plain.ops


def test_rand_augment_in_a_pipeline_and_its_errors():
    pipe = build_pipeline([{"type": "RandAugment", "n": 2, "m": 9}, {"type": "CenterCrop", "crop_size": 16}])
    out = pipe({"imgs": _frames(4, 24, 32), "rng": np.random.default_rng(1)})
    assert out["imgs"].shape == (4, 16, 16, 3) and len(out["rand_augment"]) <= 2
    with pytest.raises(ValueError, match="boxes"):
        RandAugment()({"imgs": _frames(), "gt_bboxes": np.zeros((1, 4)), "rng": np.random.default_rng(0)})
    with pytest.raises(ValueError, match="m must be"):
        RandAugment(m=11)
    with pytest.raises(ValueError, match="interpolation"):
        RandAugment(interpolation="lanczos")
