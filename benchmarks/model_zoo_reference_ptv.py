"""PyTorchVideo's hub models counted by fvcore, for the cross-check table of ``docs/MODEL_ZOO.md`` (reference side).

Builds every hub model vidlab maps (``tests/assets/pytorchvideo_ref.py``: random init, eval mode, output softmax
removed) and counts one forward at the hub configuration's clip (``tests/assets/pytorchvideo_keys.json``: frames and
crop; SlowFast gets ``[slow, fast]`` with ``alpha`` times the frames on the fast pathway) with fvcore's
``FlopCountAnalysis``, whose "flops" are multiply-adds (the counter mmengine's ``FlopAnalyzer`` derives from). Also
records ``sum(p.numel() for p in model.parameters())``. Writes ``tests/assets/flops_pytorchvideo.json``.

Usage (reference environment; hub names given: only those entries are recounted)::

    PYTHONPATH=/work/shared/refs:tests/assets /tmp/refs/ptv/bin/python benchmarks/model_zoo_reference_ptv.py [HUB ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import refshim  # noqa: F401  (must precede pytorchvideo)
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "assets" / "flops_pytorchvideo.json"
KEYS = ROOT / "tests" / "assets" / "pytorchvideo_keys.json"


def main() -> int:
    import fvcore
    import pytorchvideo
    from fvcore.nn import FlopCountAnalysis
    from pytorchvideo_ref import HUB, build

    torch.set_num_threads(2)
    inputs = {name: entry["input"] for name, entry in json.loads(KEYS.read_text())["models"].items()}
    only = sys.argv[1:]
    models = json.loads(OUT.read_text())["models"] if only and OUT.exists() else {}
    for name in only or HUB:
        clip = inputs[name]
        model = build(name)
        size = clip["crop"]
        if name.startswith("slowfast"):
            x = ([torch.zeros(1, 3, clip["frames"], size, size), torch.zeros(1, 3, clip["fast_frames"], size, size)],)
        else:
            x = (torch.zeros(1, 3, clip["frames"], size, size),)
        analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with torch.no_grad():
            macs = int(analysis.total())
            by_op = {op: int(v) for op, v in sorted(analysis.by_operator().items())}
        models[name] = {
            "input": clip,
            "params": sum(p.numel() for p in model.parameters()),
            "macs": macs,
            "by_operator": by_op,
        }
        print(f"{name}: {macs / 1e9:.3f} GMACs", flush=True)
    data = {
        "source": f"pytorchvideo {pytorchvideo.__version__}, fvcore {fvcore.__version__} FlopCountAnalysis",
        "unit": "multiply-adds (fvcore 'flops'), batch 1",
        "generator": "benchmarks/model_zoo_reference_ptv.py",
        "models": {name: models[name] for name in HUB if name in models},
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
