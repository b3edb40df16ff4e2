"""Write tests/assets/videomamba_keys.json and tests/assets/videomamba_tiny.json from the official VideoMamba code.

Source: https://github.com/OpenGVLab/VideoMamba at commit f3427e42cb8453a523aec3a6f86d57b5bc1de5c3 (2024-03-30):
``videomamba/video_sm/models/videomamba.py`` (VisionMamba, videomamba_tiny / _small / _middle) and the Mamba fork
it imports, ``mamba/mamba_ssm`` (``modules/mamba_simple.py``, ``ops/selective_scan_interface.py``,
``ops/triton/layernorm.py``). Give the script a checkout (or ``git archive``) of that commit::

    git --git-dir=<VideoMamba.git> archive f3427e42 mamba/mamba_ssm videomamba/video_sm/models | tar -x -C /tmp/vm
    OMP_NUM_THREADS=1 PYTHONPATH=<dir with timm==0.4.12> python tests/assets/make_videomamba_keys.py /tmp/vm

Environment: torch 2.13 (CPU), einops, numpy, pillow and timm==0.4.12 (the version VideoMamba's requirements.txt
pins; install it with ``--no-deps``). Neither VideoMamba nor timm is a vidlab dependency.

The official code is imported unchanged; only imports that cannot load on a CPU-only machine are replaced:

* ``selective_scan_cuda``, ``causal_conv1d_cuda`` (CUDA extensions): empty modules; nothing calls them below.
* ``causal_conv1d.causal_conv1d_fn``: ``silu(F.conv1d(x, w, b, padding=W-1, groups=D)[..., :L])``, the same causal
  depthwise convolution as the non-fused path of ``Mamba.forward`` (``self.act(self.conv1d(x)[..., :seqlen])``).
  (This fork's ``mamba_inner_ref`` calls ``causal_conv1d_fn`` unconditionally, so it must be a function.)
* ``mamba_ssm.ops.triton.layernorm`` (Triton): a module made of the official file's own ``layer_norm_ref``,
  ``rms_norm_ref`` and ``RMSNorm`` class (their source is extracted from the file and executed), with
  ``rms_norm_fn`` / ``layer_norm_fn`` calling the ``*_ref`` functions (``upcast=True``; the residual is returned
  in float32 as the fused kernel does with ``residual_in_fp32``). Parameter names are unchanged (``weight``; the
  RMSNorm ``bias`` is ``None``).
* ``mamba_ssm.ops.triton.selective_state_update`` (Triton, decoding only): ``None``.
* ``mamba_ssm/__init__.py`` is skipped (it imports the language-model head and HF utilities), and torchvision,
  which timm 0.4.12's ``timm.data`` imports but VideoMamba never uses, is stubbed when it is not importable.

Forward pass of the tiny fixture: ``Mamba.forward`` with its defaults takes the fused path
(``use_fast_path=True``, ``bimamba=True``): ``mamba_inner_fn_no_out_proj`` on ``xz`` with the forward parameters and
on ``xz.flip(-1)`` with the ``*_b`` parameters, ``out + out_b.flip(-1)``, then ``out_proj``. The CUDA autograd
function ``mamba_inner_fn_no_out_proj`` is replaced by the official pure-PyTorch ``mamba_inner_ref`` (same file)
with an identity output projection (exact in float32), and its ``selective_scan_fn`` by ``selective_scan_ref``.
The module's ``use_fast_path=False`` branch is not used: it ignores the ``*_b`` parameters (a forward-only scan).

Weights: every float tensor of the state dict is :func:`fixture_fill.fill` of its key and shape (a function of
key and shape, rebuilt by the tests). ``A_log`` / ``A_b_log`` get small normals (``A = -exp(A_log)`` stays near -1),
``D`` / ``D_b`` unit normals.
"""

import ast
import contextlib
import io
import json
import math
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_fill import checksum, fill_state_dict  # noqa: E402

COMMIT = "f3427e42cb8453a523aec3a6f86d57b5bc1de5c3"
SOURCE = f"OpenGVLab/VideoMamba {COMMIT}, videomamba/video_sm/models/videomamba.py"
ASSETS = Path(__file__).resolve().parent

NUM_CLASSES = 5
INPUT_SEED = 1234
INPUT_SHAPE = (2, 3, 4, 32, 32)
TINY_KWARGS = {"embed_dim": 32, "depth": 2, "img_size": 32, "num_frames": 4}
TINY_EXTRA = {"patch_size": 16, "kernel_size": 1}  # VisionMamba defaults, passed explicitly

BUILDERS = {"videomamba_ti": "videomamba_tiny", "videomamba_s": "videomamba_small", "videomamba_m": "videomamba_middle"}
BUILD_KWARGS = {"num_classes": 400, "num_frames": 8, "img_size": 224}
# --drop_path of videomamba/video_sm/exp/k400/videomamba_*/run_f8x224.sh (the builders' default is 0.1)
K400_DROP_PATH = {"videomamba_ti": 0.1, "videomamba_s": 0.35, "videomamba_m": 0.8}


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _causal_conv1d_fn(x, weight, bias=None, activation=None):
    """Causal depthwise conv1d: x (B, D, L), weight (D, W)."""
    width = weight.shape[-1]
    out = F.conv1d(x, weight.unsqueeze(1), bias, padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return F.silu(out) if activation in ("silu", "swish") else out


def _causal_conv1d_update(*args, **kwargs):
    raise NotImplementedError("decoding step is not used")


def _layernorm_module(root: Path) -> types.ModuleType:
    """``mamba_ssm.ops.triton.layernorm`` from the official file's reference functions and RMSNorm class."""
    path = root / "mamba/mamba_ssm/ops/triton/layernorm.py"
    tree = ast.parse(path.read_text())
    keep = [n for n in tree.body if getattr(n, "name", None) in ("layer_norm_ref", "rms_norm_ref", "RMSNorm")]
    assert len(keep) == 3, [getattr(n, "name", None) for n in keep]
    mod = _module("mamba_ssm.ops.triton.layernorm", torch=torch, F=F, math=math, __file__=str(path))
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), mod.__dict__)

    def layer_norm_fn(
        x, weight, bias, residual=None, eps=1e-6, prenorm=False, residual_in_fp32=False, is_rms_norm=False
    ):
        ref = mod.rms_norm_ref if is_rms_norm else mod.layer_norm_ref
        out = ref(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm, upcast=True)
        if prenorm and residual_in_fp32:
            out = (out[0], out[1].float())
        return out

    def rms_norm_fn(x, weight, bias, residual=None, prenorm=False, residual_in_fp32=False, eps=1e-6):
        return layer_norm_fn(x, weight, bias, residual, eps, prenorm, residual_in_fp32, True)

    mod.layer_norm_fn = layer_norm_fn
    mod.rms_norm_fn = rms_norm_fn
    return mod


def load_official(root: Path):
    """Import the official ``videomamba`` module (and its Mamba fork) with CPU stand-ins for the CUDA imports."""
    root = root.resolve()
    try:
        import torchvision  # noqa: F401
    except Exception:  # timm 0.4.12's timm.data imports torchvision.transforms at import time only
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            _module(name)
    _module("selective_scan_cuda")
    _module("causal_conv1d_cuda")
    _module("causal_conv1d", causal_conv1d_fn=_causal_conv1d_fn, causal_conv1d_update=_causal_conv1d_update)
    _module("mamba_ssm", __path__=[str(root / "mamba/mamba_ssm")])  # skip __init__ (LM head, HF utils)
    _layernorm_module(root)
    _module("mamba_ssm.ops.triton.selective_state_update", selective_state_update=None)

    import mamba_ssm.modules.mamba_simple as ms
    import mamba_ssm.ops.selective_scan_interface as ssi
    from einops import rearrange

    # CUDA kernels -> the same file's pure-PyTorch references
    ssi.selective_scan_fn = ssi.selective_scan_ref  # used inside mamba_inner_ref

    def mamba_inner_fn_no_out_proj(
        xz,
        conv1d_weight,
        conv1d_bias,
        x_proj_weight,
        delta_proj_weight,
        A,
        B=None,
        C=None,
        D=None,
        delta_bias=None,
        B_proj_bias=None,
        C_proj_bias=None,
        delta_softplus=True,
    ):
        eye = torch.eye(xz.shape[1] // 2, dtype=xz.dtype)
        y = ssi.mamba_inner_ref(
            xz,
            conv1d_weight,
            conv1d_bias,
            x_proj_weight,
            delta_proj_weight,
            eye,
            None,
            A,
            B,
            C,
            D,
            delta_bias,
            B_proj_bias,
            C_proj_bias,
            delta_softplus,
        )
        return rearrange(y, "b l d -> b d l")

    ms.mamba_inner_fn_no_out_proj = mamba_inner_fn_no_out_proj
    ms.mamba_inner_fn = ssi.mamba_inner_ref
    ms.bimamba_inner_fn = ssi.bimamba_inner_ref
    ms.selective_scan_fn = ssi.selective_scan_ref

    sys.path.insert(0, str(root / "videomamba/video_sm/models"))
    import videomamba

    assert videomamba.Mamba is ms.Mamba and videomamba.RMSNorm is not None
    return videomamba


def _quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):  # VisionMamba prints its checkpoint settings
        return fn(*args, **kwargs)


def write_keys(vm) -> None:
    models = {}
    for name, builder in BUILDERS.items():
        torch.manual_seed(0)
        model = _quiet(getattr(vm, builder), **BUILD_KWARGS)
        mixer = model.layers[0].mixer
        models[name] = {
            "builder": builder,
            "kwargs": dict(BUILD_KWARGS),
            "config": {
                "embed_dim": model.embed_dim,
                "depth": len(model.layers),
                "patch_size": list(model.patch_embed.patch_size),
                "kernel_size": model.patch_embed.tubelet_size,
                "d_inner": mixer.d_inner,
                "d_state": mixer.d_state,
                "d_conv": mixer.d_conv,
                "dt_rank": mixer.dt_rank,
                "norm_eps": model.norm_f.eps,
                "drop_path_rate": model.drop_path.drop_prob,
                "k400_f8x224_drop_path": K400_DROP_PATH[name],
            },
            "params": sum(p.numel() for p in model.parameters()),
            "keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        }
        print(f"{name}: {models[name]['params']} params, {len(models[name]['keys'])} keys")
        del model
    path = ASSETS / "videomamba_keys.json"
    path.write_text(json.dumps({"source": SOURCE, "models": models}) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def write_tiny(vm) -> None:
    torch.manual_seed(0)
    model = _quiet(vm.VisionMamba, **TINY_KWARGS, **TINY_EXTRA, num_classes=NUM_CLASSES)
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    model.eval()
    assert all(layer.mixer.use_fast_path and layer.mixer.bimamba for layer in model.layers)
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (INPUT_SHAPE[0], NUM_CLASSES) and torch.isfinite(logits).all()
    assert logits.abs().max() > 0.1, logits
    out = {
        "source": SOURCE + " (VisionMamba; CUDA/Triton kernels replaced by the repo's selective_scan_ref, "
        "mamba_inner_ref, rms_norm_ref; fused bimamba path)",
        "model": "videomamba_ti",
        "kwargs": dict(TINY_KWARGS),
        "num_classes": NUM_CLASSES,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        "logits": logits.tolist(),
    }
    path = ASSETS / "videomamba_tiny.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}: {len(sd)} keys, |logits|max {logits.abs().max():.3f}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} <VideoMamba checkout at {COMMIT[:8]}>")
    torch.set_num_threads(1)
    vm = load_official(Path(sys.argv[1]))
    write_tiny(vm)
    write_keys(vm)


if __name__ == "__main__":
    main()
