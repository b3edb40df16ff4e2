"""Charades-style multi-label classification: the Charades CSV reader, PySlowFast's max fusion of test views, mAP as
PySlowFast computes it for Charades, and the class-prior baseline."""

import numpy as np
import pytest
import torch

from tests.helpers import write_indexed_video
from vidlab.config import ConfigError, load_config
from vidlab.data.charades import parse_charades_actions, parse_charades_csv
from vidlab.data.datasets import AnnotationError
from vidlab.engine.builders import build_dataset
from vidlab.metrics import class_prior_map, mean_average_precision
from vidlab.models.heads import average_view_scores
from vidlab.tasks import RecognitionTask

HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
ROWS = [
    '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks, then drinks.",food;cup,"Cooking.",c092 11.90 21.20;c147 0.00 12.60;'
    "c092 22.00 24.10,24.83\n",
    'N11GT,P0MX,Stairs,6,7,Yes,"A person walks.",stairs,"Walking.",,14.00\n',  # no action at all
    'ABC12,P0MX,Hall,5,7,Yes,"A person sits.",chair,"Sitting.",c000 1.0 2.5,8.00\n',
]


def _csv(tmp_path, rows=ROWS, name="Charades_v1_train.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows))
    return path


def test_charades_csv_reader(tmp_path):
    items = parse_charades_csv(_csv(tmp_path), tmp_path / "videos")
    assert [it.rel_path for it in items] == ["46GP8.mp4", "N11GT.mp4", "ABC12.mp4"]
    assert items[0].path == str(tmp_path / "videos" / "46GP8.mp4")
    assert [it.label for it in items] == [[92, 147], [], [0]]  # distinct classes, sorted; none kept as []
    assert items[0].meta["actions"] == [(92, 11.9, 21.2), (147, 0.0, 12.6), (92, 22.0, 24.1)]
    assert parse_charades_actions("") == [] and parse_charades_actions("c156 0 1") == [(156, 0.0, 1.0)]


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ("c092 11.90", "expected actions as 'cNNN start end;...', got 'c092 11.90'"),
        ("x092 1 2", "expected actions as 'cNNN start end"),
        ("c157 0 1", r"action class c157 out of range \[c000, c156\]"),
        ("c001 a 2", "action 'c001 a 2': start and end must be seconds"),
    ],
)
def test_charades_csv_malformed_rows_name_file_and_line(tmp_path, actions, message):
    bad = f'ZZZ99,P1,Hall,5,7,Yes,"x",y,"z",{actions},3.0\n'
    path = _csv(tmp_path, ROWS[:1] + [bad])
    with pytest.raises(AnnotationError, match=rf"Charades_v1_train\.csv:3: {message}"):
        parse_charades_csv(path, tmp_path)


def test_charades_csv_header_and_columns(tmp_path):
    (tmp_path / "no_header.csv").write_text("".join(ROWS))
    with pytest.raises(AnnotationError, match=r"no_header\.csv:1: expected a Charades header"):
        parse_charades_csv(tmp_path / "no_header.csv", tmp_path)
    short = _csv(tmp_path, ["46GP8,HR43,Kitchen\n"])
    with pytest.raises(AnnotationError, match=r"\.csv:2: expected 11 columns"):
        parse_charades_csv(short, tmp_path)
    with pytest.raises(AnnotationError, match="annotation file not found"):
        parse_charades_csv(tmp_path / "missing.csv", tmp_path)


def test_charades_csv_dataset_gives_multi_hot_targets(tmp_path):
    for vid in ("46GP8", "N11GT", "ABC12"):
        write_indexed_video(tmp_path / f"{vid}.mp4", num_frames=16, size=(48, 32), bframes=0)
    _csv(tmp_path)
    common = [f"data.root={tmp_path}", "data.train_list=Charades_v1_train.csv", "data.label_map=null"]
    with pytest.raises(ConfigError, match="multi_label: true"):
        load_config(None, [*common, "data.format=charades_csv"])
    cfg = load_config(None, [*common, "data.format=charades_csv", "data.multi_label=true", "model.num_classes=157"])
    cfg.data.train_pipeline = [{"type": "Resize", "scale": [32, 32], "keep_ratio": False}]
    ds = build_dataset(cfg, "train")
    labels = [ds[i]["label"] for i in range(3)]
    assert all(y.shape == (157,) and y.dtype == torch.float32 for y in labels)
    assert torch.nonzero(labels[0]).flatten().tolist() == [92, 147]
    assert labels[1].sum() == 0 and labels[2].nonzero().flatten().tolist() == [0]


def test_max_fusion_is_pyslowfast_sigmoid_max_over_views():
    logits = torch.tensor([[[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0]]])  # (B=1, V=3, C=3)
    fused = average_view_scores(logits, "max")
    torch.testing.assert_close(fused, torch.sigmoid(torch.tensor([[2.0, 3.0, 1.0]])))
    torch.testing.assert_close(fused, torch.sigmoid(logits).amax(dim=1))  # the max of the views' probabilities
    assert not torch.allclose(fused, average_view_scores(logits, "prob"))  # existing options unchanged
    torch.testing.assert_close(average_view_scores(logits, "score"), torch.tensor([[1.0, 1.0, -1 / 6]]))
    assert load_config(None, ["model.average_clips=max"]).model.average_clips == "max"
    with pytest.raises(ConfigError, match="prob, score, max or null"):
        load_config(None, ["model.average_clips=mean"])

    class TwoViews(torch.nn.Module):  # forward_views of a classifier: per-view logits fused by average_view_scores
        def forward_views(self, x, average_clips):
            return average_view_scores(logits.expand(x.shape[0], -1, -1), average_clips)

    task = RecognitionTask(multi_label=True, average_clips="max")
    assert task.predict(TwoViews(), torch.zeros(2, 3, 3, 1, 1, 1)).shape == (2, 3)
    assert task.state()["average_clips"] == "max"


# 5 videos x 4 classes. Class 0: positives ranked 1st and 3rd -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. Class 1: the
# scores tie in pairs, one threshold per distinct score: (P, R) = (1/2, 1/2) at 0.5, (2/4, 1) at 0.2 -> AP = 1/2.
# Class 2: no positive (left out by both definitions). Class 3: its one positive ranked last -> AP = 1/5.
SCORES = np.array(
    [[0.9, 0.5, 0.3, 0.1], [0.8, 0.5, 0.1, 0.2], [0.7, 0.2, 0.9, 0.3], [0.6, 0.2, 0.4, 0.4], [0.5, 0.1, 0.2, 0.05]]
)
LABELS = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
#: PySlowFast's get_map (slowfast/utils/meters.py: drop the all-zero label columns, then
#: sklearn.metrics.average_precision_score(average=None) and the mean), computed with scikit-learn 1.9.1
PYSLOWFAST_MAP = 0.5111111111111111


def test_map_equals_pyslowfast_charades_map():
    """vidlab's mean_average_precision (MMAction2's definition) and PySlowFast's Charades mAP agree: both leave out
    classes without a positive and take scikit-learn's step-wise AP with tied scores at one threshold. They part only
    when no class has a positive (NaN here, 0.0 from PySlowFast's except branch)."""
    assert mean_average_precision(SCORES, LABELS) == pytest.approx((5 / 6 + 1 / 2 + 1 / 5) / 3)
    assert mean_average_precision(SCORES, LABELS) == pytest.approx(PYSLOWFAST_MAP, abs=1e-12)
    assert np.isnan(mean_average_precision(SCORES, np.zeros_like(LABELS)))


def test_class_prior_baseline_is_the_mean_test_frequency():
    train = np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0]])
    # every class's score is constant: its AP is its frequency among the test videos (2/5, 2/5, -, 1/5)
    assert class_prior_map(train, LABELS) == pytest.approx((2 / 5 + 2 / 5 + 1 / 5) / 3)
    with pytest.raises(ValueError, match="multi-hot"):
        class_prior_map(train, LABELS[:, :3])
