"""Joint training of several sources (OmniSource): per-source batch shares, weighted losses, per-source logs, and
the errors of sources that cannot share a forward."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vidlab.config import ConfigError, load_config
from vidlab.data.decode import VideoReader
from vidlab.engine.builders import source_configs
from vidlab.engine.sources import source_loss
from vidlab.tasks.recognition import RecognitionTask


@pytest.fixture(scope="module")
def image_list(synth_tiny, tmp_path_factory):
    """The middle frame of 12 SynthActions videos as JPEG images, listed as `path label` (web images stand-in)."""
    root = tmp_path_factory.mktemp("images")
    lines = []
    for line in (synth_tiny / "train.txt").read_text().splitlines()[:12]:
        rel, label = line.split()
        with VideoReader(synth_tiny / rel) as reader:
            frame = reader.read([reader.num_frames // 2])[0]
        name = f"{rel.split('/')[-1][:-4]}.jpg"
        Image.fromarray(frame).save(root / name)
        lines.append(f"{name} {label}")
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    return root


def _overrides(image_root, batch=2, weight=0.5):
    source = {"name": "web_images", "root": str(image_root), "format": "image", "train_list": "images.txt",
              "batch_size": batch, "loss_weight": weight}  # fmt: skip
    return [f"data.sources=[{json.dumps(source)}]", "data.source_name=clips", "data.batch_size=4"]


def test_each_step_takes_every_source_share(tiny_recipe, image_list, synth_tiny):
    from vidlab.engine.distributed import DistInfo
    from vidlab.engine.train import _loaders

    cfg = load_config(tiny_recipe, _overrides(image_list, batch=3))
    train_loader, _ = _loaders(cfg, DistInfo())
    main_batches = len(list((synth_tiny / "train.txt").read_text().splitlines())) // 4
    assert len(train_loader) == min(main_batches, 12 // 3)  # an epoch ends with the shortest source
    seen = []
    for batch in train_loader:
        assert batch["source"].tolist() == [0] * 4 + [1] * 3 and batch["imgs"].shape[0] == 7
        assert batch["source_names"] == ["clips", "web_images"] and batch["source_weights"] == [1.0, 0.5]
        seen += [m["path"] for m, s in zip(batch["meta"], batch["source"]) if s == 1]
    assert len(set(seen)) == len(seen) == 12  # every image once per epoch
    image = next(iter(train_loader))["imgs"][4]  # a still image: its one frame repeated over the clip
    assert all(torch.equal(image[0, t], image[0, 0]) for t in range(1, image.shape[1]))


def test_loss_is_the_weighted_sum_of_the_sources():
    torch.manual_seed(0)
    outputs, targets = torch.randn(10, 5), torch.randint(0, 5, (10,))
    batch = {"source": torch.tensor([0, 0, 0, 1, 1]), "source_names": ["a", "b"], "source_weights": [1.0, 0.25]}
    task = RecognitionTask()
    total, stats = source_loss(task, outputs, targets, [], batch, views=2)  # 2 training views per sample
    la = torch.nn.functional.cross_entropy(outputs[:6], targets[:6])
    lb = torch.nn.functional.cross_entropy(outputs[6:], targets[6:])
    torch.testing.assert_close(total, la + 0.25 * lb)
    assert stats["a"][0] == pytest.approx(la.item()) and stats["b"][0] == pytest.approx(lb.item())
    assert stats["b"][1] == pytest.approx((outputs[6:].argmax(1) == targets[6:]).float().mean().item())


def test_joint_training_logs_each_source(tiny_recipe, image_list, tmp_path, cli_inprocess):
    work = tmp_path / "run"
    cli_inprocess("train", str(tiny_recipe), *_overrides(image_list), f"work_dir={work}")
    record = json.loads((work / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("train_clips_loss", "train_clips_top1", "train_web_images_loss", "train_web_images_top1"):
        assert np.isfinite(record[key]), key


def test_bad_sources_are_refused(tiny_recipe, image_list):
    with pytest.raises(ConfigError, match="source names must differ"):
        load_config(tiny_recipe, ["data.sources=[{name: videos, train_list: a.txt}]"])
    with pytest.raises(ConfigError, match=r"data.sources\[0\]: unknown key"):
        load_config(tiny_recipe, ["data.sources=[{name: b, train_list: a.txt, weight: 2}]"])
    [sub] = source_configs(load_config(tiny_recipe, _overrides(image_list)))
    assert (sub.data.format, sub.data.batch_size, sub.data.loss_weight) == ("image", 2, 0.5)
