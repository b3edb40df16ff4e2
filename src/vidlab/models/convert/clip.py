"""CLIP image towers -> :class:`~vidlab.models.clip.CLIPViT` names.

- OpenAI (``source="openai_clip"``): the ``visual.*`` keys of the ``clip`` package's checkpoints (the released
  ``ViT-B-16.pt`` / ``ViT-L-14.pt`` are TorchScript archives: :func:`read_torchscript` takes their state dict), or
  the same keys without ``visual.`` (a tower saved on its own, such as Unmasked Teacher's extracted
  ``vit_b16.pth``). ``conv1`` -> ``patch_embed.proj``, ``class_embedding`` (``(C,)``) -> ``cls_token`` (``(1, 1,
  C)``), ``positional_embedding`` (``(N, C)``) -> ``pos_embed`` (``(1, N, C)``), ``ln_pre``, ``ln_post`` and ``proj``
  keep their names; in ``transformer.resblocks.N``: ``ln_1`` / ``ln_2`` -> ``norm1`` / ``norm2``,
  ``attn.in_proj_weight`` / ``in_proj_bias`` -> ``attn.qkv.weight`` / ``bias``, ``attn.out_proj`` -> ``attn.proj``,
  ``mlp.c_fc`` / ``mlp.c_proj`` -> ``mlp.fc1`` / ``mlp.fc2``. Everything under ``backbone.``, the text tower is left
  out. CLIP's ResNet towers (RN50 ...) have no vidlab counterpart.
- HuggingFace (``source="hf_clip"``): ``CLIPVisionModel`` (its keys bare, or under ``vision_model.``),
  ``CLIPVisionModelWithProjection`` and ``CLIPModel`` (its ``text_model.*``, ``text_projection`` and ``logit_scale``
  left out). ``embeddings.{class_embedding, patch_embedding, position_embedding}`` -> ``cls_token``,
  ``patch_embed.proj``, ``pos_embed``; ``pre_layrnorm`` / ``post_layernorm`` -> ``ln_pre`` / ``ln_post``; in
  ``encoder.layers.N``: ``self_attn.{q,k,v}_proj`` stacked into ``attn.qkv``, ``self_attn.out_proj`` -> ``attn.proj``,
  ``layer_norm1/2`` -> ``norm1/2``, ``mlp.fc1/fc2`` as they are; ``visual_projection.weight`` (``(D, C)``, a
  bias-free Linear) -> ``proj`` transposed (``(C, D)``, applied as ``x @ proj``). Without it the tower has no
  projection: :func:`builder_kwargs` gives ``output_dim=0``.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import torch

from vidlab.errors import InputError
from vidlab.models.convert._common import collect, stack_qkv

__all__ = [
    "HF_SIGNATURE",
    "OPENAI_SIGNATURE",
    "builder_kwargs",
    "convert_hf",
    "convert_openai",
    "is_torchscript",
    "looks_like_hf_clip",
    "looks_like_openai_clip",
    "read_torchscript",
]

#: key patterns that identify the two layouts (:func:`vidlab.models.convert.detect_source`)
OPENAI_SIGNATURE = re.compile(r"^(module\.)?(visual\.)?(class_embedding$|transformer\.resblocks\.\d+\.attn\.in_proj_)")
HF_SIGNATURE = re.compile(r"(^|\.)pre_layrnorm\.")  # HF's spelling, only CLIP's vision tower has it

_OPENAI_BLOCK = r"^transformer\.resblocks\.(\d+)\."
_OPENAI_RULES = [
    (re.compile(r"^conv1\.weight$"), "backbone.patch_embed.proj.weight"),
    (re.compile(r"^class_embedding$"), "backbone.cls_token"),
    (re.compile(r"^positional_embedding$"), "backbone.pos_embed"),
    (re.compile(r"^(ln_pre|ln_post)\.(weight|bias)$"), r"backbone.\1.\2"),
    (re.compile(r"^proj$"), "backbone.proj"),
    (re.compile(_OPENAI_BLOCK + r"ln_1\."), r"backbone.blocks.\1.norm1."),
    (re.compile(_OPENAI_BLOCK + r"ln_2\."), r"backbone.blocks.\1.norm2."),
    (re.compile(_OPENAI_BLOCK + r"attn\.in_proj_(weight|bias)$"), r"backbone.blocks.\1.attn.qkv.\2"),
    (re.compile(_OPENAI_BLOCK + r"attn\.out_proj\."), r"backbone.blocks.\1.attn.proj."),
    (re.compile(_OPENAI_BLOCK + r"mlp\.c_fc\."), r"backbone.blocks.\1.mlp.fc1."),
    (re.compile(_OPENAI_BLOCK + r"mlp\.c_proj\."), r"backbone.blocks.\1.mlp.fc2."),
]
# scalars the TorchScript model keeps next to its weights
_OPENAI_META = ("input_resolution", "context_length", "vocab_size")

_HF_LAYER = r"^encoder\.layers\.(\d+)\."
_HF_RULES = [
    (re.compile(r"^embeddings\.class_embedding$"), "backbone.cls_token"),
    (re.compile(r"^embeddings\.patch_embedding\.weight$"), "backbone.patch_embed.proj.weight"),
    (re.compile(r"^embeddings\.position_embedding\.weight$"), "backbone.pos_embed"),
    (re.compile(r"^pre_layrnorm\."), "backbone.ln_pre."),
    (re.compile(r"^post_layernorm\."), "backbone.ln_post."),
    (re.compile(_HF_LAYER + r"self_attn\.out_proj\."), r"backbone.blocks.\1.attn.proj."),
    (re.compile(_HF_LAYER + r"layer_norm1\."), r"backbone.blocks.\1.norm1."),
    (re.compile(_HF_LAYER + r"layer_norm2\."), r"backbone.blocks.\1.norm2."),
    (re.compile(_HF_LAYER + r"mlp\.(fc1|fc2)\."), r"backbone.blocks.\1.mlp.\2."),
    (re.compile(r"^visual_projection\.weight$"), "backbone.proj"),
]
_HF_QKV = re.compile(_HF_LAYER + r"self_attn\.(q|k|v)_proj\.(weight|bias)$")
_HF_SKIP = re.compile(r"^(text_model\.|text_projection\.|logit_scale$|embeddings\.position_ids$)")


def looks_like_openai_clip(keys) -> bool:
    """Whether ``keys`` are an OpenAI CLIP model's (``visual.*`` or a bare tower's ``class_embedding`` ...)."""
    return any(OPENAI_SIGNATURE.search(k) for k in keys)


def looks_like_hf_clip(keys) -> bool:
    """Whether ``keys`` are a HuggingFace CLIP vision tower's (``pre_layrnorm``)."""
    return any(HF_SIGNATURE.search(k) for k in keys)


def is_torchscript(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with a ``code/`` folder and ``constants.pkl``), as OpenAI's
    released CLIP checkpoints are."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names)


def read_torchscript(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a TorchScript archive, on CPU. ``torch.jit.load`` rebuilds the archive's tensors and
    TorchScript code without unpickling Python objects; nothing of the module is run, only its tensors are kept."""
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated; it is the only reader of these archives
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # a corrupt or truncated archive
        raise InputError(f"cannot read TorchScript archive {path}: {e}") from e
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _rename(key: str, rules, toolbox: str) -> str:
    for pattern, repl in rules:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    raise InputError(f"no {toolbox} -> vidlab mapping for key {key!r}")


def _reshape(new: str, value: torch.Tensor) -> torch.Tensor:
    if new == "backbone.cls_token":
        return value.reshape(1, 1, -1)
    if new == "backbone.pos_embed":
        return value.unsqueeze(0) if value.dim() == 2 else value
    return value


def convert_openai(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename an OpenAI CLIP state dict's image tower (``model`` is accepted for the common signature).

    Raises:
        NotImplementedError: for a ResNet tower (``visual.attnpool`` ...).
        ValueError: for a key of no known layout, naming it.
    """
    del model
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if any(k.startswith("visual.") for k in sd):
        sd = {k.removeprefix("visual."): v for k, v in sd.items() if k.startswith("visual.")}
    else:
        sd = {k: v for k, v in sd.items() if k not in _OPENAI_META}
    if any(k.startswith(("attnpool.", "layer1.")) for k in sd):
        raise NotImplementedError(
            "this OpenAI CLIP checkpoint has a ResNet image tower (visual.attnpool, visual.layer1 ...); vidlab "
            "converts the ViT towers (clip_vit_b16, clip_vit_l14)"
        )
    pairs = []
    for key, value in sd.items():
        new = _rename(key, _OPENAI_RULES, "OpenAI CLIP")
        pairs.append((key, new, _reshape(new, value)))
    return collect(pairs, "OpenAI CLIP")


def convert_hf(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a HuggingFace CLIP vision state dict (``model`` is accepted for the common signature).

    Raises:
        ValueError: for a key of no known layout (naming it), or a layer missing one of its q/k/v projections.
    """
    del model
    sd = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.").removeprefix("vision_model.")
        if not _HF_SKIP.match(key):
            sd[key] = value
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    pairs = []
    for key, value in sd.items():
        m = _HF_QKV.match(key)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
            continue
        new = _rename(key, _HF_RULES, "HuggingFace CLIP")
        value = value.t().contiguous() if new == "backbone.proj" else _reshape(new, value)
        pairs.append((key, new, value))
    for (layer, kind), parts in sorted(qkv.items(), key=lambda item: (int(item[0][0]), item[0][1])):
        fused = stack_qkv(parts, ("q", "k", "v"), f"HF CLIP layer {layer} {kind}")
        pairs.append((f"layer {layer} q/k/v {kind}", f"backbone.blocks.{layer}.attn.qkv.{kind}", fused))
    return collect(pairs, "HuggingFace CLIP")


def builder_kwargs(model: str, converted: dict[str, torch.Tensor]) -> dict:
    """The CLIP tower's ``output_dim`` read off the weights: ``proj``'s columns, or 0 (no projection) without one
    (HF's ``CLIPVisionModel``); ``{}`` for other models."""
    if not model.startswith("clip_"):
        return {}
    proj = converted.get("backbone.proj")
    return {"output_dim": int(proj.shape[1]) if proj is not None else 0}
