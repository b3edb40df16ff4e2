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
