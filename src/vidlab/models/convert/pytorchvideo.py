"""PyTorchVideo hub model state dicts (``pytorchvideo.models.hub``, checkpoints ``*.pyth``) -> vidlab names.

PyTorchVideo's networks are a ``blocks`` list: ``blocks.0`` the stem, then one entry per stage (and, for C2D and
I3D, a parameter-free temporal pool between the first two stages), then the head. The layout is inferred from
the keys, so every hub model converts without naming it:

- ResNets (``c2d_r50``, ``i3d_r50``, ``slow_r50``, ``csn_r101``, ``r2plus1d_r50``): ``blocks.0.conv/norm`` ->
  ``backbone.conv1/bn1``; the stages that hold ``res_blocks``, in order, -> ``backbone.layer1`` .. ``layer4``; in a
  block ``branch1_conv/_norm`` -> ``downsample.0/.1``, ``branch2.conv_a/norm_a`` -> ``conv1/bn1``, ``conv_b/norm_b``
  -> ``conv2/bn2``, ``conv_c/norm_c`` -> ``conv3/bn3``; R(2+1)D's factorised ``conv_b.conv_t / .norm / .conv_xy``
  -> ``conv2.conv_t / .bn_mid / .conv_s``; the head's ``proj`` -> ``head.fc``.
- SlowFast (``slowfast_r50/r101``): ``multipathway_blocks.0/1`` -> ``backbone.slow_path/fast_path`` with the same
  names inside; ``blocks.K.multipathway_fusion.conv_fast_to_slow`` / ``.norm`` -> ``backbone.laterals.K`` /
  ``backbone.lateral_norms.K.0``. The head pools (slow, fast) but vidlab's (MMAction2's) concatenates (fast,
  slow): the classifier's weight columns are reordered to match.
- X3D (``x3d_xs/s/m/l``): the stem's ``conv.conv_t`` is its *spatial* conv -> ``backbone.conv1_s``, ``conv.conv_xy``
  its temporal one -> ``backbone.conv1_t``; ``norm_b.0`` -> ``bn2``, the squeeze-excitation ``norm_b.1.block.0/.2``
  -> ``se.fc1/.fc2``; the head's ``pool.pre_conv/pre_norm`` -> ``backbone.conv5/bn5``, ``pool.post_conv`` (a
  1x1x1 conv) -> ``head.fc1`` (its weight reshaped to 2-D), ``proj`` -> ``head.fc2``.

PyTorchVideo's hub heads end in a softmax for R(2+1)D and X3D; vidlab models return logits. Which vidlab model
and builder arguments reproduce each hub network is :data:`HUB_MODELS`.
"""

from __future__ import annotations

import re

import torch

from vidlab.models.convert._common import collect, fast_first, last_width, layer3_is_2d
from vidlab.models.convert.mvit import convert_pytorchvideo as convert_mvit
from vidlab.models.convert.mvit import looks_like_pytorchvideo_mvit

__all__ = ["HUB_MODELS", "builder_kwargs", "convert", "looks_like_pytorchvideo"]

#: PyTorchVideo hub name -> (vidlab model, builder arguments that make it the same network).
HUB_MODELS: dict[str, tuple[str, dict]] = {
    "c2d_r50": ("slowonly_r50_8x8", {"inflate": 0, "with_pool2": True}),  # 3D-conv C2D: a SlowOnly with no inflation
    "i3d_r50": ("i3d_r50", {"conv1_stride_t": 1, "pool1_stride_t": 1}),
    "slow_r50": ("slowonly_r50_8x8", {}),
    "slowfast_r50": ("slowfast_r50_8x8", {"lateral_norm": True}),
    "slowfast_r101": ("slowfast_r101_8x8", {"lateral_norm": True, "fusion_kernel": 5}),
    "csn_r101": ("ircsn_r101", {"norm_eps": 1e-5, "dropout": 0.0}),
    "r2plus1d_r50": ("r2plus1d_r50", {}),
    "x3d_xs": ("x3d_xs", {"stage1_shortcut_norm": False}),
    "x3d_s": ("x3d_s", {"stage1_shortcut_norm": False}),
    "x3d_m": ("x3d_m", {"stage1_shortcut_norm": False}),
    "x3d_l": ("x3d_l", {"stage1_shortcut_norm": False}),
    "mvit_base_16x4": ("mvit_v1_b_16x4", {"pool_norm_eps": 1e-5}),
    "mvit_base_32x3": ("mvit_v1_b_32x3", {"pool_norm_eps": 1e-5}),
}

_SIGNATURE = re.compile(r"^(module\.)?blocks\.\d+\.(res_blocks|multipathway_blocks|conv|norm)\.")

_BLOCK_RULES = [
    (re.compile(r"^branch1_conv\."), "downsample.0."),
    (re.compile(r"^branch1_norm\."), "downsample.1."),
    (re.compile(r"^branch2\.conv_a\."), "conv1."),
    (re.compile(r"^branch2\.norm_a\."), "bn1."),
    (re.compile(r"^branch2\.conv_b\.conv_t\."), "conv2.conv_t."),  # R(2+1)D-50
    (re.compile(r"^branch2\.conv_b\.norm\."), "conv2.bn_mid."),
    (re.compile(r"^branch2\.conv_b\.conv_xy\."), "conv2.conv_s."),
    (re.compile(r"^branch2\.conv_b\."), "conv2."),
    (re.compile(r"^branch2\.norm_b\.0\."), "bn2."),  # X3D: (BN, squeeze-excitation)
    (re.compile(r"^branch2\.norm_b\.1\.block\.0\."), "se.fc1."),
    (re.compile(r"^branch2\.norm_b\.1\.block\.2\."), "se.fc2."),
    (re.compile(r"^branch2\.norm_b\."), "bn2."),
    (re.compile(r"^branch2\.conv_c\."), "conv3."),
    (re.compile(r"^branch2\.norm_c\."), "bn3."),
]


def looks_like_pytorchvideo(keys) -> bool:
    """Whether any of ``keys`` has PyTorchVideo's ``blocks.N.`` layout (or its MViT's)."""
    return any(_SIGNATURE.search(k) for k in keys) or looks_like_pytorchvideo_mvit(keys)


def _block_key(rest: str) -> str:
    for pattern, repl in _BLOCK_RULES:
        new, n = pattern.subn(repl, rest)
        if n:
            return new
    return rest


def convert(state_dict: dict[str, torch.Tensor], model: str | None = None) -> dict[str, torch.Tensor]:
    """Rename a PyTorchVideo hub model's state dict to vidlab's names (``model`` is not needed: the layout is
    read off the keys). Keys no rule matches are kept, so loading reports them.

    Raises:
        ValueError: if two keys map to the same vidlab key.
    """
    if looks_like_pytorchvideo_mvit(state_dict):
        return convert_mvit(state_dict)
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    x3d = any(k.startswith("blocks.0.conv.conv_xy.") for k in sd)
    # stages: the blocks that hold residual blocks, in order (C2D/I3D have a pool block between 1 and 2)
    stage_ids = sorted(
        {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.(multipathway_blocks\.\d\.)?res_blocks\.", k))}
    )
    stage_of = {b: i + 1 for i, b in enumerate(stage_ids)}
    fast = None  # SlowFast: the fast pathway's output width, for reordering the classifier's columns
    if stage_ids and "blocks.0.multipathway_blocks.0.conv.weight" in sd:
        fast = last_width(sd, f"blocks.{stage_ids[-1]}.multipathway_blocks.1.")
    return collect(((k, *_rename(k, v, x3d, stage_of, fast)) for k, v in sd.items()), "PyTorchVideo")


def _rename(key: str, value: torch.Tensor, x3d: bool, stage_of: dict[int, int], fast: int | None):
    """One key's vidlab name and value (reshaped or reordered where the layouts differ)."""
    if m := re.match(r"blocks\.(\d+)\.multipathway_blocks\.(\d)\.(.*)$", key):  # SlowFast pathways
        path = ("slow_path", "fast_path")[int(m.group(2))]
        return _resnet_key(f"blocks.{m.group(1)}.{m.group(3)}", stage_of, f"backbone.{path}."), value
    if m := re.match(r"blocks\.(\d+)\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(.*)$", key):
        if m.group(2) == "norm":
            return f"backbone.lateral_norms.{m.group(1)}.0.{m.group(3)}", value
        return f"backbone.laterals.{m.group(1)}.{m.group(3)}", value
    if x3d and key.startswith("blocks.0."):
        new = key.replace("blocks.0.conv.conv_t.", "backbone.conv1_s.")
        return new.replace("blocks.0.conv.conv_xy.", "backbone.conv1_t.").replace(
            "blocks.0.norm.", "backbone.bn1."
        ), value
    if m := re.match(r"blocks\.\d+\.pool\.(pre_conv|pre_norm|post_conv)\.(.*)$", key):  # X3D head
        new = {"pre_conv": "backbone.conv5.", "pre_norm": "backbone.bn5.", "post_conv": "head.fc1."}[m.group(1)]
        return new + m.group(2), value.flatten(1) if m.group(1) == "post_conv" else value
    if m := re.match(r"blocks\.\d+\.proj\.(.*)$", key):
        if m.group(1) == "weight" and fast is not None:
            value = fast_first(value, fast)
        return ("head.fc2." if x3d else "head.fc.") + m.group(1), value
    return _resnet_key(key, stage_of, "backbone."), value


def _resnet_key(key: str, stage_of: dict[int, int], prefix: str) -> str:
    if m := re.match(r"blocks\.0\.(conv|norm)\.(.*)$", key):
        return f"{prefix}{'conv1' if m.group(1) == 'conv' else 'bn1'}.{m.group(2)}"
    if m := re.match(r"blocks\.(\d+)\.res_blocks\.(\d+)\.(.*)$", key):
        return f"{prefix}layer{stage_of[int(m.group(1))]}.{m.group(2)}.{_block_key(m.group(3))}"
    return key


def builder_kwargs(model: str, converted: dict[str, torch.Tensor]) -> dict:
    """The :data:`HUB_MODELS` arguments for vidlab ``model`` given converted PyTorchVideo weights (C2D and Slow
    both map onto ``slowonly_r50_8x8``: C2D's ``layer3`` has no temporal kernels)."""
    candidates = {hub: kwargs for hub, (name, kwargs) in HUB_MODELS.items() if name == model}
    if len(candidates) > 1:
        return dict(candidates.get("c2d_r50" if layer3_is_2d(converted) else "slow_r50", {}))
    return dict(next(iter(candidates.values()), {}))
