"""MMAction2 (1.x, and 0.x for these families) recognizer state dicts -> vidlab names.

MMAction2 wraps each conv + norm pair in a ``ConvModule`` (``convK.conv`` / ``convK.bn``); vidlab names the
two layers ``convK`` and ``bnK`` as torchvision does. The rules, applied in order to every key:

- a leading ``module.`` (DistributedDataParallel) is removed
- ``.block.`` is dropped (the wrappers of TANet's blocks and of TSM-NL's blocks with a non-local block)
- ``non_local_block`` -> ``non_local``; inside it ``g``/``theta``/``phi`` (``.0`` when sub-sampled) and
  ``conv_out.conv`` lose their ``ConvModule`` level and ``conv_out.bn`` -> ``bn`` (TSM-NL)
- ``conv1.conv.net1`` -> ``interlace``, ``conv1.conv.net2`` -> ``conv1`` (TIN's interlace + conv pair)
- ``conv.K.net`` -> ``conv.K`` (TSM-MobileNetV2 wraps a block's expansion conv in its temporal shift)
- ``backbone.conv1.conv`` / ``backbone.conv1.bn`` -> ``backbone.conv1`` / ``backbone.bn1`` (stems of the 2D
  ResNet and MobileNetV2)
- ``convK.conv.net`` -> ``convK`` (TSM wraps the first conv of each block in its temporal shift)
- ``slow_path.conv1_lateral.conv`` / ``slow_path.layerK_lateral.conv`` -> ``laterals.0`` / ``laterals.K`` (SlowFast)
- CSN's middle conv ``conv2.0`` / ``conv2.1``: ``conv2.0`` is the depthwise conv (-> ``conv2``) in ``ir`` blocks
  and the pointwise conv (-> ``conv2p``, ``bn2p``) in ``ip`` blocks, whose depthwise conv is ``conv2.1``
- ``convK.conv`` / ``convK.bn`` -> ``convK`` / ``bnK`` (all; X3D's ``conv5`` and C3D's ``conv1a`` .. ``conv5b``
  too); in a factorised (2+1)D conv ``bn_s`` -> ``bn_mid`` (R(2+1)D)
- ``conv1_s.conv`` / ``conv1_t.conv`` / ``conv1_t.bn`` -> ``conv1_s`` / ``conv1_t`` / ``bn1`` (X3D stem)
- ``se_module`` -> ``se`` (X3D)
- ResNetAudio's factorised convs (``ConvAudio``, after the ``convK.conv`` rule has removed the outer
  ``ConvModule``): ``conv_1.conv`` / ``conv_1.bn`` (the ``(k, 1)`` kernel over time) -> ``conv_t`` / ``bn_t``,
  ``conv_2.conv`` / ``conv_2.bn`` (``(1, k)`` over frequency) -> ``conv_f`` / ``bn_f`` (audio recognizers)
- ``downsample.conv`` / ``downsample.bn`` -> ``downsample.0`` / ``downsample.1`` (all)
- ``cls_head.fc_cls`` -> ``head.fc`` (TSN, TSM, TIN, TANet, TRN; TRN's ``consensus`` keeps its names)
- ``cls_head.fc1`` / ``cls_head.fc2`` -> ``head.fc1`` / ``head.fc2`` (X3D)
- transformers (TimeSformer's mmcv layers, VideoMAE's ``VisionTransformer``), first: ``patch_embed.projection`` ->
  ``patch_embed.proj``; ``transformer_layers.layers.N`` -> ``blocks.N``; ``MultiheadAttention``'s
  ``in_proj_weight/bias`` / ``out_proj`` -> ``qkv`` / ``proj``; FFN ``layers.0.0`` / ``layers.1`` -> ``mlp.fc1`` /
  ``mlp.fc2``, its ``norm`` -> ``norm2``; ``norms.0/1`` -> ``norm1/2`` (joint space-time); in divided space-time
  layers ``attentions.0`` (temporal: ``norm``, ``attn``, ``temporal_fc``) -> ``temporal_norm1``, ``temporal_attn``,
  ``temporal_fc`` and ``attentions.1`` (spatial) -> ``norm1``, ``attn``. VideoMAE's fixed ``pos_embed`` buffer is
  kept; the model recomputes it (:meth:`~vidlab.models._vit.TokenClassifier.adapt_state_dict`). MViTv2's blocks
  have vidlab's names already; its last-stage ``normK`` -> ``norm``.

AVA action detectors (mmdet's ``FastRCNN``: ``backbone.*`` + ``roi_head.*``): the backbone keys follow the rules
above; ``BBoxHeadAVA``'s classifier ``roi_head.bbox_head.fc_cls`` -> ``head.fc`` with its first row (class 0, the
background MMAction2's AVA configs reserve: ``num_classes=81`` for 80 actions) removed, unless
``background_class=False``. MMAction2's ``SingleRoIExtractor3D`` concatenates the pooled slow and fast maps in that
order, as vidlab's detector does, so the columns stay. :func:`vidlab.models.convert.convert_state_dict` then moves
the result under the detector's ``backbone.`` (:func:`~vidlab.models.convert._common.as_detector`).

Values are passed through unchanged (same tensors, no copies; the background row is dropped by a slice). Keys no
rule matches are kept as they are, so loading reports them instead of hiding them (other ``roi_head.*`` keys, e.g.
of ``mlp_head=True`` or ACRN / LFB heads, which vidlab's detector does not have).
"""

from __future__ import annotations

import re

import torch

from vidlab.models.convert._common import collect

__all__ = ["FAMILIES", "convert", "looks_like_detector", "looks_like_mmaction2"]

# vidlab families whose MMAction2 counterparts these rules cover.
FAMILIES = (
    "tsn",
    "tsm",
    "tin",
    "tanet",
    "trn",
    "x3d",
    "c2d",
    "c3d",
    "i3d",
    "r2plus1d",
    "ircsn",
    "ipcsn",
    "slowonly",
    "slowfast",
    "tpn",
    "timesformer",
    "videomae",
    "mvit",
    "audioonly",
)

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^module\."), ""),  # DistributedDataParallel wrapper
    (re.compile(r"\.block\."), "."),  # TANet / TSM-NL block wrappers
    (re.compile(r"\.non_local_block\."), ".non_local."),
    (re.compile(r"\.non_local\.(g|phi)\.0\.conv\."), r".non_local.\1."),  # sub-sampled: (ConvModule, pool)
    (re.compile(r"\.non_local\.(g|theta|phi|conv_out)\.conv\."), r".non_local.\1."),
    (re.compile(r"\.non_local\.conv_out\.bn\."), ".non_local.bn."),
    (re.compile(r"\.conv1\.conv\.net1\."), ".interlace."),  # TIN: CombineNet(interlace, conv)
    (re.compile(r"\.conv1\.conv\.net2\."), ".conv1.conv."),
    (re.compile(r"(\.conv\.\d+)\.net\."), r"\1."),  # TSM-MobileNetV2: shift wraps the expansion conv
    (re.compile(r"\.conv\.net\."), ".conv."),  # TSM: temporal shift wraps the block's first conv
    (re.compile(r"^backbone\.conv1\.conv\."), "backbone.conv1."),
    (re.compile(r"^backbone\.conv1\.bn\."), "backbone.bn1."),
    (re.compile(r"\.conv1_([st])\.conv\."), r".conv1_\1."),
    (re.compile(r"\.conv1_t\.bn\."), ".bn1."),
    (re.compile(r"\.slow_path\.conv1_lateral\.conv\."), ".laterals.0."),  # SlowFast's fast-to-slow convs
    (re.compile(r"\.slow_path\.layer(\d)_lateral\.conv\."), r".laterals.\1."),
    (re.compile(r"\.conv2\.1\.(conv|bn)\."), r".conv2.\1."),  # CSN: (pointwise, depthwise) or (depthwise,)
    (re.compile(r"\.conv(\d[abp]?)\.conv\."), r".conv\1."),
    (re.compile(r"\.bn_s\."), ".bn_mid."),
    (re.compile(r"\.conv(\dp?)\.bn\."), r".bn\1."),
    (re.compile(r"\.se_module\."), ".se."),
    (re.compile(r"\.conv_1\.conv\."), ".conv_t."),  # ResNetAudio's ConvAudio: time branch
    (re.compile(r"\.conv_1\.bn\."), ".bn_t."),
    (re.compile(r"\.conv_2\.conv\."), ".conv_f."),  # frequency branch
    (re.compile(r"\.conv_2\.bn\."), ".bn_f."),
    (re.compile(r"\.downsample\.conv\."), ".downsample.0."),
    (re.compile(r"\.downsample\.bn\."), ".downsample.1."),
    (re.compile(r"^cls_head\.fc_cls\."), "head.fc."),
    (re.compile(r"^cls_head\."), "head."),
]

# TimeSformer (mmcv transformer layers) and VisionTransformer (VideoMAE): a pre-pass before the rules above.
_TRANSFORMER_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^backbone\.patch_embed\.projection\."), "backbone.patch_embed.proj."),
    (re.compile(r"\.transformer_layers\.layers\.(\d+)\."), r".blocks.\1."),
    (re.compile(r"\.(ffns\.0|mlp)\.layers\.0\.0\."), ".mlp.fc1."),
    (re.compile(r"\.(ffns\.0|mlp)\.layers\.1\."), ".mlp.fc2."),
    (re.compile(r"\.ffns\.0\.norm\."), ".norm2."),
    (re.compile(r"\.norms\.([01])\."), lambda m: f".norm{int(m.group(1)) + 1}."),
    (re.compile(r"\.attn\.in_proj_(weight|bias)$"), r".attn.qkv.\1"),
    (re.compile(r"\.attn\.out_proj\."), ".attn.proj."),
    (re.compile(r"^backbone\.norm\d\."), "backbone.norm."),  # MViT's last-stage norm (norm3)
]
# divided space-time layers: attentions.0 is the temporal attention (with its norm and temporal_fc), 1 the spatial
_DIVIDED_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\.attentions\.0\.norm\."), ".temporal_norm1."),
    (re.compile(r"\.attentions\.0\.attn\."), ".temporal_attn."),
    (re.compile(r"\.attentions\.0\.temporal_fc\."), ".temporal_fc."),
    (re.compile(r"\.attentions\.1\.norm\."), ".norm1."),
    (re.compile(r"\.attentions\.1\.attn\."), ".attn."),
]
_JOINT_RULES: list[tuple[re.Pattern[str], str]] = [(re.compile(r"\.attentions\.0\.attn\."), ".attn.")]


def _transformer_key(key: str, divided: bool) -> str:
    for pattern, repl in _TRANSFORMER_RULES + (_DIVIDED_RULES if divided else _JOINT_RULES):
        key = pattern.sub(repl, key)
    return key


# Key fragments only MMAction2's layout produces (vidlab and torchvision never nest ``.conv.`` in ``convK``).
_SIGNATURE = re.compile(
    r"^(module\.)?(cls_head\.|roi_head\.bbox_head\.|backbone\.conv1\.conv\.|backbone\.conv1_s\.conv\.)|\.conv\.net\."
)
_DETECTOR = re.compile(r"^(module\.)?roi_head\.")
_BBOX_CLS = re.compile(r"^roi_head\.bbox_head\.fc_cls\.(weight|bias)$")


def looks_like_mmaction2(keys) -> bool:
    """Whether any of ``keys`` has a name only an MMAction2 recognizer or AVA detector uses."""
    return any(_SIGNATURE.search(k) for k in keys)


def looks_like_detector(keys) -> bool:
    """Whether ``keys`` are an MMAction2 detector's (``roi_head.*``)."""
    return any(_DETECTOR.search(k) for k in keys)


def convert_key(key: str) -> str:
    """One MMAction2 key -> its vidlab name (unchanged if no rule applies)."""
    for pattern, repl in _RULES:
        key = pattern.sub(repl, key)
    return key


def convert(
    state_dict: dict[str, torch.Tensor], model: str | None = None, *, background_class: bool = True
) -> dict[str, torch.Tensor]:
    """Rename an MMAction2 recognizer's (or AVA detector's) state dict to vidlab's names.

    Args:
        state_dict: the recognizer's weights (``checkpoint["state_dict"]``).
        model: the vidlab model name it is meant for (e.g. ``tsm_r50``); only its family is checked.
        background_class: a detector's ``BBoxHeadAVA`` was built with ``background_class=True`` (class 0 is the
            background, dropped here), as in all of MMAction2's AVA configs.

    Returns:
        A new dict with the same tensors under vidlab keys.

    Raises:
        NotImplementedError: if ``model``'s family has no MMAction2 mapping yet.
        ValueError: if two keys map to the same vidlab key.
    """
    if model is not None and model.split("_", 1)[0] not in FAMILIES:
        raise NotImplementedError(
            f"no MMAction2 key mapping for model {model!r} yet (covered families: {', '.join(FAMILIES)})"
        )
    if any(".transformer_layers." in k or "patch_embed.projection." in k for k in state_dict):
        divided = any(".attentions.1." in k for k in state_dict)
        state_dict = {_transformer_key(k, divided): v for k, v in state_dict.items()}
    # CSN's middle conv is a Sequential: (depthwise,) for "ir" blocks, (pointwise, depthwise) for "ip" blocks.
    ip = any(".conv2.1.conv." in k for k in state_dict)
    csn_first = (re.compile(r"\.conv2\.0\.(conv|bn)\."), r".conv2p.\1." if ip else r".conv2.\1.")

    def rename(key: str, value: torch.Tensor) -> tuple[str, str, torch.Tensor]:
        if m := _BBOX_CLS.match(key.removeprefix("module.")):  # BBoxHeadAVA's classifier
            return key, f"head.fc.{m.group(1)}", value[1:] if background_class else value
        return key, convert_key(csn_first[0].sub(csn_first[1], key)), value

    return collect((rename(k, v) for k, v in state_dict.items()), "MMAction2")
