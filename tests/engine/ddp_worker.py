"""Run under torchrun: one DDP train step of a BN-free model on this rank's share of a fixed global batch.

Writes the rank-averaged loss and rank 0's (already all-reduced) gradients to OUT. Also runnable as a
single process (no torchrun), where it takes the whole global batch: the two results must agree.
"""

import os
import sys

import torch

from vidlab.config import Config
from vidlab.engine.distributed import cleanup, init_distributed, mean_across_ranks
from vidlab.engine.train import train_step
from vidlab.tasks import RecognitionTask

GLOBAL_BATCH = 8


class TinyNet(torch.nn.Module):
    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))


def main(out: str) -> None:
    info = init_distributed("cpu")
    torch.manual_seed(0)
    model = TinyNet()
    gen = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 256, (GLOBAL_BATCH, 1, 4, 8, 8, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 5, (GLOBAL_BATCH,), generator=gen)
    per_rank = GLOBAL_BATCH // info.world_size
    sl = slice(info.rank * per_rank, (info.rank + 1) * per_rank)
    batch = {"imgs": imgs[sl], "label": labels[sl]}
    if info.distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    cfg = Config()
    loss = train_step(model, batch, RecognitionTask(), info, mean=cfg.data.mean, std=cfg.data.std)
    loss = mean_across_ranks(loss, info)
    if info.is_main:
        torch.save({"loss": loss, "grads": {n: p.grad for n, p in model.named_parameters()}}, out)
    del model
    cleanup(info)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.environ["OUT"])
