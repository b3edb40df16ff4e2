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
    assert {"videomae_pretrain_vit_b", "clip_vit_b16"} <= others
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
