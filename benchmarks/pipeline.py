"""Data-pipeline throughput, vidlab vs MMAction2 1.2.0, side by side on the same videos in the same run.

Single process, every sample decoded from its file (no frame or file cache, nothing kept across reads). Five
pipelines (``--pipelines`` picks a subset):

- ``tsn``, TSN 1x1x8 train: SampleFrames(1, 1, 8) -> decode -> Resize(-1, 256) -> RandomResizedCrop
  -> Resize(224, 224) -> Flip(0.5) -> uint8 (8, 224, 224, 3) per video;
- ``slowfast``, SlowFast 32x2x1 train: SampleFrames(32, 2, 1) -> decode -> the same transforms
  -> uint8 (32, 224, 224, 3);
- ``slowfast_test``, SlowFast 32x2x10 multi-view test (MMAction2's ``slowfast_r50_8xb8-4x16x1-256e`` test
  pipeline): SampleFrames(32, 2, 10, test_mode=True) -> decode -> Resize(-1, 256) -> ThreeCrop(256)
  -> uint8, 30 views of (32, 256, 256, 3);
- ``tsn_test``, TSN 25x1x1 multi-view test (MMAction2's ``tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e`` test
  pipeline, which the 1x1x8 config inherits): SampleFrames(1, 1, 25, test_mode=True) -> decode
  -> Resize(-1, 256) -> TenCrop(224) -> uint8, 250 frames of (224, 224, 3) (10 crops x 25 segments);
- ``repeated_aug``, repeated augmentation as in VideoMAE / VideoMamba fine-tuning: SampleFrames(16, 4, 1)
  -> decode once -> twice [Resize(-1, 256) -> RandomResizedCrop -> Resize(224, 224) -> Flip(0.5)] -> uint8, 2 views
  of (16, 224, 224, 3) from one read of the file (vidlab ``VideoDataset(..., repeated_aug=2)``). MMAction2 has no
  repeated augmentation; its equivalent is running the whole pipeline twice per video, i.e. two reads of the file
  (two opens, two decodes), which is what is timed for it.

vidlab resizes to short side 256 inside the decoder (one swscale pass), so its pipelines start after the
Resize(-1, 256); MMAction2 decodes full frames and resizes with OpenCV. MMAction2 runs in its reference environment
(``$REFS/mm``, built by ``shared/refs/setup.sh``) with both of its backends (decord, PyAV), in a subprocess. Beside
each pipeline the script times vidlab's *decode floor*: ``VideoReader(path, short_side=256).read(indices)`` alone
(open, decode, colour conversion and resize, no transforms) with the very indices the pipeline sampled, i.e. how
much of the pipeline is decoding. Each repeat times one pass over all videos per pipeline and toolbox, interleaved;
the figures are medians over repeats. The output shapes of both toolboxes are compared in one layout
(views x frames x H x W x C; MMAction2's NCHW output does not split views, so frames x H x W x C there) and a
mismatch fails the run. vidlab's side runs with :func:`vidlab.engine.allocator.reuse_freed_memory`, as in the
``vidlab`` commands' loader workers (``--system-malloc``: without); MMAction2's subprocess has glibc's default.

Usage:
    python ../shared/bench/make_videos.py /tmp/benchvids 16
    python benchmarks/pipeline.py --videos /tmp/benchvids [--repeats 5] [--pipelines tsn_test,slowfast_test]

(with ``transformers`` installed in the MMAction2 environment, as ``inference_speed.py`` needs, prefix
``NO_TV_STUB=1``: the torchvision stub of ``shared/refs/refshim.py`` breaks transformers' import probe)

Prints a table and, last, ``RESULT tsn_ratio=<x> slowfast_ratio=<y> slowfast_test_ratio=<z> tsn_test_ratio=<u>
repeated_aug_ratio=<v>`` (the pipelines run): vidlab videos/s over MMAction2-decord videos/s.
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
from vidlab.data.decode import VideoReader
from vidlab.data.sampling import SampleFrames
from vidlab.data.transforms import build_pipeline
from vidlab.engine.allocator import reuse_freed_memory

TRAIN = [
    {"type": "RandomResizedCrop"},
    {"type": "Resize", "scale": [224, 224], "keep_ratio": False},
    {"type": "Flip", "flip_ratio": 0.5},
]
# transforms after decode + Resize(-1, 256); the same dicts build both toolboxes' pipelines
PIPELINES = {
    "tsn": {
        "title": "TSN 1x1x8 train",
        "sample": {"clip_len": 1, "frame_interval": 1, "num_clips": 8},
        "transforms": TRAIN,
        "input_format": "NCHW",
    },
    "slowfast": {
        "title": "SlowFast 32x2x1 train",
        "sample": {"clip_len": 32, "frame_interval": 2, "num_clips": 1},
        "transforms": TRAIN,
        "input_format": "NCTHW",
    },
    "slowfast_test": {
        "title": "SlowFast 32x2x10 test, ThreeCrop(256)",
        "sample": {"clip_len": 32, "frame_interval": 2, "num_clips": 10, "test_mode": True},
        "transforms": [{"type": "ThreeCrop", "crop_size": 256}],
        "input_format": "NCTHW",
    },
    "tsn_test": {
        "title": "TSN 25x1x1 test, TenCrop(224)",
        "sample": {"clip_len": 1, "frame_interval": 1, "num_clips": 25, "test_mode": True},
        "transforms": [{"type": "TenCrop", "crop_size": 224}],
        "input_format": "NCHW",
    },
    "repeated_aug": {
        "title": "VideoMAE 16x4x1 train, repeated aug x2",
        "sample": {"clip_len": 16, "frame_interval": 4, "num_clips": 1},
        "transforms": TRAIN,
        "input_format": "NCTHW",
        "repeated_aug": 2,
    },
}

MM_SCRIPT = r"""
import json, sys, time
import refshim  # noqa: F401  (must precede mmaction)
import mmaction.utils.dependency as mm_dependency
mm_dependency.WITH_MULTIMODAL = False  # with transformers installed, VindLU would import timm; not used here
import numpy as np
from mmaction.utils import register_all_modules
from mmaction.registry import TRANSFORMS
from mmengine.dataset import Compose
register_all_modules()
cfg = json.loads(sys.argv[1])


def build(t):
    return TRANSFORMS.build({k: tuple(v) if isinstance(v, list) else v for k, v in t.items()})


out = {}
for name, p in cfg["pipelines"].items():
    for backend in ("decord", "pyav"):
        init = "DecordInit" if backend == "decord" else "PyAVInit"
        dec = "DecordDecode" if backend == "decord" else "PyAVDecode"
        pipe = Compose([build(t) for t in [
            dict(type=init), dict(type="SampleFrames", **p["sample"]), dict(type=dec),
            dict(type="Resize", scale=(-1, 256)), *p["transforms"],
            dict(type="FormatShape", input_format=p["input_format"]), dict(type="PackActionInputs")]])
        t0 = time.perf_counter()
        shapes = set()
        for path, label in cfg["videos"]:
            for _ in range(p.get("repeated_aug", 1)):  # no repeated augmentation: the pipeline once per view set
                r = pipe(dict(filename=path, label=label, start_index=0, modality="RGB"))
                shapes.add(tuple(r["inputs"].shape))
        out[f"{name}/{backend}"] = {"seconds": time.perf_counter() - t0, "shapes": sorted(shapes)}
print("JSON" + json.dumps(out))
"""


def make_dataset(items, name: str, seed: int) -> VideoDataset:
    p = PIPELINES[name]
    return VideoDataset(
        items,
        SampleFrames(**p["sample"]),
        build_pipeline(p["transforms"]),
        num_classes=400,
        input_format=p["input_format"],
        num_segments=p["sample"]["num_clips"],
        short_side=256,
        seed=seed,
        repeated_aug=p.get("repeated_aug", 1),
    )


def vidlab_pass(items, name: str, seed: int) -> dict:
    ds = make_dataset(items, name, seed)
    t0 = time.perf_counter()
    shapes = {tuple(ds[i]["imgs"].shape) for i in range(len(ds))}
    return {"seconds": time.perf_counter() - t0, "shapes": sorted(shapes)}


def sampled_indices(items, name: str, seed: int, videos_info: list[tuple[int, float]]) -> list[np.ndarray]:
    """The frame indices the dataset of ``vidlab_pass(items, name, seed)`` reads, video by video."""
    ds = make_dataset(items, name, seed)
    return [
        ds.sampler(n, np.random.default_rng([ds.seed, ds.epoch, i]), fps=fps) for i, (n, fps) in enumerate(videos_info)
    ]


def floor_pass(items, indices: list[np.ndarray]) -> dict:
    """vidlab's reader alone: open, read the sampled frames (short side 256), close; no transforms."""
    t0 = time.perf_counter()
    shapes = set()
    for it, idx in zip(items, indices):
        with VideoReader(it.path, short_side=256) as reader:
            shapes.add(reader.read(idx).shape)
    return {"seconds": time.perf_counter() - t0, "shapes": sorted(shapes)}


def mm_pass(python: str, shim_dir: str, names: list[str], videos: list, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": shim_dir, "OMP_NUM_THREADS": str(threads)}
    pipelines = {n: {k: v for k, v in PIPELINES[n].items() if k != "title"} for n in names}
    arg = json.dumps({"pipelines": pipelines, "videos": videos})
    r = subprocess.run([python, "-c", MM_SCRIPT, arg], capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"MMAction2 pipeline failed:\n{r.stderr[-3000:]}")
    line = [x for x in r.stdout.splitlines() if x.startswith("JSON")][-1]
    return json.loads(line[4:])


def canonical(shape: tuple, toolbox: str, input_format: str) -> tuple:
    """One layout for both toolboxes: (views, T, H, W, C) for NCTHW, (frames, H, W, C) for NCHW."""
    if toolbox == "vidlab":  # (V, T, H, W, C)
        return tuple(shape) if input_format == "NCTHW" else (shape[0] * shape[1], *shape[2:])
    if input_format == "NCTHW":  # MMAction2 (V, C, T, H, W)
        v, c, t, h, w = shape
        return v, t, h, w, c
    n, c, h, w = shape  # MMAction2 (N, C, H, W)
    return n, h, w, c


def cpu_line() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    simd = "AVX-512" if "avx512f" in flags else ("AVX2, no AVX-512" if "avx2" in flags else "no AVX2")
    return f"{model} ({simd})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", required=True, help="folder with videos and list.txt (make_videos.py)")
    ap.add_argument("--refs", default=os.environ.get("REFS", "/tmp/refs"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of each side")
    ap.add_argument(
        "--pipelines", default=",".join(PIPELINES), help=f"comma-separated subset of: {', '.join(PIPELINES)}"
    )
    ap.add_argument(
        "--system-malloc", action="store_true",
        help="leave glibc's malloc as it is on vidlab's side (default: vidlab.engine.allocator's setting, which the "
        "vidlab commands and their forked loader workers use)",
    )  # fmt: skip
    args = ap.parse_args()
    if not args.system_malloc:
        reuse_freed_memory()
    names = [n.strip() for n in args.pipelines.split(",") if n.strip()]
    unknown = [n for n in names if n not in PIPELINES]
    if unknown or not names:
        sys.exit(f"--pipelines: unknown {unknown or 'empty list'}; choose from {', '.join(PIPELINES)}")
    torch.set_num_threads(args.threads)

    root = Path(args.videos)
    items = parse_video_list(root / "list.txt", root)
    videos = [(it.path, it.label[0]) for it in items]
    python = str(Path(args.refs) / "mm" / "bin" / "python")
    shim_dir = str(Path(__file__).resolve().parents[2] / "shared" / "refs")
    if not Path(python).exists():
        sys.exit(f"reference environment not found: {python} (build it with shared/refs/setup.sh)")
    info = []
    for it in items:  # frame counts and rates for the decode floor's sampling (not timed)
        with VideoReader(it.path, short_side=256) as reader:
            info.append((reader.num_frames, reader.fps))

    times: dict[str, list[float]] = {}
    shapes: dict[str, list] = {}
    for rep in range(args.repeats):
        for name in names:
            runs = {
                "vidlab": vidlab_pass(items, name, seed=rep),
                "floor": floor_pass(items, sampled_indices(items, name, rep, info)),
            }
            for key, r in runs.items():
                times.setdefault(f"{name}/{key}", []).append(r["seconds"])
                shapes[f"{name}/{key}"] = r["shapes"]
        for key, r in mm_pass(python, shim_dir, names, videos, args.threads).items():
            times.setdefault(key, []).append(r["seconds"])
            shapes[key] = r["shapes"]

    vps = {k: len(items) / statistics.median(v) for k, v in times.items()}
    print(
        f"machine: {cpu_line()}, {os.cpu_count()} cores, torch {torch.__version__}, {len(items)} videos, "
        f"{args.repeats} repeats, {args.threads} thread(s)"
    )
    print(
        "| pipeline | vidlab | vidlab decode floor | floor / vidlab time | MMAction2 + decord | MMAction2 + PyAV "
        "| vidlab / decord | vidlab / PyAV |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios, mismatched = {}, []
    for name in names:
        v, fl, dec, pyav = (vps[f"{name}/{k}"] for k in ("vidlab", "floor", "decord", "pyav"))
        ratios[name] = v / dec
        print(
            f"| {PIPELINES[name]['title']} | {v:.2f} videos/s | {fl:.2f} | {v / fl:.0%} | {dec:.2f} | {pyav:.2f} "
            f"| **{v / dec:.2f}x** | {v / pyav:.2f}x |"
        )
    print()
    for name in names:
        fmt = PIPELINES[name]["input_format"]
        per_tool = {k: [canonical(s, k, fmt) for s in shapes[f"{name}/{k}"]] for k in ("vidlab", "decord", "pyav")}
        reads = PIPELINES[name].get("repeated_aug", 1)
        mm_views = [(reads * s[0], *s[1:]) for s in per_tool["decord"]] if reads > 1 else per_tool["decord"]
        same = per_tool["vidlab"] == mm_views and per_tool["decord"] == per_tool["pyav"]
        mismatched += [] if same else [name]
        mm_reads = f"{reads} reads x " if reads > 1 else ""
        print(
            f"{name}: output per video vidlab {shapes[f'{name}/vidlab']}, "
            f"MMAction2 {mm_reads}{shapes[f'{name}/decord']}; same layout {per_tool['vidlab']}: "
            f"{'yes' if same else 'NO'}; decode floor reads {shapes[f'{name}/floor']}"
        )
    print("RESULT " + " ".join(f"{name}_ratio={ratios[name]:.2f}" for name in names))
    if mismatched:
        sys.exit(f"output shapes differ between vidlab and MMAction2 for: {', '.join(mismatched)}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
