"""Regression of one or more continuous targets per video (speed, count, score ...)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.errors import InputError
from vidlab.tasks.base import Task

LOSSES = ("mse", "smooth_l1")


def regression_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """MSE and MAE over all entries; Pearson r per target column, averaged (NaN for a constant column)."""
    p = np.asarray(predictions, np.float64).reshape(len(predictions), -1)
    y = np.asarray(targets, np.float64).reshape(len(targets), -1)
    if p.shape != y.shape:
        raise InputError(f"predictions {p.shape} and targets {y.shape} differ in shape")
    rs = []
    for j in range(y.shape[1]):
        dp, dy = p[:, j] - p[:, j].mean(), y[:, j] - y[:, j].mean()
        denom = np.sqrt((dp**2).sum() * (dy**2).sum())
        rs.append(float((dp * dy).sum() / denom) if denom > 0 else float("nan"))
    return {"mse": float(((p - y) ** 2).mean()), "mae": float(np.abs(p - y).mean()), "pearson_r": float(np.mean(rs))}


class RegressionTask(Task):
    """Continuous targets ``(K,)`` per video; the model's ``num_classes`` outputs are the K predictions.

    Args:
        loss: ``mse`` or ``smooth_l1`` (Huber with ``beta``).
        beta: the smooth-L1 threshold.
        target_mean, target_std: if given (``normalize`` in the config: fitted on the training list), the model
            learns ``(y - mean) / std`` and predictions are mapped back; both are recorded in the checkpoint.
    """

    name = "regression"
    best_metric = "mse"
    best_mode = "min"

    def __init__(
        self,
        *,
        loss: str = "mse",
        beta: float = 1.0,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise InputError(f"regression loss must be one of {list(LOSSES)}, got {loss!r}")
        self.loss_name, self.beta = loss, beta
        self.mean = torch.tensor(target_mean, dtype=torch.float32) if target_mean is not None else None
        self.std = torch.tensor(target_std, dtype=torch.float32) if target_std is not None else None

    def _normalize(self, y: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return y
        return (y - self.mean.to(y.device)) / self.std.to(y.device)

    def targets(self, batch: dict, device: torch.device, views: int) -> torch.Tensor:
        y = self._normalize(batch["label"].to(device).float())
        return y.repeat_interleave(views, dim=0) if views > 1 else y

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.shape != targets.shape:
            raise InputError(
                f"the model gives {tuple(outputs.shape)} outputs for targets of shape {tuple(targets.shape)}: "
                "set model.num_classes to the number of regression targets"
            )
        if self.loss_name == "mse":
            return F.mse_loss(outputs, targets)
        return F.smooth_l1_loss(outputs, targets, beta=self.beta)

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = model.forward_views(x, average_clips="score").float()  # mean of the views' outputs
        if self.mean is not None:
            out = out * self.std.to(out.device) + self.mean.to(out.device)
        return out

    def evaluate(self, predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return regression_metrics(predictions, targets)

    def state(self) -> dict:
        return {
            "name": self.name,
            "loss": self.loss_name,
            "beta": self.beta,
            "target_mean": None if self.mean is None else self.mean.tolist(),
            "target_std": None if self.std is None else self.std.tolist(),
        }

    def summary_metrics(self) -> list[str]:
        return ["mse", "mae", "pearson_r"]
