"""Build MMAction2 1.2.0 recognizers that correspond to vidlab zoo models (reference side only).

Used by ``make_mmaction2_fixtures.py`` (small parity fixtures) and ``benchmarks/parity.py`` (full-size
parity). Runs in the reference environment; ``refshim`` must be imported first. Nothing here is imported by
vidlab itself.

Two stand-ins make the reference runnable on a CPU-only mmcv-lite:

- :func:`tin_shift_loop` replaces ``mmcv.ops.tin_shift`` (a compiled op mmcv-lite lacks) by a straightforward
  loop over samples, groups and frames, written from the op's definition (frame ``t`` moves to ``t + shift``);
- :func:`record_trn_relations` records the relation subsets MMAction2's multi-scale TRN head draws with
  ``np.random.choice`` during a forward pass, so vidlab can replay them.
"""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager
from pathlib import Path

import mmaction
import numpy as np
import torch
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmengine.config import Config

CONFIGS = Path(mmaction.__file__).parent / ".mim" / "configs" / "recognition"

_TSM = "tsm/tsm_imagenet-pretrained-{}_8xb16-1x1x8-50e_kinetics400-rgb.py"
_TSN = "tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py"

# vidlab name -> (config file, backbone overrides, head overrides). Depth overrides for sizes without a config.
MODELS_2D: dict[str, tuple[str, dict, dict]] = {
    "tsn_r18": (_TSN, {"depth": 18}, {"in_channels": 512}),
    "tsn_r34": (_TSN, {"depth": 34}, {"in_channels": 512}),
    "tsn_r50": (_TSN, {}, {}),
    "tsn_r101": ("tsn/tsn_imagenet-pretrained-r101_8xb32-1x1x8-100e_kinetics400-rgb.py", {}, {}),
    "tsn_r152": (_TSN, {"depth": 152}, {}),
    "tsn_mobilenetv2": (_TSN, {"type": "MobileNetV2", "depth": None, "norm_eval": None}, {"in_channels": 1280}),
    "tsm_r18": (_TSM.format("r50"), {"depth": 18}, {"in_channels": 512}),
    "tsm_r50": (_TSM.format("r50"), {}, {}),
    "tsm_r101": ("tsm/tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb.py", {}, {}),
    "tsm_mobilenetv2": ("tsm/tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb.py", {}, {}),
    "tsm_r50_nl_dot_product": (_TSM.format("r50-nl-dot-product"), {}, {}),
    "tsm_r50_nl_embedded_gaussian": (_TSM.format("r50-nl-embedded-gaussian"), {}, {}),
    "tsm_r50_nl_gaussian": (_TSM.format("r50-nl-gaussian"), {}, {}),
    "tin_r18": (
        "tin/tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb.py",
        {"depth": 18},
        {"in_channels": 512},
    ),
    "tin_r50": ("tin/tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb.py", {}, {}),
    "tanet_r50": ("tanet/tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb.py", {}, {}),
    "trn_r18": ("trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py", {"depth": 18}, {"in_channels": 512}),
    "trn_r50": ("trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py", {}, {}),
    "trn_r50_single_scale": (
        "trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py",
        {},
        {"relation_type": "TRN"},
    ),
}
MODELS_2D["c2d_r50_nopool"] = ("c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py", {}, {})
MODELS_2D["tpn_tsm_r50"] = ("tpn/tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb.py", {}, {})
MODELS_2D["c2d_r101_nopool"] = ("c2d/c2d_r101-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py", {}, {})

_I3D = "i3d/i3d_imagenet-pretrained-r50{}_8xb8-32x2x1-100e_kinetics400-rgb.py"
_CSN = "csn/ircsn_ig65m-pretrained-r{}-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py"
_SLOWONLY = "slowonly/slowonly_r50_8xb16-{}x1-256e_kinetics400-rgb.py"
_X3D_S = "x3d/x3d_s_13x6x1_facebook-kinetics400-rgb.py"
MODELS_3D: dict[str, tuple[str, dict, dict]] = {
    "c2d_r50": ("c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py", {}, {}),
    "c2d_r101": ("c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py", {"depth": 101}, {}),
    "c3d_sports1m": ("c3d/c3d_sports1m-pretrained_8xb30-16x1x1-45e_ucf101-rgb.py", {}, {}),
    "i3d_r50": (_I3D.format(""), {}, {}),
    "i3d_r50_heavy": (_I3D.format("-heavy"), {}, {}),
    "i3d_r50_nl_dot_product": (_I3D.format("-nl-dot-product"), {}, {}),
    "i3d_r50_nl_embedded_gaussian": (_I3D.format("-nl-embedded-gaussian"), {}, {}),
    "i3d_r50_nl_gaussian": (_I3D.format("-nl-gaussian"), {}, {}),
    # SyncBN -> BN3d (same parameters and eval-mode arithmetic; SyncBN needs a process group to train)
    "r2plus1d_r34": (
        "r2plus1d/r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb.py",
        {"norm_cfg": {"type": "BN3d", "requires_grad": True, "eps": 1e-3}},
        {},
    ),
    "ircsn_r50": (_CSN.format(50), {}, {}),
    "ircsn_r101": (_CSN.format(152), {"depth": 101}, {}),
    "ircsn_r152": (_CSN.format(152), {}, {}),
    "ipcsn_r152": ("csn/ipcsn_r152_32x2x1-180e_kinetics400-rgb.py", {}, {}),
    "slowonly_r50_4x16": (_SLOWONLY.format("4x16"), {}, {}),
    "slowonly_r50_8x8": (_SLOWONLY.format("8x8"), {}, {}),
    "slowonly_r101_8x8": ("slowonly/slowonly_r101_8xb16-8x8x1-196e_kinetics400-rgb.py", {}, {}),
    "slowonly_r50_nl_8x8": (
        "slowonly/slowonly_r50-in1k-pre-nl-embedded-gaussian_8xb16-8x8x1-steplr-150e_kinetics400-rgb.py",
        {},
        {},
    ),
    "slowfast_r50_4x16": ("slowfast/slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py", {}, {}),
    "slowfast_r50_8x8": ("slowfast/slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb.py", {}, {}),
    "slowfast_r101_8x8": ("slowfast/slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb.py", {}, {}),
    "slowfast_r101_r50_4x16": ("slowfast/slowfast_r101-r50_32xb8-4x16x1-256e_kinetics400-rgb.py", {}, {}),
    "tpn_slowonly_r50": ("tpn/tpn-slowonly_r50_8xb8-8x8x1-150e_kinetics400-rgb.py", {}, {}),
    "x3d_xs": (_X3D_S, {}, {}),  # X3D-XS is the X3D-S network on 4-frame clips
    "x3d_s": (_X3D_S, {}, {}),
    "x3d_m": ("x3d/x3d_m_16x5x1_facebook-kinetics400-rgb.py", {}, {}),
    "x3d_l": (_X3D_S, {"gamma_d": 5.0}, {}),  # MMAction2 has no X3D-L config
}

# Transformers (Recognizer3D too: one (C, T, H, W) clip per view)
_TIMESFORMER = "timesformer/timesformer_{}_8xb8-8x32x1-15e_kinetics400-rgb.py"
_VIDEOMAE = "videomae/vit-{}-p16_videomae-k400-pre_16x4x1_kinetics-400.py"
_VIDEOMAEV2 = "videomaev2/vit-{}-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400.py"
MODELS_3D |= {
    "timesformer_divst": (_TIMESFORMER.format("divST"), {}, {}),
    "timesformer_jointst": (_TIMESFORMER.format("jointST"), {}, {}),
    "timesformer_spaceonly": (_TIMESFORMER.format("spaceOnly"), {}, {}),
    "videomae_vit_b": (_VIDEOMAE.format("base"), {}, {}),
    "videomae_vit_l": (_VIDEOMAE.format("large"), {}, {}),
    "videomaev2_vit_s": (_VIDEOMAEV2.format("small"), {}, {}),  # distilled from ViT-g, K710 pre-training
    "videomaev2_vit_b": (_VIDEOMAEV2.format("base"), {}, {}),
    "mvit_v2_s": ("mvit/mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb.py", {}, {}),
    "mvit_v2_b": ("mvit/mvit-base-p244_32x3x1_kinetics400-rgb.py", {}, {}),
}
ALL = {**MODELS_2D, **MODELS_3D}


def tin_shift_loop(data: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``mmcv.ops.tin_shift`` as a plain loop: ``data (N, T, C, HW)``, ``shift (N, G)`` int; channel ``c`` is
    in group ``c // (C // G)``; ``out[n, t + shift[n, g]] = data[n, t]`` where in range, zero elsewhere."""
    n, t, c, _ = data.shape
    groups = shift.shape[1]
    per_group = c // groups
    out = torch.zeros_like(data)
    for i in range(n):
        for g in range(groups):
            s = int(shift[i, g])
            chans = slice(g * per_group, (g + 1) * per_group)
            for src in range(t):
                dst = src + s
                if 0 <= dst < t:
                    out[i, dst, chans] = data[i, src, chans]
    return out


def install_tin_shift() -> None:
    """Make ``from mmcv.ops import tin_shift`` (inside MMAction2's TIN) find :func:`tin_shift_loop`."""
    ops = sys.modules.get("mmcv.ops")
    if ops is None or not hasattr(ops, "tin_shift"):
        ops = types.ModuleType("mmcv.ops")
        ops.tin_shift = tin_shift_loop
        sys.modules["mmcv.ops"] = ops


@contextmanager
def record_trn_relations():
    """Record the ``np.random.choice`` draws of MMAction2's ``RelationModuleMultiScale`` during one forward.

    Yields a list that receives, per call, the drawn indices; :func:`trn_relations` turns it into vidlab's
    ``set_relations`` argument."""
    calls: list[list[int]] = []
    original = np.random.choice

    def choice(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append([int(i) for i in np.atleast_1d(out)])
        return out

    np.random.choice = choice
    try:
        yield calls
    finally:
        np.random.choice = original


def trn_relations(calls: list[list[int]]) -> list[list[int]]:
    """vidlab ``set_relations`` indices from one forward's recorded draws (scale T first, always ``[0]``)."""
    return [[0]] + calls


def model_config(
    name: str,
    *,
    num_classes: int | None = None,
    num_segments: int = 8,
    depth: int | None = None,
    backbone_cfg: dict | None = None,
    head_cfg: dict | None = None,
):
    """The MMAction2 model config :func:`build` builds (same arguments)."""
    config, backbone, head = ALL[name]
    cfg = Config.fromfile(str(CONFIGS / config)).model
    for key, value in {**backbone, **(backbone_cfg or {})}.items():
        if value is None:
            cfg.backbone.pop(key, None)
        else:
            cfg.backbone[key] = value
    for key, value in {**head, **(head_cfg or {})}.items():
        cfg.cls_head[key] = value
    cfg.backbone.pretrained = None
    if "pretrained2d" in cfg.backbone or cfg.backbone.type in ("ResNetTSM", "ResNetTIN", "MobileNetV2TSM"):
        cfg.backbone.pretrained2d = False
    if name in MODELS_2D:
        if cfg.backbone.type != "MobileNetV2" and cfg.backbone.type != "ResNet":
            cfg.backbone.num_segments = num_segments
        if "num_segments" in cfg.cls_head or cfg.cls_head.type in ("TSMHead", "TRNHead"):
            cfg.cls_head.num_segments = num_segments
    if depth is not None:
        cfg.backbone.depth = depth
        cfg.cls_head.in_channels = 512 if depth < 50 else 2048
    if num_classes is not None:
        cfg.cls_head.num_classes = num_classes
        if cfg.get("neck") and cfg.neck.get("aux_head_cfg"):  # TPN's auxiliary head
            cfg.neck.aux_head_cfg.out_channels = num_classes
    return cfg


def build(
    name: str,
    *,
    num_classes: int | None = None,
    num_segments: int = 8,
    depth: int | None = None,
    backbone_cfg: dict | None = None,
    head_cfg: dict | None = None,
):
    """MMAction2 recognizer for vidlab model ``name``, random init, eval mode, no pretrained weights.

    Args:
        name: a key of :data:`ALL`.
        num_classes: override the config's class count.
        num_segments: frames per clip of the 2D families that fix it at build time.
        depth: override the ResNet depth (small fixtures).
        backbone_cfg: further backbone overrides, after the table's (small transformer fixtures).
        head_cfg: further ``cls_head`` overrides, after the table's.
    """
    register_all_modules()
    install_tin_shift()
    cfg = model_config(
        name,
        num_classes=num_classes,
        num_segments=num_segments,
        depth=depth,
        backbone_cfg=backbone_cfg,
        head_cfg=head_cfg,
    )
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def forward(model, x: torch.Tensor, is_2d: bool) -> tuple[torch.Tensor, list[list[int]] | None]:
    """Logits for a ``(B, C, T, H, W)`` batch (one view per sample), and TRN's relation draws if any."""
    inputs = x.transpose(1, 2).contiguous() if is_2d else x.unsqueeze(1)  # 2D: (B, T, C, H, W) frames as segments
    with record_trn_relations() as calls, torch.no_grad():
        logits, _ = model.extract_feat(inputs, stage="head")
    relations = trn_relations(calls) if type(model.cls_head).__name__ == "TRNHead" else None
    if relations is not None and type(model.cls_head.consensus).__name__ != "RelationModuleMultiScale":
        relations = None
    return logits, relations
