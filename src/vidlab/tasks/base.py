"""The interface of a task (see :mod:`vidlab.tasks`)."""

from __future__ import annotations

import numpy as np
import torch


class Task:
    """Base class. Subclasses set ``name``, ``best_metric`` and ``best_mode`` and implement the methods below.

    Attributes:
        name: registered task name (recorded in checkpoints).
        best_metric: the validation metric that selects ``best.pth``.
        best_mode: ``"max"`` if larger is better, ``"min"`` otherwise.
    """

    name: str = ""
    best_metric: str = ""
    best_mode: str = "max"

    def targets(self, batch: dict, device: torch.device, views: int) -> torch.Tensor:
        """Training targets of ``batch`` on ``device``, repeated for the ``views`` views of each sample."""
        raise NotImplementedError

    #: batch-level augmentation of the normalized training clips, ``(N, C, T, H, W) -> same`` (random erasing, set
    #: from ``data.random_erasing`` by the config's builder); None: none
    erasing = None

    def augment_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-level training augmentation, applied by the training step between building the inputs and the
        forward: ``x`` the normalized training clips ``(N, C, T, H, W)`` (training views flattened into the batch),
        ``y`` their targets; returns the ``(x, y)`` the model and the loss see. Here: random erasing (``erasing``)
        when set, targets untouched; recognition adds Mixup / CutMix (soft targets)."""
        if self.erasing is not None:
            x = self.erasing(x)
        return x, y

    def model_inputs(self, batch: dict, device: torch.device) -> dict:
        """The model's inputs besides the clips (keyword arguments; a detector's ``rois``)."""
        return {}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, aux: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
        """Scalar loss of the model outputs, plus ``weight * loss`` of each auxiliary output."""
        main = self.criterion(outputs.float(), targets)
        for weight, extra in aux:
            main = main + weight * self.criterion(extra.float(), targets)
        return main

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-sample predictions ``(B, K)`` float32 from ``x`` ``(B, V, C, T, H, W)`` (V test views)."""
        raise NotImplementedError

    def evaluate(self, predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """Metrics of accumulated predictions ``(N, K)`` against targets."""
        raise NotImplementedError

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` of :attr:`best_metric` beats ``best`` (``None``: nothing yet)."""
        if best is None:
            return True
        return value > best if self.best_mode == "max" else value < best

    def state(self) -> dict:
        """What a checkpoint records to run this task again (name, options, fitted statistics)."""
        return {"name": self.name}

    def result_line(self, values: dict, minutes: float) -> str:
        """The one-line ``RESULT`` summary other tools parse."""
        keys = self.summary_metrics()
        return "RESULT " + " ".join(f"{k}={values.get(k, 0.0):.4f}" for k in keys) + f" minutes={minutes:.2f}"

    def summary_metrics(self) -> list[str]:
        """The metrics of the RESULT line and the result table, in order."""
        raise NotImplementedError
