"""`vidlab export` and :mod:`vidlab.engine.export`: every family to ONNX with a dynamic batch, run by onnxruntime
against PyTorch eager; a self-describing checkpoint to ONNX, TorchScript and an ExportedProgram from the command line,
with its normalization and clip spec inside."""

import json
import sys

import pytest
import torch

from vidlab.engine.checkpoint import save_checkpoint
from vidlab.engine.export import TOLERANCE, clip_shape, export_onnx, max_rel_error, read_metadata
from vidlab.models import create_model

_TINY_VIT = dict(embed_dim=32, depth=2, num_heads=4, img_size=32, num_frames=8)
_TINY_MVIT = dict(arch=dict(embed_dims=16, num_layers=4, num_heads=1, downscale_indices=(1, 3)), img_size=64)
# family: (model, builder arguments of a tiny version, (frames, size) of its clip, the exporter `auto` picks,
# dynamic batch). The 3D ResNets at 1/8 width; the 2D families keep ResNet-18's widths (they have no width argument).
FAMILIES = {
    "tsn": ("tsn_r18", {}, (8, 32), "legacy", True),
    "tsm": ("tsm_r18", {}, (8, 32), "dynamo", True),
    "tin": ("tin_r18", {}, (8, 32), "legacy", True),
    "tanet": ("tanet_r18", {}, (8, 32), "legacy", False),
    "trn": ("trn_r18", {}, (8, 32), "legacy", True),
    "c2d": ("c2d_r50", {}, (8, 32), "dynamo", True),
    "c3d": ("c3d_sports1m", {}, (16, 112), "legacy", True),
    "i3d": ("i3d_r50", {"base_channels": 8}, (8, 32), "legacy", True),
    "r2plus1d": ("r2plus1d_r18", {"base_channels": 8}, (8, 32), "legacy", True),
    "csn": ("ircsn_r50", {"base_channels": 8}, (8, 32), "legacy", True),
    "slowonly": ("slowonly_r50_4x16", {"base_channels": 8}, (8, 32), "legacy", True),
    "slowfast": ("slowfast_r50_4x16", {"slow_depth": 18, "fast_depth": 18}, (16, 32), "legacy", True),
    "x3d": ("x3d_s", {}, (8, 32), "legacy", True),
    "tpn": ("tpn_tsm_r50", {}, (8, 32), "dynamo", True),
    "mobilenetv2_tsm": ("tsm_mobilenetv2", {}, (8, 32), "dynamo", True),
    "videomae": ("videomae_vit_s", _TINY_VIT, (8, 32), "legacy", True),
    "timesformer": ("timesformer_divst", _TINY_VIT, (8, 32), "legacy", True),
    "mvit": ("mvit_v2_s", {**_TINY_MVIT, "num_frames": 4}, (4, 64), "legacy", True),
    "videomamba": ("videomamba_ti", {k: v for k, v in _TINY_VIT.items() if k != "num_heads"}, (8, 32), "dynamo", False),
}
# the families the dynamo exporter takes (5-70 s each at these sizes) and C3D (its fixed 16 x 112 x 112 clip and
# 78M parameters: 11 s) run in the slow suite; the default run keeps the families the legacy tracer exports (about
# a second each), less TIN and SlowFast (3-4 s each)
SLOW = {"tsm", "c2d", "c3d", "tpn", "mobilenetv2_tsm", "videomamba", "tin", "slowfast"}


def _tiny(name: str, kwargs: dict) -> torch.nn.Module:
    """The model at random weights with random BatchNorm statistics and scales (zero-initialised residual scales
    would make whole blocks the identity, and the comparison blind to them), in eval mode."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    return model.eval()


@pytest.fixture()
def one_thread():
    """One intra-op thread for torch (onnxruntime is given one too): the tracer and the tiny forwards gain nothing
    from a second, and on a machine shared with other jobs spinning threads cost several times their work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in FAMILIES])
def test_family_exports_to_onnx_and_onnxruntime_matches_pytorch(family, tmp_path, one_thread):
    pytest.importorskip("onnxruntime")
    from vidlab.engine.export import OnnxRuntimeModel

    name, kwargs, (frames, size), exporter, dynamic = FAMILIES[family]
    model = _tiny(name, kwargs)
    example = torch.randn(1, 3, frames, size, size)
    meta = {"model": name, "mean": json.dumps([123.675, 116.28, 103.53]), "clip": "8x1x1"}
    path = export_onnx(model, example, tmp_path / f"{family}.onnx", dynamic_batch=dynamic, metadata=meta)
    runtime = OnnxRuntimeModel(path)
    for batch in (1, 2) if dynamic else (1,):
        x = torch.randn(batch, 3, frames, size, size)
        with torch.no_grad():
            ref = model(x)
        out = runtime(x)
        assert out.shape == (batch, 5) and out.dtype == torch.float32
        assert max_rel_error(out, ref) <= TOLERANCE, f"batch {batch}"
    assert runtime.metadata == {**meta, "exporter": exporter}
    assert json.loads(runtime.metadata["mean"])[2] == 103.53


class _BatchDependent(torch.nn.Module):
    """A model whose graph depends on the batch size through Python ints: the legacy tracer freezes them (wrong at
    another batch), ``torch.export`` specializes on them."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 5)

    def forward(self, x):
        b = int(x.shape[0])
        return self.fc(x.reshape(b, 3, -1).mean(-1)) * (1 + b % 3)


@pytest.mark.slow  # the dynamo exporter's first use: 6 s
def test_a_batch_dependent_graph_is_refused_rather_than_exported_for_one_batch(tmp_path):
    pytest.importorskip("onnxruntime")
    from vidlab.errors import InputError

    model, x = _BatchDependent().eval(), torch.randn(1, 3, 2, 4, 4)
    with pytest.raises(InputError, match="fixed the batch size of bd.onnx to 2"):
        export_onnx(model, x, tmp_path / "bd.onnx")  # legacy: wrong at batch 2; dynamo: batch 2 only
    assert not (tmp_path / "bd.onnx").exists()
    export_onnx(model, x, tmp_path / "bd.onnx", dynamic_batch=False)  # a fixed batch is fine


def _checkpoint(path, name="i3d_r50", kwargs=None):
    """A self-describing checkpoint as `vidlab train` writes one: a tiny I3D (1/8 width) testing 8-frame clips
    cropped to 32 x 32 from video decoded at short side 40."""
    kwargs = {"base_channels": 8} if kwargs is None else kwargs
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **kwargs)
    spec = {
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "input_format": "NCTHW",
        "num_segments": 1,
        "short_side": 40,
        "backend": "pyav",
        "sampler": {"type": "SampleFrames", "clip_len": 8, "frame_interval": 2, "num_clips": 1, "test_mode": True},
        "pipeline": [{"type": "CenterCrop", "crop_size": 32}],
        "average_clips": "prob",
    }
    meta = {"model": name, "num_classes": 5, "kwargs": kwargs, "classes": [f"action {i}" for i in range(5)]}
    meta.update(task={"name": "recognition", "multi_label": False, "average_clips": "prob"}, data=spec)
    save_checkpoint({"model": model.state_dict(), "meta": meta}, path)
    return model.eval(), meta


def _load(path, fmt):
    if fmt == "onnx":
        from vidlab.engine.export import OnnxRuntimeModel

        return OnnxRuntimeModel(path)
    return torch.jit.load(str(path))


@pytest.mark.parametrize(
    "fmt",
    [
        "onnx",
        pytest.param("torchscript", marks=pytest.mark.slow),
        pytest.param("exported-program", marks=pytest.mark.slow),
    ],
)
def test_cli_exports_a_checkpoint_with_its_clip_spec(fmt, tmp_path, cli_inprocess):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    ckpt, out = tmp_path / "i3d.pth", tmp_path / f"i3d.{fmt}"
    model, meta = _checkpoint(ckpt)
    r = cli_inprocess("export", str(ckpt), "--format", fmt, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "input (B, C, T, H, W) = (B, 3x8x32x32), dynamic batch" in r.stdout
    assert "checked against PyTorch eager at batch 1, 2" in r.stdout
    result = dict(kv.split("=") for kv in r.stdout.splitlines()[-1].removeprefix("RESULT ").split())
    assert float(result["max_rel_error"]) <= TOLERANCE and result["path"] == str(out)

    recorded = read_metadata(out, fmt)  # the metadata travels in the file
    assert recorded["model"] == "i3d_r50" and recorded["family"] == "i3d" and recorded["num_classes"] == 5
    assert recorded["mean"] == meta["data"]["mean"] and recorded["std"] == meta["data"]["std"]
    assert recorded["clip_spec"] == meta["data"] and recorded["classes"][4] == "action 4"
    assert recorded["input_shape"] == ["batch", 3, 8, 32, 32] and recorded["vidlab_version"] == "0.1.0"
    assert recorded.get("exporter") == ("legacy" if fmt == "onnx" else None)

    if fmt == "exported-program":  # the command ran the file from torch.export.load already (2 s a load)
        return
    x = torch.randn(3, 3, 8, 32, 32)  # a batch size that was not checked
    with torch.no_grad():
        assert max_rel_error(_load(out, fmt)(x), model(x)) <= TOLERANCE


def test_cli_names_family_and_reason_of_what_cannot_export(tmp_path, cli_inprocess, monkeypatch):
    ckpt = tmp_path / "tanet.pth"
    _checkpoint(ckpt, "tanet_r18", {})
    r = cli_inprocess("export", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "tanet.pt"))
    assert r.returncode == 2 and "tanet_r18 (tanet family) cannot be exported to torchscript with a dynamic" in r.stderr
    assert "groups = batch x channels" in r.stderr and "--static-batch" in r.stderr
    assert not (tmp_path / "tanet.pt").exists()

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the export extra not installed: `import` fails
    r = cli_inprocess("export", str(ckpt), "--format", "onnx", "--static-batch")
    assert r.returncode == 2 and "pip install 'vidlab[export]'" in r.stderr and "onnxruntime" in r.stderr


def test_clip_shape_follows_the_test_pipeline():
    tsn = {"input_format": "NCHW", "num_segments": 8, "short_side": 256, "sampler": {"clip_len": 1, "num_clips": 8}}
    assert clip_shape({**tsn, "pipeline": [{"type": "CenterCrop", "crop_size": 224}]}) == (3, 8, 224, 224)
    three = {"type": "ThreeCrop", "crop_size": 256}  # three crops: three views of the same shape
    assert clip_shape({**tsn, "pipeline": [three]}) == (3, 8, 256, 256)
    resize = [{"type": "Resize", "scale": [-1, 128]}, {"type": "CenterCrop", "crop_size": [112, 96]}]
    assert clip_shape({"sampler": {"clip_len": 16}, "short_side": None, "pipeline": resize}) == (3, 16, 96, 112)
    flow = {**tsn, "input_format": "NCHW_Flow", "modality": "Flow", "sampler": {"clip_len": 5, "num_clips": 3}}
    assert clip_shape({**flow, "num_segments": 3, "pipeline": [{"type": "CenterCrop", "crop_size": 224}]}) == (
        10,
        3,
        224,
        224,
    )
