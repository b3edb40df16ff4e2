"""SynthActions: a built-in synthetic action-recognition dataset of real H.264 videos.

Each video shows one large "actor" shape (it carries an off-centre marker dot) performing an action over most of
the clip, on a random textured background, with 1-3 smaller distractor shapes wandering around and a small camera
jitter. Videos are written as H.264 MP4 (yuv420p, libx264) with PyAV, in the MMAction2 video-list layout, so the
real decoding / sampling / training pipeline can be exercised without downloading anything.

Ten of the twelve classes come in pairs whose members differ only in the direction of time: the second class of
a pair is rendered by playing the first one's (independently randomized) scene backwards. The bag of frames of
both members therefore has exactly the same distribution, so a model without temporal modelling (TSN averaging
per-frame features) is at chance within a pair, while a temporal model (TSM, 3D CNNs) separates them easily.

Classes (label: name): 0/1 moving_left/right and 2/3 moving_up/down (the actor crosses 60-90% of the frame),
4/5 rotating_clockwise/counterclockwise (it turns 180-360 degrees about a pivot off its centre, so the whole
shape swings), 6/7 growing/shrinking (radius x2-4), 8/9 fading_in/out (opacity 0 <-> 1), 10 bouncing (2-3 hops)
and 11 static (only the camera jitter and the distractors move).

Each video also has a continuous target, the actor's speed while it moves (percent of the frame's short side per
frame; see :func:`vidlab.data.synth_scene._actor_speed`), written to the ``<split>_speed.txt`` regression lists. It
is 0 for the classes whose actor does not move (fading_in/out, static).

Everything is seeded: video ``i`` is rendered from ``numpy.random.default_rng([seed, i])``, so the output is
byte-identical for a given seed whatever the number of worker processes.

Layout written by :func:`generate_synth_actions`::

    out_dir/
      videos/<class>/<class>_<i:05d>.mp4
      train.txt val.txt test.txt            # "videos/<class>/<class>_<i:05d>.mp4 <label>"
      train_speed.txt val_speed.txt test_speed.txt   # "videos/<class>/<class>_<i:05d>.mp4 <speed>" (regression)
      label_map.txt                         # line i = name of label i
      flip_label_map.json                   # {"0": 1, "1": 0, ...}: labels swapped by a horizontal flip
      pairs.json                            # {"direction_pairs": [[0, 1], ...], "classes": [...]}
      meta.json                             # generator settings + per-video fps / size / frame count
      rawframes/<class>/<stem>/img_00001.jpg   # only with rawframes=True
      train_rawframes.txt ...               # "rawframes/<class>/<stem> <total_frames> <label>"
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing as mp
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidlab.data.synth_scene import (
    _CLASS_MOTION,
    _JITTER,
    CLASSES,
    _actor_speed,
    _actor_track,
    _camera_jitter,
    _distractor_track,
    _hsv_to_rgb,
    _iter_frames,
    _make_background,
    _progress,
    _Scene,
    _to_uint8,
    _Track,
)
from vidlab.errors import InputError

__all__ = [
    "CLASSES",
    "DIRECTION_PAIRS",
    "FLIP_LABEL_MAP",
    "DEFAULT_SIZES",
    "FPS_CHOICES",
    "GENERATOR_VERSION",
    "STYLES",
    "VARIANTS",
    "Variant",
    "generate_synth_actions",
    "render_synth_video",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0"

DIRECTION_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
# A horizontal flip turns left into right and clockwise into counter-clockwise; every other class is unchanged.
FLIP_LABEL_MAP: dict[int, int] = {0: 1, 1: 0, 4: 5, 5: 4}

# (width, height), all even as yuv420p requires.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((128, 96), (144, 108), (160, 120), (176, 132), (192, 144))
FPS_CHOICES: tuple[int, ...] = (24, 25, 30)
DURATION_RANGE: tuple[float, float] = (2.0, 6.0)

_SPLITS = ("train", "val", "test")
_CRF = 23
_PRESET = "veryfast"
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class Variant:
    """What a SynthActions dataset shows (the default: :data:`CLASSES`, textured backgrounds, 2-6 s).

    Args:
        kind: ``actions`` (one actor, one of the 12 classes), ``repetition`` (one actor repeats a motion -- a hop,
            a swing left-right or up-down, a pulse in size -- ``count`` times, 1..``max_count``; the list's target
            is the count) or ``multilabel`` (2-3 smaller actors, each doing a different class; the list's targets
            are their classes).
        style: ``textured`` (gradient + texture + grain, 1-3 distractors), ``flat`` (one muted colour, no
            texture, no distractor) or ``clutter`` (texture twice as strong, 4-6 distractors): domain shifts.
        duration: range of the video length in seconds.
        max_count: the largest repetition count.
        audio: also write a sound track that depends on the class (:mod:`vidlab.data.synthetic_audio`).
    """

    kind: str = "actions"
    style: str = "textured"
    duration: tuple[float, float] = DURATION_RANGE
    max_count: int = 5
    audio: bool = False

    def __post_init__(self) -> None:
        if self.kind not in VARIANTS:
            raise InputError(f"variant must be one of {list(VARIANTS)}, got {self.kind!r}")
        if self.style not in STYLES:
            raise InputError(f"style must be one of {list(STYLES)}, got {self.style!r}")
        lo, hi = self.duration
        if not 0.2 <= lo <= hi:
            raise InputError(f"duration must be (min, max) seconds with 0.2 <= min <= max, got {self.duration!r}")
        if self.max_count < 1:
            raise InputError(f"max_count must be >= 1, got {self.max_count}")

    def identity(self) -> dict:
        """The settings a stored dataset is recognised by (empty for the default, so older datasets stay valid)."""
        out = {}
        if self.kind != "actions":
            out["variant"] = self.kind
        if self.style != "textured":
            out["style"] = self.style
        if self.kind == "repetition":
            out["max_count"] = self.max_count
        if self.audio:
            out["audio"] = True
        return out


VARIANTS = ("actions", "repetition", "multilabel")
STYLES = ("textured", "flat", "clutter")
_DEFAULT = Variant()


def _styled_background(rng: np.random.Generator, h: int, w: int, style: str) -> np.ndarray:
    if style == "flat":
        c = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.05, 0.4), rng.uniform(0.3, 0.75))
        return np.broadcast_to(c, (h, w, 3)).astype(np.float32)
    bg = _make_background(rng, h, w)
    if style == "clutter":  # twice the texture's contrast around the mean
        bg = np.clip(2.0 * bg - bg.mean(axis=(0, 1)), 0.0, 1.0).astype(np.float32)
    return bg


def _num_distractors(rng: np.random.Generator, style: str) -> int:
    if style == "flat":
        return 0
    return int(rng.integers(4, 7)) if style == "clutter" else int(rng.integers(1, 4))


def _repeat_track(
    rng: np.random.Generator, n: int, w: int, h: int, bg_mean: np.ndarray, count: int
) -> tuple[_Track, str]:
    """An actor repeating one motion ``count`` times over the action's span (a hop, a swing, a pulse), and the
    motion's name."""
    track = _actor_track(rng, "static", n, w, h, bg_mean)
    u, rmax = _progress(rng, n), float(track.r.max())
    cycle = (1 - np.cos(2 * np.pi * count * u)) / 2  # 0 -> 1 -> 0, count times
    motion = ("hop", "swing_x", "swing_y", "pulse")[int(rng.integers(4))]
    if motion == "hop":
        floor = h - rmax - 1
        track.cy = floor - rng.uniform(0.4, 0.7) * (floor - rmax - 1) * np.abs(np.sin(np.pi * count * u))
    elif motion == "swing_x":
        amp = rng.uniform(0.35, 0.6) * (w - 2 * rmax - 2)
        track.cx = rmax + 1 + rng.uniform(0, w - 2 * rmax - 2 - amp) + amp * cycle
    elif motion == "swing_y":
        amp = rng.uniform(0.35, 0.6) * (h - 2 * rmax - 2)
        track.cy = rmax + 1 + rng.uniform(0, h - 2 * rmax - 2 - amp) + amp * cycle
    else:
        track.r = track.r * (0.55 + 0.45 * (1 - cycle))  # shrinks to 55% and back, count times
    return track, motion


def _scene_actors(rng, variant: Variant, label: int, n: int, w: int, h: int, bg_mean) -> tuple[list[_Track], dict]:
    """The actor track(s) of a non-default variant (reversed where a class is played backwards) and the info."""
    if variant.kind == "repetition":
        count = 1 + label % variant.max_count
        track, motion = _repeat_track(rng, n, w, h, bg_mean, count)
        return [track], {"label": count, "class_name": f"count_{count}", "motion": motion}
    k = 2 + int(rng.integers(2))  # 2 or 3 actors doing different classes
    labels = sorted(int(c) for c in rng.choice(len(CLASSES), size=k, replace=False))
    tracks = []
    for c in labels:
        kind, backwards = _CLASS_MOTION[CLASSES[c]]
        track = _actor_track(rng, kind, n, w, h, bg_mean, size=0.6)
        tracks.append(track.reversed() if backwards else track)
    return tracks, {"label": labels[0], "labels": labels, "class_name": "multi"}


def _make_scene(index: int, seed: int, sizes: Sequence[tuple[int, int]], variant: Variant = _DEFAULT) -> _Scene:
    label = index % (variant.max_count if variant.kind == "repetition" else len(CLASSES))
    name = CLASSES[label]
    kind, backwards = _CLASS_MOTION[name]
    rng = np.random.default_rng([seed, index])
    w, h = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
    fps = int(FPS_CHOICES[int(rng.integers(len(FPS_CHOICES)))])
    duration = float(rng.uniform(*variant.duration))
    n = max(int(round(duration * fps)), 2)
    background = _styled_background(rng, h + 2 * _JITTER, w + 2 * _JITTER, variant.style)
    bg_mean = background.reshape(-1, 3).mean(axis=0)
    tracks = [_distractor_track(rng, n, w, h, bg_mean) for _ in range(_num_distractors(rng, variant.style))]
    extra = {"label": label, "class_name": name}
    if variant.kind == "actions":
        tracks.append(_actor_track(rng, kind, n, w, h, bg_mean))
    else:
        actors, extra = _scene_actors(rng, variant, label, n, w, h, bg_mean)
        tracks += actors
        backwards = False
    dx, dy = _camera_jitter(rng, n)
    if backwards:  # the partner class is the same scene played in reverse
        tracks = [tr.reversed() for tr in tracks]
        dx, dy = dx[::-1], dy[::-1]
    name = extra["class_name"]
    stem = f"{name}_{index:05d}"
    info = {
        "index": index,
        **extra,
        "video": f"videos/{name}/{stem}.mp4",
        "fps": fps,
        "width": w,
        "height": h,
        "num_frames": n,
        "duration": round(duration, 4),
        "actor_shape": tracks[-1].shape,
        "num_distractors": len(tracks) - (len(extra.get("labels", ())) or 1),
    }
    return _Scene(info, background, tracks, dx, dy, _actor_speed(tracks[-1], min(w, h)))


def render_synth_video(
    index: int, seed: int = 0, sizes: Sequence[tuple[int, int]] | None = None, variant: Variant = _DEFAULT
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render video ``index`` of a SynthActions dataset in memory, without encoding.

    Args:
        index: Video index; its class is ``index % len(CLASSES)``.
        seed: Dataset seed.
        sizes: Candidate ``(width, height)`` frame sizes; defaults to :data:`DEFAULT_SIZES`.
        variant: What the dataset shows (:class:`Variant`).

    Returns:
        ``(frames, info)``: uint8 RGB frames ``(T, H, W, 3)`` and a dict with label, class name, fps, width,
        height, num_frames, duration and ``speed`` (the regression target of the ``<split>_speed.txt`` lists).
    """
    scene = _make_scene(index, seed, _check_sizes(sizes), variant)
    return np.stack([_to_uint8(f) for f in _iter_frames(scene)]), {**scene.info, "speed": scene.speed}


def _to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """BT.601 limited-range conversion of a float (H, W, 3) RGB frame in [0, 1] to planar yuv420p (H * 3 // 2, W).

    Limited range stays inside [16, 240], so no clipping is needed; the + 0.5 rounds.
    """
    h, w = frame.shape[:2]
    x = np.ascontiguousarray(frame.transpose(2, 0, 1))  # (3, H, W): contiguous planes are ~2x faster below
    out = np.empty((h * 3 // 2, w), dtype=np.uint8)
    r, g, b = x
    out[:h] = r * 65.481 + g * 128.553 + b * 24.966 + 16.5
    r, g, b = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]  # 2x2 sums, (H/2, W/2)
    chroma = out[h:].reshape(2, -1)
    chroma[0] = (r * (-37.797 / 4) + g * (-74.203 / 4) + b * (112.0 / 4) + 128.5).reshape(-1)
    chroma[1] = (r * (112.0 / 4) + g * (-93.786 / 4) + b * (-18.214 / 4) + 128.5).reshape(-1)
    return out


# /proc/cpuinfo flag -> x264 CPU capability name
_X264_CPU_NAMES = (
    ("sse", "MMX2"), ("sse", "SSE"), ("sse2", "SSE2"), ("pni", "SSE3"), ("ssse3", "SSSE3"), ("sse4_1", "SSE4.1"),
    ("sse4_2", "SSE4.2"), ("abm", "LZCNT"), ("avx", "AVX"), ("fma", "FMA3"), ("bmi1", "BMI1"), ("bmi2", "BMI2"),
    ("avx2", "AVX2"),
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _x264_params() -> str:
    """Extra x264 settings that keep the encoder's output identical from run to run.

    Even single-threaded, x264's AVX-512 code paths produce slightly different bitstreams from one run to the
    next. On a CPU with AVX-512 we therefore list its other SIMD capabilities explicitly, which leaves AVX-512
    out (and is as fast); elsewhere x264 keeps its own CPU detection.
    """
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    if not any(flag.startswith("avx512") for flag in flags):
        return ""
    names = dict.fromkeys(name for flag, name in _X264_CPU_NAMES if flag in flags)
    return "asm=" + ",".join(names) if names else ""


def _write_video(
    path: Path, frames: Iterator[np.ndarray], fps: int, width: int, height: int, frame_dir=None, audio=None
) -> None:
    """Encode float RGB frames in [0, 1] to an H.264 MP4 (reproducible x264 settings); with ``frame_dir``, also
    as JPEG files ``img_00001.jpg`` ... there; with ``audio`` (float32 16 kHz mono), an AAC sound track."""
    if frame_dir is not None:
        from PIL import Image  # lazy: only frame folders need Pillow

        Path(frame_dir).mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        options = {"crf": str(_CRF), "preset": _PRESET}
        if _x264_params():
            options["x264-params"] = _x264_params()
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # multi-threaded x264 output depends on thread timing
        sound = _audio_stream(container) if audio is not None else None  # every stream before the first packet
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(_to_yuv420p(rgb), format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
            if frame_dir is not None:
                Image.fromarray(_to_uint8(rgb)).save(Path(frame_dir) / f"img_{i + 1:05d}.jpg", quality=_JPEG_QUALITY)
        container.mux(stream.encode(None))
        if sound is not None:
            _mux_audio(container, sound, audio)


def _audio_stream(container, rate: int = 16000):
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "mono"
    return stream


def _mux_audio(container, stream, wave: np.ndarray, rate: int = 16000) -> None:
    for start in range(0, len(wave), 1024):
        frame = av.AudioFrame.from_ndarray(wave[None, start : start + 1024], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _render_job(job: tuple[str, int, int, tuple[tuple[int, int], ...], bool, Variant]) -> tuple[dict[str, Any], float]:
    """Render, encode and (optionally) dump the JPEG frames of one video; returns its info dict and speed."""
    out_dir, index, seed, sizes, rawframes, variant = job
    root = Path(out_dir)
    scene = _make_scene(index, seed, sizes, variant)
    info = scene.info
    frame_dir = None
    if rawframes:
        info["rawframes"] = info["video"].replace("videos/", "rawframes/", 1)[: -len(".mp4")]
        frame_dir = root / info["rawframes"]
    sound = None
    if variant.audio:
        from vidlab.data.synthetic_audio import class_sound

        sound = class_sound(info["label"], info["num_frames"], info["fps"], seed, index)
    _write_video(
        root / info["video"], _iter_frames(scene), info["fps"], info["width"], info["height"], frame_dir, sound
    )
    return info, scene.speed


# ----------------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------------


def _check_sizes(sizes: Sequence[tuple[int, int]] | None) -> tuple[tuple[int, int], ...]:
    if sizes is None:
        return DEFAULT_SIZES
    out = tuple((int(w), int(h)) for w, h in sizes)
    if not out or any(w % 2 or h % 2 or min(w, h) < 32 for w, h in out):
        raise InputError(f"sizes must be a non-empty list of (width, height) with even values >= 32, got {sizes!r}")
    return out


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3 or any(s < 0 for s in split) or abs(sum(split) - 1.0) > 1e-6:
        raise InputError(f"split must be three non-negative fractions (train, val, test) summing to 1, got {split!r}")
    return (float(split[0]), float(split[1]), float(split[2]))


def _stratified_split(labels: Sequence[int], split: Sequence[float], seed: int) -> dict[str, list[int]]:
    """Assign video indices to train/val/test so that every class is split in the same proportions (+-1 video).

    The videos of each class are shuffled, then dealt round-robin (class order reshuffled each round) into one
    sequence whose consecutive chunks become the splits.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    by_class: dict[int, list[int]] = {}
    for idx, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(idx)
    queues = {lab: list(rng.permutation(idxs)) for lab, idxs in sorted(by_class.items())}
    order: list[int] = []
    for rnd in range(max(len(q) for q in queues.values())):
        for lab in rng.permutation(sorted(queues)):
            if rnd < len(queues[lab]):
                order.append(int(queues[lab][rnd]))
    n = len(order)
    n_train = int(round(split[0] * n))
    n_val = min(int(round(split[1] * n)), n - n_train)
    cuts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {name: sorted(idxs) for name, idxs in cuts.items()}


def _identity(
    num_videos: int, seed: int, split: Sequence[float], sizes: Sequence[tuple[int, int]], variant: Variant = _DEFAULT
) -> dict:
    """The settings that determine the dataset's content; a stored dataset is reused only if they all match."""
    return {
        **variant.identity(),
        "generator": "SynthActions",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "num_videos": num_videos,
        "split": list(split),
        "sizes": [list(s) for s in sizes],
        "fps_choices": list(FPS_CHOICES),
        "duration_range": list(variant.duration),
        "classes": list(CLASSES),
    }


def _is_complete(root: Path, identity: dict, rawframes: bool) -> bool:
    """Whether ``root`` already holds the dataset described by ``identity`` (with rawframes if asked)."""
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in identity.items()):
        return False
    if rawframes and not meta.get("rawframes"):
        return False
    names = ["label_map.txt", "flip_label_map.json", "pairs.json"] + [f"{s}.txt" for s in _SPLITS]
    # The <split>_speed.txt lists are not required: a dataset written before they existed gets them added.
    if meta.get("rawframes"):
        names += [f"{s}_rawframes.txt" for s in _SPLITS]
    if not all((root / name).is_file() for name in names):
        return False
    videos = meta.get("videos", [])
    return len(videos) == identity["num_videos"] and all((root / v["video"]).is_file() for v in videos)


def _write_text(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _list_target(info: dict[str, Any]) -> str:
    """A video's target in the lists: its class, its classes (multilabel) or its repetition count."""
    return " ".join(str(v) for v in info.get("labels", [info["label"]]))


def _write_annotations(root: Path, infos: list[dict[str, Any]], splits: dict[str, list[int]], rawframes: bool) -> None:
    _write_text(root / "label_map.txt", CLASSES)
    (root / "flip_label_map.json").write_text(json.dumps({str(k): v for k, v in FLIP_LABEL_MAP.items()}) + "\n")
    pairs = {"direction_pairs": [list(p) for p in DIRECTION_PAIRS], "classes": list(CLASSES)}
    (root / "pairs.json").write_text(json.dumps(pairs, indent=2) + "\n")
    for name, idxs in splits.items():
        _write_text(root / f"{name}.txt", [f"{infos[i]['video']} {_list_target(infos[i])}" for i in idxs])
        if rawframes:
            lines = [f"{infos[i]['rawframes']} {infos[i]['num_frames']} {_list_target(infos[i])}" for i in idxs]
            _write_text(root / f"{name}_rawframes.txt", lines)


def _write_speed_lists(
    root: Path, infos: list[dict[str, Any]], speeds: list[float], splits: dict[str, list[int]]
) -> None:
    """The regression lists ``<split>_speed.txt``: ``path speed``; each file is replaced whole (write, rename)."""
    for name, idxs in splits.items():
        tmp = root / f".{name}_speed.txt.tmp"
        _write_text(tmp, [f"{infos[i]['video']} {speeds[i]:.4f}" for i in idxs])
        tmp.replace(root / f"{name}_speed.txt")


def _run_jobs(
    jobs: list[tuple], workers: int, progress: bool, fn=_render_job, desc: str = "SynthActions"
) -> list[tuple[dict[str, Any], Any]]:
    """``fn(job)`` for every job (``(info dict, extra)`` results, sorted by ``info["index"]``), in ``workers``
    processes."""
    from tqdm import tqdm

    infos: list[tuple[dict[str, Any], Any]] = []
    if workers == 1 or len(jobs) == 1:
        for job in tqdm(jobs, desc=desc, unit="video", disable=not progress):
            infos.append(fn(job))
        return infos
    # fork where the platform has it: starts fast and works from scripts without a `__main__` guard. Workers only
    # run numpy and PyAV, and each video is seeded on its own, so the output is the same for any worker count.
    # The pool is started before the progress bar, whose monitor thread should not be alive across a fork.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(min(workers, len(jobs))) as pool:
        results = pool.imap_unordered(fn, jobs, chunksize=4)
        for info in tqdm(results, total=len(jobs), desc=desc, unit="video", disable=not progress):
            infos.append(info)
    return sorted(infos, key=lambda v: v[0]["index"])


def generate_synth_actions(
    out_dir: str | Path,
    num_videos: int = 1000,
    seed: int = 0,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    workers: int = 2,
    rawframes: bool = False,
    sizes: Sequence[tuple[int, int]] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    variant: Variant | None = None,
) -> dict[str, Any]:
    """Generate the SynthActions dataset (see the module docstring for the layout).

    If ``out_dir`` already holds a complete dataset with the same settings, nothing is rendered and its summary
    is returned at once. A dataset generated earlier with different settings (recognised by its ``meta.json``)
    is replaced.

    Args:
        out_dir: Output directory (created if missing).
        num_videos: Number of videos; video ``i`` belongs to class ``i % 12``, so classes are balanced.
        seed: Seed; the same seed gives byte-identical files.
        split: Train / val / test fractions; every class is split in these proportions.
        workers: Number of processes rendering and encoding videos.
        rawframes: Also write the frames as JPEGs (``rawframes/<class>/<stem>/img_00001.jpg``, 1-based) and the
            MMAction2 rawframe lists ``<split>_rawframes.txt``.
        sizes: Candidate ``(width, height)`` frame sizes, even values; defaults to :data:`DEFAULT_SIZES`.
        overwrite: Regenerate even if a matching dataset is already there.
        progress: Show a progress bar.
        variant: What the videos show (:class:`Variant`: the repetition-counting and multi-label variants, the
            flat / clutter render styles, the duration); default: the 12 action classes.

    Returns:
        A summary dict: ``out_dir``, ``classes``, ``num_videos``, ``splits`` (paths of the list files),
        ``split_sizes``, ``rawframe_splits`` (if any), ``speed_splits`` (paths of the regression lists),
        ``label_map``, ``flip_label_map``, ``pairs``, ``generated`` (False when an existing dataset was reused) and
        ``seconds``.

    Raises:
        ValueError: On invalid ``num_videos``, ``split``, ``workers`` or ``sizes``.
    """
    if int(num_videos) < 1:
        raise InputError(f"num_videos must be >= 1, got {num_videos}")
    if int(workers) < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    num_videos, seed, workers = int(num_videos), int(seed), int(workers)
    split, sizes = _check_split(split), _check_sizes(sizes)
    root = Path(out_dir)
    variant = variant or _DEFAULT
    identity = _identity(num_videos, seed, split, sizes, variant)
    start = time.perf_counter()
    generated = overwrite or not _is_complete(root, identity, rawframes)
    if generated:
        jobs = [(str(root), i, seed, sizes, rawframes, variant) for i in range(num_videos)]
        meta = _render_dataset(root, jobs, identity, split, seed, rawframes, workers, progress)
        logger.info("SynthActions: wrote %d videos to %s in %.1fs", num_videos, root, time.perf_counter() - start)
    else:
        meta = json.loads((root / "meta.json").read_text())
        logger.info("SynthActions: reusing the complete dataset in %s", root)
        if not all((root / f"{s}_speed.txt").is_file() for s in _SPLITS):  # written before the speed lists existed
            speeds = [_make_scene(i, seed, sizes, variant).speed for i in range(num_videos)]  # no rendering needed
            splits = _stratified_split([v["label"] for v in meta["videos"]], split, seed)
            _write_speed_lists(root, meta["videos"], speeds, splits)
    with_frames = bool(meta.get("rawframes"))
    return {
        "out_dir": str(root),
        "classes": list(CLASSES),
        "num_videos": num_videos,
        "splits": {s: str(root / f"{s}.txt") for s in _SPLITS},
        "split_sizes": dict(meta["split_sizes"]),
        "rawframe_splits": {s: str(root / f"{s}_rawframes.txt") for s in _SPLITS} if with_frames else {},
        "speed_splits": {s: str(root / f"{s}_speed.txt") for s in _SPLITS},
        "label_map": str(root / "label_map.txt"),
        "flip_label_map": dict(FLIP_LABEL_MAP),
        "pairs": [list(p) for p in DIRECTION_PAIRS],
        "generated": generated,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _render_dataset(root: Path, jobs: list, identity: dict, split, seed: int, rawframes: bool, workers: int,
                    progress: bool) -> dict:  # fmt: skip
    """Render and encode every video of ``jobs`` into ``root`` and write the lists; returns the ``meta.json`` it
    wrote last (its presence marks a complete dataset)."""
    _prepare_dir(root)
    infos, speeds = (list(x) for x in zip(*_run_jobs(jobs, workers, progress)))
    splits = _stratified_split([v["label"] for v in infos], split, seed)
    _write_annotations(root, infos, splits, rawframes)
    _write_speed_lists(root, infos, speeds, splits)
    meta = {**identity, "rawframes": rawframes, "split_sizes": {k: len(v) for k, v in splits.items()}}
    meta["videos"] = infos
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _prepare_dir(root: Path) -> None:
    """Create ``root``; if it holds an earlier SynthActions dataset (it has our meta.json), remove that first.

    Only the paths this generator writes are removed, and only when ``meta.json`` proves they are ours.
    """
    root.mkdir(parents=True, exist_ok=True)
    meta_path = root / "meta.json"
    try:
        ours = json.loads(meta_path.read_text()).get("generator") == "SynthActions"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        return
    meta_path.unlink()
    for sub in ("videos", "rawframes"):
        if (root / sub).is_dir():
            shutil.rmtree(root / sub)
    for name in ["label_map.txt", "flip_label_map.json", "pairs.json"] + [f"{s}.txt" for s in _SPLITS]:
        (root / name).unlink(missing_ok=True)
    for s in _SPLITS:
        (root / f"{s}_rawframes.txt").unlink(missing_ok=True)
        (root / f"{s}_speed.txt").unlink(missing_ok=True)
