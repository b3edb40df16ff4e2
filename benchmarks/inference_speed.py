"""Inference speed, vidlab vs MMAction2 1.2.0 on the same weights: batch 1, fp32 eager on both sides, then vidlab's
fast paths (:func:`vidlab.inference_model`: BatchNorm folded, channels-last where it pays; bf16 where native;
``torch.compile``; ONNX Runtime).

The references run as their users run them, each in a child process of its own (``spawn``: glibc's default
``malloc``); the parent runs vidlab's variants with :func:`vidlab.engine.allocator.reuse_freed_memory`, as the
``vidlab`` commands do (``--system-malloc`` leaves glibc's default there too), and times each reference by the
forward inside its process (the transfer of clip and logits is not counted). For each model, MMAction2's recognizer
is built from its config, its weights overwritten by the deterministic
``fixture_fill`` values and converted into vidlab's model (as ``benchmarks/parity.py`` does). Each variant runs one
seeded random clip of the model's standard input; after one warm-up call per variant (the compile happens there,
its time is reported apart), the variants run round-robin ``--repeats`` times, every other round in reverse order
(so a busy moment of the machine hits all of them alike and no variant always runs first), and the median is
reported. VideoMAE-B and TimeSformer also run HuggingFace transformers' model (its own ``fixture_fill`` weights,
default attention; ``--no-hf`` skips it), and their ratios are over the faster of MMAction2 / HF fp32. Errors are
relative to the largest logit of vidlab's fp32 eager output (``max|a - b| / max|b|``); HF's row gives its parity
with vidlab's model converted from HF's weights instead.

With ``--media DIR``, every variant also runs on real decoded clips: from each video in DIR, ``--clips`` clips of
the model's length spread over the video (PyAV, short side resized to the crop size, centre crop, ImageNet
normalization), and the table gives each variant's top-1 agreement with vidlab's fp32 eager output and the mean
absolute difference of the softmax probabilities.

Runs in the MMAction2 reference environment with ``transformers`` added (``pip install transformers==5.24.0``, the
version of the PyTorchVideo environment), from the repository root::

    NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/mm/bin/python benchmarks/inference_speed.py \\
        [--models tsm_r50 ...] [--threads 2] [--repeats 5] [--compile] [--onnxruntime] [--media DIR] [--json OUT]

Prints a markdown table, then one ``RESULT`` line per model with the speed-ups over MMAction2.
"""

# ruff: noqa: E402  (MMAction2's optional multimodal import is switched off between imports, see below)
from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import platform
import statistics
import time

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import mmaction.utils.dependency as mm_dependency

# with transformers installed, MMAction2 imports its VindLU models, which need timm; none of them is used here
mm_dependency.WITH_MULTIMODAL = False

# isort: split
import torch
from fixture_fill import fill_state_dict
from mmaction2_ref import MODELS_2D, build, forward
from mmengine.logging import MMLogger

from vidlab.engine.allocator import reuse_freed_memory
from vidlab.engine.fast import inference_model
from vidlab.engine.precision import cpu_has_native_bf16
from vidlab.models import create_model, get_model_info
from vidlab.models.convert import convert_state_dict, load_converted

DEFAULT_MODELS = [
    "tsm_r50",
    "slowonly_r50_8x8",
    "slowfast_r50_8x8",
    "x3d_s",
    "i3d_r50",
    "r2plus1d_r34",
    "videomae_vit_b",
    "timesformer_divst",
]
FIXED_BUFFERS = ("backbone.pos_embed",)
#: models timed against HuggingFace transformers too (transformers installed in the MMAction2 environment)
HF_MODELS = ("videomae_vit_b", "timesformer_divst")


def build_pair(name: str, reference_only: bool = False):
    """MMAction2's recognizer and vidlab's model with the same weights, and the standard input (or, with
    ``reference_only``, the recognizer alone)."""
    shape = get_model_info(name).input_shape
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(1234))
    torch.manual_seed(0)  # tables kept at their init (FIXED_BUFFERS) come out the same in every process
    ref = build(name, num_segments=shape[1])
    sd = ref.state_dict()
    filled = fill_state_dict(sd)
    filled.update({k: sd[k] for k in FIXED_BUFFERS if k in sd})
    ref.load_state_dict(filled, strict=True)
    if reference_only:
        return ref.eval()
    kwargs = {"num_segments": shape[1]} if name.split("_", 1)[0] in ("tin", "tanet", "trn") else {}
    model = create_model(name, num_classes=ref.cls_head.num_classes, **kwargs).eval()
    load_converted(model, convert_state_dict(filled, source="mmaction2", model=name), "mmaction2", strict=True)
    return ref, model, x


def hf_variant(name: str, x: torch.Tensor):
    """For the transformers with a HuggingFace counterpart: HF's model (its own ``fixture_fill`` weights, default
    attention) as a callable of vidlab's ``(B, C, T, H, W)`` clip, and its relative error against vidlab's model
    converted from the same HF weights (a parity check; the timed vidlab variants carry MMAction2's weights)."""
    from transformer_speed import hf_model

    from vidlab.models.convert import builder_kwargs

    hf, _ = hf_model(name)
    filled = fill_state_dict(hf.state_dict())
    hf.load_state_dict(filled, strict=True)
    hf.eval()
    converted = convert_state_dict(filled, source="hf")
    twin = create_model(name, num_classes=400, **builder_kwargs("hf", name, converted)).eval()
    twin.load_state_dict(converted, strict=True)

    def run(c: torch.Tensor) -> torch.Tensor:
        return hf(pixel_values=c.transpose(1, 2)).logits  # HF takes (B, T, C, H, W)

    with torch.no_grad():
        a, b = run(x), twin(x)
    return run, ((a - b).abs().max() / b.abs().max()).item()


def _serve(conn, kind: str, name: str, threads: int) -> None:
    """A reference model in its own process (``spawn``: a fresh interpreter with glibc's default ``malloc``, as a
    user of that library runs it), answering ``(clip, bf16)`` with ``(logits, seconds of the forward)``."""
    torch.set_num_threads(threads)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    x = torch.randn((1, *get_model_info(name).input_shape), generator=torch.Generator().manual_seed(1234))
    if kind == "hf":
        fn, parity = hf_variant(name, x)
    else:
        ref = build_pair(name, reference_only=True)
        fn, parity = (lambda c: forward(ref, c, name in MODELS_2D)[0]), None
    conn.send(parity)
    with torch.no_grad():
        while (msg := conn.recv()) is not None:
            clip, bf16 = msg
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                t0 = time.perf_counter()
                out = fn(clip)
                seconds = time.perf_counter() - t0
            conn.send((out.float(), seconds))


class Remote:
    """A callable running a reference model in a child process (:func:`_serve`); ``last_seconds`` is the time of
    the last forward there, without the transfer."""

    def __init__(self, kind: str, name: str, threads: int, bf16: bool = False, shared: Remote | None = None):
        self.bf16 = bf16
        if shared is not None:  # the same process, another precision
            self.conn, self.proc, self.parity = shared.conn, None, shared.parity
            return
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, kind, name, threads), daemon=True)
        self.proc.start()
        self.parity = self.conn.recv()
        self.last_seconds = 0.0

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        self.conn.send((clip, self.bf16))
        out, self.last_seconds = self.conn.recv()
        return out

    def close(self) -> None:
        if self.proc is not None:
            self.conn.send(None)
            self.proc.join(60)


def variants(name: str, model, x, args) -> dict:
    """Label -> a callable of one input batch returning logits (the references in child processes)."""
    eager = {"MMAction2 fp32": Remote("mmaction2", name, args.threads), "vidlab fp32 eager": model}
    if name in HF_MODELS and not args.no_hf:
        eager["HF fp32"] = hf = Remote("hf", name, args.threads)
        args.hf_parity[name] = hf.parity
        if cpu_has_native_bf16() and not args.eager_only:
            eager["HF bf16"] = Remote("hf", name, args.threads, bf16=True, shared=hf)
    if args.eager_only:
        return eager
    fast = {"vidlab fp32": inference_model(model, "fp32", example=x)}
    if cpu_has_native_bf16():
        fast["vidlab bf16"] = inference_model(model, "bf16", example=x)
    if args.compile:
        fast["vidlab fp32 compiled"] = inference_model(model, "fp32", compile=True, example=x)
        if cpu_has_native_bf16() and not args.no_bf16_compile:
            fast["vidlab bf16 compiled"] = inference_model(model, "bf16", compile=True, example=x)
    if args.onnxruntime:
        fast["vidlab onnxruntime"] = inference_model(model, "fp32", backend="onnxruntime", example=x)
    return {**eager, **fast}


def _bf16(fn, c: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn(c).float()


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1, 1)


def real_clips(media: str, shape, per_video: int) -> torch.Tensor:
    """``(N, C, T, H, W)`` normalized clips decoded from the videos in ``media`` (see the module docstring)."""
    from pathlib import Path

    import numpy as np

    from vidlab.data.decode import VideoReader

    _, t, h, w = shape
    clips = []
    for path in sorted(Path(media).glob("*")):
        if path.suffix.lower() not in (".mp4", ".avi", ".mkv", ".webm", ".mov"):
            continue
        with VideoReader(path, short_side=h) as reader:
            starts = np.linspace(0, max(reader.num_frames - t, 0), per_video).round().astype(int)
            for s in starts:
                idx = np.minimum(np.arange(s, s + t), reader.num_frames - 1)
                frames = torch.from_numpy(reader.read(idx)).permute(3, 0, 1, 2).float()  # (C, T, H', W')
                top, left = (frames.shape[2] - h) // 2, (frames.shape[3] - w) // 2
                clips.append((frames[:, :, top : top + h, left : left + w] - MEAN) / STD)
    return torch.stack(clips)


def agreement(runs: dict, clips: torch.Tensor) -> dict:
    """Per variant: top-1 agreement with vidlab fp32 eager on ``clips`` (one at a time) and the mean absolute
    probability difference."""
    probs = {}
    with torch.no_grad():
        for label, fn in runs.items():
            probs[label] = torch.cat([fn(c[None]).float().softmax(-1) for c in clips])
    base = probs["vidlab fp32 eager"]
    return {
        label: {
            "top1_agreement": (p.argmax(-1) == base.argmax(-1)).float().mean().item(),
            "mean_abs_prob_diff": (p - base).abs().mean().item(),
            "clips": len(clips),
        }
        for label, p in probs.items()
    }


def _timed(fn, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    out = fn(x)
    return out, getattr(fn, "last_seconds", time.perf_counter() - t0)


def round_robin(runs: dict, x: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each of ``runs`` on ``x``, round-robin, every other round in reverse (so no
    variant always runs first and a busy moment of the machine hits all of them alike)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats):
        for label, fn in list(runs.items())[:: 1 if r % 2 == 0 else -1]:
            times[label].append(_timed(fn, x)[1])
    return times


def bench_model(name: str, args) -> dict:
    ref, model, x = build_pair(name)
    del ref  # the references run in child processes
    runs = variants(name, model, x, args)
    first: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for label, fn in runs.items():
            out, first[label] = _timed(fn, x)
            outputs[label] = out.float()
        times = round_robin(runs, x, args.repeats)
    base = outputs["vidlab fp32 eager"]
    scale = base.abs().max().item()
    rows = {}
    for label in runs:
        hf = label.startswith("HF")  # other weights: its error is the parity with vidlab on HF's weights
        rows[label] = {
            "ms": 1000 * statistics.median(times[label]),
            "first_call_s": first[label],
            "rel_err": args.hf_parity[name] if hf else (outputs[label] - base).abs().max().item() / scale,
            "top1_same": True if hf else bool((outputs[label].argmax(-1) == base.argmax(-1)).all()),
        }
    if args.media:
        timed = {k: v for k, v in runs.items() if not k.startswith("HF")}
        for label, found in agreement(timed, real_clips(args.media, x.shape[1:], args.clips)).items():
            rows[label].update(found)
    for fn in runs.values():
        if isinstance(fn, Remote):
            fn.close()
    del model, runs
    gc.collect()
    return {"model": name, "input": [1, *x.shape[1:]], "variants": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--eager-only", action="store_true", help="only the two fp32 eager variants")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (inductor, freezing) variants")
    ap.add_argument("--no-bf16-compile", action="store_true", help="with --compile: the fp32 variant only")
    ap.add_argument("--onnxruntime", action="store_true", help="also the ONNX Runtime backend (vidlab[export])")
    ap.add_argument("--media", default=None, help="folder of videos: also top-1 agreement on real decoded clips")
    ap.add_argument("--clips", type=int, default=4, help="clips per video of --media")
    ap.add_argument("--no-hf", action="store_true", help="skip HuggingFace transformers for the transformers")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--system-malloc", action="store_true",
        help="leave glibc's malloc as it is in vidlab's process too (default: vidlab.engine.allocator's setting, as "
        "the vidlab commands use it)",
    )  # fmt: skip
    args = ap.parse_args()
    args.hf_parity = {}
    torch.set_num_threads(args.threads)
    malloc = "glibc default" if args.system_malloc else f"reuse freed memory: {reuse_freed_memory()}"
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    print(
        f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels, native bf16: "
        f"{cpu_has_native_bf16()}, {args.threads} threads, {platform.processor() or platform.machine()}; vidlab's "
        f"malloc: {malloc}; the references run in child processes with glibc's default",
        flush=True,
    )
    real = " top-1 agreement on real clips | mean abs prob diff |" if args.media else ""
    print(f"| model | variant | ms / clip | vs reference | rel err | same top-1 | first call s |{real}")
    print("|---" * (7 + 2 * bool(args.media)) + "|")
    results = []
    for name in args.models:
        r = bench_model(name, args)
        results.append(r)
        # the anchor: MMAction2 fp32 eager, or the faster of MMAction2 / HF fp32 where HF runs the model too
        refs = [r["variants"][k]["ms"] for k in ("MMAction2 fp32", "HF fp32") if k in r["variants"]]
        mm = min(refs)
        for label, v in r["variants"].items():
            real = f" {v['top1_agreement']:.3f} | {v['mean_abs_prob_diff']:.1e} |" if "clips" in v else ""
            print(
                f"| {name} | {label} | {v['ms']:.0f} | {mm / v['ms']:.2f}x | {v['rel_err']:.1e} | "
                f"{'yes' if v['top1_same'] else 'NO'} | {v['first_call_s']:.1f} |{real}",
                flush=True,
            )
        ratios = " ".join(
            f"{label.replace('vidlab ', '').replace(' ', '_')}={mm / v['ms']:.2f}"
            for label, v in r["variants"].items()
            if label.startswith("vidlab")
        )
        anchor = "faster_reference_ms" if len(refs) > 1 else "mmaction2_ms"
        print(f"RESULT model={name} {anchor}={mm:.0f} {ratios}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
