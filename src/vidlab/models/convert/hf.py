"""HuggingFace transformers video classifiers -> vidlab names.

- ``VideoMAEForVideoClassification`` (``videomae.*``) -> :class:`~vidlab.models.videomae.VideoMAE`: the separate
  ``query`` / ``key`` / ``value`` projections are stacked into ``qkv`` (HF has no key bias; the query and value
  biases, ``query.bias`` / ``value.bias`` or older checkpoints' ``q_bias`` / ``v_bias``, become ``q_bias`` /
  ``v_bias``), ``layernorm_before/after`` -> ``norm1/2``, ``intermediate.dense`` / ``output.dense`` ->
  ``mlp.fc1/fc2``, ``fc_norm`` or the final ``videomae.layernorm`` -> ``backbone.fc_norm`` / ``backbone.norm``.
  HF configs use LayerNorm eps 1e-12 in the blocks and 1e-5 in ``fc_norm``: build with ``norm_eps=1e-12,
  fc_norm_eps=1e-5`` for exact outputs (:func:`builder_kwargs` says so for ``vidlab convert``).
- ``TimesformerForVideoClassification`` (``timesformer.*``) -> :class:`~vidlab.models.timesformer.TimeSformer`:
  ``temporal_layernorm`` / ``temporal_attention`` / ``temporal_dense`` -> ``temporal_norm1`` / ``temporal_attn`` /
  ``temporal_fc``; embeddings -> ``cls_token``, ``pos_embed``, ``time_embed``, ``patch_embed.proj``. HF's space-only
  model classifies every frame; averaging its frame logits is vidlab's ``space_only_pooling="after_norm"``.
- ``classifier`` -> ``head.fc``.
"""

from __future__ import annotations

import re

import torch

from vidlab.errors import InputError
from vidlab.models.convert._common import collect, stack_qkv

__all__ = ["builder_kwargs", "convert", "looks_like_hf"]

_LAYER = r"^(?:videomae|timesformer)\.encoder\.layer\.(\d+)\."
_RULES = [
    (re.compile(r"^(videomae|timesformer)\.embeddings\.patch_embeddings\.projection\."), "backbone.patch_embed.proj."),
    (re.compile(r"^timesformer\.embeddings\.cls_token$"), "backbone.cls_token"),
    (re.compile(r"^timesformer\.embeddings\.position_embeddings$"), "backbone.pos_embed"),
    (re.compile(r"^timesformer\.embeddings\.time_embeddings$"), "backbone.time_embed"),
    (re.compile(_LAYER + r"attention\.attention\.(q|v)_bias$"), r"backbone.blocks.\1.attn.\2_bias"),
    (re.compile(_LAYER + r"attention\.attention\.query\.bias$"), r"backbone.blocks.\1.attn.q_bias"),
    (re.compile(_LAYER + r"attention\.attention\.value\.bias$"), r"backbone.blocks.\1.attn.v_bias"),
    (re.compile(_LAYER + r"attention\.attention\.qkv\."), r"backbone.blocks.\1.attn.qkv."),
    (re.compile(_LAYER + r"attention\.output\.dense\."), r"backbone.blocks.\1.attn.proj."),
    (re.compile(_LAYER + r"temporal_attention\.attention\.qkv\."), r"backbone.blocks.\1.temporal_attn.qkv."),
    (re.compile(_LAYER + r"temporal_attention\.output\.dense\."), r"backbone.blocks.\1.temporal_attn.proj."),
    (re.compile(_LAYER + r"temporal_layernorm\."), r"backbone.blocks.\1.temporal_norm1."),
    (re.compile(_LAYER + r"temporal_dense\."), r"backbone.blocks.\1.temporal_fc."),
    (re.compile(_LAYER + r"layernorm_before\."), r"backbone.blocks.\1.norm1."),
    (re.compile(_LAYER + r"layernorm_after\."), r"backbone.blocks.\1.norm2."),
    (re.compile(_LAYER + r"intermediate\.dense\."), r"backbone.blocks.\1.mlp.fc1."),
    (re.compile(_LAYER + r"output\.dense\."), r"backbone.blocks.\1.mlp.fc2."),
    (re.compile(r"^videomae\.layernorm\."), "backbone.norm."),
    (re.compile(r"^timesformer\.layernorm\."), "backbone.norm."),
    (re.compile(r"^fc_norm\."), "backbone.fc_norm."),
    (re.compile(r"^classifier\."), "head.fc."),
]
_QKV = re.compile(_LAYER + r"attention\.attention\.(query|key|value)\.weight$")


def looks_like_hf(keys) -> bool:
    """Whether ``keys`` are a HuggingFace VideoMAE / TimeSformer classifier's."""
    return any(re.match(r"^(videomae|timesformer)\.(embeddings|encoder)\.", k) for k in keys)


def _rename(key: str) -> str:
    for pattern, repl in _RULES:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    raise InputError(f"no HuggingFace -> vidlab mapping for key {key!r}")


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a HF VideoMAE / TimeSformer classifier's state dict (``model`` is accepted for the common signature).

    Raises:
        ValueError: for a key outside the two layouts (e.g. another HF model), or a layer missing one of its
            ``query`` / ``key`` / ``value`` weights.
    """
    del model
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    pairs = []
    for key, value in sd.items():
        m = _QKV.match(key)
        if m:
            qkv.setdefault(m.group(1), {})[m.group(2)] = value
        else:
            pairs.append((key, _rename(key), value))
    for layer, parts in qkv.items():
        qkv_weight = stack_qkv(parts, ("query", "key", "value"), f"HF VideoMAE layer {layer}")
        pairs.append((f"layer {layer} q/k/v", f"backbone.blocks.{layer}.attn.qkv.weight", qkv_weight))
    return collect(pairs, "HuggingFace")


def builder_kwargs(model: str, converted: dict[str, torch.Tensor]) -> dict:
    """HF's settings that differ from vidlab's defaults: VideoMAE's LayerNorm epsilons, space-only TimeSformer's
    per-frame classification."""
    del converted
    if model.startswith("videomae"):
        return {"norm_eps": 1e-12, "fc_norm_eps": 1e-5}
    if model == "timesformer_spaceonly":
        return {"space_only_pooling": "after_norm"}
    return {}
