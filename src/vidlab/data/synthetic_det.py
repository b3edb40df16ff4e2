"""SynthActions-Det: a built-in spatio-temporal action detection set in AVA format, rendered like SynthActions.

Each video shows 2-3 "actors" (shapes with an off-centre marker dot) on a textured background with small
distractor shapes and camera jitter. Every actor does one action for the whole video, and about a third of them
a second one at the same time (multi-label): moving left / right / up / down at a steady speed, spinning
clockwise / counter-clockwise about its centre (the marker shows the turn), growing or shrinking, or standing
still (``static``, never combined). Keyframes are at 1 Hz (seconds 1 .. duration - 1); each has every actor's
box (its extent at that frame, normalized) and actions.

Layout written by :func:`generate_synth_det` (AVA's files, timestamps in seconds from the video start)::

    out_dir/
      videos/<video_id>.mp4
      frames/<video_id>/img_00001.jpg ...          # only with rawframes=True (1-based, every frame)
      annotations/{train,val}.csv                  # video_id,timestamp,x1,y1,x2,y2,action_id,person_id
      annotations/{train,val}_excluded.csv         # excluded timestamps (none: empty files)
      annotations/{train,val}_proposals.csv        # PySlowFast's box CSV: video,timestamp,x1,y1,x2,y2,,score
      annotations/{train,val}_proposals.pkl        # MMAction2's proposals: "video,%04d" -> (N, 5) normalized
      annotations/label_map.pbtxt                  # item { name: "moving_left" id: 1 } ...
      meta.json

Proposals are every actor's box jittered by up to 6% of its size, scored 0.92-1.0, plus 0-2 false positives per
keyframe (distractors and background patches) of which about half score above 0.9 (kept by the usual 0.9
threshold) and the rest below. Everything is seeded per video, like SynthActions.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.synth_scene import (
    _JITTER,
    _SHAPES,
    CLASSES,
    _camera_jitter,
    _contrasting_color,
    _distractor_track,
    _make_background,
    _Track,
)
from vidlab.data.synthetic import (
    _run_jobs,
    _write_video,
)
from vidlab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["DET_CLASSES", "generate_synth_det"]

DET_VERSION = "1.0"
# SynthActions' names: its eight moving / rotating / scaling classes (rotating here is a spin about the actor's own
# centre) and static
DET_CLASSES: tuple[str, ...] = (*CLASSES[:8], CLASSES[-1])
_MOVE = (0, 1, 2, 3)
_SPIN = (4, 5)
_SCALE = (6, 7)
_STATIC = 8
SIZE = (160, 120)  # (width, height)
FPS = 12
DURATION_RANGE = (4.0, 5.0)


def _actor_actions(rng: np.random.Generator) -> list[int]:
    """One action, and with probability 1/3 a second one of another group (static stays alone)."""
    first = int(rng.integers(len(DET_CLASSES)))
    if first == _STATIC or rng.random() >= 1 / 3:
        return [first]
    groups = [g for g in (_MOVE, _SPIN, _SCALE) if first not in g]
    group = groups[int(rng.integers(len(groups)))]
    return sorted([first, int(group[int(rng.integers(len(group)))])])


def _actor(rng: np.random.Generator, actions: list[int], n: int, fps: int, cell: tuple, bg_mean) -> _Track:
    """An actor whose actions run at a steady rate over all ``n`` frames, starting inside its ``cell``
    ``(x0, y0, x1, y1)`` and staying inside the frame."""
    w, h = SIZE
    t = np.arange(n, dtype=np.float64) / fps
    scaling = 6 in actions or 7 in actions
    r0 = rng.uniform(11.0, 14.0) if scaling else rng.uniform(14.0, 18.0)
    r = np.full(n, r0)
    if scaling:  # x2 .. x1/2 over the video, steadily (exponential)
        factor = rng.uniform(2.5, 3.0) ** (t / t[-1])
        r = r0 * factor / math.sqrt(float(factor[-1])) if 6 in actions else r0 * math.sqrt(float(factor[-1])) / factor
    rmax = float(r.max()) + 1.0
    x0, y0, x1, y1 = cell
    cx = np.full(n, rng.uniform(max(x0, rmax), max(min(x1, w - rmax), max(x0, rmax))))
    cy = np.full(n, rng.uniform(max(y0, rmax), max(min(y1, h - rmax), max(y0, rmax))))
    for a in actions:
        if a in _MOVE:
            axis_len = w if a < 2 else h
            speed = rng.uniform(0.11, 0.15) * axis_len  # pixels per second
            sign = -1.0 if a in (0, 2) else 1.0
            pos = (cx if a < 2 else cy) + sign * speed * (t - t[-1] / 2)
            lo, hi = rmax, axis_len - rmax
            shift = max(lo - pos.min(), 0.0) - max(pos.max() - hi, 0.0)  # keep the whole path in the frame
            if a < 2:
                cx = pos + shift
            else:
                cy = pos + shift
    phi = np.full(n, rng.uniform(0, 2 * np.pi))
    for a in actions:
        if a in _SPIN:
            rate = rng.uniform(1.2, 2.0) * np.pi  # radians per second; growing phi turns clockwise on screen
            phi = phi + (rate if a == 4 else -rate) * t
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    color = _contrasting_color(rng, bg_mean, 0.45)
    lum = float(color @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32))
    marker = np.full(3, 0.08 if lum > 0.5 else 0.95, dtype=np.float32)
    return _Track(cx, cy, r, phi, np.ones(n), shape, color, marker)


def _box(track: _Track, f: int, dx: int, dy: int) -> list[float]:
    """The actor's normalized box at frame ``f`` (its disk plus the outline, as drawn after the camera shift)."""
    w, h = SIZE
    r = float(track.r[f]) + 1.0
    cx, cy = float(track.cx[f]) - dx, float(track.cy[f]) - dy
    return [max(cx - r, 0) / w, max(cy - r, 0) / h, min(cx + r, w) / w, min(cy + r, h) / h]


def _jitter_box(rng: np.random.Generator, box: list[float], amount: float) -> list[float]:
    bw, bh = box[2] - box[0], box[3] - box[1]
    out = [box[0] + rng.uniform(-amount, amount) * bw, box[1] + rng.uniform(-amount, amount) * bh]
    out += [box[2] + rng.uniform(-amount, amount) * bw, box[3] + rng.uniform(-amount, amount) * bh]
    out = [min(max(v, 0.0), 1.0) for v in out]
    return [min(out[0], out[2]), min(out[1], out[3]), max(out[0], out[2]), max(out[1], out[3])]


def _scene(index: int, seed: int):
    rng = np.random.default_rng([seed, index, 17])
    w, h = SIZE
    duration = float(rng.uniform(*DURATION_RANGE))
    n = int(round(duration * FPS))
    background = _make_background(rng, h + 2 * _JITTER, w + 2 * _JITTER)
    bg_mean = background.reshape(-1, 3).mean(axis=0)
    distractors = [_distractor_track(rng, n, w, h, bg_mean) for _ in range(int(rng.integers(1, 4)))]
    num_actors = int(rng.integers(2, 4))
    cells = [(i * w / num_actors, 0.0, (i + 1) * w / num_actors, float(h)) for i in range(num_actors)]
    actions = [_actor_actions(rng) for _ in range(num_actors)]
    actors = [_actor(rng, a, n, FPS, cell, bg_mean) for a, cell in zip(actions, cells)]
    dx, dy = _camera_jitter(rng, n)
    return rng, n, background, distractors, actors, actions, dx, dy


def _frames(background, tracks, n, dx, dy):
    w, h = SIZE
    for f in range(n):
        ox, oy = int(dx[f]), int(dy[f])
        frame = background[_JITTER + oy : _JITTER + oy + h, _JITTER + ox : _JITTER + ox + w].copy()
        for track in tracks:
            track.draw(frame, f, -ox, -oy)
        yield frame


def _render_det_job(job: tuple[str, int, int, bool]) -> tuple[dict[str, Any], dict]:
    out_dir, index, seed, rawframes = job
    root = Path(out_dir)
    rng, n, background, distractors, actors, actions, dx, dy = _scene(index, seed)
    video_id = f"synth_{index:05d}"
    frame_dir = root / "frames" / video_id if rawframes else None
    _write_video(root / "videos" / f"{video_id}.mp4", _frames(background, distractors + actors, n, dx, dy), FPS,
                 *SIZE, frame_dir)  # fmt: skip
    gt, proposals = [], []
    for sec in range(1, int((n - 1) / FPS) + 1):
        f = min(sec * FPS, n - 1)
        for person, (track, acts) in enumerate(zip(actors, actions)):
            box = _box(track, f, int(dx[f]), int(dy[f]))
            gt += [[video_id, sec, *box, a + 1, person] for a in acts]
            proposals.append([video_id, sec, *_jitter_box(rng, box, 0.06), float(rng.uniform(0.92, 1.0))])
        for _ in range(int(rng.integers(0, 3))):  # false positives: a distractor or a background patch
            if distractors and rng.random() < 0.5:
                d = distractors[int(rng.integers(len(distractors)))]
                box = _box(d, f, int(dx[f]), int(dy[f]))
            else:
                bw, bh = rng.uniform(0.12, 0.25), rng.uniform(0.15, 0.3)
                x, y = rng.uniform(0, 1 - bw), rng.uniform(0, 1 - bh)
                box = [x, y, x + bw, y + bh]
            proposals.append([video_id, sec, *_jitter_box(rng, box, 0.1), float(rng.uniform(0.8, 1.0))])
    info = {"index": index, "video": video_id, "num_frames": n, "fps": FPS, "width": SIZE[0], "height": SIZE[1]}
    return info, {"gt": gt, "proposals": proposals}


def _csv_line(row: list) -> str:
    return ",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row)


def generate_synth_det(
    out_dir: str | Path,
    num_videos: int = 400,
    seed: int = 0,
    val_fraction: float = 0.2,
    workers: int = 2,
    rawframes: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate SynthActions-Det (module docstring); a complete set with the same settings is reused.

    Returns:
        A summary: ``out_dir``, ``classes``, ``num_videos``, keyframes and boxes per split, ``generated``,
        ``seconds``.
    """
    if int(num_videos) < 2:
        raise InputError(f"num_videos must be >= 2 (a train and a val video), got {num_videos}")
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must be in (0, 1), got {val_fraction}")
    root = Path(out_dir)
    identity = {"version": DET_VERSION, "num_videos": int(num_videos), "seed": int(seed), "val": float(val_fraction),
                "rawframes": bool(rawframes)}  # fmt: skip
    start = time.perf_counter()
    meta_path = root / "meta.json"
    if not overwrite and meta_path.is_file() and json.loads(meta_path.read_text()).get("identity") == identity:
        meta = json.loads(meta_path.read_text())
        logger.info("SynthActions-Det: reusing the complete dataset in %s", root)
        return {**meta["summary"], "generated": False, "seconds": 0.0}
    meta_path.unlink(missing_ok=True)
    jobs = [(str(root), i, int(seed), bool(rawframes)) for i in range(int(num_videos))]
    results = _run_jobs(jobs, int(workers), progress, fn=_render_det_job, desc="SynthActions-Det")
    num_val = max(1, int(round(num_videos * val_fraction)))
    order = np.random.default_rng([seed, 99]).permutation(num_videos)
    val_ids = set(order[:num_val].tolist())
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "val"):
        chosen = [r for r in results if (r[0]["index"] in val_ids) == (split == "val")]
        gt = [row for _, rows in chosen for row in rows["gt"]]
        props = [row for _, rows in chosen for row in rows["proposals"]]
        (ann / f"{split}.csv").write_text("".join(_csv_line(r) + "\n" for r in gt))
        (ann / f"{split}_excluded.csv").write_text("")
        (ann / f"{split}_proposals.csv").write_text("".join(_csv_line([*r[:6], "", r[6]]) + "\n" for r in props))
        by_key: dict[str, list] = {}
        for r in props:
            by_key.setdefault(f"{r[0]},{r[1]:04d}", []).append(r[2:7])
        with open(ann / f"{split}_proposals.pkl", "wb") as f:
            pickle.dump({k: np.asarray(v, np.float32) for k, v in by_key.items()}, f)
        keyframes = {(r[0], r[1]) for r in gt}
        counts[split] = {"videos": len(chosen), "keyframes": len(keyframes),
                         "boxes": len({(r[0], r[1], r[7]) for r in gt})}  # fmt: skip
    (ann / "label_map.pbtxt").write_text(
        "".join(f'item {{\n  name: "{name}"\n  id: {i + 1}\n}}\n' for i, name in enumerate(DET_CLASSES))
    )
    summary = {"out_dir": str(root), "classes": list(DET_CLASSES), "num_videos": int(num_videos), "splits": counts}
    meta = {"identity": identity, "summary": summary, "videos": [r[0] for r in results]}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")  # last: marks a complete dataset
    seconds = time.perf_counter() - start
    logger.info("SynthActions-Det: wrote %d videos to %s in %.1fs", num_videos, root, seconds)
    return {**summary, "generated": True, "seconds": round(seconds, 1)}
