"""Write tests/assets/mmaction2_<model>.json: MMAction2 recognizers' key layout and logits for a fixed input.

Run in the reference environment (MMAction2 1.2.0, not a vidlab dependency)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_mmaction2_fixtures.py

Each recognizer is built from its MMAction2 config (ResNet depth overridden to 18 for TSN and TSM,
``num_classes=5``), in eval mode. To keep the fixtures small, no weights are stored: every tensor of the
state dict (parameters and BN running statistics, not the integer ``num_batches_tracked``) is overwritten by
:func:`fixture_fill.fill`, a deterministic function of its key and shape that ``tests/models/test_convert.py`` uses too.
The JSON holds the key names and shapes, a checksum of the filled weights (to catch a generator that draws
different numbers), the input seed and shape, and the recognizer's logits for that input.
"""

import json
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)
from fixture_fill import fill  # beside this script

# isort: split
import mmaction
import torch
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmengine.config import Config

CONFIGS = Path(mmaction.__file__).parent / ".mim" / "configs" / "recognition"
NUM_CLASSES = 5
INPUT_SEED = 1234
CASES = [
    # (vidlab name, config, resnet depth override, input (B, C, T, H, W))
    ("tsn_r18", "tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py", 18, (1, 3, 4, 32, 32)),
    ("tsm_r18", "tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py", 18, (1, 3, 4, 32, 32)),
    ("x3d_s", "x3d/x3d_s_13x6x1_facebook-kinetics400-rgb.py", None, (1, 3, 4, 32, 32)),
]


def make_input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))


def checksum(sd: dict[str, torch.Tensor]) -> float:
    return float(sum(v.double().abs().sum() for k, v in sd.items() if v.is_floating_point()))


def build(config: str, depth: int | None, num_frames: int) -> torch.nn.Module:
    cfg = Config.fromfile(str(CONFIGS / config)).model
    cfg.backbone.pretrained = None
    if cfg.backbone.type == "ResNetTSM":
        cfg.backbone.pretrained2d = False
        cfg.backbone.num_segments = num_frames
        cfg.cls_head.num_segments = num_frames
    if depth is not None:
        cfg.backbone.depth = depth
        cfg.cls_head.in_channels = 512 if depth < 50 else 2048
    cfg.cls_head.num_classes = NUM_CLASSES
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def main() -> None:
    register_all_modules()
    for name, config, depth, in_shape in CASES:
        x = make_input(in_shape)  # (B, C, T, H, W)
        model = build(config, depth, in_shape[2])
        sd = model.state_dict()
        filled = {k: v if k.endswith("num_batches_tracked") else fill(k, tuple(v.shape)) for k, v in sd.items()}
        model.load_state_dict(filled, strict=True)
        is_2d = type(model).__name__ == "Recognizer2D"
        if is_2d:
            inputs = x.transpose(1, 2)  # (B, T, C, H, W): MMAction2 2D recognizers take T frames as segments
        else:
            inputs = x.unsqueeze(1)  # (B, 1, C, T, H, W): one view per sample
        with torch.no_grad():
            logits, _ = model.extract_feat(inputs, stage="head")
        out = {
            "source": f"mmaction2 {mmaction.__version__}, {config}" + (f" with depth={depth}" if depth else ""),
            "model": name,
            "num_classes": NUM_CLASSES,
            "recognizer_2d": is_2d,
            "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
            "fill_checksum": checksum(filled),
            "input_seed": INPUT_SEED,
            "input_shape": list(in_shape),
            "logits": logits.tolist(),
        }
        path = Path(__file__).with_name(f"mmaction2_{name}.json")
        path.write_text(json.dumps(out) + "\n")
        print(f"wrote {path}: {len(sd)} keys, logits {tuple(logits.shape)}, |logits|max {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
