import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import paint_index, read_index, write_indexed_video
from vidlab.data.datasets import (
    AnnotationError,
    FeatureDataset,
    VideoDataset,
    VideoItem,
    collate,
    feature_path,
    parse_kinetics_csv,
    parse_rawframe_list,
    parse_video_list,
    read_label_map,
)
from vidlab.data.loader import build_loader
from vidlab.data.sampling import DenseSampleFrames, SampleFrames, UniformSample
from vidlab.data.transforms import Flip


def test_video_list_single_and_multi_label(tmp_path):
    ann = tmp_path / "list.txt"
    ann.write_text("a/x.mp4 3\n\n# comment\nb/y.mp4 1\n")
    items = parse_video_list(ann, tmp_path, num_classes=5)
    assert [i.label for i in items] == [[3], [1]]
    assert items[0].path == str(tmp_path / "a/x.mp4")
    ann.write_text("a/x.mp4 3 4\n")
    assert parse_video_list(ann, tmp_path, multi_label=True)[0].label == [3, 4]


@pytest.mark.parametrize(
    "text, lineno, what",
    [
        ("ok.mp4 1\nbroken.mp4\n", 2, "expected 'path label'"),
        ("ok.mp4 1\nx.mp4 one\n", 2, "labels must be integers"),
        ("x.mp4 1 2\n", 1, "expected 'path label'"),
        ("x.mp4 9\n", 1, "out of range"),
    ],
)
def test_video_list_errors_name_file_and_line(tmp_path, text, lineno, what):
    ann = tmp_path / "train.txt"
    ann.write_text(text)
    with pytest.raises(AnnotationError, match=rf"train.txt:{lineno}: .*{what}"):
        parse_video_list(ann, tmp_path, num_classes=5)


def test_rawframe_list(tmp_path):
    ann = tmp_path / "raw.txt"
    ann.write_text("v1 30 2\nv2 12 0\n")
    items = parse_rawframe_list(ann, tmp_path)
    assert items[0].total_frames == 30 and items[1].label == [0]
    ann.write_text("v1 thirty 2\n")
    with pytest.raises(AnnotationError, match=r"raw.txt:1: total_frames"):
        parse_rawframe_list(ann, tmp_path)


def test_kinetics_csv(tmp_path):
    ann = tmp_path / "kinetics_val.csv"
    ann.write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        '"air drumming",AbC123xyz_0,40,50,val,0\n'
        "abseiling,Zz9,7,17,val,0\n"
    )
    items = parse_kinetics_csv(ann, tmp_path)
    assert items[0].path == str(tmp_path / "air_drumming" / "AbC123xyz_0_000040_000050.mp4")
    assert [i.label[0] for i in items] == [1, 0]  # sorted class names
    items = parse_kinetics_csv(ann, tmp_path, classes=["air drumming", "abseiling"])
    assert [i.label[0] for i in items] == [0, 1]
    ann.write_text("label,youtube_id,time_start,time_end,split\nabseiling,Zz9,7\n")
    with pytest.raises(AnnotationError, match=r"kinetics_val.csv:2: expected at least 5 columns"):
        parse_kinetics_csv(ann, tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="annotation file not found"):
        parse_video_list(tmp_path / "nope.txt", tmp_path)
    with pytest.raises(AnnotationError, match="label map not found"):
        read_label_map(tmp_path / "nope.txt")


# ------------------------------------------------------------------------------------------------ continuous targets


def test_video_list_regression_targets(tmp_path):
    ann = tmp_path / "speed.txt"
    ann.write_text("a/x.mp4 0.5 -2\n# comment\nb/y.mp4 3e-1 7\n")
    items = parse_video_list(ann, tmp_path, target_type="regression")
    assert [i.label for i in items] == [[0.5, -2.0], [0.3, 7.0]]
    assert [i.rel_path for i in items] == ["a/x.mp4", "b/y.mp4"]
    ann.write_text("v1 30 0.25\n")
    assert parse_rawframe_list(ann, tmp_path, target_type="regression")[0].label == [0.25]


@pytest.mark.parametrize(
    "text, lineno, what",
    [
        ("ok.mp4 1.5\nx.mp4 fast\n", 2, "regression targets must be numbers, got 'fast'"),
        ("x.mp4 nan\n", 1, "regression targets must be finite"),
        ("ok.mp4 1.5 2\nx.mp4 1.0\n", 2, r"expected 2 regression target\(s\) as on line 1, got 1"),
        ("x.mp4\n", 1, r"expected 'path value \[value ...\]'"),
    ],
)
def test_regression_list_errors_name_file_and_line(tmp_path, text, lineno, what):
    ann = tmp_path / "train_speed.txt"
    ann.write_text(text)
    with pytest.raises(AnnotationError, match=rf"train_speed.txt:{lineno}: {what}"):
        parse_video_list(ann, tmp_path, target_type="regression")


def test_target_type_and_multi_label_flag(tmp_path):
    ann = tmp_path / "list.txt"
    ann.write_text("a.mp4 1 2\n")
    assert parse_video_list(ann, tmp_path, target_type="multi_label")[0].label == [1, 2]
    assert parse_video_list(ann, tmp_path, True)[0].label == [1, 2]  # positional multi_label, as builders call it
    with pytest.raises(ValueError, match="contradicts"):
        parse_video_list(ann, tmp_path, multi_label=True, target_type="regression")
    with pytest.raises(ValueError, match="target_type must be one of"):
        parse_video_list(ann, tmp_path, target_type="ordinal")


def test_rel_path_is_kept(tmp_path):
    ann = tmp_path / "k.csv"
    ann.write_text("label,youtube_id,time_start,time_end,split\nabseiling,Zz9,7,17,val\n")
    item = parse_kinetics_csv(ann, tmp_path)[0]
    assert item.rel_path == "abseiling/Zz9_000007_000017.mp4" and item.path == str(tmp_path / item.rel_path)
    ann.write_text("raw/v1 30 2\n")
    item = parse_rawframe_list(ann, tmp_path)[0]
    assert item.rel_path == "raw/v1" and item.meta == {}


# ------------------------------------------------------------------------------------------------ items: fps, meta


def _identity(results: dict) -> dict:
    return results


@pytest.fixture(scope="module")
def fps_videos(tmp_path_factory):
    """Three 72-frame videos whose frames show their index, at 24, 25 and 30 fps."""
    root = tmp_path_factory.mktemp("fps_videos")
    for fps in (24, 25, 30):
        write_indexed_video(root / f"v{fps}.mp4", num_frames=72, fps=fps)
    return root


def _fps_dataset(root, sampler, **kwargs):
    items = [VideoItem(str(root / f"v{fps}.mp4"), [i], rel_path=f"v{fps}.mp4") for i, fps in enumerate((24, 25, 30))]
    return VideoDataset(items, sampler, _identity, 3, **kwargs)


@pytest.mark.parametrize("test_mode", [True, False])
def test_sampler_gets_the_video_fps(fps_videos, test_mode):
    sampler = SampleFrames(clip_len=4, frame_interval=3, num_clips=2, target_fps=12, test_mode=test_mode)
    dataset = _fps_dataset(fps_videos, sampler, seed=5)
    painted = {}
    for idx, fps in enumerate((24, 25, 30)):
        out = dataset[idx]
        expected = sampler(72, np.random.default_rng([5, 0, idx]), fps=fps)  # the dataset's per-sample rng
        frames = out["imgs"].reshape(-1, *out["imgs"].shape[2:]).numpy()  # (V*T, H, W, C)
        painted[fps] = [read_index(f) for f in frames]
        assert painted[fps] == expected.tolist() == out["meta"]["frame_inds"]
        assert out["meta"]["fps"] == float(fps) and out["meta"]["total_frames"] == 72
        if fps == 24:  # the span doubles at 24 fps for a 12 fps target: ignoring the fps would give other frames
            assert expected.tolist() != sampler(72, np.random.default_rng([5, 0, idx]), fps=None).tolist()
    assert painted[24] != painted[30]


def test_every_sampler_accepts_fps(fps_videos):
    for sampler in (
        UniformSample(clip_len=4, test_mode=True),
        DenseSampleFrames(clip_len=2, num_clips=2, test_mode=True),
    ):
        out = _fps_dataset(fps_videos, sampler)[2]
        assert out["meta"]["frame_inds"] == sampler(72).tolist() == sampler(72, fps=30.0).tolist()


def test_item_meta(fps_videos):
    item_meta = {"timestamps": [0.5, 1.0], "boxes": np.zeros((1, 4))}
    items = [VideoItem(str(fps_videos / "v25.mp4"), [1], rel_path="v25.mp4", meta=item_meta)]
    sampler = SampleFrames(clip_len=2, frame_interval=5, test_mode=True)
    dataset = VideoDataset(items, sampler, _identity, 3)
    meta = dataset[0]["meta"]
    assert meta["path"] == str(fps_videos / "v25.mp4") and meta["rel_path"] == "v25.mp4"
    assert meta["fps"] == 25.0 and meta["total_frames"] == 72
    assert meta["frame_inds"] == sampler(72).tolist() and all(type(i) is int for i in meta["frame_inds"])
    assert meta["timestamps"] == [0.5, 1.0]
    meta["boxes"] += 1  # a transform editing boxes in place must not change the item
    assert not item_meta["boxes"].any()


def test_rawframes_meta_fps(tmp_path):
    from PIL import Image

    frame_dir = tmp_path / "frames" / "v1"
    frame_dir.mkdir(parents=True)
    for i in range(12):
        Image.fromarray(paint_index(i)).save(frame_dir / f"img_{i + 1:05d}.jpg", quality=95)
    (tmp_path / "raw.txt").write_text("frames/v1 12 0\n")
    items = parse_rawframe_list(tmp_path / "raw.txt", tmp_path)
    sampler = SampleFrames(clip_len=3, frame_interval=1, target_fps=6, test_mode=True)
    out = VideoDataset(items, sampler, _identity, 1, fmt="rawframes")[0]
    assert out["meta"]["fps"] is None and out["meta"]["frame_inds"] == sampler(12).tolist() == [4, 5, 6]
    items[0].meta["fps"] = 12  # a known rate: the sampler spreads the clip over twice the frames
    out = VideoDataset(items, sampler, _identity, 1, fmt="rawframes")[0]
    assert out["meta"]["fps"] == 12.0 and out["meta"]["frame_inds"] == sampler(12, fps=12).tolist() == [3, 5, 8]
    assert [read_index(f) for f in out["imgs"][0].numpy()] == [3, 5, 8]  # frame i is img_{i+1}


def test_regression_targets_bypass_the_label_map(fps_videos):
    items = [VideoItem(str(fps_videos / "v24.mp4"), [1.5, 0.25], rel_path="v24.mp4")]
    flip = Flip(flip_ratio=1.0, flip_label_map={1: 0, 0: 1})
    sampler = SampleFrames(clip_len=2, test_mode=True)
    out = VideoDataset(items, sampler, flip, 1, target_type="regression")[0]
    assert out["label"].dtype == torch.float32 and out["label"].tolist() == [1.5, 0.25]
    items = [VideoItem(str(fps_videos / "v24.mp4"), [1], rel_path="v24.mp4")]
    assert VideoDataset(items, sampler, flip, 2)[0]["label"].item() == 0  # a class label is still remapped
    out = VideoDataset(items, sampler, flip, 3, multi_label=True)[0]
    assert out["label"].tolist() == [1.0, 0.0, 0.0]


# ------------------------------------------------------------------------------------------------ collate


def _item(index, frames=4, label=1, skipped=()):
    imgs = torch.randint(0, 255, (2, frames, 8, 8, 3), dtype=torch.uint8)
    return {"imgs": imgs, "label": torch.tensor(label), "meta": {"path": f"v{index}.mp4"}, "index": index,
            "skipped": list(skipped)}  # fmt: skip


def test_collate_keeps_todays_fields():
    batch = [_item(0, label=3), _item(1, label=0, skipped=["bad.mp4"]), _item(2, skipped=["a.mp4", "b.mp4"])]
    out = collate(copy.deepcopy(batch))
    assert torch.equal(out["imgs"], torch.stack([b["imgs"] for b in batch]))
    assert out["imgs"].dtype == torch.uint8 and out["imgs"].shape == (3, 2, 4, 8, 8, 3)
    assert out["label"].dtype == torch.int64 and out["label"].tolist() == [3, 0, 1]
    assert out["index"].dtype == torch.int64 and out["index"].tolist() == [0, 1, 2]
    assert out["skipped"] == ["bad.mp4", "a.mp4", "b.mp4"]
    assert out["meta"] == [{"path": "v0.mp4"}, {"path": "v1.mp4"}, {"path": "v2.mp4"}]


def test_collate_lists_ragged_fields():
    batch = [_item(0, frames=4), _item(1, frames=6)]
    batch[0]["label"], batch[1]["label"] = torch.tensor([0.5, 1.0]), torch.tensor([2.0, 3.0])
    out = collate(batch)
    assert isinstance(out["imgs"], list) and [t.shape[1] for t in out["imgs"]] == [4, 6]
    assert out["label"].shape == (2, 2) and out["label"].dtype == torch.float32
    batch[1]["label"] = torch.tensor(2)  # different shapes
    assert isinstance(collate(batch)["label"], list)


def test_loader_batches_meta(fps_videos):
    dataset = _fps_dataset(fps_videos, SampleFrames(clip_len=2, frame_interval=2, test_mode=True))
    batch = next(iter(build_loader(dataset, batch_size=3, train=False)))
    assert batch["imgs"].shape == (3, 1, 2, 64, 96, 3) and batch["label"].tolist() == [0, 1, 2]
    assert [m["fps"] for m in batch["meta"]] == [24.0, 25.0, 30.0] and batch["skipped"] == []


# ------------------------------------------------------------------------------------------------ features


def test_feature_path():
    assert feature_path("feats", "videos/cls/a.mp4") == Path("feats/videos/cls/a.npy")
    assert feature_path("/f", "rawframes/cls/v_x") == Path("/f/rawframes/cls/v_x.npy")
    with pytest.raises(ValueError, match="inside the data root"):
        feature_path("feats", "/data/a.mp4")


def test_feature_dataset(tmp_path):
    (tmp_path / "val.txt").write_text("videos/a.mp4 2\nvideos/sub/b.avi 0\n")
    items = parse_video_list(tmp_path / "val.txt", tmp_path / "data")
    feats = tmp_path / "feats"
    a = np.arange(6, dtype=np.float64).reshape(3, 2)
    for rel, arr in (("videos/a.mp4", a), ("videos/sub/b.avi", a + 10)):
        feature_path(feats, rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(feature_path(feats, rel), arr)
    dataset = FeatureDataset(items, feats)
    out = dataset[1]
    assert out["feats"].dtype == torch.float32 and out["feats"].tolist() == (a + 10).tolist()
    assert out["label"].item() == 0 and out["index"] == 1 and out["skipped"] == []
    assert out["meta"]["path"] == str(tmp_path / "data/videos/sub/b.avi")
    assert out["meta"]["feature_path"] == str(feats / "videos/sub/b.npy")
    batch = next(iter(build_loader(dataset, batch_size=2, train=False)))
    assert batch["feats"].shape == (2, 3, 2) and batch["label"].tolist() == [2, 0]
    np.save(feature_path(feats, "videos/a.mp4"), np.zeros((4, 2, 3, 3)))  # a map, and a different clip count
    assert FeatureDataset(items, feats)[0]["feats"].shape == (4, 2, 3, 3)
    assert FeatureDataset(items, feats, 3, multi_label=True)[0]["label"].tolist() == [0.0, 0.0, 1.0]


def test_feature_dataset_errors(tmp_path):
    (tmp_path / "val.txt").write_text("videos/a.mp4 1\n")
    items = parse_video_list(tmp_path / "val.txt", tmp_path)
    expected = str(tmp_path / "feats" / "videos" / "a.npy")
    with pytest.raises(FileNotFoundError, match="videos/a.mp4") as err:
        FeatureDataset(items, tmp_path / "feats")
    assert expected in str(err.value) and "vidlab extract" in str(err.value)
    (tmp_path / "feats" / "videos").mkdir(parents=True)
    (tmp_path / "feats" / "videos" / "a.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="cannot read the features"):
        FeatureDataset(items, tmp_path / "feats")[0]
    with pytest.raises(ValueError, match="rel_path"):
        FeatureDataset([VideoItem(str(tmp_path / "x.mp4"), [0])], tmp_path / "feats")


def test_feature_dataset_regression(tmp_path):
    (tmp_path / "train_speed.txt").write_text("videos/a.mp4 0.75\n")
    items = parse_video_list(tmp_path / "train_speed.txt", tmp_path, target_type="regression")
    feature_path(tmp_path / "f", "videos/a.mp4").parent.mkdir(parents=True)
    np.save(feature_path(tmp_path / "f", "videos/a.mp4"), np.ones((1, 4), np.float32))
    out = FeatureDataset(items, tmp_path / "f", target_type="regression")[0]
    assert out["label"].dtype == torch.float32 and out["label"].tolist() == [0.75]
