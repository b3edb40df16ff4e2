"""Full-size parity, PyTorchVideo 0.1.5 hub models vs vidlab: the same random weights give the same logits.

For every PyTorchVideo hub model vidlab maps (``vidlab.models.convert.pytorchvideo.HUB_MODELS``), the hub model is
built with ``pretrained=False`` and its 400-class head (``tests/assets/pytorchvideo_ref.build``: eval mode, output
softmax removed, head pools as configured), every floating state-dict tensor is overwritten by
``fixture_fill.fill``, the state dict is converted with ``convert_state_dict(sd, source="pytorchvideo")`` and
loaded strictly into the vidlab model built with the mapped arguments. Both run one seeded ``torch.randn`` clip of
the hub configuration's size (``tests/assets/pytorchvideo_keys.json``; SlowFast: the 32-frame fast clip, of which
PyTorchVideo's slow pathway gets every 4th frame and vidlab takes them itself), batch 1, fp32, one thread.

Reported per model: max abs error, max relative error ``max|a - b| / max|b|`` (``a`` vidlab logits, ``b``
PyTorchVideo logits), ``max|b|``, forward wall times (informational). Criterion: relative error <= 1e-4.

Runs in the PyTorchVideo reference environment, from the repository root::

    PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/ptv/bin/python benchmarks/parity_pytorchvideo.py \\
        [--models HUB_NAME ...] [--json OUT]

Prints a markdown table and, last, ``RESULT parity_max_rel_err=<worst> models=<n> pass=<true|false>``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from pathlib import Path

import refshim  # noqa: F401  (must precede pytorchvideo)

# isort: split
import pytorchvideo
import torch
from fixture_fill import fill_state_dict
from pytorchvideo_ref import HUB, build, forward

from vidlab.models import create_model
from vidlab.models.convert import convert_state_dict
from vidlab.models.convert.pytorchvideo import HUB_MODELS

TOLERANCE = 1e-4
INPUT_SEED = 1234
KEYS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "pytorchvideo_keys.json"


def run_one(hub: str, clip: dict) -> dict:
    frames = clip.get("fast_frames", clip["frames"])
    shape = (1, 3, frames, clip["crop"], clip["crop"])
    x = torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))
    ref = build(hub)
    sd = ref.state_dict()
    filled = fill_state_dict(sd)
    ref.load_state_dict(filled, strict=True)
    t0 = time.perf_counter()
    b = forward(ref, hub, x, alpha=clip.get("alpha", 4))
    ref_s = time.perf_counter() - t0
    del ref, sd
    gc.collect()

    name, kwargs = HUB_MODELS[hub]
    model = create_model(name, num_classes=400, **kwargs).eval()
    model.load_state_dict(convert_state_dict(filled, source="pytorchvideo"), strict=True)
    del filled
    t0 = time.perf_counter()
    with torch.no_grad():
        a = model(x)
    vl_s = time.perf_counter() - t0
    del model
    gc.collect()
    abs_err = (a - b).abs().max().item()
    ref_max = b.abs().max().item()
    return {
        "hub": hub,
        "model": name,
        "kwargs": kwargs,
        "input_shape": list(shape),
        "max_abs_err": abs_err,
        "max_rel_err": abs_err / ref_max,
        "ref_logits_abs_max": ref_max,
        "pytorchvideo_forward_s": ref_s,
        "vidlab_forward_s": vl_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=HUB, help="hub model names (default: all)")
    ap.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clips = {name: entry["input"] for name, entry in json.loads(KEYS.read_text())["models"].items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"PyTorchVideo {pytorchvideo.__version__}, 1 thread, fp32, batch 1, input seed {INPUT_SEED}"
    )
    print("relative error = max|a - b| / max|b| over all logits (a: vidlab, b: PyTorchVideo); pass if <= 1e-4")
    print()
    header = "| hub model | vidlab model (arguments) | input | max abs err | max rel err | max \\|logits\\| "
    print(header + "| PTV s | vidlab s |")
    print("|---|---|---|---|---|---|---|---|")
    rows, failures = [], {}
    for hub in args.models or HUB:
        try:
            r = run_one(hub, clips[hub])
        except Exception as exc:  # report and go on
            failures[hub] = f"{type(exc).__name__}: {exc}"
            print(f"| {hub} | error: {failures[hub]} | | | | | | |", flush=True)
            continue
        rows.append(r)
        args_txt = ", ".join(f"{k}={v!r}" for k, v in r["kwargs"].items())
        print(
            f"| {hub} | `{r['model']}`({args_txt}) | {tuple(r['input_shape'])} | {r['max_abs_err']:.3e} "
            f"| {r['max_rel_err']:.3e} | {r['ref_logits_abs_max']:.4g} | {r['pytorchvideo_forward_s']:.2f} "
            f"| {r['vidlab_forward_s']:.2f} |",
            flush=True,
        )
    worst = max((r["max_rel_err"] for r in rows), default=float("nan"))
    ok = not failures and bool(rows) and all(r["max_rel_err"] <= TOLERANCE for r in rows)
    if args.json:
        doc = {"pytorchvideo": pytorchvideo.__version__, "torch": torch.__version__, "tolerance": TOLERANCE}
        doc |= {"results": rows, "failures": failures, "worst_max_rel_err": worst, "pass": ok}
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"RESULT parity_max_rel_err={worst:.3e} models={len(rows)} pass={str(ok).lower()}")


if __name__ == "__main__":
    main()
