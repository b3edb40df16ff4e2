"""Several training sources in one run: OmniSource-style joint training (trimmed videos, images, untrimmed videos).

The main source is the ``data`` section itself (``data.train_list``, its sampler, pipeline and ``batch_size``,
named ``data.source_name``, weighted ``data.loss_weight``); ``data.sources`` adds others, each with its own list,
data root, format (``video``, ``rawframes``, or ``image``: a still image read as a one-frame video, repeated by the
sampler to fill the clip), sampler, pipeline, batch size (its share of every batch) and loss weight. An untrimmed
video is a ``video`` source whose sampler draws a clip somewhere in it.

Every iteration takes one batch from each source, as MMAction2's ``MultiLoaderEpochBasedTrainLoop`` does, and an
epoch ends with the shortest source (``len`` = the fewest batches). The batches are concatenated into one forward
(their clips must have one shape: end every pipeline with the same resize) and the loss is the weighted sum of
each source's mean loss, ``sum_s w_s * L_s``. MMAction2 1.2.0 sums the sources' losses unweighted and gives its
ImageNet source a head of its own (``RecognizerOmni`` + ``OmniHead``, 1000 image classes); here every source
shares the model's classes and head, the setting of the OmniSource paper's web images and videos of the target
classes. Each source's training loss and top-1 are logged per epoch (``train_<name>_loss``, ``train_<name>_top1``).
"""

from __future__ import annotations

import torch

from vidlab.errors import InputError

__all__ = ["MultiSourceLoader", "source_loss"]


class MultiSourceLoader:
    """Zips the loaders of several sources into one batch per iteration (see the module docstring).

    Args:
        loaders: the main source's loader first.
        names: a name per source (logged).
        weights: a loss weight per source.
    """

    def __init__(self, loaders: list, names: list[str], weights: list[float]) -> None:
        if not (len(loaders) == len(names) == len(weights)):
            raise InputError("one name and one weight per source loader")
        self.loaders, self.names, self.weights = loaders, list(names), [float(w) for w in weights]

    @property
    def dataset(self):
        """The main source's dataset (the task's statistics and the log describe it)."""
        return self.loaders[0].dataset

    @property
    def datasets(self) -> list:
        return [loader.dataset for loader in self.loaders]

    def set_epoch(self, epoch: int) -> None:
        for loader in self.loaders:
            loader.dataset.set_epoch(epoch)
            loader.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return min(len(loader) for loader in self.loaders)

    def __iter__(self):
        for batches in zip(*self.loaders):
            yield self._merge(batches)

    def _merge(self, batches: tuple[dict, ...]) -> dict:
        shapes = {name: tuple(b["imgs"].shape[1:]) for name, b in zip(self.names, batches)}
        if len(set(shapes.values())) > 1:
            raise InputError(
                f"the training sources give clips of different shapes {shapes}: end every source's pipeline with the "
                "same Resize (and sampler clip length) so their batches can share one forward"
            )
        if len({"view_label" in b for b in batches}) > 1:
            raise InputError("data.repeated_aug must be the same for every training source")
        out = {key: torch.cat([b[key] for b in batches]) for key in ("imgs", "label", "index")}
        if "view_label" in batches[0]:
            out["view_label"] = torch.cat([b["view_label"] for b in batches])
        out["meta"] = [m for b in batches for m in b["meta"]]
        out["skipped"] = [p for b in batches for p in b["skipped"]]
        out["source"] = torch.cat([torch.full((len(b["label"]),), i, dtype=torch.long) for i, b in enumerate(batches)])
        out["source_names"], out["source_weights"] = self.names, self.weights
        return out


def source_loss(task, outputs: torch.Tensor, targets: torch.Tensor, aux: list, batch: dict, views: int):
    """``(sum_s w_s * L_s, {name: (L_s, top-1 or None)})`` over the sources of a merged batch.

    ``outputs`` / ``targets`` hold ``views`` rows per sample (training views are extra samples), in batch order.
    """
    if aux:
        raise InputError("joint training of several sources does not support auxiliary heads (TPN)")
    source = batch["source"].to(outputs.device).repeat_interleave(views)
    total, stats = outputs.new_zeros(()), {}
    for i, (name, weight) in enumerate(zip(batch["source_names"], batch["source_weights"])):
        rows = source == i
        loss = task.loss(outputs[rows], targets[rows], [])
        total = total + weight * loss
        hit = None
        if targets.dtype == torch.long and targets.dim() == 1:
            hit = (outputs[rows].argmax(1) == targets[rows]).float().mean().item()
        stats[name] = (loss.item(), hit)
    return total, stats
