"""Sliding-window prediction over long videos (`vidlab predict VIDEO --window S --stride S`): window placement, the
single streaming decode, the timeline of a known-answer model, and the labelled MP4. Every video is a real file
written with PyAV; the model is a hand-set ``tsn_r18`` whose top-1 is the frames' dominant colour."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import read_index, write_indexed_video
from vidlab.data.decode import VideoReader
from vidlab.data.sampling import SampleFrames
from vidlab.engine.longvideo import (
    StreamStats,
    iter_windows,
    label_index,
    merge_segments,
    parse_seconds,
    plan_windows,
    probe_video,
)
from vidlab.errors import InputError

REPO_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "long_video.py"


def _bench():
    """``benchmarks/long_video.py`` as a module: its colour video writer and hand-set checkpoint."""
    spec = importlib.util.spec_from_file_location("long_video_bench", REPO_BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def colour_ckpt(tmp_path_factory):
    return _bench().colour_checkpoint(tmp_path_factory.mktemp("ckpt") / "colour_tsn_r18.pth")


@pytest.fixture(scope="module")
def red_then_blue(tmp_path_factory):
    """6 s at 25 fps, 64x48: red up to 3.2 s (frames 0-79), blue after."""
    path = tmp_path_factory.mktemp("video") / "red_blue.mp4"
    return _bench().write_colour_video(path, lambda t: "red" if t < 3.2 - 1e-9 else "blue", 6.0, square=False)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2", 2.0),
        ("2.5", 2.5),
        ("2s", 2.0),
        ("500ms", 0.5),
        ("1.5m", 90.0),
        ("1min", 60.0),
        (" 3 S ", 3.0),
        (0.25, 0.25),
    ],
)
def test_parse_seconds(text, seconds):
    assert parse_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "-1", "0ms", "abc", "2x", "inf", "nan", ""])
def test_parse_seconds_refuses(text):
    with pytest.raises(InputError, match="--window"):
        parse_seconds(text, "--window")


@pytest.mark.parametrize(
    "num_frames, fps, window, stride",
    [(150, 25, 1.0, 0.4), (250, 25, 2.0, 1.0), (30000, 25, 2.0, 1.0), (749, 29.97, 2.0, 0.5), (50, 25, 2.0, 1.0),
     (100, 25, 1.0, 3.0)],
)  # fmt: skip
def test_plan_windows_places_windows_by_time(num_frames, fps, window, stride):
    windows = plan_windows(num_frames, fps, window, stride)
    duration, times = num_frames / fps, np.arange(num_frames) / fps  # frame i's timestamp
    assert len(windows) == math.floor((duration - window) / stride + 1e-9) + 1
    for k, w in enumerate(windows):
        assert w.index == k and w.start == pytest.approx(k * stride) and w.end == pytest.approx(k * stride + window)
        assert w.end <= duration + 1e-9
        # the frames whose timestamps i / fps lie in [start, end)
        (inside,) = np.nonzero((times >= w.start - 1e-9) & (times < w.end - 1e-9))
        assert (w.first, w.last) == (inside[0], inside[-1])
        assert np.array_equal(w.frame_inds, np.arange(w.first, w.last + 1))


def test_plan_windows_short_video_is_one_window_and_sampler_picks_inside():
    (w,) = plan_windows(40, 25, 2.0, 1.0)  # 1.6 s < one window: the whole video
    assert (w.start, w.end, w.first, w.last) == (0.0, 1.6, 0, 39)
    tsn = SampleFrames(clip_len=1, num_clips=4, test_mode=True)
    windows = plan_windows(250, 25, 2.0, 1.0, tsn)
    assert [w.frame_inds.tolist() for w in windows[:2]] == [[6, 18, 31, 43], [31, 43, 56, 68]]  # segment centres
    clip = SampleFrames(clip_len=4, frame_interval=4, test_mode=True)
    third = plan_windows(250, 25, 2.0, 1.0, clip)[3]  # frames 75-124
    assert third.frame_inds.tolist() == [93, 97, 101, 105]  # one clip at the spec's interval, centred
    for bad in ((0.0, 1.0), (2.0, 0.0), (-1.0, 1.0), (2.0, float("nan"))):
        with pytest.raises(InputError, match="positive"):
            plan_windows(250, 25, *bad)


@pytest.mark.parametrize("short_side", [None, 40])
def test_iter_windows_one_pass_gives_the_frames_of_direct_decoding(tmp_path, short_side):
    """Windows of 1 s every 0.4 s over 150 H.264 frames with B-frames: each window's frames equal what the
    seeking reader decodes at those indices (and carry those painted indices); the decoder outputs every frame up to
    the last window's once, each is converted once, and at most one window's frames are held."""
    path = write_indexed_video(tmp_path / "indexed.mp4", num_frames=150, fps=25, bframes=3, gop=12)
    info = probe_video(path, short_side)
    with VideoReader(path, short_side=short_side) as reader:
        size = (reader.width, reader.height)
        assert (info.num_frames, info.fps, info.width, info.height) == (reader.num_frames, reader.fps, *size)
        windows = plan_windows(reader.num_frames, reader.fps, 1.0, 0.4)
        stats = StreamStats()
        seen = []
        for w, frames in iter_windows(path, windows, size=size, stats=stats):
            assert frames.shape == (25, size[1], size[0], 3)
            assert np.array_equal(frames, reader.read(w.frame_inds))
            assert [read_index(f) for f in frames] == w.frame_inds.tolist()
            seen.append(w.index)
    assert seen == list(range(13)) == [w.index for w in windows]
    assert windows[-1].last == 144 and stats.decoded == 145  # frames 0-144 once; the tail 145-149 is never needed
    assert stats.converted == 145 and stats.peak_buffered == 25


def test_iter_windows_keeps_only_sampled_frames(tmp_path):
    path = write_indexed_video(tmp_path / "indexed.mp4", num_frames=200, fps=25, bframes=2, gop=25)
    windows = plan_windows(200, 25, 2.0, 0.5, SampleFrames(clip_len=1, num_clips=4, test_mode=True))
    stats = StreamStats()
    got = {w.index: [read_index(f) for f in frames] for w, frames in iter_windows(path, windows, stats=stats)}
    assert got == {w.index: w.frame_inds.tolist() for w in windows}
    wanted = {int(i) for w in windows for i in w.frame_inds}
    assert stats.converted == len(wanted) and stats.decoded == max(wanted) + 1
    assert stats.peak_buffered <= 4 * math.ceil(2.0 / 0.5)  # the sampled frames of the windows still open


def test_label_index_and_segments_follow_the_nearest_centre():
    assert label_index(np.array([0.0, 1.4, 1.5, 1.6, 2.5, 9.0]), [1.0, 2.0, 3.0]).tolist() == [0, 0, 1, 1, 2, 2]
    assert label_index(np.array([0.0, 5.0]), [0.8]).tolist() == [0, 0]
    windows = plan_windows(250, 25, 2.0, 1.0)  # centres 1, 2, ..., 9
    top1 = [("a", 0.9)] * 3 + [("b", 0.5), ("b", 0.7)] + [("a", 1.0)] * 4
    assert merge_segments(windows, top1, 10.0) == [
        {"start": 0.0, "end": 3.5, "label": "a", "windows": [0, 2], "mean_prob": 0.9},
        {"start": 3.5, "end": 5.5, "label": "b", "windows": [3, 4], "mean_prob": 0.6},
        {"start": 5.5, "end": 10.0, "label": "a", "windows": [5, 8], "mean_prob": 1.0},
    ]


def test_colour_model_reads_the_colour(colour_ckpt):
    """The hand-set checkpoint is what the timeline test assumes: the dominant colour wins with near certainty."""
    import vidlab
    from vidlab.data.batch_transforms import normalize_batch

    model = vidlab.load_model(colour_ckpt)
    frames = torch.zeros(3, 1, 4, 32, 32, 3, dtype=torch.uint8)  # (B, V, T, H, W, C): red, green, blue clips
    for c in range(3):
        frames[c, ..., c] = 255
    with torch.no_grad():
        probs = model.forward_views(normalize_batch(frames, model.meta["data"]["mean"], model.meta["data"]["std"]))
    assert probs.argmax(1).tolist() == [0, 1, 2] and probs.max(1).values.min() > 0.999


def test_predict_window_timeline_and_render(cli_inprocess, colour_ckpt, red_then_blue, tmp_path):
    """Red up to 3.2 s, blue after; windows of 1 s every 0.5 s, 4 frames each (segment centres): windows 0-5 see a
    red majority, 6-10 a blue one, so the label changes halfway between the centres of windows 5 and 6 (3.25 s)."""
    timeline, render = tmp_path / "timeline.json", tmp_path / "labelled.mp4"
    res = cli_inprocess(
        "predict", str(red_then_blue), "--checkpoint", str(colour_ckpt), "--window", "1s", "--stride", "500ms",
        "--timeline", str(timeline), "--render", str(render), "--topk", "2", "--batch-size", "4",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(timeline.read_text())
    assert doc["video"] == str(red_then_blue) and doc["classes"] == ["red", "green", "blue"]
    assert (doc["fps"], doc["num_frames"], doc["duration"], doc["window"], doc["stride"]) == (25.0, 150, 6.0, 1.0, 0.5)
    assert doc["sampler"]["num_clips"] == 4 and doc["model"] == "tsn_r18"
    windows = doc["windows"]
    assert len(windows) == math.floor((6.0 - 1.0) / 0.5) + 1 == 11
    assert [(w["start"], w["end"]) for w in windows] == [(k / 2, k / 2 + 1) for k in range(11)]
    assert [w["topk"][0][0] for w in windows] == ["red"] * 6 + ["blue"] * 5
    assert all(len(w["topk"]) == 2 and w["topk"][0][1] > 0.99 for w in windows)
    assert [(s["label"], s["start"], s["end"], s["windows"]) for s in doc["segments"]] == [
        ("red", 0.0, 3.25, [0, 5]),
        ("blue", 3.25, 6.0, [6, 10]),
    ]
    lines = [line for line in res.stdout.splitlines() if re.match(r"^\d+\.\d\d-\d+\.\d\d  ", line)]
    assert lines[0].startswith("0.00-1.00  red 1.000  ") and lines[-1].startswith("5.00-6.00  blue 1.000  ")
    assert len(lines) == 11 and f"timeline: {timeline}" in res.stdout

    with VideoReader(red_then_blue) as src, VideoReader(render) as out:
        assert (out.num_frames, out.fps, out.width, out.height) == (150, 25.0, 64, 48)
        assert out.duration == pytest.approx(src.duration, abs=1e-6)
        idx = [10, 70, 90, 140]  # labels by the nearest centre: red, red, blue, blue
        a, b = src.read(idx).astype(int), out.read(idx).astype(int)
    changed = np.abs(a - b).max(-1) > 60  # (4, H, W)
    rows, cols = np.nonzero(changed.any(0))
    assert rows.max() < 20 and cols.min() < 4  # only the label box in the top-left corner changes
    assert changed[:, :14, :40].mean(axis=(1, 2)).min() > 0.5  # the black box behind the text
    text = (b[:, :14, :40] > 150).all(-1).sum(axis=(1, 2))
    assert text.min() > 20  # white text on it
    box = b[:, :14, :44].mean(-1)
    assert np.abs(box[0] - box[1]).mean() < np.abs(box[1] - box[2]).mean() / 3  # "red 1.00" twice, then "blue 1.00"


def test_predict_window_errors(cli_inprocess, colour_ckpt, red_then_blue, tmp_path):
    base = ("predict", str(red_then_blue), "--checkpoint", str(colour_ckpt))
    for extra, message in (
        (("--window", "0"), "--window must be a positive number of seconds"),
        (("--window", "2", "--stride", "-1"), "--stride must be a positive number of seconds"),
        (("--window", "2 apples"), "is not a duration"),
        (("--window", "2", "--batch-size", "0"), "batch size must be a positive integer"),
        (("--stride", "1"), "--stride: sliding-window options; give --window too"),
    ):
        res = cli_inprocess(*base, *extra)
        assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, (extra, res.stderr)
    res = cli_inprocess("predict", str(tmp_path / "none.mp4"), "--checkpoint", str(colour_ckpt), "--window", "2")
    assert res.returncode == 2 and "none.mp4: no such file" in res.stderr
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    res = cli_inprocess("predict", str(tmp_path / "junk.mp4"), "--checkpoint", str(colour_ckpt), "--window", "2")
    assert res.returncode == 2 and "junk.mp4: cannot open as a video" in res.stderr
    det = tmp_path / "detector.pth"
    torch.save({"model": {}, "meta": {"model": "x3d_s_ava", "num_classes": 3, "task": {"name": "detection"}}}, det)
    res = cli_inprocess("predict", str(red_then_blue), "--checkpoint", str(det), "--window", "2")
    assert res.returncode == 2 and "not supported for detectors" in res.stderr and "--boxes" in res.stderr


def test_predict_window_longer_than_video_is_one_window(cli_inprocess, colour_ckpt, tmp_path, caplog):
    video = _bench().write_colour_video(tmp_path / "short.mp4", lambda t: "green", 0.8, square=False)
    res = cli_inprocess("predict", str(video), "--checkpoint", str(colour_ckpt), "--window", "2", "--topk", "1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "0.00-0.80  green 1.000"
    assert "lasts 0.80 s, less than one 2.00 s window" in caplog.text


@pytest.mark.slow
def test_long_video_benchmark_runs(tmp_path):
    """``benchmarks/long_video.py`` on 1 and 3 minutes: every check holds and memory does not grow with length."""
    res = subprocess.run(
        [sys.executable, str(REPO_BENCH), "--minutes", "1", "3", "--segment", "10", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        assert r["windows"] == r["windows_expected"] and r["segments"] == r["segments_expected"]
        right, total = map(int, r["inside_windows_right"].split("/"))
        assert right == total > 0 and r["max_boundary_error_s"] <= 1.0
        assert r["input"]["frames"] == r["rendered"]["frames"]
        assert r["input"]["duration_s"] == pytest.approx(r["rendered"]["duration_s"], abs=0.04)
    assert rows[1]["peak_rss_mib"] < rows[0]["peak_rss_mib"] + 30
