"""Write tests/assets/inflation_refs.json: what the reference *image checkpoint -> video model* routines load.

Source: https://github.com/OpenGVLab/VideoMamba at commit f3427e42cb8453a523aec3a6f86d57b5bc1de5c3 (2024-03-30):

* ``videomamba/video_sm/models/videomamba.py`` (git blob 2625505b): ``inflate_weight(weight_2d, time_dim,
  center=True)`` and ``load_state_dict(model, state_dict, center=True)``, which start the video VideoMamba from the
  image VideoMamba checkpoints (``videomamba_t16_in1k`` ...).
* ``videomamba/image_sm/models/videomamba.py`` (git blob d06dba22): the image VideoMamba; only read (optional
  ``--videomamba-image``) to check that its parameters are the video model's minus ``temporal_pos_embedding``, with
  a ``Conv2d`` patch embedding where the video model has a ``Conv3d``.
* ``videomamba/video_sm/models/deit.py`` (git blob 79a613e4): the same two functions for a ViT, started from the
  DeiT (timm ``VisionTransformer`` layout) image checkpoint ``deit_t16_in1k``, and the video ``VisionTransformer``
  they load into (``Conv3d`` tubelet patch embedding, CLS token, spatial ``pos_embed`` + ``temporal_pos_embedding``).
  This is the only 2D-ViT -> tubelet-ViT routine found among the candidates: MCG-NJU/VideoMAE (14ef8d85) and
  OpenGVLab/VideoMAEv2 (29eab1e8) have none (no "inflat" anywhere); OpenGVLab/unmasked_teacher (4fb4049f) has
  ``inflate_weight`` / ``load_state_dict`` only in ``single_modality/models/clip.py`` and
  ``multi_modality/models/backbones/vit/clip.py``, for its OpenAI-CLIP-layout teacher (``conv1``,
  ``positional_embedding``, ``transformer.resblocks``, loaded ``strict=True``), not for a VideoMAE-style ViT.

Nothing of VideoMamba is imported (its module needs mamba_ssm / timm / einops): the functions and, for the DeiT
stand-in, the classes ``Mlp``, ``Attention``, ``Block``, ``PatchEmbed``, ``VisionTransformer`` are cut out of the
given files with ``ast`` and executed in a namespace holding torch, ``nn``, ``functools.partial`` and small
equivalents of timm's ``to_2tuple`` / ``trunc_normal_`` (init only; every tensor is overwritten below). The
reference functions run unmodified; what they print is captured.

Cases (all tiny: embed_dim 32, depth 2, 32x32 px, 16x16 patches, 4 frames):

* ``videomamba_*``: target vidlab ``create_model("videomamba_ti", num_classes=5, ...)`` with tubelet 1 and 2. The
  reference ``model`` is a wrapper module sharing vidlab's tensors: reference key ``k`` is vidlab
  ``backbone.k``, reference ``head.weight`` / ``head.bias`` are vidlab ``head.fc.weight`` / ``head.fc.bias``.
  Image checkpoint: the image VideoMamba's keys at the same size (the backbone's keys minus
  ``temporal_pos_embedding``, ``patch_embed.proj.weight`` 4-d, ``head`` of 1000 classes, in the image model's
  state-dict order). ``videomamba_t1_img48_center``: the image checkpoint made for 48 px (``pos_embed`` of 9 + 1
  tokens) to show what the routine does with a position table of another size.
* ``deit_videomae_*``: the DeiT routine run on vidlab ``create_model("videomae_vit_s", num_classes=5, ...)``
  (tubelet 2) through the same kind of wrapper. Image checkpoint: DeiT / timm ViT keys (``cls_token``,
  ``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``,
  ``head``; ``attn.qkv.bias`` as ``deit_tiny_patch16_224`` has ``qkv_bias=True``).
* ``deit_standin_*``: the same routine on the reference's own video ``VisionTransformer`` (built from its source
  with ``deit_tiny_patch16_224``'s options, ``kernel_size=2`` and ``num_frames=2``, the number of tubelets, since its
  ``temporal_pos_embedding`` has ``num_frames`` rows and its forward adds it to the ``T / kernel_size`` tubelet
  rows); ``target_keys`` records its key names and shapes.

Each case runs with ``center=True`` (the references' default: the 2D kernel on the middle frame
``time_dim // 2``, zeros elsewhere) and ``center=False`` (repeated and divided by ``time_dim``). Before the call
every float tensor of the target is set to NaN; afterwards a key without NaN was ``loaded`` (recorded with shape,
``zlib.crc32`` of ``tensor.contiguous().numpy().tobytes()`` and float64 sum), one still NaN was ``left``. Image
values: :func:`fixture_fill.fill` of key and shape. ``printed``: the reference's stdout lines; ``error``: the type
and message lines of an exception raised by it (then ``loaded`` / ``left`` show the state it left the model in).

Usage (the vidlab venv: torch and vidlab; reference files from a scratch copy, outside the repo)::

    mkdir -p /tmp/vm_ref && for f in video_sm/models/videomamba.py image_sm/models/videomamba.py \\
        video_sm/models/deit.py; do git --git-dir=<VideoMamba.git> show \\
        f3427e42cb8453a523aec3a6f86d57b5bc1de5c3:videomamba/$f > /tmp/vm_ref/$(echo $f | tr / _); done
    OMP_NUM_THREADS=1 .venv/bin/python tests/assets/make_inflation_refs.py \\
        --videomamba /tmp/vm_ref/video_sm_models_videomamba.py \\
        --videomamba-image /tmp/vm_ref/image_sm_models_videomamba.py --deit /tmp/vm_ref/video_sm_models_deit.py
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import io
import json
import sys
import zlib
from functools import partial
from pathlib import Path

import torch
from torch import nn

ASSETS = Path(__file__).resolve().parent
sys.path.insert(0, str(ASSETS))
from fixture_fill import fill  # noqa: E402

REPO = "OpenGVLab/VideoMamba"
COMMIT = "f3427e42cb8453a523aec3a6f86d57b5bc1de5c3"
PATHS = {
    "videomamba": "videomamba/video_sm/models/videomamba.py",
    "videomamba_image": "videomamba/image_sm/models/videomamba.py",
    "deit": "videomamba/video_sm/models/deit.py",
}
BLOBS = {  # git blob ids at COMMIT (git ls-tree), to check the given files are that version
    "videomamba": "2625505bd72cb40842d1b25abd7f08bccc0a9bfe",
    "videomamba_image": "d06dba22ab094219b859eabfdcedb6cd1655022e",
    "deit": "79a613e4587008abc607771f39a28c2033dd291a",
}
TINY = dict(embed_dim=32, depth=2, img_size=32, num_frames=4)
IMAGE_CLASSES = 1000


def git_blob(text: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(text) + text).hexdigest()


def extract(path: Path, names: tuple[str, ...], namespace: dict) -> dict:
    """Execute the top-level functions / classes ``names`` of ``path`` in ``namespace``."""
    source = path.read_text()
    nodes = {n.name: n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for name in names:
        exec(compile(ast.get_source_segment(source, nodes[name]), str(path), "exec"), namespace)
    return namespace


def to_2tuple(x):  # timm.models.layers.to_2tuple
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):  # timm.models.layers.trunc_normal_ (init only)
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


class Wrapper(nn.Module):
    """The reference's view of a vidlab classifier: the backbone's children and own tensors at top level, the
    linear classifier as ``head``. Tensors are shared with the vidlab model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        bb = model.backbone
        for name, p in bb.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in bb.named_buffers(recurse=False):
            self.register_buffer(name, b, persistent=name not in bb._non_persistent_buffers_set)
        for name, child in bb.named_children():
            self.add_module(name, child)
        self.head = model.head.fc


def ref_to_vidlab(key: str) -> str:
    return "head.fc." + key[5:] if key.startswith("head.") else "backbone." + key


def nan_fill(model: nn.Module) -> None:
    with torch.no_grad():
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.fill_(float("nan"))


def image_checkpoint(keys: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    return {k: fill(k, s) for k, s in keys}


def run_case(fn, target: nn.Module, report_model: nn.Module, image_keys, center: bool) -> dict:
    nan_fill(report_model)
    sd = image_checkpoint(image_keys)
    out = io.StringIO()
    error = None
    with contextlib.redirect_stdout(out):
        try:
            fn(target, sd, center=center)
        except Exception as e:  # recorded: part of the reference's behaviour
            error = [type(e).__name__] + [line.strip() for line in str(e).strip().splitlines()]
    loaded, left = {}, []
    for k, v in report_model.state_dict().items():
        if not v.is_floating_point():
            continue
        nan = torch.isnan(v)
        if nan.all():
            left.append(k)
        elif not nan.any():
            t = v.detach().contiguous()
            loaded[k] = {
                "shape": list(t.shape),
                "crc32": zlib.crc32(t.numpy().tobytes()),
                "sum": float(t.double().sum()),
            }
        else:
            raise AssertionError(f"{k}: partly NaN after the reference routine")
    case = {
        "center": center,
        "image_keys": [[k, list(s)] for k, s in image_keys],
        "loaded": loaded,
        "left": left,
        "printed": out.getvalue().splitlines(),
    }
    if error:
        case["error"] = error
    return case


def check_image_videomamba(path: Path, video_path: Path) -> dict:
    """Parameters registered by ``VisionMamba.__init__`` (``self.x = nn.Parameter``) and the patch embedding's
    conv class, image vs video file, read statically."""

    def scan(p: Path) -> dict:
        tree = ast.parse(p.read_text())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        params, modules = [], []
        for node in ast.walk(classes["VisionMamba"]):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
                src = ast.unparse(node.value)
                if "nn.Parameter" in src:
                    params.append(node.targets[0].attr)
        for node in ast.walk(classes["PatchEmbed"]):
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "attr", None) == "proj":
                modules.append(ast.unparse(node.value.func))
        return {"parameters": params, "patch_embed.proj": modules}

    image, video = scan(path), scan(video_path)
    assert image["parameters"] == [p for p in video["parameters"] if p != "temporal_pos_embedding"], (image, video)
    return {"image": image, "video": video}


def videomamba_cases(args, out: dict) -> None:
    from vidlab.models import create_model

    ns = extract(args.videomamba, ("inflate_weight", "load_state_dict"), {"torch": torch})
    fn = ns["load_state_dict"]
    for tubelet in (1, 2):
        kwargs = dict(num_classes=5, **TINY, tubelet_size=tubelet)
        model = create_model("videomamba_ti", **kwargs)
        wrapper = Wrapper(model)
        own = {k: tuple(v.shape) for k, v in wrapper.state_dict().items()}
        for size in (32, 48) if tubelet == 1 else (32,):
            # image VisionMamba state-dict order: cls_token, pos_embed, patch_embed.proj, head, layers, norm_f
            image_keys = []
            for k, s in own.items():
                if k == "temporal_pos_embedding" or k.startswith("head."):
                    continue
                if k == "pos_embed":
                    s = (1, (size // 16) ** 2 + 1, s[2])
                if k == "patch_embed.proj.weight":
                    s = (s[0], s[1], s[3], s[4])
                image_keys.append((k, s))
                if k == "patch_embed.proj.bias":
                    image_keys += [("head.weight", (IMAGE_CLASSES, s[0])), ("head.bias", (IMAGE_CLASSES,))]
            for center in (True, False) if size == 32 else (True,):
                name = f"videomamba_t{tubelet}" + ("" if size == 32 else f"_img{size}")
                name += "_center" if center else "_average"
                case = run_case(fn, wrapper, model, image_keys, center)
                out[name] = {
                    "reference": f"{REPO} {PATHS['videomamba']}@{COMMIT}",
                    "function": "load_state_dict(model, state_dict, center=center) (calls inflate_weight)",
                    "target_model": {"name": "videomamba_ti", "kwargs": kwargs},
                    "key_map": "reference key k = vidlab 'backbone.' + k; reference head.weight/bias = vidlab "
                    "head.fc.weight/bias",
                    **case,
                }


def deit_cases(args, out: dict) -> None:
    from vidlab.models import create_model

    ns = extract(
        args.deit,
        ("Mlp", "Attention", "Block", "PatchEmbed", "VisionTransformer", "inflate_weight", "load_state_dict"),
        {"torch": torch, "nn": nn, "partial": partial, "to_2tuple": to_2tuple, "trunc_normal_": trunc_normal_},
    )
    fn = ns["load_state_dict"]
    # deit_tiny_patch16_224's options at the tiny size
    ref_kwargs = dict(
        img_size=32,
        patch_size=16,
        embed_dim=32,
        depth=2,
        num_heads=4,
        mlp_ratio=4,
        qkv_bias=True,
        num_classes=5,
        kernel_size=2,
        num_frames=2,
    )
    standin = ns["VisionTransformer"](norm_layer=partial(nn.LayerNorm, eps=1e-6), **ref_kwargs)
    target_keys = [(k, tuple(v.shape)) for k, v in standin.state_dict().items()]
    # the DeiT (timm ViT) image checkpoint: the video model's keys without temporal_pos_embedding, 2-D patch conv
    image_keys = []
    for k, s in target_keys:
        if k == "temporal_pos_embedding":
            continue
        if k == "patch_embed.proj.weight":
            s = (s[0], s[1], s[3], s[4])
        if k.startswith("head."):
            s = (IMAGE_CLASSES, *s[1:])
        image_keys.append((k, s))
    reference = f"{REPO} {PATHS['deit']}@{COMMIT}"
    function = "load_state_dict(model, state_dict, center=center) (calls inflate_weight)"

    kwargs = dict(num_classes=5, embed_dim=32, depth=2, num_heads=4, img_size=32, num_frames=4, tubelet_size=2)
    model = create_model("videomae_vit_s", **kwargs)
    wrapper = Wrapper(model)
    for center in (True, False):
        case = run_case(fn, wrapper, model, image_keys, center)
        out["deit_videomae_t2_" + ("center" if center else "average")] = {
            "reference": reference,
            "function": function,
            "target_model": {"name": "videomae_vit_s", "kwargs": kwargs},
            "key_map": "reference key k = vidlab 'backbone.' + k; reference head.weight/bias = vidlab "
            "head.fc.weight/bias (vidlab's pos_embed is a fixed non-persistent buffer: not in either state dict)",
            **case,
        }
    for center in (True, False):
        case = run_case(fn, standin, standin, image_keys, center)
        out["deit_standin_t2_" + ("center" if center else "average")] = {
            "reference": reference,
            "function": function,
            "target_model": {
                "name": f"reference VisionTransformer ({PATHS['deit']}), deit_tiny_patch16_224 options",
                "kwargs": {**ref_kwargs, "norm_layer": "partial(nn.LayerNorm, eps=1e-6)"},
            },
            "target_keys": [[k, list(s)] for k, s in target_keys],
            **case,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videomamba", type=Path, required=True, help=PATHS["videomamba"])
    ap.add_argument("--videomamba-image", type=Path, help=PATHS["videomamba_image"] + " (optional key check)")
    ap.add_argument("--deit", type=Path, required=True, help=PATHS["deit"])
    ap.add_argument("--out", type=Path, default=ASSETS / "inflation_refs.json")
    args = ap.parse_args()
    torch.manual_seed(0)

    files = {"videomamba": args.videomamba, "deit": args.deit}
    if args.videomamba_image:
        files["videomamba_image"] = args.videomamba_image
    sources = {}
    for tag, path in files.items():
        blob = git_blob(path.read_bytes())
        if blob != BLOBS[tag]:
            print(f"warning: {path} is git blob {blob}, not {BLOBS[tag]} ({PATHS[tag]}@{COMMIT})", file=sys.stderr)
        sources[tag] = {"repo": REPO, "path": PATHS[tag], "commit": COMMIT, "git_blob": blob}

    result = {
        "doc": "Reference image-checkpoint -> video-model loading routines run at a tiny size; written by "
        "tests/assets/make_inflation_refs.py (see its docstring). Image values are fixture_fill.fill(key, shape).",
        "sources": sources,
        "cases": {},
    }
    if args.videomamba_image:
        result["videomamba_image_check"] = check_image_videomamba(args.videomamba_image, args.videomamba)
    videomamba_cases(args, result["cases"])
    deit_cases(args, result["cases"])
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, case in result["cases"].items():
        print(f"{name}: loaded {len(case['loaded'])}, left {len(case['left'])}" + (" ERROR" if "error" in case else ""))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
