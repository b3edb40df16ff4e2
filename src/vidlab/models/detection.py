"""Spatio-temporal action detection (AVA): a zoo backbone, then a per-box head over its feature map.

``ActionDetector(x, rois)``: the backbone's ``forward_features`` map ``(B, C, T', H', W')`` -> temporal average
pool of each pathway (SlowFast: the slow pathway's channels first, then the fast one's, as MMAction2's
``SingleRoIExtractor3D`` and PySlowFast's ``ResNetRoIHead`` concatenate them) -> RoIAlign of every person box
(:func:`~vidlab.models.layers.roi_align`, spatial scale 1 / the backbone's stride) -> spatial max pool -> dropout
-> linear: one logit per box and class (sigmoid multi-label scores). This is the head of MMAction2's
``BBoxHeadAVA`` (``temporal_pool_type="avg"``, ``spatial_pool_type="max"``, RoIAlign output 8) and of PySlowFast's
``ResNetRoIHead`` (output 7); ``output_size`` chooses. Neither mmdet nor detectron2 is needed.

Registered as ``<backbone>_ava`` (``vidlab.list_models(task="detection")``). The 3D-ResNet variants run
``layer4`` at stride 1 (a map of H/16), as both references' AVA configs do; ``res5_dilation=2`` adds
PySlowFast's dilation of that stage (MMAction2's configs keep dilation 1). C2D (a 2D ResNet per frame) has no such
option and keeps its H/32 map. ``r2plus1d_r18_ava`` (SEVERE's AVA network: its PySlowFast fork's ``VSSL`` model
on torchvision's ``r2plus1d_18``) keeps torchvision's strides, whose stem has no max pool: a map of H/16 too.

The non-local detectors are PySlowFast's networks (MMAction2 has no non-local AVA config; MicroG-4M's C2D NLN and
I3D NLN rows are PySlowFast's): blocks after blocks 1, 3 of ``layer2`` and 1, 3, 5 of ``layer3``, its ``softmax``
instantiation (embedded Gaussian scaled by ``1 / sqrt(C')``) in its layout (``non_local_style="pyslowfast"``).
``c2d_r50_nl_ava`` is PySlowFast's C2D: a 3D ResNet whose kernels are all one frame long with a temporal pool after
``layer1`` (the network of its C2D checkpoints, which ``vidlab convert`` maps onto ``slowonly_r50_8x8`` with
``inflate=0, with_pool2=True``), unlike ``c2d_r50_ava``, MMAction2's 2D C2D.
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import create_model, register_model
from vidlab.models.base import check_clip
from vidlab.models.heads import _LinearHead
from vidlab.models.i3d import NON_LOCAL_I3D
from vidlab.models.layers.roi_align import roi_align

__all__ = ["ActionDetector", "RoIHead"]


class RoIHead(_LinearHead):
    """RoIAlign -> spatial max pool -> dropout -> ``fc``, on a temporally pooled map ``(B, C, H', W')``.

    Args:
        in_features: channels of the map.
        num_classes: outputs per box (the action classes; no background column).
        output_size: RoIAlign output (8: MMAction2's AVA configs, 7: PySlowFast's).
        sampling_ratio: RoIAlign sample points per bin; 0: adaptive (both references).
        aligned: RoIAlign's half-pixel alignment (both references: True).
        spatial_scale: feature-map pixels per input pixel; None: ``1 / stride`` with the stride measured from the
            input and map widths.
        dropout: before ``fc`` (0.5 in MMAction2's AVA configs).
        init_std: std of the normal init of ``fc`` (MMAction2: 0.01).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        output_size: int = 8,
        sampling_ratio: int = 0,
        aligned: bool = True,
        spatial_scale: float | None = None,
        dropout: float = 0.5,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(in_features, num_classes, dropout=dropout, init_std=init_std)
        self.output_size, self.sampling_ratio, self.aligned = output_size, sampling_ratio, aligned
        self.spatial_scale = spatial_scale

    def forward(self, feats: torch.Tensor, rois: torch.Tensor, input_width: int, pre_logits: bool = False):
        """``(B, C, H', W')`` map and ``(K, 5)`` boxes ``[batch index, x1, y1, x2, y2]`` in input pixels ->
        ``(K, num_classes)`` logits (or the ``(K, C)`` pooled box features if ``pre_logits``)."""
        scale = self.spatial_scale or 1.0 / max(round(input_width / feats.shape[-1]), 1)
        boxes = roi_align(feats, rois.float(), self.output_size, scale, self.sampling_ratio, self.aligned)
        pooled = boxes.amax(dim=(2, 3)) if boxes.shape[0] else boxes.new_zeros(0, boxes.shape[1])
        return pooled if pre_logits else self.fc(self.dropout(pooled))

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, "
            f"spatial_scale={self.spatial_scale}"
        )


class ActionDetector(nn.Module):
    """A zoo backbone + :class:`RoIHead`: ``forward(x, rois) -> (K, num_classes)`` logits, one row per box.

    Args:
        backbone: a registered recognition model (its classifier is dropped; ``forward_features`` is used).
        num_classes: action classes.
        backbone_kwargs: builder arguments of the backbone (``spatial_strides``, ``depth`` ...).
        **head: :class:`RoIHead` options.

    ``x`` is ``(B, C, T, H, W)``; ``rois`` ``(K, 5)`` ``[batch index, x1, y1, x2, y2]`` in the pixels of ``x``.
    Layer ids (layer-wise lr decay, ``model.freeze``) are the backbone's; the head is L + 1.
    """

    classifier_prefixes = ("head.fc.",)

    def __init__(self, backbone: str, num_classes: int = 80, *, backbone_kwargs: dict | None = None, **head) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.backbone = create_model(backbone, **(backbone_kwargs or {}))
        del self.backbone.head  # the recognition classifier: not part of a detector
        inner = getattr(self.backbone, "backbone", None)
        fast = getattr(inner, "fast_path", None)
        self.fast_channels = fast.num_features if fast is not None else 0
        self.speed_ratio = getattr(inner, "speed_ratio", 1)
        self.head = RoIHead(self.backbone.num_features, num_classes, **head)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def num_features(self) -> int:
        return self.head.in_features

    @property
    def num_layers(self) -> int:
        return self.backbone.num_layers

    def layer_id(self, name: str) -> int:
        """The backbone's layer id for its parameters, L + 1 for the head."""
        if name.startswith("backbone."):
            return self.backbone.layer_id(name[len("backbone.") :])
        self.get_parameter(name)  # raises for an unknown name
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        return {f"backbone.{n}" for n in self.backbone.no_weight_decay()}

    def reset_classifier(self, num_classes: int) -> None:
        self.head.reset_classifier(num_classes)

    def adapt_state_dict(
        self, state_dict: dict[str, torch.Tensor], source_frames: int | None = None
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """A recognition checkpoint of the backbone (its own names: what ``vidlab train`` / ``vidlab convert
        --model <backbone>`` write, e.g. SEVERE's converted R(2+1)D-18 files) -> this detector's names, the
        backbone's weights under ``backbone.``; the recognizer's classifier (``head.*``, not this detector's box
        classifier) is left out, and named in the notes. A detector's own state dict passes unchanged."""
        own = self.state_dict()
        body = {"backbone." + k: v for k, v in state_dict.items() if not k.startswith("head.")}
        if any(k in own for k in state_dict if not k.startswith("head.")) or not any(k in own for k in body):
            return state_dict, []
        classifier = sorted(k for k in state_dict if k.startswith("head."))
        note = f"a {self.backbone_name} recognition checkpoint: its weights go under backbone."
        return body, [note + (f"; its classifier ({', '.join(classifier)}) is left out" if classifier else "")]

    def to_channels_last(self) -> ActionDetector:
        self.backbone.to_channels_last()
        return self

    def pooled_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the temporally pooled map ``(B, C', H', W')`` the boxes are read from."""
        check_clip(x)
        feats = self.backbone.forward_features(x)
        if not self.fast_channels:
            return feats.mean(dim=2)
        fast = feats[:, : self.fast_channels].mean(dim=2)
        slow = feats[:, self.fast_channels :, :: self.speed_ratio].mean(dim=2)  # each slow frame once
        return torch.cat((slow, fast), dim=1)

    def forward(self, x: torch.Tensor, rois: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if rois.dim() != 2 or rois.shape[-1] != 5:
            raise InputError(f"rois must be (K, 5) [batch index, x1, y1, x2, y2], got shape {tuple(rois.shape)}")
        return self.head(self.pooled_map(x), rois, x.shape[-1], pre_logits=pre_logits)

    def forward_train(self, x: torch.Tensor, rois: torch.Tensor):
        return self(x, rois), []


#: name -> (backbone, backbone arguments, input shape (C, T, H, W), reference config)
_RES5_STRIDE1 = {"spatial_strides": (1, 2, 2, 1)}
#: PySlowFast's non-local blocks (``NONLOCAL.LOCATION: [[[]], [[1, 3]], [[1, 3, 5]], [[]]]``, ``softmax``)
_NL_PYSLOWFAST = {
    "non_local": NON_LOCAL_I3D,
    "non_local_mode": "embedded_gaussian",
    "non_local_use_scale": True,
    "non_local_style": "pyslowfast",
}
DETECTORS = {
    "slowonly_r50_4x16_ava": ("slowonly_r50_4x16", _RES5_STRIDE1, (3, 4, 256, 256)),
    "slowonly_r50_8x8_ava": ("slowonly_r50_8x8", _RES5_STRIDE1, (3, 8, 256, 256)),
    "slowfast_r50_4x16_ava": ("slowfast_r50_4x16", _RES5_STRIDE1, (3, 32, 256, 256)),
    "slowfast_r50_8x8_ava": ("slowfast_r50_8x8", _RES5_STRIDE1, (3, 32, 256, 256)),
    "i3d_r50_ava": ("i3d_r50", _RES5_STRIDE1, (3, 8, 256, 256)),
    "c2d_r50_ava": ("c2d_r50", {}, (3, 8, 256, 256)),  # C2D's 2D ResNet keeps layer4 at stride 2: a map of H/32
    "c2d_r50_nl_ava": (
        "slowonly_r50_8x8",
        {**_RES5_STRIDE1, "inflate": 0, "with_pool2": True, **_NL_PYSLOWFAST},  # PySlowFast's C2D NLN
        (3, 8, 256, 256),
    ),
    "i3d_r50_nl_ava": ("i3d_r50_nl_embedded_gaussian", {**_RES5_STRIDE1, **_NL_PYSLOWFAST}, (3, 8, 256, 256)),
    "x3d_s_ava": ("x3d_s", {}, (3, 13, 160, 160)),
    "x3d_l_ava": ("x3d_l", {}, (3, 16, 312, 312)),
    "mvit_v1_b_16x4_ava": ("mvit_v1_b_16x4", {}, (3, 16, 224, 224)),
    "mvit_v2_s_ava": ("mvit_v2_s", {}, (3, 16, 224, 224)),
    "videomae_vit_b_ava": ("videomae_vit_b", {}, (3, 16, 224, 224)),
    # SEVERE's AVA network (its PySlowFast fork's VSSL model): torchvision's R(2+1)D-18 as is, a map of H/16
    "r2plus1d_r18_ava": ("r2plus1d_r18", {}, (3, 32, 112, 112)),
}


_HEAD_OPTIONS = ("output_size", "sampling_ratio", "aligned", "spatial_scale", "dropout", "init_std")


def _register(name: str, backbone: str, fixed: dict, input_shape: tuple[int, int, int, int]) -> None:
    def builder(*, num_classes: int = 80, res5_dilation: int = 1, backbone_kwargs: dict | None = None, **options):
        head = {k: options.pop(k) for k in _HEAD_OPTIONS if k in options}
        kwargs = {**fixed, **options, **(backbone_kwargs or {})}  # the rest: the backbone's (TCLR's strides ...)
        if res5_dilation != 1:
            if "spatial_strides" not in fixed:
                raise InputError(f"{name}: res5_dilation needs a 3D-ResNet backbone with a stride-1 layer4")
            kwargs["spatial_dilations"] = (1, 1, 1, res5_dilation)
        return ActionDetector(backbone, num_classes, backbone_kwargs=kwargs, **head)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"AVA action detector on {backbone} ({', '.join(f'{k}={v}' for k, v in fixed.items()) or 'as built'}); "
        "``res5_dilation=2``: PySlowFast's dilated last stage; :class:`RoIHead`'s options; other arguments (or "
        "``backbone_kwargs``) go to the backbone."
    )
    builder.__module__ = __name__
    register_model(input_shape=input_shape, task="detection")(builder)
    globals()[name] = builder
    __all__.append(name)


for _name, (_backbone, _fixed, _shape) in DETECTORS.items():
    _register(_name, _backbone, _fixed, _shape)
