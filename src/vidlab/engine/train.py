"""The training loop, top to bottom: set-up, epochs of optimizer steps, validation, checkpoints, resume."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidlab.config import Config, save_config, to_dict
from vidlab.data.loader import build_loader
from vidlab.engine import checkpoint as ckpt
from vidlab.engine import parallel
from vidlab.engine.builders import (
    build_dataset,
    build_model,
    build_optimizer_from_config,
    build_task,
    checkpoint_kwargs,
    checkpoint_meta,
    load_class_names,
    source_configs,
)
from vidlab.engine.distributed import (
    DistInfo,
    all_gather_objects,
    barrier,
    broadcast_buffers,
    cleanup,
    init_distributed,
)
from vidlab.engine.evaluate import TrainForward, batch_inputs, evaluate_split, result_table, unwrap
from vidlab.engine.optim import apply_freeze, build_scheduler
from vidlab.engine.precision import autocast_context, describe, guard_short_clip_convs, resolve_fast_precision
from vidlab.engine.sources import MultiSourceLoader, source_loss
from vidlab.errors import InputError, MissingDependencyError, VidlabError
from vidlab.models.convert import load_checkpoint
from vidlab.tasks import Task

logger = logging.getLogger("vidlab")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def setup_logging(work_dir: Path | None, is_main: bool) -> None:
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    if logger.handlers:
        return
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler()
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if work_dir is not None and is_main:
        handler = logging.FileHandler(work_dir / "train.log")
        handler.setFormatter(fmt)
        logger.addHandler(handler)


def train_step(
    model,
    batch: dict,
    task: Task,
    info: DistInfo,
    *,
    mean,
    std,
    precision: str = "none",
    micro_step: int = 0,
    accum: int = 1,
    channels_last: bool = False,
    scaler=None,
) -> float:
    """Forward + backward of one micro-batch; gradients are synchronised only on the last micro-step.

    ``model`` is a :class:`TrainForward` (possibly DDP-wrapped or FSDP-sharded) or any module whose forward gives
    outputs.
    """
    x = batch_inputs(batch, mean, std, info.device)  # (B, V, C, T, H, W), or (B, 1, ...) features
    v = x.shape[1]
    y = task.targets(batch, info.device, v)
    x = x.flatten(0, 1)  # (B*V, C, T, H, W): training views act as extra samples
    x, y = task.augment_batch(x, y)  # random erasing, Mixup / CutMix (soft targets) where configured
    if channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    sync = (micro_step + 1) % accum == 0
    with parallel.grad_sync(model, sync):  # DDP's no_sync, FSDP's deferred reduce-scatter
        with autocast_context(precision, info.device):
            out = model(x, **task.model_inputs(batch, info.device))
        outputs, aux = out if isinstance(out, tuple) else (out, [])
        if "source" in batch:  # several training sources: weighted sum of their losses, each logged
            loss, batch["source_stats"] = source_loss(task, outputs, y, aux, batch, v)
        else:
            loss = task.loss(outputs, y, aux)
        scaled = loss / accum
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return loss.item()


class NonFiniteLossError(VidlabError, RuntimeError):
    """Training diverged: the (all-reduced, so identical on every rank) gradients hold NaN or inf."""

    exit_code = 1  # the inputs were valid; the run itself failed


def optimizer_step(model, optimizer, scheduler, grad_clip: float | None, scaler=None, where: str = "") -> float | None:
    """Clip (if ``grad_clip``) and apply the gradients. Non-finite gradients stop training with
    :class:`NonFiniteLossError` before they reach the weights (every rank sees the same all-reduced norm, so all
    stop together); the last epoch's checkpoint stays intact. Under fp16 the gradient scaler skips such steps
    instead (overflow is expected while it calibrates its scale)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf")).item()
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        if not math.isfinite(grad_norm):
            raise NonFiniteLossError(
                f"training diverged{where}: the gradients are {grad_norm} (lr {optimizer.param_groups[0]['lr']:.3g});"
                " lower optim.lr, set optim.grad_clip, or train without mixed precision (train.amp=none). The "
                "checkpoints of the finished epochs are intact (resume with --resume)."
            )
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return grad_norm if grad_clip else None


class _Progress:
    """Progress of an epoch: a tqdm bar on rank 0's terminal, else a log line every ``log_interval`` micro-steps
    (no carriage-return bars in logs and CI output)."""

    def __init__(self, info: DistInfo, total: int, initial: int, epoch: int, epochs: int, log_interval: int) -> None:
        self.total, self.epoch, self.log_interval, self.is_main = total, epoch, log_interval, info.is_main
        self.bar = None
        if info.is_main and sys.stderr.isatty():
            from tqdm import tqdm

            desc = f"epoch {epoch + 1}/{epochs}"
            self.bar = tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, done: int, losses: list[float], lr: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{lr:.2e}")
        elif self.is_main and done % self.log_interval == 0:
            loss = np.mean(losses[-self.log_interval :])
            logger.info("epoch %d iter %d/%d loss %.4f lr %.3g", self.epoch + 1, done, self.total, loss, lr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train_one_epoch(
    model,
    loader,
    optimizer,
    scheduler,
    task: Task,
    info: DistInfo,
    *,
    epoch: int,
    epochs: int,
    mean,
    std,
    precision: str = "none",
    accum: int = 1,
    max_iters: int | None = None,
    grad_clip: float | None = None,
    channels_last: bool = False,
    log_interval: int = 20,
    frozen: tuple[str, ...] = (),
    scaler=None,
    partial: dict | None = None,
    on_step=None,
) -> dict:
    """One epoch of optimizer steps over ``loader``; returns the mean loss, skipped videos, time and last lr.

    ``partial`` (a mid-epoch checkpoint's ``partial``, with its ``rng``) continues an epoch after
    ``partial["step"]`` optimizer steps: the loader's sampler must already skip those batches.
    ``on_step(step, n_steps, so_far)`` is called after every optimizer step with what such a checkpoint needs.
    """
    model.train()
    apply_freeze(unwrap(model), frozen)  # frozen parts keep BatchNorm in eval mode
    n_micro = len(loader) - len(loader) % accum
    if max_iters:
        n_micro = min(n_micro, max_iters * accum)
    done = partial or {"step": 0, "losses": [], "skipped": [], "time_s": 0.0}
    losses, skipped, per_source = list(done["losses"]), list(done["skipped"]), {}
    progress = _Progress(info, n_micro, done["step"] * accum, epoch, epochs, log_interval)
    step = {"mean": mean, "std": std, "precision": precision, "accum": accum, "channels_last": channels_last}
    t0 = time.time() - done["time_s"]
    batches = iter(loader)
    if partial is not None:  # creating the iterator drew the workers' seeds: back to the state at the checkpoint
        ckpt.restore_rng_state(partial["rng"])
    for i, batch in enumerate(batches, start=done["step"] * accum):
        if i >= n_micro:
            break
        losses.append(train_step(model, batch, task, info, micro_step=i, scaler=scaler, **step))
        skipped.extend(batch["skipped"])
        for name, values in batch.get("source_stats", {}).items():
            per_source.setdefault(name, []).append(values)
        if (i + 1) % accum == 0:
            where = f" at epoch {epoch + 1}, iteration {i + 1}"
            optimizer_step(model, optimizer, scheduler, grad_clip, scaler, where)
            if on_step is not None:
                so_far = {"step": (i + 1) // accum, "losses": losses, "skipped": skipped, "time_s": time.time() - t0}
                on_step((i + 1) // accum, n_micro // accum, so_far)
        progress.update(i + 1, losses, optimizer.param_groups[0]["lr"])
    progress.close()
    loss = float(np.mean(losses)) if losses else float("nan")
    gathered = all_gather_objects((loss, skipped, per_source), info)
    return {
        "loss": float(np.nanmean([g[0] for g in gathered])),
        "skipped": sorted({p for g in gathered for p in g[1]}),
        "time_s": time.time() - t0,
        "lr": optimizer.param_groups[0]["lr"],
        "sources": _source_means([g[2] for g in gathered]),
    }


def _source_means(per_rank: list[dict]) -> dict[str, float]:
    """``train_<source>_loss`` / ``train_<source>_top1``: each source's mean over the epoch's steps and ranks."""
    out = {}
    for name in per_rank[0]:
        steps = [v for rank in per_rank for v in rank.get(name, [])]
        out[f"train_{name}_loss"] = float(np.mean([loss for loss, _ in steps]))
        hits = [h for _, h in steps if h is not None]
        if hits:
            out[f"train_{name}_top1"] = float(np.mean(hits))
    return out


def _progress(path: Path) -> tuple[int, int] | None:
    """(epochs done, optimizer steps into the next epoch) of ``epoch_N.pth`` / ``iter_E_K.pth``; None otherwise."""
    parts = path.stem.split("_")
    if not all(p.isdigit() for p in parts[1:]):
        return None
    if parts[0] == "epoch" and len(parts) == 2:
        return int(parts[1]), 0
    if parts[0] == "iter" and len(parts) == 3:
        return int(parts[1]) - 1, int(parts[2])
    return None


def _resume_path(work_dir: Path, resume: str) -> Path | None:
    """``--resume PATH``, or with ``auto`` the checkpoint furthest into training (``epoch_N.pth`` or a mid-epoch
    ``iter_E_K.pth``)."""
    if resume != "auto":
        return Path(resume)
    found = [(_progress(p), p) for p in [*work_dir.glob("epoch_*.pth"), *work_dir.glob("iter_*.pth")]]
    found = sorted((progress, p) for progress, p in found if progress is not None)
    return found[-1][1] if found else None


def _prepare_work_dir(cfg: Config, info: DistInfo) -> Path:
    """Rank 0 creates ``work_dir``, writes the resolved config and deletes temporary files of checkpoint writes that
    a killed run cut short (they are never loaded)."""
    work_dir = Path(cfg.work_dir)
    if info.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, work_dir / "config.yaml")
        for stale in work_dir.glob(".*.tmp"):
            stale.unlink()
    barrier(info)
    return work_dir


def _start_epoch(train_loader, epoch: int, partial: dict | None, cfg: Config) -> None:
    """Seed the epoch's shuffling and sampling; after a mid-epoch checkpoint, skip the batches it has trained on."""
    if isinstance(train_loader, MultiSourceLoader):
        train_loader.set_epoch(epoch)
        return
    train_loader.dataset.set_epoch(epoch)
    train_loader.sampler.set_epoch(epoch)
    if partial is not None:
        train_loader.sampler.skip = partial["step"] * cfg.train.accum_steps * cfg.data.batch_size


def _mid_epoch_saver(cfg: Config, work_dir: Path, info: DistInfo, model, optimizer, scheduler, epoch: int, run):
    """``on_step`` for :func:`train_one_epoch` with ``train.checkpoint_every_iters`` (None without it): every k
    optimizer steps (not at the epoch's last, which its epoch checkpoint covers) write ``iter_<epoch>_<step>.pth``
    and drop the older ones. ``run`` is ``(best, history, meta)`` as the epoch checkpoints hold them."""
    every = cfg.train.checkpoint_every_iters
    if not every:
        return None
    best, history, meta = run

    def on_step(step: int, n_steps: int, so_far: dict) -> None:
        if step % every or step >= n_steps:
            return
        weights = parallel.full_state_dicts(model, optimizer)
        if info.is_main:
            state = _state(weights, scheduler, epoch, best, history, cfg, meta)
            state["partial"] = {**so_far, "losses": list(so_far["losses"]), "skipped": list(so_far["skipped"])}
            path = work_dir / f"iter_{epoch + 1}_{step}.pth"
            ckpt.save_checkpoint(state, path)
            for old in work_dir.glob("iter_*.pth"):
                if old != path:
                    old.unlink()
        barrier(info)

    return on_step


def _state(weights: tuple[dict, dict], scheduler, epoch: int, best: dict, history: list, cfg: Config, meta: dict):
    """The checkpoint; ``weights``: the model's and optimizer's full state dicts (:func:`parallel.full_state_dicts`,
    whatever the strategy: the state dicts of a single process)."""
    return {
        "model": weights[0],
        "optimizer": weights[1],
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "best": best,
        "history": history,
        "rng": ckpt.capture_rng_state(),
        "config": to_dict(cfg),
        "meta": meta,
    }


def _save_epoch(state: dict, work_dir: Path, epoch: int, is_best: bool, keep: int) -> None:
    # best.pth first: epoch_N.pth is what a resume starts from, so a run killed between the two writes redoes
    # epoch N (and rewrites best.pth) instead of going on without the best checkpoint of epoch N
    if is_best:
        ckpt.save_checkpoint(state, work_dir / "best.pth")
    ckpt.save_checkpoint(state, work_dir / f"epoch_{epoch}.pth")
    old = sorted(work_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    for p in old[:-keep] if keep > 0 else []:
        p.unlink()
    for p in work_dir.glob("iter_*.pth"):  # mid-epoch checkpoints: the epoch checkpoint is further along
        p.unlink()


def _report_skipped(work_dir: Path, epoch: int, split: str, skipped: list[str]) -> None:
    if not skipped:
        return
    logger.warning("epoch %d %s: skipped %d undecodable video(s): %s", epoch, split, len(skipped), ", ".join(skipped))
    with open(work_dir / "skipped_videos.txt", "a") as f:
        for p in skipped:
            f.write(f"epoch={epoch} split={split} {p}\n")


def _loaders(cfg: Config, info: DistInfo):
    train_set, val_set = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    common = {"num_workers": cfg.data.num_workers, "rank": info.rank, "world_size": info.world_size}
    common["timeout"] = cfg.data.timeout
    train_loader = build_loader(train_set, cfg.data.batch_size, train=True, seed=cfg.train.seed, **common)
    if cfg.data.sources:
        loaders, names, weights = [train_loader], [cfg.data.source_name], [cfg.data.loss_weight]
        for sub in source_configs(cfg):
            loaders.append(build_loader(build_dataset(sub, "train"), sub.data.batch_size, train=True,
                                        seed=cfg.train.seed, **common))  # fmt: skip
            names.append(sub.data.source_name)
            weights.append(sub.data.loss_weight)
        train_loader = MultiSourceLoader(loaders, names, weights)
    val_loader = build_loader(val_set, cfg.data.val_batch_size or cfg.data.batch_size, train=False, **common)
    if len(train_loader) < cfg.train.accum_steps:
        raise InputError(f"{len(train_set)} training videos make no full batch of {cfg.data.batch_size} per process")
    return train_loader, val_loader


def _load_pretrained(model, cfg: Config) -> None:
    """Fine-tuning start: a head of another class count keeps its fresh init; a file that fits nothing is an
    error. With ``model.pretrained_2d`` the file is an image checkpoint, inflated into the model."""
    if cfg.model.pretrained_2d:
        from vidlab.models.convert.inflate import describe, load_inflated

        try:
            report = load_inflated(
                model, cfg.model.pretrained, style=cfg.model.inflate_style, patch=cfg.model.patch_inflation
            )
        except (ValueError, FileNotFoundError, NotImplementedError) as e:
            raise ckpt.CheckpointError(f"model.pretrained={cfg.model.pretrained} (pretrained_2d): {e}") from e
        logger.info("inflated %s into %s:\n%s", cfg.model.pretrained, cfg.model.name, "\n".join(describe(report)))
        return
    try:
        frames = cfg.model.pretrained_frames or checkpoint_kwargs(cfg.model.pretrained).get("num_frames")
        r = load_checkpoint(
            model, cfg.model.pretrained, source="auto", strict=False, drop_head=True, source_frames=frames
        )
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        raise ckpt.CheckpointError(f"model.pretrained: {e}") from e
    flat = [k for k, have, want in r["mismatched"] if len(have) == 4 and len(want) == 5]
    if flat:  # an image network's 2D kernels where the model has 3D ones: only its BatchNorms would load
        raise ckpt.CheckpointError(
            f"model.pretrained={cfg.model.pretrained} has 2D kernels where {cfg.model.name} has 3D ones ({len(flat)}, "
            f"e.g. {flat[0]}): an image checkpoint. Set model.pretrained_2d: true to inflate it."
        )
    if not r["loaded"]:
        raise ckpt.CheckpointError(
            f"model.pretrained={cfg.model.pretrained} ({r['source']} layout): none of its {len(r['unexpected'])} "
            f"tensors fits {cfg.model.name} (e.g. {', '.join(r['unexpected'][:3])}); training would start "
            "from scratch. Convert it first (`vidlab convert ... --from SOURCE`) or check the model name."
        )
    logger.info(
        "loaded %s (%s layout): %d tensors; missing %s, unexpected %s, head dropped %s, other shapes %s",
        cfg.model.pretrained,
        r["source"],
        len(r["loaded"]),
        r["missing"],
        r["unexpected"],
        r["dropped"],
        [k for k, _, _ in r["mismatched"]],
    )
    for note in r.get("adapted", []):  # position tables resized, a recognizer's weights moved into a detector
        logger.info("%s: %s", cfg.model.pretrained, note)


def _weights_of(cfg: Config) -> str | None:
    """The vidlab checkpoint whose recorded builder arguments count (not an image checkpoint to inflate)."""
    return None if cfg.model.pretrained_2d else cfg.model.pretrained or None


def _model_and_optimizer(cfg: Config, info: DistInfo, iters_per_epoch: int):
    """The model on its device, the module trained (a :class:`TrainForward`, DDP-wrapped or FSDP-sharded under
    torchrun as ``train.strategy`` says, see :func:`parallel.wrap`), its optimizer and per-step lr schedule, and
    the frozen parameter names."""
    model = build_model(cfg, _weights_of(cfg)).to(info.device)
    if cfg.train.channels_last:
        model.to_channels_last()
    if cfg.model.pretrained:
        _load_pretrained(model, cfg)
    per_step = cfg.data.batch_size + sum(sub.data.batch_size for sub in source_configs(cfg))  # every source's share
    global_batch = per_step * info.world_size * cfg.train.accum_steps
    optimizer, frozen = build_optimizer_from_config(model, cfg, global_batch)  # freezes before DDP / FSDP wrap
    trained = parallel.wrap(TrainForward(model), cfg.train, info)
    if parallel.is_sharded(trained):  # sharding replaced the parameters: the optimizer takes the sharded ones
        optimizer, frozen = build_optimizer_from_config(model, cfg, global_batch)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.train.epochs, iters_per_epoch)
    return trained, optimizer, scheduler, global_batch, frozen


def _restore(path: Path, model, optimizer, scheduler, info: DistInfo) -> tuple[int, dict, list, dict | None]:
    """Load a full training state; returns (epochs done, best, history, the partial epoch of a mid-epoch
    checkpoint with its RNG states, or None)."""
    state = ckpt.load_file(path, map_location=info.device)
    parallel.load_full_state_dicts(model, optimizer, state["model"], state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    ckpt.restore_rng_state(state["rng"])
    partial = state.get("partial")
    if partial is not None:
        partial = {**partial, "rng": state["rng"]}
        logger.info("resumed from %s at epoch %d, step %d", path, state["epoch"] + 1, partial["step"])
    else:
        logger.info("resumed from %s at epoch %d", path, state["epoch"])
    best = state["best"]
    if "metric" not in best:  # written before tasks: {"top1": value, "epoch": e}
        best = {"metric": "top1", "value": best["top1"] if best["top1"] >= 0 else None, "epoch": best["epoch"]}
    return state["epoch"], best, state["history"], partial


def _write_epoch(work_dir: Path, record: dict, stats: dict, vskipped: list, tb) -> None:
    """Rank 0's per-epoch outputs besides the checkpoint: metrics line, skip report, TensorBoard, log."""
    epoch = record["epoch"]
    with open(work_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    _report_skipped(work_dir, epoch, "train", stats["skipped"])
    _report_skipped(work_dir, epoch, "val", sorted(set(vskipped)))
    if tb is not None:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k != "epoch":
                tb.add_scalar(k, v, epoch)
    logger.info("epoch %d: %s", epoch, " ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))


def _guard_bf16_convs(model, precision: str, info) -> None:
    """bf16 training on CPU: Conv3d layers compute in fp32 where a clip is shorter than their temporal kernel
    (:class:`vidlab.engine.precision.ShortClipSafeConv3d`)."""
    if precision == "bf16" and info.device.type == "cpu":
        guarded = guard_short_clip_convs(unwrap(model))
        if guarded:
            logger.info("bf16 on CPU: %d Conv3d layers run in fp32 where a clip is shorter than their kernel", guarded)


def _log_start(cfg: Config, task: Task, train_loader, val_loader, info, global_batch, optimizer, precision, frozen):
    """The run's opening log line: model, task, data sizes, processes, batch, lr, precision, frozen parameters."""
    logger.info(
        "training %s (%s task): %d train / %d val %s, %d processes, global batch %d, lr %.4g, precision %s%s",
        cfg.model.name,
        task.name,
        len(train_loader.dataset),
        len(val_loader.dataset),
        "keyframes" if task.name == "detection" else "videos",
        info.world_size,
        global_batch,
        optimizer.param_groups[0]["lr"],
        describe(precision, info.device),
        f", {len(frozen)} frozen parameters" if frozen else "",
    )


def train(cfg: Config, resume: str | None = None) -> dict:
    """Train ``cfg`` (single process or under torchrun) and return the final validation metrics."""
    t_start = time.time()
    info = init_distributed(cfg.device)
    work_dir = _prepare_work_dir(cfg, info)
    setup_logging(work_dir, info.is_main)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    precision = resolve_fast_precision(cfg.train.amp, info.device)  # auto: bf16 only where native and faster

    train_loader, val_loader = _loaders(cfg, info)
    task = build_task(cfg, train_loader.dataset)
    iters = len(train_loader) // cfg.train.accum_steps
    iters = min(iters, cfg.train.max_iters_per_epoch or iters)
    model, optimizer, scheduler, global_batch, frozen = _model_and_optimizer(cfg, info, iters)
    _guard_bf16_convs(model, precision, info)
    scaler = torch.amp.GradScaler(info.device.type) if precision == "fp16" else None
    meta = checkpoint_meta(cfg, task, unwrap(model), _weights_of(cfg))  # the kwargs the model was built with
    start_epoch, best, history = 0, {"metric": task.best_metric, "value": None, "epoch": 0}, []
    path = _resume_path(work_dir, resume) if resume else None
    partial = None
    if path is not None:
        start_epoch, best, history, partial = _restore(path, model, optimizer, scheduler, info)
    tb = _tensorboard(work_dir) if cfg.train.tensorboard and info.is_main else None
    _log_start(cfg, task, train_loader, val_loader, info, global_batch, optimizer, precision, frozen)
    # validation runs in the training's precision, which is what `vidlab test` picks for the same amp
    data_args = {"mean": cfg.data.mean, "std": cfg.data.std, "precision": precision}
    epoch_args = _epoch_args(cfg, data_args, frozen, scaler)

    values, last_eval = {}, None
    for epoch in range(start_epoch, cfg.train.epochs):
        _start_epoch(train_loader, epoch, partial, cfg)
        on_step = _mid_epoch_saver(cfg, work_dir, info, model, optimizer, scheduler, epoch, (best, history, meta))
        stats = train_one_epoch(model, train_loader, optimizer, scheduler, task, info, epoch=epoch, partial=partial,
                                on_step=on_step, **epoch_args)  # fmt: skip
        partial = None
        record = {"epoch": epoch + 1, "loss": stats["loss"], "lr": stats["lr"], "train_time_s": stats["time_s"]}
        record.update(stats["sources"])
        record["precision"] = "fp32" if precision == "none" else precision
        vskipped = []
        if (epoch + 1) % cfg.train.val_interval == 0 or epoch + 1 == cfg.train.epochs:
            values, last_eval, vskipped = _validate(model, val_loader, info, task, data_args, record)
        history.append(record)
        previous, best = best, _update_best(best, values, record, task, epoch + 1)
        is_best = best is not previous
        weights = parallel.full_state_dicts(model, optimizer)  # every rank: FSDP gathers the shards on rank 0
        if info.is_main:
            state = _state(weights, scheduler, epoch + 1, best, history, cfg, meta)
            _save_epoch(state, work_dir, epoch + 1, is_best, cfg.train.max_keep_ckpts)
            _write_epoch(work_dir, record, stats, vskipped, tb)
            del state
        del weights  # under FSDP, rank 0's CPU copy of the whole model and optimizer
        barrier(info)

    minutes = (time.time() - t_start) / 60
    if info.is_main:
        _finish(cfg, task, work_dir, history, values, minutes, best, last_eval, precision)
    del model, optimizer, scheduler, train_loader, val_loader
    cleanup(info)
    return {**values, "minutes": minutes, "work_dir": str(work_dir), "precision": precision}


def _epoch_args(cfg: Config, data_args: dict, frozen, scaler) -> dict:
    """The keyword arguments of :func:`train_one_epoch` that stay the same for every epoch."""
    return {
        **data_args,
        "epochs": cfg.train.epochs,
        "accum": cfg.train.accum_steps,
        "max_iters": cfg.train.max_iters_per_epoch,
        "grad_clip": cfg.optim.grad_clip,
        "channels_last": cfg.train.channels_last,
        "log_interval": cfg.train.log_interval,
        "frozen": frozen,
        "scaler": scaler,
    }


def _validate(model, val_loader, info: DistInfo, task: Task, data_args: dict, record: dict):
    """One validation pass; adds its scalar metrics to ``record`` as ``val_<name>``. Returns the metrics, the
    (scores, labels) pair and the skipped videos."""
    broadcast_buffers(unwrap(model), info)  # validate the model the checkpoint holds (rank 0's statistics)
    with parallel.unsharded(model):  # ranks may run different numbers of batches
        values, scores, labels, skipped = evaluate_split(model, val_loader, info, task, **data_args)
    record.update({f"val_{k}": v for k, v in values.items() if isinstance(v, float)})  # not per-class tables
    return values, (scores, labels), skipped


def _update_best(best: dict, values: dict, record: dict, task: Task, epoch: int) -> dict:
    """``best`` itself, or a new dict when this epoch validated and beat it."""
    metric = best["metric"]
    if metric in values and f"val_{metric}" in record and task.is_better(values[metric], best["value"]):
        return {"metric": metric, "value": values[metric], "epoch": epoch}
    return best


def _tensorboard(work_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise MissingDependencyError(
            "train.tensorboard=true needs the tensorboard package: pip install vidlab[tensorboard]"
        ) from e
    return SummaryWriter(str(work_dir / "tb"))


def _finish(
    cfg: Config,
    task: Task,
    work_dir: Path,
    history: list,
    values: dict,
    minutes: float,
    best: dict,
    last_eval,
    precision,
) -> None:
    from vidlab.engine.plots import plot_confusion, plot_curves

    title = f"{cfg.model.name}: validation after {len(history)} epochs ({'fp32' if precision == 'none' else precision})"
    print(result_table(values, minutes, title=title, time_label="train time (min)"))
    chosen = f"{best['metric']} {best['value']:.4f}" if best["value"] is not None else "no validation"
    print(f"best checkpoint: {work_dir / 'best.pth'} (epoch {best['epoch']}, {chosen})")
    print(f"training curves: {plot_curves(history, work_dir / 'curves.png')}")
    if last_eval is not None and task.name == "recognition" and not cfg.data.multi_label:
        path = plot_confusion(*last_eval, work_dir / "confusion_val.png", load_class_names(cfg))
        print(f"confusion matrix (last validation): {path}")
    print(task.result_line(values, minutes), flush=True)
