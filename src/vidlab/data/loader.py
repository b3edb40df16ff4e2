"""DataLoader construction: epoch-seeded shuffling, rank shards under torch.distributed, uint8 collate."""

from __future__ import annotations

import itertools

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from vidlab.data.datasets import collate
from vidlab.errors import VidlabError


class DataLoaderError(VidlabError, RuntimeError):
    """A data-loader worker died (killed, out of memory) or produced no batch within ``data.timeout`` seconds."""

    exit_code = 1  # the inputs were valid; the machine or a decoder failed


class GuardedDataLoader(DataLoader):
    """A DataLoader whose worker failures are a :class:`DataLoaderError` naming the worker and what to change.

    PyTorch already notices a worker that died (its watchdog raises ``DataLoader worker (pid N) is killed by signal``)
    and, with ``timeout > 0``, one that hangs (``DataLoader timed out after T seconds``); both reach the user as a
    traceback. Here they become one clear error, and the other workers are shut down as usual.
    """

    def __iter__(self):
        return _guarded(super().__iter__(), self.timeout)


def _guarded(batches, timeout: float):
    try:
        yield from batches  # errors of the consumer's loop body do not come through here
    except RuntimeError as e:
        text = str(e)
        if text.startswith("DataLoader worker"):
            raise DataLoaderError(
                f"{text.rstrip('. ')}; if it ran out of memory, lower data.num_workers or data.batch_size (or "
                "enlarge /dev/shm, which workers hand batches through)"
            ) from e
        if text.startswith("DataLoader timed out"):
            raise DataLoaderError(
                f"{text.rstrip('. ')}: no worker delivered a batch within data.timeout={timeout:g} s (a stuck "
                "decoder or a stopped worker); raise data.timeout, or 0 to wait without a limit"
            ) from e
        raise


class ShardSampler(Sampler[int]):
    """Rank ``rank`` of ``world_size`` reads indices ``rank, rank + world_size, ...`` without padding.

    Used for evaluation, where DistributedSampler's padding would count some videos twice.
    """

    def __init__(self, dataset: Dataset, rank: int = 0, world_size: int = 1):
        self.n, self.rank, self.world_size = len(dataset), rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way, for a mid-epoch resume: the first ``skip`` indices of
    this rank's permutation are left out (the batches already trained on); ``set_epoch`` resets ``skip`` to 0.
    ``len`` stays the whole epoch's."""

    skip = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.skip = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)


def _worker_init(worker_id: int) -> None:
    # Workers decode; intra-op threads there would only fight the main process for the cores.
    torch.set_num_threads(1)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    timeout: float = 0,
) -> DataLoader:
    """A DataLoader over ``dataset``.

    Training shuffles with a permutation drawn from ``(seed, epoch)`` (DistributedSampler, also for a
    single process) and drops the last incomplete batch; call ``loader.sampler.set_epoch(epoch)`` and
    ``dataset.set_epoch(epoch)`` before each epoch. Evaluation reads each rank's shard in order. With workers,
    ``timeout`` seconds (0: no limit) is the longest wait for one batch; a dead or stuck worker is a
    :class:`DataLoaderError`.
    """
    if num_workers > 0:
        # Batches from workers travel through named shared-memory files, not file descriptors handed over by the
        # worker itself: with the default strategy a worker that stops (stuck in a decoder, or suspended) after
        # queueing a batch blocks the main process forever in that handover, beyond data.timeout's reach.
        torch.multiprocessing.set_sharing_strategy("file_system")
    if train:
        sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    else:
        sampler = ShardSampler(dataset, rank, world_size)
    return GuardedDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=getattr(dataset, "collate_fn", collate),  # detection sets pad-and-list batching
        drop_last=train,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        pin_memory=torch.cuda.is_available(),
        timeout=float(timeout) if num_workers > 0 else 0,
    )
