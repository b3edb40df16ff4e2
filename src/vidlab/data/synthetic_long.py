"""SynthActions-Long: minutes-long videos whose activity only the order of their steps reveals.

Every video shows the same three steps of SynthActions -- ``moving_left``, ``growing`` and ``fading_in`` -- once
each, done by one actor (one shape and colour for the whole video) on one background, with distractors wandering
the whole time and idle gaps (the actor gone) before, between and after the steps. The **activity** (6 classes) is
the order of the three steps, one of their 6 permutations. Every step occurs in every video, so frames from one
step, or a short clip, say little about the activity: only clips that cross a step boundary see part of the order.
A model has to see the video as a whole (sparse sampling over the video) or combine windows.

The **regression target** is when the ``fading_in`` step starts, as a fraction of the video's length (0..1).

Layout written by :func:`generate_synth_long` (``vidlab data synth --task long``)::

    out_dir/
      videos/<activity>/<activity>_<i:05d>.mp4
      train.txt val.txt test.txt                 # "videos/... <activity>" (MMAction2 video list)
      train.csv val.csv test.csv                 # "videos/...,<activity>,<duration s>" (VideoMamba's CSV)
      train_fade_start.txt ...                   # "videos/... <fraction>" (regression)
      label_map.txt meta.json
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.synth_scene import (
    _CLASS_MOTION,
    _JITTER,
    _actor_track,
    _camera_jitter,
    _distractor_track,
    _iter_frames,
    _Scene,
    _Track,
)
from vidlab.data.synthetic import (
    _SPLITS,
    _prepare_dir,
    _run_jobs,
    _stratified_split,
    _styled_background,
    _write_text,
    _write_video,
)
from vidlab.errors import InputError

__all__ = ["ACTIVITIES", "STEPS", "generate_synth_long", "long_scene_info"]

logger = logging.getLogger(__name__)

GENERATOR = "SynthActions-Long"
VERSION = "1.0"
STEPS: tuple[str, ...] = ("moving_left", "growing", "fading_in")
ACTIVITIES: tuple[tuple[str, ...], ...] = tuple(itertools.permutations(STEPS))
_SHORT = {"moving_left": "left", "growing": "grow", "fading_in": "fade"}
ACTIVITY_NAMES: tuple[str, ...] = tuple("-".join(_SHORT[s] for s in order) for order in ACTIVITIES)
_TARGET_STEP = "fading_in"


def _layout(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    """``(start, length)`` frames of the three steps: each 18-28% of the video, the rest split into 4 idle gaps."""
    lengths = (rng.uniform(0.18, 0.28, size=3) * n).astype(int)
    gaps = rng.dirichlet(np.ones(4)) * (n - lengths.sum())
    starts = np.cumsum(gaps[:3]).astype(int) + np.concatenate([[0], np.cumsum(lengths)[:2]])
    return [(int(s), int(m)) for s, m in zip(starts, lengths)]


def _placed(track: _Track, start: int, n: int) -> _Track:
    """``track`` (one step) put at frame ``start`` of an ``n``-frame video; invisible outside its step."""
    m = len(track.cx)

    def pad(values: np.ndarray, outside: float | None = None) -> np.ndarray:
        out = np.empty(n)
        out[:start] = values[0] if outside is None else outside
        out[start : start + m] = values
        out[start + m :] = values[-1] if outside is None else outside
        return out

    return _Track(pad(track.cx), pad(track.cy), pad(track.r), pad(track.phi), pad(track.alpha, 0.0), track.shape,
                  track.color, track.marker)  # fmt: skip


def _long_scene(index: int, seed: int, size: tuple[int, int], fps: int, duration: tuple[float, float]) -> _Scene:
    label = index % len(ACTIVITIES)
    rng = np.random.default_rng([seed, index, 0x10C])
    w, h = size
    n = int(round(float(rng.uniform(*duration)) * fps))
    background = _styled_background(rng, h + 2 * _JITTER, w + 2 * _JITTER, "textured")
    bg_mean = background.reshape(-1, 3).mean(axis=0)
    tracks = [_distractor_track(rng, n, w, h, bg_mean) for _ in range(int(rng.integers(1, 4)))]
    layout = _layout(rng, n)
    look = None
    for step, (start, length) in zip(ACTIVITIES[label], layout):
        kind, backwards = _CLASS_MOTION[step]
        track = _actor_track(rng, kind, length, w, h, bg_mean)
        track = track.reversed() if backwards else track
        look = look or (track.shape, track.color, track.marker)  # one actor does every step
        track.shape, track.color, track.marker = look
        tracks.append(_placed(track, start, n))
    dx, dy = _camera_jitter(rng, n)
    target_start = layout[ACTIVITIES[label].index(_TARGET_STEP)][0]
    name = ACTIVITY_NAMES[label]
    info = {
        "index": index,
        "label": label,
        "class_name": name,
        "steps": list(ACTIVITIES[label]),
        "step_frames": [list(x) for x in layout],
        "video": f"videos/{name}/{name}_{index:05d}.mp4",
        "fps": fps,
        "width": w,
        "height": h,
        "num_frames": n,
        "duration": round(n / fps, 4),
        "fade_start": round(target_start / n, 4),
    }
    return _Scene(info, background, tracks, dx, dy)


def long_scene_info(index: int, seed: int = 0, size=(64, 48), fps: int = 5, duration=(60.0, 150.0)) -> dict:
    """The description of video ``index`` (activity, step frames, target) without rendering it."""
    return _long_scene(index, seed, tuple(size), fps, tuple(duration)).info


def _render_long(job: tuple) -> tuple[dict[str, Any], None]:
    out_dir, index, seed, size, fps, duration = job
    scene = _long_scene(index, seed, size, fps, duration)
    info = scene.info
    _write_video(Path(out_dir) / info["video"], _iter_frames(scene), fps, info["width"], info["height"])
    return info, None


def _write_lists(root: Path, infos: list[dict], splits: dict[str, list[int]]) -> None:
    _write_text(root / "label_map.txt", ACTIVITY_NAMES)
    for name, idxs in splits.items():
        rows = [infos[i] for i in idxs]
        _write_text(root / f"{name}.txt", [f"{v['video']} {v['label']}" for v in rows])
        _write_text(root / f"{name}.csv", [f"{v['video']},{v['label']},{v['duration']:g}" for v in rows])
        _write_text(root / f"{name}_fade_start.txt", [f"{v['video']} {v['fade_start']:.4f}" for v in rows])


def generate_synth_long(
    out_dir: str | Path,
    num_videos: int = 480,
    seed: int = 0,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    workers: int = 2,
    size: tuple[int, int] = (64, 48),
    fps: int = 5,
    duration: tuple[float, float] = (60.0, 150.0),
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write SynthActions-Long (module docstring); a complete dataset with the same settings is reused.

    Args:
        num_videos: Videos in all; video ``i`` has activity ``i % 6``.
        size: ``(width, height)`` of every video (even values).
        fps: Frame rate.
        duration: Range of the videos' length in seconds.

    Returns:
        ``out_dir``, ``classes``, ``num_videos``, ``split_sizes``, ``generated`` and ``seconds``.
    """
    if int(num_videos) < 1 or int(fps) < 1 or size[0] % 2 or size[1] % 2 or min(size) < 32:
        raise InputError(f"need num_videos >= 1, fps >= 1 and an even size >= 32, got {num_videos}, {fps}, {size}")
    if not 0.2 * 3 <= duration[0] <= duration[1]:
        raise InputError(f"duration must be (min, max) seconds with 0.6 <= min <= max, got {duration!r}")
    root, start = Path(out_dir), time.perf_counter()
    identity = {"generator": GENERATOR, "version": VERSION, "seed": int(seed), "num_videos": int(num_videos),
                "split": list(split), "size": list(size), "fps": int(fps), "duration_range": list(duration),
                "steps": list(STEPS)}  # fmt: skip
    try:
        meta = json.loads((root / "meta.json").read_text())
        done = all(meta.get(k) == v for k, v in identity.items())
    except (OSError, ValueError, AttributeError):
        done = False
    generated = overwrite or not done
    if generated:
        _prepare_dir(root)
        jobs = [(str(root), i, int(seed), tuple(size), int(fps), tuple(duration)) for i in range(int(num_videos))]
        infos = [info for info, _ in _run_jobs(jobs, int(workers), progress, fn=_render_long, desc=GENERATOR)]
        splits = _stratified_split([v["label"] for v in infos], split, int(seed))
        _write_lists(root, infos, splits)
        meta = {**identity, "split_sizes": {k: len(v) for k, v in splits.items()}, "videos": infos}
        (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")  # last: marks a complete dataset
    return {
        "out_dir": str(root),
        "classes": list(ACTIVITY_NAMES),
        "num_videos": int(num_videos),
        "split_sizes": dict(meta["split_sizes"]),
        "splits": {s: str(root / f"{s}.txt") for s in _SPLITS},
        "generated": generated,
        "seconds": round(time.perf_counter() - start, 3),
    }
