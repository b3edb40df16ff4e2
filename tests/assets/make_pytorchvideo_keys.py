"""Write tests/assets/pytorchvideo_keys.json: state_dict layouts of PyTorchVideo's hub models.

Run in the reference environment (PyTorchVideo 0.1.5)::

    OMP_NUM_THREADS=1 PYTHONPATH=/work/shared/refs /tmp/refs/ptv/bin/python \
        tests/assets/make_pytorchvideo_keys.py

Every model is built with ``pretrained=False`` and its default 400-class Kinetics head, on the meta
device (no weights are materialised; keys, shapes and parameter counts do not depend on values).
For each model the JSON records the hub builder, ``sum(p.numel() for p in model.parameters())``,
every ``state_dict`` key with its shape in order (BatchNorm buffers included), the parameter-free
pooling / dropout / output-activation layers with their settings, and the input clip the hub
configuration is built for.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, "/work/shared/refs")
import refshim  # noqa: F401,E402  (must precede pytorchvideo)

# isort: split
import torch  # noqa: E402
from pytorchvideo.models import hub  # noqa: E402

torch.set_num_threads(1)

# Input clips the hub configurations are built for. ``frames x sampling_rate`` comes from the
# checkpoint names in pytorchvideo/models/hub/*.py (e.g. SLOW_8x8_R50, CSN_32x2_R101,
# R2PLUS1D_16x4_R50); the frame count and crop are also what the head pool kernel is sized for
# (head pool kernel = frames / total temporal stride, crop / 32). X3D's clip length and crop are the
# builder arguments ``input_clip_length`` / ``input_crop_size`` in hub/x3d.py (its checkpoint names
# carry no sampling rate). SlowFast: the fast pathway gets ``alpha`` times the slow frames
# (``slowfast_fusion_conv_stride=(4, 1, 1)``, head pools (8,7,7) and (32,7,7)).
MODELS = {
    "c2d_r50": {"frames": 8, "sampling_rate": 8, "crop": 224, "source": "C2D_8x8_R50.pyth"},
    "i3d_r50": {"frames": 8, "sampling_rate": 8, "crop": 224, "source": "I3D_8x8_R50.pyth"},
    "slow_r50": {"frames": 8, "sampling_rate": 8, "crop": 224, "source": "SLOW_8x8_R50.pyth"},
    "slowfast_r50": {
        "frames": 8,
        "fast_frames": 32,
        "alpha": 4,
        "sampling_rate": 8,
        "crop": 224,
        "source": "SLOWFAST_8x8_R50.pyth; input is [slow (B,3,8,H,W), fast (B,3,32,H,W)]",
    },
    "slowfast_r101": {
        "frames": 8,
        "fast_frames": 32,
        "alpha": 4,
        "sampling_rate": 8,
        "crop": 224,
        "source": "SLOWFAST_8x8_R101.pyth; input is [slow (B,3,8,H,W), fast (B,3,32,H,W)]",
    },
    "x3d_xs": {"frames": 4, "crop": 160, "source": "hub/x3d.py input_clip_length/input_crop_size"},
    "x3d_s": {"frames": 13, "crop": 160, "source": "hub/x3d.py input_clip_length/input_crop_size"},
    "x3d_m": {"frames": 16, "crop": 224, "source": "hub/x3d.py input_clip_length/input_crop_size"},
    "x3d_l": {"frames": 16, "crop": 312, "source": "hub/x3d.py input_clip_length/input_crop_size"},
    "csn_r101": {"frames": 32, "sampling_rate": 2, "crop": 224, "source": "CSN_32x2_R101.pyth"},
    "r2plus1d_r50": {"frames": 16, "sampling_rate": 4, "crop": 224, "source": "R2PLUS1D_16x4_R50.pyth"},
    "mvit_base_16x4": {"frames": 16, "sampling_rate": 4, "crop": 224, "source": "MVIT_B_16x4.pyth"},
    "mvit_base_32x3": {"frames": 32, "sampling_rate": 3, "crop": 224, "source": "MVIT_B_32x3_f294077834.pyth"},
}

_NONPARAM_TYPES = (
    torch.nn.MaxPool3d,
    torch.nn.AvgPool3d,
    torch.nn.AdaptiveAvgPool3d,
    torch.nn.Dropout,
    torch.nn.Softmax,
)


def _tuple(v):
    """JSON-friendly value (X3D's head pool kernel holds numpy ints)."""
    if isinstance(v, (tuple, list)):
        return [_tuple(x) for x in v]
    if hasattr(v, "item"):
        return v.item()
    return v


def _nonparam_layers(model: torch.nn.Module) -> list:
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, _NONPARAM_TYPES):
            continue
        info = {"type": type(mod).__name__}
        for attr in ("kernel_size", "stride", "padding", "output_size", "p", "dim"):
            if hasattr(mod, attr):
                info[attr] = _tuple(getattr(mod, attr))
        out.append([name, info])
    return out


def build(name: str) -> torch.nn.Module:
    fn = getattr(hub, name)
    try:
        with torch.device("meta"):
            return fn(pretrained=False)
    except Exception:  # pragma: no cover - fallback when an init does not support meta tensors
        return fn(pretrained=False)


def main() -> None:
    import pytorchvideo

    out = {"source": f"pytorchvideo {pytorchvideo.__version__}", "models": {}}
    for name, clip in MODELS.items():
        fn = getattr(hub, name)
        model = build(name)
        sd = model.state_dict()
        out["models"][name] = {
            "builder": f"{fn.__module__}.{fn.__name__}",
            "num_params": int(sum(p.numel() for p in model.parameters())),
            "input": clip,
            "nonparam_layers": _nonparam_layers(model),
            "keys": [[k, list(v.shape)] for k, v in sd.items()],
        }
        print(name, out["models"][name]["num_params"], len(sd), flush=True)
        del model, sd
    path = Path(__file__).with_name("pytorchvideo_keys.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
