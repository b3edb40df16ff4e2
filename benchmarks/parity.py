"""Full-size parity, MMAction2 1.2.0 vs vidlab: the same random weights give the same logits on the standard input.

For every vidlab zoo model with an MMAction2 counterpart (``mmaction2_ref.ALL``: the 2D families TSN, TSM, TIN,
TANet, TRN, C2D-nopool and TPN-TSM; the 3D families C2D, C3D, I3D, R(2+1)D, CSN, SlowOnly, SlowFast, TPN-SlowOnly
and X3D; the transformers TimeSformer, VideoMAE / VideoMAE V2 and MViTv2), the MMAction2 recognizer is built from
its config (the config's class count, random init, eval mode), every floating state-dict tensor is overwritten by
``fixture_fill.fill`` (deterministic in key and shape; ``num_batches_tracked`` and VideoMAE's fixed sine-cosine
``pos_embed`` are kept), the state dict is converted with
``convert_state_dict(sd, source="mmaction2", model=name)`` and loaded strictly into ``create_model(name)``. Both
run one seeded ``torch.randn`` clip of the model's standard input (``get_model_info(name).input_shape``, batch 1,
fp32, one thread); 2D models use as many segments as the clip has frames. For multi-scale TRN, MMAction2 draws its
relation subsets with ``np.random.choice`` even in eval mode: they are recorded during the reference forward and
replayed in vidlab with ``model.head.consensus.set_relations``. TIN runs with a loop stand-in for mmcv's compiled
``tin_shift`` (``mmaction2_ref.tin_shift_loop``).

Reported per model: max abs error ``max|a - b|``, max relative error ``max|a - b| / max|b|`` (``a`` vidlab
logits, ``b`` MMAction2 logits, maxima over all logits), ``max|b|``, and the wall time of each forward
(informational only). Criterion: relative error <= 1e-4 for every model.

Runs in the reference environment (MMAction2 1.2.0, not a vidlab dependency), from the repository root::

    PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/mm/bin/python benchmarks/parity.py \\
        [--models NAME_OR_PATTERN ...] [--json OUT]

``/work/shared/refs`` provides ``refshim`` (imported before anything that imports mmaction), ``src`` provides
vidlab (``vidlab.models`` needs only torch), and ``tests/assets`` provides the two reference-side helpers this
script shares with ``tests/assets/make_mmaction2_fixtures.py``: ``mmaction2_ref`` (builds the MMAction2
recognizer for a vidlab model name) and ``fixture_fill`` (the deterministic weights). Nothing else from ``tests/``
is imported; the helpers are found through ``PYTHONPATH`` rather than as a ``tests`` package, since the reference
environment does not install vidlab or its test suite.

Prints a markdown table and, last, ``RESULT parity_max_rel_err=<worst> models=<n> pass=<true|false>``.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import mmaction
import numpy as np
import torch
from fixture_fill import fill_state_dict
from mmaction2_ref import ALL, MODELS_2D, build, forward
from mmengine.logging import MMLogger

from vidlab.models import create_model, get_model_info
from vidlab.models.convert import convert_state_dict, load_converted

TOLERANCE = 1e-4
INPUT_SEED = 1234
SEGMENT_FAMILIES = ("tin", "tanet", "trn")  # vidlab families whose temporal layers are sized at build time
# MMAction2 configs whose network is a vidlab model of another name (VideoMAE V2's distilled ViTs are VideoMAE's)
VIDLAB_NAME = {"videomaev2_vit_s": "videomae_vit_s", "videomaev2_vit_b": "videomae_vit_b"}
FIXED_BUFFERS = ("backbone.pos_embed",)  # computed tables (VideoMAE's sine-cosine positions) keep their values


def select(patterns: list[str] | None) -> list[str]:
    """Names of :data:`ALL` matching any of ``patterns`` (exact names or fnmatch patterns), in ``ALL`` order."""
    if not patterns:
        return list(ALL)
    names = [n for n in ALL if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in ALL)]
    if unmatched:
        sys.exit(f"no MMAction2 counterpart matches {unmatched}; known: {', '.join(ALL)}")
    return names


def run_one(name: str) -> dict:
    """Build both sides with the same weights, run the standard input through each, compare the logits."""
    vidlab_name = VIDLAB_NAME.get(name, name)
    shape = get_model_info(vidlab_name).input_shape  # (C, T, H, W)
    num_frames = shape[1]
    is_2d = name in MODELS_2D
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(INPUT_SEED))

    ref = build(name, num_segments=num_frames)
    sd = ref.state_dict()
    filled = fill_state_dict(sd)
    filled.update({k: sd[k] for k in FIXED_BUFFERS if k in sd})
    ref.load_state_dict(filled, strict=True)
    num_classes = ref.cls_head.num_classes
    t0 = time.perf_counter()
    b, relations = forward(ref, x, is_2d)
    mm_s = time.perf_counter() - t0
    del ref, sd
    gc.collect()

    kwargs = {"num_segments": num_frames} if name.split("_", 1)[0] in SEGMENT_FAMILIES else {}
    model = create_model(vidlab_name, num_classes=num_classes, **kwargs).eval()
    converted = convert_state_dict(filled, source="mmaction2", model=vidlab_name)
    load_converted(model, converted, "mmaction2", strict=True)  # fixed tables are recomputed by the model
    del filled
    if relations is not None:
        model.head.consensus.set_relations(relations)
    t0 = time.perf_counter()
    with torch.no_grad():
        a = model(x)
    vl_s = time.perf_counter() - t0
    del model
    gc.collect()

    if a.shape != b.shape:
        raise RuntimeError(f"logit shapes differ: vidlab {tuple(a.shape)}, MMAction2 {tuple(b.shape)}")
    abs_err = (a - b).abs().max().item()
    ref_max = b.abs().max().item()
    return {
        "model": name,
        "input_shape": [1, *shape],
        "num_classes": num_classes,
        "max_abs_err": abs_err,
        "max_rel_err": abs_err / ref_max,
        "ref_logits_abs_max": ref_max,
        "mmaction2_forward_s": mm_s,
        "vidlab_forward_s": vl_s,
        "trn_relations": relations,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", help="vidlab model names or fnmatch patterns (default: all in ALL)")
    ap.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    args = ap.parse_args()
    names = select(args.models)
    torch.set_num_threads(1)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # mute init_weights' per-parameter report
    np.random.seed(0)  # TRN's relation draws; replayed on the vidlab side whatever they are

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"MMAction2 {mmaction.__version__}, 1 thread, fp32, batch 1, input seed {INPUT_SEED}"
    )
    print("relative error = max|a - b| / max|b| over all logits (a: vidlab, b: MMAction2); pass if <= 1e-4")
    print()
    print(
        "| model | input (B, C, T, H, W) | classes | max abs err | max rel err | max \\|logits\\| "
        "| MMAction2 s | vidlab s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    rows, failures = [], {}
    for name in names:
        try:
            r = run_one(name)
        except Exception as exc:  # report and go on with the other models
            failures[name] = f"{type(exc).__name__}: {exc}"
            print(f"| {name} | error: {failures[name]} | | | | | | |", flush=True)
            continue
        rows.append(r)
        print(
            f"| {name} | {tuple(r['input_shape'])} | {r['num_classes']} | {r['max_abs_err']:.3e} "
            f"| {r['max_rel_err']:.3e} | {r['ref_logits_abs_max']:.4g} | {r['mmaction2_forward_s']:.2f} "
            f"| {r['vidlab_forward_s']:.2f} |",
            flush=True,
        )
    total = time.perf_counter() - start
    worst = max((r["max_rel_err"] for r in rows), default=float("nan"))
    ok = not failures and bool(rows) and all(r["max_rel_err"] <= TOLERANCE for r in rows)
    print(f"\ntotal wall time: {total:.1f} s")
    if args.json:
        doc = {
            "mmaction2": mmaction.__version__,
            "torch": torch.__version__,
            "relative_error": "max|a - b| / max|b|, a vidlab logits, b MMAction2 logits",
            "tolerance": TOLERANCE,
            "input_seed": INPUT_SEED,
            "results": rows,
            "failures": failures,
            "worst_max_rel_err": worst,
            "pass": ok,
            "total_s": total,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"RESULT parity_max_rel_err={worst:.3e} models={len(rows)} pass={str(ok).lower()}")


if __name__ == "__main__":
    main()
