"""Annotation formats -> dataset items -> (clip, target).

Supported annotation files (the formats MMAction2 users already have):

- video list: ``path label`` per line, multi-label ``path l1 l2 ...``, regression ``path v1 [v2 ...]`` (float
  targets); paths relative to the data root;
- rawframes list: ``frame_dir total_frames label [label ...]`` (or float targets), frames named by a template
  (``img_{:05}.jpg``) starting at ``start_index`` (1 by default, as MMAction2); with ``modality="Flow"`` the folders
  hold optical flow as x/y image pairs (``{}_{:05d}.jpg``, :mod:`vidlab.data.flow`) and ``total_frames`` counts them;
- Kinetics-style CSV with a header: ``label,youtube_id,time_start,time_end,split[,is_cc]``; the clip is
  ``<label with underscores>/<youtube_id>_<start:06d>_<end:06d>.mp4`` under the root and the class index
  comes from the label map (or the sorted class names of the file when no label map is given).

A malformed line raises :class:`AnnotationError` naming the file and the line number.

What a line's targets mean is the ``target_type``: ``class`` (one class index), ``multi_label`` (class indices,
multi-hot target) or ``regression`` (float values, the same number on every line; float32 target).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vidlab.data.decode import VideoDecodeError, VideoReader
from vidlab.data.flow import check_flow_tmpl, read_flow_frames, stack_flow
from vidlab.data.timelimit import sample_time_limit
from vidlab.errors import InputError, MissingFileError

logger = logging.getLogger(__name__)


TARGET_TYPES = ("class", "multi_label", "regression")


class AnnotationError(InputError):
    """An annotation file cannot be parsed; the message names the file and line."""


@dataclasses.dataclass
class VideoItem:
    """One annotated video (or frame folder).

    Attributes:
        path: What is read: the data root joined with ``rel_path``.
        label: Class indices (``class``, ``multi_label``) or float values (``regression``).
        total_frames: Frame count, known for rawframes.
        rel_path: The path as written in the annotation file, relative to the data root; None for an item built
            from a bare path (e.g. ``vidlab predict video.mp4``).
        meta: Extra per-video entries (timestamps, boxes, the ``fps`` of a frame folder, ...), copied into the
            ``meta`` of every dataset item made from this one.
    """

    path: str
    label: list
    total_frames: int | None = None
    rel_path: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)


def resolve_target_type(target_type: str | None, multi_label: bool = False) -> str:
    """The target type from the ``target_type`` option and the older ``multi_label`` flag.

    Args:
        target_type: ``"class"``, ``"multi_label"``, ``"regression"``, or None to follow ``multi_label``.
        multi_label: The older flag: True means ``"multi_label"``.

    Raises:
        ValueError: Unknown ``target_type``, or ``multi_label=True`` with another target type.
    """
    if target_type is None:
        return "multi_label" if multi_label else "class"
    if target_type not in TARGET_TYPES:
        raise InputError(f"target_type must be one of {', '.join(TARGET_TYPES)}; got {target_type!r}")
    if multi_label and target_type != "multi_label":
        raise InputError(f"multi_label=True contradicts target_type={target_type!r}; pass only target_type")
    return target_type


def _parse_labels(fields: list[str], ann_file: Path, lineno: int, num_classes: int | None) -> list[int]:
    try:
        labels = [int(x) for x in fields]
    except ValueError:
        raise AnnotationError(f"{ann_file}:{lineno}: labels must be integers, got {' '.join(fields)!r}") from None
    for lab in labels:
        if lab < 0 or (num_classes is not None and lab >= num_classes):
            raise AnnotationError(f"{ann_file}:{lineno}: label {lab} out of range [0, {num_classes})")
    return labels


class _TargetParser:
    """Parses the target fields of one annotation file's lines; regression lines must all have as many values."""

    def __init__(self, ann_file: Path, target_type: str, num_classes: int | None):
        self.ann_file, self.target_type, self.num_classes = ann_file, target_type, num_classes
        self.width: tuple[int, int] | None = None  # (number of values, line it was first seen on)

    def __call__(self, fields: list[str], lineno: int) -> list:
        if self.target_type != "regression":
            return _parse_labels(fields, self.ann_file, lineno, self.num_classes)
        where = f"{self.ann_file}:{lineno}"
        try:
            values = [float(x) for x in fields]
        except ValueError:
            raise AnnotationError(f"{where}: regression targets must be numbers, got {' '.join(fields)!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise AnnotationError(f"{where}: regression targets must be finite, got {' '.join(fields)!r}")
        if self.width is None:
            self.width = (len(values), lineno)
        elif len(values) != self.width[0]:
            raise AnnotationError(
                f"{where}: expected {self.width[0]} regression target(s) as on line {self.width[1]}, got {len(values)}"
            )
        return values


def _lines(ann_file: Path):
    if not ann_file.is_file():
        raise AnnotationError(f"annotation file not found: {ann_file}")
    for lineno, raw in enumerate(ann_file.read_text().splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line


_TARGET_FIELDS = {"class": "label", "multi_label": "label [label ...]", "regression": "value [value ...]"}


def parse_video_list(
    ann_file: str | Path,
    root: str | Path,
    multi_label: bool = False,
    num_classes: int | None = None,
    *,
    target_type: str | None = None,
) -> list[VideoItem]:
    """Parse an MMAction2 video list: ``path label``, ``path l1 l2 ...`` or ``path v1 [v2 ...]`` (regression).

    Args:
        ann_file: The list file.
        root: Data root the paths are relative to.
        multi_label: Older spelling of ``target_type="multi_label"``.
        num_classes: If set, class labels must lie in ``[0, num_classes)``.
        target_type: ``"class"`` (default), ``"multi_label"`` or ``"regression"`` (float targets).

    Raises:
        AnnotationError: A missing file or a malformed line (the message names file:line).
    """
    ann_file, root = Path(ann_file), Path(root)
    kind = resolve_target_type(target_type, multi_label)
    targets = _TargetParser(ann_file, kind, num_classes)
    items = []
    for lineno, line in _lines(ann_file):
        fields = line.split()
        if len(fields) < 2 or (len(fields) > 2 and kind == "class"):
            expected = "'path label' or 'path l1 l2 ...'" if kind == "multi_label" else f"'path {_TARGET_FIELDS[kind]}'"
            raise AnnotationError(f"{ann_file}:{lineno}: expected {expected}, got {line!r}")
        items.append(VideoItem(str(root / fields[0]), targets(fields[1:], lineno), rel_path=fields[0]))
    return items


def parse_rawframe_list(
    ann_file: str | Path,
    root: str | Path,
    multi_label: bool = False,
    num_classes: int | None = None,
    *,
    target_type: str | None = None,
) -> list[VideoItem]:
    """Parse an MMAction2 rawframes list (``frame_dir total_frames label [label ...]``).

    Arguments and errors as :func:`parse_video_list`; regression values follow ``total_frames``.
    """
    ann_file, root = Path(ann_file), Path(root)
    kind = resolve_target_type(target_type, multi_label)
    targets = _TargetParser(ann_file, kind, num_classes)
    items = []
    for lineno, line in _lines(ann_file):
        fields = line.split()
        if len(fields) < 3 or (len(fields) > 3 and kind == "class"):
            expected = f"'frame_dir total_frames {_TARGET_FIELDS[kind]}'"
            raise AnnotationError(f"{ann_file}:{lineno}: expected {expected}, got {line!r}")
        if not fields[1].isdigit() or int(fields[1]) <= 0:
            raise AnnotationError(f"{ann_file}:{lineno}: total_frames must be a positive integer, got {fields[1]!r}")
        labels = targets(fields[2:], lineno)
        items.append(VideoItem(str(root / fields[0]), labels, int(fields[1]), rel_path=fields[0]))
    return items


def parse_kinetics_csv(ann_file: str | Path, root: str | Path, classes: list[str] | None = None) -> list[VideoItem]:
    """Parse a Kinetics CSV (``label,youtube_id,time_start,time_end,split[,is_cc]`` with a header)."""
    ann_file, root = Path(ann_file), Path(root)
    if not ann_file.is_file():
        raise AnnotationError(f"annotation file not found: {ann_file}")
    with ann_file.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:4]] != ["label", "youtube_id", "time_start", "time_end"]:
        raise AnnotationError(f"{ann_file}:1: expected header 'label,youtube_id,time_start,time_end,split'")
    body = [(i, r) for i, r in enumerate(rows[1:], start=2) if r]
    if classes is None:
        classes = sorted({r[0] for _, r in body})
    index = {name.replace(" ", "_"): i for i, name in enumerate(classes)}
    items = []
    for lineno, r in body:
        if len(r) < 5:
            raise AnnotationError(f"{ann_file}:{lineno}: expected at least 5 columns, got {len(r)}")
        name = r[0].replace(" ", "_")
        if name not in index:
            raise AnnotationError(f"{ann_file}:{lineno}: label {r[0]!r} is not in the label map")
        try:
            start, end = int(float(r[2])), int(float(r[3]))
        except ValueError:
            raise AnnotationError(f"{ann_file}:{lineno}: time_start/time_end must be numbers") from None
        rel_path = f"{name}/{r[1]}_{start:06d}_{end:06d}.mp4"
        items.append(VideoItem(str(root / rel_path), [index[name]], rel_path=rel_path))
    return items


def read_label_map(path: str | Path) -> list[str]:
    """One class name per line (line i = label i), as Kinetics/MMAction2 label maps."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"label map not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class _FrameSource:
    """Reads frames of one item, from a video file or a folder of images.

    ``fps`` is the decoder's frame rate for a video file, the item's ``meta["fps"]`` for a frame folder, and None
    where it is unknown.
    """

    def __init__(
        self, item: VideoItem, fmt: str, short_side: int | None, backend: str, tmpl: str, start: int, modality: str
    ):
        self.item, self.fmt, self.tmpl, self.start, self.modality = item, fmt, tmpl, start, modality
        self.reader = None
        if fmt == "rawframes":
            self.num_frames = item.total_frames
            fps = item.meta.get("fps")
        elif fmt == "image":  # a still image is a one-frame video: the sampler repeats it to fill the clip
            self.num_frames, fps = 1, None
        else:
            self.reader = VideoReader(item.path, backend=backend, short_side=short_side)
            self.num_frames = self.reader.num_frames
            fps = self.reader.fps
        self.fps: float | None = float(fps) if fps else None  # a rate of 0 means the container does not say
        self.short_side = short_side

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.reader is not None:
            return self.reader.read(indices)
        if self.modality == "Flow":
            return read_flow_frames(self.item.path, indices, self.tmpl, self.short_side)  # (N, H, W, 2)
        if self.fmt == "image":
            path = Path(self.item.path)
            name = path.name.replace("{", "{{").replace("}", "}}")  # a file name, not a template
            return _read_rawframes(str(path.parent), np.zeros_like(indices), name, self.short_side)
        return _read_rawframes(self.item.path, indices, self.tmpl, self.short_side)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _read_rawframes(frame_dir: str, indices: np.ndarray, tmpl: str, short_side: int | None) -> np.ndarray:
    from PIL import Image  # pillow ships with matplotlib; only rawframes need it

    cache: dict[int, np.ndarray] = {}
    out = []
    for idx in indices.tolist():
        if idx not in cache:
            path = Path(frame_dir) / tmpl.format(idx)
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    if short_side:
                        w, h = im.size
                        s = short_side / min(w, h)
                        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
                    cache[idx] = np.asarray(im)
            except (OSError, ValueError) as e:
                raise VideoDecodeError(str(path), f"cannot read frame: {e}") from e
        out.append(cache[idx])
    return np.stack(out)


def item_label(item: VideoItem, target_type: str):
    """What a sample's target is made from: the class (``class``), the list of classes or of regression values."""
    return item.label[0] if target_type == "class" else list(item.label)


def _check_modality(modality: str, fmt: str, input_format: str, filename_tmpl: str) -> None:
    """Raise a clear error for a modality the other arguments cannot serve."""
    if modality not in ("RGB", "Flow"):
        raise InputError(f"modality must be 'RGB' or 'Flow', got {modality!r}")
    if modality == "Flow" and fmt != "rawframes":
        raise InputError(
            f"modality='Flow' reads folders of x/y flow images (fmt='rawframes'), not fmt={fmt!r}; extract them "
            "first with `vidlab data flow`"
        )
    if input_format == "NCHW_Flow" and modality != "Flow":
        raise InputError("input_format='NCHW_Flow' stacks flow frames: it needs modality='Flow'")
    if modality == "Flow":
        check_flow_tmpl(filename_tmpl)


def _make_target(label, target_type: str, num_classes: int | None) -> torch.Tensor:
    """The item's target tensor.

    ``class``: int64 scalar; ``multi_label``: multi-hot float ``(num_classes,)``; ``regression``: float32
    ``(num_targets,)``.
    """
    if target_type == "class":
        return torch.tensor(label, dtype=torch.long)
    if target_type == "multi_label":
        target = torch.zeros(num_classes)
        target[label] = 1.0
        return target
    return torch.tensor(label, dtype=torch.float32)


class VideoDataset(torch.utils.data.Dataset):
    """Items of an annotation file -> dicts with ``imgs`` uint8 ``(V, T, H, W, C)``, ``label`` and ``meta``.

    ``meta`` holds ``path`` (the file read), ``rel_path`` (as in the annotation file, or None), ``fps`` (float, or
    None for a frame folder without ``meta["fps"]``), ``total_frames``, ``frame_inds`` (the sampler's indices, 0-based
    positions in the video: ``frame_inds / fps`` are timestamps) and the entries of the item's own ``meta``. With
    ``on_error="skip"`` it describes the substitute actually read.

    Args:
        items: parsed annotation items.
        sampler: frame-index sampler, ``sampler(total_frames, rng, fps=fps) -> indices`` (every sampler of
            :mod:`vidlab.data.sampling`); it gets the video's frame rate, or None where unknown.
        pipeline: transform callable on the MMAction2-style results dict.
        num_classes: used to build multi-hot targets for ``multi_label``; ignored otherwise.
        fmt: ``video`` or ``rawframes`` (how to read an item).
        modality: ``RGB``, or ``Flow`` for folders of x/y flow images (``fmt="rawframes"``): frames are uint8
            ``(H, W, 2)``, and the pipeline's results carry ``"modality": "Flow"`` so that ``Flip`` inverts x.
        target_type: ``class`` (int64 scalar ``label``), ``multi_label`` (multi-hot float ``(num_classes,)``) or
            ``regression`` (float32 ``(num_targets,)``; the values bypass the pipeline, so a flip's label map
            cannot touch them). None: from ``multi_label``.
        multi_label: older spelling of ``target_type="multi_label"``.
        input_format: ``NCTHW`` (a view is one clip of ``clip_len`` frames), ``NCHW`` (a view is
            ``num_segments`` frames, for 2D models) or ``NCHW_Flow`` (flow for 2D models: each clip's ``clip_len``
            flow frames stacked into ``2 * clip_len`` channels by :func:`~vidlab.data.flow.stack_flow`, a view being
            ``num_segments`` such stacks: MMAction2's TSN flow input).
        on_error: ``raise`` (undecodable video -> error naming the file) or ``skip`` (another sample is
            substituted and the path is reported in the item's ``skipped`` list).
        decode_timeout: seconds reading one sample may take (None or 0: no limit); then a
            :class:`~vidlab.data.timelimit.DecodeTimeout`, handled like an undecodable video (``on_error``), or, if
            the read is stuck in native code, the process ends with a line naming the file
            (:mod:`vidlab.data.timelimit`).
        seed: base of the per-sample random generator ``(seed, epoch, index)``, so a sample's random
            crop/flip/offsets do not depend on worker count or order.
        repeated_aug: repeated augmentation (VideoMAE's ``num_sample``): the sampled frames are decoded once and
            passed through ``pipeline`` this many times (independent draws from the sample's generator), and the
            results are stacked as views: ``imgs`` ``(repeated_aug * V, T, H, W, C)``, repeat-major. The item then
            also holds ``view_label``, the target of each view ``(repeated_aug * V[, num_classes])`` (a flip with a
            label map may change one repeat's label; ``label`` is the first repeat's); regression targets, which
            the pipeline never touches, get none. Every repeat must give frames of one shape.
    """

    def __init__(
        self,
        items: list[VideoItem],
        sampler: Callable,
        pipeline: Callable,
        num_classes: int,
        *,
        fmt: str = "video",
        modality: str = "RGB",
        multi_label: bool = False,
        target_type: str | None = None,
        input_format: str = "NCTHW",
        num_segments: int = 8,
        on_error: str = "raise",
        decode_timeout: float | None = None,
        short_side: int | None = None,
        backend: str = "pyav",
        filename_tmpl: str = "img_{:05}.jpg",
        start_index: int | None = None,
        seed: int = 0,
        repeated_aug: int = 1,
    ):
        if on_error not in ("raise", "skip"):
            raise InputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if isinstance(repeated_aug, bool) or not isinstance(repeated_aug, int) or repeated_aug < 1:
            raise InputError(f"repeated_aug must be a positive int, got {repeated_aug!r}")
        self.repeated_aug = repeated_aug
        _check_modality(modality, fmt, input_format, filename_tmpl)
        self.modality = modality
        self.items, self.sampler, self.pipeline = items, sampler, pipeline
        self.target_type = resolve_target_type(target_type, multi_label)
        self.num_classes, self.fmt, self.multi_label = num_classes, fmt, self.target_type == "multi_label"
        self.input_format, self.num_segments, self.on_error = input_format, num_segments, on_error
        self.decode_timeout = decode_timeout
        self.short_side, self.backend, self.filename_tmpl = short_side, backend, filename_tmpl
        self.start_index = start_index if start_index is not None else (1 if fmt == "rawframes" else 0)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, idx: int, rng: np.random.Generator) -> dict:
        item = self.items[idx]
        source = _FrameSource(
            item, self.fmt, self.short_side, self.backend, self.filename_tmpl, self.start_index, self.modality
        )
        try:
            indices = self._sample(item, source, rng)
            frames = source.read(indices + self.start_index)
        finally:
            source.close()
        results = {
            "imgs": torch.from_numpy(frames),
            "rng": rng,
            "num_clips": self.sampler.num_clips,
            "clip_len": self.sampler.clip_len,
            "modality": self.modality,
        }
        if self.target_type != "regression":
            results["label"] = item_label(item, self.target_type)
        runs = [self.pipeline(dict(results)) for _ in range(self.repeated_aug)]  # the same frames, fresh draws
        per_view = self.sampler.clip_len if self.input_format == "NCTHW" else self.num_segments
        views = []
        for run in runs:
            imgs = run["imgs"]  # (N, H, W, C) with N = num_crops * num_clips * clip_len
            if self.input_format == "NCHW_Flow":
                imgs = stack_flow(imgs, self.sampler.clip_len)  # (N / clip_len, H, W, 2 * clip_len)
            if imgs.shape[0] % per_view:
                raise InputError(
                    f"{item.path}: {imgs.shape[0]} frames do not split into views of {per_view} frames "
                    f"(input_format={self.input_format}, num_segments={self.num_segments})"
                )
            views.append(imgs.reshape(-1, per_view, *imgs.shape[1:]))
        if any(v.shape != views[0].shape for v in views):
            raise InputError(
                f"{item.path}: the {self.repeated_aug} repeated augmentations gave views of different shapes "
                f"{sorted({tuple(v.shape) for v in views})}; end the training pipeline with a fixed-size Resize"
            )
        label = item.label if self.target_type == "regression" else runs[0]["label"]
        meta = {
            **copy.deepcopy(item.meta),  # a copy: transforms of later tasks may edit boxes in place
            "path": item.path,
            "rel_path": item.rel_path,
            "fps": source.fps,
            "total_frames": int(source.num_frames),
            "frame_inds": indices.tolist(),
        }
        out = {
            "imgs": views[0] if len(views) == 1 else torch.cat(views),
            "label": _make_target(label, self.target_type, self.num_classes),
            "meta": meta,
        }
        if self.repeated_aug > 1 and self.target_type != "regression":
            per_run = views[0].shape[0]
            targets = [_make_target(run["label"], self.target_type, self.num_classes) for run in runs]
            out["view_label"] = torch.stack([t for t in targets for _ in range(per_run)])
        return out

    def _sample(self, item: VideoItem, source: _FrameSource, rng: np.random.Generator) -> np.ndarray:
        """The sampler's indices over the whole video, or inside the item's ``meta["window"]`` (seconds)."""
        window = item.meta.get("window")
        if window is None:
            return self.sampler(source.num_frames, rng, fps=source.fps)
        if source.fps is None:
            raise InputError(f"{item.path}: a window in seconds needs the frame rate (meta 'fps' of a frame folder)")
        from vidlab.data.longterm import window_frames

        first, last = window_frames(window, source.num_frames, source.fps)
        return self.sampler(last - first + 1, rng, fps=source.fps) + first

    @property
    def video_groups(self) -> list[int] | None:
        """The video of each item when items are windows of videos (``meta["video"]``), else None."""
        if not self.items or "video" not in self.items[0].meta:
            return None
        return [it.meta["video"] for it in self.items]

    def __getitem__(self, idx: int) -> dict:
        skipped: list[str] = []
        for attempt in range(min(len(self), 20)):
            j = (idx + attempt * 7919) % len(self)  # substitute a far-away sample, deterministically
            rng = np.random.default_rng([self.seed, self.epoch, j])
            try:
                with sample_time_limit(self.decode_timeout, self.items[j].path):
                    out = self._load(j, rng)
            except VideoDecodeError as e:
                if self.on_error == "raise":
                    raise
                logger.warning("skipping undecodable video %s: %s", self.items[j].path, e)
                skipped.append(self.items[j].path)
                continue
            out["index"] = idx
            out["skipped"] = skipped
            return out
        failed = ", ".join(skipped)
        raise VideoDecodeError(self.items[idx].path, f"it and {len(skipped) - 1} substitutes failed: {failed}")


def _stackable(values: list) -> bool:
    first = values[0]
    return isinstance(first, torch.Tensor) and all(
        isinstance(v, torch.Tensor) and v.shape == first.shape and v.dtype == first.dtype for v in values
    )


def _numbers(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def collate(batch: list[dict]) -> dict:
    """Batches dataset items field by field.

    Tensors of equal shape and dtype are stacked (``imgs``: uint8 ``(B, V, T, H, W, C)``, normalization happens
    later on the whole batch; ``label``: ``(B,)`` or ``(B, num_targets)``); plain numbers become a tensor
    (``index``: int64 ``(B,)``); ``skipped`` (paths of undecodable videos) is flattened into one list; anything
    else (``meta`` dicts, tensors of different shapes) stays a list of the per-item values.
    """
    out = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if key == "skipped":
            out[key] = [p for v in values for p in v]
        elif _stackable(values):
            out[key] = torch.stack(values)
        elif _numbers(values):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def feature_path(feature_dir: str | Path, rel_path: str | Path) -> Path:
    """Where the extracted features of a video live: ``<feature_dir>/<rel_path with its suffix replaced by .npy>``.

    The one mapping shared by the feature extractor (which writes the files) and :class:`FeatureDataset` (which
    reads them). Paths that differ only in their suffix share a file; a suffix-less path (a frame folder) gets
    ``.npy`` appended.

    Args:
        feature_dir: Root folder of the features; it mirrors the data root.
        rel_path: The video's path relative to the data root, as in the annotation file.

    Raises:
        ValueError: ``rel_path`` is absolute or empty.
    """
    rel = Path(rel_path)
    if not inside_root(rel_path) or rel.name in ("", ".", ".."):
        raise InputError(f"rel_path must be a file path inside the data root, got {str(rel_path)!r}")
    return Path(feature_dir) / rel.with_suffix(".npy")


def inside_root(rel_path: str | Path) -> bool:
    """Whether ``rel_path``, as written in an annotation file, stays inside the data root: not absolute and no
    ``..`` leading out of it (``a/../b.mp4`` is inside). Symbolic links inside the root are not followed."""
    norm = os.path.normpath(os.fspath(rel_path))
    return not (os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep))


def check_inside_root(items: list[VideoItem], root: str | Path, ann_file: str | Path) -> None:
    """Refuse annotation entries whose path leaves the data root (``data.allow_outside_root: true`` skips this).

    Raises:
        AnnotationError: naming the annotation file, the entry's number and its path.
    """
    bad = [(i, it.rel_path) for i, it in enumerate(items, 1) if not inside_root(it.rel_path)]
    if bad:
        i, rel = bad[0]
        more = f" ({len(bad) - 1} more such entries)" if len(bad) > 1 else ""
        raise AnnotationError(
            f"{ann_file}: entry {i}: path {rel!r} leaves the data root {root}{more}; paths in annotation files are "
            "relative to data.root (set data.allow_outside_root: true to read files elsewhere)"
        )


class FeatureDataset(torch.utils.data.Dataset):
    """Pre-extracted features of annotated videos (``vidlab extract``), for linear probes.

    Item ``i`` is ``{"feats", "label", "index", "meta", "skipped"}``: ``feats`` is the float32 tensor stored in
    :func:`feature_path` ``(feature_dir, item.rel_path)``, with the shape it was saved with (``(clips, C)``, or more
    dims for feature maps); ``label`` is built as in :class:`VideoDataset`; ``meta`` holds ``path``,
    ``rel_path``, ``feature_path`` and the item's own ``meta``; ``skipped`` is always empty.

    Args:
        items: Parsed annotation items (they carry ``rel_path``), e.g. from :func:`parse_video_list`.
        feature_dir: Folder the features were extracted to.
        num_classes: Needed for ``multi_label`` targets.
        target_type: ``class``, ``multi_label`` or ``regression``; None: from ``multi_label``.
        multi_label: Older spelling of ``target_type="multi_label"``.

    Raises:
        ValueError: An item has no ``rel_path`` (it was not parsed from an annotation file), or ``multi_label``
            without ``num_classes``.
        FileNotFoundError: Some feature files are missing (the message names a video and its expected file).
    """

    def __init__(
        self,
        items: list[VideoItem],
        feature_dir: str | Path,
        num_classes: int | None = None,
        *,
        target_type: str | None = None,
        multi_label: bool = False,
    ):
        self.items, self.feature_dir, self.num_classes = items, Path(feature_dir), num_classes
        self.target_type = resolve_target_type(target_type, multi_label)
        if self.target_type == "multi_label" and num_classes is None:
            raise InputError("multi_label targets need num_classes")
        for item in items:
            if item.rel_path is None:
                raise InputError(
                    f"{item.path}: the item has no path relative to the data root (rel_path), so its features "
                    "file is unknown; build items with parse_video_list / parse_rawframe_list / parse_kinetics_csv"
                )
        self.files = [feature_path(self.feature_dir, item.rel_path) for item in items]
        missing = [i for i, f in enumerate(self.files) if not f.is_file()]
        if missing:
            raise MissingFileError(
                f"features of {len(missing)} of {len(items)} videos are missing: {self._missing(missing[0])}"
            )

    def _missing(self, i: int) -> str:
        return f"no features for video {self.items[i].path}: expected {self.files[i]}; run `vidlab extract` first"

    def set_epoch(self, epoch: int) -> None:
        """Features are fixed; kept for the loader interface the trainer uses."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        item, file = self.items[i], self.files[i]
        try:
            feats = np.load(file, allow_pickle=False)
        except FileNotFoundError:
            raise MissingFileError(self._missing(i)) from None
        except (OSError, ValueError) as e:
            raise InputError(f"{file}: cannot read the features of {item.path} ({e}); re-run `vidlab extract`") from e
        if not np.issubdtype(feats.dtype, np.number):
            raise InputError(f"{file}: features of {item.path} must be numbers, got dtype {feats.dtype}")
        label = item.label[0] if self.target_type == "class" else item.label
        meta = {**copy.deepcopy(item.meta), "path": item.path, "rel_path": item.rel_path, "feature_path": str(file)}
        return {
            "feats": torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)),
            "label": _make_target(label, self.target_type, self.num_classes),
            "index": i,
            "meta": meta,
            "skipped": [],
        }
