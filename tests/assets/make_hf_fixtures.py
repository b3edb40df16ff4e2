"""Write tests/assets/hf_<case>.json (HuggingFace transformers' VideoMAE and TimeSformer key layout and logits)
and tests/assets/params_hf.json (full-size parameter counts and fvcore multiply-adds).

Run in the reference environment (HF transformers, not a vidlab dependency)::

    OMP_NUM_THREADS=1 NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:tests/assets \\
        /tmp/refs/ptv/bin/python tests/assets/make_hf_fixtures.py [fixtures|params]

(no argument: both).

As for the other fixtures, no weights are stored: every float tensor of the state dict is overwritten by
:func:`fixture_fill.fill` (a function of key and shape, rebuilt by the test). Tiny configs (hidden 32, 2 layers,
4 heads, 4 frames of 48x48, patch 16), eval mode, eager attention, float32.

The input is drawn in vidlab's layout (B, C, T, H, W) and ``input_shape`` is stored in that layout; HF takes
``pixel_values`` as (B, T, C, H, W), so it is permuted before the call.

TimeSformer ``space_only``: HF runs every frame as its own sequence and classifies each frame's CLS token after the
final LayerNorm, returning (B*T, num_labels) logits (row b*T + t) with no pooling over frames. The fixture stores
those rows as ``frame_logits``; ``logits`` is their mean over frames (= classifier(mean_t(layernorm(cls_t)))), and
``logits_pool_before_norm`` is the original TimeSformer / MMAction2 order (mean over frames of the last block's
tokens, then the LayerNorm, then the classifier), computed from the same HF modules.

params_hf.json: ``sum(p.numel() for p in model.parameters())`` of full-size models built from config objects (no
download; VideoMAE's sinusoid position table is a plain tensor attribute, neither parameter nor buffer, so not
counted), and under "gmacs" fvcore ``FlopCountAnalysis`` totals (fvcore counts one per multiply-add of
linear/matmul/conv, plus LayerNorm at 2 per element and nothing for softmax, GELU, adds, scaling) at batch 1 with
eager attention (fvcore has no handle for ``scaled_dot_product_attention``; TimeSformer's attention is always a
plain matmul).
"""

import json
import sys
from pathlib import Path

import refshim  # noqa: F401  (harmless here; keeps the reference environments' import order uniform)
from fixture_fill import checksum, fill_state_dict

# isort: split
import torch
import transformers
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
)

NUM_CLASSES = 5
INPUT_SEED = 1234
INPUT_SHAPE = (2, 3, 4, 48, 48)  # vidlab layout (B, C, T, H, W)
TINY = dict(
    image_size=48,
    patch_size=16,
    num_channels=3,
    num_frames=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    qkv_bias=True,
    num_labels=NUM_CLASSES,
)
KWARGS = {"embed_dim": 32, "depth": 2, "num_heads": 4, "img_size": 48, "num_frames": 4}


def _videomae(mean_pool: bool):
    cfg = VideoMAEConfig(**TINY, tubelet_size=2, use_mean_pooling=mean_pool, layer_norm_eps=1e-12)
    cfg._attn_implementation = "eager"
    model = VideoMAEForVideoClassification(cfg)
    # fc_norm is nn.LayerNorm(hidden_size) with torch's default eps, not config.layer_norm_eps
    fc_eps = model.fc_norm.eps if model.fc_norm is not None else 1e-5
    kwargs = {**KWARGS, "norm_eps": 1e-12, "fc_norm_eps": fc_eps, "use_mean_pooling": mean_pool}
    desc = (
        f"VideoMAEConfig(image_size=48, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, "
        f"num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, qkv_bias=True, "
        f"use_mean_pooling={mean_pool}, layer_norm_eps=1e-12, num_labels=5)"
    )
    return model, "videomae_vit_s", kwargs, desc


def _timesformer(attention_type: str, name: str):
    cfg = TimesformerConfig(**TINY, attention_type=attention_type, layer_norm_eps=1e-6)
    model = TimesformerForVideoClassification(cfg)
    desc = (
        f"TimesformerConfig(image_size=48, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=2, "
        f"num_attention_heads=4, intermediate_size=128, qkv_bias=True, attention_type={attention_type!r}, "
        f"layer_norm_eps=1e-6, num_labels=5)"
    )
    kwargs = dict(KWARGS)
    if attention_type == "space_only":  # HF classifies every frame; its mean frame logits = this vidlab option
        kwargs["space_only_pooling"] = "after_norm"
    return model, name, kwargs, desc


CASES = {
    "videomae_meanpool": lambda: _videomae(True),
    "videomae_clstoken": lambda: _videomae(False),
    "timesformer_divst": lambda: _timesformer("divided_space_time", "timesformer_divst"),
    "timesformer_jointst": lambda: _timesformer("joint_space_time", "timesformer_jointst"),
    "timesformer_spaceonly": lambda: _timesformer("space_only", "timesformer_spaceonly"),
}


def write_fixtures() -> None:
    for case, make in CASES.items():
        model, vidlab_name, kwargs, desc = make()
        model.eval()
        sd = model.state_dict()
        filled = fill_state_dict(sd)
        model.load_state_dict(filled, strict=True)
        x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))
        pixel_values = x.permute(0, 2, 1, 3, 4).contiguous()  # (B, T, C, H, W) for HF
        extra = {}
        with torch.no_grad():
            logits = model(pixel_values=pixel_values).logits.float()
            if case == "timesformer_spaceonly":
                b, t = INPUT_SHAPE[0], INPUT_SHAPE[2]
                assert logits.shape == (b * t, NUM_CLASSES), logits.shape
                extra["frame_logits"] = logits.tolist()
                tf = model.timesformer
                tokens = tf.encoder(tf.embeddings(pixel_values)).last_hidden_state  # (B*T, 1+N, D)
                pooled = tf.layernorm(tokens.reshape(b, t, *tokens.shape[1:]).mean(1))[:, 0]
                extra["logits_pool_before_norm"] = model.classifier(pooled).float().tolist()
                logits = logits.reshape(b, t, NUM_CLASSES).mean(1)
        assert torch.isfinite(logits).all(), case
        assert logits.abs().max() > 0.1, (case, logits)
        out = {
            "source": f"transformers {transformers.__version__}, {type(model).__name__} {desc}",
            "model": vidlab_name,
            "kwargs": kwargs,
            "num_classes": NUM_CLASSES,
            "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
            "fill_checksum": checksum(filled),
            "input_seed": INPUT_SEED,
            "input_shape": list(INPUT_SHAPE),
            "logits": logits.tolist(),
            **extra,
        }
        path = Path(__file__).with_name(f"hf_{case}.json")
        path.write_text(json.dumps(out) + "\n")
        print(
            f"wrote {path}: {len(sd)} keys, logits {tuple(logits.shape)}, |logits|max {logits.abs().max():.3f}, "
            f"std {logits.std():.3f}"
        )


# vidlab name -> full-size config (the HF hub configs' values, built locally)
_VIDEOMAE_BASE = dict(
    image_size=224,
    patch_size=16,
    num_channels=3,
    num_frames=16,
    tubelet_size=2,
    qkv_bias=True,
    use_mean_pooling=True,
    layer_norm_eps=1e-12,
    num_labels=400,
)
_TIMESFORMER_BASE = dict(
    image_size=224,
    patch_size=16,
    num_channels=3,
    num_frames=8,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    qkv_bias=True,
    layer_norm_eps=1e-6,
    num_labels=400,
)
FULL = {
    "videomae_vit_s": (
        "videomae",
        {
            **_VIDEOMAE_BASE,
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 6,
            "intermediate_size": 1536,
        },
    ),
    "videomae_vit_b": (
        "videomae",
        {
            **_VIDEOMAE_BASE,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        },
    ),
    "videomae_vit_l": (
        "videomae",
        {
            **_VIDEOMAE_BASE,
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
        },
    ),
    "videomae_vit_h": (
        "videomae",
        {
            **_VIDEOMAE_BASE,
            "hidden_size": 1280,
            "num_hidden_layers": 32,
            "num_attention_heads": 16,
            "intermediate_size": 5120,
        },
    ),
    "timesformer_divst": ("timesformer", {**_TIMESFORMER_BASE, "attention_type": "divided_space_time"}),
    "timesformer_jointst": ("timesformer", {**_TIMESFORMER_BASE, "attention_type": "joint_space_time"}),
    "timesformer_spaceonly": ("timesformer", {**_TIMESFORMER_BASE, "attention_type": "space_only"}),
}
MACS = ("videomae_vit_b", "timesformer_divst")  # VideoMAE-B 16x224, TimeSformer divST 8x224


def _build_full(family: str, cfg: dict):
    if family == "videomae":
        config = VideoMAEConfig(**cfg)
        config._attn_implementation = "eager"
        return VideoMAEForVideoClassification(config).eval()
    return TimesformerForVideoClassification(TimesformerConfig(**cfg)).eval()


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


def write_params() -> None:
    out = {
        "source": f"transformers {transformers.__version__}, built from config objects (no weights), "
        "params = sum of model.parameters() numel"
    }
    gmacs = {}
    for name, (family, cfg) in FULL.items():
        model = _build_full(family, cfg)
        n = sum(p.numel() for p in model.parameters())
        out[name] = {"params": n, "config": {"class": type(model).__name__, **cfg}}
        print(f"{name}: {n} params")
        if name in MACS:
            try:
                import fvcore
                from fvcore.nn import FlopCountAnalysis
            except ImportError:
                print("fvcore not available: no MACs")
            else:
                shape = (1, cfg["num_frames"], 3, cfg["image_size"], cfg["image_size"])  # HF layout (B, T, C, H, W)
                analysis = FlopCountAnalysis(_Logits(model), torch.zeros(shape))
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                with torch.no_grad():
                    total = analysis.total()
                gmacs[name] = {
                    "gmacs": round(total / 1e9, 3),
                    "macs": int(total),
                    "input_thwc": [cfg["num_frames"], cfg["image_size"], cfg["image_size"], 3],
                    "by_operator": {op: int(v) for op, v in sorted(analysis.by_operator().items())},
                    "uncounted_ops": dict(sorted(analysis.unsupported_ops().items())),
                    "counter": f"fvcore {fvcore.__version__} FlopCountAnalysis, batch 1, eager attention: one per "
                    "multiply-add of linear/matmul/conv, LayerNorm 2 per element; softmax, GELU, adds, "
                    "attention scaling not counted",
                }
                print(f"  {total / 1e9:.2f} GMACs {gmacs[name]['by_operator']}")
        del model
    if gmacs:
        out["gmacs"] = gmacs
    path = Path(__file__).with_name("params_hf.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


def main() -> None:
    torch.set_num_threads(1)
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "fixtures"):
        write_fixtures()
    if what in ("all", "params"):
        write_params()


if __name__ == "__main__":
    main()
