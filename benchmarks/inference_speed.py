"""Inference speed, vidlab vs MMAction2 1.2.0 on the same weights: batch 1, fp32 eager on both sides, then vidlab's
fast paths (:func:`vidlab.inference_model`: BatchNorm folded, channels-last where it pays; bf16 where native;
``torch.compile``; ONNX Runtime).

For each model, MMAction2's recognizer is built from its config, its weights overwritten by the deterministic
``fixture_fill`` values and converted into vidlab's model (as ``benchmarks/parity.py`` does). Each variant runs one
seeded random clip of the model's standard input; after one warm-up call per variant (the compile happens there,
its time is reported apart), the variants run round-robin ``--repeats`` times, so a busy moment of the machine
hits all of them alike, and the median is reported. Errors are relative to the largest logit of vidlab's fp32
eager output (``max|a - b| / max|b|``).

With ``--media DIR``, every variant also runs on real decoded clips: from each video in DIR, ``--clips`` clips of
the model's length spread over the video (PyAV, short side resized to the crop size, centre crop, ImageNet
normalization), and the table gives each variant's top-1 agreement with vidlab's fp32 eager output and the mean
absolute difference of the softmax probabilities.

Runs in the reference environment, from the repository root::

    PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/mm/bin/python benchmarks/inference_speed.py \\
        [--models tsm_r50 ...] [--threads 2] [--repeats 5] [--compile] [--onnxruntime] [--media DIR] [--json OUT]

Prints a markdown table, then one ``RESULT`` line per model with the speed-ups over MMAction2.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import statistics
import time

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import torch
from fixture_fill import fill_state_dict
from mmaction2_ref import MODELS_2D, build, forward
from mmengine.logging import MMLogger

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


def build_pair(name: str):
    """MMAction2's recognizer and vidlab's model with the same weights, and the standard input."""
    shape = get_model_info(name).input_shape
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(1234))
    ref = build(name, num_segments=shape[1])
    sd = ref.state_dict()
    filled = fill_state_dict(sd)
    filled.update({k: sd[k] for k in FIXED_BUFFERS if k in sd})
    ref.load_state_dict(filled, strict=True)
    kwargs = {"num_segments": shape[1]} if name.split("_", 1)[0] in ("tin", "tanet", "trn") else {}
    model = create_model(name, num_classes=ref.cls_head.num_classes, **kwargs).eval()
    load_converted(model, convert_state_dict(filled, source="mmaction2", model=name), "mmaction2", strict=True)
    return ref, model, x


def variants(name: str, ref, model, x, args) -> dict:
    """Label -> a callable of one input batch returning logits."""
    is_2d = name in MODELS_2D
    eager = {"MMAction2 fp32": lambda c: forward(ref, c, is_2d)[0], "vidlab fp32 eager": model}
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


def bench_model(name: str, args) -> dict:
    ref, model, x = build_pair(name)
    runs = variants(name, ref, model, x, args)
    times: dict[str, list[float]] = {k: [] for k in runs}
    first: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for label, fn in runs.items():
            t0 = time.perf_counter()
            outputs[label] = fn(x).float()
            first[label] = time.perf_counter() - t0
        for _ in range(args.repeats):
            for label, fn in runs.items():
                t0 = time.perf_counter()
                fn(x)
                times[label].append(time.perf_counter() - t0)
    base = outputs["vidlab fp32 eager"]
    scale = base.abs().max().item()
    rows = {}
    for label in runs:
        rows[label] = {
            "ms": 1000 * statistics.median(times[label]),
            "first_call_s": first[label],
            "rel_err": (outputs[label] - base).abs().max().item() / scale,
            "top1_same": bool((outputs[label].argmax(-1) == base.argmax(-1)).all()),
        }
    if args.media:
        for label, found in agreement(runs, real_clips(args.media, x.shape[1:], args.clips)).items():
            rows[label].update(found)
    del ref, model, runs
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
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    print(
        f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels, native bf16: "
        f"{cpu_has_native_bf16()}, {args.threads} threads, {platform.processor() or platform.machine()}",
        flush=True,
    )
    real = " top-1 agreement on real clips | mean abs prob diff |" if args.media else ""
    print(f"| model | variant | ms / clip | vs MMAction2 | rel err | same top-1 | first call s |{real}")
    print("|---" * (7 + 2 * bool(args.media)) + "|")
    results = []
    for name in args.models:
        r = bench_model(name, args)
        results.append(r)
        mm = r["variants"]["MMAction2 fp32"]["ms"]
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
        print(f"RESULT model={name} mmaction2_ms={mm:.0f} {ratios}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
