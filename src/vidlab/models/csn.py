"""CSN: Video Classification with Channel-Separated Convolutional Networks (arXiv:1904.02811), as MMAction2's
``ResNet3dCSN``: bottlenecks whose 3x3x3 conv is depthwise (``ir``: interaction-reduced) or a 1x1x1 conv followed
by a depthwise one (``ip``: interaction-preserved); temporal stride 2 in stages 2-4; BN epsilon 1e-3."""

from __future__ import annotations

from vidlab.models._registry import register_variant
from vidlab.models.resnet3d import ResNet3dClassifier

__all__: list[str] = []

_CSN = dict(
    conv1_kernel=(3, 7, 7),
    temporal_strides=(1, 2, 2, 2),
    inflate_style="3x3x3",
    with_pool2=False,
    norm_eps=1e-3,
    zero_init_residual=False,
)
_SHAPE = (3, 32, 224, 224)
_REF = "MMAction2 ``{}csn_ig65m-pretrained-r{}-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb``"

for _depth in (50, 101, 152):
    register_variant(
        globals(),
        f"ircsn_r{_depth}",
        ResNet3dClassifier,
        doc=f"ir-CSN-ResNet{_depth} ({_REF.format('ir', _depth)}" + (" with depth 101)." if _depth == 101 else ")."),
        input_shape=_SHAPE,
        depth=_depth,
        csn="ir",
        **_CSN,
    )
register_variant(
    globals(),
    "ipcsn_r152",
    ResNet3dClassifier,
    doc="ip-CSN-ResNet152 (MMAction2 ``ipcsn_r152_32x2x1-180e_kinetics400-rgb``).",
    input_shape=_SHAPE,
    depth=152,
    csn="ip",
    **_CSN,
)
