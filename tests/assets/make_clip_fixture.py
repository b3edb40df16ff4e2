"""Write tests/assets/clip_vision_hf.json: HuggingFace transformers' CLIP vision tower
(``CLIPVisionModelWithProjection``) key layout and outputs at a tiny config, for the parity test of
:mod:`vidlab.models.clip` (not named ``hf_*.json``: those are test_convert.py's classifier fixtures).

Run in the reference environment (HF transformers, not a vidlab dependency)::

    OMP_NUM_THREADS=1 NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:tests/assets \\
        /tmp/refs/ptv/bin/python tests/assets/make_clip_fixture.py

As for the other fixtures, no weights are stored: every float tensor of the state dict is overwritten by
:func:`fixture_fill.fill` (a function of key and shape, rebuilt by the test). Tiny config (hidden 32, 2 layers, 4
heads, MLP 128, projection 16, 48x48 images, patch 16, QuickGELU, LayerNorm eps 1e-5), eval mode, eager attention,
float32.

The input is drawn in vidlab's layout ``(B, C, T, H, W)`` from ``input_seed``; HF's image tower sees its frames
stacked along the batch, ``(B*T, C, H, W)`` (frame ``t`` of clip ``b`` is row ``b*T + t``). Stored per frame:
``last_hidden_state`` (the last layer's output, before ``post_layernorm``), ``pooled_output``
(``post_layernorm`` of the CLS token), ``image_embeds`` (``visual_projection`` of it), ``hidden_state_1`` (the first
layer's output, ``hidden_states[1]``) and ``cls_attention``: the last layer's attention of the CLS query to the patch
keys, averaged over heads (``attentions[-1][:, :, 0, 1:].mean(1)``). Values are rounded to 8 significant digits.

``params``: ``sum(p.numel() for p in model.parameters())`` of the full-size towers (``CLIPVisionModelWithProjection``
built on the meta device from the configs of ``openai/clip-vit-base-patch16`` and ``openai/clip-vit-large-patch14``,
no download).
"""

import json
from pathlib import Path

import refshim  # noqa: F401  (harmless here; keeps the reference environments' import order uniform)
from fixture_fill import checksum, fill_state_dict

# isort: split
import torch
import transformers
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

INPUT_SEED = 4321
INPUT_SHAPE = (1, 3, 2, 48, 48)  # vidlab layout (B, C, T, H, W)
TINY = dict(
    image_size=48,
    patch_size=16,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    projection_dim=16,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
FULL = {
    "clip_vit_b16": dict(
        image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, projection_dim=512,
    ),
    "clip_vit_l14": dict(
        image_size=224, patch_size=14, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, projection_dim=768,
    ),
}  # fmt: skip
KWARGS = {"img_size": 48, "patch_size": 16, "width": 32, "depth": 2, "num_heads": 4, "output_dim": 16}


def _rounded(t: torch.Tensor):
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def main() -> None:
    cfg = CLIPVisionConfig(**TINY)
    cfg._attn_implementation = "eager"
    model = CLIPVisionModelWithProjection(cfg).eval()
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))
    frames = x.transpose(1, 2).flatten(0, 1).contiguous()  # (B*T, C, H, W)
    with torch.no_grad():
        out = model(pixel_values=frames, output_hidden_states=True, output_attentions=True)
        pooled = model.vision_model(pixel_values=frames).pooler_output
    attn = out.attentions[-1][:, :, 0, 1:].mean(1)  # (B*T, N): CLS query, patch keys, mean over heads
    outputs = {
        "last_hidden_state": out.last_hidden_state,
        "pooled_output": pooled,
        "image_embeds": out.image_embeds,
        "hidden_state_1": out.hidden_states[1],
        "cls_attention": attn,
    }
    for name, value in outputs.items():
        assert torch.isfinite(value).all(), name
    assert torch.allclose(attn.sum(-1) + out.attentions[-1][:, :, 0, 0].mean(1), torch.ones(attn.shape[0]))
    record = {
        "source": f"transformers {transformers.__version__}, CLIPVisionModelWithProjection(CLIPVisionConfig("
        + ", ".join(f"{k}={v!r}" for k, v in TINY.items())
        + ")), eager attention",
        "kwargs": KWARGS,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        **{name: {"shape": list(value.shape), "values": _rounded(value)} for name, value in outputs.items()},
    }
    params = {}
    for name, full in FULL.items():
        with torch.device("meta"):
            params[name] = sum(p.numel() for p in CLIPVisionModelWithProjection(CLIPVisionConfig(**full)).parameters())
    record["params"] = params
    path = Path(__file__).with_name("clip_vision_hf.json")
    path.write_text(json.dumps(record) + "\n")
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items())
    print(f"wrote {path}: {len(sd)} keys; {shapes}; params {params}")


if __name__ == "__main__":
    main()
