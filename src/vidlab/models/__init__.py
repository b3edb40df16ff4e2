"""Model zoo: registry plus one module per family."""

# Importing the family modules registers their builders.
from vidlab.models import (  # noqa: F401
    c2d,
    c3d,
    clip,
    csn,
    detection,
    i3d,
    mvit,
    r2plus1d,
    resnet_audio,
    simcount,
    slowfast,
    slowonly,
    tanet,
    timesformer,
    tin,
    tpn,
    trn,
    tsm,
    tsn,
    videomae,
    videomae_pretrain,
    videomamba,
    x3d,
)
from vidlab.models._registry import (
    ModelArgumentError,
    ModelInfo,
    UnknownModelError,
    count_params,
    create_model,
    get_model_info,
    list_models,
    register_model,
)
from vidlab.models.base import VideoClassifier
from vidlab.models.heads import average_view_scores

__all__ = [
    "ModelArgumentError",
    "ModelInfo",
    "UnknownModelError",
    "VideoClassifier",
    "average_view_scores",
    "count_params",
    "create_model",
    "get_model_info",
    "list_models",
    "register_model",
]
