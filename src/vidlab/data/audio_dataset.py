"""Audio recognition data: MMAction2's audio-feature lists, or the sound track of the videos of a video list.

``data.format: audio_feature`` reads MMAction2's ``AudioDataset`` lists, ``path total_frames label`` per line (the
``.npy`` feature file of :func:`~vidlab.data.audio.extract_mmaction2_audio_features` or MMAction2's
``build_audio_features.py``, and the frame count of its video). ``data.format: audio`` reads a plain video list and
computes those features from each video's own sound (PyAV decode, resampled to 16 kHz) when the sample is loaded.

Either way the sampler picks video frame indices (MMAction2's recipes: ``SampleFrames(clip_len=64)``, 10 clips at
test time) and :func:`~vidlab.data.audio.select_audio_clips` maps each clip to ``data.audio_fixed_length`` feature
rows (``AudioFeatureSelector``). An item holds ``audio``, float32 ``(V, 1, L, F)`` (``FormatAudioShape('NCTF')``
views), ``label`` and ``meta``; the engine feeds ``audio`` to the model as it is (no mean / std).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from vidlab.data.audio import extract_mmaction2_audio_features, load_audio_features, select_audio_clips
from vidlab.data.datasets import VideoDataset, VideoItem, _make_target, item_label
from vidlab.data.decode import VideoReader
from vidlab.errors import InputError

__all__ = ["AUDIO_FORMATS", "AudioDataset"]

AUDIO_FORMATS = ("audio", "audio_feature")


class AudioDataset(VideoDataset):
    """Items -> ``{"audio": (V, 1, L, F) float32, "label", "meta"}`` (see the module docstring).

    Args:
        items: parsed annotation items; ``total_frames`` set for feature lists.
        sampler: frame-index sampler (``num_clips`` views of ``clip_len`` frames).
        num_classes: class count (multi-label targets).
        source: ``features`` (``.npy`` files) or ``video`` (the sound of the video files).
        fixed_length: feature rows per view.
        missing: a missing feature file: ``error``, or ``zeros`` (MMAction2's stand-in for a silent video).
        target_type, on_error, decode_timeout, seed: as :class:`~vidlab.data.datasets.VideoDataset` (a video
            without sound is an undecodable sample: an error, or skipped and reported with ``on_error="skip"``).
    """

    def __init__(
        self,
        items: list[VideoItem],
        sampler: Callable,
        num_classes: int,
        *,
        source: str = "features",
        fixed_length: int = 128,
        missing: str = "error",
        target_type: str | None = None,
        on_error: str = "raise",
        decode_timeout: float | None = None,
        seed: int = 0,
    ) -> None:
        if source not in ("features", "video"):
            raise InputError(f"source must be 'features' or 'video', got {source!r}")
        super().__init__(items, sampler, None, num_classes, target_type=target_type, on_error=on_error,
                         decode_timeout=decode_timeout, seed=seed)  # fmt: skip
        self.source, self.fixed_length, self.missing = source, int(fixed_length), missing

    def _features(self, item: VideoItem) -> tuple[np.ndarray, int]:
        """The whole file's features ``(T, F)`` and the video's frame count."""
        if self.source == "features":
            if not item.total_frames:
                raise InputError(f"{item.path}: an audio-feature list gives 'path total_frames label' per line")
            return load_audio_features(item.path, self.missing), int(item.total_frames)
        with VideoReader(item.path, backend=self.backend) as reader:
            total = reader.num_frames
        return extract_mmaction2_audio_features(item.path), total

    def _load(self, idx: int, rng: np.random.Generator) -> dict:
        item = self.items[idx]
        features, total = self._features(item)
        indices = self.sampler(total, rng)
        clips = select_audio_clips(features, indices, total, self.sampler.num_clips, self.fixed_length)
        meta = {**copy.deepcopy(item.meta), "path": item.path, "rel_path": item.rel_path, "total_frames": total,
                "frame_inds": indices.tolist(), "feature_rows": int(features.shape[0])}  # fmt: skip
        return {
            "audio": torch.from_numpy(np.ascontiguousarray(clips[:, None])),
            "label": _make_target(item_label(item, self.target_type), self.target_type, self.num_classes),
            "meta": meta,
        }
