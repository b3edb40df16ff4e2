"""VideoMAE pre-training: parity with HF ``VideoMAEForPreTraining`` and the original ``modeling_pretrain.py`` (tiny
configs, fixture weights; tests/assets/make_videomae_pretrain_fixtures.py), layouts, masks and targets."""

import json
from pathlib import Path

import pytest
import torch

from vidlab.data import random_mask, tube_mask
from vidlab.models import create_model
from vidlab.models.convert import convert_state_dict, detect_source
from vidlab.models.convert import videomae_pretrain as vp
from vidlab.models.layers.masking import mask_batch
from vidlab.models.videomae_pretrain import patchify, unpatchify

ASSETS = Path(__file__).resolve().parents[1] / "assets"
import sys  # noqa: E402

sys.path.insert(0, str(ASSETS))
from fixture_fill import fill_state_dict  # noqa: E402

TINY = dict(
    img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=32, depth=2, num_heads=4,
    decoder_dim=16, decoder_depth=2, decoder_num_heads=2,
)  # fmt: skip


def _fixture(ref: str) -> tuple[dict, dict[str, torch.Tensor]]:
    fx = json.loads((ASSETS / f"videomae_pretrain_{ref}.json").read_text())
    ref_sd = fill_state_dict({k: torch.zeros(shape) for k, shape, _ in fx["keys"]})
    return fx, ref_sd


def _run(fx: dict, sd: dict[str, torch.Tensor], norm_pix: bool, **kwargs):
    model = create_model("videomae_pretrain_vit_s", **TINY, norm_pix_loss=norm_pix, **kwargs).eval()
    model.load_state_dict(sd)
    x = torch.randn(fx["input_shape"], generator=torch.Generator().manual_seed(fx["input_seed"]))
    mask = torch.tensor(fx["mask"], dtype=torch.bool)
    with torch.no_grad():
        return model(x, mask)


@pytest.mark.parametrize("ref", ["hf", "orig"])
def test_loss_and_predictions_match_the_references(ref):
    fx, ref_sd = _fixture(ref)
    source = "hf" if ref == "hf" else "videomae"
    assert detect_source(ref_sd) == source
    sd = convert_state_dict(ref_sd, source, "videomae_pretrain_vit_s")
    kwargs = vp.HF_KWARGS if ref == "hf" else {}
    expected = torch.tensor(fx["logits"])
    for norm_pix, key in ((True, "norm_pix"), (False, "pixel")):
        out = _run(fx, sd, norm_pix, **kwargs)
        assert out["pred"].shape == expected.shape
        torch.testing.assert_close(out["pred"], expected, atol=1e-5, rtol=0)
        assert abs(out["loss"].item() - fx["loss"][key]) < 1e-5


def test_checkpoint_layouts_round_trip():
    fx, hf_sd = _fixture("hf")
    own = vp.from_hf(hf_sd)
    back = vp.to_hf(own)
    assert list(back) and set(back) == set(hf_sd)
    assert all(torch.equal(back[k], hf_sd[k]) for k in hf_sd)
    model = create_model("videomae_pretrain_vit_s", **TINY)
    assert set(own) == set(model.state_dict())  # the original layout, position tables not stored
    orig_fx, orig_sd = _fixture("orig")
    assert set(vp.to_original(own)) == set(orig_sd) == {k for k, _, _ in orig_fx["keys"]}


def test_tube_mask_counts_and_tubes():
    g = torch.Generator().manual_seed(0)
    m = tube_mask(4, 7, 7, 0.9, generator=g)
    assert m.dtype == torch.bool and m.shape == (4 * 49,)
    per_slice = m.view(4, 49)
    assert (per_slice.sum(1) == int(0.9 * 49)).all()
    assert (per_slice == per_slice[0]).all()  # the same spatial mask through time
    batch = mask_batch(5, (8, 14, 14), 0.9, "tube", generator=g)
    assert batch.shape == (5, 8 * 196) and ((~batch).sum(1) == 8 * (196 - 176)).all()  # fixed visible count
    assert not (batch == batch[0]).all()  # samples differ
    r = random_mask(2, 4, 4, 0.75, generator=g)
    assert int(r.sum()) == 24
    with pytest.raises(ValueError, match="mask ratio"):
        tube_mask(2, 4, 4, 1.0)


def test_model_masks_itself_and_refuses_ragged_masks():
    model = create_model("videomae_pretrain_vit_s", **TINY, mask_ratio=0.75)
    x = torch.randn(2, 3, 4, 32, 32)
    torch.manual_seed(0)
    out = model(x)
    assert out["pred"].shape == (2, 24, 384) and out["mask"].sum().item() == 48
    out["loss"].backward()
    assert model.encoder.blocks[0].attn.qkv.weight.grad is not None
    ragged = out["mask"].clone()
    ragged[0, 0] = ~ragged[0, 0]
    with pytest.raises(ValueError, match="same number of visible tokens"):
        model(x, ragged)


def test_patchify_inverts_and_targets_are_per_tube_normalised():
    x = torch.randn(2, 3, 4, 16, 16)
    tubes = patchify(x, 2, 8)
    assert tubes.shape == (2, 8, 128, 3)
    torch.testing.assert_close(unpatchify(tubes.flatten(2), (2, 2, 2), 2, 8), x)
    model = create_model("videomae_pretrain_vit_s", **{**TINY, "img_size": 16})
    t = model.targets(x).view(2, 8, 128, 3)
    torch.testing.assert_close(t.mean(2), torch.zeros(2, 8, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.std(2), torch.ones(2, 8, 3), atol=1e-3, rtol=0)


def test_parameter_count_matches_hf_base():
    from vidlab.models import get_model_info

    # transformers 5.24: VideoMAEForPreTraining(VideoMAEConfig(use_mean_pooling=False)), its default ViT-B sizes
    assert get_model_info("videomae_pretrain_vit_b").num_params() == 94_210_944
    assert get_model_info("videomae_pretrain_vit_b").task == "pretrain"
