"""MViT reference data: a tiny PyTorchVideo MViT v1 parity fixture and PySlowFast MViT v1/v2 key lists.

Writes (reference side only; nothing of either toolbox is copied into vidlab, only key names, shapes and numbers):

- ``pytorchvideo_mvit_base_16x4_tiny.json``: PyTorchVideo 0.1.5
  ``pytorchvideo.models.vision_transformers.create_multiscale_vision_transformers`` called with the options of the
  hub's ``mvit_base_16x4`` (``pytorchvideo.models.hub.vision_transformers.mvit_video_base_config``: conv pooling,
  separate space/time positional embeddings, cls token, q pooling kernel 3x3x3 at the blocks where the width
  doubles, adaptive kv strides) but tiny sizes (:data:`TINY_KWARGS`: depth 4, width 16, 4x64x64 clip, 5 classes).
  Same format as the other ``pytorchvideo_<hub>.json`` fixtures (``make_pytorchvideo_fixtures.py``): ``keys`` as
  ``[name, shape, dtype]`` in state-dict order, every float tensor replaced by :func:`fixture_fill.fill` (key,
  shape) and loaded strictly, ``fill_checksum``, input ``torch.randn(input_shape,
  generator=torch.Generator().manual_seed(1234))``, eval-mode logits under ``torch.no_grad()`` (the hub head has no
  activation: ``head_activation=None``). ``ref_kwargs`` are the exact builder kwargs; ``model``/``kwargs`` name the
  vidlab side. ``full_size`` records, for the hub models ``mvit_base_16x4`` and ``mvit_base_32x3`` (400 classes,
  random init), ``sum(p.numel() for p in model.parameters())`` and, with fvcore, ``FlopCountAnalysis`` multiply-adds
  of one clip of 16 (resp. 32) frames at 224x224, batch 1.
- ``pyslowfast_mvit_keys.json``: PySlowFast (facebookresearch/SlowFast) ``video_model_builder.MViT`` built on CPU
  from ``configs/Kinetics/{MVIT_B_16x4_CONV, MVIT_B_32x3_CONV, MVITv2_S_16x4, MVITv2_B_32x3}.yaml`` (400 classes):
  state-dict ``[name, shape]`` in order, ``num_params`` (parameters, buffers excluded; these models have none) and a
  per-block summary (``dim``, ``dim_out``, ``num_heads``, q/kv pooling kernels and strides as built, ``[]`` = no
  pooling) read from the built modules. Import stubs as in ``make_pyslowfast_keys.py`` (reused from there).

Usage (reference environment: torch, fvcore, iopath, pytorchvideo 0.1.5; SlowFast source extracted with
``git --git-dir=<mirror> archive HEAD slowfast configs | tar -x -C /tmp/slowfast_src``)::

    OMP_NUM_THREADS=1 PYTHONPATH=/work/shared/refs:tests/assets /tmp/refs/ptv/bin/python \
        tests/assets/make_mvit_refs.py --slowfast-src /tmp/slowfast_src \
        --commit 287ec0076846560f44a9327e931a5a2360240533

``--skip-flops`` leaves out the (slow, ~1 min on one thread) full-size fvcore counts; ``--skip-slowfast`` /
``--skip-ptv`` run one half only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if os.path.isdir("/work/shared/refs"):
    sys.path.insert(0, "/work/shared/refs")

import refshim  # noqa: E402,F401  (must precede pytorchvideo)
from fixture_fill import checksum, fill_state_dict  # noqa: E402

# isort: split
import torch  # noqa: E402

NUM_CLASSES = 5
INPUT_SEED = 1234
INPUT_SHAPE = (1, 3, 4, 64, 64)

#: Tiny MViT v1 with mvit_base_16x4's options: the hub config's lists re-indexed for depth 4 (width and heads
#: double and q is pooled 2x spatially at blocks 1 and 3, like blocks 1, 3, 14 of the 16-deep hub model); kv stride
#: [1, 4, 4] adaptive (halved where q is pooled, so block 3 pools kv with kernel 3 and stride 1, as the hub's blocks
#: 14-15 do); patch embedding, pooling kernel [3, 3, 3], mlp ratio, qkv bias, sep_pos_embed, cls token, head
#: dropout are the builder defaults the hub relies on (passed explicitly here).
TINY_KWARGS = {
    "spatial_size": 64,
    "temporal_size": 4,
    "cls_embed_on": True,
    "sep_pos_embed": True,
    "depth": 4,
    "norm": "layernorm",
    "enable_patch_embed": True,
    "input_channels": 3,
    "patch_embed_dim": 16,
    "conv_patch_embed_kernel": [3, 7, 7],
    "conv_patch_embed_stride": [2, 4, 4],
    "conv_patch_embed_padding": [1, 3, 3],
    "enable_patch_embed_norm": False,
    "use_2d_patch": False,
    "num_heads": 1,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "dropout_rate_block": 0.0,
    "droppath_rate_block": 0.0,
    "pooling_mode": "conv",
    "pool_first": False,
    "embed_dim_mul": [[1, 2.0], [3, 2.0]],
    "atten_head_mul": [[1, 2.0], [3, 2.0]],
    "pool_q_stride_size": [[1, 1, 2, 2], [3, 1, 2, 2]],
    "pool_kv_stride_size": None,
    "pool_kv_stride_adaptive": [1, 4, 4],
    "pool_kvq_kernel": [3, 3, 3],
    "head_dropout_rate": 0.5,
    "head_num_classes": NUM_CLASSES,
}

FULL_SIZE = {"mvit_base_16x4": 16, "mvit_base_32x3": 32}  # hub name -> frames (crop 224)

SLOWFAST_CONFIGS = {
    "mvit_b_16x4_conv": "configs/Kinetics/MVIT_B_16x4_CONV.yaml",
    "mvit_b_32x3_conv": "configs/Kinetics/MVIT_B_32x3_CONV.yaml",
    "mvitv2_s_16x4": "configs/Kinetics/MVITv2_S_16x4.yaml",
    "mvitv2_b_32x3": "configs/Kinetics/MVITv2_B_32x3.yaml",
}


#: the same network as vidlab's mvit_v1_b_16x4 builder arguments (HUB_MODELS adds pool_norm_eps=1e-5)
VIDLAB_KWARGS = {
    "arch": {"embed_dims": 16, "num_layers": 4, "num_heads": 1, "downscale_indices": [1, 3]},
    "img_size": 64,
    "num_frames": 4,
    "kv_stride": [1, 4, 4],
}


def _conv_geom(conv):
    return (list(conv.kernel_size), list(conv.stride)) if conv is not None else ([], [])


def block_summary(block) -> dict:
    """dim / heads / pooling of one MultiScaleBlock (PyTorchVideo's or PySlowFast's), read from its modules."""
    attn = block.attn
    kq, sq = _conv_geom(getattr(attn, "pool_q", None))
    kkv, skv = _conv_geom(getattr(attn, "pool_k", None))
    skip = block.pool_skip
    return {
        "dim": block.dim,
        "dim_out": block.dim_out,
        "num_heads": attn.num_heads,
        "kernel_q": kq,
        "stride_q": sq,
        "kernel_kv": kkv,
        "stride_kv": skv,
        "pool_skip": None if skip is None else [list(skip.kernel_size), list(skip.stride), list(skip.padding)],
    }


def ptv_tiny(out_dir: Path) -> None:
    import pytorchvideo
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

    torch.manual_seed(0)
    model = create_multiscale_vision_transformers(**TINY_KWARGS).eval()
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    assert not any(m.training for m in model.modules())
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, NUM_CLASSES), logits.shape
    assert torch.isfinite(logits).all() and logits.abs().max() > 0.1, logits
    out = {
        "source": f"pytorchvideo {pytorchvideo.__version__}, "
        "models.vision_transformers.create_multiscale_vision_transformers (hub.mvit_base_16x4 options, tiny sizes)",
        "hub": "mvit_base_16x4",
        "model": "mvit_v1_b_16x4",
        "kwargs": VIDLAB_KWARGS,
        "ref_kwargs": TINY_KWARGS,
        "num_classes": NUM_CLASSES,
        "blocks": [block_summary(b) for b in model.blocks],
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        "logits": logits.tolist(),
    }
    path = out_dir / "pytorchvideo_mvit_base_16x4_tiny.json"
    if path.exists():  # keep fields filled in by hand (vidlab kwargs) and the full-size numbers of a previous run
        old = json.loads(path.read_text())
        out["kwargs"] = old.get("kwargs")
        if "model" in old:
            out["model"] = old["model"]
        for key in ("full_size", "full_size_params", "full_size_gmacs"):
            if key in old:
                out[key] = old[key]
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}: {len(sd)} keys, logits {logits.tolist()}")


def ptv_full_size(out_dir: Path, flops: bool) -> None:
    import pytorchvideo
    from pytorchvideo.models import hub

    path = out_dir / "pytorchvideo_mvit_base_16x4_tiny.json"
    data = json.loads(path.read_text())
    full = {}
    for name, frames in FULL_SIZE.items():
        torch.manual_seed(0)
        model = getattr(hub, name)(pretrained=False).eval()
        entry = {
            "input": {"frames": frames, "crop": 224},
            "num_classes": 400,
            "depth": len(model.blocks),
            "params": sum(p.numel() for p in model.parameters()),
            "blocks": [block_summary(b) for b in model.blocks],
        }
        if flops:
            import fvcore
            from fvcore.nn import FlopCountAnalysis

            x = (torch.zeros(1, 3, frames, 224, 224),)
            analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            with torch.no_grad():
                entry["macs"] = int(analysis.total())
                entry["by_operator"] = {op: int(v) for op, v in sorted(analysis.by_operator().items())}
            entry["macs_source"] = f"fvcore {fvcore.__version__} FlopCountAnalysis (multiply-adds), batch 1"
            print(f"{name}: {entry['params']} params, {entry['macs'] / 1e9:.3f} GMACs", flush=True)
        else:
            print(f"{name}: {entry['params']} params", flush=True)
        full[name] = entry
    data["full_size"] = {"source": f"pytorchvideo {pytorchvideo.__version__} hub, pretrained=False", **full}
    data["full_size_params"] = {name: e["params"] for name, e in full.items()}
    if flops:
        data["full_size_gmacs"] = {name: round(e["macs"] / 1e9, 3) for name, e in full.items()}
    path.write_text(json.dumps(data) + "\n")
    print("updated", path)


def slowfast_keys(src: str, commit: str, out: Path) -> None:
    import make_pyslowfast_keys as mpk

    sys.path.insert(0, src)
    mpk.install_stubs()
    result = {"source": "facebookresearch/SlowFast " + commit, "models": {}}
    for name, cfg_path in SLOWFAST_CONFIGS.items():
        torch.manual_seed(0)
        model, cfg = mpk.build(src, cfg_path, "MViT")
        sd = model.state_dict()
        result["models"][name] = {
            "config": cfg_path,
            "num_classes": int(cfg.MODEL.NUM_CLASSES),
            "input": {"frames": int(cfg.DATA.NUM_FRAMES), "crop": int(cfg.DATA.TRAIN_CROP_SIZE)},
            "num_params": int(sum(p.numel() for p in model.parameters())),
            "keys": [[k, list(v.shape)] for k, v in sd.items()],
            "blocks": [block_summary(b) for b in model.blocks],
        }
        print(name, len(sd), result["models"][name]["num_params"], flush=True)
    with open(out, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", out, os.path.getsize(out), "bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slowfast-src", default="/tmp/slowfast_src")
    ap.add_argument("--commit", help="SlowFast commit of the source (default: git rev-parse HEAD)")
    ap.add_argument("--out-dir", default=str(HERE))
    ap.add_argument("--skip-flops", action="store_true")
    ap.add_argument("--skip-ptv", action="store_true")
    ap.add_argument("--skip-slowfast", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out_dir = Path(args.out_dir)
    if not args.skip_ptv:
        ptv_tiny(out_dir)
        ptv_full_size(out_dir, flops=not args.skip_flops)
    if not args.skip_slowfast:
        import make_pyslowfast_keys as mpk

        src = os.path.abspath(args.slowfast_src)
        slowfast_keys(src, mpk.git_commit(src, args.commit), out_dir / "pyslowfast_mvit_keys.json")


if __name__ == "__main__":
    main()
