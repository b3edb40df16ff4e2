"""Self-supervised pre-training: the model computes its own loss (VideoMAE's masked reconstruction, masked teacher
distillation); labels are unused.

The model is called ``model(x)`` and returns a dict whose ``loss`` is trained. It draws its masks itself from the
global torch RNG, so a training run is reproducible from its seed and resumes with its RNG state. Validation is the
mean loss over the validation clips with the RNG forked and seeded per batch (``seed`` + the batch's first sample
index): the same masks every epoch, so validation losses of different epochs compare.
"""

from __future__ import annotations

import numpy as np
import torch

from vidlab.errors import InputError
from vidlab.tasks.base import Task


class PretrainTask(Task):
    """The loss the model returns; ``best.pth`` has the lowest validation loss.

    Args:
        seed: base seed of the validation masks.
    """

    name = "pretrain"
    best_metric = "loss"
    best_mode = "min"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def targets(self, batch: dict, device: torch.device, views: int) -> None:
        return None

    def loss(self, outputs, targets, aux) -> torch.Tensor:
        if not isinstance(outputs, dict) or "loss" not in outputs:
            raise TypeError(
                f"task=pretrain trains models whose forward returns a dict with 'loss' (videomae_pretrain_*, a "
                f"distiller); this model returned {type(outputs).__name__}"
            )
        return outputs["loss"].float()

    @torch.no_grad()
    def evaluate_loader(self, model, loader, info, *, mean, std, precision: str = "none", progress: bool = False):
        """Mean validation loss (weighted by clips) over all ranks; no predictions."""
        from vidlab.engine.distributed import all_gather_objects
        from vidlab.engine.evaluate import autocast_context, batch_inputs, eval_batches, unwrap

        net = unwrap(model)
        net.eval()
        total, count, skipped = 0.0, 0, []
        devices = [info.device] if info.device.type == "cuda" else []
        for batch in eval_batches(loader, info, progress):
            x = batch_inputs(batch, mean, std, info.device).flatten(0, 1)  # views as clips
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed + int(batch["index"][0]))
                with autocast_context(precision, info.device):
                    loss = net(x)["loss"]
            total += float(loss) * x.shape[0]
            count += x.shape[0]
            skipped.extend(batch["skipped"])
        gathered = all_gather_objects((total, count, skipped), info)
        n = sum(g[1] for g in gathered)
        if n == 0:
            raise InputError("evaluation saw no samples: is the annotation list empty?")
        values = {"loss": sum(g[0] for g in gathered) / n}
        return values, np.zeros((0,), np.float32), np.zeros((0,), np.int64), [p for g in gathered for p in g[2]]

    def state(self) -> dict:
        return {"name": self.name}

    def summary_metrics(self) -> list[str]:
        return ["loss"]
