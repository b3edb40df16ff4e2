from vidlab.data.decode import VideoDecodeError, VideoReader  # noqa: F401
from vidlab.data.sampling import DenseSampleFrames, SampleFrames, UniformSample  # noqa: F401
from vidlab.data.transforms import (  # noqa: F401
    CenterCrop,
    ColorJitter,
    Compose,
    Flip,
    MultiScaleCrop,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ThreeCrop,
    build_pipeline,
    normalize_batch,
)
