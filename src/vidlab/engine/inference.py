"""`vidlab test` (a checkpoint on an annotated split), `vidlab predict` (one video, top-k with names) and
:func:`load_model`: everything here runs from a self-describing checkpoint alone, a config given on top overrides."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vidlab.config import Config, ConfigError, load_config
from vidlab.data.datasets import AnnotationError, VideoItem
from vidlab.data.loader import build_loader
from vidlab.engine.builders import build_dataset, build_model, build_task, config_from_checkpoint, load_class_names
from vidlab.engine.checkpoint import CheckpointError, load_file
from vidlab.engine.distributed import cleanup, init_distributed
from vidlab.engine.evaluate import batch_inputs, evaluate_split, result_table, video_paths, write_results
from vidlab.engine.precision import autocast_context
from vidlab.models.convert import load_checkpoint


def checkpoint_meta_of(path: str | Path) -> dict:
    """The ``meta`` mapping of a vidlab checkpoint file (``{}`` when it has none)."""
    obj = load_file(path)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def resolve_config(
    checkpoint: str | Path, config: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """The run's config: what ``checkpoint`` describes, then the YAML ``config`` and the dotted ``overrides`` on
    top. Without a self-describing checkpoint a config is required."""
    meta = checkpoint_meta_of(checkpoint)
    if config is None:
        try:
            base = config_from_checkpoint(meta, source=f"checkpoint {checkpoint}")
        except ConfigError as e:
            raise CheckpointError(str(e)) from e
        return load_config(None, overrides, base=base)
    base = config_from_checkpoint(meta) if "data" in meta else None
    return load_config(config, overrides, base=base)


def class_names(cfg: Config, checkpoint: str | Path) -> list[str] | None:
    """Class names from ``data.label_map`` if the config names one, else from the checkpoint's meta."""
    return load_class_names(cfg) or checkpoint_meta_of(checkpoint).get("classes")


def inference_precision(cfg: Config, device: torch.device, amp: str | None = None) -> str:
    """The autocast precision of ``amp`` (default ``test.amp``) on ``device`` (``none`` under the onnxruntime
    backend; ``auto`` on CPU: bf16 only where it beats fp32, see
    :func:`vidlab.engine.fast.resolve_inference_precision`)."""
    from vidlab.engine.fast import resolve_inference_precision

    return resolve_inference_precision(amp or cfg.test.amp, device, cfg.test.backend)


def build_for_inference(cfg: Config, checkpoint: str | Path, device: torch.device) -> torch.nn.Module:
    """:func:`build_and_load`, then made fast (``test.fold_bn``, ``memory_format``, ``compile``, ``backend``; see
    :mod:`vidlab.engine.fast`) on its first call, with what was done logged."""
    import logging

    from vidlab.engine.fast import prepare_on_first_call

    model = build_and_load(cfg, checkpoint, device)
    log = logging.getLogger("vidlab")
    prepare_on_first_call(model, cfg.test, lambda p: log.info("inference: %s", p.describe()))
    return model


def build_and_load(cfg: Config, checkpoint: str | Path, device: torch.device) -> torch.nn.Module:
    """Build the configured model and load a local checkpoint strictly (vidlab's own, or MMAction2's layout)."""
    model = build_model(cfg, checkpoint)
    try:
        load_checkpoint(model, checkpoint, source="auto", strict=True)
    except (FileNotFoundError, ValueError, NotImplementedError) as e:
        raise CheckpointError(f"checkpoint {checkpoint} does not fit model {cfg.model.name}: {e}") from e
    return model.to(device).eval()


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build and load (strictly) the model a self-describing vidlab checkpoint describes, in eval mode.

    The checkpoint's ``meta`` (written by ``vidlab train`` and ``vidlab convert``) is attached as ``model.meta``.
    """
    cfg = resolve_config(checkpoint)
    model = build_and_load(cfg, checkpoint, torch.device(device))
    model.meta = checkpoint_meta_of(checkpoint)
    return model


def run_test(cfg: Config, checkpoint: str | Path, out: str | Path | None = None, split: str = "test") -> dict:
    """Multi-view evaluation of ``checkpoint`` on ``split``; prints the table and the RESULT line."""
    t0 = time.time()
    info = init_distributed(cfg.device)
    precision = inference_precision(cfg, info.device)
    dataset = build_dataset(cfg, split)
    loader = build_loader(
        dataset,
        cfg.test.batch_size or cfg.data.val_batch_size or cfg.data.batch_size,
        train=False,
        num_workers=cfg.data.num_workers,
        rank=info.rank,
        world_size=info.world_size,
        timeout=cfg.data.timeout,
    )
    model = build_for_inference(cfg, checkpoint, info.device)
    task = build_task(cfg, split=split)
    values, scores, labels, skipped = evaluate_split(
        model, loader, info, task, mean=cfg.data.mean, std=cfg.data.std, precision=precision, progress=True
    )
    minutes = (time.time() - t0) / 60
    if info.is_main:
        if skipped:
            print(f"skipped {len(skipped)} undecodable video(s): {', '.join(sorted(set(skipped)))}")
        if out is not None:
            meta = {
                "config": cfg.model.name,
                "checkpoint": str(checkpoint),
                "split": split,
                "task": task.name,
                "average_clips": cfg.model.average_clips,
                "precision": precision,
                "skipped": sorted(set(skipped)),
            }
            if task.name == "detection":
                print(f"AVA-format predictions: {task.write_predictions(out, scores)}")
                print(f"per-class AP: {task.write_per_class(Path(out).with_suffix('.per_class.csv'), values)}")
            else:
                write_results(out, scores, labels, video_paths(dataset), values, meta)
                print(f"per-video scores and metrics: {out}")
        if task.name == "recognition" and not cfg.data.multi_label:
            from vidlab.engine.plots import plot_confusion

            png = Path(out).with_suffix(".confusion.png") if out else Path(cfg.work_dir) / f"confusion_{split}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            print(f"confusion matrix: {plot_confusion(scores, labels, png, class_names(cfg, checkpoint))}")
        unit = "keyframes" if task.name == "detection" else "videos"
        count = len(dataset) if unit == "keyframes" else len(labels)
        title = f"{cfg.model.name} on {split} ({count} {unit}, {'fp32' if precision == 'none' else precision})"
        print(result_table(values, minutes, title=title, time_label="test time (min)"))
        print(task.result_line(values, minutes), flush=True)
    cleanup(info)
    return {**values, "minutes": minutes}


@torch.no_grad()
def predict_video(
    cfg: Config, video: str | Path, checkpoint: str | Path, topk: int = 5
) -> list[tuple[int, str, float]]:
    """Top-k ``(label, name, probability)`` for one video (regression: each target's ``(index, name, value)``;
    counting: ``(0, "count", count)``),
    with the test sampler and pipeline of ``cfg``."""
    device = init_distributed(cfg.device).device
    precision = inference_precision(cfg, device)
    dataset = build_dataset(cfg, "test", items=[VideoItem(str(video), [0])])
    model = build_for_inference(cfg, checkpoint, device)
    task = build_task(cfg)
    item = dataset[0]
    x = batch_inputs({k: item[k][None] for k in ("imgs", "audio") if k in item}, cfg.data.mean, cfg.data.std, device)
    names = class_names(cfg, checkpoint) or []
    with autocast_context(precision, device):
        if task.name in ("regression", "counting"):
            values = task.predict(model, x).float()[0]
            keys = ["count"] if task.name == "counting" else [f"target_{i}" for i in range(len(values))]
            return [(i, key, float(v)) for i, (key, v) in enumerate(zip(keys, values))]
        probs = model.forward_views(x, average_clips="prob").float()[0]
    top = torch.topk(probs, min(topk, probs.numel()))
    return [(int(i), names[i] if i < len(names) else str(int(i)), float(p)) for p, i in zip(top.values, top.indices)]


@torch.no_grad()
def predict_video_boxes(
    cfg: Config,
    video: str | Path,
    checkpoint: str | Path,
    boxes: str | Path,
    out: str | Path,
    *,
    gt: bool = False,
    score_thr: float = 0.5,
    video_id: str | None = None,
) -> list[tuple]:
    """Run an action detector on the keyframes of one video and draw its boxes and actions into ``out`` (MP4).

    Args:
        boxes: the person boxes: a proposals file (MMAction2 ``.pkl`` or PySlowFast ``.csv``) or, with ``gt``, an
            AVA ground-truth CSV; its rows for ``video_id`` (default: the video's file stem) are the keyframes.
        score_thr: actions drawn at or above this probability.

    Returns:
        AVA-format rows ``(video, timestamp, x1, y1, x2, y2, action_id, score)`` of every box and class.
    """
    from vidlab.data.ava import AVADataset, Keyframe, load_proposals, read_ava_annotations
    from vidlab.data.transforms import build_pipeline
    from vidlab.engine.draw import draw_detections
    from vidlab.tasks import DetectionTask

    meta = checkpoint_meta_of(checkpoint)
    task_state = meta.get("task") or {}
    class_ids = task_state.get("class_ids") or list(range(1, cfg.model.num_classes + 1))
    names = class_names(cfg, checkpoint) or [str(i) for i in class_ids]
    det = cfg.detection
    vid = video_id or Path(video).stem
    if gt:
        found = read_ava_annotations(boxes, class_ids)
        keyframes = [found[k] for k in sorted(found) if k[0] == vid]
    else:
        props = load_proposals(boxes, det.proposal_score_thr, det.max_proposals, det.keyframe_unit)
        keyframes = [Keyframe(vid, k[1]) for k in sorted(props) if k[0] == vid]
    if not keyframes:
        raise AnnotationError(
            f"{boxes} has no boxes for video id {vid!r} (give --video-id if the file names the video otherwise; "
            f"proposals scoring under detection.proposal_score_thr={det.proposal_score_thr} are not read)"
        )
    info = init_distributed(cfg.device)
    device = info.device
    precision = inference_precision(cfg, device)
    dataset = AVADataset(
        keyframes,
        cfg.model.num_classes,
        build_pipeline(cfg.data.test_pipeline or cfg.data.val_pipeline),
        lambda _: str(video),
        clip_len=det.clip_len,
        frame_interval=det.frame_interval,
        convention=det.center,
        proposals=None if gt else props,
        test_boxes="gt" if gt else "proposals",
        keyframe_unit=det.keyframe_unit,
        timestamp_start=det.timestamp_start,
        fps=det.fps,
        short_side=cfg.data.short_side,
        backend=cfg.data.backend,
    )
    model = build_for_inference(cfg, checkpoint, device)
    task = DetectionTask(class_ids, names)  # predicts only: no ground truth to evaluate against
    _, preds, _, _ = task.evaluate_loader(
        model,
        build_loader(dataset, 1, train=False),
        info,
        mean=cfg.data.mean,
        std=cfg.data.std,
        precision=precision,
        metrics=False,
    )
    rows = list(task.prediction_rows(preds))
    draw_detections(video, out, rows, dict(zip(class_ids, names)), score_thr, det, vid)
    return rows
