"""Config -> objects. Only these helpers (and the CLI) read Config; everything they build takes plain args."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from vidlab.config import Config, ConfigError
from vidlab.data import sampling
from vidlab.data.datasets import (
    FeatureDataset,
    VideoDataset,
    check_inside_root,
    parse_kinetics_csv,
    parse_rawframe_list,
    parse_video_list,
    read_label_map,
)
from vidlab.data.transforms import build_pipeline

LINEAR_PROBE = "linear_probe"  # the features classifier (not a registered video model)

SAMPLERS = {
    "SampleFrames": sampling.SampleFrames,
    "UniformSample": sampling.UniformSample,
    "DenseSampleFrames": sampling.DenseSampleFrames,
    "SparseSample": sampling.SparseSample,
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


def annotation_file(cfg: Config, split: str) -> Path:
    """The annotation list / CSV of ``split`` (train | val | test)."""
    d = cfg.data
    return data_path(cfg, {"train": d.train_list, "val": d.val_list, "test": d.test_list}[split])


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
    if path is None or not path.is_file():
        return None
    if cfg.task == "detection":
        return [name for _, name in detection_classes(cfg)]
    names = read_label_map(path)
    if cfg.data.label_subset is not None:  # the kept classes, renumbered
        return [names[k] if k < len(names) else str(k) for k in cfg.data.label_subset]
    return names


def detection_classes(cfg: Config) -> list[tuple[int, str]]:
    """``(action id, name)`` of the detection label map (pbtxt), in the order of the model's outputs."""
    from vidlab.metrics.ava import read_labelmap

    path = data_path(cfg, cfg.data.label_map)
    if path is None or not path.is_file():
        raise ConfigError(f"data.label_map: the detection label map (pbtxt) is needed; not found: {path}")
    try:
        classes = read_labelmap(path)
    except ValueError as e:
        raise ConfigError(f"data.label_map: {e}") from e
    if len(classes) != cfg.model.num_classes:
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} but the label map {path} has {len(classes)} classes"
        )
    return classes


def _split_file(cfg: Config, split: str, kind: str) -> Path | None:
    """``detection.<split>_<kind>`` (excluded | proposals) under ``data.root``; test falls back to val."""
    det = cfg.detection
    name = getattr(det, f"{split}_{kind}")
    if name is None and split == "test":
        name = getattr(det, f"val_{kind}")
    return data_path(cfg, name)


def build_ava_dataset(cfg: Config, split: str):
    """The AVA-format keyframe dataset of ``split`` (``data.format: ava``; options in ``detection``)."""
    from vidlab.data.ava import Keyframe, load_proposals, read_ava_annotations, read_excluded

    det = cfg.detection
    ann = annotation_file(cfg, split)
    class_ids = [i for i, _ in detection_classes(cfg)]
    gt = read_ava_annotations(ann, class_ids)
    excluded = read_excluded(_split_file(cfg, split, "excluded"))
    props_path = _split_file(cfg, split, "proposals")
    proposals = None
    if props_path is not None and (split != "train" or det.train_with_proposals):
        proposals = load_proposals(props_path, det.proposal_score_thr, det.max_proposals, det.keyframe_unit)
    keys = set(gt)
    if split != "train" and proposals is not None and det.test_boxes == "proposals":
        keys |= set(proposals)  # keyframes without ground truth are predicted too (false positives count there)
    if det.valid_stamps is not None:  # PySlowFast's valid-frame filter (MicroG-4M has none)
        if len(det.valid_stamps) != 2:
            raise ConfigError(f"detection.valid_stamps must be [first, last], got {det.valid_stamps!r}")
        first, last = det.valid_stamps
        keys = {k for k in keys if first <= k[1] <= last}
    keyframes = [gt.get(k, Keyframe(*k)) for k in sorted(keys - excluded)]
    if not keyframes:
        raise ConfigError(f"{ann}: no keyframes left (after the label-map whitelist and excluded timestamps)")
    try:
        return _ava_dataset(cfg, split, keyframes, proposals)
    except ValueError as e:  # an option AVADataset refuses
        raise ConfigError(f"detection: {e}") from e


def _ava_dataset(cfg: Config, split: str, keyframes: list, proposals):
    from vidlab.data.ava import AVADataset

    d, det = cfg.data, cfg.detection
    train = split == "train"
    spec = d.train_pipeline if train else (d.test_pipeline if split == "test" and d.test_pipeline else d.val_pipeline)
    tmpl = det.frame_dir_tmpl if det.source == "frames" else det.video_tmpl
    root = Path(d.root)
    return AVADataset(
        keyframes,
        cfg.model.num_classes,
        _pipeline(cfg, spec, f"data.{'train' if train else 'val'}_pipeline"),
        lambda video: str(root / tmpl.format(video=video)),
        clip_len=det.clip_len,
        frame_interval=det.frame_interval,
        convention=det.center,
        train=train,
        proposals=proposals,
        test_boxes=det.test_boxes,
        train_proposals=det.train_with_proposals,
        pos_iou=det.pos_iou,
        neg_iou=det.neg_iou,
        keyframe_unit=det.keyframe_unit,
        timestamp_start=det.timestamp_start,
        fps=det.fps,
        frames=det.source == "frames",
        frame_tmpl=det.frame_tmpl,
        short_side=d.short_side,
        backend=d.backend,
        seed=cfg.train.seed,
    )


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


def subsample(items: list, fraction: float, seed: int = 0) -> list:
    """``fraction`` of ``items`` per target (class, class set or value), at least one each, drawn with ``seed``;
    the kept items stay in list order (training on 10% of the labels)."""
    return _draw_per_target(items, lambda n: max(1, round(fraction * n)), seed)


def _draw_per_target(items: list, how_many, seed: int) -> list:
    """``how_many(n)`` items of each target (a class, class set or value with n items), drawn with ``seed``, in
    list order."""
    import numpy as np

    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(repr(it.label), []).append(i)
    rng = np.random.default_rng(seed)
    keep = [j for key in sorted(groups) for j in rng.permutation(groups[key])[: how_many(len(groups[key]))].tolist()]
    return [items[i] for i in sorted(keep)]


def per_class_subset(items: list, total: int, seed: int = 0) -> list:
    """SEVERE's sample-size subsets: ``ceil(total / classes)`` items of each class (all of a smaller class), drawn
    with ``seed``; the kept items stay in list order."""
    per_class = -(-int(total) // len({repr(it.label) for it in items}))
    return _draw_per_target(items, lambda n: per_class, seed)


def keep_labels(items: list, labels: list[int], ann: str) -> list:
    """The items whose class is one of ``labels``, renumbered to its position there (FineGym's FX-S1 keeps labels
    6-16 as 0-10). Multi-label items keep the listed labels of theirs, and are dropped when none is listed."""
    index = {lab: k for k, lab in enumerate(labels)}
    out = []
    for it in items:
        labs = it.label if isinstance(it.label, list) else [it.label]
        kept = [index[lab] for lab in labs if lab in index]
        if kept:
            it.label = kept if isinstance(it.label, list) else kept[0]
            out.append(it)
    if not out:
        raise ConfigError(f"data.label_subset {labels}: no item of {ann} has one of these labels")
    return out


def target_type(cfg: Config) -> str:
    """What the list's targets are: ``regression`` values (counting's counts too), ``multi_label`` class sets or one
    ``class``."""
    if cfg.task in ("regression", "counting"):
        return "regression"
    return "multi_label" if cfg.data.multi_label else "class"


def _parse_items(cfg: Config, ann: Path, kind: str, num_classes: int | None) -> list:
    d = cfg.data
    if d.format in ("video", "features", "audio", "image"):
        return parse_video_list(ann, d.root, num_classes=num_classes, target_type=kind)
    if d.format in ("rawframes", "audio_feature"):  # MMAction2's audio lists: path total_frames label
        return parse_rawframe_list(ann, d.root, num_classes=num_classes, target_type=kind)
    if d.format == "videomamba_csv":
        from vidlab.data.longterm import parse_videomamba_csv

        return parse_videomamba_csv(ann, d.root, delimiter=d.csv_delimiter, num_classes=num_classes, target_type=kind)
    if d.format == "charades_csv":
        from vidlab.data.charades import parse_charades_csv

        return parse_charades_csv(ann, d.root, num_classes=cfg.model.num_classes)
    return parse_kinetics_csv(ann, d.root, load_class_names(cfg))


def _windowed(cfg: Config, items: list, split: str) -> list:
    """``data.windows``: each video becomes its trimmed windows (test: all of them, or VideoMamba's first)."""
    from vidlab.data.longterm import expand_windows

    w = cfg.data.windows
    keep = "all" if split == "train" else w.get("test", "all")
    return expand_windows(items, float(w["trimmed"]), float(w["time_stride"]), keep=keep, backend=cfg.data.backend)


def source_configs(cfg: Config) -> list[Config]:
    """A config per extra training source of ``data.sources`` (OmniSource-style joint training): the main config
    with that source's list, root, format, sampler, pipeline, batch size and loss weight (unset keys: the main
    source's). See :mod:`vidlab.engine.sources`."""
    out = []
    shared = {  # the main source's label files, wherever the source's own root is
        key: None if getattr(cfg.data, key) is None else str(data_path(cfg, getattr(cfg.data, key)))
        for key in ("label_map", "flip_label_map", "pairs")
    }
    for src in cfg.data.sources or []:
        data = dataclasses.replace(
            cfg.data,
            **shared,
            sources=None,
            windows=None,
            source_name=src["name"],
            root=src.get("root", cfg.data.root),
            format=src.get("format", "video"),
            train_list=src["train_list"],
            train_sampler=dict(src.get("train_sampler", cfg.data.train_sampler)),
            train_pipeline=list(src.get("train_pipeline", cfg.data.train_pipeline)),
            batch_size=int(src.get("batch_size", cfg.data.batch_size)),
            loss_weight=float(src.get("loss_weight", 1.0)),
            train_fraction=1.0,
            train_samples=None,
        )
        out.append(dataclasses.replace(cfg, data=data))
    return out


def _split_sampler(cfg: Config, split: str):
    """The sampler of ``split``: ``train_sampler``, ``val_sampler``, or ``test_sampler`` (``val_sampler`` if unset)."""
    d = cfg.data
    if split == "train":
        return build_sampler(d.train_sampler, "data.train_sampler")
    if split == "val" or d.test_sampler is None:
        return build_sampler(d.val_sampler, "data.val_sampler")
    return build_sampler(d.test_sampler, "data.test_sampler")


def _audio_dataset(cfg: Config, items: list, split: str, kind: str, from_video: bool):
    """``data.format: audio`` (the videos' sound) or ``audio_feature`` (MMAction2's ``.npy`` lists)."""
    from vidlab.data.audio_dataset import AudioDataset

    d = cfg.data
    source = "video" if from_video else "features"
    return AudioDataset(items, _split_sampler(cfg, split), cfg.model.num_classes, source=source,
                        fixed_length=d.audio_fixed_length, target_type=kind, on_error=d.on_error,
                        decode_timeout=d.decode_timeout, seed=cfg.train.seed)  # fmt: skip


def build_dataset(cfg: Config, split: str, items: list | None = None):
    """The dataset of ``split`` (train | val | test) as the config describes it.

    ``items`` replaces the annotation file (e.g. one video for ``vidlab predict``). ``data.format: features``
    reads the ``vidlab extract`` output in ``data.features_dir`` for the list's videos (linear probing).
    """
    d = cfg.data
    if d.format == "ava":
        if items is not None:
            raise ConfigError("data.format=ava reads keyframes from the annotation CSVs, not a list of videos")
        return build_ava_dataset(cfg, split)
    ann = annotation_file(cfg, split)
    kind = target_type(cfg)
    num_classes = None if d.label_subset is not None else cfg.model.num_classes  # labels checked after the subset
    explicit = items is not None
    if not explicit:
        items = _parse_items(cfg, ann, kind, num_classes)
        if not d.allow_outside_root:
            check_inside_root(items, d.root, ann)
    if d.label_subset is not None and not explicit and kind != "regression":
        items = keep_labels(items, list(d.label_subset), str(ann))
    if split == "train" and not explicit and d.train_fraction < 1:
        items = subsample(items, d.train_fraction, cfg.train.seed)
    if split == "train" and not explicit and d.train_samples is not None:
        items = per_class_subset(items, d.train_samples, d.subset_seed)
    if d.format == "features" and not explicit:
        if not d.features_dir:
            raise ConfigError("data.format=features needs data.features_dir (the `vidlab extract --out` folder)")
        try:
            return FeatureDataset(items, d.features_dir, cfg.model.num_classes, target_type=kind)
        except FileNotFoundError as e:
            raise ConfigError(str(e)) from e
    if d.windows is not None and not explicit:
        items = _windowed(cfg, items, split)
    if d.format in ("audio", "audio_feature"):  # a video given by path (predict): its own sound
        return _audio_dataset(cfg, items, split, kind, from_video=explicit or d.format == "audio")
    if split == "train":
        pipeline = _pipeline(cfg, d.train_pipeline, "data.train_pipeline")
    elif split == "val" or d.test_pipeline is None:
        pipeline = _pipeline(cfg, d.val_pipeline, "data.val_pipeline")
    else:
        pipeline = _pipeline(cfg, d.test_pipeline, "data.test_pipeline")
    sampler = _split_sampler(cfg, split)
    if d.modality == "Flow":
        from vidlab.config import check_flow_channels

        check_flow_channels(d, sampler.clip_len, split)
    return VideoDataset(
        items,
        sampler,
        pipeline,
        cfg.model.num_classes,
        fmt=d.format if d.format in ("rawframes", "image") and not explicit else "video",
        modality=d.modality,
        target_type=kind,
        input_format=d.input_format,
        num_segments=d.num_segments,
        on_error=d.on_error,
        decode_timeout=d.decode_timeout,
        short_side=d.short_side,
        backend=d.backend,
        filename_tmpl=d.filename_tmpl,
        start_index=d.start_index,
        seed=cfg.train.seed,
        repeated_aug=d.repeated_aug if split == "train" and not explicit else 1,
    )


def _plain(value):
    """Tuples as lists, recursively: a value from YAML and the same value from a checkpoint compare equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def model_kwargs(cfg: Config, checkpoint: str | Path | None = None) -> dict:
    """The builder arguments of the configured model: ``model.kwargs``, the builder arguments a checkpoint
    records in its ``meta.kwargs`` (``vidlab convert`` writes them, e.g. ``lateral_norm`` for a PyTorchVideo
    SlowFast; one that contradicts ``model.kwargs`` is a config error naming both), and, for families that fix the
    clip length at build time (TIN, TANet, TRN) fed frame input (``data.input_format: NCHW``), ``num_segments`` =
    ``data.num_segments`` unless ``model.kwargs`` sets it, so the model and the data agree on T."""
    from vidlab.models import create_model
    from vidlab.models._registry import meta_device

    kwargs = dict(cfg.model.kwargs)
    if cfg.model.name == LINEAR_PROBE:
        return {**checkpoint_kwargs(checkpoint), **kwargs}
    for key, value in checkpoint_kwargs(checkpoint, cfg.model.name).items():
        if key == "num_segments":  # the data decides T; a checkpoint of another length fails to load, with a hint
            continue
        if key in kwargs and _plain(kwargs[key]) != _plain(value):  # YAML lists vs a checkpoint's tuples
            raise ConfigError(
                f"model.kwargs.{key}={kwargs[key]!r} but checkpoint {checkpoint} was converted for {key}={value!r} "
                f"(its meta.kwargs): the weights belong to that network; drop or change model.kwargs.{key}"
            )
        kwargs[key] = value
    if cfg.task == "pretrain" and cfg.model.name.startswith("videomae_pretrain"):  # targets are pixels in [0, 1]
        kwargs.setdefault("mean", [m / 255 for m in cfg.data.mean])
        kwargs.setdefault("std", [s / 255 for s in cfg.data.std])
    try:
        with meta_device():  # a free probe of the clip length the builder fixes, if any
            fixed = getattr(create_model(cfg.model.name, num_classes=head_outputs(cfg), **kwargs), "num_segments", None)
    except TypeError as e:  # an argument the builder does not take
        raise ConfigError(f"model.kwargs: {e}") from e
    if cfg.data.input_format == "NCHW" and fixed is not None and fixed != cfg.data.num_segments:
        if "num_segments" in kwargs:
            raise ConfigError(
                f"model.kwargs.num_segments={fixed} but data.num_segments={cfg.data.num_segments}: the model "
                "would see clips of another length than it was built for; set one of them to match"
            )
        kwargs["num_segments"] = cfg.data.num_segments
    return kwargs


def head_outputs(cfg: Config) -> int:
    """Outputs of the model's classifier: ``model.num_classes``, or for ``task: counting`` the count head's
    ``3 x len(counting.anchors)`` (two logits and one offset per anchor)."""
    if cfg.task == "counting":
        from vidlab.tasks.counting import DEFAULT_ANCHORS

        return 3 * len(cfg.counting.anchors or DEFAULT_ANCHORS)
    return cfg.model.num_classes


def build_model(cfg: Config, checkpoint: str | Path | None = None) -> torch.nn.Module:
    """The configured model, built with :func:`model_kwargs` (``checkpoint``: a vidlab checkpoint the model will be
    loaded from, whose recorded builder arguments count too). ``linear_probe`` is the features classifier of
    ``data.format: features`` (``model.kwargs.in_features``: the features' channels)."""
    from vidlab.models import create_model

    if cfg.model.name == LINEAR_PROBE:
        from vidlab.models.linear_probe import LinearProbe

        kwargs = {**checkpoint_kwargs(checkpoint), **cfg.model.kwargs}
        if "in_features" not in kwargs:
            raise ConfigError("model.name=linear_probe needs model.kwargs.in_features (the features' channels)")
        try:
            return scale_head_init(LinearProbe(num_classes=head_outputs(cfg), **kwargs), cfg)
        except TypeError as e:
            raise ConfigError(f"model.kwargs: {e}") from e
    try:
        model = create_model(cfg.model.name, num_classes=head_outputs(cfg), **model_kwargs(cfg, checkpoint))
    except TypeError as e:  # an argument the builder does not take
        raise ConfigError(f"model.kwargs: {e}") from e
    if cfg.test.view_chunk is not None:
        model.view_chunk = int(cfg.test.view_chunk)
    if cfg.task == "pretrain" and cfg.distill.teacher:  # the model is the student of masked teacher distillation
        from vidlab.engine.distill_builder import build_distiller

        return build_distiller(cfg, scale_head_init(model, cfg))
    return scale_head_init(model, cfg)


def scale_head_init(model: torch.nn.Module, cfg: Config) -> torch.nn.Module:
    """``model`` with the weight and bias of its freshly initialised classifier multiplied by
    ``model.head_init_scale`` (VideoMAE's ``init_scale``; 1: unchanged): the linear (and convolution) layers under
    the model's ``classifier_prefixes`` (``head.``; the whole module for one that names none, a linear probe). A
    pretrained head of the same class count loaded afterwards replaces them, as in VideoMAE."""
    scale = cfg.model.head_init_scale
    if scale == 1.0:
        return model
    prefixes = tuple(getattr(model, "classifier_prefixes", ("",)))
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    layers = [m for n, m in model.named_modules() if isinstance(m, kinds) and (n + ".").startswith(prefixes)]
    if not layers:
        raise ConfigError(
            f"model.head_init_scale={scale}: {cfg.model.name} has no linear classifier under {list(prefixes)}"
        )
    with torch.no_grad():
        for layer in layers:
            layer.weight.mul_(scale)
            if layer.bias is not None:
                layer.bias.mul_(scale)
    return model


def checkpoint_kwargs(path: str | Path | None, model: str | None = None) -> dict:
    """``meta.kwargs`` of a vidlab checkpoint file (builder arguments recorded by ``vidlab convert``), or ``{}``
    (no path, another toolbox's file, nothing recorded, or, with ``model``, a checkpoint of another model: a
    pre-training checkpoint's decoder sizes are not the fine-tuning network's). Unreadable files are left to the
    loader to report."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, or not loadable: load_checkpoint reports it properly
        return {}
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if model is not None and isinstance(meta, dict) and meta.get("model", model) != model:
        return {}
    kwargs = meta.get("kwargs") if isinstance(meta, dict) else None
    return dict(kwargs) if isinstance(kwargs, dict) else {}


def direction_pairs(cfg: Config) -> list[int]:
    """Class ids that belong to temporally paired classes (SynthActions' pairs.json), or []."""
    path = data_path(cfg, cfg.data.pairs)
    if path is None or not path.is_file():
        return []
    pairs = json.loads(path.read_text()).get("direction_pairs", [])
    return sorted({int(c) for pair in pairs for c in pair})


def build_mixup(cfg: Config):
    """The :class:`~vidlab.data.mixup.Mixup` of the ``mixup`` section (smoothing: ``train.label_smoothing``), or None
    when both alphas are 0 and no ``cutmix_minmax`` is set."""
    from vidlab.config import mixup_enabled
    from vidlab.data.mixup import Mixup

    if not mixup_enabled(cfg):
        return None
    m = cfg.mixup
    try:
        return Mixup(
            cfg.model.num_classes,
            mixup_alpha=m.mixup_alpha,
            cutmix_alpha=m.cutmix_alpha,
            cutmix_minmax=m.cutmix_minmax,
            prob=m.prob,
            switch_prob=m.switch_prob,
            mode=m.mode,
            label_smoothing=cfg.train.label_smoothing,
        )
    except ValueError as e:
        raise ConfigError(f"mixup: {e}") from e


def build_random_erasing(cfg: Config):
    """The batch-level :class:`~vidlab.data.batch_transforms.RandomErasing` of ``data.random_erasing``, or None."""
    from vidlab.data.batch_transforms import RandomErasing

    spec = cfg.data.random_erasing
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ConfigError(f"data.random_erasing must be a mapping of RandomErasing's arguments or null, got {spec!r}")
    try:
        return RandomErasing(**spec)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data.random_erasing: {e}") from e


def build_task(cfg: Config, train_set=None, split: str | None = None):
    """The task object of ``cfg.task`` with its plain options. Regression with ``regression.normalize`` fits the
    target mean/std on ``train_set``'s targets (or takes them from ``cfg.regression`` state restored from a
    checkpoint: :func:`config_from_checkpoint`). Detection evaluates against the ground truth of ``split`` (val
    by default). The batch-level training augmentation comes with it: random erasing (``data.random_erasing``)
    and, for recognition, Mixup / CutMix (``mixup``)."""
    task = _build_task(cfg, train_set, split)
    task.erasing = build_random_erasing(cfg)
    return task


def _build_task(cfg: Config, train_set=None, split: str | None = None):
    from vidlab.tasks import CountingTask, DetectionTask, PretrainTask, RecognitionTask, RegressionTask

    if cfg.task == "pretrain":
        return PretrainTask(seed=cfg.train.seed)
    if cfg.task == "detection":
        det = cfg.detection
        classes = detection_classes(cfg)
        split = "val" if split is None else split
        return DetectionTask(
            [i for i, _ in classes],
            [n for _, n in classes],
            gt_file=annotation_file(cfg, split),
            label_map=data_path(cfg, cfg.data.label_map),
            excluded_file=_split_file(cfg, split, "excluded"),
            loss=det.loss,
            focal_alpha=det.focal_alpha,
            focal_gamma=det.focal_gamma,
            loss_on=det.loss_on,
            protocol=det.protocol,
            microg=det.microg,
            threshold_on=det.threshold_on,
            keyframe_unit=det.keyframe_unit,
        )
    if cfg.task == "recognition":
        return RecognitionTask(
            multi_label=cfg.data.multi_label,
            label_smoothing=cfg.train.label_smoothing,
            average_clips=cfg.model.average_clips,
            topk=tuple(cfg.test.topk),
            paired_classes=direction_pairs(cfg),
            mixup=build_mixup(cfg),
        )
    if cfg.task == "counting":
        from vidlab.config import check_counting_sampler

        c = cfg.counting
        if train_set is not None and cfg.data.format != "features":
            check_counting_sampler(cfg.data.train_sampler, "data.train_sampler")
        return CountingTask(
            anchors=c.anchors,
            pos_iou=c.pos_iou,
            neg_iou=c.neg_iou,
            box_weight=c.box_weight,
            clamp=c.clamp,
            rounded=c.rounded,
            zero_threshold=c.zero_threshold,
        )
    r = cfg.regression
    mean = std = None
    if r.normalize and train_set is not None:
        values = torch.tensor([list(map(float, it.label)) for it in train_set.items], dtype=torch.float64)
        mean, std = values.mean(0), values.std(0, unbiased=False).clamp_min(1e-8)
        mean, std = mean.tolist(), std.tolist()
    elif r.normalize:
        mean, std = r.target_mean, r.target_std
    return RegressionTask(loss=r.loss, beta=r.beta, target_mean=mean, target_std=std)


def build_optimizer_from_config(model: torch.nn.Module, cfg: Config, global_batch: int):
    """``(optimizer, frozen parameter names)``: ``model.freeze`` applied first, then parameter groups (no weight
    decay for norms/biases/position tables unless ``optim.decay_norm_bias``; ``optim.layer_decay``)."""
    from vidlab.engine.optim import apply_freeze, build_optimizer, frozen_names

    try:
        frozen = frozen_names(model, cfg.model.freeze)
        apply_freeze(model, frozen)
        return build_optimizer(model, cfg.optim, global_batch), frozen
    except ValueError as e:
        raise ConfigError(str(e)) from e


def test_clip_spec(cfg: Config) -> dict:
    """What inference needs to turn a video into model input, as the test split of ``cfg`` reads it."""
    d = cfg.data
    return {
        "format": d.format,
        "mean": list(d.mean),
        "std": list(d.std),
        "input_format": d.input_format,
        "modality": d.modality,
        "filename_tmpl": d.filename_tmpl,
        "num_segments": d.num_segments,
        "short_side": d.short_side,
        "backend": d.backend,
        "sampler": dict(d.test_sampler or d.val_sampler),
        "pipeline": [dict(t) for t in (d.test_pipeline or d.val_pipeline)],
        "average_clips": cfg.model.average_clips,
        **({"windows": dict(d.windows)} if d.windows is not None else {}),
        **({"audio_fixed_length": d.audio_fixed_length} if d.format in ("audio", "audio_feature") else {}),
    }


def checkpoint_meta(cfg: Config, task, model: torch.nn.Module, checkpoint: str | Path | None = None) -> dict:
    """The self-description a vidlab checkpoint carries: model name and builder arguments, class count and names,
    task (with fitted statistics), and the test-time clip spec (normalization, sampler, pipeline, views)."""
    import vidlab

    kwargs = model_kwargs(cfg, checkpoint)
    extra = {}
    if cfg.task == "detection":  # the AVA files the run used (relative to data.root), so `vidlab test` needs none
        files = {k: getattr(cfg.data, k) for k in ("root", "train_list", "val_list", "test_list", "label_map")}
        extra["detection"] = {**dataclasses.asdict(cfg.detection), "data_files": files}
    return {
        **extra,
        "model": cfg.model.name,
        "num_classes": int(getattr(model, "num_classes", cfg.model.num_classes)),
        "kwargs": kwargs,
        "classes": load_class_names(cfg),
        "task": task.state(),
        "data": test_clip_spec(cfg),
        "vidlab_version": vidlab.__version__,
    }


def config_from_checkpoint(meta: dict, source: str = "checkpoint") -> Config:
    """A Config that runs what a self-describing checkpoint's ``meta`` describes (a YAML recipe and overrides may
    still be applied on top with ``load_config(..., base=...)``)."""
    if not isinstance(meta, dict) or "model" not in meta:
        raise ConfigError(
            f"{source} does not describe its model (no meta.model): it was not written by `vidlab train` or "
            "`vidlab convert`; give a config (--config) as well"
        )
    cfg = Config()
    cfg.model.name = meta["model"]
    cfg.model.num_classes = int(meta.get("num_classes", cfg.model.num_classes))
    cfg.model.kwargs = dict(meta.get("kwargs") or {})
    cfg.data.label_map = None
    task = meta.get("task") or {"name": "recognition"}
    cfg.task = task.get("name", "recognition")
    if cfg.task == "recognition":
        cfg.data.multi_label = bool(task.get("multi_label", False))
    elif cfg.task == "detection":
        cfg.data.format = "ava"
        for key, value in (meta.get("detection") or {}).items():
            if hasattr(cfg.detection, key):
                setattr(cfg.detection, key, value)
        for key, value in (meta.get("detection") or {}).get("data_files", {}).items():
            setattr(cfg.data, key, value)
    elif cfg.task == "counting":
        for key in ("anchors", "pos_iou", "neg_iou", "box_weight", "clamp", "rounded", "zero_threshold"):
            if key in task:
                setattr(cfg.counting, key, task[key])
    elif cfg.task == "regression":
        cfg.regression.loss = task.get("loss", "mse")
        cfg.regression.beta = float(task.get("beta", 1.0))
        cfg.regression.normalize = task.get("target_mean") is not None
        cfg.regression.target_mean, cfg.regression.target_std = task.get("target_mean"), task.get("target_std")
    spec = meta.get("data")
    if spec:
        d = cfg.data
        d.format = spec.get("format", "video")
        d.mean, d.std = list(spec["mean"]), list(spec["std"])
        d.input_format, d.num_segments = spec["input_format"], int(spec["num_segments"])
        d.modality, d.filename_tmpl = spec.get("modality", "RGB"), spec.get("filename_tmpl", d.filename_tmpl)
        d.short_side, d.backend = spec.get("short_side"), spec.get("backend", "pyav")
        d.val_sampler = dict(spec["sampler"])
        d.test_sampler = None
        d.val_pipeline = [dict(t) for t in spec["pipeline"]]
        d.test_pipeline = None
        cfg.model.average_clips = spec.get("average_clips", "prob")
        d.windows = dict(spec["windows"]) if spec.get("windows") else None
        d.audio_fixed_length = int(spec.get("audio_fixed_length", d.audio_fixed_length))
    return cfg
