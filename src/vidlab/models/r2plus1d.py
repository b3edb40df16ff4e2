"""R(2+1)D: A Closer Look at Spatiotemporal Convolutions for Action Recognition (arXiv:1711.11248).

Three layouts of the same idea: MMAction2's ``ResNet2Plus1d`` (every conv factorised, shortcut convs included,
a max-pool after the stem, BN epsilon 1e-3) and torchvision's ``r2plus1d_18`` (the backbone SEVERE's
self-supervised checkpoints use: 45-channel factorised stem, no pool, 3D shortcut convs, both factorised convs of
a block as wide as computed from the block's input and output channels) and PyTorchVideo's ``r2plus1d_r50``
(bottlenecks whose middle conv alone is factorised, temporal conv first; no pool after the stem).
"""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.resnet3d import ResNet3dClassifier

__all__: list[str] = []

register_variant(
    globals(),
    "r2plus1d_r34",
    ResNet3dClassifier,
    doc="R(2+1)D-34 (MMAction2 ``r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb``).",
    depth=34,
    conv_kind="2plus1d",
    conv1_kernel=(3, 7, 7),
    temporal_strides=(1, 2, 2, 2),
    norm_eps=1e-3,
    zero_init_residual=False,
)
register_variant(
    globals(),
    "r2plus1d_r18",
    ResNet3dClassifier,
    doc="R(2+1)D-18 in torchvision's ``r2plus1d_18`` layout (no dropout before the classifier).",
    input_shape=(3, 16, 112, 112),
    depth=18,
    conv_kind="2plus1d",
    downsample_kind="3d",
    conv1_kernel=(3, 7, 7),
    stem_mid_channels=45,
    block_mid_channels="block",
    with_pool1=False,
    spatial_strides=(1, 2, 2, 2),
    temporal_strides=(1, 2, 2, 2),
    zero_init_residual=False,
    dropout=0.0,
)
register_variant(
    globals(),
    "r2plus1d_r50",
    ResNet3dClassifier,
    doc="R(2+1)D-50 in PyTorchVideo's ``r2plus1d_r50`` layout (16 frames, 224 px).",
    input_shape=(3, 16, 224, 224),
    depth=50,
    conv1_kernel=(1, 7, 7),
    with_pool1=False,
    inflate_style="3x3x3",
    middle_conv="2plus1d_tfirst",
    spatial_strides=(2, 2, 2, 2),
    temporal_strides=(1, 1, 2, 2),
    zero_init_residual=False,
)
