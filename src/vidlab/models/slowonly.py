"""SlowOnly: the slow pathway of SlowFast Networks for Video Recognition (arXiv:1812.03982) on its own, as
MMAction2's ``ResNet3dSlowOnly``: a ResNet-50/101 whose first two stages stay 2D (temporal kernels only in
``layer3`` and ``layer4``), no temporal downsampling."""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.resnet3d import ResNet3dClassifier

__all__: list[str] = []

#: Keyword arguments of ``ResNet3d`` that make it a slow pathway (also SlowFast's).
SLOW_PATHWAY = dict(conv1_kernel=(1, 7, 7), inflate=(0, 0, 1, 1), with_pool2=False)
#: Where MMAction2's SlowOnly-NL config puts non-local blocks.
NON_LOCAL_SLOWONLY = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))
_REF = "MMAction2 ``slowonly_r{}_8xb16-{}-256e_kinetics400-rgb``"

register_variant(
    globals(),
    "slowonly_r50_4x16",
    ResNet3dClassifier,
    doc=f"SlowOnly-ResNet50, 4 frames at stride 16 ({_REF.format('50', '4x16x1')}).",
    input_shape=(3, 4, 224, 224),
    depth=50,
    **SLOW_PATHWAY,
)
register_variant(
    globals(),
    "slowonly_r50_8x8",
    ResNet3dClassifier,
    doc=f"SlowOnly-ResNet50, 8 frames at stride 8 ({_REF.format('50', '8x8x1')}).",
    depth=50,
    **SLOW_PATHWAY,
)
register_variant(
    globals(),
    "slowonly_r101_8x8",
    ResNet3dClassifier,
    doc="SlowOnly-ResNet101, 8 frames at stride 8 (MMAction2 ``slowonly_r101_8xb16-8x8x1-196e_kinetics400-rgb``).",
    depth=101,
    **SLOW_PATHWAY,
)
register_variant(
    globals(),
    "slowonly_r50_nl_8x8",
    ResNet3dClassifier,
    doc="SlowOnly-ResNet50 with embedded-Gaussian non-local blocks (MMAction2 "
    "``slowonly_r50-in1k-pre-nl-embedded-gaussian_8xb16-8x8x1-steplr-150e_kinetics400-rgb``).",
    depth=50,
    **SLOW_PATHWAY,
    non_local=NON_LOCAL_SLOWONLY,
    non_local_mode="embedded_gaussian",
    non_local_use_scale=True,
)
