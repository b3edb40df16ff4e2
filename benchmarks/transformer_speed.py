"""CPU forward time of the video transformers, vidlab vs HuggingFace transformers, and of VideoMamba.

For ``videomae_vit_b`` (16x224, HF ``VideoMAEForVideoClassification``) and ``timesformer_divst`` (8x224, HF
``TimesformerForVideoClassification``) both models are built with 400 classes, the HF weights are filled by
``fixture_fill.fill`` and converted into vidlab (``convert_state_dict(source="hf")``, built with the HF settings
``builder_kwargs`` gives), and each is timed on the same seeded clip, batch 1, in fp32 and under
``torch.autocast("cpu", dtype=torch.bfloat16)``: one warm-up forward, then the median of ``--repeats`` timed
forwards (``torch.inference_mode``). Reported with the ratio vidlab / HF in the same run, the max relative error of
vidlab vs HF in fp32 (``max|a - b| / max|b|`` over the logits) and of each bf16 path vs its fp32 output.
HF runs with its default attention implementation (``sdpa`` where the model supports it).

VideoMamba (no reference can run on CPU: the official code needs CUDA kernels) is timed alone: ``videomamba_s``
on 16x224 clips (3,137 tokens) in fp32 and bf16 autocast, same protocol.

Run in the reference environment with transformers (not a vidlab dependency), from the repository root::

    NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/ptv/bin/python \\
        benchmarks/transformer_speed.py [--threads 2] [--repeats 5] [--models videomae_vit_b ...] [--json OUT]

Prints a markdown table and ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import refshim  # noqa: F401  (must precede transformers)

# isort: split
import torch
import transformers
from fixture_fill import fill_state_dict

from vidlab.models import create_model
from vidlab.models.convert import builder_kwargs, convert_state_dict

INPUT_SEED = 1234


def hf_model(name: str) -> tuple[torch.nn.Module, tuple[int, int, int, int]]:
    """The HF model of the same network as vidlab ``name``, and its clip ``(C, T, H, W)``."""
    if name == "videomae_vit_b":
        cfg = transformers.VideoMAEConfig(num_labels=400)  # ViT-B/16, 16 frames, 224, mean pooling
        return transformers.VideoMAEForVideoClassification(cfg), (3, 16, 224, 224)
    if name == "timesformer_divst":
        cfg = transformers.TimesformerConfig(num_labels=400)  # ViT-B/16, 8 frames, 224, divided space-time
        return transformers.TimesformerForVideoClassification(cfg), (3, 8, 224, 224)
    raise ValueError(f"no HF counterpart for {name!r}")


def timed(fn, x: torch.Tensor, repeats: int, bf16: bool) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeats`` forwards (after one warm-up) and the last output (float32)."""
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fn(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), out.float()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def compare(name: str, repeats: int) -> dict:
    ref, shape = hf_model(name)
    ref.eval()
    filled = fill_state_dict(ref.state_dict())
    ref.load_state_dict(filled, strict=True)
    converted = convert_state_dict(filled, source="hf")
    model = create_model(name, num_classes=400, **builder_kwargs("hf", name, converted)).eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(INPUT_SEED))
    x_hf = x.transpose(1, 2).contiguous()  # HF takes (B, T, C, H, W)
    row = {"model": name, "input": [1, *shape], "hf_attn": getattr(ref.config, "_attn_implementation", None)}
    outs = {}
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        row[f"hf_{precision}_s"], outs[f"hf_{precision}"] = timed(
            lambda t: ref(pixel_values=t).logits, x_hf, repeats, bf16
        )
        row[f"vidlab_{precision}_s"], outs[f"vidlab_{precision}"] = timed(model, x, repeats, bf16)
        row[f"ratio_{precision}"] = row[f"vidlab_{precision}_s"] / row[f"hf_{precision}_s"]
    row["vidlab_vs_hf_fp32_rel_err"] = rel_err(outs["vidlab_fp32"], outs["hf_fp32"])
    row["vidlab_bf16_rel_err"] = rel_err(outs["vidlab_bf16"], outs["vidlab_fp32"])
    row["hf_bf16_rel_err"] = rel_err(outs["hf_bf16"], outs["hf_fp32"])
    return row


def videomamba(repeats: int) -> dict:
    torch.manual_seed(0)
    model = create_model("videomamba_s", num_classes=400, num_frames=16).eval()
    x = torch.randn((1, 3, 16, 224, 224), generator=torch.Generator().manual_seed(INPUT_SEED))
    row = {"model": "videomamba_s", "input": [1, 3, 16, 224, 224]}
    fp32_s, fp32 = timed(model, x, repeats, False)
    bf16_s, bf16 = timed(model, x, repeats, True)
    row.update(fp32_s=fp32_s, bf16_s=bf16_s, bf16_rel_err=rel_err(bf16, fp32))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["videomae_vit_b", "timesformer_divst", "videomamba_s"])
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
        f"torch {torch.__version__}, transformers {transformers.__version__}; batch 1, median of {args.repeats} "
        "forwards after one warm-up"
    )
    print()
    print(
        "| model | input | HF fp32 s | vidlab fp32 s | ratio | HF bf16 s | vidlab bf16 s | ratio "
        "| vidlab vs HF fp32 rel err | vidlab bf16 rel err | HF bf16 rel err |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        if name == "videomamba_s":
            continue
        r = compare(name, args.repeats)
        rows.append(r)
        print(
            f"| {name} | {'x'.join(map(str, r['input']))} | {r['hf_fp32_s']:.2f} | {r['vidlab_fp32_s']:.2f} "
            f"| {r['ratio_fp32']:.2f} | {r['hf_bf16_s']:.2f} | {r['vidlab_bf16_s']:.2f} | {r['ratio_bf16']:.2f} "
            f"| {r['vidlab_vs_hf_fp32_rel_err']:.1e} | {r['vidlab_bf16_rel_err']:.1e} | {r['hf_bf16_rel_err']:.1e} |",
            flush=True,
        )
    if "videomamba_s" in args.models:
        r = videomamba(args.repeats)
        rows.append(r)
        print()
        print("| model | input | fp32 s | bf16 s | bf16 rel err |")
        print("|---|---|---|---|---|")
        print(f"| videomamba_s | 1x3x16x224x224 | {r['fp32_s']:.2f} | {r['bf16_s']:.2f} | {r['bf16_rel_err']:.1e} |")
    print()
    for r in rows:
        if "ratio_fp32" in r:
            print(
                f"RESULT {r['model']}_cpu_fp32_ratio={r['ratio_fp32']:.3f} bf16_ratio={r['ratio_bf16']:.3f} "
                f"fp32_no_slower={'true' if r['ratio_fp32'] <= 1.0 else 'false'}"
            )
        else:
            print(f"RESULT videomamba_s_16x224_cpu_fp32_s={r['fp32_s']:.2f} bf16_s={r['bf16_s']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "repeats": args.repeats, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
