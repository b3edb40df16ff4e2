"""Detection end to end on real SynthActions-Det videos: train, test (result CSV + per-class table), the
standalone evaluator on that CSV, and predict drawing boxes into an MP4."""

import re

import numpy as np
import pytest

from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def det_run(tmp_path_factory):
    from vidlab.data.synthetic_det import generate_synth_det

    tmp = tmp_path_factory.mktemp("det")
    generate_synth_det(tmp / "data", num_videos=5, workers=1, progress=False)
    work = tmp / "work"
    args = [
        f"data.root={tmp / 'data'}",
        f"work_dir={work}",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.val_batch_size=3",
        "data.short_side=64",
        "data.train_pipeline=[{type: RandomRescale, scale_range: [56, 64]}]",
        "data.val_pipeline=[{type: Resize, scale: [-1, 64]}]",
        "model.kwargs={backbone_kwargs: {depth: 18, base_channels: 8}}",
        "detection.clip_len=4",
        "train.epochs=1",
        "train.max_iters_per_epoch=2",
    ]
    r = run_cli("train", str(REPO / "configs/detection/slowonly_r18_synth_det.yaml"), *args)
    assert r.returncode == 0, r.stderr
    return tmp, work, r


def test_train_reports_frame_map(det_run):
    _, work, r = det_run
    assert re.search(r"^RESULT mAP=\d\.\d{4} minutes=", r.stdout, re.M), r.stdout
    assert "train / " in r.stderr and " val keyframes" in r.stderr
    assert (work / "best.pth").is_file()


def test_test_writes_ava_csv_that_eval_ava_scores_the_same(det_run, cli_inprocess):
    tmp, work, _ = det_run
    out = tmp / "preds.csv"
    r = cli_inprocess("test", "--checkpoint", str(work / "best.pth"), "--split", "val", "--out", str(out),
                      f"data.root={tmp / 'data'}", "data.num_workers=0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    test_map = float(re.search(r"^RESULT mAP=(\S+)", r.stdout, re.M).group(1))
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows and all(len(row) == 8 for row in rows)
    assert {int(row[6]) for row in rows} == set(range(1, 10))  # every class of every box
    scores = np.asarray([float(row[7]) for row in rows])
    assert ((scores > 0) & (scores < 1)).all()
    per_class = out.with_suffix(".per_class.csv").read_text().splitlines()
    assert per_class[0] == "id,name,AP" and len(per_class) == 10
    ann = tmp / "data" / "annotations"
    r = cli_inprocess("eval-ava", "--gt", str(ann / "val.csv"), "--pred", str(out), "--labelmap",
                      str(ann / "label_map.pbtxt"), "--exclude", str(ann / "val_excluded.csv"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert abs(float(re.search(r"^RESULT mAP@0.5=(\S+)", r.stdout, re.M).group(1)) - test_map) < 5e-5


def test_predict_draws_boxes_into_a_video(det_run, cli_inprocess):
    from vidlab.data.decode import VideoReader

    tmp, work, _ = det_run
    ann = tmp / "data" / "annotations"
    video_id = ann.joinpath("val.csv").read_text().split(",", 1)[0]
    video = tmp / "data" / "videos" / f"{video_id}.mp4"
    out = tmp / "drawn.mp4"
    r = cli_inprocess("predict", str(video), "--checkpoint", str(work / "best.pth"), "--boxes",
                      str(ann / "val_proposals.csv"), "--out", str(out), "--score-thr", "0.0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"boxes and actions drawn into {out}" in r.stdout
    assert r.stdout.count(video_id) >= 9  # one row per class of each box
    with VideoReader(out) as drawn, VideoReader(video) as source:
        assert drawn.num_frames == source.num_frames
        diff = np.abs(drawn.read([12]).astype(int) - source.read([12]).astype(int))  # keyframe 1 s: boxes drawn
        assert (diff > 60).sum() > 50


def test_keyframe_filters_of_the_config(det_run):
    from vidlab.config import load_config
    from vidlab.engine.builders import build_dataset

    tmp, _, _ = det_run
    recipe = str(REPO / "configs/detection/slowonly_r18_synth_det.yaml")
    cfg = load_config(recipe, [f"data.root={tmp / 'data'}"])
    every = build_dataset(cfg, "val")
    assert {2, 3} < {kf.stamp for kf in every.keyframes}  # keyframes at 1 Hz from second 1
    cfg = load_config(recipe, [f"data.root={tmp / 'data'}", "detection.valid_stamps=[2, 3]"])
    assert {kf.stamp for kf in build_dataset(cfg, "val").keyframes} == {2, 3}
    ex = tmp / "excluded.csv"
    first = every.keyframes[0]
    ex.write_text(f"{first.video},{first.stamp:04d}\n")
    cfg = load_config(recipe, [f"data.root={tmp / 'data'}", f"detection.val_excluded={ex}"])
    kept = build_dataset(cfg, "val").keyframes
    assert len(kept) == len(every.keyframes) - 1 and (first.video, first.stamp) not in {
        (k.video, k.stamp) for k in kept
    }
