"""Checkpoint import for the AVA detectors: MMAction2 (FastRCNN + BBoxHeadAVA) and PySlowFast (ResNetRoIHead) layouts.

Fixtures: ``ava_detector_keys.json`` (``make_ava_detector_keys.py``: the keys and shapes MMAction2 and PySlowFast
build) and ``ava_mmaction2_parity.json`` (``make_mmaction2_ava_fixture.py``: MMAction2's per-box scores and losses for
weights rebuilt here with ``fixture_fill.fill``).
"""

import json
from pathlib import Path

import pytest
import torch

import vidlab
from tests.assets.fixture_fill import checksum, fill
from vidlab.engine.checkpoint import convert_checkpoint
from vidlab.models import create_model, get_model_info
from vidlab.models.convert import convert_for, detect_source, load_converted
from vidlab.models.convert.pyslowfast import DETECTION_CONFIGS, DETECTION_KWARGS
from vidlab.tasks.detection import DetectionTask, detection_loss

ASSETS = Path(__file__).resolve().parents[1] / "assets"
KEYS = json.loads((ASSETS / "ava_detector_keys.json").read_text())
PARITY = json.loads((ASSETS / "ava_mmaction2_parity.json").read_text())["cases"]
BBOX_CLS = "roi_head.bbox_head.fc_cls"


def _meta_state_dict(keys: list) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device="meta") for k, shape in keys}


def _own_state_dict(name: str, **kwargs) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return create_model(name, **kwargs).state_dict()


def _assert_fits(converted: dict, own: dict) -> None:
    assert sorted(set(converted) - set(own)) == []  # every reference key maps to a vidlab key
    assert sorted(set(own) - set(converted)) == []  # every vidlab parameter and buffer is covered
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in converted.items() if v.shape != own[k].shape]
    assert bad == []


@pytest.mark.parametrize("name", sorted(KEYS["mmaction2"]["models"]))
def test_mmaction2_detector_layout_maps_completely(name):
    ref = KEYS["mmaction2"]["models"][name]
    sd = _meta_state_dict(ref["keys"])
    assert detect_source(sd) == "mmaction2"
    weight = sd[f"{BBOX_CLS}.weight"]
    assert weight.shape[0] == 81  # background + 80 actions
    for converted in (
        vidlab.convert_state_dict(sd, source="auto"),  # a detector's keys say so themselves
        vidlab.convert_state_dict(sd, source="mmaction2", model=name),
    ):
        _assert_fits(converted, _own_state_dict(name))
        # the only values not carried over: the background row of the classifier
        assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in sd.values()) - weight.shape[1] - 1
    assert get_model_info(name).num_params() == ref["num_params"] - weight.shape[1] - 1


@pytest.mark.parametrize("config", sorted(KEYS["pyslowfast"]["models"]))
def test_pyslowfast_detector_layout_maps_completely(config):
    ref = KEYS["pyslowfast"]["models"][config]
    name, kwargs = DETECTION_CONFIGS[config]
    # what the config sets that the weights do not show: res5 dilated by 2, RoIAlign output 7
    assert ref["spatial_dilations"][-1] == [2] * len(ref["spatial_dilations"][-1]) and ref["roi_resolution"] == 7
    assert DETECTION_KWARGS == {"res5_dilation": 2, "output_size": 7}
    sd = _meta_state_dict(ref["keys"])
    assert detect_source(sd) == "pyslowfast"
    converted = vidlab.convert_state_dict(sd, source="pyslowfast", model=name)
    _assert_fits(converted, _own_state_dict(name, **kwargs))
    assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in sd.values())
    assert converted["head.fc.weight"].shape[0] == 80  # no background class
    assert get_model_info(name).num_params(**kwargs) == ref["num_params"]


def test_mmaction2_background_row_dropped():
    gen = torch.Generator().manual_seed(0)
    w, b = torch.randn(81, 2048, generator=gen), torch.randn(81, generator=gen)
    conv1 = torch.randn(64, 3, 1, 7, 7, generator=gen)
    sd = {"backbone.conv1.conv.weight": conv1, f"{BBOX_CLS}.weight": w, f"{BBOX_CLS}.bias": b}
    out = vidlab.convert_state_dict(sd, source="auto")
    assert set(out) == {"backbone.backbone.conv1.weight", "head.fc.weight", "head.fc.bias"}
    assert torch.equal(out["head.fc.weight"], w[1:]) and torch.equal(out["head.fc.bias"], b[1:])
    assert out["backbone.backbone.conv1.weight"] is conv1
    kept = vidlab.convert_state_dict(sd, source="mmaction2", background_class=False)
    assert torch.equal(kept["head.fc.weight"], w)
    # the recognizer layout when asked for (no detector): same renames, not nested
    assert set(vidlab.convert_state_dict(sd, "mmaction2", detector=False)) == {
        "backbone.conv1.weight",
        "head.fc.weight",
        "head.fc.bias",
    }
    # anything else under roi_head has no vidlab counterpart: kept, so loading reports it
    extra = vidlab.convert_state_dict({**sd, "roi_head.shared_head.conv.weight": conv1}, source="mmaction2")
    assert "roi_head.shared_head.conv.weight" in extra


@pytest.mark.parametrize("rows, num_classes, dropped", [(81, 80, True), (66, 66, False)])
def test_background_row_read_off_the_model(rows, num_classes, dropped):
    """Loading into a detector drops the first row when the file has one more than the model's classes (MMAction2's
    AVA configs); a head built without background (MultiSports: 66 classes) is kept whole."""
    w = torch.randn(rows, 2048)
    sd = {"backbone.conv1.conv.weight": torch.zeros(64, 3, 1, 7, 7), f"{BBOX_CLS}.weight": w}
    with torch.device("meta"):
        model = create_model("slowonly_r50_4x16_ava", num_classes=num_classes)
    source, out = convert_for(model, sd)
    assert source == "mmaction2"
    assert torch.equal(out["head.fc.weight"], w[1:] if dropped else w)


def test_pyslowfast_detector_head_keeps_slow_first_columns():
    """PySlowFast's ResNetRoIHead and vidlab's RoIHead both take (slow, fast) channels; only the recognition head is
    reordered for vidlab's (fast, slow) recognition features."""
    keys = KEYS["pyslowfast"]["models"]["SLOWFAST_32x2_R50_SHORT"]["keys"]
    sd = _meta_state_dict(keys)
    sd["head.projection.weight"] = proj = torch.randn(80, 2048 + 256)
    det = vidlab.convert_state_dict(sd, source="pyslowfast", model="slowfast_r50_8x8_ava")
    assert torch.equal(det["head.fc.weight"], proj)
    rec = vidlab.convert_state_dict(sd, source="pyslowfast", model="slowfast_r50_8x8")
    assert torch.equal(rec["head.fc.weight"], torch.cat((proj[:, 2048:], proj[:, :2048]), dim=1))


def _reference_state_dict(case: dict) -> dict[str, torch.Tensor]:
    """The MMAction2 detector's state dict the fixture was made with (:func:`fill` of each key and shape)."""
    return {
        k: torch.zeros(shape, dtype=getattr(torch, dtype))
        if k.endswith("num_batches_tracked")
        else fill(k, tuple(shape))
        for k, shape, dtype in case["keys"]
    }


@pytest.fixture(scope="module", params=sorted(PARITY))
def parity(request, tmp_path_factory):
    """``(name, case, model, logits)``: the detector loaded from an MMAction2-layout file, and its logits for the
    case's clip and boxes."""
    name, case = request.param, PARITY[request.param]
    sd = _reference_state_dict(case)
    assert checksum(sd) == pytest.approx(case["fill_checksum"], rel=1e-9), "torch.randn drew other numbers"
    path = tmp_path_factory.mktemp("ava") / "mmaction2_ava.pth"
    torch.save({"meta": {"epoch": 20}, "state_dict": sd}, path)
    del sd
    model = create_model(name).eval()
    report = vidlab.load_checkpoint(model, path)
    path.unlink()
    assert report["source"] == "mmaction2"
    assert (report["missing"], report["unexpected"], report["mismatched"], report["dropped"]) == ([], [], [], [])
    x = torch.randn(case["input_shape"], generator=torch.Generator().manual_seed(case["input_seed"]))
    with torch.no_grad():
        logits = model(x, torch.tensor(case["rois"]))
    return name, case, model, logits


def test_mmaction2_detector_parity(parity):
    """Converted MMAction2 weights give MMAction2's per-box scores (backbone, RoI extraction and BBoxHeadAVA)."""
    _, case, _, logits = parity
    ref = torch.tensor(case["cls_score"])
    assert logits.shape == (len(case["rois"]), 80)
    assert (logits - ref[:, 1:]).abs().max().item() <= 1e-5
    assert (logits.sigmoid() - torch.tensor(case["scores"])).abs().max().item() <= 1e-5
    assert ref[:, 1:].std() > 0.5  # scores spread over (0, 1), not saturated


def test_detection_loss_matches_bbox_head_ava(parity):
    """vidlab's detection loss (the task's criterion) equals BBoxHeadAVA's ``loss_action_cls``: BCE over the boxes
    with at least one action, and its focal form."""
    _, case, _, logits = parity
    targets = torch.tensor(case["targets"])
    assert 0 < int((targets.sum(1) > 0).sum()) < len(targets)  # boxes with and without actions
    ref_logits = torch.tensor(case["cls_score"])[:, 1:]
    ids = list(range(1, 81))
    for ref in case["losses"]:
        alpha, gamma = ref["focal_alpha"], ref["focal_gamma"]
        task = DetectionTask(ids, [str(i) for i in ids], loss="focal", focal_alpha=alpha, focal_gamma=gamma)
        assert task.criterion(logits, targets).item() == pytest.approx(ref["loss"], abs=1e-6)
        assert detection_loss(ref_logits, targets, alpha=alpha, gamma=gamma).item() == pytest.approx(
            ref["loss"], abs=1e-6
        )
    bce = DetectionTask(ids, [str(i) for i in ids]).criterion(logits, targets)
    assert bce.item() == pytest.approx(case["losses"][0]["loss"], abs=1e-6)


def test_recognizer_checkpoint_initializes_detector_backbone():
    """A Kinetics recognizer's MMAction2 weights fill the detector's backbone; its classifier is dropped."""
    fx = json.loads((ASSETS / "mmaction2_slowonly_r50_8x8.json").read_text())
    sd = _meta_state_dict([(k, shape) for k, shape, _ in fx["keys"]])
    with torch.device("meta"):
        model = create_model("slowonly_r50_8x8_ava")
    source, converted = convert_for(model, sd)
    report = load_converted(model, converted, source, drop_head=True)
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    assert report["dropped"] == ["head.fc.bias", "head.fc.weight"]


@pytest.mark.parametrize(
    "source, name, ref",
    [
        ("mmaction2", "slowonly_r50_4x16_ava", "slowonly_r50_4x16_ava"),
        ("pyslowfast", DETECTION_CONFIGS["SLOWFAST_32x2_R50_SHORT"][0], "SLOWFAST_32x2_R50_SHORT"),
    ],
)
def test_convert_checkpoint_detector(tmp_path, source, name, ref):
    """``vidlab convert`` for a detector: 80 classes (MMAction2's background row dropped); PySlowFast's AVA settings
    and its backbone's arguments (``backbone_kwargs``) become builder arguments; the file records the detection
    task."""
    sd = {k: torch.zeros(shape) for k, shape in KEYS[source]["models"][ref]["keys"]}
    src, dst = tmp_path / "ava.pth", tmp_path / "ava_vidlab.pth"
    torch.save({"epoch": 20, "model_state" if source == "pyslowfast" else "state_dict": sd}, src)
    del sd
    report = convert_checkpoint(src, dst, model=name)
    src.unlink()
    assert report["source"] == source and report["num_classes"] == 80
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    if source == "pyslowfast":
        expected = {**DETECTION_CONFIGS[ref][1], "backbone_kwargs": {"lateral_norm": True, "fusion_kernel": 7}}
    else:
        expected = {}
    assert report["kwargs"] == expected
    meta = torch.load(dst, map_location="cpu", weights_only=True)["meta"]
    assert meta["task"]["name"] == "detection" and meta["kwargs"] == expected and meta["model"] == name


def test_pyslowfast_non_local_blocks_convert_and_set_the_network():
    """``sK.pathway0_nonlocalJ.{conv_theta,conv_phi,conv_g,conv_out,bn}`` (PySlowFast's ``ResStage`` puts block J's
    non-local after it) -> ``layer{K-1}.J.non_local.*``, and the builder arguments of PySlowFast's network: an I3D
    NLN Kinetics checkpoint converted with ``--model i3d_r50`` starts MicroG-4M's ``i3d_nln_8x8`` row whole."""
    import re

    from vidlab.models.convert.pyslowfast import CONFIGS, builder_kwargs
    from vidlab.models.i3d import NON_LOCAL_I3D

    nl = {"non_local": NON_LOCAL_I3D, "non_local_mode": "embedded_gaussian", "non_local_use_scale": True,
          "non_local_style": "pyslowfast"}  # fmt: skip
    reference = create_model("i3d_r50", **CONFIGS["I3D_8x8_R50"][1], **nl).state_dict()
    sd = {}
    for key, value in reference.items():  # the non-local keys in PySlowFast's names, the rest already converted
        m = re.match(r"backbone\.layer(\d)\.(\d+)\.non_local\.(g|theta|phi|conv_out|bn)\.(.*)$", key)
        if m:
            part = {"g": "conv_g", "theta": "conv_theta", "phi": "conv_phi"}.get(m.group(3), m.group(3))
            key = f"s{int(m.group(1)) + 1}.pathway0_nonlocal{m.group(2)}.{part}.{m.group(4)}"
        sd[key] = value
    assert sum("pathway0_nonlocal" in k for k in sd) == 5 * 13  # 5 blocks: theta, phi, g, out (w, b), bn (5)
    converted = vidlab.convert_state_dict(sd, source="pyslowfast", model="i3d_r50")
    assert set(converted) == set(reference) and all(converted[k] is reference[k] for k in reference)
    kwargs = builder_kwargs("i3d_r50", converted)
    assert {k: kwargs[k] for k in nl} == {**nl, "non_local": tuple(tuple(s) for s in NON_LOCAL_I3D)}
    create_model("i3d_r50", **kwargs).load_state_dict(converted)  # strict: the network it describes
