"""Optimizers and per-iteration learning-rate schedules (linear warmup, then cosine or step)."""

from __future__ import annotations

import math

import torch

from vidlab.config import OptimConfig
from vidlab.errors import InputError


def scaled_lr(cfg: OptimConfig, global_batch: int) -> float:
    """MMAction2's ``auto_scale_lr``: lr * global_batch / base_batch_size when enabled."""
    return cfg.lr * global_batch / cfg.base_batch_size if cfg.auto_scale_lr else cfg.lr


def _layer_info(model: torch.nn.Module):
    """``(L, layer_id)`` of a zoo model (stem 0, blocks 1..L, head L+1), or ``None`` for a plain module."""
    if hasattr(model, "layer_id") and hasattr(model, "num_layers"):
        return model.num_layers, model.layer_id
    return None


def param_groups(
    model: torch.nn.Module,
    *,
    lr: float,
    weight_decay: float,
    layer_decay: float | None = None,
    decay_norm_bias: bool = False,
    extra_no_decay: tuple[str, ...] = (),
) -> list[dict]:
    """Optimizer parameter groups of the trainable parameters.

    No weight decay for parameters with at most one dimension (biases, norm scales and shifts) and for the names
    the model lists in ``no_weight_decay()`` (position tables, class tokens ...) or in ``extra_no_decay``, unless
    ``decay_norm_bias`` (MMAction2's default: decay everything). With ``layer_decay`` each parameter's lr is
    ``lr * layer_decay ** (L - layer_id)`` (``model.layer_id``: stem 0, blocks 1..L, head L+1), as in BEiT /
    VideoMAE fine-tuning. Each group records ``lr_scale`` (multiplied into the scheduled lr), ``layer_id`` and
    ``weight_decay``; its ``names`` list the parameters.
    """
    info = _layer_info(model)
    if layer_decay is not None and info is None:
        raise InputError(f"optim.layer_decay needs a model with layer ids; {type(model).__name__} has none")
    skip = set(extra_no_decay) | (set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set())
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = not decay_norm_bias and (p.ndim <= 1 or name in skip)
        layer = info[1](name) if layer_decay is not None else 0
        scale = layer_decay ** (info[0] + 1 - layer) if layer_decay is not None else 1.0
        key = (layer, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "names": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr": lr * scale,
                "lr_scale": scale,
                "layer_id": layer,
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    if not groups:
        raise InputError("no trainable parameters: everything is frozen (model.freeze)")
    return [groups[k] for k in sorted(groups)]


def build_optimizer(
    model: torch.nn.Module,
    cfg: OptimConfig,
    global_batch: int,
) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over :func:`param_groups` of the trainable parameters."""
    lr = scaled_lr(cfg, global_batch)
    groups = param_groups(
        model, lr=lr, weight_decay=cfg.weight_decay, layer_decay=cfg.layer_decay, decay_norm_bias=cfg.decay_norm_bias
    )
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def frozen_names(model: torch.nn.Module, freeze: str) -> tuple[str, ...]:
    """Parameter names that ``freeze`` (``none`` | ``backbone`` | ``stages:K``) fixes: ``backbone`` is everything
    but the head (layer id L+1), ``stages:K`` the stem and blocks 1..K (layer id <= K)."""
    if freeze == "none":
        return ()
    info = _layer_info(model)
    if info is None:
        raise InputError(f"model.freeze={freeze} needs a model with layer ids; {type(model).__name__} has none")
    num_layers, layer_id = info
    limit = num_layers if freeze == "backbone" else int(freeze.split(":", 1)[1])
    if limit > num_layers:
        raise InputError(f"model.freeze={freeze}: the model has {num_layers} stages/blocks")
    return tuple(n for n, _ in model.named_parameters() if layer_id(n) <= limit)


def apply_freeze(model: torch.nn.Module, names: tuple[str, ...]) -> None:
    """Fix the parameters ``names`` (``requires_grad=False``) and keep every normalization module whose
    parameters are all fixed in eval mode (running statistics frozen too). Call after each ``model.train()``."""
    if not names:
        return
    fixed = set(names)
    for name, p in model.named_parameters():
        if name in fixed:
            p.requires_grad_(False)
    for mod_name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._NormBase):
            own = [f"{mod_name}.{n}" if mod_name else n for n, _ in module.named_parameters(recurse=False)]
            if own and all(n in fixed for n in own):
                module.eval()


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
    """A LambdaLR stepped once per optimizer step (each group keeps its ``lr_scale``: LambdaLR multiplies the
    group's initial lr)."""
    base_lr = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_scale", 1.0)
    total = epochs * iters_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, cfg, total, iters_per_epoch, base_lr))
