"""Evaluation: multi-view inference (num_clips x num_crops), score gathering across ranks, metrics, result files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from vidlab.data.batch_transforms import normalize_batch
from vidlab.data.longterm import aggregate_by_video
from vidlab.engine.distributed import DistInfo, all_gather_objects
from vidlab.engine.precision import autocast_context
from vidlab.errors import InputError
from vidlab.tasks import Task
from vidlab.tasks.recognition import compute_metrics

__all__ = [
    "TrainForward",
    "autocast_context",
    "batch_inputs",
    "compute_metrics",
    "eval_batches",
    "evaluate_split",
    "predict",
    "read_results",
    "result_table",
    "to_input",
    "unwrap",
    "video_paths",
    "write_results",
]


class TrainForward(torch.nn.Module):
    """The module DDP wraps (or FSDP shards) in training: ``forward(x) -> (outputs, auxiliary outputs)`` through the
    model's ``forward_train`` (TPN's auxiliary head), so gradient synchronisation sees the whole training forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **inputs):
        """``inputs``: the task's other model inputs (a detector's ``rois``)."""
        if hasattr(self.model, "forward_train"):
            return self.model.forward_train(x, **inputs)
        return self.model(x, **inputs), []


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper and/or a :class:`TrainForward` (FSDP shards modules in place: no wrapper)."""
    model = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    return model.model if isinstance(model, TrainForward) else model


def to_input(imgs: torch.Tensor, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, V, T, H, W, C)`` -> normalized float ``(B, V, C, T, H, W)`` on ``device``."""
    return normalize_batch(imgs.to(device, non_blocking=True), mean, std)


def batch_inputs(batch: dict, mean, std, device: torch.device) -> torch.Tensor:
    """The model input of a collated batch with its views: normalized clips ``(B, V, C, T, H, W)`` from ``imgs``,
    spectrogram clips ``(B, V, 1, T, F)`` from ``audio`` (as they are), or extracted features ``(B, 1, ...)`` from
    ``feats`` (linear probing on features)."""
    if "audio" in batch:
        return batch["audio"].to(device, non_blocking=True).float()
    if "feats" in batch:
        return batch["feats"].to(device, non_blocking=True).float().unsqueeze(1)
    return to_input(batch["imgs"], mean, std, device)


def eval_batches(loader, info: DistInfo, progress: bool):
    """``loader``'s batches, behind a progress bar on rank 0 of an interactive run when ``progress``."""
    if progress and info.is_main and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    return loader


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    loader,
    info: DistInfo,
    task: Task,
    *,
    mean,
    std,
    precision: str = "none",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The task's predictions for every sample of ``loader``'s dataset, in dataset order, gathered on all ranks.

    Returns:
        (predictions ``(N, K)`` float32, targets ``(N,)`` / ``(N, K)``, skipped paths).
    """
    model.eval()
    net = unwrap(model)
    parts, skipped = [], []
    for batch in eval_batches(loader, info, progress):
        x = batch_inputs(batch, mean, std, info.device)  # (B, V, ...)
        with autocast_context(precision, info.device):
            scores = task.predict(net, x)
        parts.append((batch["index"].numpy(), scores.float().cpu().numpy(), batch["label"].numpy()))
        skipped.extend(batch["skipped"])
    gathered = all_gather_objects((parts, skipped), info)
    idx, scores, labels = [], [], []
    all_skipped = []
    for rank_parts, rank_skipped in gathered:
        for i, s, y in rank_parts:
            idx.append(i)
            scores.append(s)
            labels.append(y)
        all_skipped.extend(rank_skipped)
    if not idx:
        raise InputError("evaluation saw no samples: is the annotation list empty?")
    order = np.argsort(np.concatenate(idx), kind="stable")
    return np.concatenate(scores)[order], np.concatenate(labels)[order], all_skipped


def write_results(
    path: str | Path, scores: np.ndarray, labels: np.ndarray, videos: list[str], metric_values: dict, meta: dict
) -> None:
    """Per-video scores and metrics as JSON (read back with :func:`read_results` for score fusion)."""
    doc = {
        "meta": meta,
        "metrics": metric_values,
        "videos": list(videos),
        "labels": labels.tolist(),
        "scores": scores.astype(np.float64).round(7).tolist(),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc))


def read_results(path: str | Path) -> dict:
    """Load a results JSON: ``scores`` (N, C) array, ``labels``, ``videos``, ``metrics``, ``meta``."""
    doc = json.loads(Path(path).read_text())
    doc["scores"] = np.asarray(doc["scores"], dtype=np.float32)
    doc["labels"] = np.asarray(doc["labels"])
    return doc


def evaluate_split(
    model, loader, info: DistInfo, task: Task, *, mean, std, precision: str = "none", progress: bool = False
) -> tuple[dict, np.ndarray, np.ndarray, list]:
    """Predict a loader's dataset with the task (view fusion included), then compute the task's metrics.

    Returns:
        (metrics, predictions, targets, skipped video paths). A task that evaluates its own way (detection: boxes
        per sample) has ``evaluate_loader`` with the same arguments and results.
    """
    if hasattr(task, "evaluate_loader"):
        return task.evaluate_loader(model, loader, info, mean=mean, std=std, precision=precision, progress=progress)
    scores, labels, skipped = predict(
        model, loader, info, task, mean=mean, std=std, precision=precision, progress=progress
    )
    groups = getattr(loader.dataset, "video_groups", None)
    if groups is not None:  # windows of long videos: one score per video, the mean over its windows
        scores, labels, _ = aggregate_by_video(scores, labels, groups)
    return task.evaluate(scores, labels), scores, labels, skipped


def video_paths(dataset) -> list[str]:
    """The path of each row :func:`evaluate_split` returns: one per video (windows of a video are one row)."""
    if getattr(dataset, "video_groups", None) is None:
        return [it.path for it in dataset.items]
    seen: dict[int, str] = {}
    for it in dataset.items:
        seen.setdefault(it.meta["video"], it.path)
    return list(seen.values())


_LABELS = {
    "top1": "top-1",
    "top5": "top-5",
    "mean_class_acc": "mean class acc",
    "paired_top1": "top-1 on direction pairs",
    "mse": "MSE",
    "mae": "MAE",
    "pearson_r": "Pearson r",
}


def result_table(values: dict, minutes: float, title: str = "", time_label: str | None = "time (min)") -> str:
    """A small markdown table of the metrics and the wall time of the command that made them (none without a
    ``time_label``)."""
    rows = [(_LABELS.get(k, k), v) for k, v in values.items() if isinstance(v, float)]
    if time_label is not None:
        rows.append((time_label, minutes))
    width = max(len(r[0]) for r in rows)
    lines = [title] if title else []
    lines.append(f"| {'metric'.ljust(width)} | value  |")
    lines.append(f"|{'-' * (width + 2)}|--------|")
    lines += [
        f"| {name.ljust(width)} | {v:6.4f} |" if name != time_label else f"| {name.ljust(width)} | {v:6.2f} |"
        for name, v in rows
    ]
    return "\n".join(lines)
