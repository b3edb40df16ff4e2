"""Write the VideoMAE masked-autoencoder pretraining fixtures from two references:

* ``tests/assets/videomae_pretrain_hf.json``: HuggingFace transformers' ``VideoMAEForPreTraining``;
* ``tests/assets/videomae_pretrain_orig.json``: the original MCG-NJU/VideoMAE ``PretrainVisionTransformer``
  (``modeling_pretrain.py``) with the loss of its ``engine_for_pretraining.py``.

(The names do not start with ``hf_``: ``tests/models/test_convert.py`` runs every ``hf_*.json`` as a
classification fixture.)

Neither reference is a vidlab dependency and this script is not used by the tests. Run it twice::

    OMP_NUM_THREADS=1 NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:tests/assets \\
        /tmp/refs/ptv/bin/python tests/assets/make_videomae_pretrain_fixtures.py hf

    mkdir -p /tmp/videomae_orig && git --git-dir=<VideoMAE.git> archive 14ef8d856287c94ef1f985fe30f958eb4ec2c55d \\
        modeling_pretrain.py modeling_finetune.py masking_generator.py | tar -x -C /tmp/videomae_orig
    OMP_NUM_THREADS=1 PYTHONPATH=tests/assets \\
        /tmp/refs/ptv/bin/python tests/assets/make_videomae_pretrain_fixtures.py orig /tmp/videomae_orig

Environment: torch 2.13 (CPU), numpy, einops; transformers 5.24 for ``hf``. The original files are imported
unchanged; the few ``timm`` names they import (``timm.models.layers.drop_path / to_2tuple / trunc_normal_``,
``timm.models.registry.register_model``) are provided by small stand-ins below when timm is not installed (timm
needs torchvision). None of them affects a forward pass in eval mode (drop-path rate 0, weights overwritten).

Tiny model, both references: 32x32 frames, 8x8 patches, 4 frames, tubelet 2, so N = 2*4*4 = 32 tokens (index
``t*16 + h*4 + w``); encoder 32 wide, 2 blocks, 4 heads, MLP 128; decoder 16 wide, 2 blocks, 2 heads, MLP 64;
head 3*2*8*8 = 384 outputs per token; q/v biases (no k bias); eval mode, float32, eager attention (HF).

Weights: none stored. Every float tensor of the reference state dict is :func:`fixture_fill.fill` of its key and
shape (rebuilt by the tests, ``fill_checksum`` guards the generator). The two references have different key names,
hence different weights and outputs: each fixture is a parity target for its own key layout only.

Input: ``torch.randn(input_shape, generator=torch.Generator().manual_seed(input_seed))`` in vidlab's layout
(B, C, T, H, W) = (2, 3, 4, 32, 32), read as an ImageNet-normalised clip. HF takes (B, T, C, H, W) and is given the
permuted tensor; the original takes (B, C, T, H, W) as is.

Mask: tube masking as the original ``masking_generator.TubeMaskingGenerator`` builds it, for a (2, 4, 4) token grid
and ratio 0.75: per sample ``int(0.75 * 16) = 12`` ones and 4 zeros, shuffled by numpy, tiled over the 2 temporal
slices (24 of 32 tokens masked). Samples are drawn one after the other from ``np.random.RandomState(mask_seed)``;
the ``orig`` run checks that the original generator after ``np.random.seed(mask_seed)`` gives the same masks. The
mask is stored explicitly (1 = masked).

Loss (both references, checked against each other on the HF outputs): the input is unnormalised with ImageNet mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); each token's tubelet becomes a (2*8*8, 3) block ordered
``(p0 p1 p2) c`` (frame in tubelet, row, column; channel fastest once flattened); with ``norm_pix_loss`` every
channel of a block is normalised by its mean and unbiased standard deviation over the 128 pixels,
``(x - mean) / (sqrt(var_unbiased) + 1e-6)`` (eps outside the sqrt); the target of masked tokens (ascending token
index) is compared with the predictions by a plain MSE (mean over all B * N_masked * 384 elements). Without
``norm_pix_loss`` the target is the unnormalised pixels, same ``(p0 p1 p2 c)`` order. The
predictions do not depend on the flag; both losses are stored.

HF (transformers 5.24, modeling_videomae.py, read for these facts):
* every ``VideoMAELayer`` (encoder and decoder: the decoder config is a deepcopy of the config with the decoder
  sizes) has ``layernorm_before`` / ``layernorm_after`` with ``config.layer_norm_eps`` (default 1e-12, used here);
* ``videomae.layernorm`` (only with ``use_mean_pooling=False``, as here) also uses ``layer_norm_eps`` (1e-12);
* the decoder's final ``decoder.norm`` is ``nn.LayerNorm(decoder_hidden_size)``: PyTorch's default eps 1e-5;
* ``qkv_bias=True`` becomes ``qv_bias``: ``query.bias`` and ``value.bias``, ``key`` has no bias;
* the sinusoid tables ``videomae.embeddings.position_embeddings`` (1, N, 32) and ``position_embeddings``
  (1, N, 16) are plain tensor attributes: not in the state dict. Keys: ``mask_token``, ``videomae.embeddings.*``,
  ``videomae.encoder.layer.{i}.*``, ``videomae.layernorm.*``, ``encoder_to_decoder.weight`` (no bias),
  ``decoder.decoder_layers.{i}.*``, ``decoder.norm.*``, ``decoder.head.*`` (see ``keys``).

Original (MCG-NJU/VideoMAE 14ef8d8, files last changed in 5cefe18c):
* all LayerNorms (blocks' ``norm1``/``norm2``, ``encoder.norm``, ``decoder.norm``) are
  ``partial(nn.LayerNorm, eps=1e-6)`` as in the registered ``pretrain_videomae_*_patch16_224`` models;
* ``Attention`` has one ``qkv.weight`` (3D, D) with no bias and ``q_bias``/``v_bias`` (D,) parameters (k bias zero);
  ``q`` is multiplied by head_dim**-0.5 before ``q @ k^T``;
* keys: ``mask_token`` (1, 1, 16) first, then ``encoder.patch_embed.proj.{weight,bias}``,
  ``encoder.blocks.{i}.{norm1,attn.q_bias,attn.v_bias,attn.qkv.weight,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
  ``encoder.norm.*``, ``decoder.blocks.{i}.*`` (same names), ``decoder.norm.*``, ``decoder.head.*``,
  ``encoder_to_decoder.weight`` (no bias) last. ``encoder.head`` is Identity (no keys); the sinusoid tables
  ``encoder.pos_embed`` (1, N, 32) and ``pos_embed`` (1, N, 16) are plain tensor attributes: not in the state dict;
  no ``gamma_1``/``gamma_2`` (``init_values=0``);
* ``PretrainVisionTransformer`` has no frame-count argument: its encoder builds ``PatchEmbed`` with the default
  ``num_frames=16``, which only sets ``num_patches``, i.e. the length of the two sinusoid tables. For 4 frames the
  script has ``modeling_pretrain.PatchEmbed`` build with ``num_frames=4`` (a subclass fixing that argument), which
  gives the first 32 rows of the 16-frame tables (checked); the convolution and all parameters are unchanged.
"""

import json
import sys
import types
from functools import partial
from pathlib import Path

from fixture_fill import checksum, fill_state_dict

# isort: split
import numpy as np
import torch
from einops import rearrange

ASSETS = Path(__file__).resolve().parent
ORIG_COMMIT = "14ef8d856287c94ef1f985fe30f958eb4ec2c55d"

IMAGE_SIZE, PATCH, FRAMES, TUBELET = 32, 8, 4, 2
INPUT_SEED = 2024
INPUT_SHAPE = (2, 3, FRAMES, IMAGE_SIZE, IMAGE_SIZE)  # vidlab layout (B, C, T, H, W)
MASK_SEED = 0
MASK_RATIO = 0.75
GRID = (FRAMES // TUBELET, IMAGE_SIZE // PATCH, IMAGE_SIZE // PATCH)  # (2, 4, 4)
NUM_TOKENS = GRID[0] * GRID[1] * GRID[2]
PATCH_DIM = 3 * TUBELET * PATCH * PATCH  # 384
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GEOMETRY = {
    "img_size": IMAGE_SIZE,
    "patch_size": PATCH,
    "num_frames": FRAMES,
    "tubelet_size": TUBELET,
    "in_chans": 3,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 4,
    "mlp_hidden": 128,
    "decoder_embed_dim": 16,
    "decoder_depth": 2,
    "decoder_num_heads": 2,
    "decoder_mlp_hidden": 64,
    "patch_dim": PATCH_DIM,
    "qkv_bias": "q and v biases, no k bias",
    "num_tokens": NUM_TOKENS,
}
INPUT_RECIPE = "torch.randn(input_shape, generator=torch.Generator().manual_seed(input_seed)), (B, C, T, H, W)"
MASK_RECIPE = (
    "np.random.RandomState(mask_seed); per sample in order: m = hstack(zeros(16 - 12), ones(12)); rng.shuffle(m); "
    "tile(m, (2, 1)).flatten() -> token index t*16 + h*4 + w; 1 = masked"
)
TARGET = {
    "unnormalise": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "patch_order": "(p0 p1 p2 c): tubelet frame, row, column, channel (channel fastest)",
    "norm_pix": "per token and channel over the 128 pixels: (x - mean) / (sqrt(unbiased var) + 1e-6)",
    "loss": "MSE, mean over B * N_masked * 384, masked tokens in ascending index order",
}


def fixture_input() -> torch.Tensor:
    return torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))


def tube_mask() -> torch.Tensor:
    """(B, N) bool, True = masked; the same spatial mask on every temporal slice, one draw per sample."""
    rng = np.random.RandomState(MASK_SEED)
    per_slice = GRID[1] * GRID[2]
    n_masked = int(MASK_RATIO * per_slice)
    rows = []
    for _ in range(INPUT_SHAPE[0]):
        spatial = np.concatenate([np.zeros(per_slice - n_masked), np.ones(n_masked)])
        rng.shuffle(spatial)
        rows.append(np.tile(spatial, (GRID[0], 1)).reshape(-1))
    return torch.from_numpy(np.stack(rows)).bool()


def engine_loss(x: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor, norm_pix: bool):
    """The original training engine's target and MSE for a (B, C, T, H, W) normalised clip."""
    mean = torch.as_tensor(IMAGENET_MEAN)[None, :, None, None, None]
    std = torch.as_tensor(IMAGENET_STD)[None, :, None, None, None]
    video = x * std + mean
    if norm_pix:
        blocks = rearrange(video, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=TUBELET, p1=PATCH, p2=PATCH)
        mu = blocks.mean(dim=-2, keepdim=True)
        sd = blocks.var(dim=-2, unbiased=True, keepdim=True).sqrt()
        target = rearrange((blocks - mu) / (sd + 1e-6), "b n p c -> b n (p c)")
    else:
        target = rearrange(video, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2 c)", p0=TUBELET, p1=PATCH, p2=PATCH)
    target = target[mask].reshape(x.shape[0], -1, PATCH_DIM)
    return torch.nn.functional.mse_loss(pred, target), target


def f32(t: torch.Tensor) -> list:
    """Nested lists of the shortest decimals that read back as the same float32 values."""
    flat = np.array([float(str(v)) for v in t.detach().float().numpy().ravel()], dtype=np.float64)
    return flat.reshape(tuple(t.shape)).tolist()


def write(name: str, out: dict) -> None:
    path = ASSETS / name
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB): {len(out['keys'])} keys, losses {out['loss']}")


def _common(sd, filled, mask, logits, enc, losses, targets) -> dict:
    assert logits.shape == (INPUT_SHAPE[0], int(mask[0].sum()), PATCH_DIM), logits.shape
    assert torch.isfinite(logits).all() and logits.abs().max() > 0.1
    return {
        "geometry": GEOMETRY,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        "input_recipe": INPUT_RECIPE,
        "mask_seed": MASK_SEED,
        "mask_ratio": MASK_RATIO,
        "mask_recipe": MASK_RECIPE,
        "mask": mask.int().tolist(),
        "target": TARGET,
        "loss": {"norm_pix": float(losses[True]), "pixel": float(losses[False])},
        "target_abs_sum": {
            "norm_pix": float(targets[True].double().abs().sum()),
            "pixel": float(targets[False].double().abs().sum()),
        },
        "logits_shape": list(logits.shape),
        "logits": f32(logits),
        "encoder_out_shape": list(enc.shape),
        "encoder_out": f32(enc),
    }


def run_hf() -> None:
    import refshim  # noqa: F401  (keeps the reference environments' import order uniform)
    import transformers
    from transformers import VideoMAEConfig, VideoMAEForPreTraining

    x, mask = fixture_input(), tube_mask()
    pixel_values = x.permute(0, 2, 1, 3, 4).contiguous()  # (B, T, C, H, W) for HF
    config = dict(
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        num_channels=3,
        num_frames=FRAMES,
        tubelet_size=TUBELET,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        qkv_bias=True,
        use_mean_pooling=False,
        layer_norm_eps=1e-12,
    )
    losses, targets, results = {}, {}, {}
    for norm_pix in (True, False):
        cfg = VideoMAEConfig(**config, norm_pix_loss=norm_pix)
        cfg._attn_implementation = "eager"
        model = VideoMAEForPreTraining(cfg).eval()
        sd = model.state_dict()
        filled = fill_state_dict(sd)
        model.load_state_dict(filled, strict=True)
        with torch.no_grad():
            out = model(pixel_values=pixel_values, bool_masked_pos=mask)
            enc = model.videomae(pixel_values, bool_masked_pos=mask).last_hidden_state
            ref_loss, target = engine_loss(x, mask, out.logits, norm_pix)
        # the original engine's target on HF's predictions gives HF's loss: same target definition
        torch.testing.assert_close(out.loss, ref_loss, rtol=1e-6, atol=0)
        losses[norm_pix], targets[norm_pix] = out.loss.item(), target
        results[norm_pix] = (sd, filled, out.logits, enc)
    assert torch.equal(results[True][2], results[False][2])  # predictions do not depend on the loss flag
    eps = {
        "block": model.videomae.encoder.layer[0].layernorm_before.eps,
        "encoder_norm": model.videomae.layernorm.eps,
        "decoder_block": model.decoder.decoder_layers[0].layernorm_before.eps,
        "decoder_norm": model.decoder.norm.eps,
    }
    assert eps == {"block": 1e-12, "encoder_norm": 1e-12, "decoder_block": 1e-12, "decoder_norm": 1e-5}, eps
    tables = {
        "videomae.embeddings.position_embeddings": list(model.videomae.embeddings.position_embeddings.shape),
        "position_embeddings": list(model.position_embeddings.shape),
    }
    sd, filled, logits, enc = results[True]
    assert not any("position_embeddings" in k for k in sd)
    out = {
        "source": f"transformers {transformers.__version__}, VideoMAEForPreTraining",
        "reference": "hf",
        "config": {**config, "norm_pix_loss": "both (see loss)", "attn_implementation": "eager"},
        "layer_norm_eps": eps,
        "position_tables_not_in_state_dict": tables,
        **_common(sd, filled, mask, logits, enc, losses, targets),
    }
    write("videomae_pretrain_hf.json", out)


def _stub_timm() -> None:
    """Stand-ins for the timm names VideoMAE's model files import (timm is not installable without torchvision)."""
    try:
        import timm.models.layers  # noqa: F401
        import timm.models.registry  # noqa: F401

        return
    except ImportError:
        pass

    def drop_path(x, drop_prob=0.0, training=False):
        if not drop_prob or not training:
            return x
        keep = 1.0 - drop_prob
        return x * x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep) / keep

    def to_2tuple(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
        return torch.nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.drop_path, layers.to_2tuple, layers.trunc_normal_ = drop_path, to_2tuple, trunc_normal_
    registry.register_model = lambda fn: fn
    timm.models, models.layers, models.registry = models, layers, registry
    sys.modules.update(
        {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}
    )


def run_orig(src: str) -> None:
    sys.path.insert(0, src)
    _stub_timm()
    import masking_generator
    import modeling_finetune
    import modeling_pretrain

    x, mask = fixture_input(), tube_mask()
    np.random.seed(MASK_SEED)
    gen = masking_generator.TubeMaskingGenerator(GRID, MASK_RATIO)
    orig_mask = np.stack([gen() for _ in range(INPUT_SHAPE[0])])
    assert np.array_equal(orig_mask, mask.numpy().astype(orig_mask.dtype)), "mask recipe differs from the original"

    class PatchEmbed(modeling_finetune.PatchEmbed):  # the encoder's PatchEmbed, built for this clip length
        def __init__(self, **kwargs):
            super().__init__(num_frames=FRAMES, **kwargs)

    modeling_pretrain.PatchEmbed = PatchEmbed
    config = dict(
        img_size=IMAGE_SIZE,
        patch_size=PATCH,
        encoder_in_chans=3,
        encoder_num_classes=0,
        encoder_embed_dim=32,
        encoder_depth=2,
        encoder_num_heads=4,
        decoder_num_classes=PATCH_DIM,
        decoder_embed_dim=16,
        decoder_depth=2,
        decoder_num_heads=2,
        mlp_ratio=4.0,
        qkv_bias=True,
        tubelet_size=TUBELET,
    )
    model = modeling_pretrain.PretrainVisionTransformer(
        **config, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)
    ).eval()
    for table, dim in ((model.encoder.pos_embed, 32), (model.pos_embed, 16)):
        full = modeling_finetune.get_sinusoid_encoding_table(NUM_TOKENS * 16 // FRAMES, dim)  # 16-frame table
        assert table.shape == (1, NUM_TOKENS, dim) and torch.equal(table, full[:, :NUM_TOKENS])
    sd = model.state_dict()
    assert not any("pos_embed" in k for k in sd)
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    losses, targets = {}, {}
    with torch.no_grad():
        logits = model(x, mask)
        enc = model.encoder(x, mask)
        for norm_pix in (True, False):
            loss, target = engine_loss(x, mask, logits, norm_pix)
            losses[norm_pix], targets[norm_pix] = loss.item(), target
    eps = {
        "block": model.encoder.blocks[0].norm1.eps,
        "encoder_norm": model.encoder.norm.eps,
        "decoder_block": model.decoder.blocks[0].norm1.eps,
        "decoder_norm": model.decoder.norm.eps,
    }
    assert set(eps.values()) == {1e-6}, eps
    out = {
        "source": f"MCG-NJU/VideoMAE {ORIG_COMMIT}, modeling_pretrain.PretrainVisionTransformer + "
        "engine_for_pretraining loss",
        "reference": "orig",
        "config": {
            **config,
            "norm_layer": "partial(nn.LayerNorm, eps=1e-6)",
            "init_values": 0.0,
            "patch_embed_num_frames": FRAMES,
        },
        "layer_norm_eps": eps,
        "position_tables_not_in_state_dict": {
            "encoder.pos_embed": list(model.encoder.pos_embed.shape),
            "pos_embed": list(model.pos_embed.shape),
        },
        **_common(sd, filled, mask, logits, enc, losses, targets),
    }
    write("videomae_pretrain_orig.json", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) >= 2 and sys.argv[1] == "hf":
        run_hf()
    elif len(sys.argv) == 3 and sys.argv[1] == "orig":
        run_orig(sys.argv[2])
    else:
        sys.exit("usage: make_videomae_pretrain_fixtures.py hf | orig <dir with the original VideoMAE files>")
