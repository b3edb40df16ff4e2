"""Sliding-window prediction on long videos: peak memory, time and correctness of
``vidlab predict VIDEO --checkpoint CKPT --window 2 --stride 1 --timeline T.json --render R.mp4``.

For each length (default 2 and 20 minutes) it writes a 64x48, 25 fps H.264 video by streaming encode (one frame in
memory at a time) whose colour cycles red, green, blue every ``--segment`` seconds (a white square moves over it, so
the encoder has motion to code), then runs the command in a fresh process and reports:

* peak RSS of that process (``ru_maxrss`` from ``os.wait4``) and its wall time; memory is flat if the two lengths
  peak alike;
* timeline checks: the window count (``floor((duration - window) / stride) + 1``), the share of windows lying inside
  one colour whose top-1 is that colour, and the largest distance between a merged segment's boundary and the true
  colour change;
* the rendered MP4's frame count and duration against the input's.

The model is a hand-set ``tsn_r18`` (:func:`colour_checkpoint`) whose top-1 is the dominant colour channel of the
frames' mean, so the right label at every time is known without training.

Usage:
    python benchmarks/long_video.py [--minutes 2 20] [--segment 30] [--threads 1] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
CLIP_SPEC = {
    "format": "video",
    "mean": [123.675, 116.28, 103.53],
    "std": [58.395, 57.12, 57.375],
    "input_format": "NCHW",
    "num_segments": 4,
    "short_side": None,
    "backend": "pyav",
    "sampler": {"type": "SampleFrames", "clip_len": 1, "frame_interval": 1, "num_clips": 4, "test_mode": True},
    "pipeline": [{"type": "Resize", "scale": [-1, 40]}, {"type": "CenterCrop", "crop_size": 32}],
    "average_clips": "prob",
}


def colour_checkpoint(path: str | Path, scale: float = 4.0) -> Path:
    """A self-describing ``tsn_r18`` checkpoint (classes red, green, blue) whose logits are ``scale * (f_c - mean f)``
    for ``f`` the mean normalized RGB of the frames it sees.

    Every weight is set by hand: the stem copies the three input channels (plus 10, so the ReLUs keep them), every
    residual branch is switched off (its last batch norm scales by 0), every down-sampling shortcut passes the three
    channels on, so the pooled features are ``10 + mean RGB`` in channels 0-2 and 0 elsewhere.
    """
    import torch

    from vidlab.models import create_model

    model = create_model("tsn_r18", num_classes=3)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
        bb = model.backbone
        for c in range(3):
            bb.conv1.weight[c, c, 3, 3] = 1.0  # the 7x7 stem's centre tap
        bb.bn1.weight[:3], bb.bn1.bias[:3] = 1.0, 10.0
        for m in bb.modules():
            if getattr(m, "downsample", None) is not None:
                conv, bn = m.downsample
                for c in range(3):
                    conv.weight[c, c, 0, 0] = 1.0
                bn.weight[:3] = 1.0
        model.head.fc.weight[:, :3] = scale * (torch.eye(3) - 1 / 3)
    meta = {
        "model": "tsn_r18",
        "num_classes": 3,
        "kwargs": {},
        "classes": list(COLOURS),
        "task": {"name": "recognition", "multi_label": False, "average_clips": "prob"},
        "data": CLIP_SPEC,
    }
    torch.save({"model": model.state_dict(), "meta": meta}, path)
    return Path(path)


def write_colour_video(
    path: str | Path,
    colour_at,
    seconds: float,
    fps: int = 25,
    size: tuple[int, int] = (64, 48),
    gop: int = 250,
    square: bool = True,
) -> Path:
    """An H.264 video of ``round(seconds * fps)`` frames, frame ``i`` filled with ``COLOURS[colour_at(i / fps)]``
    (and, with ``square``, a moving white square); encoded as it is generated."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "g": str(gop)}
        for i in range(round(seconds * fps)):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = COLOURS[colour_at(i / fps)]
            x, y = (2 * i) % (width - 6), (i // 3) % (height - 6)
            if square:
                img[y : y + 6, x : x + 6] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return Path(path)


def cycle(segment: float):
    """``t -> colour``: red, green, blue, red, ... each for ``segment`` seconds."""
    names = list(COLOURS)
    return lambda t: names[int(t // segment) % len(names)]


def run_predict(video: Path, ckpt: Path, out: Path, window: float, stride: float, threads: int) -> dict:
    """``vidlab predict`` with sliding windows in a fresh process: its peak RSS (MiB), wall time and outputs."""
    timeline, render, log = out / "timeline.json", out / "labelled.mp4", out / "predict.log"
    cmd = [sys.executable, "-m", "vidlab", "predict", str(video), "--checkpoint", str(ckpt)]
    cmd += ["--window", str(window), "--stride", str(stride), "--timeline", str(timeline), "--render", str(render)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": wall, "timeline": timeline, "render": render}


def check_timeline(doc: dict, colour_at, segment: float) -> dict:
    """Window count, top-1 accuracy of the windows inside one colour, largest segment-boundary error (s)."""
    duration, window, stride = doc["duration"], doc["window"], doc["stride"]
    expected = math.floor((duration - window) / stride + 1e-6) + 1
    inside = [w for w in doc["windows"] if colour_at(w["start"]) == colour_at(w["end"] - 1e-6)]
    right = sum(w["topk"][0][0] == colour_at(w["start"]) for w in inside)
    changes = np.arange(segment, duration, segment)
    cuts = np.array([s["start"] for s in doc["segments"][1:]])
    error = float(np.abs(cuts[:, None] - changes[None]).min(1).max()) if len(cuts) else float("nan")
    return {
        "windows": len(doc["windows"]),
        "windows_expected": expected,
        "inside_windows_right": f"{right}/{len(inside)}",
        "segments": len(doc["segments"]),
        "segments_expected": len(changes) + 1,
        "max_boundary_error_s": error,
    }


def video_facts(path: Path) -> dict:
    from vidlab.data.decode import VideoReader

    with VideoReader(path) as reader:
        return {"frames": reader.num_frames, "fps": reader.fps, "duration_s": reader.duration}


def measure(minutes: float, out: Path, args) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    colour_at = cycle(args.segment)
    video = out / "long.mp4"
    t0 = time.perf_counter()
    write_colour_video(video, colour_at, minutes * 60, fps=args.fps)
    encode_s = time.perf_counter() - t0
    ckpt = colour_checkpoint(out / "colour_tsn_r18.pth")
    run = run_predict(video, ckpt, out, args.window, args.stride, args.threads)
    doc = json.loads(run["timeline"].read_text())
    src, dst = video_facts(video), video_facts(run["render"])
    return {
        "minutes": minutes,
        "video_encode_s": round(encode_s, 1),
        "peak_rss_mib": round(run["peak_rss_mib"], 1),
        "predict_wall_s": round(run["wall_s"], 1),
        **check_timeline(doc, colour_at, args.segment),
        "input": src,
        "rendered": dst,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[2, 20])
    p.add_argument("--segment", type=float, default=30.0, help="seconds of each colour")
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--stride", type=float, default=1.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the predict process")
    p.add_argument("--out-dir", default=None, help="keep the files here (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out_dir or tmp)
        rows = [measure(m, root / f"{m:g}min", args) for m in args.minutes]
    for row in rows:
        print(json.dumps(row))
    print("\n| video | peak RSS (MiB) | predict wall (s) | windows | inside windows right | boundary error (s) "
          "| frames in / out | duration in / out (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['minutes']:g} min | {r['peak_rss_mib']:.1f} | {r['predict_wall_s']:.1f} | {r['windows']} "
            f"(expected {r['windows_expected']}) | {r['inside_windows_right']} | {r['max_boundary_error_s']:.2f} "
            f"| {r['input']['frames']} / {r['rendered']['frames']} "
            f"| {r['input']['duration_s']:.2f} / {r['rendered']['duration_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
