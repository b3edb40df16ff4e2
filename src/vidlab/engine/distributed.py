"""torch.distributed set-up from torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK)."""

from __future__ import annotations

import dataclasses
import datetime
import gc
import os

import torch
import torch.distributed as dist

from vidlab.errors import InputError


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InputError("device=cuda was asked for but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str = "auto", timeout_s: int = 1800) -> DistInfo:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA); else single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistInfo(rank, world_size, local_rank, dev)


def all_gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` (a list with one entry per rank); just ``[obj]`` when single-process."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_across_ranks(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.item() / info.world_size


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics). DDP broadcasts them at the start of each
    training forward, so after the last step every rank still holds its own update; evaluating in that state
    would mix slightly different models across the ranks' shards, and the checkpoint holds rank 0's."""
    if info.distributed:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group; all ranks first meet, so none tears down a connection another still uses.

    Callers drop their DistributedDataParallel wrapper first: it sits in reference cycles, and a wrapper
    that the garbage collector only reaches while the interpreter shuts down takes gloo's worker threads
    down with it at a point where they can no longer be joined (the process aborts with "terminate called
    without an active exception"). Collecting here, while everything is still alive, avoids that.
    """
    gc.collect()
    if info.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    gc.collect()
