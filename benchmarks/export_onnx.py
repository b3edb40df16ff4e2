"""ONNX export of full-size zoo models: which exporter `auto` keeps, the export time, the largest deviation of
onnxruntime from PyTorch eager, and onnxruntime's speed against eager (CPU, batch 1, the same thread count).

Random weights with random BatchNorm statistics (a trained model's numbers differ, its graph does not); the clip is
each model's registered input. Times are the median of ``--repeats`` forwards after one warm-up.

Usage:
    python benchmarks/export_onnx.py [--models tsm_r50 x3d_s ...] [--threads 2] [--repeats 3] [--exporter auto]
        [--out-dir work_dirs/export_bench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from vidlab.engine.export import OnnxRuntimeModel, export_onnx, max_rel_error
from vidlab.models import create_model, get_model_info

MODELS = [
    "tsm_r50",
    "slowfast_r50_4x16",
    "x3d_s",
    "i3d_r50",
    "r2plus1d_r34",
    "videomae_vit_b",
    "timesformer_divst",
    "mvit_v2_s",
]


def random_model(name: str) -> torch.nn.Module:
    """``name`` at random weights, with random BatchNorm statistics and scales (zero-initialised residual scales
    would make blocks the identity, and the comparison blind to them), in eval mode."""
    torch.manual_seed(0)
    model = create_model(name)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    return model.eval()


def median_time(fn, x: torch.Tensor, repeats: int) -> float:
    fn(x)  # warm-up: first-call allocations, onnxruntime's graph preparation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, args) -> dict:
    model = random_model(name)
    shape = get_model_info(name).input_shape
    example = torch.randn(1, *shape)
    path = Path(args.out_dir) / f"{name}.onnx"
    t0 = time.perf_counter()
    export_onnx(model, example, path, metadata={"model": name}, exporter=args.exporter)
    export_s = time.perf_counter() - t0
    runtime = OnnxRuntimeModel(path, threads=args.threads)
    errors = []
    for batch in (1, 2):
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            errors.append(max_rel_error(runtime(x), model(x)))
    with torch.no_grad():
        eager = median_time(model, example, args.repeats)
    ort = median_time(runtime, example, args.repeats)
    size = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))
    return {
        "model": name,
        "input": "x".join(map(str, shape)),
        "exporter": runtime.metadata["exporter"],
        "export_s": export_s,
        "mb": size / 2**20,
        "err1": errors[0],
        "err2": errors[1],
        "eager_ms": eager * 1e3,
        "ort_ms": ort * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads and onnxruntime's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exporter", default="auto", choices=["auto", "legacy", "dynamo"])
    ap.add_argument("--out-dir", default="work_dirs/export_bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} at the start")
    print(
        "| model | input (C, T, H, W) | exporter | export (s) | file (MB) | max rel. error, batch 1 / 2 "
        "| eager (ms) | onnxruntime (ms) | onnxruntime speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        r = bench(name, args)
        print(
            f"| {r['model']} | {r['input']} | {r['exporter']} | {r['export_s']:.1f} | {r['mb']:.0f} "
            f"| {r['err1']:.1e} / {r['err2']:.1e} | {r['eager_ms']:.0f} | {r['ort_ms']:.0f} "
            f"| {r['eager_ms'] / r['ort_ms']:.2f}x |",
            flush=True,
        )
        Path(args.out_dir, f"{name}.onnx").unlink()  # hundreds of MB each


if __name__ == "__main__":
    main()
