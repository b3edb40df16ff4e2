"""Inference that fits the hardware: BatchNorm folded into convolutions, the memory format that pays, the
precision the processor computes natively, optionally ``torch.compile`` (inductor) or ONNX Runtime.

:func:`inference_model` (also ``vidlab.inference_model``) wraps a model for inference; :func:`prepare_model`
applies the same changes in place, for the engine's own evaluation loops (``vidlab test|predict|extract``), where
the precision is the evaluation loop's autocast.

BatchNorm folding finds each BatchNorm whose input is always the output of one convolution by running the model
once on an example clip with forward hooks (so it works for every family without tracing its code), rewrites the
convolution's weight and bias, replaces the BatchNorm by ``nn.Identity`` and checks the folded model's output
against the original one on that clip; if they differ (a convolution's output also used elsewhere), nothing is
folded.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from vidlab.engine.precision import autocast_context, resolve_fast_precision
from vidlab.errors import InputError
from vidlab.models.base import set_conv_memory_format

logger = logging.getLogger("vidlab")

__all__ = ["InferenceModel", "fold_batchnorm", "inference_model", "prepare_model", "PRECISION_NAMES"]

#: ``--precision`` names -> the engine's autocast names (``vidlab.engine.precision``)
PRECISION_NAMES = {"auto": "auto", "fp32": "none", "none": "none", "bf16": "bf16", "fp16": "fp16"}
BACKENDS = ("torch", "onnxruntime")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
FOLD_TOLERANCE = 1e-4  # relative (to the largest output) difference a fold may make in fp32

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for item in out:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


@dataclass
class Call:
    """The inputs of one model call, positional and keyword (a detector's ``rois``)."""

    args: tuple
    kwargs: dict


def _call_of(example) -> Call:
    if isinstance(example, Call):
        return example
    return Call(example if isinstance(example, tuple) else (example,), {})


def _run(model: nn.Module, example) -> torch.Tensor:
    """The first output tensor of ``model`` on ``example`` (one input, a tuple of positional inputs or a
    :class:`Call`), in fp32 (autocast off)."""
    call = _call_of(example)
    device = _first_tensor(list(call.args)).device.type
    with torch.inference_mode(), torch.autocast(device, enabled=False):
        return _first_tensor(model(*call.args, **call.kwargs)).float()


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """``(conv name, bn name)`` pairs where, in one forward pass on ``example``, the BatchNorm's every input was the
    output of that convolution, and that convolution's every output went into that BatchNorm."""
    names = {m: n for n, m in model.named_modules()}
    last: dict[str, object] = {}  # the newest convolution output, and which convolution made it
    conv_calls: dict[str, int] = {}
    sources: dict[str, list] = {}  # bn name -> the convolution (or None) each of its inputs came from

    def after_conv(mod, _inputs, out):
        name = names[mod]
        conv_calls[name] = conv_calls.get(name, 0) + 1
        last.update(conv=name, out=out)

    def before_bn(mod, inputs):
        x = inputs[0] if inputs else None
        src = last.get("conv") if x is not None and x is last.get("out") else None
        sources.setdefault(names[mod], []).append(src)

    handles = []
    for mod in names:
        if isinstance(mod, _CONVS):
            handles.append(mod.register_forward_hook(after_conv))
        elif isinstance(mod, _NORMS):
            handles.append(mod.register_forward_pre_hook(before_bn))
    try:
        _run(model, example)
    finally:
        for h in handles:
            h.remove()
        last.clear()
    pairs = []
    used: set[str] = set()
    for bn, srcs in sources.items():
        conv = srcs[0]
        if conv is None or any(s != conv for s in srcs) or conv in used or conv_calls.get(conv) != len(srcs):
            continue
        used.add(conv)
        pairs.append((conv, bn))
    return pairs


def _fold_pair(conv: nn.Module, bn: nn.Module) -> None:
    """Rewrite ``conv`` so that it computes ``bn(conv(x))`` (BatchNorm in eval mode, running statistics)."""
    with torch.no_grad():
        w = conv.weight
        scale = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        shift = (bias - bn.running_mean.double()) * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        shape = (-1,) + (1,) * (w.dim() - 1)
        folded = (w.double() * scale.reshape(shape)).to(w.dtype)
        conv.weight = nn.Parameter(folded.contiguous(memory_format=_format_of(w)), requires_grad=False)
        conv.bias = nn.Parameter(shift.to(w.dtype), requires_grad=False)


def _format_of(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous():
        return torch.channels_last_3d
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def fold_batchnorm(model: nn.Module, example: torch.Tensor, tolerance: float = FOLD_TOLERANCE) -> int:
    """Fold every eval-mode BatchNorm that directly follows a convolution into it, in place; returns the number
    folded (0 when the check on ``example`` fails, with the model left unchanged).

    ``example`` is one input batch of the model (its shape only matters; a random clip is fine).
    """
    if model.training:
        raise InputError("fold_batchnorm needs a model in eval mode (call model.eval() first)")
    pairs = _conv_bn_pairs(model, example)
    if not pairs:
        return 0
    reference = _run(model, example)
    backup = {}
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        backup[conv_name] = copy.deepcopy(conv)
        backup[bn_name] = bn
        _fold_pair(conv, bn)
        _set_module(model, bn_name, nn.Identity())
    folded = _run(model, example)
    err = (folded - reference).abs().max().item() / max(reference.abs().max().item(), 1e-12)
    if not err <= tolerance:
        for name, mod in backup.items():
            _set_module(model, name, mod)
        logger.warning("BatchNorm folding changed the output by %.2e (relative); left unfolded", err)
        return 0
    return len(pairs)


def _conv_heavy(model: nn.Module) -> bool:
    """Convolutional networks (several convolutions with a spatial or temporal kernel) gain from channels-last;
    transformers, whose only convolution is the patch embedding, do not."""
    kernels = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)) and m.weight[0, 0].numel() > 1]
    return len(kernels) >= 3


def _input_format(x: torch.Tensor) -> torch.Tensor:
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
    return x.contiguous(memory_format=fmt) if fmt is not None else x


@dataclass
class Prepared:
    """What :func:`prepare_model` did."""

    folded: int
    channels_last: bool
    compiled: bool
    backend: str

    def describe(self) -> str:
        parts = [f"{self.folded} BatchNorm folded", "channels-last" if self.channels_last else "contiguous"]
        if self.compiled:
            parts.append("torch.compile")
        if self.backend != "torch":
            parts.append(self.backend)
        return ", ".join(parts)


def example_input(model: nn.Module, shape=None, batch: int = 1) -> torch.Tensor:
    """A seeded random clip batch of ``shape`` ``(C, T, H, W)`` (default: the registered input of the zoo model that
    ``model.meta`` names, as :func:`vidlab.load_model` sets it)."""
    if shape is None:
        from vidlab.models import get_model_info

        name = (getattr(model, "meta", None) or {}).get("model")
        if name is None:
            raise InputError("give an example input: the model does not say which zoo model it is (model.meta)")
        shape = get_model_info(name).input_shape
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.randn((batch, *shape), generator=torch.Generator().manual_seed(0)).to(device)


def prepare_model(
    model: nn.Module,
    example: torch.Tensor,
    *,
    fold_bn: bool = True,
    memory_format: str = "auto",
    compile: bool = False,
    backend: str = "torch",
) -> Prepared:
    """Make ``model`` (eval mode) fast for inference, in place: fold BatchNorms (:func:`fold_batchnorm`), store
    weights in the memory format that pays (``auto``: channels-last for convolutional networks) with a pre-hook
    converting inputs to it, compile with inductor (``compile``), or run through ONNX Runtime (``backend``), by
    replacing ``model.forward``. Precision is left to the caller's autocast."""
    if memory_format not in MEMORY_FORMATS:
        raise InputError(f"memory_format must be one of {list(MEMORY_FORMATS)}, got {memory_format!r}")
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    model.eval()
    folded = fold_batchnorm(model, example) if fold_bn else 0
    if backend == "onnxruntime":
        if isinstance(example, (tuple, Call)):
            raise InputError("the onnxruntime backend runs models of one clip input; this one takes more inputs")
        _use_onnxruntime(model, example)
        return Prepared(folded, False, False, backend)
    channels_last = memory_format == "channels_last" or (memory_format == "auto" and _conv_heavy(model))
    set_conv_memory_format(model, channels_last)
    if channels_last:
        model.register_forward_pre_hook(lambda _m, args: (_input_format(args[0]), *args[1:]) if args else args)
    compiled = _compile(model, example) if compile else False
    return Prepared(folded, channels_last, compiled, backend)


def _compile(model: nn.Module, example) -> bool:
    """``torch.compile`` with inductor; on CPU with ``freezing`` (weights become constants: conv weight pre-packing
    and conv + activation fusion). The compiled model runs once on ``example`` (this compiles it) and is checked
    against the eager model in fp32: where it differs by more than 1e-4 relative, or is not finite, the compile is
    undone with a warning and ``False`` returned.

    Freezing is left off where ATen's kernels are capped below the CPU's ISA (``ATEN_CPU_CAPABILITY=avx2`` on an
    AVX-512 machine, the way to emulate an AVX2-only CPU): there PyTorch 2.13's frozen convolutions returned garbage
    (TSM-R50: errors of 1e13 and more, NaN for SlowOnly / SlowFast), while unfrozen compiles, and frozen ones under
    ``ONEDNN_MAX_CPU_ISA=AVX2`` alone, were right."""
    import torch._inductor.config as inductor_config

    param = next(model.parameters(), None)
    if param is None or param.device.type == "cpu":
        capped = torch.backends.cpu.get_cpu_capability() == "AVX2" and torch.cpu._is_avx512_supported()
        inductor_config.freezing = not capped
    for p in model.parameters():
        p.requires_grad_(False)
    reference = _run(model, example)
    model.compile(backend="inductor", dynamic=False)
    out = _run(model, example)
    err = ((out - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()
    if not math.isfinite(err) or err > FOLD_TOLERANCE:
        model._compiled_call_impl = None
        logger.warning(
            "torch.compile changed the model's output on the example clip (max relative difference %.3g): running it "
            "uncompiled", err,
        )  # fmt: skip
        return False
    return True


def _use_onnxruntime(model: nn.Module, example: torch.Tensor) -> None:
    import tempfile

    from vidlab.engine.export import OnnxRuntimeModel, export_onnx

    path = tempfile.NamedTemporaryFile(prefix="vidlab_", suffix=".onnx", delete=False).name
    export_onnx(model, example, path, dynamic_batch=True)
    runner = OnnxRuntimeModel(path, threads=torch.get_num_threads())
    model.forward = lambda x, *args, **kwargs: runner(x.float())


def prepare_on_first_call(model: nn.Module, cfg_test, describe=None) -> None:
    """Run :func:`prepare_model` with the options of a ``test:`` config section when ``model`` is first called,
    on that call's inputs (so the example has the evaluation's own shape); ``describe`` gets the outcome."""

    def hook(mod, args, kwargs):
        handle.remove()
        example = Call(tuple(args), dict(kwargs)) if kwargs or len(args) > 1 else args[0]
        prepared = prepare_model(
            mod,
            example,
            fold_bn=cfg_test.fold_bn,
            memory_format=cfg_test.memory_format,
            compile=cfg_test.compile,
            backend=cfg_test.backend,
        )
        if describe is not None:
            describe(prepared)
        if prepared.channels_last and isinstance(args[0], torch.Tensor):
            return (_input_format(args[0]), *args[1:]), kwargs
        return None

    if cfg_test.fold_bn or cfg_test.compile or cfg_test.backend != "torch" or cfg_test.memory_format != "contiguous":
        handle = model.register_forward_pre_hook(hook, with_kwargs=True)


class InferenceModel(nn.Module):
    """A model prepared by :func:`prepare_model` that also applies its precision: ``(B, C, T, H, W)`` normalized
    clips in, float32 logits out. ``forward_views`` is the model's multi-view testing under the same precision."""

    def __init__(self, model: nn.Module, precision: str, prepared: Prepared, device: torch.device):
        super().__init__()
        self.model = model
        self.precision = precision  # the engine's name: none | bf16 | fp16
        self.prepared = prepared
        self.device = device

    @property
    def precision_name(self) -> str:
        return "fp32" if self.precision == "none" else self.precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast_context(self.precision, self.device):
            return _first_tensor(self.model(x)).float()

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        with torch.inference_mode(), autocast_context(self.precision, self.device):
            return self.model.forward_views(x, average_clips=average_clips).float()

    def describe(self) -> str:
        return f"{self.precision_name}, {self.prepared.describe()}"


def resolve_inference_precision(precision: str, device: torch.device, backend: str = "torch") -> str:
    """``auto | fp32 | bf16 | fp16`` -> the engine's ``none | bf16 | fp16`` on ``device``. ONNX Runtime runs the
    exported fp32 graph.

    ``auto`` on CPU: bf16 where it is native *and* a one-off timing shows bf16 matmuls beating fp32 ones
    (:func:`vidlab.engine.precision.cpu_bf16_pays`): some CPUs with AVX512-BF16 run bf16 slower than fp32."""
    if precision not in PRECISION_NAMES:
        raise InputError(f"precision must be one of auto, fp32, bf16, fp16; got {precision!r}")
    if backend == "onnxruntime":
        if precision not in ("auto", "fp32", "none"):
            raise InputError(f"the onnxruntime backend runs fp32 only; got precision {precision!r}")
        return "none"
    return resolve_fast_precision(PRECISION_NAMES[precision], device)


def inference_model(
    model: nn.Module,
    precision: str = "auto",
    compile: bool = False,
    backend: str = "torch",
    *,
    example: torch.Tensor | None = None,
    memory_format: str = "auto",
    fold_bn: bool = True,
    copy_model: bool = True,
) -> InferenceModel:
    """A callable ready for inference: BatchNorm folded, memory format chosen, precision applied, optionally
    compiled (inductor) or run by ONNX Runtime.

    Args:
        model: a vidlab model (any ``nn.Module`` taking one clip batch).
        precision: ``auto`` (bf16 where the CPU or GPU computes it natively and, on CPU, faster than fp32: see
            :func:`resolve_inference_precision`), ``fp32``, ``bf16``, ``fp16`` (CUDA).
        compile: ``torch.compile`` with inductor (the first call compiles: seconds to minutes).
        backend: ``torch`` or ``onnxruntime`` (needs ``pip install vidlab[export]``; fp32, CPU).
        example: one input batch (its shape is what matters), used to find and check the BatchNorm folds and to
            export; default: a random clip of the shape the model's checkpoint or registry names.
        memory_format: ``auto`` (channels-last for convolutional networks), ``channels_last``, ``contiguous``.
        fold_bn: fold BatchNorm into the preceding convolutions.
        copy_model: work on a copy (default), leaving ``model`` as it was.
    """
    device = next(model.parameters()).device
    resolved = resolve_inference_precision(precision, device, backend)
    if example is None:
        example = example_input(model)
    if copy_model:
        meta = getattr(model, "meta", None)
        model = copy.deepcopy(model)
        if meta is not None:
            model.meta = meta
    prepared = prepare_model(
        model.eval(), example, fold_bn=fold_bn, memory_format=memory_format, compile=compile, backend=backend
    )
    return InferenceModel(model, resolved, prepared, device)
