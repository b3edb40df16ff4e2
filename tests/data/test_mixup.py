"""Batch-level training augmentation: Mixup / CutMix with smoothed soft targets, and random erasing of clips."""

import math

import pytest
import torch
import torch.nn.functional as F

from vidlab.data.batch_transforms import RandomErasing
from vidlab.data.mixup import Mixup, smooth_one_hot, soft_target_cross_entropy
from vidlab.data.transforms import build_pipeline

K = 5


def _labels(n):
    """Labels whose partner in the flipped batch (N - 1 - i) always has another class."""
    y = torch.arange(n) % (K - 1)
    y[n // 2 :] = K - 1
    return y


def _clips(n=6, t=3, h=8, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, h, w, generator=g), _labels(n)


def _lam_of(targets, labels, smoothing):
    """The weight of each sample's own label, read back from its mixed target (labels of i and N-1-i differ)."""
    off = smoothing / K
    on = 1 - smoothing + off
    own = targets[torch.arange(len(labels)), labels]
    return (own - off) / (on - off)


def test_smoothed_one_hot_and_soft_cross_entropy():
    y = torch.tensor([0, 3, 4])
    t = smooth_one_hot(y, K, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert t[0, 0].item() == pytest.approx(1 - 0.1 + 0.02) and t[0, 1].item() == pytest.approx(0.02)
    logits = torch.randn(3, K, generator=torch.Generator().manual_seed(1))
    # with hard labels the soft-target loss is torch's label-smoothed cross-entropy (timm's LabelSmoothingCE)
    expected = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert soft_target_cross_entropy(logits, t).item() == pytest.approx(expected.item(), rel=1e-6)


def test_mixup_batch_mode_blends_with_the_flipped_batch():
    x, y = _clips()
    mix = Mixup(K, mixup_alpha=0.8, label_smoothing=0.1, generator=torch.Generator().manual_seed(0))
    xm, t = mix(x, y)
    assert t.shape == (6, K) and t.dtype == torch.float32 and torch.allclose(t.sum(1), torch.ones(6))
    lam = _lam_of(t, y, 0.1)
    assert torch.allclose(lam, lam[0].expand(6), atol=1e-6) and 0 < lam[0] < 1  # one weight for the batch
    assert torch.allclose(xm, lam[0] * x + (1 - lam[0]) * x.flip(0), atol=1e-5)
    on, off = 1 - 0.1 + 0.02, 0.02
    assert t[0, y[-1]].item() == pytest.approx((1 - lam[0].item()) * on + lam[0].item() * off, abs=1e-6)
    assert torch.equal(x, _clips()[0])  # the input is left as it was


def test_cutmix_box_is_the_same_on_every_frame_and_lam_is_its_complement():
    x, y = _clips(h=12, w=16)
    mix = Mixup(K, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(3))
    xm, t = mix(x, y)
    from_partner = (xm == x.flip(0)) & (xm != x)
    box = from_partner.all(dim=(1, 2))  # (N, H, W): every channel and frame
    assert torch.equal(from_partner.any(dim=(1, 2)), box)  # no pixel taken on some frames only
    assert torch.equal(box, box[0].expand_as(box))  # one box for the batch
    rows, cols = box[0].any(1).nonzero().flatten(), box[0].any(0).nonzero().flatten()
    assert box[0].sum() == len(rows) * len(cols) > 0  # a rectangle
    assert torch.equal(xm[~box.unsqueeze(1).unsqueeze(1).expand_as(x)], x[~box.unsqueeze(1).unsqueeze(1).expand_as(x)])
    lam = _lam_of(t, y, 0.0)
    assert torch.allclose(lam, torch.full((6,), 1 - box[0].sum().item() / (12 * 16)), atol=1e-6)


@pytest.mark.parametrize("switch_prob, cutmix", [(1.0, True), (0.0, False)])
def test_switch_prob_chooses_cutmix_or_mixup(switch_prob, cutmix):
    x, y = _clips()
    mix = Mixup(K, mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=switch_prob, generator=torch.Generator())
    for seed in range(5):
        mix.generator.manual_seed(seed)
        xm, _ = mix(x, y)
        copied = ((xm == x) | (xm == x.flip(0))).all().item()
        assert copied == cutmix


def test_prob_zero_keeps_the_batch_and_smooths_the_targets():
    x, y = _clips()
    xm, t = Mixup(K, mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.0, label_smoothing=0.2)(x, y)
    assert torch.equal(xm, x)
    assert torch.allclose(t, smooth_one_hot(y, K, 0.2))


def test_mixup_is_deterministic_under_a_seed():
    x, y = _clips()

    def run(seed):
        return Mixup(K, mixup_alpha=0.8, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(seed))(x, y)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_elem_mode_draws_beta_weights_per_sample():
    n = 1000
    x = torch.randn(n, 1, 1, 1, 2, generator=torch.Generator().manual_seed(0))
    y = _labels(n)
    xm, t = Mixup(K, mixup_alpha=0.8, mode="elem", generator=torch.Generator().manual_seed(0))(x, y)
    lam = _lam_of(t, y, 0.0)
    assert torch.allclose(xm, lam.view(-1, 1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1, 1)) * x.flip(0), atol=1e-5)
    # Beta(0.8, 0.8): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.0962
    assert lam.mean().item() == pytest.approx(0.5, abs=0.035)
    assert lam.var().item() == pytest.approx(1 / (4 * 2.6), abs=0.012)


def test_pair_mode_mixes_both_members_of_a_pair_with_one_weight():
    x, y = _clips()
    xm, t = Mixup(K, mixup_alpha=1.0, mode="pair", generator=torch.Generator().manual_seed(2))(x, y)
    lam = _lam_of(t, y, 0.0)
    assert torch.allclose(lam, lam.flip(0), atol=1e-6) and not torch.allclose(lam[0], lam[1])
    assert torch.allclose(xm, lam.view(-1, 1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1, 1)) * x.flip(0), atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        Mixup(K, mixup_alpha=1.0, mode="pair")(x[:5], y[:5])


def test_cutmix_minmax_box_sides():
    mix = Mixup(K, cutmix_minmax=[0.25, 0.5], generator=torch.Generator().manual_seed(0))
    assert mix.cutmix_alpha == 1.0
    for _ in range(20):
        (y1, y2, x1, x2), lam = mix.cutmix_box(40, 60, 0.5)
        assert 10 <= y2 - y1 < 20 and 15 <= x2 - x1 < 30 and y2 <= 40 and x2 <= 60
        assert lam == pytest.approx(1 - (y2 - y1) * (x2 - x1) / 2400)


def test_mixup_errors():
    with pytest.raises(ValueError, match="mixup_alpha > 0"):
        Mixup(K)
    with pytest.raises(ValueError, match="mode"):
        Mixup(K, mixup_alpha=1.0, mode="half")
    with pytest.raises(ValueError, match="switch_prob"):
        Mixup(K, mixup_alpha=1.0, switch_prob=1.5)
    x, _ = _clips()
    with pytest.raises(ValueError, match="one class index per clip"):
        Mixup(K, mixup_alpha=1.0)(x, torch.zeros(6, K))  # multi-hot targets


# ------------------------------------------------------------------------------------------ random erasing


def test_erasing_one_box_on_every_frame_with_pixel_noise():
    x = torch.full((5, 3, 4, 20, 30), 7.0)
    erase = RandomErasing(prob=1.0, mode="pixel", generator=torch.Generator().manual_seed(0))
    out = erase(x)
    assert out is not x and (x == 7.0).all()
    for clip in out:
        hit = clip != 7.0  # (C, T, H, W)
        box = hit.all(dim=(0, 1))  # (H, W): the box, on every channel and frame
        assert torch.equal(hit.any(dim=(0, 1)), box)
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert box.sum() == h * w and rows[-1] - rows[0] + 1 == h and cols[-1] - cols[0] + 1 == w
        assert 0.02 * 600 - 2 * (h + w) <= h * w <= 600 / 3 + 2 * (h + w)  # area after rounding the sides
        assert 0.3 / 1.5 <= h / w <= 1.5 / 0.3
        noise = clip[:, :, box]
        assert not torch.equal(noise[:, 0], noise[:, 1])  # fresh noise on each frame
    values = torch.cat([c[c != 7.0] for c in out])
    assert values.mean().abs() < 0.15 and (values.std() - 1).abs() < 0.15  # standard normal


def test_erasing_modes_and_probability():
    x = torch.zeros(2, 3, 2, 16, 16) + 5
    const = RandomErasing(prob=1.0, mode="const", generator=torch.Generator().manual_seed(0))(x)
    assert set(const.unique().tolist()) == {0.0, 5.0}
    rand = RandomErasing(prob=1.0, mode="rand", generator=torch.Generator().manual_seed(0))(x)
    for clip in rand:
        box = (clip != 5).all(dim=(0, 1))
        per_plane = clip[:, :, box]  # (C, T, box pixels): one value per channel and frame
        assert torch.equal(per_plane, per_plane[..., :1].expand_as(per_plane))
    assert RandomErasing(prob=0.0)(x) is x
    many = torch.zeros(400, 1, 1, 8, 8)
    erased = (RandomErasing(prob=0.25, generator=torch.Generator().manual_seed(1))(many) != 0).flatten(1).any(1)
    assert erased.float().mean().item() == pytest.approx(0.25, abs=0.07)


def test_erasing_count_and_errors():
    erase = RandomErasing(prob=1.0, count=3, generator=torch.Generator().manual_seed(0))
    counts = {len(erase.boxes(32, 32)) for _ in range(60)}
    assert counts == {1, 2, 3}
    assert math.isclose(RandomErasing(min_aspect=0.25).max_aspect, 4.0)
    with pytest.raises(ValueError, match="mode"):
        RandomErasing(mode="noise")
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        RandomErasing()(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="data.random_erasing"):
        build_pipeline([{"type": "RandomErasing"}])
