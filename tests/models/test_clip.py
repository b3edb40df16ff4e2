"""CLIP's image tower: parity with HF ``CLIPVisionModelWithProjection`` (tiny config, fixture weights;
tests/assets/make_clip_fixture.py), the OpenAI layout (state dict and TorchScript archive), registration."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import vidlab
from tests.assets.fixture_fill import checksum, fill
from vidlab.models import create_model, get_model_info, list_models
from vidlab.models.convert import clip as clip_convert
from vidlab.models.convert import convert_state_dict, detect_source

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FX = json.loads((ASSETS / "clip_vision_hf.json").read_text())


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> None:
    """Same shape and max abs difference <= atol (lighter than torch.testing, which imports torch.distributed)."""
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    diff = (a.double() - b.double()).abs().max().item()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol:g}"


def _expected(name: str) -> torch.Tensor:
    return torch.tensor(FX[name]["values"]).view(FX[name]["shape"])


@pytest.fixture(scope="module")
def hf_sd() -> dict[str, torch.Tensor]:
    sd = {k: fill(k, tuple(shape)) for k, shape, _ in FX["keys"]}
    assert checksum(sd) == pytest.approx(FX["fill_checksum"], rel=1e-9)
    return sd


@pytest.fixture(scope="module")
def tower(hf_sd):
    model = create_model("clip_vit_b16", **FX["kwargs"]).eval()
    assert detect_source(hf_sd) == "hf_clip"
    model.load_state_dict(convert_state_dict(hf_sd, "hf_clip"), strict=True)
    return model


def _input() -> torch.Tensor:
    return torch.randn(FX["input_shape"], generator=torch.Generator().manual_seed(FX["input_seed"]))


def test_matches_hf_clip_vision_model(tower):
    x = _input()
    b, _, t = x.shape[:3]
    with torch.no_grad():
        tokens = tower.backbone.forward_tokens(x)  # (B*T, 1 + N, width)
        _close(tokens, _expected("last_hidden_state"), 1e-5)
        pooled = tower.backbone.ln_post(tokens[:, 0])
        _close(pooled, _expected("pooled_output"), 1e-5)
        _close(tower.backbone.embed(tokens[:, 0]), _expected("image_embeds"), 1e-5)
        # the model's output: the frame average of the image embeddings
        _close(tower(x), _expected("image_embeds").view(b, t, -1).mean(1), 1e-5)
        # block 0's patch tokens on the (T, H', W') grid
        first = tower.forward_intermediates(x, [0])[0]  # (B, width, T, 3, 3)
        want = _expected("hidden_state_1")[:, 1:].reshape(b, t, 3, 3, -1).permute(0, 4, 1, 2, 3)
        _close(first, want, 1e-5)
        maps, cls, attention = tower.forward_teacher(x, [0, 1])
    # the teacher's guide: the last block's CLS-to-patch attention, mean over heads, per frame
    _close(attention.reshape(b * t, -1), _expected("cls_attention"), 1e-6)
    # aligned features: ln_post then proj on every token of the chosen blocks; the CLS one averaged over frames
    last = tower.backbone.embed(_expected("last_hidden_state"))
    _close(maps[1], last[:, 1:].reshape(b, t, 3, 3, -1).permute(0, 4, 1, 2, 3), 1e-5)
    _close(cls[1], _expected("image_embeds").view(b, t, -1).mean(1), 1e-5)
    assert maps[0].shape == (b, 16, t, 3, 3) and cls[0].shape == (b, 16)
    no_ln, _, _ = tower.forward_teacher(x, [1], ln_post=False)
    raw = _expected("last_hidden_state")[:, 1:] @ tower.backbone.proj
    _close(no_ln[0], raw.reshape(b, t, 3, 3, -1).permute(0, 4, 1, 2, 3), 1e-5)


def _openai_layout(hf: dict[str, torch.Tensor], prefix: str = "visual.") -> dict[str, torch.Tensor]:
    """The OpenAI ``clip`` package's key layout of the same weights (renamed here, independently of the converter)."""
    v = {k.removeprefix("vision_model."): t for k, t in hf.items()}
    out = {
        "conv1.weight": v["embeddings.patch_embedding.weight"],
        "class_embedding": v["embeddings.class_embedding"],
        "positional_embedding": v["embeddings.position_embedding.weight"],
        "proj": hf["visual_projection.weight"].t(),
    }
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"{ours}.{p}"] = v[f"{theirs}.{p}"]
    for i in range(FX["kwargs"]["depth"]):
        hf_l, oa = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            out[oa + f"attn.in_proj_{p}"] = torch.cat([v[hf_l + f"self_attn.{n}_proj.{p}"] for n in "qkv"])
            for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj")):
                out[oa + f"{a}.{p}"] = v[hf_l + f"{b}.{p}"]
            for a, b in (("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                out[oa + f"{a}.{p}"] = v[hf_l + f"{b}.{p}"]
    return {prefix + k: t for k, t in out.items()}


def test_openai_layout_converts_to_the_same_weights(hf_sd):
    from_hf = convert_state_dict(hf_sd, "hf_clip")
    full = _openai_layout(hf_sd)
    # a whole CLIP model: the text tower and the scalars next to it are left out
    full |= {"transformer.resblocks.0.attn.in_proj_weight": torch.zeros(96, 32), "logit_scale": torch.tensor(4.6)}
    full |= {"token_embedding.weight": torch.zeros(10, 32), "input_resolution": torch.tensor(48)}
    for sd in (full, _openai_layout(hf_sd, prefix="")):  # and a tower saved on its own (UMT's extracted files)
        assert detect_source(sd) == "openai_clip"
        converted = convert_state_dict(sd, "openai_clip")
        assert converted.keys() == from_hf.keys()
        assert all(torch.equal(converted[k], from_hf[k]) for k in from_hf)


def _nested(sd: dict[str, torch.Tensor]) -> nn.Module:
    """A module whose state dict is ``sd`` (for a TorchScript archive of it)."""
    root = nn.Module()
    for key, value in sd.items():
        *path, leaf = key.split(".")
        m = root
        for p in path:
            if not hasattr(m, p):
                m.add_module(p, nn.Module())
            m = getattr(m, p)
        m.register_parameter(leaf, nn.Parameter(value.clone()))
    return root


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_archive_loads_with_auto_detection(hf_sd, tower, tmp_path):
    path = tmp_path / "ViT-tiny.pt"  # OpenAI releases TorchScript archives, which torch.load(weights_only) refuses
    torch.jit.script(_nested({**_openai_layout(hf_sd), "logit_scale": torch.tensor(4.6)})).save(str(path))
    assert clip_convert.is_torchscript(path)
    model = create_model("clip_vit_b16", **FX["kwargs"]).eval()
    report = vidlab.load_checkpoint(model, path)
    assert report["source"] == "openai_clip" and not report["missing"] and not report["unexpected"]
    x = _input()
    with torch.no_grad():
        _close(model(x), tower(x), 0)


def test_tower_without_projection_and_other_sizes(hf_sd, tmp_path):
    bare = {k.removeprefix("vision_model."): v for k, v in hf_sd.items() if k != "visual_projection.weight"}
    assert detect_source(bare) == "hf_clip"  # HF's CLIPVisionModel: no projection
    converted = convert_state_dict(bare, "hf_clip")
    kwargs = clip_convert.builder_kwargs("clip_vit_b16", converted)
    assert kwargs == {"output_dim": 0}
    model = create_model("clip_vit_b16", **{**FX["kwargs"], **kwargs}).eval()
    model.load_state_dict(converted, strict=True)
    assert model.backbone.proj is None
    with torch.no_grad():
        tokens = model.backbone.forward_tokens(_input())
        _close(model(_input()), model.backbone.ln_post(tokens[:, 0]).view(1, 2, -1).mean(1))
    # built for 32 px frames (2x2 patches): the 3x3 position table is resized at load, bicubically
    path = tmp_path / "tower.pth"
    torch.save(converted, path)
    small = create_model("clip_vit_b16", **{**FX["kwargs"], **kwargs, "img_size": 32})
    report = vidlab.load_checkpoint(small, path)
    assert report["adapted"] == ["backbone.pos_embed: resized from grid 1x3x3 to grid 1x2x2"]
    assert small(torch.randn(1, 3, 2, 32, 32)).shape == (1, 32)


def test_foreign_layouts_are_refused():
    with pytest.raises(NotImplementedError, match="ResNet image tower"):
        convert_state_dict(
            {"visual.class_embedding": torch.zeros(3), "visual.attnpool.c_proj.weight": torch.zeros(1)}, "openai_clip"
        )
    with pytest.raises(ValueError, match="no HuggingFace CLIP -> vidlab mapping for key 'encoder.layers.0.oops'"):
        convert_state_dict({"pre_layrnorm.weight": torch.zeros(3), "encoder.layers.0.oops": torch.zeros(1)}, "hf_clip")


def test_registered_as_encoders_with_clip_sizes(no_init_on_meta):
    assert list_models("clip_*", task="encoder") == ["clip_vit_b16", "clip_vit_l14"]
    assert not list_models("clip_*")  # not video classifiers: outside the recognition zoo
    for name in ("clip_vit_b16", "clip_vit_l14"):  # HF's full-size towers with projection
        assert get_model_info(name).num_params() == FX["params"][name]
    model = create_model("clip_vit_b16", img_size=32, width=32, depth=2, num_heads=4, output_dim=8, num_classes=3)
    assert model(torch.randn(2, 3, 2, 32, 32)).shape == (2, 3)
    assert model.layer_id("backbone.ln_pre.weight") == 0 and model.layer_id("backbone.blocks.1.attn.qkv.weight") == 2
    assert model.layer_id("backbone.proj") == 3 and model.no_weight_decay() == {
        "backbone.cls_token",
        "backbone.pos_embed",
    }
