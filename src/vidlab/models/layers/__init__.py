"""Building blocks shared by several model families."""

from vidlab.models.layers.interlace import TemporalInterlace
from vidlab.models.layers.non_local import NonLocal3d
from vidlab.models.layers.relation import RelationModule, RelationModuleMultiScale
from vidlab.models.layers.roi_align import RoIAlign, roi_align
from vidlab.models.layers.tam import TAM
from vidlab.models.layers.temporal_shift import temporal_shift

__all__ = [
    "TAM",
    "NonLocal3d",
    "RelationModule",
    "RelationModuleMultiScale",
    "RoIAlign",
    "TemporalInterlace",
    "roi_align",
    "temporal_shift",
]
