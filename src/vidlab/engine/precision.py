"""Precision that follows the hardware: bf16 autocast only where the CPU or GPU computes it natively.

On a CPU without AVX512-BF16 or AMX, PyTorch emulates bf16 and a bf16 matmul runs tens of times slower than fp32
(about 60x on AVX2-only CPUs). ``auto`` therefore picks bf16 on CPUs whose kernels have native bf16, and fp32
elsewhere; on CUDA it picks bf16 where the device supports it, else fp16 (with a gradient scaler in training).
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch
from torch import nn

from vidlab.errors import InputError

logger = logging.getLogger("vidlab")

PRECISIONS = ("auto", "none", "bf16", "fp16")

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which oneDNN has no bf16 instructions
_ONEDNN_NO_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
_warned: set[str] = set()


def cpu_has_native_bf16() -> bool:
    """True when PyTorch's CPU kernels run bf16 natively: the CPU has AVX512-BF16 or AMX, ATen dispatches to its
    AVX-512 kernels (``ATEN_CPU_CAPABILITY`` may cap it) and oneDNN is not capped below bf16
    (``ONEDNN_MAX_CPU_ISA``)."""
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if isa in _ONEDNN_NO_BF16:
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(amp: str, device: torch.device) -> str:
    """The autocast precision (``none`` | ``bf16`` | ``fp16``) for a requested ``amp`` on ``device``.

    ``auto``: bf16 where native (see :func:`cpu_has_native_bf16`; CUDA: ``torch.cuda.is_bf16_supported()``),
    fp16 on CUDA devices without bf16, fp32 (``none``) otherwise. An explicit ``bf16`` on a CPU that emulates it
    is honoured but warns once; ``fp16`` needs CUDA.
    """
    if amp not in PRECISIONS:
        raise InputError(f"precision must be one of {list(PRECISIONS)}, got {amp!r}")
    if device.type == "cuda":
        if amp == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return amp
    if amp == "fp16":
        raise InputError("fp16 autocast needs CUDA; use bf16 (on CPUs with native bf16) or none on CPU")
    native = cpu_has_native_bf16()
    if amp == "auto":
        return "bf16" if native else "none"
    if amp == "bf16" and not native and "bf16" not in _warned:
        _warned.add("bf16")
        logger.warning(
            "bf16 was requested but this CPU (%s kernels) has no native bf16: PyTorch emulates it, often tens of "
            "times slower than fp32. Use amp=auto or none for fp32.",
            torch.backends.cpu.get_cpu_capability(),
        )
    return amp


def resolve_fast_precision(amp: str, device: torch.device) -> str:
    """:func:`resolve_precision`, except that ``auto`` on a CPU also needs bf16 to be faster than fp32 there
    (:func:`cpu_bf16_pays`), for training as for inference: native bf16 is not always the faster one."""
    resolved = resolve_precision(amp, device)
    if amp == "auto" and resolved == "bf16" and device.type == "cpu" and not cpu_bf16_pays():
        return "none"
    return resolved


_BF16_PAYS: dict[str, bool] = {}


def cpu_bf16_pays() -> bool:
    """Whether bf16 matmuls beat fp32 ones on this CPU: native bf16 (:func:`cpu_has_native_bf16`) and a one-off
    timing, cached per kernel capability and thread count (about 0.2 s).

    The CPU flags do not tell: on an AMD EPYC with AVX512-BF16, bf16 autocast halved a ViT-B forward and sped up 3D
    CNN training 2.5x, while on an Intel Xeon with AVX512-BF16 (and AVX512-FP16, no AMX) a bf16 matmul of a ViT-B
    MLP's shape took 1.6-2.3x its fp32 time, and whole models (all but X3D-S) were 1.1-1.6x slower in bf16
    (BENCHMARKS.md, "Inference speed"). The probe times a ``(512 x 768) @ (768 x 3072)`` addmm in both precisions
    (best of 5 after a warm-up) and calls bf16 worth it when it takes under 0.9x the fp32 time."""
    key = f"{torch.backends.cpu.get_cpu_capability()}/{torch.get_num_threads()}"
    if key not in _BF16_PAYS:
        pays = cpu_has_native_bf16() and _addmm_seconds(torch.bfloat16) < 0.9 * _addmm_seconds(torch.float32)
        _BF16_PAYS[key] = pays
        logger.debug("bf16 matmuls %s fp32 ones on this CPU", "beat" if pays else "do not beat")
    return _BF16_PAYS[key]


def _addmm_seconds(dtype: torch.dtype) -> float:
    import time

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(512, 768, generator=g).to(dtype), torch.randn(768, 3072, generator=g).to(dtype)
    bias = torch.zeros(3072, dtype=dtype)
    best = float("inf")
    with torch.no_grad():
        for i in range(6):
            t0 = time.perf_counter()
            torch.addmm(bias, a, b)
            if i:  # the first call warms up
                best = min(best, time.perf_counter() - t0)
    return best


def autocast_context(precision: str, device: torch.device):
    """``torch.autocast`` for a resolved ``precision`` (``none`` | ``bf16`` | ``fp16``)."""
    if precision == "none":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise InputError("fp16 autocast needs CUDA; use bf16 on CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def describe(precision: str, device: torch.device) -> str:
    """A short log label, e.g. ``bf16 (CPU AVX512 kernels)`` or ``fp16 (cuda)``."""
    name = "fp32" if precision == "none" else precision
    if device.type == "cpu":
        return f"{name} (CPU {torch.backends.cpu.get_cpu_capability()} kernels)"
    return f"{name} ({device.type})"


class ShortClipSafeConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose forward runs in fp32 under CPU bf16 autocast, with gradients on, when the input is
    shorter in time than the kernel (``T < kernel_t``).

    There oneDNN's bf16 weight gradient is wrong (PyTorch 2.13, AVX512-BF16 CPU): NaN for contiguous inputs, values
    up to 1e34 times too large for channels-last ones, while the forward and the input gradient are right and T >=
    kernel_t, 2D convolutions and fp32 are unaffected. R(2+1)D-18 on 16-frame clips reaches T = 2 in ``layer4``,
    under its 3x1x1 temporal convolutions, which is why its bf16 training diverged (BENCHMARKS.md, "3D networks from
    scratch"); ``tests/engine/test_precision.py`` pins the bug and the guard. The fp32 path costs little: the short
    clips are in the last stages, whose maps are small."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.shape[-3] < self.kernel_size[0]
            and torch.is_grad_enabled()
            and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16
        ):
            with torch.autocast("cpu", enabled=False):
                return self._conv_forward(x.float(), self.weight, self.bias)
        return super().forward(x)


def guard_short_clip_convs(model: nn.Module) -> int:
    """Make every ``nn.Conv3d`` of ``model`` with a temporal kernel above 1 a :class:`ShortClipSafeConv3d`, in
    place (same parameters, state dict and ``isinstance``); returns how many. The engine does this for bf16
    training on CPU."""
    count = 0
    for m in model.modules():
        if type(m) is nn.Conv3d and m.kernel_size[0] > 1:
            m.__class__ = ShortClipSafeConv3d
            count += 1
    return count
