"""Data-pipeline throughput, vidlab vs MMAction2 1.2.0, side by side on the same videos in the same run.

Two training pipelines, single process, every sample decoded from its file (no frame or file cache):

- TSN 1x1x8 train: SampleFrames(1, 1, 8) -> decode -> Resize(-1, 256) -> RandomResizedCrop -> Resize(224, 224)
  -> Flip(0.5) -> uint8 (8, 224, 224, 3) per video;
- SlowFast 32x2x1 train: SampleFrames(32, 2, 1) -> decode -> the same transforms -> uint8 (32, 224, 224, 3).

vidlab resizes to short side 256 inside the decoder (one swscale pass); MMAction2 decodes full frames and
resizes with OpenCV. MMAction2 runs in its reference environment (``$REFS/mm``, built by
``shared/refs/setup.sh``) with both of its backends (decord, PyAV). Each repeat times one pass over all
videos per pipeline and toolbox, interleaved; the figures are medians over repeats.

Usage:
    python ../shared/bench/make_videos.py /tmp/benchvids 16
    python benchmarks/pipeline.py --videos /tmp/benchvids [--repeats 5]

Prints a table and, last, ``RESULT tsn_ratio=<x> slowfast_ratio=<y>``: vidlab videos/s over MMAction2-decord
videos/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidlab.data.datasets import VideoDataset, parse_video_list
from vidlab.data.sampling import SampleFrames
from vidlab.data.transforms import build_pipeline

PIPELINES = {
    "tsn": {"clip_len": 1, "frame_interval": 1, "num_clips": 8},
    "slowfast": {"clip_len": 32, "frame_interval": 2, "num_clips": 1},
}
TRANSFORMS = [
    {"type": "RandomResizedCrop"},
    {"type": "Resize", "scale": [224, 224], "keep_ratio": False},
    {"type": "Flip", "flip_ratio": 0.5},
]

MM_SCRIPT = r"""
import json, sys, time
import refshim  # noqa: F401  (must precede mmaction)
import numpy as np
from mmaction.utils import register_all_modules
from mmaction.registry import TRANSFORMS
from mmengine.dataset import Compose
register_all_modules()
cfg = json.loads(sys.argv[1])
out = {}
for name, s in cfg["pipelines"].items():
    for backend in ("decord", "pyav"):
        init = "DecordInit" if backend == "decord" else "PyAVInit"
        dec = "DecordDecode" if backend == "decord" else "PyAVDecode"
        fmt = "NCHW" if s["clip_len"] == 1 else "NCTHW"
        pipe = Compose([TRANSFORMS.build(t) for t in [
            dict(type=init), dict(type="SampleFrames", **s), dict(type=dec),
            dict(type="Resize", scale=(-1, 256)), dict(type="RandomResizedCrop"),
            dict(type="Resize", scale=(224, 224), keep_ratio=False), dict(type="Flip", flip_ratio=0.5),
            dict(type="FormatShape", input_format=fmt), dict(type="PackActionInputs")]])
        t0 = time.perf_counter()
        shapes = set()
        for path, label in cfg["videos"]:
            r = pipe(dict(filename=path, label=label, start_index=0, modality="RGB"))
            shapes.add(tuple(r["inputs"].shape))
        out[f"{name}/{backend}"] = {"seconds": time.perf_counter() - t0, "shapes": sorted(shapes)}
print("JSON" + json.dumps(out))
"""


def vidlab_pass(items, name: str, seed: int) -> dict:
    spec = PIPELINES[name]
    ds = VideoDataset(
        items,
        SampleFrames(**spec),
        build_pipeline(TRANSFORMS),
        num_classes=400,
        input_format="NCHW" if name == "tsn" else "NCTHW",
        num_segments=8,
        short_side=256,
        seed=seed,
    )
    t0 = time.perf_counter()
    shapes = {tuple(ds[i]["imgs"].shape) for i in range(len(ds))}
    return {"seconds": time.perf_counter() - t0, "shapes": sorted(shapes)}


def mm_pass(python: str, shim_dir: str, videos: list, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": shim_dir, "OMP_NUM_THREADS": str(threads)}
    arg = json.dumps({"pipelines": PIPELINES, "videos": videos})
    r = subprocess.run([python, "-c", MM_SCRIPT, arg], capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"MMAction2 pipeline failed:\n{r.stderr[-3000:]}")
    line = [x for x in r.stdout.splitlines() if x.startswith("JSON")][-1]
    return json.loads(line[4:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", required=True, help="folder with videos and list.txt (make_videos.py)")
    ap.add_argument("--refs", default=os.environ.get("REFS", "/tmp/refs"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of each side")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    root = Path(args.videos)
    items = parse_video_list(root / "list.txt", root)
    videos = [(it.path, it.label[0]) for it in items]
    python = str(Path(args.refs) / "mm" / "bin" / "python")
    shim_dir = str(Path(__file__).resolve().parents[2] / "shared" / "refs")
    if not Path(python).exists():
        sys.exit(f"reference environment not found: {python} (build it with shared/refs/setup.sh)")

    times: dict[str, list[float]] = {}
    shapes: dict[str, list] = {}
    for rep in range(args.repeats):
        for name in PIPELINES:
            r = vidlab_pass(items, name, seed=rep)
            times.setdefault(f"{name}/vidlab", []).append(r["seconds"])
            shapes[f"{name}/vidlab"] = r["shapes"]
        for key, r in mm_pass(python, shim_dir, videos, args.threads).items():
            times.setdefault(key, []).append(r["seconds"])
            shapes[key] = r["shapes"]

    vps = {k: len(items) / statistics.median(v) for k, v in times.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {len(items)} videos, {args.repeats} repeats, {args.threads} thread(s)"
    )
    print("| pipeline | toolbox / backend | videos/s (median) | output shape per video |")
    print("|---|---|---|---|")
    for key in sorted(vps):
        print(f"| {key.split('/')[0]} | {key.split('/')[1]} | {vps[key]:.2f} | {shapes[key]} |")
    ratios = {name: vps[f"{name}/vidlab"] / vps[f"{name}/decord"] for name in PIPELINES}
    for name in PIPELINES:
        print(
            f"{name}: vidlab / MMAction2-decord = {ratios[name]:.2f}x, "
            f"vidlab / MMAction2-PyAV = {vps[f'{name}/vidlab'] / vps[f'{name}/pyav']:.2f}x"
        )
    print(f"RESULT tsn_ratio={ratios['tsn']:.2f} slowfast_ratio={ratios['slowfast']:.2f}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
