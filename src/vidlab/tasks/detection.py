"""Spatio-temporal action detection (AVA format): multi-label scores per person box, frame-mAP@0.5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.errors import InputError
from vidlab.tasks.base import Task


def detection_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 1.0, gamma: float = 0.0, labelled_only: bool = True
) -> torch.Tensor:
    """Sigmoid BCE over boxes and classes, averaged, as MMAction2's ``BBoxHeadAVA``: with ``labelled_only`` only
    the boxes that have an action count; ``gamma > 0`` (or ``alpha != 1``) makes it the focal form
    ``alpha * (1 - p_t) ** gamma * bce`` with ``p_t = exp(-bce)``. No labelled box: a zero loss that still
    reaches every output (so DDP sees all parameters)."""
    if labelled_only:
        keep = targets.sum(dim=1) > 0
        logits, targets = logits[keep], targets[keep]
    if logits.numel() == 0:
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if gamma != 0.0 or alpha != 1.0:
        bce = alpha * (1.0 - torch.exp(-bce)) ** gamma * bce
    return bce.mean()


class DetectionTask(Task):
    """AVA-style detection: the model scores every box of a keyframe for every class (sigmoid); validation writes
    AVA-format predictions and computes frame-mAP@0.5 with the chosen protocol (and MicroG-4M's metrics).

    Args:
        class_ids: the label map's action ids, in the order of the model's outputs.
        class_names: their names.
        gt_file: the split's ground-truth CSV (the evaluation reads the file itself, as the references do).
        label_map: the label-map pbtxt (the evaluated classes).
        excluded_file: excluded-timestamps CSV, or None.
        loss, focal_alpha, focal_gamma, loss_on: see :func:`detection_loss` (``loss_on``: ``labelled`` |
            ``all``).
        protocol: ``activitynet`` | ``mmaction2`` | ``pyslowfast`` (:mod:`vidlab.metrics.ava`).
        microg: also MicroG-4M's macro F1 / recall / AUROC; ``threshold_on`` says what the 0.5 threshold reads
            (``logits``, MicroG-4M's published protocol: probability sigmoid(0.5); as ``vidlab eval-ava``).
        keyframe_unit: ``second`` | ``frame``.
    """

    name = "detection"
    best_metric = "mAP"
    best_mode = "max"

    def __init__(
        self,
        class_ids: list[int],
        class_names: list[str],
        *,
        gt_file: str | Path | None = None,
        label_map: str | Path | None = None,
        excluded_file: str | Path | None = None,
        loss: str = "bce",
        focal_alpha: float = 1.0,
        focal_gamma: float = 0.0,
        loss_on: str = "labelled",
        protocol: str = "activitynet",
        microg: bool = False,
        threshold_on: str = "logits",
        keyframe_unit: str = "second",
    ) -> None:
        self.class_ids, self.class_names = list(class_ids), list(class_names)
        self.gt_file, self.label_map, self.excluded_file = gt_file, label_map, excluded_file
        self.alpha, self.gamma = (focal_alpha, focal_gamma) if loss == "focal" else (1.0, 0.0)
        self.loss_name, self.labelled_only = loss, loss_on == "labelled"
        self.protocol, self.microg, self.threshold_on = protocol, microg, threshold_on
        self.keyframe_unit = keyframe_unit

    def model_inputs(self, batch: dict, device: torch.device) -> dict:
        from vidlab.data.ava import rois_of

        return {"rois": rois_of(batch["boxes"], device)}

    def targets(self, batch: dict, device: torch.device, views: int) -> torch.Tensor:
        if views != 1:
            raise InputError(f"detection trains on one view per keyframe, got {views}")
        return torch.cat(batch["labels"]).to(device)

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return detection_loss(
            outputs.float(), targets, alpha=self.alpha, gamma=self.gamma, labelled_only=self.labelled_only
        )

    def predict(self, model: torch.nn.Module, x: torch.Tensor, rois: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(K, num_classes)`` of the ``rois`` of one-view clips ``x`` ``(B, 1, C, T, H, W)``."""
        if rois is None:
            raise InputError("detection predicts per box: give the rois")
        return model(x.flatten(0, 1), rois=rois)

    @torch.no_grad()
    def evaluate_loader(
        self, model, loader, info, *, mean, std, precision: str = "none", progress: bool = False, metrics: bool = True
    ):
        """Predict every keyframe of ``loader`` and compute the metrics on the gathered predictions (``metrics``
        False: predictions only, the metrics ``{}``).

        Returns:
            (metrics, predictions, None, skipped): predictions as a dict of arrays ``video`` (str), ``stamp``,
            ``boxes`` ``(N, 4)`` normalized, ``logits`` ``(N, K)``.
        """
        from vidlab.engine.distributed import all_gather_objects
        from vidlab.engine.evaluate import autocast_context, batch_inputs, eval_batches, unwrap

        model.eval()
        net = unwrap(model)
        parts, skipped = [], []
        for batch in eval_batches(loader, info, progress):
            x = batch_inputs(batch, mean, std, info.device)
            with autocast_context(precision, info.device):
                logits = self.predict(net, x, **self.model_inputs(batch, info.device)).float().cpu().numpy()
            start = 0
            for index, boxes, meta in zip(batch["index"].tolist(), batch["boxes"], batch["meta"]):
                h, w = meta["img_shape"]
                n = len(boxes)
                norm = (boxes.numpy() / np.float32([w, h, w, h])).clip(0, 1)
                parts.append((index, meta["video"], meta["stamp"], norm, logits[start : start + n]))
                start += n
            skipped.extend(batch["skipped"])
        gathered = all_gather_objects((parts, skipped), info)
        # in dataset order whatever the number of processes (the order of tied scores can decide AP)
        rows = [p[1:] for p in sorted((p for rank_parts, _ in gathered for p in rank_parts), key=lambda p: p[0])]
        all_skipped = [s for _, rank_skipped in gathered for s in rank_skipped]
        if not rows:
            raise InputError("evaluation saw no keyframes: is the annotation file empty?")
        preds = {
            "video": np.asarray([v for v, _, b, _ in rows for _ in range(len(b))], dtype=object),
            "stamp": np.asarray([s for _, s, b, _ in rows for _ in range(len(b))], dtype=np.int64),
            "boxes": np.concatenate([b for _, _, b, _ in rows]).reshape(-1, 4),
            "logits": np.concatenate([lg for *_, lg in rows]).reshape(-1, len(self.class_ids)),
        }
        return (self.evaluate(preds, None) if metrics else {}), preds, None, all_skipped

    def prediction_rows(self, preds: dict):
        """AVA result rows ``(video, stamp, x1, y1, x2, y2, action_id, score)`` (sigmoid scores), every class of
        every box."""
        probs = np.exp(-np.logaddexp(0.0, -preds["logits"].astype(np.float64)))  # sigmoid without overflow
        ids = np.asarray(self.class_ids)
        for i in range(len(probs)):
            for c in range(len(ids)):
                yield (preds["video"][i], int(preds["stamp"][i]), *map(float, preds["boxes"][i]), int(ids[c]),
                       float(probs[i, c]))  # fmt: skip

    def write_predictions(self, path: str | Path, preds: dict) -> Path:
        """The AVA-format result CSV (``video,timestamp,x1,y1,x2,y2,action_id,score``), written atomically."""
        from vidlab.engine.checkpoint import atomic_write
        from vidlab.metrics.ava import write_ava_csv

        atomic_write(path, lambda f: write_ava_csv(f, self.prediction_rows(preds)))
        return Path(path)

    def write_per_class(self, path: str | Path, values: dict) -> Path:
        """``id,name,AP`` per class (AP empty for a class without ground truth), written atomically."""
        from vidlab.engine.checkpoint import atomic_write

        per_class = values.get("per_class", {})
        lines = ["id,name,AP"]
        for cid, name in zip(self.class_ids, self.class_names):
            ap = per_class.get(cid)
            lines.append(f"{cid},{name},{'' if ap is None or ap != ap else f'{ap:.6f}'}")
        atomic_write(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))
        return Path(path)

    def evaluate(self, predictions: dict, targets=None) -> dict:
        """Frame-mAP@0.5 (``mAP``; ``per_class``: action id -> AP; AVA's category means where the label map is
        AVA's) of the predictions against ``gt_file``, and MicroG-4M's metrics with ``microg``: the
        predictions go through an AVA result CSV, so the numbers are those ``vidlab eval-ava`` gives for it."""
        import tempfile

        from vidlab.metrics import ava

        if self.gt_file is None or self.label_map is None:
            raise InputError("detection metrics need the ground-truth CSV and the label map")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "predictions.csv"
            with open(path, "wb") as f:
                ava.write_ava_csv(f, self.prediction_rows(predictions))
            res = ava.frame_map(
                self.gt_file, path, self.label_map, self.excluded_file, self.protocol, keyframe_unit=self.keyframe_unit
            )
            values = {"mAP": res.map, **{f"mAP_{k}": v for k, v in res.categories.items()}}
            values["per_class"] = res.per_class
            if self.microg:
                m = ava.microg_metrics(
                    self.gt_file, path, self.label_map, self.threshold_on, "probabilities", self.keyframe_unit
                )
                values.update(f1_macro=m.f1_macro, recall_macro=m.recall_macro, auroc_macro=m.auroc_macro)
        return values

    def state(self) -> dict:
        return {
            "name": self.name,
            "class_ids": self.class_ids,
            "loss": self.loss_name,
            "focal_alpha": self.alpha,
            "focal_gamma": self.gamma,
            "protocol": self.protocol,
        }

    def summary_metrics(self) -> list[str]:
        extra = ["f1_macro", "recall_macro", "auroc_macro"] if self.microg else []
        return ["mAP", *extra]
