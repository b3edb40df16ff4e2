"""Config -> objects. Only these helpers (and the CLI) read Config; everything they build takes plain args."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vidlab.config import Config, ConfigError
from vidlab.data import sampling
from vidlab.data.datasets import (
    VideoDataset,
    parse_kinetics_csv,
    parse_rawframe_list,
    parse_video_list,
    read_label_map,
)
from vidlab.data.transforms import build_pipeline

SAMPLERS = {
    "SampleFrames": sampling.SampleFrames,
    "UniformSample": sampling.UniformSample,
    "DenseSampleFrames": sampling.DenseSampleFrames,
}


def data_path(cfg: Config, name: str | None) -> Path | None:
    """A data file named in the config: absolute, relative to ``data.root``, or else relative to the cwd."""
    if name is None:
        return None
    p = Path(name)
    if p.is_absolute():
        return p
    under_root = Path(cfg.data.root) / p
    return p if not under_root.exists() and p.exists() else under_root


def build_sampler(spec: dict, key: str):
    spec = dict(spec)
    kind = spec.pop("type", "SampleFrames")
    if kind not in SAMPLERS:
        raise ConfigError(f"{key}.type: unknown sampler {kind!r}; choose one of {sorted(SAMPLERS)}")
    try:
        return SAMPLERS[kind](**spec)
    except TypeError as e:
        raise ConfigError(f"{key}: {e}") from e


def load_class_names(cfg: Config) -> list[str] | None:
    path = data_path(cfg, cfg.data.label_map)
    return read_label_map(path) if path is not None and path.is_file() else None


def _flip_map(cfg: Config) -> dict[int, int] | None:
    path = data_path(cfg, cfg.data.flip_label_map)
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"data.flip_label_map: file not found: {path}")
    return {int(k): int(v) for k, v in json.loads(path.read_text()).items()}


def _pipeline(cfg: Config, spec: list, key: str):
    spec = [dict(t) for t in spec]
    flip_map = _flip_map(cfg)
    for t in spec:
        if t.get("type") == "Flip" and flip_map is not None and "flip_label_map" not in t:
            t["flip_label_map"] = flip_map
    try:
        return build_pipeline(spec)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key}: {e}") from e


def build_dataset(cfg: Config, split: str, items: list | None = None) -> VideoDataset:
    """The dataset of ``split`` (train | val | test) as the config describes it.

    ``items`` replaces the annotation file (e.g. one video for ``vidlab predict``).
    """
    d = cfg.data
    ann = data_path(cfg, {"train": d.train_list, "val": d.val_list, "test": d.test_list}[split])
    explicit = items is not None
    if explicit:
        pass
    elif d.format == "video":
        items = parse_video_list(ann, d.root, d.multi_label, cfg.model.num_classes)
    elif d.format == "rawframes":
        items = parse_rawframe_list(ann, d.root, d.multi_label, cfg.model.num_classes)
    else:
        items = parse_kinetics_csv(ann, d.root, load_class_names(cfg))
    if split == "train":
        sampler = build_sampler(d.train_sampler, "data.train_sampler")
        pipeline = _pipeline(cfg, d.train_pipeline, "data.train_pipeline")
    elif split == "val" or d.test_sampler is None and d.test_pipeline is None:
        sampler = build_sampler(d.val_sampler, "data.val_sampler")
        pipeline = _pipeline(cfg, d.val_pipeline, "data.val_pipeline")
    else:
        sampler = build_sampler(d.test_sampler or d.val_sampler, "data.test_sampler")
        pipeline = _pipeline(cfg, d.test_pipeline or d.val_pipeline, "data.test_pipeline")
    return VideoDataset(
        items,
        sampler,
        pipeline,
        cfg.model.num_classes,
        fmt="rawframes" if d.format == "rawframes" and not explicit else "video",
        multi_label=d.multi_label,
        input_format=d.input_format,
        num_segments=d.num_segments,
        on_error=d.on_error,
        short_side=d.short_side,
        backend=d.backend,
        filename_tmpl=d.filename_tmpl,
        start_index=d.start_index,
        seed=cfg.train.seed,
    )


def build_model(cfg: Config, checkpoint: str | Path | None = None) -> torch.nn.Module:
    """The configured model. Families that fix the clip length at build time (TIN, TANet, TRN) are built for
    ``data.num_segments`` when the data is frame input (``data.input_format: NCHW``) and ``model.kwargs`` does
    not set it, so the model and the data agree on T.

    ``checkpoint``: a vidlab checkpoint the model will be loaded from; the builder arguments recorded in its
    ``meta.kwargs`` (``vidlab convert`` writes them, e.g. ``lateral_norm`` for a PyTorchVideo SlowFast) are used
    too, and one that contradicts ``model.kwargs`` is a config error naming both."""
    from vidlab.models import create_model

    kwargs = dict(cfg.model.kwargs)
    for key, value in checkpoint_kwargs(checkpoint).items():
        if key == "num_segments":  # the data decides T; a checkpoint of another length fails to load, with a hint
            continue
        if key in kwargs and kwargs[key] != value:
            raise ConfigError(
                f"model.kwargs.{key}={kwargs[key]!r} but checkpoint {checkpoint} was converted for {key}={value!r} "
                f"(its meta.kwargs): the weights belong to that network; drop or change model.kwargs.{key}"
            )
        kwargs[key] = value
    try:
        with torch.device("meta"):  # a free probe of the clip length the builder fixes, if any
            fixed = getattr(
                create_model(cfg.model.name, num_classes=cfg.model.num_classes, **kwargs), "num_segments", None
            )
        if cfg.data.input_format == "NCHW" and fixed is not None and fixed != cfg.data.num_segments:
            if "num_segments" in kwargs:
                raise ConfigError(
                    f"model.kwargs.num_segments={fixed} but data.num_segments={cfg.data.num_segments}: the model "
                    "would see clips of another length than it was built for; set one of them to match"
                )
            kwargs["num_segments"] = cfg.data.num_segments
        return create_model(cfg.model.name, num_classes=cfg.model.num_classes, **kwargs)
    except TypeError as e:  # an argument the builder does not take
        raise ConfigError(f"model.kwargs: {e}") from e


def checkpoint_kwargs(path: str | Path | None) -> dict:
    """``meta.kwargs`` of a vidlab checkpoint file (builder arguments recorded by ``vidlab convert``), or ``{}``
    (no path, another toolbox's file, or nothing recorded). Unreadable files are left to the loader to report."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, or not loadable: load_checkpoint reports it properly
        return {}
    meta = obj.get("meta") if isinstance(obj, dict) else None
    kwargs = meta.get("kwargs") if isinstance(meta, dict) else None
    return dict(kwargs) if isinstance(kwargs, dict) else {}


def direction_pairs(cfg: Config) -> list[int]:
    """Class ids that belong to temporally paired classes (SynthActions' pairs.json), or []."""
    path = data_path(cfg, cfg.data.pairs)
    if path is None or not path.is_file():
        return []
    pairs = json.loads(path.read_text()).get("direction_pairs", [])
    return sorted({int(c) for pair in pairs for c in pair})
