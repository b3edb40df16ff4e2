"""Start video models from image checkpoints ("inflation"), as the references initialise them.

:func:`inflate_state_dict` maps an image checkpoint (any layout :mod:`~vidlab.models.convert.image` reads) onto a
vidlab model and reports every parameter: copied, inflated, resized, initialised (set to a documented value) or
left at the model's own initialisation, and every image tensor that was not used.

**2D ResNet -> ResNet families** (I3D, I3D-NL, SlowOnly, C2D, TPN, CSN, SlowFast; the 2D families TSN, TSM, TIN,
TANet, TRN take the weights as they are). MMAction2's ``pretrained2d=True`` initialisation: a 3D conv whose 2D
counterpart has the same ``(out, in, kh, kw)`` gets the 2D kernel repeated over its temporal size and divided by
it (``w.unsqueeze(2).expand(...) / kt``; a ``1 x k x k`` conv takes the kernel as it is); BatchNorm is copied
(all of a layer or nothing, its running statistics with it). Left at init: non-local blocks, SlowFast's lateral
connections, TPN's neck, heads, and convs of another shape. SlowFast's slow pathway follows MMAction2's
``ResNet3dPathway``: a conv that also takes the fast pathway's lateral features has more input channels than its
2D counterpart, and the extra channels get zero kernels. MMAction2 cannot inflate the fast pathway (its convs are
8x narrower than the 2D network's and ``expand_as`` fails); here it is left at init. CSN's channel-separated
middle convs (``conv2`` / ``bn2``, ``conv2p`` / ``bn2p``) have no 2D counterpart in MMAction2's names and are left
at init with their BatchNorm, as there.

**ViT -> TimeSformer**, two styles (:data:`STYLES`): both copy the patch embedding, CLS token, blocks and final
norm, copy each block's ``norm1`` / ``attn`` into ``temporal_norm1`` / ``temporal_attn`` and set ``time_embed``
to zero. ``mmaction2`` (MMAction2's ``TimeSformer.init_weights``) zeroes every ``temporal_fc``; a position table of
another grid, which MMAction2 would leave at init, is resized bicubically on its 2D grid.
``timesformer`` (facebookresearch/TimeSformer ``load_pretrained``) leaves the first block's ``temporal_fc`` at a
fresh truncated-normal init (its zeroing loop skips block 0) and resizes a position table of another length by
nearest-neighbour interpolation over the flattened sequence, as that code does.

**ViT -> VideoMAE-style ViT**: the 2D patch embedding is inflated over the tubelet (:data:`PATCH_INFLATIONS`:
``center`` puts the 2D kernel on the middle frame and zeros elsewhere, as Unmasked Teacher's and VideoMamba's
``inflate_weight`` do by default; ``average`` repeats it divided by the tubelet size, I3D's way); ``qkv.bias`` is
split into VideoMAE's ``q_bias`` / ``v_bias`` (its attention has no key bias); the final ``norm`` becomes
``fc_norm`` (applied after mean pooling); VideoMAE's fixed sine-cosine position table is recomputed.

**Image VideoMamba -> VideoMamba**: VideoMamba's own loader: the patch embedding inflated as above (tubelet 1: the
kernel as it is), ``temporal_pos_embedding`` zero, everything else copied.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError
from vidlab.models.convert.image import canonical_image_state_dict, read_image_checkpoint

__all__ = ["PATCH_INFLATIONS", "STYLES", "describe", "inflate_state_dict", "load_inflated"]

#: TimeSformer initialisation styles
STYLES = ("mmaction2", "timesformer")
#: how a 2D patch embedding becomes a tubelet one
PATCH_INFLATIONS = ("center", "average")


class _Plan:
    """Values for some of a model's keys, and the report of what happened to every key."""

    def __init__(self, own: dict[str, torch.Tensor], image: dict[str, torch.Tensor]) -> None:
        self.own, self.image = own, image
        self.values: dict[str, torch.Tensor] = {}
        self.report: dict = {"copied": {}, "inflated": {}, "resized": {}, "initialised": {}, "left_at_init": {}}
        self.used: set[str] = set()

    def set(self, key: str, value: torch.Tensor, kind: str, note: str) -> None:
        self.values[key] = value.to(self.own[key].dtype).clone()
        self.report[kind][key] = note

    def copy(self, key: str, src: str) -> bool:
        """Copy image tensor ``src`` into ``key`` when it exists with the same shape."""
        value = self.image.get(src)
        if value is None or value.shape != self.own[key].shape:
            return False
        self.set(key, value, "copied", src)
        self.used.add(src)
        return True

    def leave(self, key: str, why: str) -> None:
        self.report["left_at_init"][key] = why


def inflate_state_dict(
    model: nn.Module, image_state_dict: dict[str, torch.Tensor], *, style: str = "mmaction2", patch: str = "center"
) -> tuple[dict[str, torch.Tensor], dict]:
    """``(values, report)``: tensors for ``model``'s keys from an image checkpoint, and what was done.

    Args:
        model: a vidlab zoo model (its current values are what "left at init" keeps).
        image_state_dict: the image checkpoint's tensors (:func:`~vidlab.models.convert.image.read_image_checkpoint`).
        style: TimeSformer initialisation, one of :data:`STYLES`.
        patch: tubelet inflation of a ViT / VideoMamba patch embedding, one of :data:`PATCH_INFLATIONS`.

    Returns:
        ``values`` (``{model key: tensor}``, only the keys set) and a report: ``layout`` / ``source`` of the image
        checkpoint, ``copied`` / ``inflated`` (``{model key: image key}``), ``resized`` / ``initialised`` /
        ``left_at_init`` (``{model key: how / why}``) and ``unused`` (``{image key: why}``).

    Raises:
        ValueError: for an unknown style, a checkpoint that is no image layout, or one that fits nothing.
        NotImplementedError: for a model family with no counterpart of the checkpoint's layout.
    """
    if style not in STYLES:
        raise InputError(f"inflation style must be one of {', '.join(STYLES)}, got {style!r}")
    if patch not in PATCH_INFLATIONS:
        raise InputError(f"patch inflation must be one of {', '.join(PATCH_INFLATIONS)}, got {patch!r}")
    layout, source, image, unused = canonical_image_state_dict(image_state_dict)
    plan = _Plan(model.state_dict(), image)
    name = type(model).__name__
    family = _family(model, plan.own)
    if (layout, family) == ("resnet", "resnet"):
        _resnet(plan, model)
    elif layout == "vit" and family in ("timesformer", "videomae"):
        if family == "timesformer":
            _timesformer(plan, style, patch)
        else:
            _videomae(plan, model, style, patch)
    elif (layout, family) == ("videomamba", "videomamba"):
        _videomamba(plan, patch)
    elif family == "r2plus1d":
        raise NotImplementedError(
            f"an image {layout} cannot start {name}: R(2+1)D factorises every conv into a spatial and a temporal "
            "one, which have no 2D counterpart (MMAction2 does not inflate it either)"
        )
    else:
        raise NotImplementedError(
            f"an image {layout} cannot start {name}: 2D ResNets inflate into the ResNet families (I3D, SlowOnly, "
            "SlowFast, C2D, CSN, TPN and the 2D ones), ViTs into TimeSformer and VideoMAE-style ViTs, image "
            "VideoMambas into VideoMamba"
        )
    if not plan.report["copied"] and not plan.report["inflated"]:
        raise InputError(f"no tensor of the image checkpoint ({source} {layout}) fits {name}")
    for key in plan.own:
        if not any(key in plan.report[k] for k in ("copied", "inflated", "resized", "initialised", "left_at_init")):
            plan.leave(key, _default_reason(key))
    for key in image:
        if key not in plan.used:
            unused.setdefault(key, f"no counterpart in {name}")
    return plan.values, {"layout": layout, "source": source, **plan.report, "unused": unused}


def load_inflated(model: nn.Module, image: str | Path | dict[str, torch.Tensor], **options) -> dict:
    """Fill ``model`` from an image checkpoint (a file, read with
    :func:`~vidlab.models.convert.image.read_image_checkpoint`, or its tensors): :func:`inflate_state_dict` with the
    same options; returns its report."""
    if not isinstance(image, dict):
        image = read_image_checkpoint(image)
    values, report = inflate_state_dict(model, image, **options)
    model.load_state_dict(values, strict=False)
    return report


def describe(report: dict, limit: int = 6) -> list[str]:
    """Lines that summarise an inflation report: counts per outcome, with the reasons of what was left."""
    lines = [
        f"image checkpoint: {report['source']} {report['layout']}; copied {len(report['copied'])}, inflated "
        f"{len(report['inflated'])}, resized {len(report['resized'])}, initialised {len(report['initialised'])}, "
        f"left at init {len(report['left_at_init'])}, unused {len(report['unused'])}"
    ]
    for title in ("inflated", "resized", "initialised", "left_at_init", "unused"):
        by_why: dict[str, list[str]] = {}
        for key, why in report[title].items():
            by_why.setdefault(why if title not in ("inflated",) else "2D kernel over time", []).append(key)
        for why, keys in by_why.items():
            shown = ", ".join(keys[:limit]) + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")
            lines.append(f"  {title.replace('_', ' ')} ({len(keys)}): {why}: {shown}")
    lines += [f"  note: {n}" for n in report.get("notes", [])]
    return lines


def _family(model: nn.Module, own: dict[str, torch.Tensor]) -> str:
    name = type(model).__name__
    if name in ("TimeSformer", "VideoMamba"):
        return name.lower()
    if name == "VideoMAE":
        return "videomae"
    if any(k.endswith(".conv_s.weight") for k in own):  # factorised convs: no 2D counterpart
        return "r2plus1d"
    if "backbone.conv1.weight" in own or "backbone.slow_path.conv1.weight" in own:
        return "resnet"
    return name.lower()


def _default_reason(key: str) -> str:
    if key.startswith("head.") or ".aux_head." in key:
        return "classifier: trained from scratch"
    if key.startswith("neck."):
        return "neck: no counterpart in the image network"
    return "no counterpart in the image checkpoint"


# --- ResNets ---

_PATHWAY = re.compile(r"^(slow_path|fast_path)\.")


def _separated_convs(model: nn.Module) -> set[str]:
    """``backbone.``-relative module names of CSN's channel-separated convs and their BatchNorms."""
    out = set()
    for name, module in model.named_modules():
        conv2 = getattr(module, "conv2", None)
        if isinstance(conv2, nn.Conv3d) and conv2.groups > 1 and hasattr(module, "bn2"):
            base = name.removeprefix("backbone.") + "."
            out.update(base + n for n in ("conv2", "bn2", "conv2p", "bn2p"))
    return out


def _resnet(plan: _Plan, model: nn.Module) -> None:
    separated = _separated_convs(model)
    lateral = any(k.startswith("backbone.laterals.") for k in plan.own)
    for key, target in plan.own.items():
        if not key.startswith("backbone."):
            continue
        rest = key.removeprefix("backbone.")
        module = rest.rsplit(".", 1)[0]
        src = _PATHWAY.sub("", rest)
        if rest.startswith("laterals.") or ".lateral" in rest:
            plan.leave(key, "lateral connection: no 2D counterpart")
        elif ".non_local." in rest:
            plan.leave(key, "non-local block: no 2D counterpart")
        elif _PATHWAY.sub("", module) in separated or module in separated:
            plan.leave(key, "channel-separated conv (CSN): no 2D counterpart")
        elif src not in plan.image:
            plan.leave(key, "not in the image checkpoint")
        elif key.endswith("num_batches_tracked"):
            continue  # with its BatchNorm's weight, below
        elif not _resnet_tensor(plan, key, src, target, pad=lateral and rest.startswith("slow_path.")):
            if rest.startswith("fast_path."):
                why = "fast pathway: narrower than the 2D network (MMAction2 cannot inflate it either)"
            else:
                why = f"shape {list(target.shape)} does not fit the image's {list(plan.image[src].shape)}"
            plan.leave(key, why)
    for key in plan.own:  # BatchNorm counters travel with their layer's weights, as MMAction2 copies buffers
        if key.startswith("backbone.") and key.endswith("num_batches_tracked"):
            weight = key.removesuffix("num_batches_tracked") + "weight"
            src = _PATHWAY.sub("", key.removeprefix("backbone."))
            if weight in plan.report["copied"] and src in plan.image:
                plan.copy(key, src)
            elif key not in plan.report["left_at_init"]:
                plan.leave(key, "its BatchNorm is left at init" if src in plan.image else "not in the image checkpoint")


def _resnet_tensor(plan: _Plan, key: str, src: str, target: torch.Tensor, pad: bool) -> bool:
    """Copy or inflate one tensor; False when the shapes do not fit."""
    w2d = plan.image[src]
    if target.dim() == 5 and w2d.dim() == 4:
        out_c, in_c, kt, kh, kw = target.shape
        if pad and w2d.shape[1] < in_c and (w2d.shape[0], w2d.shape[2], w2d.shape[3]) == (out_c, kh, kw):
            zeros = w2d.new_zeros((out_c, in_c - w2d.shape[1], kh, kw))
            w2d = torch.cat((w2d, zeros), dim=1)  # lateral input channels start at zero (ResNet3dPathway)
            note = f"{src} (x{kt} / {kt}, {in_c - plan.image[src].shape[1]} lateral input channels zero)"
        elif w2d.shape != (out_c, in_c, kh, kw):
            return False
        else:
            note = f"{src} (x{kt} / {kt})"
        plan.set(key, w2d.unsqueeze(2).expand_as(target) / kt, "inflated", note)
        plan.used.add(src)
        return True
    return plan.copy(key, src)


# --- token models ---


def _inflate_patch(w2d: torch.Tensor, kt: int, how: str) -> torch.Tensor:
    if how == "average":
        return w2d.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
    out = torch.zeros((*w2d.shape[:2], kt, *w2d.shape[2:]), dtype=w2d.dtype)
    out[:, :, kt // 2] = w2d
    return out


def _patch_embed(plan: _Plan, patch: str) -> None:
    key, src = "backbone.patch_embed.proj.weight", "patch_embed.proj.weight"
    target, w2d = plan.own[key], plan.image.get(src)
    if w2d is not None and target.dim() == 5 and w2d.dim() == 4 and w2d.shape == target.shape[:2] + target.shape[3:]:
        kt = target.shape[2]
        plan.set(key, _inflate_patch(w2d, kt, patch), "inflated", f"{src} ({patch} over {kt} frames)")
        plan.used.add(src)
    elif w2d is None or not plan.copy(key, src):
        plan.leave(
            key,
            f"patch embedding {list(target.shape)} does not fit the image's "
            f"{list(w2d.shape) if w2d is not None else 'none'}",
        )
    if "backbone.patch_embed.proj.bias" in plan.own:
        plan.copy("backbone.patch_embed.proj.bias", "patch_embed.proj.bias")


def _copy_same_names(plan: _Plan, skip: tuple[str, ...] = ()) -> None:
    for key in plan.own:
        rest = key.removeprefix("backbone.")
        if key.startswith("backbone.") and rest in plan.image and not rest.startswith(skip):
            if not plan.copy(key, rest):
                plan.leave(
                    key, f"shape {list(plan.own[key].shape)} does not fit the image's {list(plan.image[rest].shape)}"
                )


def _pos_embed(plan: _Plan, key: str, prefix: int, grid: tuple[int, int, int], style: str) -> None:
    """The image's spatial table (with ``prefix`` leading entries: CLS) into ``key``, resized if needed."""
    table, own = plan.image.get("pos_embed"), plan.own.get(key)
    if table is None or own is None:
        return
    plan.used.add("pos_embed")
    if prefix == 0:
        table = table[:, 1:]  # the image's CLS position has no place in a table without CLS
    if table.shape == own.shape:
        plan.set(key, table, "copied", "pos_embed")
        return
    n = table.shape[1] - prefix
    side = int(round(n**0.5))
    if style == "timesformer" and grid[0] == 1:  # facebookresearch/TimeSformer: nearest over the flat sequence
        body = F.interpolate(table[:, prefix:].transpose(1, 2), size=own.shape[1] - prefix, mode="nearest")
        plan.set(
            key,
            torch.cat((table[:, :prefix], body.transpose(1, 2)), dim=1),
            "resized",
            f"pos_embed: {n} -> {own.shape[1] - prefix} positions, nearest over the sequence (TimeSformer)",
        )
        return
    from vidlab.models.layers.transformer import grid_table

    if side * side != n:
        plan.leave(key, f"the image table's {n} positions are no square grid")
        return
    plan.set(
        key,
        grid_table(table, (1, side, side), grid, prefix),
        "resized",
        f"pos_embed: grid 1x{side}x{side} -> {'x'.join(map(str, grid))} (bicubic in space, repeated in time)",
    )


def _timesformer(plan: _Plan, style: str, patch: str) -> None:
    _patch_embed(plan, patch)
    _copy_same_names(plan, skip=("patch_embed.", "pos_embed"))
    side = int(round((plan.own["backbone.pos_embed"].shape[1] - 1) ** 0.5))
    _pos_embed(plan, "backbone.pos_embed", 1, (1, side, side), style)
    if "backbone.time_embed" in plan.own:
        t = plan.own["backbone.time_embed"]
        plan.set("backbone.time_embed", torch.zeros_like(t), "initialised", "zero: an image has no time positions")
    for key in plan.own:
        m = re.match(r"backbone\.blocks\.(\d+)\.(temporal_norm1|temporal_attn)\.(.+)$", key)
        if m:
            i, part, rest = m.groups()
            plan.copy(key, f"blocks.{i}.{'norm1' if part == 'temporal_norm1' else 'attn'}.{rest}")
            if key in plan.report["copied"]:
                plan.report["copied"][key] += " (temporal copy of the spatial layer)"
        m = re.match(r"backbone\.blocks\.(\d+)\.temporal_fc\.(weight|bias)$", key)
        if m:
            first = m.group(1) == "0"
            if style == "timesformer" and first:
                value = (
                    nn.init.trunc_normal_(torch.zeros_like(plan.own[key]), std=0.02)
                    if m.group(2) == "weight"
                    else torch.zeros_like(plan.own[key])
                )
                plan.set(
                    key,
                    value,
                    "initialised",
                    "truncated normal (std 0.02), bias zero: TimeSformer does not zero the first block's temporal_fc",
                )
            else:
                plan.set(
                    key,
                    torch.zeros_like(plan.own[key]),
                    "initialised",
                    "zero: temporal attention starts as the identity",
                )


def _videomae(plan: _Plan, model: nn.Module, style: str, patch: str) -> None:
    _patch_embed(plan, patch)
    _copy_same_names(plan, skip=("patch_embed.", "pos_embed", "norm."))
    dim = plan.own["backbone.patch_embed.proj.weight"].shape[0]
    for key in plan.own:
        m = re.match(r"backbone\.blocks\.(\d+)\.attn\.(q|v)_bias$", key)
        if m and (bias := plan.image.get(f"blocks.{m.group(1)}.attn.qkv.bias")) is not None:
            part = bias[:dim] if m.group(2) == "q" else bias[2 * dim :]
            plan.set(key, part, "copied", f"blocks.{m.group(1)}.attn.qkv.bias[{m.group(2)}]")
            plan.used.add(f"blocks.{m.group(1)}.attn.qkv.bias")
    for target in ("backbone.fc_norm", "backbone.norm"):
        for param in ("weight", "bias"):
            if f"{target}.{param}" in plan.own:
                plan.copy(f"{target}.{param}", f"norm.{param}")
    if "backbone.pos_embed" in plan.own:  # a learnable table (no CLS): the spatial table repeated in time
        _pos_embed(plan, "backbone.pos_embed", 0, tuple(model.backbone.grid), style)
    elif "pos_embed" in plan.image:
        plan.used.add("pos_embed")
        plan.report.setdefault("notes", []).append("pos_embed: VideoMAE's sine-cosine table is fixed, recomputed")
    if any(k.endswith("attn.q_bias") for k in plan.own):
        plan.report.setdefault("notes", []).append("qkv.bias: the key part is dropped (VideoMAE has no key bias)")


def _videomamba(plan: _Plan, patch: str) -> None:
    _patch_embed(plan, patch)
    _copy_same_names(plan, skip=("patch_embed.", "pos_embed"))
    own = plan.own["backbone.pos_embed"]
    side = int(round((own.shape[1] - 1) ** 0.5))
    _pos_embed(plan, "backbone.pos_embed", 1, (1, side, side), "mmaction2")
    t = plan.own["backbone.temporal_pos_embedding"]
    plan.set(
        "backbone.temporal_pos_embedding", torch.zeros_like(t), "initialised", "zero: as VideoMamba's video models"
    )
