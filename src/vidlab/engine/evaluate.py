"""Evaluation: multi-view inference (num_clips x num_crops), score gathering across ranks, metrics, result files."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from vidlab import metrics
from vidlab.data.transforms import normalize_batch
from vidlab.engine.builders import direction_pairs
from vidlab.engine.distributed import DistInfo, all_gather_objects


def autocast_context(amp: str, device: torch.device):
    """``torch.autocast`` for ``amp`` in (none, bf16, fp16); fp16 only on CUDA."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp=fp16 needs CUDA; use bf16 on CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def to_input(imgs: torch.Tensor, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, V, T, H, W, C)`` -> normalized float ``(B, V, C, T, H, W)`` on ``device``."""
    return normalize_batch(imgs.to(device, non_blocking=True), mean, std)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    loader,
    info: DistInfo,
    *,
    mean,
    std,
    average_clips: str | None = "prob",
    amp: str = "none",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores of every sample in ``loader``'s dataset, in dataset order, gathered on all ranks.

    Returns:
        (scores ``(N, num_classes)`` float32, labels ``(N,)`` or multi-hot ``(N, num_classes)``, skipped paths).
    """
    model.eval()
    net = unwrap(model)
    parts, skipped = [], []
    iterator = loader
    if progress and info.is_main and sys.stderr.isatty():
        from tqdm import tqdm

        iterator = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    for batch in iterator:
        x = to_input(batch["imgs"], mean, std, info.device)  # (B, V, C, T, H, W)
        with autocast_context(amp, info.device):
            scores = net.forward_views(x, average_clips=average_clips)
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
        raise RuntimeError("evaluation saw no samples: is the annotation list empty?")
    order = np.argsort(np.concatenate(idx), kind="stable")
    return np.concatenate(scores)[order], np.concatenate(labels)[order], all_skipped


def compute_metrics(
    scores: np.ndarray, labels: np.ndarray, *, multi_label: bool = False, topk=(1, 5), paired_classes=()
) -> dict:
    """The standard recognition metrics (MMAction2 definitions; see vidlab.metrics)."""
    if multi_label:
        return {"mAP": float(metrics.mean_average_precision(scores, labels))}
    # top-k with k >= num_classes is 1.0 (every class is in the top k), as MMAction2 computes it
    accs = metrics.top_k_accuracy(scores, labels, topk=tuple(min(t, scores.shape[1]) for t in topk))
    out = {f"top{t}": float(a) for t, a in zip(topk, accs)}
    out["mean_class_acc"] = float(metrics.mean_class_accuracy(scores, labels))
    if len(paired_classes):
        out["paired_top1"] = float(metrics.class_accuracy_subset(scores, labels, list(paired_classes)))
    return out


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
    model, loader, info: DistInfo, cfg, progress: bool = False
) -> tuple[dict, np.ndarray, np.ndarray, list]:
    """Predict a loader's dataset with the config's view averaging and precision, then compute its metrics.

    Returns:
        (metrics, scores, labels, skipped video paths).
    """
    scores, labels, skipped = predict(
        model,
        loader,
        info,
        mean=cfg.data.mean,
        std=cfg.data.std,
        average_clips=cfg.model.average_clips,
        amp=cfg.train.amp,
        progress=progress,
    )
    values = compute_metrics(
        scores, labels, multi_label=cfg.data.multi_label, topk=tuple(cfg.test.topk), paired_classes=direction_pairs(cfg)
    )
    return values, scores, labels, skipped


def result_line(values: dict, minutes: float) -> str:
    """The one-line summary other tools parse."""
    return (
        f"RESULT top1={values.get('top1', 0.0):.4f} top5={values.get('top5', 0.0):.4f} "
        f"mean_class_acc={values.get('mean_class_acc', 0.0):.4f} minutes={minutes:.2f}"
    )


def result_table(values: dict, minutes: float, title: str = "", time_label: str = "time (min)") -> str:
    """A small markdown table of the metrics and the wall time of the command that made them."""
    rows = [
        ("top-1", values.get("top1")),
        ("top-5", values.get("top5")),
        ("mean class acc", values.get("mean_class_acc")),
    ]
    if "paired_top1" in values:
        rows.append(("top-1 on direction pairs", values["paired_top1"]))
    rows.append((time_label, minutes))
    width = max(len(r[0]) for r in rows)
    lines = [title] if title else []
    lines.append(f"| {'metric'.ljust(width)} | value  |")
    lines.append(f"|{'-' * (width + 2)}|--------|")
    lines += [
        f"| {name.ljust(width)} | {v:6.4f} |" if name != time_label else f"| {name.ljust(width)} | {v:6.2f} |"
        for name, v in rows
        if v is not None
    ]
    return "\n".join(lines)
