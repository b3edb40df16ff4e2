"""MMAction2's own complexity counter on the zoo's reference models, for ``docs/MODEL_ZOO.md`` (reference side only).

Builds, for every vidlab model with an MMAction2 counterpart, the MMAction2 1.2.0 recognizer
(``tests/assets/mmaction2_ref.py``, random init, eval mode) and counts it with mmengine's ``FlopAnalyzer`` (the
counter behind ``mmengine.analysis.get_model_complexity_info`` and MMAction2's ``tools/analysis_tools/get_flops.py``)
at the vidlab model's standard input, batch 1. The counter traces ``extract_feat(inputs, stage=...)`` both up to
the head (``stage="head"``, the whole model, as vidlab counts it) and up to the neck (``stage="neck"``, what
``get_flops.py`` counts: backbone only), and records the per-operator breakdown. mmengine's "flops" are
multiply-adds. The result is written to ``tests/assets/flops_mmaction2.json``, which ``benchmarks/model_zoo.py``
reads; this script is not needed to regenerate the doc.

Usage (reference environment, see ``shared/refs/README.md``)::

    PYTHONPATH=/work/shared/refs:tests/assets /tmp/refs/mm/bin/python benchmarks/model_zoo_reference.py \\
        [--models tsm_r50 ...] [--out tests/assets/flops_mmaction2.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "assets" / "flops_mmaction2.json"

# The vidlab models' standard inputs (C, T, H, W); mirrors vidlab's ``get_model_info(name).input_shape``.
INPUTS: dict[str, tuple[int, int, int, int]] = {"x3d_s": (3, 13, 160, 160), "x3d_xs": (3, 4, 160, 160)}
INPUTS |= {"x3d_m": (3, 16, 224, 224), "x3d_l": (3, 16, 312, 312), "c3d_sports1m": (3, 16, 112, 112)}
INPUTS |= {"slowonly_r50_4x16": (3, 4, 224, 224)}
INPUTS |= {
    name: (3, 32, 224, 224)
    for name in (
        "i3d_r50",
        "i3d_r50_heavy",
        "i3d_r50_nl_dot_product",
        "i3d_r50_nl_embedded_gaussian",
        "i3d_r50_nl_gaussian",
        "ircsn_r50",
        "ircsn_r101",
        "ircsn_r152",
        "ipcsn_r152",
        "slowfast_r50_4x16",
        "slowfast_r50_8x8",
        "slowfast_r101_8x8",
        "slowfast_r101_r50_4x16",
    )
}
DEFAULT_INPUT = (3, 8, 224, 224)
# Further inputs counted to locate the input behind a metafile figure that differs from the count at the standard
# input: 256x256 (the three-crop test size of the TANet, TRN and TSM configs), 13x182x182 (X3D-S's test size).
OTHER_INPUTS: dict[str, list[tuple[int, int, int, int]]] = {
    "tanet_r50": [(3, 8, 256, 256)],
    "trn_r50": [(3, 8, 256, 256)],
    "tsm_mobilenetv2": [(3, 8, 256, 256)],
    "x3d_s": [(3, 13, 182, 182)],
}


class _Counted(torch.nn.Module):
    """A ``(B, C, T, H, W)`` front end to an MMAction2 recognizer's ``extract_feat`` (what the counter traces)."""

    def __init__(self, recognizer: torch.nn.Module, is_2d: bool, stage: str) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.is_2d = is_2d
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.transpose(1, 2).contiguous() if self.is_2d else x.unsqueeze(1)
        out = self.recognizer.extract_feat(inputs, stage=self.stage)[0]
        return out


def count(name: str) -> dict:
    """mmengine's multiply-add count of MMAction2's build of ``name`` at the vidlab input, batch 1 (and at the
    :data:`OTHER_INPUTS`, whole model and backbone only)."""
    from mmaction2_ref import build

    shape = INPUTS.get(name, DEFAULT_INPUT)
    model = build(name)
    result = {"input": list(shape), **_count_at(model, name, shape)}
    others = {}
    for other in OTHER_INPUTS.get(name, []):
        counted = _count_at(model, name, other)
        others["x".join(map(str, other))] = {key: counted[key]["macs"] for key in ("whole", "backbone")}
    if others:
        result["other_inputs"] = others
    return result


def _count_at(model: torch.nn.Module, name: str, shape: tuple[int, int, int, int]) -> dict:
    from mmaction2_ref import MODELS_2D
    from mmengine.analysis import FlopAnalyzer

    x = torch.zeros(1, *shape)
    result: dict = {}
    for stage in ("head", "neck"):
        counted = _Counted(model, name in MODELS_2D, stage).eval()
        with torch.no_grad():  # TPN's head creates its pooling module on the first call: before the tracer runs
            counted(x)
        analyzer = FlopAnalyzer(counted, (x,))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        with torch.no_grad():
            total = int(analyzer.total())
            by_op = {op: int(v) for op, v in sorted(analyzer.by_operator().items())}
            skipped = dict(sorted(analyzer.unsupported_ops().items()))
        key = "whole" if stage == "head" else "backbone"
        result[key] = {"macs": total, "by_operator": by_op}
        if stage == "head":
            result["uncounted_ops"] = skipped
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="vidlab names (default: all with an MMAction2 counterpart)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mmengine").setLevel(logging.ERROR)
    from mmaction2_ref import ALL

    names = args.models or list(ALL)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    models = data.get("models", {})
    for name in names:
        t0 = time.perf_counter()
        models[name] = count(name)
        print(f"{name}: {models[name]['whole']['macs'] / 1e9:.3f} GMACs ({time.perf_counter() - t0:.1f} s)", flush=True)
    import mmaction
    import mmengine

    data = {
        "source": f"mmaction2 {mmaction.__version__}, mmengine {mmengine.__version__} FlopAnalyzer",
        "unit": "multiply-adds (mmengine 'flops'), batch 1",
        "generator": "benchmarks/model_zoo_reference.py",
        "models": dict(sorted(models.items())),
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
