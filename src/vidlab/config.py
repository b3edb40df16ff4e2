"""Run configuration: a dataclass tree, flat YAML recipes and dotted command-line overrides.

A recipe is one YAML file whose sections mirror the tree below (``data:``, ``model:``, ``optim:``,
``train:``, ``test:``); there is no inheritance. ``key=value`` overrides address any leaf with dots
(``optim.lr=0.01``, ``data.train_sampler.num_clips=16``). An unknown key is an error that names the key
and suggests the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from vidlab.errors import InputError


class ConfigError(InputError):
    """A configuration file or override is invalid."""


def _default_train_pipeline() -> list[dict]:
    return [
        {"type": "RandomResizedCrop"},
        {"type": "Resize", "scale": [112, 112], "keep_ratio": False},
        {"type": "Flip", "flip_ratio": 0.5},
    ]


def _default_test_pipeline() -> list[dict]:
    return [{"type": "CenterCrop", "crop_size": 112}]


@dataclass
class DataConfig:
    """Where the data is and how clips are sampled and transformed."""

    root: str = "data/synth"
    modality: str = "RGB"  # RGB | Flow (format: rawframes folders of x/y flow images from `vidlab data flow`)
    format: str = "video"  # video | rawframes | kinetics_csv | videomamba_csv | charades_csv | ava | features | audio
    # (the videos' sound as log-mel features) | audio_feature (MMAction2's .npy feature lists)
    audio_fixed_length: int = 128  # audio formats: feature rows per clip (MMAction2's AudioFeatureSelector)
    sources: list | None = None  # more training sources (OmniSource): [{name, train_list, root, format: video |
    # rawframes | image, train_sampler, train_pipeline, batch_size, loss_weight}]; one batch of each per step
    source_name: str = "videos"  # the name of this (main) source in the per-source training log
    loss_weight: float = 1.0  # the weight of this (main) source's loss when data.sources adds others
    csv_delimiter: str = ","  # videomamba_csv: the field separator (VideoMamba's --split)
    windows: dict | None = None  # long videos as trimmed windows: {trimmed: s, time_stride: s, test: all | first}
    features_dir: str | None = None  # format=features: the `vidlab extract --out` folder
    train_list: str = "train.txt"
    train_fraction: float = 1.0  # use this fraction of the training list: stratified by class, drawn with train.seed
    train_samples: int | None = None  # SEVERE's sample sizes: ceil(N / classes) training videos per class
    subset_seed: int = 0  # seed of the train_samples draw (fixed across runs, as SEVERE's subsets are)
    label_subset: list | None = None  # keep these labels only, renumbered 0..k-1 in this order (FineGym FX-S1)
    val_list: str = "val.txt"
    test_list: str = "test.txt"
    label_map: str | None = "label_map.txt"
    flip_label_map: str | None = None  # JSON {label: label} used by Flip
    pairs: str | None = None  # JSON with "direction_pairs" to report accuracy on temporally paired classes
    multi_label: bool = False
    filename_tmpl: str = "img_{:05}.jpg"  # rawframes
    start_index: int | None = None  # None: 0 for videos, 1 for rawframes (MMAction2's defaults)
    backend: str = "pyav"  # pyav | decord
    short_side: int | None = 128  # resize in the decoder (one swscale pass); None keeps the size
    input_format: str = "NCTHW"  # NCTHW: a view is one clip; NCHW (2D models): a view is num_segments frames;
    # NCHW_Flow (flow, 2D models): each clip's clip_len flow frames as 2 * clip_len channels, num_segments per view
    num_segments: int = 8  # frames per view for NCHW
    train_sampler: dict = field(
        default_factory=lambda: {"type": "SampleFrames", "clip_len": 1, "frame_interval": 1, "num_clips": 8}
    )
    val_sampler: dict = field(
        default_factory=lambda: {
            "type": "SampleFrames",
            "clip_len": 1,
            "frame_interval": 1,
            "num_clips": 8,
            "test_mode": True,
        }
    )
    test_sampler: dict | None = None  # None: same as val_sampler
    train_pipeline: list = field(default_factory=_default_train_pipeline)
    val_pipeline: list = field(default_factory=_default_test_pipeline)
    test_pipeline: list | None = None  # None: same as val_pipeline
    mean: list = field(default_factory=lambda: [123.675, 116.28, 103.53])
    std: list = field(default_factory=lambda: [58.395, 57.12, 57.375])
    batch_size: int = 8  # per process
    val_batch_size: int | None = None  # None: batch_size
    num_workers: int = 2
    timeout: float = 600.0  # seconds a data-loader worker may take for one batch (0: no limit); then a clear error
    on_error: str = "raise"  # raise | skip (undecodable videos)
    decode_timeout: float = 300.0  # seconds reading one sample may take (0: no limit); then an undecodable video
    allow_outside_root: bool = False  # annotation paths may be absolute or lead out of root with ".."
    repeated_aug: int = 1  # training clips per decoded video, each through the train pipeline (VideoMAE's num_sample)
    random_erasing: dict | None = None  # {prob, mode, count, min_area, max_area, min_aspect, max_aspect}: erase a box
    # of every normalized training clip (the same box on all its frames) with probability prob; None: off


@dataclass
class ModelConfig:
    name: str = "tsm_r18"
    num_classes: int = 12
    kwargs: dict = field(default_factory=dict)  # extra keyword arguments of the model builder
    pretrained: str | None = None  # local checkpoint file
    pretrained_frames: int | None = None  # clip length of model.pretrained (VideoMamba's --orig_t_size): how a
    # space-time position table is resized into a model of another length; None: the checkpoint's record, or inferred
    pretrained_2d: bool = False  # pretrained is an image checkpoint: inflate it (vidlab.models.convert.inflate)
    inflate_style: str = "mmaction2"  # mmaction2 | timesformer (TimeSformer's temporal init, pos-table resize)
    patch_inflation: str = "center"  # center | average: a ViT / VideoMamba 2D patch embedding over the tubelet
    freeze: str = "none"  # none | backbone | stages:K (stem and blocks 1..K; frozen BatchNorm stays in eval mode)
    average_clips: str | None = "prob"  # prob | score | None (MMAction2's test_cfg.average_clips)
    head_init_scale: float = 1.0  # multiply the fresh classifier's weight and bias (VideoMAE's init_scale: 0.001)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    scheduler: str = "cosine"  # cosine | step | constant
    warmup_epochs: float = 0.0
    warmup_start_factor: float = 0.1
    milestones: list = field(default_factory=list)  # epochs, for step
    gamma: float = 0.1
    min_lr: float = 0.0
    auto_scale_lr: bool = False  # lr *= global_batch / base_batch_size
    base_batch_size: int = 64
    grad_clip: float | None = None  # max global L2 norm
    layer_decay: float | None = None  # layer-wise lr decay: lr * layer_decay ** (L - layer_id); None: off
    decay_norm_bias: bool = False  # true: weight decay on every parameter (MMAction2); false: none on norms,
    # biases, position tables and class tokens (timm, VideoMAE)


@dataclass
class TrainConfig:
    epochs: int = 10
    accum_steps: int = 1
    amp: str = "auto"  # auto | none | bf16 | fp16: auto = bf16 where native (CPU AVX512-BF16/AMX, CUDA), else fp32
    # (fp16 with a gradient scaler on CUDA devices without bf16)
    seed: int = 0
    deterministic: bool = False
    val_interval: int = 1
    log_interval: int = 20
    tensorboard: bool = False
    channels_last: bool = False
    label_smoothing: float = 0.0
    max_iters_per_epoch: int | None = None  # for quick experiments and tests
    max_keep_ckpts: int = 2  # epoch_N.pth files kept (best.pth is kept apart)
    checkpoint_every_iters: int = 0  # inside an epoch, also save iter_<E>_<k>.pth every k optimizer steps (0: off)
    threads: int | None = None  # torch intra-op threads of each process; None keeps torch's default
    strategy: str = "ddp"  # ddp | fsdp: under torchrun, replicate the model (DDP) or shard it (FSDP2)
    activation_checkpointing: bool = False  # recompute each block's activations in the backward pass


@dataclass
class MixupConfig:
    """Mixup / CutMix of training batches (timm's ``Mixup``, as VideoMAE / VideoMamba fine-tune); off while both
    alphas are 0. Single-label recognition only; ``train.label_smoothing`` smooths the mixed soft targets."""

    mixup_alpha: float = 0.0  # Beta(alpha, alpha) mixing weight; 0: no Mixup
    cutmix_alpha: float = 0.0  # 0: no CutMix
    cutmix_minmax: list | None = None  # [low, high] box sides as fractions of the frame's (turns CutMix on)
    prob: float = 1.0  # probability that a batch (or sample) is mixed
    switch_prob: float = 0.5  # probability of CutMix instead of Mixup when both are on
    mode: str = "batch"  # batch | pair | elem: one weight per batch, per pair of samples, per sample


@dataclass
class TestConfig:
    """Evaluation options; test views are num_clips x num_crops, set by test_sampler and test_pipeline."""

    batch_size: int | None = None  # None: data.val_batch_size
    topk: list = field(default_factory=lambda: [1, 5])
    amp: str = "auto"  # inference precision: auto | none | bf16 (as train.amp)
    view_chunk: int | None = None  # clips per forward at test (chunked inference of long inputs); None: all at once
    # inference speed (vidlab.engine.fast): BatchNorm folded into convolutions, weights and inputs in the memory
    # format that pays (auto: channels-last for convolutional networks), torch.compile (inductor), ONNX Runtime
    fold_bn: bool = True
    memory_format: str = "auto"  # auto | channels_last | contiguous
    compile: bool = False
    backend: str = "torch"  # torch | onnxruntime (fp32; pip install vidlab[export])


@dataclass
class RegressionConfig:
    """Options of ``task: regression`` (continuous targets; ``model.num_classes`` = number of targets)."""

    loss: str = "mse"  # mse | smooth_l1
    beta: float = 1.0  # smooth_l1 threshold
    normalize: bool = True  # learn (y - mean) / std with mean/std of the training targets (kept in the checkpoint)
    target_mean: list | None = None  # set from a checkpoint; training fits them on the training list
    target_std: list | None = None


@dataclass
class CountingConfig:
    """Options of ``task: counting`` (repetition counts from a ``path count`` list; docs/COUNTING.md). The model's
    classifier gets ``3 x len(anchors)`` outputs whatever ``model.num_classes`` says; the samplers must be
    ``UniformSample`` (one clip spanning the whole video)."""

    anchors: list | None = None  # cycle lengths as fractions of the clip; None: 13 from 1/2 to 1/32 (x 2**(1/3))
    pos_iou: float = 0.5  # an anchor is positive where min/max(cycle, anchor) >= pos_iou (the reference's 0.5)
    neg_iou: float = 0.5  # ... negative where <= neg_iou; ignored in between
    box_weight: float = 50.0  # weight of the smooth-L1 log-offset loss (the reference's 50)
    clamp: float | None = None  # predicted log-offsets are clamped to +-clamp; None: log(1 / pos_iou) (log 2)
    rounded: bool = True  # round predicted counts half up (the reference does)
    zero_threshold: float | None = None  # count 0 when the best anchor's probability is below this; None: never


@dataclass
class DetectionConfig:
    """Options of ``task: detection`` (AVA-format spatio-temporal action detection, ``data.format: ava``). Files
    are relative to ``data.root``; ``data.train_list`` / ``val_list`` / ``test_list`` are the annotation CSVs and
    ``data.label_map`` the label-map pbtxt (``model.num_classes`` = its number of classes)."""

    keyframe_unit: str = "second"  # second (AVA) | frame (MicroG-4M: column 2 is a 0-based frame index)
    timestamp_start: float = 0.0  # seconds of the first frame (AVA's 15-minute frame folders: 900)
    fps: float = 30.0  # frame rate of frame folders (videos use their own)
    valid_stamps: list | None = None  # [first, last] keyframe timestamps kept (PySlowFast's AVA: [902, 1798])
    source: str = "video"  # video (video_tmpl) | frames (frame folders: frame_dir_tmpl + frame_tmpl)
    video_tmpl: str = "videos/{video}.mp4"
    frame_dir_tmpl: str = "frames/{video}"
    frame_tmpl: str = "{video}_{index:06d}.jpg"  # AVA's (1-based); SynthActions-Det's: "img_{index:05d}.jpg"
    clip_len: int = 8
    frame_interval: int = 2
    center: str = "mmaction2"  # mmaction2 | pyslowfast: where the clip starts around the keyframe
    train_excluded: str | None = None  # excluded-timestamps CSVs
    val_excluded: str | None = None
    test_excluded: str | None = None
    train_proposals: str | None = None  # MMAction2 .pkl or PySlowFast .csv person boxes
    val_proposals: str | None = None
    test_proposals: str | None = None
    proposal_score_thr: float = 0.9
    max_proposals: int = 1000
    test_boxes: str = "proposals"  # proposals | gt (MicroG-4M)
    train_with_proposals: bool = False  # proposals as extra training boxes (labelled by IoU; negatives too)
    pos_iou: float = 0.5
    neg_iou: float = 0.3
    loss: str = "bce"  # bce | focal (MMAction2's alpha / gamma)
    focal_alpha: float = 1.0
    focal_gamma: float = 0.0
    loss_on: str = "labelled"  # labelled (MMAction2: boxes with an action) | all (negatives too)
    protocol: str = "activitynet"  # frame-mAP protocol: activitynet | mmaction2 | pyslowfast
    microg: bool = False  # also MicroG-4M's F1 / recall / AUROC
    threshold_on: str = "logits"  # MicroG-4M's 0.5 threshold read as on logits (its published numbers) | probabilities


@dataclass
class DistillConfig:
    """Masked teacher distillation (``task: pretrain`` with ``teacher`` set; docs/PRETRAINING.md): the model is the
    student (``videomae_vit_*``, ``videomamba_*``), trained to match a frozen teacher's features on the tokens it
    sees (Unmasked Teacher; VideoMamba's masked pre-training)."""

    teacher: str | None = None  # teacher weights: a vidlab checkpoint, or an OpenAI / HF CLIP file
    teacher_model: str | None = None  # clip_vit_b16 | clip_vit_l14 | a vidlab model; None: the checkpoint's meta.model
    teacher_source: str = "auto"  # auto | vidlab | openai | hf: who wrote the teacher file (auto: from its keys)
    teacher_input_size: int | None = None  # frames resized (bicubic) for the teacher; UMT's L/14 recipe: 196
    teacher_mean: list | None = None  # teacher input mean/std in data.mean's units; None: CLIP's for CLIP teachers,
    teacher_std: list | None = None  # else the teacher checkpoint's recorded ones, else data.mean / data.std
    teacher_ln_post: bool = True  # CLIP: ln_post before proj on aligned layers (UMT); false: VideoMamba's recipe
    guide: str = "auto"  # auto | attention | norm | uniform: what draws the visible tokens (auto: CLIP's CLS
    # attention, else the teacher's feature norm)
    mask_ratio: float = 0.8  # fraction of each frame's patch tokens hidden from the student
    return_layers: int = 1  # aligned layer pairs (UMT's clip_return_layer; UMT's recipes 6, VideoMamba's 1)
    return_interval: float = 1.0  # spacing of the teacher's aligned blocks (UMT's clip_return_interval)
    student_return_interval: float = 1.0  # spacing of the student's (UMT's clip_student_return_interval)
    align_cls: bool = True  # students with a class token: align it with the teacher's frame-mean CLS (CLIP teachers)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    test: TestConfig = field(default_factory=TestConfig)
    task: str = "recognition"  # recognition | regression | detection | pretrain (self-supervised; labels unused) |
    # counting (repetition counts)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    counting: CountingConfig = field(default_factory=CountingConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    work_dir: str = "work_dirs/default"
    device: str = "auto"  # auto | cpu | cuda


def _valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(_valid_keys(value, prefix + f.name + "."))
    return keys


def _unknown_key(key: str, root: Config) -> ConfigError:
    valid = _valid_keys(root)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:  # try the last component alone, e.g. "lrr" -> "optim.lr"
        last = key.rsplit(".", 1)[-1]
        by_last = {k.rsplit(".", 1)[-1]: k for k in valid}
        hit = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.6)
        close = [by_last[hit[0]]] if hit else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    args = typing.get_args(annotation)
    return tuple(a for a in args) if args else (annotation,)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check/convert a YAML value against a dataclass field's annotation."""
    allowed = _allowed_types(annotation)
    names = ", ".join("null" if t is type(None) else t.__name__ for t in allowed)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"config key '{key}' cannot be null")
    if isinstance(value, bool):
        if bool in allowed:
            return value
        raise ConfigError(f"config key '{key}' expects {names}, got {value!r}")
    if bool in allowed and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    for typ in allowed:
        if typ in (list, dict, str) and isinstance(value, typ):
            return value
    if int in allowed and (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        return int(value)
    if float in allowed and isinstance(value, (int, float)):
        return float(value)
    raise ConfigError(f"config key '{key}' expects {names}, got {value!r}")


def _apply(node: Any, values: dict, prefix: str, root: Config) -> None:
    hints = get_type_hints(type(node))
    names = {f.name for f in dataclasses.fields(node)}
    for k, v in values.items():
        key = prefix + str(k)
        if k not in names:
            raise _unknown_key(key, root)
        current = getattr(node, k)
        if dataclasses.is_dataclass(current):
            if not isinstance(v, dict):
                raise ConfigError(f"config key '{key}' is a section; expected a mapping, got {v!r}")
            _apply(current, v, key + ".", root)
        else:
            setattr(node, k, _coerce(v, hints[k], key))


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form key=value")
    key, raw = item.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        reason = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"override '{item}': the value is not plain YAML ({reason})") from e


def apply_override(cfg: Config, item: str) -> None:
    """Apply one ``a.b.c=value`` override (value parsed as YAML) in place."""
    parts, value = _parse_override(item)
    node: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(node):
            if part not in {f.name for f in dataclasses.fields(node)}:
                raise _unknown_key(".".join(parts), cfg)
            if last:
                _apply(node, {part: value}, ".".join(parts[:i]) + ("." if i else ""), cfg)
                return
            node = getattr(node, part)
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            if part not in node or not isinstance(node[part], dict):
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        else:
            raise ConfigError(f"cannot set '{item}': '{'.'.join(parts[:i])}' is {type(node).__name__}")


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), base: Config | None = None
) -> Config:
    """Build a Config from defaults (or ``base``, e.g. what a checkpoint describes), a YAML recipe and dotted
    overrides, applied in that order."""
    cfg = base if base is not None else Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {e}") from e
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
        try:
            _apply(cfg, values, "", cfg)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e
    for item in overrides:
        apply_override(cfg, item)
    validate(cfg)
    return cfg


_CHOICES = {
    "data.format": (
        "video",
        "rawframes",
        "kinetics_csv",
        "videomamba_csv",
        "features",
        "ava",
        "charades_csv",
        "audio",
        "audio_feature",
    ),
    "data.backend": ("pyav", "decord"),
    "data.input_format": ("NCTHW", "NCHW", "NCHW_Flow"),
    "data.modality": ("RGB", "Flow"),
    "data.on_error": ("raise", "skip"),
    "optim.name": ("sgd", "adamw"),
    "optim.scheduler": ("cosine", "step", "constant"),
    "train.amp": ("auto", "none", "bf16", "fp16"),
    "mixup.mode": ("batch", "pair", "elem"),
    "train.strategy": ("ddp", "fsdp"),
    "test.amp": ("auto", "none", "bf16", "fp16"),
    "test.memory_format": ("auto", "channels_last", "contiguous"),
    "test.backend": ("torch", "onnxruntime"),
    "task": ("recognition", "regression", "detection", "pretrain", "counting"),
    "detection.keyframe_unit": ("second", "frame"),
    "detection.source": ("video", "frames"),
    "detection.center": ("mmaction2", "pyslowfast"),
    "detection.test_boxes": ("proposals", "gt"),
    "detection.loss": ("bce", "focal"),
    "detection.loss_on": ("labelled", "all"),
    "detection.protocol": ("activitynet", "mmaction2", "pyslowfast"),
    "detection.threshold_on": ("logits", "probabilities"),
    "regression.loss": ("mse", "smooth_l1"),
    "distill.teacher_source": ("auto", "vidlab", "openai", "hf"),
    "distill.guide": ("auto", "attention", "norm", "uniform"),
    "device": ("auto", "cpu", "cuda"),
}


def _validate_flow(cfg: Config) -> None:
    """``data.modality: Flow``: flow folders, a flow file template, and a model taking as many input channels as
    ``data.mean`` has values (the sampler's clip length is checked by :func:`check_flow_channels`)."""
    d = cfg.data
    if d.input_format == "NCHW_Flow" and d.modality != "Flow":
        raise ConfigError("data.input_format=NCHW_Flow stacks flow frames: set data.modality=Flow")
    if d.modality != "Flow":
        return
    if d.format != "rawframes":
        raise ConfigError(
            f"data.modality=Flow reads folders of x/y flow images: set data.format=rawframes (got {d.format}); "
            "`vidlab data flow LIST ROOT OUT` extracts them and writes the lists"
        )
    if d.filename_tmpl == "img_{:05}.jpg":
        raise ConfigError(
            "data.filename_tmpl names RGB frames; flow files need the direction and the index: '{}_{:05d}.jpg' "
            "(vidlab data flow, MMAction2) or 'flow_{}_{:05d}.jpg' (denseflow)"
        )
    if cfg.model.kwargs.get("in_channels") != len(d.mean):
        raise ConfigError(
            f"model.kwargs.in_channels is {cfg.model.kwargs.get('in_channels')} but the flow input has {len(d.mean)} "
            f"channels: set model.kwargs.in_channels: {len(d.mean)}"
        )


def check_flow_channels(data: DataConfig, clip_len: int, split: str) -> None:
    """The flow clips of ``split`` have 2 channels, or ``2 * clip_len`` with ``input_format: NCHW_Flow``: as many as
    ``data.mean`` / ``data.std`` have values (checked when the split's sampler is built)."""
    channels = 2 * clip_len if data.input_format == "NCHW_Flow" else 2
    for name in ("mean", "std"):
        if len(getattr(data, name)) != channels:
            raise ConfigError(
                f"data.{name} has {len(getattr(data, name))} values but the {split} flow clips have {channels} "
                f"channels (clip_len {clip_len}, input_format {data.input_format}): use [128, 128] * {channels // 2}"
            )


def _validate_counting(cfg: Config) -> None:
    """The ``counting`` section, and the data ``task: counting`` needs."""
    c = cfg.counting
    if c.anchors is not None and (not c.anchors or min(float(a) for a in c.anchors) <= 0):
        raise ConfigError(f"counting.anchors must be positive cycle lengths (fractions of the clip), got {c.anchors}")
    if not 0 < c.neg_iou <= c.pos_iou <= 1:
        raise ConfigError(f"counting needs 0 < neg_iou <= pos_iou <= 1, got neg_iou={c.neg_iou}, pos_iou={c.pos_iou}")
    if c.box_weight < 0 or (c.clamp is not None and c.clamp <= 0):
        raise ConfigError(f"counting.box_weight must be >= 0 and counting.clamp > 0, got {c.box_weight}, {c.clamp}")
    if c.zero_threshold is not None and not 0 < c.zero_threshold < 1:
        raise ConfigError(f"counting.zero_threshold must be in (0, 1) or null, got {c.zero_threshold}")
    if cfg.task != "counting":
        return
    if cfg.data.format not in ("video", "rawframes", "features"):
        raise ConfigError(
            f"task: counting reads 'path count' lists (data.format video, rawframes or features), not "
            f"data.format={cfg.data.format}"
        )
    if cfg.data.multi_label:
        raise ConfigError("task: counting has one count per video: set data.multi_label=false")
    if cfg.data.format == "features":
        return
    for key in ("val_sampler", "test_sampler"):  # the training sampler is checked when training starts
        check_counting_sampler(getattr(cfg.data, key), f"data.{key}")


def check_counting_sampler(spec: dict | None, key: str) -> None:
    """``task: counting`` counts a whole video from one clip: its samplers must be ``UniformSample``."""
    if spec is not None and spec.get("type", "SampleFrames") != "UniformSample":
        raise ConfigError(
            f"task: counting counts the repetitions of the whole video from one clip that spans it: "
            f"{key}.type must be UniformSample (clip_len frames spread over the video), got "
            f"{spec.get('type', 'SampleFrames')}"
        )


def _validate_distill(cfg: Config) -> None:
    """The ``distill`` section: ranges, and the task it belongs to."""
    d = cfg.distill
    if d.teacher and cfg.task != "pretrain":
        raise ConfigError(
            f"distill.teacher is set but task is {cfg.task}: masked teacher distillation runs as task: pretrain"
        )
    if not 0 <= d.mask_ratio < 1:
        raise ConfigError(f"distill.mask_ratio must be in [0, 1), got {d.mask_ratio}")
    if d.return_layers < 1:
        raise ConfigError(f"distill.return_layers must be >= 1, got {d.return_layers}")
    for key in ("return_interval", "student_return_interval"):
        if getattr(d, key) <= 0:
            raise ConfigError(f"distill.{key} must be > 0, got {getattr(d, key)}")
    if d.teacher_input_size is not None and d.teacher_input_size <= 0:
        raise ConfigError(f"distill.teacher_input_size must be > 0 (null: the data's size), got {d.teacher_input_size}")
    if (d.teacher_mean is None) != (d.teacher_std is None):
        raise ConfigError("distill.teacher_mean and distill.teacher_std go together: set both or neither")
    for key in ("teacher_mean", "teacher_std"):
        value = getattr(d, key)
        if value is not None and len(value) != 3:
            raise ConfigError(f"distill.{key} needs 3 values (one per channel), got {value}")
    if d.teacher_mean is not None and max(map(float, d.teacher_mean)) <= 1 < max(map(float, cfg.data.mean)):
        raise ConfigError(
            f"distill.teacher_mean {d.teacher_mean} looks like [0, 1] units but data.mean is in 0-255 units: give "
            "the teacher's statistics in data.mean's units (multiply by 255)"
        )


def validate(cfg: Config) -> None:
    """Check enumerated options so a typo fails before any work starts."""
    flat = to_dict(cfg)
    for key, choices in _CHOICES.items():
        node: Any = flat
        for part in key.split("."):
            node = node[part]
        if node not in choices:
            raise ConfigError(f"config key '{key}' must be one of {list(choices)}, got {node!r}")
    freeze = cfg.model.freeze
    if freeze not in ("none", "backbone") and not (freeze.startswith("stages:") and freeze[7:].isdigit()):
        raise ConfigError(f"model.freeze must be none, backbone or stages:K (e.g. stages:2), got {freeze!r}")
    if cfg.optim.layer_decay is not None and not 0 < cfg.optim.layer_decay <= 1:
        raise ConfigError(f"optim.layer_decay must be in (0, 1], got {cfg.optim.layer_decay}")
    if cfg.train.checkpoint_every_iters < 0:
        raise ConfigError(f"train.checkpoint_every_iters must be >= 0 (0: off), got {cfg.train.checkpoint_every_iters}")
    if cfg.train.checkpoint_every_iters and cfg.data.sources:
        raise ConfigError("train.checkpoint_every_iters does not support several training sources (data.sources)")
    if not cfg.data.timeout >= 0:
        raise ConfigError(f"data.timeout must be >= 0 seconds (0: no limit), got {cfg.data.timeout}")
    if not cfg.data.decode_timeout >= 0:
        raise ConfigError(f"data.decode_timeout must be >= 0 seconds (0: no limit), got {cfg.data.decode_timeout}")
    if not 0 < cfg.data.train_fraction <= 1:
        raise ConfigError(f"data.train_fraction must be in (0, 1], got {cfg.data.train_fraction}")
    if cfg.data.train_samples is not None and cfg.data.train_samples < 1:
        raise ConfigError(f"data.train_samples must be >= 1 (videos in all), got {cfg.data.train_samples}")
    subset = cfg.data.label_subset
    if subset is not None and (not subset or len(set(subset)) != len(subset) or min(subset) < 0):
        raise ConfigError(f"data.label_subset must be distinct non-negative labels, got {subset}")
    if subset is not None and cfg.model.num_classes not in (None, len(subset)) and cfg.task == "recognition":
        raise ConfigError(
            f"data.label_subset keeps {len(subset)} classes but model.num_classes is {cfg.model.num_classes}"
        )
    if cfg.model.inflate_style not in ("mmaction2", "timesformer"):
        raise ConfigError(f"model.inflate_style must be mmaction2 or timesformer, got {cfg.model.inflate_style!r}")
    if cfg.model.patch_inflation not in ("center", "average"):
        raise ConfigError(f"model.patch_inflation must be center or average, got {cfg.model.patch_inflation!r}")
    if cfg.model.pretrained_2d and not cfg.model.pretrained:
        raise ConfigError("model.pretrained_2d: true needs model.pretrained (the image checkpoint to inflate)")
    if cfg.model.average_clips not in ("prob", "score", None, "max"):
        raise ConfigError(f"model.average_clips must be prob, score, max or null, got {cfg.model.average_clips!r}")
    _validate_distill(cfg)
    _validate_counting(cfg)
    if cfg.data.format == "charades_csv" and (cfg.task != "recognition" or not cfg.data.multi_label):
        raise ConfigError(
            "data.format=charades_csv gives multi-label targets: use it with task: recognition and "
            "data.multi_label: true"
        )
    _validate_recipe_augmentation(cfg)
    _validate_windows(cfg.data.windows)
    _validate_sources(cfg)
    _validate_flow(cfg)
    frames = cfg.model.pretrained_frames
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ConfigError(f"model.pretrained_frames must be a positive number of frames or null, got {frames!r}")
    if cfg.test.view_chunk is not None and (isinstance(cfg.test.view_chunk, bool) or cfg.test.view_chunk < 1):
        raise ConfigError(f"test.view_chunk must be a positive number of clips or null, got {cfg.test.view_chunk!r}")


def _validate_sources(cfg: Config) -> None:
    """``data.sources``: mappings with a unique ``name`` and a ``train_list``, known keys, video-like formats,
    positive batch sizes, non-negative loss weights; recognition or regression of decoded clips only."""
    sources = cfg.data.sources
    if sources is None:
        return
    allowed = ("name", "root", "format", "train_list", "train_sampler", "train_pipeline", "batch_size", "loss_weight")
    if not isinstance(sources, list) or not sources:
        raise ConfigError(f"data.sources must be a non-empty list of mappings (or null), got {sources!r}")
    names = [cfg.data.source_name]
    for i, src in enumerate(sources):
        where = f"data.sources[{i}]"
        if not isinstance(src, dict) or "name" not in src or "train_list" not in src:
            raise ConfigError(f"{where} must be a mapping with at least name and train_list, got {src!r}")
        unknown = sorted(set(src) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
        if src.get("format", "video") not in ("video", "rawframes", "image"):
            raise ConfigError(f"{where}.format must be video, rawframes or image, got {src['format']!r}")
        if int(src.get("batch_size", 1)) < 1 or float(src.get("loss_weight", 1.0)) < 0:
            raise ConfigError(f"{where}: batch_size must be >= 1 and loss_weight >= 0")
        names.append(str(src["name"]))
    if len(set(names)) != len(names):
        raise ConfigError(f"data.sources: source names must differ (data.source_name included), got {names}")
    if cfg.task not in ("recognition", "regression") or cfg.data.format not in ("video", "rawframes", "image"):
        raise ConfigError(
            f"data.sources (joint training) needs task recognition or regression on decoded clips, "
            f"not task {cfg.task} with data.format {cfg.data.format}"
        )


def _validate_windows(windows: dict | None) -> None:
    """``data.windows``: positive ``trimmed`` and ``time_stride`` seconds, ``test`` all | first, nothing else."""
    if windows is None:
        return
    if not isinstance(windows, dict):
        raise ConfigError(f"data.windows must be a mapping {{trimmed, time_stride, test}}, got {windows!r}")
    unknown = sorted(set(windows) - {"trimmed", "time_stride", "test"})
    if unknown:
        raise ConfigError(f"data.windows: unknown key(s) {unknown}; allowed: trimmed, time_stride, test")
    for key in ("trimmed", "time_stride"):
        value = windows.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"data.windows.{key} must be a positive number of seconds, got {value!r}")
    if windows.get("test", "all") not in ("all", "first"):
        raise ConfigError(f"data.windows.test must be all or first, got {windows['test']!r}")


def _validate_recipe_augmentation(cfg: Config) -> None:
    """Mixup / CutMix, repeated augmentation and random erasing: ranges, and the tasks and data they fit."""
    m = cfg.mixup
    for key in ("mixup_alpha", "cutmix_alpha"):
        if getattr(m, key) < 0:
            raise ConfigError(f"mixup.{key} must be >= 0 (0: off), got {getattr(m, key)}")
    for key in ("prob", "switch_prob"):
        if not 0 <= getattr(m, key) <= 1:
            raise ConfigError(f"mixup.{key} must be in [0, 1], got {getattr(m, key)}")
    if m.cutmix_minmax is not None and (
        len(m.cutmix_minmax) != 2 or not 0 < float(m.cutmix_minmax[0]) <= float(m.cutmix_minmax[1]) <= 1
    ):
        raise ConfigError(f"mixup.cutmix_minmax must be [low, high] with 0 < low <= high <= 1, got {m.cutmix_minmax}")
    if mixup_enabled(cfg):
        if cfg.task != "recognition" or cfg.data.multi_label:
            what = f"task {cfg.task}" if cfg.task != "recognition" else "data.multi_label=true"
            raise ConfigError(
                f"mixup (mixup.mixup_alpha / cutmix_alpha / cutmix_minmax) mixes class labels of single-label "
                f"recognition; {what} has other targets: set mixup.mixup_alpha=0 and mixup.cutmix_alpha=0"
            )
        if cfg.data.format == "features" and (m.cutmix_alpha > 0 or m.cutmix_minmax is not None):
            raise ConfigError("mixup.cutmix_alpha: CutMix cuts boxes out of frames; data.format=features has none")
    if cfg.data.repeated_aug < 1:
        raise ConfigError(f"data.repeated_aug must be >= 1 (1: off), got {cfg.data.repeated_aug}")
    if cfg.data.repeated_aug > 1 and cfg.data.format in ("features", "ava"):
        raise ConfigError(f"data.repeated_aug > 1 needs decoded videos (data.format {cfg.data.format} has none)")
    if cfg.data.random_erasing is not None and cfg.data.format == "features":
        raise ConfigError("data.random_erasing erases boxes of frames; data.format=features has none")


def mixup_enabled(cfg: Config) -> bool:
    """Whether ``cfg`` turns Mixup or CutMix on."""
    m = cfg.mixup
    return m.mixup_alpha > 0 or m.cutmix_alpha > 0 or m.cutmix_minmax is not None


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable again with load_config)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
