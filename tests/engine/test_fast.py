"""Fast inference (vidlab.engine.fast): BatchNorm folding, memory format, precision, `vidlab bench model`, and the
inference options of `vidlab test`."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from vidlab.engine.fast import fold_batchnorm, inference_model, resolve_inference_precision
from vidlab.engine.precision import cpu_has_native_bf16
from vidlab.errors import InputError
from vidlab.models import create_model

# tiny members of the families whose blocks put BatchNorm after convolutions in different ways
TINY = {
    "tsm_r18": ({"num_classes": 5}, (3, 4, 32, 32)),
    "r2plus1d_r18": ({"num_classes": 5}, (3, 4, 32, 32)),
    "slowfast_r50_4x16": ({"num_classes": 5}, (3, 8, 32, 32)),
    "x3d_s": ({"num_classes": 5}, (3, 4, 32, 32)),
}


def _random_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """BatchNorm statistics and affine parameters far from the identity, so a wrong fold shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return model.eval()


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in ("x3d_s", "slowfast_r50_4x16") else n for n in TINY]
)
def test_fold_batchnorm_keeps_the_output(name):
    kwargs, shape = TINY[name]
    torch.manual_seed(0)
    model = _random_stats(create_model(name, **kwargs))
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = model(x)
    before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    folded = fold_batchnorm(model, x[:1])
    after = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert folded > 0 and after == before - folded
    assert after == 0  # every BatchNorm of these families follows a convolution directly
    with torch.no_grad():
        assert _rel(model(x), ref) < 1e-5  # at batch 2, not only on the batch the fold was checked on


class _Reused(nn.Module):
    """A convolution whose output feeds its BatchNorm and, besides, the sum: folding would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return (self.bn(y) + y).mean((2, 3))


def test_a_fold_that_changes_the_output_is_refused():
    model = _random_stats(_Reused())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
    assert fold_batchnorm(model, x) == 0
    assert isinstance(model.bn, nn.BatchNorm2d)
    with torch.no_grad():
        assert torch.equal(model(x), ref)


def test_fold_needs_eval_mode():
    with pytest.raises(InputError, match="eval mode"):
        fold_batchnorm(_Reused().train(), torch.randn(1, 3, 8, 8))


def test_inference_model_fp32_matches_eager_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = _random_stats(create_model("tsm_r18", num_classes=5))
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = inference_model(model, "fp32", example=x)
    assert fast.precision_name == "fp32" and fast.prepared.channels_last and fast.prepared.folded == 20
    out = fast(x)
    assert out.dtype == torch.float32 and _rel(out, ref) < 1e-5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20  # the original is untouched
    views = fast.forward_views(x[:, None].expand(1, 2, *x.shape[1:]), average_clips="prob")
    assert views.shape == (1, 5) and abs(views.sum().item() - 1) < 1e-5


def test_transformers_stay_contiguous():
    model = create_model("videomae_vit_s", num_classes=3, depth=1, img_size=32, num_frames=4).eval()
    fast = inference_model(model, "fp32", example=torch.randn(1, 3, 4, 32, 32))
    assert not fast.prepared.channels_last and fast.prepared.folded == 0


def test_precision_follows_the_hardware():
    cpu = torch.device("cpu")
    assert resolve_inference_precision("auto", cpu) in (("bf16", "none") if cpu_has_native_bf16() else ("none",))
    assert resolve_inference_precision("fp32", cpu) == "none"
    with pytest.raises(InputError, match="fp16"):
        resolve_inference_precision("fp16", cpu)
    with pytest.raises(InputError, match="fp32 only"):
        resolve_inference_precision("bf16", cpu, backend="onnxruntime")
    with pytest.raises(InputError, match="precision must be"):
        resolve_inference_precision("int8", cpu)


def test_auto_picks_bf16_only_where_it_beats_fp32():
    from vidlab.engine.precision import _addmm_seconds, cpu_bf16_pays

    cpu = torch.device("cpu")
    pays = cpu_bf16_pays()
    assert pays is cpu_bf16_pays()  # measured once
    assert resolve_inference_precision("auto", cpu) == ("bf16" if pays else "none")
    assert resolve_inference_precision("bf16", cpu) == "bf16"  # asked for: honoured
    if not cpu_has_native_bf16():
        assert not pays
    elif pays:  # the probe's verdict holds on a second look (a clear margin either way on real CPUs)
        assert _addmm_seconds(torch.bfloat16) < _addmm_seconds(torch.float32)


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU emulates bf16")
def test_bf16_inference_close_to_fp32():
    torch.manual_seed(0)
    model = _random_stats(create_model("tsn_r18", num_classes=5))
    x = torch.randn(1, 3, 2, 32, 32)
    fast, ref = inference_model(model, "bf16", example=x), inference_model(model, "fp32", example=x)
    assert fast.precision_name == "bf16"
    assert _rel(fast(x), ref(x)) < 0.05


def test_bench_model_prints_its_result_line(cli_inprocess):
    r = cli_inprocess("bench", "model", "tsn_r18", "--input", "3", "2", "32", "32", "--repeats", "2", "--precision",
                      "fp32", "--num-classes", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "fp32" in lines[0] and "BatchNorm folded" in lines[0] and "(1, 3, 2, 32, 32)" in lines[0]
    key, ms, prec = lines[-1].split()
    assert key == "RESULT" and float(ms.split("=")[1]) > 0 and prec == "precision=fp32"
    assert any(line.startswith("| peak RSS (MiB) |") for line in lines)
    r = cli_inprocess("bench", "model")
    assert r.returncode == 2 and "give a model name" in r.stderr


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory, synth_tiny):
    """A self-describing TSN-R18 checkpoint with random weights and BatchNorm statistics, for the tiny set."""
    from tests.conftest import write_tiny_recipe
    from vidlab.config import load_config
    from vidlab.engine.builders import test_clip_spec
    from vidlab.engine.checkpoint import convert_checkpoint

    tmp = tmp_path_factory.mktemp("fast")
    recipe = write_tiny_recipe(synth_tiny, tmp / "tiny.yaml")
    classes = len((synth_tiny / "label_map.txt").read_text().split())
    torch.manual_seed(0)
    model = _random_stats(create_model("tsn_r18", num_classes=classes))
    torch.save({"state_dict": model.state_dict()}, tmp / "raw.pth")
    convert_checkpoint(tmp / "raw.pth", tmp / "ckpt.pth", model="tsn_r18", source="vidlab",
                       clip_spec=test_clip_spec(load_config(recipe)))  # fmt: skip
    return tmp / "ckpt.pth"


def test_vidlab_test_folded_equals_unfolded(random_checkpoint, synth_tiny, tmp_path, cli_inprocess):
    common = ("test", "--checkpoint", str(random_checkpoint), "--list", "test.txt", "--root", str(synth_tiny))
    scores = []
    for i, extra in enumerate(((), ("test.fold_bn=false", "test.memory_format=contiguous"))):
        out = tmp_path / f"r{i}.json"
        r = cli_inprocess(*common, "--precision", "fp32", "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        assert "videos, fp32)" in r.stdout
        scores.append(torch.tensor(json.loads(out.read_text())["scores"]))
    assert (scores[0] - scores[1]).abs().max() < 1e-5
    assert torch.equal(scores[0].argmax(1), scores[1].argmax(1))


def test_onnxruntime_backend(random_checkpoint, synth_tiny, tmp_path, cli_inprocess):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    common = ("test", "--checkpoint", str(random_checkpoint), "--list", "test.txt", "--root", str(synth_tiny))
    scores = []
    for i, extra in enumerate((("--backend", "onnxruntime"), ("--precision", "fp32"))):
        out = tmp_path / f"r{i}.json"
        r = cli_inprocess(*common, "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        scores.append(torch.tensor(json.loads(out.read_text())["scores"]))
    assert (scores[0] - scores[1]).abs().max() < 1e-4


def _extract(cli_inprocess, checkpoint, synth_tiny, out, *extra):
    args = ["extract", "--checkpoint", str(checkpoint), "--list", str(synth_tiny / "test.txt")]
    r = cli_inprocess(*args, "--root", str(synth_tiny), "--out", str(out), "--num-workers", "0", *extra)
    assert r.returncode == 0, r.stderr
    return {p.name: np.load(p) for p in sorted(out.rglob("*.npy"))}


def test_extract_with_onnxruntime_gives_the_plain_features(random_checkpoint, synth_tiny, tmp_path, cli_inprocess):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    plain = _extract(cli_inprocess, random_checkpoint, synth_tiny, tmp_path / "plain")
    ort = _extract(cli_inprocess, random_checkpoint, synth_tiny, tmp_path / "ort", "--backend", "onnxruntime")
    assert plain.keys() == ort.keys() and len(plain) > 3
    for k in plain:
        np.testing.assert_allclose(ort[k], plain[k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_extract_compiled_gives_the_plain_features(random_checkpoint, synth_tiny, tmp_path, cli_inprocess):
    plain = _extract(cli_inprocess, random_checkpoint, synth_tiny, tmp_path / "plain", "--pool", "none")
    compiled = _extract(cli_inprocess, random_checkpoint, synth_tiny, tmp_path / "c", "--pool", "none", "--compile")
    for k in plain:
        np.testing.assert_allclose(compiled[k], plain[k], rtol=1e-4, atol=1e-5)


COMPILE_PROBE = """
import torch
from vidlab.engine.fast import inference_model
from vidlab.models import create_model
torch.manual_seed(0)
model = create_model("tsm_r18", num_classes=5).eval()
x = torch.randn(1, 3, 4, 32, 32)
with torch.no_grad():
    ref = model(x)
fast = inference_model(model, "fp32", compile=True, example=x)
out = fast(x)
print(fast.prepared.compiled, ((out - ref).abs().max() / ref.abs().max()).item())
"""


@pytest.mark.slow
@pytest.mark.parametrize("isa_cap", [False, True])
def test_compiled_model_matches_eager_or_is_not_compiled(isa_cap):
    """The compiled model is checked against eager on the example: with oneDNN capped below the CPU's ISA
    (``ONEDNN_MAX_CPU_ISA=AVX2`` on an AVX-512 machine) PyTorch 2.13's frozen convolutions gave NaN, and the compile
    must then be undone, not used."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, **({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"} if isa_cap else {})}
    r = subprocess.run([sys.executable, "-c", COMPILE_PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    compiled, err = r.stdout.split()
    assert float(err) < 1e-4, r.stderr
    if compiled == "False":
        assert "torch.compile changed the model's output" in r.stderr
