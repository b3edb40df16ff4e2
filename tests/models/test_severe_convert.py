"""SEVERE's nine self-supervised R(2+1)D-18 checkpoints -> ``r2plus1d_r18`` (``vidlab.models.convert.severe``).

Each checkpoint is rebuilt from the key names, shapes and dtypes in ``tests/assets/severe_ssl_keys.json`` (made from
the methods' own model code by ``make_severe_ssl_keys.py``), wrapped as the method's training script saves it. To keep
files small every tensor is one random value per key broadcast to the key's shape (a stride-0 view, which
``torch.save`` stores as a single element): a tensor that lands under another key shows another value. The tensors
checked element by element (``CHECKS``) are full random tensors.
"""

import argparse
import json
import zlib
from pathlib import Path

import pytest
import torch

import vidlab
from vidlab.models import create_model
from vidlab.models.convert import detect_source, severe
from vidlab.models.resnet3d import ResNet3d

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LAYOUTS = json.loads((ASSETS / "severe_ssl_keys.json").read_text())["methods"]
METHODS = tuple(LAYOUTS)

# where each method keeps the backbone (written out here, apart from the converter's tables), and its names for the
# tensors checked: the stem's spatial conv, a BN of layer2, layer4's last temporal conv, layer3's shortcut conv
TV = ("stem.0.weight", "layer2.1.conv1.1.running_var", "layer4.1.conv2.0.3.weight", "layer3.0.downsample.0.weight")
PYVRL = (
    "stem.conv_s.weight",
    "layer2.1.bn1.running_var",
    "layer4.1.conv2.conv_t.weight",
    "layer3.0.downsample.conv.weight",
)
SEQ = ("0.0.weight", "2.1.conv1.1.running_var", "4.1.conv2.0.3.weight", "3.0.downsample.0.weight")
BACKBONE = {
    "ctp": ("backbone.", PYVRL),
    "gdt": ("video_network.base.", TV),
    "rspnet": ("encoder_q.encoder.base_network.", SEQ),
    "tclr": ("module.0.", TV),
    "pretext_contrast": ("module.base_network.", SEQ),
    "moco": ("module.encoder_q.", TV),
    "videomoco": ("module.encoder_q.", TV),
    "selavi": ("module.video_network.base.", TV),
    "avid_cma": ("module.video_model.", TV),
}
CHECKS = (
    "backbone.conv1.conv_s.weight",
    "backbone.layer2.1.bn1.running_var",
    "backbone.layer4.1.conv2.conv_t.weight",
    "backbone.layer3.0.downsample.0.weight",
)
# what else each training script writes next to the weights (plain values here; GDT's args is a Namespace)
EXTRA = {
    "epoch": 200,
    "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0, 1]}]},
    "meta": {"epoch": 90, "mmcv_version": "1.2.4", "config": "model = dict(type='CtP')"},
    "args": argparse.Namespace(lr=0.01, vid_base_arch="r2plus1d_18", use_mlp=True),
    "arch": "r2plus1d_18",
    "learning_rate": 1e-3,
    "dist": None,
    "selflabels": torch.zeros(8, 10, dtype=torch.long),
    "train_criterion": {"memory": torch.zeros(4, 128)},
    "lr_scheduler": {"last_epoch": 200},
    "scheduler": {"last_epoch": 200},
    "best_loss": 7.5,
}


def keys_of(method: str) -> list:
    keys = LAYOUTS[method]["keys"]
    return LAYOUTS[keys]["keys"] if isinstance(keys, str) else keys  # VideoMoCo's list is MoCo's


def state_dict(method: str) -> dict[str, torch.Tensor]:
    """The method's checkpoint tensors: one random value per key, broadcast; full tensors under ``CHECKS``."""
    gen = torch.Generator().manual_seed(zlib.crc32(method.encode()))
    prefix, names = BACKBONE[method]
    full = {prefix + n for n in names}
    out = {}
    for key, shape, dtype in keys_of(method):
        if dtype != "float32":
            out[key] = torch.randint(0, 1000, (), generator=gen).expand(shape)
        elif key in full:
            out[key] = torch.randn(shape, generator=gen)
        else:
            out[key] = torch.randn((), generator=gen).expand(shape)
    return out


def save_checkpoint(method: str, sd: dict, path: Path) -> Path:
    layout = LAYOUTS[method]
    obj = {layout["wrapper"]: sd, **{k: EXTRA[k] for k in layout["extra"] if k in EXTRA}} if layout["wrapper"] else sd
    torch.save(obj, path)
    return path


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """The two networks: torchvision's R(2+1)D-18 and TCLR's (built once; every test overwrites all its weights)."""
    torch.manual_seed(0)
    return {
        "plain": create_model("r2plus1d_r18", num_classes=10),
        "tclr": create_model("r2plus1d_r18", num_classes=10, **severe.TCLR_KWARGS),
    }


def test_fixture_lists_every_method_with_its_source():
    assert set(METHODS) == set(severe.SOURCES) == set(BACKBONE)
    for method in METHODS:
        layout = LAYOUTS[method]
        assert "@" in layout["source"] and layout["notes"]  # repository@commit:path of the model code
        assert len(keys_of(method)) > 200


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_loads_strictly_and_reports_what_it_drops(method, models, tmp_path):
    sd = state_dict(method)
    path = save_checkpoint(method, sd, tmp_path / "ssl.pth")
    model = models["tclr" if method == "tclr" else "plain"]
    head = model.head.fc.weight.detach().clone()
    report = vidlab.load_checkpoint(model, path, source=method, strict=True)

    prefix, names = BACKBONE[method]
    backbone = sorted(k for k in sd if k.startswith(prefix) and not k.startswith(prefix + "fc."))
    assert report["source"] == method
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    assert len(report["loaded"]) == len(backbone) == len(model.backbone.state_dict())
    assert report["initialised"] == ["head.fc.bias", "head.fc.weight"]  # no classifier in the file: kept fresh
    assert torch.equal(model.head.fc.weight, head)
    # everything else in the file is dropped, each key with its reason
    assert sorted(report["dropped"]) == sorted(set(sd) - set(backbone))
    assert all(report["why_dropped"][k] for k in report["dropped"])
    state = model.state_dict()
    for source_name, vidlab_name in zip(names, CHECKS):
        assert torch.equal(state[vidlab_name], sd[prefix + source_name]), (source_name, vidlab_name)
    # values broadcast from one number per key: a tensor under the wrong key shows the other key's number
    assert state["backbone.layer1.0.conv2.bn_mid.weight"].unique().numel() == 1
    if method == "tclr":  # layer4's first conv: one 3x3x3 conv, dilated in time
        assert torch.equal(state["backbone.layer4.0.conv1.weight"], sd["module.0.layer4.0.conv1.0.weight"])
        assert model.backbone.layer4[0].conv1.dilation == (2, 1, 1)


REASONS = {
    "ctp": {"backbone.": None, "head.pred_head.weight": "trajectory"},
    "gdt": {"audio_network.base.conv1.weight": "audio network", "mlp_v.block_forward.8.weight": "projection"},
    "rspnet": {"queue": "queue", "encoder_k.fc1.2.weight": "momentum", "encoder_q.fc2.2.weight": "projection"},
    "tclr": {"module.1.fc2.weight": "projection"},
    "pretext_contrast": {"module.projector.mlp.0.weight": "projection", "module.fc_speed.weight": "pretext"},
    "moco": {
        "module.queue_ptr": "queue",
        "module.encoder_q.fc.weight": "projection",
        "module.encoder_k.stem.0.weight": "momentum",
    },
    "videomoco": {"module.queue": "queue", "module.encoder_k.layer4.1.conv2.1.bias": "momentum"},
    "selavi": {
        "module.audio_network.base.conv1.weight": "audio network",
        "module.mlp_v9.block_forward.8.bias": "clustering",
    },
    "avid_cma": {
        "module.audio_model.conv1.0.weight": "audio network",
        "module.video_proj.projection.4.weight": "projection",
    },
}


@pytest.mark.parametrize("method", METHODS)
def test_dropped_keys_name_what_they_are(method):
    why = vidlab.models.convert.discarded_keys({k: torch.empty(0) for k, _, _ in keys_of(method)}, method)
    for key, word in REASONS[method].items():
        if word is not None:
            assert word in why[key], (key, why[key])
    prefix, _ = BACKBONE[method]
    assert not any(k.startswith(prefix) and ".fc." not in k for k in why)  # no backbone key is dropped


def test_missing_backbone_key_is_named(models, tmp_path):
    sd = state_dict("moco")
    del sd["module.encoder_q.layer3.1.conv2.1.running_var"]
    path = save_checkpoint("moco", sd, tmp_path / "moco.pth")
    with pytest.raises(ValueError, match=r"missing keys \(1\): backbone\.layer3\.1\.bn2\.running_var"):
        vidlab.load_checkpoint(models["plain"], path, source="moco")


def test_unknown_key_is_not_dropped_silently(models, tmp_path):
    sd = state_dict("selavi")
    sd["module.video_network.extra.weight"] = torch.zeros(3)  # neither backbone nor a known pre-training part
    path = save_checkpoint("selavi", sd, tmp_path / "selavi.pth")
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): module\.video_network\.extra\.weight"):
        vidlab.load_checkpoint(models["plain"], path, source="selavi")


def test_tclr_weights_need_the_dilated_layer4(models, tmp_path):
    path = save_checkpoint("tclr", state_dict("tclr"), tmp_path / "tclr.pth")
    with pytest.raises(ValueError, match="TCLR_KWARGS"):
        vidlab.load_checkpoint(models["plain"], path, source="tclr")


def test_wrong_source_says_so():
    sd = {k: torch.empty(s, device="meta") for k, s, _ in keys_of("gdt")}
    with pytest.raises(ValueError, match="no ctp backbone keys"):
        vidlab.convert_state_dict(sd, source="ctp")


@pytest.mark.parametrize("method", METHODS)
def test_auto_detection_only_where_unambiguous(method, models):
    sd = {k: torch.empty(s, device="meta") for k, s, _ in keys_of(method)}
    if method in ("moco", "videomoco", "gdt", "selavi"):  # two methods write each of these layouts
        assert detect_source(sd) == "vidlab"
        with pytest.raises(ValueError, match="name its source"):
            vidlab.models.convert.convert_for(models["plain"], sd, "auto")
    else:
        assert detect_source(sd) == method


def test_temporal_dilation_keeps_tclrs_frames(models):
    """TCLR's layer4: temporal stride 1 and a dilated 3x3x3 first conv give twice the frames of the plain network;
    the plain network is untouched by the option."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 32, 32)
    plain, tclr = models["plain"].eval(), models["tclr"].eval()
    with torch.no_grad():
        assert plain.forward_features(x).shape == (1, 512, 2, 2, 2)
        assert tclr.forward_features(x).shape == (1, 512, 4, 2, 2)
    conv1 = tclr.backbone.layer4[0].conv1
    assert isinstance(conv1, torch.nn.Conv3d) and conv1.padding == (2, 1, 1) and conv1.stride == (1, 2, 2)
    assert tclr.backbone.layer4[0].downsample[0].stride == (1, 2, 2)
    assert not isinstance(tclr.backbone.layer4[1].conv1, torch.nn.Conv3d)  # the other convs stay factorised
    with pytest.raises(ValueError, match="basic blocks"):
        ResNet3d(50, temporal_dilations=(1, 1, 1, 2))


def test_cli_convert_tclr(tmp_path, cli_inprocess):
    src = save_checkpoint("tclr", state_dict("tclr"), tmp_path / "rpd18kin400.pth")
    dst = tmp_path / "tclr_r2plus1d_r18.pth"
    res = cli_inprocess(
        "convert", str(src), str(dst), "--from", "tclr", "--model", "r2plus1d_r18", "--num-classes", "51"
    )
    assert res.returncode == 0, res.stderr
    assert "temporal_dilations=(1, 1, 1, 2)" in res.stdout and "216 tensors loaded" in res.stdout
    assert "dropped (13): TCLR projection MLP: module.1.bn1.bias" in res.stdout
    assert "initialised (2): not in the checkpoint: head.fc.bias, head.fc.weight" in res.stdout
    model = vidlab.load_model(dst)
    assert model.num_classes == 51 and model.backbone.layer4[0].conv1.dilation == (2, 1, 1)
    sd = state_dict("tclr")
    assert torch.equal(model.backbone.conv1.conv_s.weight, sd["module.0.stem.0.weight"])
