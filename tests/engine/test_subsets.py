"""SEVERE's data subsets: per-class sample sizes (``data.train_samples``) and label subsets (``data.label_subset``)."""

from __future__ import annotations

import math

import pytest

from vidlab.config import ConfigError, load_config
from vidlab.data.datasets import VideoItem
from vidlab.engine.builders import keep_labels, per_class_subset


def _items(labels):
    return [VideoItem(f"v{i}.mp4", lab) for i, lab in enumerate(labels)]


def test_per_class_subset_draws_ceil_n_over_classes_per_class():
    items = _items([k % 3 for k in range(30)] + [3])  # classes 0-2 with 10 videos each, class 3 with one
    kept = per_class_subset(items, 10, seed=0)
    per_class = math.ceil(10 / 4)
    counts = {lab: sum(it.label == lab for it in kept) for lab in range(4)}
    assert counts == {0: per_class, 1: per_class, 2: per_class, 3: 1}
    assert [it.path for it in kept] == sorted((it.path for it in kept), key=lambda p: int(p[1:-4]))  # list order
    assert [it.path for it in per_class_subset(items, 10, seed=0)] == [it.path for it in kept]  # fixed seed
    assert [it.path for it in per_class_subset(items, 10, seed=1)] != [it.path for it in kept]


def test_keep_labels_renumbers_in_listed_order():
    kept = keep_labels(_items([5, 6, 7, 16, 17, 6]), [16, 6], "train.txt")
    assert [(it.path, it.label) for it in kept] == [("v1.mp4", 1), ("v3.mp4", 0), ("v5.mp4", 1)]
    multi = keep_labels([VideoItem("m.mp4", [1, 6, 16]), VideoItem("n.mp4", [2])], [16, 6], "l.txt")
    assert [(it.path, it.label) for it in multi] == [("m.mp4", [1, 0])]
    with pytest.raises(ConfigError, match="no item of l.txt"):
        keep_labels(_items([1, 2]), [9], "l.txt")


def test_subset_options_are_checked(tmp_path):
    cfg = load_config(None, ["data.label_subset=[6, 7, 8]", "model.num_classes=3", "data.train_samples=1000"])
    assert cfg.data.label_subset == [6, 7, 8] and cfg.data.train_samples == 1000
    with pytest.raises(ConfigError, match="keeps 2 classes but model.num_classes is 12"):
        load_config(None, ["data.label_subset=[1, 2]"])
    with pytest.raises(ConfigError, match="distinct non-negative"):
        load_config(None, ["data.label_subset=[1, 1]", "model.num_classes=2"])
    with pytest.raises(ConfigError, match="train_samples must be >= 1"):
        load_config(None, ["data.train_samples=0"])


def test_checkpoint_kwargs_compare_as_values(tmp_path):
    """A converted checkpoint's tuples (meta.kwargs) and the same values written in YAML are no conflict; the kwargs
    a model was built with are what a fine-tuned checkpoint records."""
    import torch

    from vidlab.engine.builders import checkpoint_meta, model_kwargs
    from vidlab.tasks import build_task

    ckpt = tmp_path / "tclr.pth"
    kwargs = {"temporal_strides": (1, 2, 2, 1), "temporal_dilations": (1, 1, 1, 2)}
    torch.save({"state_dict": {}, "meta": {"model": "r2plus1d_r18", "kwargs": kwargs}}, ckpt)
    cfg = load_config(None, ["model.name=r2plus1d_r18", "model.kwargs={temporal_strides: [1, 2, 2, 1]}"])
    assert model_kwargs(cfg, ckpt) == kwargs  # the checkpoint's values
    meta = checkpoint_meta(cfg, build_task("recognition"), torch.nn.Linear(1, 1), ckpt)
    assert meta["kwargs"]["temporal_dilations"] == (1, 1, 1, 2)
    with pytest.raises(ConfigError, match=r"temporal_strides=\[1, 2, 2, 2\] but checkpoint"):
        model_kwargs(
            load_config(None, ["model.name=r2plus1d_r18", "model.kwargs={temporal_strides: [1, 2, 2, 2]}"]), ckpt
        )
