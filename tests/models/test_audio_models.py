"""Audio recognizers (``vidlab.models.resnet_audio``) against MMAction2 1.2.0's ``RecognizerAudio`` builds.

Fixtures: ``tests/assets/mmaction2_<name>.json`` written by ``tests/assets/make_audio_mmaction2.py`` in the reference
environment (key layout, parameter count at the config's 400 classes, logits of seeded inputs for weights filled by
``fixture_fill.fill``, and the ``average_clips='prob'`` scores of a multi-clip input).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import vidlab
from tests.assets.fixture_fill import checksum, fill
from vidlab.models import create_model, get_model_info, list_models
from vidlab.models.convert import detect_source, load_converted
from vidlab.models.resnet_audio import AudioBottleneck, AudioClassifier, FreqTimeConv, ResNetAudio

ASSETS = Path(__file__).resolve().parents[1] / "assets"
NAMES = ("audioonly_r50", "tsn_r18_audio")
# the vidlab names of a few MMAction2 keys (ConvModule wrappers, ConvAudio's two branches, the head)
KEY_MAP = {
    "backbone.conv1.conv.conv_1.conv.weight": "backbone.conv1.conv_t.weight",
    "backbone.conv1.conv.conv_2.bn.running_var": "backbone.conv1.bn_f.running_var",
    "backbone.conv1.bn.weight": "backbone.bn1.weight",
    "backbone.layer2.3.conv2.conv.conv_1.bn.bias": "backbone.layer2.3.conv2.bn_t.bias",
    "backbone.layer2.0.conv2.conv.conv_2.conv.weight": "backbone.layer2.0.conv2.conv_f.weight",
    "backbone.layer3.1.conv2.conv.weight": "backbone.layer3.1.conv2.weight",
    "backbone.layer4.0.conv3.bn.running_mean": "backbone.layer4.0.bn3.running_mean",
    "backbone.layer1.0.downsample.conv.weight": "backbone.layer1.0.downsample.0.weight",
    "cls_head.fc_cls.weight": "head.fc.weight",
}


def load_fixture(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    fx = json.loads((ASSETS / f"mmaction2_{name}.json").read_text())
    sd = {
        key: torch.zeros(shape, dtype=getattr(torch, dtype))
        if key.endswith("num_batches_tracked")
        else fill(key, shape)
        for key, shape, dtype in fx["keys"]
    }
    return fx, sd


def seeded(shape: list[int], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=NAMES)
def reference(request) -> tuple[str, dict, dict[str, torch.Tensor], AudioClassifier]:
    """``(name, fixture, MMAction2 state dict, vidlab model with it loaded)``."""
    fx, sd = load_fixture(request.param)
    assert checksum(sd) == pytest.approx(fx["fill_checksum"], rel=1e-9), "torch.randn drew other numbers"
    model = create_model(request.param, num_classes=fx["num_classes"]).eval()
    converted = vidlab.convert_state_dict(sd, source="mmaction2", model=request.param)
    load_converted(model, converted, "mmaction2", strict=True)
    return request.param, fx, sd, model


def test_registered_as_audio_models():
    assert list_models(task="audio") == sorted(NAMES)
    assert not set(NAMES) & set(list_models())  # not in the video recognition zoo
    assert all(get_model_info(n).input_shape == (1, 1, 128, 80) for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_mmaction2(name, no_init_on_meta):
    fx = json.loads((ASSETS / f"mmaction2_{name}.json").read_text())
    assert fx["num_params_classes"] == 400
    assert get_model_info(name).num_params() == fx["num_params"]  # 6,315,728 and 11,375,440


def test_logits_match_mmaction2(reference):
    _, fx, _, model = reference
    with torch.no_grad():
        out = model(seeded(fx["input_shape"], fx["input_seed"]))
    ref = torch.tensor(fx["logits"])
    assert out.shape == ref.shape and ref.abs().max() > 0.1
    assert (out - ref).abs().max().item() <= 1e-5


def test_multi_view_scores_match_mmaction2(reference):
    """``forward_views`` on ``(1, V, 1, T, F)`` equals MMAction2's ``average_clip`` of the V clip scores."""
    _, fx, _, model = reference
    views = fx["views"]
    assert views["average_clips"] == "prob"
    with torch.no_grad():
        scores = model.forward_views(seeded(views["input_shape"], views["input_seed"]))
    ref = torch.tensor(views["scores"])
    assert scores.shape == ref.shape and scores.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (scores - ref).abs().max().item() <= 1e-5
    model.view_chunk = 2  # two clips per forward: the same scores
    try:
        with torch.no_grad():
            chunked = model.forward_views(seeded(views["input_shape"], views["input_seed"]))
    finally:
        model.view_chunk = None
    assert torch.allclose(chunked, scores, atol=1e-6)


def test_mmaction2_checkpoint_loads_through_load_checkpoint(tmp_path, reference):
    name, fx, sd, model = reference
    assert detect_source(sd) == "mmaction2"
    path = tmp_path / f"{name}.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": sd}, path)
    fresh = create_model(name, num_classes=fx["num_classes"]).eval()
    report = vidlab.load_checkpoint(fresh, path)
    assert report["source"] == "mmaction2"
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    assert set(report["loaded"]) == set(fresh.state_dict())
    x = seeded(fx["input_shape"], fx["input_seed"])
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_converter_key_names():
    _, sd = load_fixture("audioonly_r50")
    converted = vidlab.convert_state_dict(sd, source="mmaction2", model="audioonly_r50")
    for mm_key, vidlab_key in KEY_MAP.items():
        assert converted[vidlab_key] is sd[mm_key]
    assert len(converted) == len(sd)


@pytest.mark.parametrize(
    ("name", "stride", "width"), [("audioonly_r50", 8, 1024), ("tsn_r18_audio", 32, 512)], ids=["resnet_audio", "r18"]
)
def test_shapes_and_head_split(name, stride, width):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, width, 64 // stride, 64 // stride)
        assert torch.equal(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, width)
        maps = model.forward_intermediates(x)
        assert [m.shape[1] for m in maps] == [width // 8, width // 4, width // 2, width]
        assert torch.equal(maps[-1], feats)
        assert [m.shape[1] for m in model.forward_intermediates(x, indices=[0, -1])] == [width // 8, width]
    assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    kwargs = {"zero_init_residual": False} if name == "audioonly_r50" else {}  # zero bn3 weights cut the branches
    model = create_model(name, num_classes=3, **kwargs).train()
    model(torch.randn(2, 1, 64, 64)).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_layer_ids_follow_stages():
    model = create_model("audioonly_r50", num_classes=3)
    assert model.num_layers == 4
    assert model.layer_id("backbone.conv1.conv_t.weight") == 0
    assert model.layer_id("backbone.bn1.bias") == 0
    assert model.layer_id("backbone.layer2.0.conv2.conv_f.weight") == 2
    assert model.layer_id("backbone.layer4.2.bn3.weight") == 4
    assert model.layer_id("head.fc.weight") == 5


def test_resnet_audio_architecture():
    """What MMAction2's ResNetAudio is: a 9-tap factorised stem summed, no max-pool, factorised 3x3 convs in stages 1
    and 2 only (concatenated: 2x the width into conv3), plain 3x3 convs without BN/ReLU in stages 3 and 4, residual
    BN weights zero at init."""
    net = ResNetAudio(50)
    assert net.conv1.op == "sum" and net.conv1.conv_t.kernel_size == (9, 1) and net.conv1.conv_f.kernel_size == (1, 9)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    for i, factorised in enumerate((True, True, False, False)):
        for block in getattr(net, f"layer{i + 1}"):
            assert isinstance(block.conv2, FreqTimeConv) == factorised
            assert block.conv3.in_channels == block.conv1.out_channels * (2 if factorised else 1)
            assert not block.bn3.weight.any()
    assert net.layer1[0].downsample is not None and net.layer1[0].conv2.conv_t.stride == (1, 1)
    assert net.layer2[0].conv2.conv_t.stride == (2, 2) and net.layer3[0].conv2.stride == (2, 2)
    per_block = ResNetAudio(50, factorize=(1, (1, 0, 1, 0), 0, 0))
    assert [isinstance(b.conv2, FreqTimeConv) for b in per_block.layer2] == [True, False, True, False]


def test_freq_time_conv_branches():
    conv = FreqTimeConv(1, 2, 3, op="concat").eval()
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    with torch.no_grad():
        for branch in (conv.conv_t, conv.conv_f):
            branch.weight.fill_(1.0)
        out = conv(x)
    assert out.shape == (1, 4, 5, 5)
    # channels 0-1: the time kernel spreads the impulse along T (rows), 2-3: the frequency kernel along F (columns)
    assert torch.equal(out[0, 0] > 0, x[0, 0].roll(1, 0).bool() | x[0, 0].bool() | x[0, 0].roll(-1, 0).bool())
    assert torch.equal(out[0, 2] > 0, x[0, 0].roll(1, 1).bool() | x[0, 0].bool() | x[0, 0].roll(-1, 1).bool())


def test_norm_eval_freezes_batchnorm_statistics():
    torch.manual_seed(0)
    model = create_model("tsn_r18_audio", num_classes=3, norm_eval=True).train()
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert model.training and not any(bn.training for bn in bns)
    before = bns[0].running_mean.clone()
    model(torch.randn(2, 1, 32, 32))
    assert torch.equal(bns[0].running_mean, before)
    assert create_model("tsn_r18_audio", num_classes=3).train().backbone.bn1.training  # off by default


def test_input_errors():
    model = create_model("tsn_r18_audio", num_classes=3)
    with pytest.raises(ValueError, match=r"\(B, C, T, F\)"):
        model(torch.randn(1, 1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, V, C, T, F\)"):
        model.forward_views(torch.randn(1, 1, 32, 32))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="forward_head"):
        model.forward_head(torch.randn(1, 512, 1, 2, 2))
    with pytest.raises(ValueError, match="unknown audio backbone"):
        AudioClassifier(arch="vgg")
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNetAudio(18)
    with pytest.raises(ValueError, match="factorize for stage 2"):
        ResNetAudio(50, factorize=(1, (1, 0), 0, 0))
    with pytest.raises(ValueError, match="no further backbone arguments"):
        AudioClassifier(arch="resnet", depth=18, base_channels=16)
    assert AudioBottleneck.expansion == 4
