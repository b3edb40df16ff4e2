"""Video transformers and VideoMamba: position-table resizing, checkpoint layouts, clip sizes."""

import json
from pathlib import Path

import pytest
import torch

import vidlab
from tests.models.test_convert import fixture_input, load_fixture
from vidlab.models import create_model
from vidlab.models.convert import detect_source
from vidlab.models.layers.transformer import resize_grid_table, sincos_table

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TINY = dict(embed_dim=32, depth=2, num_heads=4, img_size=32, num_frames=4)


def test_resizing_to_the_same_grid_returns_the_table():
    torch.manual_seed(0)
    table = torch.randn(1, 8 * 14 * 14, 24)
    assert torch.equal(resize_grid_table(table, (8, 14, 14), (8, 14, 14)), table)
    spatial = torch.randn(1, 14 * 14, 24)
    assert torch.equal(resize_grid_table(spatial, (1, 14, 14), (1, 14, 14)), spatial)
    # a constant table stays constant at any size; a table varying along time only keeps varying along time only
    assert torch.allclose(resize_grid_table(torch.ones(1, 8 * 4, 3), (8, 2, 2), (3, 5, 7)), torch.ones(1, 105, 3))
    ramp = torch.arange(8.0).repeat_interleave(4).view(1, 32, 1)
    out = resize_grid_table(ramp, (8, 2, 2), (4, 3, 3)).view(4, 9)
    assert torch.allclose(out, out[:, :1].expand(4, 9)) and (out[1:, 0] > out[:-1, 0]).all()
    with pytest.raises(ValueError, match="does not cover a 8x2x2 token grid"):
        resize_grid_table(torch.zeros(1, 30, 3), (8, 2, 2), (4, 2, 2))


def test_sincos_table_matches_videomae():
    table = sincos_table(10, 6)[0]
    p, i = 7, 3  # odd channel: cos(p / 10000 ** (2 * 1 / 6))
    assert table[p, i].item() == pytest.approx(
        torch.cos(torch.tensor(p / 10000 ** (2 / 6), dtype=torch.float64)).item()
    )
    assert table[p, 2].item() == pytest.approx(
        torch.sin(torch.tensor(p / 10000 ** (2 / 6), dtype=torch.float64)).item()
    )


def test_videomae_b_16x224_weights_load_into_8x160(tmp_path):
    """ViT-B's width, patch and tube size and 16 x 224 x 224 clip, at 2 of its 12 blocks: the position table and the
    clip size do not depend on the depth (full depth: 12 s of the suite for the same checks)."""
    torch.manual_seed(0)
    src = create_model("videomae_vit_b", num_classes=5, depth=2)
    path = tmp_path / "videomae_b_16x224.pth"
    torch.save({"model": src.state_dict()}, path)
    dst = create_model("videomae_vit_b", num_classes=5, depth=2, num_frames=8, img_size=160).eval()
    report = vidlab.load_checkpoint(dst, path)
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    assert dst.backbone.pos_embed.shape == (1, 4 * 10 * 10, 768)  # fixed table, computed for the 4x10x10 grid
    with torch.no_grad():
        out = dst(torch.randn(1, 3, 8, 160, 160))
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    # the 16x224 model itself runs 8x160 clips with its table resampled to the smaller grid
    with torch.no_grad():
        assert src.eval()(torch.randn(1, 3, 8, 160, 160)).shape == (1, 5)


def test_learned_tables_are_resized_on_load(tmp_path):
    src = create_model(
        "videomae_vit_s", num_classes=5, **{**TINY, "img_size": 64, "num_frames": 8}, learnable_pos_embed=True
    )
    path = tmp_path / "learned.pth"
    torch.save(src.state_dict(), path)
    dst = create_model("videomae_vit_s", num_classes=5, **TINY, learnable_pos_embed=True)
    report = vidlab.load_checkpoint(dst, path)
    assert report["adapted"] == ["backbone.pos_embed: resized from grid 4x4x4 to grid 2x2x2"]
    expected = resize_grid_table(src.backbone.pos_embed.detach(), (4, 4, 4), (2, 2, 2))
    assert torch.equal(dst.backbone.pos_embed.detach(), expected)

    # TimeSformer: spatial table (after the CLS entry) and temporal table
    src = create_model("timesformer_divst", num_classes=5, **{**TINY, "num_frames": 8, "img_size": 64})
    torch.save(src.state_dict(), path)
    dst = create_model("timesformer_divst", num_classes=5, **TINY)
    report = vidlab.load_checkpoint(dst, path)
    assert sorted(report["adapted"]) == [
        "backbone.pos_embed: resized from grid 1x4x4 to grid 1x2x2",
        "backbone.time_embed: resized from grid 8x1x1 to grid 4x1x1",
    ]
    assert torch.equal(dst.backbone.pos_embed[:, 0], src.backbone.pos_embed[:, 0])  # CLS entry untouched


@pytest.mark.parametrize("name", ["timesformer_divst", "timesformer_jointst", "timesformer_spaceonly", "videomamba_ti"])
def test_other_clip_sizes_run_and_built_size_is_unchanged(name):
    kwargs = {k: v for k, v in TINY.items() if not (name.startswith("videomamba") and k == "num_heads")}
    model = create_model(name, num_classes=5, **kwargs).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 48, 48)).shape == (2, 5)
        assert model(torch.randn(1, 3, 2, 16, 16)).shape == (1, 5)
        with pytest.raises(ValueError, match="height 40 is not divisible by the patch size 16"):
            model(torch.randn(1, 3, 4, 40, 32))


def test_space_only_pooling_orders():
    a = create_model("timesformer_spaceonly", num_classes=5, **TINY).eval()
    b = create_model("timesformer_spaceonly", num_classes=5, **TINY, space_only_pooling="after_norm").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
    with pytest.raises(ValueError, match="space_only_pooling"):
        create_model("timesformer_spaceonly", space_only_pooling="mean")


@pytest.mark.parametrize("name", ["videomamba_ti", "videomamba_s", "videomamba_m"])
def test_official_videomamba_layout_maps_completely(name):
    """Every key of the official state dict (tests/assets/videomamba_keys.json, written by make_videomamba_keys.py
    from OpenGVLab/VideoMamba's model code) maps to a vidlab key of the same shape, and nothing is left over."""
    ref = json.loads((ASSETS / "videomamba_keys.json").read_text())["models"][name]
    with torch.device("meta"):
        model = create_model(name, **{k: v for k, v in ref["kwargs"].items() if k != "num_classes"})
        sd = {k: torch.empty(shape) for k, shape in ref["keys"]}
    converted = vidlab.convert_state_dict(sd, source="videomamba")
    own = model.state_dict()
    assert sorted(converted) == sorted(own)
    assert all(tuple(converted[k].shape) == tuple(own[k].shape) for k in own)
    assert detect_source(sd) == "videomamba"


def test_original_videomae_layout_loads(tmp_path):
    """MCG-NJU / VideoMAE V2 fine-tune checkpoints are MMAction2's VisionTransformer without the ``backbone.`` level
    (timm names, ``head``, wrapped in ``module``): the MMAction2 fixture, renamed so, reproduces its logits."""
    fx, sd = load_fixture("mmaction2_videomae_vit_b")
    original = {}
    for key, value in sd.items():
        if key == "backbone.pos_embed":
            continue  # not stored by the original (a fixed table)
        key = key.removeprefix("backbone.").replace("cls_head.fc_cls.", "head.")
        key = key.replace("patch_embed.projection.", "patch_embed.proj.")
        key = key.replace("mlp.layers.0.0.", "mlp.fc1.").replace("mlp.layers.1.", "mlp.fc2.")
        original[key] = value
    path = tmp_path / "videomae_ft.pth"
    torch.save({"module": original}, path)
    model = create_model(fx["model"], num_classes=5, **fx["kwargs"]).eval()
    report = vidlab.load_checkpoint(model, path)
    assert report["source"] == "videomae" and not report["missing"]
    with torch.no_grad():
        assert (model(fixture_input(fx)) - torch.tensor(fx["logits"])).abs().max() <= 1e-5


def test_detects_transformer_layouts():
    assert detect_source({"videomae.embeddings.patch_embeddings.projection.weight": torch.zeros(1)}) == "hf"
    assert detect_source({"timesformer.encoder.layer.0.output.dense.weight": torch.zeros(1)}) == "hf"
    assert (
        detect_source({"blocks.0.attn.q_bias": torch.zeros(1), "patch_embed.proj.weight": torch.zeros(1)}) == "videomae"
    )
    assert (
        detect_source({"layers.0.mixer.A_log": torch.zeros(1), "patch_embed.proj.weight": torch.zeros(1)})
        == "videomamba"
    )
