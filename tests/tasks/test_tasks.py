"""Task objects: targets, losses (with auxiliary outputs), predictions, metrics, best-checkpoint choice."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidlab.tasks import RecognitionTask, RegressionTask, build_task
from vidlab.tasks.regression import regression_metrics


def test_regression_metrics_match_numpy():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 2))
    p = y + rng.normal(scale=0.3, size=(50, 2))
    m = regression_metrics(p, y)
    assert m["mse"] == pytest.approx(((p - y) ** 2).mean())
    assert m["mae"] == pytest.approx(np.abs(p - y).mean())
    r = np.mean([np.corrcoef(p[:, j], y[:, j])[0, 1] for j in range(2)])
    assert m["pearson_r"] == pytest.approx(r)
    assert np.isnan(regression_metrics(np.ones((4, 1)), np.arange(4.0)[:, None])["pearson_r"])


def test_regression_normalizes_targets_and_maps_predictions_back():
    task = RegressionTask(target_mean=[2.0], target_std=[4.0])
    batch = {"label": torch.tensor([[6.0], [2.0]])}
    y = task.targets(batch, torch.device("cpu"), views=2)
    assert y.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]

    class Const(torch.nn.Module):
        def forward_views(self, x, average_clips):
            assert average_clips == "score"
            return torch.full((x.shape[0], 1), 0.5)

    assert task.predict(Const(), torch.zeros(3, 2, 3, 1, 1, 1)).flatten().tolist() == [4.0, 4.0, 4.0]
    assert task.state()["target_mean"] == [2.0] and task.best_mode == "min"
    assert task.is_better(0.1, 0.2) and not task.is_better(0.3, 0.2) and task.is_better(5.0, None)


def test_regression_losses():
    out, y = torch.tensor([[0.0], [3.0]]), torch.tensor([[0.5], [0.0]])
    assert RegressionTask().loss(out, y, []).item() == pytest.approx((0.25 + 9) / 2)
    huber = RegressionTask(loss="smooth_l1", beta=1.0).loss(out, y, [])
    assert huber.item() == pytest.approx((0.5 * 0.25 + 2.5) / 2)
    with pytest.raises(ValueError, match="num_classes"):
        RegressionTask().loss(torch.zeros(2, 3), y, [])
    with pytest.raises(ValueError, match="loss"):
        RegressionTask(loss="l3")


def test_recognition_loss_adds_weighted_auxiliary_losses():
    torch.manual_seed(0)
    out, aux, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    task = RecognitionTask(label_smoothing=0.1)
    expected = F.cross_entropy(out, y, label_smoothing=0.1) + 0.5 * F.cross_entropy(aux, y, label_smoothing=0.1)
    assert task.loss(out, y, [(0.5, aux)]).item() == pytest.approx(expected.item())
    multi = RecognitionTask(multi_label=True)
    target = torch.zeros(4, 5)
    target[0, 1] = 1
    assert multi.loss(out, target, []).item() == pytest.approx(F.binary_cross_entropy_with_logits(out, target).item())
    assert multi.best_metric == "mAP" and task.best_metric == "top1"


def test_recognition_metrics_and_result_line():
    task = RecognitionTask(topk=(1, 2))
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6]])
    values = task.evaluate(scores, np.array([0, 2, 2]))
    assert values["top1"] == pytest.approx(2 / 3) and values["top2"] == pytest.approx(1.0)
    line = task.result_line({"top1": 0.5, "top5": 1.0, "mean_class_acc": 0.25}, 1.234)
    assert line == "RESULT top1=0.5000 top5=1.0000 mean_class_acc=0.2500 minutes=1.23"


def test_build_task_rejects_unknown_names():
    with pytest.raises(ValueError, match="regression"):
        build_task("segmentation")
