"""Annotation formats -> dataset items -> (clip, target).

Supported annotation files (the formats MMAction2 users already have):

- video list: ``path label`` per line, multi-label ``path l1 l2 ...`` (paths relative to the data root);
- rawframes list: ``frame_dir total_frames label [label ...]``, frames named by a template
  (``img_{:05}.jpg``) starting at ``start_index`` (1 by default, as MMAction2);
- Kinetics-style CSV with a header: ``label,youtube_id,time_start,time_end,split[,is_cc]``; the clip is
  ``<label with underscores>/<youtube_id>_<start:06d>_<end:06d>.mp4`` under the root and the class index
  comes from the label map (or the sorted class names of the file when no label map is given).

A malformed line raises :class:`AnnotationError` naming the file and the line number.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vidlab.data.decode import VideoDecodeError, VideoReader

logger = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """An annotation file cannot be parsed; the message names the file and line."""


@dataclasses.dataclass
class VideoItem:
    path: str
    label: list[int]
    total_frames: int | None = None  # known for rawframes


def _parse_labels(fields: list[str], ann_file: Path, lineno: int, num_classes: int | None) -> list[int]:
    try:
        labels = [int(x) for x in fields]
    except ValueError:
        raise AnnotationError(f"{ann_file}:{lineno}: labels must be integers, got {' '.join(fields)!r}") from None
    for lab in labels:
        if lab < 0 or (num_classes is not None and lab >= num_classes):
            raise AnnotationError(f"{ann_file}:{lineno}: label {lab} out of range [0, {num_classes})")
    return labels


def _lines(ann_file: Path):
    if not ann_file.is_file():
        raise AnnotationError(f"annotation file not found: {ann_file}")
    for lineno, raw in enumerate(ann_file.read_text().splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def parse_video_list(
    ann_file: str | Path, root: str | Path, multi_label: bool = False, num_classes: int | None = None
) -> list[VideoItem]:
    """Parse an MMAction2 video list (``path label`` or ``path l1 l2 ...``)."""
    ann_file, root = Path(ann_file), Path(root)
    items = []
    for lineno, line in _lines(ann_file):
        fields = line.split()
        if len(fields) < 2 or (len(fields) > 2 and not multi_label):
            raise AnnotationError(
                f"{ann_file}:{lineno}: expected 'path label'{' or path l1 l2 ...' if multi_label else ''}, got {line!r}"
            )
        items.append(VideoItem(str(root / fields[0]), _parse_labels(fields[1:], ann_file, lineno, num_classes)))
    return items


def parse_rawframe_list(
    ann_file: str | Path, root: str | Path, multi_label: bool = False, num_classes: int | None = None
) -> list[VideoItem]:
    """Parse an MMAction2 rawframes list (``frame_dir total_frames label [label ...]``)."""
    ann_file, root = Path(ann_file), Path(root)
    items = []
    for lineno, line in _lines(ann_file):
        fields = line.split()
        if len(fields) < 3 or (len(fields) > 3 and not multi_label):
            raise AnnotationError(f"{ann_file}:{lineno}: expected 'frame_dir total_frames label', got {line!r}")
        if not fields[1].isdigit() or int(fields[1]) <= 0:
            raise AnnotationError(f"{ann_file}:{lineno}: total_frames must be a positive integer, got {fields[1]!r}")
        labels = _parse_labels(fields[2:], ann_file, lineno, num_classes)
        items.append(VideoItem(str(root / fields[0]), labels, int(fields[1])))
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
        items.append(VideoItem(str(root / name / f"{r[1]}_{start:06d}_{end:06d}.mp4"), [index[name]]))
    return items


def read_label_map(path: str | Path) -> list[str]:
    """One class name per line (line i = label i), as Kinetics/MMAction2 label maps."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"label map not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class _FrameSource:
    """Reads frames of one item, from a video file or a folder of images."""

    def __init__(self, item: VideoItem, fmt: str, short_side: int | None, backend: str, tmpl: str, start: int):
        self.item, self.fmt, self.tmpl, self.start = item, fmt, tmpl, start
        self.reader = None
        if fmt == "rawframes":
            self.num_frames = item.total_frames
        else:
            self.reader = VideoReader(item.path, backend=backend, short_side=short_side)
            self.num_frames = self.reader.num_frames
        self.short_side = short_side

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.reader is not None:
            return self.reader.read(indices)
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


class VideoDataset(torch.utils.data.Dataset):
    """Items of an annotation file -> dicts with ``imgs`` uint8 ``(V, T, H, W, C)`` and ``label``.

    Args:
        items: parsed annotation items.
        sampler: frame-index sampler, ``sampler(total_frames, rng) -> indices``.
        pipeline: transform callable on the MMAction2-style results dict.
        num_classes: used to build multi-hot targets when ``multi_label``.
        fmt: ``video`` or ``rawframes`` (how to read an item).
        input_format: ``NCTHW`` (a view is one clip of ``clip_len`` frames) or ``NCHW`` (a view is
            ``num_segments`` frames, for 2D models).
        on_error: ``raise`` (undecodable video -> error naming the file) or ``skip`` (another sample is
            substituted and the path is reported in the item's ``skipped`` list).
        seed: base of the per-sample random generator ``(seed, epoch, index)``, so a sample's random
            crop/flip/offsets do not depend on worker count or order.
    """

    def __init__(
        self,
        items: list[VideoItem],
        sampler: Callable,
        pipeline: Callable,
        num_classes: int,
        *,
        fmt: str = "video",
        multi_label: bool = False,
        input_format: str = "NCTHW",
        num_segments: int = 8,
        on_error: str = "raise",
        short_side: int | None = None,
        backend: str = "pyav",
        filename_tmpl: str = "img_{:05}.jpg",
        start_index: int | None = None,
        seed: int = 0,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.items, self.sampler, self.pipeline = items, sampler, pipeline
        self.num_classes, self.fmt, self.multi_label = num_classes, fmt, multi_label
        self.input_format, self.num_segments, self.on_error = input_format, num_segments, on_error
        self.short_side, self.backend, self.filename_tmpl = short_side, backend, filename_tmpl
        self.start_index = start_index if start_index is not None else (1 if fmt == "rawframes" else 0)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, idx: int, rng: np.random.Generator) -> dict:
        item = self.items[idx]
        source = _FrameSource(item, self.fmt, self.short_side, self.backend, self.filename_tmpl, self.start_index)
        try:
            indices = self.sampler(source.num_frames, rng) + self.start_index
            frames = source.read(indices)
        finally:
            source.close()
        results = {
            "imgs": torch.from_numpy(frames),
            "label": item.label[0] if not self.multi_label else list(item.label),
            "rng": rng,
            "num_clips": self.sampler.num_clips,
            "clip_len": self.sampler.clip_len,
        }
        results = self.pipeline(results)
        imgs = results["imgs"]  # (N, H, W, C) with N = num_crops * num_clips * clip_len
        per_view = self.sampler.clip_len if self.input_format == "NCTHW" else self.num_segments
        if imgs.shape[0] % per_view:
            raise ValueError(
                f"{item.path}: {imgs.shape[0]} frames do not split into views of {per_view} frames "
                f"(input_format={self.input_format}, num_segments={self.num_segments})"
            )
        label = results["label"]
        if self.multi_label:
            target = torch.zeros(self.num_classes)
            target[label] = 1.0
        else:
            target = torch.tensor(label, dtype=torch.long)
        return {"imgs": imgs.reshape(-1, per_view, *imgs.shape[1:]), "label": target}

    def __getitem__(self, idx: int) -> dict:
        skipped: list[str] = []
        for attempt in range(min(len(self), 20)):
            j = (idx + attempt * 7919) % len(self)  # substitute a far-away sample, deterministically
            rng = np.random.default_rng([self.seed, self.epoch, j])
            try:
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


def collate(batch: list[dict]) -> dict:
    """Stack clips (uint8, normalization happens later on the whole batch) and gather skip reports."""
    return {
        "imgs": torch.stack([b["imgs"] for b in batch]),  # (B, V, T, H, W, C) uint8
        "label": torch.stack([b["label"] for b in batch]),
        "index": torch.tensor([b["index"] for b in batch]),
        "skipped": [p for b in batch for p in b["skipped"]],
    }
