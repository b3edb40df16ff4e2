"""Checkpoint import from other toolboxes: one module per source, each a pure mapping over state dicts.

:func:`convert_state_dict` renames a foreign state dict to vidlab's keys; :func:`load_checkpoint` reads a
file, detects its source, converts it and loads it into a model, reporting every key that does not fit.

AVA action detectors (:class:`~vidlab.models.detection.ActionDetector`) hold a recognizer under ``backbone.`` and a
per-box ``head.fc``: a foreign state dict is converted as for the recognizer and then moved under ``backbone.``
(:func:`~vidlab.models.convert._common.as_detector`). MMAction2 detectors (their ``BBoxHeadAVA`` classifier, whose
background row is dropped) and PySlowFast AVA checkpoints map completely; from a recognizer's checkpoint only the
backbone is used for a detector (load with ``drop_head=True``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from pathlib import Path

import torch
from torch import nn

from vidlab.errors import InputError, MissingFileError
from vidlab.models.convert import (
    clip,
    hf,
    mmaction2,
    mvit,
    pyslowfast,
    pytorchvideo,
    severe,
    torchvision,
    videomae,
    videomae_pretrain,
    videomamba,
)
from vidlab.models.convert._common import as_detector
from vidlab.models.distill import student_state_dict

__all__ = [
    "SOURCES",
    "builder_kwargs",
    "convert_state_dict",
    "detect_source",
    "discarded_keys",
    "is_detector",
    "load_checkpoint",
    "load_converted",
    "read_state_dict",
]

# Every source the API names.
SOURCES = (
    "vidlab",
    "mmaction2",
    "pytorchvideo",
    "pyslowfast",
    "torchvision",
    "hf",
    "videomae",
    "videomamba",
    "openai_clip",
    "hf_clip",
    # SEVERE's self-supervised R(2+1)D-18 checkpoints (backbone only)
    *severe.SOURCES,
)
_CONVERTERS = {
    "mmaction2": mmaction2.convert,
    "pytorchvideo": pytorchvideo.convert,
    "pyslowfast": pyslowfast.convert,
    "torchvision": torchvision.convert,
    "hf": hf.convert,
    "videomae": videomae.convert,
    "videomamba": videomamba.convert,
    "openai_clip": clip.convert_openai,
    "hf_clip": clip.convert_hf,
}

# Key shapes of the sources recognised by name patterns alone.
_SIGNATURES = {
    "torchvision": re.compile(r"^(module\.)?stem\.0\.weight$"),
    "hf": re.compile(r"^(module\.)?(videomae|timesformer)\.(embeddings|encoder)\."),
    "videomamba": re.compile(r"^(module\.)?layers\.\d+\.mixer\."),
    # timm-style ViTs (MCG-NJU VideoMAE fine-tunes): checked before PyTorchVideo's ``blocks.N.`` layout
    "videomae": re.compile(r"^(module\.)?(encoder\.)?(patch_embed\.proj\.|blocks\.\d+\.(attn|mlp|norm1)\.)"),
    # CLIP image towers: OpenAI's ``visual.class_embedding`` / ``transformer.resblocks.N.attn.in_proj_*``, HF's
    # ``pre_layrnorm`` (its spelling)
    "openai_clip": clip.OPENAI_SIGNATURE,
    "hf_clip": clip.HF_SIGNATURE,
}


def detect_source(state_dict: dict[str, torch.Tensor]) -> str:
    """Guess which toolbox wrote ``state_dict`` from its key names (``"vidlab"`` when nothing else matches)."""
    keys = list(state_dict)
    ssl = severe.looks_like(keys)  # exact key names of five of SEVERE's layouts
    if ssl is not None:
        return ssl
    if mmaction2.looks_like_mmaction2(keys):
        return "mmaction2"
    if torchvision.looks_like_image_resnet(keys):
        return "torchvision"
    # MViT layouts share ``blocks.N.attn.`` / ``patch_embed.proj.`` with timm-style ViTs: decided first
    if mvit.looks_like_pytorchvideo_mvit(keys):
        return "pytorchvideo"
    if mvit.looks_like_pyslowfast_mvit(keys):
        return "pyslowfast"
    for source, pattern in _SIGNATURES.items():
        if any(pattern.search(k) for k in keys):
            return source
    if pyslowfast.looks_like_pyslowfast(keys):
        return "pyslowfast"
    if pytorchvideo.looks_like_pytorchvideo(keys):
        return "pytorchvideo"
    return "vidlab"


def convert_state_dict(
    state_dict: dict[str, torch.Tensor],
    source: str = "mmaction2",
    model: str | None = None,
    *,
    detector: bool | None = None,
    background_class: bool = True,
) -> dict[str, torch.Tensor]:
    """Rename a state dict written by another toolbox to vidlab's keys.

    Args:
        state_dict: the foreign weights (already unwrapped from ``state_dict`` / ``model``).
        source: one of :data:`SOURCES`, or ``"auto"`` to detect it from the keys.
        model: the vidlab model name the weights are for (e.g. ``"tsm_r50"``, ``"slowonly_r50_4x16_ava"``); lets a
            converter refuse families it has no mapping for.
        detector: convert for an AVA detector (keys under ``backbone.backbone.``, per-box classifier ``head.fc``);
            None: when ``model`` is a registered detection model or the weights are an MMAction2 detector's.
        background_class: an MMAction2 detector's classifier has a background row (class 0) to drop, as in all of
            MMAction2's AVA configs (``num_classes=81``).

    Returns:
        A new dict holding the same tensors under vidlab names.

    Raises:
        ValueError: for a source name not in :data:`SOURCES`.
        NotImplementedError: for a model family the source's converter does not cover.
    """
    if source == "auto":
        source = detect_source(state_dict)
    if source not in SOURCES:
        raise InputError(f"unknown checkpoint source {source!r}; choose one of: auto, {', '.join(SOURCES)}")
    if source == "vidlab":  # a distillation checkpoint's student in its own names (``student.X`` -> ``X``)
        return student_state_dict({k.removeprefix("module."): v for k, v in state_dict.items()})
    if videomae_pretrain.is_pretrain_model(model) and source in ("hf", "videomae"):  # encoder + decoder
        return (videomae_pretrain.from_hf if source == "hf" else videomae_pretrain.from_original)(state_dict)
    if detector is None:
        detector = is_detector(model) or (source == "mmaction2" and mmaction2.looks_like_detector(state_dict))
    if source == "mmaction2":
        converted = mmaction2.convert(state_dict, model=model, background_class=background_class)
    elif source in severe.SOURCES:
        converted = severe.convert(state_dict, source, model=model)
    elif source == "pyslowfast":
        converted = pyslowfast.convert(state_dict, model=model, detector=detector)
    else:
        converted = _CONVERTERS[source](state_dict, model=model)
    return as_detector(converted) if detector else converted


def is_detector(model: str | None) -> bool:
    """Whether ``model`` names a registered detection model (``vidlab.list_models(task="detection")``)."""
    from vidlab.models._registry import UnknownModelError, get_model_info

    if model is None:
        return False
    try:
        return get_model_info(model).task == "detection"
    except UnknownModelError:
        return False


def builder_kwargs(source: str, model: str, converted: dict[str, torch.Tensor]) -> dict:
    """Builder arguments that make zoo model ``model`` the network a ``source`` checkpoint holds (its weights
    already converted): PyTorchVideo's and PySlowFast's variants of MMAction2-configured models (normalised SlowFast
    fusions, X3D's stage-1 shortcut, CSN's BatchNorm epsilon, ...). Empty for the other sources. For a detector,
    its backbone's arguments go in ``backbone_kwargs`` (and PySlowFast's AVA settings are added:
    :data:`~vidlab.models.convert.pyslowfast.DETECTION_KWARGS`)."""
    if is_detector(model):
        from vidlab.models.detection import DETECTORS

        inner = {k.removeprefix("backbone."): v for k, v in converted.items() if k.startswith("backbone.")}
        kwargs = dict(pyslowfast.DETECTION_KWARGS) if source == "pyslowfast" else {}
        backbone = builder_kwargs(source, DETECTORS[model][0], inner)
        return {**kwargs, "backbone_kwargs": backbone} if backbone else kwargs
    if source == "pytorchvideo":
        return pytorchvideo.builder_kwargs(model, converted)
    if source == "pyslowfast":
        return pyslowfast.builder_kwargs(model, converted)
    if source == "hf" and videomae_pretrain.is_pretrain_model(model):
        return dict(videomae_pretrain.HF_KWARGS)
    if source == "hf":
        return hf.builder_kwargs(model, converted)
    if source in ("openai_clip", "hf_clip"):
        return clip.builder_kwargs(model, converted)
    if source == "tclr":  # layer4 dilated in time instead of strided
        return severe.builder_kwargs(model, converted)
    return {}


def discarded_keys(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, str]:
    """``{key: why}`` for the keys of a ``source`` state dict that its converter leaves out on purpose because they
    are not part of the network (a self-supervised method's projection heads, momentum encoder, queue, audio
    network); empty for the sources that convert every key."""
    return severe.discarded(state_dict, source) if source in severe.SOURCES else {}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (``weights_only=True``), unwrapped from ``state_dict`` / ``model``.

    Beside tensors and plain containers, an ``argparse.Namespace`` of training arguments may be in the file (GDT's
    checkpoints keep one under ``args``): it holds plain values and is unpickled as the data it is."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    if clip.is_torchscript(path):  # OpenAI's released CLIP checkpoints: only their tensors are read
        return clip.read_torchscript(path)
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        with allow([argparse.Namespace]) if allow is not None else contextlib.nullcontext():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or pickled objects outside torch's weights-only allow-list
        raise InputError(
            f"cannot load checkpoint {path} with weights_only=True: {e}\n"
            "If it holds metadata that needs unpickling, re-save only its state_dict from a trusted environment."
        ) from e
    if isinstance(obj, dict):
        # MMAction2, vidlab / VideoMAE / VideoMamba, PySlowFast / PyTorchVideo, VideoMAE's DeepSpeed checkpoints
        for key in ("state_dict", "model", "model_state", "module"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(
            f"{path} does not hold a state dict (a dict of tensors, bare or under 'state_dict'/'model'/'model_state')"
        )
    return obj


def _model_name(model: nn.Module) -> str | None:
    # Family check only: "TSM" -> "tsm"; classes outside the zoo skip it.
    return type(model).__name__.lower() or None


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    source: str = "auto",
    strict: bool = True,
    drop_head: bool = False,
    source_frames: int | None = None,
) -> dict:
    """Load weights from a file into ``model``, converting them from another toolbox's layout if needed.

    Args:
        model: the vidlab model to fill (e.g. from :func:`vidlab.create_model`).
        path: a ``torch.save``-d state dict, bare or wrapped in ``state_dict`` (MMAction2) or ``model`` (vidlab).
            It is read with ``weights_only=True``.
        source: one of :data:`SOURCES`, or ``"auto"`` to detect it from the key names.
        strict: raise if any key is missing, unexpected or of another shape (after ``drop_head``).
        drop_head: leave ``head.*`` weights whose shape differs from the model's at their initial values
            (fine-tuning with another number of classes).
        source_frames: clip length the checkpoint was trained on, for token models whose space-time position
            table is resized (a short-clip checkpoint in a long-video model); None: inferred.

    Returns:
        A report: ``source``, ``loaded`` (keys copied), ``missing`` (model keys the file lacks), ``unexpected``
        (file keys the model lacks), ``mismatched`` (``(key, file_shape, model_shape)``, not loaded), ``dropped``
        (file keys not loaded on purpose: head keys skipped by ``drop_head``, and the parts of a self-supervised
        pre-training network that are not the backbone, :func:`discarded_keys`), ``why_dropped`` (``{key:
        reason}`` for each of them), ``initialised`` (the classifier keys of a model loaded from a backbone-only
        source, SEVERE's self-supervised checkpoints: left at their initial values, not an error), ``adapted``
        (position tables resized to the model's token grid or fixed tables it recomputes; see
        :meth:`~vidlab.models._vit.TokenClassifier.adapt_state_dict`).

    Raises:
        ValueError: with ``strict=True``, listing every missing, unexpected and mismatched key; also for a
            file that cannot be read as a state dict.
        NotImplementedError: for a model family the source's converter does not cover.
    """
    state_dict = read_state_dict(path)
    source, converted = convert_for(model, state_dict, source)
    return load_converted(
        model,
        converted,
        source,
        strict=strict,
        drop_head=drop_head,
        origin=str(path),
        discarded=discarded_keys(state_dict, source),
        source_frames=source_frames,
    )


def convert_for(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "auto"):
    """``(source, converted state dict)`` for loading ``state_dict`` into ``model`` (source detected if ``auto``)."""
    from vidlab.models.detection import ActionDetector

    if source == "auto":
        source = detect_source(state_dict)
        shared = severe.candidates(state_dict) if source == "vidlab" else ()
        if shared:  # one layout, several methods: the report's reasons name the method
            raise InputError(
                f"the checkpoint has the layout of {' and '.join(shared)} alike: name its source "
                f"({' or '.join(repr(s) for s in shared)}; `vidlab convert --from {'|'.join(shared)}`)"
            )
    detector = isinstance(model, ActionDetector)
    # a detector's family is its backbone's (the recognizer under ``backbone.``)
    name = _model_name(model.backbone if detector else model) if source != "vidlab" else None
    if name is not None and source == "mmaction2" and name not in mmaction2.FAMILIES:
        name = None  # a model class outside the zoo: apply the generic rules, the key report tells the rest
    # an MMAction2 BBoxHeadAVA classifier with one row more than the model's classes has MMAction2's background row
    cls = next((v for k, v in state_dict.items() if k.endswith("roi_head.bbox_head.fc_cls.weight")), None)
    background = detector and cls is not None and cls.shape[0] == model.num_classes + 1
    converted = convert_state_dict(state_dict, source, name, detector=detector, background_class=background)
    return source, converted


def load_converted(
    model: nn.Module,
    converted: dict[str, torch.Tensor],
    source: str,
    *,
    strict: bool = True,
    drop_head: bool = False,
    origin: str = "state dict",
    discarded: dict[str, str] | None = None,
    source_frames: int | None = None,
) -> dict:
    """Copy an already converted state dict into ``model``; arguments and report as :func:`load_checkpoint`
    (``discarded``: :func:`discarded_keys` of the file, reported as dropped)."""
    adapt = getattr(model, "adapt_state_dict", None)
    converted, adapted = adapt(converted, source_frames) if adapt is not None else (converted, [])
    own = model.state_dict()
    classifier = tuple(getattr(model, "classifier_prefixes", ("head.",)))
    missing = sorted(k for k in own if k not in converted)
    initialised = []
    if source in severe.SOURCES:  # backbone-only weights: the classifier starts fresh (fine-tuning, linear probe)
        initialised = [k for k in missing if k.startswith(classifier)]
        missing = [k for k in missing if not k.startswith(classifier)]
    unexpected = sorted(k for k in converted if k not in own)
    mismatched, dropped = [], []
    to_load = {}
    for key, value in converted.items():
        if key not in own:
            continue
        if value.shape != own[key].shape:
            if drop_head and key.startswith(classifier):
                dropped.append(key)
            else:
                mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
            continue
        to_load[key] = value
    why = {k: "classifier of another class count (drop_head)" for k in dropped}
    why.update(discarded or {})
    report = {
        "source": source,
        "loaded": sorted(to_load),
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": mismatched,
        "dropped": sorted(why),
        "why_dropped": why,
        "initialised": initialised,
        "adapted": adapted,
    }
    if strict and (missing or unexpected or mismatched):
        raise InputError(
            f"checkpoint {origin} (source {source}) does not fit {type(model).__name__}:\n" + _describe(report)
        )
    model.load_state_dict(to_load, strict=False)
    return report


# layers whose shape depends on the number of segments the model was built for (TIN, TANet, TRN)
_TEMPORAL_KEYS = r"\.(offset_net\.fc[12]|tam\.G\.[03])\.|head\.consensus\."


def _listing(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... and {len(items) - limit} more" if len(items) > limit else "")


def _describe(report: dict) -> str:
    lines = []
    for title, items in (("missing keys", report["missing"]), ("unexpected keys", report["unexpected"])):
        if items:
            lines.append(f"  {title} ({len(items)}): {_listing(items)}")
    if report["mismatched"]:
        shapes = [f"{k} file {list(a)} vs model {list(b)}" for k, a, b in report["mismatched"]]
        lines.append(f"  shape mismatches ({len(shapes)}): {_listing(shapes)}")
        if all(k.startswith("head.") or ".aux_head.fc." in k for k, _, _ in report["mismatched"]):
            lines.append(
                "  (another number of classes: build the model with the checkpoint's class count, or drop the head "
                "to fine-tune: drop_head=True, `vidlab convert --drop-head`)"
            )
        elif any(re.search(_TEMPORAL_KEYS, k) for k, _, _ in report["mismatched"]):
            lines.append(
                "  (layers sized by the clip length differ: build the model with the checkpoint's num_segments)"
            )
    keys = report["missing"] + report["unexpected"] + [k for k, _, _ in report["mismatched"]]
    if any(k.startswith("backbone.layer4.0.conv1.") for k in keys) and report["source"] == "tclr":
        lines.append(
            "  (TCLR's layer4 is dilated in time: build r2plus1d_r18 with "
            "vidlab.models.convert.severe.TCLR_KWARGS, as `vidlab convert --from tclr` does)"
        )
    return "\n".join(lines)
