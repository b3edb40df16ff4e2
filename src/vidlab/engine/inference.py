"""`vidlab test` (a checkpoint on an annotated split) and `vidlab predict` (one video, top-k with names)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vidlab.config import Config
from vidlab.data.datasets import VideoItem
from vidlab.data.loader import build_loader
from vidlab.engine.builders import build_dataset, build_model, load_class_names
from vidlab.engine.checkpoint import CheckpointError
from vidlab.engine.distributed import cleanup, init_distributed
from vidlab.engine.evaluate import (
    autocast_context,
    evaluate_split,
    result_line,
    result_table,
    to_input,
    write_results,
)
from vidlab.models.convert import load_checkpoint


def load_model(cfg: Config, checkpoint: str | Path, device: torch.device) -> torch.nn.Module:
    """Build the configured model and load a local checkpoint strictly (vidlab's own, or MMAction2's layout)."""
    model = build_model(cfg, checkpoint)
    try:
        load_checkpoint(model, checkpoint, source="auto", strict=True)
    except (FileNotFoundError, ValueError, NotImplementedError) as e:
        raise CheckpointError(f"checkpoint {checkpoint} does not fit model {cfg.model.name}: {e}") from e
    return model.to(device).eval()


def run_test(cfg: Config, checkpoint: str | Path, out: str | Path | None = None, split: str = "test") -> dict:
    """Multi-view evaluation of ``checkpoint`` on ``split``; prints the table and the RESULT line."""
    t0 = time.time()
    info = init_distributed(cfg.device)
    dataset = build_dataset(cfg, split)
    loader = build_loader(
        dataset,
        cfg.test.batch_size or cfg.data.val_batch_size or cfg.data.batch_size,
        train=False,
        num_workers=cfg.data.num_workers,
        rank=info.rank,
        world_size=info.world_size,
    )
    model = load_model(cfg, checkpoint, info.device)
    values, scores, labels, skipped = evaluate_split(model, loader, info, cfg, progress=True)
    minutes = (time.time() - t0) / 60
    if info.is_main:
        if skipped:
            print(f"skipped {len(skipped)} undecodable video(s): {', '.join(sorted(set(skipped)))}")
        if out is not None:
            meta = {
                "config": cfg.model.name,
                "checkpoint": str(checkpoint),
                "split": split,
                "average_clips": cfg.model.average_clips,
                "skipped": sorted(set(skipped)),
            }
            write_results(out, scores, labels, [it.path for it in dataset.items], values, meta)
            print(f"per-video scores and metrics: {out}")
        if not cfg.data.multi_label:
            from vidlab.engine.plots import plot_confusion

            png = Path(out).with_suffix(".confusion.png") if out else Path(cfg.work_dir) / f"confusion_{split}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            print(f"confusion matrix: {plot_confusion(scores, labels, png, load_class_names(cfg))}")
        title = f"{cfg.model.name} on {split} ({len(dataset)} videos)"
        print(result_table(values, minutes, title=title, time_label="test time (min)"))
        print(result_line(values, minutes), flush=True)
    cleanup(info)
    return {**values, "minutes": minutes}


@torch.no_grad()
def predict_video(
    cfg: Config, video: str | Path, checkpoint: str | Path, topk: int = 5
) -> list[tuple[int, str, float]]:
    """Top-k (label, name, probability) for one video, with the test sampler and pipeline of ``cfg``."""
    device = init_distributed(cfg.device).device
    dataset = build_dataset(cfg, "test", items=[VideoItem(str(video), [0])])
    model = load_model(cfg, checkpoint, device)
    item = dataset[0]
    x = to_input(item["imgs"][None], cfg.data.mean, cfg.data.std, device)  # (1, V, C, T, H, W)
    with autocast_context(cfg.train.amp, device):
        scores = model.forward_views(x, average_clips="prob")
    probs = scores.float()[0]
    names = load_class_names(cfg) or []
    top = torch.topk(probs, min(topk, probs.numel()))
    return [(int(i), names[i] if i < len(names) else str(int(i)), float(p)) for p, i in zip(top.values, top.indices)]
