"""Temporal modules of the 2D families: TIN's interlace, TAM, non-local blocks, TRN's relation heads."""

import itertools

import pytest
import torch

from vidlab.models import create_model
from vidlab.models.layers import TAM, NonLocal3d, RelationModuleMultiScale, TemporalInterlace
from vidlab.models.layers.interlace import fractional_shift, group_shift


def shift_loop(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The integer group shift written as the plainest loop: frame t of group g moves to t + shift[n, g]."""
    n, t, c = x.shape[:3]
    per_group = c // shift.shape[1]
    out = torch.zeros_like(x)
    for i, ch, src in itertools.product(range(n), range(c), range(t)):
        dst = src + int(shift[i, ch // per_group])
        if 0 <= dst < t:
            out[i, dst, ch] = x[i, src, ch]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_group_shift_matches_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 8, 2, 3, generator=gen)
    shift = torch.randint(-6, 7, (3, 4), generator=gen)  # includes shifts beyond T in both directions
    assert torch.equal(group_shift(x, shift), shift_loop(x, shift))


def test_fractional_shift_interpolates_and_is_differentiable_in_the_offset():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 8, 3, generator=gen)
    ints = torch.tensor([[1, -1, 0, 2], [-2, 1, 1, 0]])
    assert torch.allclose(fractional_shift(x, ints.float()), shift_loop(x, ints))
    half = torch.full((2, 4), 0.5, requires_grad=True)
    out = fractional_shift(x, half)
    expected = 0.5 * shift_loop(x, torch.zeros(2, 4, dtype=torch.long)) + 0.5 * shift_loop(x, torch.ones(2, 4).long())
    assert torch.allclose(out, expected, atol=1e-6)
    out.square().sum().backward()
    assert half.grad is not None and half.grad.abs().sum() > 0


def test_temporal_interlace_keeps_unshifted_channels_and_checks_segments():
    torch.manual_seed(0)
    tin = TemporalInterlace(64, num_segments=4, shift_div=4)
    x = torch.randn(8, 64, 3, 3)
    y = tin(x, 4)
    assert y.shape == x.shape
    assert torch.equal(y[:, 16:], x[:, 16:])
    assert not torch.allclose(y[:, :16], x[:, :16])
    with pytest.raises(ValueError, match="num_segments=4"):
        tin(x, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        TemporalInterlace(40, num_segments=4, shift_div=4)


def test_temporal_interlace_tsm_init_starts_as_the_same_half_frame_shift_for_every_clip():
    torch.manual_seed(0)
    x = torch.randn(8, 32, 3, 3)  # 2 clips of 4 frames; 8 interlaced channels in 4 groups of 2
    y = TemporalInterlace(32, num_segments=4, shift_div=4)(x, 4)  # init="tsm": offsets 0.5, -0.5, weights 1
    part = x[:, :8].reshape(2, 4, 8, 3, 3)
    shifted = 0.5 * part + 0.5 * shift_loop(part, torch.tensor([[1, 1, -1, -1]] * 2))
    assert torch.allclose(y[:, :8], shifted.reshape(8, 8, 3, 3), atol=1e-3)  # offsets 4 * (sigmoid(0.5108) - 0.5)
    ref = TemporalInterlace(32, num_segments=4, shift_div=4, init="mmaction2")(x, 4)
    assert not torch.allclose(ref[:, :8], shifted.reshape(8, 8, 3, 3), atol=1e-3)  # random per-clip offsets, weights
    with pytest.raises(ValueError, match="init must be one of"):
        TemporalInterlace(32, num_segments=4, init="zeros")


def test_tam_mixes_frames_within_a_clip_only():
    torch.manual_seed(0)
    tam = TAM(16, num_segments=4).eval()
    x = torch.randn(8, 16, 5, 5)  # two clips of 4 frames
    y = tam(x)
    x2 = x.clone()
    x2[4:] = torch.randn(4, 16, 5, 5)  # change only the second clip
    y2 = tam(x2)
    assert torch.equal(y[:4], y2[:4])
    assert not torch.allclose(y[4:], y2[4:])
    x3 = x.clone()
    x3[1] += 1.0
    assert not torch.allclose(tam(x3)[0], y[0])  # frame 1 reaches frame 0 through the temporal kernel


@pytest.mark.parametrize("mode", ["gaussian", "embedded_gaussian", "dot_product"])
def test_non_local_starts_as_identity_and_attends_across_frames(mode):
    torch.manual_seed(0)
    nl = NonLocal3d(8, mode, sub_sample=True, use_scale=False).eval()
    x = torch.randn(2, 8, 3, 4, 4)
    assert torch.equal(nl(x), x)  # output BN weight starts at 0
    torch.nn.init.ones_(nl.bn.weight)
    y = nl(x)
    x2 = x.clone()
    x2[:, :, 2] += 1.0  # change frame 2; frame 0's output changes through attention
    assert not torch.allclose(nl(x2)[:, :, 0], y[:, :, 0])
    frames = x.transpose(1, 2).reshape(6, 8, 4, 4)
    assert torch.allclose(nl.forward_frames(frames, 3), y.transpose(1, 2).reshape(6, 8, 4, 4))
    with pytest.raises(ValueError, match="non-local mode"):
        NonLocal3d(8, "concat")


def test_trn_multiscale_draws_in_training_and_is_fixed_in_eval():
    head = RelationModuleMultiScale(hidden_dim=4, num_segments=5, num_classes=3)
    assert [len(r) for r in head.eval_relations] == [1, 3, 3, 3]
    x = torch.randn(2, 5, 4)
    head.eval()
    assert torch.equal(head(x), head(x))
    head.train()
    torch.manual_seed(0)
    outs = {tuple(head(x).flatten().tolist()) for _ in range(8)}
    assert len(outs) > 1  # random relation subsets per forward in training
    head.set_relations([[0], [0, 1, 2], [1], [3, 4]])
    head.eval()
    manual = sum(
        head.fc_fusion_scales[i](x[:, list(head.relations[i][j])].flatten(1))
        for i, idx in enumerate(head.eval_relations)
        for j in idx
    )
    assert torch.allclose(head(x), manual)
    with pytest.raises(ValueError, match="out of range"):
        head.set_relations([[0], [99], [0], [0]])
    with pytest.raises(ValueError, match="num_segments=5"):
        head(torch.randn(2, 4, 4))


@pytest.mark.parametrize("name", ["tin_r18", "tanet_r18", "trn_r18"])
def test_fixed_segment_families_reject_other_clip_lengths(name):
    model = create_model(name, num_classes=3, num_segments=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 3)
        with pytest.raises(ValueError, match="num_segments=4"):
            model(torch.randn(1, 3, 6, 32, 32))


def test_tsm_r101_shifts_every_other_block_and_mobilenet_shifts_residual_expansions():
    model = create_model("tsm_r101", num_classes=3)
    layer3 = [b.shift_div for b in model.backbone.layer3]
    assert len(layer3) == 23 and layer3[::2] == [8] * 12 and layer3[1::2] == [None] * 11
    mb = create_model("tsm_mobilenetv2", num_classes=3).backbone
    blocks = [b for i in range(1, 8) for b in getattr(mb, f"layer{i}")]
    assert [b.shift_div is not None for b in blocks] == [b.use_res_connect for b in blocks]
    assert sum(b.shift_div is not None for b in blocks) == 10


@pytest.mark.parametrize("layer", ["interlace", "tam"])
def test_gradients_match_finite_differences(layer):
    """Training-mode gradients w.r.t. the input and every parameter (float64 gradcheck)."""
    from torch.func import functional_call

    torch.manual_seed(0)
    mod = TemporalInterlace(16, num_segments=4) if layer == "interlace" else TAM(8, num_segments=4)
    mod = mod.double().train()
    x = torch.randn(8, mod.fold * 4 if layer == "interlace" else 8, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: mod(x, 4), (x,), eps=1e-6, atol=1e-5)
    names = [n for n, _ in mod.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_(True) for p in mod.parameters())
    assert torch.autograd.gradcheck(
        lambda *v: functional_call(mod, dict(zip(names, v)), (x.detach(), 4)), values, eps=1e-6, atol=1e-5
    )
