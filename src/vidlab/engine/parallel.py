"""Training strategies (``train.strategy``): DistributedDataParallel or FSDP2 sharding, activation checkpointing of
the model's blocks (``train.activation_checkpointing``), and the full (unsharded) state dicts that checkpoints hold
whatever the strategy.

- ``ddp``: every process holds the whole model and optimizer; gradients are all-reduced.
- ``fsdp``: :func:`torch.distributed.fsdp.fully_shard` on every block :func:`block_modules` finds, then on the root
  (the :class:`~vidlab.engine.evaluate.TrainForward` around the model): parameters, gradients and optimizer state
  are split across the processes, and a block's parameters are all-gathered only while it runs. The modules stay
  the same objects (sharding changes them in place), so parameter names, ``unwrap`` and state-dict keys are those
  of the plain model. A single process (no torchrun) has nothing to shard: it trains the plain model.

Checkpoints hold the state dicts a single process has (:func:`full_state_dicts`): a checkpoint written under
``fsdp`` loads like any other (``vidlab test --checkpoint``, ``load_checkpoint``, resuming under either strategy).
"""

from __future__ import annotations

import contextlib
import logging
import re

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidlab.config import ConfigError, TrainConfig
from vidlab.engine.distributed import DistInfo
from vidlab.engine.evaluate import unwrap
from vidlab.engine.precision import resolve_precision

__all__ = [
    "STRATEGIES",
    "block_modules",
    "checkpoint_blocks",
    "full_state_dicts",
    "grad_sync",
    "is_sharded",
    "load_full_state_dicts",
    "unsharded",
    "wrap",
]

logger = logging.getLogger("vidlab")

STRATEGIES = ("ddp", "fsdp")
#: names of the module lists whose items are the model's repeated blocks
_BLOCK_LISTS = re.compile(r"blocks|layers|layer\d+")


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks: the items of every ``nn.ModuleList`` / ``nn.Sequential`` held under the name
    ``blocks``, ``layers`` or ``layer<N>``, outermost lists only (a list inside a block belongs to that block).

    For the token models these are the transformer / Mamba blocks (``backbone.blocks.i``, ``backbone.layers.i``);
    for the CNNs the residual blocks of the stages (``backbone.layer2.0``, both pathways of SlowFast). A model
    without such lists (C3D, the linear probe) has none: FSDP then shards it as one unit and activation
    checkpointing has nothing to wrap.
    """
    found: list[nn.Module] = []

    def visit(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, (nn.ModuleList, nn.Sequential)) and _BLOCK_LISTS.fullmatch(name):
                found.extend(child.children())
            else:
                visit(child)

    visit(model)
    return found


class _KeepNormStats:
    """Puts the running statistics of the normalization layers in ``module`` back as they were on entry: the
    recomputation of a checkpointed forward must not update them a second time."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __enter__(self) -> None:
        self.saved = [
            (buf, buf.clone())
            for m in self.module.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.training and m.track_running_stats
            for buf in (m.running_mean, m.running_var, m.num_batches_tracked)
            if buf is not None
        ]

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for buf, value in self.saved:
                buf.copy_(value)
        self.saved = []


_CHECKPOINTED: dict[type, type] = {}


def _checkpointed_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``forward`` runs under :func:`torch.utils.checkpoint.checkpoint` (non-reentrant)
    when gradients are on: its activations are recomputed in the backward pass instead of kept."""
    if cls in _CHECKPOINTED or getattr(cls, "_activation_checkpointed", False):
        return _CHECKPOINTED.get(cls, cls)
    base_forward = cls.forward

    def forward(self, *args, **kwargs):
        if not torch.is_grad_enabled():
            return base_forward(self, *args, **kwargs)
        return checkpoint(
            base_forward,
            self,
            *args,
            use_reentrant=False,
            context_fn=lambda: (contextlib.nullcontext(), _KeepNormStats(self)),
            **kwargs,
        )

    sub = type(cls.__name__, (cls,), {"forward": forward, "_activation_checkpointed": True})
    sub.__module__, sub.__qualname__ = cls.__module__, cls.__qualname__
    _CHECKPOINTED[cls] = sub
    return sub


def checkpoint_blocks(model: nn.Module) -> int:
    """Activation checkpointing of every block of :func:`block_modules`; returns how many.

    Each block's class is swapped in place for a subclass whose forward is checkpointed (as ``fully_shard`` does),
    so module tree, parameter names and state-dict keys stay as they are. Random ops (dropout, drop path) replay
    the same randomness in the recomputation, and BatchNorm running statistics are updated once per forward.
    """
    blocks = block_modules(model)
    for block in blocks:
        block.__class__ = _checkpointed_class(type(block))
    return len(blocks)


def wrap(module: nn.Module, cfg: TrainConfig, info: DistInfo) -> nn.Module:
    """The module to train under ``cfg.strategy`` (``module`` is the :class:`TrainForward` around the model):
    ``cfg.activation_checkpointing`` applied to the model's blocks, then DDP or FSDP2 under torchrun; a single
    process trains ``module`` itself (``fsdp`` has nothing to shard there: a note says so).

    ``fsdp`` replaces the parameters by sharded ones: build the optimizer after this call.

    Raises:
        ConfigError: for an unknown ``train.strategy``; for ``fsdp`` under torchrun with fp16 (no gradient scaler
            for sharded gradients here) or ``train.channels_last`` (FSDP2 shards contiguous parameters only).
    """
    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"config key 'train.strategy' must be one of {list(STRATEGIES)}, got {cfg.strategy!r}")
    if cfg.activation_checkpointing:
        n = checkpoint_blocks(unwrap(module))
        if n:
            logger.info("activation checkpointing: %d blocks recompute their activations in the backward pass", n)
        else:
            logger.warning(
                "train.activation_checkpointing: %s has no blocks (module lists named blocks, layers or layerN); "
                "nothing is checkpointed",
                type(unwrap(module)).__name__,
            )
    if not info.distributed:
        if cfg.strategy == "fsdp":
            logger.info("train.strategy=fsdp: a single process holds the whole model, training it unsharded")
        return module
    if cfg.strategy == "ddp":
        ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if resolve_precision(cfg.amp, info.device) == "fp16":
        raise ConfigError(
            "train.strategy=fsdp trains in fp32 or bf16, but train.amp resolves to fp16 on this device (its "
            "gradient scaler is not set up for sharded gradients); set train.amp=none, or bf16 where supported"
        )
    if cfg.channels_last:
        raise ConfigError(
            "train.strategy=fsdp shards contiguous parameters only, but train.channels_last=true stores the "
            "convolution weights channels-last; set train.channels_last=false (or train.strategy=ddp)"
        )
    return _shard(module, info)


def _shard(module: nn.Module, info: DistInfo) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    # each process built (and seeded) its own model: start from rank 0's, as DDP does
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)
    mesh = init_device_mesh(info.device.type, (info.world_size,))
    blocks = block_modules(unwrap(module))
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=True)
    # the root keeps its parameters after the forward: the backward starts with them
    fully_shard(module, mesh=mesh, reshard_after_forward=False)
    logger.info("fsdp: %d blocks and the rest of the model sharded over %d processes", len(blocks), info.world_size)
    return module


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` was sharded by :func:`wrap` (``train.strategy=fsdp`` under torchrun)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def _fsdp_no_sync(model):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def grad_sync(model: nn.Module, sync: bool):
    """The context of one micro-step's forward and backward: gradients are synchronised across processes only
    when ``sync`` (the last micro-step of a gradient accumulation); before, each process accumulates its own."""
    if sync:
        return contextlib.nullcontext()
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    if is_sharded(model):
        return _fsdp_no_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def unsharded(model: nn.Module):
    """Inside, every process holds the whole model and forward passes need no communication, so processes may run
    different numbers of them (evaluation splits the data without padding). Does nothing unless ``model`` is
    sharded; entering and leaving are collective then (every process must)."""
    if not is_sharded(model):
        yield
        return
    from torch.distributed.fsdp import FSDPModule

    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for m in modules:
        m.unshard()
        m.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for m in modules:
            m.reshard()
            m.set_reshard_after_forward(m is not model, recurse=False)  # as _shard set them


def _param_names(net: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The names of the optimizer's parameters, in the order of its state dict's indices."""
    names = {id(p): n for n, p in net.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def _optim_by_index(state: dict, names: list[str]) -> dict:
    """An optimizer state dict keyed by parameter name -> keyed by index, as ``optimizer.state_dict()`` is."""
    index = {n: i for i, n in enumerate(names)}
    return {
        "state": {index[n]: v for n, v in state["state"].items()},
        "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]],
    }


def _optim_by_name(state: dict, names: list[str]) -> dict:
    """The inverse of :func:`_optim_by_index`."""
    return {
        "state": {names[int(i)]: v for i, v in state["state"].items()},
        "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]],
    }


def full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """``(model state dict, optimizer state dict)`` as a single process training the plain model has them
    (``unwrap(model).state_dict()``, ``optimizer.state_dict()``), whatever the strategy.

    Sharded, this is collective (every process must call it): the shards are gathered into CPU memory of rank 0,
    and the other ranks get two empty dicts.
    """
    net = unwrap(model)
    if not is_sharded(model):
        return net.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(net, options=options)
    optim = get_optimizer_state_dict(net, optimizer, options=options)
    return weights, (_optim_by_index(optim, _param_names(net, optimizer)) if optim else {})


def load_full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optim: dict) -> None:
    """Load state dicts of :func:`full_state_dicts`' form (any checkpoint's) into ``model`` and ``optimizer``.
    Sharded, every process passes the whole state dicts (each keeps its shard); collective."""
    net = unwrap(model)
    if not is_sharded(model):
        net.load_state_dict(weights)
        optimizer.load_state_dict(optim)
        return
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(net, weights, options=options)
    set_optimizer_state_dict(net, optimizer, _optim_by_name(optim, _param_names(net, optimizer)), options=options)
