"""Write tests/assets/pytorchvideo_<hub name>.json: PyTorchVideo hub models' key layout and logits for a fixed input.

Run in the reference environment (PyTorchVideo 0.1.5, not a vidlab dependency)::

    OMP_NUM_THREADS=1 PYTHONPATH=/work/shared/refs /tmp/refs/ptv/bin/python tests/assets/make_pytorchvideo_fixtures.py

As for the MMAction2 fixtures, no weights are stored: every float tensor of the state dict is overwritten by
:func:`fixture_fill.fill` (a function of key and shape, rebuilt by the test). Small inputs, so the head pools are
made global (:func:`pytorchvideo_ref.build` with ``adaptive_pool=True``); output softmaxes are removed.
"""

import json
from pathlib import Path

import refshim  # noqa: F401  (must precede pytorchvideo)
from fixture_fill import checksum, fill_state_dict

# isort: split
import pytorchvideo
import torch
from pytorchvideo_ref import build, forward

NUM_CLASSES = 5
INPUT_SEED = 1234
# hub name -> input (B, C, T, H, W); X3D-S stands for XS/M (same network), X3D-L is deeper
CASES = {
    "c2d_r50": (1, 3, 4, 32, 32),
    "i3d_r50": (1, 3, 4, 32, 32),
    "slow_r50": (1, 3, 4, 32, 32),
    "slowfast_r50": (1, 3, 16, 32, 32),
    "csn_r101": (1, 3, 8, 32, 32),
    "r2plus1d_r50": (1, 3, 8, 64, 64),
    "x3d_s": (1, 3, 4, 32, 32),
    "x3d_l": (1, 3, 4, 32, 32),
}


def main() -> None:
    torch.set_num_threads(1)
    for name, shape in CASES.items():
        model = build(name, num_classes=NUM_CLASSES, adaptive_pool=True)
        sd = model.state_dict()
        filled = fill_state_dict(sd)
        model.load_state_dict(filled, strict=True)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))
        logits = forward(model, name, x)
        out = {
            "source": f"pytorchvideo {pytorchvideo.__version__}, hub.{name}",
            "hub": name,
            "num_classes": NUM_CLASSES,
            "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
            "fill_checksum": checksum(filled),
            "input_seed": INPUT_SEED,
            "input_shape": list(shape),
            "logits": logits.tolist(),
        }
        path = Path(__file__).with_name(f"pytorchvideo_{name}.json")
        path.write_text(json.dumps(out) + "\n")
        print(f"wrote {path}: {len(sd)} keys, |logits|max {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
