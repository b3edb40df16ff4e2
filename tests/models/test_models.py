import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vidlab.models import create_model, get_model_info, list_models
from vidlab.models.base import FrameClassifier, take_indices
from vidlab.models.heads import average_view_scores
from vidlab.models.layers import temporal_shift

ASSETS = Path(__file__).resolve().parents[1] / "assets"

# sum(p.numel() for p in model.parameters()) of MMAction2 1.2.0's builds, at each config's class count
# (tests/assets/make_mmaction2_params.py).
REFERENCE = json.loads((ASSETS / "params_mmaction2.json").read_text())["models"]
# ... and of its transformers (TimeSformer, VideoMAE / VideoMAE V2, MViT v2)
REFERENCE.update(json.loads((ASSETS / "params_mmaction2_tf.json").read_text())["models"])
# vidlab-only variants with no reference build (MMAction2's TANet accepts bottleneck blocks only).
NO_REFERENCE = {"tanet_r18"}
# models whose reference is another toolbox: torchvision's r2plus1d_18 (counted by make_torchvision_fixture.py),
# PyTorchVideo's r2plus1d_r50 (make_pytorchvideo_keys.py)
OTHER_REFERENCE = {
    "r2plus1d_r18": json.loads((ASSETS / "torchvision_r2plus1d_18.json").read_text())["num_params_400"],
    "r2plus1d_r50": json.loads((ASSETS / "pytorchvideo_keys.json").read_text())["models"]["r2plus1d_r50"]["num_params"],
}
# HF transformers' builds (make_hf_fixtures.py) and the official VideoMamba definitions (make_videomamba_keys.py)
_HF = json.loads((ASSETS / "params_hf.json").read_text())
OTHER_REFERENCE.update({f"videomae_vit_{s}": _HF[f"videomae_vit_{s}"]["params"] for s in "sblh"})
_VIDEOMAMBA = json.loads((ASSETS / "videomamba_keys.json").read_text())["models"]
OTHER_REFERENCE.update({name: entry["params"] for name, entry in _VIDEOMAMBA.items()})
# MViT v1: PyTorchVideo's hub models (make_pytorchvideo_keys.py), PySlowFast's 24-block config (make_mvit_refs.py)
_PTV = json.loads((ASSETS / "pytorchvideo_keys.json").read_text())["models"]
OTHER_REFERENCE["mvit_v1_b_16x4"] = _PTV["mvit_base_16x4"]["num_params"]
OTHER_REFERENCE["mvit_v1_b_32x3"] = _PTV["mvit_base_32x3"]["num_params"]
_PYSLOWFAST_MVIT = json.loads((ASSETS / "pyslowfast_mvit_keys.json").read_text())["models"]
OTHER_REFERENCE["mvit_v1_b24_32x3"] = _PYSLOWFAST_MVIT["mvit_b_32x3_conv"]["num_params"]

NUM_CLASSES = 5
# families tested at reduced width / depth / clip size (full-size transformers take seconds and GBs per build)
TINY_KWARGS = {
    "videomae": dict(embed_dim=32, depth=2, num_heads=4, img_size=32, num_frames=4),
    "timesformer": dict(embed_dim=32, depth=2, num_heads=4, img_size=32, num_frames=4),
    "videomamba": dict(embed_dim=32, depth=2, img_size=32, num_frames=4),
    "mvit": dict(
        arch=dict(embed_dims=16, num_layers=4, num_heads=1, downscale_indices=(1, 3)), img_size=64, num_frames=4
    ),
}


def build(name: str, num_classes: int = 5) -> torch.nn.Module:
    """``create_model`` at the family's tiny configuration, if it has one."""
    return create_model(name, num_classes=num_classes, **TINY_KWARGS.get(name.split("_", 1)[0], {}))


def clip_frames(model: torch.nn.Module) -> int:
    """T of a tiny test clip: the model's fixed ``num_segments`` (TIN, TANet, TRN) or 4."""
    return getattr(model, "num_segments", None) or 4


# (frames, size) of the tiny clip where 4 x 32 x 32 does not fit: C3D's fc6 needs 16 x 112 x 112; the 3D families
# with temporal strides (8x in all) need 8 frames; CSN 64 px (BatchNorm over 1x1x1 maps stops gradients);
# SlowFast's slow pathway takes every 8th frame.
TINY_CLIPS = {"c3d": (16, 112), "i3d": (8, 32), "r2plus1d": (8, 32), "ircsn": (8, 64), "ipcsn": (8, 64)}
TINY_CLIPS["slowfast"] = (16, 32)
TINY_CLIPS["mvit"] = (4, 64)  # the 4x stride of the cube embedding, then two 2x stages


def model_input(name: str, model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    frames, size = TINY_CLIPS.get(name.split("_", 1)[0], (clip_frames(model), 32))
    if name.startswith("i3d_r50_nl"):  # a non-local block over a single position has no gradient to its keys
        frames, size = 16, 64
    return tiny_input(batch, frames, size)


def tiny_input(batch: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(batch, 3, frames, size, size)


def map_shape(model: torch.nn.Module, x: torch.Tensor) -> tuple[int | None, ...]:
    """The documented ``(C', T', H', W')`` of ``forward_features(x)``; ``None`` where the strides are the
    variant's own (temporally strided 3D ResNets, TPN's neck)."""
    _, _, t, h, w = x.shape
    kind = type(model).__name__
    c = model.num_features
    if isinstance(model, FrameClassifier) or kind == "X3D":  # frames kept, 32x spatial stride
        return (c, t, h // 32, w // 32)
    if kind == "C2D":  # pool2 halves time
        return (c, t // 2, h // 32, w // 32)
    if kind == "SlowFast":  # the fast pathway's frame rate
        return (c, t * model.backbone.speed_ratio // model.backbone.resample_rate, h // 32, w // 32)
    if kind == "C3D":
        return (512, 1, 4, 4)
    if kind == "VideoMAE":  # 2x16x16 tubes
        return (c, t // 2, h // 16, w // 16)
    if kind in ("TimeSformer", "VideoMamba"):  # 1x16x16 patches
        return (c, t, h // 16, w // 16)
    if kind == "MViT":  # 2x4x4 cube embedding, then (at the tiny config) two 2x spatial downscales
        return (c, t // 2, h // 16, w // 16)
    return (c, None, None, None)


# families whose forward_features map is more than their last stage / block: a conv after it (X3D, MobileNetV2), a
# neck (TPN) or a final norm over every token
POST_PROCESSED = re.compile(r"x3d_|.*_mobilenetv2$|tpn_|timesformer_(divst|jointst)$|videomamba_|mvit_")
# parameter names of the stem (layer id 0) and of what follows the last stage / block (layer id L + 1)
STEM = re.compile(
    r"backbone\.((slow|fast)_path\.)?(conv1|bn1|conv1_[st]|conv1a|patch_embed|cls_token|pos_embed\w*|time_embed"
    r"|temporal_pos_embedding)(\.|$)"
)
TOP = re.compile(r"(head|neck)\.|backbone\.(norm|fc_norm|norm_f|conv5|bn5|conv2|bn2|fc6|fc7)\.")
# parameters without weight decay beyond biases and norm weights
NO_DECAY = re.compile(
    r"backbone\.(cls_token|pos_embed\w*|time_embed|temporal_pos_embedding|blocks\.\d+\.attn\.rel_pos_[thw])"
)


@pytest.mark.parametrize("name", list_models())
def test_param_count_matches_reference(name, no_init_on_meta):  # num_params builds on the meta device
    if name in NO_REFERENCE:
        pytest.skip(f"{name} has no reference counterpart")
    if name in OTHER_REFERENCE:
        assert get_model_info(name).num_params() == OTHER_REFERENCE[name]
        return
    assert name in REFERENCE, f"add {name} to tests/assets/mmaction2_ref.py and rerun make_mmaction2_params.py"
    ref = REFERENCE[name]
    info = get_model_info(name)
    assert info.num_params(num_classes=ref["num_classes"]) == ref["params"]
    assert info.num_params() == ref["params"], "the builder's default class count differs from the config's"


def without_gradient_by_design(model: torch.nn.Module, pname: str) -> bool:
    """Parameters of the last block that cannot reach the classified CLS token (the references' too):
    VideoMamba's forward-scan ``A_log`` (the scan's state at the first token has nothing to decay), MViT's query
    pooling and relative positions (they act on patch tokens only; the CLS query is never pooled)."""
    last = len(getattr(model.backbone, "layers", getattr(model.backbone, "blocks", ()))) - 1
    return bool(
        re.fullmatch(rf"backbone\.layers\.{last}\.mixer\.A_log", pname)
        or (
            type(model).__name__ == "MViT"
            and re.fullmatch(rf"backbone\.blocks\.{last}\.attn\.(pool_q\.weight|rel_pos_[thw])", pname)
        )
    )


# models whose backward pass runs in the slow suite only (test_interface runs every model in the default suite, these
# included, and their parameter counts are checked above): deeper or larger copies of networks whose other variants
# keep their backward pass here -- ResNet-101/152 of TSN, TSM, C2D, SlowOnly, SlowFast and ir-CSN, R(2+1)D-34 (next to
# -18 and -50), SlowOnly and SlowFast 8x8 (4x16 here), C2D-R50 without its temporal pool, TRN-R50 (TRN-R18 and the
# single-scale TRN-R50 here), TPN on SlowOnly-R50 (TPN on TSM-R50 here) -- I3D's heavy and non-local variants (the
# non-local 16 x 64 x 64 clip; the three non-local modes run here in TSM-R50, a non-local 3D ResNet in SlowOnly-R50)
# and C3D (its fixed 16 x 112 x 112 clip: 10 s of the suite).
SLOW_BACKWARD = {"c3d_sports1m", "i3d_r50_heavy", "i3d_r50_nl_dot_product", "i3d_r50_nl_embedded_gaussian"}
SLOW_BACKWARD |= {"i3d_r50_nl_gaussian", "r2plus1d_r34", "tsn_r101", "tsn_r152", "tsm_r101", "c2d_r101"}
SLOW_BACKWARD |= {"c2d_r101_nopool", "slowonly_r101_8x8", "slowfast_r101_8x8", "slowfast_r101_r50_4x16"}
SLOW_BACKWARD |= {"ircsn_r101", "ircsn_r152", "slowonly_r50_8x8", "slowfast_r50_8x8", "c2d_r50_nopool", "trn_r50"}
SLOW_BACKWARD |= {"tpn_slowonly_r50"}


def test_slow_backward_names_registered_models():
    assert SLOW_BACKWARD <= set(list_models())


@pytest.fixture(scope="module")
def built(name: str) -> torch.nn.Module:
    """``build(name)``, shared by the two registry-wide tests below: ``name`` is module-scoped, so pytest runs them
    model by model and builds each model once (a deep network's init takes longer than its tiny forward passes).
    Each test sets the mode and state it needs; the model is released before the next one is built."""
    torch.manual_seed(0)
    return build(name)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BACKWARD else n for n in list_models()],
    scope="module",
)
def test_forward_shape_and_backward_reaches_every_parameter(name, built):
    model = built.train()
    model.zero_grad(set_to_none=True)
    # zero-initialised residual BN weights (and TIN's zero-initialised offset/weight layers) would block the
    # gradient of what lies behind them on this first step
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    for p in model.parameters():
        if p.dim() > 1 and not p.any():
            torch.nn.init.normal_(p, std=0.01)
    x = model_input(name, model)
    logits, auxiliary = model.forward_train(x)  # the training forward: TPN's auxiliary head too
    assert logits.shape == (2, NUM_CLASSES)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert len(auxiliary) == (1 if name.startswith("tpn_") else 0)
    target = torch.tensor([1, 3])
    loss = F.cross_entropy(logits, target)
    for weight, aux in auxiliary:  # as the trainer adds them
        loss = loss + weight * F.cross_entropy(aux, target)
    loss.backward()
    for pname, p in model.named_parameters():
        if without_gradient_by_design(model, pname):
            continue
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", list_models(), scope="module")
def test_interface(name, built):
    """The feature / head / intermediates / layer-id interface, on one clip (half the work of two; the backward test
    above runs two)."""
    model = built.eval()
    x = model_input(name, model, batch=1)
    with torch.no_grad():
        feats = model.forward_features(x)  # (B, C', T', H', W') for every family
        assert feats.dim() == 5 and feats.shape[0] == 1
        assert all(e is None or e == got for e, got in zip(map_shape(model, x), feats.shape[1:])), feats.shape
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.dim() == 2 and pre.shape[0] == 1
        logits = model(x)
        assert torch.equal(model.forward_head(feats), logits)

        n = model.num_intermediates
        assert n == model.num_layers >= 2
        first_last, last_two = model.forward_intermediates(x, [0, -1]), model.forward_intermediates(x, 2)
        assert len(first_last) == len(last_two) == 2
        assert all(m.dim() == 5 and m.shape[0] == 1 for m in first_last + last_two)
        assert torch.equal(last_two[1], first_last[1])
        assert torch.equal(first_last[1], feats) != bool(POST_PROCESSED.match(name))
        with pytest.raises(ValueError, match=f"valid indices are 0..{n - 1}"):
            model.forward_intermediates(x, [n])

    ids = {pname: model.layer_id(pname) for pname, _ in model.named_parameters()}
    assert set(ids.values()) == set(range(n + 2))  # stem 0, every stage / block, head L + 1
    assert {k for k, v in ids.items() if v == 0} == {k for k in ids if STEM.match(k)}
    assert {k for k, v in ids.items() if v == n + 1} == {k for k in ids if TOP.match(k)}
    if not name.startswith("slowfast_"):  # parameters registered in forward order (SlowFast: pathway by pathway)
        assert list(ids.values()) == sorted(ids.values())
    with pytest.raises(ValueError, match="not a parameter"):
        model.layer_id("backbone.no_such_layer.weight")
    assert model.no_weight_decay() == {k for k in ids if NO_DECAY.fullmatch(k)}

    assert model.num_classes == NUM_CLASSES
    model.reset_classifier(11)
    assert model.num_classes == 11
    with torch.no_grad():
        assert model.forward_head(feats).shape == (1, 11)  # model(x) is forward_head(forward_features(x)), above
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(x[0])
    model.reset_classifier(NUM_CLASSES)  # as built, for a test that takes the model after this one


def test_take_indices():
    assert take_indices(None, 4) == [0, 1, 2, 3]
    assert take_indices(2, 4) == [2, 3]
    assert take_indices([-1, 0], 4) == [3, 0]  # in the order asked for
    for bad in (0, 5, [4], [-5], []):
        with pytest.raises(ValueError, match="valid|k in 1..4|empty"):
            take_indices(bad, 4)


def test_class_token_travels_with_the_map_or_explicitly():
    model = build("timesformer_divst").eval()
    x = model_input("timesformer_divst", model)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.cls_token.shape == (2, model.num_features)
        plain = feats.clone()  # a new tensor: no class token attached
        with pytest.raises(ValueError, match="cls_token"):
            model.forward_head(plain)
        assert torch.equal(model.forward_head(plain, cls_token=feats.cls_token), model(x))
        with pytest.raises(ValueError, match=r"\(B, C, T', H', W'\) feature map"):
            model.forward_head(feats.cls_token)  # pooled features are not a map


def test_layer_ids_of_a_vit():
    model = create_model("videomae_vit_s", num_classes=NUM_CLASSES, **TINY_KWARGS["videomae"], learnable_pos_embed=True)
    assert model.num_layers == 2
    assert [model.layer_id(n) for n in ("backbone.pos_embed", "backbone.blocks.1.mlp.fc2.weight")] == [0, 2]
    assert model.layer_id("backbone.fc_norm.weight") == model.layer_id("head.fc.bias") == 3
    assert model.no_weight_decay() == {"backbone.pos_embed"}


@pytest.mark.parametrize("name", ["tsm_r18", "x3d_s"])
def test_bfloat16_autocast_and_channels_last(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    for m in model.modules():  # make the output depend on every block
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    x = tiny_input()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
        assert low.shape == ref.shape and torch.isfinite(low).all()
        assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3
        model.to_channels_last()
        conv_w = next(p for p in model.parameters() if p.dim() >= 4)
        fmt = torch.channels_last if conv_w.dim() == 4 else torch.channels_last_3d
        assert conv_w.is_contiguous(memory_format=fmt)
        torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_init_matches_reference_scheme():
    tsn = create_model("tsn_r50")
    conv = tsn.backbone.layer3[0].conv2  # 256 -> 256, 3x3: fan_out = 256 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)
    assert all(
        torch.all(m.weight == 1) and torch.all(m.bias == 0)
        for m in tsn.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    )  # MMAction2's 2D ResNet: no zero-init of the last BN of a block
    assert tsn.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(tsn.head.fc.bias == 0)
    assert create_model("tsm_r50").head.fc.weight.std().item() == pytest.approx(0.001, rel=0.05)
    x3d = create_model("x3d_s")
    assert all(
        torch.all(block.bn3.weight == 0) for layer in ("layer1", "layer4") for block in getattr(x3d.backbone, layer)
    )
    assert torch.all(x3d.backbone.bn5.weight == 1)
    assert x3d.head.fc1.bias is None
    assert x3d.head.fc2.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_x3d_s_structure():
    backbone = create_model("x3d_s").backbone
    assert [len(getattr(backbone, f"layer{i}")) for i in range(1, 5)] == [3, 5, 11, 7]
    assert backbone.num_features == 432
    assert backbone.layer1[0].conv2.groups == 54  # depthwise
    assert [block.se is not None for block in backbone.layer2] == [True, False, True, False, True]
    assert backbone.layer4[0].se.fc1.out_channels == 32
    with torch.no_grad():
        feats = backbone.eval()(torch.randn(1, 3, 13, 160, 160))
    assert feats.shape == (1, 432, 13, 5, 5)


def test_tsm_uses_input_length_and_checks_optional_num_segments():
    model = create_model("tsm_r18", num_classes=NUM_CLASSES).eval()
    with torch.no_grad():
        assert model(tiny_input(frames=8)).shape == (2, NUM_CLASSES)
        assert model(tiny_input(frames=4)).shape == (2, NUM_CLASSES)
    fixed = create_model("tsm_r18", num_classes=NUM_CLASSES, num_segments=4).eval()
    with pytest.raises(ValueError, match="num_segments=4 frames, got T=8"):
        fixed(tiny_input(frames=8))


def test_tsm_shift_mixes_frames_and_tsn_does_not():
    """Changing one frame changes the other frames' features in TSM, never in TSN."""
    for name, mixes in (("tsm_r18", True), ("tsn_r18", False)):
        model = create_model(name, num_classes=NUM_CLASSES).eval()
        x = tiny_input()
        y = x.clone()
        y[:, :, 0] += 1.0
        with torch.no_grad():
            fx, fy = model.forward_features(x), model.forward_features(y)
        changed = (fx - fy).abs().amax(dim=(0, 1, 3, 4)) > 1e-6  # per frame
        assert changed.tolist() == [True, mixes, mixes, mixes], name


def _views() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 3, 3, 4, 32, 32)  # (B, V, C, T, H, W)


def test_tsn_forward_views_averages_features_over_all_frames():
    torch.manual_seed(0)
    model = create_model("tsn_r18", num_classes=NUM_CLASSES).eval()
    torch.nn.init.normal_(model.head.fc.weight, std=0.2)  # logits of order 1, where the two schemes differ
    x = _views()
    with torch.no_grad():
        pooled = torch.stack([model.forward_features(x[:, v]).mean(dim=(2, 3, 4)) for v in range(3)], 1)
        logits = model.head.fc(pooled.mean(dim=1))  # one fc on the features of all V*T frames
        torch.testing.assert_close(model.forward_views(x, "prob"), logits.softmax(-1))
        torch.testing.assert_close(model.forward_views(x, "score"), logits)
        torch.testing.assert_close(model.forward_views(x, None), logits)
        per_view = torch.stack([model(x[:, v]) for v in range(3)], 1).softmax(-1).mean(1)
    assert (per_view - logits.softmax(-1)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["tsm_r18", "x3d_s"])
def test_forward_views_averages_per_view_scores(name):
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    x = _views()
    with torch.no_grad():
        logits = torch.stack([model(x[:, v]) for v in range(3)], 1)  # (B, V, K)
        torch.testing.assert_close(model.forward_views(x, "prob"), logits.softmax(-1).mean(1))
        torch.testing.assert_close(model.forward_views(x, "score"), logits.mean(1))
        torch.testing.assert_close(model.forward_views(x, None), logits.mean(1))
        torch.testing.assert_close(model.forward_views(x[:, :1], None), logits[:, 0])
        torch.testing.assert_close(model.forward_views(x, "max"), logits.sigmoid().amax(1))  # Charades' fusion
    with pytest.raises(ValueError, match="average_clips"):
        model.forward_views(x, "median")
    with pytest.raises(ValueError, match=r"\(B, V, C, T, H, W\)"):
        model.forward_views(x[:, 0])


def test_average_view_scores():
    scores = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])  # (B=1, V=2, K=2)
    torch.testing.assert_close(average_view_scores(scores, "score"), torch.tensor([[1.0, 0.5]]))
    expected = (scores.softmax(-1)[0, 0] + scores.softmax(-1)[0, 1]) / 2
    torch.testing.assert_close(average_view_scores(scores, "prob"), expected[None])
    assert average_view_scores(scores.bfloat16(), "prob").dtype == torch.float32


def test_temporal_shift_matches_reference_fixture():
    fixture = json.loads((ASSETS / "temporal_shift.json").read_text())
    assert len(fixture["cases"]) >= 2
    for case in fixture["cases"]:
        shape = case["shape"]
        x = torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)
        expected = torch.tensor(case["output"], dtype=torch.float32).reshape(shape)
        out = temporal_shift(x, case["num_segments"], case["shift_div"])
        assert torch.equal(out, expected), case
        out_cl = temporal_shift(
            x.contiguous(memory_format=torch.channels_last), case["num_segments"], case["shift_div"]
        )
        assert torch.equal(out_cl, expected)
        assert out_cl.is_contiguous(memory_format=torch.channels_last)


def test_temporal_shift_direction_and_gradient():
    x = torch.arange(1.0, 4.0).view(3, 1, 1, 1).expand(3, 4, 1, 1).contiguous()  # frame t holds t+1
    out = temporal_shift(x, num_segments=3, shift_div=4)[:, :, 0, 0]
    assert out[:, 0].tolist() == [2.0, 3.0, 0.0]  # first fold: frame t sees frame t+1
    assert out[:, 1].tolist() == [0.0, 1.0, 2.0]  # second fold: frame t sees frame t-1
    assert out[:, 2:].tolist() == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    xd = torch.randn(6, 8, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: temporal_shift(t, 3, 4), (xd,))
    assert torch.autograd.gradgradcheck(lambda t: temporal_shift(t, 3, 4), (xd,))
    with pytest.raises(ValueError, match="multiple of num_segments=4"):
        temporal_shift(torch.zeros(6, 8, 2, 2), 4)


def test_tpn_forward_train_returns_the_auxiliary_logits():
    torch.manual_seed(0)
    model = create_model("tpn_slowonly_r50", num_classes=NUM_CLASSES).train()
    x = tiny_input()
    torch.manual_seed(1)
    logits, aux = model.forward_train(x)
    torch.manual_seed(1)  # the same dropout draws: the auxiliary head's first, then the head's
    levels = model.forward_intermediates(x, [2, 3])  # layer3, layer4
    expected_aux = model.neck.aux_head(levels[0])
    expected = model.forward_head(model.neck(levels))
    assert [w for w, _ in aux] == [0.5]
    assert torch.equal(aux[0][1], expected_aux) and torch.equal(logits, expected)
    assert model(x).shape == (2, NUM_CLASSES)  # plain use in training mode: the main logits only
    assert not hasattr(model, "auxiliary_logits")
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.forward_train(x)[0], model(x))
    no_aux = create_model("tpn_tsm_r50", num_classes=NUM_CLASSES, aux_weight=0)
    assert no_aux.neck.aux_head is None
    assert no_aux.forward_train(x)[1] == []


def test_slowfast_subsamples_one_clip_and_checks_its_length():
    model = create_model("slowfast_r50_4x16", num_classes=NUM_CLASSES).eval()
    x = tiny_input(1, 16)
    with torch.no_grad():
        feats = model.forward_features(x)  # fast channels, then the slow ones repeated on the fast frame rate
        cf = model.backbone.fast_path.num_features
        assert feats.shape[:3] == (1, cf + model.backbone.slow_path.num_features, 16)
        slow = feats[:, cf:]
        assert torch.equal(slow[:, :, 0], slow[:, :, 7]) and not torch.equal(slow[:, :, 7], slow[:, :, 8])
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean(dim=(2, 3, 4)))
        with pytest.raises(ValueError, match="multiple of resample_rate=8"):
            model(tiny_input(1, 12))


def test_c3d_names_the_clip_size_it_needs():
    with pytest.raises(ValueError, match="16 x 112 x 112"):
        create_model("c3d_sports1m", num_classes=NUM_CLASSES).eval()(tiny_input(1, 16, 64))
