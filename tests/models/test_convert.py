import json
from pathlib import Path

import pytest
import torch

import vidlab
from tests.assets.fixture_fill import checksum, fill
from vidlab.models import create_model, get_model_info
from vidlab.models.convert import detect_source, load_converted
from vidlab.models.convert.pyslowfast import CONFIGS as PYSLOWFAST_CONFIGS
from vidlab.models.convert.pytorchvideo import HUB_MODELS

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# every parity fixture, as "<source>_<reference name>": MMAction2, PyTorchVideo (make_pytorchvideo_fixtures.py) and
# torchvision (make_torchvision_fixture.py)
FIXTURES = tuple(
    sorted(
        p.stem
        for prefix in ("mmaction2", "pytorchvideo", "pyslowfast", "torchvision", "hf", "videomamba")
        for p in ASSETS.glob(f"{prefix}_*.json")
        if not p.stem.endswith("_keys")
    )
)
# how each source wraps its state dict in a checkpoint file
WRAP = {
    "mmaction2": "state_dict",
    "pytorchvideo": "model_state",
    "pyslowfast": "model_state",
    "torchvision": None,
    "hf": None,
    "videomamba": "model",
}
# PySlowFast configs -> the vidlab model and arguments of the same network
PYSLOWFAST_MODELS = {"slowfast_r50": PYSLOWFAST_CONFIGS["SLOWFAST_8x8_R50"], "x3d_s": PYSLOWFAST_CONFIGS["X3D_S"]}


def build_for(fx: dict) -> torch.nn.Module:
    """The vidlab model a fixture describes, in eval mode (TRN replays the reference's relation draws)."""
    if "hub" in fx:  # PyTorchVideo: the vidlab variant and arguments that make the same network (at the fixture's
        name, kwargs = HUB_MODELS[fx["hub"]]  # reduced size, if it has one)
        kwargs = {**kwargs, **(fx.get("kwargs") or {})}
    elif fx["source"].startswith("facebookresearch/SlowFast"):
        name, kwargs = PYSLOWFAST_MODELS[fx["model"]]
    else:
        name, kwargs = fx["model"], fx["kwargs"]
    model = create_model(name, num_classes=fx["num_classes"], **kwargs).eval()
    if "trn_relations" in fx:
        model.head.consensus.set_relations(fx["trn_relations"])
    return model


def fixture_input(fx: dict) -> torch.Tensor:
    return torch.randn(fx["input_shape"], generator=torch.Generator().manual_seed(fx["input_seed"]))


def load_fixture(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The fixture JSON and the reference state dict it describes, rebuilt with :func:`fill`. ``name`` is a file
    stem (``pytorchvideo_x3d_s``) or, for MMAction2's fixtures, the bare reference name (``tsm_r18``)."""
    path = ASSETS / f"{name}.json"
    fx = json.loads((path if path.is_file() else ASSETS / f"mmaction2_{name}.json").read_text())
    sd = {}
    fixed = set(fx.get("fixed_buffers", ()))  # computed tables (VideoMAE's pos_embed): zeros, the model recomputes
    for key, shape, dtype in fx["keys"]:
        if key.endswith("num_batches_tracked") or key in fixed:
            sd[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
        else:
            sd[key] = fill(key, tuple(shape))
    return fx, sd


@pytest.fixture(scope="module", params=FIXTURES)
def reference(request) -> tuple[str, dict, dict[str, torch.Tensor], torch.nn.Module]:
    """``(stem, fixture, state dict, model)`` of one parity fixture: the reference state dict and the vidlab model
    (``build_for``) made once for both tests that take them (pytest runs them stem by stem, so one of each is held at
    a time). The tests must not modify the state dict's tensors; each loads all of the model's state itself."""
    fx, sd = load_fixture(request.param)
    return request.param, fx, sd, build_for(fx)


def test_reference_parity(reference):
    """Converted reference weights reproduce the reference's logits (fp32, max abs diff <= 1e-5)."""
    stem, fx, sd, model = reference
    source = stem.split("_", 1)[0]
    assert checksum(sd) == pytest.approx(fx["fill_checksum"], rel=1e-9), (
        "torch.randn drew other numbers than the fixture"
    )

    converted = vidlab.convert_state_dict(sd, source=source, model=fx.get("model") if source == "mmaction2" else None)
    assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in sd.values())  # nothing lost
    load_converted(model, converted, source, strict=True)

    with torch.no_grad():
        out = model(fixture_input(fx))
    ref = torch.tensor(fx["logits"])
    assert out.shape == ref.shape
    assert ref.abs().max() > 0.1  # the fixture is not trivially zero
    assert (out - ref).abs().max().item() <= 1e-5


def test_load_checkpoint_auto(tmp_path, reference):
    stem, fx, sd, model = reference
    source = stem.split("_", 1)[0]
    path = tmp_path / "ref.pth"
    torch.save({"meta": {"epoch": 3}, WRAP[source]: sd} if WRAP[source] else sd, path)
    for value in model.state_dict().values():  # whatever the parity test loaded: only what is loaded here counts
        if value.is_floating_point():
            value.fill_(float("nan"))
    report = vidlab.load_checkpoint(model, path)
    path.unlink()  # up to 360 MB: gone before the page cache writes it to disk
    assert report["source"] == source
    assert (report["missing"], report["unexpected"], report["mismatched"], report["dropped"]) == ([], [], [], [])
    assert set(report["loaded"]) == set(model.state_dict())
    with torch.no_grad():
        assert (model(fixture_input(fx)) - torch.tensor(fx["logits"])).abs().max().item() <= 1e-5


def test_detect_source():
    _, sd = load_fixture("tsm_r18")
    assert detect_source(sd) == "mmaction2"
    assert detect_source({"module." + k: v for k, v in sd.items()}) == "mmaction2"
    assert detect_source(create_model("tsn_r18", num_classes=5).state_dict()) == "vidlab"
    assert detect_source(create_model("x3d_s", num_classes=5).state_dict()) == "vidlab"
    assert detect_source({"blocks.0.conv.weight": torch.zeros(1)}) == "pytorchvideo"


def test_load_checkpoint_native_wrapped_in_model(tmp_path):
    src = create_model("tsn_r18", num_classes=5)
    path = tmp_path / "native.pt"
    torch.save({"model": src.state_dict(), "epoch": 1}, path)
    dst = create_model("tsn_r18", num_classes=5)
    report = vidlab.load_checkpoint(dst, path)
    assert report["source"] == "vidlab"
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k


def test_strict_lists_missing_unexpected_and_shapes(tmp_path):
    _, sd = load_fixture("tsn_r18")
    del sd["backbone.layer1.0.conv1.conv.weight"]
    sd["backbone.extra.weight"] = torch.zeros(3)
    sd["backbone.layer2.0.conv2.conv.weight"] = torch.zeros(7, 7, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, path)
    model = create_model("tsn_r18", num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        vidlab.load_checkpoint(model, path)
    msg = str(err.value)
    assert "missing keys (1): backbone.layer1.0.conv1.weight" in msg
    assert "unexpected keys (1): backbone.extra.weight" in msg
    assert "backbone.layer2.0.conv2.weight file [7, 7, 3, 3] vs model [128, 128, 3, 3]" in msg
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k

    report = vidlab.load_checkpoint(model, path, strict=False)
    assert report["missing"] == ["backbone.layer1.0.conv1.weight"]
    assert report["unexpected"] == ["backbone.extra.weight"]
    assert report["mismatched"] == [("backbone.layer2.0.conv2.weight", (7, 7, 3, 3), (128, 128, 3, 3))]
    assert torch.equal(model.state_dict()["backbone.layer1.0.conv2.weight"], sd["backbone.layer1.0.conv2.conv.weight"])


@pytest.mark.parametrize(
    "name, head_keys",
    [("tsm_r18", ["head.fc.bias", "head.fc.weight"]), ("x3d_s", ["head.fc2.bias", "head.fc2.weight"])],
)
def test_drop_head(tmp_path, name, head_keys):
    _, sd = load_fixture(name)  # 5 classes
    path = tmp_path / "mm.pth"
    torch.save(sd, path)
    model = create_model(name, num_classes=7)
    with pytest.raises(ValueError, match="drop_head=True"):
        vidlab.load_checkpoint(model, path)
    head_before = {k: model.state_dict()[k].clone() for k in head_keys}
    report = vidlab.load_checkpoint(model, path, drop_head=True)
    assert report["dropped"] == head_keys
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    state = model.state_dict()
    for k in head_keys:
        assert torch.equal(state[k], head_before[k])
    if name == "x3d_s":  # fc1 does not depend on the class count: still loaded
        assert torch.equal(state["head.fc1.weight"], sd["cls_head.fc1.weight"])
    assert torch.equal(
        state["backbone.bn1.running_var"],
        sd["backbone.conv1.bn.running_var" if name != "x3d_s" else "backbone.conv1_t.bn.running_var"],
    )


def test_transformer_sources_report_foreign_keys(tmp_path):
    with pytest.raises(ValueError, match="no HuggingFace -> vidlab mapping for key 'vivit.a.weight'"):
        vidlab.convert_state_dict({"vivit.a.weight": torch.zeros(1)}, source="hf")
    for source in ("videomae", "videomamba"):  # renamed under backbone.: the key report names what does not fit
        path = tmp_path / f"{source}.pth"
        torch.save({"a.weight": torch.zeros(1)}, path)
        with pytest.raises(ValueError, match=r"unexpected keys \(1\): backbone\.a\.weight"):
            vidlab.load_checkpoint(create_model("videomamba_ti", num_classes=5), path, source=source)


def test_unknown_source_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="unknown checkpoint source 'caffe'"):
        vidlab.convert_state_dict({}, source="caffe")
    with pytest.raises(NotImplementedError, match="uniformer_b"):
        vidlab.convert_state_dict({}, source="mmaction2", model="uniformer_b")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        vidlab.load_checkpoint(create_model("tsn_r18", num_classes=5), tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        vidlab.load_checkpoint(create_model("tsn_r18", num_classes=5), path)


def test_cli_convert_writes_a_loadable_checkpoint(tmp_path, cli_inprocess):
    """`vidlab convert`: the first conversion runs the real command line, the others ``vidlab.cli.main`` in this
    process (same parser, messages and exit status)."""
    from tests.conftest import run_cli

    fx, sd = load_fixture("tin_r18")
    src, dst = tmp_path / "mm_tin.pth", tmp_path / "tin.pth"
    torch.save({"state_dict": sd}, src)
    res = run_cli("convert", str(src), str(dst), "--from", "mmaction2", "--model", "tin_r18")
    # the fixture's TIN has 4 segments (the builder's default is 8): read off OffsetNet's fc1
    assert res.returncode == 0, res.stderr
    assert "5 classes, num_segments=4" in res.stdout
    model = build_for(fx)
    assert vidlab.load_checkpoint(model, dst)["source"] == "vidlab"
    with torch.no_grad():
        assert (model(fixture_input(fx)) - torch.tensor(fx["logits"])).abs().max().item() <= 1e-5
    res = cli_inprocess("convert", str(src), str(dst), "--model", "tin_r18", "--num-segments", "8")
    assert res.returncode == 2 and "offset_net.fc1.weight" in res.stderr and "num_segments" in res.stderr
    res = cli_inprocess("convert", str(src), str(dst), "--model", "trn_r18")
    assert res.returncode == 2 and "missing keys" in res.stderr and "Traceback" not in res.stderr

    fx, sd = load_fixture("tsm_r18")
    torch.save({"state_dict": sd}, src)
    res = cli_inprocess("convert", str(src), str(dst), "--from", "mmaction2", "--model", "tsm_r18")
    assert res.returncode == 0, res.stderr
    assert "5 classes" in res.stdout  # the class count is read off the checkpoint's head
    model = build_for(fx)
    report = vidlab.load_checkpoint(model, dst)
    assert report["source"] == "vidlab" and not report["missing"]
    with torch.no_grad():
        assert (model(fixture_input(fx)) - torch.tensor(fx["logits"])).abs().max().item() <= 1e-5

    res = cli_inprocess("convert", str(src), str(dst), "--model", "tsm_r18", "--num-classes", "12")
    assert res.returncode == 2 and "drop the head" in res.stderr
    res = cli_inprocess("convert", str(src), str(dst), "--model", "tsm_r18", "--num-classes", "12", "--drop-head")
    assert res.returncode == 0 and "dropped (2)" in res.stdout
    assert create_model("tsm_r18", num_classes=12).load_state_dict(torch.load(dst, weights_only=True)["model"])


def test_torchvision_image_resnet_loads_as_2d_backbone(tmp_path):
    backbone = create_model("tsn_r18", num_classes=3).backbone.state_dict()
    tv = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in backbone.items()}
    tv["fc.weight"], tv["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # ImageNet classifier
    assert detect_source(tv) == "torchvision"
    path = tmp_path / "resnet18.pth"
    torch.save(tv, path)
    model = create_model("tin_r18", num_classes=3)
    report = vidlab.load_checkpoint(model, path, strict=False)
    assert report["source"] == "torchvision" and not report["unexpected"] and not report["mismatched"]
    assert len(report["loaded"]) == len(backbone)
    assert all(".interlace." in k or k.startswith("head.") for k in report["missing"])
    assert torch.equal(model.backbone.layer2[1].conv2.weight, tv["layer2.1.conv2.weight"])
    with pytest.raises(NotImplementedError, match="video models"):
        vidlab.convert_state_dict({"stem.0.weight": torch.zeros(1)}, source="torchvision")


# state-dict layouts written by the reference code itself (make_pyslowfast_keys.py, make_pytorchvideo_keys.py)
PYSLOWFAST_KEYS = json.loads((ASSETS / "pyslowfast_keys.json").read_text())["models"]
PYTORCHVIDEO_KEYS = json.loads((ASSETS / "pytorchvideo_keys.json").read_text())["models"]


def _maps_completely(keys: list, source: str, name: str, kwargs: dict) -> None:
    sd = {k: torch.empty(shape, device="meta") for k, shape in keys}
    assert detect_source(sd) == source
    converted = vidlab.convert_state_dict(sd, source=source)
    with torch.device("meta"):
        own = create_model(name, **kwargs).state_dict()
    # nothing dropped (PyTorchVideo's MViT q/k/v projections are stacked into one qkv)
    assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in sd.values())
    assert sorted(set(converted) - set(own)) == []  # every reference key maps to a vidlab key
    assert sorted(set(own) - set(converted)) == []  # every vidlab parameter and buffer is covered
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in converted.items() if v.shape != own[k].shape]
    assert bad == []


@pytest.mark.parametrize("ref_name", sorted(PYSLOWFAST_MODELS))
def test_pyslowfast_layout_maps_completely(ref_name):
    name, kwargs = PYSLOWFAST_MODELS[ref_name]
    _maps_completely(PYSLOWFAST_KEYS[ref_name]["keys"], "pyslowfast", name, kwargs)
    assert get_model_info(name).num_params(**kwargs) == PYSLOWFAST_KEYS[ref_name]["num_params"]


# PySlowFast's MViT configs (make_mvit_refs.py) -> the vidlab models of the same networks
PYSLOWFAST_MVIT_KEYS = json.loads((ASSETS / "pyslowfast_mvit_keys.json").read_text())["models"]
PYSLOWFAST_MVIT = {
    "mvit_b_16x4_conv": "MVIT_B_16x4_CONV",
    "mvit_b_32x3_conv": "MVIT_B_32x3_CONV",
    "mvitv2_s_16x4": "MVITv2_S_16x4",
    "mvitv2_b_32x3": "MVITv2_B_32x3",
}


@pytest.mark.parametrize("ref_name", sorted(PYSLOWFAST_MVIT))
def test_pyslowfast_mvit_layout_maps_completely(ref_name):
    name, kwargs = PYSLOWFAST_CONFIGS[PYSLOWFAST_MVIT[ref_name]]
    _maps_completely(PYSLOWFAST_MVIT_KEYS[ref_name]["keys"], "pyslowfast", name, kwargs)
    assert get_model_info(name).num_params(**kwargs) == PYSLOWFAST_MVIT_KEYS[ref_name]["num_params"]


@pytest.mark.parametrize("hub", sorted(HUB_MODELS))
def test_pytorchvideo_layout_maps_completely(hub):
    name, kwargs = HUB_MODELS[hub]
    _maps_completely(PYTORCHVIDEO_KEYS[hub]["keys"], "pytorchvideo", name, kwargs)
    assert get_model_info(name).num_params(**kwargs) == PYTORCHVIDEO_KEYS[hub]["num_params"]


def test_pyslowfast_checkpoint_nests_model_state(tmp_path):
    name, kwargs = PYSLOWFAST_MODELS["x3d_s"]
    sd = {
        k: fill(k, tuple(s)) if "num_batches" not in k else torch.zeros((), dtype=torch.long)
        for k, s in PYSLOWFAST_KEYS["x3d_s"]["keys"]
    }
    path = tmp_path / "x3d_s.pyth"
    torch.save({"epoch": 300, "model_state": sd, "optimizer_state": {}, "cfg": "MODEL: {}"}, path)
    model = create_model(name, **kwargs)
    report = vidlab.load_checkpoint(model, path)
    assert report["source"] == "pyslowfast" and len(report["loaded"]) == len(sd)
    torch.testing.assert_close(model.head.fc1.weight, sd["head.lin_5.weight"].flatten(1))


@pytest.mark.parametrize(
    "stem, model, expected",
    [
        ("pytorchvideo_slowfast_r50", "slowfast_r50_8x8", HUB_MODELS["slowfast_r50"][1]),
        ("pytorchvideo_c2d_r50", "slowonly_r50_8x8", HUB_MODELS["c2d_r50"][1]),
        ("pytorchvideo_slow_r50", "slowonly_r50_8x8", {}),
        ("pytorchvideo_x3d_s", "x3d_s", HUB_MODELS["x3d_s"][1]),
        ("pyslowfast_slowfast_r50", "slowfast_r50_8x8", {"lateral_norm": True, "fusion_kernel": 7}),
        ("mmaction2_slowfast_r50_8x8", "slowfast_r50_8x8", {}),
    ],
)
def test_convert_checkpoint_builds_the_reference_layout(tmp_path, stem, model, expected):
    """`vidlab convert` picks the builder arguments of another toolbox's variant and records them."""
    from vidlab.engine.checkpoint import convert_checkpoint

    source = stem.split("_", 1)[0]
    fx, sd = load_fixture(stem)
    src, dst = tmp_path / "ref.pth", tmp_path / "vidlab.pth"
    torch.save({WRAP[source]: sd} if WRAP[source] else sd, src)
    report = convert_checkpoint(src, dst, model=model)
    assert report["kwargs"] == expected and report["num_classes"] == fx["num_classes"]
    saved = torch.load(dst, weights_only=True)
    assert saved["meta"]["kwargs"] == expected and saved["meta"]["source"] == source
    net = create_model(model, num_classes=fx["num_classes"], **expected).eval()
    net.load_state_dict(saved["model"])
    with torch.no_grad():
        assert (net(fixture_input(fx)) - torch.tensor(fx["logits"])).abs().max().item() <= 1e-5


def test_tpn_fine_tunes_to_another_class_count(tmp_path):
    src = create_model("tpn_slowonly_r50", num_classes=5)
    path = tmp_path / "tpn.pth"
    torch.save({"model": src.state_dict()}, path)
    dst = create_model("tpn_slowonly_r50", num_classes=7)
    report = vidlab.load_checkpoint(dst, path, drop_head=True)
    assert report["dropped"] == ["head.fc.bias", "head.fc.weight", "neck.aux_head.fc.bias", "neck.aux_head.fc.weight"]
    src.reset_classifier(9)
    assert src.head.fc.out_features == 9 and src.neck.aux_head.fc.out_features == 9


def test_detect_source_names_transformer_layouts():
    zero = torch.zeros(1)
    assert detect_source({"blocks.0.norm1.weight": zero, "patch_embed.proj.weight": zero}) == "videomae"
    assert detect_source({"layers.0.mixer.in_proj.weight": zero}) == "videomamba"
    assert detect_source({"blocks.1.res_blocks.0.branch2.conv_a.weight": zero}) == "pytorchvideo"
    assert detect_source({"s2.pathway0_res0.branch2.a.weight": zero}) == "pyslowfast"
