from vidlab.data.batch_transforms import normalize_batch  # noqa: F401
from vidlab.data.decode import VideoDecodeError, VideoReader  # noqa: F401
from vidlab.data.longterm import sliding_windows  # noqa: F401
from vidlab.data.sampling import DenseSampleFrames, SampleFrames, SparseSample, UniformSample  # noqa: F401
from vidlab.data.transforms import (  # noqa: F401
    CenterCrop,
    ColorJitter,
    Compose,
    Flip,
    MultiScaleCrop,
    RandAugment,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ThreeCrop,
    build_pipeline,
)


def __getattr__(name: str):
    # token masks live with the models that use them; importing them here lazily keeps `import vidlab.data` light
    if name in ("tube_mask", "random_mask", "mask_batch"):
        from vidlab.models.layers import masking

        return getattr(masking, name)
    raise AttributeError(f"module 'vidlab.data' has no attribute {name!r}")
