"""Write tests/assets/mmaction2_<model>.json: MMAction2 recognizers' key layout and logits for a fixed input.

Run in the reference environment (MMAction2 1.2.0, not a vidlab dependency)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_mmaction2_fixtures.py

Each recognizer is built by :func:`mmaction2_ref.build` from its MMAction2 config (small variants: ResNet-18
where the family allows it, few classes, 4 segments), in eval mode. To keep the fixtures small, no weights
are stored: every tensor of the state dict (parameters and BN running statistics, not the integer
``num_batches_tracked``) is overwritten by :func:`fixture_fill.fill`, a deterministic function of its key and
shape that ``tests/models/test_convert.py`` uses too. The JSON holds the key names and shapes, a checksum of
the filled weights (to catch a generator that draws different numbers), the input seed and shape, the
recognizer's logits for that input, and for multi-scale TRN the relation subsets the reference drew.

TIN runs with :func:`mmaction2_ref.tin_shift_loop` in place of mmcv's compiled ``tin_shift``.

Transformers (TimeSformer, VideoMAE, MViT v2) are built with the tiny backbones of :data:`TINY` (backbone
config overrides); their fixtures also record that backbone config with the constructor defaults filled in
(``ref_backbone_cfg``).
"""

import inspect
import json
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)
from fixture_fill import checksum, fill_state_dict  # beside this script

# isort: split
import mmaction
import numpy as np
import torch
from mmaction.registry import MODELS
from mmaction2_ref import ALL, MODELS_2D, build, forward, model_config

NUM_CLASSES = 5
INPUT_SEED = 1234
_TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 4, "img_size": 48, "num_frames": 4}  # vidlab builder kwargs
_TINY_MVIT = {"embed_dims": 16, "num_layers": 4, "num_heads": 1, "downscale_indices": [1, 3]}
CASES = [
    # (reference name in mmaction2_ref.ALL, ResNet depth override, input (B, C, T, H, W)); the vidlab model has the
    # same name unless given as a fourth entry (vidlab name, extra builder kwargs)
    ("tsn_r18", None, (1, 3, 4, 32, 32)),
    ("tsn_mobilenetv2", None, (1, 3, 4, 32, 32)),
    ("tsm_r18", None, (1, 3, 4, 32, 32)),
    ("tsm_mobilenetv2", None, (1, 3, 4, 32, 32)),
    ("tsm_r50_nl_dot_product", None, (1, 3, 4, 64, 64)),
    ("tsm_r50_nl_embedded_gaussian", None, (1, 3, 4, 64, 64)),
    ("tsm_r50_nl_gaussian", None, (1, 3, 4, 64, 64)),
    ("tin_r18", None, (2, 3, 4, 32, 32)),
    ("tanet_r50", None, (2, 3, 4, 32, 32)),
    ("trn_r18", None, (2, 3, 4, 32, 32)),
    ("trn_r50_single_scale", 18, (2, 3, 4, 32, 32), ("trn_r18", {"multi_scale": False})),
    ("x3d_s", None, (1, 3, 4, 32, 32)),
    ("c2d_r50", None, (1, 3, 4, 32, 32)),
    ("c2d_r50_nopool", None, (1, 3, 4, 32, 32)),
    ("c3d_sports1m", None, (1, 3, 16, 112, 112)),  # fc6 fixes the clip size
    ("i3d_r50", None, (1, 3, 8, 32, 32)),
    ("i3d_r50_heavy", None, (1, 3, 4, 32, 32)),
    ("i3d_r50_nl_dot_product", None, (1, 3, 8, 64, 64)),
    ("i3d_r50_nl_embedded_gaussian", None, (1, 3, 8, 64, 64)),
    ("i3d_r50_nl_gaussian", None, (1, 3, 8, 64, 64)),
    ("r2plus1d_r34", None, (1, 3, 8, 32, 32)),
    ("ircsn_r50", None, (1, 3, 8, 32, 32)),
    ("ipcsn_r152", None, (1, 3, 8, 32, 32)),
    ("slowonly_r50_8x8", None, (1, 3, 4, 32, 32)),
    ("slowonly_r50_nl_8x8", None, (1, 3, 4, 64, 64)),
    ("slowfast_r50_4x16", None, (1, 3, 16, 32, 32)),
    ("slowfast_r50_8x8", None, (1, 3, 16, 32, 32)),
    ("slowfast_r101_r50_4x16", None, (1, 3, 16, 32, 32)),
    ("tpn_tsm_r50", None, (1, 3, 8, 64, 64)),
    ("tpn_slowonly_r50", None, (1, 3, 8, 64, 64)),
    ("timesformer_divst", None, (2, 3, 4, 48, 48), ("timesformer_divst", _TINY_VIT)),
    ("timesformer_jointst", None, (2, 3, 4, 48, 48), ("timesformer_jointst", _TINY_VIT)),
    ("timesformer_spaceonly", None, (2, 3, 4, 48, 48), ("timesformer_spaceonly", _TINY_VIT)),
    ("videomae_vit_b", None, (2, 3, 4, 48, 48), ("videomae_vit_b", _TINY_VIT)),
    ("mvit_v2_s", None, (1, 3, 4, 64, 64), ("mvit_v2_s", {"arch": _TINY_MVIT, "img_size": 64, "num_frames": 4})),
]
# Small transformers: backbone (and matching head) overrides of the reference build, by reference name. The fixture
# records the backbone config it was built with, constructor defaults filled in ("ref_backbone_cfg").
_TINY_TIMESFORMER = {"embed_dims": 32, "num_transformer_layers": 2, "num_heads": 4, "img_size": 48, "num_frames": 4}
# buffers that are not weights: left at their computed values instead of filled
FIXED_BUFFERS = ("backbone.pos_embed",)
TINY: dict[str, tuple[dict, dict]] = {
    "timesformer_divst": (_TINY_TIMESFORMER, {"in_channels": 32}),
    "timesformer_jointst": (_TINY_TIMESFORMER, {"in_channels": 32}),
    "timesformer_spaceonly": (_TINY_TIMESFORMER, {"in_channels": 32}),
    "videomae_vit_b": (
        {"embed_dims": 32, "depth": 2, "num_heads": 4, "img_size": 48, "num_frames": 4},
        {"in_channels": 32},
    ),
    # two downscales (layers 1 and 3): 2 x 16^2 tokens after the patch embedding, 2 x 4^2 at the end, 64 channels
    "mvit_v2_s": ({"arch": _TINY_MVIT, "spatial_size": 64, "temporal_size": 4}, {"in_channels": 64}),
}


def make_input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))


def vidlab_kwargs(name: str, num_frames: int, extra: dict) -> dict:
    """Builder arguments that make the vidlab model the same network as this reference build."""
    kwargs = dict(extra)
    if name.split("_", 1)[0] in ("tin", "tanet", "trn"):  # families with fixed-size temporal layers
        kwargs["num_segments"] = num_frames
    return kwargs


def full_backbone_cfg(ref_name: str, backbone: dict, head: dict) -> dict:
    """The backbone config of the reference build (config file and overrides), every constructor default filled in
    (``init_cfg`` and ``**kwargs`` left out)."""
    cfg = model_config(ref_name, num_classes=NUM_CLASSES, backbone_cfg=backbone, head_cfg=head).backbone.to_dict()
    params = inspect.signature(MODELS.get(cfg["type"]).__init__).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty and p.name != "init_cfg"}
    return json.loads(json.dumps({"type": cfg.pop("type"), **defaults, **cfg}))  # tuples as lists


def main(only: list[str]) -> None:
    np.random.seed(0)
    for ref_name, depth, in_shape, *vidlab in CASES:
        if only and ref_name not in only:
            continue
        name, extra = vidlab[0] if vidlab else (ref_name, {})
        x = make_input(in_shape)  # (B, C, T, H, W)
        tiny_backbone, tiny_head = TINY.get(ref_name, (None, None))
        model = build(
            ref_name,
            num_classes=NUM_CLASSES,
            num_segments=in_shape[2],
            depth=depth,
            backbone_cfg=tiny_backbone,
            head_cfg=tiny_head,
        )
        sd = model.state_dict()
        filled = fill_state_dict(sd)
        # fixed tables (VideoMAE's sine-cosine pos_embed buffer) keep their values; the fixture's checksum counts
        # them as zeros, which is what the test puts there (the vidlab model recomputes them)
        fixed = [k for k in FIXED_BUFFERS if k in sd]
        model.load_state_dict({**filled, **{k: sd[k] for k in fixed}}, strict=True)
        filled.update({k: torch.zeros_like(sd[k]) for k in fixed})
        is_2d = ref_name in MODELS_2D
        logits, relations = forward(model, x, is_2d)
        out = {
            "source": f"mmaction2 {mmaction.__version__}, {ALL[ref_name][0]}"
            + (f" with depth={depth}" if depth else "")
            + (f" with backbone {tiny_backbone}" if tiny_backbone else ""),
            "model": name,
            "kwargs": vidlab_kwargs(name, in_shape[2], extra),
            "num_classes": NUM_CLASSES,
            "recognizer_2d": is_2d,
            "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
            "fill_checksum": checksum(filled),
            "input_seed": INPUT_SEED,
            "input_shape": list(in_shape),
            "logits": logits.tolist(),
        }
        if relations is not None:
            out["trn_relations"] = relations
        if fixed:
            out["fixed_buffers"] = fixed
        if tiny_backbone:
            out["ref_backbone_cfg"] = full_backbone_cfg(ref_name, tiny_backbone, tiny_head)
        path = Path(__file__).with_name(f"mmaction2_{ref_name}.json")
        path.write_text(json.dumps(out) + "\n")
        print(f"wrote {path}: {len(sd)} keys, logits {tuple(logits.shape)}, |logits|max {logits.abs().max():.3f}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])  # optionally: only these reference names
