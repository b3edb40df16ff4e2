"""Throughput of ``vidlab.data.VideoReader`` on Kinetics-like clips (10 s, 30 fps, 456x256 H.264, 2 s GOP).

Times two training-style access patterns, single process, ``short_side=256``:

* TSN 1x1x8: one frame at a random offset in each of 8 equal segments;
* SlowFast 32x2x1: 32 frames at interval 2 from a random start.

Each video is opened, read once and closed, as a dataset item would do. A full sequential decode
(no RGB conversion) is timed too, as the floor a reader pays without seeking.

Usage:
    python benchmarks/decode_speed.py [--videos DIR] [--num 4] [--passes 5] [--repeats 3]

When DIR holds no clips they are generated with ``shared/bench/make_videos.py`` from the directory
next to the repository (or ``--make-videos PATH``). Each pattern is timed ``--repeats`` times and the
best run is reported, since the machine may be shared; CPU-time rates are printed next to wall-clock
ones for the same reason.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

from vidlab.data import VideoReader

DEFAULT_MAKER = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "make_videos.py"


def tsn_indices(num_frames: int, rng: np.random.Generator, num_segments: int = 8) -> np.ndarray:
    """One random frame per segment of ``num_segments`` equal segments."""
    seg = num_frames / num_segments
    offsets = rng.uniform(0, seg, num_segments)
    return np.minimum((np.arange(num_segments) * seg + offsets).astype(np.int64), num_frames - 1)


def slowfast_indices(num_frames: int, rng: np.random.Generator, clip_len: int = 32, interval: int = 2) -> np.ndarray:
    """``clip_len`` frames ``interval`` apart from a random start (clamped to the last frame)."""
    span = clip_len * interval
    start = int(rng.integers(0, max(num_frames - span, 0) + 1))
    return np.minimum(start + interval * np.arange(clip_len), num_frames - 1)


def best_rate(run, num_videos: int, repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` runs (the machine may be shared): (videos/s wall clock, videos/s of CPU time)."""
    wall_best = cpu_best = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        wall_best = min(wall_best, time.perf_counter() - wall)
        cpu_best = min(cpu_best, time.process_time() - cpu)
    return num_videos / wall_best, num_videos / cpu_best


def read_pattern(paths: list[Path], sampler, passes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        for path in paths:
            with VideoReader(path, short_side=256) as reader:
                clip = reader.read(sampler(reader.num_frames, rng))
                assert clip.dtype == np.uint8 and clip.shape[-1] == 3


def full_decode(paths: list[Path]) -> None:
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for _ in container.decode(stream):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=Path("/tmp/benchvids"))
    parser.add_argument("--num", type=int, default=4, help="clips to generate when --videos holds none")
    parser.add_argument("--passes", type=int, default=5, help="times each clip is read per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per pattern; the best is reported")
    parser.add_argument("--make-videos", type=Path, default=DEFAULT_MAKER)
    args = parser.parse_args()

    paths = sorted(args.videos.glob("*.mp4"))
    if not paths:
        subprocess.run([sys.executable, str(args.make_videos), str(args.videos), str(args.num)], check=True)
        paths = sorted(args.videos.glob("*.mp4"))
    print(f"{len(paths)} videos in {args.videos}, {args.passes} passes, best of {args.repeats}, short_side=256")
    read_pattern(paths, tsn_indices, 1)  # warm-up: imports, page cache
    n = len(paths) * args.passes
    for name, sampler in (("TSN 1x1x8", tsn_indices), ("SlowFast 32x2x1", slowfast_indices)):
        wall, cpu = best_rate(lambda s=sampler: read_pattern(paths, s, args.passes), n, args.repeats)
        print(f"{name:<18} {wall:6.1f} videos/s  ({cpu:6.1f} videos/s of CPU time)")
    wall, cpu = best_rate(lambda: full_decode(paths), len(paths), args.repeats)
    print(f"{'full decode floor':<18} {wall:6.1f} videos/s  ({cpu:6.1f} videos/s of CPU time)")


if __name__ == "__main__":
    main()
