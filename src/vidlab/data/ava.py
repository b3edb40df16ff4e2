"""Spatio-temporal action detection data in AVA format: keyframes, person boxes, multi-label actions.

Annotation CSV rows are ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` with boxes normalized to [0, 1];
rows of the same keyframe and box are one person with several actions. ``keyframe_unit`` says what the
timestamp is:

- ``second`` (AVA): seconds; the keyframe's frame is ``round((timestamp - timestamp_start) * fps)`` (0-based;
  AVA's frame folders hold the 15-minute cut from 900 s at 30 fps, so ``timestamp_start=900``; whole videos
  use 0);
- ``frame`` (MicroG-4M): the 0-based index of the keyframe's frame itself (file ``index + 1`` of a frame folder).

Action ids are those of the label map (a pbtxt, parsed as protobuf text); rows of other ids are dropped (AVA's
60-class evaluation subset is its label map), and the model's outputs are the label map's classes in its order
(MicroG-4M's ``build_id_map``: contiguous indices). An excluded-timestamps CSV (``video_id,timestamp``) removes
keyframes; a missing file given as None means none.

Clips are ``clip_len`` frames ``frame_interval`` apart around the keyframe, clamped to the video. Where the clip
starts is the ``center`` convention:

- ``mmaction2``: ``start = center - (clip_len // 2) * frame_interval``; in training each frame index is jittered
  by an integer in ``[(-frame_interval) // 2, (frame_interval + 1) // 2)`` (``SampleAVAFrames``; for an odd
  interval the range reaches one further back than forward: -2 .. 1 for 3);
- ``pyslowfast``: ``start = center - (clip_len * frame_interval) // 2``, never jittered (``get_sequence``).

Both give the same clip for an even ``clip_len``; for an odd one MMAction2's clip has the keyframe in the
middle and PySlowFast's is half a step earlier.

Person proposals (test boxes; optional extra training boxes) come from MMAction2's pickle (``"vid,%04d" ->
(N, 4 | 5)`` normalized, read without executing any pickled code) or PySlowFast's CSV
(``video,timestamp,x1,y1,x2,y2,action,score``). MMAction2 keeps boxes scoring at least
``min(score_thr, best score)`` (so the best box stays), the first ``max_proposals`` of them; PySlowFast's CSV
keeps ``score >= score_thr``. A keyframe without proposals gets MMAction2's whole-frame box ``[0, 0, 1, 1]``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidlab.data.datasets import AnnotationError, _read_rawframes
from vidlab.data.decode import VideoDecodeError, VideoReader
from vidlab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "AVADataset",
    "Keyframe",
    "box_iou",
    "clip_indices",
    "collate_detection",
    "load_proposals",
    "read_ava_annotations",
    "read_excluded",
]

KeyframeKey = tuple[str, int]


@dataclass
class Keyframe:
    """One keyframe: its video and timestamp, person boxes (normalized ``(n, 4)``) and their class indices."""

    video: str
    stamp: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: list[list[int]] = field(default_factory=list)


def _stamp(value: str, path: Path, lineno: int) -> int:
    try:
        f = float(value)
    except ValueError:
        raise AnnotationError(f"{path}:{lineno}: timestamp {value!r} is not a number") from None
    if f != int(f):
        raise AnnotationError(f"{path}:{lineno}: timestamp {value!r} is not a whole second / frame index")
    return int(f)


def _box(fields: list[str], path: Path, lineno: int) -> list[float]:
    try:
        box = [float(v) for v in fields[2:6]]
    except ValueError:
        raise AnnotationError(f"{path}:{lineno}: box {fields[2:6]} is not four numbers") from None
    if not (box[0] <= box[2] and box[1] <= box[3]) or min(box) < -0.01 or max(box) > 1.01:
        raise AnnotationError(f"{path}:{lineno}: box {box} is not a normalized [x1, y1, x2, y2] with x1<=x2, y1<=y2")
    return box


def _rows(path: Path):
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if row and any(v.strip() for v in row):
                yield lineno, [v.strip() for v in row]


def read_ava_annotations(path: str | Path, class_ids: list[int]) -> dict[KeyframeKey, Keyframe]:
    """Ground-truth keyframes of an AVA-format CSV; actions are class indices into ``class_ids`` (the label
    map's ids, in order); rows with other ids are dropped. Bad rows raise :class:`AnnotationError` naming the
    file and line."""
    path = Path(path)
    index = {c: i for i, c in enumerate(class_ids)}
    people: dict[KeyframeKey, dict[tuple, set[int]]] = {}
    for lineno, row in _rows(path):
        if len(row) < 7:
            raise AnnotationError(f"{path}:{lineno}: expected video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]")
        key = (row[0], _stamp(row[1], path, lineno))
        box = tuple(_box(row, path, lineno))
        try:
            action = int(row[6])
        except ValueError:
            raise AnnotationError(f"{path}:{lineno}: action id {row[6]!r} is not an integer") from None
        person = row[7] if len(row) > 7 else ""
        boxes = people.setdefault(key, {})
        if action in index:
            boxes.setdefault((box, person), set()).add(index[action])
    out = {}
    for key, boxes in people.items():
        boxes = {b: c for b, c in boxes.items() if c}
        if boxes:
            arr = np.asarray([b for b, _ in boxes], np.float32).reshape(-1, 4)
            out[key] = Keyframe(key[0], key[1], arr, [sorted(c) for c in boxes.values()])
    return out


def read_excluded(path: str | Path | None) -> set[KeyframeKey]:
    """Keyframes of an excluded-timestamps CSV (``video_id,timestamp``); None or a missing file: none."""
    if path is None or not Path(path).is_file():
        if path is not None:
            logger.info("no excluded-timestamps file at %s: no keyframe is excluded", path)
        return set()
    path = Path(path)
    return {(row[0], _stamp(row[1], path, lineno)) for lineno, row in _rows(path)}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, numbers, strings and numpy arrays only: a proposals file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # how protocol-2 pickles (Python 2's, or protocol=2) store an array's bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"proposals pickle refers to {module}.{name}: only numpy arrays are allowed")


def load_proposals(
    path: str | Path, score_thr: float = 0.9, max_proposals: int = 1000, keyframe_unit: str = "second"
) -> dict[KeyframeKey, np.ndarray]:
    """Person proposals per keyframe, normalized ``(n, 5)`` ``[x1, y1, x2, y2, score]`` (score 1 where the file
    has none), filtered as the file's toolbox does (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"proposals file not found: {path}")
    out: dict[KeyframeKey, np.ndarray] = {}
    if path.suffix == ".pkl":
        try:
            data = _ArraysOnly(io.BytesIO(path.read_bytes()), encoding="latin1").load()  # latin1: Python 2 files
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise AnnotationError(f"{path}: not a proposals pickle ({e})") from e
        if not isinstance(data, dict):
            raise AnnotationError(f"{path}: expected a dict 'video,timestamp' -> (N, 4|5) array")
        for key, boxes in data.items():
            video, _, stamp = str(key).rpartition(",")
            arr = np.asarray(boxes, np.float32).reshape(-1, np.asarray(boxes).shape[-1] if np.size(boxes) else 4)
            if arr.shape[1] not in (4, 5):
                raise AnnotationError(f"{path}: proposals of {key!r} have {arr.shape[1]} columns, expected 4 or 5")
            if arr.shape[1] == 4:
                arr = np.concatenate([arr, np.ones((len(arr), 1), np.float32)], axis=1)
            elif len(arr):
                arr = arr[arr[:, 4] >= min(score_thr, float(arr[:, 4].max()))]
            out[(video, int(stamp))] = arr[:max_proposals]
        return out
    rows: dict[KeyframeKey, list] = {}
    for lineno, row in _rows(path):
        if len(row) < 6:
            raise AnnotationError(f"{path}:{lineno}: expected video,timestamp,x1,y1,x2,y2[,action,score]")
        score = float(row[7]) if len(row) > 7 and row[7] else 1.0
        if score >= score_thr:
            rows.setdefault((row[0], _stamp(row[1], path, lineno)), []).append([*_box(row, path, lineno), score])
    for key, boxes in rows.items():
        arr = np.unique(np.asarray(boxes, np.float32), axis=0)  # one row per box (the CSV repeats it per action)
        out[key] = arr[np.argsort(-arr[:, 4], kind="stable")][:max_proposals]
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of ``[x1, y1, x2, y2]`` boxes (continuous coordinates)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def clip_indices(
    center: int,
    clip_len: int,
    frame_interval: int,
    num_frames: int,
    convention: str = "mmaction2",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """0-based frame indices of the clip around ``center`` (module docstring); ``rng`` jitters (mmaction2 only,
    training)."""
    if convention == "mmaction2":
        start = center - (clip_len // 2) * frame_interval
    elif convention == "pyslowfast":
        start = center - (clip_len * frame_interval) // 2
    else:
        raise InputError(f"clip center convention must be 'mmaction2' or 'pyslowfast', got {convention!r}")
    inds = start + frame_interval * np.arange(clip_len)
    if rng is not None and convention == "mmaction2":
        # as SampleAVAFrames' randint(-frame_interval // 2, ...): Python reads it as (-frame_interval) // 2
        inds = inds + rng.integers(-frame_interval // 2, (frame_interval + 1) // 2, size=clip_len)
    return np.clip(inds, 0, num_frames - 1)


class AVADataset(torch.utils.data.Dataset):
    """Keyframes -> dicts with ``imgs`` uint8 ``(1, T, H, W, C)``, ``boxes`` float ``(n, 4)`` in pixels of ``imgs``,
    ``labels`` multi-hot float ``(n, K)`` (all zero for a negative training box), ``meta`` (``video``, ``stamp``,
    ``img_shape``: the ``(H, W)`` the boxes are in, ``frame_inds``) and ``index``.

    Args:
        keyframes: the keyframes to read (ground truth; test keyframes may have no boxes).
        num_classes: K.
        pipeline: transforms (box-aware; see :mod:`vidlab.data.transforms`).
        path_of: video id -> the video file or frame folder.
        clip_len, frame_interval, convention: the clip (:func:`clip_indices`).
        train: training (jittered clips, ground-truth boxes) or testing.
        proposals: keyframe -> normalized ``(n, 5)`` proposals: the test boxes, and extra training boxes when
            ``train_proposals``.
        test_boxes: ``proposals`` or ``gt`` (MicroG-4M tests on the ground-truth boxes).
        train_proposals: add proposals to the training boxes, labelled from the ground truth they overlap by
            ``pos_iou`` or more; those overlapping none by ``neg_iou`` become negatives (no action).
        keyframe_unit, timestamp_start, fps: where a keyframe's frame is (module docstring); ``fps`` is used for
            frame folders (a video's own rate is used otherwise).
        frames: read frame folders (``frame_tmpl`` with ``{video}`` and ``{index}``, 1-based files) instead of videos.
        short_side: resize in the decoder.
        seed: per-sample random generator base (as :class:`~vidlab.data.datasets.VideoDataset`).
    """

    def __init__(
        self,
        keyframes: list[Keyframe],
        num_classes: int,
        pipeline: Callable,
        path_of: Callable[[str], str],
        *,
        clip_len: int = 8,
        frame_interval: int = 2,
        convention: str = "mmaction2",
        train: bool = False,
        proposals: dict[KeyframeKey, np.ndarray] | None = None,
        test_boxes: str = "proposals",
        train_proposals: bool = False,
        pos_iou: float = 0.5,
        neg_iou: float = 0.3,
        keyframe_unit: str = "second",
        timestamp_start: float = 0.0,
        fps: float = 30.0,
        frames: bool = False,
        frame_tmpl: str = "{video}_{index:06d}.jpg",
        short_side: int | None = None,
        backend: str = "pyav",
        seed: int = 0,
    ) -> None:
        if keyframe_unit not in ("second", "frame"):
            raise InputError(f"keyframe_unit must be 'second' or 'frame', got {keyframe_unit!r}")
        if test_boxes not in ("proposals", "gt"):
            raise InputError(f"test_boxes must be 'proposals' or 'gt', got {test_boxes!r}")
        if not train and test_boxes == "proposals" and proposals is None:
            raise InputError("testing on proposals needs a proposals file (or test_boxes='gt')")
        self.keyframes, self.num_classes, self.pipeline, self.path_of = keyframes, num_classes, pipeline, path_of
        self.clip_len, self.frame_interval, self.convention, self.train = clip_len, frame_interval, convention, train
        self.proposals, self.test_boxes, self.train_proposals = proposals, test_boxes, train_proposals
        self.pos_iou, self.neg_iou = pos_iou, neg_iou
        self.keyframe_unit, self.timestamp_start, self.fps = keyframe_unit, timestamp_start, fps
        self.frames, self.frame_tmpl, self.short_side, self.backend = frames, frame_tmpl, short_side, backend
        self.seed, self.epoch = seed, 0
        self._frame_counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.keyframes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _proposals(self, kf: Keyframe) -> np.ndarray:
        boxes = None if self.proposals is None else self.proposals.get((kf.video, kf.stamp))
        if boxes is None or not len(boxes):
            return np.asarray([[0, 0, 1, 1, 1]], np.float32)  # MMAction2's whole-frame fallback
        return boxes

    def _boxes(self, kf: Keyframe) -> tuple[np.ndarray, np.ndarray]:
        """Normalized boxes and their multi-hot labels for this sample."""
        gt = np.zeros((len(kf.boxes), self.num_classes), np.float32)
        for i, classes in enumerate(kf.labels):
            gt[i, classes] = 1.0
        if not self.train:
            if self.test_boxes == "gt":
                return kf.boxes, gt
            props = self._proposals(kf)[:, :4]
            return props, np.zeros((len(props), self.num_classes), np.float32)
        boxes, labels = kf.boxes, gt
        if self.train_proposals and self.proposals is not None and (kf.video, kf.stamp) in self.proposals:
            props = self.proposals[(kf.video, kf.stamp)][:, :4]
            iou = box_iou(props, kf.boxes) if len(kf.boxes) else np.zeros((len(props), 0))
            best = iou.max(axis=1) if iou.shape[1] else np.zeros(len(props))
            pos, neg = best >= self.pos_iou, best < self.neg_iou
            extra_labels = np.zeros((len(props), self.num_classes), np.float32)
            if pos.any():
                extra_labels[pos] = gt[iou[pos].argmax(axis=1)]
            keep = pos | neg
            boxes = np.concatenate([boxes, props[keep]])
            labels = np.concatenate([labels, extra_labels[keep]])
        return boxes, labels

    def _num_frames_of_folder(self, folder: str) -> int:
        if folder not in self._frame_counts:
            try:
                self._frame_counts[folder] = sum(1 for e in os.scandir(folder) if e.is_file())
            except OSError as e:
                raise VideoDecodeError(folder, f"cannot list frames: {e}") from e
        return self._frame_counts[folder]

    def _read(self, kf: Keyframe, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        path = self.path_of(kf.video)
        if self.frames:
            num_frames, fps, reader = self._num_frames_of_folder(path), self.fps, None
        else:
            reader = VideoReader(path, backend=self.backend, short_side=self.short_side)
            num_frames, fps = reader.num_frames, reader.fps or self.fps
        try:
            if self.keyframe_unit == "frame":
                center = kf.stamp
            else:
                center = int(round((kf.stamp - self.timestamp_start) * fps))
            if not 0 <= center < num_frames:
                raise VideoDecodeError(
                    path, f"keyframe {kf.video},{kf.stamp} is frame {center}, outside its {num_frames} frames"
                )
            inds = clip_indices(center, self.clip_len, self.frame_interval, num_frames, self.convention, rng)
            if reader is not None:
                frames = reader.read(inds)
            else:
                tmpl = self.frame_tmpl.replace("{video}", kf.video.replace("{", "{{").replace("}", "}}"))
                frames = _read_rawframes(path, inds + 1, tmpl.replace("{index", "{0"), self.short_side)
        finally:
            if reader is not None:
                reader.close()
        return frames, inds

    def __getitem__(self, idx: int) -> dict:
        kf = self.keyframes[idx]
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        frames, inds = self._read(kf, rng if self.train else None)
        h, w = frames.shape[1:3]
        boxes, labels = self._boxes(kf)
        scale = np.float32([w, h, w, h])
        results = {
            "imgs": torch.from_numpy(frames),
            "rng": rng,
            "gt_bboxes": boxes * scale,
            "gt_labels": labels,
            "num_clips": 1,
            "clip_len": self.clip_len,
        }
        results = self.pipeline(results)
        if not self.train and (results.get("flip") or results.get("crop_bbox") is not None):
            raise InputError(
                "a detection test pipeline must not crop or flip: predictions are written in the coordinates of the "
                "whole, unflipped frame (use Resize only)"
            )
        imgs = results["imgs"]
        return {
            "imgs": imgs.unsqueeze(0),  # one view
            "boxes": torch.from_numpy(np.ascontiguousarray(results["gt_bboxes"], np.float32)),
            "labels": torch.from_numpy(np.ascontiguousarray(results["gt_labels"], np.float32)),
            "meta": {
                "video": kf.video,
                "stamp": kf.stamp,
                "img_shape": tuple(int(v) for v in imgs.shape[1:3]),
                "frame_inds": inds.tolist(),
            },
            "index": idx,
            "skipped": [],
        }


def collate_detection(batch: list[dict]) -> dict:
    """Detection items -> a batch: ``imgs`` uint8 ``(B, 1, T, H, W, C)`` zero-padded at the bottom / right to the
    largest frames of the batch (so test clips of different aspect ratios batch together; boxes are unaffected),
    ``boxes`` / ``labels`` / ``meta`` lists, ``index`` ``(B,)``, ``skipped`` one list."""
    shapes = [b["imgs"].shape for b in batch]
    h, w = max(s[2] for s in shapes), max(s[3] for s in shapes)
    imgs = torch.zeros((len(batch), *shapes[0][:2], h, w, shapes[0][4]), dtype=batch[0]["imgs"].dtype)
    for i, b in enumerate(batch):
        imgs[i, :, :, : b["imgs"].shape[2], : b["imgs"].shape[3]] = b["imgs"]
    return {
        "imgs": imgs,
        "boxes": [b["boxes"] for b in batch],
        "labels": [b["labels"] for b in batch],
        "meta": [b["meta"] for b in batch],
        "index": torch.tensor([b["index"] for b in batch]),
        "skipped": [p for b in batch for p in b["skipped"]],
    }


AVADataset.collate_fn = staticmethod(collate_detection)  # build_loader batches with it


def rois_of(boxes: list[torch.Tensor], device: torch.device | None = None) -> torch.Tensor:
    """Per-sample ``(n_i, 4)`` boxes -> ``(sum n_i, 5)`` ``[batch index, x1, y1, x2, y2]`` RoIs."""
    rows = [torch.cat([torch.full((len(b), 1), float(i)), b.float()], dim=1) for i, b in enumerate(boxes)]
    rois = torch.cat(rows) if rows else torch.zeros(0, 5)
    return rois if device is None else rois.to(device)
