"""Repetition counting: anchor targets, the count head's loss and count formation, metrics and baselines, the
config / builder wiring, UCFRep's .mat annotations and a tiny end-to-end run of ``task: counting``."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import write_indexed_video
from vidlab.config import ConfigError, load_config
from vidlab.data.datasets import AnnotationError
from vidlab.engine.builders import build_model, build_task, config_from_checkpoint, head_outputs
from vidlab.metrics import counting_metrics, mean_count_baseline, round_counts
from vidlab.tasks import TASKS, CountingTask
from vidlab.tasks.counting import DEFAULT_ANCHORS, anchor_targets, decode_counts, split_outputs

CPU = torch.device("cpu")


def test_default_anchors_span_counts_1_to_64_at_the_reference_spacing():
    a = np.array(DEFAULT_ANCHORS)
    assert len(a) == 13 and a[0] == 0.5 and a[-1] == pytest.approx(1 / 32)
    assert np.allclose(a[:-1] / a[1:], 2 ** (1 / 3))
    assert TASKS["counting"] is CountingTask and CountingTask().num_outputs == 39


def test_anchor_targets_by_hand():
    anchors = torch.tensor([0.5, 0.25, 0.125])
    # count 4: cycle 1/4 overlaps the anchors by 0.5, 1, 0.5 -> all positive at the reference's 0.5 / 0.5
    # count 3: cycle 1/3 overlaps by 2/3, 3/4, 3/8 -> positive, positive, negative; count 0: every anchor negative
    labels, offsets = anchor_targets(torch.tensor([[4.0], [3.0], [0.0]]), anchors)
    assert labels.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    expected = [[math.log(0.5), 0.0, math.log(2.0)], [math.log(2 / 3), math.log(4 / 3), 0.0], [0.0, 0.0, 0.0]]
    assert offsets.tolist() == pytest.approx(np.array(expected))
    # an ignore band between neg_iou and pos_iou
    labels, _ = anchor_targets(torch.tensor([4.0, 3.0]), anchors, pos_iou=0.7, neg_iou=0.4)
    assert labels.tolist() == [[-1, 1, -1], [-1, 1, 0]]


def test_split_outputs_layout_and_error():
    out = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 9)
    cls_logits, offsets = split_outputs(out, 3)
    assert cls_logits.shape == (2, 2, 3) and offsets.shape == (2, 3)
    assert cls_logits[0, 0].tolist() == [0, 1, 2] and cls_logits[0, 1].tolist() == [3, 4, 5]  # negatives, positives
    assert offsets[1].tolist() == [15, 16, 17]
    with pytest.raises(ValueError, match="num_classes=9"):
        split_outputs(torch.zeros(2, 8), 3)


def _logits(best: list[int], num_anchors: int, margin: float = 3.0) -> torch.Tensor:
    cls_logits = torch.zeros(len(best), 2, num_anchors)
    for i, k in enumerate(best):
        cls_logits[i, 1, k] = margin
    return cls_logits


def test_decode_counts_best_anchor_offset_clamp_and_rounding():
    anchors = torch.tensor([0.5, 0.25, 0.125])
    offsets = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(0.8), 0.0], [0.0, 0.0, 2.0]])
    cls_logits = _logits([0, 1, 2], 3)
    raw = decode_counts(cls_logits, offsets, anchors, clamp=0.5, rounded=False)
    # anchor 0.5 -> 2; 0.25 * 0.8 = 0.2 -> 5; offset 2.0 clamped to 0.5: 1 / (0.125 e^0.5) = 4.852
    assert raw.tolist() == pytest.approx([2.0, 5.0, 8 * math.exp(-0.5)])
    assert decode_counts(cls_logits, offsets, anchors, clamp=0.5).tolist() == [2.0, 5.0, 5.0]
    assert decode_counts(cls_logits, offsets, anchors).tolist() == [2.0, 5.0, 4.0]  # log 2: 1 / (0.125 * 2)
    assert round_counts([2.5, 3.5, 0.49]).tolist() == [3.0, 4.0, 0.0]  # half up, unlike numpy / torch
    weak = cls_logits.clone()
    weak[1, 1, 1] = -3.0  # video 1: its best anchors have probability 0.5
    counted = decode_counts(weak, offsets, anchors, clamp=0.5, zero_threshold=0.6)
    assert counted.tolist() == [2.0, 0.0, 5.0]


def test_loss_is_cross_entropy_plus_weighted_offsets_of_positive_anchors():
    torch.manual_seed(0)
    task = CountingTask(anchors=[0.5, 0.25, 0.125], box_weight=50.0)
    out = torch.randn(2, 9, requires_grad=True)
    counts = torch.tensor([4.0, 3.0])
    loss = task.loss(out, counts, [])
    labels, target = anchor_targets(counts, task.anchors)
    cls_logits, offsets = out[:, :6].reshape(2, 2, 3), out[:, 6:]
    pos = labels == 1
    box = F.smooth_l1_loss(offsets[pos], target[pos], reduction="sum") / offsets.numel()
    assert loss.item() == pytest.approx((F.cross_entropy(cls_logits, labels) + 50.0 * box).item(), rel=1e-6)
    loss.backward()
    assert out.grad[1, 8] == 0  # video 1's third anchor is negative: its offset gets no gradient
    assert (out.grad[0, 6:] != 0).all()
    aux = torch.randn(2, 9)
    assert task.loss(out, counts, [(0.5, aux)]).item() == pytest.approx(
        (loss + 0.5 * task.criterion(aux, counts)).item(), rel=1e-6
    )


def test_targets_predict_evaluate_state():
    task = CountingTask(anchors=[0.5, 0.25])
    batch = {"label": torch.tensor([[3.0], [5.0]])}
    assert task.targets(batch, CPU, views=2).tolist() == [3.0, 3.0, 5.0, 5.0]

    class Views(torch.nn.Module):
        def forward_views(self, x, average_clips):
            assert average_clips == "score"  # logits and offsets averaged over the views
            out = torch.zeros(x.shape[0], 6)
            out[:, 2] = 4.0  # [neg 0, neg 1, pos 0, pos 1, offset 0, offset 1]: anchor 0.5 matches
            return out

    assert task.predict(Views(), torch.zeros(3, 2, 3, 1, 1, 1)).tolist() == [[2.0], [2.0], [2.0]]
    values = task.evaluate(np.array([[2.0], [4.0]]), np.array([[3.0], [4.0]]))
    assert values == pytest.approx({"mae_norm": 1 / 6, "obo": 1.0, "mae": 0.5})
    assert task.state()["anchors"] == [0.5, 0.25] and task.best_metric == "mae_norm" and task.best_mode == "min"
    assert task.is_better(0.1, 0.2) and not task.is_better(0.3, 0.2)
    line = task.result_line({"mae_norm": 0.25, "obo": 0.5, "mae": 1.0}, 0.5)
    assert line == "RESULT mae_norm=0.2500 obo=0.5000 mae=1.0000 minutes=0.50"
    with pytest.raises(ValueError, match="one count per video"):
        task.targets({"label": torch.zeros(2, 2)}, CPU, views=1)


def test_counting_metrics_by_hand():
    # errors 1, 0, 0, 2; the gt-0 video is left out of mae_norm: (1/4 + 0 + 2/4) / 3
    m = counting_metrics([3, 5, 0, 2], [4, 5, 0, 4])
    assert m == pytest.approx({"mae_norm": 0.25, "obo": 0.75, "mae": 0.75})
    assert np.isnan(counting_metrics([1.0], [0.0])["mae_norm"])
    with pytest.raises(ValueError, match="differ"):
        counting_metrics([1, 2], [1])
    with pytest.raises(ValueError, match=">= 0"):
        counting_metrics([1], [-1])


def test_mean_count_baseline():
    # train mean 4 -> predict 4 everywhere: errors 0 and 4 on counts 4 and 8
    b = mean_count_baseline([2, 3, 7], [4, 8])
    assert b == pytest.approx({"mae_norm": 0.25, "obo": 0.5, "mae": 2.0, "prediction": 4.0})
    assert mean_count_baseline([2, 3], [2], rounded=False)["prediction"] == 2.5
    assert mean_count_baseline([2, 3], [2])["prediction"] == 3.0


def _uniform() -> list[str]:
    return [
        "task=counting",
        "data.train_sampler={type: UniformSample, clip_len: 4}",
        "data.val_sampler={type: UniformSample, clip_len: 4, test_mode: true}",
    ]


def test_config_wiring_and_checkpoint_round_trip():
    with pytest.raises(ConfigError, match="data.val_sampler.type must be UniformSample"):
        load_config(None, ["task=counting"])
    no_train = load_config(None, ["task=counting", "data.val_sampler={type: UniformSample, clip_len: 4}"])
    with pytest.raises(ConfigError, match="data.train_sampler.type must be UniformSample"):
        build_task(no_train, train_set=[])  # training needs it; testing a checkpoint does not
    with pytest.raises(ConfigError, match="pos_iou"):
        load_config(None, [*_uniform(), "counting.neg_iou=0.6"])
    with pytest.raises(ConfigError, match="multi_label"):
        load_config(None, [*_uniform(), "data.multi_label=true"])
    with pytest.raises(ConfigError, match="counting.anchors"):
        load_config(None, [*_uniform(), "counting.anchors=[0.5, 0]"])
    cfg = load_config(None, [*_uniform(), "counting.anchors=[0.5, 0.25]", "model.name=tsn_mobilenetv2"])
    cfg.counting.clamp = 0.3
    assert head_outputs(cfg) == 6 and build_model(cfg).num_classes == 6  # model.num_classes (12) is not used
    task = build_task(cfg)
    assert isinstance(task, CountingTask) and task.anchors.tolist() == [0.5, 0.25] and task.clamp == 0.3
    assert CountingTask().clamp == pytest.approx(math.log(2)) and CountingTask(pos_iou=0.8).clamp == pytest.approx(
        math.log(1.25)
    )
    back = config_from_checkpoint({"model": "tsn_mobilenetv2", "num_classes": 6, "task": task.state()})
    assert back.task == "counting" and back.counting.anchors == [0.5, 0.25] and back.counting.clamp == 0.3
    assert load_config(None, _uniform()).counting.anchors is None and head_outputs(load_config(None, _uniform())) == 39


def _write_mat(path, start, bounds):
    scipy_io = pytest.importorskip("scipy.io")
    bounds = np.asarray(bounds, dtype=np.uint8)[:, None]
    label = {
        "duration": np.array([[bounds[-1, 0] - start + 1]], np.uint8),
        "start_frame": np.array([[start]], np.uint8),
        "end_frame": np.array([[bounds[-1, 0]]], np.uint8),
        "temporal_bound_num": np.array([[len(bounds)]], np.uint8),
        "temporal_bound": bounds,
        "offset_next_estimate": np.zeros((1, 3), np.int32),
        "offset_pre_estimate": np.zeros((1, 3), np.int16),
    }
    scipy_io.savemat(str(path), {"label": label})


def test_ucfrep_mat_to_count_list(tmp_path):
    pytest.importorskip("scipy")
    from vidlab.data.ucfrep import read_ucfrep_mat, write_ucfrep_list

    ann = tmp_path / "annotations" / "val"
    ann.mkdir(parents=True)
    _write_mat(ann / "v_JumpRope_g01_c01.mat", 1, [1, 16, 28, 44, 58])  # 4 repetitions
    _write_mat(ann / "v_HandStandPushups_g02_c04.mat", 5, [5, 40, 80])  # 2; UCF101's folder is HandstandPushups
    _write_mat(ann / "v_Rowing_g03_c01.mat", 1, [1, 30])  # 1 repetition: skipped, as the reference skips it
    a = read_ucfrep_mat(ann / "v_JumpRope_g01_c01.mat")
    assert (a.video, a.start_frame, a.end_frame, a.count, a.class_name) == ("v_JumpRope_g01_c01", 1, 58, 4, "JumpRope")

    report = write_ucfrep_list(ann, tmp_path / "val_count.txt", segments=tmp_path / "segments.csv")
    assert report == {"written": 2, "skipped_few_cycles": ["v_Rowing_g03_c01"], "missing": []}
    assert (tmp_path / "val_count.txt").read_text().splitlines() == [
        "HandstandPushups/v_HandStandPushups_g02_c04.avi 2",
        "JumpRope/v_JumpRope_g01_c01.avi 4",
    ]
    assert (tmp_path / "segments.csv").read_text().splitlines()[1] == (
        "HandstandPushups/v_HandStandPushups_g02_c04.avi,5,80,2"
    )
    videos = tmp_path / "UCF-101" / "JumpRope"
    videos.mkdir(parents=True)
    (videos / "v_JumpRope_g01_c01.avi").write_bytes(b"")
    report = write_ucfrep_list(ann, tmp_path / "present.txt", video_root=tmp_path / "UCF-101")
    assert report["written"] == 1 and report["missing"] == ["HandstandPushups/v_HandStandPushups_g02_c04.avi"]

    (ann / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(AnnotationError, match="broken.mat"):
        read_ucfrep_mat(ann / "broken.mat")
    with pytest.raises(AnnotationError, match="no .mat files"):
        write_ucfrep_list(tmp_path / "annotations", tmp_path / "x.txt")


def test_ucfrep_without_scipy_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    from vidlab.data import ucfrep

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("No module named 'scipy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(ImportError, match="pip install scipy"):
        ucfrep.read_ucfrep_mat(tmp_path / "v_X_g01_c01.mat")


RECIPE = """
task: counting
data:
  root: {root}
  train_list: train.txt
  val_list: val.txt
  test_list: val.txt
  label_map: null
  short_side: 32
  input_format: NCHW
  num_segments: 4
  train_sampler: {{type: UniformSample, clip_len: 4}}
  val_sampler: {{type: UniformSample, clip_len: 4, test_mode: true}}
  train_pipeline: [{{type: Resize, scale: [32, 32], keep_ratio: false}}]
  val_pipeline: [{{type: Resize, scale: [32, 32], keep_ratio: false}}]
  batch_size: 2
  num_workers: 0
model:
  name: tsn_mobilenetv2
optim:
  lr: 0.01
train:
  epochs: 2
  max_iters_per_epoch: 1
  seed: 0
"""


def test_counting_trains_tests_and_predicts(tmp_path, cli_inprocess):
    """``vidlab train`` of ``task: counting`` on six tiny videos with a 'path count' list: the RESULT line,
    best.pth chosen by the lowest mae_norm, the task recorded in the checkpoint, ``vidlab test`` of it giving the
    validation numbers again and ``vidlab predict`` printing a count."""
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    counts = [2, 3, 4, 5, 2, 3]
    for i in range(len(counts)):
        write_indexed_video(root / "videos" / f"v{i}.mp4", num_frames=24, size=(48, 32), bframes=0)
    (root / "train.txt").write_text("".join(f"videos/v{i}.mp4 {counts[i]}\n" for i in range(4)))
    (root / "val.txt").write_text("".join(f"videos/v{i}.mp4 {counts[i]}\n" for i in (4, 5)))
    recipe = tmp_path / "count.yaml"
    recipe.write_text(RECIPE.format(root=root))
    work = tmp_path / "work"
    r = cli_inprocess("train", str(recipe), f"work_dir={work}")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT mae_norm=") and " obo=" in last and " mae=" in last
    history = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    best = min(history, key=lambda h: h["val_mae_norm"])
    state = torch.load(work / "best.pth", map_location="cpu", weights_only=True)
    assert state["best"]["metric"] == "mae_norm" and state["best"]["value"] == best["val_mae_norm"]
    assert state["meta"]["task"]["name"] == "counting" and state["meta"]["num_classes"] == 39

    r = cli_inprocess("test", "--checkpoint", str(work / "best.pth"), "--list", "val.txt", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].split(" minutes=")[0] == (
        f"RESULT mae_norm={best['val_mae_norm']:.4f} obo={best['val_obo']:.4f} mae={best['val_mae']:.4f}"
    )
    r = cli_inprocess("predict", str(root / "videos" / "v4.mp4"), "--checkpoint", str(work / "best.pth"))
    assert r.returncode == 0, r.stderr
    rank, name, value = r.stdout.split()
    assert (rank, name) == ("1", "count") and float(value) == round(float(value)) and 1 <= float(value) <= 64


def test_head_fits_counts_it_can_see():
    """A linear head over features that name the count learns to give it back exactly: targets, loss and decoding
    agree (a sign or layout slip in the offsets would not round to the right counts)."""
    torch.manual_seed(0)
    counts = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0, 12.0, 20.0, 40.0])
    feats = torch.eye(len(counts))
    task = CountingTask()
    head = torch.nn.Linear(len(counts), task.num_outputs)
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(60):
        opt.zero_grad()
        task.loss(head(feats), counts, []).backward()
        opt.step()
    assert task.decode(head(feats).detach()).tolist() == counts.tolist()
