"""Precision follows the hardware: bf16 autocast only on CPUs whose kernels have it natively."""

import os
import subprocess
import sys

import pytest
import torch

from vidlab.engine.precision import autocast_context, cpu_has_native_bf16, resolve_precision

CPU = torch.device("cpu")

PROBE = """
import logging, torch
logging.basicConfig(level=logging.WARNING)
from vidlab.engine.precision import cpu_has_native_bf16, resolve_precision
print("native", cpu_has_native_bf16(), torch.backends.cpu.get_cpu_capability())
print("auto", resolve_precision("auto", torch.device("cpu")))
print("bf16", resolve_precision("bf16", torch.device("cpu")))
resolve_precision("bf16", torch.device("cpu"))
"""


def test_auto_is_bf16_exactly_where_native():
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "none")
    assert resolve_precision("none", CPU) == "none"
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", CPU)


def test_training_and_inference_auto_need_bf16_to_be_faster():
    """What `vidlab train` and `vidlab test` run with amp auto: bf16 only where native and faster than fp32 here (an
    Intel Xeon with AVX512-BF16 but no AMX runs bf16 slower); explicit choices pass through."""
    from vidlab.engine.precision import cpu_bf16_pays, resolve_fast_precision

    assert resolve_fast_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() and cpu_bf16_pays() else "none")
    assert resolve_fast_precision("none", CPU) == "none"
    assert resolve_fast_precision("bf16", CPU) == "bf16"


def test_avx2_kernels_mean_fp32_and_an_explicit_bf16_warns_once():
    """With PyTorch capped to AVX2 kernels (as on an AVX2-only CPU) auto picks fp32; bf16 is honoured with one
    warning."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines["native"].startswith("False")
    assert lines["auto"] == "none" and lines["bf16"] == "bf16"
    assert r.stderr.count("has no native bf16") == 1


def test_autocast_context():
    with autocast_context("bf16", CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast_context("none", CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def _weight_grad(conv, x, g, bf16: bool):
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = conv(x)
    out.float().backward(g)
    return conv.weight.grad.clone()


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 is emulated on this CPU (auto trains in fp32)")
@pytest.mark.parametrize("channels_last", [False, True])
def test_short_clip_conv3d_weight_gradient_is_right_under_bf16(channels_last):
    """oneDNN's bf16 weight gradient of a Conv3d whose kernel is longer than the clip (3x1x1 on T = 2, as in
    R(2+1)D-18's layer4) is NaN or wildly off; the guard computes that convolution in fp32."""
    from torch import nn

    from vidlab.engine.precision import guard_short_clip_convs

    torch.manual_seed(0)
    conv = nn.Conv3d(256, 256, (3, 1, 1), padding=(1, 0, 0), bias=False)
    x = torch.randn(8, 256, 2, 4, 4)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    g = torch.randn(8, 256, 2, 4, 4)
    ref = _weight_grad(conv, x, g, bf16=False)
    assert guard_short_clip_convs(nn.Sequential(conv, nn.Conv3d(4, 4, 1))) == 1  # only temporal kernels
    guarded = _weight_grad(conv, x, g, bf16=True)
    assert (guarded - ref).abs().max() <= 1e-5 * ref.abs().max()  # computed in fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # clips as long as the kernel: bf16 as before
        assert conv(torch.randn(1, 256, 3, 4, 4, requires_grad=True)).dtype == torch.bfloat16
        assert conv(x).dtype == torch.float32
