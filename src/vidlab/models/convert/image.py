"""Image checkpoints in the layouts users bring, normalised to three canonical layouts for inflation.

- ``resnet``: torchvision's image ResNet names (``conv1``, ``bn1``, ``layerK.J.convN`` / ``bnN``,
  ``layerK.J.downsample.0`` / ``.1``). torchvision and timm ResNets have them as they are; MMAction2 / mmcls /
  mmpretrain image ResNets and vidlab's own 2D recognizers (TSN, TSM ...) keep them under ``backbone.``, and
  MMAction2's ``ConvModule`` layout (``conv1.conv`` / ``conv1.bn``, ``downsample.conv`` / ``.bn``) is renamed.
- ``vit``: timm's ViT names (``cls_token``, ``pos_embed`` ``(1, 1 + N, C)``, ``patch_embed.proj``,
  ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``). timm and DeiT checkpoints have
  them (DeiT's distillation token and its position are dropped); the original ViT release (Google's ``.npz``, JAX
  kernels) is transposed into them; CLIP image towers (OpenAI's or HuggingFace's) go through
  :mod:`~vidlab.models.convert.clip` and their ``ln_post`` becomes ``norm`` (it normalises the CLS token the
  video models read), while ``ln_pre`` and ``proj`` have no counterpart; vidlab's own frame-level ViTs (a
  ``timesformer_spaceonly``) keep them under ``backbone.``.
- ``videomamba``: the image VideoMamba's names, which the video model shares.

Classifiers (``fc``, ``head``, ``head_dist``, ``pre_logits``, ``cls_head``) are reported as unused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from vidlab.errors import InputError, MissingFileError
from vidlab.models.convert import clip

__all__ = ["LAYOUTS", "canonical_image_state_dict", "read_image_checkpoint"]

LAYOUTS = ("resnet", "vit", "videomamba")

_CLASSIFIER = re.compile(r"^(fc|head|head_dist|pre_logits|cls_head|neck|data_preprocessor)(\.|$)")
# MMAction2's ConvModule names (a ``ConvModule`` wraps conv + bn) -> torchvision's
_MMACTION2_RULES = [
    (re.compile(r"downsample\.conv\."), "downsample.0."),
    (re.compile(r"downsample\.bn\."), "downsample.1."),
    (re.compile(r"(^|\.)conv(\d)\.conv\."), r"\1conv\2."),
    (re.compile(r"(^|\.)conv(\d)\.bn\."), r"\1bn\2."),
]
# Google's ViT release (``ViT-B_16.npz``), per encoder block
_NPZ_BLOCK = re.compile(r"^Transformer/encoderblock_(\d+)/(.+)$")


def read_image_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an image checkpoint: a torch file (read as :func:`vidlab.models.convert.read_state_dict`
    does, ``weights_only=True``) or the original ViT release's ``.npz`` (read with ``allow_pickle=False``)."""
    from vidlab.models.convert import read_state_dict

    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise MissingFileError(f"checkpoint not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: torch.from_numpy(np.array(z[k], dtype=np.float32)) for k in z.files}
        except (ValueError, OSError) as e:
            raise InputError(f"cannot read {path} as a NumPy .npz archive: {e}") from e
    return read_state_dict(path)


def canonical_image_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> tuple[str, str, dict[str, torch.Tensor], dict[str, str]]:
    """``(layout, source, tensors, unused)``: the image checkpoint in its canonical layout (one of
    :data:`LAYOUTS`), the layout it was written in (``torchvision``, ``mmaction2``, ``timm``, ``vit_npz``,
    ``openai_clip`` ...), and ``{key: why}`` for its tensors that no video model takes (classifiers, CLIP's
    ``ln_pre`` / ``proj``, DeiT's distillation token).

    Raises:
        ValueError: for a checkpoint that is none of the supported image layouts, naming some of its keys.
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    unused: dict[str, str] = {}
    if any("/" in k for k in sd):
        return "vit", "vit_npz", _from_npz(sd, unused), unused
    if clip.looks_like_openai_clip(sd) or clip.looks_like_hf_clip(sd):
        source, tensors = _from_clip(sd, unused)
        return "vit", source, tensors, unused
    source = "torchvision"
    if any(k.startswith("backbone.") for k in sd):  # MMAction2 / mmcls / mmpretrain / vidlab: the network's backbone
        source = "backbone.*"
        for key in [k for k in sd if not k.startswith("backbone.")]:
            unused[key] = "not part of the image backbone (classifier or neck)"
            del sd[key]
        sd = {k.removeprefix("backbone."): v for k, v in sd.items()}
    if any(".conv.weight" in k for k in sd) and "conv1.conv.weight" in sd:
        source = "mmaction2"
        sd = {_rename(k, _MMACTION2_RULES): v for k, v in sd.items()}
    for key in [k for k in sd if _CLASSIFIER.search(k)]:
        unused[key] = "image classifier"
        del sd[key]
    if any(re.match(r"layers\.\d+\.mixer\.", k) for k in sd):
        return "videomamba", "videomamba" if source == "torchvision" else source, sd, unused
    if "patch_embed.proj.weight" in sd and any(re.match(r"blocks\.\d+\.attn\.qkv\.weight$", k) for k in sd):
        if "dist_token" in sd:  # DeiT distilled: its second token and that token's position
            unused["dist_token"] = "DeiT's distillation token (no counterpart in video models)"
            del sd["dist_token"]
            pos = sd["pos_embed"]
            sd["pos_embed"] = torch.cat((pos[:, :1], pos[:, 2:]), dim=1)
        for key in [k for k in sd if k.startswith(("time_embed", "temporal_pos"))]:
            unused[key] = "temporal table of a frame-level video model (re-initialised)"
            del sd[key]
        return "vit", "timm" if source == "torchvision" else source, sd, unused
    if "conv1.weight" in sd and any(k.startswith("layer1.0.") for k in sd):
        return "resnet", source, sd, unused
    sample = ", ".join(list(state_dict)[:5])
    raise InputError(
        "not an image checkpoint vidlab can inflate: expected a 2D ResNet (torchvision / timm / MMAction2 / mmcls "
        "names), a ViT (timm / DeiT / original .npz / CLIP) or an image VideoMamba; keys start " + sample
    )


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        key = pattern.sub(repl, key)
    return key


def _from_clip(sd: dict[str, torch.Tensor], unused: dict[str, str]) -> tuple[str, dict[str, torch.Tensor]]:
    source = "openai_clip" if clip.looks_like_openai_clip(sd) else "hf_clip"
    converted = (clip.convert_openai if source == "openai_clip" else clip.convert_hf)(sd)
    out = {}
    for key, value in converted.items():
        key = key.removeprefix("backbone.")
        if key.startswith("ln_post."):
            key = "norm." + key.removeprefix("ln_post.")
        elif key.startswith(("ln_pre.", "proj")):
            unused[key] = "CLIP's pre-norm / output projection (no counterpart in video ViTs)"
            continue
        out[key] = value
    if "patch_embed.proj.bias" not in out:  # CLIP's patch embedding has no bias: zero is the same function
        weight = out["patch_embed.proj.weight"]
        out["patch_embed.proj.bias"] = torch.zeros(weight.shape[0], dtype=weight.dtype)
    return source, out


def _from_npz(sd: dict[str, torch.Tensor], unused: dict[str, str]) -> dict[str, torch.Tensor]:
    """Google's ViT ``.npz`` -> timm names: JAX kernels ``(in, out)`` transposed, the per-head query / key / value
    kernels ``(C, heads, head_dim)`` flattened and stacked into ``qkv``."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key == "embedding/kernel":
            out["patch_embed.proj.weight"] = value.permute(3, 2, 0, 1).contiguous()
        elif key == "embedding/bias":
            out["patch_embed.proj.bias"] = value
        elif key == "cls":
            out["cls_token"] = value.reshape(1, 1, -1)
        elif key == "Transformer/posembed_input/pos_embedding":
            out["pos_embed"] = value.reshape(1, -1, value.shape[-1])
        elif key.startswith("Transformer/encoder_norm/"):
            out["norm." + _npz_param(key)] = value
        elif m := _NPZ_BLOCK.match(key):
            i, rest = m.groups()
            block = f"blocks.{i}."
            part, _, param = rest.rpartition("/")
            if part in ("LayerNorm_0", "LayerNorm_2"):
                out[block + ("norm1." if part == "LayerNorm_0" else "norm2.") + _npz_param(key)] = value
            elif part.startswith("MultiHeadDotProductAttention_1/"):
                which = part.rsplit("/", 1)[1]
                if which == "out":
                    name = block + "attn.proj."
                    out[name + param.replace("kernel", "weight")] = (
                        value.reshape(-1, value.shape[-1]).t().contiguous() if param == "kernel" else value
                    )
                else:  # query / key / value: (C, heads, head_dim) kernels, (heads, head_dim) biases
                    flat = value.reshape(value.shape[0], -1).t() if param == "kernel" else value.reshape(-1)
                    qkv.setdefault((block, param), {})[which] = flat
            elif part.startswith("MlpBlock_3/Dense_"):
                fc = "fc1" if part.endswith("_0") else "fc2"
                out[f"{block}mlp.{fc}.{param.replace('kernel', 'weight')}"] = (
                    value.t().contiguous() if param == "kernel" else value
                )
            else:
                unused[key] = "no counterpart in the ViT layout"
        else:
            unused[key] = "image classifier" if key.startswith(("head/", "pre_logits/")) else "unknown .npz entry"
    for (block, param), parts in qkv.items():
        name = block + "attn.qkv." + ("weight" if param == "kernel" else "bias")
        out[name] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0).contiguous()
    return out


def _npz_param(key: str) -> str:
    return {"scale": "weight", "bias": "bias"}[key.rsplit("/", 1)[1]]
