"""Optical flow: MMAction2 1.2.0 parity of reading, stacking, flipping and quantization (fixture from
tests/assets/make_flow_mmaction2.py, no OpenCV needed), and extraction on real tiny videos (needs OpenCV)."""

import base64
import json
import os
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidlab.data.batch_transforms import normalize_batch
from vidlab.data.datasets import parse_rawframe_list
from vidlab.data.decode import VideoDecodeError
from vidlab.data.flow import (
    dequantize_flow,
    extract_flow,
    extract_flow_list,
    flip_flow,
    quantize_flow,
    read_flow_frames,
    stack_flow,
)
from vidlab.data.sampling import SampleFrames
from vidlab.data.transforms import Resize

FIXTURE = json.loads((Path(__file__).parents[1] / "assets" / "flow_mmaction2.json").read_text())


# ----------------------------------------------------------------------------------------- quantization


@pytest.mark.parametrize("bound", ["20.0", "15.0"])
def test_floor_quantization_matches_mmaction2_flow_to_img(bound):
    case = FIXTURE["quantize"]
    flow = np.array(case["flow"], dtype=np.float32)
    out = quantize_flow(flow, float(bound), rounding="floor")
    np.testing.assert_array_equal(out, np.array(case["uint8"][bound], dtype=np.uint8))


def test_round_quantization_is_denseflows_and_dequantize_inverts_it():
    values = np.array([-25.0, -20.0, -10.0, 0.0, 10.0, 20.0, 25.0, 0.1], dtype=np.float32)
    flow = np.stack([values, -values], axis=-1)
    q = quantize_flow(flow, 20.0)
    # cvRound(255 * (v + 20) / 40), ties to even (127.5 -> 128), clipped
    assert q[:, 0].tolist() == [0, 0, 64, 128, 191, 255, 255, 128]
    assert q[:, 1].tolist() == [255, 255, 191, 128, 64, 0, 0, 127]
    v = np.random.default_rng(0).uniform(-20, 20, size=(50, 7, 2)).astype(np.float32)
    assert np.abs(dequantize_flow(quantize_flow(v, 20.0)) - v).max() <= 20.0 / 255 + 1e-6
    assert np.abs(dequantize_flow(quantize_flow(v, 20.0, "floor")) - v).max() <= 40.0 / 255 + 1e-6
    assert dequantize_flow(np.uint8([0, 255])).tolist() == [-20.0, 20.0]


def test_quantization_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        quantize_flow(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="bound"):
        quantize_flow(np.zeros((4, 2)), bound=0)
    with pytest.raises(ValueError, match="rounding"):
        quantize_flow(np.zeros((4, 2)), rounding="ceil")
    with pytest.raises(TypeError, match="uint8"):
        dequantize_flow(np.zeros(3, np.float32))


# ----------------------------------------------------------------------------------------- reading


def test_read_flow_frames_matches_rawframedecode(tmp_path):
    case = FIXTURE["decode_png"]
    frames = np.array(case["frames"], dtype=np.uint8)  # (n, H, W, 2)
    for t, frame in enumerate(frames, start=1):
        Image.fromarray(frame[..., 0]).save(tmp_path / f"x_{t:05d}.png")
        Image.fromarray(frame[..., 1]).save(tmp_path / f"y_{t:05d}.png")
    out = read_flow_frames(tmp_path, np.array(case["frame_inds"]), "{}_{:05d}.png")
    assert out.dtype == np.uint8 and out.shape[-1] == 2
    np.testing.assert_array_equal(out, np.array(case["imgs"], dtype=np.uint8))


def test_read_flow_frames_decodes_jpegs_as_mmaction2(tmp_path):
    case = FIXTURE["decode_jpeg"]
    for name, data in case["files"].items():
        (tmp_path / name).write_bytes(base64.b64decode(data))
    out = read_flow_frames(tmp_path, np.array(case["frame_inds"]), case["filename_tmpl"])
    np.testing.assert_array_equal(out, np.array(case["imgs"], dtype=np.uint8))
    small = read_flow_frames(tmp_path, np.array([1]), case["filename_tmpl"], short_side=8)
    assert small.shape == (1, 8, 12, 2)


def test_read_flow_frames_errors_name_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "x_00001.jpg")
    with pytest.raises(VideoDecodeError, match="y_00001.jpg"):
        read_flow_frames(tmp_path, np.array([1]))
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "y_00001.jpg")
    with pytest.raises(VideoDecodeError, match=r"y_00001.jpg.*\(5, 4\)"):
        read_flow_frames(tmp_path, np.array([1]))
    with pytest.raises(ValueError, match=r"filename_tmpl 'img_\{:05\}.jpg'.*direction"):
        read_flow_frames(tmp_path, np.array([1]), "img_{:05}.jpg")


# ----------------------------------------------------------------------------------------- stacking


@pytest.mark.parametrize("case", FIXTURE["format"], ids=lambda c: f"{c['num_crops']}x{c['num_clips']}x{c['clip_len']}")
def test_stack_flow_matches_formatshape_nchw_flow(case):
    frames = torch.tensor(case["frames"], dtype=torch.uint8)  # (crops * clips * clip_len, H, W, 2)
    expected = np.array(case["out"], dtype=np.uint8)  # (crops * clips, 2 * clip_len, H, W)
    stacked = stack_flow(frames, case["clip_len"])  # (crops * clips, H, W, 2 * clip_len)
    np.testing.assert_array_equal(stacked.permute(0, 3, 1, 2).numpy(), expected)
    np.testing.assert_array_equal(stack_flow(frames.numpy(), case["clip_len"]), stacked.numpy())
    # vidlab's NCHW views (num_segments = num_clips stacks each), normalized with MMAction2's mean/std [128] * 2L
    t, c = case["num_clips"], 2 * case["clip_len"]
    views = stacked.reshape(-1, t, *stacked.shape[1:])  # (V, T, H, W, 2L)
    x = normalize_batch(views[None], mean=[128.0] * c, std=[128.0] * c)  # (1, V, 2L, T, H, W)
    for v in range(views.shape[0]):
        for s in range(t):
            np.testing.assert_array_equal((x[0, v, :, s] * 128 + 128).round().numpy(), expected[v * t + s])


def test_stack_flow_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., N, H, W, 2\)"):
        stack_flow(torch.zeros(6, 4, 4, 3, dtype=torch.uint8), 3)
    with pytest.raises(ValueError, match="dividing the 6 flow frames"):
        stack_flow(torch.zeros(6, 4, 4, 2, dtype=torch.uint8), 4)


# ----------------------------------------------------------------------------------------- flipping


def test_flip_flow_matches_mmaction2_flip_on_its_flow_layout():
    case = FIXTURE["flip"]
    frames = np.array(case["frames"], dtype=np.uint8)
    expected = np.array(case["interleaved_layout"], dtype=np.uint8)
    np.testing.assert_array_equal(flip_flow(torch.from_numpy(frames)).numpy(), expected)
    np.testing.assert_array_equal(flip_flow(frames), expected)
    np.testing.assert_array_equal(flip_flow(flip_flow(frames)), frames)


def test_mmaction2_1_2_0_flip_inverts_whole_even_frames():
    """What the fixture shows MMAction2 1.2.0 doing on its own stacked frames (the deviation flip_flow avoids)."""
    case = FIXTURE["flip"]
    frames = np.array(case["frames"], dtype=np.uint8)
    mirrored = frames[:, :, ::-1]
    buggy = np.where(np.arange(len(frames))[:, None, None, None] % 2 == 0, 255 - mirrored, mirrored)
    np.testing.assert_array_equal(np.array(case["stacked_layout_1_2_0"], dtype=np.uint8), buggy)
    assert not np.array_equal(flip_flow(frames), buggy)


def test_flip_flow_needs_uint8_pairs():
    with pytest.raises(ValueError, match="uint8"):
        flip_flow(torch.zeros(2, 4, 4, 2))
    with pytest.raises(ValueError, match="uint8"):
        flip_flow(torch.zeros(2, 4, 4, 3, dtype=torch.uint8))


# ----------------------------------------------------------------------------------------- extraction


def test_missing_opencv_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        extract_flow(tmp_path / "v.mp4", tmp_path / "flow")
    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(__version__="0.0"))  # an OpenCV without contrib
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        extract_flow(tmp_path / "v.mp4", tmp_path / "flow", method="tvl1")
    assert not list(tmp_path.iterdir())


def write_square_video(path: Path, num_frames: int = 8, speed: int = 2, size: tuple[int, int] = (96, 64)) -> Path:
    """A white 20 x 20 square moving right ``speed`` px per frame on gray, near-lossless H.264."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "10", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(num_frames):
            img = np.full((h, w, 3), 128, np.uint8)
            img[22:42, 10 + speed * t : 30 + speed * t] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def square_video(tmp_path_factory) -> Path:
    return write_square_video(tmp_path_factory.mktemp("flowvid") / "square.mp4")


def test_farneback_flow_of_a_moving_square(square_video, tmp_path):
    pytest.importorskip("cv2")
    out = tmp_path / "flow" / "square"
    assert extract_flow(square_video, out) == 7
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == [f"{d}_{i:05d}.jpg" for d in "xy" for i in range(1, 8)]
    assert [p.name for p in out.parent.iterdir()] == ["square"]  # no temporary folder left
    flow = dequantize_flow(read_flow_frames(out, np.arange(1, 8)))  # (7, H, W, 2) pixels
    for i in range(7):  # flow i + 1: frame i -> i + 1; the square covers x in [10 + 2i, 30 + 2i)
        square = flow[i, 22:42, 10 + 2 * i : 30 + 2 * i]
        assert abs(square[..., 0].mean() - 2.0) < 0.25 and abs(square[..., 1].mean()) < 0.15
        assert np.abs(flow[i, :, 60:]).max() < 0.2  # the static background: about zero (one step is 0.157)


def test_tvl1_flow_of_a_moving_square(square_video, tmp_path):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "optflow"):
        pytest.skip("TV-L1 needs opencv-contrib-python-headless (cv2.optflow)")
    out = tmp_path / "square"
    assert extract_flow(square_video, out, method="tvl1") == 7
    flow = dequantize_flow(read_flow_frames(out, np.arange(1, 8)))
    for i in range(7):
        square = flow[i, 22:42, 10 + 2 * i : 30 + 2 * i]
        assert abs(square[..., 0].mean() - 2.0) < 0.4 and abs(square[..., 1].mean()) < 0.15


def test_extract_flow_skips_finished_folders_and_redoes_other_settings(square_video, tmp_path):
    pytest.importorskip("cv2")
    out = tmp_path / "square"
    extract_flow(square_video, out, short_side=32)
    first = (out / "x_00001.jpg").stat().st_mtime_ns
    os.utime(out / "x_00001.jpg", ns=(1, 1))
    assert extract_flow(square_video, out, short_side=32) == 7
    assert (out / "x_00001.jpg").stat().st_mtime_ns == 1  # untouched
    assert extract_flow(square_video, out, short_side=32, bound=10.0) == 7  # other settings: re-extracted
    assert (out / "x_00001.jpg").stat().st_mtime_ns >= first
    assert read_flow_frames(out, np.array([1])).shape == (1, 32, 48, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["square"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    with pytest.raises(FileExistsError, match="mine"):
        extract_flow(square_video, foreign)


def test_extract_flow_needs_two_frames(tmp_path):
    pytest.importorskip("cv2")
    video = write_square_video(tmp_path / "one.mp4", num_frames=1)
    with pytest.raises(VideoDecodeError, match="at least 2 frames"):
        extract_flow(video, tmp_path / "flow")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4"]


def test_extract_flow_list_to_tsn_flow_input(square_video, tmp_path):
    """A SynthActions-style list -> flow folders + rawframe list -> vidlab's NCHW_Flow input -> TSN logits."""
    pytest.importorskip("cv2")
    from vidlab import create_model

    root = tmp_path / "data"
    for rel in ("videos/a/v0.mp4", "videos/b/v1.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(square_video, root / rel)
    (root / "train.txt").write_text("videos/a/v0.mp4 3\nvideos/b/v1.mp4 1\n")
    out_list = extract_flow_list(root / "train.txt", root, tmp_path / "flow", progress=False)
    assert out_list == tmp_path / "flow" / "train_flow.txt"
    assert out_list.read_text() == "videos/a/v0 7 3\nvideos/b/v1 7 1\n"
    items = parse_rawframe_list(out_list, tmp_path / "flow")
    clip_len, num_clips = 3, 2
    indices = SampleFrames(clip_len, 1, num_clips, test_mode=True)(items[0].total_frames, np.random.default_rng(0))
    frames = torch.from_numpy(read_flow_frames(items[0].path, indices + 1))  # start_index 1: (6, H, W, 2)
    frames = Resize((32, 32), keep_ratio=False)({"imgs": frames})["imgs"]
    frames = flip_flow(frames)
    views = stack_flow(frames, clip_len).reshape(-1, num_clips, 32, 32, 2 * clip_len)  # (V, T, H, W, 2L)
    x = normalize_batch(views[None], mean=[128.0] * 2 * clip_len, std=[128.0] * 2 * clip_len)
    model = create_model("tsn_r18", num_classes=12, in_channels=2 * clip_len).eval()
    with torch.no_grad():
        logits = model.forward_views(x)
    assert x.shape == (1, 1, 6, 2, 32, 32) and logits.shape == (1, 12) and torch.isfinite(logits).all()
