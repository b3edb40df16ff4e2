"""Generate ``docs/MODEL_ZOO.md``: every registered vidlab model with its size, compute and reported accuracy.

For each model in ``vidlab.models.list_models()`` the table gives its parameter count (and MMAction2 1.2.0's count
for the same config, ``tests/assets/params_mmaction2.json``), its class count and standard input, its GMACs
(multiply-adds, batch 1, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the meta device), two reference
compute figures with the difference in percent -- mmengine's counter run on MMAction2's build at the same input
(``tests/assets/flops_mmaction2.json``, written by ``benchmarks/model_zoo_reference.py`` in the reference
environment) and the figure in MMAction2's metafile, compared with vidlab's count at the input that figure was
measured at -- and the accuracy MMAction2's model-zoo pages report for the matching config.

Usage:
    python benchmarks/model_zoo.py            # writes docs/MODEL_ZOO.md
    python benchmarks/model_zoo.py --check    # exits 1 if docs/MODEL_ZOO.md is not what this would write

The output is deterministic (no timestamps, no timings), so ``--check`` can keep the document true in a test.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from vidlab.models import get_model_info, list_models
from vidlab.models.flops import count_macs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "MODEL_ZOO.md"
PARAMS_JSON = ROOT / "tests" / "assets" / "params_mmaction2.json"
FLOPS_JSON = ROOT / "tests" / "assets" / "flops_mmaction2.json"
METAFILES = "mmaction2 1.2.0 `configs/recognition/<family>/metafile.yml`"
SEED = "MMAction2's model-zoo pages (the 0.x documentation, with 0.x config names)"
THRESHOLD = 3.0  # percent: larger differences get an explanation

FAMILIES = {"tsn": "TSN", "tsm": "TSM", "tin": "TIN", "tanet": "TANet", "trn": "TRN", "c2d": "C2D", "c3d": "C3D"}
FAMILIES |= {"i3d": "I3D", "r2plus1d": "R(2+1)D", "csn": "CSN", "slowonly": "SlowOnly", "slowfast": "SlowFast"}
FAMILIES |= {"tpn": "TPN", "x3d": "X3D", "timesformer": "TimeSformer", "videomae": "VideoMAE", "mvit": "MViT"}
FAMILIES |= {"videomamba": "VideoMamba"}
# MMAction2's transformers (TimeSformer, VideoMAE, MViTv2): params and mmengine MACs in one file
TF_JSON = ROOT / "tests" / "assets" / "params_mmaction2_tf.json"
HF_JSON = ROOT / "tests" / "assets" / "params_hf.json"
VIDEOMAMBA_JSON = ROOT / "tests" / "assets" / "videomamba_keys.json"
PTV_KEYS_JSON = ROOT / "tests" / "assets" / "pytorchvideo_keys.json"
PYSLOWFAST_MVIT_JSON = ROOT / "tests" / "assets" / "pyslowfast_mvit_keys.json"
PTV_FLOPS_JSON = ROOT / "tests" / "assets" / "flops_pytorchvideo.json"
PYSLOWFAST_JSON = ROOT / "tests" / "assets" / "pyslowfast_keys.json"
TORCHVISION_JSON = ROOT / "tests" / "assets" / "torchvision_r2plus1d_18.json"

Shape = tuple[int, int, int, int]

# Footnote texts, referenced by key from the tables below.
NOTES: dict[str, str] = {
    "bn": (
        "mmengine's counter also counts eval-mode batch norm (one multiply-add per element) and "
        "`adaptive_avg_pool2d`; FlopCounterMode counts only convolutions and matrix products. Their convolution and "
        "matmul counts are identical for every model here (`by_operator` in `tests/assets/flops_mmaction2.json`); "
        "the batch norms make up the whole difference, which exceeds 3% only for the light networks whose "
        "depthwise convolutions are cheap next to their many normalized activations: MobileNetV2 "
        "({mbv2_bn:.3f} G of batch norm at 8x224x224) and X3D-S ({x3d_bn:.3f} G at 13x160x160)."
    ),
    "tsn25": (
        "The TSN metafile entries state `Resolution: 224x224` for the 1x1x3, 1x1x5 and 1x1x8 configs alike; the "
        "figure is mmengine's backbone count for 25 frames at 224x224 (TSN's 25-frame test protocol: "
        "25 x {tsn_frame:.3f} G per frame = {tsn25:.2f} G for R50). vidlab's count is taken at 25 frames too."
    ),
    "at256": (
        "The metafile states `Resolution: 224x224` (TRN: `height 240`), but the figure is the count at 8x256x256 "
        "(the three-crop test size), backbone only (what MMAction2's `tools/analysis_tools/get_flops.py` counts: "
        "`extract_feat` up to the neck): mmengine on MMAction2's build gives {at256} at 8x256x256 and "
        "{at224} at 8x224x224. vidlab's count is taken at 8x256x256."
    ),
    "mbv2_label": (
        "The metafile lists this figure under the name and config `tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_"
        "sthv2-rgb`, but with `Architecture: MobileNetV2`, `Parameters: 2.736M`, Kinetics-400: it is the "
        "TSM-MobileNetV2 entry, mislabelled (the real R101 entry, 62.66 G, follows it)."
    ),
    "x3d": (
        "Not reproduced. The metafile's {x3d_meta:.3f} G (`Resolution: 160x160`) matches no count found: mmengine "
        "on MMAction2's X3D-S gives {x3d_160:.3f} G at 13x160x160 ({x3d_160_bb:.3f} G backbone only) and "
        "{x3d_182:.3f} G at 13x182x182 (the test crop); vidlab's {ours:.3f} G at 13x160x160 agrees with the "
        "1.96 G the X3D paper (Feichtenhofer, arXiv:2004.04730) gives for X3D-S. The metafile entry "
        "was ported with the SlowFast weights and its counter is not stated."
    ),
    "tin": (
        "TIN's metafile also has 32962097536 (32.96 G) for the Something-Something configs (174 classes; the "
        "difference is the per-segment fc of the head). The remaining 0.08 G over mmengine's count of MMAction2 "
        "1.2.0's build is not accounted for (0.25%)."
    ),
    "no_ref": "No MMAction2 counterpart: a vidlab-only depth variant for small experiments.",
    "tv_ref": (
        "torchvision's `r2plus1d_18` (no MMAction2 config): {tv_params:,} parameters, counted on torchvision "
        "0.28's model definition (`tests/assets/make_torchvision_fixture.py`), equal to vidlab's."
    ),
    "ptv_ref": "PyTorchVideo's `r2plus1d_r50` (no MMAction2 config); see the cross-check table below.",
    "hf_ref": (
        "HF transformers' `VideoMAEForVideoClassification` built from a config of these widths, 400 classes "
        "(`tests/assets/params_hf.json`, `make_hf_fixtures.py`); MMAction2 has no ViT-S/H VideoMAE config."
    ),
    "videomamba_ref": (
        "The official OpenGVLab/VideoMamba model definition (`videomamba_tiny/small/middle`, 400 classes), built on "
        "CPU with its CUDA kernels stubbed (`tests/assets/videomamba_keys.json`, `make_videomamba_keys.py`). GMACs "
        "count its projections and convolutions; the selective scan's element-wise recurrence (about 9 operations "
        "per token, inner channel and state, in each direction) is not a matrix product and is not counted."
    ),
    "mvit_ref": (
        "MViT v1 has no MMAction2 config: PyTorchVideo's hub `mvit_base_16x4` / `mvit_base_32x3` (the same 16-block "
        "network; 32x3 differs only in its temporal position table) and PySlowFast's 24-block `MVIT_B_32x3_CONV` "
        "(`pytorchvideo_keys.json`, `pyslowfast_mvit_keys.json`)."
    ),
    "c2d_nopool": (
        "MMAction2's `nopool` C2D configs are its TSN recognizer on 8 frames (the doubled cost over `c2d_r50` is the "
        "missing temporal pool)."
    ),
    "no_row": (
        "No row for this config in MMAction2's (0.x) model-zoo pages: a depth or clip variant of a listed config, "
        "or a config added later (C2D, X3D-M/L)."
    ),
    "tsn_r101": (
        "No Kinetics-400 ResNet-101 row in the model-zoo pages (only `tsn_r101_1x1x5_50e_mmit_rgb`, "
        "Multi-Moments in Time, mAP). MMAction2 1.2.0's metafile gives 75.89 / 92.07 for "
        "`tsn_imagenet-pretrained-r101_8xb32-1x1x8-100e_kinetics400-rgb`."
    ),
    "tsm_r50": "Same config at 340x256: 70.24 / 89.56; short-side 320: 70.73 / 89.81.",
    "tsm_mbv2": (
        "The model-zoo pages have only the dense-sampling MobileNetV2 config (and `..._kinetics400_rgb_port`, "
        "69.89 / 89.01, ported weights); vidlab mirrors MMAction2 1.2.0's uniform 1x1x8-100e config, same network."
    ),
    "sth": ("Something-Something: efficient / accurate test settings (center crop x 1 clip / three crops x 2 clips)."),
    "tin_r50": (
        "Fine-tuned from TSM-Kinetics-400. The other TIN rows there are ImageNet-pretrained Something-Something "
        "configs: `tin_r50_1x1x8_40e_sthv1_rgb` 44.25 / 73.94 (SthV1), `tin_r50_1x1x8_40e_sthv2_rgb` "
        "56.70 / 83.62 (SthV2)."
    ),
    "trn_single": (
        "The model-zoo pages' TRN rows are the multi-scale relation head "
        "(`TRNHead` default `relation_type='TRNMultiScale'`)."
    ),
    "x3d_acc": ("10-view / 30-view top-1, no top-5 given; weights ported from SlowFast (reference 73.1 / 73.5 there)."),
    "c3d_acc": "Sports-1M pre-trained, 10 clips x 1 crop; the only C3D row (UCF-101 split 1).",
    "tv_ops": (
        "torchvision 0.28's `R2Plus1D_18_Weights.KINETICS400_V1` metadata (`_ops`, GFLOPS as torchvision counts "
        "them: multiply-adds, at 16x112x112), not an MMAction2 metafile."
    ),
    "tv_acc": "torchvision's `R2Plus1D_18_Weights.KINETICS400_V1` metadata (clip-level, 16 frames at 112x112).",
}


@dataclass(frozen=True)
class Metafile:
    """A compute figure of MMAction2's metafile and the input it corresponds to."""

    entry: str  # the metafile entry's ``Name`` as written
    written: str  # its ``FLOPs`` field (multiply-adds) as written
    gmacs: float  # the same in G
    input: Shape  # the input the figure was measured at (see the notes where it differs from the stated one)
    notes: tuple[str, ...] = ()


_R50 = "tsm_imagenet-pretrained-r50{}_8xb16-1x1x8-50e_kinetics400-rgb"
# vidlab name -> MMAction2 1.2.0 metafile figure (``configs/recognition/<family>/metafile.yml``).
METAFILE: dict[str, Metafile] = {
    "tsn_r50": Metafile(
        "tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb", "102.7G", 102.7, (3, 25, 224, 224), ("tsn25",)
    ),
    "tsn_r101": Metafile(
        "tsn_imagenet-pretrained-r101_8xb32-1x1x8-100e_kinetics400-rgb", "195.8G", 195.8, (3, 25, 224, 224), ("tsn25",)
    ),
    "tsm_r50": Metafile(_R50.format(""), "32.88G", 32.88, (3, 8, 224, 224)),
    "tsm_r101": Metafile("tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb", "62.66G", 62.66, (3, 8, 224, 224)),
    "tsm_mobilenetv2": Metafile(
        "tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb",
        "3.269G",
        3.269,
        (3, 8, 256, 256),
        ("mbv2_label", "at256"),
    ),
    "tsm_r50_nl_dot_product": Metafile(_R50.format("-nl-dot-product"), "61.30G", 61.30, (3, 8, 224, 224)),
    "tsm_r50_nl_embedded_gaussian": Metafile(_R50.format("-nl-embedded-gaussian"), "61.30G", 61.30, (3, 8, 224, 224)),
    "tsm_r50_nl_gaussian": Metafile(_R50.format("-nl-gaussian"), "59.06G", 59.06, (3, 8, 224, 224)),
    "tin_r50": Metafile(
        "tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb",
        "32965800320",
        32.9658003,
        (3, 8, 224, 224),
        ("tin",),
    ),
    "tanet_r50": Metafile(
        "tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb",
        "43.0G",
        43.0,
        (3, 8, 256, 256),
        ("at256",),
    ),
    "trn_r50": Metafile(
        "trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb", "42.94G", 42.94, (3, 8, 256, 256), ("at256",)
    ),
    "x3d_s": Metafile("x3d_s_13x6x1_facebook-kinetics400-rgb", "2967543760", 2.96754376, (3, 13, 160, 160), ("x3d",)),
    "r2plus1d_r18": Metafile("torchvision R2Plus1D_18_Weights", "40.519", 40.519, (3, 16, 112, 112), ("tv_ops",)),
}


@dataclass(frozen=True)
class Accuracy:
    """A row of the model-zoo tables: top-1 / top-5 as written there."""

    dataset: str
    config: str
    resolution: str
    top1: str
    top5: str
    notes: tuple[str, ...] = ()


# vidlab name -> the model-zoo row matching its config (dataset, frames, resolution). Source: SEED (TSN, TSM, TIN,
# TANet, TRN and X3D sections, "Results and Models"). Models not listed have no row there (see NO_ACCURACY).
ACCURACY: dict[str, Accuracy] = {
    "tsn_r50": Accuracy("Kinetics-400", "tsn_r50_1x1x8_100e_kinetics400_rgb", "short-side 256", "71.80", "90.17"),
    "tsm_r50": Accuracy(
        "Kinetics-400", "tsm_r50_1x1x8_50e_kinetics400_rgb", "short-side 256", "70.59", "89.52", ("tsm_r50",)
    ),
    "tsm_r101": Accuracy(
        "SthV2", "tsm_r101_1x1x8_50e_sthv2_rgb", "height 256", "60.88 / 63.84", "86.56 / 88.30", ("sth",)
    ),
    "tsm_mobilenetv2": Accuracy(
        "Kinetics-400",
        "tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb",
        "short-side 320",
        "68.46",
        "88.64",
        ("tsm_mbv2",),
    ),
    "tsm_r50_nl_dot_product": Accuracy(
        "Kinetics-400", "tsm_nl_dot_product_r50_1x1x8_50e_kinetics400_rgb", "short-side 320", "71.60", "90.34"
    ),
    "tsm_r50_nl_embedded_gaussian": Accuracy(
        "Kinetics-400", "tsm_nl_embedded_gaussian_r50_1x1x8_50e_kinetics400_rgb", "short-side 320", "72.03", "90.25"
    ),
    "tsm_r50_nl_gaussian": Accuracy(
        "Kinetics-400", "tsm_nl_gaussian_r50_1x1x8_50e_kinetics400_rgb", "short-side 320", "70.70", "89.90"
    ),
    "tin_r50": Accuracy(
        "Kinetics-400",
        "tin_tsm_finetune_r50_1x1x8_50e_kinetics400_rgb",
        "short-side 256",
        "70.89",
        "89.89",
        ("tin_r50",),
    ),
    "tanet_r50": Accuracy(
        "Kinetics-400", "tanet_r50_dense_1x1x8_100e_kinetics400_rgb", "short-side 320", "76.28", "92.60"
    ),
    "trn_r50": Accuracy(
        "SthV2", "trn_r50_1x1x8_50e_sthv2_rgb", "height 256", "48.39 / 51.28", "76.58 / 78.65", ("sth",)
    ),
    "x3d_s": Accuracy(
        "Kinetics-400", "x3d_s_13x6x1_facebook_kinetics400_rgb", "short-side 320", "72.7 / 73.2", "—", ("x3d_acc",)
    ),
}
_K400, _SS320, _SS256 = "Kinetics-400", "short-side 320", "short-side 256"
ACCURACY |= {
    "c3d_sports1m": Accuracy(
        "UCF-101", "c3d_sports1m_16x1x1_45e_ucf101_rgb", "128x171", "83.27", "95.90", ("c3d_acc",)
    ),
    "i3d_r50": Accuracy(_K400, "i3d_r50_32x2x1_100e_kinetics400_rgb", _SS256, "73.27", "90.92"),
    "i3d_r50_nl_dot_product": Accuracy(
        _K400, "i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb", "short-side 256p", "73.92", "91.59"
    ),
    "i3d_r50_nl_embedded_gaussian": Accuracy(
        _K400, "i3d_nl_embedded_gaussian_r50_32x2x1_100e_kinetics400_rgb", "short-side 256p", "74.71", "91.81"
    ),
    "i3d_r50_nl_gaussian": Accuracy(
        _K400, "i3d_nl_gaussian_r50_32x2x1_100e_kinetics400_rgb", "short-side 256p", "73.37", "91.26"
    ),
    "r2plus1d_r34": Accuracy(_K400, "r2plus1d_r34_8x8x1_180e_kinetics400_rgb", _SS320, "68.68", "88.36"),
    "ircsn_r50": Accuracy(_K400, "ircsn_bnfrozen_r50_32x2x1_180e_kinetics400_rgb", _SS320, "73.6", "91.3"),
    "ircsn_r152": Accuracy(_K400, "ircsn_bnfrozen_r152_32x2x1_180e_kinetics400_rgb", _SS320, "76.5", "92.1"),
    "ipcsn_r152": Accuracy(_K400, "ipcsn_bnfrozen_r152_32x2x1_180e_kinetics400_rgb", _SS320, "77.8", "92.8"),
    "slowonly_r50_4x16": Accuracy(_K400, "slowonly_r50_4x16x1_256e_kinetics400_rgb", _SS320, "73.02", "90.77"),
    "slowonly_r50_8x8": Accuracy(_K400, "slowonly_r50_8x8x1_256e_kinetics400_rgb", _SS320, "74.93", "91.92"),
    "slowonly_r101_8x8": Accuracy(_K400, "slowonly_r101_8x8x1_196e_kinetics400_rgb", "—", "76.5", "92.7"),
    "slowonly_r50_nl_8x8": Accuracy(
        _K400, "slowonly_nl_embedded_gaussian_r50_8x8x1_150e_kinetics400_rgb", _SS320, "76.07", "92.42"
    ),
    "slowfast_r50_4x16": Accuracy(_K400, "slowfast_r50_4x16x1_256e_kinetics400_rgb", _SS320, "76.0", "92.54"),
    "slowfast_r50_8x8": Accuracy(_K400, "slowfast_r50_8x8x1_256e_kinetics400_rgb", _SS320, "76.94", "92.8"),
    "slowfast_r101_8x8": Accuracy(_K400, "slowfast_r101_8x8x1_256e_kinetics400_rgb", _SS256, "77.90", "93.51"),
    "slowfast_r101_r50_4x16": Accuracy(
        _K400, "slowfast_r101_r50_4x16x1_256e_kinetics400_rgb", _SS256, "76.69", "93.07"
    ),
}
ACCURACY |= {
    "tpn_slowonly_r50": Accuracy(_K400, "tpn_slowonly_r50_8x8x1_150e_kinetics_rgb", _SS320, "73.58", "91.35"),
    "tpn_tsm_r50": Accuracy("SthV1", "tpn_tsm_r50_1x1x8_150e_sthv1_rgb", "height 100", "51.50", "79.15"),
}
NO_ACCURACY: dict[str, str] = {"tsn_r101": "tsn_r101", "trn_r50_single_scale": "trn_single", "tanet_r18": "no_ref"}
ACCURACY["r2plus1d_r18"] = Accuracy(
    _K400, "torchvision r2plus1d_18 KINETICS400_V1", "112x112", "67.463", "86.175", ("tv_acc",)
)
NO_ACCURACY |= {"c2d_r50_nopool": "c2d_nopool", "c2d_r101_nopool": "c2d_nopool"}
NO_ACCURACY |= {"r2plus1d_r50": "ptv_ref"}


# vidlab name -> (reference toolbox, its parameter count, note key); filled in by generate()
OTHER_PARAMS: dict[str, tuple[str, int, str]] = {}


def _cross_check(ptv: dict, notes: _Notes) -> list[str]:
    """The table comparing vidlab with PyTorchVideo's hub models and PySlowFast's configs (same networks)."""
    from vidlab.models.convert.pytorchvideo import HUB_MODELS

    lines = [
        "## Cross-check with PyTorchVideo and PySlowFast",
        "",
        "The same networks in the other toolboxes' layouts: the vidlab model built with the arguments that make it",
        'that network (what `load_checkpoint(..., source="pytorchvideo" | "pyslowfast")` expects; see',
        "`docs/MODELS.md`), its parameters against the reference's, and GMACs against fvcore's count of",
        f"the PyTorchVideo build ({ptv['source']}; `tests/assets/flops_pytorchvideo.json`, written by",
        "`benchmarks/model_zoo_reference_ptv.py`; like mmengine's, it counts batch norm too) at the",
        "hub configuration's clip. SlowFast's clip is the fast pathway's (32 frames); vidlab takes every 4th for",
        "the slow pathway itself.",
        "",
        "| reference | vidlab model (arguments) | reference params | vidlab params | input (CxTxHxW) | fvcore GMACs "
        "| vidlab GMACs | diff % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for hub, (name, kwargs) in sorted(HUB_MODELS.items()):
        entry = ptv["models"][hub]
        clip = entry["input"]
        shape = (3, clip.get("fast_frames", clip["frames"]), clip["crop"], clip["crop"])
        macs = count_macs(name, shape, **kwargs)[0] / 1e9
        params = get_model_info(name).num_params(**kwargs)
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        ref_macs = entry["macs"] / 1e9
        d = _diff(macs, ref_macs)
        lines.append(
            f"| PyTorchVideo `{hub}` | `{name}`({args}) | {entry['params']:,} | "
            f"{'=' if params == entry['params'] else f'{params:,}'} | {_shape(shape)} | {ref_macs:.2f} | "
            f"{macs:.2f} | {d:+.1f}{notes.ref('bn') if abs(d) > THRESHOLD else ''} |"
        )
    psf = json.loads(PYSLOWFAST_JSON.read_text())
    for ref_name, (name, kwargs) in (
        ("slowfast_r50", ("slowfast_r50_8x8", {"lateral_norm": True})),
        ("x3d_s", ("x3d_s", {})),
    ):
        entry = psf["models"][ref_name]
        params = get_model_info(name).num_params(**kwargs)
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        lines.append(
            f"| PySlowFast `{entry['config']}` | `{name}`({args}) | {entry['num_params']:,} | "
            f"{'=' if params == entry['num_params'] else f'{params:,}'} | — | — | — | — |"
        )
    from vidlab.models.convert.pyslowfast import CONFIGS

    for entry in json.loads(PYSLOWFAST_MVIT_JSON.read_text())["models"].values():
        name, kwargs = CONFIGS[Path(entry["config"]).stem]
        params = get_model_info(name).num_params(**kwargs)
        lines.append(
            f"| PySlowFast `{entry['config']}` | `{name}` | {entry['num_params']:,} | "
            f"{'=' if params == entry['num_params'] else f'{params:,}'} | — | — | — | — |"
        )
    return lines


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _family(module: str) -> str:
    short = module.rsplit(".", 1)[-1]
    return FAMILIES.get(short, short.upper())


def _order(name: str, family: str) -> tuple:
    families = list(FAMILIES.values())
    index = families.index(family) if family in families else len(families)
    return (index, family, "mobilenet" in name, _natural(name))


def _shape(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def _diff(ours: float, ref: float) -> float:
    return (ours - ref) / ref * 100


class _Notes:
    """Footnotes numbered in order of first use."""

    def __init__(self, values: dict) -> None:
        self.values = values
        self.keys: list[str] = []

    def ref(self, *keys: str) -> str:
        marks = []
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)
            marks.append(f"[{self.keys.index(key) + 1}]")
        return " " + "".join(marks) if marks else ""

    def render(self) -> list[str]:
        return [f"{i}. {NOTES[key].format(**self.values)}" for i, key in enumerate(self.keys, 1)]


def generate() -> str:
    """The text of ``docs/MODEL_ZOO.md``."""
    torch.set_num_threads(1)
    params_ref = json.loads(PARAMS_JSON.read_text())["models"]
    flops_doc = json.loads(FLOPS_JSON.read_text()) if FLOPS_JSON.exists() else {"models": {}, "source": "n/a"}
    flops_ref = flops_doc["models"]
    transformers = json.loads(TF_JSON.read_text())["models"]
    params_ref |= transformers
    flops_ref |= {name: entry for name, entry in transformers.items() if "whole" in entry}

    rows = []
    for name in list_models():
        info = get_model_info(name)
        family = _family(info.module)
        macs, fallback = count_macs(name, tuple(info.input_shape))
        rows.append((_order(name, family), name, info, family, macs, fallback))
    rows.sort(key=lambda row: row[0])
    ours = {name: macs for _, name, _, _, macs, _ in rows}

    def mm(name: str, key: str = "whole", at: str | None = None) -> float:
        entry = flops_ref[name]
        value = entry["other_inputs"][at][key] if at else entry[key]["macs"]
        return value / 1e9

    values = {
        "mbv2_bn": flops_ref.get("tsm_mobilenetv2", {}).get("whole", {}).get("by_operator", {}).get("batch_norm", 0)
        / 1e9,
        "x3d_bn": flops_ref.get("x3d_s", {}).get("whole", {}).get("by_operator", {}).get("batch_norm", 0) / 1e9,
        "tsn_frame": mm("tsn_r50", "backbone") / 8 if "tsn_r50" in flops_ref else float("nan"),
        "x3d_meta": METAFILE["x3d_s"].gmacs,
        "ours": ours.get("x3d_s", float("nan")) / 1e9,
    }
    values["tsn25"] = values["tsn_frame"] * 25
    tv_params = json.loads(TORCHVISION_JSON.read_text())["num_params_400"]
    ptv = json.loads(PTV_FLOPS_JSON.read_text())
    values["tv_params"] = tv_params
    OTHER_PARAMS.update(
        r2plus1d_r18=("torchvision", tv_params, "tv_ref"),
        r2plus1d_r50=("PyTorchVideo", ptv["models"]["r2plus1d_r50"]["params"], "ptv_ref"),
    )
    hf = json.loads(HF_JSON.read_text())
    OTHER_PARAMS.update(
        {f"videomae_vit_{s}": ("HF transformers", hf[f"videomae_vit_{s}"]["params"], "hf_ref") for s in "sh"}
    )
    for name, entry in json.loads(VIDEOMAMBA_JSON.read_text())["models"].items():
        OTHER_PARAMS[name] = ("official VideoMamba", entry["params"], "videomamba_ref")
    ptv_keys = json.loads(PTV_KEYS_JSON.read_text())["models"]
    OTHER_PARAMS["mvit_v1_b_16x4"] = ("PyTorchVideo", ptv_keys["mvit_base_16x4"]["num_params"], "mvit_ref")
    OTHER_PARAMS["mvit_v1_b_32x3"] = ("PyTorchVideo", ptv_keys["mvit_base_32x3"]["num_params"], "mvit_ref")
    sf_mvit = json.loads(PYSLOWFAST_MVIT_JSON.read_text())["models"]
    OTHER_PARAMS["mvit_v1_b24_32x3"] = ("PySlowFast", sf_mvit["mvit_b_32x3_conv"]["num_params"], "mvit_ref")
    at256 = [n for n in ("tanet_r50", "trn_r50", "tsm_mobilenetv2") if "other_inputs" in flops_ref.get(n, {})]
    values["at256"] = ", ".join(f"{n} {mm(n, 'backbone', '3x8x256x256'):.3f} G" for n in at256)
    values["at224"] = ", ".join(f"{n} {mm(n, 'backbone'):.3f} G" for n in at256)
    if "x3d_s" in flops_ref:
        values.update(
            x3d_160=mm("x3d_s"), x3d_160_bb=mm("x3d_s", "backbone"), x3d_182=mm("x3d_s", "whole", "3x13x182x182")
        )
    notes = _Notes(values)

    header = [
        "model",
        "family",
        "params",
        "reference params",
        "classes",
        "input (CxTxHxW)",
        "GMACs",
        "mmengine GMACs (MMAction2 build, same input)",
        "diff %",
        "metafile GMACs (input measured at)",
        "vidlab GMACs at that input",
        "diff %",
        "reported top-1 / top-5 (dataset, config)",
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    fallbacks = []
    for _, name, info, family, macs, fallback in rows:
        if fallback:
            fallbacks.append(name)
        shape = tuple(info.input_shape)
        classes = info.builder.__kwdefaults__["num_classes"]
        params = info.num_params()
        ref = params_ref.get(name)
        if name in OTHER_PARAMS:
            source, count, key = OTHER_PARAMS[name]
            ref_params = ("=" if count == params else f"{count:,}") + f" ({source})" + notes.ref(key)
        elif ref is None:
            ref_params = "—" + notes.ref("no_ref")
        else:
            ref_params = "=" if ref["params"] == params and ref["num_classes"] == classes else f"{ref['params']:,}"
        gmacs = macs / 1e9
        if name in flops_ref and flops_ref[name]["input"] == list(shape):
            ref_g = mm(name)
            d = _diff(gmacs, ref_g)
            mm_cells = [f"{ref_g:.2f}", f"{d:+.1f}" + (notes.ref("bn") if abs(d) > THRESHOLD else "")]
        else:
            mm_cells = ["—", "—"]
        meta = METAFILE.get(name)
        if meta is None:
            meta_cells = ["—", "—", "—"]
        else:
            at = gmacs if meta.input == shape else count_macs(name, meta.input)[0] / 1e9
            d = _diff(at, meta.gmacs)
            keys = list(meta.notes)
            if abs(d) > THRESHOLD and "x3d" not in keys:
                keys.append("bn")
            meta_cells = [
                f"{meta.written} ({_shape(meta.input)})" + notes.ref(*meta.notes),
                f"{at:.2f}",
                f"{d:+.1f}" + notes.ref(*[k for k in keys if k not in meta.notes]),
            ]
        acc = ACCURACY.get(name)
        if acc is not None:
            scores = f"{acc.top1} / {acc.top5}" if "/" not in acc.top1 else f"{acc.top1} (top-1), {acc.top5} (top-5)"
            acc_cell = f"{scores} ({acc.dataset}, {acc.resolution}, `{acc.config}`)" + notes.ref(*acc.notes)
        else:
            acc_cell = "—" + notes.ref(NO_ACCURACY.get(name, "no_ref" if ref is None else "no_row"))
        cells = [f"`{name}`", family, f"{params:,}", ref_params, str(classes), _shape(shape), f"{gmacs:.2f}"]
        table.append("| " + " | ".join(cells + mm_cells + meta_cells + [acc_cell]) + " |")

    intro = f"""# Model zoo

Generated by `python benchmarks/model_zoo.py` (which writes this file; `--check` exits 1 if it is stale). Do not
edit by hand. One row per registered model (`vidlab.models.list_models()`), grouped by family.

- **params**: parameters of the model built with its defaults. They equal the parameter counts of MMAction2
  1.2.0's builds of the same configs exactly (**reference params** `=`; `tests/assets/params_mmaction2.json`,
  checked by `tests/models/test_models.py::test_param_count_matches_reference`); the models MMAction2 lacks are
  compared with the toolbox they come from: the two other R(2+1)D layouts (torchvision, PyTorchVideo), VideoMAE
  ViT-S/H (HF transformers), MViT v1 (PyTorchVideo, PySlowFast) and VideoMamba (its official definition).
  **classes** is the builder's default, the reference config's class count (400: Kinetics-400, 174:
  Something-Something V2).
- **GMACs**: multiply-adds (FLOPs / 2) in units of 1e9 of one forward pass, batch 1, eval mode, at the model's
  standard input (`get_model_info(name).input_shape`, a `(C, T, H, W)` clip; all T frames, one view). Counted
  with `torch.utils.flop_counter.FlopCounterMode` on the meta device. It counts convolutions and matrix
  products (conv, linear, mm/bmm, so the non-local blocks' attention products and TAM's adaptive temporal
  convolution are included) but not batch norm, activations, pooling or element-wise ops: the convention of
  fvcore-style counters of convolutions and linears. Multiply by the number of test views for a per-video cost.
- **mmengine GMACs**: mmengine's `FlopAnalyzer` (the counter of `mmengine.analysis.get_model_complexity_info`;
  its "flops" are multiply-adds) on MMAction2's build of the same config at the same input, whole model
  ({flops_doc.get("source", "n/a")};
  `tests/assets/flops_mmaction2.json`, written in the reference environment by
  `benchmarks/model_zoo_reference.py`). This is the like-for-like comparison.
- **metafile GMACs**: the `FLOPs` field (multiply-adds, as written) of the matching entry of
  {METAFILES},
  next to vidlab's count at the input that figure was measured at, which is not always the one the metafile
  states (see the notes). MMAction2's `get_flops.py` counts the backbone only, so the head (at most 0.01 G
  here) is missing there.
- **reported top-1 / top-5**: accuracy (%) MMAction2 reports for the config, from
  {SEED};
  "—" where it has no row for the config. Those are MMAction2's trained weights, not vidlab's.
- **diff %** is `(vidlab - reference) / reference`; differences over {THRESHOLD:g}% are explained in the notes.
"""
    out = [intro, *table, "", *_cross_check(ptv, notes), "", "## Notes", "", *notes.render()]
    if fallbacks:
        out += ["", f"Counted on CPU tensors (an op lacks a meta kernel): {', '.join(fallbacks)}."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT, help="default: docs/MODEL_ZOO.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if OUTPUT differs from what would be written")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True), str(args.output), "generated"
            )
            sys.stdout.writelines(diff)
            print(f"{args.output} is out of date: run python benchmarks/model_zoo.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
