"""Building blocks shared by several model families."""

from vidlab.models.layers.temporal_shift import temporal_shift

__all__ = ["temporal_shift"]
