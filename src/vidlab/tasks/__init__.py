"""Task objects: what differs between tasks in the one training / evaluation loop.

A task builds the targets of a batch, computes the loss (plus the auxiliary losses a model's ``forward_train``
returns), turns multi-view model outputs into per-sample predictions, evaluates accumulated predictions into
metrics and names the metric that selects ``best.pth``. The loop in :mod:`vidlab.engine.train` is the same for all.
"""

from __future__ import annotations

from vidlab.errors import InputError
from vidlab.tasks.base import Task
from vidlab.tasks.counting import CountingTask
from vidlab.tasks.detection import DetectionTask
from vidlab.tasks.pretrain import PretrainTask
from vidlab.tasks.recognition import RecognitionTask
from vidlab.tasks.regression import RegressionTask

__all__ = [
    "TASKS",
    "CountingTask",
    "DetectionTask",
    "PretrainTask",
    "RecognitionTask",
    "RegressionTask",
    "Task",
    "build_task",
]

TASKS: dict[str, type[Task]] = {
    "recognition": RecognitionTask,
    "regression": RegressionTask,
    "detection": DetectionTask,
    "pretrain": PretrainTask,
    "counting": CountingTask,
}


def build_task(name: str, **kwargs) -> Task:
    """The task called ``name`` (``recognition`` | ``regression`` | ``detection`` | ``pretrain`` | ``counting``)
    with its plain keyword arguments."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name](**kwargs)
