"""PySlowFast (facebookresearch/SlowFast) checkpoints -> vidlab names.

PySlowFast saves ``{"model_state": state_dict, ...}`` (read by :func:`~vidlab.models.convert.read_state_dict`);
its modules are named by stage ``sK`` (``s1`` the stem, ``s2`` .. ``s5`` the residual stages) and pathway
(``pathway0`` slow or only, ``pathway1`` fast). Covered: C2D, I3D, Slow(Only), SlowFast, X3D.

- stem ``s1.pathwayP_stem.conv`` / ``.bn`` -> ``backbone[.slow_path|.fast_path].conv1`` / ``bn1``; X3D's stem
  ``conv_xy`` (spatial) / ``conv`` (temporal, depthwise) / ``bn`` -> ``backbone.conv1_s`` / ``conv1_t`` / ``bn1``
- ``sK.pathwayP_resJ`` -> ``layer{K-1}.J``; inside ``branch1`` / ``branch1_bn`` -> ``downsample.0/.1``,
  ``branch2.a/b/c`` -> ``conv1/2/3``, ``branch2.a_bn/b_bn/c_bn`` -> ``bn1/2/3``, ``branch2.se`` -> ``se`` (X3D)
- non-local blocks ``sK.pathwayP_nonlocalJ`` (after block J) -> ``layer{K-1}.J.non_local``, with ``conv_theta`` /
  ``conv_phi`` / ``conv_g`` -> ``theta`` / ``phi`` / ``g`` and ``conv_out`` / ``bn`` as they are; the network is
  then PySlowFast's (:func:`builder_kwargs` adds ``non_local_style="pyslowfast"`` and the blocks' positions)
- SlowFast's fusions ``sK_fuse.conv_f2s`` / ``.bn`` -> ``backbone.laterals.{K-1}`` / ``backbone.lateral_norms.{K-1}.0``
- head ``head.projection`` -> ``head.fc`` (X3D: ``head.fc2``; SlowFast: columns reordered from (slow, fast) to
  vidlab's (fast, slow) features); X3D's ``head.conv_5`` / ``conv_5_bn`` -> ``backbone.conv5`` / ``bn5`` and
  ``head.lin_5`` (a 1x1x1 conv) -> ``head.fc1`` (weight reshaped to 2-D).

vidlab models for PySlowFast's configs: ``SLOWFAST_8x8_R50`` -> ``slowfast_r50_8x8`` with ``lateral_norm=True``
(PySlowFast normalises its fusions); ``X3D_S`` -> ``x3d_s``; ``SLOW_8x8_R50`` -> ``slowonly_r50_8x8``; MViT
v1 / v2 (:mod:`vidlab.models.convert.mvit`): ``MVIT_B_16x4_CONV`` -> ``mvit_v1_b_16x4``, ``MVIT_B_32x3_CONV`` (24
blocks) -> ``mvit_v1_b24_32x3``, ``MVITv2_S_16x4`` -> ``mvit_v2_s``, ``MVITv2_B_32x3`` -> ``mvit_v2_b``.
The model zoo's Caffe2 ``.pkl`` files hold Caffe2 blob names, not this layout, and are not covered.

AVA detectors (``DETECTION.ENABLE``) have the same backbone keys and a ``ResNetRoIHead`` whose only parameters are
``head.projection`` (80 classes, no background): with ``detector=True`` it becomes the detector's ``head.fc`` with
its columns as they are (``ResNetRoIHead``, like vidlab's ``RoIHead``, takes the slow pathway's channels first).
Their configs (:data:`DETECTION_CONFIGS`) dilate ``res5`` by 2 and use a 7x7 RoIAlign, which the weights do not show.
"""

from __future__ import annotations

import re

import torch

from vidlab.models.convert._common import collect, fast_first, last_width, layer3_is_2d
from vidlab.models.convert.mvit import convert_pyslowfast as convert_mvit
from vidlab.models.convert.mvit import looks_like_pyslowfast_mvit
from vidlab.models.convert.pytorchvideo import HUB_MODELS

__all__ = ["CONFIGS", "DETECTION_CONFIGS", "DETECTION_KWARGS", "builder_kwargs", "convert", "looks_like_pyslowfast"]

#: PySlowFast config -> (vidlab model, builder arguments that make it the same network). C2D and I3D are the
#: networks of PyTorchVideo's hub models of the same names (converted from these configs; see
#: :data:`~vidlab.models.convert.pytorchvideo.HUB_MODELS`).
CONFIGS: dict[str, tuple[str, dict]] = {
    "SLOWFAST_8x8_R50": ("slowfast_r50_8x8", {"lateral_norm": True}),
    "SLOWFAST_4x16_R50": ("slowfast_r50_4x16", {"lateral_norm": True}),
    "SLOW_8x8_R50": ("slowonly_r50_8x8", {}),
    "C2D_8x8_R50": HUB_MODELS["c2d_r50"],
    "I3D_8x8_R50": HUB_MODELS["i3d_r50"],
    "X3D_S": ("x3d_s", {}),
    "MVIT_B_16x4_CONV": ("mvit_v1_b_16x4", {}),
    "MVIT_B_32x3_CONV": ("mvit_v1_b24_32x3", {}),
    "MVITv2_S_16x4": ("mvit_v2_s", {}),
    "MVITv2_B_32x3": ("mvit_v2_b", {}),
}

#: detector arguments of all of PySlowFast's AVA configs that the weights do not show: ``res5`` dilated by 2, RoIAlign
#: output 7 (``DETECTION.ROI_XFORM_RESOLUTION``)
DETECTION_KWARGS = {"res5_dilation": 2, "output_size": 7}
#: PySlowFast AVA configs -> (vidlab detector, builder arguments that make it the same network).
DETECTION_CONFIGS: dict[str, tuple[str, dict]] = {
    "SLOWFAST_32x2_R50_SHORT": (
        "slowfast_r50_8x8_ava",
        {**DETECTION_KWARGS, "backbone_kwargs": {"lateral_norm": True}},
    ),
    "SLOW_8x8_R50_SHORT": ("slowonly_r50_4x16_ava", dict(DETECTION_KWARGS)),  # 4 frames x 16, despite the name
}

_SIGNATURE = re.compile(r"^(module\.)?s\d\.pathway\d_")
_BLOCK = {"branch1": "downsample.0", "branch1_bn": "downsample.1", "branch2.a": "conv1", "branch2.a_bn": "bn1"}
_BLOCK |= {"branch2.b": "conv2", "branch2.b_bn": "bn2", "branch2.c": "conv3", "branch2.c_bn": "bn3"}
_BLOCK |= {"branch2.se": "se"}


def looks_like_pyslowfast(keys) -> bool:
    return any(_SIGNATURE.search(k) for k in keys) or looks_like_pyslowfast_mvit(keys)


def convert(
    state_dict: dict[str, torch.Tensor], model: str | None = None, *, detector: bool = False
) -> dict[str, torch.Tensor]:
    """Rename a PySlowFast model state to vidlab's names (the layout is read off the keys).

    Args:
        state_dict: the model state (``checkpoint["model_state"]``).
        model: unused (the layout is read off the keys).
        detector: the weights go into a detector's per-box head: SlowFast's ``head.projection`` keeps its (slow, fast)
            column order instead of being reordered for vidlab's (fast, slow) recognition features.

    Raises:
        ValueError: if two keys map to the same vidlab key.
    """
    if looks_like_pyslowfast_mvit(state_dict):
        return convert_mvit(state_dict)
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    two_paths = any(k.startswith("s1.pathway1_") for k in sd)
    x3d = "s1.pathway0_stem.conv_xy.weight" in sd
    paths = ("backbone.slow_path.", "backbone.fast_path.") if two_paths else ("backbone.", "backbone.")
    fast = last_width(sd, "s5.pathway1_") if two_paths and not detector else None
    return collect(((k, *_rename(k, v, x3d, paths, fast)) for k, v in sd.items()), "PySlowFast")


def _rename(key: str, value: torch.Tensor, x3d: bool, paths: tuple[str, str], fast: int | None):
    """One key's vidlab name and value (reshaped or reordered where the layouts differ)."""
    if m := re.match(r"s1\.pathway(\d)_stem\.(conv_xy|conv|bn)\.(.*)$", key):
        layer = {"conv_xy": "conv1_s", "conv": "conv1_t" if x3d else "conv1", "bn": "bn1"}[m.group(2)]
        return f"{paths[int(m.group(1))]}{layer}.{m.group(3)}", value
    if m := re.match(
        r"s(\d)\.pathway(\d)_res(\d+)\.(branch1_bn|branch1|branch2\.[abc]_bn|branch2\.[abc]|branch2\.se)\.(.*)$", key
    ):
        stage, path, block, part, rest = m.groups()
        return f"{paths[int(path)]}layer{int(stage) - 1}.{block}.{_BLOCK[part]}.{rest}", value
    if m := re.match(r"s(\d)\.pathway(\d)_nonlocal(\d+)\.(conv_theta|conv_phi|conv_g|conv_out|bn)\.(.*)$", key):
        stage, path, block, part, rest = m.groups()
        part = part.removeprefix("conv_") if part != "conv_out" else part
        return f"{paths[int(path)]}layer{int(stage) - 1}.{block}.non_local.{part}.{rest}", value
    if m := re.match(r"s(\d)_fuse\.(conv_f2s|bn)\.(.*)$", key):
        k = int(m.group(1)) - 1
        if m.group(2) == "bn":
            return f"backbone.lateral_norms.{k}.0.{m.group(3)}", value
        return f"backbone.laterals.{k}.{m.group(3)}", value
    if m := re.match(r"head\.(conv_5_bn|conv_5|lin_5|projection)\.(.*)$", key):
        part, rest = m.groups()
        if part == "lin_5":
            value = value.flatten(1)
        elif part == "projection" and rest == "weight" and fast is not None:
            value = fast_first(value, fast)
        new = {"conv_5": "backbone.conv5.", "conv_5_bn": "backbone.bn5.", "lin_5": "head.fc1."}.get(part)
        return (new or ("head.fc2." if x3d else "head.fc.")) + rest, value
    return key, value


def _non_local_kwargs(converted: dict[str, torch.Tensor]) -> dict:
    """PySlowFast's non-local blocks where the converted weights have them: per stage, a 0/1 flag per block, its
    ``softmax`` instantiation (scaled embedded Gaussian) in its layout."""
    blocks: dict[int, int] = {}
    placed: set[tuple[int, int]] = set()
    for key in converted:
        if m := re.match(r"backbone\.layer(\d)\.(\d+)\.", key):
            stage, block = int(m.group(1)), int(m.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
            if ".non_local." in key:
                placed.add((stage, block))
    flags = tuple(tuple(int((stage, b) in placed) for b in range(blocks.get(stage, 0))) for stage in (1, 2, 3, 4))
    return {"non_local": flags, "non_local_mode": "embedded_gaussian", "non_local_use_scale": True,
            "non_local_style": "pyslowfast"}  # fmt: skip


def builder_kwargs(model: str, converted: dict[str, torch.Tensor]) -> dict:
    """Builder arguments for vidlab ``model`` given converted PySlowFast weights: those of :data:`CONFIGS` for
    that model (C2D vs Slow told apart by ``layer3``'s temporal kernels), normalised SlowFast fusions and their
    kernel size read off the weights, and PySlowFast's non-local blocks where the weights have them. SlowFast's
    alpha cannot be read off the weights: pick the variant (``slowfast_r50_4x16`` or ``_8x8``) that matches the
    checkpoint's config."""
    kwargs = {}
    if model == "slowonly_r50_8x8":
        kwargs.update(CONFIGS["C2D_8x8_R50" if layer3_is_2d(converted) else "SLOW_8x8_R50"][1])
    elif model == "i3d_r50":
        kwargs.update(CONFIGS["I3D_8x8_R50"][1])
    if any(".non_local." in k for k in converted):
        kwargs.update(_non_local_kwargs(converted))
    if any(k.startswith("backbone.lateral_norms.") for k in converted):
        kwargs["lateral_norm"] = True
    if "backbone.laterals.0.weight" in converted:
        kwargs["fusion_kernel"] = int(converted["backbone.laterals.0.weight"].shape[2])
    return kwargs
