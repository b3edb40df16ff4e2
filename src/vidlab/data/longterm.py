"""Long-term video: trimmed sliding windows, per-video aggregation, and the Breakfast / COIN / LVU annotation files.

Long videos (minutes) are classified either whole, with sparse sampling (:class:`~vidlab.data.SparseSample`, 32 or
64 frames spread over the video, VideoMamba's ``Kinetics_sparse``), or as **trimmed windows** (VideoMamba's ``LVU``
dataset, ``--trimmed 60 --time_stride 16``): every ``time_stride`` seconds a window of ``trimmed`` seconds starts;
the last window, cut at the video's end, is kept only if it is at least half as long; a video shorter than
``trimmed`` is one window. Each window is a training sample with its video's label, sampled sparsely inside the
window. At test time vidlab scores every window and averages them per video (the mean of the windows'
probabilities, or of their regression outputs): ``data.windows.test: all``. VideoMamba's own test scores every
window too, but its merge keeps the first result it reads for each (clip, crop) of a video and drops the rest,
which with one process is the video's first window: ``data.windows.test: first`` reproduces that.

The annotation file VideoMamba reads is a headerless CSV ``path,label[,duration]`` (``--split ','``; duration in
seconds, needed by the windowed ``LVU`` loader): ``data.format: videomamba_csv``. :func:`breakfast_rows`,
:func:`coin_rows` and :func:`lvu_rows` turn the original datasets' files into such rows (``vidlab data longterm-list``).
"""

from __future__ import annotations

import copy
import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vidlab.data.datasets import AnnotationError, VideoItem, _lines, _TargetParser, resolve_target_type
from vidlab.errors import InputError

__all__ = [
    "LVU_TASKS",
    "WINDOW_TESTS",
    "aggregate_by_video",
    "breakfast_rows",
    "coin_rows",
    "expand_windows",
    "lvu_rows",
    "lvu_target",
    "parse_videomamba_csv",
    "sliding_windows",
    "window_frames",
    "write_videomamba_csv",
]

WINDOW_TESTS = ("all", "first")

# LVU's tasks: classes of the classification tasks, None for the two regression tasks (ViS4mer / VideoMamba).
LVU_TASKS: dict[str, int | None] = {
    "relationship": 4,
    "way_speaking": 5,
    "scene": 6,
    "director": 10,
    "genre": 4,
    "writer": 10,
    "year": 9,
    "like_ratio": None,
    "view_count": None,
}
# ViS4mer's target normalisation of the regression tasks (means over its training split).
_VIEW_COUNT_OFFSET = 11.76425435683139
_LIKE_RATIO_OFFSET = 9.138220535629456

BREAKFAST_CLASSES = (
    "cereals", "coffee", "tea", "pancake", "friedegg", "scrambledegg", "sandwich", "juice", "milk", "salat",
)  # fmt: skip


def sliding_windows(duration_s: float, trimmed: float, time_stride: float) -> list[tuple[float, float]]:
    """The ``(start, end)`` windows, in seconds, that VideoMamba's ``LVU`` loader cuts from a video.

    A video shorter than ``trimmed`` is one window ``(0, duration)``. Otherwise windows start at
    ``0, time_stride, 2 * time_stride, ...`` below ``int(duration)`` and last ``trimmed`` seconds; a window reaching
    past the end is cut at ``duration`` if at least ``trimmed / 2`` remains, and dropped otherwise.
    """
    if not (trimmed > 0 and time_stride > 0):
        raise InputError(f"trimmed and time_stride must be positive, got {trimmed!r} and {time_stride!r}")
    if not (duration_s >= 0 and math.isfinite(duration_s)):
        raise InputError(f"duration must be a finite number of seconds >= 0, got {duration_s!r}")
    if duration_s < trimmed:
        return [(0.0, float(duration_s))]
    windows = []
    for start in np.arange(0, int(duration_s), time_stride):
        start = float(start)
        end = start + trimmed
        if end > duration_s:
            if duration_s - start < trimmed / 2:
                continue
            end = float(duration_s)
        windows.append((start, end))
    return windows


def window_frames(window: tuple[float, float], num_frames: int, fps: float) -> tuple[int, int]:
    """The first and last frame (inclusive) of a window, as VideoMamba locates them: ``int(t * fps)``, clamped to
    the video (a window past the end shrinks to the last frame)."""
    first = max(0, min(int(window[0] * fps), num_frames - 1))
    last = max(first, min(int(window[1] * fps), num_frames - 1))
    return first, last


def _duration(item: VideoItem, backend: str) -> float:
    if "duration" in item.meta:
        return float(item.meta["duration"])
    from vidlab.data.decode import VideoReader

    with VideoReader(item.path, backend=backend) as reader:
        return float(reader.duration)


def expand_windows(
    items: list[VideoItem], trimmed: float, time_stride: float, *, keep: str = "all", backend: str = "pyav"
) -> list[VideoItem]:
    """One item per window of each video (:func:`sliding_windows`); ``keep="first"``: only each video's first.

    Every window item keeps its video's path and label and gets ``meta["window"] = [start, end]`` (seconds) and
    ``meta["video"]``, the index of its video in ``items`` (what :func:`aggregate_by_video` groups by). A video's
    duration is the item's ``meta["duration"]`` (the CSV's third column) or, without one, read from the file.
    """
    if keep not in WINDOW_TESTS:
        raise InputError(f"windows: keep must be one of {list(WINDOW_TESTS)}, got {keep!r}")
    out = []
    for v, item in enumerate(items):
        windows = sliding_windows(_duration(item, backend), trimmed, time_stride)
        for start, end in windows[:1] if keep == "first" else windows:
            win = copy.copy(item)
            win.meta = {**item.meta, "window": [start, end], "video": v}
            out.append(win)
    return out


def aggregate_by_video(
    scores: np.ndarray, labels: np.ndarray, groups: Iterable[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean of the rows of ``scores`` that share a group (a video's windows), in order of first appearance.

    Returns:
        ``(scores (V, K), labels (V, ...), the group of each row)``; a video's label is its first window's.
    """
    groups = np.asarray(list(groups))
    if len(groups) != len(scores):
        raise InputError(f"{len(groups)} groups for {len(scores)} score rows")
    order, first = np.unique(groups, return_index=True)
    order = order[np.argsort(first)]
    rows = [scores[groups == g].mean(axis=0) for g in order]
    return np.stack(rows).astype(scores.dtype), labels[np.sort(first)], order


def parse_videomamba_csv(
    ann_file: str | Path,
    root: str | Path,
    *,
    delimiter: str = ",",
    num_classes: int | None = None,
    target_type: str | None = None,
) -> list[VideoItem]:
    """VideoMamba's headerless ``path,label[,duration]`` CSV (``--split ','``); a duration goes to ``meta``.

    A regression list has one float target (``path,value[,duration]``), as VideoMamba's LVU regression.
    """
    ann_file, root = Path(ann_file), Path(root)
    kind = resolve_target_type(target_type)
    if kind == "multi_label":
        raise AnnotationError(f"{ann_file}: the VideoMamba CSV has one label per video; multi-label needs a video list")
    targets = _TargetParser(ann_file, kind, num_classes)
    items = []
    for lineno, line in _lines(ann_file):
        fields = [f.strip() for f in line.split(delimiter)]
        if len(fields) not in (2, 3) or not fields[0]:
            raise AnnotationError(
                f"{ann_file}:{lineno}: expected 'path{delimiter}label[{delimiter}duration]', got {line!r}"
            )
        meta = {}
        if len(fields) == 3:
            try:
                meta["duration"] = float(fields[2])
            except ValueError:
                raise AnnotationError(f"{ann_file}:{lineno}: duration must be seconds, got {fields[2]!r}") from None
            if not (meta["duration"] >= 0 and math.isfinite(meta["duration"])):
                raise AnnotationError(f"{ann_file}:{lineno}: duration must be >= 0 seconds, got {fields[2]!r}")
        items.append(VideoItem(str(root / fields[0]), targets([fields[1]], lineno), rel_path=fields[0], meta=meta))
    return items


Row = tuple[str, float, float | None]  # (path, label or target, duration in seconds or None)


def write_videomamba_csv(rows: Iterable[Row], out: str | Path) -> int:
    """Write ``path,label[,duration]`` lines (no header); returns the number of rows."""
    lines = []
    for path, label, duration in rows:
        value = int(label) if float(label).is_integer() else repr(float(label))
        lines.append(f"{path},{value}" + ("" if duration is None else f",{duration:g}"))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(line + "\n" for line in lines))
    return len(lines)


def _csv_rows(path: Path, delimiter: str = ","):
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    with path.open(newline="") as f:
        yield from enumerate(csv.reader(f, delimiter=delimiter), start=1)


def breakfast_rows(vis4mer_csv: str | Path, video_tmpl: str = "{file_name}.mp4") -> list[Row]:
    """ViS4mer's ``data/Breakfast/{train,test}.csv`` (header ``file_name,duration,action,class_id``) -> rows.

    The class index is the file's ``class_id`` (cereals 0, coffee 1, tea 2, pancake 3, friedegg 4, scrambledegg 5,
    sandwich 6, juice 7, milk 8, salat 9); its ``action`` must name the same class.
    """
    path, rows = Path(vis4mer_csv), []
    for lineno, fields in _csv_rows(path):
        if lineno == 1 and fields[:1] == ["file_name"]:
            continue
        if len(fields) != 4:
            raise AnnotationError(f"{path}:{lineno}: expected 'file_name,duration,action,class_id', got {fields!r}")
        name, duration, action, class_id = fields
        try:
            label, seconds = int(class_id), float(duration)
        except ValueError:
            raise AnnotationError(f"{path}:{lineno}: duration and class_id must be numbers, got {fields!r}") from None
        if not 0 <= label < len(BREAKFAST_CLASSES) or BREAKFAST_CLASSES[label] != action:
            raise AnnotationError(f"{path}:{lineno}: class_id {class_id} does not name action {action!r}")
        rows.append((video_tmpl.format(file_name=name, action=action), label, seconds))
    return rows


def coin_rows(coin_json: str | Path, subset: str, video_tmpl: str = "{recipe_type}/{id}.mp4") -> list[Row]:
    """``COIN.json`` -> rows of one subset (``training`` | ``testing``); the label is ``recipe_type`` (180 tasks)."""
    path = Path(coin_json)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    try:
        database = json.loads(path.read_text())["database"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise AnnotationError(f"{path}: expected COIN's {{'database': {{id: {{...}}}}}} JSON ({e})") from None
    rows = []
    for vid, entry in database.items():
        try:
            if entry["subset"] != subset:
                continue
            recipe = int(entry["recipe_type"])
            duration = float(entry["duration"]) if "duration" in entry else None
        except (KeyError, TypeError, ValueError) as e:
            raise AnnotationError(f"{path}: video {vid!r}: needs subset and an integer recipe_type ({e!r})") from None
        rows.append((video_tmpl.format(id=vid, recipe_type=recipe), recipe, duration))
    return rows


def lvu_target(task: str, fields: list[str]) -> float:
    """The target of one line of an original LVU task file (``split()`` fields), ViS4mer's normalisation included:
    ``view_count``: ``log(views) - 11.764...``; ``like_ratio``: ``like / (like + dislike) * 10 - 9.138...``;
    classification tasks: the class id (first field)."""
    if task == "view_count":
        return math.log(float(fields[0])) - _VIEW_COUNT_OFFSET
    if task == "like_ratio":
        like, dislike = float(fields[0]), float(fields[1])
        return like / (like + dislike) * 10 - _LIKE_RATIO_OFFSET
    return float(int(fields[0]))


def lvu_rows(
    task_csv: str | Path, task: str, durations_csv: str | Path | None = None, video_tmpl: str = "{id}.mp4"
) -> list[Row]:
    """An original ``lvu_1.0/{task}/{split}.csv`` (space-separated, with a header) -> rows.

    The video id is the second-to-last field (ViS4mer's ``split()[-2]``); durations come from ``lvu_durations.csv``
    (``videoid,duration``) when given (the windowed loader needs them).
    """
    if task not in LVU_TASKS:
        raise InputError(f"unknown LVU task {task!r}; choose one of {sorted(LVU_TASKS)}")
    durations = _lvu_durations(Path(durations_csv)) if durations_csv is not None else {}
    path, rows = Path(task_csv), []
    width = {"view_count": 3, "like_ratio": 4}.get(task, 4)
    classes = LVU_TASKS[task]
    for lineno, line in _lines(path):
        if lineno == 1:
            continue  # the header
        fields = line.split()
        if len(fields) < width:
            raise AnnotationError(f"{path}:{lineno}: expected {width} space-separated fields for {task}, got {line!r}")
        try:
            target = lvu_target(task, fields)
        except (ValueError, ZeroDivisionError) as e:
            raise AnnotationError(f"{path}:{lineno}: bad {task} target in {line!r} ({e})") from None
        if classes is not None and not 0 <= target < classes:
            raise AnnotationError(f"{path}:{lineno}: class {int(target)} out of range [0, {classes}) for {task}")
        vid = fields[-2]
        rows.append((video_tmpl.format(id=vid), target, durations.get(vid)))
    return rows


def _lvu_durations(path: Path) -> dict[str, float]:
    out = {}
    for lineno, fields in _csv_rows(path):
        if lineno == 1 and fields and fields[0] == "videoid":
            continue
        try:
            out[fields[0]] = float(fields[1])
        except (IndexError, ValueError):
            raise AnnotationError(f"{path}:{lineno}: expected 'videoid,duration', got {fields!r}") from None
    return out
