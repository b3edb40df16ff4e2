"""Self-supervised R(2+1)D-18 checkpoints evaluated by SEVERE -> vidlab's ``r2plus1d_r18``.

SEVERE (Thoker et al., "How Severe is Benchmark-Sensitivity in Video Self-Supervised Learning?", ECCV 2022) fine-tunes
nine methods' Kinetics-400 checkpoints on torchvision's ``r2plus1d_18``. Each file wraps that backbone in the
method's pre-training network; this module takes the backbone out, renames it to torchvision's layout and hands it to
:mod:`~vidlab.models.convert.torchvision`. Every other key is either a known part of the pre-training network
(projection heads, momentum encoders, queues, audio networks), left out with the reason :func:`discarded` gives, or
kept under its own name, so that a strict load reports it as unexpected.

Backbone keys per source, and the keys left out:

- ``ctp``: ``backbone.*`` in pyvrl's names (``stem.conv_s``, ``convK.bn_s``, ``downsample_bn`` ...); ``head.*``
  (trajectory-prediction head).
- ``gdt``: ``video_network.base.*``; ``audio_network.*``, ``mlp_v.*``, ``mlp_a.*``.
- ``rspnet``: ``encoder_q.encoder.base_network.{0: stem, 1-4: layer1-4}``; ``encoder_k.*``, ``queue``,
  ``queue_ptr``, ``encoder_q.fc1.*`` / ``fc2.*``, the encoder's classifier (``encoder_q.encoder.linear.*`` ...).
- ``tclr``: ``module.0.*``; ``module.1.*`` (projection MLP), ``module.0.fc.*``.
- ``pretext_contrast``: ``module.base_network.{0: stem, 1-4: layer1-4}``; ``module.projector.*``,
  ``module.fc_seq.*``, ``module.fc_speed.*``, ``module.fc.*``.
- ``moco``, ``videomoco``: ``module.encoder_q.*``; ``module.encoder_q.fc.*``, ``module.encoder_k.*``,
  ``module.queue``, ``module.queue_ptr``.
- ``selavi``: ``module.video_network.base.*``; ``module.audio_network.*``, ``module.mlp_v*``, ``module.mlp_a*``.
- ``avid_cma``: ``module.video_model.*``; ``module.audio_model.*``, ``module.video_proj.*``, ``module.audio_proj.*``.

A leading ``module.`` (DataParallel) is optional for every source. RSPNet's and AVID-CMA's files are SEVERE's
re-pretrainings on the common backbone (the authors' releases use other networks); CtP's has torchvision's widths
(SEVERE's pyvrl fork). TCLR's R(2+1)D-18 replaces ``layer4``'s temporal stride by a dilated full 3D conv
(``layer4.0.conv1.0``: 3x3x3, stride (1, 2, 2), dilation (2, 1, 1)): such weights need ``r2plus1d_r18`` built with
:data:`TCLR_KWARGS`, which :func:`builder_kwargs` returns when the converted weights hold that conv.
``tests/assets/severe_ssl_keys.json`` lists the layouts (``make_severe_ssl_keys.py``).
"""

from __future__ import annotations

import re

import torch

from vidlab.errors import InputError
from vidlab.models.convert import torchvision
from vidlab.models.convert._common import collect

__all__ = ["SOURCES", "TCLR_KWARGS", "builder_kwargs", "candidates", "convert", "discarded", "looks_like"]

SOURCES = ("ctp", "gdt", "rspnet", "tclr", "pretext_contrast", "moco", "videomoco", "selavi", "avid_cma")

#: ``r2plus1d_r18`` arguments of TCLR's network: ``layer4`` without temporal stride, its first conv dilated in time.
TCLR_KWARGS = {"temporal_strides": (1, 2, 2, 1), "temporal_dilations": (1, 1, 1, 2)}

_MOCO_DROPS = (
    (r"encoder_q\.fc\.", "MoCo projection head (encoder_q.fc)"),
    (r"encoder_k\.", "MoCo momentum key encoder"),
    (r"queue(_ptr)?$", "MoCo queue of negative keys"),
)
# (backbone prefix, (pattern, reason) of the keys left out); keys as written, after an optional leading "module."
_LAYOUTS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "ctp": ("backbone.", ((r"head\.", "CtP trajectory-prediction head"),)),
    "gdt": (
        "video_network.base.",
        (
            (r"audio_network\.", "GDT audio network"),
            (r"mlp_v\.", "GDT video projection head"),
            (r"mlp_a\.", "GDT audio projection head"),
        ),
    ),
    "rspnet": (
        "encoder_q.encoder.base_network.",
        (
            (r"encoder_k\.", "MoCo momentum key encoder"),
            (r"queue(_ptr)?$", "MoCo queue of negative keys"),
            (r"encoder_q\.fc[12]\.", "RSPNet projection heads (speed / appearance)"),
            (r"encoder_q\.encoder\.(fc|linear|head|new_fc|fc8)\.", "classifier of the pre-training encoder"),
        ),
    ),
    "tclr": (
        "0.",
        (
            (r"1\.", "TCLR projection MLP"),
            (r"0\.fc\.", "classifier of the pre-training encoder"),
        ),
    ),
    "pretext_contrast": (
        "base_network.",
        (
            (r"projector\.", "Pretext-Contrast projection head"),
            (r"(fc_seq|fc_speed|fc)\.", "Pretext-Contrast pretext-task classifier"),
        ),
    ),
    "moco": ("encoder_q.", _MOCO_DROPS),
    "videomoco": ("encoder_q.", _MOCO_DROPS),
    "selavi": (
        "video_network.base.",
        (
            (r"audio_network\.", "SeLaVi audio network"),
            (r"mlp_v\d*\.", "SeLaVi video clustering head"),
            (r"mlp_a\d*\.", "SeLaVi audio clustering head"),
        ),
    ),
    "avid_cma": (
        "video_model.",
        (
            (r"audio_model\.", "AVID-CMA audio network"),
            (r"(video|audio)_proj\.", "AVID-CMA projection head"),
        ),
    ),
}

# pyvrl (CtP) names -> torchvision's r2plus1d_18 names
_PYVRL_RULES = [
    (re.compile(r"^stem\.conv_s\."), "stem.0."),
    (re.compile(r"^stem\.bn_s\."), "stem.1."),
    (re.compile(r"^stem\.conv_t\."), "stem.3."),
    (re.compile(r"^stem\.bn_t\."), "stem.4."),
    (re.compile(r"^(layer\d\.\d+\.conv\d)\.conv_s\."), r"\1.0.0."),
    (re.compile(r"^(layer\d\.\d+\.conv\d)\.bn_s\."), r"\1.0.1."),
    (re.compile(r"^(layer\d\.\d+\.conv\d)\.conv_t\."), r"\1.0.3."),
    (re.compile(r"^(layer\d\.\d+)\.bn(\d)\."), r"\1.conv\2.1."),
    (re.compile(r"^(layer\d\.\d+)\.downsample\.conv\."), r"\1.downsample.0."),
    (re.compile(r"^(layer\d\.\d+)\.downsample_bn\."), r"\1.downsample.1."),
]
# a torchvision block conv that is one Conv3d instead of a factorised one (TCLR's layer4.0.conv1.0)
_FULL_CONV = re.compile(r"^(layer\d\.\d+)\.conv(\d)\.0\.weight$")


def _check(source: str) -> None:
    if source not in SOURCES:
        raise InputError(f"unknown SEVERE source {source!r}; choose one of: {', '.join(SOURCES)}")


def _unwrapped(key: str) -> str:
    return key.removeprefix("module.")


def discarded(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, str]:
    """``{key: why}`` for the keys of a ``source`` checkpoint that are not part of the video backbone and are left
    out by :func:`convert` (projection heads, momentum encoders, queues, audio networks)."""
    _check(source)
    _, drops = _LAYOUTS[source]
    out = {}
    for key in state_dict:
        name = _unwrapped(key)
        reason = next((why for pattern, why in drops if re.match(pattern, name)), None)
        if reason is not None:
            out[key] = reason
    return out


def _to_torchvision(name: str, source: str) -> str:
    """A backbone key (its prefix removed) in torchvision's ``r2plus1d_18`` names."""
    if source == "ctp":
        for pattern, repl in _PYVRL_RULES:
            name, n = pattern.subn(repl, name)
            if n:
                break
    elif source in ("rspnet", "pretext_contrast"):  # nn.Sequential(stem, layer1, ..., layer4, pool)
        index, _, rest = name.partition(".")
        name = ("stem" if index == "0" else f"layer{index}") + "." + rest
    return name


def convert(state_dict: dict[str, torch.Tensor], source: str, model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a ``source`` checkpoint's backbone to ``r2plus1d_r18``'s keys (``backbone.*``; no ``head``: these
    checkpoints have no classifier). The keys of :func:`discarded` are left out; any other key outside the backbone
    is kept under its own name (a strict load reports it).

    Raises:
        ValueError: for a source not in :data:`SOURCES`, or a checkpoint with no key of the source's backbone.
    """
    _check(source)
    prefix, _ = _LAYOUTS[source]
    dropped = discarded(state_dict, source)
    backbone, other = {}, {}
    for key, value in state_dict.items():
        if key in dropped:
            continue
        name = _unwrapped(key)
        if name.startswith(prefix):
            backbone[_to_torchvision(name.removeprefix(prefix), source)] = value
        else:
            other[key] = value
    if not backbone:
        raise InputError(
            f"no {source} backbone keys ({prefix}*, optionally under module.) in the checkpoint; is it a {source} "
            f"checkpoint? Its first keys: {', '.join(list(state_dict)[:5])}"
        )
    if not torchvision.looks_like_r2plus1d(backbone):
        raise InputError(
            f"the {source} backbone ({prefix}*) is not torchvision's r2plus1d_18 layout (no stem.0, stem.3, "
            f"layer1.0.conv1.0.0); its first keys: {', '.join(list(backbone)[:5])}"
        )
    converted = torchvision.convert(backbone)
    pairs = []
    for key, value in converted.items():
        m = _FULL_CONV.match(key)
        pairs.append((key, f"backbone.{m.group(1)}.conv{m.group(2)}.weight" if m else key, value))
    return collect(pairs + [(k, k, v) for k, v in other.items()], source)


def builder_kwargs(model: str | None, converted: dict[str, torch.Tensor]) -> dict:
    """:data:`TCLR_KWARGS` when ``layer4``'s first conv is one dilated 3D conv (TCLR), else nothing."""
    weight = converted.get("backbone.layer4.0.conv1.weight")
    full_conv = weight is not None and weight.dim() == 5 and tuple(weight.shape[2:]) == (3, 3, 3)
    return dict(TCLR_KWARGS) if full_conv else {}


def looks_like(keys) -> str | None:
    """The SEVERE source whose layout ``keys`` have, where only one has it: ``ctp``, ``rspnet``, ``tclr``,
    ``pretext_contrast``, ``avid_cma``. GDT and SeLaVi, and MoCo and VideoMoCo, write the same layouts (they are
    told apart by name only: ``--from``), so they are not detected."""
    names = {_unwrapped(k) for k in keys}
    if "backbone.stem.conv_s.weight" in names and "head.pred_head.weight" in names:
        return "ctp"
    if "encoder_q.encoder.base_network.0.0.weight" in names:
        return "rspnet"
    if "0.stem.0.weight" in names and "1.fc1.weight" in names:
        return "tclr"
    if "base_network.0.0.weight" in names and "base_network.1.0.conv1.0.0.weight" in names:
        return "pretext_contrast"
    if "video_model.stem.0.weight" in names and any(n.startswith("audio_model.") for n in names):
        return "avid_cma"
    return None


def candidates(keys) -> tuple[str, ...]:
    """The SEVERE sources that share the layout of ``keys`` and are not told apart by :func:`looks_like`."""
    names = {_unwrapped(k) for k in keys}
    if "encoder_q.stem.0.weight" in names and "encoder_k.stem.0.weight" in names:
        return ("moco", "videomoco")
    if "video_network.base.stem.0.weight" in names and any(n.startswith("audio_network.") for n in names):
        return ("gdt", "selavi")
    return ()
