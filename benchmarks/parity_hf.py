"""Full-size parity, HuggingFace transformers vs vidlab: the same random weights give the same logits.

For VideoMAE-B (``VideoMAEForVideoClassification``, 16x224, default config: LayerNorm eps 1e-12, mean pooling) and
TimeSformer-B with each attention type (``TimesformerForVideoClassification``, 8x224), the HF model is built with
400 classes, every state-dict tensor is overwritten by ``fixture_fill.fill``, converted with
``convert_state_dict(sd, source="hf")`` and loaded strictly into the vidlab model built with
``builder_kwargs("hf", ...)`` (HF's epsilons; space-only: the mean of HF's per-frame logits). Both run one seeded
clip, batch 1, fp32, one thread. Criterion: max relative error ``max|a - b| / max|b|`` <= 1e-4.

    NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/ptv/bin/python benchmarks/parity_hf.py

Prints a markdown table and ``RESULT parity_max_rel_err=<worst> models=<n> pass=<true|false>``.
"""

from __future__ import annotations

import time

import refshim  # noqa: F401  (must precede transformers)

# isort: split
import torch
import transformers
from fixture_fill import fill_state_dict

from vidlab.models import create_model
from vidlab.models.convert import builder_kwargs, convert_state_dict

TOLERANCE = 1e-4
INPUT_SEED = 1234
CASES = {
    "videomae_vit_b": (
        lambda: transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(num_labels=400)),
        16,
    ),
    **{
        name: (
            lambda kind=kind: transformers.TimesformerForVideoClassification(
                transformers.TimesformerConfig(num_labels=400, attention_type=kind)
            ),
            8,
        )
        for name, kind in (
            ("timesformer_divst", "divided_space_time"),
            ("timesformer_jointst", "joint_space_time"),
            ("timesformer_spaceonly", "space_only"),
        )
    },
}


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, 1 thread, fp32, batch 1")
    print()
    print("| model | input | max abs err | max rel err | max \\|logits\\| | HF s | vidlab s |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, (make, frames) in CASES.items():
        ref = make().eval()
        filled = fill_state_dict(ref.state_dict())
        ref.load_state_dict(filled, strict=True)
        x = torch.randn((1, 3, frames, 224, 224), generator=torch.Generator().manual_seed(INPUT_SEED))
        with torch.no_grad():
            t0 = time.perf_counter()
            b = ref(pixel_values=x.transpose(1, 2)).logits
            hf_s = time.perf_counter() - t0
            b = b.view(1, -1, b.shape[-1]).mean(dim=1)  # space-only: one row per frame
        del ref
        converted = convert_state_dict(filled, source="hf")
        model = create_model(name, num_classes=400, **builder_kwargs("hf", name, converted)).eval()
        model.load_state_dict(converted, strict=True)
        with torch.no_grad():
            t0 = time.perf_counter()
            a = model(x)
            vl_s = time.perf_counter() - t0
        abs_err = (a - b).abs().max().item()
        rel = abs_err / b.abs().max().item()
        worst = max(worst, rel)
        print(
            f"| {name} | 1x3x{frames}x224x224 | {abs_err:.2e} | {rel:.2e} | {b.abs().max().item():.3f} "
            f"| {hf_s:.1f} | {vl_s:.1f} |",
            flush=True,
        )
    print()
    print(f"RESULT parity_max_rel_err={worst:.3e} models={len(CASES)} pass={'true' if worst <= TOLERANCE else 'false'}")


if __name__ == "__main__":
    main()
