"""Image checkpoints into video models: exact parity with the references' own initialisation, the inflated network's
function on a static clip, the image layouts read, and the CLI / recipe entry points."""

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.assets.fixture_fill import fill
from vidlab.models import create_model
from vidlab.models._registry import meta_device
from vidlab.models.convert import mmaction2
from vidlab.models.convert.image import canonical_image_state_dict, read_image_checkpoint
from vidlab.models.convert.inflate import describe, inflate_state_dict, load_inflated

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MM = json.loads((ASSETS / "inflation_mmaction2.json").read_text())
REFS = json.loads((ASSETS / "inflation_refs.json").read_text())["cases"]
TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 4, "img_size": 48, "num_frames": 4}
RESNET_CASES = [n for n, c in MM["cases"].items() if c["image"] == "resnet50"]
VIT_CASES = [n for n, c in MM["cases"].items() if c["image"] == "vit"]


def filled(keys) -> dict[str, torch.Tensor]:
    """The fixture's image checkpoint: every tensor ``fill(key, shape)``, BatchNorm counters 0."""
    return {k: torch.tensor(0) if k.endswith("num_batches_tracked") else fill(k, tuple(shape)) for k, shape in keys}


def crc(t: torch.Tensor) -> int:
    return zlib.crc32(t.detach().contiguous().numpy().tobytes())


def vidlab_names(mm_keys) -> dict[str, str]:
    """MMAction2 backbone key -> vidlab key, through vidlab's MMAction2 converter (names only)."""
    probe = {"backbone." + k: torch.zeros(1) for k in mm_keys}
    renamed = mmaction2.convert(probe)
    assert len(renamed) == len(probe)
    return dict(zip(mm_keys, renamed))  # the converter keeps the order


@pytest.fixture(scope="module")
def resnet50_image():
    return filled(MM["image_resnet"]["50"])


@pytest.mark.parametrize("name", RESNET_CASES)
def test_resnet_inflation_equals_mmaction2(name, resnet50_image):
    case = MM["cases"][name]
    with meta_device():  # shapes only: every value compared comes from the image checkpoint
        model = create_model(name, num_classes=5)
    values, report = inflate_state_dict(model, resnet50_image)
    names = vidlab_names(case["loaded"])
    expected = {names[k]: e for k, e in case["loaded"].items()}
    assert set(values) == set(expected), set(values) ^ set(expected)
    bad = [
        k
        for k, e in expected.items()
        if (int(values[k]) != e["value"] if k.endswith("num_batches_tracked") else crc(values[k]) != e["crc32"])
    ]
    assert not bad, bad[:5]
    assert sorted(report["unused"]) == sorted(case["unused_2d"])
    # what MMAction2 leaves at init, vidlab leaves too (the same modules, under vidlab's names)
    assert sum(k.startswith("backbone.") for k in report["left_at_init"]) == len(case["left_at_init"])


def test_slowfast_fast_pathway_left_as_mmaction2_cannot_inflate_it(resnet50_image):
    assert "expanded size" in MM["cases"]["slowfast_r50_8x8"]["fast_pathway_error"]
    with meta_device():
        model = create_model("slowfast_r50_8x8", num_classes=5)
    _, report = inflate_state_dict(model, resnet50_image)
    fast = {k: why for k, why in report["left_at_init"].items() if ".fast_path." in k}
    assert len(fast) == sum(k.startswith("backbone.fast_path.") for k in model.state_dict())
    assert any("lateral input channels zero" in note for note in report["inflated"].values())


@pytest.mark.parametrize("name", VIT_CASES)
def test_timesformer_init_equals_mmaction2(name):
    case = MM["cases"][name]
    image = filled(MM["image_vit"]["keys"])
    model = create_model(name, num_classes=5, **TINY_VIT)
    values, report = inflate_state_dict(model, image, style="mmaction2")
    names = vidlab_names(list(case["loaded"]) + case["left_at_init"])
    for mm_key, e in case["loaded"].items():
        assert crc(values[names[mm_key]]) == e["crc32"], mm_key
    for mm_key in case["left_at_init_zero"]:  # time_embed and temporal_fc: zero in MMAction2's model
        assert torch.count_nonzero(values[names[mm_key]]) == 0, mm_key
    assert set(values) == {names[k] for k in case["loaded"]} | {names[k] for k in case["left_at_init_zero"]}
    assert sorted(report["unused"]) == ["head.bias", "head.weight"]


def test_timesformer_style_leaves_the_first_temporal_fc_and_resizes_by_nearest():
    image = filled(MM["image_vit"]["keys"])  # 3x3 grid of patches
    model = create_model("timesformer_divst", num_classes=5, **{**TINY_VIT, "img_size": 64})  # 4x4 grid
    values, report = inflate_state_dict(model, image, style="timesformer")
    assert torch.count_nonzero(values["backbone.blocks.0.temporal_fc.weight"]) > 0
    assert torch.count_nonzero(values["backbone.blocks.1.temporal_fc.weight"]) == 0
    pos = image["pos_embed"]
    want = torch.nn.functional.interpolate(pos[:, 1:].transpose(1, 2), size=16, mode="nearest").transpose(1, 2)
    assert torch.equal(values["backbone.pos_embed"], torch.cat((pos[:, :1], want), dim=1))
    values, report = inflate_state_dict(model, image, style="mmaction2")
    assert "bicubic" in report["resized"]["backbone.pos_embed"]
    assert values["backbone.pos_embed"].shape == (1, 17, 32)


@pytest.mark.parametrize("name", [n for n in REFS if not n.startswith("deit_standin")])
def test_token_inflation_equals_videomamba_loader(name):
    case = REFS[name]
    target = case["target_model"]
    model = create_model(target["name"], **target["kwargs"])
    image = filled(case["image_keys"])
    values, report = inflate_state_dict(model, image, patch="center" if case["center"] else "average")
    for key, e in case["loaded"].items():
        assert crc(values[key]) == e["crc32"], key
    if "error" in case:  # the reference cannot load an image table of another size; vidlab resizes it
        assert "backbone.pos_embed" in report["resized"]
    if target["name"] == "videomae_vit_s":  # vidlab's additions: VideoMAE's q / v biases and fc_norm from the image
        qkv = image["blocks.0.attn.qkv.bias"]
        assert torch.equal(values["backbone.blocks.0.attn.q_bias"], qkv[:32])
        assert torch.equal(values["backbone.blocks.0.attn.v_bias"], qkv[64:])
        assert torch.equal(values["backbone.fc_norm.weight"], image["norm.weight"])
    else:
        assert torch.count_nonzero(values["backbone.temporal_pos_embedding"]) == 0


def test_inflated_i3d_reproduces_the_2d_network_on_a_static_clip():
    """T identical frames through an inflated I3D (eval mode) give the 2D network's per-frame features at every
    temporal position whose receptive field lies inside the clip (zero temporal padding changes the edges)."""
    torch.manual_seed(0)
    tsn = create_model("tsn_r18", num_classes=10).eval()
    for m in tsn.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # one inflated basic block per stage (two 3x3x3 convs each): an output position sees 2 + 4 x 2 = 10 positions
    # either side after the stem, so the middle of 96 frames (24 positions) sees no padding
    inflate = ((1, 0), (1, 0), (1, 0), (0, 1))
    i3d = create_model("i3d_r50", num_classes=10, depth=18, inflate=inflate, with_pool2=False).eval()
    load_inflated(i3d, {k: v for k, v in tsn.state_dict().items()})
    frame = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = tsn.backbone(frame)  # (1, 512, 1, 1)
        got = i3d.backbone(frame.unsqueeze(2).expand(1, 3, 96, 32, 32))  # (1, 512, 24, 1, 1)
    middle = got[:, :, got.shape[2] // 2]
    torch.testing.assert_close(middle, want, rtol=1e-4, atol=1e-4)
    edge = got[:, :, 0]
    assert (edge - want).abs().max() > 1e-2  # the zero-padded first position differs, as it should


def test_image_layouts_read(tmp_path):
    vit = filled(MM["image_vit"]["keys"])
    # DeiT distilled: a second token and its position
    deit = {**vit, "dist_token": torch.zeros(1, 1, 32), "head_dist.weight": torch.zeros(1000, 32)}
    deit["pos_embed"] = torch.cat((vit["pos_embed"][:, :1], torch.ones(1, 1, 32), vit["pos_embed"][:, 1:]), dim=1)
    layout, source, sd, unused = canonical_image_state_dict(deit)
    assert (layout, source) == ("vit", "timm") and torch.equal(sd["pos_embed"], vit["pos_embed"])
    assert {"dist_token", "head_dist.weight", "head.weight"} <= set(unused)
    # the original ViT release (.npz, JAX kernels): the same network
    d, heads = 32, 4
    npz = {"cls": vit["cls_token"].numpy(),
           "embedding/kernel": vit["patch_embed.proj.weight"].permute(2, 3, 1, 0).numpy(),
           "embedding/bias": vit["patch_embed.proj.bias"].numpy(),
           "Transformer/posembed_input/pos_embedding": vit["pos_embed"].numpy(),
           "Transformer/encoder_norm/scale": vit["norm.weight"].numpy(),
           "Transformer/encoder_norm/bias": vit["norm.bias"].numpy()}  # fmt: skip
    for i in range(2):
        b, p = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
        qkv_w, qkv_b = vit[p + "attn.qkv.weight"], vit[p + "attn.qkv.bias"]
        for j, part in enumerate(("query", "key", "value")):
            w = qkv_w[j * d : (j + 1) * d]
            npz[f"{b}MultiHeadDotProductAttention_1/{part}/kernel"] = w.t().reshape(d, heads, d // heads).numpy()
            npz[f"{b}MultiHeadDotProductAttention_1/{part}/bias"] = (
                qkv_b[j * d : (j + 1) * d].reshape(heads, -1).numpy()
            )
        npz[f"{b}MultiHeadDotProductAttention_1/out/kernel"] = (
            vit[p + "attn.proj.weight"].t().reshape(heads, d // heads, d).numpy()
        )
        npz[f"{b}MultiHeadDotProductAttention_1/out/bias"] = vit[p + "attn.proj.bias"].numpy()
        for n, ln in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            npz[f"{b}{n}/scale"], npz[f"{b}{n}/bias"] = vit[p + ln + ".weight"].numpy(), vit[p + ln + ".bias"].numpy()
        for n, fc in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            npz[f"{b}MlpBlock_3/{n}/kernel"] = vit[f"{p}mlp.{fc}.weight"].t().numpy()
            npz[f"{b}MlpBlock_3/{n}/bias"] = vit[f"{p}mlp.{fc}.bias"].numpy()
    np.savez(tmp_path / "vit.npz", **npz)
    layout, source, sd, _ = canonical_image_state_dict(read_image_checkpoint(tmp_path / "vit.npz"))
    assert (layout, source) == ("vit", "vit_npz")
    for key, value in sd.items():
        torch.testing.assert_close(value, vit[key], rtol=0, atol=0, msg=key)
    # an OpenAI CLIP tower: the same blocks, a bias-free patch embedding, ln_pre / proj without counterpart
    rename = {"norm1": "ln_1", "norm2": "ln_2", "attn.qkv": "attn.in_proj", "attn.proj": "attn.out_proj",
              "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}  # fmt: skip
    openai = {"visual.conv1.weight": vit["patch_embed.proj.weight"], "visual.class_embedding": vit["cls_token"][0, 0],
              "visual.positional_embedding": vit["pos_embed"][0], "visual.ln_pre.weight": torch.ones(d),
              "visual.ln_pre.bias": torch.zeros(d), "visual.ln_post.weight": vit["norm.weight"],
              "visual.ln_post.bias": vit["norm.bias"], "visual.proj": torch.zeros(d, 16)}  # fmt: skip
    for key, value in vit.items():
        if key.startswith("blocks."):
            i, rest = key.split(".", 2)[1:]
            part, param = rest.rsplit(".", 1)
            param = param if part != "attn.qkv" else param.replace("weight", "_weight").replace("bias", "_bias")
            sep = "" if part == "attn.qkv" else "."
            openai[f"visual.transformer.resblocks.{i}.{rename[part]}{sep}{param}"] = value
    layout, source, sd, unused = canonical_image_state_dict(openai)
    assert (layout, source) == ("vit", "openai_clip") and set(unused) == {"ln_pre.weight", "ln_pre.bias", "proj"}
    for key, value in sd.items():
        want = torch.zeros(d) if key == "patch_embed.proj.bias" else vit[key]
        torch.testing.assert_close(value, want, rtol=0, atol=0, msg=key)
    # MMAction2's ConvModule names (a TSN recognizer's checkpoint) and mmcls' backbone prefix
    tv = filled(MM["image_resnet"]["50"])
    mm = {"backbone." + k.replace("bn1.", "conv1.bn.") if k.startswith("bn1.") else "backbone." + k: v
          for k, v in tv.items() if not k.startswith("fc.")}  # fmt: skip
    mm = {
        k.replace("conv1.weight", "conv1.conv.weight") if k == "backbone.conv1.weight" else k: v for k, v in mm.items()
    }
    layout, source, sd, _ = canonical_image_state_dict({**mm, "cls_head.fc_cls.weight": torch.zeros(3, 2048)})
    assert (layout, source) == ("resnet", "mmaction2") and torch.equal(sd["bn1.weight"], tv["bn1.weight"])
    with pytest.raises(ValueError, match="not an image checkpoint"):
        canonical_image_state_dict({"foo.weight": torch.zeros(2)})


def test_wrong_pairings_are_clear_errors(resnet50_image):
    with pytest.raises(NotImplementedError, match="R\\(2\\+1\\)D"):
        inflate_state_dict(create_model("r2plus1d_r18", num_classes=5), resnet50_image)
    with pytest.raises(NotImplementedError, match="cannot start"):
        inflate_state_dict(create_model("timesformer_divst", num_classes=5, **TINY_VIT), resnet50_image)
    with pytest.raises(ValueError, match="style"):
        inflate_state_dict(create_model("i3d_r50", num_classes=5), resnet50_image, style="x")


def test_convert_cli_and_recipe_start(tmp_path, resnet50_image, capsys):
    from vidlab.cli import main
    from vidlab.config import load_config
    from vidlab.engine.train import _load_pretrained

    src = tmp_path / "resnet50.pth"
    torch.save(resnet50_image, src)
    main(["convert", str(src), str(tmp_path / "i3d.pth"), "--model", "i3d_r50", "--num-classes", "5", "--inflate"])
    out = capsys.readouterr().out
    assert "inflated (53): 2D kernel over time" in out and "unused (2): image classifier: fc.weight, fc.bias" in out
    ckpt = torch.load(tmp_path / "i3d.pth", weights_only=True)
    assert ckpt["meta"]["source"] == "image:torchvision" and ckpt["meta"]["num_classes"] == 5
    cfg = load_config(None, [f"model.pretrained={src}", "model.pretrained_2d=true", "model.name=i3d_r50"])
    model = create_model("i3d_r50", num_classes=5)
    _load_pretrained(model, cfg)
    torch.testing.assert_close(model.state_dict()["backbone.conv1.weight"], ckpt["model"]["backbone.conv1.weight"])
    assert any("left at init" in line for line in describe(inflate_state_dict(model, resnet50_image)[1]))
    # the same file without pretrained_2d: a clear error instead of a start with only the BatchNorms loaded
    from vidlab.engine.checkpoint import CheckpointError

    cfg = load_config(None, [f"model.pretrained={src}", "model.name=i3d_r50"])
    with pytest.raises(CheckpointError, match="pretrained_2d: true"):
        _load_pretrained(create_model("i3d_r50", num_classes=5), cfg)
