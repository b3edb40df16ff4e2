"""Config -> :class:`~vidlab.models.distill.MaskedDistiller`: the teacher named by ``distill.teacher`` loaded and
frozen, the aligned layers chosen as Unmasked Teacher does, the student wrapped (``task: pretrain``; see
docs/PRETRAINING.md)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from vidlab.config import Config, ConfigError
from vidlab.models._registry import meta_device
from vidlab.models.clip import CLIP_MEAN, CLIP_STD, CLIPViT
from vidlab.models.distill import MaskedDistiller, return_indices

__all__ = ["Teacher", "build_distiller", "load_teacher"]

logger = logging.getLogger("vidlab")

#: ``distill.teacher_source`` -> the converter's source name
TEACHER_SOURCES = {"auto": "auto", "vidlab": "vidlab", "openai": "openai_clip", "hf": "hf_clip"}
#: registered CLIP towers by (patch, width, depth), to name a CLIP file's tower when ``distill.teacher_model`` is unset
_CLIP_VARIANTS = {(16, 768, 12): "clip_vit_b16", (14, 1024, 24): "clip_vit_l14"}


def _meta(path: Path) -> dict:
    """``meta`` of a vidlab checkpoint (``{}`` for other files)."""
    from vidlab.models.convert.clip import is_torchscript

    if is_torchscript(path):
        return {}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint: the state-dict reader reports it properly
        return {}
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _clip_variant(converted: dict[str, torch.Tensor], path: Path) -> str:
    weight = converted.get("backbone.patch_embed.proj.weight")
    depth = len({m.group(1) for k in converted if (m := re.match(r"backbone\.blocks\.(\d+)\.", k))})
    key = (int(weight.shape[-1]), int(weight.shape[0]), depth) if weight is not None else None
    if key not in _CLIP_VARIANTS:
        raise ConfigError(
            f"distill.teacher_model: {path} holds a CLIP tower of patch/width/depth {key}, none of "
            f"{sorted(_CLIP_VARIANTS.values())}; name the model (and its kwargs) yourself"
        )
    return _CLIP_VARIANTS[key]


class Teacher(NamedTuple):
    """A loaded teacher: the frozen model in eval mode, its registered name, and its input statistics in
    ``data.mean``'s units (``None``: the data's own)."""

    model: nn.Module
    name: str
    mean: list | None
    std: list | None


def load_teacher(cfg: Config) -> Teacher:
    """The teacher ``cfg.distill`` names.

    The model is ``distill.teacher_model``, else the checkpoint's ``meta.model`` (a vidlab checkpoint), else the CLIP
    variant the weights' shapes name. Weights load strictly, converted from ``distill.teacher_source``.

    Raises:
        ConfigError: naming the ``distill`` key at fault (missing file, unknown model, weights that do not fit).
    """
    from vidlab.engine.checkpoint import _class_count_in
    from vidlab.models import create_model
    from vidlab.models._registry import UnknownModelError
    from vidlab.models.convert import builder_kwargs, convert_state_dict, detect_source, load_converted, read_state_dict

    d = cfg.distill
    path = Path(d.teacher)
    if not path.is_file():
        raise ConfigError(f"distill.teacher: file not found: {path}")
    try:
        state_dict = read_state_dict(path)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"distill.teacher: {e}") from e
    source = TEACHER_SOURCES[d.teacher_source]
    if source == "auto":
        source = detect_source(state_dict)
    meta = _meta(path)
    name = d.teacher_model or meta.get("model")
    try:
        if name is None and source in ("openai_clip", "hf_clip"):
            name = _clip_variant(convert_state_dict(state_dict, source), path)
        if name is None:
            raise ConfigError(
                f"distill.teacher_model: {path} ({source} layout) does not name its model (no meta.model); set "
                "distill.teacher_model (clip_vit_b16, clip_vit_l14 or a vidlab model name)"
            )
        converted = convert_state_dict(state_dict, source, name)
        kwargs = dict(meta.get("kwargs") or {}) if name == meta.get("model") else {}
        kwargs.update(builder_kwargs(source, name, converted))
        if name.startswith("clip_") and d.teacher_input_size:  # the position table resized once, at load
            kwargs["img_size"] = d.teacher_input_size
        num_classes = meta.get("num_classes") if name == meta.get("model") else None
        if num_classes is None and name.startswith("clip_"):  # no classifier unless the file has one
            num_classes = int(converted["head.fc.weight"].shape[0]) if "head.fc.weight" in converted else 0
        if num_classes is None:  # a foreign file: its class count, read off its head
            with meta_device():
                num_classes = _class_count_in(converted, create_model(name, **kwargs))
        teacher = create_model(name, num_classes=num_classes, **kwargs)
        load_converted(teacher, converted, source, strict=True, origin=str(path))
    except UnknownModelError as e:
        raise ConfigError(f"distill.teacher_model: {e}") from e
    except (ValueError, NotImplementedError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"distill.teacher ({name}, {source} layout): {e}") from e
    teacher.eval().requires_grad_(False)
    mean, std = d.teacher_mean, d.teacher_std
    if mean is None and isinstance(teacher, CLIPViT):
        mean, std = [255 * m for m in CLIP_MEAN], [255 * s for s in CLIP_STD]
    elif mean is None and isinstance(meta.get("data"), dict) and "mean" in meta["data"]:
        mean, std = list(meta["data"]["mean"]), list(meta["data"]["std"])
    return Teacher(teacher, name, mean, std)


def build_distiller(cfg: Config, student: nn.Module) -> MaskedDistiller:
    """The student wrapped for masked teacher distillation as ``cfg.distill`` describes (``build_model`` calls this
    for ``task: pretrain`` with ``distill.teacher`` set).

    Raises:
        ConfigError: a teacher that cannot be loaded, a student without ``forward_visible``, or aligned layers that
            do not fit the teacher's or the student's depth.
    """
    from vidlab.models import get_model_info

    d = cfg.distill
    if not hasattr(getattr(student, "backbone", None), "forward_visible"):
        raise ConfigError(
            f"model.name={cfg.model.name} cannot be a distillation student (no forward_visible): use videomae_vit_* "
            "or videomamba_*"
        )
    teacher, name, mean, std = load_teacher(cfg)
    depth = getattr(teacher, "num_intermediates", None) or teacher.num_layers
    try:
        student_layers = return_indices(student.num_layers, d.return_layers, d.student_return_interval)
    except ValueError as e:
        raise ConfigError(f"distill.return_layers / student_return_interval, student {cfg.model.name}: {e}") from e
    try:
        teacher_layers = return_indices(depth, d.return_layers, d.return_interval)
    except ValueError as e:
        raise ConfigError(f"distill.return_layers / return_interval, teacher {type(teacher).__name__}: {e}") from e
    probe = None
    if not isinstance(teacher, CLIPViT):  # the widths of the teacher's layers, read off one forward
        c, t, h, w = get_model_info(name).input_shape
        probe = (c, getattr(teacher, "num_segments", None) or t, h, w)
    try:
        distiller = MaskedDistiller(
            student,
            teacher,
            student_layers=student_layers,
            teacher_layers=teacher_layers,
            probe_shape=probe,
            mask_ratio=d.mask_ratio,
            guide=d.guide,
            align_cls=d.align_cls,
            teacher_ln_post=d.teacher_ln_post,
            data_mean=cfg.data.mean,
            data_std=cfg.data.std,
            teacher_mean=mean,
            teacher_std=std,
            teacher_input_size=d.teacher_input_size,
        )
    except ValueError as e:
        raise ConfigError(f"distill: {e}") from e
    logger.info(
        "masked teacher distillation: teacher %s (%s, frozen), student blocks %s <- teacher layers %s, mask ratio "
        "%.2f, guide %s",
        type(teacher).__name__,
        d.teacher,
        student_layers,
        teacher_layers,
        d.mask_ratio,
        distiller.guide,
    )
    return distiller
