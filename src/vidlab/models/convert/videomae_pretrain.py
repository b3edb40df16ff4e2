"""VideoMAE pre-training checkpoints (encoder + decoder) in and out of vidlab's layout.

vidlab's :class:`~vidlab.models.videomae_pretrain.VideoMAEPretrain` keeps the original ``modeling_pretrain.py``
names (``encoder.*``, ``decoder.*``, ``encoder_to_decoder.weight``, ``mask_token``), so the original layout converts
by unwrapping alone (a leading ``module.``). HuggingFace's ``VideoMAEForPreTraining`` renames every block
(``videomae.encoder.layer.N.*`` / ``decoder.decoder_layers.N.*``: ``layernorm_before/after``, separate ``query`` /
``key`` / ``value`` projections with ``query.bias`` / ``value.bias`` and no key bias, ``attention.output.dense``,
``intermediate.dense``, ``output.dense``), the patch embedding (``videomae.embeddings.patch_embeddings.projection``)
and the encoder's norm (``videomae.layernorm``; HF writes it only with ``use_mean_pooling=False``, as its
pre-training checkpoints are configured). Neither layout stores the fixed position tables.
"""

from __future__ import annotations

import re

import torch

from vidlab.errors import InputError
from vidlab.models.convert._common import collect, stack_qkv

__all__ = ["from_hf", "from_original", "is_pretrain_model", "to_hf", "to_original", "HF_KWARGS"]

# HF's LayerNorm epsilons (1e-12 in the blocks and the encoder norm, PyTorch's default in the decoder's final norm)
HF_KWARGS = {"norm_eps": 1e-12, "decoder_norm_eps": 1e-5}

_BLOCK_PREFIXES = (("videomae.encoder.layer.", "encoder.blocks."), ("decoder.decoder_layers.", "decoder.blocks."))
_TOP = (
    ("videomae.embeddings.patch_embeddings.projection.", "encoder.patch_embed.proj."),
    ("videomae.layernorm.", "encoder.norm."),
    ("decoder.norm.", "decoder.norm."),
    ("decoder.head.", "decoder.head."),
    ("encoder_to_decoder.", "encoder_to_decoder."),
    ("mask_token", "mask_token"),
)
_INNER = (  # inside a block: HF name -> vidlab name
    ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("attention.output.dense.", "attn.proj."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
    ("attention.attention.query.bias", "attn.q_bias"),
    ("attention.attention.value.bias", "attn.v_bias"),
    ("attention.attention.q_bias", "attn.q_bias"),  # older HF checkpoints
    ("attention.attention.v_bias", "attn.v_bias"),
)
_QKV = ("query", "key", "value")
_HF_QKV = re.compile(r"^(.*\.\d+\.)attention\.attention\.(query|key|value)\.weight$")


def is_pretrain_model(model: str | None) -> bool:
    """Whether ``model`` names a VideoMAE pre-training network (``videomae_pretrain_vit_*``, or its class)."""
    return bool(model) and model.replace("_", "").startswith("videomaepretrain")  # registry or class name


def _swap(key: str, pairs, where: str) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old) :]
    raise InputError(f"no {where} mapping for key {key!r}")


def _hf_key(key: str) -> str:
    for hf_prefix, own_prefix in _BLOCK_PREFIXES:
        if key.startswith(hf_prefix):
            head, rest = key[len(hf_prefix) :].split(".", 1)
            for hf_inner, own_inner in _INNER:
                if rest.startswith(hf_inner):
                    return f"{own_prefix}{head}.{own_inner}{rest[len(hf_inner) :]}"
            raise InputError(f"no HuggingFace VideoMAE -> vidlab mapping for key {key!r}")
    return _swap(key, _TOP, "HuggingFace VideoMAE -> vidlab")


def from_hf(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``VideoMAEForPreTraining`` state dict in vidlab's (the original) layout.

    Raises:
        ValueError: for a key outside the layout, or a block missing one of its query / key / value weights.
    """
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    pairs = []
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        m = _HF_QKV.match(key)
        if m:
            qkv.setdefault(m.group(1), {})[m.group(2)] = value
        else:
            pairs.append((key, _hf_key(key), value))
    for block, parts in qkv.items():
        own = _hf_key(block + "layernorm_before.weight").removesuffix("norm1.weight")
        pairs.append((block + "qkv", own + "attn.qkv.weight", stack_qkv(parts, _QKV, f"HF VideoMAE {block}")))
    return collect(pairs, "HuggingFace VideoMAE")


def to_hf(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vidlab's layout -> ``VideoMAEForPreTraining``'s (``load_state_dict`` of that class accepts it)."""
    inverse_inner = [(own, hf) for hf, own in _INNER if "q_bias" not in hf and "v_bias" not in hf]
    out = {}
    for key, value in state_dict.items():
        for hf_prefix, own_prefix in _BLOCK_PREFIXES:
            if key.startswith(own_prefix):
                head, rest = key[len(own_prefix) :].split(".", 1)
                if rest == "attn.qkv.weight":
                    for name, part in zip(_QKV, value.chunk(3)):
                        out[f"{hf_prefix}{head}.attention.attention.{name}.weight"] = part
                else:
                    out[f"{hf_prefix}{head}.{_swap(rest, inverse_inner, 'vidlab -> HuggingFace VideoMAE')}"] = value
                break
        else:
            out[_swap(key, [(own, hf) for hf, own in _TOP], "vidlab -> HuggingFace VideoMAE")] = value
    return out


def from_original(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original (MCG-NJU) pre-training state dict: the same names, unwrapped from ``module.``."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def to_original(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vidlab's layout is the original one; the original scripts save it under ``{"model": ...}``."""
    return dict(state_dict)
