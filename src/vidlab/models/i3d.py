"""I3D: Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset (arXiv:1705.07750), as MMAction2's
ResNet-50 I3D (inflated 2D ResNet) and its non-local variants (Non-local Neural Networks, arXiv:1711.07971)."""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.resnet3d import ResNet3dClassifier

__all__: list[str] = []

#: MMAction2's "32x2" inflation pattern: which blocks get a temporal kernel of 3.
INFLATE_32X2 = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
#: Where MMAction2's I3D-NL configs put non-local blocks.
NON_LOCAL_I3D = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
_I3D = dict(
    depth=50,
    conv1_kernel=(5, 7, 7),
    conv1_stride_t=2,
    pool1_stride_t=2,
    with_pool2=True,
    inflate=INFLATE_32X2,
    zero_init_residual=False,
)
_SHAPE = (3, 32, 224, 224)
_REF = "MMAction2 ``i3d_imagenet-pretrained-r50{}_8xb8-32x2x1-100e_kinetics400-rgb``"

register_variant(
    globals(),
    "i3d_r50",
    ResNet3dClassifier,
    doc=f"I3D-ResNet50, 32x2 inflation ({_REF.format('')}).",
    input_shape=_SHAPE,
    **_I3D,
)
register_variant(
    globals(),
    "i3d_r50_heavy",
    ResNet3dClassifier,
    doc=f"I3D-ResNet50 with every block inflated and no temporal stride in the stem ({_REF.format('-heavy')}).",
    input_shape=_SHAPE,
    **{**_I3D, "inflate": 1, "conv1_stride_t": 1, "pool1_stride_t": 1},
)
for _mode in ("dot_product", "embedded_gaussian", "gaussian"):
    register_variant(
        globals(),
        f"i3d_r50_nl_{_mode}",
        ResNet3dClassifier,
        doc=f"I3D-ResNet50 with {_mode.replace('_', ' ')} non-local blocks "
        f"({_REF.format('-nl-' + _mode.replace('_', '-'))}).",
        input_shape=_SHAPE,
        **_I3D,
        non_local=NON_LOCAL_I3D,
        non_local_mode=_mode,
    )
