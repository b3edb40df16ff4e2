"""AVA action detectors: registry, per-box outputs, the pooling order of SlowFast, layer ids, the loss."""

import pytest
import torch
import torch.nn.functional as F

from vidlab.models import create_model, get_model_info, list_models
from vidlab.models.layers import roi_align
from vidlab.tasks.detection import detection_loss

SMALL = {"backbone_kwargs": {"depth": 18, "base_channels": 8}}


def test_detectors_are_listed_apart_from_recognition_models():
    detectors = list_models(task="detection")
    assert {"slowonly_r50_4x16_ava", "slowfast_r50_8x8_ava", "videomae_vit_b_ava"} <= set(detectors)
    assert not set(detectors) & set(list_models())
    others = set(list_models(task="pretrain")) | set(list_models(task="encoder"))  # VideoMAE's autoencoder, CLIP
    others |= set(list_models(task="audio")) | set(list_models(task="counting"))  # spectrograms, SimCount
    assert {"videomae_pretrain_vit_b", "clip_vit_b16", "audioonly_r50"} <= others
    assert set(list_models(task=None)) == set(detectors) | set(list_models()) | others
    assert all(get_model_info(n).task == "detection" for n in detectors)


def test_slowonly_detector_matches_its_parts():
    torch.manual_seed(0)
    model = create_model("slowonly_r50_4x16_ava", num_classes=5, dropout=0.0, **SMALL).eval()
    x = torch.randn(2, 3, 4, 64, 96)
    rois = torch.tensor([[0, 4.0, 8, 40, 60], [1, 30, 0, 95, 63], [1, 0, 0, 10, 10]])
    with torch.no_grad():
        out = model(x, rois)
        feats = model.backbone.forward_features(x)
        assert feats.shape[-2:] == (4, 6)  # layer4 at stride 1: H/16
        pooled = roi_align(feats.mean(2), rois, 8, 1 / 16, 0, True).amax(dim=(2, 3))
        expected = model.head.fc(pooled)
    assert out.shape == (3, 5)
    torch.testing.assert_close(out, expected)
    empty = model(x, torch.zeros(0, 5))
    assert empty.shape == (0, 5)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        model(x, rois[:, 1:])


def test_severe_r2plus1d_detector_is_torchvision_r2plus1d_18_and_pyslowfast_roi_head():
    """SEVERE's AVA network: torchvision's r2plus1d_18 trunk (31,300,125 parameters without its fc), at 112 x 112 a
    7 x 7 map (stride 16), PySlowFast's ResNetRoIHead (temporal mean, RoIAlign 7 at 1/16 aligned, max, fc 512).
    Its clips are 32 frames; 16 here keep the test short (T / 8 frames are pooled either way)."""
    torch.manual_seed(0)
    model = create_model("r2plus1d_r18_ava", num_classes=80, output_size=7, dropout=0.0).eval()
    assert get_model_info("r2plus1d_r18_ava").num_params(num_classes=80) == 31_300_125 + 512 * 80 + 80
    x = torch.randn(1, 3, 16, 112, 112)
    rois = torch.tensor([[0, 4.0, 8, 60, 100], [0, 30, 0, 111, 111]])
    with torch.no_grad():
        feats = model.backbone.forward_features(x)
        assert feats.shape == (1, 512, 2, 7, 7)
        expected = model.head.fc(roi_align(feats.mean(2), rois, 7, 1 / 16, 0, True).amax(dim=(2, 3)))
        torch.testing.assert_close(model(x, rois), expected)


def test_a_recognition_checkpoint_of_the_backbone_loads_into_the_detector(tmp_path):
    """SEVERE's suite fine-tunes its converted R(2+1)D-18 files (recognizer names) as AVA detectors."""
    from vidlab.engine.checkpoint import save_checkpoint
    from vidlab.models.convert import load_checkpoint

    recognizer = create_model("r2plus1d_r18", num_classes=1)
    save_checkpoint({"model": recognizer.state_dict()}, tmp_path / "r.pth")
    detector = create_model("r2plus1d_r18_ava", num_classes=80)
    report = load_checkpoint(detector, tmp_path / "r.pth", strict=False)
    assert report["missing"] == ["head.fc.bias", "head.fc.weight"] and not report["unexpected"]
    assert "its classifier (head.fc.bias, head.fc.weight) is left out" in report["adapted"][0]
    own = detector.state_dict()
    assert all(torch.equal(own["backbone." + k], v) for k, v in recognizer.state_dict().items() if "head." not in k)
    with pytest.raises(ValueError, match="head.fc.weight"):
        load_checkpoint(detector, tmp_path / "r.pth")  # strict: the box classifier is not in the file


def test_slowfast_detector_pools_each_pathway_slow_first():
    model = create_model("slowfast_r50_4x16_ava", num_classes=3, backbone_kwargs={"slow_depth": 50}).eval()
    x = torch.randn(1, 3, 32, 64, 64)
    with torch.no_grad():
        inner = model.backbone.backbone
        state = inner.forward_stem(x)
        for i in range(inner.num_stages):
            state = inner.forward_stage(i, state)
        slow, fast = state
        expected = torch.cat((slow.mean(2), fast.mean(2)), dim=1)
        torch.testing.assert_close(model.pooled_map(x), expected)
    assert model.num_features == slow.shape[1] + fast.shape[1] == 2304


def test_detector_trains_every_parameter_and_reports_layer_ids():
    model = create_model("slowonly_r50_4x16_ava", num_classes=4, **SMALL)
    x = torch.randn(2, 3, 4, 64, 64)
    rois = torch.tensor([[0, 4.0, 8, 40, 60], [1, 30, 0, 63, 63]])
    logits, aux = model.forward_train(x, rois)
    assert aux == []
    detection_loss(logits, torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0]])).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.layer_id("backbone.backbone.conv1.weight") == 0
    assert model.layer_id("backbone.backbone.layer3.0.conv1.weight") == 3
    assert model.layer_id("head.fc.weight") == model.num_layers + 1 == 5
    with pytest.raises(ValueError, match="not a parameter"):
        model.layer_id("backbone.head.fc.weight")
    model.reset_classifier(7)
    assert model.num_classes == 7 and model(x, rois).shape == (2, 7)


def test_res5_dilation_keeps_the_map_and_dilates_layer4():
    model = create_model("slowonly_r50_4x16_ava", res5_dilation=2, **SMALL)
    conv = model.backbone.backbone.layer4[0].conv1
    assert conv.dilation == (1, 2, 2) and conv.padding[1:] == (2, 2)
    assert model.backbone.forward_features(torch.randn(1, 3, 4, 64, 64)).shape[-2:] == (4, 4)


def test_detection_loss_matches_mmaction2_formula():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    targets = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0]])
    keep = targets.sum(1) > 0
    bce = F.binary_cross_entropy_with_logits(logits[keep], targets[keep], reduction="none")
    torch.testing.assert_close(detection_loss(logits, targets), bce.mean())
    focal = 0.25 * (1 - torch.exp(-bce)) ** 2 * bce
    torch.testing.assert_close(detection_loss(logits, targets, alpha=0.25, gamma=2.0), focal.mean())
    all_boxes = F.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(detection_loss(logits, targets, labelled_only=False), all_boxes)
    none = detection_loss(logits.requires_grad_(), torch.zeros(6, 4))
    none.backward()
    assert none.item() == 0.0 and logits.grad is not None


@pytest.mark.parametrize("name, clip", [("c2d_r50_ava", (8, 64, 64)), ("x3d_s_ava", (4, 64, 64))])
def test_other_backbones_give_per_box_scores(name, clip):
    model = create_model(name, num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *clip), torch.tensor([[0, 2.0, 2, 40, 50], [1, 10, 10, 60, 60]]))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="res5_dilation needs a 3D-ResNet"):
        create_model(name, res5_dilation=2)


# MicroG-4M's HAR table (LEI-QI-233/HAR-in-Space, benchmark/BENCHMARK.md: 23.61 M ... 4.37 M): the exact counts its
# PySlowFast runs logged ("Params: N" in benchmark/evaluation_results/<RUN>/stdout.log), 50 classes. Keys are the rows
# of suites/microg4m_har.yaml, in its order.
MICROG4M_PARAMS = {
    "c2d_8x8": 23_610_482,
    "c2d_nln_8x8": 30_968_946,
    "i3d_8x8": 27_326_322,
    "i3d_nln_8x8": 34_684_786,
    "slow_8x8": 31_736_946,
    "slow_4x16": 31_736_946,
    "slowfast_8x8": 33_759_738,
    "slowfast_4x16": 33_759_738,
    "mvit_v1_b_16x4": 36_341_522,
    "mvit_v2_s_16x4": 34_268_594,
    "x3d_s": 2_015_828,
    "x3d_l": 4_374_938,
}
# vidlab's detectors as registered (no extra arguments), 50 classes. Where they differ from the MicroG-4M row they
# stand for, the suite's rows add the arguments of PySlowFast's network: SlowFast's fusions with BatchNorm (+928) and,
# for its 4x16 row, MicroG-4M's alpha-4 network with 7-frame fusion kernels; X3D without conv5 (-95,808 with a
# 432-wide head input instead of 192); C2D and I3D as PySlowFast builds them (the same weights).
DETECTOR_PARAMS_50 = {
    "c2d_r50_ava": 23_610_482,
    "c2d_r50_nl_ava": 30_968_946,
    "i3d_r50_ava": 27_326_322,
    "i3d_r50_nl_ava": 34_684_786,
    "slowonly_r50_8x8_ava": 31_736_946,
    "slowonly_r50_4x16_ava": 31_736_946,
    "slowfast_r50_8x8_ava": 33_758_810,
    "slowfast_r50_4x16_ava": 33_672_538,
    "mvit_v1_b_16x4_ava": 36_341_522,
    "mvit_v2_s_ava": 34_268_594,
    "x3d_s_ava": 2_111_636,
    "x3d_l_ava": 4_470_746,
}


@pytest.mark.parametrize("name", list(DETECTOR_PARAMS_50))
def test_detector_param_counts_at_microg4m_class_count(name):
    assert get_model_info(name).num_params(num_classes=50) == DETECTOR_PARAMS_50[name]


def test_microg4m_suite_rows_have_microg4m_param_counts(monkeypatch):
    """Every row of suites/microg4m_har.yaml, built from its resolved recipe, has MicroG-4M's parameter count."""
    from tests.conftest import REPO
    from vidlab.config import load_config
    from vidlab.suites import load_suite

    monkeypatch.chdir(REPO)  # the suite's paths are relative to the repository root
    suite = load_suite("suites/microg4m_har.yaml")
    assert [job.method for job in suite.jobs] == list(MICROG4M_PARAMS)
    for job in suite.jobs:
        cfg = load_config(job.config, job.overrides)
        count = get_model_info(cfg.model.name).num_params(num_classes=cfg.model.num_classes, **cfg.model.kwargs)
        assert count == MICROG4M_PARAMS[job.method], f"{job.method}: {cfg.model.name} {cfg.model.kwargs}"


def test_pyslowfast_non_local_pools_the_input_and_has_an_output_bias():
    from vidlab.models.layers.non_local import NonLocal3d

    torch.manual_seed(0)
    kw = dict(sub_sample=True, use_scale=True)
    block = NonLocal3d(8, "embedded_gaussian", pool_input=True, out_bias=True, **kw).eval()
    for p in block.parameters():
        p.data.normal_()  # the zero-initialised BN would hide the branch
    x = torch.randn(2, 8, 2, 4, 6)
    with torch.no_grad():
        # PySlowFast's Nonlocal: theta from x, phi and g from the spatially max-pooled x, softmax(theta.phi / sqrt(C'))
        pooled = F.max_pool3d(x, (1, 2, 2))
        theta, phi, g = block.theta(x).flatten(2), block.phi(pooled).flatten(2), block.g(pooled).flatten(2)
        attn = (theta.transpose(1, 2) @ phi / 4**0.5).softmax(dim=-1)  # (N, P, M); C' = 8 // 2
        y = (g @ attn.transpose(1, 2)).view(2, 4, 2, 4, 6)
        torch.testing.assert_close(block(x), x + block.bn(block.conv_out(y)))
        block.conv_out.bias.zero_()
        mmcv = NonLocal3d(8, "embedded_gaussian", **kw).eval()  # pools phi(x) and g(x) instead
        mmcv.load_state_dict({k: v for k, v in block.state_dict().items() if k != "conv_out.bias"})
        assert not torch.allclose(mmcv(x), block(x), atol=1e-3)


def test_resnet3d_non_local_style():
    from vidlab.models.resnet3d import ResNet3d

    nl = ((0, 0), (0, 1), (0, 0), (0, 0))
    block = ResNet3d(18, base_channels=8, non_local=nl, non_local_style="pyslowfast").layer2[1].non_local
    assert block.pool_input and block.conv_out.bias is not None
    block = ResNet3d(18, base_channels=8, non_local=nl).layer2[1].non_local
    assert not block.pool_input and block.conv_out.bias is None
    with pytest.raises(ValueError, match="non_local_style"):
        ResNet3d(18, non_local_style="detectron")


def test_pyslowfast_detectors_non_local_blocks_and_x3d_without_conv5():
    model = create_model("c2d_r50_nl_ava", num_classes=3)
    blocks = {n.rsplit(".non_local", 1)[0] for n, _ in model.named_modules() if n.endswith(".non_local")}
    assert blocks == {f"backbone.backbone.layer{s}.{b}" for s, b in [(2, 1), (2, 3), (3, 1), (3, 3), (3, 5)]}
    assert model.backbone.backbone.layer3[1].non_local.pool_input
    assert all(m.kernel_size[0] == 1 for m in model.modules() if isinstance(m, torch.nn.Conv3d))  # C2D: no time
    x3d = create_model("x3d_s_ava", num_classes=3, backbone_kwargs={"conv5": False}).eval()
    assert x3d.num_features == 192 and x3d.backbone.backbone.conv5 is None
    tiny_mvit = {"arch": {"embed_dims": 16, "num_layers": 4, "num_heads": 1, "downscale_indices": (1, 3)}}
    mvit = create_model("mvit_v1_b_16x4_ava", num_classes=3, backbone_kwargs={**tiny_mvit, "img_size": 64}).eval()
    rois = torch.tensor([[0, 2.0, 2, 40, 50]])
    with torch.no_grad():
        for model in (x3d, mvit):
            out = model(torch.randn(1, 3, 4, 64, 64), rois)
            assert out.shape == (1, 3) and torch.isfinite(out).all()
