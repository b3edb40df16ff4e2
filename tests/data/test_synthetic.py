"""Tests for the SynthActions generator: files, lists, determinism, decodability and the motion it encodes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from vidlab.data.synth_scene import (
    _render_sprite,
)
from vidlab.data.synthetic import (
    CLASSES,
    DEFAULT_SIZES,
    DIRECTION_PAIRS,
    FLIP_LABEL_MAP,
    FPS_CHOICES,
    _make_scene,
    generate_synth_actions,
    render_synth_video,
)

NUM_VIDEOS = 24  # two per class


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read_list(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "one_worker"
    summary = generate_synth_actions(root, num_videos=NUM_VIDEOS, seed=3, workers=1, rawframes=True, progress=False)
    return root, summary


@pytest.fixture(scope="module")
def meta(dataset: tuple[Path, dict]) -> dict:
    return json.loads((dataset[0] / "meta.json").read_text())


def test_same_files_for_any_worker_count(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    other = root.parent / "two_workers"
    generate_synth_actions(other, num_videos=NUM_VIDEOS, seed=3, workers=2, rawframes=True, progress=False)
    first, second = _digest(root), _digest(other)
    assert sum(name.endswith(".mp4") for name in first) == NUM_VIDEOS
    assert first == second
    assert summary["generated"] is True


def test_video_lists_are_stratified(dataset: tuple[Path, dict]) -> None:
    root, summary = dataset
    seen: list[str] = []
    per_split: dict[str, Counter] = {}
    for split in ("train", "val", "test"):
        rows = _read_list(root / f"{split}.txt")
        assert len(rows) == summary["split_sizes"][split]
        for path, label in rows:
            label_idx = int(label)
            assert 0 <= label_idx < len(CLASSES)
            name = CLASSES[label_idx]
            assert path.startswith(f"videos/{name}/{name}_") and path.endswith(".mp4")
            assert (root / path).is_file()
        seen += [path for path, _ in rows]
        per_split[split] = Counter(int(label) for _, label in rows)
    assert len(seen) == len(set(seen)) == NUM_VIDEOS
    assert [len(_read_list(root / f"{s}.txt")) for s in ("train", "val", "test")] == [17, 4, 3]
    for counts in per_split.values():  # every class within one video of every other class in each split
        values = [counts.get(c, 0) for c in range(len(CLASSES))]
        assert max(values) - min(values) <= 1


def test_label_map_flip_map_and_pairs(dataset: tuple[Path, dict]) -> None:
    root, _ = dataset
    assert (root / "label_map.txt").read_text().splitlines() == list(CLASSES)
    flip = {int(k): v for k, v in json.loads((root / "flip_label_map.json").read_text()).items()}
    assert flip == FLIP_LABEL_MAP
    assert all(flip[flip[k]] == k for k in flip)
    assert {CLASSES[k]: CLASSES[v] for k, v in flip.items()}["moving_left"] == "moving_right"
    pairs = json.loads((root / "pairs.json").read_text())
    assert pairs["classes"] == list(CLASSES)
    assert [tuple(p) for p in pairs["direction_pairs"]] == list(DIRECTION_PAIRS)
    assert len(CLASSES) == 12 and len(DIRECTION_PAIRS) == 5


def test_videos_decode_with_expected_frames(dataset: tuple[Path, dict], meta: dict) -> None:
    root, _ = dataset
    assert meta["seed"] == 3 and meta["num_videos"] == NUM_VIDEOS and len(meta["videos"]) == NUM_VIDEOS
    for info in meta["videos"]:
        assert info["num_frames"] == round(info["duration"] * info["fps"])
        assert 2.0 <= info["duration"] <= 6.0
        assert info["fps"] in FPS_CHOICES and (info["width"], info["height"]) in DEFAULT_SIZES
        with av.open(str(root / info["video"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
            assert stream.average_rate == info["fps"]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == info["num_frames"]
        assert frames[0].shape == (info["height"], info["width"], 3)


def test_rawframes_match_lists(dataset: tuple[Path, dict], meta: dict) -> None:
    root, _ = dataset
    from PIL import Image

    lines = sum((_read_list(root / f"{s}_rawframes.txt") for s in ("train", "val", "test")), [])
    assert len(lines) == NUM_VIDEOS
    by_dir = {info["rawframes"]: info for info in meta["videos"]}
    for frame_dir, total, label in lines:
        info = by_dir[frame_dir]
        assert int(total) == info["num_frames"] and int(label) == info["label"]
        names = sorted(p.name for p in (root / frame_dir).iterdir())
        assert names == [f"img_{i:05d}.jpg" for i in range(1, int(total) + 1)]
    info = meta["videos"][0]
    with Image.open(root / info["rawframes"] / "img_00001.jpg") as img:
        assert img.size == (info["width"], info["height"])


def _erode(mask: np.ndarray) -> np.ndarray:
    """3x3 binary erosion of a (T, H, W) mask: removes thin structures such as texture edges under camera jitter."""
    h, w = mask.shape[1:]
    out = np.zeros_like(mask)
    out[:, 1:-1, 1:-1] = np.logical_and.reduce(
        [mask[:, 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    return out


def _moving_mask(frames: np.ndarray) -> np.ndarray:
    """Pixels that differ from the clip's per-pixel median (its background), without thin texture edges."""
    frames = frames.astype(np.float32)
    return _erode(_erode(np.abs(frames - np.median(frames, axis=0)).sum(-1) > 60))


def _actor_centroids(path: Path) -> np.ndarray:
    """Centroid (x, y) per frame of the moving pixels, dominated by the actor, the largest object."""
    with av.open(str(path)) as container:
        moving = _moving_mask(np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]))
    ys, xs = np.mgrid[: moving.shape[1], : moving.shape[2]]
    mass = moving.sum((1, 2)).clip(min=1)
    return np.stack([(moving * xs).sum((1, 2)) / mass, (moving * ys).sum((1, 2)) / mass], axis=1)


@pytest.mark.parametrize(
    ("first", "second", "axis"), [("moving_left", "moving_right", 0), ("moving_up", "moving_down", 1)]
)
def test_paired_classes_move_in_opposite_directions(meta: dict, dataset, first: str, second: str, axis: int) -> None:
    root, _ = dataset
    for name, sign in ((first, -1), (second, 1)):
        videos = [v for v in meta["videos"] if v["class_name"] == name]
        assert len(videos) == 2
        for info in videos:
            track = _actor_centroids(root / info["video"])[:, axis]
            quarter = len(track) // 4
            shift = track[-quarter:].mean() - track[:quarter].mean()
            size = info["width"] if axis == 0 else info["height"]
            assert sign * shift > 0.2 * size, (info["video"], shift)


@pytest.mark.parametrize(
    ("forward", "backward", "attribute"),
    [("moving_left", "moving_right", "cx"), ("rotating_clockwise", "rotating_counterclockwise", "phi"),
     ("growing", "shrinking", "r"), ("fading_in", "fading_out", "alpha")],
)  # fmt: skip
def test_pair_members_differ_only_in_time_direction(forward: str, backward: str, attribute: str) -> None:
    # The actor's per-frame state trends one way for the first class of a pair and the other way for the second,
    # while its values pooled over all frames (what a bag of frames sees) have the same distribution.
    trends, pooled = {}, {}
    for name in (forward, backward):
        values = []
        for k in range(16):
            scene = _make_scene(CLASSES.index(name) + len(CLASSES) * k, 7, DEFAULT_SIZES)
            track = getattr(scene.tracks[-1], attribute)
            scale = 1.0 if attribute in ("phi", "alpha") else min(scene.info["width"], scene.info["height"])
            values.append(np.asarray(track) / scale)
        trends[name] = [np.sign(v[-1] - v[0]) for v in values]
        pooled[name] = np.concatenate([v - v.mean() if attribute == "phi" else v for v in values])
    sign = -1 if attribute == "cx" else 1  # moving left: x decreases; clockwise: phi increases (y points down)
    assert all(t == sign for t in trends[forward]) and all(t == -sign for t in trends[backward])
    spread = pooled[forward].std() + pooled[backward].std()
    assert abs(pooled[forward].mean() - pooled[backward].mean()) < 0.15 * spread
    assert abs(pooled[forward].std() - pooled[backward].std()) < 0.15 * spread


def test_growing_phi_turns_the_marker_clockwise() -> None:
    color, marker = np.asarray([1.0, 0.0, 0.0], np.float32), np.asarray([0.95, 0.95, 0.95], np.float32)

    def marker_offset(phi: float) -> np.ndarray:
        cover, premult = _render_sprite("circle", 12.0, phi, color, marker)
        ys, xs = np.nonzero(premult[..., 1] > 0.5)  # only the marker has green
        return np.asarray([xs.mean(), ys.mean()]) - cover.shape[0] // 2

    right, down = marker_offset(0.0), marker_offset(np.pi / 2)
    assert right[0] > 3 and abs(right[1]) < 1  # marker to the right of the centre
    assert down[1] > 3 and abs(down[0]) < 1  # a quarter turn later it is below: clockwise on screen


def test_render_is_deterministic() -> None:
    frames, info = render_synth_video(5, seed=1)
    again, _ = render_synth_video(5, seed=1)
    other, _ = render_synth_video(5, seed=2)
    assert frames.dtype == np.uint8 and frames.shape == (info["num_frames"], info["height"], info["width"], 3)
    assert info["class_name"] == CLASSES[5]
    assert np.array_equal(frames, again)
    assert other.shape != frames.shape or not np.array_equal(frames, other)


def test_reuses_complete_dataset_and_replaces_a_different_one(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    first = generate_synth_actions(root, num_videos=3, seed=0, workers=1, progress=False, sizes=[(64, 48)])
    stamp = (root / "videos/moving_left/moving_left_00000.mp4").stat().st_mtime_ns
    again = generate_synth_actions(root, num_videos=3, seed=0, workers=1, progress=False, sizes=[(64, 48)])
    assert first["generated"] and not again["generated"]
    assert (root / "videos/moving_left/moving_left_00000.mp4").stat().st_mtime_ns == stamp
    smaller = generate_synth_actions(root, num_videos=2, seed=1, workers=1, progress=False, sizes=[(64, 48)])
    assert (
        smaller["generated"] and smaller["split_sizes"] == json.loads((root / "meta.json").read_text())["split_sizes"]
    )
    assert not (root / "videos/moving_up").exists()  # the third video of the earlier dataset is gone
    forced = generate_synth_actions(
        root, num_videos=2, seed=1, workers=1, progress=False, sizes=[(64, 48)], overwrite=True
    )
    assert forced["generated"]


@pytest.mark.parametrize(
    "kwargs",
    [{"num_videos": 0}, {"split": (0.5, 0.2, 0.2)}, {"workers": 0}, {"sizes": [(65, 48)]}, {"sizes": []}],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate_synth_actions(tmp_path / "bad", progress=False, **kwargs)


def test_speed_lists_follow_the_video_lists(dataset: tuple[Path, dict], meta: dict) -> None:
    root, summary = dataset
    assert summary["speed_splits"] == {s: str(root / f"{s}_speed.txt") for s in ("train", "val", "test")}
    for split in ("train", "val", "test"):
        rows = _read_list(root / f"{split}_speed.txt")
        assert [path for path, _ in rows] == [path for path, _ in _read_list(root / f"{split}.txt")]
        for path, value in rows:
            info = next(v for v in meta["videos"] if v["video"] == path)
            speed = render_synth_video(info["index"], seed=3)[1]["speed"] if split == "test" else None
            if speed is not None:
                assert float(value) == pytest.approx(speed, abs=5e-5)
            if info["class_name"] in ("fading_in", "fading_out", "static"):
                assert float(value) == 0.0
            else:
                assert float(value) > 0.02, (path, value)


def _drawn_actor_speed(index: int, seed: int) -> tuple[float, float]:
    """(recorded speed, speed measured on the actor's pixels): the actor alone is drawn and its centroid tracked."""
    scene = _make_scene(index, seed, DEFAULT_SIZES)
    w, h = scene.info["width"], scene.info["height"]
    centroids = []
    ys, xs = np.mgrid[:h, :w]
    for f in range(scene.info["num_frames"]):
        frame = np.zeros((h, w, 3), np.float32)
        scene.tracks[-1].draw(frame, f, 0, 0)
        mask = frame.sum(-1) > 1e-6
        centroids.append(((xs * mask).sum() / mask.sum(), (ys * mask).sum() / mask.sum()))
    steps = np.linalg.norm(np.diff(np.asarray(centroids), axis=0), axis=1)
    moving = np.nonzero(steps > 1e-3)[0]
    window = steps[moving[0] : moving[-1] + 1]  # from the first to the last step that moves a pixel
    return scene.speed, float(window.mean() * 100 / min(w, h))


@pytest.mark.parametrize("name", ["moving_left", "moving_down", "bouncing"])
def test_speed_is_what_the_pixels_show(name: str) -> None:
    recorded, measured = zip(*(_drawn_actor_speed(CLASSES.index(name) + 12 * k, 11) for k in range(4)))
    assert measured == pytest.approx(recorded, rel=0.1)
    assert max(recorded) > 1.2 * min(recorded)  # it varies within the class


def test_speed_lists_are_added_to_an_older_dataset(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    generate_synth_actions(root, num_videos=4, seed=0, workers=1, progress=False, sizes=[(64, 48)])
    lists = {s: (root / f"{s}_speed.txt").read_text() for s in ("train", "val", "test")}
    stamp = (root / "videos/moving_left/moving_left_00000.mp4").stat().st_mtime_ns
    for s in lists:
        (root / f"{s}_speed.txt").unlink()  # as written before the speed lists existed
    again = generate_synth_actions(root, num_videos=4, seed=0, workers=1, progress=False, sizes=[(64, 48)])
    assert not again["generated"] and (root / "videos/moving_left/moving_left_00000.mp4").stat().st_mtime_ns == stamp
    assert {s: (root / f"{s}_speed.txt").read_text() for s in lists} == lists
