"""Long-term video: VideoMamba's sparse sampling and trimmed windows (pinned from its source), window aggregation,
and the Breakfast / COIN / LVU annotation files."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import read_index, write_indexed_video
from vidlab.config import ConfigError, load_config
from vidlab.data import SparseSample, sliding_windows
from vidlab.data.datasets import AnnotationError
from vidlab.data.longterm import (
    aggregate_by_video,
    breakfast_rows,
    coin_rows,
    expand_windows,
    lvu_rows,
    lvu_target,
    parse_videomamba_csv,
    window_frames,
    write_videomamba_csv,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "assets" / "sampling_videomamba.json").read_text())


@pytest.mark.parametrize(
    "case", FIXTURE["sparse"], ids=lambda c: f"{c['total_frames']}f{c['num_frames']}x{c['test_num_segment']}"
)
def test_sparse_sample_equals_videomamba(case):
    n, frames, clips = case["total_frames"], case["num_frames"], case["test_num_segment"]
    test = SparseSample(frames, clips, test_mode=True)(n)
    assert test.tolist() == [i for clip in case["test"] for i in clip]
    assert SparseSample(frames, 1, test_mode=True)(n).tolist() == case["validation"]
    rng = np.random.default_rng(0)
    draws = np.stack([SparseSample(frames)(n, rng) for _ in range(400)])
    low, high = np.array(case["train_low"]), np.array(case["train_high"])
    assert (draws >= low).all() and (draws <= high).all()
    assert (draws.min(0) == low).all() and (draws.max(0) == high).all()  # both ends of every range are drawn


@pytest.mark.parametrize(
    "case", FIXTURE["windows"], ids=lambda c: f"{c['duration']}s-{c['trimmed']}-{c['time_stride']}"
)
def test_sliding_windows_equal_videomamba(case):
    assert sliding_windows(case["duration"], case["trimmed"], case["time_stride"]) == [
        tuple(w) for w in case["windows"]
    ]


@pytest.mark.parametrize("case", FIXTURE["window_indices"], ids=lambda c: f"{c['start']}-{c['end']}")
def test_window_sampling_equals_videomamba(case):
    # VideoMamba locates a window's frames with int(t * fps); with fps 1 its frame bounds are the seconds themselves
    first, last = window_frames((case["start"], case["end"]), case["total_frames"], 1.0)
    clips = case["test_num_segment"]
    test = SparseSample(case["num_frames"], clips, test_mode=True)(last - first + 1) + first
    assert test.tolist() == [i for clip in case["test"] for i in clip]
    rng = np.random.default_rng(1)
    draws = np.stack([SparseSample(case["num_frames"])(last - first + 1, rng) + first for _ in range(300)])
    assert (draws.min(0) >= case["train_low"]).all() and (draws.max(0) <= case["train_high"]).all()


def test_sliding_windows_rejects_bad_values():
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(10, 0, 4)
    with pytest.raises(ValueError, match="finite"):
        sliding_windows(math.nan, 10, 4)


def test_aggregate_by_video_is_the_mean_of_its_windows():
    rng = np.random.default_rng(0)
    groups = [2, 2, 0, 0, 0, 5]
    scores = rng.random((6, 4)).astype(np.float32)
    labels = np.array([1, 1, 3, 3, 3, 0])
    agg, lab, order = aggregate_by_video(scores, labels, groups)
    assert order.tolist() == [2, 0, 5] and lab.tolist() == [1, 3, 0]
    np.testing.assert_allclose(agg, [scores[:2].mean(0), scores[2:5].mean(0), scores[5]], rtol=1e-6)


def test_videomamba_csv_and_its_errors(tmp_path):
    ann = tmp_path / "train.csv"
    write_videomamba_csv([("a.mp4", 3, 75.5), ("b.mp4", 0, None)], ann)
    assert ann.read_text() == "a.mp4,3,75.5\nb.mp4,0\n"
    items = parse_videomamba_csv(ann, tmp_path, num_classes=4)
    assert [(it.rel_path, it.label, it.meta) for it in items] == [
        ("a.mp4", [3], {"duration": 75.5}),
        ("b.mp4", [0], {}),
    ]
    reg = tmp_path / "reg.csv"
    write_videomamba_csv([("a.mp4", 0.25, 10)], reg)
    assert parse_videomamba_csv(reg, tmp_path, target_type="regression")[0].label == [0.25]
    for text, match in (("a.mp4\n", "train.csv:1: expected"), ("a.mp4,1,x\n", "duration must be seconds"),
                        ("a.mp4,9\n", "out of range"), ("a.mp4,1,-3\n", ">= 0")):  # fmt: skip
        ann.write_text(text)
        with pytest.raises(AnnotationError, match=match):
            parse_videomamba_csv(ann, tmp_path, num_classes=4)


def test_breakfast_coin_lvu_files(tmp_path):
    bf = tmp_path / "breakfast.csv"
    bf.write_text(
        "file_name,duration,action,class_id\nP07-webcam01-P07_cereals,63,cereals,0\nP48-cam01-P48_tea,120,tea,2\n"
    )
    assert breakfast_rows(bf) == [("P07-webcam01-P07_cereals.mp4", 0, 63.0), ("P48-cam01-P48_tea.mp4", 2, 120.0)]
    bf.write_text("file_name,duration,action,class_id\nP07-webcam01-P07_cereals,63,tea,0\n")
    with pytest.raises(AnnotationError, match="breakfast.csv:2: class_id 0 does not name action 'tea'"):
        breakfast_rows(bf)
    coin = tmp_path / "COIN.json"
    db = {"database": {"abc": {"recipe_type": 17, "class": "x", "subset": "training", "duration": 88.2},
                       "def": {"recipe_type": 3, "class": "y", "subset": "testing", "duration": 10.0}}}  # fmt: skip
    coin.write_text(json.dumps(db))
    assert coin_rows(coin, "training") == [("17/abc.mp4", 17, 88.2)]
    lvu = tmp_path / "view.csv"
    lvu.write_text("view_count youtube_id imdb_id\n150000 AbC_0 tt01\n")
    dur = tmp_path / "lvu_durations.csv"
    dur.write_text("videoid,duration\nAbC_0,131.5\n")
    [(path, target, seconds)] = lvu_rows(lvu, "view_count", dur)
    assert (path, seconds) == ("AbC_0.mp4", 131.5)
    assert target == pytest.approx(math.log(150000) - 11.76425435683139)
    assert lvu_target("like_ratio", ["90", "10"]) == pytest.approx(0.9 * 10 - 9.138220535629456)
    genre = tmp_path / "genre.csv"
    genre.write_text("class_id class_name youtube_id imdb_id\n3 Drama xyz_1 tt02\n7 Other xyz_2 tt03\n")
    with pytest.raises(AnnotationError, match="genre.csv:3: class 7 out of range"):
        lvu_rows(genre, "genre")


def test_windows_config_is_validated(tmp_path):
    for windows, match in (({"trimmed": 0, "time_stride": 4}, "trimmed must be a positive"),
                           ({"trimmed": 8, "time_stride": 4, "test": "last"}, "test must be all or first"),
                           ({"trimmed": 8, "time_stride": 4, "stride": 2}, "unknown key")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            load_config(None, [f"data.windows={json.dumps(windows)}"])


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """Three indexed videos of 5, 12 and 25 s at 10 fps, and their VideoMamba CSV (durations from the files)."""
    root = tmp_path_factory.mktemp("long")
    rows = []
    for i, frames in enumerate((50, 120, 250)):
        write_indexed_video(root / f"v{i}.mp4", num_frames=frames, fps=10, size=(96, 64), gop=25, bframes=0)
        rows.append((f"v{i}.mp4", i % 2, None))
    write_videomamba_csv(rows, root / "test.csv")
    return root


def _config(root, test="all", pipeline="[{type: Resize, scale: [32, 32], keep_ratio: false}]"):
    windows = {"trimmed": 6, "time_stride": 4, "test": test}
    return load_config(None, [
        f"data.root={root}", "data.format=videomamba_csv", "data.test_list=test.csv", "data.label_map=null",
        f"data.windows={json.dumps(windows)}", "data.short_side=null", "data.input_format=NCTHW",
        "data.val_sampler={type: SparseSample, clip_len: 8, num_clips: 2, test_mode: true}",
        f"data.val_pipeline={pipeline}",
        "model.name=x3d_s", "model.num_classes=2", "data.batch_size=2", "data.num_workers=0",
    ])  # fmt: skip


def test_windows_read_their_frames_and_aggregate_per_video(long_videos):
    from vidlab.data.loader import build_loader
    from vidlab.engine.builders import build_dataset, build_model, build_task
    from vidlab.engine.distributed import DistInfo
    from vidlab.engine.evaluate import evaluate_split, video_paths

    cfg = _config(long_videos)
    ds = build_dataset(cfg, "test")
    per_video = [len(sliding_windows(d, 6, 4)) for d in (5.0, 12.0, 25.0)]
    assert len(ds) == sum(per_video) and ds.video_groups == sum(([v] * n for v, n in enumerate(per_video)), [])
    full = build_dataset(_config(long_videos, pipeline="[]"), "test")  # frames as decoded: their index is legible
    for k in (0, 3, len(ds) - 1):
        item = full[k]
        shown = [read_index(f.numpy()) for f in item["imgs"].reshape(-1, 64, 96, 3)]
        first, last = window_frames(full.items[k].meta["window"], item["meta"]["total_frames"], 10.0)
        assert shown == item["meta"]["frame_inds"] and first <= min(shown) and max(shown) <= last
        assert shown == (SparseSample(8, 2, test_mode=True)(last - first + 1) + first).tolist()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    task = build_task(cfg, split="test")
    loader = build_loader(ds, 2, train=False)
    values, scores, labels, _ = evaluate_split(model, loader, DistInfo(), task, mean=cfg.data.mean, std=cfg.data.std)
    assert scores.shape == (3, 2) and labels.tolist() == [0, 1, 0]
    assert video_paths(ds) == [str(long_videos / f"v{i}.mp4") for i in range(3)]
    with torch.no_grad():  # each window scored on its own (views fused as prob), then averaged per video
        direct = []
        for k in range(len(ds)):
            x = (ds[k]["imgs"].float() - torch.tensor(cfg.data.mean)) / torch.tensor(cfg.data.std)
            direct.append(task.predict(model, x.permute(0, 4, 1, 2, 3)[None]).numpy()[0])
    direct = np.array(direct)
    want = [direct[np.array(ds.video_groups) == v].mean(0) for v in range(3)]
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    first_only = build_dataset(_config(long_videos, test="first"), "test")
    assert [it.meta["window"] for it in first_only.items] == [[0.0, 5.0], [0.0, 6.0], [0.0, 6.0]]


def test_expand_windows_reads_duration_from_the_file(long_videos):
    items = parse_videomamba_csv(long_videos / "test.csv", long_videos)
    windows = expand_windows(items, 6, 4)
    assert [it.meta["window"] for it in windows if it.meta["video"] == 1] == [[0.0, 6.0], [4.0, 10.0], [8.0, 12.0]]


def test_longterm_list_cli(tmp_path, capsys):
    from vidlab.cli import main

    task = tmp_path / "like_ratio"
    task.mkdir()
    (task / "train.csv").write_text("like_count dislike_count youtube_id imdb_id\n90 10 vid_A tt1\n5 0 vid_B tt2\n")
    main(["data", "longterm-list", "lvu", str(task / "train.csv"), str(tmp_path / "out.csv")])
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["vid_A.mp4", "vid_B.mp4"]
    assert float(lines[1].split(",")[1]) == pytest.approx(10 - 9.138220535629456)
    (task / "train.csv").write_text("like_count dislike_count youtube_id imdb_id\n0 0 vid_A tt1\n")
    with pytest.raises(SystemExit) as e:
        main(["data", "longterm-list", "lvu", str(task / "train.csv"), str(tmp_path / "out.csv")])
    assert e.value.code == 2 and "train.csv:2: bad like_ratio target" in capsys.readouterr().err
