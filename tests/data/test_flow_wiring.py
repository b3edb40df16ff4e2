"""Flow through VideoDataset, Flip and the config (needs the wiring edits in datasets.py, transforms.py, config.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidlab.config import ConfigError, check_flow_channels, load_config
from vidlab.data.datasets import VideoDataset, VideoItem
from vidlab.data.flow import flip_flow, read_flow_frames, stack_flow
from vidlab.data.sampling import SampleFrames
from vidlab.data.transforms import Compose, Flip


def write_flow_folder(folder: Path, n: int = 8, h: int = 6, w: int = 10) -> np.ndarray:
    """x/y PNGs whose pixels carry (t, y, x, d) in their values; returns the (n, h, w, 2) frames."""
    folder.mkdir(parents=True, exist_ok=True)
    t, y, x, d = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(2), indexing="ij")
    frames = ((t * 31 + y * 7 + x * 3 + d * 101) % 256).astype(np.uint8)
    for i, frame in enumerate(frames, start=1):
        Image.fromarray(frame[..., 0]).save(folder / f"x_{i:05d}.png")
        Image.fromarray(frame[..., 1]).save(folder / f"y_{i:05d}.png")
    return frames


def test_dataset_reads_flips_and_stacks_flow(tmp_path):
    frames = write_flow_folder(tmp_path / "v0")
    sampler = SampleFrames(clip_len=3, frame_interval=1, num_clips=2, test_mode=True)
    ds = VideoDataset(
        [VideoItem(str(tmp_path / "v0"), [1], total_frames=8)], sampler, Compose([Flip(flip_ratio=1.0)]), 3,
        fmt="rawframes", modality="Flow", input_format="NCHW_Flow", num_segments=2, filename_tmpl="{}_{:05d}.png",
    )  # fmt: skip
    out = ds[0]
    inds = np.array(out["meta"]["frame_inds"])
    expected = stack_flow(flip_flow(frames[inds]), 3).reshape(1, 2, 6, 10, 6)  # (V, T, H, W, 2 * clip_len)
    assert out["imgs"].dtype == torch.uint8 and tuple(out["imgs"].shape) == (1, 2, 6, 10, 6)
    np.testing.assert_array_equal(out["imgs"].numpy(), expected)
    # start_index 1: the sampler's position i is file i + 1
    np.testing.assert_array_equal(read_flow_frames(tmp_path / "v0", inds + 1, "{}_{:05d}.png"), frames[inds])


def test_dataset_flow_errors(tmp_path):
    sampler = SampleFrames(clip_len=2, frame_interval=1, num_clips=1)
    item = [VideoItem(str(tmp_path), [0], total_frames=4)]
    with pytest.raises(ValueError, match="fmt='rawframes'"):
        VideoDataset(item, sampler, Compose([]), 2, modality="Flow", filename_tmpl="{}_{:05d}.jpg")
    with pytest.raises(ValueError, match="needs modality='Flow'"):
        VideoDataset(item, sampler, Compose([]), 2, fmt="rawframes", input_format="NCHW_Flow")
    with pytest.raises(ValueError, match="filename_tmpl"):
        VideoDataset(item, sampler, Compose([]), 2, fmt="rawframes", modality="Flow")


def test_flip_transform_on_flow():
    imgs = torch.randint(0, 256, (4, 5, 6, 2), dtype=torch.uint8)
    out = Flip(flip_ratio=1.0)({"imgs": imgs, "modality": "Flow", "rng": np.random.default_rng(0)})
    assert torch.equal(out["imgs"], flip_flow(imgs)) and out["flip"]
    with pytest.raises(ValueError, match="horizontally only"):
        Flip(flip_ratio=1.0, direction="vertical")({"imgs": imgs, "modality": "Flow"})
    rgb = Flip(flip_ratio=1.0)({"imgs": imgs, "rng": np.random.default_rng(0)})["imgs"]
    assert torch.equal(rgb, imgs.flip(2))


FLOW_RECIPE = """
data:
  format: rawframes
  modality: Flow
  filename_tmpl: '{{}}_{{:05d}}.jpg'
  input_format: NCHW_Flow
  num_segments: 3
  train_sampler: {{type: SampleFrames, clip_len: 5, frame_interval: 1, num_clips: 3}}
  val_sampler: {{type: SampleFrames, clip_len: 5, frame_interval: 1, num_clips: 3, test_mode: true}}
  mean: {mean}
  std: {mean}
model:
  name: tsn_r18
  kwargs: {kwargs}
"""


def test_flow_config_checks(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW_RECIPE.format(mean=[128] * 10, kwargs={"in_channels": 10}))
    data = load_config(path).data
    assert data.modality == "Flow" and data.input_format == "NCHW_Flow"
    check_flow_channels(data, 5, "train")
    with pytest.raises(ConfigError, match=r"data.mean has 10 values but the val flow clips have 8 channels"):
        check_flow_channels(data, 4, "val")
    path.write_text(FLOW_RECIPE.format(mean=[128] * 10, kwargs={}))
    with pytest.raises(ConfigError, match=r"model.kwargs.in_channels is None .*in_channels: 10"):
        load_config(path)


@pytest.mark.parametrize(
    "override, match",
    [
        ("data.format=video", "data.format=rawframes"),
        ("data.filename_tmpl=img_{:05}.jpg", "filename_tmpl names RGB frames"),
        ("data.modality=RGB", "NCHW_Flow stacks flow frames"),
    ],
)
def test_flow_config_errors_name_the_key(tmp_path, override, match):
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW_RECIPE.format(mean=[128] * 10, kwargs={"in_channels": 10}))
    with pytest.raises(ConfigError, match=match):
        load_config(path, [override])


def test_colour_transforms_refuse_flow():
    from vidlab.data.transforms import ColorJitter, RandAugment

    results = {"imgs": torch.zeros(2, 8, 8, 2, dtype=torch.uint8), "modality": "Flow"}
    for t in (ColorJitter(0.4, 0.4, 0.4, 0.1), RandAugment()):
        with pytest.raises(ValueError, match="remove it from the pipeline of flow frames"):
            t(dict(results))


def test_3d_flow_clips_feed_a_two_channel_3d_network(tmp_path):
    """MMAction2's 3D flow recipe (SlowOnly, in_channels=2): NCTHW clips of (x, y) flow frames, mean/std of 2."""
    from vidlab.data.batch_transforms import normalize_batch
    from vidlab.models import create_model

    frames = write_flow_folder(tmp_path / "v0", n=8, h=32, w=32)
    sampler = SampleFrames(clip_len=4, frame_interval=2, num_clips=1, test_mode=True)
    ds = VideoDataset([VideoItem(str(tmp_path / "v0"), [0], total_frames=8)], sampler, Compose([]), 3,
                      fmt="rawframes", modality="Flow", filename_tmpl="{}_{:05d}.png")  # fmt: skip
    out = ds[0]
    assert tuple(out["imgs"].shape) == (1, 4, 32, 32, 2)
    np.testing.assert_array_equal(out["imgs"][0].numpy(), frames[np.array(out["meta"]["frame_inds"])])
    x = normalize_batch(out["imgs"][None], [128, 128], [128, 128])  # (1, V, 2, T, H, W)
    model = create_model("slowonly_r50_8x8", num_classes=3, in_channels=2, depth=18).eval()
    with torch.no_grad():
        assert model.forward_views(x).shape == (1, 3)
