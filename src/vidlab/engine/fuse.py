"""Late fusion of test scores from several models or modalities (RGB, audio, flow ...).

The semantics of MMAction2's ``tools/analysis_tools/report_accuracy.py``: each file's per-video scores (optionally
softmax-normalised first, ``--apply-softmax``) are multiplied by the file's weight and summed, and the recognition
metrics are computed on the sum. Two differences, both on purpose: MMAction2 pairs the files' rows by position, here
videos are matched by their id (the ``videos`` entry of ``vidlab test --out``), and files that do not hold the same
videos with the same labels are an error naming the videos; for multi-label scores both vidlab's ``mAP`` (the one
``vidlab test`` reports) and MMAction2's ``mmit_mAP`` (its ``--multi-label`` figure) are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vidlab import metrics
from vidlab.engine.evaluate import read_results
from vidlab.errors import InputError

__all__ = ["FusionError", "fuse_results", "fused_metrics"]


class FusionError(InputError):
    """Score files that cannot be fused: other videos, labels or class counts, or a wrong number of weights."""


def _listing(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(ids)[:limit])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def _aligned(doc: dict, path: str, order: list[str], labels: np.ndarray, first: str) -> np.ndarray:
    """``doc``'s scores in the row order of ``order``; its videos and labels must be those of the first file."""
    index = {v: i for i, v in enumerate(doc["videos"])}
    missing = [v for v in order if v not in index]
    extra = sorted(set(index) - set(order))
    if missing or extra:
        parts = [f"{len(missing)} of {first}'s videos are not in it ({_listing(missing)})"] if missing else []
        parts += [f"{len(extra)} videos are only in it ({_listing(extra)})"] if extra else []
        raise FusionError(f"{path}: " + "; ".join(parts))
    rows = np.asarray([index[v] for v in order])
    other = doc["labels"][rows]
    if other.shape != labels.shape or not np.array_equal(other, labels):
        bad = [order[i] for i in range(len(order)) if not np.array_equal(other[i], labels[i])]
        raise FusionError(f"{path}: labels differ from {first}'s for {_listing(bad)}")
    return doc["scores"][rows]


def fuse_results(paths: Sequence[str | Path], weights: Sequence[float] | None = None, apply_softmax: bool = False):
    """Fuse the per-video scores of ``vidlab test --out`` files.

    Args:
        paths: two or more result files.
        weights: one per file (default: all 1).
        apply_softmax: softmax each file's scores before weighting (for files holding logits,
            ``average_clips: score``).

    Returns:
        ``{"videos", "labels", "scores" (N, C) float64, "metrics", "meta"}``, rows in the first file's order.

    Raises:
        FusionError: fewer than two files, a weight count other than the file count, files with other class counts,
            videos or labels (naming the videos).
    """
    paths = [str(p) for p in paths]
    if len(paths) < 2:
        raise FusionError("fusion needs at least two score files")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise FusionError(f"{len(paths)} score files but {len(weights)} weights")
    docs = []
    for path in paths:
        try:
            docs.append(read_results(path))
        except (OSError, ValueError, KeyError) as e:
            raise FusionError(f"{path}: not a `vidlab test --out` score file ({e})") from e
    order, labels = list(docs[0]["videos"]), docs[0]["labels"]
    fused = None
    for path, doc, weight in zip(paths, docs, weights):
        scores = _aligned(doc, path, order, labels, paths[0]).astype(np.float64)
        if scores.shape[1] != docs[0]["scores"].shape[1]:
            raise FusionError(f"{path}: {scores.shape[1]} classes, {paths[0]} has {docs[0]['scores'].shape[1]}")
        if apply_softmax:
            scores = torch.softmax(torch.from_numpy(scores), dim=1).numpy()
        fused = weight * scores if fused is None else fused + weight * scores
    return {
        "videos": order,
        "labels": labels,
        "scores": fused,
        "metrics": fused_metrics(fused, labels),
        "meta": {"fused": paths, "weights": weights, "apply_softmax": apply_softmax},
    }


def fused_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1 / top-5 / mean class accuracy, or for multi-hot labels vidlab's mAP and MMAction2's MMIT mAP."""
    from vidlab.tasks.recognition import compute_metrics

    if labels.ndim == 2:
        return {
            "mAP": float(metrics.mean_average_precision(scores, labels)),
            "mmit_mAP": float(metrics.mmit_mean_average_precision(scores, labels)),
        }
    return compute_metrics(scores, labels)
