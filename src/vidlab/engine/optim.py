"""Optimizers and per-iteration learning-rate schedules (linear warmup, then cosine or step)."""

from __future__ import annotations

import math

import torch

from vidlab.config import OptimConfig


def scaled_lr(cfg: OptimConfig, global_batch: int) -> float:
    """MMAction2's ``auto_scale_lr``: lr * global_batch / base_batch_size when enabled."""
    return cfg.lr * global_batch / cfg.base_batch_size if cfg.auto_scale_lr else cfg.lr


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW; weight decay applies to every parameter as in MMAction2."""
    lr = scaled_lr(cfg, global_batch)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    return torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def lr_factor(it: int, cfg: OptimConfig, total_iters: int, iters_per_epoch: int, base_lr: float) -> float:
    """Multiplier of the base lr at iteration ``it`` (0-based)."""
    warmup = int(round(cfg.warmup_epochs * iters_per_epoch))
    if it < warmup:
        return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * it / warmup
    if cfg.scheduler == "constant":
        return 1.0
    if cfg.scheduler == "step":
        epoch = it // max(iters_per_epoch, 1)
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    progress = (it - warmup) / max(total_iters - warmup, 1)
    min_factor = cfg.min_lr / base_lr if base_lr > 0 else 0.0
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, iters_per_epoch: int):
    """A LambdaLR stepped once per optimizer step."""
    base_lr = optimizer.param_groups[0]["lr"]
    total = epochs * iters_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, cfg, total, iters_per_epoch, base_lr))
